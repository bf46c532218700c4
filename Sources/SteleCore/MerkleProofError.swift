/// Why a Merkle tree head or proof could not be produced or did not verify.
public struct MerkleProofError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem. Open for new cases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A leaf index, old size or tree size outside what the tree holds or the request allows.
        public static let outOfRange = Code(name: "out_of_range")
        /// The proof has the wrong number of hashes for the sizes given.
        public static let wrongLength = Code(name: "wrong_length")
        /// The proof's hashes lead to a different root than the one expected.
        public static let rootMismatch = Code(name: "root_mismatch")
        public var description: String { name }
    }

    /// What was wrong.
    public let code: Code
    /// A readable explanation naming the sizes and indexes involved.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: MerkleProofError, rhs: MerkleProofError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
