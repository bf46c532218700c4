/// A failure of the ledger store, with a message a compliance officer or operator can act on.
///
/// Compare by ``code``. Integrity failures name the entry and what was expected.
public struct LedgerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure. Open for new cases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The hash chain or a stored record does not match what it must be.
        public static let chainBroken = Code(name: "chain_broken")
        /// A stored record could not be decoded: the store is damaged or was altered.
        public static let corrupt = Code(name: "corrupt")
        /// A record derived from the entries (an index record or posting, an idempotency record)
        /// does not match them: the entries are intact, but queries or retries may answer wrongly.
        public static let indexMismatch = Code(name: "index_mismatch")
        /// The disk or the file system is full; nothing of the batch was written.
        public static let storageFull = Code(name: "storage_full")
        /// A repeated idempotency id arrived with a different event.
        public static let idempotencyConflict = Code(name: "idempotency_conflict")
        /// The event is not acceptable (missing or mistyped field, unknown kind).
        public static let invalidEvent = Code(name: "invalid_event")
        /// A seq or tree size beyond the end of the log.
        public static let outOfRange = Code(name: "out_of_range")
        /// The directory holds no ledger, or a ledger of another format version.
        public static let notALedger = Code(name: "not_a_ledger")
        /// The store was opened read-only.
        public static let readOnly = Code(name: "read_only")
        /// LMDB or the operating system refused an operation.
        public static let storage = Code(name: "storage")
        /// The signing key file is missing, unreadable, exposed, or could not be created.
        public static let signingKey = Code(name: "signing_key")
        /// A checkpoint file could not be written or read.
        public static let checkpointFile = Code(name: "checkpoint_file")
        /// Another process writes this store.
        public static let locked = Code(name: "locked")
        /// The journal a store's writer left behind is missing, emptied or replaced: entries it
        /// acknowledged may be lost.
        public static let journalLost = Code(name: "journal_lost")
        /// A checkpoint is not signed by the key the auditor pinned.
        public static let badSignature = Code(name: "bad_signature")
        /// A time later than the clock was given to a store not created in test mode (`retention.md`).
        public static let futureTime = Code(name: "future_time")
        public var description: String { name }
    }

    /// What kind of failure this is.
    public let code: Code
    /// What happened, in words an operator can act on.
    public let message: String
    /// For an integrity finding: the entry it is about, and what the check expected and found
    /// there (`stele verify --json`).
    public let seq: UInt64?
    public let expected: String?
    public let found: String?

    /// A failure of kind `code`.
    public init(_ code: Code, _ message: String) {
        self.init(code, message, seq: nil)
    }

    /// An integrity finding about entry `seq`.
    public init(_ code: Code, _ message: String, seq: UInt64?, expected: String? = nil, found: String? = nil) {
        self.code = code
        self.message = message
        self.seq = seq
        self.expected = expected
        self.found = found
    }

    public var description: String { message }

    public static func == (lhs: LedgerError, rhs: LedgerError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// Entry `seq` does not link to its predecessor.
    public static func chainBroken(at seq: UInt64, expected: String, found: String) -> LedgerError {
        LedgerError(.chainBroken, "entry \(seq) breaks the hash chain: expected \(expected), found \(found)", seq: seq, expected: expected, found: found)
    }
}
