import NIOCore

/// Numbers request lines with reply slots, writes replies strictly in request order, and decides
/// when the connection is read from (``ReplyOrderingStateMachine``). It also closes the connection:
/// once draining (the client finished sending, or the daemon stops) and every reply is written, or
/// when it has been idle with nothing pending.
final class ReplyOrderingHandler: ChannelDuplexHandler {
    typealias InboundIn = RequestLines
    typealias InboundOut = NumberedRequests
    typealias OutboundIn = SlotReply
    typealias OutboundOut = ByteBuffer

    private var state: ReplyOrderingStateMachine
    private var closing = false

    init(maximumInFlight: Int) {
        state = ReplyOrderingStateMachine(maximumInFlight: maximumInFlight)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let lines = unwrapInboundIn(data).lines
        let first = state.linesReceived(lines.count)
        context.fireChannelRead(wrapInboundOut(NumberedRequests(firstSlot: first, lines: lines)))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        state.readComplete()
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let reply = unwrapOutboundIn(data)
        state.replyReady(slot: reply.slot, bytes: reply.bytes)
        promise?.succeed()
    }

    /// Writes every reply that is next in order, as one buffer.
    func flush(context: ChannelHandlerContext) {
        var bytes = 0
        var ready: [[UInt8]] = []
        state.takeReady { reply in
            ready.append(reply)
            bytes += reply.count + 1
        }
        if !ready.isEmpty {
            var buffer = context.channel.allocator.buffer(capacity: bytes)
            for reply in ready {
                buffer.writeBytes(reply)
                buffer.writeInteger(UInt8(0x0A))
            }
            if state.isDrained {
                // Close only once the last replies are on the socket.
                closeAfter(context.writeAndFlush(wrapOutboundOut(buffer)), context: context)
                return
            }
            // No promise: a future per write costs an allocation and its callbacks.
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if state.mayResume(writable: context.channel.isWritable) { context.read() }
    }

    func read(context: ChannelHandlerContext) {
        if state.readRequested(writable: context.channel.isWritable) { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if state.mayResume(writable: context.channel.isWritable) { context.read() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent || (event as? ChannelEvent) == .inputClosed {
            // Answer everything received, then close: the requests after us submit what they hold.
            state.startDraining()
            context.fireUserInboundEventTriggered(event)
            if state.isDrained {
                // Replies written earlier may still wait in the channel for a client that reads
                // slowly; an empty write completes after them, and closing then loses none.
                closeAfter(context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))), context: context)
            }
        } else if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, state.isIdle {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func closeAfter(_ write: EventLoopFuture<Void>?, context: ChannelHandlerContext) {
        guard !closing else { return }
        closing = true
        if let write {
            write.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }
}
