import SteleConsent
import SteleCore
import SteleCrypto
import SteleLMDB

/// The materialized consent state, in the `consent` database (`Specs/consent.md`, "Materialized
/// state"). Written by ``Ledger/apply(_:txn:appender:head:state:)`` in the same transaction as the
/// entry that changes it, so it never disagrees with the committed entries; keyed by the subject's
/// keyed hash (the one the subject index uses), never by the raw identifier.
///
/// - `s ‖ subject hash` → the subject's ``SubjectConsent``, canonical JSON: a current lookup is one read.
/// - `h ‖ subject hash ‖ seq` → `ts`: the subject's consent entries, for folding at a past moment in
///   time proportional to that subject's entries.
/// - `n ‖ seq` → a ``Notice``, canonical JSON.
struct ConsentTable {
    static let stateTag: UInt8 = 0x73  // "s"
    static let historyTag: UInt8 = 0x68  // "h"
    static let noticeTag: UInt8 = 0x6E  // "n"

    let db: Database

    static func stateKey(_ subject: KeyedHash) -> [UInt8] { [stateTag] + subject.bytes }
    static func historyKey(_ subject: KeyedHash, seq: UInt64) -> [UInt8] { [historyTag] + subject.bytes + LedgerKeys.u64(seq) }
    static func noticeKey(_ seq: UInt64) -> [UInt8] { [noticeTag] + LedgerKeys.u64(seq) }

    /// Records `event` (a kind the table holds) of a subject whose keyed hash is `subject`.
    func record(_ event: ConsentEvent, subject hash: KeyedHash?, txn: Transaction) throws {
        if event.kind == .noticePublished {
            guard let notice = Notice(event) else { return }
            try txn.put(db, key: Self.noticeKey(event.seq), value: notice.json.canonicalBytes)
            return
        }
        guard event.kind.isSubjectState, let subject = event.subject, let hash else { return }
        try txn.put(db, key: Self.historyKey(hash, seq: event.seq), value: LedgerKeys.time(event.timestamp))
        var state = try self.state(hash, txn: txn) ?? SubjectConsent(subject: subject)
        state.fold(event)
        if state.isEmpty {
            _ = try txn.delete(db, key: Self.stateKey(hash))
        } else {
            try txn.put(db, key: Self.stateKey(hash), value: state.json.canonicalBytes)
        }
    }

    /// The stored state of the subject with keyed hash `hash`.
    func state(_ hash: KeyedHash, txn: Transaction) throws -> SubjectConsent? {
        let key = Self.stateKey(hash)
        guard let raw = try txn.get(db, key: key) else { return nil }
        return try raw.withUnsafeBytes { try Self.decodeState($0, key: key) }
    }

    static func decodeState(_ raw: UnsafeRawBufferPointer, key: some Collection<UInt8>) throws -> SubjectConsent {
        guard let value = try? JSONParser.parse(Array(raw)), let state = SubjectConsent(json: value) else {
            throw LedgerError(.corrupt, "the consent state record \(Base64.encode(Array(key))) is damaged: run stele verify")
        }
        return state
    }

    /// The seqs of the subject's consent entries below `high`, ascending.
    func history(_ hash: KeyedHash, below high: UInt64, txn: Transaction) throws -> [UInt64] {
        let prefix = [Self.historyTag] + hash.bytes
        var seqs: [UInt64] = []
        try txn.withCursor(db) { cursor in
            var record = try cursor.seek(atOrAfter: prefix)
            while let current = record, current.key.count == 25, current.key.starts(with: prefix) {
                let seq = LedgerKeys.readU64(current.key, at: 17)
                if seq >= high { break }
                seqs.append(seq)
                record = try cursor.next()
            }
        }
        return seqs
    }

    /// Every notice published, in seq order.
    func notices(txn: Transaction) throws -> NoticeRegistry {
        var notices: [Notice] = []
        try forEach(tag: Self.noticeTag, txn: txn) { key, value in
            guard let json = try? JSONParser.parse(Array(value)), let notice = Notice(json: json) else {
                throw LedgerError(.corrupt, "the notice record \(Base64.encode(Array(key))) is damaged: run stele verify")
            }
            notices.append(notice)
            return true
        }
        return NoticeRegistry(notices)
    }

    /// Calls `visit` with every stored subject state, in keyed-hash order; stops when it returns false.
    func forEachState(txn: Transaction, _ visit: (SubjectConsent) throws -> Bool) throws {
        try forEach(tag: Self.stateTag, txn: txn) { key, value in try visit(try Self.decodeState(value, key: key)) }
    }

    /// Calls `visit` with every record whose key starts with `tag`.
    func forEach(tag: UInt8, txn: Transaction, _ visit: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool) throws {
        try txn.withCursor(db) { cursor in
            var record = try cursor.seek(atOrAfter: [tag])
            while let current = record, current.key.first == tag {
                if try !visit(current.key, current.value) { return }
                record = try cursor.next()
            }
        }
    }
}
