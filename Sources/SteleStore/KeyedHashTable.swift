import Dispatch
import Glibc

/// A map from ``KeyedHash`` to seq: open addressing with linear probing over one flat buffer.
///
/// Hand-written rather than a `Dictionary` because it sits on the writer's path for every appended
/// id: its keys are already uniformly random keyed hashes, so the slot comes straight from their
/// low bits, with none of the per-operation SipHash a `Dictionary` runs, and a probe touches one
/// contiguous slot array. Removal shifts later entries of the probe run back, so no tombstones build up.
///
/// Growth never stops the caller for long. From three eighths full, each insert also zeroes a
/// little of the next table, twice the size; past half full, that table takes the inserts and the
/// keys move over a few slots at a time, with each later insert or removal. A `Dictionary`
/// rehashes everything at once; at a few million keys that held the daemon's writer, and so every
/// acknowledgement, for tenths of a second. (Zeroed memory straight from the kernel is no way out:
/// a lookup that reads a page before anything wrote it maps the shared zero page, and the first
/// write then replaces it, which makes the kernel interrupt every other processor running the
/// process to flush its TLB, thousands of times per second.)
@_spi(Benchmarks) public final class KeyedHashTable {
    /// Slots each insert or removal moves from the old table while growing. With growth at half
    /// full, the old table is empty long before the new one is half full.
    private static let slotsMovedPerChange = 16
    /// Bytes of the next table each insert zeroes; it is ready well before it is needed (a table of
    /// c slots takes 24c bytes to double, with c/8 inserts to do it in).
    private static let bytesZeroedPerInsert = 1024

    /// The number of keys held.
    @_spi(Benchmarks) public private(set) var count = 0
    /// Where keys are inserted.
    private var table: SlotTable
    /// Entries physically in `table`.
    private var occupied = 0
    /// While growing: the previous table, whose slots below `moved` are in `table` now. Its
    /// entries are never shifted; a key removed from it is marked removed instead, so its probe
    /// runs stay intact until it is freed.
    private var old: SlotTable?
    private var moved = 0
    /// The table the next growth moves to, once `table` is three eighths full; its first `zeroed`
    /// bytes are empty slots, the rest not yet written.
    private var next: SlotTable?
    private var zeroed = 0
    /// The most keys the owner keeps: no next table is prepared that could only serve more.
    private let maximumCount: Int

    /// An empty table with room for about `capacity` keys before it first grows, for an owner that
    /// keeps at most `maximumCount` keys (more still fit, but no growth is prepared for them ahead).
    @_spi(Benchmarks) public init(capacity: Int = 1 << 12, maximumCount: Int = .max) {
        table = SlotTable(capacity: max(16, 1 << (Int.bitWidth - (capacity * 2 - 1).leadingZeroBitCount)))
        table.zero(bytes: 0..<table.byteCount)
        self.maximumCount = maximumCount
    }

    deinit {
        table.free()
        old?.free()
        next?.free()
    }

    /// The seq recorded for `key`.
    @_spi(Benchmarks) public subscript(key: KeyedHash) -> UInt64? {
        if let index = table.find(key) { return table.slots[index].seqPlusOne - 1 }
        if let old, let index = unmovedIndex(of: key, in: old) { return old.slots[index].seqPlusOne - 1 }
        return nil
    }

    /// Records `seq` for `key`, replacing any earlier seq.
    @_spi(Benchmarks) public func set(_ key: KeyedHash, _ seq: UInt64) {
        moveSomeSlots()
        if let index = table.find(key) {
            table.slots[index].seqPlusOne = seq + 1
            return
        }
        if let old, let index = unmovedIndex(of: key, in: old) {
            // Held in the old table: it moves now, so it is never in both.
            old.slots[index].seqPlusOne = SlotTable.removed
        } else {
            count += 1
        }
        if old == nil && (occupied + 1) * 2 > table.capacity { startGrowing() }
        table.insert(key, seq + 1)
        occupied += 1
        prepareNext()
    }

    /// Removes `key` if present.
    @_spi(Benchmarks) public func remove(_ key: KeyedHash) {
        moveSomeSlots()
        if let index = table.find(key) {
            table.remove(at: index)
            occupied -= 1
            count -= 1
        } else if let old, let index = unmovedIndex(of: key, in: old) {
            old.slots[index].seqPlusOne = SlotTable.removed
            count -= 1
        }
    }

    /// Forgets every key.
    func removeAll() {
        old?.free()
        old = nil
        table.zero(bytes: 0..<table.byteCount)
        occupied = 0
        count = 0
    }

    /// Where `key` sits in `old`, if it has not moved to `table` yet and was not removed.
    private func unmovedIndex(of key: KeyedHash, in old: SlotTable) -> Int? {
        guard let index = old.find(key), index >= moved, old.slots[index].seqPlusOne != SlotTable.removed else { return nil }
        return index
    }

    /// Zeroes a little more of the next table, allocating it once `table` is three eighths full.
    private func prepareNext() {
        if next == nil {
            guard old == nil, occupied * 8 >= table.capacity * 3, maximumCount > table.capacity / 2 else { return }
            next = SlotTable(capacity: table.capacity * 2)
            zeroed = 0
        }
        guard let next, zeroed < next.byteCount else { return }
        let end = min(next.byteCount, zeroed + Self.bytesZeroedPerInsert)
        next.zero(bytes: zeroed..<end)
        zeroed = end
    }

    private func startGrowing() {
        let grown = next ?? SlotTable(capacity: table.capacity * 2)
        if next == nil { zeroed = 0 }
        grown.zero(bytes: zeroed..<grown.byteCount)  // nothing left, unless removals slowed the inserts
        next = nil
        old = table
        moved = 0
        table = grown
        occupied = 0
    }

    private func moveSomeSlots() {
        guard let old else { return }
        let end = min(old.capacity, moved + Self.slotsMovedPerChange)
        while moved < end {
            let slot = old.slots[moved]
            if slot.seqPlusOne != 0 && slot.seqPlusOne != SlotTable.removed {
                table.insert(KeyedHash(high: slot.high, low: slot.low), slot.seqPlusOne)
                occupied += 1
            }
            moved += 1
        }
        if moved == old.capacity {
            old.freeElsewhere()
            self.old = nil
        }
    }
}

/// One flat, power-of-two sized array of slots (its memory is owned by ``KeyedHashTable``).
private struct SlotTable {
    struct Slot {
        var high: UInt64
        var low: UInt64
        /// seq + 1; 0 marks an empty slot, ``SlotTable/removed`` a key removed from an old table.
        var seqPlusOne: UInt64
    }

    static let removed = UInt64.max

    let slots: UnsafeMutableBufferPointer<Slot>
    var capacity: Int { slots.count }
    private var mask: Int { slots.count - 1 }

    /// A table of `capacity` slots, not yet written: ``zero(bytes:)`` all of it before use.
    init(capacity: Int) {
        guard let memory = malloc(capacity * MemoryLayout<Slot>.stride) else {
            fatalError("out of memory for \(capacity) idempotency slots")
        }
        slots = UnsafeMutableBufferPointer(start: memory.bindMemory(to: Slot.self, capacity: capacity), count: capacity)
    }

    var byteCount: Int { slots.count * MemoryLayout<Slot>.stride }

    /// Makes the slots in this byte range empty.
    func zero(bytes range: Range<Int>) {
        memset(UnsafeMutableRawPointer(slots.baseAddress!) + range.lowerBound, 0, range.count)
    }

    func free() { Glibc.free(slots.baseAddress) }

    /// Frees a large table on another thread: handing hundreds of megabytes back to the kernel
    /// takes milliseconds (about 10 ms for 96 MiB here), which the writer would otherwise wait out.
    func freeElsewhere() {
        guard byteCount >= 1 << 20 else { return free() }
        let address = UInt(bitPattern: slots.baseAddress)
        DispatchQueue.global(qos: .utility).async { Glibc.free(UnsafeMutableRawPointer(bitPattern: address)) }
    }

    /// The slot holding `key` (removed keys of an old table included), or nil.
    func find(_ key: KeyedHash) -> Int? {
        var index = Int(truncatingIfNeeded: key.low) & mask
        while true {
            let slot = slots[index]
            if slot.seqPlusOne == 0 { return nil }
            if slot.low == key.low && slot.high == key.high { return index }
            index = (index + 1) & mask
        }
    }

    /// Puts a key known to be absent into the first free slot of its run.
    func insert(_ key: KeyedHash, _ seqPlusOne: UInt64) {
        var index = Int(truncatingIfNeeded: key.low) & mask
        while slots[index].seqPlusOne != 0 { index = (index + 1) & mask }
        slots[index] = Slot(high: key.high, low: key.low, seqPlusOne: seqPlusOne)
    }

    /// Empties the slot at `index`. Backward-shift deletion: later members of the run move into the
    /// hole when their home slot does not lie cyclically within (hole, their position].
    func remove(at index: Int) {
        var hole = index
        var next = (hole + 1) & mask
        while slots[next].seqPlusOne != 0 {
            let home = Int(truncatingIfNeeded: slots[next].low) & mask
            if (next - home) & mask >= (next - hole) & mask {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = Slot(high: 0, low: 0, seqPlusOne: 0)
    }
}
