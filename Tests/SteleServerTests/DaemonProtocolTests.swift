import Foundation
import SteleClient
import SteleCore
import SteleCrypto
import SteleTestSupport
import Testing

@Suite("stele serve: protocol, validation, ordering", .serialized)
struct DaemonProtocolTests {
    @Test("pipelined requests get one reply each, in request order, and appends are durable")
    func pipeliningInOrder() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        var lines: [String] = []
        for i in 0..<600 {
            switch i % 6 {
            case 0: lines.append(#"{"op":"ping","id":"p\#(i)"}"#)
            case 1: lines.append(#"{"id":"e\#(i)","kind":"no.such.kind"}"#)
            default: lines.append(login("a\(i)", user: "user:\(i)"))
            }
        }
        try connection.send(bytes: Array(lines.joined(separator: "\n").utf8) + [0x0A])
        var seqs: [Int] = []
        for i in 0..<600 {
            let line = try #require(try connection.receive())
            let object = try reply(line)
            let expectedID = i % 6 == 0 ? "p\(i)" : (i % 6 == 1 ? "e\(i)" : "a\(i)")
            #expect(object["id"] as? String == expectedID, "reply \(i): \(line)")
            #expect((object["ok"] as? Bool) == (i % 6 != 1))
            if let seq = object["seq"] as? Int { seqs.append(seq) }
        }
        #expect(seqs == Array(1...400))
        #expect(daemon.stop() == 0)
        let verify = try SteleBinary.run(["verify", "--data", daemon.data])
        #expect(verify.status == 0, "\(verify.output)")
        let query = try SteleBinary.run(["query", "--data", daemon.data, "--subject", "user:8"])
        #expect(query.output.split(separator: "\n").count == 1)
        #expect(query.output.contains(#""source\":\"root\""#) || query.output.contains("\\\"source\\\""))
    }

    @Test("a client that reads its replies slowly and then half-closes still gets every reply before the close")
    func slowReaderHalfCloseGetsEveryReply() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        let count = 30_000
        let sender = Thread {
            let lines = (0..<count).map { #"{"op":"ping","id":"p\#($0)"}"# }.joined(separator: "\n") + "\n"
            try? connection.send(bytes: Array(lines.utf8))
            connection.finishSending()
        }
        sender.start()
        var replies = 0
        var last = ""
        // Slower than the daemon writes: its replies back up in the socket while the close arrives.
        while let line = try connection.receive() {
            replies += 1
            last = line
            if replies % 500 == 0 { usleep(2_000) }
        }
        #expect(replies == count)
        #expect(last.contains("\"p\(count - 1)\""))
    }

    static let badRequests: [(String, String)] = [
        ("not json", "malformed_json"),
        ("", "malformed_json"),
        ("  \t ", "malformed_json"),
        (#"{"kind":"login.succeeded","attrs":{"x":1.5}}"#, "malformed_json"),
        (#"{"kind":"login.succeeded","kind":"logout"}"#, "malformed_json"),
        (#"[1,2]"#, "not_an_object"),
        (#"{"op":"delete"}"#, "unknown_op"),
        (#"{"op":7}"#, "invalid_field"),
        (#"{"actor":"user:1"}"#, "missing_field"),
        (#"{"kind":"admin.action","attrs":{"action":"x"}}"#, "missing_field"),
        (#"{"kind":5}"#, "invalid_field"),
        (#"{"kind":"login.succeeded","attrs":[]}"#, "invalid_field"),
        (#"{"kind":"login.succeeded","attrs":{"ip":7}}"#, "invalid_field"),
        (#"{"kind":"login.succeeded","attrs":{"favourite_colour":"blue"}}"#, "invalid_field"),
        (#"{"kind":"login.succeeded","attrs":{"subject":"user:2"}}"#, "invalid_field"),
        (#"{"kind":"login.succeeded","source":"forged"}"#, "invalid_field"),
        (#"{"kind":"login.succeeded","occurred":"yesterday"}"#, "invalid_field"),
        (#"{"kind":"data.changed","attrs":{"entity":"e","fields":["a"],"op":"explode"}}"#, "invalid_field"),
        (#"{"kind":"login.succeeded","receipt":"yes"}"#, "invalid_field"),
        (#"{"kind":"consent.granted","actor":"user:1","attrs":{"purpose":"marketing.email","notice":"n","method":"checkbox"}}"#, "missing_field"),
        (#"{"kind":"admin.action","subject":"user:1","attrs":{"action":"x","target":"y"}}"#, "missing_field"),
        (#"{"kind":"made.up"}"#, "unknown_kind"),
        (#"{"kind":"ledger.prune"}"#, "forbidden_kind"),
        (#"{"kind":"login.succeeded","subject":"user 1"}"#, "invalid_identifier"),
        (#"{"kind":"login.succeeded","actor":""}"#, "invalid_identifier"),
        (#"{"kind":"login.succeeded","actor":"usér:1"}"#, "invalid_identifier"),
        (#"{"kind":"login.succeeded","id":7}"#, "invalid_identifier"),
        (#"{"kind":"login.succeeded","subject":"\#(String(repeating: "x", count: 129))"}"#, "invalid_identifier"),
        (#"{"kind":"consent.granted","attrs":{"purpose":"p","notice":"n","method":"m","evidence":\#(String(repeating: "[", count: 12))1\#(String(repeating: "]", count: 12))}}"#, "too_large"),
        (#"{"kind":"login.succeeded","attrs":{"reason":"\#(String(repeating: "r", count: 5000))"}}"#, "too_large"),
    ]

    @Test("every validation error has its code, appends nothing, and leaves the connection usable")
    func validationErrors() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        for (line, code) in Self.badRequests {
            let answer = try connection.request(line)
            #expect(try errorCode(answer) == code, "\(line.prefix(80)) → \(answer)")
        }
        // Oversized line: 70 KB without a newline until the end.
        let huge = #"{"kind":"logout","attrs":{"reason":""# + String(repeating: "z", count: 70_000) + #""}}"#
        #expect(try errorCode(connection.request(huge)) == "line_too_long")
        #expect(try reply(connection.request(#"{"op":"ping"}"#))["ok"] as? Bool == true)
        let stats = try reply(connection.request(#"{"op":"stats"}"#))["stats"] as! [String: Any]
        #expect(stats["tree_size"] as? Int == 1)  // the daemon's ledger.started alone
        // A valid append still works on the same connection.
        #expect(try reply(connection.request(login("ok-1")))["seq"] as? Int == 1)
    }

    @Test("a retry after a dropped connection returns the original seq; a reused id with another event is refused")
    func idempotentRetry() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        var first: [String: Any]
        do {
            let connection = try SteleConnection(socketPath: daemon.socket)
            _ = try connection.request(login("warmup"))
            first = try reply(connection.request(login("retry-me")))
        }
        let again = try SteleConnection(socketPath: daemon.socket)
        let second = try reply(again.request(login("retry-me")))
        #expect(second["seq"] as? Int == first["seq"] as? Int)
        #expect(second["leaf"] as? String == first["leaf"] as? String)
        #expect(second["duplicate"] as? Bool == true)
        #expect(try errorCode(again.request(login("retry-me", user: "user:2"))) == "idempotency_conflict")
    }

    @Test("op checkpoint returns a note that verifies with the log's verifier key")
    func checkpointVerifies() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        let receipt = try reply(connection.request(login("c1").replacingOccurrences(of: "}}", with: #"},"receipt":true}"#)))
        let header = try #require(receipt["header"] as? String)
        #expect(Base64.encode(MerkleHasher().leafHash(Array(header.utf8)).bytes) == receipt["leaf"] as? String)
        var note: String?
        // The first checkpoint covers the daemon's ledger.started alone; the next one the append too.
        for _ in 0..<100 where note?.hasPrefix("stele.test/daemon\n2\n") != true {
            note = try reply(connection.request(#"{"op":"checkpoint"}"#))["checkpoint"] as? String
            if note?.hasPrefix("stele.test/daemon\n2\n") != true { usleep(50_000) }
        }
        let text = try #require(note)
        let keyShow = try SteleBinary.run(["key", "show", "--json", "--data", daemon.data, "--key", daemon.key])
        let verifierText = try #require(try JSONSerialization.jsonObject(with: Data(keyShow.output.utf8)) as? [String: Any])["verifier_key"] as! String
        let verifier = try NoteVerifierKey(parsing: verifierText)
        let checkpoint = try Checkpoint.open(Array(text.utf8), trusting: [verifier], origin: "stele.test/daemon")
        let started = try reply(String(SteleBinary.run(["query", "--data", daemon.data, "--kind", "ledger.started"]).output.split(separator: "\n")[0]))
        let startedHeader = try #require(started["header_text"] as? String)
        let hasher = MerkleHasher()
        #expect(checkpoint.size == 2)
        #expect(checkpoint.rootHash == hasher.nodeHash(hasher.leafHash(Array(startedHeader.utf8)), hasher.leafHash(Array(header.utf8))))
        // The same note is written to the checkpoint directory outside the data directory (by a
        // background queue, so it may land a moment after the store has it).
        var latest: String?
        for _ in 0..<100 where latest != text {
            latest = try? String(contentsOfFile: daemon.checkpoints + "/latest", encoding: .utf8)
            if latest != text { usleep(50_000) }
        }
        #expect(latest == text)
        let mode = try FileManager.default.attributesOfItem(atPath: daemon.key)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let socketMode = try FileManager.default.attributesOfItem(atPath: daemon.socket)[.posixPermissions] as? Int
        #expect(socketMode == 0o660)
    }
}

@Suite("stele serve: bounds", .serialized)
struct DaemonBoundsTests {
    @Test("a source over its rate gets rate_limited; appends within it succeed")
    func rateLimit() throws {
        let daemon = try DaemonProcess(config: #"{"rate_per_source":5}"#)
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        let lines = (0..<30).map { login("rl\($0)") }
        try connection.send(bytes: Array(lines.joined(separator: "\n").utf8) + [0x0A])
        var codes: [String] = []
        for _ in 0..<30 {
            let answer = try #require(try connection.receive())
            codes.append(try errorCode(answer) ?? "ok")
        }
        // The bucket starts with two seconds' worth (10) of tokens.
        #expect(codes.prefix(10).allSatisfy { $0 == "ok" })
        #expect(codes.contains("rate_limited"))
        #expect(Set(codes).isSubset(of: ["ok", "rate_limited"]))
    }

    @Test("connections beyond the limit are refused with too_many_connections")
    func connectionLimit() throws {
        let daemon = try DaemonProcess(config: #"{"max_connections":2}"#)
        defer { daemon.stop() }
        // The readiness probe closed its connection, but the daemon may not have seen that yet and
        // still count it: until it has, a new connection can be refused. Connect until admitted.
        func admitted() throws -> SteleConnection? {
            for _ in 0..<250 {
                let connection = try SteleConnection(socketPath: daemon.socket)
                if try reply(connection.request(#"{"op":"ping"}"#))["ok"] as? Bool == true { return connection }
                usleep(20_000)
            }
            return nil
        }
        let first = try #require(try admitted())
        let second = try #require(try admitted())
        #expect(try reply(first.request(#"{"op":"ping"}"#))["ok"] as? Bool == true)
        #expect(try reply(second.request(#"{"op":"ping"}"#))["ok"] as? Bool == true)
        let third = try SteleConnection(socketPath: daemon.socket)
        let refusal = try #require(try third.receive())
        #expect(try errorCode(refusal) == "too_many_connections")
        #expect(try third.receive() == nil)
    }

    @Test("a client that does not read its replies is not buffered without bound: the daemon stops reading, then resumes")
    func unreadRepliesStopReading() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        let total = 100_000
        // Long ids, so the kernel's socket buffers hold only a few thousand of these lines.
        let padding = String(repeating: "x", count: 90)
        let sent = SentCounter()
        let sender = Thread {
            for chunk in stride(from: 0, to: total, by: 1000) {
                let lines = (chunk..<chunk + 1000).map { #"{"op":"ping","id":"p\#($0)\#(padding)"}"# }.joined(separator: "\n") + "\n"
                guard (try? connection.send(bytes: Array(lines.utf8))) != nil else { return }
                sent.add(1000)
            }
        }
        sender.start()
        // Wait until the sender stops making progress (it is blocked on a full socket).
        var last = -1
        for _ in 0..<300 {
            Thread.sleep(forTimeInterval: 0.5)
            let now = sent.value
            if now == last { break }
            last = now
        }
        // 12 MB of requests were offered; the daemon took only what its bounds allow.
        #expect(sent.value < total / 4, "the daemon kept reading while its replies were not read")
        // Reading the replies lets everything through, in order.
        var replies = 0
        var lastID: String?
        while replies < total, let line = try connection.receive() {
            let object = try reply(line)
            #expect(object["ok"] as? Bool == true)
            lastID = object["id"] as? String
            replies += 1
        }
        #expect(replies == total && lastID == "p\(total - 1)\(padding)")
    }

    @Test("requests trickled one write at a time while appends are in flight are all read and answered, in order")
    func trickledRequestsAreAnsweredInOrder() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        let total = 400
        let ids = (0..<total).map { $0 % 5 == 0 ? "p\($0)" : "t\($0)" }
        // Each line its own write, a little apart: the daemon reads them in small bursts, and holds
        // further reads until a burst's appends are answered. A read that never resumed would leave
        // the rest unanswered: the watchdog then ends the wait and the count below fails.
        let sender = Thread {
            for (i, id) in ids.enumerated() {
                let line = i % 5 == 0 ? #"{"op":"ping","id":"\#(id)"}"# : login(id, user: "user:\(i % 7)")
                guard (try? connection.send(line)) != nil else { return }
                usleep(UInt32(i % 3 == 0 ? 0 : 200))
            }
        }
        let finished = SentCounter()
        let watchdog = Thread {
            for _ in 0..<600 where finished.value == 0 { usleep(50_000) }
            if finished.value == 0 { shutdown(connection.descriptor, Int32(SHUT_RDWR)) }
        }
        sender.start()
        watchdog.start()
        var seqs: [Int] = []
        var answered: [String] = []
        while answered.count < total, let line = try connection.receive() {
            let object = try reply(line)
            #expect(object["ok"] as? Bool == true, "\(line)")
            answered.append(object["id"] as? String ?? "")
            if let seq = object["seq"] as? Int { seqs.append(seq) }
        }
        finished.add(1)
        try #require(answered.count == total, "\(answered.count) of \(total) requests answered")
        #expect(answered == ids)
        #expect(seqs == Array(1...(total - total / 5)))
    }

    @Test("an idle connection is closed after the idle timeout")
    func idleTimeout() throws {
        let daemon = try DaemonProcess(config: #"{"idle_timeout_seconds":1}"#)
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        #expect(try reply(connection.request(#"{"op":"ping"}"#))["ok"] as? Bool == true)
        let start = Date()
        #expect(try connection.receive() == nil)
        #expect(Date().timeIntervalSince(start) < 10)
    }
}

@Suite("stele serve: hostile input", .serialized)
struct DaemonHostileInputTests {
    @Test("random bytes, NULs, invalid UTF-8 and half lines get error replies; the daemon keeps serving")
    func randomGarbage() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        var generator = SystemRandomNumberGenerator()
        var payload: [UInt8] = []
        let lines = 2000
        for _ in 0..<lines {
            let length = Int.random(in: 1...300, using: &generator)
            payload += (0..<length).map { _ in
                var byte = UInt8.random(in: 0...255, using: &generator)
                if byte == 0x0A { byte = 0x00 }
                return byte
            }
            payload.append(0x0A)
        }
        try connection.send(bytes: payload)
        for _ in 0..<lines {
            let line = try #require(try connection.receive())
            #expect(try reply(line)["ok"] as? Bool == false)
        }
        // Half a line, then the client closes: the fragment is still answered.
        try connection.send(bytes: Array(#"{"kind":"login.succe"#.utf8))
        connection.finishSending()
        #expect(try errorCode(#require(try connection.receive())) == "malformed_json")
        let fresh = try SteleConnection(socketPath: daemon.socket)
        #expect(try reply(fresh.request(#"{"op":"ping"}"#))["ok"] as? Bool == true)
        #expect(try reply(fresh.request(#"{"op":"stats"}"#))["stats"].map { ($0 as! [String: Any])["tree_size"] as? Int } == 1)
    }
}

/// A counter shared between a sender thread and the test.
final class SentCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add(_ n: Int) { lock.withLock { count += n } }
    var value: Int { lock.withLock { count } }
}
