import SteleCore
import SteleLMDB

/// The writer's view of recent idempotency keys.
///
/// On disk the keys are an append-only log in the `idempotency` database (seq → 16-byte keyed hash
/// of source and client id), written in the same transaction as the entry, so they are exactly as
/// durable as the entries. In memory they are a hash map covering the idempotency window, brought up
/// to date from the log inside every write transaction, so appends by another process (holding the
/// LMDB write lock) are seen too. Random-key B-tree inserts would dirty one page per event on every
/// commit; the log appends instead.
final class IdempotencyIndex {
    typealias Key = KeyedHash

    /// Most keys held. Past it the oldest are dropped before their window ends, so that memory
    /// stays bounded however fast ids arrive (an unbounded window at 50,000 appends/s would fill
    /// 24 GiB in about two hours).
    let maximumKeys: Int
    /// Keys dropped before their window ended because of ``maximumKeys``.
    private(set) var evicted: UInt64 = 0

    /// An index holding at most `maximumKeys` keys.
    init(maximumKeys: Int = LedgerWriter.Options.defaultIdempotencyMaximumKeys) {
        self.maximumKeys = max(1, maximumKeys)
        seqByKey = KeyedHashTable(maximumCount: self.maximumKeys)
    }

    private let seqByKey: KeyedHashTable
    /// A key held, with its entry's seq and `ts`.
    private struct Held {
        let seq: UInt64
        let key: Key
        let ts: Timestamp
    }

    /// Keys in seq order, for expiry.
    private var order = ChunkedQueue<Held>()
    /// The log is loaded for seqs below this.
    private var loadedThrough: UInt64?
    /// Keys added by the transaction in progress (removed again if it does not commit).
    private var pending: [Key] = []

    /// Brings the map up to date with the committed log and drops keys older than `windowStart`.
    func synchronize(txn: Transaction, ledger: Ledger, head: UInt64, windowStart: Timestamp) throws {
        rollback()
        if let loaded = loadedThrough, loaded > head { reset() }
        // First use: find where the window starts (binary search by ts); afterwards, continue the log.
        // (At most the last `maximumKeys` entries can hold keys that are kept.)
        let from = try loadedThrough ?? max(ledger.firstSeq(atOrAfter: windowStart, txn: txn), head - min(head, UInt64(maximumKeys)))
        if from < head {
            try txn.withCursor(ledger.databases.entries) { cursor in
                var record = try cursor.seek(atOrAfter: LedgerKeys.u64(from))
                while let current = record, current.key.count == 9 {
                    let seq = LedgerKeys.readU64(current.key)
                    if seq >= head { break }
                    if current.key[8] == LedgerKeys.idempotencyTag, let key = KeyedHash(bytes: current.value) {
                        insert(key, seq: seq, ts: try ledger.timestamp(of: seq, txn: txn))
                    }
                    record = try cursor.next()
                }
            }
        }
        loadedThrough = head
        expire(before: windowStart)
    }

    /// Drops keys whose entries' `ts` is before `windowStart`, oldest first, at most `limit` of them.
    func expire(before windowStart: Timestamp, atMost limit: Int = .max) {
        var dropped = 0
        while dropped < limit, let oldest = order.first, oldest.ts < windowStart {
            if seqByKey[oldest.key] == oldest.seq { seqByKey.remove(oldest.key) }
            order.removeFirst(1)
            dropped += 1
        }
    }

    /// The seq recorded for `key` within the window.
    func seq(for key: Key) -> UInt64? { seqByKey[key] }

    /// Records a key appended by the transaction in progress.
    func add(_ key: Key, seq: UInt64, timestamp: Timestamp) {
        insert(key, seq: seq, ts: timestamp)
        pending.append(key)
    }

    /// The transaction committed: its keys stay.
    func commit(head: UInt64) {
        pending.removeAll(keepingCapacity: true)
        loadedThrough = head
    }

    /// The transaction did not commit: forget its keys.
    func rollback() {
        for key in pending { seqByKey.remove(key) }
        if !pending.isEmpty {
            // Entries of the abandoned transaction are at the end of `order`.
            order.removeLast(min(pending.count, order.count))
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Forgets everything (reloaded on the next transaction).
    func reset() {
        seqByKey.removeAll()
        order = ChunkedQueue()
        loadedThrough = nil
        pending.removeAll()
    }

    private func insert(_ key: Key, seq: UInt64, ts: Timestamp) {
        // The oldest goes first, so the table never holds more than `maximumKeys`.
        if order.count >= maximumKeys, let oldest = order.first {
            if seqByKey[oldest.key] == oldest.seq { seqByKey.remove(oldest.key) }
            order.removeFirst(1)
            evicted += 1
        }
        seqByKey.set(key, seq)
        order.append(Held(seq: seq, key: key, ts: ts))
    }
}
