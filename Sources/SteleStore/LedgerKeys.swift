import SteleCore
import SteleCrypto

/// Names of the LMDB databases and the byte layout of their keys and values (`Specs/store.md`).
enum LedgerKeys {
    static let meta = "meta"
    static let entries = "entries"
    static let tree = "tree"
    static let index = "idx"
    static let checkpoints = "checkpoints"
    static let consent = "consent"
    static let all = [meta, entries, tree, index, checkpoints, consent]

    static let formatKey = Array("format".utf8)
    static let formatValue = Array("stele-ledger/1".utf8)
    static let originKey = Array("origin".utf8)
    static let createdKey = Array("created".utf8)
    static let indexKeyKey = Array("index_key".utf8)
    static let headKey = Array("head".utf8)
    static let redactionsKey = Array("redactions".utf8)
    /// `1` in a store created in test mode: retention commands accept times later than the clock.
    static let testModeKey = Array("test_mode".utf8)
    /// Present once the `consent` database holds the state of every entry (`Specs/consent.md`).
    static let consentStateKey = Array("consent_state".utf8)
    static let consentStateVersion = Array("1".utf8)
    /// While a writer is open: the generation of the mark it wrote to the journal (`store.md`).
    static let journalMarkKey = Array("journal".utf8)

    /// Records of one entry in the `entries` database: `seq ‖ tag`.
    static let headerTag: UInt8 = 0x01
    static let bodyTag: UInt8 = 0x02
    static let idempotencyTag: UInt8 = 0x03

    static func header(_ seq: UInt64) -> [UInt8] { u64(seq) + [headerTag] }
    static func body(_ seq: UInt64) -> [UInt8] { u64(seq) + [bodyTag] }

    /// 8-byte big-endian encoding, so LMDB's bytewise order is numeric order.
    static func u64(_ value: UInt64) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }

    static func readU64(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[offset + i]) }
        return value
    }

    static func readU32(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<4 { value = value << 8 | UInt32(bytes[offset + i]) }
        return value
    }

    /// Times as order-preserving unsigned integers (sign bit flipped).
    static func time(_ t: Timestamp) -> [UInt8] { u64(UInt64(bitPattern: t.microseconds) ^ (1 << 63)) }

    static func readTime(_ bytes: UnsafeRawBufferPointer, at offset: Int = 0) -> Timestamp {
        Timestamp(microseconds: Int64(bitPattern: readU64(bytes, at: offset) ^ (1 << 63)))
    }

    /// Runs `body` with the 9-byte `entries` key `seq ‖ tag`, built on the stack.
    static func withEntryKey<R>(_ seq: UInt64, _ tag: UInt8, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: (seq.bigEndian, tag)) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<9])) }
    }

    /// Runs `body` with the 8-byte big-endian key `value`, built on the stack.
    static func withU64Key<R>(_ value: UInt64, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: value.bigEndian) { try body($0) }
    }

    /// Keyed hash of an identifier in `role` ("subject", "actor", "kind"), used instead of the raw identifier in index keys.
    static func identifierHash(indexKey: SHA256Digest, role: String, identifier: String, sha: SHA256) -> KeyedHash {
        KeyedHash.compute(indexKey: indexKey, label: role, identifier, sha: sha)
    }

    /// Keyed hash of (source, client id) for the idempotency log.
    static func idempotencyHash(indexKey: SHA256Digest, source: String, id: String, sha: SHA256) -> KeyedHash {
        KeyedHash.compute(indexKey: indexKey, label: "idempotency", source, id, sha: sha)
    }
}

/// The chain head record: next seq, last leaf hash, last ts (48 bytes).
struct ChainHead: Equatable, Sendable {
    var size: UInt64
    var lastLeaf: SHA256Digest
    var lastTimestamp: Timestamp

    static let empty = ChainHead(size: 0, lastLeaf: .zero, lastTimestamp: Timestamp(microseconds: Int64.min))

    var bytes: [UInt8] {
        LedgerKeys.u64(size) + lastLeaf.bytes + LedgerKeys.time(lastTimestamp)
    }

    init(size: UInt64, lastLeaf: SHA256Digest, lastTimestamp: Timestamp) {
        self.size = size
        self.lastLeaf = lastLeaf
        self.lastTimestamp = lastTimestamp
    }

    init?(_ raw: UnsafeRawBufferPointer) {
        guard raw.count == 48, let leaf = SHA256Digest(bytes: raw[8..<40]) else { return nil }
        self.size = LedgerKeys.readU64(raw)
        self.lastLeaf = leaf
        self.lastTimestamp = LedgerKeys.readTime(raw, at: 40)
    }
}
