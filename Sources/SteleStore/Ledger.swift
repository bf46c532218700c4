import SteleConsent
import SteleCore
import SteleCrypto
import SteleLMDB
import Synchronization
import Glibc

/// The ledger: one LMDB environment holding the hash-chained entries, the stored Merkle tree,
/// the indexes and the idempotency keys. See `Specs/store.md`.
///
/// Reads run in snapshots and are safe from any thread, and from other processes while a writer
/// runs. Every write goes through the store's one ``LedgerWriter``.
public final class Ledger: Sendable {
    /// The directory of the LMDB environment.
    public let path: String
    /// The log origin, fixed at creation.
    public let origin: String
    /// True when opened read-only.
    public let isReadOnly: Bool
    /// ``Options/releasesWrittenPages``.
    let releasesWrittenPages: Bool
    /// ``Options/cachedTail``.
    let cachedTail: Int

    let environment: Environment
    let databases: Databases
    /// The store's secret key for keyed index hashes (32 bytes, held inline).
    let indexKey: SHA256Digest
    /// The store side of writing: hashing contexts, the tree's right edge, pending index postings.
    /// Held for a whole write transaction.
    let store: Mutex<StoreState>

    struct Databases: Sendable {
        let meta, entries, tree, index, checkpoints: Database
        /// Nil only in a store opened read-only that no writer has opened since consent state was added.
        let consent: Database?
    }

    /// The kinds the consent table records, by their keyed hash: an entry of any other kind is
    /// stored without its body being parsed again.
    let consentKinds: [KeyedHash: ConsentEvent.Kind]

    /// What one write transaction works with, kept between transactions so that appends need not
    /// read back what the previous ones wrote. Only touched while holding ``store``.
    final class StoreState: @unchecked Sendable {
        let sha = SHA256()
        let merkle = MerkleHasher()
        /// Index records of the blocks being filled, for sealing without reading them back.
        let postings = PendingPostings(blockShift: SecondaryIndex.blockShift)
        /// Roots of the complete subtrees on the right edge of the tree (largest first), valid for
        /// the tree whose head is `frontierHead`; reloaded from the store when the head moved.
        var frontier: [SHA256Digest] = []
        var frontierHead: ChainHead?
        /// Below this offset of the store file, written pages were released from the page cache.
        var pagesReleasedBelow = 0
    }

    /// Options for opening a ledger.
    public struct Options: Sendable {
        /// Open read-only (for tools beside a running daemon).
        public var readOnly = false
        /// Create the store if the directory holds none, with this origin.
        public var createWithOrigin: String?
        /// Create it in test mode (recorded in its metadata, never changed): retention commands
        /// then accept `--now` later than the clock, for simulating years (`Specs/retention.md`).
        public var createInTestMode = false
        /// Initial LMDB map size (it grows as needed).
        public var initialMapSize = 1 << 28
        /// After each commit, let the kernel drop from its page cache the store file's pages lying
        /// more than ``cachedTail`` behind the file's end that no process has mapped: in practice the
        /// pages appended and not read since (`Specs/store.md`, "Processes"). Only the page cache
        /// changes. Off by default; the daemon turns it on.
        public var releasesWrittenPages = false
        /// The newest part of the store file kept cached when releasing written pages: the pages
        /// the next commits modify, and recent entries for retries and queries. Released an eighth
        /// of it at a time. (Internal: tests use a small one.)
        var cachedTail = 64 << 20

        /// Default options: open an existing store for writing.
        public init() {}
    }

    /// True when `path` holds a store (possibly not a valid one), judged without opening or
    /// creating anything there.
    public static func storeExists(at path: String) -> Bool {
        Environment.hasData(in: path)
    }

    /// Opens the ledger in directory `path` (which must exist).
    /// - Throws: ``LedgerError`` `notALedger` if there is no ledger and creation was not asked for.
    public init(path: String, options: Options = Options()) throws {
        self.path = path
        self.isReadOnly = options.readOnly
        self.releasesWrittenPages = options.releasesWrittenPages
        self.cachedTail = options.cachedTail
        do {
            self.environment = try Environment(
                path: path, maxDatabases: LedgerKeys.all.count, mapSize: options.initialMapSize,
                readOnly: options.readOnly)
        } catch {
            if error.code == 2 { throw LedgerError(.notALedger, "no ledger at \(path)") }
            throw LedgerError(.storage, "cannot open the ledger at \(path): \(error.reason)")
        }
        let exists = try Self.probeFormat(environment)
        if !exists {
            guard let origin = options.createWithOrigin, !options.readOnly else {
                throw LedgerError(.notALedger, "\(path) holds no Stele ledger")
            }
            guard (try? Checkpoint(origin: origin, size: 0, rootHash: MerkleHasher.emptyRoot)) != nil,
                NoteVerifierKey.isValidName(origin)
            else {
                throw LedgerError(.invalidEvent, "origin \"\(origin)\" must be one line with no spaces or '+'")
            }
            let indexKey = try SecureRandom.bytes(32)
            let databases = try Self.openDatabases(environment, create: true)
            try environment.withWriteTransaction { txn in
                try txn.put(databases.meta, key: LedgerKeys.formatKey, value: LedgerKeys.formatValue, mode: .insertOnly)
                try txn.put(databases.meta, key: LedgerKeys.originKey, value: Array(origin.utf8))
                try txn.put(databases.meta, key: LedgerKeys.indexKeyKey, value: indexKey)
                try txn.put(databases.meta, key: LedgerKeys.headKey, value: ChainHead.empty.bytes)
                if options.createInTestMode { try txn.put(databases.meta, key: LedgerKeys.testModeKey, value: Array("1".utf8)) }
            }
        }
        let environment = self.environment
        let databases = try Self.openDatabases(environment, create: false, readOnly: options.readOnly)
        self.databases = databases
        (self.origin, self.indexKey) = try Self.readIdentity(environment, databases)
        let sha = SHA256()
        let indexKey = self.indexKey
        self.consentKinds = Dictionary(uniqueKeysWithValues: ConsentEvent.Kind.allCases.filter { $0.isSubjectState || $0 == .noticePublished }.map {
            (LedgerKeys.identifierHash(indexKey: indexKey, role: "kind", identifier: $0.rawValue, sha: sha), $0)
        })
        self.store = Mutex(StoreState())
        if !options.readOnly { try buildConsentStateIfAbsent() }
    }

    /// The origin and index key fixed at creation.
    private static func readIdentity(_ environment: Environment, _ databases: Databases) throws -> (String, SHA256Digest) {
        let (origin, storedKey) = try environment.withReadTransaction { txn in
            (try txn.get(databases.meta, key: LedgerKeys.originKey), try txn.get(databases.meta, key: LedgerKeys.indexKeyKey))
        }
        guard let origin, let storedKey, let indexKey = SHA256Digest(bytes: storedKey) else {
            throw LedgerError(.corrupt, "the ledger metadata (origin, index key) is missing or damaged")
        }
        return (String(decoding: origin, as: UTF8.self), indexKey)
    }

    private static func probeFormat(_ environment: Environment) throws -> Bool {
        let meta: Database
        do { meta = try environment.openDatabase(LedgerKeys.meta, create: false) } catch let error as LMDBError {
            if error.code == LMDBError.notFound { return false }
            throw LedgerError(.storage, "cannot read the ledger metadata: \(error.reason)")
        }
        let format = try environment.withReadTransaction { txn in try txn.get(meta, key: LedgerKeys.formatKey) }
        guard let format else { return false }
        guard format == LedgerKeys.formatValue else {
            throw LedgerError(.notALedger, "the store has format \"\(String(decoding: format, as: UTF8.self))\", not stele-ledger/1")
        }
        return true
    }

    private static func openDatabases(_ environment: Environment, create: Bool, readOnly: Bool = false) throws -> Databases {
        func open(_ name: String, create: Bool = create) throws -> Database {
            do { return try environment.openDatabase(name, create: create) } catch let error as LMDBError {
                throw LedgerError(.corrupt, "the ledger database \"\(name)\" is missing: \(error.reason)")
            }
        }
        // Stores written before consent state have no `consent` database: a writer adds it.
        var consent: Database?
        do { consent = try environment.openDatabase(LedgerKeys.consent, create: !readOnly) } catch let error as LMDBError {
            guard error.code == LMDBError.notFound else {
                throw LedgerError(.storage, "cannot open the consent database: \(error.reason)")
            }
        }
        return Databases(
            meta: try open(LedgerKeys.meta), entries: try open(LedgerKeys.entries),
            tree: try open(LedgerKeys.tree), index: try open(LedgerKeys.index),
            checkpoints: try open(LedgerKeys.checkpoints), consent: consent)
    }

    /// The subject, actor and kind indexes.
    var index: SecondaryIndex { SecondaryIndex(db: databases.index) }

    /// Runs `body` in a read snapshot, mapping storage failures to ``LedgerError``.
    func read<R>(_ body: (Transaction) throws -> R) throws -> R {
        do { return try environment.withReadTransaction(body) } catch let error as LMDBError {
            throw LedgerError(.storage, "reading the ledger failed: \(error)")
        }
    }

    /// The chain head as stored in snapshot `txn`.
    func head(_ txn: Transaction) throws -> ChainHead {
        guard let raw = try txn.get(databases.meta, key: LedgerKeys.headKey),
            let head = raw.withUnsafeBytes({ ChainHead($0) })
        else { throw LedgerError(.corrupt, "the ledger's chain head record is missing or damaged") }
        return head
    }

    /// The number of entries committed.
    public var size: UInt64 {
        get throws { try read { try head($0).size } }
    }

    /// True for a store created in test mode.
    public var isTestMode: Bool {
        get throws { try read { txn in try txn.get(databases.meta, key: LedgerKeys.testModeKey) != nil } }
    }

    /// Bytes of the data file in use.
    public var usedBytes: Int { environment.usedBytes }

}

extension Ledger {
    /// `stele/<host name>-<8 random hex digits>`, cleaned to a valid key name, new on each call: the
    /// origin of a log created without one, so two logs never share an origin by accident.
    public static var defaultOrigin: String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        let host = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let cleaned = String(String.UnicodeScalarView(host.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F && $0 != "+" }))
        let suffix = ((try? SecureRandom.bytes(4)) ?? []).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        return "stele/" + (cleaned.isEmpty ? "localhost" : cleaned) + "-" + suffix
    }
}
