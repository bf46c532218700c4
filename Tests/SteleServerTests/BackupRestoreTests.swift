import Foundation
import SteleClient
import SteleTestSupport
import Testing

/// `stele backup` and `stele restore` (`Specs/store.md`, "Backup and restore"): a backup taken
/// under load holds every entry acknowledged before it; restored after the log grew, it becomes a
/// new log whose `ledger.restored` cites the old one, and the break shows wherever the old log's
/// checkpoints are held.
@Suite("backup and restore", .serialized)
struct BackupRestoreTests {
    @Test("a backup under load, the log grows, the old backup is restored: a new log starting with ledger.restored; both verify; the old checkpoint shows the break")
    func restoreAfterGrowth() throws {
        let root = TemporaryDirectory("stele-backup")
        let daemon = try DaemonProcess(root: root)
        let connection = try SteleConnection(socketPath: daemon.socket)
        for i in 0..<50 { _ = try connection.request(login("b\(i)")) }
        // Load from another client while the backup runs.
        let stop = SentCounter()
        let socket = daemon.socket
        let loader = Thread {
            guard let other = try? SteleConnection(socketPath: socket) else { return }
            var n = 0
            while stop.value == 0 {
                _ = try? other.request(login("load\(n)"))
                n += 1
            }
        }
        loader.start()
        usleep(100_000)
        let acknowledgedBefore = try #require(try reply(connection.request(login("last-before-backup")))["seq"] as? Int)
        let backup = try SteleBinary.run(["backup", "--data", daemon.data, "--out", root.appending("backup"), "--json"])
        stop.add(1)
        while !loader.isFinished { usleep(1000) }
        try #require(backup.status == 0, "\(backup.output)")
        let manifest = try reply(backup.output)
        #expect((manifest["size"] as? Int ?? 0) > acknowledgedBefore, "every entry acknowledged before the backup started is in it")
        #expect(!FileManager.default.fileExists(atPath: root.appending("backup/signing.key")))
        for i in 0..<30 { _ = try connection.request(login("after\(i)")) }
        #expect(daemon.stop() == 0)
        let oldCheckpoint = root.appending("old-latest")
        try FileManager.default.copyItem(atPath: root.appending("checkpoints/latest"), toPath: oldCheckpoint)
        let oldSize = try #require(Int(try String(contentsOfFile: oldCheckpoint, encoding: .utf8).split(separator: "\n")[1]))

        // The store is lost; the old backup comes back.
        try FileManager.default.moveItem(atPath: root.appending("data"), toPath: root.appending("lost-data"))
        let restore = try SteleBinary.run([
            "restore", root.appending("backup"), "--data", root.appending("data"), "--checkpoints", root.appending("checkpoints"),
            "--origin", "stele.test/restored", "--json",
        ])
        try #require(restore.status == 0, "\(restore.output)")
        let restored = try reply(restore.output)
        #expect(restored["new_log"] as? Bool == true && restored["origin"] as? String == "stele.test/restored")
        #expect(restored["restored_entry"] as? Int == manifest["size"] as? Int)

        // The new log serves (same key, new origin) and verifies; so does the old log's copy.
        let again = try DaemonProcess(root: root)
        _ = try SteleConnection(socketPath: again.socket).request(login("new-log"))
        #expect(again.stop() == 0, "\(again.log)")
        let first = try SteleBinary.run(["query", "--data", root.appending("data"), "--kind", "ledger.restored", "--reason", "test"])
        #expect(first.output.contains(#""origin":"stele.test/daemon""#) && first.output.contains("backup_root"), "\(first.output)")
        #expect(try SteleBinary.run(["verify", "--data", root.appending("data")]).status == 0)
        #expect(try SteleBinary.run(["verify", "--data", root.appending("lost-data")]).status == 0)
        // Checked against the old log's checkpoint, the break is explicit.
        let broken = try SteleBinary.run(["verify", "--data", root.appending("data"), "--checkpoint", oldCheckpoint])
        #expect(broken.status == 1 && broken.output.contains("restored") && broken.output.contains("are not in this log"), "\(broken.output)")
        let missing = oldSize - (manifest["size"] as? Int ?? 0)
        #expect(broken.output.contains("its last \(missing) entries"), "\(broken.output)")
        // Restoring over a store is refused.
        let over = try SteleBinary.run(["restore", root.appending("backup"), "--data", root.appending("data"), "--checkpoints", root.appending("checkpoints")])
        #expect(over.status == 2)
    }

    @Test("a backup as new as the log restores as the same log, which continues; a damaged backup is refused")
    func restoreCurrent() throws {
        let root = TemporaryDirectory("stele-backup")
        let daemon = try DaemonProcess(root: root)
        let connection = try SteleConnection(socketPath: daemon.socket)
        for i in 0..<20 { _ = try connection.request(login("c\(i)")) }
        #expect(daemon.stop() == 0)
        #expect(try SteleBinary.run(["backup", "--data", root.appending("data"), "--out", root.appending("backup")]).status == 0)
        try FileManager.default.removeItem(atPath: root.appending("data"))
        let restore = try SteleBinary.run(["restore", root.appending("backup"), "--data", root.appending("data"), "--checkpoints", root.appending("checkpoints"), "--json"])
        let outcome = try reply(restore.output)
        #expect(restore.status == 0 && outcome["new_log"] as? Bool == false, "\(restore.output)")
        let again = try DaemonProcess(root: root)
        #expect(try reply(SteleConnection(socketPath: again.socket).request(login("continued")))["ok"] as? Bool == true)
        #expect(again.stop() == 0)
        // One flipped byte in the backup's data file: refused, nothing restored.
        let handle = try #require(FileHandle(forUpdatingAtPath: root.appending("backup/data.mdb")))
        try handle.seek(toOffset: 5000)
        try handle.write(contentsOf: Data([0x5A]))
        try handle.close()
        let damaged = try SteleBinary.run(["restore", root.appending("backup"), "--data", root.appending("other"), "--checkpoints", root.appending("checkpoints")])
        #expect(damaged.status == 2 && !FileManager.default.fileExists(atPath: root.appending("other/data.mdb")))
    }
}
