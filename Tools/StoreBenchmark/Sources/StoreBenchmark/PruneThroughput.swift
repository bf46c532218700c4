import Foundation
import SteleCore
import SteleStore

/// `--prune N [--keep DIR]`: builds an N-entry test-mode ledger whose first half is past its
/// retention at the cutoff (logins kept 365 days, appended a year and more before it) and whose
/// second half is not, then prunes it and reports entries pruned per second against the rate the
/// same entries were appended at in this run. With `--keep DIR` the pruned store stays there; with
/// `--build-only` it is left unpruned, and `--key FILE` gives it a signing key, for a daemon to serve
/// it (`Tools/bench-prune.sh`).
enum PruneThroughput {
    static func run(total: Int, keep: String?, buildOnly: Bool, key: String?) throws {
        if let key { _ = try SigningKeyFile.loadOrCreate(key) }
        let directory = keep ?? temporaryDirectory()
        var options = Ledger.Options()
        options.createWithOrigin = "bench.example/prune"
        options.createInTestMode = true
        options.initialMapSize = 1 << 32
        let ledger = try Ledger(path: directory, options: options)
        let writer = try LedgerWriter(ledger: ledger)
        let preparer = ledger.makePreparer()
        let start = Timestamp(rfc3339: "2030-01-01T00:00:00Z")!
        let day: Int64 = 86_400_000_000
        let appendTime = try seconds {
            for first in stride(from: 0, to: total, by: 5000) {
                let count = min(5000, total - first)
                // First half on day 0, second half on day 400: at day 366 only the first half is due.
                let clock = start.adding(microseconds: first < total / 2 ? 0 : 400 * day)
                let events = try (first..<first + count).map { try preparer.prepare(event($0)) }
                _ = try writer.append(prepared: events, now: { clock })
            }
        }
        if buildOnly {
            try writer.close()
            print(String(format: "built %d entries in %.2f s: %.0f entries/s", total, appendTime, Double(total) / appendTime))
            return
        }
        var request = PruneRequest(cutoff: start.adding(microseconds: 366 * day), operatorName: "bench", request: "bench", reason: "throughput")
        request.maximumBatch = 10_000
        var report: PruneReport?
        let pruneTime = try seconds { report = try writer.prune(request, policy: RetentionPolicy(catalogue: .builtIn)) }
        try writer.close()
        let pruned = report?.pruned ?? 0
        print(String(format: "prune: %d of %d entries due, pruned in %.2f s: %.0f entries/s (goal >= 200,000), %d receipts; appending them took %.2f s: %.0f entries/s; ratio prune/append %.2f",
                     pruned, total, pruneTime, Double(pruned) / pruneTime, report?.receipts.count ?? 0, appendTime / 2, Double(total) / appendTime,
                     (Double(pruned) / pruneTime) / (Double(total) / appendTime)))
        if keep == nil { try? FileManager.default.removeItem(atPath: directory) }
    }
}
