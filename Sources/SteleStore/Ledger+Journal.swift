import SteleCore
import SteleCrypto
import SteleLMDB
import Synchronization
import Glibc

extension Ledger {
    /// Moves entries a stopped journaled writer acknowledged into the store at `path`, if it has a
    /// journal with any and no live writer holds it. For read-only tools, before they open the store.
    /// - Returns: how many entries were moved (0 if none or if this process may not write the store).
    @discardableResult
    public static func completeJournal(path: String) throws -> UInt64 {
        // No writer may hold the directory's lock (it moves its own journal in when it starts).
        // Checked first: beside a live daemon the journal is not read here at all.
        guard !writerHoldsDirectory(path),
            let probe = try? Journal(directory: path, create: false, exclusive: false, readOnly: true)
        else { return 0 }
        return try withExtendedLifetime(probe) {
            // Usually the store has every journaled entry (a clean stop): check without writing.
            var readOnly = Options()
            readOnly.readOnly = true
            let size = try Ledger(path: path, options: readOnly).treeHead().size
            guard let last = try probe.entries(storeSize: size).last, last.seq >= size else { return 0 }
            // Opening the writer moves the journaled entries in; closing it empties the journal.
            var options = LedgerWriter.Options()
            options.lockWait = 0
            guard let ledger = try? Ledger(path: path) else { return 0 }
            do { try LedgerWriter(ledger: ledger, options: options).close() } catch let error as LedgerError where error.code == .locked {
                return 0  // a writer started meanwhile: it moves them in
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
            let last = journal.lastSeq, Self.writerHoldsDirectory(path)
        else { return 0 }
        let deadline = Timestamp.now().microseconds + Int64(timeout * 1_000_000)
        while let size = try? self.size, size <= last {
            if Timestamp.now().microseconds >= deadline { return last + 1 - size }
            usleep(1000)
        }
        return 0
    }

    /// True while a process (a daemon, or a direct writer) holds the lock on the data directory at `path`.
    static func writerHoldsDirectory(_ path: String) -> Bool {
        let directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return false }
        defer { close(directory) }  // releases the lock if this process took it
        return flock(directory, LOCK_EX | LOCK_NB) != 0
    }
}

extension Ledger {
    /// The mark of the writer that opened this store and has not closed it, if any (`meta/journal`).
    func journalMark(_ txn: Transaction) throws -> UInt64? {
        try txn.get(databases.meta, key: LedgerKeys.journalMarkKey).map { bytes in
            bytes.count == 8 ? bytes.withUnsafeBytes { LedgerKeys.readU64($0) } : 0
        }
    }

    /// Records (or, with nil, clears) the open writer's journal mark in write transaction `txn`.
    func setJournalMark(_ mark: UInt64?, txn: Transaction) throws {
        if let mark {
            try txn.put(databases.meta, key: LedgerKeys.journalMarkKey, value: LedgerKeys.u64(mark))
        } else if try txn.get(databases.meta, key: LedgerKeys.journalMarkKey) != nil {
            _ = try txn.delete(databases.meta, key: LedgerKeys.journalMarkKey)
        }
    }
}
