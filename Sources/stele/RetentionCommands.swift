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
        guard request.contains(where: { !$0.isWhitespace }), reason.contains(where: { !$0.isWhitespace }) else {
            throw Failure.couldNotRun("--request and --reason must say which request and why: every prune records them")
        }
        guard (1...1_000_000).contains(batch) else { throw Failure.couldNotRun("--batch must be 1...1000000") }
        let cutoff = try parseTime(now, "now")
        let report: JSONValue
        if let connection = try? SteleConnection(socketPath: socket ?? dataOptions.data + "/stele.sock") {
            var order: [String: JSONValue] = ["op": .string("prune"), "request": .string(request), "reason": .string(reason), "dry_run": .bool(dryRun)]
            if let cutoff { order["now"] = .string(cutoff.description) }
            let line: String
            do { line = try connection.request(JSONValue.object(order).canonicalText) } catch {
                throw Failure.couldNotRun("the daemon did not answer the prune: \(error)")
            }
            let reply = try? JSONParser.parse(Array(line.utf8))
            guard reply?["ok"] == .bool(true), let pruned = reply?["prune"] else {
                throw Failure.couldNotRun("the daemon refused the prune: \(reply?["error"]?["message"]?.stringValue ?? line)")
            }
            report = pruned
        } else {
            report = try pruneDirectly(cutoff: cutoff ?? .now())
        }
        if json {
            printLine(report.canonicalText)
        } else {
            let verb = dryRun ? "would prune" : "pruned"
            let count = report["pruned"]?.integerValue ?? 0
            let classes = (report["by_class"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.integerValue ?? 0)" }
            let receipts = (report["receipts"]?.arrayValue ?? []).compactMap(\.integerValue).map(String.init)
            printLine(count == 0 ? "nothing to prune at \(report["cutoff"]?.stringValue ?? "")" :
                "\(verb) \(count) entries (\(classes.joined(separator: ", "))) at cutoff \(report["cutoff"]?.stringValue ?? "")"
                + (receipts.isEmpty ? "" : "; receipts: entries \(receipts.joined(separator: ", "))"))
        }
    }

    private func pruneDirectly(cutoff: Timestamp) throws -> JSONValue {
        var configuration = ServerConfiguration()
        if let config {
            guard let bytes = FileManager.default.contents(atPath: config) else { throw Failure.couldNotRun("cannot read the configuration file \(config)") }
            do { try configuration.apply(json: [UInt8](bytes)) } catch { throw Failure.couldNotRun("bad configuration \(config): \(error.message)") }
        }
        let ledger = try Failure.map { try Ledger(path: dataOptions.data) }
        let writer = try Failure.map { try LedgerWriter(ledger: ledger) }
        var order = PruneRequest(cutoff: cutoff, operatorName: "uid:\(getuid())", request: request, reason: reason)
        order.dryRun = dryRun
        order.maximumBatch = batch
        let report = try Failure.map { try writer.prune(order, policy: RetentionPolicy(catalogue: configuration.catalogue)) }
        try Failure.map { try writer.close() }
        return report.json
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
