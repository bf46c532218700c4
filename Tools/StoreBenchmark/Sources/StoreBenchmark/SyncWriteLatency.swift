// `--sync-writes RATE`: how long this machine's disk takes for one synchronous write of a journal-sized
// record (8 KiB, `O_DSYNC`, into a preallocated file in the working directory, like the daemon's
// journal), at RATE writes per second with the thread asleep in between (as the daemon's writer is at
// half load), and back to back. Every acknowledgement waits for at least one such write, and for the
// rest of the one in flight when its request arrived: so this write's p99 at the daemon's batch rate
// is a floor under the daemon's ack-latency p99 that no implementation acknowledging only durable
// events can go below on this machine.
import Foundation

enum SyncWriteLatency {
    static func run(rate: Int, seconds: Double) throws {
        let path = FileManager.default.currentDirectoryPath + "/stele-sync-write-probe.\(getpid())"
        let fileSize = 8 << 20
        let recordSize = 8192
        defer { unlink(path) }
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ProbeError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // Preallocated and synced first, so that the timed writes change no file-system metadata.
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        for offset in stride(from: 0, to: fileSize, by: zeros.count) {
            guard pwrite(fd, zeros, zeros.count, off_t(offset)) == zeros.count else { throw ProbeError("cannot fill \(path)") }
        }
        guard fsync(fd) == 0 else { throw ProbeError("cannot sync \(path)") }
        let synchronous = open(path, O_RDWR | O_DSYNC | O_CLOEXEC)
        guard synchronous >= 0 else { throw ProbeError("cannot reopen \(path)") }
        defer { close(synchronous) }
        let record = [UInt8](repeating: 0x5A, count: recordSize)
        for paced in [rate, 0] {
            var latencies = [Double]()
            var offset = 0
            let cpuBefore = CPUTimes.read()
            let start = DispatchTime.now().uptimeNanoseconds
            let end = start + UInt64(seconds * 1e9)
            var next = start
            while true {
                if paced > 0 {
                    next += 1_000_000_000 / UInt64(paced)
                    let now = DispatchTime.now().uptimeNanoseconds
                    if next > now { sleep(nanoseconds: next - now) }
                }
                let before = DispatchTime.now().uptimeNanoseconds
                if before >= end { break }
                guard pwrite(synchronous, record, recordSize, off_t(offset)) == recordSize else {
                    throw ProbeError("write to \(path) failed: \(String(cString: strerror(errno)))")
                }
                latencies.append(Double(DispatchTime.now().uptimeNanoseconds - before) / 1000)
                offset = (offset + recordSize) % fileSize
            }
            let cpu = CPUTimes.read().since(cpuBefore)
            latencies.sort()
            func at(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
            let mean = latencies.reduce(0, +) / Double(latencies.count)
            print(String(
                format: "synchronous 8 KiB write (O_DSYNC), %@: %d writes, µs: mean=%.0f p50=%.0f p90=%.0f p99=%.0f p99.9=%.0f max=%.0f  steal=%.0f%% (%.0f µs of CPU per write) busy=%.0f%%",
                paced > 0 ? "\(paced)/s with sleeps between" : "back to back (\(Int(Double(latencies.count) / seconds))/s)",
                latencies.count, mean, at(0.5), at(0.9), at(0.99), at(0.999), latencies.last ?? 0,
                cpu.stealShare * 100, cpu.stolenSeconds / Double(latencies.count) * 1e6, cpu.busyShare * 100))
        }
    }

    private static func sleep(nanoseconds: UInt64) {
        var pause = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var left = timespec()
        while nanosleep(&pause, &left) != 0 && errno == EINTR { pause = left }
    }

    struct ProbeError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
