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

    /// Checks every stored checkpoint against the log rebuilt from its headers: each must be a note
    /// carrying this ledger's checkpoint, stored under its own size, no larger than the log, with the
    /// log's root at that size. (Its signature is checked by whoever holds the verifier key.)
    func auditStoredCheckpoints(txn: Transaction, tree: MemoryMerkleTree) throws -> [LedgerError] {
        var problems: [LedgerError] = []
        let view = tree.view()
        try txn.withCursor(databases.checkpoints) { cursor in
            var record = try cursor.first()
            while let current = record {
                let size = current.key.count == 8 ? LedgerKeys.readU64(current.key) : nil
                let label = size.map { "the stored checkpoint for size \($0)" } ?? "a stored checkpoint record"
                if let size, let note = try? SignedNote(parsing: current.value), let checkpoint = try? ownCheckpoint(note) {
                    if checkpoint.size != size {
                        problems.append(LedgerError(.corrupt, "\(label) carries size \(checkpoint.size)"))
                    } else if size > tree.size {
                        problems.append(LedgerError(.chainBroken, "\(label) is beyond the log's \(tree.size) entries: the log was truncated"))
                    } else if try view.rootHash(size: size) != checkpoint.rootHash {
                        problems.append(LedgerError(.chainBroken, "\(label) names a root the log does not have at that size"))
                    }
                } else {
                    problems.append(LedgerError(.corrupt, "\(label) is not a checkpoint of this log"))
                }
                record = try cursor.next()
            }
        }
        return problems
    }
}
