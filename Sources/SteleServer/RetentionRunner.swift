import Dispatch
import Logging
import NIOPosix
import SteleCore
import SteleStore
import Synchronization

/// Runs the retention operations through the writer (`Specs/retention.md`), one at a time on a
/// thread of its own: operators' prunes, erasures and holds (`op` `prune`, `erase`, `hold`,
/// `release_hold`), the erasure of every `account.erased` the platform appends, and a prune every
/// `prune_interval_seconds`. Each commits through ``LedgerWriter/perform(now:_:)`` (a prune in
/// bounded batches), so appends keep being acknowledged meanwhile.
final class RetentionRunner: Sendable {
    private let writer: LedgerWriter
    private let policy: RetentionPolicy
    private let interval: Int64
    private let logger: Logger
    private let thread = NIOThreadPool(numberOfThreads: 1)
    private let timer = DispatchQueue(label: "stele-prune-timer")
    private let stopped = Mutex(false)

    init(writer: LedgerWriter, policy: RetentionPolicy, interval: Int64, logger: Logger) {
        self.writer = writer
        self.policy = policy
        self.interval = interval
        self.logger = logger
    }

    /// Starts the thread, and the schedule when the interval is not 0 (the first prune after one interval).
    func start() {
        thread.start()
        if interval > 0 { schedule() }
    }

    /// Stops the schedule; a prune under way finishes its batch first.
    func stop() {
        stopped.withLock { $0 = true }
        try? thread.syncShutdownGracefully()
    }

    /// Runs `request` after any operation under way, and calls `done` with its outcome on the runner's thread.
    func prune(_ request: PruneRequest, done: @escaping @Sendable (Result<PruneReport, LedgerError>) -> Void) {
        submit(done) { [self] in try run(request).get() }
    }

    /// Erases an account (`stele erase` through the daemon).
    func erase(_ request: EraseRequest, done: @escaping @Sendable (Result<EraseReport, LedgerError>) -> Void) {
        submit(done) { [self] in
            let report = try writer.erase(request, policy: policy)
            logger.notice("erased an account", metadata: ["request": "\(request.request)", "receipt": "\(report.receipt)", "operator": "\(request.operatorName)"])
            return report
        }
    }

    /// Places a legal hold; its outcome is the hold's seq.
    func placeHold(
        subject: String, kind: String?, until: Timestamp?, request: String, reason: String, operatorName: String,
        done: @escaping @Sendable (Result<UInt64, LedgerError>) -> Void
    ) {
        submit(done) { [self] in
            try writer.placeHold(subject: subject, kind: kind, until: until, request: request, reason: reason, operatorName: operatorName)
        }
    }

    /// Releases a legal hold; its outcome is the release's seq.
    func releaseHold(_ hold: UInt64, request: String, reason: String, operatorName: String, done: @escaping @Sendable (Result<UInt64, LedgerError>) -> Void) {
        submit(done) { [self] in try writer.releaseHold(hold, request: request, reason: reason, operatorName: operatorName) }
    }

    /// Records a read of personal data; its outcome is the `ledger.accessed` entry's seq.
    func recordAccess(_ access: AccessRecord, operatorUID: UInt32, done: @escaping @Sendable (Result<UInt64, LedgerError>) -> Void) {
        submit(done) { [self] in try writer.recordAccess(access, operatorUID: operatorUID) }
    }

    /// Compacts the store file and zeroes the journal, appends going on.
    func compact(request: String, reason: String, operatorName: String, done: @escaping @Sendable (Result<CompactReport, LedgerError>) -> Void) {
        submit(done) { [self] in
            let report = try writer.compact(request: request, reason: reason, operatorName: operatorName)
            logger.notice("compacted the store and zeroed the journal", metadata: ["before": "\(report.bytesBefore)", "after": "\(report.bytesAfter)", "receipt": "\(report.receipt)"])
            return report
        }
    }

    /// Carries out every `account.erased` not yet erased: after the platform appends one, and
    /// before each scheduled prune.
    func erasePending() {
        submit({ (_: Result<Void, LedgerError>) in }) { [self] in try eraseEveryPending() }
    }

    private func eraseEveryPending() throws {
        // The account.erased that triggered this may still be only in the journal.
        try writer.flushToStore()
        for pending in try writer.pendingErasures() {
            let report = try writer.erase(
                EraseRequest(subject: pending.subject, request: pending.request, reason: "account.erased", operatorName: "stele", erasureEntry: pending.entry),
                policy: policy)
            logger.notice("carried out an account erasure", metadata: ["erasure_entry": "\(pending.entry)", "receipt": "\(report.receipt)"])
        }
    }

    private func submit<R: Sendable>(_ done: @escaping @Sendable (Result<R, LedgerError>) -> Void, _ work: @escaping @Sendable () throws -> R) {
        thread.submit { [self] state in
            guard state == .active, !stopped.withLock({ $0 }) else {
                return done(.failure(LedgerError(.storage, "the daemon is stopping")))
            }
            do { done(.success(try work())) } catch {
                let failure = error as? LedgerError ?? LedgerError(.storage, "\(error)")
                logger.error("a retention operation failed; what committed before the failure stands, with its receipts", metadata: ["error": "\(failure.message)"])
                done(.failure(failure))
            }
        }
    }

    private func run(_ request: PruneRequest) -> Result<PruneReport, LedgerError> {
        do {
            let report = try writer.prune(request, policy: policy)
            if report.pruned > 0 || report.policy != nil {
                logger.notice(
                    "pruned the entries whose retention ended",
                    metadata: [
                        "cutoff": "\(report.cutoff)", "pruned": "\(report.pruned)", "receipts": "\(report.receipts.count)",
                        "operator": "\(request.operatorName)", "request": "\(request.request)", "dry_run": "\(request.dryRun)",
                    ])
            }
            return .success(report)
        } catch {
            let failure = error as? LedgerError ?? LedgerError(.storage, "\(error)")
            logger.error("a prune failed; the batches before the failure stand, with their receipts", metadata: ["error": "\(failure.message)"])
            return .failure(failure)
        }
    }

    private func schedule() {
        timer.asyncAfter(deadline: .now() + .seconds(Int(interval))) { [self] in
            guard !stopped.withLock({ $0 }) else { return }
            erasePending()
            prune(PruneRequest(cutoff: .now(), operatorName: "stele", request: "schedule", reason: "scheduled retention (prune_interval_seconds)")) { [self] _ in
                if !stopped.withLock({ $0 }) { schedule() }
            }
        }
    }
}
