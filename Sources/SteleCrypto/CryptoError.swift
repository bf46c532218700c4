/// A failure in a cryptographic operation or in decoding key material.
///
/// Compare errors by ``code``; the ``message`` says what was wrong in words an operator can act on.
public struct CryptoError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure. Open for new cases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// Key bytes had the wrong length or form.
        public static let invalidKey = Code(name: "invalid_key")
        /// A PEM document could not be decoded as the expected key type.
        public static let invalidPEM = Code(name: "invalid_pem")
        /// A signature had the wrong length.
        public static let invalidSignature = Code(name: "invalid_signature")
        /// libcrypto reported an internal failure (out of memory, no entropy).
        public static let library = Code(name: "library")
        public var description: String { name }
    }

    /// What kind of failure this is.
    public let code: Code
    /// A human-readable explanation.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static func == (lhs: CryptoError, rhs: CryptoError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
