public import SteleCrypto

/// The right edge of a Merkle tree built leaf by leaf (RFC 6962 §2.1): the roots of its complete
/// subtrees, largest first. Holds O(log n) hashes, so a check of any size runs in flat memory; each
/// leaf appended reports the subtree hashes it completes, at their storage positions
/// (`Specs/merkle.md` §3), for comparing with a stored tree as they appear.
public struct MerkleRightEdge: Sendable {
    /// Leaves appended.
    public private(set) var size: UInt64 = 0
    private var roots: [SHA256Digest] = []

    public init() {}

    /// Appends `leaf`; calls `completed` with the storage position and hash of the leaf and of each
    /// subtree it completes, in storage order.
    public mutating func append(_ leaf: SHA256Digest, hasher: MerkleHasher, _ completed: (UInt64, SHA256Digest) throws -> Void) rethrows {
        var position = MerkleSubtrees.storedCount(leaves: size)
        var hash = leaf
        try completed(position, hash)
        var index = size
        while index & 1 == 1 {
            hash = hasher.nodeHash(roots.removeLast(), hash)
            position += 1
            try completed(position, hash)
            index >>= 1
        }
        roots.append(hash)
        size += 1
    }

    /// The root of the tree of ``size`` leaves.
    public func rootHash(hasher: MerkleHasher) -> SHA256Digest {
        guard var node = roots.last else { return MerkleHasher.emptyRoot }
        for left in roots.dropLast().reversed() { node = hasher.nodeHash(left, node) }
        return node
    }
}
