public import SteleCore
import SteleLMDB

/// What ``LedgerWriter/perform(now:_:)`` lends an operation for one store transaction: the store as
/// it stands after every earlier append, and the means to change it. Entries appended here are
/// built by the same ``EntryBuilder`` as every other append and stored in this transaction.
public struct WriteContext {
    private let ledger: Ledger
    private let txn: Transaction
    private let state: Ledger.StoreState
    private(set) var builder: EntryBuilder
    private let preparer: EventPreparer
    private let now: @Sendable () -> Timestamp
    /// Built here, stored in ``finish(head:)``.
    private var built: [JournalEntry] = []

    init(
        ledger: Ledger, txn: Transaction, state: Ledger.StoreState, builder: EntryBuilder, preparer: EventPreparer,
        now: @escaping @Sendable () -> Timestamp
    ) {
        self.ledger = ledger
        self.txn = txn
        self.state = state
        self.builder = builder
        self.preparer = preparer
        self.now = now
    }

    /// The log's size, counting the entries this operation appended.
    public var size: UInt64 { builder.head.size }

    /// Entry `seq` as this transaction sees it.
    public func entry(_ seq: UInt64) throws -> StoredEntry {
        if let first = built.first, seq >= first.seq { return try StoredEntry(journaled: built[Int(seq - first.seq)]) }
        return try ledger.entry(seq, txn: txn)
    }

    /// Appends `event` as the next entry of the log.
    /// - Throws: ``LedgerError`` `invalid_event` when the event cannot be sealed.
    public mutating func append(_ event: Event) throws -> Receipt {
        let entry = builder.build(try preparer.prepare(event), clock: now(), using: state.sha)
        built.append(entry)
        return EntryBuilder.receipt(entry)
    }

    /// Redacts body fields of entry `seq` (`Specs/entry-format.md` §2.4): values and salts go,
    /// digests stay, so every proof still verifies.
    /// - Returns: the names redacted now (fields already redacted or absent are ignored).
    public mutating func redact(seq: UInt64, fields: [String]) throws -> [String] {
        if let first = built.first, seq >= first.seq {
            throw LedgerError(.invalidEvent, "entry \(seq) was appended by this operation: redact it in a later one")
        }
        return try ledger.redact(seq: seq, fields: fields, txn: txn, size: built.first?.seq ?? size, state: state)
    }

    /// Prunes the entries of `seqs` (ascending, none appended by this operation) that are due at
    /// `cutoff` under `rules` and still disclose a field, but those a hold covers (`Specs/retention.md`).
    /// - Returns: the seqs pruned, with their retention class, and how many were held.
    mutating func prune(
        _ seqs: [UInt64], cutoff: Timestamp, rules: RetentionRules, keptAfterLastEntry: [String: Int64]
    ) throws -> (pruned: [(seq: UInt64, retentionClass: String)], held: Int, moved: [Timestamp: [UInt64]]) {
        let size = built.first?.seq ?? self.size
        return try ledger.prune(seqs, cutoff: cutoff, rules: rules, keptAfterLastEntry: keptAfterLastEntry, txn: txn, size: size, state: state)
    }

    /// The seqs of the entries whose `subject` or `actor` is `identifier`, below `limit`, ascending.
    func seqs(about identifier: String, below limit: UInt64) throws -> [UInt64] {
        let size = built.first?.seq ?? self.size
        var seqs = Set<UInt64>()
        for (role, name) in [(SecondaryIndex.Role.subject, "subject"), (.actor, "actor")] {
            let hash = LedgerKeys.identifierHash(indexKey: ledger.indexKey, role: name, identifier: identifier, sha: state.sha)
            try ledger.index.seqs(txn, role: role, hash: hash, low: 0, high: min(limit, size), size: size) { seqs.insert($0); return true }
        }
        return seqs.sorted()
    }

    /// The retention rules as this transaction sees them.
    func retentionRules() throws -> RetentionRules {
        try ledger.retentionRules(txn)
    }

    /// Stores the entries appended, continuing `head`; returns the new head.
    func finish(head: ChainHead) throws -> ChainHead {
        var head = head
        try ledger.apply(built, txn: txn, head: &head, state: state)
        return head
    }
}
