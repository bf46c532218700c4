import Glibc
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
    /// The largest size a valid checkpoint held outside the store covers; nil when none was given
    /// or none holds: then a consistent rewrite of the whole log, or a cut tail, cannot be told.
    public let externallyCovered: UInt64?
    /// Spans longer than the quiet period asked about with no entry: the entry before each, and the
    /// span in microseconds (at most 1,000 listed). Not problems: for an auditor asking whether
    /// logging ran for the whole period.
    public internal(set) var gaps: [(after: UInt64, microseconds: Int64)] = []

    init(size: UInt64, root: SHA256Digest, journalPending: UInt64, problems: [LedgerError], externallyCovered: UInt64?, gaps: [(after: UInt64, microseconds: Int64)] = []) {
        self.size = size
        self.root = root
        self.journalPending = journalPending
        self.problems = problems
        self.externallyCovered = externallyCovered
        self.gaps = gaps
    }

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
    ///
    /// - Parameter threads: how many threads decode entries (parse and hash headers and bodies) ahead
    ///   of the in-order checks, which run on the calling thread; by default one per processor, and
    ///   with 1 everything runs on the calling thread. The report does not depend on it: fewer leave
    ///   more of the machine to a daemon serving beside the check.
    /// - Parameter pace: called after each chunk of entries checked, on the checking thread: it may
    ///   sleep, to bound the check's share of a core, or throw, to stop the check (the error is
    ///   rethrown).
    /// - Parameter external: checkpoints held outside the store and the pinned verifier key: every
    ///   stored checkpoint's signature is checked under the key, and the log against each checkpoint.
    /// - Parameter quietPeriod: list every span longer than this (µs) with no entry.
    public func verifyIntegrity(
        threads: Int? = nil, external: ExternalCheckpoints = ExternalCheckpoints(), quietPeriod: Int64? = nil, pace: (() throws -> Void)? = nil
    ) throws -> IntegrityReport {
        try verifyIntegrity(chunkSize: 4096, threads: threads ?? Self.processors, external: external, quietPeriod: quietPeriod, pace: pace)
    }

    /// ``verifyIntegrity(threads:)``, decoding `chunkSize` entries at a time (a chunk's raw records and
    /// decoded results are held at once). The report does not depend on it.
    func verifyIntegrity(
        chunkSize: Int, threads: Int = processors, external: ExternalCheckpoints = ExternalCheckpoints(), quietPeriod: Int64? = nil,
        pace: (() throws -> Void)? = nil
    ) throws -> IntegrityReport {
        precondition(chunkSize > 0)
        // The journal is read before the store's snapshot is taken. A live daemon overwrites journal
        // records only once its store holds them, so a later snapshot holds every entry the journal
        // has dropped; a journal read after a long check could have moved past a stale snapshot.
        let journal = try Journal(directory: path, create: false, exclusive: false, readOnly: true)
        let journaled = try journal?.readableEntries() ?? []
        return try read { txn in
            let head = try head(txn)
            var problems: [LedgerError] = []
            // A live writer's mark is in its journal; a writer that did not stop cleanly must have left it.
            if !Self.writerHoldsDirectory(path), let lost = Journal.loss(in: path, mark: try journalMark(txn), storeSize: head.size) {
                problems.append(lost)
            }
            var rebuilt = MerkleRightEdge()
            var covered: UInt64?
            // The pinned key, then each key the log handed over to with the key in force.
            var keys: SigningKeys?
            if let pinned = external.key {
                let (followed, rotationProblems) = try signingKeys(from: pinned, txn: txn, size: head.size)
                keys = followed
                problems += rotationProblems
            }
            var gaps: [(after: UInt64, microseconds: Int64)] = []
            do {
                try check(
                    txn, head: head, chunkSize: chunkSize, threads: max(1, threads), pace: pace, problems: &problems, rebuilt: &rebuilt,
                    keys: keys, quietPeriod: quietPeriod, gaps: &gaps)
                let storedTree = tree(txn, size: rebuilt.size)
                let audit = try auditExternalCheckpoints(external, keys: keys, txn: txn, treeSize: rebuilt.size, rootAt: { (try? storedTree.rootHash(size: $0)) ?? .zero })
                problems += audit.problems
                covered = audit.covered
            } catch let error as LMDBError where error.code == LMDBError.corrupted || error.code == LMDBError.pageNotFound {
                problems.append(LedgerError(.corrupt, "the LMDB file is damaged (\(error)); the check stopped there, after \(rebuilt.size) entries"))
            }
            let root = rebuilt.rootHash(hasher: MerkleHasher())
            if let problem = journal?.damage(storeSize: head.size) { problems.append(problem) }
            let pending = try auditJournal(journaled, txn, head: head, problems: &problems)
            return IntegrityReport(size: head.size, root: root, journalPending: pending, problems: problems, externallyCovered: covered, gaps: gaps)
        }
    }

    /// The processors online (at least 1).
    static var processors: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    private func check(
        _ txn: Transaction, head: ChainHead, chunkSize: Int, threads: Int, pace: (() throws -> Void)?, problems: inout [LedgerError],
        rebuilt: inout MerkleRightEdge, keys: SigningKeys? = nil, quietPeriod: Int64? = nil,
        gaps: inout [(after: UInt64, microseconds: Int64)]
    ) throws {
        let merkle = MerkleHasher()
        var prev = SHA256Digest.zero
        var lastTimestamp: Timestamp?
        let lastStored = try txn.withCursor(databases.entries) { cursor in try cursor.last().map { LedgerKeys.readU64($0.key) } }
        if let lastStored, lastStored >= head.size {
            problems.append(LedgerError(.chainBroken, "the store holds entry \(lastStored) beyond its head (\(head.size) entries)"))
        }
        /// The first stored tree position whose hash is not the one the headers give.
        var treeMismatch: UInt64?
        var derived = DerivedRecordAudit(txn: txn, databases: databases, indexKey: indexKey, size: head.size)
        // Entries are decoded (parsed, hashed, bodies checked against their commitments) on several
        // threads, a chunk ahead of the checks below, which need them in seq order.
        var next: UInt64 = 0
        var missing: UInt64?
        // A read that fails (a damaged page) leaves the transaction unusable (LMDB marks it failed):
        // the entries read before it still get every check that needs no further read, and then
        // the failure ends the check.
        var readFailure: (any Error)?
        func start() -> ParallelEntryDecoder? {
            guard next < head.size, missing == nil, readFailure == nil else { return nil }
            var raws: [ParallelEntryDecoder.Raw] = []
            let end = min(head.size, next + UInt64(chunkSize))
            raws.reserveCapacity(Int(end - next))
            do {
                while next < end {
                    guard let header = try LedgerKeys.withEntryKey(next, LedgerKeys.headerTag, { try txn.get(databases.entries, key: $0) }) else {
                        missing = next
                        break
                    }
                    let body = try LedgerKeys.withEntryKey(next, LedgerKeys.bodyTag) { try txn.get(databases.entries, key: $0) }
                    raws.append(ParallelEntryDecoder.Raw(seq: next, header: header, body: body))
                    next += 1
                }
            } catch {
                readFailure = error
            }
            return ParallelEntryDecoder(raws, threads: threads, indexKey: indexKey)
        }
        var decoding = start()
        // The next chunk is read (on this thread: the transaction's) and decoded while this one is
        // checked. No decoder may outlive this transaction (its pages are what it reads): however
        // this returns, it first waits for the one still running.
        var upcoming: ParallelEntryDecoder?? = .none
        defer { if case .some(let running?) = upcoming { running.wait() } }
        while let current = decoding {
            upcoming = .none
            try current.forEach { entry in
                if upcoming == nil { upcoming = .some(start()) }
                let seq = entry.seq
                defer {
                    prev = entry.leaf
                    // Each stored hash the leaf completes must be the one rebuilt from the headers.
                    rebuilt.append(entry.leaf, hasher: merkle) { position, expected in
                        guard treeMismatch == nil, readFailure == nil else { return }
                        let stored = try? LedgerKeys.withU64Key(position) { try txn.get(databases.tree, key: $0) }.flatMap { SHA256Digest(bytes: $0) }
                        if stored != expected { treeMismatch = position }
                    }
                }
                let header: EntryHeader
                switch entry.header {
                case .success(let parsed): header = parsed
                case .failure(let error):
                    problems.append(LedgerError(.corrupt, "entry \(seq) has an invalid header: \(error)", seq: seq, expected: "a canonical header", found: "\(error)"))
                    return
                }
                if header.seq != seq {
                    problems.append(LedgerError(.chainBroken, "entry \(seq) carries seq \(header.seq)", seq: seq, expected: "seq \(seq)", found: "seq \(header.seq)"))
                }
                if header.prev != prev {
                    problems.append(.chainBroken(at: seq, expected: Base64.encode(prev.bytes), found: Base64.encode(header.prev.bytes)))
                }
                if let lastTimestamp, header.timestamp <= lastTimestamp {
                    problems.append(LedgerError(
                        .chainBroken, "entry \(seq) has ts \(header.timestamp), not after the previous entry's \(lastTimestamp)", seq: seq,
                        expected: "ts after \(lastTimestamp)", found: "ts \(header.timestamp)"))
                }
                if let quietPeriod, let lastTimestamp, seq > 0, gaps.count < 1_000,
                    header.timestamp.microseconds - lastTimestamp.microseconds > quietPeriod
                {
                    gaps.append((seq - 1, header.timestamp.microseconds - lastTimestamp.microseconds))
                }
                lastTimestamp = header.timestamp
                var keys: DerivedRecordAudit.BodyKeys?
                switch entry.body {
                case .valid(let decided): keys = decided
                case .mismatch:
                    // Its fields cannot be trusted to check the indexes against.
                    problems.append(LedgerError(
                        .chainBroken, "the body of entry \(seq) does not match the commitment in its header", seq: seq,
                        expected: "body commitment \(Base64.encode(header.bodyCommitment.bytes))", found: "a body with another commitment"))
                case .undecodable(let error):
                    problems.append(LedgerError(.corrupt, "the body of entry \(seq) cannot be decoded: \(error)", seq: seq, expected: "a canonical body record", found: "\(error)"))
                case .missing:
                    problems.append(LedgerError(.corrupt, "the body record of entry \(seq) is missing", seq: seq, expected: "a body record", found: "none"))
                }
                if readFailure == nil { try derived.check(seq: seq, header: header, keys: keys) }
            }
            decoding = upcoming ?? start()
            try pace?()
        }
        if let readFailure { throw readFailure }
        if let missing {
            problems.append(LedgerError(.chainBroken, "entry \(missing) is missing", seq: missing, expected: "entry \(missing)", found: "none"))
        }
        let complete = missing == nil
        if prev != head.lastLeaf && problems.isEmpty {
            problems.append(LedgerError(.chainBroken, "the chain head names a last leaf that is not the last entry's"))
        }
        // Every stored subtree hash must equal the one rebuilt from the headers.
        let storedCount = try txn.count(databases.tree)
        if UInt64(storedCount) != MerkleSubtrees.storedCount(leaves: rebuilt.size) {
            problems.append(LedgerError(.corrupt, "the tree database holds \(storedCount) hashes, expected \(MerkleSubtrees.storedCount(leaves: rebuilt.size))"))
        }
        if let position = treeMismatch {
            problems.append(LedgerError(.corrupt, "stored Merkle hash \(position) does not match the entries"))
        }
        // With entries missing, what the index should hold beyond them is unknown.
        if complete {
            // A rebuild from damaged entries would differ by the damage, already reported.
            let entriesSound = problems.isEmpty
            problems += try derived.finish()
            if entriesSound { problems += try auditConsentState(txn, size: head.size) }
        }
        // The stored tree now matches the headers (or its mismatch is reported): roots at any size come from it.
        let storedTree = tree(txn, size: rebuilt.size)
        problems += try auditStoredCheckpoints(txn: txn, from: 0, treeSize: rebuilt.size, rootAt: { (try? storedTree.rootHash(size: $0)) ?? .zero }, keys: keys)
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
