import SteleCore
import SteleCrypto
import SteleLMDB

extension Ledger {
    /// Verifies only what was appended after a checkpoint the auditor holds (`Specs/store.md`,
    /// "Incremental check"), in one snapshot: the stored tree must have the checkpoint's root at its
    /// size, and the stored last leaf before it must be included under that root; then every later
    /// entry is checked as in a full check (format, seq, chain, increasing `ts`, body against its
    /// commitment), its leaf appended to the checkpoint's right edge, and each subtree hash it
    /// completes compared with the stored one; the root reached must be the stored tree's, and
    /// every stored checkpoint from the held one on must name the root the log has at its size.
    /// Derived records are left to a full check.
    /// - Returns: the report; `size` counts the entries checked, `externallyCovered` is the held size.
    public func verifyIncrementally(from held: ExternalCheckpoints) throws -> IntegrityReport {
        guard held.notes.count == 1, let source = held.notes.first else {
            throw LedgerError(.invalidEvent, "--from-checkpoint takes exactly one checkpoint")
        }
        guard let note = try? SignedNote(parsing: source.bytes), let checkpoint = try? Checkpoint(parsing: note.text) else {
            throw LedgerError(.invalidEvent, "\(source.source) is not a signed checkpoint")
        }
        guard checkpoint.origin == origin else {
            throw LedgerError(.invalidEvent, "\(source.source) is a checkpoint of \"\(checkpoint.origin)\", not of this log (\"\(origin)\")")
        }
        let start = checkpoint.size
        return try read { txn in
            let head = try head(txn)
            var problems: [LedgerError] = []
            var keys: SigningKeys?
            if let pinned = held.key {
                let (followed, rotationProblems) = try signingKeys(from: pinned, txn: txn, size: head.size)
                keys = followed
                problems += rotationProblems
                let key = followed.key(forSize: start)
                if (try? note.verify(trusting: [key])) == nil {
                    return IntegrityReport(
                        size: 0, root: checkpoint.rootHash, journalPending: 0,
                        problems: problems + [LedgerError(.badSignature, "\(source.source) is not signed by \(key), the key in force at its size from the pinned key: it cannot anchor the check")],
                        externallyCovered: nil)
                }
            }
            guard start <= head.size else {
                problems.append(LedgerError(.chainBroken, "the log has \(head.size) entries, fewer than \(source.source) shows (\(start)): entries were cut from its tail or an older copy was restored"))
                return IntegrityReport(size: 0, root: checkpoint.rootHash, journalPending: 0, problems: problems, externallyCovered: nil)
            }
            let stored = tree(txn, size: head.size)
            let merkle = MerkleHasher()
            guard start == 0 || (try? stored.rootHash(size: start)) == checkpoint.rootHash else {
                problems.append(LedgerError(.chainBroken, "the log's root at size \(start) is not the root \(source.source) shows: the log was rewritten or forked before that size"))
                return IntegrityReport(size: 0, root: checkpoint.rootHash, journalPending: 0, problems: problems, externallyCovered: nil)
            }
            // The right edge at the checkpoint, and the last leaf before it: both under its root.
            var frontier: [(level: Int, hash: SHA256Digest)] = try MerkleSubtrees.decomposition(of: start).map { level, index in
                guard let hash = try LedgerKeys.withU64Key(MerkleSubtrees.storageIndex(level: level, index: index), { try txn.get(databases.tree, key: $0) })
                    .flatMap({ SHA256Digest(bytes: $0) })
                else { throw LedgerError(.corrupt, "the stored Merkle subtree (\(level), \(index)) is missing") }
                return (level, hash)
            }
            var prev = SHA256Digest.zero
            var lastTimestamp: Timestamp?
            if start > 0 {
                let header = try self.header(start - 1, txn: txn)
                prev = merkle.leafHash(try entry(start - 1, txn: txn).headerBytes)
                let proof = try stored.inclusionProof(index: start - 1, size: start)
                do {
                    try MerkleVerifier(hasher: merkle).verifyInclusion(leafHash: prev, index: start - 1, size: start, proof: proof, root: checkpoint.rootHash)
                } catch {
                    problems.append(LedgerError(.chainBroken, "entry \(start - 1), the last the checkpoint covers, is not the one its root includes"))
                }
                lastTimestamp = header.timestamp
            }
            for seq in start..<head.size {
                guard let headerBytes = try LedgerKeys.withEntryKey(seq, LedgerKeys.headerTag, { try txn.get(databases.entries, key: $0).map(Array.init) }) else {
                    problems.append(LedgerError(.chainBroken, "entry \(seq) is missing"))
                    break
                }
                let leaf = merkle.leafHash(headerBytes)
                defer {
                    prev = leaf
                    // Appends the leaf to the right edge; each subtree it completes must be the stored one.
                    var node = (level: 0, hash: leaf)
                    var index = seq
                    while let last = frontier.last, last.level == node.level {
                        frontier.removeLast()
                        node = (node.level + 1, merkle.nodeHash(last.hash, node.hash))
                        index >>= 1
                        let position = MerkleSubtrees.storageIndex(level: node.level, index: index)
                        let storedHash = try? LedgerKeys.withU64Key(position) { try txn.get(databases.tree, key: $0) }.flatMap { SHA256Digest(bytes: $0) }
                        if storedHash != node.hash { problems.append(LedgerError(.corrupt, "stored Merkle hash \(position) does not match the entries")) }
                    }
                    frontier.append(node)
                }
                let header: EntryHeader
                do { header = try EntryHeader(parsing: headerBytes) } catch {
                    problems.append(LedgerError(.corrupt, "entry \(seq) has an invalid header: \(error)"))
                    continue
                }
                if header.seq != seq { problems.append(LedgerError(.chainBroken, "entry \(seq) carries seq \(header.seq)")) }
                if header.prev != prev {
                    problems.append(.chainBroken(at: seq, expected: Base64.encode(prev.bytes), found: Base64.encode(header.prev.bytes)))
                }
                if let lastTimestamp, header.timestamp <= lastTimestamp {
                    problems.append(LedgerError(.chainBroken, "entry \(seq) has ts \(header.timestamp), not after the previous entry's \(lastTimestamp)"))
                }
                lastTimestamp = header.timestamp
                guard let bodyBytes = try LedgerKeys.withEntryKey(seq, LedgerKeys.bodyTag, { try txn.get(databases.entries, key: $0).map(Array.init) }) else {
                    problems.append(LedgerError(.corrupt, "the body record of entry \(seq) is missing"))
                    continue
                }
                guard let body = try? EntryBody(parsing: bodyBytes) else {
                    problems.append(LedgerError(.corrupt, "the body of entry \(seq) cannot be decoded"))
                    continue
                }
                if body.commitment(using: SHA256()) != header.bodyCommitment {
                    problems.append(LedgerError(.chainBroken, "the body of entry \(seq) does not match the commitment in its header"))
                }
            }
            // The root the right edge gives must be the stored tree's and each later stored checkpoint's.
            var root = MerkleHasher.emptyRoot
            if var node = frontier.last?.hash {
                for left in frontier.dropLast().reversed() { node = merkle.nodeHash(left.hash, node) }
                root = node
            }
            if problems.isEmpty, head.size > 0, (try? stored.rootHash(size: head.size)) != root {
                problems.append(LedgerError(.corrupt, "the stored tree's root does not match the entries after the checkpoint"))
            }
            if problems.isEmpty {
                problems += try auditStoredCheckpoints(
                    txn: txn, from: start, treeSize: stored.size, rootAt: { try stored.rootHash(size: $0) }, keys: keys)
            }
            return IntegrityReport(size: head.size - start, root: root, journalPending: 0, problems: problems, externallyCovered: start)
        }
    }
}
