import SteleCore
import SteleCrypto

/// Every rule that turns an event into the next entry of the log, in one place: the timestamp rule,
/// `retain_until`, the header with its chain position, the leaf hash, the receipt, and the
/// comparison that answers a retried id (`Specs/entry-format.md`, `Specs/store.md`).
///
/// A value: the writer keeps one for the log's head, and an operation (``WriteContext``) builds on a
/// copy that replaces it only once its transaction commits.
struct EntryBuilder: Sendable {
    /// The head the next entry continues.
    private(set) var head: ChainHead

    init(head: ChainHead) {
        self.head = head
    }

    /// The next entry for `event`: `ts` is max(`clock`, previous `ts` + 1 µs), so it strictly
    /// increases whatever the clock does; `retain_until` is `ts` plus the kind's fixed retention.
    mutating func build(_ event: PreparedEvent, clock: Timestamp, using sha: SHA256) -> JournalEntry {
        let seq = head.size
        let ts = Timestamp(microseconds: max(clock.microseconds, head.lastTimestamp.microseconds &+ 1))
        let header = event.headerTemplate.bytes(
            prev: head.lastLeaf, seq: seq, timestamp: ts, retainUntil: event.retention.map { ts.adding(microseconds: $0) })
        let leaf = event.headerTemplate.leafHash(of: header, using: sha)
        let entry = JournalEntry(
            seq: seq, timestamp: ts, idempotencyKey: event.idempotencyKey, actorHash: event.actorHash,
            kindHash: event.kindHash, subjectHash: event.subjectHash, header: header, body: event.bodyBytes,
            built: (leaf, head.lastLeaf))
        head = ChainHead(size: seq + 1, lastLeaf: leaf, lastTimestamp: ts)
        return entry
    }

    /// The receipt for a new entry this builder built.
    static func receipt(_ entry: JournalEntry) -> Receipt {
        Receipt(seq: entry.seq, leafHash: entry.built?.leaf ?? MerkleHasher().leafHash(entry.header), header: entry.header, duplicate: false)
    }

    /// The outcome for an event whose id is already recorded at `stored`: the original receipt when
    /// it records the same event, else `idempotency_conflict`.
    static func retry(_ event: PreparedEvent, of stored: StoredEntry) -> Result<Receipt, LedgerError> {
        guard sameEvent(stored, event) else {
            return .failure(LedgerError(.idempotencyConflict, "id \"\(event.id ?? "")\" was already used for a different event"))
        }
        return .success(Receipt(seq: stored.seq, leafHash: MerkleHasher().leafHash(stored.headerBytes), header: stored.headerBytes, duplicate: true))
    }

    /// True when the stored entry records the same event as `prepared`: same kind, source and field
    /// names, and equal values wherever the stored field is still disclosed. Checked only when an id
    /// repeats, so the append path never hashes or parses event content twice; the values are read
    /// back from the prepared body record (its salts are new, its values are the event's).
    static func sameEvent(_ stored: StoredEntry, _ prepared: PreparedEvent) -> Bool {
        guard stored.header.kind == prepared.kind, stored.header.source == prepared.source,
            let body = try? EntryBody(parsing: prepared.bodyBytes),
            Set(stored.body.fields.keys) == Set(body.fields.keys)
        else { return false }
        return stored.body.fields.allSatisfy { name, field in field.value.map { $0 == body.fields[name]?.value } ?? true }
    }
}
