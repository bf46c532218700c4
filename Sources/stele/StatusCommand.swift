import ArgumentParser
import SteleClient
import SteleCore

/// `stele status`: the daemon's statistics, as JSON or in the Prometheus text format.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Print the daemon's statistics as JSON, or as Prometheus metrics (--format prometheus).")

    enum Format: String, ExpressibleByArgument { case json, prometheus }

    @Option(help: "The daemon's socket.") var socket: String = "./stele-data/stele.sock"
    @Option(help: "json (the default) or prometheus (text format 0.0.4, for node_exporter's textfile collector).") var format: Format = .json
    @Flag(help: "Same as --format json.") var json = false

    func run() throws {
        let stats: JSONValue
        do {
            let reply = try SteleConnection(socketPath: socket).request(#"{"op":"stats"}"#)
            guard let value = try JSONParser.parse(Array(reply.utf8))["stats"] else { throw Failure.couldNotRun("unexpected reply: \(reply)") }
            stats = value
        } catch let error as ClientError {
            throw Failure.couldNotRun(error.message)
        }
        if format == .prometheus && !json {
            print(PrometheusText(stats: stats).text, terminator: "")
        } else {
            printLine(stats.canonicalText)
        }
    }
}

/// The daemon's `stats` in the Prometheus text exposition format (`Specs/protocol.md`, "stats").
/// Hand-written: swift-prometheus keeps its own live registry and has no summary type, and these
/// figures are already counted by the daemon (latencies as quantiles over its last 8192 samples).
struct PrometheusText {
    let stats: JSONValue

    var text: String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            guard !samples.isEmpty else { return }
            out += "# HELP stele_\(name) \(help)\n# TYPE stele_\(name) \(type)\n"
            for sample in samples { out += "stele_\(name)\(sample.labels) \(sample.value)\n" }
        }
        func integer(_ key: String, _ inner: String? = nil) -> String? {
            let outer = stats[key]
            let value = inner.map { outer?[$0] } ?? outer
            return value?.integerValue.map(String.init)
        }
        func one(_ value: String?) -> [(labels: String, value: String)] { value.map { [("", $0)] } ?? [] }
        metric("appends_total", "counter", "Events appended and acknowledged.", one(integer("appends")))
        metric("duplicates_total", "counter", "Appends answered from an earlier entry with the same id.", one(integer("duplicates")))
        metric("batches_total", "counter", "Batches made durable in the journal.", one(integer("batches")))
        metric("events_committed_total", "counter", "Entries committed to the store.", one(integer("events_committed")))
        metric("store_commits_total", "counter", "Store transactions committed.", one(integer("store_commits")))
        metric("checkpoints_signed_total", "counter", "Checkpoints signed.", one(integer("checkpoints_signed")))
        metric("idempotency_keys_evicted_total", "counter", "Idempotency keys dropped before their window ended.", one(integer("idempotency_keys_evicted")))
        let refusals = (stats["errors"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.compactMap { code, count in
            count.integerValue.map { (#"{code="\#(code)"}"#, String($0)) }
        }
        metric("refusals_total", "counter", "Requests refused, by error code.", refusals)
        metric("connections", "gauge", "Open client connections.", one(integer("connections")))
        metric("tree_size", "gauge", "Entries in the committed log.", one(integer("tree_size")))
        metric("uptime_seconds", "gauge", "Seconds since the daemon started.", one(integer("uptime_seconds")))
        metric("checkpoint_age_seconds", "gauge", "Seconds since the last checkpoint was signed.", one(integer("checkpoint_age_seconds")))
        metric("resident_bytes", "gauge", "Resident memory the allocator reports.", one(integer("memory", "resident_bytes")))
        metric("background_verify_runs_total", "counter", "Completed background verifications.", one(integer("background_verify", "runs")))
        if let sound = stats["background_verify"]?["sound"]?.boolValue {
            metric("background_verify_sound", "gauge", "1 if the last background verification found the store sound.", [("", sound ? "1" : "0")])
        }
        func summary(_ name: String, _ member: String, _ count: String?, _ help: String) {
            guard let ring = stats[member] else { return }
            var samples: [(labels: String, value: String)] = []
            for (quantile, key) in [("0.5", "p50"), ("0.99", "p99"), ("0.999", "p999")] {
                if let micros = ring[key]?.integerValue { samples.append((#"{quantile="\#(quantile)"}"#, Self.seconds(micros))) }
            }
            if let count { samples.append(("_count", count)) }
            metric(name, "summary", help, samples)
        }
        summary("ack_latency_seconds", "ack_us", integer("appends"), "From a request's arrival to its acknowledgement.")
        summary("journal_commit_latency_seconds", "commit_us", integer("batches"), "Durable journal write of a batch.")
        summary("store_commit_latency_seconds", "store_commit_us", integer("store_commits"), "Store transaction commit.")
        return out
    }

    static func seconds(_ micros: Int64) -> String {
        let whole = micros / 1_000_000
        let fraction = String(micros % 1_000_000)
        return "\(whole).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }
}
