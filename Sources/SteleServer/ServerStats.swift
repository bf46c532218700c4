import NIOConcurrencyHelpers
import SteleCore

/// Counters for `{"op":"stats"}` and `stele status`. Thread-safe.
public final class ServerStats: Sendable {
    private struct State {
        var appends: UInt64 = 0
        var duplicates: UInt64 = 0
        var batches: UInt64 = 0
        var events: UInt64 = 0
        var largestBatch = 0
        var batchSizeBuckets = [UInt64](repeating: 0, count: 8)  // 1, 2-9, 10-99, … 1e6+
        var errors: [String: UInt64] = [:]
        var commitMicroseconds = LatencyRing()
        var storeCommits: UInt64 = 0
        var storeCommitMicroseconds = LatencyRing()
        var connections = 0
        var checkpoints: UInt64 = 0
        var idempotencyEvicted: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())
    /// Apart from `state`: the event loops record into it for every batch, the writer into `state`.
    private let acks = NIOLockedValueBox(LatencyRing(capacity: 65_536))
    private let started = Timestamp.now()

    init() {}

    func recordBatch(size: Int, appended: Int, duplicates: Int, commitMicroseconds: Int64, idempotencyEvicted: UInt64 = 0) {
        state.withLockedValue { s in
            s.idempotencyEvicted = idempotencyEvicted
            s.appends += UInt64(appended)
            s.duplicates += UInt64(duplicates)
            s.batches += 1
            s.events += UInt64(size)
            s.largestBatch = max(s.largestBatch, size)
            var bucket = 0
            var n = size
            while n >= 10 && bucket < 7 { n /= 10; bucket += 1 }
            s.batchSizeBuckets[bucket] += 1
            s.commitMicroseconds.record(commitMicroseconds)
        }
    }

    /// A store transaction committed (with sync) in `microseconds`, appends waiting meanwhile.
    func recordStoreCommit(microseconds: Int64) {
        state.withLockedValue { s in
            s.storeCommits += 1
            s.storeCommitMicroseconds.record(microseconds)
        }
    }

    /// Appends answered `microseconds` after their request lines were read (one per append).
    func recordAcks(_ microseconds: [Int64]) {
        guard !microseconds.isEmpty else { return }
        acks.withLockedValue { ring in
            for value in microseconds { ring.record(value) }
        }
    }

    func recordError(_ code: String) {
        state.withLockedValue { $0.errors[code, default: 0] += 1 }
    }

    func connectionOpened() { state.withLockedValue { $0.connections += 1 } }
    func connectionClosed() { state.withLockedValue { $0.connections -= 1 } }
    func checkpointSigned() { state.withLockedValue { $0.checkpoints += 1 } }

    /// Open connections now.
    var connections: Int { state.withLockedValue { $0.connections } }

    /// The stats reply object (without `ok`).
    func snapshot(treeSize: UInt64) -> [String: JSONValue] {
        let memory = Self.memory()  // outside the lock: the writer records every batch under it
        let acks = self.acks.withLockedValue { $0 }.percentiles  // sorted outside both locks
        return state.withLockedValue { s in
            let labels = ["1-9", "10-99", "100-999", "1000-9999", "10000-99999", "100000-999999", "1000000+", ""]
            var buckets: [String: JSONValue] = [:]
            for (i, count) in s.batchSizeBuckets.enumerated() where count > 0 { buckets[labels[i]] = .integer(Int64(count)) }
            return [
                "appends": .integer(Int64(s.appends)), "duplicates": .integer(Int64(s.duplicates)),
                "batches": .integer(Int64(s.batches)), "largest_batch": .integer(Int64(s.largestBatch)),
                "events_committed": .integer(Int64(s.events)),
                "batch_sizes": .object(buckets),
                "errors": .object(s.errors.mapValues { .integer(Int64($0)) }),
                "commit_us": s.commitMicroseconds.percentiles, "ack_us": acks,
                "store_commits": .integer(Int64(s.storeCommits)), "store_commit_us": s.storeCommitMicroseconds.percentiles,
                "connections": .integer(Int64(s.connections)), "checkpoints_signed": .integer(Int64(s.checkpoints)),
                "tree_size": .integer(Int64(treeSize)), "idempotency_keys_evicted": .integer(Int64(s.idempotencyEvicted)),
                "uptime_seconds": .integer((Timestamp.now().microseconds - started.microseconds) / 1_000_000),
                "memory": memory,
            ]
        }
    }
}

extension ServerStats {
    /// `{"allocator", "allocated_bytes", "resident_bytes"}` (null counts if the allocator keeps none).
    static func memory() -> JSONValue {
        let usage = Allocator.usage()
        return .object([
            "allocator": .string(Allocator.name),
            "allocated_bytes": usage.map { .integer(Int64($0.allocated)) } ?? .null,
            "resident_bytes": usage.map { .integer(Int64($0.resident)) } ?? .null,
        ])
    }
}

/// The most recent `capacity` latency samples (8192 unless given), for percentiles.
struct LatencyRing {
    private let capacity: Int
    private var samples: [Int64] = []
    private var next = 0

    init(capacity: Int = 8192) {
        self.capacity = capacity
    }

    mutating func record(_ value: Int64) {
        if samples.count < capacity {
            samples.append(value)
        } else {
            samples[next] = value
            next = (next + 1) % capacity
        }
    }

    /// `{"p50", "p99", "p999", "samples"}` (null percentiles before the first sample).
    var percentiles: JSONValue {
        let sorted = samples.sorted()
        func percentile(_ p: Double) -> JSONValue {
            sorted.isEmpty ? .null : .integer(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))])
        }
        return .object(["p50": percentile(0.5), "p99": percentile(0.99), "p999": percentile(0.999), "samples": .integer(Int64(sorted.count))])
    }
}
