public import SteleCore
import SteleLMDB

extension Ledger {
    /// Records a signed checkpoint (its note text) under its tree size. The note must open with the
    /// ledger's origin and a size no larger than the committed log, and its root must be the log's.
    public func storeCheckpoint(_ note: SignedNote) throws {
        guard !isReadOnly else { throw LedgerError(.readOnly, "the ledger was opened read-only") }
        let checkpoint = try ownCheckpoint(note)
        do {
            try environment.withWriteTransaction { txn in try store(checkpoint, note, txn: txn) }
        } catch let error as LMDBError {
            throw LedgerError(.storage, "could not store the checkpoint: \(error)")
        }
    }

    /// The checkpoint a note carries, if it is one of this ledger's.
    func ownCheckpoint(_ note: SignedNote) throws -> Checkpoint {
        let checkpoint: Checkpoint
        do { checkpoint = try Checkpoint(parsing: note.text) } catch {
            throw LedgerError(.invalidEvent, "not a checkpoint: \(error.message)")
        }
        guard checkpoint.origin == origin else {
            throw LedgerError(.invalidEvent, "checkpoint origin \"\(checkpoint.origin)\" is not this ledger's (\"\(origin)\")")
        }
        return checkpoint
    }

    /// Stores `note` in write transaction `txn` after checking its size and root against the log.
    func store(_ checkpoint: Checkpoint, _ note: SignedNote, txn: Transaction) throws {
        let size = try head(txn).size
        guard checkpoint.size <= size else {
            throw LedgerError(.outOfRange, "checkpoint size \(checkpoint.size) exceeds the committed log (\(size))")
        }
        let root = try tree(txn, size: size).rootHash(size: checkpoint.size)
        guard root == checkpoint.rootHash else {
            throw LedgerError(.chainBroken, "checkpoint root for size \(checkpoint.size) is \(checkpoint.rootHash), the log's is \(root)")
        }
        try txn.put(databases.checkpoints, key: LedgerKeys.u64(checkpoint.size), value: Array(note.serialized.utf8))
    }

    /// The signed checkpoint with the largest tree size, as note text, or nil if none was stored.
    public func latestCheckpoint() throws -> String? {
        try read { txn in
            try txn.withCursor(databases.checkpoints) { cursor in
                try cursor.last().map { String(decoding: $0.value, as: UTF8.self) }
            }
        }
    }
}
