/// The index records of blocks this writer is filling, kept as it appends them, so that sealing a
/// block (writing its postings) need not read its 3 × 1024 records back from the store.
///
/// Trusted only for a block whose every entry this writer appended in an unbroken run: a gap in
/// seqs (another process appended), a redaction by any process (the store counts them), or a
/// transaction that did not commit drops what is held, and sealing then reads the records from the
/// store as before.
final class PendingPostings {
    struct Record {
        let role: UInt8
        let hash: KeyedHash
        let offset: UInt16

        static func < (a: Record, b: Record) -> Bool {
            (a.role, a.hash.high, a.hash.low, a.offset) < (b.role, b.hash.high, b.hash.low, b.offset)
        }
    }

    private let shift: UInt64
    /// The block being filled and its records so far; nil when not trusted.
    private var filling: (block: UInt64, next: UInt64, records: [Record])?
    /// Blocks completed in the transaction in progress, awaiting their seal.
    private var completed: [UInt64: [Record]] = [:]

    init(blockShift: UInt64) {
        self.shift = blockShift
    }

    /// Records entry `seq`'s index records: the keyed hashes of its actor and subject (when it has
    /// them) and of its kind.
    func append(seq: UInt64, actor: KeyedHash?, kind: KeyedHash, subject: KeyedHash?) {
        let offset = UInt16(truncatingIfNeeded: seq & ((1 << shift) - 1))
        if offset == 0 {
            filling = (seq >> shift, seq, [])
            filling!.records.reserveCapacity(3 << shift)
        }
        guard filling != nil, filling!.next == seq else {
            filling = nil
            return
        }
        if let actor { filling!.records.append(Record(role: SecondaryIndex.Role.actor.rawValue, hash: actor, offset: offset)) }
        filling!.records.append(Record(role: SecondaryIndex.Role.kind.rawValue, hash: kind, offset: offset))
        if let subject { filling!.records.append(Record(role: SecondaryIndex.Role.subject.rawValue, hash: subject, offset: offset)) }
        filling!.next = seq + 1
        if Int(offset) == (1 << shift) - 1 {
            completed[filling!.block] = filling!.records
            filling = nil
        }
    }

    /// The records of a completed `block`, if this writer holds all of them.
    func take(block: UInt64) -> [Record]? {
        completed.removeValue(forKey: block)
    }

    /// Forgets everything (a transaction did not commit, or index records were removed).
    func invalidate() {
        filling = nil
        completed.removeAll()
    }

    /// The store's redaction count when the held records were last known good.
    private var redactions: UInt64?

    /// A transaction (or a rerun of one) begins, seeing `redactions` redactions in the store: only
    /// blocks it completes may be taken, and a redaction since (by any process) drops what is held.
    func beginTransaction(redactions current: UInt64) {
        completed.removeAll()
        if redactions != current { filling = nil }
        redactions = current
    }

    /// The transaction committed: completed blocks were sealed in it.
    func committed() {
        completed.removeAll()
    }
}
