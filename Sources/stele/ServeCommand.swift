import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals
import SteleServer
import SteleStore

/// `stele serve`: the daemon.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the ledger daemon on a Unix-domain socket.",
        discussion: "Serves a log made by stele init; refuses a directory without one. SIGTERM or SIGINT drains in-flight appends, signs a checkpoint and exits 0.")

    @Option(help: "The ledger's data directory.") var data: String?
    @Option(help: "The socket path (default <data>/stele.sock).") var socket: String?
    @Option(help: "The Ed25519 signing key, outside the data directory.") var key: String?
    @Option(help: "Directory outside the data directory receiving every signed checkpoint.") var checkpoints: String?
    @Option(help: "A JSON configuration file (Specs/protocol.md).") var config: String?
    @Option(help: "The log's expected origin: a store of another log is refused.") var origin: String?

    static let systemConfiguration = "/etc/stele/stele.json"

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let logger = Logger(label: "stele")
        var configuration = ServerConfiguration()
        // The embedded default authorizes only the user that started the daemon.
        let uid = geteuid()
        let user = getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? "uid\(uid)"
        configuration.peers = [PeerRule(uid: uid, source: user, kinds: ["*"], consent: ["*"], isOperator: true)]
        // --config, then STELE_CONFIG, then /etc/stele/stele.json when present (Specs/config.md).
        let environment = ProcessInfo.processInfo.environment["STELE_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let system = FileManager.default.fileExists(atPath: Self.systemConfiguration) ? Self.systemConfiguration : nil
        if let path = config ?? environment ?? system {
            guard let bytes = FileManager.default.contents(atPath: path) else {
                throw Failure.couldNotRun("cannot read the configuration file \(path)")
            }
            do { try configuration.apply(json: [UInt8](bytes)) } catch {
                throw Failure.couldNotRun("bad configuration \(path): \(error.message)")
            }
        }
        if let data { configuration.dataDirectory = data }
        if let socket { configuration.socketPath = socket }
        if let key { configuration.keyPath = key }
        if let checkpoints { configuration.checkpointDirectory = checkpoints }
        if let origin { configuration.origin = origin }
        do {
            // Signals are trapped before the daemon starts: one sent as soon as it serves stops it.
            var quiet = logger
            quiet.logLevel = .warning
            let services = ServiceGroup(
                services: [SteleDaemon(configuration: configuration, logger: logger, allocator: Allocator.report, executable: "/proc/self/exe")],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: quiet)
            try await services.run()
        } catch let error as DaemonError {
            throw Failure.couldNotRun(error.message)
        } catch let error as LedgerError {
            throw Failure.couldNotRun(error.message)
        }
    }
}
