import Foundation
import SteleClient
import SteleTestSupport
import Testing

/// One system call from an `strace -f -tt` trace: when it began and when it returned, in seconds
/// since midnight, with its name, descriptor and the text of its arguments.
private struct Call {
    let name: String
    let begin: Double
    var end: Double
    let arguments: String
    var result: Int

    var fd: Int? { Int(arguments.prefix { $0.isNumber }) }
}

/// Parses a trace, joining `<unfinished ...>` calls with their `<... resumed>` ends.
private func parse(_ trace: String) -> [Call] {
    var calls: [Call] = []
    var pending: [String: Int] = [:]  // pid → index of its unfinished call
    func time(_ text: Substring) -> Double {
        let parts = text.split(separator: ":").compactMap { Double($0) }
        return parts.count == 3 ? parts[0] * 3600 + parts[1] * 60 + parts[2] : 0
    }
    func result(_ text: Substring) -> Int {
        guard let equals = text.range(of: ") = ", options: .backwards) else { return -1 }
        return Int(text[equals.upperBound...].prefix { $0 == "-" || $0.isNumber }) ?? -1
    }
    for line in trace.split(separator: "\n") {
        let fields = line.split(separator: " ", maxSplits: 2)
        guard fields.count == 3 else { continue }
        let (pid, at, rest) = (String(fields[0]), time(fields[1]), fields[2])
        if rest.hasPrefix("<... "), let index = pending.removeValue(forKey: pid) {
            calls[index].end = at
            calls[index].result = result(rest)
            if let args = rest.range(of: "resumed>") { calls[index] = Call(name: calls[index].name, begin: calls[index].begin, end: at, arguments: calls[index].arguments + rest[args.upperBound...], result: calls[index].result) }
            continue
        }
        guard let open = rest.firstIndex(of: "(") else { continue }
        let name = String(rest[..<open])
        let arguments = String(rest[rest.index(after: open)...])
        if rest.hasSuffix("<unfinished ...>") {
            pending[pid] = calls.count
            calls.append(Call(name: name, begin: at, end: .infinity, arguments: arguments, result: -1))
        } else {
            calls.append(Call(name: name, begin: at, end: at, arguments: arguments, result: result(rest)))
        }
    }
    return calls
}

/// The paths of the descriptors each call used, as `openat` named them. A descriptor is bound when
/// its `openat` returns and unbound when its `close` returns, and looked up when a call begins: with
/// several threads, a number closed by one may be reopened by another in between.
private func paths(_ calls: [Call]) -> [String?] {
    enum Step { case bind(Int, String), unbind(Int), lookup(Int, Int) }
    var steps: [(time: Double, order: Int, step: Step)] = []
    for (index, call) in calls.enumerated() {
        if call.name == "openat" {
            if call.result >= 0, let quoted = call.arguments.split(separator: "\"").dropFirst().first {
                steps.append((call.end, 0, .bind(call.result, String(quoted))))
            }
        } else if call.name == "close", let fd = call.fd {
            steps.append((call.end, 0, .unbind(fd)))
        } else if let fd = call.fd {
            steps.append((call.begin, 1, .lookup(index, fd)))
        }
    }
    steps.sort { ($0.time, $0.order) < ($1.time, $1.order) }
    var open: [Int: String] = [:]
    var found = [String?](repeating: nil, count: calls.count)
    for (_, _, step) in steps {
        switch step {
        case .bind(let fd, let path): open[fd] = path
        case .unbind(let fd): open[fd] = nil
        case .lookup(let index, let fd): found[index] = open[fd]
        }
    }
    return found
}

/// Every `"seq":N` a call's data holds (strace prints `"` as `\"`).
private func seqs(_ text: String) -> [Int] {
    text.components(separatedBy: #"\"seq\":"#).dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }
}

@Suite("Sync ordering, proven from the daemon's system calls")
struct SyncOrderTests {
    @Test(
        "every acknowledgement is sent after the synchronous journal write holding its entry returned; checkpoint files are written, synced, renamed and their directory synced; store pages are synced before the meta page",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace")))
    func acknowledgementsFollowDurability() throws {
        let root = TemporaryDirectory("stele-daemon")
        let trace = root.appending("trace.txt")
        let created = try SteleBinary.run([
            "init", "--data", root.appending("data"), "--key", root.appending("key/signing.key"), "--checkpoints", root.appending("checkpoints"),
        ])
        try #require(created.status == 0, "\(created.output)")
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        daemon.arguments = [
            "-f", "-tt", "-s", "65536", "-o", trace,
            "-e", "trace=openat,close,pwrite64,pwritev,pwritev2,write,writev,sendmsg,fsync,fdatasync,msync,rename,renameat,renameat2",
            SteleBinary.path, "serve", "--data", root.appending("data"), "--socket", root.appending("stele.sock"),
            "--key", root.appending("key/signing.key"), "--checkpoints", root.appending("checkpoints"),
        ]
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        var connection: SteleConnection?
        for _ in 0..<500 where connection == nil {
            connection = try? SteleConnection(socketPath: root.appending("stele.sock"))
            if connection == nil { usleep(20_000) }
        }
        let client = try #require(connection)
        var acknowledged: [Int] = []
        for n in 0..<40 {  // one at a time, then a pipelined burst
            acknowledged.append(try #require(try reply(client.request(login("s\(n)")))["seq"] as? Int))
        }
        try client.send(bytes: Array((40..<120).map { login("s\($0)") + "\n" }.joined().utf8))
        for _ in 40..<120 {
            let line = try #require(try client.receive())
            acknowledged.append(try #require(try reply(line)["seq"] as? Int))
        }
        Thread.sleep(forTimeInterval: 1.3)  // a checkpoint and the acknowledged mark
        let child = try String(contentsOfFile: "/proc/\(daemon.processIdentifier)/task/\(daemon.processIdentifier)/children", encoding: .utf8)
        kill(try #require(Int32(child.split(separator: " ").first ?? "")), SIGTERM)
        daemon.waitUntilExit()

        let calls = parse(try String(contentsOfFile: trace, encoding: .utf8))
        let files = paths(calls)
        // 1. Acknowledgements: each reply with seq N begins after a journal write holding entry N returned.
        var durable: [Int: Double] = [:]
        for (call, path) in zip(calls, files) where call.name == "pwrite64" && path?.hasSuffix("/journal") == true {
            for seq in seqs(call.arguments) where durable[seq] == nil { durable[seq] = call.end }
        }
        var replies = 0
        for (call, path) in zip(calls, files) where (call.name == "write" || call.name == "writev" || call.name == "sendmsg") && path == nil {
            for seq in seqs(call.arguments) {
                replies += 1
                let written = try #require(durable[seq], "entry \(seq) was acknowledged but never written to the journal")
                #expect(written <= call.begin, "entry \(seq): acknowledged at \(call.begin), journal write returned at \(written)")
            }
        }
        #expect(replies >= acknowledged.count, "\(replies) replies traced for \(acknowledged.count) acknowledgements")
        #expect(Set(acknowledged) == Set(1...120))

        // 2. Checkpoint files and the acknowledged mark: file synced before its rename, directory synced after.
        var renames = 0
        for (index, call) in calls.enumerated() where call.name.hasPrefix("rename") && call.arguments.contains("/checkpoints/") {
            let names = call.arguments.split(separator: "\"", omittingEmptySubsequences: false).enumerated()
                .filter { $0.offset % 2 == 1 }.map { String($0.element) }
            let temporary = try #require(names.first)
            let synced = calls.indices.contains { i in
                i < index && calls[i].name == "fsync" && files[i] == temporary && calls[i].end <= call.begin
            }
            #expect(synced, "\(temporary) renamed before it was synced")
            let directory = String(temporary[..<temporary.lastIndex(of: "/")!])
            let directorySynced = calls.indices.contains { i in
                i > index && calls[i].name == "fsync" && files[i] == directory && calls[i].begin >= call.end
            }
            #expect(directorySynced, "\(directory) not synced after renaming \(temporary)")
            renames += 1
        }
        #expect(renames >= 2, "checkpoint files and the acknowledged mark were written")

        // 3. The store: pages written since the last commit are synced before the meta page names them.
        var unsynced = false
        var commits = 0
        for (call, path) in zip(calls, files) where path?.hasSuffix("/data.mdb") == true {
            switch call.name {
            case "pwrite64" where isMetaWrite(call):
                #expect(!unsynced, "a meta page written at \(call.begin) before the pages it names were synced")
                commits += 1
            case "pwrite64", "pwritev", "pwritev2":
                unsynced = true
            case "fdatasync", "fsync":
                unsynced = false
            default:
                break
            }
        }
        #expect(commits > 0)
    }
}

/// LMDB writes its meta pages (at offsets 0 and the page size) through a second, `O_DSYNC`
/// descriptor, 120-some bytes at a time; data pages are whole pages.
private func isMetaWrite(_ call: Call) -> Bool {
    let fields = call.arguments.components(separatedBy: ", ")
    guard fields.count >= 3, let length = Int(fields[fields.count - 2]) else { return false }
    return length < 4096
}
