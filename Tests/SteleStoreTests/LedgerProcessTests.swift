import Foundation
import SteleCore
import SteleCrypto
import SteleStore
import SteleTestSupport
import Testing

/// Tests that run the real `stele` executable as separate processes against one store.
@Suite("Several processes on one store", .serialized)
struct LedgerProcessTests {
    static func requests(_ range: Range<Int>, prefix: String) -> String {
        range.map { i in
            #"{"id":"\#(prefix)-\#(i)","kind":"login.succeeded","actor":"user:\#(i % 40)","subject":"user:\#(i % 40)","attrs":{"ip":"198.51.100.\#(i % 200)","user_agent":"load/\#(i)"}}"#
        }.joined(separator: "\n") + "\n"
    }

    struct Ack: Hashable {
        let seq: UInt64
        let leaf: String
    }

    /// Complete `"ok":true` reply lines in `output` (a final partial line is ignored).
    static func acks(_ output: String) throws -> [Ack] {
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        if output.last != "\n" { lines.removeLast() }
        return try lines.filter { !$0.isEmpty }.compactMap { line in
            let value = try JSONParser.parse(Array(line.utf8))
            guard value["ok"] == .bool(true) else { return nil }
            return Ack(seq: UInt64(value["seq"]!.integerValue!), leaf: value["leaf"]!.stringValue!)
        }
    }

    static func createStore(_ dir: TemporaryDirectory) throws {
        _ = try Fixture.create(dir)
    }

    @Test("two processes appending at once keep one unbroken chain with every acknowledged entry")
    func twoWriters() throws {
        let dir = TemporaryDirectory()
        try Self.createStore(dir)
        nonisolated(unsafe) var outputs = ["", ""]
        let threads = (0..<2).map { n in
            Thread {
                outputs[n] = (try? SteleBinary.run(
                    ["ingest", "--data", dir.path, "--batch", "7", "--source", "writer\(n)"],
                    input: Self.requests(0..<1500, prefix: "w\(n)")).output) ?? ""
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(10_000) }
        let ledger = try Ledger(path: dir.path)
        #expect(try ledger.size == 3000)
        let acks = try Self.acks(outputs[0]) + Self.acks(outputs[1])
        #expect(acks.count == 3000)
        #expect(Set(acks.map(\.seq)).count == 3000)
        for ack in acks {
            #expect(Base64.encode(MerkleHasher().leafHash(try ledger.entry(ack.seq).headerBytes).bytes) == ack.leaf)
        }
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("a read-only reader sees only consistent snapshots while another process appends")
    func readerSnapshots() throws {
        let dir = TemporaryDirectory()
        try Self.createStore(dir)
        let (process, stdin, stdout) = try SteleBinary.start(["ingest", "--data", dir.path, "--batch", "5"])
        let input = Self.requests(0..<3000, prefix: "r")
        let writer = Thread {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let drain = Thread { _ = stdout.fileHandleForReading.readDataToEndOfFile() }
        drain.start()
        let reader = try Fixture.readOnly(dir)
        var sizes: [UInt64] = []
        while process.isRunning {
            let report = try reader.verifyIntegrity()
            #expect(report.isSound, "\(report.problems)")
            sizes.append(report.size)
        }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(sizes == sizes.sorted())
        #expect(sizes.count >= 2)
        #expect(try reader.verifyIntegrity().size == 3000)
    }

    @Test("SIGKILL mid-stream, many times: every acknowledged entry survives and the chain verifies")
    func killNineNeverLosesAcknowledgedEntries() throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = TemporaryDirectory()
        try Self.createStore(dir)
        var acknowledged: [Ack] = []
        for round in 0..<25 {
            let (process, stdin, stdout) = try SteleBinary.start(["ingest", "--data", dir.path, "--batch", "3"])
            let input = Array(Self.requests(0..<100_000, prefix: "k\(round)").utf8)
            let fd = stdin.fileHandleForWriting.fileDescriptor
            let feeder = Thread {
                // Raw writes: the pipe breaks when the process is killed, which must not stop the test.
                var offset = 0
                while offset < input.count {
                    let n = input[offset...].withUnsafeBytes { write(fd, $0.baseAddress, min($0.count, 4096)) }
                    if n <= 0 { break }
                    offset += n
                }
            }
            feeder.start()
            nonisolated(unsafe) var output = Data()
            let reader = Thread { output = stdout.fileHandleForReading.readDataToEndOfFile() }
            reader.start()
            usleep(useconds_t(20_000 + (round * 7919) % 180_000))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            while !reader.isFinished || !feeder.isFinished { usleep(1000) }
            try? stdin.fileHandleForWriting.close()
            acknowledged += try Self.acks(String(decoding: output, as: UTF8.self))
            let ledger = try Ledger(path: dir.path)
            for ack in acknowledged {
                let entry = try ledger.entry(ack.seq)
                #expect(Base64.encode(MerkleHasher().leafHash(entry.headerBytes).bytes) == ack.leaf, "round \(round) seq \(ack.seq)")
            }
            let report = try ledger.verifyIntegrity()
            #expect(report.isSound, "round \(round): \(report.problems)")
            #expect(report.size >= UInt64(acknowledged.count))
        }
        #expect(acknowledged.count > 100)
    }
}
