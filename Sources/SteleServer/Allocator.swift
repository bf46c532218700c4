import CJemalloc

/// The process's memory allocator, jemalloc, which linking this module puts in place of glibc's
/// `malloc` for every library in the process (Swift's runtime, Foundation, NIO, LMDB).
///
/// Why not glibc's: the daemon allocates each request's buffers and objects on an event loop and
/// frees most of them on the writer or the store thread, and the writer's receipts travel the
/// other way. glibc's per-thread caches take back only what their own thread frees, so every
/// allocation on an event loop went to its arena's locked, slower path (about a seventh of the
/// event loops' time under full load). jemalloc hands memory freed on one thread back to its
/// owner in batches. With both builds under the same load at the same time (`Tools/bench-pair.sh`),
/// it cut the daemon's CPU time per appended event to 0.78 of glibc's with 4 pipelining clients
/// (median of 5 rounds, 0.76 to 0.89), 0.86 with clients sending at a fixed rate, and 0.95 with 32
/// clients waiting for each reply, where system calls and wake-ups take most of the time.
enum Allocator {
    /// The allocator and its version, as `stats` reports it (`jemalloc 5.3.0-0-g…`).
    static let name: String = {
        var version: UnsafePointer<CChar>?
        var size = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl("version", &version, &size, nil, 0) == 0, let version else { return "jemalloc" }
        return "jemalloc " + String(cString: version)
    }()

    /// Bytes in use by the process's allocations, and bytes of memory the allocator holds resident
    /// for them (its own bookkeeping and cached free memory included), as of now; nil if the
    /// allocator keeps no statistics. LMDB's memory map is not counted in either.
    static func usage() -> (allocated: Int, resident: Int)? {
        // Statistics are merged across threads when the epoch advances.
        var epoch: UInt64 = 1
        guard mallctl("epoch", nil, nil, &epoch, MemoryLayout<UInt64>.size) == 0 else { return nil }
        func read(_ name: String) -> Int? {
            var value = 0
            var size = MemoryLayout<Int>.size
            return mallctl(name, &value, &size, nil, 0) == 0 ? value : nil
        }
        guard let allocated = read("stats.allocated"), let resident = read("stats.resident") else { return nil }
        return (allocated, resident)
    }
}
