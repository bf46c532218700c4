@_spi(Benchmarks) @testable import SteleStore
import Testing

@Suite("The idempotency key table")
struct KeyedHashTableTests {
    @Test("inserts, overwrites, removals and lookups agree with a Dictionary, also when keys collide in their slots")
    func agreesWithDictionary() {
        var generator = SystemRandomNumberGenerator()
        let table = KeyedHashTable(capacity: 16)
        var reference: [KeyedHash: UInt64] = [:]
        // Few distinct low bits force long probe runs, so removal has to shift entries back.
        let keys = (0..<3000).map { n in
            KeyedHash(high: UInt64.random(in: 0...UInt64.max, using: &generator), low: n % 3 == 0 ? UInt64(n % 7) : UInt64.random(in: 0...UInt64.max, using: &generator))
        }
        for step in 0..<40_000 {
            let key = keys[Int.random(in: 0..<keys.count, using: &generator)]
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<5:
                table.set(key, UInt64(step))
                reference[key] = UInt64(step)
            case 5..<8:
                table.remove(key)
                reference[key] = nil
            default:
                #expect(table[key] == reference[key])
            }
            if step % 5000 == 0 {
                #expect(table.count == reference.count)
                for probe in keys.prefix(500) where table[probe] != reference[probe] {
                    Issue.record("key \(probe) differs at step \(step)")
                }
            }
        }
        #expect(table.count == reference.count)
        for key in keys { #expect(table[key] == reference[key]) }
        table.removeAll()
        #expect(table.count == 0 && table[keys[0]] == nil)
    }

    @Test("while the table grows, keys changed, removed or added read back as they were left, and none comes back")
    func growthKeepsEveryKeyExact() {
        var generator = SystemRandomNumberGenerator()
        // Growth starts when the table passes half full and moves a few slots per change, so these
        // changes land while both tables are live; colliding low bits make runs that wrap around.
        for _ in 0..<6 {
            let table = KeyedHashTable(capacity: 16)
            var reference: [KeyedHash: UInt64] = [:]
            let keys = (0..<200).map { n in
                KeyedHash(high: UInt64.random(in: 0...UInt64.max, using: &generator), low: n % 2 == 0 ? UInt64(n % 5) &- 2 : UInt64.random(in: 0...UInt64.max, using: &generator))
            }
            for step in 0..<1500 {
                let key = keys[Int.random(in: 0..<min(keys.count, 20 + step / 4), using: &generator)]
                if Int.random(in: 0..<3, using: &generator) == 0 {
                    table.remove(key)
                    reference[key] = nil
                } else {
                    table.set(key, UInt64(step))
                    reference[key] = UInt64(step)
                }
                #expect(table.count == reference.count)
                for probe in keys where table[probe] != reference[probe] {
                    Issue.record("key \(probe) reads \(String(describing: table[probe])), not \(String(describing: reference[probe])), at step \(step)")
                }
            }
        }
    }
}
