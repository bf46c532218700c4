// The machine's CPU time by state, for the probes that report how much of it the hypervisor took.
import Foundation

/// The machine's CPU time by state, from the first line of `/proc/stat` (all CPUs, in ticks).
/// `steal` is CPU time the hypervisor took from this VM's vCPUs while they had work: on some VMs
/// every wake-up of an idle vCPU and every disk request costs some of it.
struct CPUTimes {
    var user = 0.0, nice = 0.0, system = 0.0, idle = 0.0, iowait = 0.0, irq = 0.0, softirq = 0.0, steal = 0.0
    static func read() -> CPUTimes {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first
        else { return CPUTimes() }
        let v = line.split(separator: " ").dropFirst().prefix(8).map { Double($0) ?? 0 }
        guard v.count == 8 else { return CPUTimes() }
        return CPUTimes(user: v[0], nice: v[1], system: v[2], idle: v[3], iowait: v[4], irq: v[5], softirq: v[6], steal: v[7])
    }
    func since(_ o: CPUTimes) -> CPUTimes {
        CPUTimes(
            user: user - o.user, nice: nice - o.nice, system: system - o.system, idle: idle - o.idle,
            iowait: iowait - o.iowait, irq: irq - o.irq, softirq: softirq - o.softirq, steal: steal - o.steal)
    }
    var total: Double { user + nice + system + idle + iowait + irq + softirq + steal }
    var stealShare: Double { total > 0 ? steal / total : 0 }
    var busyShare: Double { total > 0 ? (user + nice + system + irq + softirq) / total : 0 }
    /// Stolen CPU time in seconds (ticks are 1/100 s: `CLK_TCK` on Linux).
    var stolenSeconds: Double { steal / Double(sysconf(Int32(_SC_CLK_TCK))) }
}
