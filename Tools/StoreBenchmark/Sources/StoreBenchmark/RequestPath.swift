// `--requests N`: the daemon's per-request work on one thread, without sockets or a store: decoding
// a request line (JSON, catalogue, limits), preparing the event (sealing the body, keyed hashes),
// and writing the reply, for the load generator's mix of kinds. Printed beside it, measured in the same
// run: Foundation's JSONSerialization merely parsing the same lines, as a baseline for the decoding.
import Foundation
import SteleCore
import SteleProtocol
import SteleStore

enum RequestPath {
    /// The load generator's mix: 70% logins, 10% data changes, 8% consent, 5% admin actions, 7% logouts.
    static func line(_ n: Int) -> [UInt8] {
        let user = (n * 31) % 50_000
        let text: String
        switch n % 100 {
        case 0..<70:
            text = #"{"id":"bench-\#(n)","kind":"login.succeeded","actor":"user:\#(user)","subject":"user:\#(user)","attrs":{"ip":"203.0.113.\#(n % 250)","user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0","method":"password"}}"#
        case 70..<80:
            text = #"{"id":"bench-\#(n)","kind":"data.changed","actor":"user:\#(user)","subject":"user:\#(user)","attrs":{"entity":"profile","fields":["display_name","bio"],"op":"update"}}"#
        case 80..<88:
            text = #"{"id":"bench-\#(n)","kind":"consent.granted","actor":"user:\#(user)","subject":"user:\#(user)","attrs":{"purpose":"marketing_email","notice":"privacy-2026-03","method":"checkbox","jurisdiction":"EU"}}"#
        case 88..<93:
            text = #"{"id":"bench-\#(n)","kind":"admin.action","actor":"admin:7","subject":"user:\#(user)","attrs":{"action":"reset_mfa","target":"user:\#(user)","reason":"ticket 4411"}}"#
        default:
            text = #"{"id":"bench-\#(n)","kind":"logout","actor":"user:\#(user)","subject":"user:\#(user)"}"#
        }
        return Array(text.utf8)
    }

    static func run(count: Int, rounds: Int) throws {
        let lines = (0..<count).map(line)
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = Ledger.Options()
        options.createWithOrigin = "bench.example/requests"
        let ledger = try Ledger(path: directory, options: options)
        let preparer = ledger.makePreparer()
        let decoder = RequestDecoder()

        var decodeTimes: [Double] = [], prepareTimes: [Double] = [], replyTimes: [Double] = [], baselineTimes: [Double] = []
        for _ in 0..<rounds {
            var events: [(Event, String?)] = []
            events.reserveCapacity(count)
            decodeTimes.append(seconds {
                for line in lines {
                    let (request, id) = line.withUnsafeBytes { decoder.decode(line: $0, source: "web") }
                    guard case .success(.append(let event, _)) = request else { fatalError("\(request)") }
                    events.append((event, id))
                }
            })
            var prepared: [PreparedEvent] = []
            prepared.reserveCapacity(count)
            prepareTimes.append(try seconds { for (event, _) in events { prepared.append(try preparer.prepare(event)) } })
            var bytes = 0
            let receipt = try LedgerWriter(ledger: ledger).append([events[0].0])[0].get()
            replyTimes.append(seconds {
                for (_, id) in events {
                    bytes += Reply.okBytes(id: id, receipt: receipt, includeHeader: false).count
                }
            })
            precondition(bytes > 0 && prepared.count == count)
            var parsed = 0
            baselineTimes.append(try seconds {
                for line in lines {
                    let object = try line.withUnsafeBytes { try JSONSerialization.jsonObject(with: Data($0)) }
                    if object is [String: Any] { parsed += 1 }
                }
            })
            precondition(parsed == count)
        }
        let perEvent = { (times: [Double]) in median(times) / Double(count) * 1e6 }
        let (decode, prepare, reply, baseline) = (perEvent(decodeTimes), perEvent(prepareTimes), perEvent(replyTimes), perEvent(baselineTimes))
        print("requests: \(count) lines of the load generator's mix, one thread, medians of \(rounds) rounds (µs per request)")
        print(String(format: "  decode %.2f + prepare %.2f + reply %.2f = %.2f µs  (%.0f requests/s per core)", decode, prepare, reply, decode + prepare + reply, 1e6 / (decode + prepare + reply)))
        print(String(format: "  baseline, JSONSerialization parsing the same lines: %.2f µs; decode/baseline = %.2f", baseline, decode / baseline))
    }
}
