import CSteleLinux
import Logging
import NIOCore
import SteleProtocol

/// Authorizes a connection by the credentials the kernel recorded for its peer (`SO_PEERCRED`),
/// and holds it to the connection limit. A refused peer gets one error line and the connection
/// closes; nothing it sent is read. An authorized one is announced with ``AuthenticatedPeer``.
final class PeerAuthenticationHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer
    /// The peer's process, user and group ids.
    typealias Credentials = (pid: pid_t, uid: uid_t, gid: gid_t)

    private let peers: [PeerRule]
    private let maximumConnections: Int
    private let maximumPerSource: Int
    private let stats: ServerStats
    private let logger: Logger
    private let credentials: (ChannelHandlerContext) -> Credentials?
    private var authenticated = false
    /// The source counted in the connection totals, until the channel closes.
    private var counted: String?

    /// - Parameter credentials: how to learn the peer's ids (the socket's `SO_PEERCRED` unless given).
    init(
        peers: [PeerRule], maximumConnections: Int, maximumPerSource: Int, stats: ServerStats, logger: Logger,
        credentials: @escaping (ChannelHandlerContext) -> Credentials? = PeerAuthenticationHandler.socketCredentials
    ) {
        self.peers = peers
        self.maximumConnections = maximumConnections
        self.maximumPerSource = maximumPerSource
        self.stats = stats
        self.logger = logger
        self.credentials = credentials
    }

    /// The kernel's record of the peer of the channel's Unix-domain socket.
    static func socketCredentials(_ context: ChannelHandlerContext) -> Credentials? {
        var ids: Credentials = (0, 0, 0)
        let status = try? context.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { fd in
            stele_peer_credentials(fd, &ids.pid, &ids.uid, &ids.gid)
        }
        return status == 0 ? ids : nil
    }

    func channelActive(context: ChannelHandlerContext) {
        guard let ids = credentials(context) else {
            refuse(context, ProtocolError(.unauthorized, "the kernel did not report the peer's credentials"))
            return
        }
        guard let rule = peers.first(where: { $0.uid == ids.uid && ($0.gid == nil || $0.gid == ids.gid) }) else {
            logger.warning("refused unauthorized peer", metadata: ["uid": "\(ids.uid)", "gid": "\(ids.gid)", "pid": "\(ids.pid)"])
            refuse(context, ProtocolError(.unauthorized, "uid \(ids.uid) is not authorized to append to this ledger"))
            return
        }
        let open = stats.connectionOpened(source: rule.source)
        counted = rule.source
        guard open.all <= maximumConnections else {
            refuse(context, ProtocolError(.tooManyConnections, "the daemon allows \(maximumConnections) connections"))
            return
        }
        guard open.source <= maximumPerSource else {
            refuse(context, ProtocolError(.tooManyConnections, "the daemon allows \(maximumPerSource) connections from source \(rule.source)"))
            return
        }
        authenticated = true
        context.fireUserInboundEventTriggered(AuthenticatedPeer(rule: rule))
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard authenticated else { return }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let counted { stats.connectionClosed(source: counted) }
        counted = nil
        context.fireChannelInactive()
    }

    private func refuse(_ context: ChannelHandlerContext, _ error: ProtocolError) {
        stats.recordError(error.code.description)
        var buffer = context.channel.allocator.buffer(capacity: 256)
        buffer.writeString(Reply.error(id: nil, error) + "\n")
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
