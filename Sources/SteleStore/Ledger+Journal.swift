public import SteleCore
import SteleCrypto
import SteleLMDB
import Synchronization
import Glibc

extension Ledger {
    /// Makes this process the store's journaled writer: creates the journal if absent and locks it.
    /// - Throws: ``LedgerError`` `storage` when another process already writes through it.
    public func adoptJournal() throws {
        guard !isReadOnly else { throw LedgerError(.readOnly, "the ledger was opened read-only") }
        try writer.withLock { state in
            // The data directory's lock keeps every other writer out while this process writes.
            var waited = 0
            while state.directoryLock < 0 || flock(state.directoryLock, LOCK_EX | LOCK_NB) != 0 {
                guard state.directoryLock >= 0, waited < 300 else {
                    throw LedgerError(.storage, "another daemon is writing this store (\(path) is locked); stop it first")
                }
                usleep(10_000)
                waited += 1
            }
            state.journal = nil  // one handle per process: the unlocked one the ledger opened is replaced
            state.journal = try Journal(directory: path, create: true, exclusive: true, lockWait: 3)
            state.journalOwner = true
        }
    }

    /// Moves journaled entries beyond the store's head into it, in order, checking that each one
    /// continues the chain; entries the store already holds must match it.
    func moveJournal(_ journal: Journal, owner: Bool, txn: Transaction, head: inout ChainHead, state: WriterState) throws {
        if !owner { try journal.rescan() }
        try moveEntries(try journal.entries(storeSize: head.size), txn: txn, head: &head, state: state)
    }

    /// Stops moving journaled entries in before every write: for a daemon that commits each batch
    /// itself (no journal) once its start has moved them in.
    public func detachJournal() {
        writer.withLock { $0.journal = nil }
    }

    /// Hands this process's journal to a ``JournalWriter`` (nil if it owns none).
    func releaseJournal() -> Journal? {
        writer.withLock { state in
            guard state.journalOwner else { return nil }
            state.tracksIdempotency = false
            state.idempotency.reset()
            defer { state.journal = nil }
            return state.journal
        }
    }

    /// Applies entries a ``JournalWriter`` journaled, in order, in one write transaction committed
    /// with full sync; entries the store already holds must match it, the rest must continue its
    /// chain. Optionally records a signed checkpoint in the same transaction.
    /// - Throws: ``LedgerError``; then nothing was applied (the entries stay in the journal).
    public func apply(_ entries: [JournalEntry], storing note: SignedNote? = nil) throws {
        let parsed = try note.map { try ownCheckpoint($0) }
        try writer.withLock { state in
            try write(state, now: Timestamp.now) { txn, head in
                if let parsed, let note { try store(parsed, note, txn: txn) }
                try moveEntries(entries, txn: txn, head: &head, state: state)
            }
        }
    }

    private func moveEntries(_ entries: [JournalEntry], txn: Transaction, head: inout ChainHead, state: WriterState) throws {
        try withEntryAppender(txn) { appender in try moveEntries(entries, txn: txn, appender: &appender, head: &head, state: state) }
    }

    private func moveEntries(
        _ entries: [JournalEntry], txn: Transaction, appender: inout EntryAppender, head: inout ChainHead, state: WriterState
    ) throws {
        for entry in entries {
            if entry.seq < head.size {
                let stored = try LedgerKeys.withEntryKey(entry.seq, LedgerKeys.headerTag) { try txn.get(databases.entries, key: $0).map(Array.init) }
                guard stored == entry.header else {
                    throw LedgerError(.corrupt, "journal entry \(entry.seq) differs from the store's entry \(entry.seq): the store or the journal was replaced or altered; refusing to write")
                }
                continue
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
            try storeEntry(
                seq: entry.seq, timestamp: entry.timestamp, leaf: leaf, header: entry.header, body: entry.body,
                idempotencyKey: entry.idempotencyKey, actorHash: entry.actorHash, kindHash: entry.kindHash,
                subjectHash: entry.subjectHash, appender: &appender, state: state)
            head = ChainHead(size: entry.seq + 1, lastLeaf: leaf, lastTimestamp: entry.timestamp)
        }
    }

    /// Moves entries a stopped journaled writer acknowledged into the store at `path`, if it has a
    /// journal with any and no live writer holds it. For read-only tools, before they open the store.
    /// - Returns: how many entries were moved (0 if none or if this process may not write the store).
    @discardableResult
    public static func completeJournal(path: String) throws -> UInt64 {
        // No daemon may hold the directory's lock (it moves its own journal in when it starts).
        // Checked first: beside a live daemon the journal is not read here at all.
        guard !daemonHoldsDirectory(path),
            let probe = try? Journal(directory: path, create: false, exclusive: false, readOnly: true)
        else { return 0 }
        return try withExtendedLifetime(probe) {
            // Usually the store has every journaled entry (a clean stop): check without writing.
            var readOnly = Options()
            readOnly.readOnly = true
            let size = try Ledger(path: path, options: readOnly).treeHead().size
            guard let last = try probe.entries(storeSize: size).last, last.seq >= size, let ledger = try? Ledger(path: path) else { return 0 }
            try ledger.writer.withLock { state in
                guard state.journal != nil else { return }
                _ = try ledger.write(state, now: Timestamp.now) { _, _ in }
            }
            return try ledger.treeHead().size - size
        }
    }

    /// For read-only tools beside a running daemon, which commits acknowledged entries to the store
    /// a moment after acknowledging them (`Specs/store.md`, "Applying"): waits until this store
    /// holds every entry the daemon had journaled when called, so that a tool started after an
    /// acknowledgement sees that entry. Polls for at most `timeout` seconds.
    /// - Returns: how many of those entries the store still lacked when the wait ended: 0 once it
    ///   holds them all, or when no daemon is running or its journal cannot be read.
    public func awaitAcknowledged(timeout: Double) -> UInt64 {
        guard let journal = try? Journal(directory: path, create: false, exclusive: false, readOnly: true),
            let last = journal.lastSeq, Self.daemonHoldsDirectory(path)
        else { return 0 }
        let deadline = Timestamp.now().microseconds + Int64(timeout * 1_000_000)
        while let size = try? self.size, size <= last {
            if Timestamp.now().microseconds >= deadline { return last + 1 - size }
            usleep(1000)
        }
        return 0
    }

    /// True while a process (a daemon) holds the lock on the data directory at `path`.
    private static func daemonHoldsDirectory(_ path: String) -> Bool {
        let directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return false }
        defer { close(directory) }  // releases the lock if this process took it
        return flock(directory, LOCK_EX | LOCK_NB) != 0
    }
}
