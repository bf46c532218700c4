@_spi(Benchmarks) @testable import SteleStore
import Testing

@Suite("The chunked queue")
struct ChunkedQueueTests {
    @Test("appends, removals at both ends and reads by offset agree with an Array, across chunk boundaries")
    func agreesWithArray() {
        var generator = SystemRandomNumberGenerator()
        var queue = ChunkedQueue<Int>()
        var reference: [Int] = []
        var next = 0
        for step in 0..<4000 {
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<6:
                // Runs of up to three chunks' worth, so chunks fill, empty and are dropped.
                let n = Int.random(in: 0...9000, using: &generator)
                queue.append(contentsOf: Array(next..<next + n))
                reference += next..<next + n
                next += n
            case 6..<8:
                let k = Int.random(in: 0...reference.count, using: &generator)
                queue.removeFirst(k)
                reference.removeFirst(k)
            default:
                let k = Int.random(in: 0...min(reference.count, 5000), using: &generator)
                queue.removeLast(k)
                reference.removeLast(k)
            }
            #expect(queue.count == reference.count)
            #expect(queue.first == reference.first)
            if !reference.isEmpty {
                for offset in [0, reference.count / 3, reference.count - 1, Int.random(in: 0..<reference.count, using: &generator)]
                where queue[offset] != reference[offset] {
                    Issue.record("offset \(offset) of \(reference.count) differs at step \(step)")
                }
            }
        }
        let all = (0..<queue.count).map { queue[$0] }
        #expect(all == reference)
    }
}
