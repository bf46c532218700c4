import SteleCore
public import SteleCrypto
import SteleLMDB

/// The result of a full integrity check of the store.
public struct IntegrityReport: Sendable {
    /// Entries checked.
    public let size: UInt64
    /// The root recomputed from the headers alone.
    public let root: SHA256Digest
    /// Every problem found, in seq order; empty when the store is sound.
    public let problems: [LedgerError]

    /// True when no problem was found.
    public var isSound: Bool { problems.isEmpty }
}

extension Ledger {
    /// Recomputes everything the store claims from the header texts, in one snapshot: each header's
    /// format and seq, the hash chain (`prev`), strictly increasing `ts`, each body against its
    /// commitment, each stored leaf and subtree hash, and the chain head.
    public func verifyIntegrity() throws -> IntegrityReport {
        try read { txn in
            let head = try head(txn)
            let sha = SHA256()
            let merkle = MerkleHasher()
            var problems: [LedgerError] = []
            var rebuilt = MemoryMerkleTree()
            var prev = SHA256Digest.zero
            var lastTimestamp: Timestamp?
            let lastStored = try txn.withCursor(databases.entries) { cursor in try cursor.last().map { LedgerKeys.readU64($0.key) } }
            if let lastStored, lastStored >= head.size {
                problems.append(LedgerError(.chainBroken, "the store holds entry \(lastStored) beyond its head (\(head.size) entries)"))
            }
            for seq in 0..<head.size {
                guard let headerBytes = try txn.get(databases.entries, key: LedgerKeys.header(seq)) else {
                    problems.append(LedgerError(.chainBroken, "entry \(seq) is missing"))
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
                if let bodyBytes = try txn.get(databases.entries, key: LedgerKeys.body(seq)) {
                    do {
                        let body = try EntryBody(parsing: bodyBytes)
                        if body.commitment(using: sha) != header.bodyCommitment {
                            problems.append(LedgerError(.chainBroken, "the body of entry \(seq) does not match the commitment in its header"))
                        }
                    } catch {
                        problems.append(LedgerError(.corrupt, "the body of entry \(seq) cannot be decoded: \(error)"))
                    }
                } else {
                    problems.append(LedgerError(.corrupt, "the body record of entry \(seq) is missing"))
                }
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
            let root = (try? rebuilt.view().rootHash(size: rebuilt.size)) ?? MerkleHasher.emptyRoot
            return IntegrityReport(size: head.size, root: root, problems: problems)
        }
    }
}
