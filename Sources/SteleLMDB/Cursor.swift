import CLMDB

/// A position in one database, in key order (bytewise). Lent by ``Transaction/withCursor(_:_:)``.
/// Returned buffers are valid until the transaction ends.
public struct Cursor {
    let cursor: OpaquePointer
    let name: String

    /// A key–value pair in the memory map.
    public typealias Record = (key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)

    /// The first record with key ≥ `key`.
    public mutating func seek(atOrAfter key: [UInt8]) throws -> Record? {
        try key.withUnsafeBytes { try seek(atOrAfter: $0) }
    }

    /// The first record with key ≥ `key`.
    public mutating func seek(atOrAfter key: UnsafeRawBufferPointer) throws -> Record? {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        return try move(MDB_SET_RANGE, &k)
    }

    /// The first record.
    public mutating func first() throws -> Record? { var k = MDB_val(); return try move(MDB_FIRST, &k) }
    /// The last record.
    public mutating func last() throws -> Record? { var k = MDB_val(); return try move(MDB_LAST, &k) }
    /// The record after the current one.
    public mutating func next() throws -> Record? { var k = MDB_val(); return try move(MDB_NEXT, &k) }
    /// The record before the current one.
    public mutating func previous() throws -> Record? { var k = MDB_val(); return try move(MDB_PREV, &k) }

    /// Stores `value` under `key`, which must sort after every key in the database (LMDB's
    /// `MDB_APPEND`; otherwise this throws `keyExists`), and leaves the cursor on the new record.
    ///
    /// Appending through one cursor is what makes a run of appends cheap: the cursor stays on the
    /// last leaf page, where ``Transaction/put(_:key:value:mode:)`` (a fresh cursor each time)
    /// searches down from the root for every record.
    public mutating func append(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws {
        var k = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var v = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        try check(mdb_cursor_put(cursor, &k, &v, UInt32(MDB_APPEND)), "write to \(name)")
    }

    /// Deletes the record at the cursor.
    public mutating func deleteCurrent() throws {
        try check(mdb_cursor_del(cursor, 0), "delete from \(name)")
    }

    private mutating func move(_ op: MDB_cursor_op, _ key: inout MDB_val) throws -> Record? {
        var value = MDB_val()
        let status = mdb_cursor_get(cursor, &key, &value, op)
        if status == MDB_NOTFOUND { return nil }
        try check(status, "read \(name)")
        return (UnsafeRawBufferPointer(start: key.mv_data, count: key.mv_size),
                UnsafeRawBufferPointer(start: value.mv_data, count: value.mv_size))
    }
}
