import Dispatch
import Glibc

/// A map from ``KeyedHash`` to seq: open addressing with linear probing over one flat buffer.
///
/// Hand-written rather than a `Dictionary` because it sits on the writer's path for every appended
/// id: its keys are already uniformly random keyed hashes, so the slot comes straight from their
/// low bits, with none of the per-operation SipHash a `Dictionary` runs, and a probe touches one
/// contiguous slot array. Removal shifts later entries of the probe run back, so no tombstones build up.
///
/// Growth never stops the caller for long. At three eighths full the next table, twice the size,
/// is allocated, and another thread has the kernel fault its pages in, a little after every few
/// hundred inserts (all at once, it takes a processor away for as long as the whole table takes,
/// and on a 2-core machine every acknowledgement feels that); past half full, that table
/// takes the inserts and the keys move over a few slots at a time, with each later insert or
/// removal. A `Dictionary` rehashes everything at once; at a few million keys that held the
/// daemon's writer, and so every acknowledgement, for tenths of a second. (Leaving the pages to
/// fault in as they are used is no way out: a lookup that reads a page before anything wrote it
/// maps the shared zero page, and the first write then replaces it, which makes the kernel
/// interrupt every other processor running the process to flush its TLB, thousands of times per
/// second; and on a virtual machine each first touch of a page can cost a fault in the host too.)
@_spi(Benchmarks) public final class KeyedHashTable {
    /// Slots each insert or removal moves from the old table while growing. With growth at half
    /// full, the old table is empty long before the new one is half full.
    private static let slotsMovedPerChange = 16

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
    /// The table the next growth moves to, once `table` is three eighths full, and how many of its
    /// bytes have been handed to ``SlotTable/pager`` to fault in.
    private var next: SlotTable?
    private var requested = 0
    private var insertsSinceRequest = 0
    /// Bytes of the next table to fault in per insert: the eighth of inserts before growth needs
    /// 384 (24 bytes a slot, twice the slots), so it is ready well before it is used.
    private static let bytesPerInsert = 512
    private static let insertsPerRequest = 512
    /// The most keys the owner keeps: no next table is prepared that could only serve more.
    private let maximumCount: Int

    /// An empty table with room for about `capacity` keys before it first grows, for an owner that
    /// keeps at most `maximumCount` keys (more still fit, but no growth is prepared for them ahead).
    @_spi(Benchmarks) public init(capacity: Int = 1 << 12, maximumCount: Int = .max) {
        table = SlotTable(capacity: max(16, 1 << (Int.bitWidth - (capacity * 2 - 1).leadingZeroBitCount)))
        self.maximumCount = maximumCount
    }

    deinit {
        // After any page requests still queued for these tables.
        table.freeElsewhere()
        old?.freeElsewhere()
        next?.freeElsewhere()
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
        old?.freeElsewhere()
        old = nil
        table.clear()
        occupied = 0
        count = 0
    }

    /// Where `key` sits in `old`, if it has not moved to `table` yet and was not removed.
    private func unmovedIndex(of key: KeyedHash, in old: SlotTable) -> Int? {
        guard let index = old.find(key), index >= moved, old.slots[index].seqPlusOne != SlotTable.removed else { return nil }
        return index
    }

    /// Allocates the next table once `table` is three eighths full, then has a little more of it
    /// faulted in every ``insertsPerRequest`` inserts.
    private func prepareNext() {
        if next == nil {
            guard old == nil, occupied * 8 >= table.capacity * 3, maximumCount > table.capacity / 2 else { return }
            next = SlotTable(capacity: table.capacity * 2)
            (requested, insertsSinceRequest) = (0, 0)
        }
        guard let next, requested < next.byteCount else { return }
        insertsSinceRequest += 1
        guard insertsSinceRequest >= Self.insertsPerRequest else { return }
        insertsSinceRequest = 0
        let end = min(next.byteCount, requested + Self.bytesPerInsert * Self.insertsPerRequest)
        next.faultIn(bytes: requested..<end)
        requested = end
    }

    private func startGrowing() {
        let grown = next ?? SlotTable(capacity: table.capacity * 2)
        if next != nil { grown.faultIn(bytes: requested..<grown.byteCount) }  // if removals slowed the inserts
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
    var byteCount: Int { slots.count * MemoryLayout<Slot>.stride }
    /// Tables from this size on are anonymous mappings rather than `malloc` blocks.
    private static let mappedFrom = 1 << 20
    private var mapped: Bool { byteCount >= Self.mappedFrom }

    /// Where large tables' pages are faulted in and freed: one thread, off the writer's.
    private static let pager = DispatchQueue(label: "stele-idempotency-pages", qos: .utility)

    /// A table of `capacity` empty slots. A large one is a fresh anonymous mapping, which the
    /// kernel hands out zeroed, its pages not yet faulted in (``faultIn(bytes:)``).
    init(capacity: Int) {
        let bytes = capacity * MemoryLayout<Slot>.stride
        let memory: UnsafeMutableRawPointer?
        if bytes >= Self.mappedFrom {
            let mapping = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            memory = mapping == MAP_FAILED ? nil : mapping
        } else {
            memory = calloc(capacity, MemoryLayout<Slot>.stride)
        }
        guard let memory else { fatalError("out of memory for \(capacity) idempotency slots") }
        slots = UnsafeMutableBufferPointer(start: memory.bindMemory(to: Slot.self, capacity: capacity), count: capacity)
    }

    /// Has ``pager`` fault in this byte range of a large table, writable: `MADV_POPULATE_WRITE`
    /// never changes the memory's contents, so it may race with use. (Older kernels refuse the
    /// advice; the pages then fault in as they are used.)
    func faultIn(bytes range: Range<Int>) {
        guard mapped, !range.isEmpty else { return }
        let address = UInt(bitPattern: slots.baseAddress) + UInt(range.lowerBound)
        let count = range.count
        Self.pager.async { _ = madvise(UnsafeMutableRawPointer(bitPattern: address), count, 23 /* MADV_POPULATE_WRITE */) }
    }

    /// Makes every slot empty.
    func clear() { memset(slots.baseAddress!, 0, byteCount) }

    func free() {
        if mapped { munmap(slots.baseAddress, byteCount) } else { Glibc.free(slots.baseAddress) }
    }

    /// Frees a large table on another thread: handing hundreds of megabytes back to the kernel
    /// takes milliseconds (about 10 ms for 96 MiB here), which the writer would otherwise wait out.
    func freeElsewhere() {
        guard mapped else { return free() }
        let (address, bytes) = (UInt(bitPattern: slots.baseAddress), byteCount)
        Self.pager.async { _ = munmap(UnsafeMutableRawPointer(bitPattern: address), bytes) }
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
