import Foundation
import SteleClient
import SteleCore
import SteleCrypto
import SteleTestSupport
import Testing

@Suite("stele serve: lifecycle, checkpoints outside the store, peers", .serialized)
struct DaemonLifecycleTests {
    static let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test("SIGTERM with appends in flight: every request received is answered, every acknowledged entry is kept, a final checkpoint is signed")
    func sigtermDrains() throws {
        let daemon = try DaemonProcess()
        let connection = try SteleConnection(socketPath: daemon.socket)
        let lines = (0..<3000).map { login("d\($0)", user: "user:\($0 % 97)") }
        try connection.send(bytes: Array(lines.joined(separator: "\n").utf8) + [0x0A])
        var acknowledged: [Int: String] = [:]
        var answered = 0
        let replies = ReplyReader(connection)
        while let line = try replies.next() {
            let object = try reply(line)
            answered += 1
            // The signal comes once the daemon has read some of the requests (sent any earlier, it
            // could find none read and answer nothing), while the rest are in flight or unread.
            if answered == 1 { kill(daemon.process.processIdentifier, SIGTERM) }
            // Requests are answered in order: a reply other than a success would be a lost append.
            #expect(object["ok"] as? Bool == true, "\(line)")
            if object["ok"] as? Bool == true { acknowledged[object["seq"] as! Int] = object["leaf"] as? String }
        }
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationStatus == 0, "\(daemon.log)")
        // Requests still unread in the socket when the signal came were never received: the connection
        // closes without answering them, so the client knows to retry them (with the same ids).
        #expect(acknowledged.count == answered)
        // Every request read was answered (also those of a read under way when the signal came), so
        // the client learns of unread ones from the reset, and an orderly end means all were answered.
        #expect(replies.endedByReset == (answered < lines.count), "answered: \(answered)")
        let size = acknowledged.count  // appends 1...size, after the daemon's ledger.started
        #expect(Set(acknowledged.keys) == Set(1...size))
        let query = try SteleBinary.run(["prove", "inclusion", "--data", daemon.data, "--seq", "\(size)"])
        let proof = try JSONSerialization.jsonObject(with: Data(query.output.utf8)) as! [String: Any]
        #expect(proof["tree_size"] as? Int == size + 2)  // and its ledger.stopped
        #expect(proof["leaf"] as? String == acknowledged[size])
        let latest = try String(contentsOfFile: daemon.checkpoints + "/latest", encoding: .utf8)
        #expect(latest.hasPrefix("stele.test/daemon\n\(size + 2)\n"))
        // A restarted daemon takes the retries of the unanswered requests.
        let restarted = try DaemonProcess(root: daemon.root)
        let again = try SteleConnection(socketPath: restarted.socket)
        for i in [0, size - 1, 2999] {
            let answer = try reply(again.request(lines[i]))
            #expect(answer["ok"] as? Bool == true)
            #expect((answer["duplicate"] as? Bool ?? false) == (i < size))
        }
        #expect(restarted.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.socket))
    }

    @Test("SIGKILL under load: every acknowledged append survives, and the restarted daemon continues the chain")
    func sigkillKeepsAcknowledged() throws {
        let daemon = try DaemonProcess()
        let connection = try SteleConnection(socketPath: daemon.socket)
        let lines = (0..<20_000).map { login("k\($0)", user: "user:\($0 % 89)") }
        let payload = Array(lines.joined(separator: "\n").utf8) + [0x0A]
        let sender = Thread { try? connection.send(bytes: payload) }  // fails once the daemon is gone
        sender.start()
        // Kill without warning once some appends are acknowledged, while the rest are in flight.
        var acknowledged: [(line: Int, seq: Int, leaf: String)] = []
        var killed = false
        // The connection ends when the daemon dies, by a reset if requests of it were still unread.
        let replies = ReplyReader(connection)
        while let line = try replies.next() {
            let object = try reply(line)
            guard object["ok"] as? Bool == true, let seq = object["seq"] as? Int, let leaf = object["leaf"] as? String else {
                Issue.record("unexpected reply \(line)")
                break
            }
            acknowledged.append((acknowledged.count, seq, leaf))
            if !killed && acknowledged.count == 700 {
                kill(daemon.process.processIdentifier, SIGKILL)
                killed = true
            }
        }
        daemon.process.waitUntilExit()
        #expect(daemon.process.terminationReason == .uncaughtSignal)
        // Replies written before the kill still arrive; everything after was never acknowledged.
        #expect(acknowledged.count >= 700 && acknowledged.count < lines.count)
        #expect(acknowledged.map(\.seq) == Array(1...acknowledged.count))

        // The restart accepts the store (it is not older than any checkpoint it signed) and every
        // acknowledged request, retried, is answered from the stored entry with its seq and leaf.
        let restarted = try DaemonProcess(root: daemon.root)
        let again = try SteleConnection(socketPath: restarted.socket)
        let resender = Thread { try? again.send(bytes: payload) }
        resender.start()
        var seqs: [Int] = []
        for index in 0..<lines.count {
            guard let line = try again.receive() else { break }
            let object = try reply(line)
            #expect(object["ok"] as? Bool == true, "\(line)")
            let seq = object["seq"] as? Int ?? -1
            seqs.append(seq)
            if index < acknowledged.count {
                #expect(object["duplicate"] as? Bool == true)
                #expect(seq == acknowledged[index].seq && object["leaf"] as? String == acknowledged[index].leaf)
            }
        }
        // The unacknowledged rest is appended now (or found, if it had committed), each once: every
        // seq after the first start's but the restart's own ledger.started.
        #expect(seqs.count == lines.count && Set(seqs).count == lines.count && Set(seqs).isSubset(of: Set(1...lines.count + 1)))
        #expect(restarted.stop() == 0)
        let verify = try SteleBinary.run(["verify", "--data", daemon.data])
        #expect(verify.status == 0, "\(verify.output)")
    }

    @Test(
        "a full disk gets storage_full, appends nothing, and the daemon keeps serving; once space is freed the retry appends",
        .enabled(if: SmallDisk.isAvailable, "needs to mount a small tmpfs (root)"))
    func fullDiskKeepsServing() throws {
        let root = TemporaryDirectory("stele-daemon")
        let data = root.appending("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        try #require(SmallDisk.mount(size: "1m", on: data), "could not mount a tmpfs at \(data)")
        defer { SmallDisk.unmount(data) }
        // Space to give back later.
        let filler = data + "/filler"
        try #require(FileManager.default.createFile(atPath: filler, contents: Data(repeating: 0x55, count: 256 << 10)))
        let daemon = try DaemonProcess(root: root)
        let connection = try SteleConnection(socketPath: daemon.socket)
        let padding = String(repeating: "m", count: 1500)
        func event(_ i: Int) -> String {
            #"{"id":"full\#(i)","kind":"login.succeeded","actor":"user:\#(i)","subject":"user:\#(i)","attrs":{"method":"password","user_agent":"\#(padding)"}}"#
        }
        var appended = 0
        var refusal: [String: Any]?
        while appended < 5000 {
            let answer = try reply(connection.request(event(appended)))
            if answer["ok"] as? Bool != true {
                refusal = answer
                break
            }
            #expect(answer["seq"] as? Int == appended + 1)
            appended += 1
        }
        #expect((refusal?["error"] as? [String: Any])?["code"] as? String == "storage_full", "\(String(describing: refusal))")
        #expect(appended > 0)
        // The connection and the daemon are still usable.
        #expect(try reply(connection.request(#"{"op":"ping"}"#))["ok"] as? Bool == true)
        #expect(daemon.process.isRunning)
        // Free space; the same request now appends, right after the last acknowledged entry.
        try FileManager.default.removeItem(atPath: filler)
        let retried = try reply(connection.request(event(appended)))
        #expect(retried["ok"] as? Bool == true && retried["seq"] as? Int == appended + 1, "\(retried)")
        #expect(retried["duplicate"] == nil)
        #expect(daemon.stop() == 0, "\(daemon.log)")
        let verify = try SteleBinary.run(["verify", "--data", data])
        #expect(verify.status == 0, "\(verify.output)")
    }

    @Test("a restart continues the same chain")
    func restartContinuesChain() throws {
        let root = TemporaryDirectory("stele-daemon")
        do {
            let daemon = try DaemonProcess(root: root)
            let connection = try SteleConnection(socketPath: daemon.socket)
            for i in 0..<10 { _ = try connection.request(login("r\(i)")) }
            #expect(daemon.stop() == 0)
        }
        let daemon = try DaemonProcess(root: root)
        let connection = try SteleConnection(socketPath: daemon.socket)
        #expect(try reply(connection.request(login("r10")))["seq"] as? Int == 13)  // after r0...r9, the first run's start and stop, and this start
        #expect(try reply(connection.request(login("r3")))["duplicate"] as? Bool == true)
        #expect(daemon.stop() == 0)
        let verify = try SteleBinary.run(["verify", "--data", daemon.data])
        #expect(verify.status == 0, "\(verify.output)")
    }

    @Test("the checkpoint directory keeps the newest checkpoint_files_kept files; the newest still decides")
    func checkpointDirectoryIsBounded() throws {
        let root = TemporaryDirectory("stele-daemon")
        let files = {
            try FileManager.default.contentsOfDirectory(atPath: root.appending("checkpoints")).filter { $0.hasPrefix("checkpoint.") }.sorted()
        }
        for round in 0..<4 {
            let daemon = try DaemonProcess(root: root)
            let connection = try SteleConnection(socketPath: daemon.socket)
            _ = try connection.request(login("k\(round)"))
            #expect(daemon.stop() == 0)  // signs a checkpoint of size 3 * (round + 1): start, append, stop
            #expect(!daemon.log.contains(" error "), "\(daemon.log)")  // also the first start, without a directory
        }
        let signed = try files()
        #expect(signed.count >= 4 && signed.last == String(format: "checkpoint.%020d", 12))  // the default keeps far more
        let daemon = try DaemonProcess(root: root, config: #"{"checkpoint_files_kept": 2}"#)
        #expect(try Array(files().prefix(2)) == Array(signed.suffix(2)))  // then the checkpoint of its start
        let connection = try SteleConnection(socketPath: daemon.socket)
        #expect(try reply(connection.request(login("k4")))["seq"] as? Int == 13)
        #expect(daemon.stop() == 0)
        #expect(try files().last == String(format: "checkpoint.%020d", 15))
        #expect(FileManager.default.fileExists(atPath: root.appending("checkpoints/latest")))
    }

    @Test("a store older than the newest checkpoint outside it is refused, and so are a swapped store and a missing one")
    func olderStoreRefused() throws {
        let root = TemporaryDirectory("stele-daemon")
        let backup = root.appending("backup")
        do {
            let daemon = try DaemonProcess(root: root)
            let connection = try SteleConnection(socketPath: daemon.socket)
            for i in 0..<5 { _ = try connection.request(login("o\(i)")) }
            #expect(daemon.stop() == 0)
            try FileManager.default.copyItem(atPath: daemon.data, toPath: backup)
        }
        do {
            let daemon = try DaemonProcess(root: root)
            let connection = try SteleConnection(socketPath: daemon.socket)
            for i in 5..<9 { _ = try connection.request(login("o\(i)")) }
            #expect(daemon.stop() == 0)
        }
        // Restore the old backup: the checkpoint directory knows the log had 9 entries.
        try FileManager.default.removeItem(atPath: root.appending("data"))
        try FileManager.default.copyItem(atPath: backup, toPath: root.appending("data"))
        let refused = try DaemonProcess(root: root, wait: false)
        #expect(refused.waitForExit() == 2)
        #expect(refused.log.contains("older than the log"), "\(refused.log)")

        // A different store of the same size or larger (same key, same origin) disagrees with the checkpoint root.
        try FileManager.default.removeItem(atPath: root.appending("data"))
        let other = try SteleBinary.run(
            ["ingest", "--data", root.appending("data"), "--origin", "stele.test/daemon"],
            input: (0..<16).map { login("x\($0)") }.joined(separator: "\n") + "\n")
        #expect(other.status == 0)
        let swapped = try DaemonProcess(root: root, wait: false)
        #expect(swapped.waitForExit() == 2)
        #expect(swapped.log.contains("replaced or altered"), "\(swapped.log)")

        // No store at all (deleted, or emptied), while the checkpoint directory holds the log's
        // checkpoints: a new store would fork the log, so none is created and nothing changes.
        try FileManager.default.removeItem(atPath: root.appending("data"))
        let missing = try DaemonProcess(root: root, wait: false)
        #expect(missing.waitForExit() == 2)
        #expect(missing.log.contains("holds no store") && missing.log.contains("(13 entries)"), "\(missing.log)")
        #expect(!FileManager.default.fileExists(atPath: root.appending("data")))
        try FileManager.default.createDirectory(atPath: root.appending("data"), withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        #expect(FileManager.default.createFile(atPath: root.appending("data/data.mdb"), contents: Data()))
        let emptied = try DaemonProcess(root: root, wait: false)
        #expect(emptied.waitForExit() == 2)
        #expect(emptied.log.contains("holds no store"), "\(emptied.log)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appending("data")) == ["data.mdb"])
        #expect((try FileManager.default.attributesOfItem(atPath: root.appending("data/data.mdb"))[.size] as? Int) == 0)
    }

    @Test("a stale socket file is replaced; a live daemon's socket is not")
    func staleSocket() throws {
        let root = TemporaryDirectory("stele-daemon")
        // Leave a socket file nobody listens on, as a crashed daemon would.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = root.appending("stele.sock")
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(fd)
        #expect(FileManager.default.fileExists(atPath: path))
        let daemon = try DaemonProcess(root: root)
        defer { daemon.stop() }
        let second = try DaemonProcess(root: root, wait: false)
        #expect(second.waitForExit() == 2)
        #expect(second.log.contains("another daemon"), "\(second.log)")
        #expect(try reply(SteleConnection(socketPath: daemon.socket).request(#"{"op":"ping"}"#))["ok"] as? Bool == true)
    }

    @Test("bad configuration, an exposed key and a foreign data directory each stop the daemon with one clear line")
    func startupRefusals() throws {
        let badConfig = try DaemonProcess(config: #"{"peers":[{"uid":"root"}]}"#, wait: false)
        #expect(badConfig.waitForExit() == 2)
        #expect(badConfig.log.contains("bad configuration"))

        let unknownMember = try DaemonProcess(config: #"{"socket_mod":1}"#, wait: false)
        #expect(unknownMember.waitForExit() == 2)
        #expect(unknownMember.log.contains("socket_mod"))

        let root = TemporaryDirectory("stele-daemon")
        #expect(try SteleBinary.run([
            "init", "--data", root.appending("data"), "--key", root.appending("key/signing.key"), "--checkpoints", root.appending("checkpoints"),
        ]).status == 0)
        try FileManager.default.removeItem(atPath: root.appending("key/signing.key"))
        try "not a key".write(toFile: root.appending("key/signing.key"), atomically: true, encoding: .utf8)
        chmod(root.appending("key/signing.key"), 0o600)
        let garbageKey = try DaemonProcess(root: root, wait: false)
        #expect(garbageKey.waitForExit() == 2)
        #expect(garbageKey.log.contains("not an Ed25519"))

        chmod(root.appending("key/signing.key"), 0o644)
        let exposed = try DaemonProcess(root: root, wait: false)
        #expect(exposed.waitForExit() == 2)
        #expect(exposed.log.contains("readable by others"))

        if getuid() == 0 {
            let foreign = TemporaryDirectory("stele-daemon")
            try FileManager.default.createDirectory(atPath: foreign.appending("data"), withIntermediateDirectories: true)
            chown(foreign.appending("data"), 65534, 65534)
            let refused = try DaemonProcess(root: foreign, wait: false)
            #expect(refused.waitForExit() == 2)
            #expect(refused.log.contains("owned by uid 65534"))
        }
    }

    @Test("peers are identified by the kernel: unknown uids are refused, known ones limited to their kinds",
          .enabled(if: getuid() == 0 && setpriv != nil, "needs root and setpriv to connect as another uid"))
    func peerCredentials() throws {
        // The socket is world-writable here so that the kernel lets uid 65534 connect: SO_PEERCRED decides.
        let open = try DaemonProcess(config: #"{"socket_mode":438}"#)
        defer { open.stop() }
        chmod(open.root.path, 0o755)
        let stranger = try runAs(65534, ["append", "--socket", open.socket], input: login("s1") + "\n")
        #expect(stranger.status != 0)
        #expect(stranger.output.contains("unauthorized"), "\(stranger.output)")

        let limited = try DaemonProcess(config: #"{"socket_mode":438,"peers":[{"uid":65534,"source":"mailer","kinds":["processing.*"]},{"uid":0,"source":"root","kinds":["*"]}]}"#)
        defer { limited.stop() }
        chmod(limited.root.path, 0o755)
        let mailer = try runAs(65534, ["append", "--socket", limited.socket], input: login("m1") + "\n"
            + #"{"id":"m2","kind":"processing.performed","subject":"user:1","attrs":{"purpose":"marketing_email"}}"# + "\n")
        let replies = mailer.output.split(separator: "\n").map(String.init)
        #expect(replies.count == 2)
        #expect(try errorCode(replies[0]) == "forbidden_kind")
        #expect(try reply(replies[1])["seq"] as? Int == 1)
        limited.stop()
        let query = try SteleBinary.run(["query", "--data", limited.data])
        #expect(query.output.contains(#"\"source\":\"mailer\""#), "\(query.output)")
    }

    func runAs(_ uid: Int, _ arguments: [String], input: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.setpriv!)
        process.arguments = ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", SteleBinary.path] + arguments
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
