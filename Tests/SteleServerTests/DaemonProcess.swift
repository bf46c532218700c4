import Foundation
import SteleClient
import SteleTestSupport

/// A real `stele serve` process on a temporary data directory, socket, key and checkpoint directory.
final class DaemonProcess {
    let root: TemporaryDirectory
    let process: Process
    let stderrPath: String
    var socket: String { root.appending("stele.sock") }
    var data: String { root.appending("data") }
    let key: String
    var checkpoints: String { root.appending("checkpoints") }

    /// Arguments that point every command at this daemon's files.
    var common: [String] { ["--data", data, "--socket", socket, "--key", key, "--checkpoints", checkpoints] }

    init(
        root: TemporaryDirectory = TemporaryDirectory("stele-daemon"), config: String? = nil, key: String? = nil,
        environment: [String: String] = [:], wait: Bool = true, initialize: Bool = true
    ) throws {
        self.root = root
        self.key = key ?? root.appending("key/signing.key")
        stderrPath = root.appending("daemon-\(UUID().uuidString).log")
        guard FileManager.default.createFile(atPath: stderrPath, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: stderrPath])
        }
        // A fresh root (no store, no checkpoints, no key) gets its log from stele init, as a user's
        // does; any other root is left as it is, for the daemon to serve or refuse.
        let fresh = initialize && !FileManager.default.fileExists(atPath: root.appending("data/data.mdb"))
            && !FileManager.default.fileExists(atPath: root.appending("checkpoints")) && !FileManager.default.fileExists(atPath: self.key)
        if fresh {
            let created = try SteleBinary.run([
                "init", "--data", root.appending("data"), "--key", self.key, "--checkpoints", root.appending("checkpoints"), "--origin", "stele.test/daemon",
            ])
            guard created.status == 0 else { throw ClientErrorLike("stele init failed: \(created.output)") }
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: SteleBinary.path)
        var arguments = ["serve", "--data", root.appending("data"), "--socket", root.appending("stele.sock"),
                         "--key", self.key, "--checkpoints", root.appending("checkpoints")]
        if let config {
            let path = root.appending("config.json")
            try config.write(toFile: path, atomically: true, encoding: .utf8)
            arguments += ["--config", path]
        }
        process.arguments = arguments
        // NIO's strict mode: a task scheduled on a shut-down event loop crashes the daemon (and so
        // fails the test's exit status) instead of printing a warning.
        process.environment = ProcessInfo.processInfo.environment.merging(["SWIFTNIO_STRICT": "1"].merging(environment) { $1 }) { $1 }
        process.currentDirectoryURL = URL(fileURLWithPath: root.path)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
        if wait { try waitUntilServing() }
    }

    func waitUntilServing() throws {
        for _ in 0..<300 {
            if let connection = try? SteleConnection(socketPath: socket), (try? connection.request(#"{"op":"ping"}"#)) != nil { return }
            if !process.isRunning { throw ClientErrorLike("daemon exited: \(log)") }
            usleep(20_000)
        }
        throw ClientErrorLike("daemon did not start: \(log)")
    }

    var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// SIGTERM, then wait; returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Waits for the process to exit by itself (for refusals) and returns its status.
    func waitForExit(seconds: Int = 20) -> Int32? {
        for _ in 0..<(seconds * 50) {
            if !process.isRunning { return process.terminationStatus }
            usleep(20_000)
        }
        return nil
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

struct ClientErrorLike: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Parses a reply line.
func reply(_ line: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
}

func errorCode(_ line: String) throws -> String? {
    ((try reply(line))["error"] as? [String: Any])?["code"] as? String
}

func login(_ id: String, user: String = "user:1") -> String {
    #"{"id":"\#(id)","kind":"login.succeeded","actor":"\#(user)","subject":"\#(user)","attrs":{"ip":"203.0.113.7"}}"#
}

/// Reads one connection's replies until the daemon ends it: in an orderly way, or by a reset when it
/// closed with requests of the connection still unread (it stopped, or was killed).
final class ReplyReader {
    let connection: SteleConnection
    /// True once the connection ended with requests of it unread.
    private(set) var endedByReset = false

    init(_ connection: SteleConnection) {
        self.connection = connection
    }

    /// The next reply, or nil once the connection has ended.
    func next() throws -> String? {
        do { return try connection.receive() } catch let error as ClientError where error.code == .closedWithRequestsUnread {
            endedByReset = true
            return nil
        }
    }
}
