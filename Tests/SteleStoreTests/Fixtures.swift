import SteleCore
import SteleStore
import SteleTestSupport

/// Builders for events and ledgers used across the store tests.
enum Fixture {
    static let security = EventCatalogue.builtIn.kind("login.succeeded")!

    /// A ~300-byte login event for user `n % users`.
    static func login(_ n: Int, users: Int = 50, id: String? = nil) -> Event {
        Event(
            kind: "login.succeeded", retentionClass: "security", retention: 365 * 86_400_000_000, source: "web",
            actor: "user:\(n % users)", subject: "user:\(n % users)", id: id ?? "req-\(n)",
            attributes: ["ip": .string("203.0.113.\(n % 250)"), "user_agent": .string("Mozilla/5.0 (X11; Linux x86_64) Test/\(n)")])
    }

    static func consent(_ subject: String, purpose: String, id: String) -> Event {
        Event(
            kind: "consent.granted", retentionClass: "consent", retention: nil, source: "web", actor: subject,
            subject: subject, id: id,
            attributes: ["purpose": .string(purpose), "notice": .string("n-2026"), "method": .string("checkbox")])
    }

    static func create(_ directory: TemporaryDirectory, mapSize: Int = 1 << 24, idempotencyWindow: Int64? = nil) throws -> Ledger {
        var options = Ledger.Options()
        options.createWithOrigin = "stele.test/log"
        options.initialMapSize = mapSize
        if let idempotencyWindow { options.idempotencyWindow = idempotencyWindow }
        return try Ledger(path: directory.path, options: options)
    }

    static func readOnly(_ directory: TemporaryDirectory) throws -> Ledger {
        var options = Ledger.Options()
        options.readOnly = true
        return try Ledger(path: directory.path, options: options)
    }

    static func receipts(_ results: [Result<Receipt, LedgerError>]) throws -> [Receipt] {
        try results.map { try $0.get() }
    }
}
