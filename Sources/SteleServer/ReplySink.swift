import NIOCore
import SteleStore

/// Where the writer delivers the outcomes of one connection's appends: one hop to the connection's
/// event loop per batch, instead of one promise per event.
final class ReplySink: @unchecked Sendable {
    /// One append's outcome, for the reply slot it was given. (A struct, not a tuple: arrays of
    /// tuples are copied through runtime generic metadata.)
    struct Outcome {
        let slot: UInt64
        let result: Result<Receipt, LedgerError>
    }

    let eventLoop: any EventLoop
    // Touched only on `eventLoop`.
    private var handler: ConnectionHandler?
    private let context: ChannelHandlerContext

    init(handler: ConnectionHandler, context: ChannelHandlerContext) {
        self.eventLoop = context.eventLoop
        self.handler = handler
        self.context = context
    }

    /// Hands `outcomes` to the connection (dropped if it has closed meanwhile). Call on `eventLoop`
    /// (``GroupCommitter`` hops once per event loop for all of a batch's connections there).
    func complete(_ outcomes: [Outcome]) {
        eventLoop.assertInEventLoop()
        handler?.complete(outcomes, context: context)
    }

    /// Breaks the link to the handler once the connection is gone. Call on `eventLoop`.
    func detach() {
        handler = nil
    }
}
