import Foundation
import Logging
import NIOCore
import SteleCore
import SteleCrypto
import SteleStore

/// The single writer: one thread that takes whatever appends have queued up, makes them durable as
/// one batch (one synchronous journal write), hands each connection its outcomes, and starts on the
/// next batch, which gathers while this one is being written. Consecutive batches share one store
/// transaction, committed with full sync every few milliseconds. It also signs a checkpoint about
/// once a second when the committed tree has grown, and when stopped.
///
/// Checkpoints stay off the commit path: the note is recorded in the store inside the next batch's
/// transaction (or on its own when the writer is idle), and the checkpoint-directory files, with
/// their fsyncs, are written by a separate serial queue.
final class GroupCommitter: @unchecked Sendable {
    // `queue`, `stopping` and `lastSignedSize` are guarded by `condition`.
    struct Item {
        let prepared: PreparedEvent
        let sink: ReplySink
        /// The connection's reply slot for this request.
        let slot: UInt64
    }

    private let ledger: Ledger
    private let signer: NoteSigner
    private let checkpoints: CheckpointDirectory
    private let stats: ServerStats
    private let logger: Logger
    private let maximumBatch: Int
    private let sessionMicroseconds: Int64
    private let idleMicroseconds: Int64
    private let journaled: Bool
    private let condition = NSCondition()
    private var queue: [Item] = []
    private var stopping = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    private var lastSignedSize: UInt64
    /// True after a store commit failed: acknowledged entries wait in the journal. Writer thread only.
    private var storeBehind = false
    /// Signed, not yet recorded in the store. Writer thread only.
    private var unstoredNote: SignedNote?
    private let publisher = DispatchQueue(label: "stele-checkpoint-files")
    private let releaser = DispatchQueue(label: "stele-batch-release")

    init(
        ledger: Ledger, signer: NoteSigner, checkpoints: CheckpointDirectory, stats: ServerStats, logger: Logger, maximumBatch: Int,
        sessionMilliseconds: Int64 = 10, idleMilliseconds: Int64 = 1, journaled: Bool = true, signedSize: UInt64
    ) {
        self.journaled = journaled
        self.sessionMicroseconds = sessionMilliseconds * 1000
        self.idleMicroseconds = idleMilliseconds * 1000
        self.ledger = ledger
        self.signer = signer
        self.checkpoints = checkpoints
        self.stats = stats
        self.logger = logger
        self.maximumBatch = maximumBatch
        self.lastSignedSize = signedSize
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "stele-writer"
        thread.start()
        self.thread = thread
    }

    /// Queues prepared events; each promise completes after the batch holding it has committed.
    func submit(_ items: [Item]) {
        guard !items.isEmpty else { return }
        condition.lock()
        queue.append(contentsOf: items)
        condition.signal()
        condition.unlock()
    }

    /// Commits everything queued, signs a final checkpoint, and stops the thread.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        finished.wait()
        publisher.sync {}  // every checkpoint file written
    }

    private func run() {
        var lastCheckpoint = Timestamp.now()
        while true {
            condition.lock()
            while queue.isEmpty && !stopping {
                if !condition.wait(until: Date(timeIntervalSinceNow: 1)) { break }
            }
            let batch = takeLocked()
            condition.unlock()

            if !batch.isEmpty { runSession(first: batch) }
            let now = Timestamp.now()
            let done = isDone
            if done || now.microseconds - lastCheckpoint.microseconds >= 1_000_000 {
                signIfGrown()
                lastCheckpoint = now
            }
            if unstoredNote != nil && (done || isIdle) { storeNote() }
            if done { break }
        }
        finished.signal()
    }

    /// Takes up to `maximumBatch` queued items. Call with `condition` locked.
    private func takeLocked() -> [Item] {
        var batch: [Item] = []
        if queue.count <= maximumBatch {
            swap(&batch, &queue)  // the common case: take the whole queue without copying it
        } else {
            batch = Array(queue.prefix(maximumBatch))
            queue.removeFirst(batch.count)
        }
        return batch
    }

    /// Waits up to `microseconds` for more items; nil if none came.
    private func nextBatch(within microseconds: Int64) -> [Item]? {
        condition.lock()
        defer { condition.unlock() }
        if queue.isEmpty && !stopping {
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(microseconds) / 1_000_000))
        }
        return queue.isEmpty ? nil : takeLocked()
    }

    private var isIdle: Bool {
        condition.lock()
        defer { condition.unlock() }
        return queue.isEmpty
    }

    private var isDone: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping && queue.isEmpty
    }

    /// One store transaction holding consecutive batches. Each batch is answered as soon as the
    /// journal holds it (one synchronous sequential write); the transaction commits, with full sync,
    /// once it has run for `sessionMicroseconds`, grown large, or found no next batch within
    /// `idleMicroseconds` (`store_commit_ms`, `store_idle_ms`). The commit's own fsyncs are then paid
    /// once per many batches.
    private func runSession(first: [Item]) {
        // Taken from the queue and not yet answered. If LMDB reruns the session (to grow the map),
        // the rerun starts with every answered batch back in place and retries this one.
        var pending: [Item]? = first
        let opened = Timestamp.now()
        var noteStored = false
        // A large batch's outcomes, kept until the transaction holding it has committed.
        var held: ([Result<Receipt, LedgerError>], Timestamp)?
        do {
            if storeBehind {
                // The last commit failed (a full disk?): acknowledge nothing more until the entries
                // waiting in the journal are in the store.
                try ledger.withJournaledSession { _ in }
                storeBehind = false
            }
            var bodyEnded = opened
            try ledger.withJournaledSession { session in
                defer { bodyEnded = Timestamp.now() }
                if let note = unstoredNote {
                    do { try session.store(note) } catch let error as LedgerError where error.code != .storage && error.code != .storageFull {
                        logger.error("a signed checkpoint could not be recorded", metadata: ["error": "\(error.message)"])
                    }
                    noteStored = true
                }
                while let batch = pending {
                    let start = Timestamp.now()
                    if !journaled || batch.reduce(0, { $0 + $1.prepared.bodySize }) >= Self.directBytes {
                        // Answered after the commit below, which it shares with the batches before it.
                        held = (try session.append(prepared: batch.map(\.prepared), journaled: false), start)
                        break
                    }
                    let results = try session.append(prepared: batch.map(\.prepared))
                    pending = nil
                    deliver(batch, results)
                    recordStats(batch.count, results, since: start)
                    if batch.count >= 256 { releaser.async { [batch] in withExtendedLifetime(batch) {} } }
                    let age = Timestamp.now().microseconds - opened.microseconds
                    if age >= sessionMicroseconds || session.entryCount >= Self.sessionEntries
                        || session.journalBytes >= min(Self.sessionJournalBytes, session.journalCapacity / 2)
                    {
                        break
                    }
                    pending = nextBatch(within: idleMicroseconds)
                }
            }
            stats.recordStoreCommit(microseconds: Timestamp.now().microseconds - bodyEnded.microseconds)
            if noteStored { unstoredNote = nil }
            if let batch = pending, let (results, start) = held {
                deliver(batch, results)
                recordStats(batch.count, results, since: start)
                if batch.count >= 256 { releaser.async { [batch] in withExtendedLifetime(batch) {} } }
            }
        } catch {
            let failure = error as? LedgerError ?? LedgerError(.storage, "\(error)")
            // Batches this transaction answered are in the journal only, until one commits.
            storeBehind = true
            if let pending {
                logger.error("a batch could not be made durable; it was not appended", metadata: ["batch": "\(pending.count)", "error": "\(failure.message)"])
                deliver(pending, Array(repeating: .failure(failure), count: pending.count))
            } else {
                logger.error("the store could not commit; acknowledged entries wait in the journal", metadata: ["error": "\(failure.message)"])
            }
        }
    }

    /// From this many bytes of bodies a batch skips the journal and is answered after the store
    /// commits: its share of one commit is small, and writing it twice would cost more than it saves.
    static let directBytes = 1 << 20
    /// How large a store transaction may grow (LMDB holds a transaction's dirty pages in memory),
    /// in entries and in journal bytes.
    static let sessionEntries = 16_384
    static let sessionJournalBytes = 1 << 20

    private func recordStats(_ size: Int, _ results: [Result<Receipt, LedgerError>], since start: Timestamp) {
        var appended = 0
        var duplicates = 0
        for result in results {
            if case .success(let receipt) = result { if receipt.duplicate { duplicates += 1 } else { appended += 1 } }
        }
        stats.recordBatch(size: size, appended: appended, duplicates: duplicates, commitMicroseconds: Timestamp.now().microseconds - start.microseconds)
    }

    /// One connection's outcomes from a batch.
    private struct Delivery {
        let sink: ReplySink
        let outcomes: [ReplySink.Outcome]
    }

    /// Hands each connection its outcomes, with one hop per event loop for all of the batch's
    /// connections on it (each hop wakes that loop's thread; the writer pays for it).
    private func deliver(_ batch: [Item], _ results: [Result<Receipt, LedgerError>]) {
        // As many entries as event loops (the core count): a list is cheaper than a dictionary.
        var byLoop: [(loop: any EventLoop, deliveries: [Delivery])] = []
        func hand(_ sink: ReplySink, _ outcomes: [ReplySink.Outcome]) {
            let delivery = Delivery(sink: sink, outcomes: outcomes)
            if let index = byLoop.firstIndex(where: { $0.loop === sink.eventLoop }) {
                byLoop[index].deliveries.append(delivery)
            } else {
                byLoop.append((sink.eventLoop, [delivery]))
            }
        }
        // A connection's items arrive together (one submit per read), so runs are long.
        var run: [ReplySink.Outcome] = []
        var current: ReplySink?
        for (item, result) in zip(batch, results) {
            if item.sink !== current {
                if let current { hand(current, run) }
                run = []
                current = item.sink
            }
            run.append(ReplySink.Outcome(slot: item.slot, result: result))
        }
        if let current { hand(current, run) }
        for (loop, deliveries) in byLoop {
            loop.execute { for delivery in deliveries { delivery.sink.complete(delivery.outcomes) } }
        }
    }

    /// Signs the committed tree head if it grew; the note is recorded in the store with the next
    /// commit and written to the checkpoint directory in the background.
    func signIfGrown() {
        do {
            let head = try ledger.treeHead()
            guard head.size > lastSignedSize else { return }
            let note = try Checkpoint(origin: ledger.origin, size: head.size, rootHash: head.root).signed(by: signer)
            unstoredNote = note
            lastSignedSize = head.size
            stats.checkpointSigned()
            publisher.async { [checkpoints, logger] in
                do { try checkpoints.write(note, size: head.size) } catch {
                    logger.error("writing a checkpoint file failed", metadata: ["error": "\(error)"])
                }
            }
        } catch {
            logger.error("signing a checkpoint failed", metadata: ["error": "\(error)"])
        }
    }

    /// Records the signed note in the store in a transaction of its own (the writer is idle).
    private func storeNote() {
        guard let note = unstoredNote else { return }
        do { try ledger.storeCheckpoint(note) } catch {
            logger.error("recording a checkpoint failed", metadata: ["error": "\(error)"])
        }
        unstoredNote = nil
    }
}
