import Foundation
public import Logging
import NIOCore
import NIOExtras
import NIOPosix
public import ServiceLifecycle
import SteleCore
import SteleCrypto
import SteleProtocol
import SteleStore

/// `stele serve` as a `Service`: opens (or creates) the ledger and its key, checks it against the
/// newest checkpoint held outside it, serves the Unix socket until graceful shutdown (SIGTERM or
/// SIGINT, through the `ServiceGroup` that runs it), then stops accepting, drains every request
/// already received, signs a final checkpoint and returns.
public final class SteleDaemon: Service {
    private let configuration: ServerConfiguration
    private let logger: Logger
    private let allocator: AllocatorReport
    private let executable: String?

    /// A daemon with `configuration`, logging to `logger` (never body fields); `stats` reports
    /// `allocator`. Background verification runs `executable verify` (none without one).
    public init(configuration: ServerConfiguration, logger: Logger, allocator: AllocatorReport = .unknown, executable: String? = nil) {
        self.configuration = configuration
        self.logger = logger
        self.allocator = allocator
        self.executable = executable
    }

    /// Serves until graceful shutdown; returns after a clean stop.
    /// - Throws: ``DaemonError`` when the daemon refuses to start.
    public func run() async throws {
        let config = configuration
        let directory = CheckpointDirectory(path: config.checkpointDirectory, kept: config.checkpointFilesKept)
        // Every refusal comes before anything is created: a refused start leaves the disk as it was.
        try StartupChecks.noLogWithoutStore(config.dataDirectory, checkpoints: directory)
        try StartupChecks.outside(config.keyPath, of: config.dataDirectory, what: "signing key")
        try StartupChecks.outside(config.checkpointDirectory, of: config.dataDirectory, what: "checkpoint directory")
        try StartupChecks.privateDirectory(config.dataDirectory, what: "data directory")
        try StartupChecks.privateDirectory(config.checkpointDirectory, what: "checkpoint directory")
        try StartupChecks.storePresent(config.dataDirectory)
        try StartupChecks.keyPath(config.keyPath)
        try StartupChecks.keyPresentForExistingLog(config.keyPath, data: config.dataDirectory, checkpoints: directory)
        try StartupChecks.dataDirectory(config.dataDirectory)
        let key: Ed25519PrivateKey
        do { key = try SigningKeyFile.load(config.keyPath) } catch let error as LedgerError {
            throw DaemonError("cannot load the signing key \(config.keyPath): \(error.message); restore the log's key from your backup (docs/operations.md)")
        }

        var options = Ledger.Options()
        options.releasesWrittenPages = !config.storeKeepsWrittenPages
        let ledger: Ledger
        do { ledger = try Ledger(path: config.dataDirectory, options: options) } catch let error as LedgerError {
            // Most of the store's messages name its path already.
            let message = error.message.contains(config.dataDirectory) ? error.message : "cannot open the ledger at \(config.dataDirectory): \(error.message)"
            throw DaemonError(message)
        }
        if let expected = config.origin, expected != ledger.origin {
            throw DaemonError("the store at \(config.dataDirectory) is the log \(ledger.origin), not \(expected): check --data (or the configured origin); refusing to start")
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
            writer = try LedgerWriter(ledger: ledger, options: writerOptions)
        } catch let error as LedgerError {
            throw DaemonError("cannot take over the ledger's journal in \(config.dataDirectory): \(error.message)")
        }
        // Nothing is signed over a log shorter than one this log's daemon acknowledged: a refusal
        // here drops the writer unclosed, so it signs nothing.
        try StartupChecks.acknowledgedMark(writer: writer, directory: directory)
        writer.publish(CheckpointPublisher(signer: signer, directory: directory, signedSize: signedSize, logger: logger))
        do { try directory.prune() } catch {
            logger.error("pruning the checkpoint directory failed", metadata: ["error": "\(error)"])
        }

        let socketPath = config.effectiveSocketPath
        try Self.clearStaleSocket(socketPath)
        // Continuity (Specs/store.md): a start with no clean stop before it is an unclean stop.
        let identity = DaemonIdentity(
            version: SteleVersion.current, verifierKey: "\(signer.verifierKey)", configurationDigest: config.configurationDigest, pid: getpid())
        let started: UInt64
        do { started = try writer.recordStarted(identity) } catch {
            try? writer.close()
            throw DaemonError("cannot record the daemon's start in \(config.dataDirectory): \(error)")
        }
        writer.signCheckpointNow()

        let stats = ServerStats(allocator: allocator)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let verifier = executable.flatMap { executable in
            config.verifyIntervalSeconds > 0
                ? BackgroundVerifier(
                    command: [
                        executable, "verify", "--json", "--threads", "1", "--low-priority",
                        "--cpu-percent", "\(config.verifyCPUPercent)", "--data", config.dataDirectory,
                    ],
                    interval: config.verifyIntervalSeconds, logger: logger)
                : nil
        }
        let context = DaemonContext(
            configuration: config, writer: writer,
            decoder: RequestDecoder(catalogue: config.catalogue, limits: config.limits), stats: stats,
            limiter: RateLimiter(ratePerSecond: config.ratePerSource), mailboxes: LoopMailboxes(group: group), verifier: verifier,
            retention: RetentionRunner(
                writer: writer, policy: config.retentionPolicy, interval: config.pruneIntervalSeconds, logger: logger),
            logger: logger)
        do {
            try await serve(group: group, context: context, socketPath: socketPath, verifierKey: "\(signer.verifierKey)")
        } catch {
            _ = try? writer.recordStopped(identity, started: started)
            try? writer.close()
            try? await group.shutdownGracefully()
            throw error
        }
        do { _ = try writer.recordStopped(identity, started: started) } catch {
            logger.error("the clean stop could not be recorded; verify will list this stop as unclean", metadata: ["error": "\(error)"])
        }
        do { try writer.close() } catch {
            logger.error("the store could not commit every journaled entry at shutdown; the next start moves them in", metadata: ["error": "\(error)"])
        }
        try? await group.shutdownGracefully()
        unlink(socketPath)
        logger.info("stopped", metadata: ["entries": "\((try? ledger.size) ?? 0)"])
    }

    /// Binds the socket, serves until graceful shutdown, then stops accepting and lets every
    /// connection answer what it received and close (at most 30 s). The quiescing helper lives only
    /// as long as this call: it must be gone before the event loops shut down.
    private func serve(group: MultiThreadedEventLoopGroup, context: DaemonContext, socketPath: String, verifierKey: String) async throws {
        let config = context.configuration
        let stats = context.stats
        let idle = TimeAmount.seconds(config.idleTimeoutSeconds)
        let quiesce = ServerQuiescingHelper(group: group)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.autoRead, value: true)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // One job per handler, socket side first (Specs/architecture.md).
                    try channel.pipeline.syncOperations.addHandlers([
                        IdleStateHandler(readTimeout: idle),
                        PeerAuthenticationHandler(
                            peers: config.peers, maximumConnections: config.maximumConnections,
                            maximumPerSource: config.maximumConnectionsPerSource, stats: stats, logger: context.logger),
                        LineFramingHandler(maximumLineLength: config.limits.maximumLineLength, lineDeadline: .seconds(config.lineDeadlineSeconds)),
                        ReplyOrderingHandler(maximumInFlight: config.maximumInFlightPerConnection),
                        RequestHandler(shared: context),
                    ])
                }
            }

        let listening: any Channel
        do { listening = try await Self.bind(bootstrap, socketPath, mode: config.socketMode) } catch {
            throw DaemonError("cannot listen on \(socketPath): \(error)")
        }
        // A socket file removed under the daemon (a cleanup job, an operator) leaves it deaf: it is
        // noticed within two seconds, logged, and recreated.
        let logger = self.logger
        let watcher = Task {
            var current = listening
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(2))
                var info = stat()
                guard !Task.isCancelled, lstat(socketPath, &info) != 0 || (info.st_mode & S_IFMT) != S_IFSOCK else { continue }
                logger.warning("the socket file disappeared; recreating it", metadata: ["socket": "\(socketPath)"])
                // The deaf listener goes first: closing a Unix listener removes its path, which by then
                // would be the new one's.
                try? await current.close()
                unlink(socketPath)
                do {
                    current = try await Self.bind(bootstrap, socketPath, mode: config.socketMode)
                } catch {
                    logger.error("cannot recreate the socket", metadata: ["socket": "\(socketPath)", "error": "\(error)"])
                }
            }
        }

        let ledger = context.ledger
        logger.info("serving", metadata: ["socket": "\(socketPath)", "origin": "\(ledger.origin)", "entries": "\((try? ledger.size) ?? 0)", "verifier_key": "\(verifierKey)"])

        let verifier = context.verifier
        verifier?.start()
        context.retention.start()
        // Cancellation (a second signal, the group failing) stops the same way.
        try? await gracefulShutdown()
        watcher.cancel()
        verifier?.stop()
        context.retention.stop()
        logger.info("stopping: draining in-flight appends")
        // Stops accepting, then asks every connection to answer what it received and close.
        let drained = group.next().makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: drained)
        await Self.first(of: { try? await drained.futureResult.get() }, { try? await Task.sleep(for: .seconds(30)) })
    }

    /// Binds the socket with its final permissions: no window in which it is more open.
    private static func bind(_ bootstrap: ServerBootstrap, _ path: String, mode: UInt32) async throws -> any Channel {
        let previousMask = umask(~mode_t(mode) & 0o777)
        defer { umask(previousMask) }
        let channel = try await bootstrap.bind(unixDomainSocketPath: path).get()
        chmod(path, mode_t(mode))
        return channel
    }

    /// Returns once either operation has returned.
    private static func first(of a: @escaping @Sendable () async -> Void, _ b: @escaping @Sendable () async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await a() }
            group.addTask { await b() }
            await group.next()
            group.cancelAll()
        }
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
