import Logging
import SteleProtocol
import SteleStore

/// What every connection shares: the writer, the decoder, the counters and the mailboxes that
/// carry the writer's outcomes back to each event loop.
struct DaemonContext: Sendable {
    let configuration: ServerConfiguration
    let writer: LedgerWriter
    let decoder: RequestDecoder
    let stats: ServerStats
    let limiter: RateLimiter
    let mailboxes: LoopMailboxes
    let logger: Logger

    var ledger: Ledger { writer.ledger }
}
