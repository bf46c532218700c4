import Foundation
import SteleClient
import SteleTestSupport
import Testing

@Suite("stele serve: a torn journal write by a killed daemon")
struct TornWriteTests {
    static let shimSource = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/shims/tear_journal_write.c").path

    @Test(
        "killed halfway through a journal write: the torn record, never acknowledged, is dropped silently; every acknowledged entry survives",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/cc")))
    func killedInsideTheJournalWrite() throws {
        let root = TemporaryDirectory("stele-daemon")
        let shim = root.appending("tear.so")
        let compile = Process()
        compile.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
        compile.arguments = ["-shared", "-fPIC", "-O2", "-o", shim, Self.shimSource, "-ldl"]
        try compile.run()
        compile.waitUntilExit()
        try #require(compile.terminationStatus == 0)

        let daemon = try DaemonProcess(
            root: root, config: #"{"store_commit_interval_ms": 600000}"#,
            environment: ["LD_PRELOAD": shim, "STELE_TEAR_AFTER": "5"])
        let connection = try SteleConnection(socketPath: daemon.socket)
        var acknowledged: [Int] = []
        for n in 0..<10 {
            guard let line = try? connection.request(login("t\(n)")), let seq = try? reply(line)["seq"] as? Int else { break }
            acknowledged.append(seq)
        }
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationReason == .uncaughtSignal && daemon.process.terminationStatus == SIGKILL)
        #expect(acknowledged == Array(1...5), "\(acknowledged)")

        // The restart recovers every acknowledged entry and drops the torn one without a word.
        let restarted = try DaemonProcess(root: root)
        let next = try reply(SteleConnection(socketPath: restarted.socket).request(login("after")))
        #expect(next["seq"] as? Int == 7, "\(next)")
        #expect(restarted.stop() == 0)
        #expect(!restarted.log.contains("damaged"), "\(restarted.log)")
        let verify = try SteleBinary.run(["verify", "--data", restarted.data])
        #expect(verify.status == 0 && verify.output.contains("OK: 9 entries"), "\(verify.output)")
    }
}
