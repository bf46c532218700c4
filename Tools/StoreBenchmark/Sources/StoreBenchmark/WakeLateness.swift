// `--wakeups N`: how late this machine wakes a thread that sleeps 200 µs, N times in a row: the
// scheduling floor under every latency the daemon's benchmarks report. An acknowledgement takes
// about five such wake-ups (the client's sender, the daemon's event loop, its writer, the event
// loop again, the client's receiver), so a p99.9 of several milliseconds here, on an otherwise idle
// machine, bounds what any p99 there can show. The line also gives the CPU time the hypervisor took
// meanwhile (steal): on a VM where waking an idle vCPU is costly, each wake-up takes some.
import Foundation

enum WakeLateness {
    static func run(count: Int) {
        let requested: UInt64 = 200_000
        var lateness = [UInt64]()
        lateness.reserveCapacity(count)
        let cpuBefore = CPUTimes.read()
        for _ in 0..<count {
            let start = DispatchTime.now().uptimeNanoseconds
            var pause = timespec(tv_sec: 0, tv_nsec: Int(requested))
            var left = timespec()
            while nanosleep(&pause, &left) != 0 && errno == EINTR { pause = left }
            let slept = DispatchTime.now().uptimeNanoseconds - start
            lateness.append(slept > requested ? slept - requested : 0)
        }
        let cpu = CPUTimes.read().since(cpuBefore)
        lateness.sort()
        func at(_ p: Double) -> Double { Double(lateness[min(count - 1, Int(Double(count) * p))]) / 1000 }
        print(String(
            format: "wake-up lateness of a 200 µs sleep, %d sleeps, µs: p50=%.0f p99=%.0f p99.9=%.0f max=%.0f  steal=%.0f%% (%.0f µs of CPU per wake-up) busy=%.0f%%",
            count, at(0.5), at(0.99), at(0.999), Double(lateness[count - 1]) / 1000,
            cpu.stealShare * 100, cpu.stolenSeconds / Double(count) * 1e6, cpu.busyShare * 100))
    }
}
