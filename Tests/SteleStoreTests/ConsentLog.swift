import Foundation
import SteleConsent
import SteleCore
import SteleStore
import SteleTestSupport

/// A ledger for consent scenarios: events appended one at a time through the store's writer, each
/// at a chosen time (hours after ``start``), so every answer has a known moment.
final class ConsentLog {
    static let start = Timestamp(rfc3339: "2026-01-01T00:00:00Z")!

    let directory = TemporaryDirectory()
    let ledger: Ledger
    let writer: LedgerWriter
    var policy = ConsentPolicy()

    init() throws {
        ledger = try Fixture.create(directory, mapSize: 1 << 26)
        writer = try LedgerWriter(ledger: ledger)
    }

    deinit { try? writer.close() }

    static func at(hours: Double) -> Timestamp {
        start.adding(microseconds: Int64(hours * 3_600_000_000))
    }

    /// Appends an event of `kind` about `subject` at `hours` after the start; returns its seq and `ts`.
    @discardableResult
    func add(
        _ kind: String, _ subject: String?, _ attributes: [String: JSONValue], hours: Double, occurred: Timestamp? = nil
    ) throws -> (seq: UInt64, ts: Timestamp) {
        let definition = EventCatalogue.builtIn.kind(kind)!
        let event = Event(
            kind: kind, retentionClass: definition.retentionClass, retention: EventCatalogue.builtIn.retentionMicroseconds(for: definition),
            source: "web", subject: subject, occurred: occurred, attributes: attributes)
        let time = Self.at(hours: hours)
        let receipt = try writer.append([event], now: { time })[0].get()
        try writer.flushToStore()
        return (receipt.seq, try ledger.entry(receipt.seq).header.timestamp)
    }

    func notice(_ id: String, _ purposes: [String], hours: Double) throws {
        try add("notice.published", nil, [
            "notice": .string(id), "sha256": .string(String(repeating: "ab", count: 32)),
            "purposes": .array(purposes.map(JSONValue.string)), "language": .string("en"),
        ], hours: hours)
    }

    @discardableResult
    func grant(_ subject: String, _ purpose: String, notice: String = "n1", hours: Double, extra: [String: JSONValue] = [:]) throws -> (seq: UInt64, ts: Timestamp) {
        try add("consent.granted", subject, ["purpose": .string(purpose), "notice": .string(notice), "method": .string("checkbox")].merging(extra) { $1 }, hours: hours)
    }

    @discardableResult
    func withdraw(_ subject: String, _ purpose: String, hours: Double) throws -> (seq: UInt64, ts: Timestamp) {
        try add("consent.withdrawn", subject, ["purpose": .string(purpose), "method": .string("unsubscribe-link"), "channel": .string("email")], hours: hours)
    }

    /// The answer at `time`, folded from the subject's entries with `ts` ≤ `time`.
    func answer(_ subject: String, _ purpose: String, at time: Timestamp) throws -> ConsentAnswer {
        policy.answer(try ledger.consentState(subject: subject, at: time), purpose: purpose, at: time, notices: try ledger.consentNotices())
    }

    func answer(_ subject: String, _ purpose: String, hours: Double) throws -> ConsentAnswer {
        try answer(subject, purpose, at: Self.at(hours: hours))
    }

    /// The answer from the materialized current state, evaluated at `time`.
    func current(_ subject: String, _ purpose: String, at time: Timestamp) throws -> ConsentAnswer {
        let (state, notices) = try ledger.currentConsent(subject: subject)
        return policy.answer(state, purpose: purpose, at: time, notices: notices)
    }
}
