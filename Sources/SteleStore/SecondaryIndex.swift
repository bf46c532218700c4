import SteleCore
import SteleLMDB

/// The subject, actor and kind indexes, in the one `idx` database (`Specs/store.md` §Indexes).
///
/// Each append adds one small record per role to the **recent** region, keyed by seq, so a commit
/// touches only the last page or two of that region. When a block of 4096 entries is complete, the
/// commit that completes it **seals** it: the block's records are rewritten sorted by
/// (role, keyed hash, seq) into the block's own region and removed from the recent region. A query
/// seeks once per sealed block and scans the recent region (fewer than 1024 entries).
struct SecondaryIndex {
    /// What an index record is about.
    enum Role: UInt8, CaseIterable {
        case actor = 0x61  // "a"
        case kind = 0x6B  // "k"
        case subject = 0x73  // "s"
    }

    static let blockShift: UInt64 = 10
    static let sealedTag: UInt8 = 0x62  // "b"
    static let recentTag: UInt8 = 0x72  // "r"

    let db: Database

    /// `r ‖ seq ‖ role` → keyed hash.
    static func recentKey(seq: UInt64, role: Role) -> [UInt8] {
        [recentTag] + LedgerKeys.u64(seq) + [role.rawValue]
    }

    /// `b ‖ block ‖ role ‖ keyed hash` (prefix of a sealed key; the seq follows).
    static func sealedPrefix(block: UInt64, role: Role, hash: [UInt8]) -> [UInt8] {
        [sealedTag] + withUnsafeBytes(of: UInt32(truncatingIfNeeded: block).bigEndian) { Array($0) } + [role.rawValue] + hash
    }

    /// Records that entry `seq` has `hash` for `role` (in the recent region).
    func add(_ txn: Transaction, seq: UInt64, role: Role, hash: [UInt8]) throws {
        try txn.put(db, key: Self.recentKey(seq: seq, role: role), value: hash)
    }

    /// Removes entry `seq`'s record for `role`, wherever it is in a log of `size` entries.
    func remove(_ txn: Transaction, seq: UInt64, role: Role, hash: [UInt8], size: UInt64) throws {
        if seq >> Self.blockShift < size >> Self.blockShift {
            try txn.delete(db, key: Self.sealedPrefix(block: seq >> Self.blockShift, role: role, hash: hash) + LedgerKeys.u64(seq))
        } else {
            try txn.delete(db, key: Self.recentKey(seq: seq, role: role))
        }
    }

    /// Seals every block completed by growing the log from `oldSize` to `newSize` entries.
    func seal(_ txn: Transaction, from oldSize: UInt64, to newSize: UInt64) throws {
        for block in (oldSize >> Self.blockShift)..<(newSize >> Self.blockShift) {
            let start = block << Self.blockShift
            let end = start + (1 << Self.blockShift)
            var records: [(key: [UInt8], recent: [UInt8])] = []
            try txn.withCursor(db) { cursor in
                var record = try cursor.seek(atOrAfter: Self.recentKey(seq: start, role: .actor))
                while let current = record, current.key.count == 10, current.key[0] == Self.recentTag {
                    let seq = LedgerKeys.readU64(current.key, at: 1)
                    if seq >= end { break }
                    if let role = Role(rawValue: current.key[9]) {
                        records.append((Self.sealedPrefix(block: block, role: role, hash: Array(current.value)) + LedgerKeys.u64(seq), Array(current.key)))
                    }
                    record = try cursor.next()
                }
            }
            records.sort { $0.key.lexicographicallyPrecedes($1.key) }
            for record in records {
                try txn.put(db, key: record.key, value: [])
                try txn.delete(db, key: record.recent)
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
        var stop = false
        try txn.withCursor(db) { cursor in
            let firstBlock = low >> Self.blockShift
            let lastBlock = min((high - 1) >> Self.blockShift, sealedBlocks &- 1)
            if sealedBlocks > 0 && firstBlock <= lastBlock {
                for block in firstBlock...lastBlock where !stop {
                    let prefix = Self.sealedPrefix(block: block, role: role, hash: hash)
                    var record = try cursor.seek(atOrAfter: prefix + LedgerKeys.u64(max(low, block << Self.blockShift)))
                    while let current = record, current.key.count == prefix.count + 8, current.key.starts(with: prefix) {
                        let seq = LedgerKeys.readU64(current.key, at: prefix.count)
                        if seq >= high { stop = true; break }
                        if try !visit(seq) { stop = true; break }
                        record = try cursor.next()
                    }
                }
            }
            guard !stop else { return }
            let recentStart = max(low, sealedBlocks << Self.blockShift)
            guard recentStart < high else { return }
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
