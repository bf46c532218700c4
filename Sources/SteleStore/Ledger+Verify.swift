import SteleCore
public import SteleCrypto
import SteleLMDB

/// The result of a full integrity check of the store.
public struct IntegrityReport: Sendable {
    /// Entries checked.
    public let size: UInt64
    /// The root recomputed from the headers alone.
    public let root: SHA256Digest
    /// Entries in the journal beyond the store that continue its chain: acknowledged, and moved into
    /// the store by the daemon's next commit or start (`Specs/store.md`, "Journal"). Not a problem.
    public let journalPending: UInt64
    /// Every problem found, in seq order; empty when the store is sound.
    public let problems: [LedgerError]

    /// True when no problem was found.
    public var isSound: Bool { problems.isEmpty }
}

extension Ledger {
    /// Recomputes everything the store claims from the header texts, in one snapshot: each header's
    /// format and seq, the hash chain (`prev`), strictly increasing `ts`, each body against its
    /// commitment, each stored leaf and subtree hash, the chain head, every record derived from the
    /// entries (indexes and idempotency log, ``DerivedRecordAudit``) and every stored checkpoint.
    ///
    /// Damage that stops LMDB from reading on (a page that is not where the file says, a page that
    /// is not a page) is itself an integrity failure: it is reported as `corrupt` with what was
    /// checked up to it, not thrown.
    public func verifyIntegrity() throws -> IntegrityReport {
        // The journal is read before the store's snapshot is taken. A live daemon overwrites journal
        // records only once its store holds them, so a later snapshot holds every entry the journal
        // has dropped; a journal read after a long check could have moved past a stale snapshot.
        let journal = try Journal(directory: path, create: false, exclusive: false, readOnly: true)
        let journaled = try journal?.entries(storeSize: .max) ?? []
        return try read { txn in
            let head = try head(txn)
            var problems: [LedgerError] = []
            var rebuilt = MemoryMerkleTree()
            do {
                try check(txn, head: head, problems: &problems, rebuilt: &rebuilt)
            } catch let error as LMDBError where error.code == LMDBError.corrupted || error.code == LMDBError.pageNotFound {
                problems.append(LedgerError(.corrupt, "the LMDB file is damaged (\(error)); the check stopped there, after \(rebuilt.size) entries"))
            }
            let root = (try? rebuilt.view().rootHash(size: rebuilt.size)) ?? MerkleHasher.emptyRoot
            if let problem = journal?.damage(storeSize: head.size) { problems.append(problem) }
            let pending = try auditJournal(journaled, txn, head: head, problems: &problems)
            return IntegrityReport(size: head.size, root: root, journalPending: pending, problems: problems)
        }
    }

    private func check(_ txn: Transaction, head: ChainHead, problems: inout [LedgerError], rebuilt: inout MemoryMerkleTree) throws {
        let sha = SHA256()
        let merkle = MerkleHasher()
        var prev = SHA256Digest.zero
        var lastTimestamp: Timestamp?
        let lastStored = try txn.withCursor(databases.entries) { cursor in try cursor.last().map { LedgerKeys.readU64($0.key) } }
        if let lastStored, lastStored >= head.size {
            problems.append(LedgerError(.chainBroken, "the store holds entry \(lastStored) beyond its head (\(head.size) entries)"))
        }
        var complete = true
        var derived = DerivedRecordAudit(txn: txn, databases: databases, indexKey: indexKey, size: head.size)
        for seq in 0..<head.size {
            guard let headerBytes = try txn.get(databases.entries, key: LedgerKeys.header(seq)) else {
                problems.append(LedgerError(.chainBroken, "entry \(seq) is missing"))
                complete = false
                break
            }
            let leaf = merkle.leafHash(headerBytes)
            defer {
                prev = leaf
                rebuilt.append(leafHash: leaf, hasher: merkle)
            }
            let header: EntryHeader
            do { header = try EntryHeader(parsing: headerBytes) } catch {
                problems.append(LedgerError(.corrupt, "entry \(seq) has an invalid header: \(error)"))
                continue
            }
            if header.seq != seq {
                problems.append(LedgerError(.chainBroken, "entry \(seq) carries seq \(header.seq)"))
            }
            if header.prev != prev {
                problems.append(.chainBroken(at: seq, expected: Base64.encode(prev.bytes), found: Base64.encode(header.prev.bytes)))
            }
            if let lastTimestamp, header.timestamp <= lastTimestamp {
                problems.append(LedgerError(.chainBroken, "entry \(seq) has ts \(header.timestamp), not after the previous entry's \(lastTimestamp)"))
            }
            lastTimestamp = header.timestamp
            var body: EntryBody?
            if let bodyBytes = try txn.get(databases.entries, key: LedgerKeys.body(seq)) {
                do {
                    body = try EntryBody(parsing: bodyBytes)
                    if body!.commitment(using: sha) != header.bodyCommitment {
                        problems.append(LedgerError(.chainBroken, "the body of entry \(seq) does not match the commitment in its header"))
                        body = nil  // its fields cannot be trusted to check the indexes against
                    }
                } catch {
                    problems.append(LedgerError(.corrupt, "the body of entry \(seq) cannot be decoded: \(error)"))
                }
            } else {
                problems.append(LedgerError(.corrupt, "the body record of entry \(seq) is missing"))
            }
            try derived.check(seq: seq, header: header, body: body)
        }
        if prev != head.lastLeaf && problems.isEmpty {
            problems.append(LedgerError(.chainBroken, "the chain head names a last leaf that is not the last entry's"))
        }
        // Every stored subtree hash must equal the one rebuilt from the headers.
        let storedCount = try txn.count(databases.tree)
        if UInt64(storedCount) != MerkleSubtrees.storedCount(leaves: rebuilt.size) {
            problems.append(LedgerError(.corrupt, "the tree database holds \(storedCount) hashes, expected \(MerkleSubtrees.storedCount(leaves: rebuilt.size))"))
        }
        for (position, expected) in rebuilt.stored.enumerated() {
            let stored = try txn.get(databases.tree, key: LedgerKeys.u64(UInt64(position))).flatMap { SHA256Digest(bytes: $0) }
            if stored != expected {
                problems.append(LedgerError(.corrupt, "stored Merkle hash \(position) does not match the entries"))
                break
            }
        }
        // With entries missing, what the index should hold beyond them is unknown.
        if complete { problems += try derived.finish() }
        problems += try auditStoredCheckpoints(txn: txn, tree: rebuilt)
    }

    /// Checks the journal's entries (both regions) against the store: entries the store holds must be
    /// byte-identical to it, and the rest must continue its chain without a gap.
    /// - Returns: how many journaled entries continue the store.
    private func auditJournal(_ entries: [JournalEntry], _ txn: Transaction, head: ChainHead, problems: inout [LedgerError]) throws -> UInt64 {
        var pending: UInt64 = 0
        var lastLeaf = head.lastLeaf
        for entry in entries {
            if entry.seq < head.size {
                let stored = try LedgerKeys.withEntryKey(entry.seq, LedgerKeys.headerTag) { try txn.get(databases.entries, key: $0).map(Array.init) }
                if stored != entry.header {
                    problems.append(LedgerError(.corrupt, "journal entry \(entry.seq) differs from the store's entry \(entry.seq): the store or the journal was altered or replaced"))
                    break
                }
                continue
            }
            guard entry.seq == head.size + pending else {
                problems.append(LedgerError(.chainBroken, "the journal continues at entry \(entry.seq) but the store ends at \(head.size + pending): acknowledged entries are missing (an older copy of the store restored?)"))
                break
            }
            guard let header = try? EntryHeader(parsing: entry.header), header.seq == entry.seq, header.prev == lastLeaf else {
                problems.append(LedgerError(.chainBroken, "journal entry \(entry.seq) does not continue the store's chain"))
                break
            }
            lastLeaf = MerkleHasher().leafHash(entry.header)
            pending += 1
        }
        return pending
    }
}
