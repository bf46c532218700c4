import Foundation
import SteleClient
import SteleTestSupport
import Testing

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
            let replies = ReplyReader(connection)
            let line = try replies.next()
            #expect(try errorCode(line ?? "") == "line_timeout", "\(String(describing: line))")
            _ = try? replies.next()  // then the daemon closes it
        }
        // The slots are released as the daemon closes those connections: a new client is served
        // (its first attempt may still meet the last close under way).
        var served: String?
        for _ in 0..<50 where served == nil {
            served = try? SteleConnection(socketPath: daemon.socket).request(#"{"op":"ping"}"#)
            if served == nil || served?.contains("too_many_connections") == true {
                served = nil
                usleep(50_000)
            }
        }
        #expect(try reply(served ?? "")["ok"] as? Bool == true)
        #expect(daemon.stop() == 0)
    }

    @Test("a daemon's start is signed at once: op checkpoint right after start covers its ledger.started, with no append")
    func startIsCheckpointed() throws {
        let daemon = try DaemonProcess(config: #"{"store_commit_interval_ms": 600000}"#)
        let line = try SteleConnection(socketPath: daemon.socket).request(#"{"op":"checkpoint","id":"c"}"#)
        let note = try #require(try reply(line)["checkpoint"] as? String, "\(line)")
        #expect(note.hasPrefix("stele.test/daemon\n1\n"), "\(note)")
        #expect(daemon.stop() == 0)
        let query = try SteleBinary.run(["query", "--data", daemon.data])
        let kinds = query.output.split(separator: "\n").compactMap { try? reply(String($0))["header_text"] as? String }
        #expect(kinds.count == 2 && kinds[0].contains("ledger.started") && kinds[1].contains("ledger.stopped"), "\(query.output)")
    }
}
