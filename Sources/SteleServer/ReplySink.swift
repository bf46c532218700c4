import NIOCore
import SteleStore

/// Where the writer delivers the outcomes of one connection's appends: one hop to the connection's
/// event loop per batch, instead of one promise per event.
final class ReplySink: @unchecked Sendable {
    /// One append's outcome: the reply slot it was given and where its result is in the batch's
    /// ``BatchResults``. Two integers, so lists of them are copied and freed without touching any
    /// reference count.
    struct Outcome {
        let slot: UInt64
        let index: Int
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

    /// Hands `outcomes`, results in `batch`, to the connection (dropped if it has closed meanwhile).
    /// Call on `eventLoop` (``GroupCommitter`` hops once per event loop for all of a batch's
    /// connections there).
    func complete(_ outcomes: [Outcome], of batch: BatchResults) {
        eventLoop.assertInEventLoop()
        handler?.complete(outcomes, of: batch, context: context)
    }

    /// Breaks the link to the handler once the connection is gone. Call on `eventLoop`.
    func detach() {
        handler = nil
    }
}

/// The results of one batch, in batch order, shared by every connection with appends in it: one
/// reference per connection instead of a copy of each result.
final class BatchResults: Sendable {
    let results: [Result<Receipt, LedgerError>]

    init(_ results: [Result<Receipt, LedgerError>]) {
        self.results = results
    }
}
