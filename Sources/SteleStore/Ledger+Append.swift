public import SteleCore
import SteleCrypto
import SteleLMDB
import Dispatch
import Synchronization
import Glibc

extension Ledger {
    /// A preparer bound to this ledger's index key, for one thread.
    public func makePreparer() -> EventPreparer {
        EventPreparer(indexKey: indexKey)
    }

    /// Prepares and appends a batch (see ``append(prepared:now:)``). A large batch is prepared on two
    /// threads while it is being appended (``PreparationPipeline``, from 64 events).
    /// - Throws: ``LedgerError`` `invalidEvent` for an invalid event (then nothing is appended), or as
    ///   ``append(prepared:now:)``.
    public func append(_ events: [Event], now: @Sendable () -> Timestamp = Timestamp.now) throws -> [Result<Receipt, LedgerError>] {
        let chunkSize = 16
        guard events.count >= 4 * chunkSize, !isReadOnly else { return try append(prepared: prepare(events), now: now) }
        let preparers = preparerPool.withLock { pool in (0..<2).map { _ in pool.popLast() ?? makePreparer() } }
        defer { preparerPool.withLock { $0.append(contentsOf: preparers) } }
        let pipeline = PreparationPipeline(events: events, chunkSize: chunkSize)
        pipeline.startHelper(preparers[1])
        defer {
            pipeline.finish()
            // Freeing a batch's prepared events (records and templates) is left to another
            // thread, off the caller's path.
            DispatchQueue.global().async { withExtendedLifetime(pipeline) {} }
        }
        return try writer.withLock { state in
            try write(state, now: now) { txn, head in
                var results: [Result<Receipt, LedgerError>] = []
                results.reserveCapacity(events.count)
                try withEntryAppender(txn) { appender in
                    for index in 0..<pipeline.chunkCount {
                        for prepared in try pipeline.chunk(index, preparer: preparers[0]) {
                            results.append(try appendOne(prepared, txn: txn, appender: &appender, head: &head, now: now(), state: state))
                        }
                    }
                }
                return results
            }
        }
    }

    /// Prepares events, one after another, with a pooled preparer (``append(_:)`` prepares a large
    /// batch on two threads while appending it).
    /// - Throws: ``LedgerError`` `invalidEvent` for the first invalid event.
    public func prepare(_ events: [Event]) throws -> [PreparedEvent] {
        let preparer = preparerPool.withLock { $0.popLast() } ?? makePreparer()
        defer { preparerPool.withLock { $0.append(preparer) } }
        return try events.map { try preparer.prepare($0) }
    }

    /// Appends a batch of prepared events in one write transaction, committed with full sync before
    /// this returns.
    ///
    /// Each event gets its own outcome: a receipt (new, or the original one for a retried id), or an
    /// `idempotencyConflict` when its id was used for a different event. Either every new entry of the
    /// batch is committed or, if this throws, none is.
    /// - Parameter now: the clock; `ts` is max(now, previous `ts` + 1 µs), read inside the transaction.
    /// - Throws: ``LedgerError`` `storageFull` or `storage` when nothing could be committed.
    /// - Parameter checkpoint: a signed checkpoint of this log to store in the same transaction (so
    ///   recording it costs no commit of its own); it is checked as by ``storeCheckpoint(_:)`` before
    ///   any event is appended, and if it does not check out, this throws and appends nothing.
    public func append(
        prepared: [PreparedEvent], storing checkpoint: SignedNote? = nil, now: @Sendable () -> Timestamp = Timestamp.now
    ) throws -> [Result<Receipt, LedgerError>] {
        guard !isReadOnly else { throw LedgerError(.readOnly, "the ledger was opened read-only") }
        let parsed = try checkpoint.map { try ownCheckpoint($0) }
        return try writer.withLock { state in
            try write(state, now: now) { txn, head in
                if let parsed, let checkpoint { try store(parsed, checkpoint, txn: txn) }
                return try withEntryAppender(txn) { appender in
                    try prepared.map { try appendOne($0, txn: txn, appender: &appender, head: &head, now: now(), state: state) }
                }
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
                    // Index records of this entry go away: any writer's copy of its block is stale.
                    try bumpRedactions(txn)
                    for (name, role) in [("subject", SecondaryIndex.Role.subject), ("actor", .actor)] where names.contains(name) {
                        if let identifier = stored.body.fields[name]?.value?.stringValue {
                            let hash = LedgerKeys.identifierHash(indexKey: indexKey, role: name, identifier: identifier, sha: state.sha)
                            try index.remove(txn, seq: seq, role: role, hash: hash, size: head.size)
                        }
                    }
                    try txn.put(databases.entries, key: LedgerKeys.body(seq), value: stored.body.redacting(names, using: state.sha).canonicalBytes)
                }
                var receiptOut: Receipt?
                if let preparedReceipt {
                    receiptOut = try withEntryAppender(txn) { appender in
                        try appendOne(preparedReceipt, txn: txn, appender: &appender, head: &head, now: now(), state: state).get()
                    }
                }
                return (names, receiptOut)
            }
        }
    }

    /// Runs one write transaction with the stored chain head, storing the advanced head at the end.
    func write<R>(
        _ state: WriterState, now: () -> Timestamp, _ body: (Transaction, inout ChainHead) throws -> R
    ) throws -> R {
        // While a daemon writes this store (it holds the data directory's lock), nobody else may:
        // its chain head lives in memory.
        if !state.journalOwner && state.directoryLock >= 0 {
            guard flock(state.directoryLock, LOCK_SH | LOCK_NB) == 0 else {
                throw LedgerError(.storage, "a daemon is writing this store: append through its socket (stele append), or stop it first")
            }
        }
        defer { if !state.journalOwner && state.directoryLock >= 0 { flock(state.directoryLock, LOCK_UN) } }
        do {
            let (result, head) = try environment.withWriteTransaction { txn in
                // The head is read inside the transaction: another process holding the write lock may have appended.
                var head = try self.head(txn)
                if state.frontierHead != head {
                    state.frontier = try frontier(size: head.size, txn: txn)
                }
                // The frontier changes with the appends below; it is trusted again only once they commit
                // (LMDB may abort and rerun this body, e.g. to grow the map).
                state.frontierHead = nil
                state.postings.beginTransaction(redactions: try redactions(txn))
                if state.tracksIdempotency {
                    try state.idempotency.synchronize(
                        txn: txn, ledger: self, head: head.size, windowStart: now().adding(microseconds: -idempotencyWindow))
                }
                let start = head
                // Entries acknowledged from the journal but not yet in the store go in first.
                if let journal = state.journal { try moveJournal(journal, owner: state.journalOwner, txn: txn, head: &head, state: state) }
                let result = try body(txn, &head)
                if head != start {
                    try index.seal(txn, from: start.size, to: head.size, pending: state.postings)
                    try txn.put(databases.meta, key: LedgerKeys.headKey, value: head.bytes)
                }
                return (result, head)
            }
            state.idempotency.commit(head: head.size)
            state.postings.committed()
            state.frontierHead = head
            if releasesWrittenPages { releaseWrittenPages(state) }
            return result
        } catch let error as LMDBError {
            state.idempotency.reset()
            state.postings.invalidate()
            state.frontierHead = nil
            // A full disk shows as ENOSPC, or as EIO when LMDB's page write comes up short.
            let diskFull = error.code == LMDBError.noSpace
                || (error.code == 5 && (environment.availableDiskBytes ?? Int.max) < 1 << 22)
            if diskFull {
                throw LedgerError(.storageFull, "the disk is full: nothing of this batch was written; free space and retry")
            }
            throw LedgerError(.storage, "the ledger could not commit: \(error)")
        } catch {
            state.idempotency.rollback()
            state.postings.invalidate()
            state.frontierHead = nil
            throw error
        }
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

    private func appendOne(
        _ prepared: PreparedEvent, txn: Transaction, appender: inout EntryAppender, head: inout ChainHead, now: Timestamp,
        state: WriterState
    ) throws -> Result<Receipt, LedgerError> {
        if let key = prepared.idempotencyKey, let seq = state.idempotency.seq(for: key) {
            let stored = try entry(seq, txn: txn)
            guard Self.sameEvent(stored, prepared) else {
                return .failure(LedgerError(.idempotencyConflict, "id \"\(prepared.id ?? "")\" was already used for a different event"))
            }
            return .success(Receipt(seq: seq, leafHash: state.merkle.leafHash(stored.headerBytes), header: stored.headerBytes, duplicate: true))
        }
        let seq = head.size
        let ts = Timestamp(microseconds: max(now.microseconds, head.lastTimestamp.microseconds &+ 1))
        let headerBytes = prepared.headerTemplate.bytes(
            prev: head.lastLeaf, seq: seq, timestamp: ts, retainUntil: prepared.retention.map { ts.adding(microseconds: $0) })
        let leaf = prepared.headerTemplate.leafHash(of: headerBytes, using: state.sha)
        try storeEntry(
            seq: seq, timestamp: ts, leaf: leaf, header: headerBytes, body: prepared.bodyBytes,
            idempotencyKey: prepared.idempotencyKey, actorHash: prepared.actorHash, kindHash: prepared.kindHash,
            subjectHash: prepared.subjectHash, appender: &appender, state: state)
        head = ChainHead(size: seq + 1, lastLeaf: leaf, lastTimestamp: ts)
        return .success(Receipt(seq: seq, leafHash: leaf, header: headerBytes, duplicate: false))
    }

    /// Writes one built entry: header, body and idempotency record, the tree nodes it completes, and
    /// its index records. Shared by appends and by moving journaled entries into the store.
    func storeEntry(
        seq: UInt64, timestamp: Timestamp, leaf: SHA256Digest, header: [UInt8], body: [UInt8], idempotencyKey: KeyedHash?,
        actorHash: KeyedHash?, kindHash: KeyedHash, subjectHash: KeyedHash?, appender: inout EntryAppender, state: WriterState
    ) throws {
        // Header, body and idempotency record of one entry are adjacent keys at the end of one database.
        try LedgerKeys.withEntryKey(seq, LedgerKeys.headerTag) { key in
            try header.withUnsafeBytes { try appender.entries.append(key: key, value: $0) }
        }
        try LedgerKeys.withEntryKey(seq, LedgerKeys.bodyTag) { key in
            try body.withUnsafeBytes { try appender.entries.append(key: key, value: $0) }
        }
        if let idempotencyKey {
            try LedgerKeys.withEntryKey(seq, LedgerKeys.idempotencyTag) { k in
                try idempotencyKey.withUnsafeBytes { try appender.entries.append(key: k, value: $0) }
            }
            if state.tracksIdempotency { state.idempotency.add(idempotencyKey, seq: seq, timestamp: timestamp) }
        }
        try appendTree(leaf: leaf, seq: seq, cursor: &appender.tree, state: state)
        // In role order (actor, kind, subject), the order of their keys; no list per entry.
        let index = self.index
        if let actorHash { try index.add(&appender.index, seq: seq, role: .actor, hash: actorHash) }
        try index.add(&appender.index, seq: seq, role: .kind, hash: kindHash)
        if let subjectHash { try index.add(&appender.index, seq: seq, role: .subject, hash: subjectHash) }
        state.postings.append(seq: seq, actor: actorHash, kind: kindHash, subject: subjectHash)
    }

    /// Lets the kernel drop the cached pages more than ``cachedTail`` behind the end of the store
    /// file, an eighth of that (8 MiB) at a time, each range once (after a restart the first range
    /// starts at the beginning of the file). A writer never reads the pages it appended again (what
    /// it reads stays mapped, and mapped pages are kept), so caching them only grows the page cache
    /// by every byte appended; on a virtual machine that returns free memory to its host, each newly
    /// cached page then costs a host fault, which made the kernel's copy of the store's writes the
    /// largest single cost of an append.
    private func releaseWrittenPages(_ state: WriterState) {
        let target = environment.usedBytes - cachedTail
        guard target - state.pagesReleasedBelow >= cachedTail / 8 else { return }
        environment.adviseNotNeeded(state.pagesReleasedBelow..<target)
        state.pagesReleasedBelow = target
    }

    /// How many redactions the store has seen (`meta/redactions`).
    private func redactions(_ txn: Transaction) throws -> UInt64 {
        try txn.get(databases.meta, key: LedgerKeys.redactionsKey).map { bytes in
            bytes.count == 8 ? bytes.withUnsafeBytes { LedgerKeys.readU64($0) } : UInt64.max
        } ?? 0
    }

    private func bumpRedactions(_ txn: Transaction) throws {
        try txn.put(databases.meta, key: LedgerKeys.redactionsKey, value: LedgerKeys.u64(try redactions(txn) &+ 1))
    }

    /// The roots of the complete subtrees that make up the tree of `size` leaves, largest first, read
    /// from the stored tree.
    private func frontier(size: UInt64, txn: Transaction) throws -> [SHA256Digest] {
        try MerkleSubtrees.decomposition(of: size).map { level, index in
            let stored = try LedgerKeys.withU64Key(MerkleSubtrees.storageIndex(level: level, index: index)) {
                try txn.get(databases.tree, key: $0).flatMap { SHA256Digest(bytes: $0) }
            }
            guard let stored else {
                throw LedgerError(.corrupt, "the stored Merkle subtree (\(level), \(index)) is missing or damaged")
            }
            return stored
        }
    }

    /// Stores the leaf hash and every subtree it completes, in ``MerkleSubtrees`` storage order. The
    /// siblings come from the writer's frontier (the right edge of the tree), which `write` has
    /// checked against the stored head.
    private func appendTree(leaf: SHA256Digest, seq: UInt64, cursor: inout Cursor, state: WriterState) throws {
        var position = MerkleSubtrees.storedCount(leaves: seq)
        var hash = leaf
        try LedgerKeys.withU64Key(position) { key in try hash.withUnsafeBytes { try cursor.append(key: key, value: $0) } }
        var index = seq
        while index & 1 == 1 {
            hash = state.merkle.nodeHash(state.frontier.removeLast(), hash)
            position += 1
            try LedgerKeys.withU64Key(position) { key in try hash.withUnsafeBytes { try cursor.append(key: key, value: $0) } }
            index >>= 1
        }
        state.frontier.append(hash)
    }
}
