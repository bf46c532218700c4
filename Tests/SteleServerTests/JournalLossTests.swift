import Foundation
import SteleClient
import SteleTestSupport
import Testing

/// Acknowledged entries that live only in the journal must never vanish without a trace: each way
/// of losing them is refused at start, reported by `verify`, and continued past only by an explicit
/// `stele recover --accept-loss`, which records the gap.
@Suite("stele serve: a lost journal is detected, never silent")
struct JournalLossTests {
    /// A daemon whose store commits wait ten minutes: after its first round, what it acknowledges is
    /// in the journal only. Appends `count` logins one by one, then kills it.
    private func killedWithJournaledEntries(count: Int = 100) throws -> DaemonProcess {
        let daemon = try DaemonProcess(config: #"{"store_commit_interval_ms": 600000}"#)
        let connection = try SteleConnection(socketPath: daemon.socket)
        for n in 0..<count {
            let answer = try reply(connection.request(login("w\(n)")))
            try #require(answer["ok"] as? Bool == true, "\(answer)")
        }
        kill(daemon.process.processIdentifier, SIGKILL)
        daemon.process.waitUntilExit()
        return daemon
    }

    private func restartRefused(_ daemon: DaemonProcess, saying words: [String]) throws {
        let restarted = try DaemonProcess(root: daemon.root, wait: false)
        #expect(restarted.waitForExit() == 2)
        for word in words { #expect(restarted.log.contains(word), "\(restarted.log)") }
        let verify = try SteleBinary.run(["verify", "--data", daemon.data])
        #expect(verify.status == 1, "\(verify.output)")
    }

    /// `recover --accept-loss` records the gap; the daemon then starts, and the log verifies.
    private func recoverAndRestart(_ daemon: DaemonProcess) throws {
        let recover = try SteleBinary.run([
            "recover", "--accept-loss", "--reason", "INC-42: journal lost in a disk replacement",
            "--data", daemon.data, "--checkpoints", daemon.checkpoints,
        ])
        #expect(recover.status == 0 && recover.output.contains("ledger.recovered"), "\(recover.output)")
        let query = try SteleBinary.run(["query", "--data", daemon.data, "--kind", "ledger.recovered"])
        #expect(query.output.contains("ledger.recovered"), "\(query.output)")
        let restarted = try DaemonProcess(root: daemon.root)
        #expect(try reply(SteleConnection(socketPath: restarted.socket).request(login("after")))["ok"] as? Bool == true)
        #expect(restarted.stop() == 0)
        let verify = try SteleBinary.run(["verify", "--data", daemon.data])
        #expect(verify.status == 0, "\(verify.output)")
    }

    @Test("the journal deleted after a crash: the start is refused, verify reports it, recover --accept-loss records the gap")
    func deletedJournal() throws {
        let daemon = try killedWithJournaledEntries()
        try FileManager.default.removeItem(atPath: daemon.data + "/journal")
        try restartRefused(daemon, saying: ["journal", "is missing", "recover --accept-loss"])
        #expect(!FileManager.default.fileExists(atPath: daemon.data + "/journal"))  // the refusal created nothing
        try recoverAndRestart(daemon)
    }

    @Test("the journal zeroed (the first 20 bytes of each region) after a crash: refused")
    func zeroedJournal() throws {
        let daemon = try killedWithJournaledEntries()
        let path = daemon.data + "/journal"
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        let size = try handle.seekToEnd()
        for region in [UInt64(0), (size / 2) & ~4095] {
            try handle.seek(toOffset: region)
            try handle.write(contentsOf: Data(count: 20))
        }
        try handle.close()
        try restartRefused(daemon, saying: ["journal", "holds no records", "recover --accept-loss"])
        try recoverAndRestart(daemon)
    }

    @Test("one byte flipped in the last journal record: refused as damage, not dropped as a torn write")
    func damagedLastRecord() throws {
        let daemon = try killedWithJournaledEntries()
        let url = URL(fileURLWithPath: daemon.data + "/journal")
        var bytes = try Data(contentsOf: url)
        let last = try #require(bytes.lastIndex { $0 != 0 })
        bytes[last - 25] ^= 0x04
        try bytes.write(to: url)
        try restartRefused(daemon, saying: ["damaged", "written whole", "recover --accept-loss"])
        try recoverAndRestart(daemon)
    }

    @Test("an older copy of the store put back after a crash, with the journal deleted: refused by the acknowledged mark outside the data directory")
    func truncatedStoreWithoutJournal() throws {
        let root = TemporaryDirectory("stele-daemon")
        do {
            let first = try DaemonProcess(root: root)
            let connection = try SteleConnection(socketPath: first.socket)
            for n in 0..<20 { _ = try connection.request(login("a\(n)")) }
            #expect(first.stop() == 0)
        }
        let copy = root.appending("data.mdb.old")
        try FileManager.default.copyItem(atPath: root.appending("data/data.mdb"), toPath: copy)
        // Acknowledged from the journal only (no store commit, so no checkpoint covers them).
        let daemon = try DaemonProcess(root: root, config: #"{"store_commit_interval_ms": 600000}"#)
        let connection = try SteleConnection(socketPath: daemon.socket)
        for n in 0..<30 { _ = try connection.request(login("b\(n)")) }
        Thread.sleep(forTimeInterval: 1.5)  // the acknowledged mark is written about once a second
        kill(daemon.process.processIdentifier, SIGKILL)
        daemon.process.waitUntilExit()
        // A consistent, shorter store (20 entries, its head rewritten by LMDB itself), and no journal.
        try FileManager.default.removeItem(atPath: root.appending("data/data.mdb"))
        try FileManager.default.copyItem(atPath: copy, toPath: root.appending("data/data.mdb"))
        try FileManager.default.removeItem(atPath: root.appending("data/journal"))
        let before = try FileManager.default.contentsOfDirectory(atPath: root.appending("checkpoints")).sorted()
        let latest = try String(contentsOfFile: root.appending("checkpoints/latest"), encoding: .utf8)
        let refused = try DaemonProcess(root: root, wait: false)
        #expect(refused.waitForExit() == 2)
        #expect(refused.log.contains("had acknowledged 50") && refused.log.contains("refusing to start"), "\(refused.log)")
        // Nothing was signed over the shorter log: the checkpoint directory is as it was.
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appending("checkpoints")).sorted() == before)
        #expect(try String(contentsOfFile: root.appending("checkpoints/latest"), encoding: .utf8) == latest)
        try recoverAndRestart(daemon)
    }

    @Test("a torn last record from a writer killed inside its write is still dropped silently, and the log continues")
    func tornRecordStillRecovered() throws {
        let daemon = try killedWithJournaledEntries(count: 10)
        // What a write cut short leaves: the last record's end (and its terminator) never written, as
        // if the daemon had been killed inside the write of entry 9 (which it then never acknowledged).
        let url = URL(fileURLWithPath: daemon.data + "/journal")
        var bytes = try Data(contentsOf: url)
        let last = try #require(bytes.lastIndex { $0 != 0 })
        bytes.replaceSubrange((last - 30)...last, with: Data(count: 31))
        try bytes.write(to: url)
        let restarted = try DaemonProcess(root: daemon.root)
        let next = try reply(SteleConnection(socketPath: restarted.socket).request(login("next")))
        #expect(next["seq"] as? Int == 9, "\(next)")  // the torn entry 9 is dropped, and its place reused
        #expect(restarted.stop() == 0)
        #expect(try SteleBinary.run(["verify", "--data", daemon.data]).status == 0)
    }
}

@Suite("stele serve: connections no peer can exhaust")
struct ConnectionLimitTests {
    @Test("peers trickling bytes without finishing a line are closed at the line deadline, and another client is served")
    func slowConnectionsReleaseSlots() throws {
        let daemon = try DaemonProcess(config: #"{"max_connections": 4, "line_deadline_seconds": 1}"#)
        let slow = try (0..<4).map { _ in try SteleConnection(socketPath: daemon.socket) }
        for connection in slow {
            _ = try connection.request(#"{"op":"ping"}"#)  // counted by the daemon before the next one connects
            try connection.send(bytes: Array(#"{"op":"#.utf8))
        }
        let refused = try SteleConnection(socketPath: daemon.socket)
        #expect(try errorCode(refused.receive() ?? "") == "too_many_connections")
        for byte in ["\"", "p", "i"] {  // one byte per connection every 0.4 s: never a whole line
            Thread.sleep(forTimeInterval: 0.4)
            for connection in slow { try? connection.send(bytes: Array(byte.utf8)) }
        }
        for connection in slow {
            let line = try ReplyReader(connection).next()
            #expect(try errorCode(line ?? "") == "line_timeout", "\(String(describing: line))")
        }
        let served = try SteleConnection(socketPath: daemon.socket)
        #expect(try reply(served.request(#"{"op":"ping"}"#))["ok"] as? Bool == true)
        #expect(daemon.stop() == 0)
    }

    @Test("op checkpoint before the first checkpoint is no_checkpoint_yet, not unavailable")
    func noCheckpointYet() throws {
        let daemon = try DaemonProcess(config: #"{"store_commit_interval_ms": 600000}"#)
        let line = try SteleConnection(socketPath: daemon.socket).request(#"{"op":"checkpoint","id":"c"}"#)
        #expect(try errorCode(line) == "no_checkpoint_yet", "\(line)")
        #expect(daemon.stop() == 0)
    }
}

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
        #expect(acknowledged == Array(0..<5), "\(acknowledged)")

        // The restart recovers every acknowledged entry and drops the torn one without a word.
        let restarted = try DaemonProcess(root: root)
        let next = try reply(SteleConnection(socketPath: restarted.socket).request(login("after")))
        #expect(next["seq"] as? Int == 5, "\(next)")
        #expect(restarted.stop() == 0)
        #expect(!restarted.log.contains("damaged"), "\(restarted.log)")
        let verify = try SteleBinary.run(["verify", "--data", restarted.data])
        #expect(verify.status == 0 && verify.output.contains("OK: 6 entries"), "\(verify.output)")
    }
}

@Suite("stele serve: background verification")
struct BackgroundVerificationTests {
    @Test("an entry altered on disk under a running daemon is found by its scheduled re-verification, in stats and in its log")
    func tamperedEntryFound() throws {
        let daemon = try DaemonProcess(config: #"{"verify_interval_seconds": 1, "verify_cpu_percent": 50}"#)
        let connection = try SteleConnection(socketPath: daemon.socket)
        for n in 0..<20 {
            let ip = n == 7 ? "198.51.100.77" : "203.0.113.7"
            _ = try connection.request(#"{"id":"v\#(n)","kind":"login.succeeded","actor":"user:1","subject":"user:1","attrs":{"ip":"\#(ip)"}}"#)
        }
        func verification() throws -> [String: Any] {
            let stats = try #require(try reply(connection.request(#"{"op":"stats"}"#))["stats"] as? [String: Any])
            return try #require(stats["background_verify"] as? [String: Any])
        }
        // A first check finds the store sound.
        for _ in 0..<100 where (try verification()["runs"] as? Int ?? 0) < 1 { usleep(50_000) }
        #expect(try verification()["sound"] as? Bool == true)

        // One body value changed in the store file itself, as someone with write access could.
        let path = daemon.data + "/data.mdb"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let at = try #require(bytes.firstRange(of: Data("198.51.100.77".utf8))).upperBound - 1
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64(at))
        try handle.write(contentsOf: Data("8".utf8))
        try handle.close()

        let runs = try verification()["runs"] as? Int ?? 0
        for _ in 0..<200 where (try verification()["runs"] as? Int ?? 0) < runs + 2 { usleep(50_000) }
        let found = try verification()
        #expect(found["sound"] as? Bool == false, "\(found)")
        let problems = (found["problems"] as? [String] ?? []).joined(separator: "\n")
        #expect(problems.contains("entry 7"), "\(problems)")
        #expect(daemon.stop() == 0)
        #expect(daemon.log.contains("background verification found a problem"), "\(daemon.log)")
    }
}
