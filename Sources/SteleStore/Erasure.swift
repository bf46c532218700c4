public import SteleCore

/// An account's erasure (`Specs/retention.md`, "Erasure").
public struct EraseRequest: Sendable {
    /// The subject identifier erased.
    public var subject: String
    /// The request or ticket id.
    public var request: String
    public var reason: String
    /// Who asked: `uid:<n>`, or `stele` for an `account.erased` event the platform appended.
    public var operatorName: String
    /// The `account.erased` entry this erasure carries out; nil to append one first (`stele erase`).
    public var erasureEntry: UInt64?

    public init(subject: String, request: String, reason: String, operatorName: String, erasureEntry: UInt64? = nil) {
        self.subject = subject
        self.request = request
        self.reason = reason
        self.operatorName = operatorName
        self.erasureEntry = erasureEntry
    }
}

/// What an erasure did.
public struct EraseReport: Sendable {
    public let erasureEntry: UInt64
    public let receipt: UInt64
    /// Entries whose fields were redacted now, by class.
    public let erased: [String: Int]
    /// Entries kept until their own deadline because the law requires it, by class.
    public let kept: [String: Int]
    /// Consent entries kept for the proof period, and until when (the `ledger.retention` entry).
    public let proof: (entries: Int, until: Timestamp, entry: UInt64?)
    /// Entries a legal hold kept.
    public let held: Int

    public var json: JSONValue {
        .object([
            "erasure_entry": .integer(Int64(erasureEntry)), "receipt": .integer(Int64(receipt)),
            "erased": .object(erased.mapValues { .integer(Int64($0)) }), "kept": .object(kept.mapValues { .integer(Int64($0)) }),
            "proof": .object([
                "entries": .integer(Int64(proof.entries)), "until": .string(proof.until.description),
                "retention_entry": proof.entry.map { .integer(Int64($0)) } ?? .null,
            ]),
            "held": .integer(Int64(held)),
        ])
    }
}

extension LedgerWriter {
    /// Erases an account in one transaction (`Specs/retention.md`, "Erasure"): for every entry
    /// before the `account.erased` entry whose `subject` or `actor` is the subject, by its class's
    /// rule: every field redacted but another person's `actor` (`erase`); kept until its own
    /// deadline (`keep`); or kept for the consent proof period, recorded by a `ledger.retention`
    /// entry (`proof`). Entries a legal hold covers are left as they are. The `ledger.erased`
    /// receipt commits with it.
    public func erase(_ request: EraseRequest, policy: RetentionPolicy, now: @escaping @Sendable () -> Timestamp = Timestamp.now) throws -> EraseReport {
        guard !request.subject.isEmpty else { throw LedgerError(.invalidEvent, "the subject to erase is empty") }
        if try ledger.recordedPolicy()?.digest != policy.digest { try recordPolicy(policy, operatorName: request.operatorName, now: now) }
        return try perform(now: now) { context in
            let erasureEntry: UInt64
            if let given = request.erasureEntry {
                erasureEntry = given
            } else {
                let definition = EventCatalogue.builtIn.kind("account.erased")!
                erasureEntry = try context.append(Event(
                    kind: "account.erased", retentionClass: definition.retentionClass,
                    retention: EventCatalogue.builtIn.retentionMicroseconds(for: definition), source: "stele", actor: request.operatorName,
                    subject: request.subject, attributes: ["request": .string(request.request)])).seq
            }
            let at = try context.entry(erasureEntry).header.timestamp
            let rules = try context.retentionRules()
            let hash = ledger.subjectHash(request.subject)
            var erased: [UInt64] = [], proof: [UInt64] = []
            var erasedCounts: [String: Int] = [:], kept: [String: Int] = [:]
            var held = 0
            for seq in try context.seqs(about: request.subject, below: erasureEntry) {
                let entry = try context.entry(seq)
                let retentionClass = entry.header.retentionClass
                let rule = policy.erasureRule(for: retentionClass)
                if rule == .keep {
                    kept[retentionClass, default: 0] += 1
                    continue
                }
                // A hold on the entry's own subject (the erased one, or another person) keeps it whole.
                let entrySubject = entry.body.fields["subject"]?.value?.stringValue.map(ledger.subjectHash) ?? hash
                if rules.hold(covering: entrySubject, kind: entry.header.kind, at: at) != nil {
                    held += 1
                    continue
                }
                if rule == .proof {
                    proof.append(seq)
                    continue
                }
                // Another person's record keeps what it needs: a staff member's access to the account
                // keeps who acted; the subject's own actions on another person's record lose only
                // the subject's identifier.
                let subject = entry.body.fields["subject"]?.value
                let names: [String]
                if let subject, subject != .string(request.subject) {
                    names = entry.body.fields["actor"]?.value == .string(request.subject) ? ["actor"] : []
                } else {
                    let othersActor = entry.body.fields["actor"]?.value.map { $0 != .string(request.subject) } ?? false
                    names = entry.body.fields.compactMap { name, field in field.isRedacted || (name == "actor" && othersActor) ? nil : name }
                }
                if try !context.redact(seq: seq, fields: names).isEmpty {
                    erased.append(seq)
                    erasedCounts[retentionClass, default: 0] += 1
                }
            }
            let until = at.adding(microseconds: Int64(policy.consentProofDays) * 86_400_000_000)
            var retentionEntry: UInt64?
            if !proof.isEmpty {
                retentionEntry = try context.append(Event.ledger("ledger.retention", actor: request.operatorName, attributes: [
                        "seqs": SeqSet.ranges(proof), "seqs_sha256": .string(SeqSet.digest(proof)), "until": .string(until.description),
                        "cause": .string("erasure"), "erasure_entry": .integer(Int64(erasureEntry)),
                    ])).seq
            }
            let receipt = try context.append(Event.ledger("ledger.erased", actor: request.operatorName, attributes: [
                    "erasure_entry": .integer(Int64(erasureEntry)), "subject_hash": .string(hash.hex),
                    "erased": SeqSet.ranges(erased), "erased_sha256": .string(SeqSet.digest(erased)),
                    "counts": .object(erasedCounts.mapValues { .integer(Int64($0)) }), "kept": .object(kept.mapValues { .integer(Int64($0)) }),
                    "proof_entries": .integer(Int64(proof.count)), "held": .integer(Int64(held)),
                    "holds": .array(rules.holdsInForce(at: at).map { .integer(Int64($0)) }),
                    "policy": .string(policy.digest), "request": .string(request.request), "reason": .string(request.reason),
                ]))
            return EraseReport(
                erasureEntry: erasureEntry, receipt: receipt.seq, erased: erasedCounts, kept: kept,
                proof: (proof.count, until, retentionEntry), held: held)
        }
    }

    /// `account.erased` entries not yet carried out by a `ledger.erased` receipt, ascending, with
    /// their subject and request: what the daemon erases after the platform records an erasure.
    public func pendingErasures() throws -> [(entry: UInt64, subject: String, request: String)] {
        var done = Set<UInt64>()
        for receipt in try ledger.entries(LedgerQuery(kind: "ledger.erased")) {
            if let seq = receipt.body.fields["erasure_entry"]?.value?.integerValue { done.insert(UInt64(seq)) }
        }
        return try ledger.entries(LedgerQuery(kind: "account.erased")).compactMap { entry in
            guard !done.contains(entry.seq), let subject = entry.body.fields["subject"]?.value?.stringValue else { return nil }
            return (entry.seq, subject, entry.body.fields["request"]?.value?.stringValue ?? "account.erased \(entry.seq)")
        }
    }

    /// Places a legal hold: the entries about `subject` (of `kind`, if given) are kept by prune and
    /// erase until `until`, if given, or until released. Returns the hold's seq, its id.
    public func placeHold(
        subject: String, kind: String?, until: Timestamp?, request: String, reason: String, operatorName: String,
        now: @escaping @Sendable () -> Timestamp = Timestamp.now
    ) throws -> UInt64 {
        var attributes: [String: JSONValue] = [
            "subject_hash": .string(ledger.subjectHash(subject).hex), "request": .string(request), "reason": .string(reason),
        ]
        if let kind { attributes["kind"] = .string(kind) }
        if let until { attributes["until"] = .string(until.description) }
        return try perform(now: now) { context in
            try context.append(Event.ledger("ledger.hold", actor: operatorName, attributes: attributes)).seq
        }
    }

    /// Releases hold `hold`. Entries whose retention ended meanwhile are pruned or erased by the next run.
    public func releaseHold(_ hold: UInt64, request: String, reason: String, operatorName: String, now: @escaping @Sendable () -> Timestamp = Timestamp.now) throws -> UInt64 {
        guard try ledger.retentionRules().holds[hold] != nil else {
            throw LedgerError(.outOfRange, "no hold in force was placed by entry \(hold) (stele hold list shows them)")
        }
        return try perform(now: now) { context in
            try context.append(Event.ledger("ledger.hold_released", actor: operatorName, attributes: ["hold": .integer(Int64(hold)), "request": .string(request), "reason": .string(reason)])).seq
        }
    }
}

extension Ledger {
    /// The holds in force: seq, subject hash, kind and end.
    public func holds() throws -> [(seq: UInt64, subjectHash: String, kind: String?, until: Timestamp?)] {
        try retentionRules().holds.values.sorted { $0.seq < $1.seq }.map { ($0.seq, $0.subject.hex, $0.kind, $0.until) }
    }
}
