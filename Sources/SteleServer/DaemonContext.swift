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
    /// Re-verifies the store on a schedule (nil when `verify_interval_seconds` is 0).
    let verifier: BackgroundVerifier?
    /// Runs operators' prunes and the scheduled ones.
    let retention: RetentionRunner
    let logger: Logger

    var ledger: Ledger { writer.ledger }
}
