import CSteleLinux
import Dispatch
import Foundation
public import Logging
import NIOCore
import NIOConcurrencyHelpers
import NIOPosix
import SteleCore
import SteleCrypto
import SteleProtocol
import SteleStore

/// `stele serve`: opens (or creates) the ledger and its key, checks it against the newest checkpoint
/// held outside it, serves the Unix socket until SIGTERM or SIGINT, then drains every request
/// already received, signs a final checkpoint and exits.
public final class SteleDaemon {
    private let configuration: ServerConfiguration
    private let logger: Logger

    /// A daemon with `configuration`, logging to `logger` (never body fields).
    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until a termination signal; returns after a clean shutdown.
    /// - Parameter ready: called once the socket accepts connections.
    public func run(ready: () -> Void = {}) throws {
        let config = configuration
        // Termination signals are caught from the start, before the socket is announced, by a
        // handler installed synchronously: a SIGTERM sent as soon as the daemon serves (by a
        // supervisor, a test) must stop it, never be lost. One received during startup stops the
        // daemon as soon as it is serving.
        guard stele_catch_termination_signals() == 0 else {
            throw DaemonError("cannot install the SIGTERM/SIGINT handlers: \(String(cString: strerror(errno)))")
        }
        let stop = DispatchSemaphore(value: 0)
        Thread {
            Thread.current.name = "stele-signals"
            _ = stele_wait_termination_signal()
            stop.signal()
        }.start()
        let directory = CheckpointDirectory(path: config.checkpointDirectory, kept: config.checkpointFilesKept)
        try StartupChecks.noLogWithoutStore(config.dataDirectory, checkpoints: directory)
        try StartupChecks.dataDirectory(config.dataDirectory)
        try StartupChecks.outside(config.keyPath, of: config.dataDirectory, what: "signing key")
        try StartupChecks.outside(config.checkpointDirectory, of: config.dataDirectory, what: "checkpoint directory")
        let key = try SigningKeyFile.loadOrCreate(config.keyPath)

        var options = Ledger.Options()
        options.createWithOrigin = config.origin ?? Ledger.defaultOrigin
        options.releasesWrittenPages = !config.storeKeepsWrittenPages
        let ledger: Ledger
        do { ledger = try Ledger(path: config.dataDirectory, options: options) } catch let error as LedgerError {
            // Most of the store's messages name its path already.
            let message = error.message.contains(config.dataDirectory) ? error.message : "cannot open the ledger at \(config.dataDirectory): \(error.message)"
            throw DaemonError(message)
        }
        let signer = try NoteSigner(name: ledger.origin, privateKey: key)
        // The store is checked against the newest checkpoint held outside it (checkpoints cover only
        // committed entries), then the writer's start moves in the entries a crashed daemon
        // acknowledged but did not commit to the store.
        var writerOptions = LedgerWriter.Options()
        writerOptions.idempotencyWindow = config.idempotencyWindowSeconds * 1_000_000
        writerOptions.idempotencyMaximumKeys = config.idempotencyMaximumKeys
        writerOptions.maximumBatch = config.maximumBatch
        writerOptions.storeCommitInterval = config.storeCommitIntervalMilliseconds * 1000
        writerOptions.lockWait = 3
        writerOptions.logger = logger
        let writer: LedgerWriter
        let signedSize: UInt64
        do {
            signedSize = try StartupChecks.checkpointAgreement(ledger: ledger, directory: directory, verifier: signer.verifierKey)
            writerOptions.checkpoints = CheckpointPublisher(signer: signer, directory: directory, signedSize: signedSize, logger: logger)
            writer = try LedgerWriter(ledger: ledger, options: writerOptions)
        } catch let error as LedgerError {
            throw DaemonError("cannot take over the ledger's journal in \(config.dataDirectory): \(error.message)")
        }
        do { try directory.prune() } catch {
            logger.error("pruning the checkpoint directory failed", metadata: ["error": "\(error)"])
        }

        let socketPath = config.effectiveSocketPath
        try Self.clearStaleSocket(socketPath)

        let stats = ServerStats()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let context = DaemonContext(
            configuration: config, writer: writer,
            decoder: RequestDecoder(catalogue: config.catalogue, limits: config.limits), stats: stats,
            limiter: RateLimiter(ratePerSecond: config.ratePerSource), mailboxes: LoopMailboxes(group: group), logger: logger)
        let children = ChannelRegistry()
        let idle = TimeAmount.seconds(config.idleTimeoutSeconds)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.autoRead, value: true)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(readTimeout: idle),
                        ConnectionHandler(shared: context),
                    ])
                    children.add(channel)
                }
            }

        // Create the socket with its final permissions: no window in which it is more open.
        let previousMask = umask(~mode_t(config.socketMode) & 0o777)
        let server: any Channel
        do {
            server = try bootstrap.bind(unixDomainSocketPath: socketPath).wait()
        } catch {
            umask(previousMask)
            try? writer.close()
            try? group.syncShutdownGracefully()
            throw DaemonError("cannot listen on \(socketPath): \(error)")
        }
        umask(previousMask)
        chmod(socketPath, mode_t(config.socketMode))

        let size = (try? ledger.size) ?? 0
        logger.info("serving", metadata: ["socket": "\(socketPath)", "origin": "\(ledger.origin)", "entries": "\(size)", "verifier_key": "\(signer.verifierKey)"])
        ready()

        stop.wait()
        logger.info("stopping: draining in-flight appends")
        try? server.close().wait()
        for channel in children.all() {
            channel.pipeline.fireUserInboundEventTriggered(DrainEvent())
        }
        let deadline = Date(timeIntervalSinceNow: 30)
        while stats.connections > 0 && Date() < deadline { usleep(10_000) }
        do { try writer.close() } catch {
            logger.error("the store could not commit every journaled entry at shutdown; the next start moves them in", metadata: ["error": "\(error)"])
        }
        try? group.syncShutdownGracefully()
        unlink(socketPath)
        logger.info("stopped", metadata: ["entries": "\((try? ledger.size) ?? 0)"])
    }

    /// Removes a socket file left by a crashed daemon; refuses one that a live daemon still serves.
    static func clearStaleSocket(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw DaemonError("\(path) exists and is not a socket; refusing to replace it")
        }
        if let connection = try? SocketProbe.connect(path) {
            close(connection)
            throw DaemonError("another daemon is serving \(path); stop it first")
        }
        unlink(path)
    }
}

/// Open child channels, for draining at shutdown.
final class ChannelRegistry: Sendable {
    private let channels = NIOLockedValueBox([ObjectIdentifier: any Channel]())

    func add(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels.withLockedValue { $0[id] = channel }
        channel.closeFuture.whenComplete { [self] _ in _ = channels.withLockedValue { $0.removeValue(forKey: id) } }
    }

    func all() -> [any Channel] { channels.withLockedValue { Array($0.values) } }
}
