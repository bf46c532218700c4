public import SteleCrypto

/// RFC 6962 / RFC 9162 §2.1 hashing: leaves are `SHA-256(0x00 ‖ data)`, interior nodes
/// `SHA-256(0x01 ‖ left ‖ right)`, the empty tree `SHA-256("")`.
///
/// Owns one reusable SHA-256 context; not thread-safe (one per writer or per task).
public final class MerkleHasher {
    private let sha = SHA256()

    /// Creates a hasher.
    public init() {}

    /// The root of the empty tree: SHA-256 of the empty string.
    public static let emptyRoot = SHA256.hash([UInt8]())

    /// The leaf hash of `data`.
    public func leafHash(_ data: UnsafeRawBufferPointer) -> SHA256Digest {
        sha.hash(prefix: 0x00, data)
    }

    /// The leaf hash of `data`.
    public func leafHash(_ data: [UInt8]) -> SHA256Digest {
        data.withUnsafeBytes { leafHash($0) }
    }

    /// The hash of an interior node.
    public func nodeHash(_ left: SHA256Digest, _ right: SHA256Digest) -> SHA256Digest {
        sha.hash(prefix: 0x01, left, right)
    }
}
