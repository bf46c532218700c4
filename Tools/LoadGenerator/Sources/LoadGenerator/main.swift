// Drives `stele serve` with N concurrent clients and a realistic mix of kinds (logins dominate;
// consent, admin actions, data changes), reporting durable events/s and ack latency percentiles.
//
//   --clients N        concurrent connections (default 4)
//   --mode pipeline    each client keeps up to --window requests in flight (default)
//   --mode wait        each client waits for each reply before sending the next (how most services log)
//   --threads T        wait mode: the clients share T threads, each watching its connections with poll
//                      (default 0: one blocking thread per client). Each client still has one request
//                      in flight; the generator's own cost on the shared cores falls (no sleep and wakeup
//                      of a thread per reply), so more of the machine measures the daemon
//   --rate R           total requests per second, paced evenly across clients (pipeline mode; 0 = as fast as possible);
//                      each request's latency counts from when it was due, so a late sender counts as latency;
//                      the summary then ends with how late the generator wrote its requests (late_p50,
//                      late_p99, ms): the part of the latency that is the generator's own thread waking late
//   --flush-us T       with --rate: write whatever is due every T microseconds in one write, as a client
//                      library with a send queue does (default 0: each request is its own write, sent when due)
//   --op ping          send pings instead of appends: the same socket, framing and decoder with no
//                      store behind them (the transport's ceiling on this machine, measured in the same run)
//   --op consent       send consent questions (marketing.email) about user:0 … user:(--subjects − 1)
//   --subjects N       how many subjects consent questions spread over (default 100000)
//   --seconds S        measured duration (default 10), after a 1-second warm-up
//   --socket PATH      the daemon's socket (default ./stele-data/stele.sock)
//   --trace PATH       also write each request sent in the measured window to PATH, in send order, as
//                      "<ms since the window began> <ack latency ms>" (pipeline mode): where the slow
//                      acknowledgements cluster in time, for finding what stalled
import Foundation
import SteleClient
import Synchronization

struct Options {
    var clients = 4
    var mode = "pipeline"
    var window = 2048
    var rate = 0.0
    var seconds = 10.0
    var socket = "./stele-data/stele.sock"
    var op = "append"
    var flushMicroseconds = 0
    var trace: String?
    var threads = 0
    var subjects = 100_000
}

/// Prints `message` and the usage (the comment at the top of this file) and exits 2.
func usage(_ message: String? = nil) -> Never {
    if let message { FileHandle.standardError.write(Data("LoadGenerator: \(message)\n".utf8)) }
    FileHandle.standardError.write(Data("""
        usage: LoadGenerator [--clients N] [--mode pipeline|wait] [--threads T] [--window N] [--rate R] [--flush-us T]
                             [--op append|ping|consent] [--subjects N] [--seconds S] [--socket PATH] [--trace PATH]

        """.utf8))
    exit(message == nil ? 0 : 2)
}

var options = Options()
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let flag = arguments.next() {
    if flag == "--help" || flag == "-h" { usage() }
    guard let value = arguments.next() else { usage("\(flag) needs a value") }
    func number<T: LosslessStringConvertible & Comparable & Numeric>(_: T.Type) -> T {
        guard let number = T(value), number >= 0 else { usage("\(flag) needs a non-negative number, not \"\(value)\"") }
        return number
    }
    switch flag {
    case "--clients": options.clients = max(1, number(Int.self))
    case "--mode" where value == "pipeline" || value == "wait": options.mode = value
    case "--window": options.window = max(1, number(Int.self))
    case "--rate": options.rate = number(Double.self)
    case "--seconds": options.seconds = number(Double.self)
    case "--socket": options.socket = value
    case "--flush-us": options.flushMicroseconds = number(Int.self)
    case "--op" where ["append", "ping", "consent"].contains(value): options.op = value
    case "--subjects": options.subjects = max(1, number(Int.self))
    case "--trace": options.trace = value
    case "--threads": options.threads = number(Int.self)
    default: usage("unknown option or value: \(flag) \(value)")
    }
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

let runID = String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 36)

/// The n-th request of client c: 70% logins, 10% data changes, 8% consent, 5% admin actions, 7% logouts.
/// Appended to `out` from precomputed pieces (the generator shares the daemon's two cores, so it
/// must cost little per request).
func request(client: Int, n: Int, into out: inout [UInt8]) {
    func digits(_ value: Int) {
        var v = value
        var text: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &text) { raw in
            repeat { raw[11 - count] = UInt8(48 + v % 10); v /= 10; count += 1 } while v > 0
            out.append(contentsOf: raw[(12 - count)...])
        }
    }
    if options.op == "ping" {
        out.append(contentsOf: Templates.pingPrefix)
        digits(client); out.append(UInt8(ascii: "-")); digits(n)
        out.append(contentsOf: Templates.pingSuffix)
        return
    }
    if options.op == "consent" {
        out.append(contentsOf: Templates.consentPrefix)
        digits(client); out.append(UInt8(ascii: "-")); digits(n)
        out.append(contentsOf: Templates.consentMiddle)
        digits((client * 7919 + n * 31) % options.subjects)
        out.append(contentsOf: Templates.consentSuffix)
        return
    }
    let user = (client * 7919 + n * 31) % 50_000
    let kind = Templates.kind(n % 100)
    let parts = Templates.parts[kind]
    // Each template is split where the id, the user or the varying number goes.
    out.append(contentsOf: Templates.idPrefix)
    digits(client); out.append(UInt8(ascii: "-")); digits(n)
    for (index, part) in parts.enumerated() {
        out.append(contentsOf: part)
        if index < parts.count - 1 {
            if Templates.slots[kind][index] == 0 { digits(user) } else { digits(n % 250) }
        }
    }
    out.append(0x0A)
}

enum Templates {
    static let idPrefix = Array(#"{"id":"\#(runID)-"#.utf8)
    static let pingPrefix = Array(#"{"op":"ping","id":"\#(runID)-"#.utf8)
    static let pingSuffix = Array("\"}\n".utf8)
    static let consentPrefix = Array(#"{"op":"consent","id":"\#(runID)-"#.utf8)
    static let consentMiddle = Array(#"","purpose":"marketing.email","subject":"user:"#.utf8)
    static let consentSuffix = Array("\"}\n".utf8)
    // Pieces between slots; slot 0 is the user number, slot 1 the varying number.
    static let texts: [(String, [Int])] = [
        (#"","kind":"login.succeeded","actor":"user:§","subject":"user:§","attrs":{"ip":"203.0.113.§","user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0","method":"password"}}"#, [0, 0, 1]),
        (#"","kind":"data.changed","actor":"user:§","subject":"user:§","attrs":{"entity":"profile","fields":["display_name","bio"],"op":"update"}}"#, [0, 0]),
        (#"","kind":"consent.granted","actor":"user:§","subject":"user:§","attrs":{"purpose":"marketing.email","notice":"privacy-2026-03","method":"checkbox","jurisdiction":"EU"}}"#, [0, 0]),
        (#"","kind":"admin.action","actor":"admin:7","subject":"user:§","attrs":{"action":"reset_mfa","target":"user:§","reason":"ticket 4411"}}"#, [0, 0]),
        (#"","kind":"logout","actor":"user:§","subject":"user:§"}"#, [0, 0]),
    ]
    static let parts: [[[UInt8]]] = texts.map { text, _ in text.split(separator: "§", omittingEmptySubsequences: false).map { Array($0.utf8) } }
    static let slots: [[Int]] = texts.map(\.1)

    static func kind(_ percent: Int) -> Int {
        switch percent {
        case 0..<70: return 0
        case 70..<80: return 1
        case 80..<88: return 2
        case 88..<93: return 3
        default: return 4
        }
    }
}

/// True for a reply line `{"id":…,"leaf":…,"ok":true,…}` (canonical member order puts `ok` late).
let okMarker: [UInt8] = Array(#""ok":true"#.utf8)

func isOK(_ line: UnsafeRawBufferPointer) -> Bool {
    let marker = okMarker
    guard line.count >= marker.count else { return false }
    var i = line.count - marker.count
    while i >= 0 {
        if line[i] == marker[0] && line[i + 1] == marker[1] && line[i..<i + marker.count].elementsEqual(marker) { return true }
        i -= 1
    }
    return false
}

final class ClientStats: @unchecked Sendable {
    var latencies: [UInt64] = []  // nanoseconds, requests sent inside the measured window
    var sendTimes: [UInt64] = []  // with --trace: when each of them was sent (or due)
    var lateness: [UInt64] = []  // paced: how long after it was due each request was written (nanoseconds)
    var completed = 0
    var errors = 0
}

let measureStart = now() + 1_000_000_000
let measureEnd = measureStart + UInt64(options.seconds * 1e9)
let perClientRate = options.rate / Double(options.clients)

/// Window accounting in units of `windowUnit` requests, so the sender and receiver touch the
/// semaphore once per unit rather than once per request.
let windowUnit = 64

func runPipelining(client: Int, stats: ClientStats) throws {
    let connection = try SteleConnection(socketPath: options.socket)
    let units = max(1, options.window / windowUnit)
    let window = DispatchSemaphore(value: units)
    // Send times by request number: written by the sender before the request is sent, read by the
    // receiver after its reply arrived (the socket orders the two).
    let capacity = Int(Double(options.seconds + 2) * max(options.rate, 400_000) / Double(options.clients)) + 1
    nonisolated(unsafe) let sentAt = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
    defer { sentAt.deallocate() }
    let senderFinished = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var sent = 0  // written by the sender before it signals `senderFinished`
    nonisolated(unsafe) var lateness: [UInt64] = []  // likewise
    let sender = Thread {
        var n = 0
        var batch: [UInt8] = []
        batch.reserveCapacity(32_768)
        let start = now()
        let flush = UInt64(options.flushMicroseconds) * 1000
        var nextFlush = start
        func due(_ n: Int) -> UInt64 { start + UInt64(Double(n) / perClientRate * 1e9) }
        // Requests gathered since the last write, by due time: a paced write records how late each was.
        var gathered: [UInt64] = []
        func send() {
            try? connection.send(bytes: batch)
            batch.removeAll(keepingCapacity: true)
            if perClientRate > 0 {
                let t = now()
                for due in gathered where due >= measureStart && due < measureEnd { lateness.append(t > due ? t - due : 0) }
                gathered.removeAll(keepingCapacity: true)
            }
        }
        func add() {
            if n % windowUnit == 0 {
                // Requests gathered but not yet written hold window units that only their replies
                // give back: write them before waiting (else an overloaded send queue deadlocks).
                if !batch.isEmpty { send() }
                window.wait()
            }
            // Paced requests count from when they were due: a late sender is latency too.
            sentAt[n] = perClientRate > 0 ? due(n) : now()
            if perClientRate > 0 { gathered.append(due(n)) }
            request(client: client, n: n, into: &batch)
            n += 1
        }
        while now() < measureEnd && n < capacity {
            if perClientRate == 0 {
                // Flat out: coalesce writes.
                add()
                if batch.count >= 16_384 || n % 64 == 0 { send() }
            } else if flush == 0 {
                // Paced: each request is its own write, sent when due.
                let t = now()
                if due(n) > t { usleep(UInt32(min(1000, (due(n) - t) / 1000))); continue }
                add()
                send()
            } else {
                // Paced with a send queue: everything due is written at each flush tick.
                let t = now()
                if t < nextFlush { usleep(UInt32(min(1000, (nextFlush - t) / 1000))); continue }
                while n < capacity && due(n) <= t { add() }
                if !batch.isEmpty { send() }
                nextFlush += flush * ((t - nextFlush) / flush + 1)
            }
        }
        if !batch.isEmpty { send() }
        connection.finishSending()
        sent = n
        senderFinished.signal()
    }
    sender.start()
    // However the receiving ends (the last reply, or an error), the sender finishes (by the end of
    // the run at the latest) before `sentAt` is freed: the window is opened for every request it
    // could still send. (libdispatch also traps if a semaphore ends below its initial value.)
    var index = 0
    defer {
        for _ in 0...(units + capacity / windowUnit) { window.signal() }
        senderFinished.wait()
        stats.lateness = lateness
        if index < sent {
            FileHandle.standardError.write(Data("client \(client): the connection ended after \(index) of \(sent) replies\n".utf8))
        }
    }
    while let ok = try connection.receive({ isOK($0) }) {
        let t = now()
        let sentTime = sentAt[index]
        index += 1
        if index % windowUnit == 0 { window.signal() }
        if !ok { stats.errors += 1 }
        // Throughput counts replies inside the measured window; latency counts every request sent
        // inside it, even if its reply came after (so a stall at the end is not left out).
        if sentTime >= measureStart && sentTime < measureEnd {
            stats.latencies.append(t - sentTime)
            if options.trace != nil { stats.sendTimes.append(sentTime) }
        }
        if sentTime >= measureStart && t <= measureEnd { stats.completed += 1 }
    }
}

func runWaiting(client: Int, stats: ClientStats) throws {
    let connection = try SteleConnection(socketPath: options.socket)
    var n = 0
    var line: [UInt8] = []
    while now() < measureEnd {
        line.removeAll(keepingCapacity: true)
        request(client: client, n: n, into: &line)
        let sent = now()
        try connection.send(bytes: line)
        guard let ok = try connection.receive({ isOK($0) }) else { break }
        let t = now()
        n += 1
        if !ok { stats.errors += 1 }
        if sent >= measureStart && sent < measureEnd { stats.latencies.append(t - sent) }
        if sent >= measureStart && t <= measureEnd { stats.completed += 1 }
    }
}

if options.threads > 0 && options.mode != "wait" { usage("--threads is for --mode wait") }
/// Set when a client could not connect or its connection failed: the run still prints what it
/// measured, then exits 1, so a script does not take a broken run for a slow one.
let clientFailed = Atomic<Bool>(false)
let all = (0..<options.clients).map { _ in ClientStats() }
let threads: [Thread]
if options.threads > 0 {
    // Clients c, c + T, c + 2T, ... share thread c; each keeps its own statistics.
    threads = (0..<min(options.threads, options.clients)).map { t in
        Thread {
            let clients = Array(stride(from: t, to: options.clients, by: options.threads))
            do { try runWaitingShared(clients: clients, stats: clients.map { all[$0] }) } catch {
                FileHandle.standardError.write(Data("thread \(t): \(error)\n".utf8))
                clientFailed.store(true, ordering: .relaxed)
            }
        }
    }
} else {
    threads = (0..<options.clients).map { c in
        Thread {
            do {
                if options.mode == "wait" { try runWaiting(client: c, stats: all[c]) } else { try runPipelining(client: c, stats: all[c]) }
            } catch {
                FileHandle.standardError.write(Data("client \(c): \(error)\n".utf8))
                clientFailed.store(true, ordering: .relaxed)
            }
        }
    }
}
threads.forEach { $0.start() }
while threads.contains(where: { !$0.isFinished }) { usleep(50_000) }

let latencies = all.flatMap(\.latencies).sorted()
let completed = all.reduce(0) { $0 + $1.completed }
let errors = all.reduce(0) { $0 + $1.errors }
func percentile(_ p: Double, of values: [UInt64] = latencies) -> Double {
    values.isEmpty ? 0 : Double(values[min(values.count - 1, Int(Double(values.count) * p))]) / 1e6
}
// Paced runs: how late the generator itself wrote requests (each one's latency counts from when it
// was due, so this part of it is the generator's, not the daemon's: its thread woke late).
let lateness = all.flatMap(\.lateness).sorted()
let senderLateness = options.rate > 0
    ? String(format: "  sender late ms late_p50=%.3f late_p99=%.3f", percentile(0.5, of: lateness), percentile(0.99, of: lateness)) : ""

print(String(
    format: "op=%@ mode=%@ clients=%d%@ rate=%@ seconds=%.0f  events/s=%.0f  ack latency ms p50=%.3f p99=%.3f p99.9=%.3f  errors=%d%@",
    options.op, options.mode, options.clients, options.threads > 0 ? " threads=\(options.threads)" : "", options.rate > 0 ? String(Int(options.rate)) : "max", options.seconds,
    Double(completed) / options.seconds, percentile(0.5), percentile(0.99), percentile(0.999), errors, senderLateness))

// Written after the summary line, so a trace that cannot be written loses nothing else.
if let path = options.trace {
    let requests = all.flatMap { zip($0.sendTimes, $0.latencies) }.sorted { $0.0 < $1.0 }
    var text = ""
    for (sent, latency) in requests {
        text += String(format: "%.3f %.3f\n", Double(sent - measureStart) / 1e6, Double(latency) / 1e6)
    }
    do { try text.write(toFile: path, atomically: false, encoding: .utf8) } catch {
        FileHandle.standardError.write(Data("LoadGenerator: cannot write the trace to \(path): \(error.localizedDescription)\n".utf8))
        exit(1)
    }
}
if clientFailed.load(ordering: .relaxed) { exit(1) }
