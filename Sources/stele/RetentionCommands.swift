import ArgumentParser
import Foundation
import SteleClient
import SteleCore
import SteleServer
import SteleStore

/// `stele prune`: redacts every entry whose retention ended (`Specs/retention.md`), through the
/// running daemon when there is one (as an operator), else through the store's writer directly.
/// Exit 0 done, 2 could not run.
struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Redact every entry whose retention has ended, with a receipt per batch.")

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "The daemon's socket (default: <data>/stele.sock); without a daemon, the store is pruned directly.") var socket: String?
    @Option(help: "The daemon's configuration file, for its retention classes (direct runs only; a daemon uses its own).") var config: String?
    @Option(help: "The cutoff (RFC 3339; default: now). Later than the clock only on a store created in test mode.") var now: String?
    @Flag(help: "Count what would be pruned; change nothing.") var dryRun = false
    @Option(help: "The request or ticket id, recorded in each receipt.") var request: String
    @Option(help: "Why, recorded in each receipt.") var reason: String
    @Option(help: "Entries per transaction (direct runs).") var batch: Int = 10_000
    @Flag(help: "Output the report as JSON.") var json = false

    func run() throws {
        guard (1...1_000_000).contains(batch) else { throw Failure.couldNotRun("--batch must be 1...1000000") }
        let cutoff = try parseTime(now, "now")
        var order: [String: JSONValue] = ["op": .string("prune"), "request": .string(request), "reason": .string(reason), "dry_run": .bool(dryRun)]
        if let cutoff { order["now"] = .string(cutoff.description) }
        let report = try OperatorChannel(data: dataOptions.data, socket: socket, config: config, request: request, reason: reason)
            .run(order, member: "prune") { writer, policy, operatorName in
                var prune = PruneRequest(cutoff: cutoff ?? .now(), operatorName: operatorName, request: request, reason: reason)
                prune.dryRun = dryRun
                prune.maximumBatch = batch
                return try writer.prune(prune, policy: policy).json
            }
        if json {
            printLine(report.canonicalText)
        } else {
            let verb = dryRun ? "would prune" : "pruned"
            let count = report["pruned"]?.integerValue ?? 0
            let classes = (report["by_class"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.integerValue ?? 0)" }
            let receipts = (report["receipts"]?.arrayValue ?? []).compactMap(\.integerValue).map(String.init)
            let held = report["held"]?.integerValue ?? 0
            printLine((count == 0 ? "nothing to prune at \(report["cutoff"]?.stringValue ?? "")" :
                "\(verb) \(count) entries (\(classes.joined(separator: ", "))) at cutoff \(report["cutoff"]?.stringValue ?? "")"
                + (receipts.isEmpty ? "" : "; receipts: entries \(receipts.joined(separator: ", "))"))
                + (held > 0 ? "; \(held) due entries kept by legal holds" : ""))
        }
    }
}

/// How an operator command reaches the store: through the running daemon's socket (as an
/// operator peer), or, with no daemon, through the store's writer directly (taking its lock).
struct OperatorChannel {
    let data: String
    let socket: String?
    let config: String?
    let request: String
    let reason: String

    /// Sends `order` to the daemon and returns its reply's `member`; without a daemon, runs
    /// `direct` with a writer, the retention policy and this user as operator.
    func run(
        _ order: [String: JSONValue], member: String, direct: (LedgerWriter, RetentionPolicy, String) throws -> JSONValue
    ) throws -> JSONValue {
        guard request.contains(where: { !$0.isWhitespace }), reason.contains(where: { !$0.isWhitespace }) else {
            throw Failure.couldNotRun("--request and --reason must say which request and why: every operator action records them")
        }
        if let connection = try? SteleConnection(socketPath: socket ?? data + "/stele.sock") {
            let line: String
            do { line = try connection.request(JSONValue.object(order).canonicalText) } catch {
                throw Failure.couldNotRun("the daemon did not answer: \(error)")
            }
            let reply = try? JSONParser.parse(Array(line.utf8))
            guard reply?["ok"] == .bool(true), let value = reply?[member] else {
                throw Failure.couldNotRun("the daemon refused: \(reply?["error"]?["message"]?.stringValue ?? line)")
            }
            return value
        }
        var configuration = ServerConfiguration()
        if let config {
            guard let bytes = FileManager.default.contents(atPath: config) else { throw Failure.couldNotRun("cannot read the configuration file \(config)") }
            do { try configuration.apply(json: [UInt8](bytes)) } catch { throw Failure.couldNotRun("bad configuration \(config): \(error.message)") }
        }
        let ledger = try Failure.map { try Ledger(path: data) }
        let writer = try Failure.map { try LedgerWriter(ledger: ledger) }
        let result = try Failure.map { try direct(writer, configuration.retentionPolicy, "uid:\(getuid())") }
        try Failure.map { try writer.close() }
        return result
    }
}

/// `stele erase SUBJECT`: erases an account by the policy's rule for each class (`Specs/retention.md`).
struct EraseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase", abstract: "Erase an account: redact its entries by each class's rule, with a receipt (exit 0 done, 2 could not run).")

    @OptionGroup var dataOptions: DataOptions
    @Argument(help: "The subject identifier to erase.") var subject: String
    @Option(help: "The daemon's socket (default: <data>/stele.sock).") var socket: String?
    @Option(help: "The daemon's configuration file (direct runs).") var config: String?
    @Option(help: "The request or ticket id, recorded in the receipt.") var request: String
    @Option(help: "Why, recorded in the receipt.") var reason: String
    @Flag(help: "Output the report as JSON.") var json = false

    func run() throws {
        let order: [String: JSONValue] = ["op": .string("erase"), "subject": .string(subject), "request": .string(request), "reason": .string(reason)]
        let report = try OperatorChannel(data: dataOptions.data, socket: socket, config: config, request: request, reason: reason)
            .run(order, member: "erase") { writer, policy, operatorName in
                try writer.erase(EraseRequest(subject: subject, request: request, reason: reason, operatorName: operatorName), policy: policy).json
            }
        if json { return printLine(report.canonicalText) }
        func counts(_ name: String) -> String {
            let parts = (report[name]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.integerValue ?? 0)" }
            return parts.isEmpty ? "none" : parts.joined(separator: ", ")
        }
        printLine("erased \(subject): entry \(report["erasure_entry"]?.integerValue ?? 0) records it, receipt entry \(report["receipt"]?.integerValue ?? 0)")
        printLine("  redacted now: \(counts("erased")); kept by law until their own deadline: \(counts("kept"))")
        printLine("  consent kept for its proof period: \(report["proof"]?["entries"]?.integerValue ?? 0) entries, until \(report["proof"]?["until"]?.stringValue ?? "")")
        if let held = report["held"]?.integerValue, held > 0 { printLine("  kept by legal holds: \(held)") }
    }
}

/// `stele hold`: legal holds (`Specs/retention.md`, "Holds").
struct HoldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold", abstract: "Place, release and list legal holds.", subcommands: [Place.self, Release.self, List.self])

    struct Place: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Keep a subject's entries (of one kind, until a time) from prune and erase.")
        @OptionGroup var dataOptions: DataOptions
        @Option(help: "The subject whose entries are held.") var subject: String
        @Option(help: "Only entries of this kind.") var kind: String?
        @Option(help: "The hold ends at this time (RFC 3339); default: when released.") var until: String?
        @Option(help: "The daemon's socket (default: <data>/stele.sock).") var socket: String?
        @Option(help: "The legal process or ticket id.") var request: String
        @Option(help: "Why.") var reason: String

        func run() throws {
            let end = try parseTime(until, "until")
            if let kind, EventCatalogue.builtIn.kind(kind) == nil { throw Failure.couldNotRun("unknown kind \"\(kind)\"") }
            var order: [String: JSONValue] = ["op": .string("hold"), "subject": .string(subject), "request": .string(request), "reason": .string(reason)]
            if let kind { order["kind"] = .string(kind) }
            if let end { order["until"] = .string(end.description) }
            let hold = try OperatorChannel(data: dataOptions.data, socket: socket, config: nil, request: request, reason: reason)
                .run(order, member: "hold") { writer, _, operatorName in
                    .integer(Int64(try writer.placeHold(subject: subject, kind: kind, until: end, request: request, reason: reason, operatorName: operatorName)))
                }
            printLine("hold \(hold.integerValue ?? 0) placed (release it with: stele hold release \(hold.integerValue ?? 0))")
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a hold; what it kept past its retention goes at the next prune.")
        @OptionGroup var dataOptions: DataOptions
        @Argument(help: "The hold: the seq of its ledger.hold entry.") var hold: UInt64
        @Option(help: "The daemon's socket (default: <data>/stele.sock).") var socket: String?
        @Option(help: "The ticket id.") var request: String
        @Option(help: "Why.") var reason: String

        func run() throws {
            let order: [String: JSONValue] = ["op": .string("release_hold"), "hold": .integer(Int64(hold)), "request": .string(request), "reason": .string(reason)]
            let released = try OperatorChannel(data: dataOptions.data, socket: socket, config: nil, request: request, reason: reason)
                .run(order, member: "released") { writer, _, operatorName in
                    .integer(Int64(try writer.releaseHold(hold, request: request, reason: reason, operatorName: operatorName)))
                }
            printLine("hold \(hold) released by entry \(released.integerValue ?? 0)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The holds in force.")
        @OptionGroup var dataOptions: DataOptions
        @Flag(help: "Output NDJSON.") var json = false

        func run() throws {
            let ledger = try dataOptions.openReadOnly()
            for hold in try Failure.map({ try ledger.holds() }) {
                if json {
                    printLine(JSONValue.object([
                        "hold": .integer(Int64(hold.seq)), "subject_hash": .string(hold.subjectHash), "kind": hold.kind.map(JSONValue.string) ?? .null,
                        "until": hold.until.map { .string($0.description) } ?? .null,
                    ]).canonicalText)
                } else {
                    printLine("hold \(hold.seq): subject hash \(hold.subjectHash)\(hold.kind.map { ", kind \($0)" } ?? "")\(hold.until.map { ", until \($0)" } ?? ", until released")")
                }
            }
        }
    }
}

/// `stele retention report`: the lawfulness check, from headers, receipts and policy entries.
/// Exit 0 clean, 1 findings, 2 could not run.
struct RetentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention", abstract: "Check that every redaction was lawful and nothing is kept past its retention.",
        subcommands: [Report.self])

    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-derive every pruning decision; list unexplained redactions, invalid receipts, overdue entries and erasure requests past 30 days (exit 0 clean, 1 findings).")

        @OptionGroup var dataOptions: DataOptions
        @Option(help: "Judge as of this time (RFC 3339; default: now).") var now: String?
        @Flag(help: "Output one JSON report.") var json = false

        func run() throws {
            let moment = try parseTime(now, "now") ?? .now()
            let ledger = try dataOptions.openReadOnly()
            let report = try Failure.map { try ledger.retentionReport(now: moment) }
            if json {
                printLine(report.json.canonicalText)
            } else {
                for finding in report.findings { printLine("\(finding.kind.rawValue): \(finding.message)") }
                for (kind, count) in report.unlisted.sorted(by: { $0.key.rawValue < $1.key.rawValue }) { printLine("\(kind.rawValue): \(count) more") }
                printLine(report.isClean
                    ? "OK: \(report.receipts) receipts explain \(report.pruned) pruned entries; nothing overdue at \(moment)"
                    : "\(report.findings.count + report.unlisted.values.reduce(0, +)) finding(s)")
            }
            if !report.isClean { throw ExitCode(1) }
        }
    }
}

/// `stele compact`: rewrites the store without the free pages that still hold redacted values,
/// and zeroes the journal (`Specs/retention.md`, "Compaction"), through the daemon while it serves.
struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact", abstract: "Remove redacted values from the disk: a compacted store file and a zeroed journal.")

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "The daemon's socket (default: <data>/stele.sock).") var socket: String?
    @Option(help: "The request or ticket id, recorded in the ledger.compacted entry.") var request: String
    @Option(help: "Why, recorded in the ledger.compacted entry.") var reason: String
    @Flag(help: "Output the report as JSON.") var json = false

    func run() throws {
        let order: [String: JSONValue] = ["op": .string("compact"), "request": .string(request), "reason": .string(reason)]
        let report = try OperatorChannel(data: dataOptions.data, socket: socket, config: nil, request: request, reason: reason)
            .run(order, member: "compact") { writer, _, operatorName in
                try writer.compact(request: request, reason: reason, operatorName: operatorName).json
            }
        if json {
            printLine(report.canonicalText)
        } else {
            printLine("compacted: \(report["bytes_before"]?.integerValue ?? 0) → \(report["bytes_after"]?.integerValue ?? 0) bytes; the journal is zeroed; entry \(report["receipt"]?.integerValue ?? 0) (ledger.compacted) records it")
        }
    }
}
