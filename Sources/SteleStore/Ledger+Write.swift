import SteleCore
import SteleCrypto
import SteleLMDB
import Glibc
import Synchronization

/// The store's write primitives. Only ``LedgerWriter`` calls them, on its store queue: one LMDB
/// write transaction at a time, committed with full sync.
extension Ledger {
    /// Runs one write transaction on the stored chain head, sealing the index blocks and storing the
    /// advanced head at the end; nothing of it stays if `body` throws.
    func write<R>(_ body: (Transaction, inout ChainHead, StoreState) throws -> R) throws -> R {
        var output: R?
        try store.withLock { state in
            do {
                let (result, head) = try environment.withWriteTransaction { txn in
                    var head = try self.head(txn)
                    if state.frontierHead != head {
                        state.frontier = try frontier(size: head.size, txn: txn)
                    }
                    // The frontier changes with the appends below; it is trusted again only once they
                    // commit (LMDB may abort and rerun this body, e.g. to grow the map).
                    state.frontierHead = nil
                    state.postings.beginTransaction(redactions: try redactions(txn))
                    let start = head
                    let result = try body(txn, &head, state)
                    if head != start {
                        try index.seal(txn, from: start.size, to: head.size, pending: state.postings)
                        try txn.put(databases.meta, key: LedgerKeys.headKey, value: head.bytes)
                    }
                    return (result, head)
                }
                state.postings.committed()
                state.frontierHead = head
                if releasesWrittenPages { releaseWrittenPages(state) }
                output = result
            } catch let error as LMDBError {
                state.postings.invalidate()
                state.frontierHead = nil
                // A full disk shows as ENOSPC, or as EIO when LMDB's page write comes up short.
                let diskFull = error.code == LMDBError.noSpace
                    || (error.code == 5 && (environment.availableDiskBytes ?? Int.max) < 1 << 22)
                if diskFull {
                    throw LedgerError(.storageFull, "the disk is full: nothing of this batch was written; free space and retry")
                }
                throw LedgerError(.storage, "the ledger could not commit: \(error)")
            } catch {
                state.postings.invalidate()
                state.frontierHead = nil
                throw error
            }
        }
        return output!
    }

    /// Stores built entries in order in `txn`: entries the store already holds must match it byte
    /// for byte, the rest must continue its chain exactly.
    func apply(_ entries: some Sequence<JournalEntry>, txn: Transaction, head: inout ChainHead, state: StoreState) throws {
        try withEntryAppender(txn) { appender in
            for entry in entries { try apply(entry, txn: txn, appender: &appender, head: &head, state: state) }
        }
    }

    func apply(_ entry: JournalEntry, txn: Transaction, appender: inout EntryAppender, head: inout ChainHead, state: StoreState) throws {
        // Of the entries the store holds, the newest is compared: a journal that does not belong to
        // this store differs there (`verify` compares every one).
        if entry.seq + 1 < head.size { return }
        if entry.seq < head.size {
            let stored = try LedgerKeys.withEntryKey(entry.seq, LedgerKeys.headerTag) { try txn.get(databases.entries, key: $0).map(Array.init) }
            guard stored == entry.header else {
                throw LedgerError(.corrupt, "journal entry \(entry.seq) differs from the store's entry \(entry.seq): the store or the journal was replaced or altered; refusing to write")
            }
            return
        }
        guard entry.seq == head.size else {
            throw LedgerError(.corrupt, "the journal continues at entry \(entry.seq) but the store ends at \(head.size): acknowledged entries are missing (an older copy of the store restored?); refusing to write")
        }
        let leaf: SHA256Digest
        if let built = entry.built {
            // Built in this process from the head it continues: its header needs no parse.
            guard built.prev == head.lastLeaf else {
                throw LedgerError.chainBroken(at: entry.seq, expected: Base64.encode(head.lastLeaf.bytes), found: Base64.encode(built.prev.bytes))
            }
            leaf = built.leaf
        } else {
            let header: EntryHeader
            do { header = try EntryHeader(parsing: entry.header) } catch {
                throw LedgerError(.corrupt, "journal entry \(entry.seq) has an unreadable header: \(error)")
            }
            guard header.seq == entry.seq, header.timestamp == entry.timestamp else {
                throw LedgerError(.corrupt, "journal entry \(entry.seq) does not match its own header")
            }
            guard header.prev == head.lastLeaf else {
                throw LedgerError.chainBroken(at: entry.seq, expected: Base64.encode(head.lastLeaf.bytes), found: Base64.encode(header.prev.bytes))
            }
            leaf = state.merkle.leafHash(entry.header)
        }
        // Header, body and idempotency record of one entry are adjacent keys at the end of one database.
        try LedgerKeys.withEntryKey(entry.seq, LedgerKeys.headerTag) { key in
            try entry.header.withUnsafeBytes { try appender.entries.append(key: key, value: $0) }
        }
        try LedgerKeys.withEntryKey(entry.seq, LedgerKeys.bodyTag) { key in
            try entry.body.withUnsafeBytes { try appender.entries.append(key: key, value: $0) }
        }
        if let idempotencyKey = entry.idempotencyKey {
            try LedgerKeys.withEntryKey(entry.seq, LedgerKeys.idempotencyTag) { k in
                try idempotencyKey.withUnsafeBytes { try appender.entries.append(key: k, value: $0) }
            }
        }
        try appendTree(leaf: leaf, seq: entry.seq, cursor: &appender.tree, state: state)
        // In role order (actor, kind, subject), the order of their keys; no list per entry.
        let index = self.index
        if let actorHash = entry.actorHash { try index.add(&appender.index, seq: entry.seq, role: .actor, hash: actorHash) }
        try index.add(&appender.index, seq: entry.seq, role: .kind, hash: entry.kindHash)
        if let subjectHash = entry.subjectHash { try index.add(&appender.index, seq: entry.seq, role: .subject, hash: subjectHash) }
        state.postings.append(seq: entry.seq, actor: entry.actorHash, kind: entry.kindHash, subject: entry.subjectHash)
        if let kind = consentKinds[entry.kindHash], let consent = consentTable {
            try consent.record(try consentEvent(entry, kind: kind), subject: entry.subjectHash, txn: txn)
        }
        head = ChainHead(size: entry.seq + 1, lastLeaf: leaf, lastTimestamp: entry.timestamp)
    }

    /// Redacts body fields of entry `seq` in `txn`: values and salts go, digests stay, so the entry
    /// and every proof still verify; the entry's index records for a redacted `subject` or `actor`
    /// go too. Fields already redacted or absent are ignored.
    /// - Returns: the names redacted now.
    func redact(seq: UInt64, fields: [String], txn: Transaction, size: UInt64, state: StoreState) throws -> [String] {
        guard seq < size else {
            throw LedgerError(.outOfRange, "entry \(seq) does not exist (the log has \(size) entries)")
        }
        let stored = try entry(seq, txn: txn)
        let names = fields.filter { stored.body.fields[$0]?.isRedacted == false }
        guard !names.isEmpty else { return [] }
        // Index records of this entry go away: any writer's copy of its block is stale, this
        // transaction's too (an append later in it may seal the block).
        try bumpRedactions(txn)
        state.postings.invalidate()
        for (name, role) in [("subject", SecondaryIndex.Role.subject), ("actor", .actor)] where names.contains(name) {
            if let identifier = stored.body.fields[name]?.value?.stringValue {
                let hash = LedgerKeys.identifierHash(indexKey: indexKey, role: name, identifier: identifier, sha: state.sha)
                try index.remove(txn, seq: seq, role: role, hash: hash, size: size)
            }
        }
        try txn.put(databases.entries, key: LedgerKeys.body(seq), value: stored.body.redacting(names, using: state.sha).canonicalBytes)
        try consentEntryRedacted(stored, txn: txn, sha: state.sha)
        return names
    }

    /// Prunes the entries `seqs` (ascending) that are due at `cutoff` and still disclose a field, in
    /// `txn`: every field redacted, their `subject` and `actor` index records removed (a sealed
    /// block's posting rewritten once for all of them), the consent state refolded. Each body is
    /// read and parsed once; others are skipped.
    /// - Returns: the seqs pruned, with their retention class.
    func prune(
        _ seqs: [UInt64], cutoff: Timestamp, rules: RetentionRules, keptAfterLastEntry: [String: Int64] = [:],
        txn: Transaction, size: UInt64, state: StoreState
    ) throws -> (pruned: [(seq: UInt64, retentionClass: String)], held: Int, moved: [Timestamp: [UInt64]]) {
        var pruned: [(seq: UInt64, retentionClass: String)] = []
        var held = 0
        var moved: [Timestamp: [UInt64]] = [:]
        /// Sealed postings to rewrite: (block, role, hash) → offsets leaving it.
        var postings: [PostingKey: Set<UInt16>] = [:]
        for seq in seqs where seq < size {
            guard let headerBytes = try LedgerKeys.withEntryKey(seq, LedgerKeys.headerTag, { try txn.get(databases.entries, key: $0).map(Array.init) }),
                case .some(let retainUntil) = headerBytes.withUnsafeBytes({ EntryHeader.retainUntil(inCanonical: $0) }),
                let until = rules.deadline(seq, retainUntil: retainUntil), until <= cutoff,
                let bodyBytes = try LedgerKeys.withEntryKey(seq, LedgerKeys.bodyTag, { try txn.get(databases.entries, key: $0).map(Array.init) })
            else { continue }
            let body: EntryBody
            do { body = try EntryBody(parsing: bodyBytes) } catch {
                throw LedgerError(.corrupt, "entry \(seq) has an unreadable body: \(error)")
            }
            let names = body.fields.compactMap { $0.value.isRedacted ? nil : $0.key }
            guard !names.isEmpty else { continue }
            let header: EntryHeader
            do { header = try EntryHeader(parsing: headerBytes) } catch {
                throw LedgerError(.corrupt, "entry \(seq) has an unreadable header: \(error)")
            }
            if !rules.holds.isEmpty, let subject = body.fields["subject"]?.value?.stringValue,
                rules.hold(covering: subjectHash(subject), kind: header.kind, at: cutoff) != nil
            {
                held += 1
                continue
            }
            // A class kept after the subject's newest entry of it: a later one moves the deadline.
            if let kept = keptAfterLastEntry[header.retentionClass], let subject = body.fields["subject"]?.value?.stringValue,
                let newest = try newestTimestamp(ofClass: header.retentionClass, about: subjectHash(subject), after: seq, txn: txn, size: size),
                newest.adding(microseconds: kept) > cutoff
            {
                moved[newest.adding(microseconds: kept), default: []].append(seq)
                continue
            }
            for (name, role) in [("subject", SecondaryIndex.Role.subject), ("actor", .actor)] {
                guard let identifier = body.fields[name]?.value?.stringValue else { continue }
                _ = try txn.delete(databases.index, key: SecondaryIndex.recentKey(seq: seq, role: role))
                let block = seq >> SecondaryIndex.blockShift
                guard block < size >> SecondaryIndex.blockShift else { continue }
                let hash = LedgerKeys.identifierHash(indexKey: indexKey, role: name, identifier: identifier, sha: state.sha)
                postings[PostingKey(block: block, role: role, hash: hash), default: []].insert(UInt16(seq & ((1 << SecondaryIndex.blockShift) - 1)))
            }
            try txn.put(databases.entries, key: LedgerKeys.body(seq), value: body.redacting(names, using: state.sha).canonicalBytes)
            try consentEntryRedacted(StoredEntry(seq: seq, headerBytes: headerBytes, header: header, body: body), txn: txn, sha: state.sha)
            pruned.append((seq, header.retentionClass))
        }
        guard !pruned.isEmpty else { return ([], held, moved) }
        for (key, leaving) in postings {
            let posting = SecondaryIndex.postingKey(block: key.block, role: key.role, hash: key.hash)
            guard let value = try txn.get(databases.index, key: posting) else { continue }
            let remaining = value.withUnsafeBytes { SecondaryIndex.offsets($0) }.filter { !leaving.contains($0) }
            if remaining.isEmpty { _ = try txn.delete(databases.index, key: posting) } else { try txn.put(databases.index, key: posting, value: SecondaryIndex.encode(remaining)) }
        }
        // Index records went: any writer's copy of a block is stale, this transaction's too (an
        // append later in it may seal the block).
        try bumpRedactions(txn)
        state.postings.invalidate()
        return (pruned, held, moved)
    }

    /// The `ts` of the newest entry of `retentionClass` about the subject with keyed hash `subject`
    /// after entry `seq`, if any.
    private func newestTimestamp(ofClass retentionClass: String, about subject: KeyedHash, after seq: UInt64, txn: Transaction, size: UInt64) throws -> Timestamp? {
        var newest: Timestamp?
        try index.seqs(txn, role: .subject, hash: subject, low: seq + 1, high: size, size: size) { later in
            if let header = try? header(later, txn: txn), header.retentionClass == retentionClass { newest = header.timestamp }
            return true
        }
        return newest
    }

    /// A sealed block's posting for one role and keyed hash.
    struct PostingKey: Hashable {
        let block: UInt64
        let role: SecondaryIndex.Role
        let hash: KeyedHash
    }

    /// Lets the kernel drop the cached pages more than ``cachedTail`` behind the end of the store
    /// file, an eighth of that at a time, each range once. A writer never reads the pages it
    /// appended again (what it reads stays mapped, and mapped pages are kept), so caching them only
    /// grows the page cache by every byte appended (`Tools/bench-daemon.sh` compares
    /// `store_keep_written_pages`).
    private func releaseWrittenPages(_ state: StoreState) {
        let target = environment.usedBytes - cachedTail
        guard target - state.pagesReleasedBelow >= cachedTail / 8 else { return }
        environment.adviseNotNeeded(state.pagesReleasedBelow..<target)
        state.pagesReleasedBelow = target
    }

    /// How many redactions the store has seen (`meta/redactions`).
    private func redactions(_ txn: Transaction) throws -> UInt64 {
        try txn.get(databases.meta, key: LedgerKeys.redactionsKey).map { bytes in
            bytes.count == 8 ? bytes.withUnsafeBytes { LedgerKeys.readU64($0) } : UInt64.max
        } ?? 0
    }

    private func bumpRedactions(_ txn: Transaction) throws {
        try txn.put(databases.meta, key: LedgerKeys.redactionsKey, value: LedgerKeys.u64(try redactions(txn) &+ 1))
    }

    /// The roots of the complete subtrees that make up the tree of `size` leaves, largest first, read
    /// from the stored tree.
    private func frontier(size: UInt64, txn: Transaction) throws -> [SHA256Digest] {
        try MerkleSubtrees.decomposition(of: size).map { level, index in
            let stored = try LedgerKeys.withU64Key(MerkleSubtrees.storageIndex(level: level, index: index)) {
                try txn.get(databases.tree, key: $0).flatMap { SHA256Digest(bytes: $0) }
            }
            guard let stored else {
                throw LedgerError(.corrupt, "the stored Merkle subtree (\(level), \(index)) is missing or damaged")
            }
            return stored
        }
    }

    /// Stores the leaf hash and every subtree it completes, in ``MerkleSubtrees`` storage order. The
    /// siblings come from the store's frontier (the right edge of the tree), which `write` has
    /// checked against the stored head.
    private func appendTree(leaf: SHA256Digest, seq: UInt64, cursor: inout Cursor, state: StoreState) throws {
        var position = MerkleSubtrees.storedCount(leaves: seq)
        var hash = leaf
        try LedgerKeys.withU64Key(position) { key in try hash.withUnsafeBytes { try cursor.append(key: key, value: $0) } }
        var index = seq
        while index & 1 == 1 {
            hash = state.merkle.nodeHash(state.frontier.removeLast(), hash)
            position += 1
            try LedgerKeys.withU64Key(position) { key in try hash.withUnsafeBytes { try cursor.append(key: key, value: $0) } }
            index >>= 1
        }
        state.frontier.append(hash)
    }
}
