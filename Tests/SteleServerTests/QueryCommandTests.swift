import Foundation
import SteleClient
import SteleTestSupport
import Testing

/// `stele query`: filters that combine, orders and limits, helpful refusals, a table for people,
/// and `--follow` streaming what is stored after it started.
@Suite("stele query", .serialized)
struct QueryCommandTests {
    static func log(_ root: TemporaryDirectory) throws -> String {
        let data = root.appending("data")
        let lines = [
            login("q0", user: "user:1"), login("q1", user: "user:2"),
            #"{"id":"c1","kind":"consent.granted","subject":"user:1","actor":"user:1","attrs":{"purpose":"marketing.email","notice":"n1","method":"checkbox"}}"#,
            #"{"id":"c2","kind":"consent.withdrawn","subject":"user:1","actor":"user:1","attrs":{"purpose":"marketing.email","method":"settings"}}"#,
            #"{"id":"b1","kind":"billing.transaction","subject":"user:1","actor":"user:1","attrs":{"amount":5,"currency":"EUR"}}"#,
        ]
        let ingest = try SteleBinary.run(["ingest", "--data", data], input: lines.joined(separator: "\n") + "\n")
        try #require(ingest.status == 0, "\(ingest.output)")
        return data
    }

    func seqs(_ output: String) -> [Int] {
        output.split(separator: "\n").compactMap { (try? reply(String($0)))?["seq"] as? Int }
    }

    @Test("several kinds are OR'd, prefixes and classes select, --seq and --id pick one, --limit and --reverse order; the header is an object beside its exact text")
    func filters() throws {
        let root = TemporaryDirectory("stele-query")
        let data = try Self.log(root)
        func query(_ extra: [String]) throws -> [Int] { seqs(try SteleBinary.run(["query", "--data", data] + extra).output) }
        #expect(try query(["--kind", "login.succeeded", "--kind", "billing.transaction"]) == [0, 1, 4])
        #expect(try query(["--kind", "consent.*"]) == [2, 3])
        #expect(try query(["--class", "security", "--class", "billing"]) == [0, 1, 4])
        #expect(try query(["--seq", "3"]) == [3])
        #expect(try query(["--id", "c2"]) == [3])
        #expect(try query(["--subject", "user:1", "--limit", "2"]) == [0, 2])
        #expect(try query(["--subject", "user:1", "--reverse", "--limit", "2"]) == [4, 3])
        #expect(try query(["--since", "2000-01-01", "--kind", "login.*"]) == [0, 1])
        #expect(try query(["--until", "2000-01-01"]).isEmpty)
        let line = try #require(try SteleBinary.run(["query", "--data", data, "--seq", "0"]).output.split(separator: "\n").first)
        let object = try reply(String(line))
        let header = try #require(object["header"] as? [String: Any])
        #expect(header["kind"] as? String == "login.succeeded" && (object["header_text"] as? String)?.hasPrefix(#"{"body":"#) == true)
        // A table for people.
        let table = try SteleBinary.run(["query", "--data", data, "--format", "table", "--kind", "consent.*"])
        #expect(table.output.hasPrefix("SEQ") && table.output.contains("consent.withdrawn") && table.output.contains("(--reason)"), "\(table.output)")
    }

    @Test("an unknown kind is an error with a suggestion; --since after --until is an error; --version answers")
    func refusals() throws {
        let root = TemporaryDirectory("stele-query")
        let data = try Self.log(root)
        let typo = try SteleBinary.runKeepingErrors(["query", "--data", data, "--kind", "login.succeded"])
        #expect(typo.status == 2 && typo.errors.contains("did you mean login.succeeded?"), "\(typo.errors)")
        let backwards = try SteleBinary.runKeepingErrors(["query", "--data", data, "--since", "2026-12-07", "--until", "2026-12-06"])
        #expect(backwards.status == 2 && backwards.errors.contains("is not before"), "\(backwards.errors)")
        let version = try SteleBinary.run(["--version"])
        #expect(version.status == 0 && version.output.split(separator: ".").count == 3, "\(version.output)")
    }

    @Test("--follow prints the matches so far, then an entry appended after it started")
    func follow() throws {
        let root = TemporaryDirectory("stele-query")
        let daemon = try DaemonProcess(root: root)
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        _ = try connection.request(login("before", user: "user:7"))
        let (process, _, stdout) = try SteleBinary.start(["query", "--data", daemon.data, "--subject", "user:7", "--follow", "--json"])
        defer { process.terminate() }
        var lines: [String] = []
        var pending = Data()
        func readLine() -> String? {
            while true {
                if let newline = pending.firstIndex(of: 0x0A) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending = Data(pending[(newline + 1)...])
                    return line
                }
                let chunk = stdout.fileHandleForReading.availableData
                if chunk.isEmpty { return nil }
                pending.append(chunk)
            }
        }
        if let first = readLine() { lines.append(first) }
        let appended = try #require(try reply(connection.request(login("after", user: "user:7")))["seq"] as? Int)
        _ = try connection.request(login("other", user: "user:8"))
        if let second = readLine() { lines.append(second) }
        #expect(seqs(lines.joined(separator: "\n")) == [1, appended], "\(lines)")
    }
}
