public import SteleCore
public import Logging
import SteleCrypto
import Dispatch
import Synchronization
import Foundation
import Glibc

/// The store's one writer. Everything an append decides happens here, for the daemon and for the
/// direct commands alike: the chain head, timestamps and Merkle edge (``EntryBuilder``), the
/// idempotency window, the journal, and the store queue that commits journaled entries to LMDB
/// (``StoreCommitter``). Operations that change the store without being appends run through
/// ``perform(_:)``, in order with the appends (`Specs/architecture.md`).
///
/// Threads: appends are built and journaled on the serial queue `stele-writer`; store commits and
/// checkpoint signing run on `stele-store`. An append is durable, and its completion called, once
/// its journal record is written (one synchronous write); LMDB holds it a moment later.
///
/// While open, the writer holds the data directory's lock: no other process writes the store.
public final class LedgerWriter: Sendable {
    /// How the writer batches, commits and signs.
    public struct Options: Sendable {
        /// How long idempotency keys are honoured, in microseconds (default 24 hours).
        public var idempotencyWindow: Int64 = 86_400_000_000
        /// Most idempotency keys kept in memory (90–140 bytes each; `Specs/store.md`); past it the
        /// oldest are dropped before their window ends.
        public var idempotencyMaximumKeys = Options.defaultIdempotencyMaximumKeys
        /// 16,777,216 keys, about 1.4 GB: the whole default window up to about 190 appends/s.
        public static let defaultIdempotencyMaximumKeys = 1 << 24
        /// Most events in one batch (one journal write).
        public var maximumBatch = 10_000
        /// Least time between two store commits, in microseconds (0: one starts as soon as the
        /// last ended). The store commits at once whenever the journal needs room.
        public var storeCommitInterval: Int64 = 0
        /// How long opening waits for another writer to release the store, in seconds.
        public var lockWait: Double = 10
        /// Opens a store whose journal is lost or damaged, moving a damaged one aside
        /// (`stele recover --accept-loss`); ``LedgerWriter/loss`` says what was found.
        public var acceptingJournalLoss = false
        /// Where the writer reports failures and recoveries.
        public var logger = Logger(label: "stele", factory: { _ in SwiftLogNoOpLogHandler() })

        public init() {}
    }

    /// The ledger written.
    public let ledger: Ledger
    /// What the writer has done since it opened.
    public let statistics = WriterStatistics()
    private let options: Options
    private let appendQueue = DispatchQueue(label: "stele-writer")
    private let store: StoreCommitter
    private let appending: QueueConfined<AppendState>
    private let submissions = Mutex(Submissions())
    /// The data directory, open and locked (`flock`, exclusive) for as long as the writer is open.
    private let directoryLock: Int32

    /// What only the append queue touches.
    private struct AppendState {
        var builder: EntryBuilder
        let journal: Journal
        let idempotency: IdempotencyIndex
        /// Entries journaled but perhaps not yet in the store, in log order, for answering retries.
        var unapplied = ChunkedQueue<JournalEntry>()
        var record = JournalRecordBuilder()
        let sha = SHA256()
        var closed = false
        /// The keys evicted when the last warning about them was logged, and when, in microseconds.
        var evictionWarning: (evicted: UInt64, at: Int64) = (0, 0)
    }

    private struct Submission {
        let events: [PreparedEvent]
        let completion: @Sendable (ArraySlice<Result<Receipt, LedgerError>>) -> Void
    }

    private struct Submissions {
        var queued: [Submission] = []
        /// A drain is scheduled on the append queue.
        var draining = false
    }

    /// Opens the writer of `ledger`: takes the data directory's lock (waiting up to
    /// ``Options/lockWait``), moves into the store the entries a stopped writer journaled, and
    /// continues from the stored head.
    /// - Throws: ``LedgerError`` `locked` while another process writes the store; `corrupt` or
    ///   `chain_broken` when the journal does not continue the store; `journal_lost` when the
    ///   journal a writer that did not close left behind is missing, emptied or replaced.
    public init(ledger: Ledger, options: Options = Options()) throws {
        guard !ledger.isReadOnly else { throw LedgerError(.readOnly, "the ledger was opened read-only") }
        self.ledger = ledger
        self.options = options
        directoryLock = try Self.lock(ledger.path, waitingUpTo: options.lockWait)
        do {
            let journal: Journal
            let salvage: [JournalEntry]
            let lost: LedgerError?
            (journal, lost, salvage) = try Self.openJournal(ledger, acceptingLoss: options.acceptingJournalLoss)
            loss = lost
            // Entries a crashed writer acknowledged but did not commit to the store go in first;
            // then the store no longer needs the journal (its mark is cleared with them).
            try ledger.write { txn, head, state in
                if lost == nil {
                    try ledger.apply(journal.entries(storeSize: head.size), txn: txn, head: &head, state: state)
                } else {
                    // Accepting a loss: what still continues the store's chain goes in, the rest is lost.
                    try ledger.apply(Self.continuing(salvage, head: head), txn: txn, head: &head, state: state)
                }
                try ledger.setJournalMark(nil, txn: txn)
            }
            let idempotency = IdempotencyIndex(maximumKeys: options.idempotencyMaximumKeys)
            let head = try ledger.read { txn in
                let head = try ledger.head(txn)
                try idempotency.synchronize(
                    txn: txn, ledger: ledger, head: head.size,
                    windowStart: Timestamp.now().adding(microseconds: -options.idempotencyWindow))
                idempotency.commit(head: head.size)
                return head
            }
            try journal.clear()  // the store holds all of it
            // From here on the journal is the only copy of what is acknowledged: the store records
            // that it expects it, by the mark written to it first (`Specs/store.md`, "Journal").
            let mark = try journal.appendMark()
            try ledger.write { txn, _, _ in try ledger.setJournalMark(mark, txn: txn) }
            appending = QueueConfined(AppendState(builder: EntryBuilder(head: head), journal: journal, idempotency: idempotency), on: appendQueue)
            batchBytes = journal.regionSize / 4
            store = StoreCommitter(
                ledger: ledger, applied: head.size, interval: options.storeCommitInterval,
                statistics: statistics, logger: options.logger)
            store.acknowledged(size: head.size, leaf: head.lastLeaf)
        } catch {
            Glibc.close(directoryLock)
            throw error
        }
    }

    deinit { Glibc.close(directoryLock) }

    /// What ``Options/acceptingJournalLoss`` accepted when the writer opened: why the journal's
    /// entries could not be recovered, or nil when nothing was lost.
    public let loss: LedgerError?

    /// The store's journal, checked against the mark its last writer left: refused when lost or
    /// damaged unless `acceptingLoss`, which then starts a new journal (a damaged one is kept
    /// beside it as evidence, `journal.damaged-<time>`).
    private static func openJournal(_ ledger: Ledger, acceptingLoss: Bool) throws -> (Journal, loss: LedgerError?, salvage: [JournalEntry]) {
        let (mark, size) = try ledger.read { txn in (try ledger.journalMark(txn), try ledger.head(txn).size) }
        let existing = try Journal(directory: ledger.path, create: false, exclusive: true, lockWait: 3)
        let problem = Journal.loss(of: existing, in: ledger.path, mark: mark, storeSize: size) ?? existing?.damage(storeSize: size)
        if problem == nil, let existing { return (existing, nil, []) }
        var salvage: [JournalEntry] = []
        if let problem {
            guard acceptingLoss else { throw problem }
            salvage = (try? existing?.readableEntries()) ?? []
            let path = ledger.path + "/" + Journal.fileName
            if FileManager.default.fileExists(atPath: path) {
                let kept = path + ".damaged-\(Timestamp.now().microseconds)"
                guard rename(path, kept) == 0 else { throw LedgerError(.storage, "cannot move the journal \(path) aside: \(String(cString: strerror(errno)))") }
            }
        }
        return (try Journal(directory: ledger.path, create: true, exclusive: true, lockWait: 3)!, problem, salvage)
    }

    /// The run of `entries` that continues the store from `head`, without a gap.
    private static func continuing(_ entries: [JournalEntry], head: ChainHead) -> [JournalEntry] {
        var next = head.size
        var run: [JournalEntry] = []
        for entry in entries where entry.seq >= head.size {
            guard entry.seq == next else { break }
            run.append(entry)
            next += 1
        }
        return run
    }

    /// The size of the log once every journaled entry is in the store. Not from a completion.
    public var size: UInt64 { appendQueue.sync { appending.withValue { $0.builder.head.size } } }

    /// Bodies one batch should hold at most, so that its records fit in the journal beside the
    /// entries the store has not yet applied.
    public let batchBytes: Int

    // MARK: Appending

    /// Appends `events` (prepared on the append queue) and returns each one's outcome once the batch
    /// is in the store: for direct commands.
    public func append(_ events: [Event], now: @escaping @Sendable () -> Timestamp = Timestamp.now) throws -> [Result<Receipt, LedgerError>] {
        let preparer = ledger.makePreparer()
        return try append(prepared: events.map { try preparer.prepare($0) }, now: now)
    }

    /// Appends prepared events and returns each one's outcome once the batch is in the store: a
    /// receipt (new, or the original for a retried id), or `idempotency_conflict`.
    /// - Throws: ``LedgerError`` `storage_full` or `storage` when nothing could be made durable.
    public func append(prepared: [PreparedEvent], now: @escaping @Sendable () -> Timestamp = Timestamp.now) throws -> [Result<Receipt, LedgerError>] {
        let results = try appendQueue.sync { try journal(prepared[...], now: now) }
        try store.commitNow()
        return results
    }

    /// Queues prepared events for the next batch. `completion` is called on the append queue with
    /// each event's outcome once its batch is durable in the journal: a receipt, `idempotency_conflict`,
    /// or, when nothing of the batch could be made durable, `storage_full` or `storage`.
    public func submit(_ events: [PreparedEvent], completion: @escaping @Sendable (ArraySlice<Result<Receipt, LedgerError>>) -> Void) {
        guard !events.isEmpty else { return completion([]) }
        let schedule = submissions.withLock { s in
            s.queued.append(Submission(events: events, completion: completion))
            defer { s.draining = true }
            return !s.draining
        }
        if schedule { appendQueue.async { self.drain() } }
    }

    /// Takes everything submitted and journals it in batches, until nothing is left. Each batch
    /// gathers while the one before it is being written: that is the group commit.
    private func drain() {
        while true {
            let taken = submissions.withLock { s in
                if s.queued.isEmpty { s.draining = false }
                defer { s.queued = [] }
                return s.queued
            }
            if taken.isEmpty { return }
            let events = taken.count == 1 ? taken[0].events : taken.flatMap(\.events)
            var next = 0  // the first submission not yet completed
            var start = 0  // where its events start
            var carried: [Result<Receipt, LedgerError>] = []  // its outcomes from earlier batches
            var position = 0
            while position < events.count {
                let batch = position..<batchEnd(events, from: position)
                let began = Timestamp.now().microseconds
                let results: [Result<Receipt, LedgerError>]
                do {
                    results = try journal(events[batch], now: Timestamp.now)
                } catch {
                    let failure = error as? LedgerError ?? LedgerError(.storage, "\(error)")
                    options.logger.error(
                        "a batch could not be made durable; nothing of it was appended",
                        metadata: ["batch": "\(batch.count)", "error": "\(failure.message)"])
                    results = Array(repeating: .failure(failure), count: batch.count)
                }
                record(results[...], microseconds: Timestamp.now().microseconds - began)
                // Each submission ending in this batch gets its outcomes as a slice of the batch's
                // (no copy); one that began in an earlier batch gets them joined.
                while next < taken.count {
                    let end = start + taken[next].events.count
                    let from = max(start, batch.lowerBound) - batch.lowerBound
                    guard end <= batch.upperBound else {
                        carried += results[from...]
                        break
                    }
                    let mine = results[from..<end - batch.lowerBound]
                    if carried.isEmpty {
                        taken[next].completion(mine)
                    } else {
                        taken[next].completion((carried + mine)[...])
                        carried = []
                    }
                    start = end
                    next += 1
                }
                position = batch.upperBound
            }
        }
    }

    /// Where a batch starting at `start` ends: at most ``Options/maximumBatch`` events and
    /// ``batchBytes`` of bodies (counting each header as 512 bytes), at least one event.
    private func batchEnd(_ events: [PreparedEvent], from start: Int) -> Int {
        let limit = min(events.count, start + options.maximumBatch)
        let maximumBytes = batchBytes
        var end = start
        var bytes = 0
        while end < limit && (end == start || bytes < maximumBytes) {
            bytes += events[end].bodySize + 512
            end += 1
        }
        return end
    }

    private func record(_ results: ArraySlice<Result<Receipt, LedgerError>>, microseconds: Int64) {
        var appended = 0
        var duplicates = 0
        for case .success(let receipt) in results {
            if receipt.duplicate { duplicates += 1 } else { appended += 1 }
        }
        let now = Timestamp.now().microseconds
        let (evicted, warn) = appending.withValue { state in
            let evicted = state.idempotency.evicted
            guard evicted > state.evictionWarning.evicted, now - state.evictionWarning.at >= 3_600_000_000 else { return (evicted, false) }
            state.evictionWarning = (evicted, now)
            return (evicted, true)
        }
        statistics.recordBatch(
            size: results.count, appended: appended, duplicates: duplicates, microseconds: microseconds, idempotencyEvicted: evicted)
        if warn {
            options.logger.warning(
                "idempotency keys are being dropped before their window ends: retries of those ids would append anew; raise idempotency_max_keys (memory) or lower idempotency_window_seconds",
                metadata: ["evicted": "\(evicted)", "idempotency_max_keys": "\(options.idempotencyMaximumKeys)"])
        }
    }

    /// Builds the batch's entries and writes the new ones to the journal; on the append queue.
    /// When this returns, every new entry with a successful outcome is durable, and queued for the
    /// store.
    ///
    /// A batch is one journal record, or several if it is large (each up to half a region); if a
    /// later record cannot be written, the events of the records already written keep their
    /// receipts and the rest fail.
    /// - Throws: ``LedgerError`` when nothing of the batch could be made durable.
    private func journal(_ prepared: ArraySlice<PreparedEvent>, now: () -> Timestamp) throws -> [Result<Receipt, LedgerError>] {
        // While the store is behind (a failed commit), acknowledge nothing more; a batch first has
        // the store retry at once (space may have been freed).
        if store.failure != nil { try store.commitNow() }
        return try appending.withValue { state in
            guard !state.closed else { throw LedgerError(.storage, "the writer is closed") }
            let applied = store.appliedSize
            if let first = state.unapplied.first, first.seq < applied {
                state.unapplied.removeFirst(Int(min(applied - first.seq, UInt64(state.unapplied.count))))  // consecutive seqs
            }
            expireIdempotencyKeys(state.idempotency, now: now(), batch: prepared.count)
            var results: [Result<Receipt, LedgerError>] = []
            results.reserveCapacity(prepared.count)
            var entries: [JournalEntry] = []
            // What the records written so far cover: results, entries and builder.
            var durable = (results: 0, entries: 0, builder: state.builder)
            let recordLimit = state.journal.regionSize / 2
            func flush(_ state: inout AppendState) throws {
                guard state.record.count > 0 else { return }
                let written = entries[durable.entries...]
                if state.record.byteCount > state.journal.maximumRecord {
                    // One event too large for the journal: committed to the store itself, with the
                    // batch's entries before it, after everything queued.
                    try store.commitNow(extra: Array(written))
                } else {
                    try makeRoom(for: state.record.byteCount, in: state.journal)
                    try state.journal.append(&state.record)
                    store.enqueue(written)
                    state.unapplied.append(contentsOf: Array(written))
                }
                state.record.reset()
                state.idempotency.commit(head: state.builder.head.size)
                durable = (results.count, entries.count, state.builder)
                store.acknowledged(size: state.builder.head.size, leaf: state.builder.head.lastLeaf)
            }
            state.record.reset()
            do {
                for event in prepared {
                    if let key = event.idempotencyKey, let seq = state.idempotency.seq(for: key) {
                        results.append(EntryBuilder.retry(event, of: try stored(seq, batch: entries, unapplied: state.unapplied)))
                        continue
                    }
                    let entry = state.builder.build(event, clock: now(), using: state.sha)
                    state.record.add(entry)
                    if let key = event.idempotencyKey { state.idempotency.add(key, seq: entry.seq, timestamp: entry.timestamp) }
                    entries.append(entry)
                    results.append(.success(EntryBuilder.receipt(entry)))
                    if state.record.byteCount >= recordLimit { try flush(&state) }
                }
                try flush(&state)
            } catch {
                let failure = error as? LedgerError ?? LedgerError(.storage, "\(error)")
                state.idempotency.rollback()
                state.builder = durable.builder
                state.record.reset()
                guard durable.results > 0 else { throw failure }
                results.removeLast(results.count - durable.results)
                results += Array(repeating: .failure(failure), count: prepared.count - durable.results)
            }
            return results
        }
    }

    /// The entry recorded at `seq`, which a retried id names: from this batch, from the entries
    /// journaled but perhaps not yet in the store, or from the store.
    private func stored(_ seq: UInt64, batch: [JournalEntry], unapplied: ChunkedQueue<JournalEntry>) throws -> StoredEntry {
        if let first = batch.first, seq >= first.seq { return try StoredEntry(journaled: batch[Int(seq - first.seq)]) }
        if let first = unapplied.first, seq >= first.seq { return try StoredEntry(journaled: unapplied[Int(seq - first.seq)]) }
        return try ledger.entry(seq)
    }

    /// Makes room in the journal for a record of `bytes` (at most a region): writing moves to the
    /// other region as soon as the store holds all of it and this one is half full, or when this
    /// one is full (then the store commits what it holds at once).
    private func makeRoom(for bytes: Int, in journal: Journal) throws {
        let full = bytes > journal.spaceLeft
        guard full || journal.bytesInRegion >= journal.regionSize / 2 else { return }
        if let last = journal.otherRegionLastSeq, last >= store.appliedSize {
            guard full else { return }
            try store.commitNow()
        }
        journal.switchRegion()
    }

    /// Drops idempotency keys older than the window: a few more per batch than it adds, so that no
    /// batch waits for a whole second's worth. Keys more than a second past the window (after an
    /// idle spell) all go at once, so none is honoured more than a second after its window ended.
    private func expireIdempotencyKeys(_ idempotency: IdempotencyIndex, now: Timestamp, batch: Int) {
        let windowStart = now.adding(microseconds: -options.idempotencyWindow)
        idempotency.expire(before: windowStart, atMost: 2 * batch + 64)
        idempotency.expire(before: windowStart.adding(microseconds: -1_000_000))
    }

    /// Idempotency keys dropped before their window ended, to keep at most
    /// ``Options/idempotencyMaximumKeys`` in memory: retries of those ids append anew.
    /// Not from a completion.
    public var idempotencyKeysEvicted: UInt64 { appendQueue.sync { appending.withValue { $0.idempotency.evicted } } }

    /// From now on, signs a checkpoint of the committed tree about once a second and when closing,
    /// and publishes the acknowledged mark beside it (`Specs/store.md`). Call once the store has
    /// passed the start-up checks: nothing is signed before.
    public func publish(_ checkpoints: CheckpointPublisher) {
        store.publish(checkpoints)
    }

    /// Signs a checkpoint of what the store holds now, without waiting for the next signing turn
    /// (the daemon's start is witnessed before it serves).
    public func signCheckpointNow() {
        store.signNow()
    }

    /// Calls `resume` once readers of the store see every entry acknowledged before this call
    /// (read-your-writes for questions answered from the store): at once, on this thread, when
    /// they already do; else on the store queue right after the commit that stores the last of
    /// them, within the commit interval. Keep `resume` short: hand work to another thread.
    public func whenAcknowledgedVisible(_ resume: @escaping @Sendable () -> Void) {
        store.whenAcknowledgedStored(resume)
    }

    /// Waits until the store holds every entry journaled so far, committing them now whatever the
    /// commit interval.
    public func flushToStore() throws {
        try appendQueue.sync { try store.commitNow() }
    }

    // MARK: Operations

    /// Runs `operation` in one store transaction, in order with the appends: after every batch
    /// journaled before it is in the store, and before any batch after it. The operation reads
    /// and changes the store through its ``WriteContext`` and may append entries of its own
    /// (`ledger.*`); all of it commits together with full sync, or nothing of it if it throws.
    /// Call from any thread but the writer's own queues.
    public func perform<R: Sendable>(now: @escaping @Sendable () -> Timestamp = Timestamp.now, _ operation: (inout WriteContext) throws -> R) throws -> R {
        try appendQueue.sync { () throws -> R in
            try appending.withValue { state throws -> R in
                guard !state.closed else { throw LedgerError(.storage, "the writer is closed") }
                let (result, builder) = try store.exclusive { () throws -> (R, EntryBuilder) in
                    try ledger.write { txn, head, storeState throws -> (R, EntryBuilder) in
                        var context = WriteContext(
                            ledger: ledger, txn: txn, state: storeState, builder: state.builder, preparer: ledger.makePreparer(), now: now)
                        let result = try operation(&context)
                        head = try context.finish(head: head)
                        return (result, context.builder)
                    }
                }
                state.builder = builder
                store.operationCommitted(size: builder.head.size)
                store.acknowledged(size: builder.head.size, leaf: builder.head.lastLeaf)
                return result
            }
        }
    }

    // MARK: Closing

    /// Commits every journaled entry to the store, signs a final checkpoint (when signing), empties
    /// the journal, and refuses further appends. The directory's lock is released when the writer
    /// is freed.
    public func close() throws {
        try appendQueue.sync {
            try appending.withValue { state in
                guard !state.closed else { return }
                state.closed = true
                try store.close()
                if store.appliedSize >= state.builder.head.size {
                    // A clean stop: the store holds everything and no longer expects the journal,
                    // which is left empty, so later writers and tools have nothing to check.
                    try store.exclusive { try ledger.write { txn, _, _ in try ledger.setJournalMark(nil, txn: txn) } }
                    try state.journal.clear()
                }
            }
        }
    }

    /// Replaces the store file with a compacted copy of itself while appends go on being
    /// acknowledged into the journal (the store queue is held meanwhile; readers in this process
    /// wait), then moves every journaled entry into the store and zeroes the journal, which starts
    /// again with a new mark (appends wait for that moment).
    func compactStoreAndScrubJournal(scratch: String) throws {
        try store.exclusive { try ledger.compactInPlace(scratch: scratch) }
        try appendQueue.sync {
            try appending.withValue { state in
                guard !state.closed else { throw LedgerError(.storage, "the writer is closed") }
                try store.commitNow()
                try state.journal.scrub()
                let mark = try state.journal.appendMark()
                try store.exclusive { try ledger.write { txn, _, _ in try ledger.setJournalMark(mark, txn: txn) } }
            }
        }
    }

    /// Opens `path` and takes its exclusive lock, waiting up to `seconds`.
    private static func lock(_ path: String, waitingUpTo seconds: Double) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw LedgerError(.storage, "cannot open the data directory \(path): \(String(cString: strerror(errno)))") }
        guard Journal.lock(fd, waitingUpTo: seconds) else {
            Glibc.close(fd)
            throw LedgerError(.locked, "another daemon or writer is writing this store (\(path) is locked): append through the daemon's socket (stele append), or stop it first")
        }
        return fd
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
