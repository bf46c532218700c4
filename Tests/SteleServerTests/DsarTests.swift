import Foundation
import SteleClient
import SteleTestSupport
import Testing

/// `stele dsar` (`Specs/dsar.md`): the subject's own records in sections, staff by role only,
/// the read logged and the request recorded completed, through a running daemon.
@Suite("data-subject access reports", .serialized)
struct DsarTests {
    @Test("a DSAR holds the subject's consent, logins, changes and accesses, names staff only by role, logs the read and completes the request")
    func report() throws {
        let root = TemporaryDirectory("stele-dsar")
        let daemon = try DaemonProcess(root: root)
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        for line in [
            #"{"kind":"notice.published","attrs":{"notice":"n1","sha256":"\#(String(repeating: "ab", count: 32))","purposes":["marketing.email"],"language":"en"}}"#,
            #"{"kind":"consent.granted","subject":"user:1","actor":"user:1","attrs":{"purpose":"marketing.email","notice":"n1","method":"checkbox"}}"#,
            login("d1", user: "user:1"), login("d2", user: "user:2"),
            #"{"kind":"data.changed","subject":"user:1","actor":"staff:7","attrs":{"entity":"profile","fields":["email"],"op":"update"}}"#,
            #"{"kind":"data.disclosed","subject":"user:1","actor":"svc:billing","attrs":{"recipient":"PaymentCo","legal_basis":"contract","reference":"INV-9"}}"#,
            #"{"kind":"rights.requested","subject":"user:1","actor":"user:1","attrs":{"request":"R-9","right":"access"}}"#,
        ] {
            #expect(try reply(connection.request(line))["ok"] as? Bool == true, "\(line)")
        }
        let json = root.appending("dsar.json")
        let html = root.appending("dsar.html")
        for (out, format) in [(json, "json"), (html, "html")] {
            let run = try SteleBinary.run([
                "dsar", "user:1", "--data", daemon.data, "--socket", daemon.socket, "--request", "R-9", "--reason", "access request R-9",
                "--format", format, "--out", out,
            ])
            #expect(run.status == 0, "\(run.output)")
        }
        let text = try String(contentsOfFile: json, encoding: .utf8)
        let document = try reply(text)
        let sections = try #require(document["sections"] as? [String: [[String: Any]]])
        #expect(sections["consent"]?.count == 1 && sections["security"]?.count == 1 && sections["changes"]?.count == 1)
        #expect((sections["changes"]?.first?["values"] as? [String: Any])?["actor"] as? String == "staff member")
        #expect((sections["access"]?.first?["values"] as? [String: Any])?["recipient"] as? String == "PaymentCo")
        #expect((document["consent_now"] as? [[String: Any]])?.contains { $0["purpose"] as? String == "marketing.email" && $0["allowed"] as? Bool == true } == true)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        for output in [text, page] {
            #expect(!output.contains("staff:7") && !output.contains("user:2") && !output.contains("svc:billing"))
        }
        #expect(page.contains("Who accessed your data") && page.contains("PaymentCo") && !page.lowercased().contains("<script"))
        // The reads are logged; the request is completed (the second run's completion too).
        let accessed = try SteleBinary.run(["query", "--data", daemon.data, "--kind", "ledger.accessed", "--reason", "test: the access log", "--socket", daemon.socket])
        #expect(accessed.output.split(separator: "\n").count == 2 && accessed.output.contains("access request R-9"), "\(accessed.output)")
        let completed = try SteleBinary.run(["query", "--data", daemon.data, "--kind", "rights.completed", "--reason", "test: the completion", "--socket", daemon.socket])
        #expect(completed.output.contains("R-9") && completed.output.contains("fulfilled"), "\(completed.output)")
        // An existing file is never overwritten.
        let again = try SteleBinary.run(["dsar", "user:1", "--data", daemon.data, "--socket", daemon.socket, "--request", "R-9", "--reason", "x", "--out", json])
        #expect(again.status == 2)
    }

    @Test("query shows bodies only with --reason, which is recorded first with the count; consent show and history refuse without one")
    func readsAreRecorded() throws {
        let root = TemporaryDirectory("stele-dsar")
        let data = root.appending("data")
        let ingest = try SteleBinary.run(["ingest", "--data", data], input: login("q1", user: "user:5") + "\n" + login("q2", user: "user:5") + "\n")
        #expect(ingest.status == 0)
        let plain = try SteleBinary.run(["query", "--data", data, "--subject", "user:5"])
        #expect(plain.status == 0 && !plain.output.contains("203.0.113.7") && plain.output.contains(#""withheld":["actor","id","ip","subject"]"#), "\(plain.output)")
        let none = try SteleBinary.run(["query", "--data", data, "--kind", "ledger.accessed"])
        #expect(none.output.isEmpty, "a query without bodies records nothing")
        let read = try SteleBinary.run(["query", "--data", data, "--subject", "user:5", "--reason", "fraud review F-1"])
        #expect(read.status == 0 && read.output.contains("203.0.113.7") && read.output.split(separator: "\n").count == 2, "\(read.output)")
        let log = try SteleBinary.run(["query", "--data", data, "--kind", "ledger.accessed", "--reason", "audit of reads"])
        #expect(log.output.contains(#""disclosed":2"#) && log.output.contains("fraud review F-1") && log.output.contains(#""subject":"user:5""#), "\(log.output)")
        for command in [["consent", "show", "user:5"], ["consent", "history", "user:5"]] {
            let refused = try SteleBinary.run(command + ["--data", data])
            #expect(refused.status == 2 && refused.output.isEmpty, "\(command)")
        }
    }
}
