import Foundation
import SteleConsent
import SteleCore
import SteleCrypto
import SteleLMDB
@testable import SteleStore
import SteleTestSupport
import Testing

/// The consent audit (`Specs/consent.md`, "The audit"): each violation planted among clean traffic
/// is found exactly, and the clean traffic yields nothing.
@Suite("Consent audit")
struct ConsentAuditTests {
    /// Clean traffic: subjects who consent under the current notice, are processed while allowed,
    /// and whose withdrawals downstream systems enforce within the hour.
    static func cleanTraffic(_ log: ConsentLog, subjects: Int, from hours: Double) throws {
        for i in 0..<subjects {
            let subject = "clean\(i)"
            let t = hours + Double(i) * 0.01
            try log.grant(subject, "marketing.email", notice: "n1", hours: t)
            try log.add("processing.performed", subject, ["purpose": .string("marketing.email"), "channel": .string("newsletter")], hours: t + 0.001)
            // Processing for a purpose that is not consent-based is not audited.
            try log.add("processing.performed", subject, ["purpose": .string("billing")], hours: t + 0.002)
            if i % 3 == 0 {
                try log.withdraw(subject, "marketing.email", hours: t + 0.003)
                try log.add("consent.enforced", subject, ["purpose": .string("marketing.email"), "system": .string("mailer")], hours: t + 0.004)
            }
        }
    }

    func audit(_ log: ConsentLog, since: Timestamp? = nil, until: Timestamp? = nil) throws -> [ConsentFinding] {
        var audit = ConsentAudit(policy: log.policy, since: since, until: until)
        try log.ledger.forEachConsentAuditEvent { audit.add($0) }
        return audit.finish(now: ConsentLog.at(hours: 1_000))
    }

    @Test("clean traffic has no finding")
    func cleanTrafficIsClean() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email", "cookies.analytics"], hours: 0)
        try Self.cleanTraffic(log, subjects: 60, from: 1)
        #expect(try audit(log).isEmpty)
    }

    @Test("every violation type planted among clean traffic is found exactly, with the seqs that prove it")
    func plantedViolationsAreFoundExactly() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email", "cookies.analytics"], hours: 0)
        try Self.cleanTraffic(log, subjects: 30, from: 1)
        var planted: Set<[String]> = []
        func plant(_ kind: ConsentFinding.Kind, _ seq: UInt64) { planted.insert([kind.rawValue, String(seq)]) }

        // Processing a subject never asked.
        plant(.processingWithoutConsent, try log.add("processing.performed", "never", ["purpose": .string("marketing.email")], hours: 2).seq)
        // Processing after a withdrawal (enforced, but processed anyway).
        try log.grant("w1", "marketing.email", hours: 2.1)
        let withdrawal = try log.withdraw("w1", "marketing.email", hours: 2.2)
        try log.add("consent.enforced", "w1", ["purpose": .string("marketing.email"), "system": .string("mailer")], hours: 2.25)
        let afterWithdrawal = try log.add("processing.performed", "w1", ["purpose": .string("marketing.email")], hours: 2.3)
        plant(.processingWithoutConsent, afterWithdrawal.seq)
        // Processing after expiry.
        try log.grant("x1", "cookies.analytics", hours: 3, extra: ["expires": .string(ConsentLog.at(hours: 3.5).description)])
        plant(.processingAfterExpiry, try log.add("processing.performed", "x1", ["purpose": .string("cookies.analytics")], hours: 4).seq)
        // Processing after an objection.
        try log.grant("o1", "marketing.email", hours: 4.1)
        try log.add("rights.requested", "o1", ["request": .string("ro"), "right": .string("objection")], hours: 4.2)
        plant(.processingAfterObjection, try log.add("processing.performed", "o1", ["purpose": .string("marketing.email")], hours: 4.3).seq)
        // Processing during a restriction.
        try log.grant("r1", "cookies.analytics", hours: 5)
        try log.add("rights.requested", "r1", ["request": .string("rr"), "right": .string("restriction")], hours: 5.1)
        plant(.processingDuringRestriction, try log.add("processing.performed", "r1", ["purpose": .string("cookies.analytics")], hours: 5.2).seq)
        // A minor's own grant.
        try log.add("subject.age_asserted", "kid", ["band": .string("under_13"), "method": .string("self-declared"), "jurisdiction": .string("US")], hours: 6)
        plant(.minorWithoutGuardian, try log.grant("kid", "cookies.analytics", hours: 6.1).seq)
        // A grant naming a notice never published.
        plant(.unknownNotice, try log.grant("u9", "cookies.analytics", notice: "n-missing", hours: 6.2).seq)
        // A grant under a superseded notice, for a purpose that requires re-consent.
        try log.notice("n2", ["marketing.email"], hours: 7)
        plant(.staleNotice, try log.grant("late", "marketing.email", notice: "n1", hours: 7.1).seq)
        // A withdrawal no downstream system enforced.
        try log.grant("w2", "marketing.email", notice: "n2", hours: 8)
        plant(.withdrawalNotEnforced, try log.withdraw("w2", "marketing.email", hours: 8.1).seq)
        // More clean traffic after the violations, under the new notice.
        for i in 0..<10 {
            try log.grant("after\(i)", "marketing.email", notice: "n2", hours: 9 + Double(i) * 0.01)
            try log.add("processing.performed", "after\(i)", ["purpose": .string("marketing.email")], hours: 9.005 + Double(i) * 0.01)
        }

        let findings = try audit(log)
        #expect(Set(findings.map { [$0.kind.rawValue, String($0.seq)] }) == planted)
        #expect(findings.count == planted.count)
        let processed = try #require(findings.first { $0.seq == afterWithdrawal.seq })
        #expect(processed.status == .withdrawn && processed.evidence == [withdrawal.seq, afterWithdrawal.seq] && processed.subject == "w1")

        // A time range reports only findings about entries inside it.
        let ranged = try audit(log, since: ConsentLog.at(hours: 4), until: ConsentLog.at(hours: 6))
        #expect(Set(ranged.map(\.kind)) == [.processingAfterExpiry, .processingAfterObjection, .processingDuringRestriction])
    }

    @Test("a withdrawal is a finding only once its enforcement delay has passed")
    func enforcementDelay() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email"], hours: 0)
        try log.grant("u1", "marketing.email", hours: 1)
        let withdrawal = try log.withdraw("u1", "marketing.email", hours: 2)
        var audit = ConsentAudit(policy: log.policy)
        try log.ledger.forEachConsentAuditEvent { audit.add($0) }
        #expect(audit.finish(now: ConsentLog.at(hours: 25)).isEmpty)
        var later = ConsentAudit(policy: log.policy)
        try log.ledger.forEachConsentAuditEvent { later.add($0) }
        #expect(later.finish(now: ConsentLog.at(hours: 26.01)).map(\.seq) == [withdrawal.seq])
    }
}

@Suite("Consent state on disk")
struct ConsentStateStorageTests {
    @Test("verify rebuilds the consent state from the entries and reports a record altered on disk")
    func verifyReportsAlteredState() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email"], hours: 0)
        try log.grant("victim", "marketing.email", hours: 1)
        try log.withdraw("victim", "marketing.email", hours: 2)
        try log.grant("other", "marketing.email", hours: 3)
        try log.writer.close()
        #expect(try log.ledger.verifyIntegrity().isSound)
        #expect(try log.ledger.consentState(subject: "victim")?.purposes["marketing.email"]?.decision == .withdrawn)

        // Someone with write access to the store file turns the withdrawal back into a grant.
        let environment = try Environment(path: log.directory.path, maxDatabases: 8, mapSize: 1 << 26)
        let db = try environment.openDatabase("consent", create: false)
        let key = ConsentTable.stateKey(LedgerKeys.identifierHash(indexKey: log.ledger.indexKey, role: "subject", identifier: "victim", sha: .init()))
        try environment.withWriteTransaction { txn in
            let stored = try #require(try txn.get(db, key: key))
            let forged = String(decoding: stored, as: UTF8.self).replacingOccurrences(of: "\"withdrawn\"", with: "\"granted\"")
            try txn.put(db, key: key, value: Array(forged.utf8))
        }
        let reopened = try Fixture.readOnly(log.directory)
        #expect(try reopened.consentState(subject: "victim")?.purposes["marketing.email"]?.decision == .granted)
        let report = try reopened.verifyIntegrity()
        #expect(!report.isSound)
        #expect(report.problems.contains { $0.message.contains("consent state") && $0.message.contains("differs from a rebuild") })

        // A record injected for a subject with no entries is reported too.
        try environment.withWriteTransaction { txn in
            try txn.put(db, key: [ConsentTable.stateTag] + [UInt8](repeating: 7, count: 16), value: Array(#"{"subject":"ghost"}"#.utf8))
        }
        #expect(try Fixture.readOnly(log.directory).verifyIntegrity().problems.contains { $0.message.contains("not derived from any entry") })
    }

    @Test("a redaction changes the consent state as the entries now read, and verify stays sound")
    func redactionRefolds() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email"], hours: 0)
        let first = try log.grant("u1", "marketing.email", hours: 1)
        let analytics = try log.grant("u1", "cookies.analytics", hours: 2)
        let notice = try log.add("notice.published", nil, [
            "notice": .string("n2"), "sha256": .string("cd"), "purposes": .array([.string("marketing.email")]), "language": .string("de"),
        ], hours: 3)
        #expect(try log.ledger.consentState(subject: "u1")?.purposes.count == 2)
        // The subject of the email grant goes: the grant leaves u1's history and state.
        _ = try log.writer.perform { try $0.redact(seq: first.seq, fields: ["subject"]) }
        let state = try #require(try log.ledger.consentState(subject: "u1"))
        #expect(state.purposes.keys.sorted() == ["cookies.analytics"])
        #expect(try log.ledger.consentHistory(subject: "u1").map(\.seq) == [analytics.seq])
        // The purpose of the other grant goes: the entry stays in the history and decides nothing.
        _ = try log.writer.perform { try $0.redact(seq: analytics.seq, fields: ["purpose"]) }
        #expect(try log.ledger.consentState(subject: "u1") == nil)
        #expect(try log.ledger.consentHistory(subject: "u1").map(\.seq) == [analytics.seq])
        // A redacted notice is no longer known.
        _ = try log.writer.perform { try $0.redact(seq: notice.seq, fields: ["purposes"]) }
        #expect(try log.ledger.consentNotices().notice("n2") == nil)
        #expect(try log.ledger.verifyIntegrity().isSound)
    }

    @Test("a store written before consent state gets it built from its entries when a writer opens it")
    func olderStoreIsBuilt() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email"], hours: 0)
        try log.grant("u1", "marketing.email", hours: 1)
        try log.add("subject.age_asserted", "u2", ["band": .string("18_plus"), "method": .string("id"), "jurisdiction": .string("EU")], hours: 2)
        try log.writer.close()
        let expected = try log.ledger.consentState(subject: "u1")
        // Remove the consent database and its marker, as in a store from before it existed.
        let environment = try Environment(path: log.directory.path, maxDatabases: 8, mapSize: 1 << 26)
        let db = try environment.openDatabase("consent", create: false)
        let meta = try environment.openDatabase("meta", create: false)
        try environment.withWriteTransaction { txn in
            try txn.drop(db)
            _ = try txn.delete(meta, key: LedgerKeys.consentStateKey)
        }
        let readOnly = try Fixture.readOnly(log.directory)
        #expect(throws: LedgerError.self) { try readOnly.consentState(subject: "u1") }
        #expect(try readOnly.verifyIntegrity().isSound)
        let writable = try Fixture.create(log.directory)
        #expect(try writable.consentState(subject: "u1") == expected)
        #expect(try writable.consentState(subject: "u2")?.age?.band == "18_plus")
        #expect(try writable.consentNotices().notice("n1") != nil)
        #expect(try writable.verifyIntegrity().isSound)
    }
}
