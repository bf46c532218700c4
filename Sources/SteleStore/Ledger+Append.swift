public import SteleCore
import SteleCrypto
import SteleLMDB
import Synchronization

extension Ledger {
    /// A preparer bound to this ledger's index key, for one thread.
    public func makePreparer() -> EventPreparer {
        EventPreparer(indexKey: indexKey)
    }

    /// Prepares and appends a batch (see ``append(prepared:now:)``).
    public func append(_ events: [Event], now: @Sendable () -> Timestamp = Timestamp.now) throws -> [Result<Receipt, LedgerError>] {
        let preparer = makePreparer()
        return try append(prepared: events.map { try preparer.prepare($0) }, now: now)
    }

    /// Appends a batch of prepared events in one write transaction, committed with full sync before
    /// this returns.
    ///
    /// Each event gets its own outcome: a receipt (new, or the original one for a retried id), or an
    /// `idempotencyConflict` when its id was used for a different event. Either every new entry of the
    /// batch is committed or, if this throws, none is.
    /// - Parameter now: the clock; `ts` is max(now, previous `ts` + 1 µs), read inside the transaction.
    /// - Throws: ``LedgerError`` `storageFull` or `storage` when nothing could be committed.
    public func append(prepared: [PreparedEvent], now: @Sendable () -> Timestamp = Timestamp.now) throws -> [Result<Receipt, LedgerError>] {
        guard !isReadOnly else { throw LedgerError(.readOnly, "the ledger was opened read-only") }
        return try writer.withLock { state in
            try write(state, now: now) { txn, head in
                try prepared.map { try appendOne($0, txn: txn, head: &head, now: now(), state: state) }
            }
        }
    }

    /// Redacts body fields of entry `seq`: their values and salts are deleted, their digests kept, so the
    /// entry and every proof still verify. Optionally appends `receipt` (e.g. a `ledger.prune` entry)
    /// in the same transaction. Fields already redacted or absent are ignored.
    /// - Returns: the names actually redacted now, and the receipt entry's receipt.
    public func redact(
        seq: UInt64, fields: [String], receipt: Event? = nil, now: @Sendable () -> Timestamp = Timestamp.now
    ) throws -> (redacted: [String], receipt: Receipt?) {
        guard !isReadOnly else { throw LedgerError(.readOnly, "the ledger was opened read-only") }
        let preparedReceipt = try receipt.map { try makePreparer().prepare($0) }
        return try writer.withLock { state in
            try write(state, now: now) { txn, head in
                guard seq < head.size else {
                    throw LedgerError(.outOfRange, "entry \(seq) does not exist (the log has \(head.size) entries)")
                }
                let stored = try entry(seq, txn: txn)
                let names = fields.filter { stored.body.fields[$0]?.isRedacted == false }
                if !names.isEmpty {
                    for (name, role) in [("subject", SecondaryIndex.Role.subject), ("actor", .actor)] where names.contains(name) {
                        if let identifier = stored.body.fields[name]?.value?.stringValue {
                            let hash = LedgerKeys.identifierPrefix(indexKey: indexKey, role: name, identifier: identifier, sha: state.sha)
                            try index.remove(txn, seq: seq, role: role, hash: hash, size: head.size)
                        }
                    }
                    try txn.put(databases.entries, key: LedgerKeys.body(seq), value: stored.body.redacting(names, using: state.sha).canonicalBytes)
                }
                var receiptOut: Receipt?
                if let preparedReceipt {
                    receiptOut = try appendOne(preparedReceipt, txn: txn, head: &head, now: now(), state: state).get()
                }
                return (names, receiptOut)
            }
        }
    }

    /// Runs one write transaction with the stored chain head, storing the advanced head at the end.
    private func write<R>(
        _ state: WriterState, now: () -> Timestamp, _ body: (Transaction, inout ChainHead) throws -> R
    ) throws -> R {
        do {
            let (result, head) = try environment.withWriteTransaction { txn in
                // The head is read inside the transaction: another process holding the write lock may have appended.
                var head = try self.head(txn)
                try state.idempotency.synchronize(
                    txn: txn, ledger: self, head: head.size, windowStart: now().adding(microseconds: -idempotencyWindow))
                let start = head
                let result = try body(txn, &head)
                if head != start {
                    try index.seal(txn, from: start.size, to: head.size)
                    try txn.put(databases.meta, key: LedgerKeys.headKey, value: head.bytes)
                }
                return (result, head)
            }
            state.idempotency.commit(head: head.size)
            state.cachedHead = head
            return result
        } catch let error as LMDBError {
            state.idempotency.reset()
            state.cachedHead = nil
            // A full disk shows as ENOSPC, or as EIO when LMDB's page write comes up short.
            let diskFull = error.code == LMDBError.noSpace
                || (error.code == 5 && (environment.availableDiskBytes ?? Int.max) < 1 << 22)
            if diskFull {
                throw LedgerError(.storageFull, "the disk is full: nothing of this batch was written; free space and retry")
            }
            throw LedgerError(.storage, "the ledger could not commit: \(error)")
        } catch {
            state.idempotency.rollback()
            throw error
        }
    }

    /// True when the stored entry records the same event: same kind, source and field names, and equal
    /// values wherever the stored field is still disclosed. (Checked only when an id repeats, so
    /// the append path never hashes event content twice.)
    static func sameEvent(_ stored: StoredEntry, _ event: Event) -> Bool {
        let values = event.bodyValues
        guard stored.header.kind == event.kind, stored.header.source == event.source,
            Set(stored.body.fields.keys) == Set(values.keys)
        else { return false }
        return stored.body.fields.allSatisfy { name, field in field.value.map { $0 == values[name] } ?? true }
    }

    private func appendOne(
        _ prepared: PreparedEvent, txn: Transaction, head: inout ChainHead, now: Timestamp, state: WriterState
    ) throws -> Result<Receipt, LedgerError> {
        if let key = prepared.idempotencyKey, let seq = state.idempotency.seq(for: key) {
            let stored = try entry(seq, txn: txn)
            guard Self.sameEvent(stored, prepared.event) else {
                return .failure(LedgerError(.idempotencyConflict, "id \"\(prepared.event.id!)\" was already used for a different event"))
            }
            return .success(Receipt(seq: seq, leafHash: state.merkle.leafHash(stored.headerBytes), header: stored.headerBytes, duplicate: true))
        }
        let seq = head.size
        let ts = Timestamp(microseconds: max(now.microseconds, head.lastTimestamp.microseconds &+ 1))
        let header = EntryHeader(
            seq: seq, timestamp: ts, kind: prepared.event.kind, retentionClass: prepared.event.retentionClass,
            source: prepared.event.source, retainUntil: prepared.event.retention.map { ts.adding(microseconds: $0) },
            prev: head.lastLeaf, bodyCommitment: prepared.commitment)
        let headerBytes = header.canonicalBytes
        let leaf = state.merkle.leafHash(headerBytes)
        // Header, body and idempotency record of one entry are adjacent keys at the end of one database.
        try txn.put(databases.entries, key: LedgerKeys.header(seq), value: headerBytes, mode: .append)
        try txn.put(databases.entries, key: LedgerKeys.body(seq), value: prepared.bodyBytes, mode: .append)
        try appendTree(leaf: leaf, seq: seq, txn: txn, merkle: state.merkle)
        let index = self.index
        if let hash = prepared.actorPrefix { try index.add(txn, seq: seq, role: .actor, hash: hash) }
        try index.add(txn, seq: seq, role: .kind, hash: prepared.kindHash)
        if let hash = prepared.subjectPrefix { try index.add(txn, seq: seq, role: .subject, hash: hash) }
        if let key = prepared.idempotencyKey {
            try txn.put(databases.entries, key: LedgerKeys.idempotency(seq), value: key.bytes, mode: .append)
            state.idempotency.add(key, seq: seq, timestamp: ts)
        }
        head = ChainHead(size: seq + 1, lastLeaf: leaf, lastTimestamp: ts)
        return .success(Receipt(seq: seq, leafHash: leaf, header: headerBytes, duplicate: false))
    }

    /// Stores the leaf hash and every subtree it completes, in ``MerkleSubtrees`` storage order.
    private func appendTree(leaf: SHA256Digest, seq: UInt64, txn: Transaction, merkle: MerkleHasher) throws {
        var position = MerkleSubtrees.storedCount(leaves: seq)
        var hash = leaf
        try txn.put(databases.tree, key: LedgerKeys.u64(position), value: hash.bytes, mode: .append)
        var index = seq
        var level = 0
        while index & 1 == 1 {
            let sibling = LedgerKeys.u64(MerkleSubtrees.storageIndex(level: level, index: index - 1))
            guard let left = try txn.get(databases.tree, key: sibling).flatMap({ SHA256Digest(bytes: $0) }) else {
                throw LedgerError(.corrupt, "the stored Merkle subtree (\(level), \(index - 1)) is missing")
            }
            hash = merkle.nodeHash(left, hash)
            position += 1
            try txn.put(databases.tree, key: LedgerKeys.u64(position), value: hash.bytes, mode: .append)
            index >>= 1
            level += 1
        }
    }
}
