import Foundation
import SteleClient
import SteleTestSupport
import Testing

/// Whoever can write the data or checkpoint directory, or replace the key, can make acknowledged
/// entries vanish or sign a forged log: such a start is refused with one line, and a refused start
/// leaves the file system exactly as it found it.
@Suite("stele serve: unsafe permissions are refused, and a refused start creates nothing")
struct StartupPermissionTests {
    /// Every path under `root` with its mode and owner, to compare before and after a refusal.
    private func listing(_ root: TemporaryDirectory) throws -> [String] {
        let enumerator = try #require(FileManager.default.enumerator(atPath: root.path))
        return enumerator.compactMap { $0 as? String }.filter { !$0.hasPrefix("daemon-") }.sorted().map { name in
            var info = stat()
            lstat(root.appending(name), &info)
            return "\(name) \(String(info.st_mode, radix: 8)) \(info.st_uid) \(info.st_size)"
        }
    }

    /// Starts a daemon expected to refuse; checks its one line and that nothing changed on disk.
    private func refused(_ root: TemporaryDirectory, key: String? = nil, saying words: [String]) throws {
        let before = try listing(root)
        let daemon = try DaemonProcess(root: root, key: key, wait: false, initialize: false)
        #expect(daemon.waitForExit() == 2)
        for word in words { #expect(daemon.log.contains(word), "\(daemon.log)") }
        #expect(daemon.log.split(separator: "\n").count == 1, "\(daemon.log)")
        #expect(try listing(root) == before)
    }

    /// A log that ran once: data, key and checkpoint directory all exist.
    private func existingLog() throws -> TemporaryDirectory {
        let root = TemporaryDirectory("stele-daemon")
        let daemon = try DaemonProcess(root: root)
        _ = try SteleConnection(socketPath: daemon.socket).request(login("first"))
        #expect(daemon.stop() == 0)
        return root
    }

    @Test("a data directory or checkpoint directory writable by group or others")
    func writableDirectories() throws {
        for (directory, mode, word) in [("data", 0o777, "others"), ("data", 0o770, "group"), ("checkpoints", 0o757, "others")] {
            let root = try existingLog()
            chmod(root.appending(directory), mode_t(mode))
            try refused(root, saying: [root.appending(directory), "writable by \(word)", "chmod go-w"])
        }
    }

    @Test("a fresh start in an unsafe data directory creates no key, no store and no checkpoint directory")
    func freshStartRefusedCreatesNothing() throws {
        let root = TemporaryDirectory("stele-daemon")
        try FileManager.default.createDirectory(atPath: root.appending("data"), withIntermediateDirectories: false, attributes: [.posixPermissions: 0o777])
        chmod(root.appending("data"), 0o777)
        try refused(root, saying: ["writable by others"])
        #expect(!FileManager.default.fileExists(atPath: root.appending("key")))
    }

    @Test("a key owned by another uid, a key directory others may write, a key reached through a directory others may write")
    func unsafeKeys() throws {
        let root = try existingLog()
        chown(root.appending("key/signing.key"), 1, 1)
        try refused(root, saying: ["signing key", "owned by uid 1"])
        chown(root.appending("key/signing.key"), geteuid(), getegid())

        chmod(root.appending("key"), 0o777)
        try refused(root, saying: ["which others may write"])
        chmod(root.appending("key"), 0o700)

        // The key moved under a directory anyone may write (no sticky bit): anyone could swap it.
        try FileManager.default.createDirectory(atPath: root.appending("open/inner"), withIntermediateDirectories: true)
        chmod(root.appending("open"), 0o777)
        try FileManager.default.moveItem(atPath: root.appending("key/signing.key"), toPath: root.appending("open/inner/signing.key"))
        try refused(root, key: root.appending("open/inner/signing.key"), saying: [root.appending("open"), "which others may write"])
    }

    @Test("a deleted key beside an existing log is not replaced: restore it from the backup")
    func deletedKeyNotReplaced() throws {
        let root = try existingLog()
        try FileManager.default.removeItem(atPath: root.appending("key/signing.key"))
        try refused(root, saying: ["missing", "restore the signing key from your backup"])
        #expect(!FileManager.default.fileExists(atPath: root.appending("key/signing.key")))
    }
}
