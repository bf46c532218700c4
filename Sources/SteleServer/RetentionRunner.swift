import Dispatch
import Logging
import NIOPosix
import SteleCore
import SteleStore
import Synchronization

/// Runs prunes through the writer (`Specs/retention.md`): the operators' (`op` `prune`) and the
/// daemon's own every `prune_interval_seconds`, one at a time on a thread of its own. A prune
/// commits in bounded batches through ``LedgerWriter/perform(now:_:)``, so appends keep being
/// acknowledged between its batches.
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

    /// Runs `request` after any prune under way, and calls `done` with its outcome on the runner's thread.
    func prune(_ request: PruneRequest, done: @escaping @Sendable (Result<PruneReport, LedgerError>) -> Void) {
        thread.submit { [self] state in
            guard state == .active, !stopped.withLock({ $0 }) else {
                return done(.failure(LedgerError(.storage, "the daemon is stopping")))
            }
            done(run(request))
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
            prune(PruneRequest(cutoff: .now(), operatorName: "stele", request: "schedule", reason: "scheduled retention (prune_interval_seconds)")) { [self] _ in
                if !stopped.withLock({ $0 }) { schedule() }
            }
        }
    }
}
