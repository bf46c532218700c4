import SteleCore
import SteleCrypto
import SteleLMDB

/// Checks the records the store derives from its entries against the entries themselves: the
/// subject, actor and kind indexes (recent records and sealed-block postings) and the idempotency
/// log (`Specs/store.md` §Integrity check).
///
/// The entries are authenticated by the hash chain and the Merkle tree; these records are not, so
/// an altered, removed or injected one would go unnoticed by the chain while it hides entries from
/// `query --subject` and consent rebuilds, or makes a retry resolve to the wrong entry. Entries are
/// fed in seq order; each costs three point reads and at most three keyed hashes.
struct DerivedRecordAudit {
    private let txn: Transaction
    private let databases: Ledger.Databases
    private let indexKey: SHA256Digest
    private let size: UInt64
    private let sealedBlocks: UInt64
    private let sha = SHA256()
    private var kindHashes: [String: KeyedHash] = [:]
    /// The current sealed block's expected records, and whether every body in it could be read.
    private var block: [PendingPostings.Record] = []
    private var blockReadable = true
    private var expectedRecent = 0
    private var expectedPostings = 0
    private var postingCountKnown = true
    private(set) var problems: [LedgerError] = []
    private var unreported = 0

    /// Problems beyond this many are counted, not listed: one damaged page can spoil thousands of records.
    static let reportLimit = 50

    init(txn: Transaction, databases: Ledger.Databases, indexKey: SHA256Digest, size: UInt64) {
        self.txn = txn
        self.databases = databases
        self.indexKey = indexKey
        self.size = size
        self.sealedBlocks = size >> SecondaryIndex.blockShift
    }

    /// What a body decides about its entry's derived records: the keyed hashes its disclosed actor,
    /// subject and id must have. Computed by whoever decoded the body, so that this part of the
    /// check can run beside the in-order part.
    struct BodyKeys: Sendable {
        /// Whether the body has an `id` field, and what its idempotency record must hold.
        enum ID: Sendable {
            case none
            /// Redacted: its record stays but can no longer be recomputed.
            case redacted
            case hash(KeyedHash)
        }

        let actor: KeyedHash?
        let subject: KeyedHash?
        let id: ID

        init(body: EntryBody, source: String, indexKey: SHA256Digest, sha: SHA256) {
            // A redacted identifier's index records were removed with it.
            func hash(_ name: String) -> KeyedHash? {
                body.fields[name]?.value?.stringValue.map {
                    LedgerKeys.identifierHash(indexKey: indexKey, role: name, identifier: $0, sha: sha)
                }
            }
            actor = hash("actor")
            subject = hash("subject")
            switch body.fields["id"] {
            case nil: id = .none
            case let field?:
                id = field.value?.stringValue.map { .hash(LedgerKeys.idempotencyHash(indexKey: indexKey, source: source, id: $0, sha: sha)) } ?? .redacted
            }
        }
    }

    /// Checks entry `seq`'s derived records. `keys` is nil when the body could not be read or does
    /// not match its header (already reported); then only what the header decides is checked.
    mutating func check(seq: UInt64, header: EntryHeader, keys: BodyKeys?) throws {
        let kind = kindHashes[header.kind] ?? LedgerKeys.identifierHash(indexKey: indexKey, role: "kind", identifier: header.kind, sha: sha)
        kindHashes[header.kind] = kind
        var expected: [(SecondaryIndex.Role, KeyedHash?)] = [(.kind, kind)]
        if let keys {
            expected.append((.actor, keys.actor))
            expected.append((.subject, keys.subject))
            try checkIdempotency(seq: seq, id: keys.id)
        } else {
            // Whether its actor and subject records belong is unknowable; they are taken as they are.
            blockReadable = false
            for role in [SecondaryIndex.Role.actor, .subject] {
                let stored = try SecondaryIndex.withRecentKey(seq: seq, role: role) { try txn.get(databases.index, key: $0) }
                if stored != nil { expectedRecent += 1 }
            }
            postingCountKnown = postingCountKnown && seq >> SecondaryIndex.blockShift >= sealedBlocks
        }
        for (role, hash) in expected {
            let stored = try SecondaryIndex.withRecentKey(seq: seq, role: role) { key in
                try txn.get(databases.index, key: key).map { KeyedHash(bytes: $0) }
            }
            switch (hash, stored) {
            case (nil, nil): break
            case (let hash?, nil):
                report("the \(role) index has no record for entry \(seq): queries by its \(role) would miss it")
                record(seq: seq, role: role, hash: hash)
            case (nil, _?):
                report("the \(role) index holds a record for entry \(seq), whose body has no disclosed \(role)")
            case (let hash?, let found?):
                if found != hash { report("the \(role) index record of entry \(seq) does not match its body") }
                record(seq: seq, role: role, hash: hash)
            }
        }
        if seq & ((1 << SecondaryIndex.blockShift) - 1) == (1 << SecondaryIndex.blockShift) - 1, seq >> SecondaryIndex.blockShift < sealedBlocks {
            try checkPostings(block: seq >> SecondaryIndex.blockShift)
        }
    }

    /// Checks what no single entry decides: nothing in the index beyond the expected records.
    mutating func finish() throws -> [LedgerError] {
        var recent = 0
        var postings = 0
        try txn.withCursor(databases.index) { cursor in
            var record = try cursor.first()
            while let current = record {
                let key = current.key
                if key.count == 10, key[0] == SecondaryIndex.recentTag, SecondaryIndex.Role(rawValue: key[9]) != nil,
                    LedgerKeys.readU64(key, at: 1) < size
                {
                    recent += 1
                } else if key.count == 22, key[0] == SecondaryIndex.postingTag, SecondaryIndex.Role(rawValue: key[5]) != nil,
                    UInt64(LedgerKeys.readU32(key, at: 1)) < sealedBlocks
                {
                    postings += 1
                } else {
                    report("the index holds a record that belongs to no entry of the log (key \(Base64.encode(Array(key))))")
                }
                record = try cursor.next()
            }
        }
        if recent != expectedRecent {
            report("the index holds \(recent) recent records for the log's entries, expected \(expectedRecent)")
        }
        if postingCountKnown && postings != expectedPostings {
            report("the index holds \(postings) postings for sealed blocks, expected \(expectedPostings)")
        }
        if unreported > 0 {
            problems.append(LedgerError(.indexMismatch, "\(unreported) more index or idempotency problem(s) not listed"))
        }
        return problems
    }

    private mutating func record(seq: UInt64, role: SecondaryIndex.Role, hash: KeyedHash) {
        expectedRecent += 1
        guard seq >> SecondaryIndex.blockShift < sealedBlocks else { return }
        block.append(PendingPostings.Record(role: role.rawValue, hash: hash, offset: UInt16(seq & ((1 << SecondaryIndex.blockShift) - 1))))
    }

    /// Compares a sealed block's postings with the block's entries.
    private mutating func checkPostings(block number: UInt64) throws {
        defer {
            block.removeAll(keepingCapacity: true)
            blockReadable = true
        }
        block.sort(by: <)
        try SecondaryIndex.forEachPosting(in: block) { run in
            expectedPostings += 1
            let role = SecondaryIndex.Role(rawValue: run.first!.role)!
            let stored = try SecondaryIndex.withPostingKey(block: number, role: role, hash: run.first!.hash) { key in
                try txn.get(databases.index, key: key).map { Array($0) }
            }
            // An unreadable body leaves its block's postings unknowable; its own problem is reported.
            if blockReadable && stored != SecondaryIndex.encode(run.map(\.offset)) {
                let start = number << SecondaryIndex.blockShift
                report("the \(role) posting of block \(number) (entries \(start)-\(start + 1023)) does not list exactly the entries that have it")
            }
        }
    }

    private mutating func checkIdempotency(seq: UInt64, id: BodyKeys.ID) throws {
        let stored = try LedgerKeys.withEntryKey(seq, LedgerKeys.idempotencyTag) { key in
            try txn.get(databases.entries, key: key).map { KeyedHash(bytes: $0) }
        }
        switch (id, stored) {
        case (.none, nil): break
        case (.none, _?):
            report("entry \(seq) has an idempotency record but no id: a retry could resolve to it")
        case (_, nil):
            report("entry \(seq) has an id but no idempotency record: a retry would append it twice")
        case (_, let found?) where found == nil:
            report("the idempotency record of entry \(seq) is not 16 bytes")
        case (.redacted, _?):
            break  // a redacted id leaves its record, which can no longer be recomputed
        case (.hash(let expected), let found?):
            if found != expected { report("the idempotency record of entry \(seq) does not match its source and id") }
        }
    }

    private mutating func report(_ message: String) {
        if problems.count < Self.reportLimit {
            problems.append(LedgerError(.indexMismatch, message))
        } else {
            unreported += 1
        }
    }
}
