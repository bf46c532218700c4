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
        let firstCheckpoint = try String(contentsOfFile: root.appending("checkpoints/latest"), encoding: .utf8)
        // Acknowledged from the journal only (no store commit, so no checkpoint covers them).
        let daemon = try DaemonProcess(root: root, config: #"{"store_commit_interval_ms": 600000}"#)
        let connection = try SteleConnection(socketPath: daemon.socket)
        for n in 0..<30 { _ = try connection.request(login("b\(n)")) }
        Thread.sleep(forTimeInterval: 1.5)  // the acknowledged mark is written about once a second
        kill(daemon.process.processIdentifier, SIGKILL)
        daemon.process.waitUntilExit()
        // A consistent, shorter store (22 entries, its head rewritten by LMDB itself), and no journal.
        try FileManager.default.removeItem(atPath: root.appending("data/data.mdb"))
        try FileManager.default.copyItem(atPath: copy, toPath: root.appending("data/data.mdb"))
        try FileManager.default.removeItem(atPath: root.appending("data/journal"))
        // The checkpoint of this run's ledger.started, written after the store's commit, lost too
        // (as a crash before its file was written would): only the acknowledged mark is left to tell.
        for name in try FileManager.default.contentsOfDirectory(atPath: root.appending("checkpoints")) where name > "checkpoint.00000000000000000022" && name.hasPrefix("checkpoint.") {
            try FileManager.default.removeItem(atPath: root.appending("checkpoints/" + name))
        }
        try firstCheckpoint.write(toFile: root.appending("checkpoints/latest"), atomically: true, encoding: .utf8)
        let before = try FileManager.default.contentsOfDirectory(atPath: root.appending("checkpoints")).sorted()
        let latest = try String(contentsOfFile: root.appending("checkpoints/latest"), encoding: .utf8)
        let refused = try DaemonProcess(root: root, wait: false)
        #expect(refused.waitForExit() == 2)
        #expect(refused.log.contains("had acknowledged 53") && refused.log.contains("refusing to start"), "\(refused.log)")
        // Nothing was signed over the shorter log: the checkpoint directory is as it was.
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appending("checkpoints")).sorted() == before)
        #expect(try String(contentsOfFile: root.appending("checkpoints/latest"), encoding: .utf8) == latest)
        try recoverAndRestart(daemon)
    }

    @Test("a torn last record from a writer killed inside its write is still dropped silently, and the log continues")
    func tornRecordStillRecovered() throws {
        let daemon = try killedWithJournaledEntries(count: 10)
        // What a write cut short leaves: the last record's end (and its terminator) never written, as
        // if the daemon had been killed inside the write of entry 10 (which it then never acknowledged).
        let url = URL(fileURLWithPath: daemon.data + "/journal")
        var bytes = try Data(contentsOf: url)
        let last = try #require(bytes.lastIndex { $0 != 0 })
        bytes.replaceSubrange((last - 30)...last, with: Data(count: 31))
        try bytes.write(to: url)
        let restarted = try DaemonProcess(root: daemon.root)
        let next = try reply(SteleConnection(socketPath: restarted.socket).request(login("next")))
        #expect(next["seq"] as? Int == 11, "\(next)")  // the torn entry 10 is dropped; the restart's ledger.started takes its place
        #expect(restarted.stop() == 0)
        #expect(try SteleBinary.run(["verify", "--data", daemon.data]).status == 0)
    }
}
