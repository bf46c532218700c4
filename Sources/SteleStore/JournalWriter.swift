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
    private let idempotency: IdempotencyIndex
    private var head: ChainHead
    private var record = JournalRecordBuilder()
    /// Entries journaled but perhaps not yet in the store, in log order, for answering retries.
    private var unapplied = ChunkedQueue<JournalEntry>()
    /// The store's size after the last apply that committed.
    private let appliedSize: Mutex<UInt64>
    /// Called (on the writer's thread) when the writer must wait for the store to apply entries
    /// before it can write more: whoever applies them should commit now.
    public var storeNeeded: (@Sendable () -> Void)?
    /// How long a writer waits for the store to catch up when the journal is full.
    static let catchUpSeconds = 10

    /// Takes over the journal of `ledger` (after ``Ledger/adoptJournal()`` and a transaction that
    /// moved the journal's entries into the store), continuing from the stored head.
    public init(ledger: Ledger) throws {
        guard let journal = ledger.releaseJournal() else {
            throw LedgerError(.storage, "this process does not own the ledger's journal")
        }
        self.ledger = ledger
        self.journal = journal
        self.idempotency = IdempotencyIndex(maximumKeys: ledger.idempotencyMaximumKeys)
        let idempotency = self.idempotency
        head = try ledger.read { txn in
            let head = try ledger.head(txn)
            try idempotency.synchronize(
                txn: txn, ledger: ledger, head: head.size,
                windowStart: Timestamp.now().adding(microseconds: -ledger.idempotencyWindow))
            idempotency.commit(head: head.size)
            return head
        }
        let size = head.size
        guard try journal.entries(storeSize: size).last.map({ $0.seq < size }) ?? true else {
            throw LedgerError(.storage, "the journal holds entries the store does not: move them in first")
        }
        appliedSize = Mutex(head.size)
        try journal.clear()  // the store holds all of it
    }

    /// Empties the journal if the store holds every entry it journaled (a clean stop), so that
    /// later writers and read-only tools have nothing to check in it.
    public func clearIfApplied() throws {
        guard appliedSize.withLock({ $0 }) >= head.size else { return }
        try journal.clear()
    }

    /// Idempotency keys dropped before their window ended, to keep at most
    /// ``Ledger/idempotencyMaximumKeys`` in memory: retries of those ids append anew.
    public var idempotencyKeysEvicted: UInt64 { idempotency.evicted }

    /// The size of the log once every journaled entry is applied.
    public var size: UInt64 { head.size }

    /// The store committed everything below `size`.
    public func markApplied(size: UInt64) {
        appliedSize.withLock { $0 = max($0, size) }
    }

    /// Builds the batch's entries, writes the new ones to the journal, and returns each event's
    /// outcome (as ``Ledger/append(prepared:storing:now:)``) with the new entries to apply, in order.
    /// When this returns, every new entry with a successful outcome is durable.
    ///
    /// A batch is one journal record, or several if it is large (each up to a quarter of the
    /// journal); if a later record cannot be written, the events of the records already written
    /// keep their receipts and the rest fail.
    /// - Throws: ``LedgerError`` `storageFull` or `storage` when nothing of the batch could be made
    ///   durable; then nothing of it was appended.
    public func append(prepared: [PreparedEvent], now: () -> Timestamp = Timestamp.now) throws -> (results: [Result<Receipt, LedgerError>], entries: [JournalEntry]) {
        let applied = appliedSize.withLock { $0 }
        if let first = unapplied.first, first.seq < applied {
            unapplied.removeFirst(Int(min(applied - first.seq, UInt64(unapplied.count))))  // consecutive seqs
        }
        expireIdempotencyKeys(now: now(), batch: prepared.count)
        var results: [Result<Receipt, LedgerError>] = []
        results.reserveCapacity(prepared.count)
        var entries: [JournalEntry] = []
        // What the records written so far cover: results, entries and head.
        var durable = (results: 0, entries: 0, head: head)
        let batchStart = head.size
        let recordLimit = journal.regionSize / 2
        func flush() throws {
            guard record.count > 0 else { return }
            if record.byteCount > journal.regionSize {
                // One event too large for the journal: committed to the store itself, with the
                // batch's entries before it, once the store holds every earlier batch (the store
                // thread applies them again, as no-ops).
                try waitForStore(toReach: batchStart)
                try ledger.apply(entries)
                markApplied(size: head.size)
            } else {
                try makeRoom(for: record.byteCount)
                try journal.append(&record)
            }
            record.reset()
            idempotency.commit(head: head.size)
            durable = (results.count, entries.count, head)
        }
        record.reset()
        do {
            for event in prepared {
                if let key = event.idempotencyKey, let seq = idempotency.seq(for: key) {
                    results.append(try retry(event, seq: seq, entries: entries))
                    continue
                }
                let seq = head.size
                let clock = now()
                let ts = Timestamp(microseconds: max(clock.microseconds, head.lastTimestamp.microseconds &+ 1))
                let header = event.headerTemplate.bytes(
                    prev: head.lastLeaf, seq: seq, timestamp: ts, retainUntil: event.retention.map { ts.adding(microseconds: $0) })
                let leaf = event.headerTemplate.leafHash(of: header, using: sha)
                let entry = JournalEntry(
                    seq: seq, timestamp: ts, idempotencyKey: event.idempotencyKey, actorHash: event.actorHash,
                    kindHash: event.kindHash, subjectHash: event.subjectHash, header: header, body: event.bodyBytes,
                    built: (leaf, head.lastLeaf))
                record.add(
                    seq: seq, timestamp: ts, idempotencyKey: entry.idempotencyKey, actorHash: entry.actorHash,
                    kindHash: entry.kindHash, subjectHash: entry.subjectHash, header: header, body: entry.body)
                if let key = event.idempotencyKey { idempotency.add(key, seq: seq, timestamp: ts) }
                entries.append(entry)
                head = ChainHead(size: seq + 1, lastLeaf: leaf, lastTimestamp: ts)
                results.append(.success(Receipt(seq: seq, leafHash: leaf, header: header, duplicate: false)))
                if record.byteCount >= recordLimit { try flush() }
            }
            try flush()
        } catch {
            let failure = error as? LedgerError ?? LedgerError(.storage, "\(error)")
            idempotency.rollback()
            head = durable.head
            record.reset()
            guard durable.results > 0 else { throw failure }
            results.removeLast(results.count - durable.results)
            results += Array(repeating: .failure(failure), count: prepared.count - durable.results)
            entries.removeLast(entries.count - durable.entries)
        }
        unapplied.append(contentsOf: entries)
        return (results, entries)
    }

    /// The original receipt for a retried id, or a conflict if the id was used for another event.
    /// `batch`: this batch's new entries so far.
    private func retry(_ event: PreparedEvent, seq: UInt64, entries batch: [JournalEntry]) throws -> Result<Receipt, LedgerError> {
        let stored: StoredEntry
        if let first = batch.first, seq >= first.seq {
            stored = try StoredEntry(journaled: batch[Int(seq - first.seq)])
        } else if let first = unapplied.first, seq >= first.seq {
            stored = try StoredEntry(journaled: unapplied[Int(seq - first.seq)])
        } else {
            stored = try ledger.entry(seq)
        }
        guard Ledger.sameEvent(stored, event) else {
            return .failure(LedgerError(.idempotencyConflict, "id \"\(event.id ?? "")\" was already used for a different event"))
        }
        return .success(Receipt(seq: seq, leafHash: MerkleHasher().leafHash(stored.headerBytes), header: stored.headerBytes, duplicate: true))
    }

    /// Makes room in the journal for a record of `bytes` (at most a region): writing moves to the
    /// other region as soon as the store holds all of it and this one is half full, or when this
    /// one is full (then waiting, boundedly, for the store to catch up).
    private func makeRoom(for bytes: Int) throws {
        let full = bytes > journal.spaceLeft
        guard full || journal.bytesInRegion >= journal.regionSize / 2 else { return }
        if let last = journal.otherRegionLastSeq {
            if full { try waitForStore(toReach: last + 1) } else if last >= appliedSize.withLock({ $0 }) { return }
        }
        journal.switchRegion()
    }

    /// Waits until the store holds every entry below `size`.
    /// - Throws: `storage` if it has not after ``catchUpSeconds`` (its commits are failing).
    private func waitForStore(toReach size: UInt64) throws {
        var waited = 0
        if appliedSize.withLock({ $0 }) < size { storeNeeded?() }
        while appliedSize.withLock({ $0 }) < size {
            guard waited < Self.catchUpSeconds * 5000 else {
                throw LedgerError(.storage, "the journal is full and the store has not committed its entries for \(Self.catchUpSeconds) s (is the disk full?); nothing more is acknowledged until it does")
            }
            usleep(200)
            waited += 1
        }
    }

    /// Bodies one batch should hold at most, so that its records fit in the journal beside the
    /// entries the store has not yet applied.
    public var batchBytes: Int { journal.regionSize / 4 }

    /// Drops idempotency keys older than the window: a few more per batch than it adds, so that
    /// no batch waits for a whole second's worth (at 50,000 appends/s, once a second, that held the
    /// writer for milliseconds). Keys more than a second past the window (after an idle spell) all
    /// go at once, so none is honoured more than a second after its window ended.
    private func expireIdempotencyKeys(now: Timestamp, batch: Int) {
        let windowStart = now.adding(microseconds: -ledger.idempotencyWindow)
        idempotency.expire(before: windowStart, atMost: 2 * batch + 64)
        idempotency.expire(before: windowStart.adding(microseconds: -1_000_000))
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
