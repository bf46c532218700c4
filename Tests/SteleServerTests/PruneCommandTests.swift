import Foundation
import SteleClient
import SteleStore
import SteleTestSupport
import Synchronization
import Testing

/// `stele prune` and `stele retention report` as operators run them: through a live daemon, or
/// directly; killed mid-run; refused when they must be (`Specs/retention.md`).
@Suite("stele prune: through the daemon, directly, killed", .serialized)
struct PruneCommandTests {
    static let future = "2028-01-01T00:00:00Z"

    /// A test-mode store of `count` logins (kept 365 days) in `root/data`, and a signing key for a daemon.
    static func testModeStore(_ root: TemporaryDirectory, count: Int) throws {
        let input = (0..<count).map { #"{"kind":"login.succeeded","subject":"user:\#($0 % 97)","actor":"user:\#($0 % 97)","attrs":{"ip":"198.51.100.\#($0 % 200)"}}"# }
            .joined(separator: "\n") + "\n"
        let ingest = try SteleBinary.run(["ingest", "--data", root.appending("data"), "--origin", "stele.test/daemon", "--test-mode", "--batch", "5000"], input: input)
        #expect(ingest.status == 0)
        _ = try SigningKeyFile.loadOrCreate(root.appending("key/signing.key"))
    }

    @Test("an operator prunes through a live daemon while another connection keeps appending; every append is acknowledged and the ledger stays lawful")
    func pruneThroughDaemonUnderLoad() throws {
        let root = TemporaryDirectory("stele-daemon")
        try Self.testModeStore(root, count: 3000)
        let daemon = try DaemonProcess(root: root)
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        let stop = Atomic(false)
        nonisolated(unsafe) var acknowledged = 0
        nonisolated(unsafe) var failures: [String] = []
        let appender = Thread {
            var n = 0
            while !stop.load(ordering: .relaxed) {
                let batch = (0..<50).map { login("load-\(n + $0)", user: "user:\($0)") }.joined(separator: "\n") + "\n"
                n += 50
                guard (try? connection.send(bytes: Array(batch.utf8))) != nil else { failures.append("send failed"); return }
                for _ in 0..<50 {
                    guard let line = try? connection.receive() else { failures.append("no reply"); return }
                    if line.contains(#""ok":true"#) { acknowledged += 1 } else { failures.append(line) }
                }
            }
        }
        appender.start()
        usleep(200_000)
        let prune = try SteleBinary.run(["prune", "--data", daemon.data, "--socket", daemon.socket, "--now", Self.future, "--request", "T-77", "--reason", "annual retention", "--json"])
        usleep(200_000)
        stop.store(true, ordering: .relaxed)
        while !appender.isFinished { usleep(1000) }
        #expect(prune.status == 0, "\(prune.output)")
        let report = try JSONSerialization.jsonObject(with: Data(prune.output.utf8)) as? [String: Any]
        #expect((report?["pruned"] as? Int ?? 0) >= 3000)
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        #expect(acknowledged > 0)
        #expect(daemon.stop() == 0)
        #expect(try SteleBinary.run(["verify", "--data", daemon.data]).status == 0)
        let lawful = try SteleBinary.run(["retention", "report", "--data", daemon.data, "--now", Self.future])
        #expect(lawful.status == 0, "\(lawful.output)")
        // The receipts record who ran it and why.
        let receipts = try SteleBinary.run(["query", "--data", daemon.data, "--kind", "ledger.pruned", "--reason", "test: the receipts"]).output
        #expect(receipts.contains(#""request":"T-77""#) && receipts.contains(#""actor":"uid:\#(getuid())""#))
    }

    @Test("a peer that is not an operator may not prune; a cutoff in the future is refused on a normal store, with or without a daemon")
    func refusals() throws {
        let daemon = try DaemonProcess(config: #"{"peers": [{"uid": \#(getuid()), "source": "svc", "kinds": ["*"]}]}"#)
        let connection = try SteleConnection(socketPath: daemon.socket)
        #expect(try errorCode(try connection.request(#"{"op":"prune","request":"T-1","reason":"r"}"#)) == "not_operator")
        #expect(try errorCode(try connection.request(#"{"op":"prune","reason":"r"}"#)) == "missing_field")
        let refused = try SteleBinary.runKeepingErrors(["prune", "--data", daemon.data, "--socket", daemon.socket, "--request", "T-1", "--reason", "r"])
        #expect(refused.status == 2 && refused.errors.contains("not an operator"), "\(refused.errors)")
        #expect(daemon.stop() == 0)

        let operatorDaemon = try DaemonProcess()
        let future = try SteleBinary.runKeepingErrors(["prune", "--data", operatorDaemon.data, "--socket", operatorDaemon.socket, "--now", "2099-01-01T00:00:00Z", "--request", "T-2", "--reason", "r"])
        #expect(future.status == 2 && future.errors.contains("later than the clock"), "\(future.errors)")
        #expect(operatorDaemon.stop() == 0)
        let direct = try SteleBinary.runKeepingErrors(["prune", "--data", operatorDaemon.data, "--now", "2099-01-01T00:00:00Z", "--request", "T-3", "--reason", "r"])
        #expect(direct.status == 2 && direct.errors.contains("later than the clock"), "\(direct.errors)")
        #expect(try SteleBinary.run(["query", "--data", operatorDaemon.data, "--kind", "ledger.pruned"]).output.isEmpty)
    }

    @Test("a prune killed with SIGKILL between batches leaves whole batches with their receipts; a rerun finishes the job")
    func killedMidRun() throws {
        let root = TemporaryDirectory("stele-prune")
        try Self.testModeStore(root, count: 20_000)
        let data = root.appending("data")
        let (process, _, _) = try SteleBinary.start(["prune", "--data", data, "--now", Self.future, "--batch", "20", "--request", "T-5", "--reason", "r"])
        // Killed once its first receipts are committed, long before its last.
        var receipts = 0
        for _ in 0..<2000 where receipts < 3 {
            usleep(5_000)
            receipts = try SteleBinary.run(["query", "--data", data, "--kind", "ledger.pruned"]).output.split(separator: "\n").count
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(receipts >= 3)
        let partial = try SteleBinary.run(["retention", "report", "--data", data, "--now", Self.future])
        #expect(partial.status == 1 && partial.output.contains("overdue"), "killed mid-run: entries left to prune")
        #expect(!partial.output.contains("unexplained") && !partial.output.contains("invalid_receipt"), "\(partial.output.prefix(500))")
        let rerun = try SteleBinary.run(["prune", "--data", data, "--now", Self.future, "--request", "T-5", "--reason", "r", "--json"])
        #expect(rerun.status == 0, "\(rerun.output)")
        #expect(try SteleBinary.run(["verify", "--data", data]).status == 0)
        #expect(try SteleBinary.run(["retention", "report", "--data", data, "--now", Self.future]).status == 0)
        let again = try SteleBinary.run(["prune", "--data", data, "--now", Self.future, "--request", "T-5", "--reason", "r"])
        #expect(again.output.hasPrefix("nothing to prune"))
    }

    @Test("an operator erases an account through the daemon, and the daemon carries out an account.erased the platform appends; holds through the daemon too")
    func erasureThroughDaemon() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        for user in ["user:9", "user:10", "user:11"] {
            _ = try connection.request(login("l-\(user)", user: user))
            _ = try connection.request(#"{"kind":"billing.transaction","subject":"\#(user)","attrs":{"amount":100}}"#)
        }
        let hold = try SteleBinary.run(["hold", "place", "--data", daemon.data, "--socket", daemon.socket, "--subject", "user:11", "--request", "COURT-3", "--reason", "order"])
        #expect(hold.status == 0 && hold.output.contains("placed"), "\(hold.output)")
        let erase = try SteleBinary.run(["erase", "user:9", "--data", daemon.data, "--socket", daemon.socket, "--request", "DSR-1", "--reason", "verified", "--json"])
        #expect(erase.status == 0, "\(erase.output)")
        #expect(erase.output.contains(#""erased":{"security":1}"#) && erase.output.contains(#""kept":{"billing":1}"#))
        // The platform records erasures of its own; the daemon carries them out once durable.
        for user in ["user:10", "user:11"] {
            #expect(try reply(try connection.request(#"{"kind":"account.erased","subject":"\#(user)","attrs":{"request":"R-\#(user)"}}"#))["ok"] as? Bool == true)
        }
        var receipts = 0
        for _ in 0..<250 where receipts < 3 {
            usleep(20_000)
            receipts = try SteleBinary.run(["query", "--data", daemon.data, "--kind", "ledger.erased"]).output.split(separator: "\n").count
        }
        #expect(receipts == 3)
        let kinds = { (user: String) in
            try SteleBinary.run(["query", "--data", daemon.data, "--subject", user]).output.split(separator: "\n").map { line in
                ((try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]).flatMap { $0["header_text"] as? String }.flatMap {
                    (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
                }?["kind"] as? String ?? "?"
            }
        }
        #expect(try kinds("user:9") == ["billing.transaction", "account.erased"])
        #expect(try kinds("user:10") == ["billing.transaction", "account.erased"])
        #expect(try kinds("user:11") == ["login.succeeded", "billing.transaction", "account.erased"], "held")
        #expect(daemon.stop() == 0)
        #expect(try SteleBinary.run(["verify", "--data", daemon.data]).status == 0)
        #expect(try SteleBinary.run(["retention", "report", "--data", daemon.data]).status == 0)
    }

    @Test("an erased value is on disk (free pages, journal) after erasure and in no file after compaction, done directly or by a live daemon under append load")
    func compactionRemovesErasedValues() throws {
        for throughDaemon in [false, true] {
            let root = TemporaryDirectory("stele-compact")
            let data = root.appending("data")
            let input = (0..<300).map { #"{"kind":"login.succeeded","subject":"user:\#($0 % 7)","actor":"user:\#($0 % 7)","attrs":{"user_agent":"AGENT-OF-\#($0 % 7)-X"}}"# }
                .joined(separator: "\n") + "\n"
            #expect(try SteleBinary.run(["ingest", "--data", data, "--origin", "stele.test/compact"], input: input).status == 0)
            func occurrences(_ value: String) throws -> [Int] {
                try ["data.mdb", "journal"].map { file in
                    let bytes = try Data(contentsOf: URL(fileURLWithPath: data + "/" + file))
                    var count = 0
                    var range = bytes.startIndex..<bytes.endIndex
                    while let found = bytes.range(of: Data(value.utf8), in: range) { count += 1; range = found.upperBound..<bytes.endIndex }
                    return count
                }
            }
            #expect(try occurrences("AGENT-OF-3-X").allSatisfy { $0 > 0 })
            #expect(try SteleBinary.run(["erase", "user:3", "--data", data, "--request", "DSR-3", "--reason", "verified"]).status == 0)
            #expect(try SteleBinary.run(["query", "--data", data]).output.contains("AGENT-OF-3-X") == false)
            // Redacted, yet still in the store's free pages and in the journal.
            #expect(try occurrences("AGENT-OF-3-X").reduce(0, +) > 0)

            var daemon: DaemonProcess?
            var acknowledged = 0
            if throughDaemon {
                _ = try SigningKeyFile.loadOrCreate(root.appending("key/signing.key"))
                daemon = try DaemonProcess(root: root)
            }
            let connection = try daemon.map { try SteleConnection(socketPath: $0.socket) }
            let stop = Atomic(false)
            nonisolated(unsafe) var appended = 0
            let appender = Thread {
                guard let connection else { return }
                while !stop.load(ordering: .relaxed) {
                    if (try? connection.request(login("during-\(appended)")))?.contains(#""ok":true"#) == true { appended += 1 } else { return }
                }
            }
            appender.start()
            usleep(100_000)
            let compact = try SteleBinary.runKeepingErrors(
                ["compact", "--data", data, "--request", "C-1", "--reason", "after erasure", "--json"] + (daemon.map { ["--socket", $0.socket] } ?? []))
            usleep(100_000)
            stop.store(true, ordering: .relaxed)
            while !appender.isFinished { usleep(1000) }
            acknowledged = appended
            #expect(compact.status == 0, "\(compact.output) \(compact.errors)")
            #expect(try occurrences("AGENT-OF-3-X") == [0, 0], "daemon: \(throughDaemon)")
            #expect(try occurrences("AGENT-OF-4-X")[0] > 0, "what was not erased stays")
            if let daemon {
                #expect(acknowledged > 0, "appends were acknowledged around the compaction")
                #expect(try reply(try SteleConnection(socketPath: daemon.socket).request(login("after-compact")))["ok"] as? Bool == true)
                #expect(daemon.stop() == 0)
            }
            #expect(try SteleBinary.run(["verify", "--data", data]).status == 0)
            #expect(try SteleBinary.run(["retention", "report", "--data", data]).status == 0)
            #expect(try SteleBinary.run(["query", "--data", data, "--kind", "ledger.compacted", "--reason", "test: the receipt"]).output.contains(#""request":"C-1""#))
            let during = try SteleBinary.run(["query", "--data", data, "--kind", "login.succeeded"]).output.split(separator: "\n").count
            #expect(during == 300 + acknowledged + (throughDaemon ? 1 : 0), "every acknowledged append is in the store")
        }
    }
}
