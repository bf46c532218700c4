/// A map from ``KeyedHash`` to seq: open addressing with linear probing over one flat buffer.
///
/// Hand-written rather than a `Dictionary` because it sits on the writer's path for every appended
/// id: its keys are already uniformly random keyed hashes, so the slot comes straight from their
/// low bits, with none of the per-operation SipHash a `Dictionary` runs, and a probe touches one
/// contiguous slot array. Removal shifts later entries of the probe run back, so no tombstones build up.
final class KeyedHashTable {
    private struct Slot {
        var high: UInt64
        var low: UInt64
        /// seq + 1; 0 marks an empty slot.
        var seqPlusOne: UInt64
    }

    private var slots: UnsafeMutableBufferPointer<Slot>
    private var mask: Int
    /// The number of keys held.
    private(set) var count = 0

    init(capacity: Int = 1 << 12) {
        let size = max(16, 1 << (Int.bitWidth - (capacity * 2 - 1).leadingZeroBitCount))
        slots = .allocate(capacity: size)
        slots.initialize(repeating: Slot(high: 0, low: 0, seqPlusOne: 0))
        mask = size - 1
    }

    deinit { slots.deallocate() }

    /// The seq recorded for `key`.
    subscript(key: KeyedHash) -> UInt64? {
        var index = Int(truncatingIfNeeded: key.low) & mask
        while true {
            let slot = slots[index]
            if slot.seqPlusOne == 0 { return nil }
            if slot.low == key.low && slot.high == key.high { return slot.seqPlusOne - 1 }
            index = (index + 1) & mask
        }
    }

    /// Records `seq` for `key`, replacing any earlier seq.
    func set(_ key: KeyedHash, _ seq: UInt64) {
        if (count + 1) * 2 > slots.count { grow() }
        var index = Int(truncatingIfNeeded: key.low) & mask
        while slots[index].seqPlusOne != 0 {
            if slots[index].low == key.low && slots[index].high == key.high {
                slots[index].seqPlusOne = seq + 1
                return
            }
            index = (index + 1) & mask
        }
        slots[index] = Slot(high: key.high, low: key.low, seqPlusOne: seq + 1)
        count += 1
    }

    /// Removes `key` if present.
    func remove(_ key: KeyedHash) {
        var index = Int(truncatingIfNeeded: key.low) & mask
        while true {
            if slots[index].seqPlusOne == 0 { return }
            if slots[index].low == key.low && slots[index].high == key.high { break }
            index = (index + 1) & mask
        }
        // Backward-shift deletion: move later members of the run into the hole when their home slot
        // does not lie cyclically within (hole, their position].
        var hole = index
        var next = (hole + 1) & mask
        while slots[next].seqPlusOne != 0 {
            let home = Int(truncatingIfNeeded: slots[next].low) & mask
            let distanceToHole = (next - hole) & mask
            let distanceToHome = (next - home) & mask
            if distanceToHome >= distanceToHole {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = Slot(high: 0, low: 0, seqPlusOne: 0)
        count -= 1
    }

    /// Forgets every key.
    func removeAll() {
        slots.update(repeating: Slot(high: 0, low: 0, seqPlusOne: 0))
        count = 0
    }

    private func grow() {
        let old = slots
        slots = .allocate(capacity: old.count * 2)
        slots.initialize(repeating: Slot(high: 0, low: 0, seqPlusOne: 0))
        mask = slots.count - 1
        count = 0
        for slot in old where slot.seqPlusOne != 0 {
            set(KeyedHash(high: slot.high, low: slot.low), slot.seqPlusOne - 1)
        }
        old.deallocate()
    }
}
