import Foundation
import Logging
import NIOCore
import SteleCore
import SteleCrypto
import SteleStore

/// The single writer: one thread that takes whatever appends have queued up, commits them as one
/// batch (one transaction, one fsync), hands each connection its outcomes, and starts on the next
/// batch, which gathers while this one is being flushed. It also signs a checkpoint about once a
/// second when the tree has grown, and when stopped.
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
    private let condition = NSCondition()
    private var queue: [Item] = []
    private var stopping = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    private var lastSignedSize: UInt64
    /// Signed, not yet recorded in the store. Writer thread only.
    private var unstoredNote: SignedNote?
    private let publisher = DispatchQueue(label: "stele-checkpoint-files")
    private let releaser = DispatchQueue(label: "stele-batch-release")

    init(ledger: Ledger, signer: NoteSigner, checkpoints: CheckpointDirectory, stats: ServerStats, logger: Logger, maximumBatch: Int, signedSize: UInt64) {
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
            var batch: [Item] = []
            if queue.count <= maximumBatch {
                swap(&batch, &queue)  // the common case: take the whole queue without copying it
            } else {
                batch = Array(queue.prefix(maximumBatch))
                queue.removeFirst(batch.count)
            }
            let done = stopping && queue.isEmpty
            condition.unlock()

            if !batch.isEmpty {
                commit(batch)
                // Freeing a large batch (thousands of events, strings and buffers) is left to
                // another thread: the writer's time is the one serialized resource. A small one is
                // cheaper to free here than to wake that thread for.
                if batch.count >= 256 { releaser.async { [batch] in withExtendedLifetime(batch) {} } }
                batch = []
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

    private var isIdle: Bool {
        condition.lock()
        defer { condition.unlock() }
        return queue.isEmpty
    }

    private func commit(_ batch: [Item]) {
        let start = Timestamp.now()
        do {
            let prepared = batch.map(\.prepared)
            var results: [Result<Receipt, LedgerError>]
            if let note = unstoredNote {
                do {
                    results = try ledger.append(prepared: prepared, storing: note)
                } catch let error as LedgerError where error.code != .storage && error.code != .storageFull {
                    logger.error("a signed checkpoint could not be recorded", metadata: ["error": "\(error.message)"])
                    results = try ledger.append(prepared: prepared)
                }
                unstoredNote = nil
            } else {
                results = try ledger.append(prepared: prepared)
            }
            let elapsed = Timestamp.now().microseconds - start.microseconds
            var appended = 0
            var duplicates = 0
            for result in results {
                if case .success(let receipt) = result { if receipt.duplicate { duplicates += 1 } else { appended += 1 } }
            }
            deliver(batch, results)
            stats.recordBatch(size: batch.count, appended: appended, duplicates: duplicates, commitMicroseconds: elapsed)
        } catch {
            let failure = error as? LedgerError ?? LedgerError(.storage, "\(error)")
            logger.error("commit failed; nothing of the batch was written", metadata: ["batch": "\(batch.count)", "error": "\(failure.message)"])
            deliver(batch, Array(repeating: .failure(failure), count: batch.count))
        }
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
