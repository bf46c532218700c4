public import SteleCore
import SteleCrypto
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

    /// Checks every stored checkpoint of size `start` or more against a tree of `treeSize` leaves
    /// whose root at a size `rootAt` gives (checked against the headers): each must be a note
    /// carrying this ledger's checkpoint, stored under its own size, no larger than the log, with the
    /// log's root at that size, and signed by the key in force at its size when a key is pinned.
    func auditStoredCheckpoints(
        txn: Transaction, from start: UInt64, treeSize: UInt64, rootAt: (UInt64) throws -> SHA256Digest, keys: SigningKeys?
    ) throws -> [LedgerError] {
        var problems: [LedgerError] = []
        try txn.withCursor(databases.checkpoints) { cursor in
            var record = try cursor.seek(atOrAfter: LedgerKeys.u64(start))
            while let current = record {
                let size = current.key.count == 8 ? LedgerKeys.readU64(current.key) : nil
                let label = size.map { "the stored checkpoint for size \($0)" } ?? "a stored checkpoint record"
                if let size, let note = try? SignedNote(parsing: current.value), let checkpoint = try? ownCheckpoint(note) {
                    if let key = keys?.key(forSize: size), (try? note.verify(trusting: [key])) == nil {
                        problems.append(LedgerError(
                            .badSignature, "\(label) is not signed by \(key), the key in force at that size from the pinned key: it was re-signed or forged",
                            seq: size, expected: "a signature by \(key)", found: "none by it"))
                    }
                    if checkpoint.size != size {
                        problems.append(LedgerError(.corrupt, "\(label) carries size \(checkpoint.size)"))
                    } else if size > treeSize {
                        problems.append(LedgerError(.chainBroken, "\(label) is beyond the log's \(treeSize) entries: the log was truncated"))
                    } else if try rootAt(size) != checkpoint.rootHash {
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

/// Checkpoints held outside the store, which `stele verify` checks the ledger against
/// (`Specs/store.md`, "Integrity check"): what detects a truncated, rolled-back or rewritten log.
public struct ExternalCheckpoints: Sendable {
    /// The verifier key pinned by the auditor; nil leaves signatures unchecked.
    public var key: NoteVerifierKey?
    /// Each checkpoint's note bytes and where it came from (a file name).
    public var notes: [(source: String, bytes: [UInt8])] = []

    public init(key: NoteVerifierKey? = nil, notes: [(source: String, bytes: [UInt8])] = []) {
        self.key = key
        self.notes = notes
    }
}

extension Ledger {
    /// Checks each external checkpoint against the log's tree (its roots at any size from `rootAt`): its origin, its
    /// signature under the pinned key, that the log still reaches its size, and that the log's root
    /// at that size is its root.
    /// - Returns: the problems, and the largest size a valid one covers.
    func auditExternalCheckpoints(
        _ external: ExternalCheckpoints, keys: SigningKeys?, txn: Transaction, treeSize: UInt64, rootAt: (UInt64) throws -> SHA256Digest
    ) throws -> (problems: [LedgerError], covered: UInt64?) {
        var problems: [LedgerError] = []
        var covered: UInt64?
        // The logs this one was restored from (`ledger.restored`): their checkpoints speak for the
        // prefix the backup held, and show plainly what of them this log does not hold.
        var restoredFrom: [String: (seq: UInt64, size: UInt64)] = [:]
        try forEachEntry(ofKind: "ledger.restored", txn: txn, size: treeSize) { entry in
            let values = entry.body.fields.compactMapValues(\.value)
            if let origin = values["origin"]?.stringValue, let size = values["backup_size"]?.integerValue { restoredFrom[origin] = (entry.seq, UInt64(size)) }
        }
        for (source, bytes) in external.notes {
            guard let note = try? SignedNote(parsing: bytes), let checkpoint = try? Checkpoint(parsing: note.text) else {
                problems.append(LedgerError(.corrupt, "\(source) is not a signed checkpoint"))
                continue
            }
            if let restored = restoredFrom[checkpoint.origin] {
                if let pinned = keys?.first, let key = try? NoteVerifierKey(name: checkpoint.origin, publicKey: pinned.publicKey),
                    (try? note.verify(trusting: [key])) == nil
                {
                    problems.append(LedgerError(.badSignature, "\(source) (a checkpoint of \(checkpoint.origin), which this log was restored from) is not signed by the pinned key"))
                } else if checkpoint.size > restored.size {
                    problems.append(LedgerError(
                        .chainBroken,
                        "this log was restored (entry \(restored.seq), ledger.restored) from a backup of \(checkpoint.origin) holding \(restored.size) entries; \(source) shows that log had \(checkpoint.size): its last \(checkpoint.size - restored.size) entries are not in this log",
                        seq: restored.seq, expected: "\(checkpoint.size) entries of \(checkpoint.origin)", found: "\(restored.size) restored"))
                } else if try rootAt(checkpoint.size) != checkpoint.rootHash {
                    problems.append(LedgerError(.chainBroken, "the log's root at size \(checkpoint.size) differs from \(source), a checkpoint of \(checkpoint.origin) which this log says it was restored from"))
                } else {
                    covered = max(covered ?? 0, checkpoint.size)
                }
                continue
            }
            guard checkpoint.origin == origin else {
                problems.append(LedgerError(.chainBroken, "\(source) is a checkpoint of \"\(checkpoint.origin)\", not of this log (\"\(origin)\")"))
                continue
            }
            if let key = keys?.key(forSize: checkpoint.size), (try? note.verify(trusting: [key])) == nil {
                problems.append(LedgerError(.badSignature, "\(source) (size \(checkpoint.size)) is not signed by \(key), the key in force at that size from the pinned key: it cannot vouch for the log"))
                continue
            }
            guard checkpoint.size <= treeSize else {
                problems.append(LedgerError(.chainBroken, "the log has \(treeSize) entries, fewer than \(source) shows (\(checkpoint.size)): entries were cut from its tail or an older copy was restored"))
                continue
            }
            let root = try rootAt(checkpoint.size)
            guard root == checkpoint.rootHash else {
                problems.append(LedgerError(.chainBroken, "the log's root at size \(checkpoint.size) is \(Base64.encode(root.bytes)), \(source) shows \(Base64.encode(checkpoint.rootHash.bytes)): the log was rewritten or forked before that size"))
                continue
            }
            covered = max(covered ?? 0, checkpoint.size)
        }
        return (problems, covered)
    }
}
