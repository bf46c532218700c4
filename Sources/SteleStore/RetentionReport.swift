public import SteleCore
import SteleCrypto
import SteleLMDB

/// The lawfulness check (`Specs/retention.md`, "The lawfulness check"), re-derived from headers,
/// receipts and policy entries alone: every redacted field was redacted by a receipt that made it
/// lawful, every receipt is consistent, nothing is kept past its retention, and no erasure request
/// is past its deadline.
public struct RetentionReport: Sendable {
    /// One thing found.
    public struct Finding: Sendable, Hashable {
        public enum Kind: String, Sendable {
            /// A redacted field that no receipt explains.
            case unexplainedRedaction = "unexplained_redaction"
            /// A receipt that does not hold up: its cutoff, its set of seqs, its policy, or an entry it
            /// pruned before that entry's retention ended.
            case invalidReceipt = "invalid_receipt"
            /// An entry whose retention ended that still discloses fields.
            case overdue
            /// A deletion request neither completed nor followed by erasure within 30 days.
            case erasureOverdue = "erasure_overdue"
        }

        public let kind: Kind
        public let seq: UInt64
        public let message: String

        public var json: JSONValue {
            .object(["finding": .string(kind.rawValue), "seq": .integer(Int64(seq)), "message": .string(message)])
        }
    }

    public let now: Timestamp
    /// `ledger.pruned` receipts checked.
    public internal(set) var receipts = 0
    /// Entries a receipt explains.
    public internal(set) var pruned = 0
    /// In seq order; only the first 1,000 of each kind are listed, the rest counted.
    public internal(set) var findings: [Finding] = []
    public internal(set) var unlisted: [Finding.Kind: Int] = [:]

    /// No finding.
    public var isClean: Bool { findings.isEmpty && unlisted.isEmpty }

    /// Findings listed so far, by kind.
    private var listed: [Finding.Kind: Int] = [:]

    init(now: Timestamp) {
        self.now = now
    }

    mutating func add(_ kind: Finding.Kind, _ seq: UInt64, _ message: String) {
        if listed[kind, default: 0] < 1_000 {
            findings.append(Finding(kind: kind, seq: seq, message: message))
            listed[kind, default: 0] += 1
        } else {
            unlisted[kind, default: 0] += 1
        }
    }

    public var json: JSONValue {
        .object([
            "now": .string(now.description), "clean": .bool(isClean), "receipts": .integer(Int64(receipts)),
            "pruned": .integer(Int64(pruned)), "findings": .array(findings.map(\.json)),
            "unlisted": .object(Dictionary(uniqueKeysWithValues: unlisted.map { ($0.key.rawValue, JSONValue.integer(Int64($0.value))) })),
        ])
    }
}

extension Ledger {
    /// Days an erasure request may stay open (`Specs/retention.md`).
    static let erasureDeadline: Int64 = 30 * 86_400_000_000

    /// Runs the lawfulness check over one snapshot, as of `now`.
    public func retentionReport(now: Timestamp = .now()) throws -> RetentionReport {
        var report = RetentionReport(now: now)
        try read { txn in
            let size = try head(txn).size
            // The policy entries, by seq, and the receipts.
            var policies: [(seq: UInt64, digest: String)] = []
            var explained: [UInt64: UInt64] = [:]
            let rules = try retentionRules(txn)
            // Hold placements and releases in log order: which holds were in force at a receipt.
            var holdEvents: [(seq: UInt64, hold: UInt64, placed: Bool, until: Timestamp?)] = []
            try forEachEntry(ofKind: "ledger.hold", txn: txn, size: size) { entry in
                holdEvents.append((entry.seq, entry.seq, true, entry.body.fields["until"]?.value?.stringValue.flatMap(Timestamp.init(rfc3339:))))
            }
            try forEachEntry(ofKind: "ledger.hold_released", txn: txn, size: size) { entry in
                if let hold = entry.body.fields["hold"]?.value?.integerValue { holdEvents.append((entry.seq, UInt64(hold), false, nil)) }
            }
            holdEvents.sort { $0.seq < $1.seq }
            func holdsInForce(before receipt: UInt64, at time: Timestamp) -> [Int64] {
                var inForce: [UInt64: Timestamp?] = [:]
                for event in holdEvents where event.seq < receipt {
                    if event.placed { inForce[event.seq] = event.until } else { inForce[event.hold] = nil }
                }
                return inForce.filter { $0.value.map { time < $0 } ?? true }.keys.map { Int64($0) }.sorted()
            }
            func checkHolds(_ fields: [String: JSONValue], receipt r: UInt64, at time: Timestamp) {
                let recorded = (fields["holds"]?.arrayValue ?? []).compactMap(\.integerValue)
                if recorded != holdsInForce(before: r, at: time) {
                    report.add(.invalidReceipt, r, "receipt \(r) records holds \(recorded), not the ones in force (\(holdsInForce(before: r, at: time)))")
                }
            }
            try forEachEntry(ofKind: "ledger.policy", txn: txn, size: size) { entry in
                if let digest = entry.body.fields["digest"]?.value?.stringValue { policies.append((entry.seq, digest)) }
            }
            try forEachEntry(ofKind: "ledger.pruned", txn: txn, size: size) { receipt in
                report.receipts += 1
                let r = receipt.seq
                let fields = receipt.body.fields.compactMapValues(\.value)
                guard let cutoff = fields["cutoff"]?.stringValue.flatMap(Timestamp.init(rfc3339:)),
                    let seqs = fields["seqs"].flatMap(SeqSet.seqs), let digest = fields["seqs_sha256"]?.stringValue
                else {
                    return report.add(.invalidReceipt, r, "receipt \(r) lacks its cutoff, its seqs or their digest")
                }
                if cutoff > receipt.header.timestamp {
                    report.add(.invalidReceipt, r, "receipt \(r) has a cutoff (\(cutoff)) after its own ts (\(receipt.header.timestamp))")
                }
                if SeqSet.digest(seqs) != digest || fields["entries"]?.integerValue != Int64(seqs.count) {
                    report.add(.invalidReceipt, r, "receipt \(r): its seqs do not match their digest or count")
                }
                let inForce = policies.last { $0.seq < r }
                if inForce?.digest != fields["policy"]?.stringValue {
                    report.add(.invalidReceipt, r, "receipt \(r) cites policy \(fields["policy"]?.stringValue ?? "none"), not the one in force (\(inForce.map { "entry \($0.seq)" } ?? "none recorded"))")
                }
                for seq in seqs {
                    guard seq < r else {
                        report.add(.invalidReceipt, r, "receipt \(r) names entry \(seq), which is not before it")
                        continue
                    }
                    guard let header = try? self.header(seq, txn: txn) else {
                        report.add(.invalidReceipt, r, "receipt \(r) names entry \(seq), which cannot be read")
                        continue
                    }
                    guard let until = rules.deadline(seq, retainUntil: header.retainUntil), until <= cutoff else {
                        report.add(.invalidReceipt, r, "receipt \(r) pruned entry \(seq) before its retention ended (deadline \(rules.deadline(seq, retainUntil: header.retainUntil)?.description ?? "none"), cutoff \(cutoff))")
                        continue
                    }
                    explained[seq] = r
                }
                checkHolds(fields, receipt: r, at: cutoff)
            }
            try forEachEntry(ofKind: "ledger.erased", txn: txn, size: size) { receipt in
                report.receipts += 1
                let r = receipt.seq
                let fields = receipt.body.fields.compactMapValues(\.value)
                guard let erasure = fields["erasure_entry"]?.integerValue.map(UInt64.init), let seqs = fields["erased"].flatMap(SeqSet.seqs),
                    let digest = fields["erased_sha256"]?.stringValue
                else {
                    return report.add(.invalidReceipt, r, "erasure receipt \(r) lacks its erasure entry, its seqs or their digest")
                }
                if SeqSet.digest(seqs) != digest { report.add(.invalidReceipt, r, "erasure receipt \(r): its seqs do not match their digest") }
                guard erasure < r, (try? self.header(erasure, txn: txn))?.kind == "account.erased" else {
                    return report.add(.invalidReceipt, r, "erasure receipt \(r) cites entry \(erasure), which is not an earlier account.erased")
                }
                for seq in seqs {
                    guard seq < erasure else {
                        report.add(.invalidReceipt, r, "erasure receipt \(r) names entry \(seq), which is not before the erasure \(erasure)")
                        continue
                    }
                    explained[seq] = r
                }
                checkHolds(fields, receipt: r, at: (try? self.header(erasure, txn: txn).timestamp) ?? receipt.header.timestamp)
            }
            report.pruned = explained.count
            // Every entry: redacted fields need a receipt; a due entry must not disclose any.
            for seq in 0..<size {
                guard let headerBytes = try LedgerKeys.withEntryKey(seq, LedgerKeys.headerTag, { try txn.get(databases.entries, key: $0) }),
                    let body = try LedgerKeys.withEntryKey(seq, LedgerKeys.bodyTag, { try txn.get(databases.entries, key: $0) })
                else { continue }  // a missing record is verify's to report
                let mayDisclose = Self.contains(body, Self.saltMarker)
                let mayBeRedacted = Self.contains(body, Self.digestMarker)
                let until = rules.deadline(seq, retainUntil: EntryHeader.retainUntil(inCanonical: headerBytes) ?? nil)
                let due = until.map { $0 <= now } ?? false
                guard mayBeRedacted || (mayDisclose && due) else { continue }
                guard let parsed = try? EntryBody(parsing: body) else { continue }
                if !parsed.redactedNames.isEmpty && explained[seq] == nil {
                    report.add(.unexplainedRedaction, seq, "entry \(seq) has redacted fields (\(parsed.redactedNames.joined(separator: ", "))) that no receipt explains")
                }
                let held = !rules.holds.isEmpty && parsed.fields["subject"]?.value?.stringValue.map { subject in
                    (try? self.header(seq, txn: txn)).map { rules.hold(covering: subjectHash(subject), kind: $0.kind, at: now) != nil } ?? false
                } == true
                if due && !held && parsed.fields.values.contains(where: { !$0.isRedacted }) {
                    report.add(.overdue, seq, "entry \(seq) is past its retention (\(until!)) and still discloses fields")
                }
            }
            try checkErasureRequests(&report, txn: txn, size: size, now: now)
        }
        report.findings.sort { ($0.seq, $0.kind.rawValue) < ($1.seq, $1.kind.rawValue) }
        return report
    }

    static let digestMarker = Array(#""digest":"#.utf8)

    /// Deletion requests open for more than 30 days: neither completed nor followed by the
    /// subject's erasure.
    private func checkErasureRequests(_ report: inout RetentionReport, txn: Transaction, size: UInt64, now: Timestamp) throws {
        var open: [String: (seq: UInt64, ts: Timestamp)] = [:]
        var closed: Set<String> = []
        for kind in ["rights.requested", "rights.completed", "account.erased"] {
            try forEachEntry(ofKind: kind, txn: txn, size: size) { entry in
                guard let request = entry.body.fields["request"]?.value?.stringValue else { return }
                if kind == "rights.requested" {
                    if entry.body.fields["right"]?.value?.stringValue == "deletion" { open[request] = (entry.seq, entry.header.timestamp) }
                } else {
                    closed.insert(request)
                }
            }
        }
        for (request, opened) in open where !closed.contains(request) && now.microseconds - opened.ts.microseconds > Self.erasureDeadline {
            report.add(.erasureOverdue, opened.seq, "deletion request \(request) (entry \(opened.seq), \(opened.ts)) is open after 30 days")
        }
    }

    /// Calls `visit` with every entry of `kind` the kind index lists, in seq order, from `txn`. An
    /// entry that cannot be read (missing, damaged) is skipped: the integrity check reports it.
    func forEachEntry(ofKind kind: String, txn: Transaction, size: UInt64, _ visit: (StoredEntry) throws -> Void) throws {
        let hash = LedgerKeys.identifierHash(indexKey: indexKey, role: "kind", identifier: kind, sha: .init())
        try index.seqs(txn, role: .kind, hash: hash, low: 0, high: size, size: size) { seq in
            guard let entry = try? entry(seq, txn: txn), entry.header.kind == kind else { return true }
            try visit(entry)
            return true
        }
    }

    /// The header of entry `seq`.
    func header(_ seq: UInt64, txn: Transaction) throws -> EntryHeader {
        guard let bytes = try LedgerKeys.withEntryKey(seq, LedgerKeys.headerTag, { try txn.get(databases.entries, key: $0) }) else {
            throw LedgerError(.outOfRange, "entry \(seq) does not exist")
        }
        do { return try EntryHeader(parsing: bytes) } catch {
            throw LedgerError(.corrupt, "entry \(seq) has an unreadable header: \(error)")
        }
    }
}

extension Ledger {
    /// Every start of a daemon that was not preceded by the record of a clean stop
    /// (`ledger.started` after a `ledger.started`, with no `ledger.stopped` between): the entry of
    /// that start and its `ts`. The daemon before it stopped without recording it (a crash, a kill).
    public func uncleanStops() throws -> [(start: UInt64, timestamp: Timestamp)] {
        try read { txn in
            let size = try head(txn).size
            var events: [StoredEntry] = []
            for kind in ["ledger.started", "ledger.stopped"] { try forEachEntry(ofKind: kind, txn: txn, size: size) { events.append($0) } }
            var unclean: [(UInt64, Timestamp)] = []
            var running = false
            for event in events.sorted(by: { $0.seq < $1.seq }) {
                if event.header.kind == "ledger.started" {
                    if running { unclean.append((event.seq, event.header.timestamp)) }
                    running = true
                } else {
                    running = false
                }
            }
            return unclean
        }
    }
}
