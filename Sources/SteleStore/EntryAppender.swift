import SteleLMDB

/// The three cursors one write transaction appends entries through: on the entries database
/// (header, body and idempotency records), the stored tree, and the index's recent region. Every
/// record an append writes there has a key larger than any before it, so each cursor stays on the
/// last leaf page of its database and no append searches down from the root (see
/// ``Cursor/append(key:value:)``). Lent by ``Ledger/withEntryAppender(_:_:)`` for one run of appends.
struct EntryAppender {
    var entries: Cursor
    var tree: Cursor
    var index: Cursor
}

extension Ledger {
    /// Runs `body` with append cursors on this ledger's databases in `txn`; they close when it returns.
    func withEntryAppender<R>(_ txn: Transaction, _ body: (inout EntryAppender) throws -> R) throws -> R {
        try txn.withCursor(databases.entries) { entries in
            try txn.withCursor(databases.tree) { tree in
                try txn.withCursor(databases.index) { index in
                    var appender = EntryAppender(entries: entries, tree: tree, index: index)
                    return try body(&appender)
                }
            }
        }
    }
}
