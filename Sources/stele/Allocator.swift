import CJemalloc
import SteleServer

/// The process's memory allocator, jemalloc, which linking it into this executable puts in place
/// of glibc's `malloc` for every library in the process (Swift's runtime, Foundation, NIO, LMDB);
/// libraries and tests that import Stele's modules keep their own.
///
/// Why not glibc's: the daemon allocates each request's buffers on an event loop and frees most
/// of them on the writer's queues, and glibc's per-thread caches take back only what their own
/// thread frees; jemalloc returns memory to its owner in batches (`Tools/bench-pair.sh` measures
/// the CPU per event of both builds under one load).
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

extension Allocator {
    /// What `stats` reports of jemalloc.
    static let report = AllocatorReport(name: name, usage: { usage() })
}
