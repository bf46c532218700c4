public import SteleCore
import SteleCrypto
import SteleLMDB

/// What one prune is asked to do (`Specs/retention.md`, "Pruning").
public struct PruneRequest: Sendable {
    /// Entries whose `retain_until` is at or before this are pruned.
    public var cutoff: Timestamp
    /// Who asked: `uid:<n>` of the operator, or `stele` for the daemon's schedule.
    public var operatorName: String
    /// The request or ticket id the operator gave.
    public var request: String
    public var reason: String
    /// Entries redacted per transaction (each with its receipt), so appends flow between them.
    public var maximumBatch = 10_000
    /// Count, change nothing.
    public var dryRun = false

    public init(cutoff: Timestamp, operatorName: String, request: String, reason: String) {
        self.cutoff = cutoff
        self.operatorName = operatorName
        self.request = request
        self.reason = reason
    }
}

/// What a prune did.
public struct PruneReport: Sendable {
    public let cutoff: Timestamp
    public let dryRun: Bool
    /// Entries pruned (or, in a dry run, that would be).
    public internal(set) var pruned = 0
    public internal(set) var byClass: [String: Int] = [:]
    /// The `ledger.pruned` receipts appended, one per batch.
    public internal(set) var receipts: [UInt64] = []
    /// Due entries a legal hold kept.
    public internal(set) var held = 0
    /// The `ledger.policy` entry this run appended, when the policy in force was not yet recorded.
    public internal(set) var policy: UInt64?

    public var json: JSONValue {
        .object([
            "cutoff": .string(cutoff.description), "dry_run": .bool(dryRun), "pruned": .integer(Int64(pruned)),
            "by_class": .object(byClass.mapValues { .integer(Int64($0)) }), "held": .integer(Int64(held)),
            "receipts": .array(receipts.map { .integer(Int64($0)) }), "policy_entry": policy.map { .integer(Int64($0)) } ?? .null,
        ])
    }
}

extension Ledger {
    /// Up to `limit` seqs from `from` whose `retain_until` is at or before `cutoff` and whose body
    /// still discloses a field, and the seq the next scan starts from. Reads one snapshot; a seq
    /// found here is checked again in the transaction that prunes it.
    func pruneCandidates(from: UInt64, cutoff: Timestamp, rules: RetentionRules, limit: Int) throws -> (seqs: [UInt64], next: UInt64) {
        try read { txn in
            // `retain_until` is never before `ts`: nothing from the first entry after the cutoff on is due.
            let high = cutoff == .maximum ? try head(txn).size : try firstSeq(atOrAfter: cutoff.adding(microseconds: 1), txn: txn)
            var seqs: [UInt64] = []
            var seq = from
            while seq < high && seqs.count < limit {
                defer { seq += 1 }
                guard let header = try LedgerKeys.withEntryKey(seq, LedgerKeys.headerTag, { try txn.get(databases.entries, key: $0) }) else { continue }
                guard case .some(let retainUntil) = EntryHeader.retainUntil(inCanonical: header),
                    let until = rules.deadline(seq, retainUntil: retainUntil), until <= cutoff
                else { continue }
                guard let body = try LedgerKeys.withEntryKey(seq, LedgerKeys.bodyTag, { try txn.get(databases.entries, key: $0) }) else { continue }
                // A disclosed field is `{"salt":…,"value":…}`; a fully redacted body has no salt.
                if Self.contains(body, Self.saltMarker) { seqs.append(seq) }
            }
            return (seqs, seq)
        }
    }

    static let saltMarker = Array(#""salt":"#.utf8)

    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        let first = needle[0]
        var i = 0
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first && haystack[i..<i + needle.count].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    /// The newest `ledger.policy` entry: its seq and the digest it records.
    public func recordedPolicy() throws -> (seq: UInt64, digest: String)? {
        var newest: UInt64?
        try scan(LedgerQuery(kind: "ledger.policy")) { newest = $0.seq; return true }
        guard let newest else { return nil }
        let entry = try entry(newest)
        guard let digest = entry.body.fields["digest"]?.value?.stringValue else {
            throw LedgerError(.corrupt, "the ledger.policy entry \(newest) has no digest")
        }
        return (newest, digest)
    }
}

extension LedgerWriter {
    /// Appends a `ledger.policy` entry recording `policy`, unless it is the one last recorded.
    /// - Returns: the new entry's seq, or nil when the policy was already on record.
    @discardableResult
    public func recordPolicy(_ policy: RetentionPolicy, operatorName: String, now: @escaping @Sendable () -> Timestamp = Timestamp.now) throws -> UInt64? {
        let digest = policy.digest
        if try ledger.recordedPolicy()?.digest == digest { return nil }
        return try perform(now: now) { context in
            try context.append(Event.ledger("ledger.policy", actor: operatorName, attributes: ["policy": policy.json, "digest": .string(digest)])).seq
        }
    }

    /// Prunes every entry whose retention ended by `request.cutoff`: redacts each of its body fields
    /// (headers and digests stay, so every proof still verifies) and removes its personal index
    /// records, in batches of at most `maximumBatch` entries. Each batch commits in one transaction
    /// with its `ledger.pruned` receipt, so no entry is ever pruned without one; an interrupted run
    /// leaves whole batches, and a rerun finishes the job. The policy in force is recorded first
    /// when it is not yet on record.
    /// - Throws: `future_time` when the cutoff is later than the clock and the store is not in test mode.
    public func prune(_ request: PruneRequest, policy: RetentionPolicy) throws -> PruneReport {
        let testMode = try ledger.isTestMode
        let cutoff = request.cutoff
        if cutoff > Timestamp.now() && !testMode {
            throw LedgerError(.futureTime, "the cutoff \(cutoff) is later than the clock: only a store created in test mode accepts a time in the future")
        }
        // A receipt's `ts` is never before its cutoff: in test mode the writer's clock is the cutoff.
        let clock: @Sendable () -> Timestamp = { testMode ? max(cutoff, Timestamp.now()) : Timestamp.now() }
        var report = PruneReport(cutoff: cutoff, dryRun: request.dryRun)
        var from: UInt64 = 0
        while true {
            // Until a scan finds nothing: entries appended while a batch was pruned (before its
            // receipt, whose `ts` is at or after the cutoff) may be due too.
            let rules = try ledger.retentionRules()
            let (candidates, next) = try ledger.pruneCandidates(from: from, cutoff: cutoff, rules: rules, limit: max(1, request.maximumBatch))
            from = next
            if candidates.isEmpty { break }
            if request.dryRun {
                for seq in candidates { report.byClass[try ledger.entry(seq).header.retentionClass, default: 0] += 1 }
                report.pruned += candidates.count
                continue
            }
            if report.policy == nil, report.receipts.isEmpty { report.policy = try recordPolicy(policy, operatorName: request.operatorName, now: clock) }
            let digest = policy.digest
            let batch = try perform(now: clock) { (context: inout WriteContext) throws -> PrunedBatch in
                // Checked again inside the transaction: the snapshot that found them may be stale.
                let rules = try context.retentionRules()
                let (done, held, moved) = try context.prune(candidates, cutoff: cutoff, rules: rules, keptAfterLastEntry: policy.keptAfterLastEntry)
                for (until, seqs) in moved.sorted(by: { $0.key < $1.key }) {
                    _ = try context.append(Event.ledger("ledger.retention", actor: request.operatorName, attributes: [
                            "seqs": SeqSet.ranges(seqs), "seqs_sha256": .string(SeqSet.digest(seqs)), "until": .string(until.description),
                            "cause": .string("later_entry"),
                        ]))
                }
                let pruned = done.map(\.seq)
                var counts: [String: Int] = [:]
                for entry in done { counts[entry.retentionClass, default: 0] += 1 }
                guard !pruned.isEmpty else { return PrunedBatch(receipt: nil, counts: [:], pruned: 0, held: held) }
                let receipt = try context.append(Event.ledger("ledger.pruned", actor: request.operatorName, attributes: [
                        "cutoff": .string(cutoff.description), "policy": .string(digest),
                        "counts": .object(counts.mapValues { .integer(Int64($0)) }), "entries": .integer(Int64(pruned.count)),
                        "seqs": SeqSet.ranges(pruned), "seqs_sha256": .string(SeqSet.digest(pruned)),
                        "request": .string(request.request), "reason": .string(request.reason),
                        "held": .integer(Int64(held)), "holds": .array(rules.holdsInForce(at: cutoff).map { .integer(Int64($0)) }),
                    ]))
                return PrunedBatch(receipt: receipt.seq, counts: counts, pruned: pruned.count, held: held)
            }
            report.held += batch.held
            if let receipt = batch.receipt {
                report.receipts.append(receipt)
                report.pruned += batch.pruned
                for (name, count) in batch.counts { report.byClass[name, default: 0] += count }
            }
        }
        return report
    }
}

/// One batch's outcome: its receipt (nil when nothing was left to prune) and what it pruned.
private struct PrunedBatch: Sendable {
    let receipt: UInt64?
    let counts: [String: Int]
    let pruned: Int
    let held: Int
}

/// The exact set of seqs a receipt covers (`Specs/retention.md`, "Receipts").
public enum SeqSet {
    /// Ascending seqs as `[[first, last], …]`, inclusive runs.
    public static func ranges(_ seqs: [UInt64]) -> JSONValue {
        var runs: [JSONValue] = []
        var start = seqs.first
        var last = seqs.first
        for seq in seqs.dropFirst() {
            if let l = last, seq == l + 1 { last = seq; continue }
            runs.append(.array([.integer(Int64(start!)), .integer(Int64(last!))]))
            start = seq
            last = seq
        }
        if let start, let last { runs.append(.array([.integer(Int64(start)), .integer(Int64(last))])) }
        return .array(runs)
    }

    /// The seqs of `[[first, last], …]`; nil when it is not such a list.
    public static func seqs(_ ranges: JSONValue) -> [UInt64]? {
        guard let runs = ranges.arrayValue else { return nil }
        var seqs: [UInt64] = []
        for run in runs {
            guard let pair = run.arrayValue, pair.count == 2, let a = pair[0].integerValue, let b = pair[1].integerValue, a >= 0, a <= b else { return nil }
            seqs.append(contentsOf: UInt64(a)...UInt64(b))
        }
        return seqs
    }

    /// Hex SHA-256 of the seqs as 8-byte big-endian integers, ascending.
    public static func digest(_ seqs: [UInt64]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(seqs.count * 8)
        for seq in seqs { withUnsafeBytes(of: seq.bigEndian) { bytes.append(contentsOf: $0) } }
        return SHA256.hash(bytes).hex
    }
}
