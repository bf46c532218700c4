import ArgumentParser
import SteleCore
import SteleCrypto
import SteleStore

/// `stele query`: entries as NDJSON, read-only.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query", abstract: "Print matching entries as NDJSON (seq, header, body, redacted); bodies only with --reason, which records the read.")

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Entries about this data subject.") var subject: String?
    @Option(help: "Entries by this actor.") var actor: String?
    @Option(help: "Entries of this kind.") var kind: String?
    @Option(help: "Earliest ts, inclusive (RFC 3339).") var since: String?
    @Option(help: "Latest ts, exclusive (RFC 3339).") var until: String?
    @Flag(help: "Output JSON (the default and only format).") var json = false
    @OptionGroup var readReason: ReadReasonOptions

    func run() throws {
        let query = LedgerQuery(
            subject: subject, actor: actor, kind: kind, since: try parseTime(since, "since"), until: try parseTime(until, "until"))
        let ledger = try dataOptions.openReadOnly()
        // Bodies are personal data: shown only for a reason, recorded (with the count) first. The
        // entries are counted and printed below the same log size.
        let size = try Failure.map { try ledger.size }
        if readReason.reason != nil {
            var count = 0
            try Failure.map { try ledger.scan(query) { entry in
                guard entry.seq < size else { return false }
                count += 1
                return true
            } }
            var described: [String: JSONValue] = [:]
            for (name, value) in [("subject", subject), ("actor", actor), ("kind", kind), ("since", since), ("until", until)] {
                if let value { described[name] = .string(value) }
            }
            try readReason.record("query", query: .object(described), disclosed: count, data: dataOptions.data)
        }
        try Failure.map {
            try ledger.scan(query) { entry in
                guard entry.seq < size else { return false }
                printLine((readReason.reason != nil ? entry.outputJSON : entry.withheldOutputJSON).canonicalText)
                return true
            }
        }
    }
}
