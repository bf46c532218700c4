public import SteleCore

/// A published notice (`notice.published`): the exact text shown, by digest, and what it covers.
public struct Notice: Sendable, Hashable {
    public let id: String
    /// Hex SHA-256 of the exact text shown.
    public let sha256: String
    public let purposes: [String]
    public let language: String
    public let seq: UInt64
    public let timestamp: Timestamp

    public init(id: String, sha256: String, purposes: [String], language: String, seq: UInt64, timestamp: Timestamp) {
        self.id = id
        self.sha256 = sha256
        self.purposes = purposes
        self.language = language
        self.seq = seq
        self.timestamp = timestamp
    }

    /// The notice a `notice.published` event records; nil for any other event, or one whose fields
    /// were redacted.
    public init?(_ event: ConsentEvent) {
        guard event.kind == .noticePublished, let id = event.fields["notice"]?.stringValue,
            let sha = event.fields["sha256"]?.stringValue, let language = event.fields["language"]?.stringValue,
            let purposes = event.fields["purposes"]?.arrayValue?.compactMap(\.stringValue)
        else { return nil }
        self.init(id: id, sha256: sha, purposes: purposes, language: language, seq: event.seq, timestamp: event.timestamp)
    }

    /// The stored form (canonical JSON, `Specs/consent.md`, "Materialized state").
    public var json: JSONValue {
        .object([
            "notice": .string(id), "sha256": .string(sha256), "purposes": .array(purposes.map(JSONValue.string)),
            "language": .string(language), "seq": .integer(Int64(seq)), "ts": .string(timestamp.description),
        ])
    }

    public init?(json: JSONValue) {
        guard let id = json["notice"]?.stringValue, let sha = json["sha256"]?.stringValue,
            let language = json["language"]?.stringValue, let purposes = json["purposes"]?.arrayValue?.compactMap(\.stringValue),
            let seq = json["seq"]?.integerValue, seq >= 0, let ts = json["ts"]?.stringValue.flatMap(Timestamp.init(rfc3339:))
        else { return nil }
        self.init(id: id, sha256: sha, purposes: purposes, language: language, seq: UInt64(seq), timestamp: ts)
    }
}

/// Every published notice, in log order: which notice a grant cites, and whether a newer one
/// superseded it.
public struct NoticeRegistry: Sendable {
    /// In seq order.
    public private(set) var notices: [Notice] = []
    private var firstByID: [String: Int] = [:]

    public init(_ notices: [Notice] = []) {
        for notice in notices.sorted(by: { $0.seq < $1.seq }) { add(notice) }
    }

    /// Adds a notice published after every one held.
    public mutating func add(_ notice: Notice) {
        if firstByID[notice.id] == nil { firstByID[notice.id] = notices.count }
        notices.append(notice)
    }

    /// The first publication of notice `id`.
    public func notice(_ id: String) -> Notice? { firstByID[id].map { notices[$0] } }

    /// The first publication of a notice newer than a grant's (its notice's first publication, or
    /// the grant itself when that notice was never published) that covers `purpose` and was
    /// published at or before `time`: what makes the grant stale.
    public func superseding(notice id: String, grantSeq: UInt64, purpose: String, at time: Timestamp) -> Notice? {
        let position = notice(id)?.seq ?? grantSeq
        return notices.first { $0.seq > position && $0.timestamp <= time && $0.id != id && $0.purposes.contains(purpose) }
    }
}
