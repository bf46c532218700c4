/// Arithmetic over the complete ("perfect") subtrees of an RFC 6962 tree, and the dense storage order
/// in which a log can append them.
///
/// The subtree at `level` L and `index` n covers leaves `n·2^L ..< (n+1)·2^L`; it exists once leaf
/// `(n+1)·2^L − 1` has been appended and never changes afterwards. Appending leaf i completes the
/// subtrees (L, i >> L) for L = 0 … trailing-one-bits(i). Stored in that completion order, every
/// subtree gets a position that only ever grows (see ``storageIndex(level:index:)``).
public enum MerkleSubtrees {
    /// The position of subtree (level, index) in completion order.
    ///
    /// Subtree (L, n) is completed together with leaf `i = (n+1)·2^L − 1`. Before leaf i, the
    /// subtrees completed number Σ_{j<i} (1 + trailing-ones(j)) = 2i − popcount(i); leaf i's own
    /// subtrees follow in level order, so (L, n) sits L positions after leaf i.
    public static func storageIndex(level: Int, index: UInt64) -> UInt64 {
        let lastLeaf = ((index + 1) << UInt64(level)) - 1
        return storedCount(leaves: lastLeaf) + UInt64(level)
    }

    /// How many complete subtrees exist in a tree of `leaves` leaves: `2·leaves − popcount(leaves)`.
    public static func storedCount(leaves: UInt64) -> UInt64 {
        2 * leaves - UInt64(leaves.nonzeroBitCount)
    }

    /// The largest power of two strictly smaller than `n` (n ≥ 2): RFC 6962's split point k.
    public static func split(_ n: UInt64) -> UInt64 {
        precondition(n >= 2, "a tree of fewer than two leaves has no split")
        return 1 << UInt64(63 - (n - 1).leadingZeroBitCount)
    }

    /// The complete subtrees that make up leaves `0 ..< size`, largest (leftmost) first.
    public static func decomposition(of size: UInt64) -> [(level: Int, index: UInt64)] {
        var result: [(level: Int, index: UInt64)] = []
        var start: UInt64 = 0
        for level in stride(from: 63, through: 0, by: -1) where size & (1 << UInt64(level)) != 0 {
            result.append((level, start >> UInt64(level)))
            start += 1 << UInt64(level)
        }
        return result
    }
}
