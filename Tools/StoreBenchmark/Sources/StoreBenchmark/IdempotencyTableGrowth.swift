import Foundation
@_spi(Benchmarks) import SteleStore

/// `--idempotency-table N`: the daemon's writer looks up every appended id among the recent ones
/// and then records it. This does that N times with random keys, in the writer's table and, as the
/// baseline in the same run, in a `Dictionary` (which, like the table before it, rehashes every key
/// at once each time it doubles), and reports the longest single step and the mean. Then the same
/// for the queue that keeps those keys in arrival order, against an `Array`.
enum IdempotencyTableGrowth {
    struct Result {
        var worst: Double  // seconds
        var total: Double
    }

    static func run(keys count: Int, rounds: Int) {
        var generator = SystemRandomNumberGenerator()
        let keys = (0..<count).map { _ in KeyedHash(high: generator.next(), low: generator.next()) }
        var table: [Result] = []
        var dictionary: [Result] = []
        for _ in 0..<rounds {
            // The previous round's table still has page requests and its unmapping queued on a
            // background queue; let those finish, so no round times the one before it.
            usleep(500_000)
            let hashTable = KeyedHashTable()
            table.append(timeEach(keys) { key, seq in
                if hashTable[key] == nil { hashTable.set(key, seq) }
            })
            var hashes: [KeyedHash: UInt64] = [:]
            dictionary.append(timeEach(keys) { key, seq in
                if hashes[key] == nil { hashes[key] = seq }
            })
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let (tableWorst, tableTotal) = (median(table.map(\.worst)), median(table.map(\.total)))
        let (dictionaryWorst, dictionaryTotal) = (median(dictionary.map(\.worst)), median(dictionary.map(\.total)))
        print("idempotency keys: \(count) lookups and inserts of random keys, medians of \(rounds) interleaved rounds")
        print(String(format: "  writer's table:        longest step %9.3f ms, mean %6.1f ns", tableWorst * 1e3, tableTotal / Double(count) * 1e9))
        print(String(format: "  Dictionary (baseline): longest step %9.3f ms, mean %6.1f ns", dictionaryWorst * 1e3, dictionaryTotal / Double(count) * 1e9))
        print(String(format: "  longest step, table/Dictionary = %.4f; mean, table/Dictionary = %.2f", tableWorst / dictionaryWorst, tableTotal / dictionaryTotal))
        let list = { (results: [Result]) in results.map { String(format: "%.3f", $0.worst * 1e3) }.joined(separator: " ") }
        print("  rounds, longest step ms: table \(list(table)); Dictionary \(list(dictionary))")

        // The keys in arrival order (seq, key, ts: 40 bytes each), as kept for expiry: appended,
        // and dropped from the front once the queue holds the most allowed (half of them here).
        var queue: [Result] = []
        var array: [Result] = []
        for _ in 0..<rounds {
            queue.append(arrivalOrderInChunkedQueue(keys, keeping: count / 2))
            array.append(arrivalOrderInArray(keys, keeping: count / 2))
        }
        let (queueWorst, arrayWorst) = (median(queue.map(\.worst)), median(array.map(\.worst)))
        print("keys in arrival order: \(count) appends, the oldest dropped past \(count / 2)")
        // (No mean here: the queue is generic code in another module, unspecialized from here.)
        print(String(format: "  chunked queue:    longest step %9.3f ms", queueWorst * 1e3))
        print(String(format: "  Array (baseline): longest step %9.3f ms", arrayWorst * 1e3))
        print(String(format: "  longest step, queue/Array = %.4f", queueWorst / arrayWorst))
        print("  rounds, longest step ms: queue \(list(queue)); Array \(list(array))")

        // Keys leaving the window: a second's worth at 50,000 appends/s dropped at once (the
        // writer's former once-a-second expiry), against the steps it now takes per batch (2 × a
        // 50-event batch + 64), from the table holding all N keys.
        let second = min(50_000, count / 2)
        var atOnce: [Double] = []
        var perBatch: [Double] = []
        for _ in 0..<rounds {
            atOnce.append(expiry(keys, dropping: second, step: second))
            perBatch.append(expiry(keys, dropping: second, step: 164))
        }
        print("keys leaving the window: \(second) of \(count) (a second's worth at 50,000 appends/s)")
        print(String(format: "  all at once:             %9.3f ms", median(atOnce) * 1e3))
        print(String(format: "  164 per batch (longest): %9.3f ms", median(perBatch) * 1e3))
    }

    /// Fills a table and an arrival-order queue with `keys`, then drops the `dropping` oldest,
    /// `step` at a time; returns the longest step.
    private static func expiry(_ keys: [KeyedHash], dropping: Int, step: Int) -> Double {
        let table = KeyedHashTable()
        var order = ChunkedQueue<Held>()
        for (seq, key) in keys.enumerated() {
            table.set(key, UInt64(seq))
            order.append(Held(seq: UInt64(seq), key: key, ts: Int64(seq)))
        }
        var worst: UInt64 = 0
        var dropped = 0
        while dropped < dropping {
            let start = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<min(step, dropping - dropped) {
                guard let oldest = order.first else { break }
                if table[oldest.key] == oldest.seq { table.remove(oldest.key) }
                order.removeFirst(1)
                dropped += 1
            }
            worst = max(worst, DispatchTime.now().uptimeNanoseconds - start)
        }
        return Double(worst) / 1e9
    }

    struct Held {
        let seq: UInt64
        let key: KeyedHash
        let ts: Int64
    }

    private static func arrivalOrderInChunkedQueue(_ keys: [KeyedHash], keeping limit: Int) -> Result {
        var queue = ChunkedQueue<Held>()
        return timeEach(keys) { key, seq in
            queue.append(Held(seq: seq, key: key, ts: Int64(seq)))
            if queue.count > limit { queue.removeFirst(1) }
        }
    }

    /// The previous form: an array and the index of its oldest key, compacted once more than half
    /// of it is dropped.
    private static func arrivalOrderInArray(_ keys: [KeyedHash], keeping limit: Int) -> Result {
        var array: [Held] = []
        var start = 0
        return timeEach(keys) { key, seq in
            array.append(Held(seq: seq, key: key, ts: Int64(seq)))
            if array.count - start > limit { start += 1 }
            if start > 4096 && start * 2 > array.count {
                array.removeFirst(start)
                start = 0
            }
        }
    }

    /// Times each call of `step` over `keys` (the clock's cost is in every variant).
    private static func timeEach(_ keys: [KeyedHash], _ step: (KeyedHash, UInt64) -> Void) -> Result {
        var worst: UInt64 = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var last = start
        for (seq, key) in keys.enumerated() {
            step(key, UInt64(seq))
            let now = DispatchTime.now().uptimeNanoseconds
            worst = max(worst, now - last)
            last = now
        }
        return Result(worst: Double(worst) / 1e9, total: Double(last - start) / 1e9)
    }
}
