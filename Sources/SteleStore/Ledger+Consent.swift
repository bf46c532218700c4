public import SteleConsent
public import SteleCore
import SteleCrypto
import SteleLMDB

/// Consent reads (`Specs/consent.md`): the materialized current state, a subject's state at any
/// past moment, the notices, and the entries the audit reads.
extension Ledger {
    /// The consent table; nil in a store opened read-only that no writer has opened since it was added.
    var consentTable: ConsentTable? { databases.consent.map(ConsentTable.init(db:)) }

    private func requireConsentTable() throws -> ConsentTable {
        guard let table = consentTable else {
            throw LedgerError(.notALedger, "this store was written before Stele kept consent state: start the daemon (or any writing command) on it once to build it")
        }
        return table
    }

    /// The consent view of a journaled entry of a kind the table records.
    func consentEvent(_ entry: JournalEntry, kind: ConsentEvent.Kind) throws -> ConsentEvent {
        let body: EntryBody
        do { body = try EntryBody(parsing: entry.body) } catch {
            throw LedgerError(.corrupt, "entry \(entry.seq) has an unreadable body: \(error)")
        }
        return ConsentEvent(seq: entry.seq, timestamp: entry.timestamp, kind: kind, fields: body.fields.compactMapValues(\.value))
    }

    /// The consent view of a stored entry, if its kind is one consent reads.
    static func consentEvent(_ entry: StoredEntry) -> ConsentEvent? {
        ConsentEvent.Kind(rawValue: entry.header.kind).map {
            ConsentEvent(seq: entry.seq, timestamp: entry.header.timestamp, kind: $0, fields: entry.body.fields.compactMapValues(\.value))
        }
    }

    /// The keyed hash of a subject identifier, as the subject index, the consent table and holds record it.
    func subjectHash(_ subject: String) -> KeyedHash {
        LedgerKeys.identifierHash(indexKey: indexKey, role: "subject", identifier: subject, sha: SHA256())
    }

    // MARK: Reading

    /// The subject's consent state: now (one read of the materialized state), or as it stood at
    /// `time`, folded from the subject's entries with `ts` ≤ `time`.
    public func consentState(subject: String, at time: Timestamp? = nil) throws -> SubjectConsent? {
        let table = try requireConsentTable()
        let hash = subjectHash(subject)
        return try read { txn in
            guard let time else { return try table.state(hash, txn: txn) }
            return try fold(subject: subject, hash: hash, below: try firstSeq(after: time, txn: txn), table: table, txn: txn)
        }
    }

    /// The subject's current state and every notice, from one snapshot: what a current answer needs.
    public func currentConsent(subject: String) throws -> (state: SubjectConsent?, notices: NoticeRegistry) {
        try withCurrentConsent(subject: subject) { state, notices in (state, try notices()) }
    }

    /// Calls `body` with the subject's current state (one read) and a function that reads every
    /// notice, both from one snapshot: an answer reads the notices only when it needs them.
    public func withCurrentConsent<R>(subject: String, _ body: (SubjectConsent?, () throws -> NoticeRegistry) throws -> R) throws -> R {
        let table = try requireConsentTable()
        let hash = subjectHash(subject)
        return try read { txn in try body(try table.state(hash, txn: txn), { try table.notices(txn: txn) }) }
    }

    /// The first seq whose `ts` is after `time`.
    private func firstSeq(after time: Timestamp, txn: Transaction) throws -> UInt64 {
        time == .maximum ? try head(txn).size : try firstSeq(atOrAfter: time.adding(microseconds: 1), txn: txn)
    }

    private func fold(subject: String, hash: KeyedHash, below high: UInt64, table: ConsentTable, txn: Transaction) throws -> SubjectConsent? {
        var state = SubjectConsent(subject: subject)
        for seq in try table.history(hash, below: high, txn: txn) {
            if let event = Self.consentEvent(try entry(seq, txn: txn)) { state.fold(event) }
        }
        return state.isEmpty ? nil : state
    }

    /// Every notice published (with its `ts`; an answer at a time counts only those published by then).
    public func consentNotices() throws -> NoticeRegistry {
        let table = try requireConsentTable()
        return try read { try table.notices(txn: $0) }
    }

    /// The subject's consent entries (grants, refusals, withdrawals, age, rights, erasure), in order.
    public func consentHistory(subject: String) throws -> [StoredEntry] {
        let table = try requireConsentTable()
        let hash = subjectHash(subject)
        return try read { txn in
            try table.history(hash, below: .max, txn: txn).map { try entry($0, txn: txn) }
        }
    }

    /// Calls `visit` with the state of every subject that has one now, from one snapshot; stops
    /// when `visit` returns false.
    public func forEachConsentState(_ visit: (SubjectConsent) throws -> Bool) throws {
        let table = try requireConsentTable()
        try read { txn in try table.forEachState(txn: txn, visit) }
    }

    /// Calls `visit` with the state at `time` of every subject with a consent entry by then, from one
    /// snapshot, in keyed-hash order; stops when `visit` returns false.
    public func forEachConsentState(at time: Timestamp, _ visit: (SubjectConsent) throws -> Bool) throws {
        let table = try requireConsentTable()
        try read { txn in
            let high = try firstSeq(after: time, txn: txn)
            var current: [UInt8] = []
            var state: SubjectConsent?
            func finish() throws -> Bool {
                defer { state = nil }
                guard let s = state, !s.isEmpty else { return true }
                return try visit(s)
            }
            var stopped = false
            try table.forEach(tag: ConsentTable.historyTag, txn: txn) { key, _ in
                guard key.count == 25 else { return true }
                let seq = LedgerKeys.readU64(key, at: 17)
                let subject = Array(key[1..<17])
                if subject != current {
                    if try !finish() { stopped = true; return false }
                    current = subject
                }
                guard seq < high, let event = Self.consentEvent(try entry(seq, txn: txn)) else { return true }
                if state == nil, let name = event.subject { state = SubjectConsent(subject: name) }
                state?.fold(event)
                return true
            }
            if !stopped { _ = try finish() }
        }
    }

    /// Calls `visit` with every entry the consent audit reads (consent, age, rights, erasure,
    /// notices, processing, enforcement), in seq order, from one snapshot.
    public func forEachConsentAuditEvent(_ visit: (ConsentEvent) throws -> Void) throws {
        try read { txn in
            let size = try head(txn).size
            var seqs: [UInt64] = []
            let sha = SHA256()
            for kind in ConsentEvent.Kind.allCases {
                let hash = LedgerKeys.identifierHash(indexKey: indexKey, role: "kind", identifier: kind.rawValue, sha: sha)
                try index.seqs(txn, role: .kind, hash: hash, low: 0, high: size, size: size) { seqs.append($0); return true }
            }
            seqs.sort()
            for seq in seqs {
                if let event = Self.consentEvent(try entry(seq, txn: txn)) { try visit(event) }
            }
        }
    }

    /// Brings the consent table in line with entry `before.seq` once fields of it were redacted in
    /// `txn`: the state is a function of the entries, so the subject's state is folded again from its
    /// entries as they now read, and a redacted subject takes the entry out of its history (a
    /// rebuild could no longer place it).
    func consentEntryRedacted(_ before: StoredEntry, txn: Transaction, sha: SHA256) throws {
        guard let table = consentTable, let kind = ConsentEvent.Kind(rawValue: before.header.kind), consentKinds.values.contains(kind) else { return }
        let after = try entry(before.seq, txn: txn)
        if kind == .noticePublished {
            if let event = Self.consentEvent(after), let notice = Notice(event) {
                try txn.put(table.db, key: ConsentTable.noticeKey(before.seq), value: notice.json.canonicalBytes)
            } else {
                _ = try txn.delete(table.db, key: ConsentTable.noticeKey(before.seq))
            }
            return
        }
        guard let subject = before.body.fields["subject"]?.value?.stringValue else { return }
        let hash = LedgerKeys.identifierHash(indexKey: indexKey, role: "subject", identifier: subject, sha: sha)
        if after.body.fields["subject"]?.value == nil {
            _ = try txn.delete(table.db, key: ConsentTable.historyKey(hash, seq: before.seq))
        }
        if let state = try fold(subject: subject, hash: hash, below: .max, table: table, txn: txn) {
            try txn.put(table.db, key: ConsentTable.stateKey(hash), value: state.json.canonicalBytes)
        } else {
            _ = try txn.delete(table.db, key: ConsentTable.stateKey(hash))
        }
    }

    // MARK: Building and checking

    /// Builds the consent table from the entries, in one write transaction, when the store has none
    /// yet (a new store, or one written before consent state existed).
    func buildConsentStateIfAbsent() throws {
        guard let table = consentTable else { return }
        let built = try read { txn in try txn.get(databases.meta, key: LedgerKeys.consentStateKey) != nil }
        guard !built else { return }
        do {
            try environment.withWriteTransaction { txn in
                guard try txn.get(databases.meta, key: LedgerKeys.consentStateKey) == nil else { return }
                let size = try head(txn).size
                for seq in try consentSeqs(txn, size: size) {
                    let stored = try entry(seq, txn: txn)
                    guard let event = Self.consentEvent(stored) else { continue }
                    let hash = event.subject.map(subjectHash)
                    try table.record(event, subject: hash, txn: txn)
                }
                try txn.put(databases.meta, key: LedgerKeys.consentStateKey, value: LedgerKeys.consentStateVersion)
            }
        } catch let error as LMDBError {
            throw LedgerError(.storage, "building the consent state failed: \(error)")
        }
    }

    /// The seqs of the entries the consent table records, ascending.
    private func consentSeqs(_ txn: Transaction, size: UInt64) throws -> [UInt64] {
        var seqs: [UInt64] = []
        for hash in consentKinds.keys {
            try index.seqs(txn, role: .kind, hash: hash, low: 0, high: size, size: size) { seqs.append($0); return true }
        }
        return seqs.sorted()
    }

    /// Rebuilds the consent table from the entries in snapshot `txn` and compares it with the stored
    /// one, record by record (`stele verify`): any difference is a problem.
    func auditConsentState(_ txn: Transaction, size: UInt64) throws -> [LedgerError] {
        guard let table = consentTable else { return [] }
        guard try txn.get(databases.meta, key: LedgerKeys.consentStateKey) != nil else {
            return [LedgerError(.indexMismatch, "the consent state is not marked as built: it may be incomplete")]
        }
        var expected: [[UInt8]: [UInt8]] = [:]
        var states: [KeyedHash: SubjectConsent] = [:]
        let sha = SHA256()
        for seq in try consentSeqs(txn, size: size) {
            let stored = try entry(seq, txn: txn)
            guard let event = Self.consentEvent(stored) else { continue }
            if event.kind == .noticePublished {
                if let notice = Notice(event) { expected[ConsentTable.noticeKey(seq)] = notice.json.canonicalBytes }
                continue
            }
            guard let subject = event.subject else { continue }
            let hash = LedgerKeys.identifierHash(indexKey: indexKey, role: "subject", identifier: subject, sha: sha)
            expected[ConsentTable.historyKey(hash, seq: seq)] = LedgerKeys.time(event.timestamp)
            states[hash, default: SubjectConsent(subject: subject)].fold(event)
        }
        for (hash, state) in states where !state.isEmpty { expected[ConsentTable.stateKey(hash)] = state.json.canonicalBytes }
        var problems: [LedgerError] = []
        var unreported = 0
        func report(_ message: String) {
            if problems.count < DerivedRecordAudit.reportLimit { problems.append(LedgerError(.indexMismatch, message)) } else { unreported += 1 }
        }
        func describe(_ key: [UInt8]) -> String {
            switch key.first {
            case ConsentTable.stateTag: "the consent state of subject hash \(Base64.encode(Array(key[1...])))"
            case ConsentTable.historyTag where key.count == 25: "the consent history record of entry \(key.withUnsafeBytes { LedgerKeys.readU64($0, at: 17) })"
            case ConsentTable.noticeTag where key.count == 9: "the notice record of entry \(key.withUnsafeBytes { LedgerKeys.readU64($0, at: 1) })"
            default: "the consent record \(Base64.encode(key))"
            }
        }
        try txn.withCursor(table.db) { cursor in
            var record = try cursor.first()
            while let current = record {
                let key = Array(current.key)
                if let value = expected.removeValue(forKey: key) {
                    if value != Array(current.value) { report("\(describe(key)) differs from a rebuild from the entries") }
                } else {
                    report("\(describe(key)) is not derived from any entry")
                }
                record = try cursor.next()
            }
        }
        for key in expected.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            report("\(describe(key)) is missing: a rebuild from the entries has it")
        }
        if unreported > 0 { problems.append(LedgerError(.indexMismatch, "\(unreported) more consent state problem(s) not listed")) }
        return problems
    }
}
