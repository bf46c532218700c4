import Foundation
import Logging
import NIOCore
import SteleCore
import SteleCrypto
import SteleStore
import Synchronization

/// The single writer: one thread that takes whatever appends have queued up, makes them durable as
/// one batch with one synchronous journal write (``JournalWriter``), hands each connection its
/// outcomes, and starts on the next batch, which gathers while this one is being written. The
/// ``StoreApplier`` commits the journaled entries to the store on its own thread, so no store commit
/// ever delays an answer.
///
/// With the journal off (`"journal": false`, the benchmarks' baseline) every batch is instead one
/// store transaction, answered after its commit.
final class GroupCommitter: @unchecked Sendable {
    // `queue` and `stopping` are guarded by `condition`.
    struct Item {
        let prepared: PreparedEvent
        let sink: ReplySink
        /// The connection's reply slot for this request.
        let slot: UInt64
    }

    private let ledger: Ledger
    private let journal: JournalWriter?
    private let applier: StoreApplier
    private let stats: ServerStats
    private let logger: Logger
    private let maximumBatch: Int
    private let condition = NSCondition()
    private var queue: [Item] = []
    /// `queue.count`, readable without the lock: what the writer polls before it sleeps.
    private let queuedCount = Atomic<Int>(0)
    private let pollNanoseconds: UInt64
    private var stopping = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    private let releaser = DispatchQueue(label: "stele-batch-release")

    /// Bodies in one batch at most (and so in the journal records holding it), counting each
    /// event's header as 512 bytes; a batch holds at least one event.
    private let maximumBatchBytes: Int

    /// - Parameter journal: the journal writer, or nil to commit every batch to the store itself.
    init(
        ledger: Ledger, journal: JournalWriter?, signer: NoteSigner, checkpoints: CheckpointDirectory, stats: ServerStats,
        logger: Logger, maximumBatch: Int, pollMicroseconds: Int = 0, storeCommitInterval: Int64 = 0, signedSize: UInt64
    ) {
        self.pollNanoseconds = UInt64(max(0, pollMicroseconds)) * 1000
        self.ledger = ledger
        self.journal = journal
        self.stats = stats
        self.logger = logger
        self.maximumBatch = maximumBatch
        self.maximumBatchBytes = journal?.batchBytes ?? 4 << 20
        self.applier = StoreApplier(
            ledger: ledger, journal: journal, signer: signer, checkpoints: checkpoints, stats: stats, logger: logger,
            commitInterval: storeCommitInterval, signedSize: signedSize)
    }

    func start() {
        applier.start()
        // Named from inside: on Linux, Foundation applies a name set before `start()` to nothing
        // the kernel shows (top, perf and /proc list the thread by this name).
        let thread = Thread { [self] in
            Thread.current.name = "stele-writer"
            run()
        }
        thread.start()
        self.thread = thread
    }

    /// Queues prepared events; each promise completes once the batch holding it is durable.
    func submit(_ items: [Item]) {
        guard !items.isEmpty else { return }
        condition.lock()
        queue.append(contentsOf: items)
        queuedCount.store(queue.count, ordering: .releasing)
        condition.signal()
        condition.unlock()
    }

    /// Answers everything queued, lets the store apply it, signs a final checkpoint, and stops.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        finished.wait()
        applier.stop()
        do { try journal?.clearIfApplied() } catch {
            logger.error("the journal could not be cleared; the next start checks it against the store", metadata: ["error": "\(error)"])
        }
    }

    private func run() {
        while true {
            if backlogStart == backlog.count {
                releaseBacklog()
                pollBeforeSleeping()
                condition.lock()
                while queue.isEmpty && !stopping {
                    if !condition.wait(until: Date(timeIntervalSinceNow: 1)) { break }
                }
                swap(&backlog, &queue)  // everything queued, taken without copying it
                queuedCount.store(0, ordering: .releasing)
                let done = stopping && backlog.isEmpty
                condition.unlock()
                if done { break }
                continue
            }
            let end = batchEnd()
            append(backlog[backlogStart..<end])
            backlogStart = end
        }
        finished.signal()
    }

    // Writer thread only: what it took from the queue, and where its next batch starts. Batches are
    // cut from it in place: taking a batch's worth from a longer queue instead copied the batch
    // and moved the rest of the queue down, every batch.
    private var backlog: [Item] = []
    private var backlogStart = 0

    /// Where the next batch ends in `backlog`: up to `maximumBatch` items and `maximumBatchBytes`.
    private func batchEnd() -> Int {
        var end = backlogStart
        var bytes = 0
        while end < min(backlog.count, backlogStart + maximumBatch) && (end == backlogStart || bytes < maximumBatchBytes) {
            bytes += backlog[end].prepared.bodySize + 512
            end += 1
        }
        return end
    }

    /// Drops the answered backlog. Freeing a large one (thousands of events, strings and buffers) is
    /// left to another thread: the writer's time is the one serialized resource.
    private func releaseBacklog() {
        var done: [Item] = []
        swap(&done, &backlog)
        backlogStart = 0
        if done.count >= 256 { releaser.async { [done] in withExtendedLifetime(done) {} } }
    }

    /// Waits up to `pollNanoseconds` for something to be queued without sleeping, giving the CPU to
    /// any other thread that wants it at each turn. A writer asleep on the condition is woken by a
    /// system call on the submitting event loop and then waits to be scheduled; a request that
    /// arrives while the writer polls starts its batch with neither (`Tools/bench-daemon.sh`
    /// compares waiting clients against a writer that sleeps at once).
    ///
    /// After ``pollMissesBeforeSkipping`` polls in a row that found nothing, the writer skips
    /// polling for 1, 2, 4, … up to ``maximumPollSkips`` batches at a time, until a poll finds work
    /// again: when requests arrive further apart than the poll, spinning after every batch costs
    /// CPU and shortens no reply (at 1,000 appends/s from one pacing client, the writer's CPU fell
    /// from 163–175 to 78–96 ms per second, and the replies' median latency moved by under 0.05 ms).
    private func pollBeforeSleeping() {
        guard pollNanoseconds > 0, queuedCount.load(ordering: .acquiring) == 0 else { return }
        if pollSkips > 0 {
            pollSkips -= 1
            return
        }
        let deadline = DispatchTime.now().uptimeNanoseconds + pollNanoseconds
        while queuedCount.load(ordering: .acquiring) == 0 && DispatchTime.now().uptimeNanoseconds < deadline {
            sched_yield()
        }
        if queuedCount.load(ordering: .acquiring) > 0 {
            pollMisses = 0
            pollBackoff = 0
        } else {
            pollMisses += 1
            if pollMisses >= Self.pollMissesBeforeSkipping {
                pollBackoff = min(max(1, pollBackoff * 2), Self.maximumPollSkips)
                pollSkips = pollBackoff
            }
        }
    }

    // Writer thread only: polls in a row that found nothing, batches left to go without polling,
    // and how many the next miss skips.
    private var pollMisses = 0
    private var pollSkips = 0
    private var pollBackoff = 0
    /// Misses in a row before polling is skipped: a client waiting for each reply usually sends its
    /// next request within the poll, and one late request should not cost it the polls after.
    static let pollMissesBeforeSkipping = 4
    /// The longest run of batches without a poll: a writer that stopped polling tries again at
    /// least this often.
    static let maximumPollSkips = 64

    private func append(_ batch: ArraySlice<Item>) {
        let start = Timestamp.now()
        let prepared = batch.map(\.prepared)
        let results: [Result<Receipt, LedgerError>]
        do {
            if let journal {
                // While the store is behind (a failed commit), acknowledge nothing more; a batch
                // first has the store retry at once (space may have been freed).
                if let failure = applier.recovered(within: 1) { throw failure }
                let outcome = try journal.append(prepared: prepared)
                applier.submit(outcome.entries)
                results = outcome.results
            } else {
                results = try ledger.append(prepared: prepared)
            }
        } catch {
            let failure = error as? LedgerError ?? LedgerError(.storage, "\(error)")
            logger.error("a batch could not be made durable; nothing of it was appended", metadata: ["batch": "\(batch.count)", "error": "\(failure.message)"])
            deliver(batch, Array(repeating: .failure(failure), count: batch.count))
            return
        }
        deliver(batch, results)
        var appended = 0
        var duplicates = 0
        for result in results {
            if case .success(let receipt) = result { if receipt.duplicate { duplicates += 1 } else { appended += 1 } }
        }
        let evicted = journal?.idempotencyKeysEvicted ?? 0
        let now = Timestamp.now()
        stats.recordBatch(
            size: batch.count, appended: appended, duplicates: duplicates, commitMicroseconds: now.microseconds - start.microseconds,
            idempotencyEvicted: evicted)
        if evicted > evictedWhenWarned && now.microseconds - lastEvictionWarning.microseconds >= 3_600_000_000 {
            logger.warning(
                "idempotency keys are being dropped before their window ends: retries of those ids would append anew; raise idempotency_max_keys (memory) or lower idempotency_window_seconds",
                metadata: ["evicted": "\(evicted)", "idempotency_max_keys": "\(ledger.idempotencyMaximumKeys)"])
            evictedWhenWarned = evicted
            lastEvictionWarning = now
        }
    }

    // Touched only on the writer thread: the last warning about dropped idempotency keys.
    private var evictedWhenWarned: UInt64 = 0
    private var lastEvictionWarning = Timestamp(microseconds: 0)

    /// One connection's outcomes from a batch.
    private struct Delivery {
        let sink: ReplySink
        let outcomes: [ReplySink.Outcome]
    }

    /// Hands each connection its outcomes, with one hop per event loop for all of the batch's
    /// connections on it (each hop wakes that loop's thread; the writer pays for it). The results
    /// themselves are shared, not copied per connection.
    private func deliver(_ batch: ArraySlice<Item>, _ results: [Result<Receipt, LedgerError>]) {
        let shared = BatchResults(results)
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
        for index in batch.indices {  // absolute indices: results count from the slice's start
            let item = batch[index]
            if item.sink !== current {
                if let current { hand(current, run) }
                run = []
                current = item.sink
            }
            run.append(ReplySink.Outcome(slot: item.slot, index: index - batch.startIndex))
        }
        if let current { hand(current, run) }
        for (loop, deliveries) in byLoop {
            loop.execute { for delivery in deliveries { delivery.sink.complete(delivery.outcomes, of: shared) } }
        }
    }
}
