public import SteleCore

/// An entry that consent folding reads (`Specs/consent.md`, "Events"): its position, time, kind and
/// disclosed body fields. Built from an entry by whoever holds it (the store, a bundle).
public struct ConsentEvent: Sendable, Hashable {
    /// The kinds that change a subject's consent state, and `notice.published`.
    public enum Kind: String, Sendable, CaseIterable {
        case granted = "consent.granted"
        case refused = "consent.refused"
        case withdrawn = "consent.withdrawn"
        case ageAsserted = "subject.age_asserted"
        case rightsRequested = "rights.requested"
        case rightsCompleted = "rights.completed"
        case erased = "account.erased"
        case noticePublished = "notice.published"
        /// Read by the audit only.
        case processing = "processing.performed"
        case enforced = "consent.enforced"

        /// True for the kinds folded into a subject's state, whose entries the consent history lists.
        public var isSubjectState: Bool {
            switch self {
            case .noticePublished, .processing, .enforced: false
            default: true
            }
        }
    }

    public let seq: UInt64
    public let timestamp: Timestamp
    public let kind: Kind
    /// The entry's disclosed body fields (`subject`, `occurred` and the attributes).
    public let fields: [String: JSONValue]

    public init(seq: UInt64, timestamp: Timestamp, kind: Kind, fields: [String: JSONValue]) {
        self.seq = seq
        self.timestamp = timestamp
        self.kind = kind
        self.fields = fields
    }

    public var subject: String? { fields["subject"]?.stringValue }
    public var purpose: String? { fields["purpose"]?.stringValue }

    /// The `occurred` time the client gave, if any.
    public var occurred: Timestamp? { fields["occurred"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) }

    /// True when `occurred` is earlier than `ts` by more than `lag` microseconds: the event was
    /// recorded late. It is still folded at `ts`, so it never moves a consent earlier.
    public func isBackfilled(lag: Int64) -> Bool {
        guard let occurred else { return false }
        return timestamp.microseconds - occurred.microseconds > lag
    }
}
