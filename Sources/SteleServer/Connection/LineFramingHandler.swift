import NIOCore

/// Cuts the byte stream into request lines, with a hard cap on their length (``LineSplitter``),
/// and passes on each read's lines as one ``RequestLines`` message: one hop through the pipeline
/// per read, not per line. When the client finishes sending, a final line without a newline is a
/// request too.
final class LineFramingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = RequestLines

    private var splitter: LineSplitter
    private var lines: [RequestLine] = []

    init(maximumLineLength: Int) {
        splitter = LineSplitter(maximumLength: maximumLineLength)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        splitter.split(unwrapInboundIn(data)) { lines.append(Self.line($0)) }
        forwardLines(context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if (event as? ChannelEvent) == .inputClosed {
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
