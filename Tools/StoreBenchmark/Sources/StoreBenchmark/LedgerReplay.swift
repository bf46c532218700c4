// The "same records" baseline: every record a ledger run wrote, grouped by the batch that wrote it, so
// they can be written again with plain LMDB puts (same databases, keys, values and flags) and nothing
// computed. The grouping follows the layout in Specs/store.md.
import SteleCore
import SteleLMDB

struct LedgerReplay {
    typealias Record = (key: [UInt8], value: [UInt8])
    /// One batch's puts, in the ledger's order: per entry its `entries`, `tree` and recent `idx`
    /// records (appended), then the postings of blocks the batch completed, then the head.
    struct Put {
        let database: Int
        let record: Record
        let append: Bool
    }

    static let names = ["meta", "entries", "tree", "idx", "checkpoints"]
    var batches: [[Put]] = []

    init(reading path: String, batch: Int, total: Int) throws {
        let environment = try Environment(path: path, maxDatabases: 5, readOnly: true)
        func all(_ name: String) throws -> [Record] {
            let db = try environment.openDatabase(name, create: false)
            return try environment.withReadTransaction { txn in
                try txn.withCursor(db) { cursor in
                    var out: [Record] = []
                    var record = try cursor.first()
                    while let current = record {
                        out.append((Array(current.key), Array(current.value)))
                        record = try cursor.next()
                    }
                    return out
                }
            }
        }
        let entries = try all("entries"), tree = try all("tree"), index = try all("idx")
        let head = try all("meta").first { $0.key == Array("head".utf8) }!
        func u64(_ bytes: [UInt8], at offset: Int) -> UInt64 { bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        let recent = index.filter { $0.key[0] == UInt8(ascii: "r") }
        let postings = index.filter { $0.key[0] == UInt8(ascii: "b") }
        var (e, t, r, p) = (0, 0, 0, 0)
        for start in stride(from: 0, to: total, by: batch) {
            var puts: [Put] = []
            for seq in UInt64(start)..<UInt64(start + batch) {
                while e < entries.count, u64(entries[e].key, at: 0) == seq { puts.append(Put(database: 1, record: entries[e], append: true)); e += 1 }
                while t < tree.count, u64(tree[t].key, at: 0) < MerkleSubtrees.storedCount(leaves: seq + 1) {
                    puts.append(Put(database: 2, record: tree[t], append: true)); t += 1
                }
                while r < recent.count, u64(recent[r].key, at: 1) == seq { puts.append(Put(database: 3, record: recent[r], append: true)); r += 1 }
            }
            // A block's postings are written by the batch that completes it.
            let completedBlocks = UInt64(start + batch) >> 10
            while p < postings.count, UInt64(postings[p].key[1..<5].reduce(0) { $0 << 8 | UInt32($1) }) < completedBlocks {
                puts.append(Put(database: 3, record: postings[p], append: false)); p += 1
            }
            puts.append(Put(database: 0, record: head, append: false))
            batches.append(puts)
        }
        precondition(e == entries.count && t == tree.count && r == recent.count && p == postings.count, "unreplayed records")
    }

    /// Writes every batch in its own synced transaction into a new environment at `path`.
    func write(to path: String) throws {
        let environment = try Environment(path: path, maxDatabases: 5, mapSize: 1 << 32)
        let databases = try Self.names.map { try environment.openDatabase($0, create: true) }
        for puts in batches {
            try environment.withWriteTransaction { txn in
                for put in puts {
                    try txn.put(databases[put.database], key: put.record.key, value: put.record.value, mode: put.append ? .append : .upsert)
                }
            }
        }
    }
}
