public import SteleCore
public import SteleCrypto
import SteleLMDB

/// Which entries a query selects. Time bounds apply to `ts`: `since` inclusive, `until` exclusive.
public struct LedgerQuery: Sendable, Hashable {
    /// Entries about this data subject.
    public var subject: String?
    /// Entries by this actor.
    public var actor: String?
    /// Entries of this kind.
    public var kind: String?
    /// Earliest `ts` (inclusive).
    public var since: Timestamp?
    /// Latest `ts` (exclusive).
    public var until: Timestamp?

    /// A query; all criteria optional and combined with AND.
    public init(subject: String? = nil, actor: String? = nil, kind: String? = nil, since: Timestamp? = nil, until: Timestamp? = nil) {
        self.subject = subject
        self.actor = actor
        self.kind = kind
        self.since = since
        self.until = until
    }
}

extension Ledger {
    /// Entry `seq`, read from one snapshot.
    public func entry(_ seq: UInt64) throws -> StoredEntry {
        try read { txn in try entry(seq, txn: txn) }
    }

    func entry(_ seq: UInt64, txn: Transaction) throws -> StoredEntry {
        guard let headerBytes = try txn.get(databases.entries, key: LedgerKeys.header(seq)) else {
            throw LedgerError(.outOfRange, "entry \(seq) does not exist")
        }
        guard let bodyBytes = try txn.get(databases.entries, key: LedgerKeys.body(seq)) else {
            throw LedgerError(.corrupt, "the body record of entry \(seq) is missing")
        }
        do {
            return StoredEntry(
                seq: seq, headerBytes: headerBytes, header: try EntryHeader(parsing: headerBytes),
                body: try EntryBody(parsing: bodyBytes))
        } catch {
            throw LedgerError(.corrupt, "entry \(seq) cannot be decoded: \(error.message)")
        }
    }

    /// Calls `visit` for each entry matching `query`, in seq order, all from one snapshot.
    /// Return false from `visit` to stop early.
    public func scan(_ query: LedgerQuery, _ visit: (StoredEntry) throws -> Bool) throws {
        try read { txn in
            let size = try head(txn).size
            let low = try query.since.map { try firstSeq(atOrAfter: $0, txn: txn) } ?? 0
            let high = try query.until.map { try firstSeq(atOrAfter: $0, txn: txn) } ?? size
            guard low < high else { return }
            // Walk the most selective index available; check the remaining criteria per entry.
            let sha = SHA256()
            let lookup: (SecondaryIndex.Role, KeyedHash)?
            if let subject = query.subject {
                lookup = (.subject, LedgerKeys.identifierHash(indexKey: indexKey, role: "subject", identifier: subject, sha: sha))
            } else if let actor = query.actor {
                lookup = (.actor, LedgerKeys.identifierHash(indexKey: indexKey, role: "actor", identifier: actor, sha: sha))
            } else if let kind = query.kind {
                lookup = (.kind, LedgerKeys.identifierHash(indexKey: indexKey, role: "kind", identifier: kind, sha: sha))
            } else {
                lookup = nil
            }
            func matches(_ entry: StoredEntry) -> Bool {
                if let kind = query.kind, entry.header.kind != kind { return false }
                if let subject = query.subject, entry.body.fields["subject"]?.value?.stringValue != subject { return false }
                if let actor = query.actor, entry.body.fields["actor"]?.value?.stringValue != actor { return false }
                return true
            }
            guard let (role, hash) = lookup else {
                for seq in low..<high {
                    let entry = try entry(seq, txn: txn)
                    if matches(entry), try !visit(entry) { return }
                }
                return
            }
            try index.seqs(txn, role: role, hash: hash, low: low, high: high, size: size) { seq in
                let entry = try entry(seq, txn: txn)
                return try !matches(entry) || visit(entry)
            }
        }
    }

    /// All entries matching `query` (convenience over ``scan(_:_:)``).
    public func entries(_ query: LedgerQuery = LedgerQuery()) throws -> [StoredEntry] {
        var out: [StoredEntry] = []
        try scan(query) { out.append($0); return true }
        return out
    }

    /// The first seq whose `ts` ≥ `time` (the log size if none): a binary search over the headers,
    /// whose `ts` strictly increase with seq.
    func firstSeq(atOrAfter time: Timestamp, txn: Transaction) throws -> UInt64 {
        var low: UInt64 = 0
        var high = try head(txn).size
        while low < high {
            let middle = low + (high - low) / 2
            if try timestamp(of: middle, txn: txn) < time { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The `ts` of entry `seq`, read from its canonical header text without parsing all of it.
    func timestamp(of seq: UInt64, txn: Transaction) throws -> Timestamp {
        guard let header = try txn.get(databases.entries, key: LedgerKeys.header(seq)) else {
            throw LedgerError(.outOfRange, "entry \(seq) does not exist")
        }
        guard let time = EntryHeader.timestamp(inCanonical: header) else {
            throw LedgerError(.corrupt, "the header of entry \(seq) has no valid ts")
        }
        return time
    }

    /// The tree size and root hash of the whole log, from one snapshot.
    public func treeHead() throws -> (size: UInt64, root: SHA256Digest) {
        try read { txn in
            let size = try head(txn).size
            return (size, try tree(txn, size: size).rootHash(size: size))
        }
    }

    /// MTH of the first `size` entries.
    public func rootHash(size: UInt64) throws -> SHA256Digest {
        try withLogTree { tree, _ in try tree.rootHash(size: size) }
    }

    /// The RFC 9162 inclusion proof of entry `seq` in the tree of `size` entries (default: the whole log).
    public func inclusionProof(seq: UInt64, size: UInt64? = nil) throws -> (size: UInt64, leaf: SHA256Digest, root: SHA256Digest, proof: [SHA256Digest]) {
        try withLogTree { tree, logSize in
            let size = size ?? logSize
            let proof = try tree.inclusionProof(index: seq, size: size)
            return (size, try tree.source.subtreeHash(level: 0, index: seq), try tree.rootHash(size: size), proof)
        }
    }

    /// The RFC 9162 consistency proof from the tree of `oldSize` entries to that of `newSize` (default: the whole log).
    public func consistencyProof(from oldSize: UInt64, to newSize: UInt64? = nil) throws -> (oldRoot: SHA256Digest, newSize: UInt64, newRoot: SHA256Digest, proof: [SHA256Digest]) {
        try withLogTree { tree, logSize in
            let newSize = newSize ?? logSize
            let proof = try tree.consistencyProof(from: oldSize, to: newSize)
            return (try tree.rootHash(size: oldSize), newSize, try tree.rootHash(size: newSize), proof)
        }
    }

    /// Runs `body` with the stored tree of the committed log and its size, in one snapshot, mapping
    /// out-of-range requests to ``LedgerError``.
    private func withLogTree<R>(_ body: (MerkleTree<StoredSubtrees>, UInt64) throws -> R) throws -> R {
        try read { txn in
            let logSize = try head(txn).size
            return try proofCall { try body(tree(txn, size: logSize), logSize) }
        }
    }

    func tree(_ txn: Transaction, size: UInt64) -> MerkleTree<StoredSubtrees> {
        MerkleTree(source: StoredSubtrees(txn: txn, tree: databases.tree), size: size)
    }

    func proofCall<R>(_ body: () throws -> R) throws -> R {
        do { return try body() } catch let error as MerkleProofError {
            throw LedgerError(.outOfRange, error.message)
        }
    }
}
