public import SteleCrypto

/// One event to append: what a service reported, after validation.
public struct Event: Sendable, Hashable {
    /// Event kind, e.g. `login.succeeded`.
    public var kind: String
    /// Retention class of the kind.
    public var retentionClass: String
    /// How long after `ts` the body is kept, in microseconds; nil when not fixed at append time.
    public var retention: Int64?
    /// The authenticated source (service) name; never taken from the client.
    public var source: String
    /// Who acted (opaque identifier), if anyone.
    public var actor: String?
    /// Whose data this concerns (opaque identifier), if anyone.
    public var subject: String?
    /// The client's idempotency key, if given.
    public var id: String?
    /// The client's own claim of when the event occurred.
    public var occurred: Timestamp?
    /// The kind's attributes.
    public var attributes: [String: JSONValue]

    /// An event.
    public init(
        kind: String, retentionClass: String, retention: Int64?, source: String, actor: String? = nil,
        subject: String? = nil, id: String? = nil, occurred: Timestamp? = nil, attributes: [String: JSONValue] = [:]
    ) {
        self.kind = kind
        self.retentionClass = retentionClass
        self.retention = retention
        self.source = source
        self.actor = actor
        self.subject = subject
        self.id = id
        self.occurred = occurred
        self.attributes = attributes
    }

    /// The body fields, unsorted: what ``bodyValues`` holds, without a dictionary.
    public var bodyFields: [EntryBody.PlainField] {
        var fields = [EntryBody.PlainField]()
        fields.reserveCapacity(attributes.count + 4)
        for (name, value) in attributes { fields.append(EntryBody.PlainField(name: name, value: value)) }
        if let actor { fields.append(EntryBody.PlainField(name: "actor", value: .string(actor))) }
        if let subject { fields.append(EntryBody.PlainField(name: "subject", value: .string(subject))) }
        if let id { fields.append(EntryBody.PlainField(name: "id", value: .string(id))) }
        if let occurred { fields.append(EntryBody.PlainField(name: "occurred", value: .string(occurred.description))) }
        return fields
    }

    /// The body fields: `actor`, `subject`, `id`, `occurred` when present, and each attribute.
    public var bodyValues: [String: JSONValue] {
        var values = attributes
        if let actor { values["actor"] = .string(actor) }
        if let subject { values["subject"] = .string(subject) }
        if let id { values["id"] = .string(id) }
        if let occurred { values["occurred"] = .string(occurred.description) }
        return values
    }
}

/// What the ledger returns for an appended (or already present) event.
public struct Receipt: Sendable, Hashable {
    /// A receipt for entry `seq`.
    public init(seq: UInt64, leafHash: SHA256Digest, header: [UInt8], duplicate: Bool) {
        self.seq = seq
        self.leafHash = leafHash
        self.header = header
        self.duplicate = duplicate
    }

    /// The entry's seq.
    public let seq: UInt64
    /// The entry's leaf hash.
    public let leafHash: SHA256Digest
    /// The exact header text.
    public let header: [UInt8]
    /// True when the event's id was seen before and this is the original entry's receipt.
    public let duplicate: Bool
}

extension Event {
    /// One of Stele's own entries (`ledger.*`, `Specs/events.md`): class `ledger`, kept forever,
    /// source `stele`.
    public static func ledger(_ kind: String, actor: String, attributes: [String: JSONValue]) -> Event {
        Event(kind: kind, retentionClass: "ledger", retention: nil, source: "stele", actor: actor, attributes: attributes)
    }
}
