import Foundation
import SteleCore
import SteleCrypto
@testable import SteleStore
import SteleTestSupport
import Testing

/// A test-mode store driven through simulated time: events appended at chosen days, prunes at
/// chosen cutoffs, and after each prune every check the retention issue asks for.
final class RetentionLog {
    static let start = Timestamp(rfc3339: "2030-01-01T00:00:00Z")!
    static let day: Int64 = 86_400_000_000

    let directory = TemporaryDirectory()
    let ledger: Ledger
    let writer: LedgerWriter
    /// What the test appended: seq, ts and the retention (µs) it was given.
    private(set) var appended: [(seq: UInt64, ts: Timestamp, retention: Int64?)] = []

    init(testMode: Bool = true) throws {
        var options = Ledger.Options()
        options.createWithOrigin = "stele.test/retention"
        options.createInTestMode = testMode
        options.initialMapSize = 1 << 26
        ledger = try Ledger(path: directory.path, options: options)
        writer = try LedgerWriter(ledger: ledger)
    }

    deinit { try? writer.close() }

    static func at(days: Double) -> Timestamp { start.adding(microseconds: Int64(days * Double(day))) }

    /// Appends `kind` about `subject` at `time`, kept `retentionDays` (nil: the kind's class has no fixed deadline).
    @discardableResult
    func add(_ kind: String, _ subject: String, at time: Timestamp, retentionDays: Int?) throws -> UInt64 {
        let definition = EventCatalogue.builtIn.kind(kind)!
        var attributes: [String: JSONValue] = [:]
        for (name, type) in definition.required {
            switch type {
            case .stringList, .purposeList: attributes[name] = .array([.string("marketing.email")])
            case .oneOf(let options): attributes[name] = .string(options[0])
            case .purpose: attributes[name] = .string("marketing.email")
            default: attributes[name] = .string("value-\(name)")
            }
        }
        let retention = retentionDays.map { Int64($0) * Self.day }
        let event = Event(
            kind: kind, retentionClass: definition.retentionClass, retention: retention, source: "web",
            actor: kind == "admin.action" || kind.hasPrefix("data.") ? "staff:7" : subject, subject: subject, attributes: attributes)
        let receipt = try writer.append([event], now: { time })[0].get()
        appended.append((receipt.seq, try ledger.entry(receipt.seq).header.timestamp, retention))
        return receipt.seq
    }

    /// The seqs the test expects pruned once every prune up to `cutoff` ran: those whose deadline
    /// (`ts` + retention) is at or before it. Computed from what was appended, not by the store.
    func expectedPruned(by cutoff: Timestamp) -> Set<UInt64> {
        Set(appended.compactMap { entry in
            entry.retention.flatMap { entry.ts.adding(microseconds: $0) <= cutoff ? entry.seq : nil }
        })
    }

    /// The seqs whose bodies have redacted fields now.
    func redactedSeqs() throws -> Set<UInt64> {
        Set(try ledger.entries().filter { !$0.body.redactedNames.isEmpty }.map(\.seq))
    }

    func prune(at cutoff: Timestamp, policy: RetentionPolicy = RetentionPolicy(catalogue: .builtIn), batch: Int = 10_000) throws -> PruneReport {
        var request = PruneRequest(cutoff: cutoff, operatorName: "uid:0", request: "T-\(cutoff.microseconds)", reason: "test")
        request.maximumBatch = batch
        return try writer.prune(request, policy: policy)
    }

    /// Everything a prune must leave true: the chain and store verify, every root, inclusion and
    /// consistency proof checks against a tree rebuilt from the headers, the lawfulness check is
    /// clean and nothing is overdue at `now`.
    func checkEverything(now: Timestamp) throws {
        try writer.flushToStore()
        #expect(try ledger.verifyIntegrity().isSound)
        let size = try ledger.size
        let merkle = MerkleHasher()
        let leaves = try (0..<size).map { merkle.leafHash(try ledger.entry($0).headerBytes) }
        let tree = MemoryMerkleTree(leafHashes: leaves).view()
        let verifier = MerkleVerifier()
        let root = try tree.rootHash(size: size)
        for seq in 0..<size {
            let proof = try ledger.inclusionProof(seq: seq, size: size)
            try verifier.verifyInclusion(leafHash: leaves[Int(seq)], index: seq, size: size, proof: proof.proof, root: root)
        }
        for old in 1...size {
            let proof = try ledger.consistencyProof(from: old, to: size)
            #expect(proof.oldRoot == (try tree.rootHash(size: old)))
            try verifier.verifyConsistency(oldSize: old, oldRoot: proof.oldRoot, newSize: size, newRoot: root, proof: proof.proof)
        }
        let report = try ledger.retentionReport(now: now)
        #expect(report.isClean, "\(report.findings.prefix(5).map(\.message))")
    }
}

@Suite("Retention: pruning over simulated years")
struct RetentionTests {
    @Test("a year of mixed traffic pruned at days 364, 365 and 366 with exact boundaries; consent and ledger entries stay")
    func yearOfTraffic() throws {
        let log = try RetentionLog()
        var consent: [UInt64] = []
        for d in 0..<366 {
            let base = RetentionLog.at(days: Double(d))
            try log.add("login.succeeded", "user:\(d % 40)", at: base, retentionDays: 365)
            if d % 2 == 0 { try log.add("data.changed", "user:\(d % 40)", at: base.adding(microseconds: 10), retentionDays: 365) }
            if d % 30 == 0 { try log.add("contact.submitted", "user:\(d % 40)", at: base.adding(microseconds: 20), retentionDays: 730) }
            if d % 10 == 0 { consent.append(try log.add("consent.granted", "user:\(d % 40)", at: base.adding(microseconds: 30), retentionDays: nil)) }
        }
        // Day 0's first login (seq 0, ts exactly the start) is due exactly 365 days later.
        let due = RetentionLog.at(days: 365)
        for cutoff in [RetentionLog.at(days: 364), due.adding(microseconds: -1), due, due.adding(microseconds: 1), RetentionLog.at(days: 366)] {
            let before = try log.redactedSeqs()
            let report = try log.prune(at: cutoff)
            let after = try log.redactedSeqs()
            #expect(after == log.expectedPruned(by: cutoff), "cutoff \(cutoff)")
            #expect(report.pruned == after.count - before.count)
            try log.checkEverything(now: cutoff)
        }
        #expect(try log.redactedSeqs().contains(0))
        #expect(log.expectedPruned(by: due.adding(microseconds: -1)).isEmpty)
        #expect(log.expectedPruned(by: due) == [0])
        // A second run at the same cutoff prunes nothing and appends nothing.
        let size = try log.ledger.size
        #expect(try log.prune(at: RetentionLog.at(days: 366)).pruned == 0)
        #expect(try log.ledger.size == size)
        // Consent entries (no fixed deadline) are untouched years later.
        _ = try log.prune(at: RetentionLog.at(days: 3_000))
        for seq in consent { #expect(try log.ledger.entry(seq).body.redactedNames.isEmpty) }
        #expect(try log.redactedSeqs() == log.expectedPruned(by: RetentionLog.at(days: 3_000)))
        try log.checkEverything(now: RetentionLog.at(days: 3_000))
    }

    @Test("pruned entries lose every value, salt and index record; receipts bind the exact set, in batches")
    func receiptsAndIndexes() throws {
        let log = try RetentionLog()
        for i in 0..<40 { try log.add("login.succeeded", "user:\(i % 4)", at: RetentionLog.at(days: Double(i) / 10), retentionDays: 365) }
        let report = try log.prune(at: RetentionLog.at(days: 370), batch: 7)
        #expect(report.pruned == 40)
        #expect(report.receipts.count == 6)  // 7+7+7+7+7+5
        #expect(report.policy != nil)
        var covered: [UInt64] = []
        for r in report.receipts {
            let receipt = try log.ledger.entry(r)
            #expect(receipt.header.kind == "ledger.pruned")
            #expect(receipt.header.timestamp >= RetentionLog.at(days: 370))
            let body = receipt.body.fields.compactMapValues(\.value)
            let seqs = try #require(body["seqs"].flatMap(SeqSet.seqs))
            #expect(body["seqs_sha256"]?.stringValue == SeqSet.digest(seqs))
            #expect(body["policy"]?.stringValue == RetentionPolicy(catalogue: .builtIn).digest)
            covered += seqs
        }
        #expect(covered == Array(0..<40))
        for seq in UInt64(0)..<40 {
            let entry = try log.ledger.entry(seq)
            #expect(entry.body.fields.values.allSatisfy { $0.isRedacted })
        }
        #expect(try log.ledger.entries(LedgerQuery(subject: "user:1")).isEmpty)
        #expect(try log.ledger.entries(LedgerQuery(kind: "login.succeeded")).count == 40)
        try log.checkEverything(now: RetentionLog.at(days: 370))
    }

    @Test("a prune whose receipt completes an index block seals it without the pruned entries' records")
    func receiptSealsBlock() throws {
        let log = try RetentionLog()
        // 1022 entries; the policy entry is 1022 and the receipt 1023, the last of block 0.
        for i in 0..<1022 { try log.add("login.succeeded", "user:\(i % 5)", at: RetentionLog.at(days: Double(i) / 1000), retentionDays: i < 500 ? 365 : 3650) }
        let report = try log.prune(at: RetentionLog.at(days: 367))
        #expect(report.receipts == [1023] && report.pruned == 500)
        #expect(try log.ledger.size == 1024)
        #expect(try log.ledger.verifyIntegrity().isSound)
        #expect(try log.ledger.entries(LedgerQuery(subject: "user:1")).count == (500..<1022).filter { $0 % 5 == 1 }.count)
    }

    @Test("billing is kept 7 years after the account's last transaction, not its first")
    func billingFromLastTransaction() throws {
        let log = try RetentionLog()
        let first = try log.add("billing.transaction", "user:1", at: RetentionLog.at(days: 0), retentionDays: 2557)
        let alone = try log.add("billing.transaction", "user:2", at: RetentionLog.at(days: 0.5), retentionDays: 2557)
        let last = try log.add("billing.transaction", "user:1", at: RetentionLog.at(days: 1000), retentionDays: 2557)
        let sevenYears = RetentionLog.at(days: 2558)
        let report = try log.prune(at: sevenYears)
        #expect(report.pruned == 1)
        #expect(try log.ledger.entry(alone).body.fields.values.allSatisfy { $0.isRedacted })
        #expect(try log.ledger.entry(first).body.redactedNames.isEmpty)
        // The move is recorded: the first transaction's deadline is now the last one's.
        let moves = try log.ledger.entries(LedgerQuery(kind: "ledger.retention"))
        #expect(moves.count == 1)
        #expect(moves.first?.body.fields["seqs"]?.value.flatMap(SeqSet.seqs) == [first])
        let lastDeadline = try #require(try log.ledger.entry(last).header.retainUntil)
        #expect(moves.first?.body.fields["until"]?.value == .string(lastDeadline.description))
        try log.checkEverything(now: sevenYears)
        _ = try log.prune(at: lastDeadline.adding(microseconds: -1))
        #expect(try log.ledger.entry(first).body.redactedNames.isEmpty)
        _ = try log.prune(at: lastDeadline)
        #expect(try log.ledger.entry(first).body.fields.values.allSatisfy { $0.isRedacted })
        #expect(try log.ledger.entry(last).body.fields.values.allSatisfy { $0.isRedacted })
        try log.checkEverything(now: lastDeadline)
    }

    @Test("verify lists every span longer than the quiet period with no entry, and nothing else")
    func quietGaps() throws {
        let log = try RetentionLog()
        for day in [0.0, 1, 2, 7.5, 8, 8.5, 12] { try log.add("login.succeeded", "user:1", at: RetentionLog.at(days: day), retentionDays: 365) }
        try log.writer.flushToStore()
        let report = try log.ledger.verifyIntegrity(quietPeriod: 2 * RetentionLog.day)
        #expect(report.isSound)
        #expect(report.gaps.map(\.after) == [2, 5])
        #expect(report.gaps.map(\.microseconds) == [Int64(5.5 * Double(RetentionLog.day)), Int64(3.5 * Double(RetentionLog.day))])
        #expect(try log.ledger.verifyIntegrity().gaps.isEmpty)
    }

    @Test("a cutoff later than the clock is refused on a store not created in test mode")
    func futureCutoffRefused() throws {
        let log = try RetentionLog(testMode: false)
        try log.add("login.succeeded", "user:1", at: .now(), retentionDays: 365)
        for ahead in [400 * RetentionLog.day, 60_000_000] {
            #expect { try log.prune(at: Timestamp.now().adding(microseconds: ahead)) } throws: { ($0 as? LedgerError)?.code == .futureTime }
        }
        #expect(try log.prune(at: .now()).pruned == 0)
        #expect(try log.redactedSeqs().isEmpty)
    }

    @Test("a policy change mid-year: entries keep the deadline they were given, and receipts cite the policy in force")
    func policyChange() throws {
        let log = try RetentionLog()
        let yearly = RetentionPolicy(catalogue: .builtIn)
        var shorter = yearly.classes
        shorter["security"] = 180
        let halfYearly = RetentionPolicy(classes: shorter)
        for d in 0..<180 { try log.add("login.succeeded", "user:\(d % 9)", at: RetentionLog.at(days: Double(d)), retentionDays: 365) }
        let first = try log.prune(at: RetentionLog.at(days: 180), policy: yearly)
        #expect(first.pruned == 0 && first.receipts.isEmpty)
        for d in 180..<365 { try log.add("login.succeeded", "user:\(d % 9)", at: RetentionLog.at(days: Double(d)), retentionDays: 180) }
        for cutoff in [400.0, 500, 545, 600].map(RetentionLog.at(days:)) {
            let report = try log.prune(at: cutoff, policy: halfYearly)
            #expect(try log.redactedSeqs() == log.expectedPruned(by: cutoff))
            for r in report.receipts {
                #expect(try log.ledger.entry(r).body.fields["policy"]?.value == .string(halfYearly.digest))
            }
            try log.checkEverything(now: cutoff)
        }
        #expect(try log.ledger.recordedPolicy()?.digest == halfYearly.digest)
        #expect(try log.ledger.entries(LedgerQuery(kind: "ledger.policy")).count == 1)
    }

    @Test("the report finds an entry kept past its retention, and a redaction no receipt explains")
    func reportFindings() throws {
        let log = try RetentionLog()
        for i in 0..<5 { try log.add("login.succeeded", "user:\(i)", at: RetentionLog.at(days: Double(i)), retentionDays: 365) }
        let overdue = try log.ledger.retentionReport(now: RetentionLog.at(days: 367))
        #expect(Set(overdue.findings.map(\.seq)) == [0, 1, 2])
        #expect(overdue.findings.allSatisfy { $0.kind == .overdue })
        #expect(try log.ledger.retentionReport(now: RetentionLog.at(days: 300)).isClean)
        // A redaction outside any prune (no receipt) is unexplained.
        _ = try log.writer.perform { try $0.redact(seq: 4, fields: ["ip", "subject"]) }
        let unexplained = try log.ledger.retentionReport(now: RetentionLog.at(days: 300))
        #expect(unexplained.findings.map(\.kind) == [.unexplainedRedaction])
        #expect(unexplained.findings.first?.seq == 4)
    }

    @Test("a deletion request open for more than 30 days is reported")
    func erasureDeadline() throws {
        let log = try RetentionLog()
        let definition = EventCatalogue.builtIn.kind("rights.requested")!
        for (request, day) in [("r1", 0.0), ("r2", 1.0)] {
            _ = try log.writer.append([Event(
                kind: "rights.requested", retentionClass: definition.retentionClass, retention: 730 * RetentionLog.day, source: "web",
                subject: "user:\(request)", attributes: ["request": .string(request), "right": .string("deletion")])], now: { RetentionLog.at(days: day) })
        }
        let done = EventCatalogue.builtIn.kind("rights.completed")!
        _ = try log.writer.append([Event(
            kind: "rights.completed", retentionClass: done.retentionClass, retention: 730 * RetentionLog.day, source: "web",
            subject: "user:r2", attributes: ["request": .string("r2")])], now: { RetentionLog.at(days: 20) })
        try log.writer.flushToStore()
        #expect(try log.ledger.retentionReport(now: RetentionLog.at(days: 29.9)).isClean)
        let late = try log.ledger.retentionReport(now: RetentionLog.at(days: 31))
        #expect(late.findings.map(\.kind) == [.erasureOverdue])
        #expect(late.findings.first?.seq == 0)
    }
}

@Suite("Retention: receipt formats")
struct SeqSetTests {
    @Test("the seqs of a receipt as runs and their digest (the vector in Specs/retention.md)")
    func vector() {
        let seqs = Array(UInt64(0)...19)
        #expect(SeqSet.ranges(seqs) == .array([.array([.integer(0), .integer(19)])]))
        #expect(SeqSet.digest(seqs) == "c04e54ec075b791a2c8c40edba33721ece2226a55ed6271d3de050c744375348")
        let gappy: [UInt64] = [3, 4, 5, 9, 11, 12]
        let runs = SeqSet.ranges(gappy)
        #expect(runs == .array([.array([.integer(3), .integer(5)]), .array([.integer(9), .integer(9)]), .array([.integer(11), .integer(12)])]))
        #expect(SeqSet.seqs(runs) == gappy)
        #expect(SeqSet.seqs(.array([.array([.integer(5), .integer(3)])])) == nil)
        #expect(SeqSet.ranges([]) == .array([]))
    }
}

@Suite("Continuity")
struct ContinuityTests {
    @Test("a start not preceded by a recorded stop is an unclean stop, each listed by the start that follows it")
    func uncleanStops() throws {
        let log = try RetentionLog()
        func record(_ kind: String, day: Double) throws -> UInt64 {
            try log.writer.perform(now: { RetentionLog.at(days: day) }) { context in
                try context.append(Event(kind: kind, retentionClass: "ledger", retention: nil, source: "stele", attributes: ["version": .string("test")])).seq
            }
        }
        _ = try record("ledger.started", day: 0)
        _ = try record("ledger.stopped", day: 1)
        _ = try record("ledger.started", day: 2)
        let crashedBefore = try record("ledger.started", day: 3)
        _ = try record("ledger.stopped", day: 4)
        let again = try record("ledger.started", day: 5)
        let unclean = try log.ledger.uncleanStops()
        #expect(unclean.map(\.start) == [crashedBefore])
        #expect(!unclean.contains { $0.start == again })
    }
}
