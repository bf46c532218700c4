import Logging
import SteleProtocol
import SteleStore

/// What every connection shares: the ledger, the writer, the decoder and the counters.
struct DaemonContext: Sendable {
    let configuration: ServerConfiguration
    let ledger: Ledger
    let committer: GroupCommitter
    let decoder: RequestDecoder
    let stats: ServerStats
    let limiter: RateLimiter
    let logger: Logger
}
