public import SteleCore
import SteleCrypto
import SteleLMDB
import Synchronization

/// Appends inside one journaled write transaction (``Ledger/withJournaledSession(now:_:)``): each
/// batch is durable, and may be acknowledged, once ``append(prepared:)`` returns; the store commits
/// all of the session's batches together when the session ends.
public final class JournaledSession {
    let ledger: Ledger
    let txn: Transaction
    let state: Ledger.WriterState
    let now: () -> Timestamp
    var head: ChainHead
    /// New entries appended in this session (not counting retries of known ids).
    public private(set) var entryCount = 0

    init(ledger: Ledger, txn: Transaction, state: Ledger.WriterState, head: ChainHead, now: @escaping () -> Timestamp) {
        self.ledger = ledger
        self.txn = txn
        self.state = state
        self.head = head
        self.now = now
    }

    /// Appends a batch and writes its new entries to the journal with one synchronous write.
    ///
    /// Outcomes are as for ``Ledger/append(prepared:storing:now:)``. When this returns, every new
    /// entry of the batch is durable: a crash before the session commits loses none of them (the
    /// next writer moves them from the journal into the store).
    /// - Throws: ``LedgerError`` `storageFull` or `storage` when the batch could not be made durable;
    ///   then end the session by rethrowing (what earlier batches appended stays in the journal).
    /// - Parameter journaled: false to leave the batch out of the journal: it is then durable only
    ///   once the session commits, and must not be acknowledged before (for a large batch, whose
    ///   share of one commit is small, writing it twice would cost more than it saves).
    public func append(prepared: [PreparedEvent], journaled: Bool = true) throws -> [Result<Receipt, LedgerError>] {
        guard let journal = state.journal else { throw LedgerError(.storage, "the ledger has no journal") }
        state.record.reset()
        state.recording = journaled
        defer { state.recording = false }
        let results = try prepared.map { try ledger.appendOne($0, txn: txn, head: &head, now: now(), state: state) }
        if journaled && state.record.count > 0 {
            entryCount += Int(state.record.count)
            try journal.append(&state.record)
        }
        return results
    }

    /// Records a signed checkpoint of this log in the session's transaction (checked as by
    /// ``Ledger/storeCheckpoint(_:)``). It is kept only if the session commits.
    public func store(_ note: SignedNote) throws {
        try ledger.store(try ledger.ownCheckpoint(note), note, txn: txn)
    }

    /// Bytes the session has written to the journal.
    public var journalBytes: Int { state.journal?.generationBytes ?? 0 }

    /// The journal file's size (a session that writes more than this makes it grow).
    public var journalCapacity: Int { state.journal?.capacity ?? 0 }
}

extension Ledger {
    /// Makes this process the store's journaled writer: creates the journal if absent and locks it.
    /// - Throws: ``LedgerError`` `storage` when another process already writes through it.
    public func adoptJournal() throws {
        guard !isReadOnly else { throw LedgerError(.readOnly, "the ledger was opened read-only") }
        try writer.withLock { state in
            state.journal = nil  // one handle per process: the unlocked one the ledger opened is replaced
            state.journal = try Journal(directory: path, create: true, exclusive: true, lockWait: 3)
            state.journalOwner = true
        }
    }

    /// Runs `body` inside one write transaction whose appends (``JournaledSession/append(prepared:)``)
    /// are durable through the journal before the transaction commits; commits with full sync when
    /// `body` returns. Requires ``adoptJournal()``.
    ///
    /// `body` may run more than once (LMDB reruns a transaction that outgrew the map); a rerun starts
    /// with the entries earlier runs journaled already in place, so it must only append what it has
    /// not yet had acknowledged.
    public func withJournaledSession<R: Sendable>(
        now: @escaping @Sendable () -> Timestamp = Timestamp.now, _ body: (JournaledSession) throws -> R
    ) throws -> R {
        try writer.withLock { state in
            guard state.journalOwner, let journal = state.journal else {
                throw LedgerError(.storage, "this process does not own the ledger's journal")
            }
            let result = try write(state, now: now) { txn, head in
                let session = JournaledSession(ledger: self, txn: txn, state: state, head: head, now: now)
                let result = try body(session)
                head = session.head
                return result
            }
            journal.startNewGeneration()
            return result
        }
    }

    /// Moves journaled entries beyond the store's head into it, in order, checking that each one
    /// continues the chain; entries the store already holds must match it.
    func moveJournal(_ journal: Journal, owner: Bool, txn: Transaction, head: inout ChainHead, state: WriterState) throws {
        if !owner { try journal.rescan() }
        for entry in try journal.entries() {
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
            let leaf = state.merkle.leafHash(entry.header)
            try storeEntry(
                seq: entry.seq, timestamp: entry.timestamp, leaf: leaf, header: entry.header, body: entry.body,
                idempotencyKey: entry.idempotencyKey, actorHash: entry.actorHash, kindHash: entry.kindHash,
                subjectHash: entry.subjectHash, txn: txn, state: state)
            head = ChainHead(size: entry.seq + 1, lastLeaf: leaf, lastTimestamp: entry.timestamp)
        }
    }

    /// Moves entries a stopped journaled writer acknowledged into the store at `path`, if it has a
    /// journal with any and no live writer holds it. For read-only tools, before they open the store.
    /// - Returns: how many entries were moved (0 if none or if this process may not write the store).
    @discardableResult
    public static func completeJournal(path: String) throws -> UInt64 {
        guard let probe = try? Journal(directory: path, create: false, exclusive: true) else { return 0 }
        return try withExtendedLifetime(probe) {
            guard let last = try probe.entries().last else { return 0 }
            // Usually the store has every journaled entry (a clean stop): check without writing.
            var readOnly = Options()
            readOnly.readOnly = true
            let size = try Ledger(path: path, options: readOnly).treeHead().size
            guard last.seq >= size, let ledger = try? Ledger(path: path) else { return 0 }
            try ledger.writer.withLock { state in
                guard state.journal != nil else { return }
                _ = try ledger.write(state, now: Timestamp.now) { _, _ in }
            }
            return try ledger.treeHead().size - size
        }
    }
}
