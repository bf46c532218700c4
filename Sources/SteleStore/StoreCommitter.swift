import SteleCore
import SteleCrypto
import Logging
import Dispatch
import Synchronization

/// The writer's store side: commits journaled entries to LMDB on its own serial queue
/// (`stele-store`), one transaction per round with full sync, at most one round per commit interval,
/// taking whatever has queued meanwhile. After a commit it signs a checkpoint about once a second
/// when the tree grew, recorded in the store with the next transaction.
///
/// Commits never delay an acknowledgement; they only bound how far readers lag behind the journal.
/// If a commit fails (a full disk) the entries stay queued, and in the journal; ``failure`` says
/// why, a retry follows 100 ms later, and the writer acknowledges nothing more until one commits.
final class StoreCommitter: Sendable {
    private struct State {
        /// Journaled entries not yet in the store, in log order.
        var pending: [JournalEntry] = []
        /// A round or a retry is scheduled on the queue.
        var scheduled = false
        var failed: LedgerError?
        /// The store holds every entry below this.
        var applied: UInt64
        /// When the last commit started, in microseconds.
        var lastCommit: Int64
        /// Signed, not yet recorded in the store.
        var unstoredNote: SignedNote?
        /// A signing turn is scheduled, and when the last one ran.
        var signScheduled = false
        var lastSign: Int64 = 0
        /// The writer's head: what it has acknowledged (published with the checkpoints).
        var acknowledged: (size: UInt64, leaf: SHA256Digest)?
        /// Readers waiting for the store to hold the first `size` entries, in the order they asked.
        var waiting: [(size: UInt64, resume: @Sendable () -> Void)] = []
    }

    let queue = DispatchQueue(label: "stele-store")
    private let ledger: Ledger
    private let interval: Int64
    private let publisher = Mutex<CheckpointPublisher?>(nil)
    private let statistics: WriterStatistics
    private let logger: Logger
    private let state: Mutex<State>

    /// Entries per transaction at most (LMDB holds a transaction's dirty pages in memory).
    static let maximumRound = 16_384

    init(
        ledger: Ledger, applied: UInt64, interval: Int64, statistics: WriterStatistics,
        logger: Logger
    ) {
        self.ledger = ledger
        self.interval = interval
        self.statistics = statistics
        self.logger = logger
        // The first commit, too, waits for the interval: entries gather from the start.
        self.state = Mutex(State(applied: applied, lastCommit: Timestamp.now().microseconds))
    }

    /// The store holds every entry below this size.
    var appliedSize: UInt64 { state.withLock { $0.applied } }

    /// Why the last commit failed, until one succeeds.
    var failure: LedgerError? { state.withLock { $0.failed } }

    /// Starts signing checkpoints of the committed tree, and publishing the acknowledged mark.
    func publish(_ checkpoints: CheckpointPublisher) {
        publisher.withLock { $0 = checkpoints }
    }

    /// The writer acknowledged everything up to `size` entries, the last with leaf hash `leaf`.
    /// The mark is published within about a second, with or without a store commit meanwhile.
    func acknowledged(size: UInt64, leaf: SHA256Digest) {
        let turn = state.withLock { s in
            s.acknowledged = (size, leaf)
            guard !s.signScheduled else { return false }
            s.signScheduled = true
            return true
        }
        if turn { scheduleSigning() }
    }

    /// A signing turn about a second after the last one (a commit or an acknowledgement asked).
    private func scheduleSigning() {
        let due = max(0, state.withLock { $0.lastSign } + 1_000_000 - Timestamp.now().microseconds)
        queue.asyncAfter(deadline: .now() + .microseconds(Int(due))) {
            self.state.withLock { $0.signScheduled = false }
            self.signAndStore(final: false)
        }
    }

    /// Queues journaled entries, in log order, for a round within the commit interval.
    func enqueue(_ entries: ArraySlice<JournalEntry>) {
        guard !entries.isEmpty else { return }
        let delay: Int64? = state.withLock { s in
            s.pending.append(contentsOf: entries)
            guard !s.scheduled else { return nil }
            s.scheduled = true
            return max(0, s.lastCommit + interval - Timestamp.now().microseconds)
        }
        if let delay { schedule(after: delay) }
    }

    /// Commits everything queued now, and then `extra` (entries not queued), whatever the interval:
    /// for a writer whose journal is full, or that retries after a failure, or an operation that
    /// must see every acknowledged entry in the store. Call from the writer's queue.
    /// - Throws: why the commit failed; then nothing of `extra` was stored.
    func commitNow(extra: [JournalEntry] = []) throws {
        try queue.sync {
            while let round = nextRound() {
                try commit(round)
            }
            if !extra.isEmpty { try commit(extra) }
        }
    }

    /// Runs `body` on the store queue once everything queued is committed: for operations that
    /// change the store in order with the appends.
    func exclusive<R>(_ body: () throws -> R) throws -> R {
        try queue.sync {
            while let round = nextRound() { try commit(round) }
            return try body()
        }
    }

    /// An operation committed entries of its own: the store now holds everything below `size`.
    func operationCommitted(size: UInt64) {
        state.withLock { $0.applied = max($0.applied, size) }
        resumeWaiting()
    }

    /// Calls `resume` once the store holds every entry acknowledged before this call: at once (on
    /// this thread) when it already does, else on the store queue right after the commit that
    /// stores the last of them, which starts without waiting for the commit interval: a reader
    /// waits for one commit at most.
    func whenAcknowledgedStored(_ resume: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            let target = s.acknowledged?.size ?? 0
            guard target > s.applied else { return true }
            s.waiting.append((target, resume))
            return false
        }
        if now { return resume() }
        queue.async {
            // A failed commit leaves the readers waiting for the retry that stores their entries.
            while self.state.withLock({ !$0.waiting.isEmpty }), let round = self.nextRound() {
                do { try self.commit(round) } catch { return }
            }
        }
    }

    private func resumeWaiting() {
        let ready = state.withLock { s -> [@Sendable () -> Void] in
            guard !s.waiting.isEmpty else { return [] }
            let applied = s.applied
            let ready = s.waiting.filter { $0.size <= applied }.map(\.resume)
            s.waiting.removeAll { $0.size <= applied }
            return ready
        }
        for resume in ready { resume() }
    }

    /// Signs a checkpoint of the committed tree now, if it grew, and records it.
    func signNow() {
        queue.sync { signAndStore(final: true) }
    }

    /// Commits everything queued, signs a final checkpoint and records it, and waits for its file.
    func close() throws {
        try commitNow()
        queue.sync {
            signAndStore(final: true)
        }
        publisher.withLock { $0 }?.waitForFiles()
    }

    private func schedule(after microseconds: Int64) {
        if microseconds <= 0 {
            queue.async { self.round() }
        } else {
            queue.asyncAfter(deadline: .now() + .microseconds(Int(microseconds))) { self.round() }
        }
    }

    /// The next entries to commit (nil when none), up to ``maximumRound``.
    private func nextRound() -> [JournalEntry]? {
        state.withLock { s in s.pending.isEmpty ? nil : Array(s.pending.prefix(Self.maximumRound)) }
    }

    /// One scheduled round on the queue: commits, then schedules the next if more has queued.
    private func round() {
        var next: Int64?
        if let round = nextRound() {
            do {
                try commit(round)
            } catch {
                next = 100_000  // retried; the writer also retries at once before its next batch
            }
        }
        if next == nil {
            next = state.withLock { s in
                guard !s.pending.isEmpty else {
                    s.scheduled = false
                    return nil
                }
                return max(0, s.lastCommit + interval - Timestamp.now().microseconds)
            }
        }
        if let next { schedule(after: next) }
        signAndStore(final: false)
    }

    /// One transaction storing `entries` (and a signed note waiting to be recorded); on the queue.
    private func commit(_ entries: [JournalEntry]) throws {
        let start = Timestamp.now().microseconds
        let note = state.withLock { s in
            s.lastCommit = start
            return s.unstoredNote
        }
        do {
            try ledger.write { txn, head, store in
                if let note {
                    // A note that does not check out is logged and dropped; the entries still go in.
                    do { try ledger.store(try ledger.ownCheckpoint(note), note, txn: txn) } catch let error as LedgerError
                        where error.code != .storage && error.code != .storageFull {
                        logger.error("a signed checkpoint could not be recorded", metadata: ["error": "\(error.message)"])
                    }
                }
                try ledger.apply(entries, txn: txn, head: &head, state: store)
            }
        } catch {
            let failure = error as? LedgerError ?? LedgerError(.storage, "\(error)")
            let first = state.withLock { s in
                defer { s.failed = failure }
                return s.failed == nil
            }
            if first {
                logger.error(
                    "the store could not commit; acknowledged entries wait in the journal, and nothing more is acknowledged until a retry commits them",
                    metadata: ["entries": "\(entries.count)", "error": "\(failure.message)"])
            }
            throw failure
        }
        statistics.recordStoreCommit(microseconds: Timestamp.now().microseconds - start)
        let recovered = state.withLock { s in
            s.unstoredNote = nil
            let last = entries[entries.count - 1].seq + 1
            if let first = s.pending.first, first.seq < last {
                s.pending.removeFirst(min(Int(last - first.seq), s.pending.count))  // consecutive seqs
            }
            s.applied = max(s.applied, last)
            defer { s.failed = nil }
            return s.failed != nil
        }
        if recovered { logger.notice("the store committed the entries waiting in the journal; appends are acknowledged again") }
        resumeWaiting()
    }

    /// Signs the committed tree about once a second when it grew (at once when `final`), and
    /// records a waiting note in a transaction of its own when nothing else is queued to carry it.
    /// On the queue.
    private func signAndStore(final: Bool) {
        guard let checkpoints = publisher.withLock({ $0 }) else { return }
        let now = Timestamp.now().microseconds
        let due: Int64? = state.withLock { s in
            let due = final ? 0 : s.lastSign + 1_000_000 - now
            guard due > 0 else {
                s.lastSign = now
                return 0
            }
            if s.signScheduled { return nil }
            s.signScheduled = true
            return due
        }
        guard let due else { return }
        guard due == 0 else { return scheduleSigning() }
        if let acknowledged = state.withLock({ $0.acknowledged }) {
            checkpoints.publishAcknowledged(acknowledged, origin: ledger.origin)
        }
        if let head = try? ledger.treeHead(), let note = checkpoints.signIfGrown(head, origin: ledger.origin) {
            statistics.checkpointSigned()
            state.withLock { $0.unstoredNote = note }
        }
        guard let note = state.withLock({ $0.pending.isEmpty ? $0.unstoredNote : nil }) else { return }
        do { try ledger.storeCheckpoint(note) } catch {
            logger.error("recording a checkpoint failed", metadata: ["error": "\(error)"])
        }
        state.withLock { s in if s.unstoredNote?.serialized == note.serialized { s.unstoredNote = nil } }
    }
}
