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
        [recentTag] + LedgerKeys.u64(seq) + [role.rawValue]
    }

    /// `b ‖ block ‖ role ‖ keyed hash` → ascending 2-byte big-endian offsets within the block.
    static func postingKey(block: UInt64, role: Role, hash: [UInt8]) -> [UInt8] {
        [postingTag] + withUnsafeBytes(of: UInt32(truncatingIfNeeded: block).bigEndian) { Array($0) } + [role.rawValue] + hash
    }

    static func offsets(_ value: UnsafeRawBufferPointer) -> [UInt16] {
        stride(from: 0, to: value.count - 1, by: 2).map { UInt16(value[$0]) << 8 | UInt16(value[$0 + 1]) }
    }

    static func encode(_ offsets: [UInt16]) -> [UInt8] {
        offsets.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// Records that entry `seq` has `hash` for `role` (in the recent region).
    func add(_ txn: Transaction, seq: UInt64, role: Role, hash: [UInt8]) throws {
        try txn.put(db, key: Self.recentKey(seq: seq, role: role), value: hash)
    }

    /// Removes entry `seq`'s record for `role` in a log of `size` entries (from its posting, if sealed).
    func remove(_ txn: Transaction, seq: UInt64, role: Role, hash: [UInt8], size: UInt64) throws {
        try txn.delete(db, key: Self.recentKey(seq: seq, role: role))
        let block = seq >> Self.blockShift
        guard block < size >> Self.blockShift else { return }
        let key = Self.postingKey(block: block, role: role, hash: hash)
        guard let value = try txn.get(db, key: key) else { return }
        let remaining = value.withUnsafeBytes { Self.offsets($0) }.filter { UInt64($0) != seq & ((1 << Self.blockShift) - 1) }
        if remaining.isEmpty { try txn.delete(db, key: key) } else { try txn.put(db, key: key, value: Self.encode(remaining)) }
    }

    /// Writes the postings of every block completed by growing the log from `oldSize` to `newSize`.
    func seal(_ txn: Transaction, from oldSize: UInt64, to newSize: UInt64) throws {
        for block in (oldSize >> Self.blockShift)..<(newSize >> Self.blockShift) {
            let start = block << Self.blockShift
            let end = start + (1 << Self.blockShift)
            var postings: [[UInt8]: [UInt16]] = [:]
            try txn.withCursor(db) { cursor in
                var record = try cursor.seek(atOrAfter: Self.recentKey(seq: start, role: .actor))
                while let current = record, current.key.count == 10, current.key[0] == Self.recentTag {
                    let seq = LedgerKeys.readU64(current.key, at: 1)
                    if seq >= end { break }
                    if let role = Role(rawValue: current.key[9]) {
                        postings[Self.postingKey(block: block, role: role, hash: Array(current.value)), default: []].append(UInt16(seq - start))
                    }
                    record = try cursor.next()
                }
            }
            // In key order, so the block's new pages fill one after another.
            for key in postings.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                try txn.put(db, key: key, value: Self.encode(postings[key]!))
            }
        }
    }

    /// Calls `visit` with each seq in `low..<high` whose `role` record has `hash`, ascending, in a
    /// log of `size` entries. Stops when `visit` returns false.
    func seqs(
        _ txn: Transaction, role: Role, hash: [UInt8], low: UInt64, high: UInt64, size: UInt64,
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
            var record = try cursor.seek(atOrAfter: Self.recentKey(seq: recentStart, role: .actor))
            while let current = record, current.key.count == 10, current.key[0] == Self.recentTag {
                let seq = LedgerKeys.readU64(current.key, at: 1)
                if seq >= high { break }
                if current.key[9] == role.rawValue, current.value.elementsEqual(hash), try !visit(seq) { break }
                record = try cursor.next()
            }
        }
    }
}
