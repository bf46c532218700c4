public import SteleCore
import Synchronization

/// What the writer has done since it opened, for `{"op":"stats"}` and `stele status`. Recorded on
/// the writer and store queues, read from any thread.
public final class WriterStatistics: Sendable {
    private struct State {
        var appends: UInt64 = 0
        var duplicates: UInt64 = 0
        var batches: UInt64 = 0
        var events: UInt64 = 0
        var largestBatch = 0
        var batchSizeBuckets = [UInt64](repeating: 0, count: 8)  // 1-9, 10-99, … 1e6+
        var commitMicroseconds = LatencyRing()
        var storeCommits: UInt64 = 0
        var storeCommitMicroseconds = LatencyRing()
        var checkpoints: UInt64 = 0
        var lastCheckpoint: Timestamp?
        var idempotencyEvicted: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    /// A batch of `size` events was made durable in `microseconds`.
    func recordBatch(size: Int, appended: Int, duplicates: Int, microseconds: Int64, idempotencyEvicted: UInt64) {
        state.withLock { s in
            s.idempotencyEvicted = idempotencyEvicted
            s.appends += UInt64(appended)
            s.duplicates += UInt64(duplicates)
            s.batches += 1
            s.events += UInt64(size)
            s.largestBatch = max(s.largestBatch, size)
            var bucket = 0
            var n = size
            while n >= 10 && bucket < 7 {
                n /= 10
                bucket += 1
            }
            s.batchSizeBuckets[bucket] += 1
            s.commitMicroseconds.record(microseconds)
        }
    }

    /// A store transaction committed (with sync) in `microseconds`.
    func recordStoreCommit(microseconds: Int64) {
        state.withLock { s in
            s.storeCommits += 1
            s.storeCommitMicroseconds.record(microseconds)
        }
    }

    func checkpointSigned() {
        let now = Timestamp.now()
        state.withLock {
            $0.checkpoints += 1
            $0.lastCheckpoint = now
        }
    }

    /// The statistics as `stats` reports them (`Specs/protocol.md`).
    public var snapshot: [String: JSONValue] {
        let s = state.withLock { $0 }
        let labels = ["1-9", "10-99", "100-999", "1000-9999", "10000-99999", "100000-999999", "1000000+", ""]
        var buckets: [String: JSONValue] = [:]
        for (i, count) in s.batchSizeBuckets.enumerated() where count > 0 { buckets[labels[i]] = .integer(Int64(count)) }
        return [
            "appends": .integer(Int64(s.appends)), "duplicates": .integer(Int64(s.duplicates)),
            "batches": .integer(Int64(s.batches)), "largest_batch": .integer(Int64(s.largestBatch)),
            "events_committed": .integer(Int64(s.events)), "batch_sizes": .object(buckets),
            "commit_us": s.commitMicroseconds.percentiles,
            "store_commits": .integer(Int64(s.storeCommits)), "store_commit_us": s.storeCommitMicroseconds.percentiles,
            "checkpoints_signed": .integer(Int64(s.checkpoints)),
            "checkpoint_age_seconds": s.lastCheckpoint.map { .integer((Timestamp.now().microseconds - $0.microseconds) / 1_000_000) } ?? .null,
            "idempotency_keys_evicted": .integer(Int64(s.idempotencyEvicted)),
        ]
    }
}

/// The most recent `capacity` latency samples (8192 unless given), for percentiles.
public struct LatencyRing: Sendable {
    private let capacity: Int
    private var samples: [Int64] = []
    private var next = 0

    public init(capacity: Int = 8192) {
        self.capacity = capacity
    }

    public mutating func record(_ value: Int64) {
        if samples.count < capacity {
            samples.append(value)
        } else {
            samples[next] = value
            next = (next + 1) % capacity
        }
    }

    /// `{"p50", "p99", "p999", "samples"}` (null percentiles before the first sample).
    public var percentiles: JSONValue {
        let sorted = samples.sorted()
        func percentile(_ p: Double) -> JSONValue {
            sorted.isEmpty ? .null : .integer(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))])
        }
        return .object(["p50": percentile(0.5), "p99": percentile(0.99), "p999": percentile(0.999), "samples": .integer(Int64(sorted.count))])
    }
}
