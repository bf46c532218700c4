import SteleCore
import SteleCrypto

/// The first 16 bytes of a SHA-256 keyed with the store's secret index key: what the indexes and
/// the idempotency log store instead of raw identifiers (`Specs/store.md`). Held inline (no heap
/// storage), so the append path can carry and compare it freely.
@_spi(Benchmarks) public struct KeyedHash: Hashable, Sendable {
    /// Bytes 0–7 and 8–15 of the digest, big-endian.
    let high: UInt64
    let low: UInt64

    static let byteCount = 16

    /// The hash whose digest bytes 0–7 are `high` and 8–15 are `low`.
    @_spi(Benchmarks) public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The leading 16 bytes of `digest`.
    init(_ digest: SHA256Digest) {
        (high, low) = digest.withUnsafeBytes { (LedgerKeys.readU64($0), LedgerKeys.readU64($0, at: 8)) }
    }

    /// Reads 16 stored bytes; nil for any other length.
    init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == Self.byteCount else { return nil }
        (high, low) = (LedgerKeys.readU64(bytes), LedgerKeys.readU64(bytes, at: 8))
    }

    /// The 16 stored bytes.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { try body($0) }
    }

    var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    // The value is already a uniformly random keyed hash; half of it is plenty for a hash table.
    @_spi(Benchmarks) public func hash(into hasher: inout Hasher) { hasher.combine(low) }

    /// SHA-256(indexKey ‖ label ‖ 0x00 ‖ part), cut to 16 bytes; with `second`, ‖ 0x00 ‖ second follows.
    static func compute(indexKey: SHA256Digest, label: String, _ part: String, _ second: String? = nil, sha: SHA256) -> KeyedHash {
        sha.begin()
        indexKey.withUnsafeBytes { sha.update($0) }
        update(sha, label)
        sha.update(byte: 0)
        update(sha, part)
        if let second {
            sha.update(byte: 0)
            update(sha, second)
        }
        return KeyedHash(sha.finish())
    }

    private static func update(_ sha: SHA256, _ text: String) {
        text.withUTF8Bytes { sha.update($0) }
    }
}
