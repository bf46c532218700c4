import Dispatch
import Foundation
import Logging
import NIOPosix
import SteleCore
import Synchronization

/// Re-verifies the whole store on a schedule, so that an entry altered on disk is found within an
/// interval even if nobody runs `stele verify`. Each check is a `stele verify` child process at the
/// lowest CPU priority, paced to a share of one core: a process of its own, because a read
/// transaction held for minutes in the daemon's own LMDB environment would block the writer
/// whenever the map must grow. Findings go to the log and to `stats` (`background_verify`).
final class BackgroundVerifier: Sendable {
    private struct State {
        var stopped = false
        var runs: UInt64 = 0
        var last: (started: Timestamp, seconds: Double, size: Int64, problems: [String])?
        var failure: String?
        var child: Process?
    }

    private let command: [String]
    private let interval: Int64
    private let logger: Logger
    private let thread = NIOThreadPool(numberOfThreads: 1)
    private let timer = DispatchQueue(label: "stele-verify-timer")
    private let state = Mutex(State())

    /// A verifier running `command` (the `stele` executable and its arguments, ending in
    /// `verify --json`) every `interval` seconds.
    init(command: [String], interval: Int64, logger: Logger) {
        self.command = command
        self.interval = interval
        self.logger = logger
    }

    /// Starts the schedule: the first check after the interval, or five minutes if sooner.
    func start() {
        thread.start()
        schedule(after: min(interval, 300))
    }

    /// Stops a check under way, and the schedule.
    func stop() {
        let child = state.withLock { s in
            s.stopped = true
            return s.child
        }
        if let child, child.isRunning { child.terminate() }
        try? thread.syncShutdownGracefully()
    }

    /// `{"interval_seconds", "runs", "last_started", "last_seconds", "entries", "sound", "problems"}`.
    var snapshot: JSONValue {
        let s = state.withLock { ($0.runs, $0.last, $0.failure) }
        var object: [String: JSONValue] = ["interval_seconds": .integer(interval), "runs": .integer(Int64(s.0))]
        if let last = s.1 {
            object["last_started"] = .string(last.started.description)
            object["last_seconds"] = .integer(Int64(last.seconds.rounded()))
            object["entries"] = .integer(last.size)
            object["sound"] = .bool(last.problems.isEmpty)
            object["problems"] = .array(last.problems.prefix(10).map { .string($0) })
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

    /// One check; on the verifier's thread, which waits for the child.
    private func check() {
        let started = Timestamp.now()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try state.withLock { s in
                guard !s.stopped else { throw CancellationError() }
                try process.run()
                s.child = process
            }
        } catch is CancellationError {
            return
        } catch {
            record(failure: "cannot start \(command[0]): \(error)")
            return
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        state.withLock { $0.child = nil }
        if state.withLock({ $0.stopped }) { return }
        guard let report = try? JSONParser.parse(Array(data)).objectValue, let sound = report["sound"], case .bool(let isSound) = sound
        else {
            record(failure: "the check could not run (exit \(process.terminationStatus)): \(String(decoding: data.prefix(500), as: UTF8.self))")
            return
        }
        let problems = (report["problems"]?.arrayValue ?? []).map { problem in
            let object = problem.objectValue
            return "\(object?["code"]?.stringValue ?? "?"): \(object?["message"]?.stringValue ?? "")"
        }
        let size = report["tree_size"]?.integerValue ?? 0
        let seconds = Double(Timestamp.now().microseconds - started.microseconds) / 1_000_000
        state.withLock {
            $0.runs += 1
            $0.last = (started, seconds, size, isSound ? [] : problems)
            $0.failure = nil
        }
        if isSound {
            logger.info("background verification: sound", metadata: ["entries": "\(size)", "seconds": "\(Int(seconds))"])
        } else {
            for problem in problems.prefix(100) {
                logger.error("background verification found a problem", metadata: ["problem": "\(problem)"])
            }
            logger.critical(
                "background verification: the store fails its integrity check; run stele verify for the full report",
                metadata: ["problems": "\(problems.count)", "entries": "\(size)"])
        }
    }

    private func record(failure: String) {
        state.withLock { $0.failure = failure }
        logger.error("background verification could not run", metadata: ["error": "\(failure)"])
    }
}
