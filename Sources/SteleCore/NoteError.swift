/// Why a signed note, key string or checkpoint was rejected.
public struct NoteError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem. Open for new cases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The note is not well-formed (C2SP signed-note).
        public static let malformedNote = Code(name: "malformed_note")
        /// A verifier or signer key string is not well-formed.
        public static let malformedKey = Code(name: "malformed_key")
        /// A signature by a trusted key did not verify: the text was altered or the signature forged.
        public static let invalidSignature = Code(name: "invalid_signature")
        /// No signature by any trusted key is present.
        public static let unverified = Code(name: "unverified")
        /// The checkpoint body is not a C2SP tlog-checkpoint.
        public static let malformedCheckpoint = Code(name: "malformed_checkpoint")
        /// The text is not a C2SP tlog-proof.
        public static let malformedProof = Code(name: "malformed_proof")
        public var description: String { name }
    }

    /// What was wrong.
    public let code: Code
    /// A readable explanation.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: NoteError, rhs: NoteError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
