public import SteleCrypto

/// Verification of RFC 9162 inclusion and consistency proofs, following the iterative algorithms of
/// RFC 9162 §2.1.3.2 and §2.1.4.2 exactly, so results agree with every other implementation.
public struct MerkleVerifier {
    private let hasher: MerkleHasher

    /// A verifier with its own hashing context.
    public init(hasher: MerkleHasher = MerkleHasher()) {
        self.hasher = hasher
    }

    /// Checks that `leafHash` is leaf `index` of the tree of `size` leaves whose root is `root`.
    /// - Throws: ``MerkleProofError`` saying why not.
    public func verifyInclusion(
        leafHash: SHA256Digest, index: UInt64, size: UInt64, proof: [SHA256Digest], root: SHA256Digest
    ) throws {
        let computed = try rootFromInclusionProof(leafHash: leafHash, index: index, size: size, proof: proof)
        guard computed == root else {
            throw MerkleProofError(.rootMismatch, "the inclusion proof for entry \(index) leads to \(computed), not to the tree head \(root) of size \(size)")
        }
    }

    /// The root that an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1–5).
    public func rootFromInclusionProof(
        leafHash: SHA256Digest, index: UInt64, size: UInt64, proof: [SHA256Digest]
    ) throws -> SHA256Digest {
        guard index < size else {
            throw MerkleProofError(.outOfRange, "entry \(index) is not in a tree of \(size) entries")
        }
        var fn = index
        var sn = size - 1
        var r = leafHash
        for p in proof {
            guard sn != 0 else {
                throw MerkleProofError(.wrongLength, "the inclusion proof has more hashes than a tree of \(size) needs")
            }
            if fn & 1 == 1 || fn == sn {
                r = hasher.nodeHash(p, r)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                r = hasher.nodeHash(r, p)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else {
            throw MerkleProofError(.wrongLength, "the inclusion proof has fewer hashes than a tree of \(size) needs")
        }
        return r
    }

    /// Checks that the tree of `newSize` leaves with root `newRoot` extends the tree of `oldSize`
    /// leaves with root `oldRoot` (RFC 9162 §2.1.4.2).
    /// - Throws: ``MerkleProofError`` saying why not.
    public func verifyConsistency(
        oldSize: UInt64, oldRoot: SHA256Digest, newSize: UInt64, newRoot: SHA256Digest, proof: [SHA256Digest]
    ) throws {
        guard oldSize <= newSize else {
            throw MerkleProofError(.outOfRange, "old size \(oldSize) is larger than new size \(newSize): the log shrank")
        }
        if oldSize == newSize {
            guard proof.isEmpty else {
                throw MerkleProofError(.wrongLength, "a consistency proof between equal sizes must be empty")
            }
            guard oldRoot == newRoot else {
                throw MerkleProofError(.rootMismatch, "two different tree heads for the same size \(newSize): the log forked")
            }
            return
        }
        if oldSize == 0 {
            guard proof.isEmpty else {
                throw MerkleProofError(.wrongLength, "a consistency proof from the empty tree must be empty")
            }
            guard oldRoot == MerkleHasher.emptyRoot else {
                throw MerkleProofError(.rootMismatch, "the root of an empty tree must be SHA-256 of the empty string")
            }
            return
        }
        guard !proof.isEmpty else {
            throw MerkleProofError(.wrongLength, "the consistency proof from \(oldSize) to \(newSize) is empty")
        }
        var path = proof
        if oldSize.nonzeroBitCount == 1 { path.insert(oldRoot, at: 0) }
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var fr = path[0]
        var sr = path[0]
        for c in path.dropFirst() {
            guard sn != 0 else {
                throw MerkleProofError(.wrongLength, "the consistency proof from \(oldSize) to \(newSize) is too long")
            }
            if fn & 1 == 1 || fn == sn {
                fr = hasher.nodeHash(c, fr)
                sr = hasher.nodeHash(c, sr)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                sr = hasher.nodeHash(sr, c)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else {
            throw MerkleProofError(.wrongLength, "the consistency proof from \(oldSize) to \(newSize) is too short")
        }
        guard fr == oldRoot else {
            throw MerkleProofError(.rootMismatch, "the consistency proof does not lead to the old tree head of size \(oldSize)")
        }
        guard sr == newRoot else {
            throw MerkleProofError(.rootMismatch, "the consistency proof does not lead to the new tree head of size \(newSize)")
        }
    }
}
