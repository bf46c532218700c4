public import SteleCrypto

/// Anything that can return the hash of a complete subtree (see ``MerkleSubtrees``): an in-memory
/// array, or the ledger's LMDB database of stored subtree hashes.
public protocol MerkleSubtreeSource {
    /// The hash of the complete subtree at `level` and `index`. Only called for subtrees that exist.
    func subtreeHash(level: Int, index: UInt64) throws -> SHA256Digest
}

/// Tree heads and proofs (RFC 6962 §2.1, RFC 9162 §2.1.3.1 and §2.1.4.1) computed from stored
/// complete-subtree hashes only, so each answer costs O(log n) reads of `source`.
public struct MerkleTree<Source: MerkleSubtreeSource> {
    /// Where complete-subtree hashes come from.
    public let source: Source
    /// The number of leaves `source` holds.
    public let size: UInt64
    private let hasher: MerkleHasher

    /// A view of the first `size` leaves of `source`.
    public init(source: Source, size: UInt64, hasher: MerkleHasher = MerkleHasher()) {
        self.source = source
        self.size = size
        self.hasher = hasher
    }

    /// MTH(D[0:n]): the root of the tree of the first `n` leaves (n ≤ size).
    public func rootHash(size n: UInt64) throws -> SHA256Digest {
        guard n <= size else {
            throw MerkleProofError(.outOfRange, "tree size \(n) is larger than the log (\(size) entries)")
        }
        return n == 0 ? MerkleHasher.emptyRoot : try rangeHash(0, n)
    }

    /// RFC 9162 §2.1.3.1 PATH(m, D[0:n]): the inclusion proof of leaf `index` in the tree of `n` leaves.
    public func inclusionProof(index: UInt64, size n: UInt64) throws -> [SHA256Digest] {
        guard n <= size else {
            throw MerkleProofError(.outOfRange, "tree size \(n) is larger than the log (\(size) entries)")
        }
        guard index < n else {
            throw MerkleProofError(.outOfRange, "entry \(index) is not in a tree of \(n) entries")
        }
        var proof: [SHA256Digest] = []
        try path(index, 0, n, into: &proof)
        return proof
    }

    /// RFC 9162 §2.1.4.1 PROOF(m, D[0:n]): the consistency proof from the tree of `m` leaves to the
    /// tree of `n` leaves. Empty when m == n or m == 0 (every tree is consistent with the empty one).
    public func consistencyProof(from m: UInt64, to n: UInt64) throws -> [SHA256Digest] {
        guard n <= size else {
            throw MerkleProofError(.outOfRange, "tree size \(n) is larger than the log (\(size) entries)")
        }
        guard m <= n else {
            throw MerkleProofError(.outOfRange, "old size \(m) is larger than new size \(n)")
        }
        var proof: [SHA256Digest] = []
        if m > 0 && m < n { try subproof(m, 0, n, complete: true, into: &proof) }
        return proof
    }

    /// MTH of leaves lo..<hi, where the range is one of those RFC 6962's recursion visits: either a
    /// complete aligned subtree (one read) or a right edge made of complete subtrees.
    private func rangeHash(_ lo: UInt64, _ hi: UInt64) throws -> SHA256Digest {
        let width = hi - lo
        if width.nonzeroBitCount == 1 && lo % width == 0 {
            let level = width.trailingZeroBitCount
            return try source.subtreeHash(level: level, index: lo >> UInt64(level))
        }
        let k = MerkleSubtrees.split(width)
        return hasher.nodeHash(try rangeHash(lo, lo + k), try rangeHash(lo + k, hi))
    }

    private func path(_ m: UInt64, _ lo: UInt64, _ hi: UInt64, into proof: inout [SHA256Digest]) throws {
        let width = hi - lo
        guard width > 1 else { return }
        let k = MerkleSubtrees.split(width)
        if m < k {
            try path(m, lo, lo + k, into: &proof)
            proof.append(try rangeHash(lo + k, hi))
        } else {
            try path(m - k, lo + k, hi, into: &proof)
            proof.append(try rangeHash(lo, lo + k))
        }
    }

    private func subproof(
        _ m: UInt64, _ lo: UInt64, _ hi: UInt64, complete: Bool, into proof: inout [SHA256Digest]
    ) throws {
        let width = hi - lo
        if m == width {
            if !complete { proof.append(try rangeHash(lo, hi)) }
            return
        }
        let k = MerkleSubtrees.split(width)
        if m <= k {
            try subproof(m, lo, lo + k, complete: complete, into: &proof)
            proof.append(try rangeHash(lo + k, hi))
        } else {
            try subproof(m - k, lo + k, hi, complete: false, into: &proof)
            proof.append(try rangeHash(lo, lo + k))
        }
    }
}
