/// Why an entry header, body or field could not be built, parsed or verified.
public struct EntryFormatError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem. Open for new cases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The text is not valid JSON in Stele's subset.
        public static let malformedJSON = Code(name: "malformed_json")
        /// A member is missing, has the wrong type, or is not allowed.
        public static let invalidField = Code(name: "invalid_field")
        /// The bytes are valid JSON but not the canonical (RFC 8785) form.
        public static let notCanonical = Code(name: "not_canonical")
        /// The format version is one this implementation does not know.
        public static let unsupportedVersion = Code(name: "unsupported_version")
        /// A body field's value or the body as a whole does not match its commitment.
        public static let commitmentMismatch = Code(name: "commitment_mismatch")
        public var description: String { name }
    }

    /// What was wrong.
    public let code: Code
    /// A readable explanation naming the field involved.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: EntryFormatError, rhs: EntryFormatError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
