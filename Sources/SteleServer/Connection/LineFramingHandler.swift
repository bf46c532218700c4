import NIOCore

/// Cuts the byte stream into request lines, with a hard cap on their length (``LineSplitter``),
/// and passes on each read's lines as one ``RequestLines`` message: one hop through the pipeline
/// per read, not per line. When the client finishes sending, a final line without a newline is a
/// request too.
///
/// A line must arrive in full within the line deadline of its first byte, counting only time in
/// which the daemon was asking for data (not while it held reads back for backpressure): a peer that
/// trickles bytes gets `line_timeout` for it, after the replies to its earlier requests, and the
/// connection closes (nothing it sends later is read).
final class LineFramingHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = RequestLines
    typealias OutboundIn = Never

    private var splitter: LineSplitter
    private var lines: [RequestLine] = []
    private let lineDeadline: TimeAmount
    /// Fires the line deadline of the partial line received, if any.
    private var deadline: Scheduled<Void>?
    private var timedOut = false
    /// The daemon asked the socket for data and has not been given any since.
    private var readOutstanding = false
    /// When the partial line's first byte arrived, and how long since then the daemon held reads back.
    private var partialSince: NIODeadline?
    private var held: TimeAmount = .zero
    /// Since when reads are held back (data arrived, no new request for data yet).
    private var heldSince: NIODeadline?

    init(maximumLineLength: Int, lineDeadline: TimeAmount = .seconds(10)) {
        splitter = LineSplitter(maximumLength: maximumLineLength)
        self.lineDeadline = lineDeadline
    }

    func read(context: ChannelHandlerContext) {
        if let since = heldSince {
            held = held + (context.eventLoop.now - since)
            heldSince = nil
        }
        readOutstanding = true
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        readOutstanding = false
        guard !timedOut else { return }
        splitter.split(unwrapInboundIn(data)) { lines.append(Self.line($0)) }
        forwardLines(context)
        // The clock is read only while a line is partial: whole lines, the usual case, cost nothing.
        guard splitter.hasPartialLine else {
            deadline?.cancel()
            deadline = nil
            partialSince = nil
            heldSince = nil
            return
        }
        let now = context.eventLoop.now
        heldSince = now
        if deadline == nil {
            partialSince = now
            held = .zero
            armDeadline(context, in: lineDeadline)
        }
    }

    /// The time the partial line has been waited for while the daemon asked for data.
    private func waited(_ context: ChannelHandlerContext) -> TimeAmount {
        guard let partialSince else { return .zero }
        let now = context.eventLoop.now
        return (now - partialSince) - held - (heldSince.map { now - $0 } ?? .zero)
    }

    private func armDeadline(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = bound.value
            handler.lineTimedOut(context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    private func lineTimedOut(_ context: ChannelHandlerContext) {
        guard splitter.hasPartialLine else { return }
        // Reads held back by the daemon (backpressure) are not the peer's delay: only the time it
        // asked for data counts.
        let waited = waited(context)
        guard waited >= lineDeadline else { return armDeadline(context, in: lineDeadline - waited) }
        timedOut = true
        lines.append(.timedOut)
        forwardLines(context)
        context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if (event as? ChannelEvent) == .inputClosed, !timedOut {
            deadline?.cancel()
            deadline = nil
            splitter.finish { lines.append(Self.line($0)) }
            forwardLines(context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func forwardLines(_ context: ChannelHandlerContext) {
        guard !lines.isEmpty else { return }
        context.fireChannelRead(wrapInboundOut(RequestLines(lines: lines)))
        lines.removeAll(keepingCapacity: true)
    }

    private static func line(_ piece: LineSplitter.Piece) -> RequestLine {
        switch piece {
        case .line(let bytes): .line(bytes)
        case .oversized: .oversized
        }
    }
}
