import Foundation
import Logging
import NIOCore
import SteleCore
import SteleCrypto
import SteleStore

/// The single writer: one thread that takes whatever appends have queued up, commits them as one
/// batch (one transaction, one fsync), completes their promises, and starts on the next batch, which
/// gathers while this one is being flushed. It also signs a checkpoint about once a second when the
/// tree has grown, and when stopped.
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

            if !batch.isEmpty { commit(batch) }
            let now = Timestamp.now()
            if done || now.microseconds - lastCheckpoint.microseconds >= 1_000_000 {
                signIfGrown()
                lastCheckpoint = now
            }
            if done { break }
        }
        finished.signal()
    }

    private func commit(_ batch: [Item]) {
        let start = Timestamp.now()
        do {
            let results = try ledger.append(prepared: batch.map(\.prepared))
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

    /// Hands each connection its outcomes: one event-loop hop per run of one connection's items
    /// (a connection's items arrive together, one submit per read).
    private func deliver(_ batch: [Item], _ results: [Result<Receipt, LedgerError>]) {
        var run: [ReplySink.Outcome] = []
        var current: ReplySink?
        for (item, result) in zip(batch, results) {
            if item.sink !== current {
                if let current { current.deliver(run) }
                run = []
                current = item.sink
            }
            run.append(ReplySink.Outcome(slot: item.slot, result: result))
        }
        if let current { current.deliver(run) }
    }

    /// Signs the committed tree head if it grew since the last signature.
    func signIfGrown() {
        do {
            let head = try ledger.treeHead()
            guard head.size > lastSignedSize else { return }
            let note = try Checkpoint(origin: ledger.origin, size: head.size, rootHash: head.root).signed(by: signer)
            try ledger.storeCheckpoint(note)
            try checkpoints.write(note, size: head.size)
            lastSignedSize = head.size
            stats.checkpointSigned()
        } catch {
            logger.error("signing a checkpoint failed", metadata: ["error": "\(error)"])
        }
    }
}
