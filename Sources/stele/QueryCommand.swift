import ArgumentParser
import SteleCore
import SteleCrypto
import SteleStore

/// `stele query`: entries as NDJSON, read-only.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query", abstract: "Print matching entries as NDJSON (seq, header, body, redacted).")

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Entries about this data subject.") var subject: String?
    @Option(help: "Entries by this actor.") var actor: String?
    @Option(help: "Entries of this kind.") var kind: String?
    @Option(help: "Earliest ts, inclusive (RFC 3339).") var since: String?
    @Option(help: "Latest ts, exclusive (RFC 3339).") var until: String?
    @Flag(help: "Output JSON (the default and only format).") var json = false

    func run() throws {
        let query = LedgerQuery(
            subject: subject, actor: actor, kind: kind, since: try parseTime(since, "since"), until: try parseTime(until, "until"))
        let ledger = try dataOptions.openReadOnly()
        try Failure.map {
            try ledger.scan(query) { entry in
                printLine(entry.outputJSON.canonicalText)
                return true
            }
        }
    }
}
