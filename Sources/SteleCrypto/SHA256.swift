import COpenSSL

/// SHA-256 (FIPS 180-4) computed by libcrypto.
///
/// A `SHA256` value owns one reusable libcrypto digest context, so hashing many small inputs
/// (headers, body fields, tree nodes) costs no allocation per hash. It is not thread-safe: give each
/// thread or writer its own. The static ``hash(_:)`` is a convenience for cold paths.
public final class SHA256 {
    /// The SHA-256 algorithm, fetched from the default provider once per process.
    nonisolated(unsafe) private static let algorithm: OpaquePointer = {
        guard let md = EVP_MD_fetch(nil, "SHA256", nil) else {
            fatalError("libcrypto has no SHA-256 implementation")
        }
        return md
    }()

    private let context: OpaquePointer

    /// Creates a hasher with its own libcrypto context.
    public init() {
        guard let context = EVP_MD_CTX_new() else { fatalError("libcrypto could not allocate a digest context") }
        self.context = context
    }

    deinit { EVP_MD_CTX_free(context) }

    /// Starts a new hash, feeds each part in order, and returns the digest of their concatenation.
    public func hash(parts: [UnsafeRawBufferPointer]) -> SHA256Digest {
        EVP_DigestInit_ex2(context, Self.algorithm, nil)
        for part in parts where part.count > 0 {
            EVP_DigestUpdate(context, part.baseAddress, part.count)
        }
        return SHA256Digest { out in
            var length: UInt32 = 0
            EVP_DigestFinal_ex(context, out.baseAddress!.assumingMemoryBound(to: UInt8.self), &length)
        }
    }

    /// The digest of one buffer.
    public func hash(_ bytes: UnsafeRawBufferPointer) -> SHA256Digest {
        hash(parts: [bytes])
    }

    /// The digest of a byte collection.
    public func hash(_ bytes: some Collection<UInt8>) -> SHA256Digest {
        if let digest = bytes.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0)) }) {
            return digest
        }
        return Array(bytes).withUnsafeBytes { hash($0) }
    }

    /// One prefix byte followed by a buffer: the RFC 6962 leaf hash when `prefix` is 0x00.
    public func hash(prefix: UInt8, _ bytes: UnsafeRawBufferPointer) -> SHA256Digest {
        withUnsafeBytes(of: prefix) { p in hash(parts: [p, bytes]) }
    }

    /// One prefix byte followed by two digests: the RFC 6962 interior node hash when `prefix` is 0x01.
    public func hash(prefix: UInt8, _ left: SHA256Digest, _ right: SHA256Digest) -> SHA256Digest {
        withUnsafeBytes(of: prefix) { p in
            left.withUnsafeBytes { l in right.withUnsafeBytes { r in hash(parts: [p, l, r]) } }
        }
    }

    /// The digest of a byte collection, with a context made for this call only.
    public static func hash(_ bytes: some Collection<UInt8>) -> SHA256Digest {
        SHA256().hash(bytes)
    }
}
