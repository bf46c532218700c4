public import SteleCrypto

/// A Merkle tree held in memory, storing its complete subtrees in ``MerkleSubtrees`` order.
/// Used by tests, by verifiers that rebuild a tree from leaf hashes, and as the reference for the store.
public struct MemoryMerkleTree: MerkleSubtreeSource {
    /// Complete-subtree hashes in storage order.
    public private(set) var stored: [SHA256Digest] = []
    /// The number of leaves appended.
    public private(set) var size: UInt64 = 0

    /// An empty tree.
    public init() {}

    /// A tree of the given leaf hashes.
    public init(leafHashes: some Sequence<SHA256Digest>, hasher: MerkleHasher = MerkleHasher()) {
        for leaf in leafHashes { append(leafHash: leaf, hasher: hasher) }
    }

    /// Appends one leaf hash and the subtree hashes it completes, in storage order.
    public mutating func append(leafHash: SHA256Digest, hasher: MerkleHasher) {
        var hash = leafHash
        stored.append(hash)
        var index = size
        var level = 0
        while index & 1 == 1 {
            // The left sibling at this level is the complete subtree (level, index - 1).
            let left = stored[Int(MerkleSubtrees.storageIndex(level: level, index: index - 1))]
            hash = hasher.nodeHash(left, hash)
            stored.append(hash)
            index >>= 1
            level += 1
        }
        size += 1
    }

    /// The hash of the complete subtree at `level`, `index`.
    public func subtreeHash(level: Int, index: UInt64) throws -> SHA256Digest {
        let position = MerkleSubtrees.storageIndex(level: level, index: index)
        guard position < stored.count else {
            throw MerkleProofError(.outOfRange, "subtree (\(level), \(index)) is not complete")
        }
        return stored[Int(position)]
    }

    /// A proof-answering view of this tree.
    public func view(hasher: MerkleHasher = MerkleHasher()) -> MerkleTree<MemoryMerkleTree> {
        MerkleTree(source: self, size: size, hasher: hasher)
    }
}
