public import SteleCore

/// A read of personal data (`Specs/events.md`, `ledger.accessed`): who ran which command on which
/// query, why, and how many entries it disclosed. Recorded before the data leaves the tool.
public struct AccessRecord: Sendable, Hashable {
    /// The command: `query`, `consent show`, `export`, `consent receipt`, `dsar`, …
    public var command: String
    public var query: JSONValue
    public var reason: String
    public var disclosed: Int

    public init(command: String, query: JSONValue, reason: String, disclosed: Int) {
        self.command = command
        self.query = query
        self.reason = reason
        self.disclosed = disclosed
    }

    func event(operatorUID: UInt32) -> Event {
        Event.ledger("ledger.accessed", actor: "uid:\(operatorUID)", attributes: [
                "uid": .integer(Int64(operatorUID)), "command": .string(command), "query": query, "reason": .string(reason),
                "disclosed": .integer(Int64(disclosed)),
            ])
    }
}

extension LedgerWriter {
    /// Appends the `ledger.accessed` entry of `access` by the user `uid`; returns its seq.
    public func recordAccess(_ access: AccessRecord, operatorUID: UInt32) throws -> UInt64 {
        try perform { context in try context.append(access.event(operatorUID: operatorUID)).seq }
    }
}
