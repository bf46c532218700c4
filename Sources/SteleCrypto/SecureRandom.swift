import COpenSSL

/// Cryptographically secure random bytes from libcrypto's DRBG.
public enum SecureRandom {
    /// Fills the buffer with random bytes.
    /// - Throws: ``CryptoError`` with code `library` if the generator cannot be seeded.
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) throws {
        guard buffer.count > 0 else { return }
        guard RAND_bytes(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(buffer.count)) == 1 else {
            throw CryptoError(.library, "the random number generator failed (no entropy available)")
        }
    }

    /// Returns `count` random bytes.
    public static func bytes(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try fill($0) }
        return out
    }
}

/// A buffer of bytes from ``SecureRandom``, refilled 4 KiB at a time, so that drawing a 16-byte salt
/// for every body field costs a copy instead of a call into the generator. Bytes are zeroed once
/// handed out. Not thread-safe: one per writer or per thread.
public final class SecureRandomPool {
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private var offset = 4096

    /// An empty pool (filled on first use).
    public init() {}

    /// Fills `out` with random bytes.
    public func fill(_ out: UnsafeMutableRawBufferPointer) throws {
        var written = 0
        while written < out.count {
            if offset == buffer.count {
                try buffer.withUnsafeMutableBytes { try SecureRandom.fill($0) }
                offset = 0
            }
            let n = min(out.count - written, buffer.count - offset)
            buffer.withUnsafeMutableBytes { pool in
                (out.baseAddress! + written).copyMemory(from: pool.baseAddress! + offset, byteCount: n)
                (pool.baseAddress! + offset).initializeMemory(as: UInt8.self, repeating: 0, count: n)
            }
            offset += n
            written += n
        }
    }
}
