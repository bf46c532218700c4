import NIOConcurrencyHelpers
import SteleCore

/// Per-source token buckets: `rate` appends per second with a burst of two seconds' worth.
final class RateLimiter: Sendable {
    private let rate: Double
    private let buckets = NIOLockedValueBox([String: (tokens: Double, at: Int64)]())

    init(ratePerSecond: Double) {
        self.rate = ratePerSecond
    }

    /// Takes one token for `source`; false when the source is over its rate.
    func admit(_ source: String) -> Bool {
        guard rate > 0 else { return true }
        let now = Timestamp.now().microseconds
        return buckets.withLockedValue { buckets in
            var bucket = buckets[source] ?? (tokens: rate * 2, at: now)
            bucket.tokens = min(rate * 2, bucket.tokens + Double(now - bucket.at) / 1_000_000 * rate)
            bucket.at = now
            guard bucket.tokens >= 1 else {
                buckets[source] = bucket
                return false
            }
            bucket.tokens -= 1
            buckets[source] = bucket
            return true
        }
    }
}
