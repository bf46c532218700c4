import Dispatch
import Glibc
import Logging
import NIOPosix
import SteleCore
import SteleStore
import Synchronization

/// Re-verifies the whole store on a schedule, so that an entry altered on disk is found within an
/// interval even if nobody runs `stele verify`. Each check runs on a thread of its own at the lowest
/// CPU priority (nice 19), and sleeps between chunks of entries so that it takes at most `share`
/// of one core; findings go to the log and to `stats` (`background_verify`).
final class BackgroundVerifier: Sendable {
    private struct State {
        var stopped = false
        var runs: UInt64 = 0
        var last: (started: Timestamp, seconds: Double, size: UInt64, problems: [LedgerError])?
        var failure: String?
    }

    private let ledger: Ledger
    private let interval: Int64
    private let share: Double
    private let logger: Logger
    private let thread = NIOThreadPool(numberOfThreads: 1)
    private let timer = DispatchQueue(label: "stele-verify-timer")
    private let state = Mutex(State())

    /// A verifier checking `ledger` every `interval` seconds, using at most `share` of one core.
    init(ledger: Ledger, interval: Int64, share: Double, logger: Logger) {
        self.ledger = ledger
        self.interval = interval
        self.share = min(1, max(0.01, share))
        self.logger = logger
    }

    /// Starts the schedule: the first check after the interval, or five minutes if sooner.
    func start() {
        thread.start()
        thread.submit { _ in setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19) }  // this thread only
        schedule(after: min(interval, 300))
    }

    /// Stops a check under way at its next chunk, and the schedule.
    func stop() {
        state.withLock { $0.stopped = true }
        try? thread.syncShutdownGracefully()
    }

    /// `{"runs", "last_started", "last_seconds", "entries", "sound", "problems"}` for `stats`.
    var snapshot: JSONValue {
        let s = state.withLock { ($0.runs, $0.last, $0.failure) }
        var object: [String: JSONValue] = ["interval_seconds": .integer(interval), "runs": .integer(Int64(s.0))]
        if let last = s.1 {
            object["last_started"] = .string(last.started.description)
            object["last_seconds"] = .integer(Int64(last.seconds.rounded()))
            object["entries"] = .integer(Int64(last.size))
            object["sound"] = .bool(last.problems.isEmpty)
            object["problems"] = .array(last.problems.prefix(10).map { .string("\($0.code): \($0.message)") })
        }
        if let failure = s.2 { object["failure"] = .string(failure) }
        return .object(object)
    }

    private func schedule(after seconds: Int64) {
        timer.asyncAfter(deadline: .now() + .seconds(Int(seconds))) { [self] in
            guard !state.withLock({ $0.stopped }) else { return }
            thread.submit { [self] _ in
                check()
                if !state.withLock({ $0.stopped }) { schedule(after: interval) }
            }
        }
    }

    /// One paced check of the whole store; on the verifier's thread.
    private func check() {
        let started = Timestamp.now()
        var chunkStarted = DispatchTime.now().uptimeNanoseconds
        let stopped = { self.state.withLock { $0.stopped } }
        let share = self.share
        do {
            let report = try ledger.verifyIntegrity(threads: 1) {
                if stopped() { throw CancellationError() }
                // Sleep in proportion to the work, so the check takes at most `share` of one core.
                let worked = DispatchTime.now().uptimeNanoseconds - chunkStarted
                var rest = UInt64(Double(worked) * (1 / share - 1))
                while rest > 0 && !stopped() {
                    let slice = min(rest, 100_000_000)
                    usleep(useconds_t(slice / 1000))
                    rest -= slice
                }
                chunkStarted = DispatchTime.now().uptimeNanoseconds
            }
            let seconds = Double(Timestamp.now().microseconds - started.microseconds) / 1_000_000
            state.withLock {
                $0.runs += 1
                $0.last = (started, seconds, report.size, report.problems)
                $0.failure = nil
            }
            if report.isSound {
                logger.info("background verification: sound", metadata: ["entries": "\(report.size)", "seconds": "\(Int(seconds))"])
            } else {
                for problem in report.problems.prefix(100) {
                    logger.error("background verification found a problem", metadata: ["code": "\(problem.code)", "problem": "\(problem.message)"])
                }
                logger.critical(
                    "background verification: the store fails its integrity check; run stele verify for the full report",
                    metadata: ["problems": "\(report.problems.count)", "entries": "\(report.size)"])
            }
        } catch is CancellationError {
            return
        } catch {
            state.withLock { $0.failure = "\(error)" }
            logger.error("background verification could not run", metadata: ["error": "\(error)"])
        }
    }
}
