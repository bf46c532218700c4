import ArgumentParser
import Dispatch
import Foundation
import SteleCore
import SteleCrypto
import SteleStore

/// `stele verify`: recomputes the chain, the bodies' commitments, the stored tree and every derived
/// record; checks checkpoints against a pinned key and against copies held outside the store; and
/// runs the retention lawfulness check. Exit 0 sound, 1 findings, 2 could not run.
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

    @Option(help: "The log's verifier key (C2SP signed-note form, or a file holding it), pinned by the auditor: every checkpoint must be signed by it.")
    var key: String?

    @Option(help: "A signed checkpoint held outside the store (a file); the log must still extend it. Repeatable.")
    var checkpoint: [String] = []

    @Option(help: "A directory of checkpoint files (the daemon's, a witness's or a regulator's copy): each must still be extended by the log.")
    var checkpoints: String?

    @Option(help: "A checkpoint held outside the store that an earlier run verified: check only the entries after it, and the log's consistency with it (derived records and retention are left to a full run).")
    var fromCheckpoint: String?

    @Option(help: "List every span longer than this many seconds with no entry (did logging run for the whole period?).")
    var quietPeriodSeconds: Int64 = 86_400

    @Option(help: "Entries past their retention for longer than this many seconds are findings (the daemon prunes hourly).")
    var overdueGraceSeconds: Int64 = 86_400

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let cpuPercent, !(1...100).contains(cpuPercent) { throw ValidationError("--cpu-percent must be 1...100") }
        if overdueGraceSeconds < 0 { throw ValidationError("--overdue-grace-seconds must not be negative") }
    }

    func run() throws {
        do {
            try check()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            // One JSON report even when the check cannot run.
            let message = (error as? LedgerError)?.message ?? "\(error)"
            if json {
                printLine(JSONValue.object(["sound": .null, "error": .object(["code": .string("could_not_run"), "message": .string(message)])]).canonicalText)
                throw ExitCode(2)
            }
            throw Failure.couldNotRun(message)
        }
    }

    /// The external checkpoints and key the options name.
    private func externalCheckpoints() throws -> ExternalCheckpoints {
        var external = ExternalCheckpoints()
        if let key { external.key = try verifierKey(key, option: "key") }
        var files = checkpoint
        if let checkpoints {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? []
            guard !names.isEmpty else { throw LedgerError(.invalidEvent, "--checkpoints \(checkpoints) holds no checkpoint file") }
            files += names.filter { $0.hasPrefix("checkpoint.") && !$0.hasSuffix(".tmp") }.sorted().map { checkpoints + "/" + $0 }
        }
        for file in files {
            guard let bytes = FileManager.default.contents(atPath: file) else { throw LedgerError(.invalidEvent, "cannot read the checkpoint file \(file)") }
            external.notes.append((file, Array(bytes)))
        }
        return external
    }

    private func check() throws {
        let external = try externalCheckpoints()
        let ledger = try dataOptions.openReadOnlyReporting()
        if lowPriority { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19) }
        let report: IntegrityReport
        var problems: [(String, String)]
        var detailed: [JSONValue]
        if let fromCheckpoint {
            guard let bytes = FileManager.default.contents(atPath: fromCheckpoint) else { throw LedgerError(.invalidEvent, "cannot read the checkpoint file \(fromCheckpoint)") }
            report = try ledger.verifyIncrementally(from: ExternalCheckpoints(key: external.key, notes: [(fromCheckpoint, Array(bytes))]))
            problems = report.problems.map { ($0.code.description, $0.message) }
            detailed = report.problems.map(Self.json)
        } else {
            let progress = Progress(total: (try? ledger.size) ?? 0)
            let pacing = cpuPercent.map(Self.pacing)
            report = try ledger.verifyIntegrity(
                threads: threads, external: external, quietPeriod: quietPeriodSeconds * 1_000_000,
                pace: { progress.chunkChecked(); try pacing?() })
            progress.finish()
            // The lawfulness check (`Specs/retention.md`): a just-due entry waits for the next prune.
            let retention = try ledger.retentionReport(now: Timestamp.now().adding(microseconds: -overdueGraceSeconds * 1_000_000))
            problems = report.problems.map { ($0.code.description, $0.message) } + retention.findings.map { ($0.kind.rawValue, $0.message) }
                + retention.unlisted.map { ($0.key.rawValue, "\($0.value) more") }
            detailed = report.problems.map(Self.json)
                + retention.findings.map { .object(["code": .string($0.kind.rawValue), "message": .string($0.message), "seq": .integer(Int64($0.seq))]) }
                + retention.unlisted.map { .object(["code": .string($0.key.rawValue), "message": .string("\($0.value) more")]) }
        }
        let sound = problems.isEmpty
        let covered = report.externallyCovered
        let unclean = fromCheckpoint == nil ? try ledger.uncleanStops() : []
        // An incremental report counts the entries after the held checkpoint.
        let treeSize = fromCheckpoint == nil ? report.size : (covered ?? 0) + report.size
        var limitations: [String] = []
        if let fromCheckpoint {
            limitations.append("only the \(report.size) entries after \(fromCheckpoint) (size \(covered ?? 0)) were checked; derived records and retention are left to a full run")
        } else if covered == nil {
            limitations.append("no checkpoint held outside the store was given (--checkpoint, --checkpoints): a consistent rewrite of the whole log, or a cut tail, cannot be told from the store alone")
        } else if covered! < treeSize {
            limitations.append("entries \(covered!) to \(treeSize - 1) are not covered by a checkpoint held outside the store")
        }
        if external.key == nil {
            limitations.append("no verifier key was pinned (--key): checkpoint signatures were not checked")
        }
        if json {
            printLine(JSONValue.object([
                "sound": .bool(sound), "tree_size": .integer(Int64(treeSize)), "entries_checked": .integer(Int64(report.size)),
                "root": .string(Base64.encode(report.root.bytes)),
                "journal_pending": .integer(Int64(report.journalPending)),
                "externally_covered": covered.map { .integer(Int64($0)) } ?? .null,
                "unwitnessed_tail": .integer(Int64(treeSize - (covered ?? 0))),
                "signatures_checked": .bool(external.key != nil),
                "limitations": .array(limitations.map(JSONValue.string)),
                "unclean_stops": .array(unclean.map { .object(["start": .integer(Int64($0.start)), "ts": .string($0.timestamp.description)]) }),
                "gaps": .array(report.gaps.map { .object(["after": .integer(Int64($0.after)), "seconds": .integer($0.microseconds / 1_000_000)]) }),
                "problems": .array(detailed),
            ]).canonicalText)
        } else {
            for problem in problems { printLine("FAIL \(problem.0): \(problem.1)") }
            if report.journalPending > 0 {
                printLine("note: \(report.journalPending) acknowledged entries wait in the journal; the daemon moves them into the store within milliseconds, or on its next start")
            }
            for limitation in limitations { printLine("cannot tell: \(limitation)") }
            for gap in report.gaps { printLine("gap: no entry for \(gap.microseconds / 1_000_000) s after entry \(gap.after)") }
            for stop in unclean { printLine("unclean stop: the daemon stopped without recording it before its start at entry \(stop.start) (\(stop.timestamp))") }
            if !sound {
                printLine("INTEGRITY FAILURE: \(problems.count) problem(s)")
            } else if limitations.isEmpty {
                printLine("OK: \(treeSize) entries, root \(Base64.encode(report.root.bytes)); every entry is covered by a checkpoint held outside the store")
            } else {
                printLine("OK: \(treeSize) entries, root \(Base64.encode(report.root.bytes)), as far as the store itself shows (see \"cannot tell\" above)")
            }
        }
        if !sound { throw ExitCode(1) }
    }

    /// A problem as the JSON report gives it: code, message, and the entry, expectation and finding when known.
    private static func json(_ problem: LedgerError) -> JSONValue {
        var object: [String: JSONValue] = ["code": .string(problem.code.description), "message": .string(problem.message)]
        if let seq = problem.seq { object["seq"] = .integer(Int64(seq)) }
        if let expected = problem.expected { object["expected"] = .string(expected) }
        if let found = problem.found { object["found"] = .string(found) }
        return .object(object)
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

/// A progress line on standard error while a check runs, when standard error is a terminal and the
/// check has taken more than a second: entries checked, of how many.
final class Progress {
    private let total: UInt64
    private let started = DispatchTime.now().uptimeNanoseconds
    private let enabled = isatty(2) == 1
    private var checked: UInt64 = 0
    private var shown = false

    init(total: UInt64) { self.total = total }

    /// A chunk of 4,096 entries was checked (the integrity check's unit).
    func chunkChecked() {
        checked = min(total, checked + 4_096)
        guard enabled, DispatchTime.now().uptimeNanoseconds - started > 1_000_000_000, total > 0 else { return }
        shown = true
        FileHandle.standardError.write(Data("\rverifying: \(checked) of \(total) entries (\(checked * 100 / total)%)".utf8))
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
