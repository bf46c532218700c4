import Foundation
import SteleConsent
import SteleCore
import SteleStore

/// `--consent N [--keep DIR]`: builds an N-entry ledger with 100,000 subjects (grants, withdrawals,
/// age assertions, processing, and logins for the rest) and one subject with 100 consent events,
/// then times the consent reads against a baseline read in the same run:
/// - a current lookup (one read of the materialized state, plus the notices, and the answer) against
///   reading one entry by seq;
/// - a point-in-time answer for the subject with 100 events against `query --subject` for it (the
///   subject index and its entries);
/// - a list of every subject allowed marketing email against reading every `consent.granted` entry
///   through the kind index.
/// With `--keep DIR` the ledger is built in DIR and kept, for `Tools/bench-consent.sh` to serve.
enum ConsentLookups {
    static let subjects = 100_000

    static func run(total: Int, keep: String?) throws {
        let directory = keep ?? temporaryDirectory()
        var options = Ledger.Options()
        options.createWithOrigin = "bench.example/consent"
        options.initialMapSize = 1 << 32
        let ledger = try Ledger(path: directory, options: options)
        let build = try seconds { try fill(ledger, total: total) }
        print(String(format: "built %d entries, %d subjects in %.1f s", try ledger.size, subjects, build))
        let policy = ConsentPolicy()
        let notices = try ledger.consentNotices()

        // Current lookups against one entry read, interleaved rounds.
        var random = SystemRandomNumberGenerator()
        let picks = (0..<50_000).map { _ in Int.random(in: 0..<subjects, using: &random) }
        let seqs = (0..<50_000).map { _ in UInt64.random(in: 0..<UInt64(total), using: &random) }
        var lookup: [Double] = [], entryRead: [Double] = []
        var allowed = 0
        for _ in 0..<5 {
            lookup.append(try seconds {
                for subject in picks {
                    let (state, notices) = try ledger.currentConsent(subject: "user:\(subject)")
                    if policy.answer(state, purpose: "marketing.email", at: .now(), notices: notices).allowed { allowed += 1 }
                }
            } / Double(picks.count))
            entryRead.append(try seconds { for seq in seqs { _ = try ledger.entry(seq) } } / Double(seqs.count))
        }
        report("current lookup", median(lookup), "one entry read", median(entryRead), goal: "< 50 µs")

        // Point in time for the subject with 100 events, at random moments of its history.
        let history = try ledger.consentHistory(subject: "user:heavy")
        let moments = (0..<2_000).map { _ in history[Int.random(in: 0..<history.count, using: &random)].header.timestamp }
        var past: [Double] = [], query: [Double] = []
        for _ in 0..<5 {
            past.append(try seconds {
                for moment in moments {
                    let state = try ledger.consentState(subject: "user:heavy", at: moment)
                    _ = policy.answer(state, purpose: "marketing.email", at: moment, notices: notices)
                }
            } / Double(moments.count))
            query.append(try seconds { for _ in 0..<200 { _ = try ledger.entries(LedgerQuery(subject: "user:heavy")) } } / 200)
        }
        report("point in time (\(history.count) events)", median(past), "query --subject", median(query), goal: "< 1 ms")

        // Every subject allowed, against every grant read through the kind index.
        var list: [Double] = [], grants: [Double] = []
        var listed = 0
        for _ in 0..<3 {
            listed = 0
            list.append(try seconds {
                let now = Timestamp.now()
                try ledger.forEachConsentState { state in
                    if policy.answer(state, purpose: "marketing.email", at: now, notices: notices).allowed { listed += 1 }
                    return true
                }
            })
            grants.append(try seconds { try ledger.scan(LedgerQuery(kind: "consent.granted")) { _ in true } })
        }
        report("list (\(listed) allowed)", median(list), "read every grant", median(grants), goal: "< 2 s")
        if keep == nil { try? FileManager.default.removeItem(atPath: directory) }
    }

    static func report(_ name: String, _ value: Double, _ baselineName: String, _ baseline: Double, goal: String) {
        func format(_ s: Double) -> String { s >= 0.1 ? String(format: "%.2f s", s) : s >= 1e-3 ? String(format: "%.3f ms", s * 1e3) : String(format: "%.2f µs", s * 1e6) }
        print("\(name): \(format(value)) (goal \(goal))  \(baselineName): \(format(baseline))  ratio \(String(format: "%.2f", value / baseline))")
    }

    /// Appends the ledger's entries in batches of 5,000, subjects interleaved round-robin.
    static func fill(_ ledger: Ledger, total: Int) throws {
        let writer = try LedgerWriter(ledger: ledger)
        let preparer = ledger.makePreparer()
        func event(_ kind: String, _ subject: String?, _ attributes: [String: JSONValue]) -> Event {
            let definition = EventCatalogue.builtIn.kind(kind)!
            return Event(
                kind: kind, retentionClass: definition.retentionClass, retention: EventCatalogue.builtIn.retentionMicroseconds(for: definition),
                source: "web", actor: subject, subject: subject, attributes: attributes)
        }
        let grant: [String: JSONValue] = ["purpose": .string("marketing.email"), "notice": .string("n1"), "method": .string("checkbox")]
        let analytics: [String: JSONValue] = ["purpose": .string("cookies.analytics"), "notice": .string("n1"), "method": .string("banner")]
        let withdrawal: [String: JSONValue] = ["purpose": .string("marketing.email"), "method": .string("link")]
        var batch: [Event] = [event("notice.published", nil, [
            "notice": .string("n1"), "sha256": .string(String(repeating: "ab", count: 32)),
            "purposes": .array([.string("marketing.email"), .string("cookies.analytics")]), "language": .string("en"),
        ])]
        var written = 0
        var heavy = 0
        func flush() throws {
            _ = try writer.append(prepared: batch.map { try preparer.prepare($0) })
            written += batch.count
            batch.removeAll(keepingCapacity: true)
        }
        // Appends `e`, and one of the heavy subject's 100 events every `total / 100` entries.
        func add(_ e: Event) throws {
            batch.append(e)
            if written + batch.count >= heavy * (total / 100), heavy < 100 {
                batch.append(event(heavy % 2 == 0 ? "consent.granted" : "consent.withdrawn", "user:heavy", heavy % 2 == 0 ? grant : withdrawal))
                heavy += 1
            }
            if batch.count >= 5000 { try flush() }
        }
        // Per subject: a grant, then (by subject number) analytics, an age assertion, a withdrawal,
        // and two processing entries: about 3.8 entries each; logins fill the rest.
        for round in 0..<4 {
            for s in 0..<subjects {
                let subject = "user:\(s)"
                switch round {
                case 0: try add(event("consent.granted", subject, grant))
                case 1:
                    if s % 2 == 0 { try add(event("consent.granted", subject, analytics)) }
                    if s % 10 == 0 {
                        try add(event("subject.age_asserted", subject, ["band": .string("18_plus"), "method": .string("self"), "jurisdiction": .string("EU")]))
                    }
                case 2:
                    if s % 5 == 0 { try add(event("consent.withdrawn", subject, withdrawal)) }
                    try add(event("processing.performed", subject, ["purpose": .string("marketing.email")]))
                default: try add(event("processing.performed", subject, ["purpose": .string("marketing.email")]))
                }
            }
        }
        var n = 0
        while written + batch.count < total {
            try add(event("login.succeeded", "user:\(n % subjects)", ["ip": .string("203.0.113.\(n % 250)"), "method": .string("password")]))
            n += 1
        }
        try flush()
        try writer.close()
    }
}
