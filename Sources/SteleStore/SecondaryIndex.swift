import SteleCore
import SteleLMDB

/// The subject, actor and kind indexes, in the one `idx` database (`Specs/store.md` §Indexes).
///
/// Each append adds one small record per role to the **recent** region, keyed by seq, so a commit
/// touches only the last page or two of that region. The commit that completes a block of 1024
/// entries also writes the block's **postings**: one record per (role, keyed hash) listing the block
/// offsets that have it, written in key order. A query reads one posting per sealed block and scans
/// the recent region after the last sealed block (fewer than 1024 entries).
struct SecondaryIndex {
    /// What an index record is about.
    enum Role: UInt8, CaseIterable {
        case actor = 0x61  // "a"
        case kind = 0x6B  // "k"
        case subject = 0x73  // "s"
    }

    static let blockShift: UInt64 = 10
    static let postingTag: UInt8 = 0x62  // "b"
    static let recentTag: UInt8 = 0x72  // "r"

    let db: Database

    /// `r ‖ seq ‖ role` → keyed hash.
    static func recentKey(seq: UInt64, role: Role) -> [UInt8] {
        withRecentKey(seq: seq, role: role) { Array($0) }
    }

    /// Runs `body` with the recent-region key `r ‖ seq ‖ role`, built on the stack.
    static func withRecentKey<R>(seq: UInt64, role: Role, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: 10, alignment: 1) { key in
            key[0] = recentTag
            withUnsafeBytes(of: seq.bigEndian) { UnsafeMutableRawBufferPointer(rebasing: key[1..<9]).copyMemory(from: $0) }
            key[9] = role.rawValue
            return try body(UnsafeRawBufferPointer(key))
        }
    }

    /// `b ‖ block ‖ role ‖ keyed hash` → ascending 2-byte big-endian offsets within the block.
    static func postingKey(block: UInt64, role: Role, hash: KeyedHash) -> [UInt8] {
        withPostingKey(block: block, role: role, hash: hash) { Array($0) }
    }

    /// Runs `body` with the 22-byte posting key, built on the stack.
    static func withPostingKey<R>(block: UInt64, role: Role, hash: KeyedHash, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeTemporaryAllocation(byteCount: 22, alignment: 1) { key in
            key[0] = postingTag
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: block).bigEndian) {
                UnsafeMutableRawBufferPointer(rebasing: key[1..<5]).copyMemory(from: $0)
            }
            key[5] = role.rawValue
            hash.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: key[6..<22]).copyMemory(from: $0) }
            return try body(UnsafeRawBufferPointer(key))
        }
    }

    static func offsets(_ value: UnsafeRawBufferPointer) -> [UInt16] {
        stride(from: 0, to: value.count - 1, by: 2).map { UInt16(value[$0]) << 8 | UInt16(value[$0 + 1]) }
    }

    static func encode(_ offsets: some Collection<UInt16>) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(offsets.count * 2)
        for offset in offsets { bytes.append(UInt8(offset >> 8)); bytes.append(UInt8(offset & 0xFF)) }
        return bytes
    }

    /// Records that entry `seq` has `hash` for `role` (in the recent region, whose keys are the
    /// largest in the database and grow with seq, so the record is appended through `cursor`, an
    /// append cursor on this index's database).
    func add(_ cursor: inout Cursor, seq: UInt64, role: Role, hash: KeyedHash) throws {
        try Self.withRecentKey(seq: seq, role: role) { key in
            try hash.withUnsafeBytes { try cursor.append(key: key, value: $0) }
        }
    }

    /// Removes entry `seq`'s record for `role` in a log of `size` entries (from its posting, if sealed).
    func remove(_ txn: Transaction, seq: UInt64, role: Role, hash: KeyedHash, size: UInt64) throws {
        try txn.delete(db, key: Self.recentKey(seq: seq, role: role))
        let block = seq >> Self.blockShift
        guard block < size >> Self.blockShift else { return }
        let key = Self.postingKey(block: block, role: role, hash: hash)
        guard let value = try txn.get(db, key: key) else { return }
        let remaining = value.withUnsafeBytes { Self.offsets($0) }.filter { UInt64($0) != seq & ((1 << Self.blockShift) - 1) }
        if remaining.isEmpty { try txn.delete(db, key: key) } else { try txn.put(db, key: key, value: Self.encode(remaining)) }
    }

    /// Writes the postings of every block completed by growing the log from `oldSize` to `newSize`,
    /// taking a block's records from `pending` when it holds them, else reading them back.
    func seal(_ txn: Transaction, from oldSize: UInt64, to newSize: UInt64, pending: PendingPostings? = nil) throws {
        for block in (oldSize >> Self.blockShift)..<(newSize >> Self.blockShift) {
            var records = try pending?.take(block: block) ?? readBack(txn, block: block)
            // Grouped by sorting into key order, so the block's new pages fill one after another.
            records.sort(by: <)
            var value: [UInt8] = []
            try Self.forEachPosting(in: records) { run in
                guard let role = Role(rawValue: run.first!.role) else { return }
                value.removeAll(keepingCapacity: true)
                for record in run {
                    value.append(UInt8(record.offset >> 8))
                    value.append(UInt8(record.offset & 0xFF))
                }
                try Self.withPostingKey(block: block, role: role, hash: run.first!.hash) { key in
                    try value.withUnsafeBytes { try txn.put(db, key: key, value: $0) }
                }
            }
        }
    }

    /// Calls `body` with each run of `sorted` records that share a role and keyed hash: the records
    /// of one posting, in offset order.
    static func forEachPosting(
        in sorted: [PendingPostings.Record], _ body: (ArraySlice<PendingPostings.Record>) throws -> Void
    ) rethrows {
        var first = 0
        while first < sorted.count {
            var last = first + 1
            while last < sorted.count, sorted[last].role == sorted[first].role, sorted[last].hash == sorted[first].hash { last += 1 }
            try body(sorted[first..<last])
            first = last
        }
    }

    /// A block's records read back from the recent region.
    private func readBack(_ txn: Transaction, block: UInt64) throws -> [PendingPostings.Record] {
        let start = block << Self.blockShift
        let end = start + (1 << Self.blockShift)
        var records: [PendingPostings.Record] = []
        records.reserveCapacity(3 << Self.blockShift)
        try txn.withCursor(db) { cursor in
            var record = try Self.withRecentKey(seq: start, role: .actor) { try cursor.seek(atOrAfter: $0) }
            while let current = record, current.key.count == 10, current.key[0] == Self.recentTag {
                let seq = LedgerKeys.readU64(current.key, at: 1)
                if seq >= end { break }
                if let hash = KeyedHash(bytes: current.value) {
                    records.append(PendingPostings.Record(role: current.key[9], hash: hash, offset: UInt16(seq - start)))
                }
                record = try cursor.next()
            }
        }
        return records
    }

    /// Calls `visit` with each seq in `low..<high` whose `role` record has `hash`, ascending, in a
    /// log of `size` entries. Stops when `visit` returns false.
    func seqs(
        _ txn: Transaction, role: Role, hash: KeyedHash, low: UInt64, high: UInt64, size: UInt64,
        _ visit: (UInt64) throws -> Bool
    ) throws {
        guard low < high else { return }
        let sealedBlocks = size >> Self.blockShift
        let firstBlock = low >> Self.blockShift
        if sealedBlocks > 0 && firstBlock < sealedBlocks {
            for block in firstBlock...min((high - 1) >> Self.blockShift, sealedBlocks - 1) {
                guard let value = try txn.get(db, key: Self.postingKey(block: block, role: role, hash: hash)) else { continue }
                for offset in value.withUnsafeBytes({ Self.offsets($0) }) {
                    let seq = block << Self.blockShift + UInt64(offset)
                    if seq < low { continue }
                    if seq >= high { return }
                    if try !visit(seq) { return }
                }
            }
        }
        let recentStart = max(low, sealedBlocks << Self.blockShift)
        guard recentStart < high else { return }
        try txn.withCursor(db) { cursor in
            var record = try Self.withRecentKey(seq: recentStart, role: .actor) { try cursor.seek(atOrAfter: $0) }
            while let current = record, current.key.count == 10, current.key[0] == Self.recentTag {
                let seq = LedgerKeys.readU64(current.key, at: 1)
                if seq >= high { break }
                if current.key[9] == role.rawValue, KeyedHash(bytes: current.value) == hash, try !visit(seq) { break }
                record = try cursor.next()
            }
        }
    }
}
