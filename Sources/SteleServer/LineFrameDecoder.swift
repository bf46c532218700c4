public import NIOCore

/// One request line, or notice that a line exceeded the limit (and was skipped up to its newline).
public enum Frame: Sendable {
    /// A complete line without its newline.
    case line(ByteBuffer)
    /// A line longer than the limit; its bytes were discarded.
    case oversized
}

/// Splits the stream into lines with a hard cap on line length.
///
/// Written here rather than using `LineBasedFrameDecoder` because that decoder has no limit of its
/// own and, wrapped in a capped `ByteToMessageHandler`, fails the whole connection on an oversized
/// line; Stele answers `line_too_long` for that line and keeps the connection usable.
public struct LineFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Frame

    private let maximumLength: Int
    private var discarding = false
    private var scanned = 0

    /// A decoder refusing lines longer than `maximumLength` bytes.
    public init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        if let newline = view[(view.startIndex + scanned)...].firstIndex(of: 0x0A) {
            let length = newline - view.startIndex
            scanned = 0
            if discarding {
                discarding = false
                buffer.moveReaderIndex(forwardBy: length + 1)
                context.fireChannelRead(Self.wrapInboundOut(.oversized))
                return .continue
            }
            if length > maximumLength {
                buffer.moveReaderIndex(forwardBy: length + 1)
                context.fireChannelRead(Self.wrapInboundOut(.oversized))
                return .continue
            }
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            // Tolerate CRLF line endings.
            if line.readableBytesView.last == 0x0D { line = line.getSlice(at: line.readerIndex, length: line.readableBytes - 1)! }
            context.fireChannelRead(Self.wrapInboundOut(.line(line)))
            return .continue
        }
        if discarding || view.count > maximumLength {
            discarding = true
            buffer.moveReaderIndex(forwardBy: view.count)
            scanned = 0
            return .needMoreData
        }
        scanned = view.count
        return .needMoreData
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A final line without a newline is still a request.
        if buffer.readableBytes > 0 && !discarding {
            let length = buffer.readableBytes
            let line = buffer.readSlice(length: length)!
            context.fireChannelRead(Self.wrapInboundOut(length > maximumLength ? .oversized : .line(line)))
        }
        buffer.clear()
        return .needMoreData
    }
}
