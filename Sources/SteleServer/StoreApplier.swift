import Foundation
import Logging
import SteleCore
import SteleCrypto
import SteleStore

/// The store's own thread: applies the entries the writer journaled (and has already answered) to
/// the LMDB store, one transaction committed with full sync per round, taking whatever has queued
/// meanwhile. It also signs a checkpoint about once a second when the committed tree has grown, and
/// when stopped.
///
/// Commits never delay an answer; they only bound how far readers lag behind the journal. If a
/// commit fails (a full disk), the entries stay queued (and in the journal), ``recovered(within:)`` says why,
/// and the writer answers nothing more until a retry has committed them.
final class StoreApplier: @unchecked Sendable {
    // `queue`, `stopping`, `failed`, `attempts` and `retryRequested` are guarded by `condition`.
    private let ledger: Ledger
    private let journal: JournalWriter?
    private let signer: NoteSigner
    private let checkpoints: CheckpointDirectory
    private let stats: ServerStats
    private let logger: Logger
    private let condition = NSCondition()
    private var queue: [JournalEntry] = []
    private var stopping = false
    private var failed: LedgerError?
    /// Commits tried so far, and whether the writer asked for a retry now.
    private var attempts = 0
    private var retryRequested = false
    /// The writer is waiting for room in the journal: commit now, whatever the interval.
    private var hurried = false
    private let finished = DispatchSemaphore(value: 0)
    private var lastSignedSize: UInt64
    /// Checkpoints signed since start; the checkpoint directory is pruned every
    /// `checkpointsPerPrune` of them (listing it each second would cost more than it saves).
    private var signedCount = 0
    private static let checkpointsPerPrune = 100
    /// Signed, not yet recorded in the store. Applier thread only.
    private var unstoredNote: SignedNote?
    private let publisher = DispatchQueue(label: "stele-checkpoint-files")
    /// Least microseconds between two commits (`store_commit_interval_ms`).
    private let commitInterval: Int64

    /// Entries per transaction at most (LMDB holds a transaction's dirty pages in memory).
    static let maximumRound = 16_384

    init(
        ledger: Ledger, journal: JournalWriter?, signer: NoteSigner, checkpoints: CheckpointDirectory, stats: ServerStats,
        logger: Logger, commitInterval: Int64 = 0, signedSize: UInt64
    ) {
        self.commitInterval = commitInterval * 1000
        self.ledger = ledger
        self.journal = journal
        self.signer = signer
        self.checkpoints = checkpoints
        self.stats = stats
        self.logger = logger
        self.lastSignedSize = signedSize
    }

    func start() {
        journal?.storeNeeded = { [weak self] in self?.hurry() }
        // Named from inside: on Linux, Foundation applies a name set before `start()` to nothing
        // the kernel shows (top, perf and /proc list the thread by this name).
        let thread = Thread { [self] in
            Thread.current.name = "stele-store"
            run()
        }
        thread.start()
    }

    /// Queues journaled entries, in journal order.
    func submit(_ entries: [JournalEntry]) {
        guard !entries.isEmpty else { return }
        condition.lock()
        let wasEmpty = queue.isEmpty
        queue.append(contentsOf: entries)
        // The store thread waits for a first entry, then for the commit interval or a full round;
        // waking it for every batch in between would cost a wakeup per batch for nothing.
        if wasEmpty || queue.count >= Self.maximumRound { condition.broadcast() }
        condition.unlock()
    }

    /// Starts the next commit now, without waiting for the commit interval: the journal is full.
    func hurry() {
        condition.lock()
        hurried = true
        condition.broadcast()
        condition.unlock()
    }

    /// Nil when the store is keeping up. After a failed commit, has it retried at once and waits
    /// up to `seconds` for the outcome: nil if the retry committed, else why it failed.
    func recovered(within seconds: Double) -> LedgerError? {
        condition.lock()
        defer { condition.unlock() }
        guard failed != nil else { return nil }
        let target = attempts + 1
        retryRequested = true
        condition.broadcast()
        let deadline = Date(timeIntervalSinceNow: seconds)
        while failed != nil && attempts < target {
            if !condition.wait(until: deadline) { break }
        }
        return failed
    }

    /// Applies everything queued, signs a final checkpoint, and stops the thread.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        finished.wait()
        publisher.sync {}  // every checkpoint file written
    }

    private func run() {
        var lastCheckpoint = Timestamp.now()
        var lastCommit = Timestamp(microseconds: 0)
        var failures = 0
        while true {
            condition.lock()
            while queue.isEmpty && !stopping {
                if !condition.wait(until: Date(timeIntervalSinceNow: 1)) { break }
            }
            // Let entries gather for at most the commit interval (never while stopping).
            while !stopping && !hurried && !queue.isEmpty && queue.count < Self.maximumRound {
                let due = lastCommit.microseconds + commitInterval - Timestamp.now().microseconds
                if due <= 0 { break }
                _ = condition.wait(until: Date(timeIntervalSinceNow: min(1, Double(due) / 1_000_000)))
            }
            hurried = false
            let round = Array(queue.prefix(Self.maximumRound))
            let done = stopping && queue.count == round.count
            condition.unlock()

            if !round.isEmpty {
                lastCommit = Timestamp.now()
                if apply(round) {
                    failures = 0
                } else {
                    failures += 1
                    // At shutdown, give up after a few tries: the entries are in the journal, and
                    // the next start moves them in.
                    if stopping && failures >= 3 { break }
                    condition.lock()
                    if !retryRequested && !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1)) }
                    retryRequested = false
                    condition.unlock()
                    continue
                }
            }
            let now = Timestamp.now()
            if done || now.microseconds - lastCheckpoint.microseconds >= 1_000_000 {
                signIfGrown()
                lastCheckpoint = now
            }
            if unstoredNote != nil && (done || isIdle) { storeNote() }
            if done { break }
        }
        finished.signal()
    }

    /// One transaction for `round`; true if it committed.
    private func apply(_ round: [JournalEntry]) -> Bool {
        let start = Timestamp.now()
        do {
            if let note = unstoredNote {
                do {
                    try ledger.apply(round, storing: note)
                } catch let error as LedgerError where error.code != .storage && error.code != .storageFull && error.code != .corrupt && error.code != .chainBroken {
                    logger.error("a signed checkpoint could not be recorded", metadata: ["error": "\(error.message)"])
                    try ledger.apply(round)
                }
                unstoredNote = nil
            } else {
                try ledger.apply(round)
            }
        } catch {
            let failure = error as? LedgerError ?? LedgerError(.storage, "\(error)")
            condition.lock()
            if failed == nil {
                logger.error("the store could not commit; acknowledged entries wait in the journal, and nothing more is acknowledged until a retry commits them", metadata: ["entries": "\(round.count)", "error": "\(failure.message)"])
            }
            failed = failure
            attempts += 1
            condition.broadcast()
            condition.unlock()
            return false
        }
        stats.recordStoreCommit(microseconds: Timestamp.now().microseconds - start.microseconds)
        journal?.markApplied(size: round[round.count - 1].seq + 1)
        condition.lock()
        queue.removeFirst(round.count)
        if failed != nil { logger.notice("the store committed the entries waiting in the journal; appends are acknowledged again") }
        failed = nil
        attempts += 1
        condition.broadcast()
        condition.unlock()
        return true
    }

    private var isIdle: Bool {
        condition.lock()
        defer { condition.unlock() }
        return queue.isEmpty
    }

    /// Signs the committed tree head if it grew; the note is recorded in the store with the next
    /// commit and written to the checkpoint directory in the background.
    private func signIfGrown() {
        do {
            let head = try ledger.treeHead()
            guard head.size > lastSignedSize else { return }
            let note = try Checkpoint(origin: ledger.origin, size: head.size, rootHash: head.root).signed(by: signer)
            unstoredNote = note
            lastSignedSize = head.size
            stats.checkpointSigned()
            signedCount += 1
            let prune = signedCount % Self.checkpointsPerPrune == 0
            publisher.async { [checkpoints, logger] in
                do {
                    try checkpoints.write(note, size: head.size)
                    if prune { try checkpoints.prune() }
                } catch {
                    logger.error("writing a checkpoint file failed", metadata: ["error": "\(error)"])
                }
            }
        } catch {
            logger.error("signing a checkpoint failed", metadata: ["error": "\(error)"])
        }
    }

    /// Records the signed note in the store in a transaction of its own (nothing else to apply).
    private func storeNote() {
        guard let note = unstoredNote else { return }
        do { try ledger.storeCheckpoint(note) } catch {
            logger.error("recording a checkpoint failed", metadata: ["error": "\(error)"])
        }
        unstoredNote = nil
    }
}
