import Foundation
import SteleCore
@testable import SteleStore
import SteleTestSupport
import Testing

/// Account erasure and legal holds over simulated time (`Specs/retention.md`).
@Suite("Retention: erasure and legal holds")
struct ErasureTests {
    /// One subject's life across every class, beside another person's entries.
    static func account(_ log: RetentionLog, _ subject: String, day: Double) throws -> [String: UInt64] {
        let at = RetentionLog.at(days: day)
        var seqs: [String: UInt64] = [:]
        seqs["login"] = try log.add("login.succeeded", subject, at: at, retentionDays: 365)
        seqs["admin"] = try log.add("admin.action", subject, at: at.adding(microseconds: 1), retentionDays: 365)
        seqs["contact"] = try log.add("contact.submitted", subject, at: at.adding(microseconds: 2), retentionDays: 730)
        seqs["consent"] = try log.add("consent.granted", subject, at: at.adding(microseconds: 3), retentionDays: nil)
        seqs["billing"] = try log.add("billing.transaction", subject, at: at.adding(microseconds: 4), retentionDays: 2557)
        seqs["rights"] = try log.add("rights.requested", subject, at: at.adding(microseconds: 5), retentionDays: 730)
        return seqs
    }

    func erase(_ log: RetentionLog, _ subject: String, at time: Timestamp) throws -> EraseReport {
        try log.writer.erase(
            EraseRequest(subject: subject, request: "DSR-\(subject)", reason: "verified request", operatorName: "uid:0"),
            policy: RetentionPolicy(catalogue: .builtIn), now: { time })
    }

    @Test("erasure redacts by class: security and audit now (a staff member keeps who acted), consent after its proof period, billing and rights kept by law")
    func erasureByClass() throws {
        let log = try RetentionLog()
        let mine = try Self.account(log, "user:1", day: 0)
        let other = try Self.account(log, "user:2", day: 0.5)
        let erasedAt = RetentionLog.at(days: 10)
        let report = try erase(log, "user:1", at: erasedAt)
        #expect(report.erased == ["security": 1, "audit": 1, "contact": 1])
        #expect(report.kept == ["billing": 1, "rights": 1])
        #expect(report.proof.entries == 1 && report.held == 0)
        // The proof period runs from the account.erased entry's own ts.
        let erasure = try log.ledger.entry(report.erasureEntry)
        #expect(erasure.header.kind == "account.erased" && erasure.header.timestamp >= erasedAt)
        let proofEnd = erasure.header.timestamp.adding(microseconds: 1095 * RetentionLog.day)
        #expect(report.proof.until == proofEnd)

        let login = try log.ledger.entry(mine["login"]!)
        #expect(login.body.fields.values.allSatisfy { $0.isRedacted })
        let admin = try log.ledger.entry(mine["admin"]!)
        #expect(admin.body.fields["actor"]?.value == .string("staff:7"))
        #expect(admin.body.fields["subject"]?.isRedacted == true)
        #expect(try log.ledger.entry(mine["consent"]!).body.redactedNames.isEmpty)
        #expect(try log.ledger.entry(mine["billing"]!).body.redactedNames.isEmpty)
        // Nothing of the other person changed; nothing of the subject is listed but what the law keeps.
        for seq in other.values { #expect(try log.ledger.entry(seq).body.redactedNames.isEmpty) }
        let listed = Set(try log.ledger.entries(LedgerQuery(subject: "user:1")).map(\.seq))
        #expect(listed == [mine["consent"]!, mine["billing"]!, mine["rights"]!, report.erasureEntry])
        #expect(try log.ledger.consentState(subject: "user:1") == nil)
        try log.checkEverything(now: erasedAt)

        // The consent entry goes once its proof period ends; billing only at its own deadline.
        _ = try log.prune(at: proofEnd.adding(microseconds: -1))
        #expect(try log.ledger.entry(mine["consent"]!).body.redactedNames.isEmpty)
        _ = try log.prune(at: proofEnd)
        #expect(try log.ledger.entry(mine["consent"]!).body.fields.values.allSatisfy { $0.isRedacted })
        #expect(try log.ledger.entry(mine["billing"]!).body.redactedNames.isEmpty)
        try log.checkEverything(now: proofEnd)
        let seventhYear = RetentionLog.at(days: 2558)
        _ = try log.prune(at: seventhYear)
        #expect(try log.ledger.entry(mine["billing"]!).body.fields.values.allSatisfy { $0.isRedacted })
        try log.checkEverything(now: seventhYear)
    }

    @Test("a hold keeps a subject's entries from erasure and from pruning; once released, the next prune removes what is past its retention")
    func holds() throws {
        let log = try RetentionLog()
        let held = try Self.account(log, "user:3", day: 0)
        let free = try Self.account(log, "user:4", day: 0)
        let hold = try log.writer.placeHold(subject: "user:3", kind: nil, until: nil, request: "COURT-1", reason: "litigation", operatorName: "uid:0", now: { RetentionLog.at(days: 1) })
        #expect(try log.ledger.holds().map(\.seq) == [hold])

        let erased = try erase(log, "user:3", at: RetentionLog.at(days: 2))
        #expect(erased.erased.isEmpty && erased.held == 4)  // login, admin, contact, consent; billing and rights are kept anyway
        #expect(try log.ledger.entry(held["login"]!).body.redactedNames.isEmpty)

        let afterYear = RetentionLog.at(days: 400)
        let pruned = try log.prune(at: afterYear)
        #expect(pruned.held == 2)  // user:3's login and admin action
        #expect(try log.ledger.entry(held["admin"]!).body.redactedNames.isEmpty)
        #expect(try log.ledger.entry(free["admin"]!).body.fields.values.allSatisfy { $0.isRedacted })
        for r in pruned.receipts { #expect(try log.ledger.entry(r).body.fields["holds"]?.value == .array([.integer(Int64(hold))])) }
        try log.checkEverything(now: afterYear)

        _ = try log.writer.releaseHold(hold, request: "COURT-1", reason: "case closed", operatorName: "uid:0", now: { RetentionLog.at(days: 401) })
        #expect(try log.ledger.holds().isEmpty)
        let released = try log.prune(at: RetentionLog.at(days: 402))
        #expect(released.pruned == 2 && released.held == 0)
        #expect(try log.ledger.entry(held["login"]!).body.fields.values.allSatisfy { $0.isRedacted })
        try log.checkEverything(now: RetentionLog.at(days: 402))
    }

    @Test("a hold limited to one kind and ending at a time keeps only those entries, only until then")
    func kindAndTimeLimitedHold() throws {
        let log = try RetentionLog()
        let seqs = try Self.account(log, "user:5", day: 0)
        _ = try log.writer.placeHold(
            subject: "user:5", kind: "admin.action", until: RetentionLog.at(days: 500), request: "AUDIT-2", reason: "internal audit",
            operatorName: "uid:0", now: { RetentionLog.at(days: 1) })
        _ = try log.prune(at: RetentionLog.at(days: 400))
        #expect(try log.ledger.entry(seqs["admin"]!).body.redactedNames.isEmpty)
        #expect(try log.ledger.entry(seqs["login"]!).body.fields.values.allSatisfy { $0.isRedacted })
        try log.checkEverything(now: RetentionLog.at(days: 400))
        _ = try log.prune(at: RetentionLog.at(days: 500))
        #expect(try log.ledger.entry(seqs["admin"]!).body.fields.values.allSatisfy { $0.isRedacted })
        try log.checkEverything(now: RetentionLog.at(days: 500))
    }

    @Test("an account.erased the platform appended is found pending and carried out once")
    func pendingErasure() throws {
        let log = try RetentionLog()
        let seqs = try Self.account(log, "user:6", day: 0)
        let definition = EventCatalogue.builtIn.kind("account.erased")!
        _ = try log.writer.append([Event(
            kind: "account.erased", retentionClass: definition.retentionClass, retention: 730 * RetentionLog.day, source: "web",
            subject: "user:6", attributes: ["request": .string("R-6")])], now: { RetentionLog.at(days: 3) })
        let pending = try log.writer.pendingErasures()
        #expect(pending.map(\.subject) == ["user:6"] && pending.map(\.request) == ["R-6"])
        let report = try log.writer.erase(
            EraseRequest(subject: "user:6", request: "R-6", reason: "account.erased", operatorName: "stele", erasureEntry: pending[0].entry),
            policy: RetentionPolicy(catalogue: .builtIn), now: { RetentionLog.at(days: 3.1) })
        #expect(report.erasureEntry == pending[0].entry)
        #expect(try log.writer.pendingErasures().isEmpty)
        #expect(try log.ledger.entry(seqs["login"]!).body.fields.values.allSatisfy { $0.isRedacted })
        try log.checkEverything(now: RetentionLog.at(days: 3.1))
    }
}
