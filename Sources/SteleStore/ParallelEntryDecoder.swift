import Dispatch
import SteleCore
import SteleCrypto

/// Decodes stored entries for the integrity check on several threads: each entry's leaf hash, its
/// parsed header and its parsed body checked against the header's commitment. That is the
/// per-entry work that needs nothing from the entries before it; what does (the chain, the
/// timestamps, the tree, the derived records) stays with the caller, in seq order.
///
/// The raw bytes are pointers into one LMDB read transaction's memory map, lent by the caller: a
/// read snapshot's pages are read-only and never change while it is open, so other threads may read
/// them (only calls into LMDB itself are bound to the transaction's thread). The caller keeps the
/// transaction open until ``wait()`` or ``forEach(_:)`` has returned.
struct ParallelEntryDecoder: @unchecked Sendable {
    /// One stored entry's raw records, as the store holds them (in the lender's read snapshot; see
    /// the type's notes for why other threads may read them).
    struct Raw: @unchecked Sendable {
        let seq: UInt64
        let header: UnsafeRawBufferPointer
        /// Nil when the store has no body record for the entry.
        let body: UnsafeRawBufferPointer?
    }

    /// What became of an entry's body.
    enum Body: Sendable {
        /// The store has no body record.
        case missing
        /// The body record is not a valid body.
        case undecodable(EntryFormatError)
        /// The body decodes but does not match the commitment in the header.
        case mismatch
        /// The body decodes and matches the header; what it decides about the derived records.
        case valid(DerivedRecordAudit.BodyKeys)
    }

    /// One entry, decoded.
    struct Decoded: Sendable {
        let seq: UInt64
        /// SHA-256(0x00 ‖ header bytes): what the next entry's `prev` must name.
        let leaf: SHA256Digest
        let header: Result<EntryHeader, EntryFormatError>
        /// `.missing` also when the header could not be parsed (the body is not looked at then).
        let body: Body
    }

    private let group = DispatchGroup()
    private let results: ResultBox

    /// Starts decoding `raws` on up to `threads` threads, in the background, with the ledger's
    /// index key (for the keyed hashes of each body's identifiers). With one thread, decodes them
    /// on the caller's thread before returning.
    init(_ raws: [Raw], threads: Int, indexKey: SHA256Digest) {
        let results = ResultBox(count: raws.count)
        self.results = results
        let parts = max(1, min(threads, raws.count / 64))
        @Sendable func decode(part: Int) {
            let range = raws.count * part / parts..<raws.count * (part + 1) / parts
            let sha = SHA256()
            let merkle = MerkleHasher()
            for index in range {
                results.store(Self.decode(raws[index], indexKey: indexKey, sha: sha, merkle: merkle), at: index)
            }
        }
        if threads <= 1 {
            decode(part: 0)
        } else {
            DispatchQueue.global().async(group: group) {
                DispatchQueue.concurrentPerform(iterations: parts) { decode(part: $0) }
            }
        }
    }

    /// Waits until every entry is decoded.
    func wait() {
        group.wait()
    }

    /// Waits until every entry is decoded, then calls `body` with each, in the order given.
    func forEach(_ body: (Decoded) throws -> Void) rethrows {
        group.wait()
        try results.forEach(body)
    }

    private static func decode(_ raw: Raw, indexKey: SHA256Digest, sha: SHA256, merkle: MerkleHasher) -> Decoded {
        let leaf = merkle.leafHash(raw.header)
        let header: EntryHeader
        do { header = try EntryHeader(parsing: raw.header) } catch {
            return Decoded(seq: raw.seq, leaf: leaf, header: .failure(error), body: .missing)
        }
        guard let bytes = raw.body else { return Decoded(seq: raw.seq, leaf: leaf, header: .success(header), body: .missing) }
        let body: Body
        do {
            let parsed = try EntryBody(parsing: bytes)
            body = parsed.commitment(using: sha) == header.bodyCommitment
                ? .valid(DerivedRecordAudit.BodyKeys(body: parsed, source: header.source, indexKey: indexKey, sha: sha)) : .mismatch
        } catch {
            body = .undecodable(error)
        }
        return Decoded(seq: raw.seq, leaf: leaf, header: .success(header), body: body)
    }

    /// Slots each written by exactly one worker, and read only after the group has finished.
    private final class ResultBox: @unchecked Sendable {
        private let slots: UnsafeMutableBufferPointer<Decoded?>

        init(count: Int) {
            slots = .allocate(capacity: count)
            slots.initialize(repeating: nil)
        }

        deinit {
            slots.deinitialize()
            slots.deallocate()
        }

        func store(_ value: Decoded, at index: Int) {
            slots[index] = value
        }

        func forEach(_ body: (Decoded) throws -> Void) rethrows {
            for slot in slots { try body(slot!) }
        }
    }
}
