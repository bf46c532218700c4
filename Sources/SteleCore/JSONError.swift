/// Why a JSON text was rejected. Each case says where (byte offset) and what.
public struct JSONError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem. Open for new cases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// Not well-formed JSON (RFC 8259).
        public static let syntax = Code(name: "syntax")
        /// A number with a fraction or exponent: Stele accepts integers only.
        public static let floatNotAllowed = Code(name: "float_not_allowed")
        /// An integer outside ±(2^53−1).
        public static let integerOutOfRange = Code(name: "integer_out_of_range")
        /// An object with the same key twice.
        public static let duplicateKey = Code(name: "duplicate_key")
        /// Bytes that are not UTF-8.
        public static let invalidUTF8 = Code(name: "invalid_utf8")
        /// A `\u` escape naming half of a surrogate pair without the other half.
        public static let loneSurrogate = Code(name: "lone_surrogate")
        /// Deeper nesting than the parser allows.
        public static let tooDeep = Code(name: "too_deep")
        public var description: String { name }
    }

    /// What was wrong.
    public let code: Code
    /// Byte offset in the input where the problem was found.
    public let offset: Int
    /// A readable explanation.
    public let message: String

    init(_ code: Code, at offset: Int, _ message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) (at byte \(offset))" }

    public static func == (lhs: JSONError, rhs: JSONError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
