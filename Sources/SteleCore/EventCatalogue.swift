/// The kinds of event Stele accepts, the attributes each carries, and the retention class each
/// belongs to. ``builtIn`` is the catalogue of `Specs/events.md`; deployments add custom kinds.
public struct EventCatalogue: Sendable {
    /// The type an attribute's value must have.
    public enum AttributeType: Sendable, Hashable {
        /// A non-empty string.
        case string
        /// An RFC 3339 time.
        case timestamp
        /// `true` or `false`.
        case boolean
        /// An integer.
        case integer
        /// An array of strings.
        case stringList
        /// One of the listed strings.
        case oneOf([String])
        /// The name of a purpose, which must be one of ``EventCatalogue/purposes`` when that is set.
        case purpose
        /// An array of purpose names.
        case purposeList
        /// Any JSON value (objects for structured evidence).
        case any
    }

    /// One event kind.
    public struct Kind: Sendable, Hashable {
        /// The kind's name, e.g. `consent.granted`.
        public let name: String
        /// Its retention class.
        public let retentionClass: String
        /// Attributes that must be present.
        public let required: [String: AttributeType]
        /// Attributes that may be present.
        public let optional: [String: AttributeType]
        /// Whether events of the kind must name whose data they concern (`subject`).
        public let requiresSubject: Bool
        /// Whether events of the kind must name who acted (`actor`).
        public let requiresActor: Bool
        /// The required and optional attributes as one list, for checking an event's few
        /// attributes by comparing names: cheaper than hashing each name into both dictionaries.
        let attributes: [Attribute]

        /// A kind definition.
        public init(
            _ name: String, class retentionClass: String, required: [String: AttributeType] = [:], optional: [String: AttributeType] = [:],
            requiresSubject: Bool = false, requiresActor: Bool = false
        ) {
            self.name = name
            self.retentionClass = retentionClass
            self.required = required
            self.optional = optional
            self.requiresSubject = requiresSubject
            self.requiresActor = requiresActor
            // In name order, so that kinds with equal definitions are equal (dictionaries with equal
            // contents need not iterate in the same order).
            self.attributes = (required.map { Attribute(name: $0.key, type: $0.value, required: true) }
                + optional.compactMap { required[$0.key] == nil ? Attribute(name: $0.key, type: $0.value, required: false) : nil })
                .sorted { $0.name < $1.name }
        }

        /// The definition of the attribute named `name`, if the kind has one.
        func attribute(named name: String) -> Attribute? {
            // Lengths first: most names differ in length, and comparing unequal strings is slow.
            let length = name.utf8.count
            for attribute in attributes where attribute.name.utf8.count == length && attribute.name == name { return attribute }
            return nil
        }
    }

    /// One attribute a kind defines.
    struct Attribute: Sendable, Hashable {
        let name: String
        let type: AttributeType
        let required: Bool
    }

    /// A retention class: how long bodies of its entries are kept after `ts`.
    public struct RetentionClass: Sendable, Hashable {
        /// The class name, e.g. `security`.
        public let name: String
        /// Days after `ts` until the body may be pruned; nil when the deadline depends on later
        /// events (consent records are kept while the account exists, then for a proof period).
        public let days: Int?

        /// A class definition.
        public init(_ name: String, days: Int?) {
            self.name = name
            self.days = days
        }
    }

    /// Kinds by name.
    public private(set) var kinds: [String: Kind]
    /// Retention classes by name.
    public private(set) var classes: [String: RetentionClass]
    /// The purposes events may name (`Specs/consent.md`); nil accepts any.
    public var purposes: Set<String>?

    /// A catalogue of the given kinds and classes.
    public init(kinds: [Kind], classes: [RetentionClass]) {
        self.kinds = Dictionary(kinds.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        self.classes = Dictionary(classes.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
    }

    /// Adds (or replaces) a custom kind. Kinds starting with `ledger.` are reserved for Stele.
    public mutating func add(_ kind: Kind) {
        kinds[kind.name] = kind
    }

    /// Adds (or replaces) a retention class.
    public mutating func add(_ retentionClass: RetentionClass) {
        classes[retentionClass.name] = retentionClass
    }

    /// The kind named `name`, if known.
    public func kind(_ name: String) -> Kind? { kinds[name] }

    /// Microseconds an entry of `kind` is kept, or nil when its deadline is not fixed at append.
    public func retentionMicroseconds(for kind: Kind) -> Int64? {
        classes[kind.retentionClass]?.days.map { Int64($0) * 86_400_000_000 }
    }

    /// Checks `attributes` against the kind's required and optional attributes.
    /// - Returns: nil if valid, else the name of the offending attribute and what was wrong.
    public func problem(with attributes: [String: JSONValue], for kind: Kind) -> (attribute: String, reason: String)? {
        // Fast path: every attribute known and well-typed, and as many required ones as the kind has
        // (names are unique, so that is all of them).
        var requiredSeen = 0
        var valid = true
        for (name, value) in attributes {
            guard let attribute = kind.attribute(named: name), Self.mismatch(value, attribute.type) == nil, unknownPurpose(value, attribute.type) == nil else {
                valid = false
                break
            }
            if attribute.required { requiredSeen += 1 }
        }
        if valid && requiredSeen == kind.required.count { return nil }
        // Slow path, in name order so the error names the same attribute every time.
        for (name, type) in kind.required.sorted(by: { $0.key < $1.key }) {
            guard let value = attributes[name] else { return (name, "is required for \(kind.name)") }
            if let reason = Self.mismatch(value, type) ?? unknownPurpose(value, type) { return (name, reason) }
        }
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) where kind.required[name] == nil {
            guard let type = kind.optional[name] else { return (name, "is not an attribute of \(kind.name)") }
            if let reason = Self.mismatch(value, type) ?? unknownPurpose(value, type) { return (name, reason) }
        }
        return nil
    }

    /// The first purpose `value` names that is not configured, for an attribute of a purpose type.
    public func unknownPurpose(in value: JSONValue, _ type: AttributeType) -> String? {
        guard let purposes else { return nil }
        switch type {
        case .purpose: return value.stringValue.flatMap { purposes.contains($0) ? nil : $0 }
        case .purposeList: return value.arrayValue?.lazy.compactMap(\.stringValue).first { !purposes.contains($0) }
        default: return nil
        }
    }

    private func unknownPurpose(_ value: JSONValue, _ type: AttributeType) -> String? {
        unknownPurpose(in: value, type).map { "names purpose \"\($0)\", which is not configured (consent.purposes)" }
    }

    static func mismatch(_ value: JSONValue, _ type: AttributeType) -> String? {
        switch type {
        case .string, .purpose: return (value.stringValue?.isEmpty == false) ? nil : "must be a non-empty string"
        case .timestamp: return value.stringValue.flatMap(Timestamp.init(rfc3339:)) != nil ? nil : "must be an RFC 3339 time"
        case .boolean: return value.boolValue != nil ? nil : "must be true or false"
        case .integer: return value.integerValue != nil ? nil : "must be an integer"
        case .stringList, .purposeList:
            return value.arrayValue?.allSatisfy({ $0.stringValue != nil }) == true ? nil : "must be an array of strings"
        case .oneOf(let options):
            return value.stringValue.map(options.contains) == true ? nil : "must be one of \(options.joined(separator: ", "))"
        case .any: return nil
        }
    }

    /// The catalogue of the brief: security, audit, consent, rights, processing, billing and contact events.
    /// `kind` with `subject` and `actor` required where the audit needs them (`Specs/events.md`):
    /// whose data a consent, age, rights, account, login, billing or data event concerns, and who
    /// acted in an administrative action or a change, access or disclosure of data.
    private static func requiringIdentifiers(_ kind: Kind) -> Kind {
        let name = kind.name
        let subject = ["consent.", "rights.", "account.", "login.", "billing.", "data."].contains { name.hasPrefix($0) }
            || name == "subject.age_asserted"
        let actor = ["admin.action", "data.changed", "data.accessed", "data.disclosed"].contains(name)
        return Kind(
            name, class: kind.retentionClass, required: kind.required, optional: kind.optional, requiresSubject: subject, requiresActor: actor)
    }

    public static let builtIn: EventCatalogue = {
        let network: [String: AttributeType] = ["ip": .string, "user_agent": .string, "method": .string, "reason": .string, "session": .string]
        let security = ["login.succeeded", "login.failed", "logout", "mfa.enabled", "mfa.disabled", "password.changed",
                        "password.reset_requested", "account.locked"].map { Kind($0, class: "security", optional: network) }
        let kinds: [Kind] = (security + [
            Kind("admin.action", class: "audit", required: ["action": .string, "target": .string], optional: ["reason": .string]),
            Kind("data.changed", class: "audit", required: ["entity": .string, "fields": .stringList, "op": .oneOf(["create", "update", "delete"])]),
            Kind("data.accessed", class: "audit", required: ["entity": .string, "purpose": .string]),
            Kind("data.disclosed", class: "audit", required: ["recipient": .string, "legal_basis": .string, "reference": .string]),
            Kind("processing.performed", class: "audit", required: ["purpose": .string], optional: ["channel": .string, "reference": .string]),
            Kind("notice.published", class: "consent", required: ["notice": .string, "sha256": .string, "purposes": .purposeList, "language": .string]),
            Kind("consent.granted", class: "consent", required: ["purpose": .purpose, "notice": .string, "method": .string],
                 optional: ["evidence": .any, "given_by": .any, "expires": .timestamp, "jurisdiction": .string, "gpc": .boolean]),
            Kind("consent.refused", class: "consent", required: ["purpose": .purpose, "notice": .string, "method": .string],
                 optional: ["evidence": .any, "given_by": .any, "jurisdiction": .string, "gpc": .boolean]),
            Kind("consent.withdrawn", class: "consent", required: ["purpose": .purpose, "method": .string],
                 optional: ["channel": .string, "gpc": .boolean]),
            Kind("consent.enforced", class: "consent", required: ["purpose": .purpose, "system": .string], optional: ["withdrawal_seq": .integer]),
            Kind("subject.age_asserted", class: "consent", required: [
                "band": .oneOf(["under_13", "13_15", "16_17", "18_plus"]), "method": .string, "jurisdiction": .string,
            ]),
            Kind("rights.requested", class: "rights", required: [
                "request": .string,
                "right": .oneOf(["access", "correction", "deletion", "portability", "restriction", "objection"]),
            ], optional: ["purpose": .purpose]),
            Kind("rights.completed", class: "rights", required: ["request": .string], optional: ["outcome": .string]),
            Kind("account.erasure_requested", class: "rights", optional: ["request": .string]),
            Kind("account.erased", class: "rights", optional: ["request": .string]),
            Kind("billing.transaction", class: "billing", optional: ["reference": .string, "amount": .integer, "currency": .string]),
            Kind("contact.submitted", class: "contact", optional: ["channel": .string, "reference": .string]),
        ]).map(requiringIdentifiers)
        let classes = [
            RetentionClass("security", days: 365), RetentionClass("audit", days: 365), RetentionClass("consent", days: nil),
            RetentionClass("rights", days: 730), RetentionClass("billing", days: 2557), RetentionClass("contact", days: 730),
            RetentionClass("ledger", days: nil),
        ]
        return EventCatalogue(kinds: kinds, classes: classes)
    }()
}
