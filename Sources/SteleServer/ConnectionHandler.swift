import CSteleLinux
import Logging
import NIOCore
import SteleCore
import SteleProtocol
import SteleStore

/// One client connection: authenticates the peer by `SO_PEERCRED`, decodes and prepares requests,
/// hands appends to the writer, and writes replies strictly in request order.
///
/// Read coalescing: a client that pipelines (sends while appends are in flight) is, after a read
/// burst of fewer than ``smallReadLines`` lines, not read again until that burst's appends are
/// answered: requests that arrive meanwhile wait for that commit in the socket instead of one by
/// one in the queue, and are then read, decoded and queued together, so a client that trickles
/// requests costs one read and one wake-up per batch. A client that waits for each reply is read
/// as soon as it sends, and holding reads stops again when a held read finds at most one line
/// (holding saved nothing, and each hold costs two changes of the socket's polling).
///
/// Backpressure: with `maximumInFlight` requests unanswered, or while the client is not reading its
/// replies (the channel is not writable: NIO's outbound buffer is above its high-water mark), the
/// handler stops asking the socket for more data until half of them are answered and the replies
/// drain, so nothing is buffered without bound.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let shared: DaemonContext
    private let preparer: EventPreparer
    private var peer: PeerRule?
    private var counted = false
    /// What a reply slot holds: an append waiting for its batch (with when its line was read, in
    /// monotonic nanoseconds), or the reply text.
    private enum Slot {
        case waiting(id: String?, wantsReceipt: Bool, received: UInt64)
        case ready([UInt8])
    }

    /// Replies not yet written, in request order.
    private var slots = CircularBuffer<Slot>()
    /// Sequence number of `slots.first`.
    private var firstSlot: UInt64 = 0
    /// Appends decoded in this read burst, for the writer, and their reply slots.
    private var pendingEvents: [PreparedEvent] = []
    private var pendingSlots: [UInt64] = []
    /// The acknowledgement latencies of one ``complete(_:_:context:)`` call, recorded together.
    private var ackMicroseconds: [Int64] = []
    private var readRequested = false
    /// Appends handed to the writer and not yet answered.
    private var appendsInFlight = 0
    /// Lines read since the last `channelReadComplete`, and in the read burst before it.
    private var linesThisRead = 0
    private var linesLastRead = 0
    /// The client pipelines: a read burst began while appends were in flight. Cleared when a burst
    /// after a hold finds at most one line.
    private var coalescing = false
    /// A read is being held for a batch, and the burst after it is the first since the hold.
    private var heldForBatch = false
    private var burstAfterHold = false
    /// A read burst with fewer lines than this is "small": until its appends are answered, a
    /// pipelining client's connection is not read again, so that requests arriving meanwhile are
    /// read, decoded and queued together instead of one system call and wake-up each. A client
    /// sending faster than that fills larger bursts and is read as fast as it sends.
    static let smallReadLines = 64
    private var draining = false
    /// Carries the writer's outcomes to this connection's event loop; nil until authenticated.
    private var mailbox: LoopMailbox?
    /// The channel has closed: outcomes still arriving only count down ``appendsInFlight``.
    private var closed = false
    private var splitter: LineSplitter

    init(shared: DaemonContext) {
        self.shared = shared
        self.preparer = shared.ledger.makePreparer()
        self.splitter = LineSplitter(maximumLength: shared.configuration.limits.maximumLineLength)
    }

    func channelActive(context: ChannelHandlerContext) {
        var pid: pid_t = 0
        var uid: uid_t = 0
        var gid: gid_t = 0
        let status = try? context.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) { fd in
            stele_peer_credentials(fd, &pid, &uid, &gid)
        }
        guard status == 0 else {
            refuse(context: context, ProtocolError(ProtocolError.unauthorized, "the kernel did not report the peer's credentials"))
            return
        }
        guard let rule = shared.configuration.peers.first(where: { $0.uid == uid && ($0.gid == nil || $0.gid == gid) }) else {
            shared.logger.warning("refused unauthorized peer", metadata: ["uid": "\(uid)", "gid": "\(gid)", "pid": "\(pid)"])
            refuse(context: context, ProtocolError(ProtocolError.unauthorized, "uid \(uid) is not authorized to append to this ledger"))
            return
        }
        shared.stats.connectionOpened()
        counted = true
        guard shared.stats.connections <= shared.configuration.maximumConnections else {
            refuse(context: context, ProtocolError(ProtocolError.tooManyConnections, "the daemon allows \(shared.configuration.maximumConnections) connections"))
            return
        }
        peer = rule
        mailbox = shared.mailboxes.mailbox(for: context.eventLoop)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted { shared.stats.connectionClosed() }
        counted = false
        closed = true
        context.fireChannelInactive()
    }

    private func refuse(context: ChannelHandlerContext, _ error: ProtocolError) {
        shared.stats.recordError(error.code)
        var buffer = context.channel.allocator.buffer(capacity: 256)
        buffer.writeString(Reply.error(id: nil, error) + "\n")
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // While draining, the bytes of a read already under way when the drain began are requests
        // received like any other, and answered: dropped, they would leave the client an orderly
        // close with requests unanswered. No read starts after the drain (`read(context:)`).
        guard let peer, context.channel.isActive else { return }
        splitter.split(unwrapInboundIn(data)) { handle($0, peer: peer) }
    }

    /// Answers one request line: at once, or once its append is committed.
    private func handle(_ piece: LineSplitter.Piece, peer: PeerRule) {
        let slot = reserveSlot()
        let received = NIODeadline.now().uptimeNanoseconds
        if linesThisRead == 0 {  // a read burst begins
            if appendsInFlight > 0 { coalescing = true }
            burstAfterHold = heldForBatch
            heldForBatch = false
        }
        linesThisRead += 1
        switch piece {
        case .oversized:
            fail(slot, id: nil, ProtocolError(ProtocolError.lineTooLong, "request line exceeds \(shared.configuration.limits.maximumLineLength) bytes"))
        case .line(let bytes):
            let (request, id) = shared.decoder.decode(line: bytes, source: peer.source)
            switch consume request {  // consumed: the event is moved out of it, not copied
            case .failure(let error):
                fail(slot, id: id, error)
            case .success(.ping):
                fill(slot, JSONValue.object(["ok": .bool(true), "id": id.map(JSONValue.string) ?? .null, "op": .string("ping")]).canonicalBytes)
            case .success(.stats):
                let size = (try? shared.ledger.size) ?? 0
                let stats = shared.stats.snapshot(writer: shared.writer.statistics, treeSize: size)
                fill(slot, JSONValue.object(["ok": .bool(true), "id": id.map(JSONValue.string) ?? .null, "stats": .object(stats)]).canonicalBytes)
            case .success(.checkpoint):
                if let note = try? shared.ledger.latestCheckpoint() {
                    fill(slot, JSONValue.object(["ok": .bool(true), "id": id.map(JSONValue.string) ?? .null, "checkpoint": .string(note)]).canonicalBytes)
                } else {
                    fail(slot, id: id, ProtocolError(ProtocolError.unavailable, "no checkpoint has been signed yet"))
                }
            case .success(.append(let event, let wantsReceipt)):
                guard peer.allows(event.kind) else {
                    fail(slot, id: id, ProtocolError(ProtocolError.forbiddenKind, "source \(peer.source) may not append \(event.kind)"))
                    break
                }
                guard shared.limiter.admit(peer.source) else {
                    fail(slot, id: id, ProtocolError(ProtocolError.rateLimited, "source \(peer.source) exceeds \(Int(shared.configuration.ratePerSource)) appends per second"))
                    break
                }
                let prepared: PreparedEvent
                do { prepared = try preparer.prepare(event) } catch {
                    fail(slot, id: id, ProtocolError(ProtocolError.invalidField, "\(error)"))
                    break
                }
                setSlot(slot, .waiting(id: id, wantsReceipt: wantsReceipt, received: received))
                pendingEvents.append(prepared)
                pendingSlots.append(slot)
                appendsInFlight += 1
            }
        }
    }

    /// Hands the appends of this read burst to the writer, as one submission; their outcomes come
    /// back through this event loop's mailbox.
    private func submitPending(context: ChannelHandlerContext) {
        guard !pendingEvents.isEmpty, let mailbox else { return }
        let slots = pendingSlots
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        shared.writer.submit(pendingEvents) { results in
            mailbox.post {
                let (handler, context) = bound.value
                handler.complete(slots, results, context: context)
            }
        }
        pendingEvents.removeAll(keepingCapacity: true)
        pendingSlots.removeAll(keepingCapacity: true)
    }

    /// Fills the reply slots of committed (or failed) appends and writes what is ready. On this
    /// connection's event loop.
    private func complete(_ done: [UInt64], _ results: ArraySlice<Result<Receipt, LedgerError>>, context: ChannelHandlerContext) {
        appendsInFlight -= done.count  // one outcome for each append handed over, whatever its slot holds
        guard !closed else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        for (slot, result) in zip(done, results) {
            guard case .waiting(let id, let wantsReceipt, let received) = slots[index(of: slot)] else { continue }
            ackMicroseconds.append(Int64((now &- received) / 1000))
            switch result {
            case .success(let receipt):
                setSlot(slot, .ready(Reply.okBytes(id: id, receipt: receipt, includeHeader: wantsReceipt)))
            case .failure(let error) where error.code == .idempotencyConflict:
                fail(slot, id: id, ProtocolError(ProtocolError.idempotencyConflict, error.message))
            case .failure(let error) where error.code == .storageFull:
                fail(slot, id: id, ProtocolError(ProtocolError.storageFull, error.message))
            case .failure(let error):
                fail(slot, id: id, ProtocolError(ProtocolError.unavailable, error.message))
            }
        }
        shared.stats.recordAcks(ackMicroseconds)
        ackMicroseconds.removeAll(keepingCapacity: true)
        flushReplies(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if burstAfterHold && linesThisRead <= 1 { coalescing = false }
        burstAfterHold = false
        linesLastRead = linesThisRead
        linesThisRead = 0
        submitPending(context: context)
        flushReplies(context: context)
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if draining || !mayRead(context) {
            readRequested = true
            if holdsForBatch { heldForBatch = true }
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        resumeReading(context: context)
        context.fireChannelWritabilityChanged()
    }

    /// True while fewer than `maximumInFlight` requests are unanswered, the client keeps reading
    /// its replies, and no small read burst waits for its batch.
    private func mayRead(_ context: ChannelHandlerContext) -> Bool {
        slots.count < shared.configuration.maximumInFlightPerConnection && context.channel.isWritable
            && !holdsForBatch
    }

    /// True while a pipelining client's appends from a small read burst wait for their batch
    /// (read coalescing).
    private var holdsForBatch: Bool {
        coalescing && appendsInFlight > 0 && linesLastRead < Self.smallReadLines
    }

    /// Asks for more data again once half the in-flight requests are answered and the replies drain.
    private func resumeReading(context: ChannelHandlerContext) {
        if readRequested && !draining && context.channel.isWritable
            && slots.count <= shared.configuration.maximumInFlightPerConnection / 2
            && !holdsForBatch {
            readRequested = false
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent || (event as? ChannelEvent) == .inputClosed {
            // Shutdown, or the client finished sending: answer everything received, then close.
            // A final line without a newline is a request once the client has finished sending.
            if event is ChannelEvent, !draining, let peer {
                splitter.finish { handle($0, peer: peer) }
            }
            draining = true
            submitPending(context: context)
            if slots.isEmpty {
                context.close(promise: nil)
            } else {
                // Closes once the last reply is written (now, or when the last append commits).
                flushReplies(context: context)
            }
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, slots.isEmpty {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func reserveSlot() -> UInt64 {
        slots.append(.waiting(id: nil, wantsReceipt: false, received: 0))
        return firstSlot + UInt64(slots.count - 1)
    }

    private func index(of slot: UInt64) -> CircularBuffer<Slot>.Index {
        slots.index(slots.startIndex, offsetBy: Int(slot - firstSlot))
    }

    private func setSlot(_ slot: UInt64, _ value: Slot) {
        slots[index(of: slot)] = value
    }

    private func fill(_ slot: UInt64, _ reply: [UInt8]) {
        setSlot(slot, .ready(reply))
    }

    private func fail(_ slot: UInt64, id: String?, _ error: ProtocolError) {
        shared.stats.recordError(error.code)
        fill(slot, Array(Reply.error(id: id, error).utf8))
    }

    /// Writes every answered reply at the head of the queue, in order.
    private func flushReplies(context: ChannelHandlerContext) {
        var bytes = 0
        for slot in slots {
            guard case .ready(let reply) = slot else { break }
            bytes += reply.count + 1
        }
        guard bytes > 0 else { return }
        var buffer = context.channel.allocator.buffer(capacity: bytes)
        while case .ready(let reply) = slots.first {
            buffer.writeBytes(reply)
            buffer.writeInteger(UInt8(0x0A))
            slots.removeFirst()
            firstSlot += 1
        }
        if draining && slots.isEmpty {
            // Close only once the last replies are on the socket.
            context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            // No promise: a future per write costs an allocation and its callbacks.
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            resumeReading(context: context)
        }
    }
}
