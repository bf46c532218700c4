import Foundation
import SteleLMDB
import SteleTestSupport
import Testing

/// `Cursor.append` is how the ledger writes every entry, tree node and index record: these pin what
/// it promises beside LMDB's own `MDB_APPEND`, across page splits and mixed with ordinary writes.
@Suite("LMDB appends through one cursor")
struct CursorAppendTests {
    private static func key(_ n: UInt64) -> [UInt8] { withUnsafeBytes(of: n.bigEndian) { Array($0) } }
    private static func value(_ n: UInt64) -> [UInt8] { Array("value \(n) ".utf8) + Array(repeating: UInt8(n & 0xFF), count: Int(n % 300)) }

    private static func database(in dir: TemporaryDirectory) throws -> (Environment, Database) {
        let environment = try Environment(path: dir.path, maxDatabases: 4)
        return (environment, try environment.openDatabase("t", create: true))
    }

    /// Appends `n`'s key and value.
    private static func append(_ cursor: inout Cursor, _ n: UInt64) throws {
        try key(n).withUnsafeBytes { k in try value(n).withUnsafeBytes { v in try cursor.append(key: k, value: v) } }
    }

    /// Appends the keys `keys` (and their values) through one cursor in one transaction.
    private static func appendAll(_ keys: some Sequence<UInt64>, to db: Database, in environment: Environment) throws {
        try environment.withWriteTransaction { txn in
            try txn.withCursor(db) { cursor in
                for n in keys { try append(&cursor, n) }
            }
        }
    }

    @Test("thousands of appends in one transaction, over many page splits, read back in order with their values")
    func appendsReadBackInOrder() throws {
        let dir = TemporaryDirectory()
        let (environment, db) = try Self.database(in: dir)
        try Self.appendAll((0..<20_000 as Range<UInt64>).map { $0 * 3 }, to: db, in: environment)
        // A second transaction continues after the last key of the first.
        try Self.appendAll((20_000..<20_100 as Range<UInt64>).map { $0 * 3 }, to: db, in: environment)
        try environment.withReadTransaction { (txn: Transaction) throws in
            #expect(try txn.count(db) == 20_100)
            try txn.withCursor(db) { cursor in
                var n: UInt64 = 0
                var record = try cursor.first()
                while let (k, v) = record {
                    #expect(Array(k) == Self.key(n * 3))
                    #expect(Array(v) == Self.value(n * 3))
                    n += 1
                    record = try cursor.next()
                }
                #expect(n == 20_100)
            }
        }
    }

    @Test("a key not after the last is refused with keyExists, and the database keeps what it had")
    func outOfOrderKeyRefused() throws {
        let dir = TemporaryDirectory()
        let (environment, db) = try Self.database(in: dir)
        try Self.appendAll(1...100 as ClosedRange<UInt64>, to: db, in: environment)
        for stale in [100, 50, 0] as [UInt64] {
            let error = #expect(throws: LMDBError.self) { try Self.appendAll([stale], to: db, in: environment) }
            #expect(error?.code == LMDBError.keyExists)
        }
        try environment.withReadTransaction { (txn: Transaction) throws in
            #expect(try txn.count(db) == 100)
            #expect(try txn.get(db, key: Self.key(100)) == Self.value(100))
        }
    }

    @Test("ordinary writes to the same database between cursor appends leave both correct")
    func mixedWithOrdinaryWrites() throws {
        let dir = TemporaryDirectory()
        let (environment, db) = try Self.database(in: dir)
        try environment.withWriteTransaction { txn in
            try txn.withCursor(db) { cursor in
                for n in 0..<5_000 as Range<UInt64> {
                    try Self.append(&cursor, 1_000_000 + n)
                    // Lower keys, inserted in the middle by LMDB's own cursor, split pages under ours.
                    try txn.put(db, key: Self.key(n * 7), value: Self.value(n * 7))
                }
            }
        }
        try environment.withReadTransaction { (txn: Transaction) throws in
            #expect(try txn.count(db) == 10_000)
            for n in stride(from: 0, to: 5_000, by: 97) as StrideTo<UInt64> {
                #expect(try txn.get(db, key: Self.key(1_000_000 + n)) == Self.value(1_000_000 + n))
                #expect(try txn.get(db, key: Self.key(n * 7)) == Self.value(n * 7))
            }
        }
    }
}
