import Foundation
import SteleClient
import SteleCore
import SteleCrypto
import SteleTestSupport
import Synchronization
import Testing

@Suite("stele serve: appends acknowledged from the journal")
struct DaemonJournalTests {
    @Test("SIGKILL with clients waiting on each reply: every acknowledged entry is in the store, for read-only tools before any restart")
    func sigkillKeepsJournaledAcknowledgements() throws {
        // Batches are answered from the journal; the store thread commits them at most every 600 s
        // here, so after its first round every acknowledged entry is in the journal only.
        let daemon = try DaemonProcess(config: #"{"store_commit_interval_ms": 600000}"#)
        let acknowledged = Mutex<[Int: String]>([:])
        let socket = daemon.socket
        let clients = (0..<6).map { client in
            Thread {
                guard let connection = try? SteleConnection(socketPath: socket) else { return }
                for n in 0..<100_000 {
                    guard let line = try? connection.request(login("w\(client)-\(n)", user: "user:\(n % 31)")),
                        let object = try? reply(line), object["ok"] as? Bool == true,
                        let seq = object["seq"] as? Int, let leaf = object["leaf"] as? String
                    else { return }
                    acknowledged.withLock { $0[seq] = leaf }
                }
            }
        }
        clients.forEach { $0.start() }
        while acknowledged.withLock({ $0.count }) < 500 { usleep(1000) }
        kill(daemon.process.processIdentifier, SIGKILL)
        daemon.process.waitUntilExit()
        usleep(200_000)  // the clients see the connection close
        // Acknowledged seqs may have gaps: the kill can fall between the replies of one batch's
        // connections. What must hold is that every acknowledged entry is stored, as acknowledged.
        let acks = acknowledged.withLock { $0 }
        #expect(acks.count >= 500)

        // Read-only tools first: they find every acknowledged entry, exactly as acknowledged.
        let query = try SteleBinary.run(["query", "--data", daemon.data])
        #expect(query.status == 0, "\(query.output)")
        var stored: [Int: String] = [:]
        for line in query.output.split(separator: "\n") {
            let object = try reply(String(line))
            let header = try #require(object["header_text"] as? String)
            stored[try #require(object["seq"] as? Int)] = Base64.encode(MerkleHasher().leafHash(Array(header.utf8)).bytes)
        }
        let missing = acks.filter { stored[$0.key] != $0.value }.map(\.key).sorted()
        #expect(missing.isEmpty, "acknowledged but not stored as acknowledged: \(missing.prefix(10))")
        #expect(Set(stored.keys) == Set(0..<stored.count), "stored seqs have gaps")
        let verify = try SteleBinary.run(["verify", "--data", daemon.data])
        #expect(verify.status == 0, "\(verify.output)")

        // The restarted daemon continues the chain after them.
        let restarted = try DaemonProcess(root: daemon.root, config: #"{"store_commit_interval_ms": 600000}"#)
        let connection = try SteleConnection(socketPath: restarted.socket)
        let next = try reply(connection.request(login("after-restart")))
        #expect(next["seq"] as? Int == stored.count + 1, "\(next)")
        #expect(restarted.stop() == 0)
        #expect(try SteleBinary.run(["verify", "--data", daemon.data]).status == 0)
    }

    @Test("a read-only tool started after an acknowledgement sees that entry, though the store commits it later")
    func toolsSeeWhatWasAcknowledged() throws {
        // The store commits at most every 1.5 s: without waiting, a query right after a reply would
        // find the store without that entry.
        let daemon = try DaemonProcess(config: #"{"store_commit_interval_ms": 1500}"#)
        try appendQueryingAfterEach(daemon, count: 2, user: "user:8")
        #expect(daemon.stop() == 0)

        // A store that will not commit for ten minutes: the tool waits 3 s, then says what is missing.
        let slow = try DaemonProcess(config: #"{"store_commit_interval_ms": 600000}"#)
        let first = try SteleConnection(socketPath: slow.socket)
        _ = try first.request(login("first", user: "user:9"))
        #expect(try reply(first.request(login("held", user: "user:9")))["ok"] as? Bool == true)
        let query = try SteleBinary.runKeepingErrors(["query", "--data", slow.data, "--subject", "user:9"])
        #expect(query.status == 0)
        #expect(query.output.isEmpty, "\(query.output)")  // the store's first commit, too, waits for the interval
        #expect(query.errors.contains("acknowledged 2 entries its store has not committed yet"), "\(query.errors)")
        #expect(slow.stop() == 0)
    }

    /// Appends `count` logins of `user` to a fresh daemon one at a time; after each reply, `stele query`
    /// for that user must list every entry acknowledged so far.
    private func appendQueryingAfterEach(_ daemon: DaemonProcess, count: Int, user: String) throws {
        let connection = try SteleConnection(socketPath: daemon.socket)
        for n in 0..<count {
            let answer = try reply(connection.request(login("\(user)-\(n)", user: user)))
            #expect(answer["ok"] as? Bool == true && answer["seq"] as? Int == n + 1, "\(answer)")
            let query = try SteleBinary.run(["query", "--data", daemon.data, "--subject", user])
            #expect(query.output.split(separator: "\n").count == n + 1, "\(query.output)")
        }
    }

    @Test("clients waiting for each reply each get every answer, each with its own place in the log")
    func waitingClientsGetEveryAnswer() throws {
        for poll in [0, 1] {
            let daemon = try DaemonProcess(config: #"{"store_commit_interval_ms": \#(poll)}"#)
            let seqs = Mutex<[Int]>([])
            let socket = daemon.socket
            let clients = (0..<4).map { client in
                Thread {
                    guard let connection = try? SteleConnection(socketPath: socket) else { return }
                    for n in 0..<25 {
                        guard let line = try? connection.request(login("poll\(poll)-\(client)-\(n)")),
                            let answer = try? reply(line), answer["ok"] as? Bool == true, let seq = answer["seq"] as? Int
                        else { return }
                        seqs.withLock { $0.append(seq) }
                    }
                }
            }
            clients.forEach { $0.start() }
            let deadline = Date().addingTimeInterval(30)
            while clients.contains(where: { !$0.isFinished }) && Date() < deadline { usleep(10_000) }
            // Every request answered once, each with its own place in the log.
            #expect(seqs.withLock { $0.sorted() } == Array(1...100), "store_commit_interval_ms \(poll)")
            #expect(daemon.stop() == 0)
            #expect(try SteleBinary.run(["verify", "--data", daemon.data]).status == 0)
        }
        // The writer's poll and the journal-off mode are gone: their members are refused by name.
        for member in [#""writer_poll_us": 100"#, #""journal": false"#] {
            let bad = try DaemonProcess(config: "{\(member)}", wait: false)
            #expect(bad.waitForExit() == 2)
            #expect(bad.log.contains("unknown configuration member"), "\(bad.log)")
        }
    }

    @Test("stats report store commits apart from the latency of answering batches, and each append's acknowledgement latency")
    func storeCommitStats() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        for n in 0..<5 { _ = try connection.request(login("stats\(n)")) }
        usleep(100_000)  // the store has committed them (store_commit_interval_ms is 10)
        let stats = try #require(try reply(connection.request(#"{"op":"stats"}"#))["stats"] as? [String: Any])
        #expect(stats["appends"] as? Int == 5)
        let commits = try #require(stats["store_commits"] as? Int)
        #expect(commits >= 1 && commits <= 5)
        let batches = try #require(stats["commit_us"] as? [String: Any])
        let store = try #require(stats["store_commit_us"] as? [String: Any])
        #expect(batches["samples"] as? Int == stats["batches"] as? Int)
        #expect(store["samples"] as? Int == commits)
        #expect(stats["tree_size"] as? Int == 6)
        // One acknowledgement latency per append, each at least the batch's durable write.
        let acks = try #require(stats["ack_us"] as? [String: Any])
        #expect(acks["samples"] as? Int == 5)
        let ackP50 = try #require(acks["p50"] as? Int), ackMax = try #require(acks["p999"] as? Int)
        let commitP50 = try #require(batches["p50"] as? Int)
        #expect(ackP50 >= 0 && ackP50 <= ackMax)
        #expect(ackMax >= commitP50, "ack_us \(acks), commit_us \(batches)")
    }

    @Test("while the daemon runs it is the only one appending: ingest refuses and changes nothing; checkpoint --sign still works")
    func otherWritersRefusedWhileServing() throws {
        let daemon = try DaemonProcess()
        let connection = try SteleConnection(socketPath: daemon.socket)
        for n in 0..<3 { _ = try connection.request(login("only\(n)")) }
        let ingest = try SteleBinary.run(["ingest", "--data", daemon.data], input: login("beside") + "\n")
        #expect(ingest.status == 2 && ingest.output.isEmpty, "\(ingest.output)")
        let sign = try SteleBinary.run(["checkpoint", "--sign", "--data", daemon.data, "--key", daemon.key, "--checkpoints", daemon.checkpoints])
        #expect(sign.status == 0 && sign.output.contains("\n4\n"), "\(sign.output)")  // signs the committed size
        #expect(daemon.stop() == 0)
        // Nothing but the daemon's start, three appends and stop; once it has stopped, ingest works again.
        let verify = try SteleBinary.run(["verify", "--json", "--data", daemon.data])
        #expect(verify.output.contains("\"tree_size\":5"), "\(verify.output)")
        #expect(try SteleBinary.run(["ingest", "--data", daemon.data], input: login("after") + "\n").status == 0)
    }

    @Test("when the journal fills before the store's next commit is due, the store commits at once and no append waits or fails")
    func fullJournalHurriesTheStore() throws {
        let root = TemporaryDirectory("stele-daemon")
        // A 64 KiB journal: its regions fill after a few dozen appends, long before the 600 s interval.
        try FileManager.default.createDirectory(atPath: root.appending("data"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try #require(FileManager.default.createFile(atPath: root.appending("data/journal"), contents: Data(count: 64 << 10)))
        let daemon = try DaemonProcess(root: root, config: #"{"store_commit_interval_ms": 600000}"#)
        let connection = try SteleConnection(socketPath: daemon.socket)
        for n in 0..<400 {
            let answer = try reply(connection.request(login("fill\(n)")))
            #expect(answer["ok"] as? Bool == true && answer["seq"] as? Int == n + 1, "\(answer)")
        }
        let stats = try #require(try reply(connection.request(#"{"op":"stats"}"#))["stats"] as? [String: Any])
        #expect((stats["store_commits"] as? Int ?? 0) >= 4, "\(stats)")
        let journal = root.appending("data/journal")
        let regionStarts = { () throws -> [Data] in
            let bytes = try Data(contentsOf: URL(fileURLWithPath: journal))
            return [bytes[0..<4], bytes[(bytes.count / 2 & ~4095)..<(bytes.count / 2 & ~4095) + 4]]
        }
        #expect(try regionStarts().contains(Data("SJR2".utf8)))  // records in use while serving
        #expect(daemon.stop() == 0)
        // A clean stop leaves the journal empty: nothing for later writers or tools to check.
        #expect(try regionStarts().allSatisfy { $0 == Data(count: 4) })
        let verify = try SteleBinary.run(["verify", "--json", "--data", daemon.data])
        #expect(verify.status == 0 && verify.output.contains("\"tree_size\":402"), "\(verify.output)")
    }
}
