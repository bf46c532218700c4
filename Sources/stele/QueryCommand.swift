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
        func time(_ text: String?, _ name: String) throws -> Timestamp? {
            guard let text else { return nil }
            guard let t = Timestamp(rfc3339: text) else { throw Failure.couldNotRun("--\(name) \"\(text)\" is not an RFC 3339 time") }
            return t
        }
        let query = LedgerQuery(
            subject: subject, actor: actor, kind: kind, since: try time(since, "since"), until: try time(until, "until"))
        let ledger = try dataOptions.openReadOnly()
        try Failure.map {
            try ledger.scan(query) { entry in
                printLine(entry.outputJSON.canonicalText)
                return true
            }
        }
    }
}
