import NIOConcurrencyHelpers
import SteleCore
import SteleStore

/// The connections' counters for `{"op":"stats"}` and `stele status`, beside the writer's own
/// (``WriterStatistics``). Thread-safe.
public final class ServerStats: Sendable {
    private struct State {
        var errors: [String: UInt64] = [:]
        var connections = 0
        var connectionsBySource: [String: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())
    /// Apart from `state`: the event loops record into it for every batch.
    private let acks = NIOLockedValueBox(LatencyRing(capacity: 65_536))
    private let started = Timestamp.now()
    private let allocator: AllocatorReport

    init(allocator: AllocatorReport = .unknown) {
        self.allocator = allocator
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

    /// Counts a connection from `source`; returns the connections open now, in all and from it.
    func connectionOpened(source: String) -> (all: Int, source: Int) {
        state.withLockedValue { s in
            s.connections += 1
            s.connectionsBySource[source, default: 0] += 1
            return (s.connections, s.connectionsBySource[source]!)
        }
    }

    func connectionClosed(source: String) {
        state.withLockedValue { s in
            s.connections -= 1
            s.connectionsBySource[source, default: 1] -= 1
            if s.connectionsBySource[source] == 0 { s.connectionsBySource[source] = nil }
        }
    }

    /// Open connections now.
    var connections: Int { state.withLockedValue { $0.connections } }

    /// The stats reply object (without `ok`): the writer's counters and these.
    func snapshot(writer: WriterStatistics, treeSize: UInt64) -> [String: JSONValue] {
        let memory = allocator.snapshot
        let acks = self.acks.withLockedValue { $0 }.percentiles  // sorted outside the lock
        var snapshot = writer.snapshot
        state.withLockedValue { s in
            snapshot["errors"] = .object(s.errors.mapValues { .integer(Int64($0)) })
            snapshot["connections"] = .integer(Int64(s.connections))
        }
        snapshot["ack_us"] = acks
        snapshot["tree_size"] = .integer(Int64(treeSize))
        snapshot["uptime_seconds"] = .integer((Timestamp.now().microseconds - started.microseconds) / 1_000_000)
        snapshot["memory"] = memory
        return snapshot
    }
}

/// The process's allocator and its memory use, for `stats`: the executable that links the
/// allocator reports it (`stele serve` runs on jemalloc).
public struct AllocatorReport: Sendable {
    /// The allocator and its version.
    public var name: String
    /// Bytes allocated, and bytes the allocator holds resident; nil if it keeps no statistics.
    public var usage: @Sendable () -> (allocated: Int, resident: Int)?

    public init(name: String, usage: @escaping @Sendable () -> (allocated: Int, resident: Int)?) {
        self.name = name
        self.usage = usage
    }

    /// An allocator that reports nothing.
    public static let unknown = AllocatorReport(name: "unknown", usage: { nil })

    /// `{"allocator", "allocated_bytes", "resident_bytes"}` (null counts if the allocator keeps none).
    var snapshot: JSONValue {
        let usage = usage()
        return .object([
            "allocator": .string(name),
            "allocated_bytes": usage.map { .integer(Int64($0.allocated)) } ?? .null,
            "resident_bytes": usage.map { .integer(Int64($0.resident)) } ?? .null,
        ])
    }
}
