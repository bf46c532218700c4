// Appends ~300-byte events through the Ledger in batches of 1, 10, 100 and 1000 and compares the rate
// with two raw LMDB baselines measured in the same run, each one synced transaction per batch:
// - "same records": exactly the records the ledger wrote (headers, bodies, idempotency records, Merkle
//   subtrees, index records and postings, the head), read back from the ledger's store and replayed with
//   the same databases, keys, values, put flags and batch boundaries, but nothing computed: the cost of
//   storing what the ledger stores, without hashing, sealing or building anything;
// - "one put per event": the event's JSON alone, keyed by seq with MDB_APPEND: the least any store could do.
import Foundation
import SteleCore
import SteleLMDB
import SteleStore

func temporaryDirectory() -> String {
    var template = Array((NSTemporaryDirectory() + "/stele-bench-XXXXXX").utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

func event(_ n: Int) -> Event {
    Event(
        kind: "login.succeeded", retentionClass: "security", retention: 365 * 86_400_000_000, source: "web",
        actor: "user:\(n % 5000)", subject: "user:\(n % 5000)", id: "req-\(n)-7c1e2b9a",
        attributes: [
            "ip": .string("203.0.113.\(n % 250)"),
            "user_agent": .string("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
            "method": .string("password"), "session": .string("s-\(n)-4f2d9c0e8b7a6152"),
        ])
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// The positive count given after the option at `flag`, or `fallback` when none is given; anything
/// else stops the benchmark with a usage error (exit 2) instead of a crash.
func count(after flag: Int, default fallback: Int) -> Int {
    guard CommandLine.arguments.count > flag + 1 else { return fallback }
    let text = CommandLine.arguments[flag + 1]
    guard let value = Int(text), value > 0 else {
        FileHandle.standardError.write(Data("StoreBenchmark: \(CommandLine.arguments[flag]) needs a positive count, not \"\(text)\"\n".utf8))
        exit(2)
    }
    return value
}

// `--proofs N`: build an N-entry store (default 1,000,000) and check roots, inclusion and consistency
// proofs at random sizes against a Merkle tree rebuilt in memory from the receipts' leaf hashes.
if let flag = CommandLine.arguments.firstIndex(of: "--proofs") {
    let total = count(after: flag, default: 1_000_000)
    let directory = temporaryDirectory()
    var options = Ledger.Options()
    options.createWithOrigin = "bench.example/proofs"
    options.initialMapSize = 1 << 32
    let ledger = try Ledger(path: directory, options: options)
    let writer = try LedgerWriter(ledger: ledger)
    let hasher = MerkleHasher()
    var reference = MemoryMerkleTree()
    let buildTime = try seconds {
        for start in stride(from: 0, to: total, by: 5000) {
            for result in try writer.append((start..<min(total, start + 5000)).map(event)) {
                reference.append(leafHash: try result.get().leafHash, hasher: hasher)
            }
        }
    }
    let view = reference.view()
    var generator = SystemRandomNumberGenerator()
    var checked = 0
    let checkTime = try seconds {
        for _ in 0..<2000 {
            let n = UInt64.random(in: 1...UInt64(total), using: &generator)
            let m = UInt64.random(in: 0..<n, using: &generator)
            let old = UInt64.random(in: 1...n, using: &generator)
            let roots = (try ledger.rootHash(size: n), try view.rootHash(size: n))
            let inclusions = (try ledger.inclusionProof(seq: m, size: n).proof, try view.inclusionProof(index: m, size: n))
            let consistencies = (try ledger.consistencyProof(from: old, to: n).proof, try view.consistencyProof(from: old, to: n))
            precondition(roots.0 == roots.1, "root \(n)")
            precondition(inclusions.0 == inclusions.1, "inclusion \(m) \(n)")
            precondition(consistencies.0 == consistencies.1, "consistency \(old) \(n)")
            checked += 1
        }
    }
    print(String(format: "proofs: %d-entry store built in %.1f s; %d random sizes: roots, inclusion and consistency proofs equal the in-memory tree (%.0f µs per triple)", total, buildTime, checked, checkTime / Double(checked) * 1e6))
    try? FileManager.default.removeItem(atPath: directory)
    exit(0)
}

if let flag = CommandLine.arguments.firstIndex(of: "--prune") {
    let keep = CommandLine.arguments.firstIndex(of: "--keep").map { CommandLine.arguments[$0 + 1] }
    let key = CommandLine.arguments.firstIndex(of: "--key").map { CommandLine.arguments[$0 + 1] }
    try PruneThroughput.run(
        total: count(after: flag, default: 1_000_000), keep: keep, buildOnly: CommandLine.arguments.contains("--build-only"), key: key)
    exit(0)
}

if let flag = CommandLine.arguments.firstIndex(of: "--consent") {
    let keep = CommandLine.arguments.firstIndex(of: "--keep").map { CommandLine.arguments[$0 + 1] }
    try ConsentLookups.run(total: count(after: flag, default: 1_000_000), keep: keep)
    exit(0)
}

if let flag = CommandLine.arguments.firstIndex(of: "--idempotency-table") {
    let count = count(after: flag, default: 8_000_000)
    IdempotencyTableGrowth.run(keys: count, rounds: 3)
    exit(0)
}

if let flag = CommandLine.arguments.firstIndex(of: "--requests") {
    let count = count(after: flag, default: 200_000)
    try RequestPath.run(count: count, rounds: 5)
    exit(0)
}

if let flag = CommandLine.arguments.firstIndex(of: "--wakeups") {
    let count = count(after: flag, default: 20_000)
    WakeLateness.run(count: count)
    exit(0)
}

if let flag = CommandLine.arguments.firstIndex(of: "--sync-writes") {
    try SyncWriteLatency.run(rate: count(after: flag, default: 1000), seconds: 5)
    exit(0)
}

if let flag = CommandLine.arguments.firstIndex(of: "--field-hashes") {
    FieldHashes.run(events: count(after: flag, default: 200_000), rounds: 5)
    exit(0)
}

var plan: [(batch: Int, total: Int)] = [(1, 2_000), (10, 20_000), (100, 100_000), (1000, 300_000)]
// STELE_BENCH_BATCHES=1000 (comma-separated) runs only those rows, e.g. under a profiler.
if let only = ProcessInfo.processInfo.environment["STELE_BENCH_BATCHES"] {
    let sizes = only.split(separator: ",").compactMap { Int($0) }
    plan = plan.filter { sizes.contains($0.batch) }
}
let scale = Double(ProcessInfo.processInfo.environment["STELE_BENCH_SCALE"] ?? "1") ?? 1
// Each row is measured in STELE_BENCH_ROUNDS rounds (default 3) that alternate the three stores, and
// the median of each is reported: on a shared VM a disk or CPU hiccup during one run otherwise
// decides a whole row.
let rounds = max(1, Int(ProcessInfo.processInfo.environment["STELE_BENCH_ROUNDS"] ?? "3") ?? 3)

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

var cpu = "unknown CPU"
if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
    let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") })
{
    cpu = String(line.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces))
}
print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu), \(ProcessInfo.processInfo.physicalMemory >> 30) GiB")
let sample = JSONValue.object(event(1).bodyValues.merging(["kind": .string("login.succeeded")]) { a, _ in a }).canonicalBytes
print("event size: \(sample.count) bytes of JSON")
print("batch | entries | ledger entries/s | raw, same records | ledger/raw | raw, one put per event | ledger/raw   (medians of \(rounds) rounds)")

for (batch, baseTotal) in plan {
    let total = max(batch, Int(Double(baseTotal) * scale) / batch * batch)
    let events = (0..<total).map(event)
    let records = events.map { JSONValue.object($0.bodyValues.merging(["kind": .string($0.kind)]) { a, _ in a }).canonicalBytes }

    var rawRates: [Double] = [], ledgerRates: [Double] = [], replayRates: [Double] = []
    for _ in 0..<rounds {
        let rawDirectory = temporaryDirectory()
        let environment = try Environment(path: rawDirectory, maxDatabases: 1, mapSize: 1 << 32)
        let db = try environment.openDatabase("records", create: true)
        let rawTime = try seconds {
            for start in stride(from: 0, to: total, by: batch) {
                try environment.withWriteTransaction { txn in
                    for seq in start..<start + batch {
                        var key = UInt64(seq).bigEndian
                        try withUnsafeBytes(of: &key) { k in
                            try records[seq].withUnsafeBytes { v in try txn.put(db, key: k, value: v, mode: .append) }
                        }
                    }
                }
            }
        }
        rawRates.append(Double(total) / rawTime)
        try? FileManager.default.removeItem(atPath: rawDirectory)

        let ledgerDirectory = temporaryDirectory()
        var options = Ledger.Options()
        options.createWithOrigin = "bench.example/log"
        options.initialMapSize = 1 << 32
        let ledger = try Ledger(path: ledgerDirectory, options: options)
        let writer = try LedgerWriter(ledger: ledger)
        let ledgerTime = try seconds {
            for start in stride(from: 0, to: total, by: batch) {
                _ = try writer.append(Array(events[start..<start + batch]))
            }
        }
        try writer.close()
        let finalSize = try ledger.size
        precondition(finalSize == UInt64(total))
        ledgerRates.append(Double(total) / ledgerTime)
        let replay = try LedgerReplay(reading: ledgerDirectory, batch: batch, total: total)
        try? FileManager.default.removeItem(atPath: ledgerDirectory)
        let replayDirectory = temporaryDirectory()
        let replayTime = try seconds { try replay.write(to: replayDirectory) }
        replayRates.append(Double(total) / replayTime)
        try? FileManager.default.removeItem(atPath: replayDirectory)
    }
    let (ledgerRate, replayRate, rawRate) = (median(ledgerRates), median(replayRates), median(rawRates))
    print(String(format: "%5d | %7d | %16.0f | %17.0f | %10.2f | %22.0f | %10.2f", batch, total, ledgerRate, replayRate, ledgerRate / replayRate, rawRate, ledgerRate / rawRate))
    if rounds > 1 {
        let list = { (rates: [Double]) in rates.map { String(format: "%.0f", $0) }.joined(separator: " ") }
        print("      rounds: ledger \(list(ledgerRates)); same records \(list(replayRates)); one put per event \(list(rawRates))")
    }
}
