import SteleConsent
import SteleCore
@testable import SteleStore
import Testing

/// Scenarios with known answers (`Specs/consent.md`, "Folding"), each asked of the store both as
/// the materialized current state and as a fold at a past moment.
@Suite("Consent scenarios")
struct ConsentScenarioTests {
    @Test("grant, withdraw, and a new grant under a new notice; an old grant goes stale when the notice changes")
    func grantWithdrawRegrant() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email"], hours: 0)
        let grant = try log.grant("u1", "marketing.email", hours: 1)
        let other = try log.grant("u2", "marketing.email", hours: 1.5)
        let withdrawal = try log.withdraw("u1", "marketing.email", hours: 2)
        try log.notice("n2", ["marketing.email"], hours: 3)
        let regrant = try log.grant("u1", "marketing.email", notice: "n2", hours: 4)

        #expect(try log.answer("u1", "marketing.email", hours: 0.5).status == .none)
        let first = try log.answer("u1", "marketing.email", hours: 1.5)
        #expect(first.allowed && first.seq == grant.seq && first.notice == "n1" && first.since == grant.ts)
        let withdrawn = try log.answer("u1", "marketing.email", hours: 2.5)
        #expect(!withdrawn.allowed && withdrawn.status == .withdrawn && withdrawn.seq == withdrawal.seq)
        let again = try log.answer("u1", "marketing.email", hours: 5)
        #expect(again.allowed && again.notice == "n2" && again.seq == regrant.seq)
        #expect(try log.current("u1", "marketing.email", at: ConsentLog.at(hours: 5)) == again)

        // u2's grant cites n1, which n2 superseded at hour 3: it no longer counts for a purpose that requires re-consent.
        #expect(try log.answer("u2", "marketing.email", hours: 2.9).allowed)
        let stale = try log.answer("u2", "marketing.email", hours: 3.1)
        #expect(stale.status == .stale && stale.evidence.contains(other.seq))
        // A purpose without re-consent keeps counting across notices.
        log.policy = ConsentPolicy(purposes: [ConsentPolicy.Purpose("marketing.email", description: "e", reconsentOnNewNotice: false)])
        #expect(try log.answer("u2", "marketing.email", hours: 3.1).allowed)
    }

    @Test("answers exactly at, 1 µs before and 1 µs after each event's ts")
    func pointInTimeBoundaries() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email"], hours: 0)
        let events = [
            (try log.grant("u1", "marketing.email", hours: 1), ConsentAnswer.Status.granted),
            (try log.withdraw("u1", "marketing.email", hours: 2), .withdrawn),
            (try log.grant("u1", "marketing.email", hours: 3), .granted),
            (try log.add("consent.refused", "u1", ["purpose": .string("marketing.email"), "notice": .string("n1"), "method": .string("banner")], hours: 4), .refused),
        ]
        var before = ConsentAnswer.Status.none
        for (event, status) in events {
            #expect(try log.answer("u1", "marketing.email", at: event.ts.adding(microseconds: -1)).status == before)
            let at = try log.answer("u1", "marketing.email", at: event.ts)
            #expect(at.status == status && at.seq == event.seq && at.since == event.ts)
            #expect(try log.answer("u1", "marketing.email", at: event.ts.adding(microseconds: 1)).status == status)
            before = status
        }
    }

    @Test("a refusal is recorded like a grant and allows nothing; a purpose never asked about is none")
    func refusalAndNeverAsked() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["cookies.advertising"], hours: 0)
        let refusal = try log.add("consent.refused", "u1", ["purpose": .string("cookies.advertising"), "notice": .string("n1"), "method": .string("banner")], hours: 1)
        let answer = try log.answer("u1", "cookies.advertising", hours: 2)
        #expect(answer.status == .refused && !answer.allowed && answer.seq == refusal.seq && answer.notice == "n1")
        let never = try log.answer("u1", "cookies.analytics", hours: 2)
        #expect(never.status == .none && !never.allowed && never.seq == nil && never.evidence.isEmpty)
        #expect(try log.answer("nobody", "marketing.email", hours: 2).status == .none)
    }

    @Test("a grant lapses at its expiry with no event")
    func expiry() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["cookies.analytics"], hours: 0)
        let expires = ConsentLog.at(hours: 5)
        let grant = try log.grant("u1", "cookies.analytics", hours: 1, extra: ["expires": .string(expires.description)])
        #expect(try log.answer("u1", "cookies.analytics", at: expires.adding(microseconds: -1)).allowed)
        let lapsed = try log.answer("u1", "cookies.analytics", at: expires)
        #expect(lapsed.status == .expired && lapsed.seq == grant.seq && lapsed.since == expires)
        #expect(try log.current("u1", "cookies.analytics", at: expires.adding(microseconds: 1)).status == .expired)
    }

    @Test("a 15-year-old in the EU counts only with a guardian's grant; a 12-year-old's own grant does not count")
    func minors() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email"], hours: 0)
        try log.add("subject.age_asserted", "teen", ["band": .string("13_15"), "method": .string("self-declared"), "jurisdiction": .string("EU")], hours: 1)
        let guardian: JSONValue = .object(["role": .string("guardian"), "id": .string("parent:77"), "verified_by": .string("card-check")])
        let byGuardian = try log.grant("teen", "marketing.email", hours: 2, extra: ["given_by": guardian])
        let teen = try log.answer("teen", "marketing.email", hours: 3)
        #expect(teen.allowed && teen.seq == byGuardian.seq)

        let age = try log.add("subject.age_asserted", "child", ["band": .string("under_13"), "method": .string("self-declared"), "jurisdiction": .string("US")], hours: 1)
        try log.grant("child", "marketing.email", hours: 2)
        let child = try log.answer("child", "marketing.email", hours: 3)
        #expect(child.status == .minorWithoutGuardian && !child.allowed && child.evidence.contains(age.seq))

        // Outside the EU a 15-year-old is past the default minimum age of 13.
        try log.add("subject.age_asserted", "teen-us", ["band": .string("13_15"), "method": .string("self-declared"), "jurisdiction": .string("US")], hours: 1)
        try log.grant("teen-us", "marketing.email", hours: 2)
        #expect(try log.answer("teen-us", "marketing.email", hours: 3).allowed)
    }

    @Test("purposes interleave independently")
    func interleavedPurposes() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email", "cookies.analytics", "cookies.advertising"], hours: 0)
        try log.grant("u1", "marketing.email", hours: 1)
        let analytics = try log.grant("u1", "cookies.analytics", hours: 2)
        try log.withdraw("u1", "marketing.email", hours: 3)
        try log.add("consent.refused", "u1", ["purpose": .string("cookies.advertising"), "notice": .string("n1"), "method": .string("banner")], hours: 4)
        let state = try #require(try log.ledger.consentState(subject: "u1"))
        #expect(state.purposes.count == 3)
        #expect(try log.answer("u1", "marketing.email", hours: 5).status == .withdrawn)
        #expect(try log.answer("u1", "cookies.analytics", hours: 5).seq == analytics.seq)
        #expect(try log.answer("u1", "cookies.advertising", hours: 5).status == .refused)
        #expect(try log.answer("u1", "marketing.email", hours: 2.5).allowed)
    }

    @Test("an objection blocks marketing absolutely; a restriction blocks everything until completed")
    func objectionAndRestriction() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email", "cookies.analytics"], hours: 0)
        try log.grant("u1", "marketing.email", hours: 1)
        try log.grant("u1", "cookies.analytics", hours: 1.5)
        let objection = try log.add("rights.requested", "u1", ["request": .string("r1"), "right": .string("objection")], hours: 2)
        let objected = try log.answer("u1", "marketing.email", hours: 2.5)
        #expect(objected.status == .objected && objected.seq == objection.seq)
        #expect(try log.answer("u1", "cookies.analytics", hours: 2.5).allowed)
        // A grant after the objection does not lift it; completing the request does not either.
        try log.grant("u1", "marketing.email", hours: 3)
        try log.add("rights.completed", "u1", ["request": .string("r1")], hours: 3.5)
        #expect(try log.answer("u1", "marketing.email", hours: 4).status == .objected)

        let restriction = try log.add("rights.requested", "u1", ["request": .string("r2"), "right": .string("restriction")], hours: 5)
        #expect(try log.answer("u1", "cookies.analytics", hours: 5.5).status == .restricted)
        #expect(try log.answer("u1", "cookies.analytics", hours: 5.5).seq == restriction.seq)
        try log.add("rights.completed", "u1", ["request": .string("r2")], hours: 6)
        #expect(try log.answer("u1", "cookies.analytics", hours: 6.5).allowed)
        // The subject withdrawing the objection lifts it.
        try log.add("rights.completed", "u1", ["request": .string("r1"), "outcome": .string("withdrawn")], hours: 7)
        #expect(try log.answer("u1", "marketing.email", hours: 7.5).allowed)
        #expect(try log.current("u1", "marketing.email", at: ConsentLog.at(hours: 8)).allowed)
    }

    @Test("erasure ends every consent; an identifier reused later inherits nothing")
    func erasureAndReuse() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email"], hours: 0)
        try log.add("subject.age_asserted", "u1", ["band": .string("under_13"), "method": .string("self-declared"), "jurisdiction": .string("US")], hours: 0.5)
        let guardian: JSONValue = .object(["role": .string("guardian"), "id": .string("p1"), "verified_by": .string("card")])
        try log.grant("u1", "marketing.email", hours: 1, extra: ["given_by": guardian])
        try log.add("account.erased", "u1", ["request": .string("e1")], hours: 2)
        #expect(try log.answer("u1", "marketing.email", hours: 1.5).allowed)
        #expect(try log.answer("u1", "marketing.email", hours: 2.5).status == .none)
        #expect(try log.ledger.consentState(subject: "u1") == nil)
        // The new holder of the identifier is an adult who consents themselves: the old age does not apply.
        let fresh = try log.grant("u1", "marketing.email", hours: 3)
        let answer = try log.answer("u1", "marketing.email", hours: 4)
        #expect(answer.allowed && answer.seq == fresh.seq)
        #expect(try log.ledger.consentState(subject: "u1")?.age == nil)
    }

    @Test("a backfilled event is folded at its ts, never at its occurred time")
    func backfill() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email"], hours: 0)
        let grant = try log.add("consent.granted", "u1", ["purpose": .string("marketing.email"), "notice": .string("n1"), "method": .string("import")],
                                hours: 10, occurred: ConsentLog.at(hours: 1))
        #expect(try log.answer("u1", "marketing.email", hours: 5).status == .none)
        #expect(try log.answer("u1", "marketing.email", hours: 11).since == grant.ts)
        let entry = try log.ledger.entry(grant.seq)
        let event = try #require(Ledger.consentEvent(entry))
        #expect(event.isBackfilled(lag: log.policy.backfillLag))
    }

    @Test("a subject with 10,000 events: current and past answers, and history in order")
    func tenThousandEvents() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email"], hours: 0)
        let definition = EventCatalogue.builtIn.kind("consent.granted")!
        let events = (0..<10_000).map { i in
            Event(
                kind: i % 2 == 0 ? "consent.granted" : "consent.withdrawn", retentionClass: definition.retentionClass, retention: nil, source: "web",
                subject: "busy", attributes: i % 2 == 0
                    ? ["purpose": .string("marketing.email"), "notice": .string("n1"), "method": .string("toggle")]
                    : ["purpose": .string("marketing.email"), "method": .string("toggle")])
        }
        let base = ConsentLog.at(hours: 1)
        _ = try log.writer.append(events, now: { base })
        try log.writer.flushToStore()
        let history = try log.ledger.consentHistory(subject: "busy")
        #expect(history.count == 10_000)
        #expect(zip(history, history.dropFirst()).allSatisfy { $0.seq < $1.seq })
        #expect(try log.current("busy", "marketing.email", at: .now()).status == .withdrawn)
        // Entry 5000 of the subject (a grant) is seq 5001: the notice is seq 0.
        let middle = history[5_000]
        let answer = try log.answer("busy", "marketing.email", at: middle.header.timestamp)
        #expect(answer.allowed && answer.seq == middle.seq)
    }

    @Test("the materialized state equals a fold of the entries, and verify says so")
    func materializedEqualsRebuild() throws {
        let log = try ConsentLog()
        try log.notice("n1", ["marketing.email", "cookies.analytics"], hours: 0)
        for i in 0..<60 {
            let subject = "s\(i % 12)"
            switch i % 5 {
            case 0: try log.grant(subject, "marketing.email", hours: Double(i))
            case 1: try log.grant(subject, "cookies.analytics", hours: Double(i))
            case 2: try log.withdraw(subject, "marketing.email", hours: Double(i))
            case 3: try log.add("rights.requested", subject, ["request": .string("r\(i)"), "right": .string("restriction")], hours: Double(i))
            default: try log.add("rights.completed", subject, ["request": .string("r\(i - 1)")], hours: Double(i))
            }
        }
        for s in 0..<12 {
            let now = try log.ledger.consentState(subject: "s\(s)")
            let folded = try log.ledger.consentState(subject: "s\(s)", at: .maximum)
            #expect(now == folded)
        }
        #expect(try log.ledger.verifyIntegrity().isSound)
    }
}
