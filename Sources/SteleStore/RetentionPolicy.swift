public import SteleCore
import SteleCrypto

/// The retention policy in force (`Specs/retention.md`): how long each class's bodies are kept.
/// Recorded in the ledger (`ledger.policy`) so every pruning decision can be checked against it.
public struct RetentionPolicy: Sendable, Hashable {
    /// Days after `ts` each class is kept; nil while the deadline depends on later events.
    public let classes: [String: Int?]

    /// The policy a catalogue's retention classes give.
    public init(catalogue: EventCatalogue) {
        classes = catalogue.classes.mapValues(\.days)
    }

    public init(classes: [String: Int?]) {
        self.classes = classes
    }

    /// `{"classes":{name: days | null, …}}`, the form `ledger.policy` records.
    public var json: JSONValue {
        .object(["classes": .object(classes.mapValues { $0.map { .integer(Int64($0)) } ?? .null })])
    }

    /// Hex SHA-256 of the canonical JSON: what receipts cite.
    public var digest: String {
        SHA256.hash(json.canonicalBytes).hex
    }

    /// Reads the recorded form; nil when it is not one.
    public init?(json: JSONValue) {
        guard let members = json["classes"]?.objectValue else { return nil }
        var classes: [String: Int?] = [:]
        for (name, days) in members {
            if days.isNull { classes[name] = .some(nil); continue }
            guard let d = days.integerValue, d > 0, d <= 1_000_000 else { return nil }
            classes[name] = Int(d)
        }
        self.classes = classes
    }
}
