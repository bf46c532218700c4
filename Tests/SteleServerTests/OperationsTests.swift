import Foundation
import SteleClient
import SteleTestSupport
import Testing

/// What operators watch and trip over: metrics for Prometheus, a socket file removed under the daemon.
@Suite("operations: metrics and the socket file", .serialized)
struct OperationsTests {
    @Test("stele status --format prometheus prints the daemon's counters, gauges and latency summaries in the text format")
    func prometheus() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        for i in 0..<5 { _ = try connection.request(login("m\(i)")) }
        _ = try connection.request(#"{"kind":"no.such.kind"}"#)
        let run = try SteleBinary.run(["status", "--socket", daemon.socket, "--format", "prometheus"])
        #expect(run.status == 0)
        let sample = try Regex(#"^stele_[a-z_]+(\{[a-z_]+="[^"]*"\})? -?[0-9]+(\.[0-9]+)?$"#)
        for line in run.output.split(separator: "\n") where !line.hasPrefix("#") {
            #expect(String(line).wholeMatch(of: sample) != nil, "not a sample line: \(line)")
        }
        #expect(run.output.contains("stele_appends_total 5"), "\(run.output)")
        #expect(run.output.contains(#"stele_refusals_total{code="unknown_kind"} 1"#))
        #expect(run.output.contains("# TYPE stele_ack_latency_seconds summary") && run.output.contains(#"stele_ack_latency_seconds{quantile="0.99"}"#))
        #expect(run.output.contains("stele_checkpoint_age_seconds"))
    }

    @Test("a socket file removed under the daemon is noticed, logged and recreated; clients connect again")
    func socketRecreated() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        unlink(daemon.socket)
        var answered = false
        for _ in 0..<100 where !answered {
            usleep(100_000)
            answered = (try? SteleConnection(socketPath: daemon.socket).request(#"{"op":"ping"}"#)) != nil
        }
        #expect(answered)
        #expect(daemon.log.contains("the socket file disappeared"), "\(daemon.log)")
        #expect(try reply(SteleConnection(socketPath: daemon.socket).request(login("after")))["ok"] as? Bool == true)
    }

    @Test("the systemd unit verifies with systemd-analyze, and the sample configuration parses", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")))
    func systemdUnit() throws {
        let (status, text) = try ExternalProgram.run("/bin/bash", [ExternalProgram.repositoryFile("Tools/systemd/check.sh"), SteleBinary.path])
        #expect(status == 0, "\(text)")
    }

    @Test("the Python client's own tests pass against this daemon: pipelining, refusals, a SIGKILL mid-stream with every event stored exactly once, the logging handler")
    func pythonClient() throws {
        let (status, text) = try ExternalProgram.run(
            "/usr/bin/python3", [ExternalProgram.repositoryFile("clients/python/test_stele_client.py")], environment: ["STELE": SteleBinary.path],
            currentDirectory: SteleBinary.scratch)
        #expect(status == 0, "\(text)")
    }
}
