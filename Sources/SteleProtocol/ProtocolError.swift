/// A refused request, with a stable machine-readable code (`Specs/protocol.md`) and a message.
///
/// Compare by ``code``.
public struct ProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stable error code sent to clients. Open for new cases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// The line was not valid JSON (or not in Stele's JSON subset).
        public static let malformedJSON = Code(name: "malformed_json")
        /// The line exceeded the maximum length.
        public static let lineTooLong = Code(name: "line_too_long")
        /// The request was not a JSON object.
        public static let notAnObject = Code(name: "not_an_object")
        /// `op` named no known operation.
        public static let unknownOp = Code(name: "unknown_op")
        /// A required member or attribute was absent.
        public static let missingField = Code(name: "missing_field")
        /// A member or attribute had the wrong type or value.
        public static let invalidField = Code(name: "invalid_field")
        /// `kind` is not in the catalogue.
        public static let unknownKind = Code(name: "unknown_kind")
        /// The kind is reserved (`ledger.*`) or not allowed for this source.
        public static let forbiddenKind = Code(name: "forbidden_kind")
        /// `actor`, `subject` or `id` is not a valid identifier.
        public static let invalidIdentifier = Code(name: "invalid_identifier")
        /// Attributes nest too deeply, are too many, or a string is too long.
        public static let tooLarge = Code(name: "too_large")
        /// The id was already used for a different event.
        public static let idempotencyConflict = Code(name: "idempotency_conflict")
        /// The peer is not authorized.
        public static let unauthorized = Code(name: "unauthorized")
        /// The source exceeded its rate limit.
        public static let rateLimited = Code(name: "rate_limited")
        /// The disk holding the ledger is full; nothing was written. Retry with the same id once space
        /// is freed.
        public static let storageFull = Code(name: "storage_full")
        /// The ledger could not commit (a storage failure other than a full disk); nothing was written.
        public static let unavailable = Code(name: "unavailable")
        /// No checkpoint has been signed yet (the log is new, or has not committed since it started).
        public static let noCheckpointYet = Code(name: "no_checkpoint_yet")
        /// A request line did not arrive in full within `line_deadline_seconds` of its first byte
        /// (then the connection closes).
        public static let lineTimeout = Code(name: "line_timeout")
        /// The daemon has as many connections as it allows.
        public static let tooManyConnections = Code(name: "too_many_connections")
        /// The daemon is shutting down and accepts no new requests.
        public static let shuttingDown = Code(name: "shutting_down")
        /// The event or question names a purpose that is not configured (`consent.purposes`).
        public static let unknownPurpose = Code(name: "unknown_purpose")
        /// The peer may not ask about consent for this purpose (its rule's `consent` patterns).
        public static let forbiddenPurpose = Code(name: "forbidden_purpose")
        /// An operator operation (`prune`) from a peer whose rule does not mark it `operator`.
        public static let notOperator = Code(name: "not_operator")
        /// A prune's `now` is later than the clock on a store not created in test mode.
        public static let futureTime = Code(name: "future_time")
    }

    /// The stable error code sent to clients.
    public let code: Code
    /// What was wrong, for the client's developer.
    public let message: String

    /// A refusal with `code`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static func == (lhs: ProtocolError, rhs: ProtocolError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
