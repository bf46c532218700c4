import ArgumentParser
import Dispatch
import Foundation
import SteleCore
import SteleCrypto
import SteleStore

/// `stele verify`: recomputes the chain, the bodies' commitments and the stored tree.
/// Exit 0 sound, 1 integrity failure found, 2 could not run.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check the whole store for tampering (exit 0 sound, 1 failure, 2 could not run).")

    @OptionGroup var dataOptions: DataOptions
    @Flag(help: "Output one JSON report.") var json = false
    @Option(help: "Threads that decode entries ahead of the in-order checks (default: one per processor; 1: a single thread does everything). The result is the same; fewer leave more CPU to a daemon serving beside the check.")
    var threads: Int?

    @Option(help: "Pace the check to this share of one core, in percent, sleeping between chunks of entries (the daemon's background verification uses it).")
    var cpuPercent: Int?

    @Flag(help: "Run at the lowest CPU priority (nice 19).")
    var lowPriority = false

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let cpuPercent, !(1...100).contains(cpuPercent) { throw ValidationError("--cpu-percent must be 1...100") }
    }

    func run() throws {
        let ledger = try dataOptions.openReadOnly()
        if lowPriority { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19) }
        let report = try Failure.map { try ledger.verifyIntegrity(threads: threads, pace: cpuPercent.map(Self.pacing)) }
        if json {
            printLine(JSONValue.object([
                "sound": .bool(report.isSound), "tree_size": .integer(Int64(report.size)),
                "root": .string(Base64.encode(report.root.bytes)),
                "journal_pending": .integer(Int64(report.journalPending)),
                "problems": .array(report.problems.map { .object(["code": .string($0.code.description), "message": .string($0.message)]) }),
            ]).canonicalText)
        } else {
            for problem in report.problems { printLine("FAIL \(problem.code): \(problem.message)") }
            if report.journalPending > 0 {
                printLine("note: \(report.journalPending) acknowledged entries wait in the journal; the daemon moves them into the store within milliseconds, or on its next start")
            }
            printLine(report.isSound ? "OK: \(report.size) entries, root \(Base64.encode(report.root.bytes))" : "INTEGRITY FAILURE: \(report.problems.count) problem(s)")
        }
        if !report.isSound { throw ExitCode(1) }
    }

    /// Sleeps after each chunk in proportion to the time the chunk took, so the check takes at
    /// most `percent` of one core.
    private static func pacing(_ percent: Int) -> () throws -> Void {
        var chunkStarted = DispatchTime.now().uptimeNanoseconds
        let factor = 100 / Double(percent) - 1
        return {
            let worked = DispatchTime.now().uptimeNanoseconds - chunkStarted
            usleep(useconds_t(min(Double(worked) * factor / 1000, 10_000_000)))
            chunkStarted = DispatchTime.now().uptimeNanoseconds
        }
    }
}
