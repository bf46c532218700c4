import Foundation
import SteleClient
import SteleCore
import SteleCrypto
import SteleTestSupport
import Testing

/// The crash drill: the same daemon killed again and again under pipelined load, then every
/// acknowledgement checked against the store. `STELE_DRILL_ROUNDS` sets the rounds (default 8;
/// the release drill runs 75).
@Suite("Crash drill: repeated SIGKILL under load")
struct CrashDrillTests {
    @Test("every acknowledged entry is stored exactly once, at its acknowledged seq with its acknowledged leaf; nothing is duplicated")
    func repeatedKills() throws {
        let rounds = Int(ProcessInfo.processInfo.environment["STELE_DRILL_ROUNDS"] ?? "") ?? 8
        let root = TemporaryDirectory("stele-daemon")
        var acknowledged: [String: (seq: Int, leaf: String)] = [:]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<rounds {
            let daemon = try DaemonProcess(root: root)
            let connection = try SteleConnection(socketPath: daemon.socket)
            let ids = (0..<4000).map { "d\(round)-\($0)" }
            let payload = Array(ids.map { login($0, user: "user:\($0.hashValue & 63)") + "\n" }.joined().utf8)
            let sender = Thread { try? connection.send(bytes: payload) }
            sender.start()
            let killAt = Int.random(in: 50...3000, using: &generator)
            let replies = ReplyReader(connection)
            var index = 0
            while let line = try replies.next() {
                let object = try reply(line)
                guard object["ok"] as? Bool == true, let seq = object["seq"] as? Int, let leaf = object["leaf"] as? String else {
                    Issue.record("round \(round): unexpected reply \(line)")
                    break
                }
                acknowledged[ids[index]] = (seq, leaf)
                index += 1
                if index == killAt { kill(daemon.process.processIdentifier, SIGKILL) }
            }
            daemon.process.waitUntilExit()
            while !sender.isFinished { usleep(1000) }
        }
        #expect(acknowledged.count > rounds * 50)

        // Read back every entry: each acknowledged id exactly once, where and as acknowledged.
        let query = try SteleBinary.run(["query", "--data", root.appending("data"), "--reason", "test: every acknowledged id"])
        #expect(query.status == 0)
        var stored: [String: [(seq: Int, leaf: String)]] = [:]
        var starts = 0
        for line in query.output.split(separator: "\n") {
            let object = try reply(String(line))
            let header = try #require(object["header_text"] as? String)
            let body = try #require(object["body"] as? [String: Any])
            guard let id = body["id"] as? String else {
                // Only the daemon's own ledger.started entries (killed, it never records a stop) lack an id.
                #expect(header.contains("ledger.started"), "\(header)")
                starts += 1
                continue
            }
            stored[id, default: []].append((try #require(object["seq"] as? Int), Base64.encode(MerkleHasher().leafHash(Array(header.utf8)).bytes)))
        }
        var lost = 0
        var moved = 0
        for (id, ack) in acknowledged {
            guard let copies = stored[id], let copy = copies.first else {
                lost += 1
                continue
            }
            if copy.seq != ack.seq || copy.leaf != ack.leaf { moved += 1 }
        }
        let duplicated = stored.values.filter { $0.count > 1 }.count
        #expect(lost == 0 && moved == 0 && duplicated == 0, "\(rounds) kills, \(acknowledged.count) acknowledged: \(lost) lost, \(moved) at another seq, \(duplicated) duplicated")
        #expect(starts == rounds)
        let verify = try SteleBinary.run(["verify", "--json", "--data", root.appending("data")])
        #expect(verify.status == 0, "\(verify.output)")
        // Every start but the first follows a kill: each is listed as an unclean stop.
        let report = try JSONSerialization.jsonObject(with: Data(verify.output.utf8)) as? [String: Any]
        #expect((report?["unclean_stops"] as? [Any])?.count == rounds - 1, "\(verify.output)")
    }
}
