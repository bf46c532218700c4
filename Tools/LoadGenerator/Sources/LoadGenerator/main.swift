// Drives `stele serve` with N concurrent clients and a realistic mix of kinds (logins dominate;
// consent, admin actions, data changes), reporting durable events/s and ack latency percentiles.
//
//   --clients N        concurrent connections (default 4)
//   --mode pipeline    each client keeps up to --window requests in flight (default)
//   --mode wait        each client waits for each reply before sending the next (how most services log)
//   --rate R           total requests per second, paced evenly across clients (pipeline mode; 0 = as fast as possible)
//   --seconds S        measured duration (default 10), after a 1-second warm-up
//   --socket PATH      the daemon's socket (default ./stele-data/stele.sock)
import Foundation
import SteleClient

struct Options {
    var clients = 4
    var mode = "pipeline"
    var window = 2048
    var rate = 0.0
    var seconds = 10.0
    var socket = "./stele-data/stele.sock"
}

var options = Options()
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let flag = arguments.next() {
    guard let value = arguments.next() else { fatalError("\(flag) needs a value") }
    switch flag {
    case "--clients": options.clients = Int(value)!
    case "--mode": options.mode = value
    case "--window": options.window = Int(value)!
    case "--rate": options.rate = Double(value)!
    case "--seconds": options.seconds = Double(value)!
    case "--socket": options.socket = value
    default: fatalError("unknown option \(flag)")
    }
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

let runID = String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 36)

/// The n-th request of client c: 70% logins, 10% data changes, 8% consent, 5% admin actions, 7% logouts.
func request(client: Int, n: Int) -> [UInt8] {
    let user = "user:\((client * 7919 + n * 31) % 50_000)"
    let id = "\(runID)-\(client)-\(n)"
    let line: String
    switch n % 100 {
    case 0..<70:
        line = #"{"id":"\#(id)","kind":"login.succeeded","actor":"\#(user)","subject":"\#(user)","attrs":{"ip":"203.0.113.\#(n % 250)","user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0","method":"password"}}"#
    case 70..<80:
        line = #"{"id":"\#(id)","kind":"data.changed","actor":"\#(user)","subject":"\#(user)","attrs":{"entity":"profile","fields":["display_name","bio"],"op":"update"}}"#
    case 80..<88:
        line = #"{"id":"\#(id)","kind":"consent.granted","actor":"\#(user)","subject":"\#(user)","attrs":{"purpose":"marketing_email","notice":"privacy-2026-03","method":"checkbox","jurisdiction":"EU"}}"#
    case 88..<93:
        line = #"{"id":"\#(id)","kind":"admin.action","actor":"admin:7","subject":"\#(user)","attrs":{"action":"reset_mfa","target":"\#(user)","reason":"ticket 4411"}}"#
    default:
        line = #"{"id":"\#(id)","kind":"logout","actor":"\#(user)","subject":"\#(user)"}"#
    }
    return Array(line.utf8) + [0x0A]
}

final class ClientStats: @unchecked Sendable {
    var latencies: [UInt64] = []  // nanoseconds, measured requests only
    var completed = 0
    var errors = 0
}

let measureStart = now() + 1_000_000_000
let measureEnd = measureStart + UInt64(options.seconds * 1e9)
let perClientRate = options.rate / Double(options.clients)

func runPipelining(client: Int, stats: ClientStats) throws {
    let connection = try SteleConnection(socketPath: options.socket)
    let window = DispatchSemaphore(value: options.window)
    let lock = NSLock()
    var sentAt: [UInt64] = []
    sentAt.reserveCapacity(1 << 20)
    let sender = Thread {
        var n = 0
        var batch: [UInt8] = []
        let start = now()
        while now() < measureEnd {
            if perClientRate > 0 {
                let due = start + UInt64(Double(n) / perClientRate * 1e9)
                let t = now()
                if due > t { usleep(UInt32(min(1000, (due - t) / 1000))); continue }
            }
            window.wait()
            let line = request(client: client, n: n)
            lock.lock(); sentAt.append(now()); lock.unlock()
            batch.append(contentsOf: line)
            n += 1
            // Coalesce writes when running flat out; send each request at once when paced.
            if perClientRate > 0 || batch.count >= 16_384 || n % 64 == 0 {
                try? connection.send(bytes: batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try? connection.send(bytes: batch) }
        connection.finishSending()
    }
    sender.start()
    var index = 0
    while let reply = try connection.receive() {
        let t = now()
        lock.lock(); let sent = sentAt[index]; lock.unlock()
        index += 1
        window.signal()
        if !reply.hasPrefix(#"{"id":"#) || !reply.contains(#""ok":true"#) { stats.errors += 1 }
        if sent >= measureStart && t <= measureEnd {
            stats.latencies.append(t - sent)
            stats.completed += 1
        }
    }
    // libdispatch traps if a semaphore is released below its initial value.
    for _ in 0..<options.window { window.signal() }
}

func runWaiting(client: Int, stats: ClientStats) throws {
    let connection = try SteleConnection(socketPath: options.socket)
    var n = 0
    while now() < measureEnd {
        let sent = now()
        try connection.send(bytes: request(client: client, n: n))
        guard let reply = try connection.receive() else { break }
        let t = now()
        n += 1
        if !reply.contains(#""ok":true"#) { stats.errors += 1 }
        if sent >= measureStart && t <= measureEnd {
            stats.latencies.append(t - sent)
            stats.completed += 1
        }
    }
}

let all = (0..<options.clients).map { _ in ClientStats() }
let threads = (0..<options.clients).map { c in
    Thread {
        do {
            if options.mode == "wait" { try runWaiting(client: c, stats: all[c]) } else { try runPipelining(client: c, stats: all[c]) }
        } catch {
            FileHandle.standardError.write(Data("client \(c): \(error)\n".utf8))
        }
    }
}
threads.forEach { $0.start() }
while threads.contains(where: { !$0.isFinished }) { usleep(50_000) }

let latencies = all.flatMap(\.latencies).sorted()
let completed = all.reduce(0) { $0 + $1.completed }
let errors = all.reduce(0) { $0 + $1.errors }
func percentile(_ p: Double) -> Double {
    latencies.isEmpty ? 0 : Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1e6
}
print(String(
    format: "mode=%@ clients=%d rate=%@ seconds=%.0f  events/s=%.0f  ack latency ms p50=%.3f p99=%.3f p99.9=%.3f  errors=%d",
    options.mode, options.clients, options.rate > 0 ? String(Int(options.rate)) : "max", options.seconds,
    Double(completed) / options.seconds, percentile(0.5), percentile(0.99), percentile(0.999), errors))
