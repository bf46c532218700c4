import CLMDB

/// An open LMDB transaction, lent to a closure by ``Environment``. It must not be kept or used after
/// that closure returns (LMDB frees it then).
///
/// Buffers returned by reads point into LMDB's memory map and are valid only until the closure returns.
public struct Transaction {
    let txn: OpaquePointer

    init(txn: OpaquePointer) {
        self.txn = txn
    }

    /// The value stored under `key`, or nil. Valid until the transaction ends.
    public func get(_ db: Database, key: UnsafeRawBufferPointer) throws -> UnsafeRawBufferPointer? {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val()
        let status = mdb_get(txn, db.handle, &k, &v)
        if status == MDB_NOTFOUND { return nil }
        try check(status, "read from \(db.name)")
        return UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)
    }

    /// The value stored under `key`, copied out, or nil.
    public func get(_ db: Database, key: [UInt8]) throws -> [UInt8]? {
        try key.withUnsafeBytes { k in try get(db, key: k).map { Array($0) } }
    }

    /// How a ``put(_:key:value:mode:)`` treats existing keys.
    public enum PutMode: Sendable {
        /// Replace any existing value.
        case upsert
        /// Fail with `keyExists` if the key is present.
        case insertOnly
        /// The key is greater than every key in the database (fast append; fails otherwise).
        case append
    }

    /// Stores `value` under `key`.
    public func put(_ db: Database, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, mode: PutMode = .upsert) throws {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        let flags: UInt32
        switch mode {
        case .upsert: flags = 0
        case .insertOnly: flags = UInt32(MDB_NOOVERWRITE)
        case .append: flags = UInt32(MDB_APPEND)
        }
        try check(mdb_put(txn, db.handle, &k, &v, flags), "write to \(db.name)")
    }

    /// Stores `value` under `key`.
    public func put(_ db: Database, key: [UInt8], value: [UInt8], mode: PutMode = .upsert) throws {
        try key.withUnsafeBytes { k in
            try value.withUnsafeBytes { v in try put(db, key: k, value: v, mode: mode) }
        }
    }

    /// Deletes `key`; returns false if it was not present.
    @discardableResult
    public func delete(_ db: Database, key: [UInt8]) throws -> Bool {
        try key.withUnsafeBytes { raw in
            var k = MDB_val(mv_size: raw.count, mv_data: UnsafeMutableRawPointer(mutating: raw.baseAddress))
            let status = mdb_del(txn, db.handle, &k, nil)
            if status == MDB_NOTFOUND { return false }
            try check(status, "delete from \(db.name)")
            return true
        }
    }

    /// Deletes `db` itself, with every record in it, once this transaction commits.
    public func drop(_ db: Database) throws {
        try check(mdb_drop(txn, db.handle, 1), "drop \(db.name)")
    }

    /// Deletes every record of `db`, keeping the database, once this transaction commits.
    public func empty(_ db: Database) throws {
        try check(mdb_drop(txn, db.handle, 0), "empty \(db.name)")
    }

    /// The number of entries in `db`.
    public func count(_ db: Database) throws -> Int {
        var stat = MDB_stat()
        try check(mdb_stat(txn, db.handle, &stat), "stat \(db.name)")
        return stat.ms_entries
    }

    /// Runs `body` with a cursor over `db`; the cursor closes when `body` returns.
    public func withCursor<R>(_ db: Database, _ body: (inout Cursor) throws -> R) throws -> R {
        var raw: OpaquePointer?
        try check(mdb_cursor_open(txn, db.handle, &raw), "open cursor on \(db.name)")
        defer { mdb_cursor_close(raw) }
        var cursor = Cursor(cursor: raw!, name: db.name)
        return try body(&cursor)
    }
}
