public import SteleCore

/// What a bundle answers (`Specs/evidence-bundle.md` §2.1): an export's query, or a consent
/// receipt's subject, purpose and moment.
public struct BundleQuery: Hashable, Sendable {
    public var subject: String
    public var actor: String?
    /// Kind names, or prefix patterns ending in `.*`; empty: every kind.
    public var kinds: [String]
    public var since: Timestamp?
    public var until: Timestamp?
    public var includeStaff: Bool
    /// A consent receipt's purpose and moment.
    public var purpose: String?
    public var at: Timestamp?

    public init(
        subject: String, actor: String? = nil, kinds: [String] = [], since: Timestamp? = nil, until: Timestamp? = nil,
        includeStaff: Bool = false, purpose: String? = nil, at: Timestamp? = nil
    ) {
        self.subject = subject
        self.actor = actor
        self.kinds = kinds
        self.since = since
        self.until = until
        self.includeStaff = includeStaff
        self.purpose = purpose
        self.at = at
    }

    /// True when `kind` is one the query names (every kind when it names none).
    public func matches(kind: String) -> Bool {
        kinds.isEmpty || kinds.contains { $0 == kind || ($0.hasSuffix(".*") && kind.hasPrefix($0.dropLast(1))) }
    }

    /// True when `ts` is in the query's time range.
    public func matches(time: Timestamp) -> Bool {
        (since.map { time >= $0 } ?? true) && (until.map { time < $0 } ?? true) && (at.map { time <= $0 } ?? true)
    }

    public var json: JSONValue {
        var members: [String: JSONValue] = ["subject": .string(subject)]
        if let purpose { members["purpose"] = .string(purpose) }
        if let at { members["at"] = .string(at.description) }
        if purpose == nil {
            if let actor { members["actor"] = .string(actor) }
            members["kinds"] = .array(kinds.map(JSONValue.string))
            if let since { members["since"] = .string(since.description) }
            if let until { members["until"] = .string(until.description) }
            members["include_staff"] = .bool(includeStaff)
        }
        return .object(members)
    }

    /// Reads a manifest's query; nil when it is not one.
    public init?(json: JSONValue) {
        guard let subject = json["subject"]?.stringValue else { return nil }
        func time(_ name: String) -> Timestamp?? {
            guard let value = json[name] else { return .some(nil) }
            return value.stringValue.flatMap(Timestamp.init(rfc3339:)).map { .some($0) } ?? nil
        }
        guard let since = time("since"), let until = time("until"), let at = time("at") else { return nil }
        let kinds = json["kinds"]?.arrayValue?.compactMap(\.stringValue) ?? []
        guard kinds.count == (json["kinds"]?.arrayValue?.count ?? 0) else { return nil }
        self.init(
            subject: subject, actor: json["actor"]?.stringValue, kinds: kinds, since: since, until: until,
            includeStaff: json["include_staff"]?.boolValue ?? false, purpose: json["purpose"]?.stringValue, at: at)
    }

    /// The fields an export withholds from an entry with these disclosed values (§3.2): those naming
    /// someone other than the subject, unless staff are included.
    public func withheldFields(_ body: EntryBody) -> [String] {
        guard !includeStaff else { return [] }
        return ["actor", "given_by"].filter { name in
            guard let value = body.fields[name]?.value else { return false }
            return value.stringValue != subject
        }
    }
}
