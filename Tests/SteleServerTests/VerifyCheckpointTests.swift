import Foundation
import SteleClient
import SteleCore
import SteleCrypto
import SteleLMDB
import SteleStore
import SteleTestSupport
import Testing

/// `stele verify --key --checkpoints`: what only a pinned key and checkpoints held outside the
/// store can catch (a cut tail, an older copy restored, a consistent rewrite, re-signed
/// checkpoints), and read-only media (`Specs/store.md`, "Integrity check").
@Suite("stele verify: pinned key, external checkpoints, read-only media", .serialized)
struct VerifyCheckpointTests {
    /// A daemon's log of `count` logins between its `ledger.started` and `ledger.stopped`, stopped
    /// cleanly (its last checkpoint covers every entry).
    static func servedLog(_ root: TemporaryDirectory, count: Int, from first: Int = 0) throws {
        let daemon = try DaemonProcess(root: root)
        let connection = try SteleConnection(socketPath: daemon.socket)
        for i in first..<first + count { _ = try connection.request(login("v\(i)", user: "user:\(i % 9)")) }
        #expect(daemon.stop() == 0)
    }

    static func verifierKey(_ root: TemporaryDirectory) throws -> String {
        let shown = try SteleBinary.run(["key", "show", "--data", root.appending("data"), "--key", root.appending("key/signing.key")])
        return try #require(shown.output.split(separator: "\n").first.map(String.init))
    }

    func verify(_ root: TemporaryDirectory, _ extra: [String]) throws -> (status: Int32, output: String) {
        try SteleBinary.run(["verify", "--data", root.appending("data")] + extra)
    }

    @Test("an untouched log verifies against its pinned key and its checkpoint directory, and says when it cannot tell")
    func untouched() throws {
        let root = TemporaryDirectory("stele-verify")
        try Self.servedLog(root, count: 40)
        let key = try Self.verifierKey(root)
        let full = try verify(root, ["--key", key, "--checkpoints", root.appending("checkpoints")])
        #expect(full.status == 0 && full.output.contains("every entry is covered by a checkpoint held outside the store"), "\(full.output)")
        let alone = try verify(root, [])
        #expect(alone.status == 0 && alone.output.contains("cannot tell") && alone.output.contains("as far as the store itself shows"))
        let json = try verify(root, ["--json", "--key", key, "--checkpoints", root.appending("checkpoints")])
        #expect(json.output.contains(#""externally_covered":42"#) && json.output.contains(#""unwitnessed_tail":0"#) && json.output.contains(#""signatures_checked":true"#))
    }

    @Test("an older copy of the data directory restored, or a cut tail, is caught by the checkpoints held outside the store")
    func rollback() throws {
        let root = TemporaryDirectory("stele-verify")
        try Self.servedLog(root, count: 20)
        let older = root.appending("older")
        try FileManager.default.copyItem(atPath: root.appending("data"), toPath: older)
        try Self.servedLog(root, count: 20, from: 20)
        let key = try Self.verifierKey(root)
        // The older copy is sound as far as the store alone shows.
        try FileManager.default.removeItem(atPath: root.appending("data"))
        try FileManager.default.moveItem(atPath: older, toPath: root.appending("data"))
        #expect(try verify(root, ["--key", key]).status == 0)
        let caught = try verify(root, ["--key", key, "--checkpoints", root.appending("checkpoints")])
        #expect(caught.status == 1 && caught.output.contains("fewer than") && caught.output.contains("cut from its tail or an older copy was restored"), "\(caught.output)")
    }

    @Test("a consistent rewrite of the whole log under the same origin is caught by an external checkpoint; re-signed checkpoints by the pinned key")
    func rewriteAndResign() throws {
        let root = TemporaryDirectory("stele-verify")
        try Self.servedLog(root, count: 30)
        let key = try Self.verifierKey(root)
        let origin = "stele.test/daemon"
        // A forger rebuilds the log from scratch with one event changed: every hash recomputed.
        let forged = root.appending("forged")
        let events = (0..<33).map { i in i == 7 ? login("v7", user: "user:666") : login("v\(i)", user: "user:\(i % 9)") }.joined(separator: "\n") + "\n"
        #expect(try SteleBinary.run(["ingest", "--data", forged, "--origin", origin], input: events).status == 0)
        #expect(try SteleBinary.run(["verify", "--data", forged]).status == 0)
        let caught = try SteleBinary.run(["verify", "--data", forged, "--key", key, "--checkpoints", root.appending("checkpoints")])
        #expect(caught.status == 1 && caught.output.contains("rewritten or forked"), "\(caught.output)")

        // Every stored checkpoint re-signed with a new key, through a separate writer on the files.
        let environment = try Environment(path: root.appending("data"), maxDatabases: 8, mapSize: 1 << 26)
        let database = try environment.openDatabase("checkpoints", create: false)
        let forger = try NoteSigner(name: origin, privateKey: Ed25519PrivateKey())
        try environment.withWriteTransaction { txn in
            var records: [([UInt8], [UInt8])] = []
            try txn.withCursor(database) { cursor in
                var record = try cursor.first()
                while let current = record {
                    records.append((Array(current.key), Array(current.value)))
                    record = try cursor.next()
                }
            }
            #expect(!records.isEmpty)
            for (key, value) in records {
                let note = try SignedNote(parsing: value)
                let resigned = try Checkpoint(parsing: note.text).signed(by: forger)
                try txn.put(database, key: key, value: Array(resigned.serialized.utf8))
            }
        }
        #expect(try verify(root, []).status == 0, "without the pinned key nothing can tell")
        let resigned = try verify(root, ["--key", key])
        #expect(resigned.status == 1 && resigned.output.contains("bad_signature") && resigned.output.contains("re-signed or forged"), "\(resigned.output)")
    }

    @Test("a store on read-only media verifies without writing a byte")
    func readOnlyMedia() throws {
        let root = TemporaryDirectory("stele-verify")
        try Self.servedLog(root, count: 25)
        let key = try Self.verifierKey(root)
        let copy = root.appending("worm")
        try FileManager.default.copyItem(atPath: root.appending("data"), toPath: copy)
        try? FileManager.default.removeItem(atPath: copy + "/lock.mdb")
        try? FileManager.default.removeItem(atPath: copy + "/stele.sock")
        for file in try FileManager.default.contentsOfDirectory(atPath: copy) { chmod(copy + "/" + file, 0o444) }
        chmod(copy, 0o555)
        chmod(root.path, 0o755)
        defer { chmod(copy, 0o755) }
        let before = try FileManager.default.contentsOfDirectory(atPath: copy).sorted()
        let digests = try before.map { SHA256.hash(Array(try Data(contentsOf: URL(fileURLWithPath: copy + "/" + $0)))) }
        // As a user who may not write there (root may write anywhere, so it is dropped).
        let command = getuid() == 0
            ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SteleBinary.path]
            : [SteleBinary.path]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst()) + ["verify", "--data", copy, "--key", key, "--checkpoints", root.appending("checkpoints")]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0 && text.contains("OK: 27 entries"), "\(text)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: copy).sorted() == before)
        #expect(try before.map { SHA256.hash(Array(try Data(contentsOf: URL(fileURLWithPath: copy + "/" + $0)))) } == digests)
    }

    @Test("--from-checkpoint checks only the entries after a held checkpoint, and finds a change among them")
    func incremental() throws {
        let root = TemporaryDirectory("stele-verify")
        try Self.servedLog(root, count: 30)
        let held = root.appending("held-checkpoint")
        try FileManager.default.copyItem(atPath: root.appending("checkpoints/latest"), toPath: held)
        try Self.servedLog(root, count: 20, from: 30)
        let key = try Self.verifierKey(root)
        let run = try verify(root, ["--json", "--key", key, "--from-checkpoint", held])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains(#""entries_checked":22"#) && run.output.contains(#""tree_size":54"#) && run.output.contains(#""externally_covered":32"#))
        // A body changed after the held checkpoint.
        let environment = try Environment(path: root.appending("data"), maxDatabases: 8, mapSize: 1 << 26)
        let entries = try environment.openDatabase("entries", create: false)
        try environment.withWriteTransaction { txn in
            let key = withUnsafeBytes(of: UInt64(40).bigEndian) { Array($0) } + [2]
            let body = String(decoding: try #require(try txn.get(entries, key: key)), as: UTF8.self)
            try txn.put(entries, key: key, value: Array(body.replacingOccurrences(of: "user:1", with: "user:2").utf8))
        }
        let caught = try verify(root, ["--key", key, "--from-checkpoint", held])
        #expect(caught.status == 1 && caught.output.contains("the body of entry 40 does not match"), "\(caught.output)")
        let full = try verify(root, ["--json"])
        #expect(full.status == 1 && full.output.contains(#""seq":40"#) && full.output.contains(#""expected":"body commitment"#), "\(full.output)")
        // A held checkpoint of another history.
        let other = TemporaryDirectory("stele-verify")
        try Self.servedLog(other, count: 30)
        let foreign = try verify(root, ["--from-checkpoint", other.appending("checkpoints/latest")])
        #expect(foreign.status == 1 && foreign.output.contains("rewritten or forked"), "\(foreign.output)")
    }

    @Test("stele monitor keeps every checkpoint it verified, and exits 1 on a rollback and on a fork signed with the log's own key")
    func monitor() throws {
        let root = TemporaryDirectory("stele-verify")
        try Self.servedLog(root, count: 20)
        let older = TemporaryDirectory("stele-fork")
        try FileManager.default.copyItem(atPath: root.appending("data"), toPath: older.appending("data"))
        try Self.servedLog(root, count: 20, from: 20)
        let key = try Self.verifierKey(root)
        let state = root.appending("monitor")
        func look(_ data: String) throws -> (status: Int32, output: String, errors: String) {
            try SteleBinary.runKeepingErrors(["monitor", "--once", "--log-key", key, "--state", state, "--data", data])
        }
        let first = try look(root.appending("data"))
        #expect(first.status == 0 && first.output.contains("verified: size 44"), "\(first)")
        #expect(try look(root.appending("data")).output.contains("unchanged: size 44"))
        #expect(FileManager.default.fileExists(atPath: state + "/checkpoint.00000000000000000044"))

        // The older copy, restored: its newest checkpoint is of 22 entries.
        let rollback = try look(older.appending("data"))
        #expect(rollback.status == 1 && rollback.errors.contains("rolled back"), "\(rollback)")

        // The key holder grows the older copy into another history and signs it.
        let fork = try DaemonProcess(root: older, key: root.appending("key/signing.key"))
        let connection = try SteleConnection(socketPath: fork.socket)
        for i in 0..<25 { _ = try connection.request(login("fork-\(i)", user: "user:fork")) }
        #expect(fork.stop() == 0)
        let forked = try look(older.appending("data"))
        #expect(forked.status == 1 && forked.errors.contains("fork") && forked.errors.contains("does not extend"), "\(forked)")
        // A view signed by another key is refused as unsigned.
        let stranger = TemporaryDirectory("stele-stranger")
        try Self.servedLog(stranger, count: 50)
        let unsigned = try look(stranger.appending("data"))
        #expect(unsigned.status == 1 && unsigned.errors.contains("does not verify"), "\(unsigned)")
    }

    @Test("stele monitor follows a live daemon through its socket, each growth proven consistent by the consistency op")
    func monitorThroughSocket() throws {
        let root = TemporaryDirectory("stele-verify")
        let daemon = try DaemonProcess(root: root)
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        let key = try Self.verifierKey(root)
        let state = root.appending("monitor")
        func grow(_ count: Int, from first: Int) throws -> Int {
            for i in first..<first + count { _ = try connection.request(login("s\(i)", user: "user:\(i % 5)")) }
            // Wait for the daemon to sign a checkpoint covering them and its ledger.started.
            for _ in 0..<100 {
                let note = try reply(try connection.request(#"{"op":"checkpoint"}"#))["checkpoint"] as? String
                if let size = note?.split(separator: "\n").dropFirst().first.flatMap({ Int($0) }), size == 1 + first + count { return size }
                usleep(50_000)
            }
            return -1
        }
        func look() throws -> (status: Int32, output: String, errors: String) {
            try SteleBinary.runKeepingErrors(["monitor", "--once", "--log-key", key, "--state", state, "--socket", daemon.socket])
        }
        #expect(try grow(10, from: 0) == 11)
        #expect(try look().output.contains("verified: size 11"))
        #expect(try grow(15, from: 10) == 26)
        let grown = try look()
        #expect(grown.status == 0 && grown.output.contains("verified: size 26"), "\(grown)")
        #expect(FileManager.default.fileExists(atPath: state + "/checkpoint.00000000000000000011"))
        // The consistency op itself, and its refusals.
        let proof = try reply(try connection.request(#"{"op":"consistency","from":10,"to":25}"#))
        #expect(((proof["consistency"] as? [String: Any])?["proof"] as? [String])?.isEmpty == false)
        #expect(try errorCode(try connection.request(#"{"op":"consistency"}"#)) == "missing_field")
        #expect(try errorCode(try connection.request(#"{"op":"consistency","from":30,"to":20}"#)) == "invalid_field")
        #expect(try errorCode(try connection.request(#"{"kind":"login.succeeded","from":1}"#)) == "invalid_field")
    }
}
