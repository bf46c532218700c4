import ArgumentParser
import Foundation
import SteleCore
import SteleCrypto
import SteleStore

/// `stele query`: entries, read-only, as a table on a terminal or NDJSON; bodies only with
/// `--reason`, which records the read first; `--follow` streams entries as they are stored.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query", abstract: "Print matching entries (a table on a terminal, else NDJSON); bodies only with --reason, which records the read.")

    enum Format: String, ExpressibleByArgument { case table, json }

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Entries about this data subject.") var subject: String?
    @Option(help: "Entries by this actor.") var actor: String?
    @Option(help: "Entries of this kind, or of kinds with this prefix (consent.*); repeat for several (any of them).") var kind: [String] = []
    @Option(name: .customLong("class"), help: "Entries of this retention class; repeat for several.") var retentionClass: [String] = []
    @Option(help: "Only the entry with this seq.") var seq: UInt64?
    @Option(help: "Only entries with this client id (idempotency key).") var id: String?
    @Option(help: "Earliest ts, inclusive (RFC 3339 or a date).") var since: String?
    @Option(help: "Latest ts, exclusive (RFC 3339 or a date).") var until: String?
    @Option(help: "At most this many entries (the first, or with --reverse the newest).") var limit: Int?
    @Flag(help: "Newest first.") var reverse = false
    @Flag(help: "After the matches so far, print new matching entries as they are stored, until interrupted.") var follow = false
    @Option(help: "table (the default on a terminal) or json (NDJSON, the default otherwise).") var format: Format?
    @Flag(help: "Same as --format json.") var json = false
    @Option(help: "The daemon's configuration, for its custom kinds (default: the built-in catalogue).") var config: String?
    @OptionGroup var readReason: ReadReasonOptions

    func run() throws {
        // Bad combinations are "could not run" (exit 2), like every other refusal of stele's.
        if let limit, limit < 1 { throw Failure.couldNotRun("--limit must be at least 1") }
        if follow && reverse { throw Failure.couldNotRun("--follow prints in log order; it cannot be combined with --reverse") }
        let start = try parseTime(since, "since")
        let end = try parseTime(until, "until")
        if let start, let end, start >= end {
            throw Failure.couldNotRun("--since \(start) is not before --until \(end): nothing could match")
        }
        let ledger = try dataOptions.openReadOnly()
        try checkKinds(ledger)
        let exact = kind.count == 1 && !kind[0].hasSuffix(".*") ? kind[0] : nil
        let query = LedgerQuery(subject: subject, actor: actor, kind: exact, since: start, until: end)
        // Everything below is decided over the log as it is now; --follow then continues from here.
        let size = try Failure.map { try ledger.size }
        var found: [UInt64] = []
        if let seq {
            if seq < size, let entry = try? ledger.entry(seq), matches(entry), inRange(entry, start, end) { found = [seq] }
        } else {
            try Failure.map {
                try ledger.scan(query) { entry in
                    guard entry.seq < size else { return false }
                    if matches(entry) { found.append(entry.seq) }
                    return reverse || limit.map { found.count < $0 } ?? true
                }
            }
        }
        if reverse { found.reverse() }
        if let limit { found = Array(found.prefix(limit)) }
        let disclose = readReason.reason != nil
        if disclose {
            try readReason.record("query", query: described(), disclosed: found.count, data: dataOptions.data)
        }
        let printer = EntryPrinter(format: format ?? (json || isatty(STDOUT_FILENO) == 0 ? .json : .table), disclose: disclose)
        for seq in found { printer.print(try Failure.map { try ledger.entry(seq) }) }
        printer.flush()
        guard follow else { return }
        var next = size
        while true {
            usleep(200_000)
            let now = try Failure.map { try ledger.size }
            while next < now {
                let entry = try Failure.map { try ledger.entry(next) }
                if matches(entry) && inRange(entry, start, end) { printer.print(entry) }
                next += 1
            }
            printer.flush()
        }
    }

    /// The criteria the index walk does not apply itself.
    private func inRange(_ entry: StoredEntry, _ start: Timestamp?, _ end: Timestamp?) -> Bool {
        (start.map { entry.header.timestamp >= $0 } ?? true) && (end.map { entry.header.timestamp < $0 } ?? true)
    }

    private func matches(_ entry: StoredEntry) -> Bool {
        let values = entry.body.fields
        if let subject, values["subject"]?.value?.stringValue != subject { return false }
        if let actor, values["actor"]?.value?.stringValue != actor { return false }
        if !kind.isEmpty && !kind.contains(where: { $0 == entry.header.kind || ($0.hasSuffix(".*") && entry.header.kind.hasPrefix($0.dropLast(1))) }) {
            return false
        }
        if !retentionClass.isEmpty && !retentionClass.contains(entry.header.retentionClass) { return false }
        if let id, values["id"]?.value?.stringValue != id { return false }
        return true
    }

    /// An unknown kind is a mistake, not an empty answer: it must be in the catalogue, or in the log.
    private func checkKinds(_ ledger: Ledger) throws {
        var catalogue = EventCatalogue.builtIn
        if let config {
            guard let bytes = FileManager.default.contents(atPath: config), let value = try? JSONParser.parse([UInt8](bytes)) else {
                throw Failure.couldNotRun("cannot read the configuration \(config)")
            }
            for entry in value["kinds"]?.arrayValue ?? [] {
                if let name = entry["name"]?.stringValue { catalogue.add(EventCatalogue.Kind(name, class: entry["class"]?.stringValue ?? "audit")) }
            }
        }
        let known = Set(catalogue.kinds.keys).union(Self.ledgerKinds)
        for name in kind {
            if name.hasSuffix(".*") {
                let prefix = name.dropLast(1)
                if known.contains(where: { $0.hasPrefix(prefix) }) { continue }
            } else if known.contains(name) || inLog(name, ledger) {
                continue
            }
            // A suggestion only when it is close: a few edits, for a name of some length.
            let nearest = known.min { Self.distance(name, $0) < Self.distance(name, $1) }
            let suggestion = nearest.flatMap { Self.distance(name, $0) <= max(2, name.count / 4) && name.count >= 4 ? " (did you mean \($0)?)" : nil } ?? ""
            throw Failure.couldNotRun("unknown kind \"\(name)\"\(suggestion); stele query --kind takes a kind of the catalogue (Specs/events.md) or a prefix such as consent.*")
        }
    }

    /// Whether the log holds an entry of `kind` (a custom kind not configured here): the first
    /// one the kind index gives is enough.
    private func inLog(_ kind: String, _ ledger: Ledger) -> Bool {
        var found = false
        try? ledger.scan(LedgerQuery(kind: kind)) { _ in
            found = true
            return false
        }
        return found
    }

    static let ledgerKinds: Set<String> = [
        "ledger.started", "ledger.stopped", "ledger.recovered", "ledger.policy", "ledger.pruned", "ledger.erased", "ledger.retention",
        "ledger.compacted", "ledger.hold", "ledger.hold_released", "ledger.accessed", "ledger.key_rotated", "ledger.restored",
    ]

    /// Levenshtein distance, for suggestions.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(b.count, 1) where !b.isEmpty {
                let saved = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = saved
            }
        }
        return row[b.count]
    }

    private func described() -> JSONValue {
        var members: [String: JSONValue] = [:]
        for (name, value) in [("subject", subject), ("actor", actor), ("since", since), ("until", until), ("id", id)] {
            if let value { members[name] = .string(value) }
        }
        if !kind.isEmpty { members["kinds"] = .array(kind.map(JSONValue.string)) }
        if !retentionClass.isEmpty { members["classes"] = .array(retentionClass.map(JSONValue.string)) }
        if let seq { members["seq"] = .integer(Int64(seq)) }
        if follow { members["follow"] = .bool(true) }
        return .object(members)
    }
}

/// Prints entries as NDJSON (`Specs/entry-format.md` §3) or as a table for people.
struct EntryPrinter {
    let format: QueryCommand.Format
    let disclose: Bool
    private let output = BufferedOutput()

    init(format: QueryCommand.Format, disclose: Bool) {
        self.format = format
        self.disclose = disclose
        if format == .table { output.line("SEQ        TS                           KIND                     CLASS     SOURCE        ACTOR              SUBJECT") }
    }

    func print(_ entry: StoredEntry) {
        switch format {
        case .json:
            output.line((disclose ? entry.outputJSON : entry.withheldOutputJSON).canonicalText)
        case .table:
            let values = entry.body.fields
            func shown(_ name: String) -> String {
                guard values[name] != nil else { return "-" }
                guard disclose else { return "(--reason)" }
                return values[name]?.value?.stringValue ?? "(redacted)"
            }
            func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
            output.line(
                pad("\(entry.seq)", 11) + pad(entry.header.timestamp.description, 29) + pad(entry.header.kind, 25) + pad(entry.header.retentionClass, 10)
                    + pad(entry.header.source, 14) + pad(shown("actor"), 19) + shown("subject"))
        }
    }

    func flush() { output.flush() }
}
