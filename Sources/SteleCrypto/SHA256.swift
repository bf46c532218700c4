import COpenSSL

/// SHA-256 (FIPS 180-4) computed by libcrypto.
///
/// A `SHA256` value owns one reusable libcrypto context, so hashing many small inputs (headers, body
/// fields, tree nodes) costs no allocation per hash. It is not thread-safe: give each thread or
/// writer its own. The static ``hash(_:)`` is a convenience for cold paths.
public final class SHA256 {
    private let context: UnsafeMutablePointer<stele_sha256_ctx>

    /// Creates a hasher with its own context.
    public init() {
        context = .allocate(capacity: 1)
        context.initialize(to: stele_sha256_ctx())
    }

    deinit { context.deallocate() }

    /// Starts a new hash, feeds each part in order, and returns the digest of their concatenation.
    public func hash(parts: [UnsafeRawBufferPointer]) -> SHA256Digest {
        stele_sha256_init(context)
        for part in parts where part.count > 0 { stele_sha256_update(context, part.baseAddress, part.count) }
        return finish()
    }

    /// The digest of one buffer.
    public func hash(_ bytes: UnsafeRawBufferPointer) -> SHA256Digest {
        stele_sha256_init(context)
        if bytes.count > 0 { stele_sha256_update(context, bytes.baseAddress, bytes.count) }
        return finish()
    }

    /// The digest of one buffer, written to the 32 bytes at `out`.
    func hash(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        stele_sha256_init(context)
        if bytes.count > 0 { stele_sha256_update(context, bytes.baseAddress, bytes.count) }
        stele_sha256_final(context, out.assumingMemoryBound(to: UInt8.self))
    }

    /// The digest of a byte array.
    public func hash(_ bytes: [UInt8]) -> SHA256Digest {
        bytes.withUnsafeBytes { hash($0) }
    }

    /// Feeds one byte to the hash begun with ``begin()``.
    public func update(byte: UInt8) {
        var b = byte
        stele_sha256_update(context, &b, 1)
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
        var p = prefix
        stele_sha256_init(context)
        stele_sha256_update(context, &p, 1)
        if bytes.count > 0 { stele_sha256_update(context, bytes.baseAddress, bytes.count) }
        return finish()
    }

    /// One prefix byte followed by two digests: the RFC 6962 interior node hash when `prefix` is 0x01.
    public func hash(prefix: UInt8, _ left: SHA256Digest, _ right: SHA256Digest) -> SHA256Digest {
        var p = prefix
        stele_sha256_init(context)
        stele_sha256_update(context, &p, 1)
        left.withUnsafeBytes { stele_sha256_update(context, $0.baseAddress, 32) }
        right.withUnsafeBytes { stele_sha256_update(context, $0.baseAddress, 32) }
        return finish()
    }

    /// Incremental use: ``begin()``, any number of ``update(_:)``, then ``finish()``.
    public func begin() { stele_sha256_init(context) }

    /// Feeds bytes to the hash begun with ``begin()``.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0 { stele_sha256_update(context, bytes.baseAddress, bytes.count) }
    }

    /// Feeds bytes to the hash begun with ``begin()``.
    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Completes the hash begun with ``begin()``.
    public func finish() -> SHA256Digest {
        SHA256Digest { out in stele_sha256_final(context, out.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
    }

    /// A hash in progress: the bytes fed since ``begin()``, absorbed. Restoring it with
    /// ``resume(_:)`` continues that hash, so a shared prefix is hashed once (a "midstate").
    public struct State: Sendable {
        // The libcrypto context, copied as plain bytes (it holds no pointers).
        fileprivate var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
            UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    }

    /// The hash in progress (see ``State``).
    public var state: State {
        precondition(MemoryLayout<stele_sha256_ctx>.size <= MemoryLayout<State>.size)
        var state = State()
        withUnsafeMutableBytes(of: &state.storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: context, count: MemoryLayout<stele_sha256_ctx>.size)) }
        return state
    }

    /// Continues the hash captured in `state` (instead of ``begin()``).
    public func resume(_ state: State) {
        withUnsafeBytes(of: state.storage) {
            UnsafeMutableRawPointer(context).copyMemory(from: $0.baseAddress!, byteCount: MemoryLayout<stele_sha256_ctx>.size)
        }
    }

    /// The digest of a byte collection, with a context made for this call only.
    public static func hash(_ bytes: some Collection<UInt8>) -> SHA256Digest {
        SHA256().hash(bytes)
    }
}
