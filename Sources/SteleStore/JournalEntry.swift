import SteleCore
import SteleCrypto

/// One entry as the journal holds it: everything the store records for it, so that moving it into
/// the store needs no event, no preparation and no secret beyond what is here.
///
/// Immutable, and a reference: the writer hands each entry from its append queue to its store queue and
/// keeps it for answering retries, and copying a reference costs one retain where copying the
/// value cost two (its header and body) and 170 bytes.
public final class JournalEntry: Equatable, Sendable {
    /// The entry's position in the log.
    public let seq: UInt64
    let timestamp: Timestamp
    let idempotencyKey: KeyedHash?
    let actorHash: KeyedHash?
    let kindHash: KeyedHash
    let subjectHash: KeyedHash?
    /// The header's canonical bytes (the leaf).
    let header: [UInt8]
    /// The body's canonical bytes.
    let body: [UInt8]
    /// For an entry this process's ``EntryBuilder`` built (never read from a file): its leaf hash
    /// and the leaf it chains to, so that applying it needs no parse of its own header.
    let built: (leaf: SHA256Digest, prev: SHA256Digest)?

    init(
        seq: UInt64, timestamp: Timestamp, idempotencyKey: KeyedHash?, actorHash: KeyedHash?, kindHash: KeyedHash,
        subjectHash: KeyedHash?, header: [UInt8], body: [UInt8], built: (leaf: SHA256Digest, prev: SHA256Digest)? = nil
    ) {
        self.seq = seq
        self.timestamp = timestamp
        self.idempotencyKey = idempotencyKey
        self.actorHash = actorHash
        self.kindHash = kindHash
        self.subjectHash = subjectHash
        self.header = header
        self.body = body
        self.built = built
    }

    /// Equal when everything the journal records is equal (``built`` is not recorded).
    public static func == (a: JournalEntry, b: JournalEntry) -> Bool {
        a.seq == b.seq && a.timestamp == b.timestamp && a.idempotencyKey == b.idempotencyKey && a.actorHash == b.actorHash
            && a.kindHash == b.kindHash && a.subjectHash == b.subjectHash && a.header == b.header && a.body == b.body
    }

    private static let hasIdempotencyKey: UInt8 = 1, hasActor: UInt8 = 2, hasSubject: UInt8 = 4

    /// Decodes a record's payload (entry count, then entries; `Specs/store.md`, "Journal").
    struct Reader {
        let bytes: [UInt8]
        var offset: Int
        let limit: Int

        init(bytes: [UInt8], range: Range<Int>) {
            self.bytes = bytes
            self.offset = range.lowerBound
            self.limit = range.upperBound
        }

        mutating func readAll(into entries: inout [JournalEntry]) throws {
            let count = try u32()
            for _ in 0..<count {
                let seq = try u64()
                let timestamp = Timestamp(microseconds: Int64(bitPattern: try u64()))
                let flags = try take(1).first!
                let idempotencyKey = flags & JournalEntry.hasIdempotencyKey != 0 ? try hash() : nil
                let actorHash = flags & JournalEntry.hasActor != 0 ? try hash() : nil
                let kindHash = try hash()
                let subjectHash = flags & JournalEntry.hasSubject != 0 ? try hash() : nil
                let header = Array(try take(Int(try u32())))
                let body = Array(try take(Int(try u32())))
                entries.append(JournalEntry(
                    seq: seq, timestamp: timestamp, idempotencyKey: idempotencyKey, actorHash: actorHash,
                    kindHash: kindHash, subjectHash: subjectHash, header: header, body: body))
            }
            guard offset == limit else { throw Self.damaged }
        }

        private static let damaged = LedgerError(.corrupt, "a journal record passed its checksum but does not decode: the journal was altered")

        private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard count <= limit - offset else { throw Self.damaged }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }

        private mutating func u32() throws -> UInt32 {
            let at = try take(4).startIndex
            return Journal.u32(bytes, at)
        }

        private mutating func u64() throws -> UInt64 {
            let at = try take(8).startIndex
            return Journal.u64(bytes, at)
        }

        private mutating func hash() throws -> KeyedHash {
            try Array(take(KeyedHash.byteCount)).withUnsafeBytes { KeyedHash(bytes: $0)! }
        }
    }

    /// Appends this entry's encoding to `bytes`.
    static func encode(
        into bytes: inout [UInt8], seq: UInt64, timestamp: Timestamp, idempotencyKey: KeyedHash?, actorHash: KeyedHash?,
        kindHash: KeyedHash, subjectHash: KeyedHash?, header: [UInt8], body: [UInt8]
    ) {
        appendLittleEndian(&bytes, seq)
        appendLittleEndian(&bytes, UInt64(bitPattern: timestamp.microseconds))
        var flags: UInt8 = 0
        if idempotencyKey != nil { flags |= hasIdempotencyKey }
        if actorHash != nil { flags |= hasActor }
        if subjectHash != nil { flags |= hasSubject }
        bytes.append(flags)
        for hash in [idempotencyKey, actorHash, kindHash, subjectHash] {
            if let hash { hash.withUnsafeBytes { bytes.append(contentsOf: $0) } }
        }
        appendLittleEndian(&bytes, UInt32(header.count))
        bytes.append(contentsOf: header)
        appendLittleEndian(&bytes, UInt32(body.count))
        bytes.append(contentsOf: body)
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Collects the entries of one journal record (one batch) in a reusable buffer.
struct JournalRecordBuilder {
    private var bytes: [UInt8] = []
    /// Entries added since ``reset()``.
    private(set) var count: UInt32 = 0
    /// The last entry added, if any.
    private(set) var lastSeq: UInt64?
    /// The record's size so far, header included.
    var byteCount: Int { bytes.count }

    init() { reset() }

    /// Empties the builder, keeping its buffer.
    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: repeatElement(0, count: Journal.headerSize + 4))
        count = 0
        lastSeq = nil
    }

    /// Adds one entry.
    mutating func add(_ entry: JournalEntry) {
        add(
            seq: entry.seq, timestamp: entry.timestamp, idempotencyKey: entry.idempotencyKey, actorHash: entry.actorHash,
            kindHash: entry.kindHash, subjectHash: entry.subjectHash, header: entry.header, body: entry.body)
    }

    /// Adds one entry's fields.
    mutating func add(
        seq: UInt64, timestamp: Timestamp, idempotencyKey: KeyedHash?, actorHash: KeyedHash?, kindHash: KeyedHash,
        subjectHash: KeyedHash?, header: [UInt8], body: [UInt8]
    ) {
        JournalEntry.encode(
            into: &bytes, seq: seq, timestamp: timestamp, idempotencyKey: idempotencyKey, actorHash: actorHash,
            kindHash: kindHash, subjectHash: subjectHash, header: header, body: body)
        count += 1
        lastSeq = seq
    }

    /// The finished record: magic, generation, payload length and CRC-32C, then the payload.
    mutating func finish(generation: UInt64) -> [UInt8] {
        let payloadLength = bytes.count - Journal.headerSize
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: Journal.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: generation.littleEndian, toByteOffset: 4, as: UInt64.self)
            raw.storeBytes(of: UInt32(payloadLength).littleEndian, toByteOffset: 12, as: UInt32.self)
            raw.storeBytes(of: count.littleEndian, toByteOffset: Journal.headerSize, as: UInt32.self)
            let crc = CRC32C.checksum(
                UnsafeRawBufferPointer(rebasing: raw[Journal.headerSize...]),
                continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[4..<16])))
            raw.storeBytes(of: crc.littleEndian, toByteOffset: 16, as: UInt32.self)
        }
        return bytes
    }
}
