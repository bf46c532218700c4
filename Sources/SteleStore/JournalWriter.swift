public import SteleCore
import SteleCrypto
import Synchronization
import Glibc

/// The daemon's append path: builds each batch's entries against the chain head it keeps in memory,
/// makes them durable with one synchronous journal write, and hands them over to be applied to the
/// store (``Ledger/apply(_:storing:)``) by another thread. Appends are answered without waiting for
/// any store commit.
///
/// Requires that no other process writes the store meanwhile: ``Ledger/adoptJournal()`` takes the
/// data directory's writer lock, and every other writer refuses to write while it is held. Used by
/// one thread; ``markApplied(size:)`` may be called from any.
public final class JournalWriter: @unchecked Sendable {
    private let ledger: Ledger
    private let journal: Journal
    private let sha = SHA256()
    private let idempotency = IdempotencyIndex()
    private var head: ChainHead
    private var record = JournalRecordBuilder()
    /// Entries journaled but perhaps not yet in the store, for answering retries of their ids.
    private var unapplied: [UInt64: JournalEntry] = [:]
    /// The store's size after the last apply that committed.
    private let appliedSize: Mutex<UInt64>
    private var lastExpiry = Timestamp.now()

    /// Takes over the journal of `ledger` (after ``Ledger/adoptJournal()`` and a transaction that
    /// moved the journal's entries into the store), continuing from the stored head.
    public init(ledger: Ledger) throws {
        guard let journal = ledger.releaseJournal() else {
            throw LedgerError(.storage, "this process does not own the ledger's journal")
        }
        self.ledger = ledger
        self.journal = journal
        let idempotency = self.idempotency
        head = try ledger.read { txn in
            let head = try ledger.head(txn)
            try idempotency.synchronize(
                txn: txn, ledger: ledger, head: head.size,
                windowStart: Timestamp.now().adding(microseconds: -ledger.idempotencyWindow))
            idempotency.commit(head: head.size)
            return head
        }
        appliedSize = Mutex(head.size)
    }

    /// The size of the log once every journaled entry is applied.
    public var size: UInt64 { head.size }

    /// The store committed everything below `size`.
    public func markApplied(size: UInt64) {
        appliedSize.withLock { $0 = max($0, size) }
    }

    /// Builds the batch's entries, writes the new ones to the journal with one synchronous write,
    /// and returns each event's outcome (as ``Ledger/append(prepared:storing:now:)``) with the new
    /// entries to apply, in order. When this returns, the new entries are durable.
    /// - Throws: ``LedgerError`` `storageFull` or `storage` when the batch could not be made durable;
    ///   then nothing of it was appended.
    public func append(prepared: [PreparedEvent], now: () -> Timestamp = Timestamp.now) throws -> (results: [Result<Receipt, LedgerError>], entries: [JournalEntry]) {
        let applied = appliedSize.withLock { $0 }
        if unapplied.count > 0, let first = unapplied.keys.min(), first < applied {
            unapplied = unapplied.filter { $0.key >= applied }
        }
        try expireIdempotencyKeys()
        let before = head
        var results: [Result<Receipt, LedgerError>] = []
        results.reserveCapacity(prepared.count)
        var entries: [JournalEntry] = []
        record.reset()
        do {
            for event in prepared {
                if let key = event.idempotencyKey, let seq = idempotency.seq(for: key) {
                    results.append(try retry(event, seq: seq, applied: applied))
                    continue
                }
                let seq = head.size
                let clock = now()
                let ts = Timestamp(microseconds: max(clock.microseconds, head.lastTimestamp.microseconds &+ 1))
                let header = event.headerTemplate.bytes(
                    prev: head.lastLeaf, seq: seq, timestamp: ts, retainUntil: event.event.retention.map { ts.adding(microseconds: $0) })
                let leaf = event.headerTemplate.leafHash(of: header, using: sha)
                let entry = JournalEntry(
                    seq: seq, timestamp: ts, idempotencyKey: event.idempotencyKey, actorHash: event.actorHash,
                    kindHash: event.kindHash, subjectHash: event.subjectHash, header: header, body: event.bodyBytes)
                record.add(
                    seq: seq, timestamp: ts, idempotencyKey: entry.idempotencyKey, actorHash: entry.actorHash,
                    kindHash: entry.kindHash, subjectHash: entry.subjectHash, header: header, body: entry.body)
                if let key = event.idempotencyKey { idempotency.add(key, seq: seq, timestamp: ts) }
                unapplied[seq] = entry
                entries.append(entry)
                head = ChainHead(size: seq + 1, lastLeaf: leaf, lastTimestamp: ts)
                results.append(.success(Receipt(seq: seq, leafHash: leaf, header: header, duplicate: false)))
            }
            if !entries.isEmpty {
                try makeRoom(applied: applied, before: before.size)
                try journal.append(&record)
            }
        } catch {
            idempotency.rollback()
            for entry in entries { unapplied.removeValue(forKey: entry.seq) }
            head = before
            throw error
        }
        idempotency.commit(head: head.size)
        return (results, entries)
    }

    /// The original receipt for a retried id, or a conflict if the id was used for another event.
    private func retry(_ event: PreparedEvent, seq: UInt64, applied: UInt64) throws -> Result<Receipt, LedgerError> {
        let stored: StoredEntry
        if let entry = unapplied[seq] {
            stored = try StoredEntry(journaled: entry)
        } else {
            stored = try ledger.entry(seq)
        }
        guard Ledger.sameEvent(stored, event.event) else {
            return .failure(LedgerError(.idempotencyConflict, "id \"\(event.event.id!)\" was already used for a different event"))
        }
        return .success(Receipt(seq: seq, leafHash: MerkleHasher().leafHash(stored.headerBytes), header: stored.headerBytes, duplicate: true))
    }

    /// Starts a new journal generation when the store holds all of the current one; waits for the
    /// store to catch up first when the journal is half full.
    private func makeRoom(applied: UInt64, before: UInt64) throws {
        var applied = applied
        if journal.generationBytes > 0 && journal.generationBytes >= journal.capacity / 2 {
            // Bounded: if the store cannot commit (a full disk), the journal grows instead.
            var waited = 0
            while applied < before && waited < 10_000 {
                usleep(200)
                waited += 1
                applied = appliedSize.withLock { $0 }
            }
        }
        if applied >= before && journal.generationBytes > 0 { journal.startNewGeneration() }
    }

    /// Drops idempotency keys older than the window, about once a second.
    private func expireIdempotencyKeys() throws {
        let now = Timestamp.now()
        guard now.microseconds - lastExpiry.microseconds >= 1_000_000 else { return }
        lastExpiry = now
        let (idempotency, size) = (self.idempotency, head.size)
        try ledger.read { txn in
            try idempotency.synchronize(
                txn: txn, ledger: ledger, head: size, windowStart: now.adding(microseconds: -ledger.idempotencyWindow))
        }
        idempotency.commit(head: size)
    }
}

extension StoredEntry {
    /// The entry as a journal record holds it.
    init(journaled entry: JournalEntry) throws {
        do {
            self.init(
                seq: entry.seq, headerBytes: entry.header, header: try EntryHeader(parsing: entry.header),
                body: try EntryBody(parsing: entry.body))
        } catch {
            throw LedgerError(.corrupt, "journaled entry \(entry.seq) cannot be decoded: \(error)")
        }
    }
}
