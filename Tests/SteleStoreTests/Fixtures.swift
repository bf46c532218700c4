import Foundation
import SteleCore
import SteleStore
import SteleTestSupport
import Synchronization

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
        if let idempotencyWindow { writerOptions.withLock { $0[directory.path] = idempotencyWindow } }
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

/// Idempotency windows the tests set per store path (``Fixture/create(_:mapSize:idempotencyWindow:)``).
private let writerOptions = Mutex<[String: Int64]>([:])

/// The tests' appends and redactions, each through the store's one writer, opened for the call and
/// closed after it: what `ingest` and operator commands do.
extension Ledger {
    private func withWriter<R>(_ body: (LedgerWriter) throws -> R) throws -> R {
        var options = LedgerWriter.Options()
        if let window = writerOptions.withLock({ $0[path] }) { options.idempotencyWindow = window }
        let writer = try LedgerWriter(ledger: self, options: options)
        let result = try body(writer)
        try writer.close()
        return result
    }

    func append(_ events: [Event], now: @escaping @Sendable () -> Timestamp = Timestamp.now) throws -> [Result<Receipt, LedgerError>] {
        try withWriter { try $0.append(events, now: now) }
    }

    func append(prepared: [PreparedEvent], now: @escaping @Sendable () -> Timestamp = Timestamp.now) throws -> [Result<Receipt, LedgerError>] {
        try withWriter { try $0.append(prepared: prepared, now: now) }
    }

    func prepare(_ events: [Event]) throws -> [PreparedEvent] {
        let preparer = makePreparer()
        return try events.map { try preparer.prepare($0) }
    }

    func redact(
        seq: UInt64, fields: [String], receipt: Event? = nil, now: @escaping @Sendable () -> Timestamp = Timestamp.now
    ) throws -> (redacted: [String], receipt: Receipt?) {
        try withWriter { writer in
            try writer.perform(now: now) { context in
                let names = try context.redact(seq: seq, fields: fields)
                return (names, try receipt.map { try context.append($0) })
            }
        }
    }
}

extension Fixture {
    /// A writer whose store commits wait an hour: what it journals stays in the journal until
    /// ``LedgerWriter/flushToStore()``, the journal needs room, or it closes; dropped without
    /// closing, it is a writer killed before its store committed.
    static func lazyWriter(_ ledger: Ledger, idempotencyWindow: Int64? = nil, maximumKeys: Int? = nil) throws -> LedgerWriter {
        var options = LedgerWriter.Options()
        options.storeCommitInterval = 3_600_000_000
        if let idempotencyWindow { options.idempotencyWindow = idempotencyWindow }
        if let maximumKeys { options.idempotencyMaximumKeys = maximumKeys }
        return try LedgerWriter(ledger: ledger, options: options)
    }

    /// Runs `body` with a ``lazyWriter(_:idempotencyWindow:maximumKeys:)``, then drops it unclosed and
    /// waits until it is gone (its queues may hold it a moment after the last completion): what a
    /// writer killed before its store committed leaves.
    static func killedWriter<R>(_ ledger: Ledger, _ body: (LedgerWriter) throws -> R) throws -> R {
        var writer: LedgerWriter? = try lazyWriter(ledger)
        weak let gone = writer
        let result = try body(writer!)
        writer = nil
        let deadline = Date().addingTimeInterval(10)
        while gone != nil && Date() < deadline { usleep(1000) }
        return result
    }

    /// Journals `events` as one submission and returns their outcomes once durable in the journal,
    /// as the daemon answers them.
    static func journal(_ writer: LedgerWriter, _ events: [Event]) throws -> [Result<Receipt, LedgerError>] {
        let preparer = writer.ledger.makePreparer()
        let prepared = try events.map { try preparer.prepare($0) }
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<[Result<Receipt, LedgerError>]>([])
        writer.submit(prepared) { results in
            outcome.withLock { $0 = Array(results) }
            done.signal()
        }
        done.wait()
        return outcome.withLock { $0 }
    }
}
