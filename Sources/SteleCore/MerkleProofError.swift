/// Why a Merkle tree head or proof could not be produced or did not verify.
public struct MerkleProofError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of problem. Open for new cases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A leaf index, old size or tree size outside what the tree holds or the request allows.
        public static let outOfRange = Code(name: "outOfRange")
        /// The proof has the wrong number of hashes for the sizes given.
        public static let wrongLength = Code(name: "wrongLength")
        /// The proof's hashes lead to a different root than the one expected.
        public static let rootMismatch = Code(name: "rootMismatch")
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
}
