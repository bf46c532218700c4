import CLMDB
import Glibc

/// One LMDB environment (a data file and its lock file in a directory), owning every LMDB pointer.
///
/// Open with `MDB_NOTLS` so read transactions may move between threads (Swift tasks hop threads).
/// Durability flags are never relaxed: no `MDB_NOSYNC`, `MDB_NOMETASYNC`, `MDB_MAPASYNC` or
/// `MDB_WRITEMAP`; a committed write transaction is on disk. Transactions run inside synchronous
/// closures, so none can outlive its scope or be awaited across.
///
/// The map (the file's maximum size) grows on demand: ``withWriteTransaction(_:)`` retries a
/// transaction that filled the map after doubling it. Growing requires that no transaction of this
/// process is open, which a read–write lock around every transaction guarantees.
public final class Environment: @unchecked Sendable {
    // Every field is either immutable or protected by `gate`/LMDB's own locking.
    private let env: OpaquePointer
    private let gate = ReadWriteLock()
    /// True when opened with `readOnly`.
    public let isReadOnly: Bool
    /// The directory holding `data.mdb` and `lock.mdb`.
    public let path: String

    /// Opens (and, unless read-only, creates) the environment in directory `path`.
    /// - Parameters:
    ///   - maxDatabases: how many named databases may be opened.
    ///   - mapSize: the initial map size in bytes (grown automatically when writing).
    ///   - readOnly: open with `MDB_RDONLY` (for tools running beside a writer).
    /// True when `directory` holds a non-empty LMDB data file. Looks without opening anything, so
    /// it creates no file (an open, even read-only, may create the lock file).
    public static func hasData(in directory: String) -> Bool {
        var info = stat()
        return stat(directory + "/data.mdb", &info) == 0 && info.st_size > 0
    }

    public init(path: String, maxDatabases: Int, mapSize: Int = 1 << 28, readOnly: Bool = false) throws(LMDBError) {
        var env: OpaquePointer?
        try check(mdb_env_create(&env), "create environment")
        guard let env else { throw LMDBError(code: 12, operation: "create environment") }
        do throws(LMDBError) {
            try check(mdb_env_set_maxdbs(env, MDB_dbi(maxDatabases)), "set database count")
            try check(mdb_env_set_maxreaders(env, 252), "set reader count")
            if !readOnly { try check(mdb_env_set_mapsize(env, mapSize), "set map size") }
            var flags = UInt32(MDB_NOTLS)
            if readOnly { flags |= UInt32(MDB_RDONLY) }
            try check(mdb_env_open(env, path, flags, 0o600), "open environment at \(path)")
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.env = env
        self.isReadOnly = readOnly
        self.path = path
    }

    deinit { mdb_env_close(env) }

    /// The current map size in bytes.
    public var mapSize: Int {
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        return info.me_mapsize
    }

    /// Bytes of the data file actually used (last page number × page size).
    public var usedBytes: Int {
        var info = MDB_envinfo()
        var stat = MDB_stat()
        mdb_env_info(env, &info)
        mdb_env_stat(env, &stat)
        return (info.me_last_pgno + 1) * Int(stat.ms_psize)
    }

    /// Tells the kernel that the data file's cached pages in `range` (bytes) will not be needed soon:
    /// it drops those that are clean and mapped by no process from the page cache. Only the cache
    /// changes: a dropped page is read from disk again when someone needs it.
    public func adviseNotNeeded(_ range: Range<Int>) {
        var fd: Int32 = -1
        guard !range.isEmpty, mdb_env_get_fd(env, &fd) == 0, fd >= 0 else { return }
        _ = posix_fadvise(fd, off_t(range.lowerBound), off_t(range.count), POSIX_FADV_DONTNEED)
    }

    /// Bytes available to this process on the file system holding the environment (nil if unknown).
    public var availableDiskBytes: Int? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int(info.f_bavail) * Int(info.f_frsize)
    }

    /// Opens a named database, creating it if `create` (needs a writable environment).
    public func openDatabase(_ name: String, create: Bool) throws -> Database {
        // Handles opened in a transaction survive only if it commits, so even read-only opens commit.
        try withTransaction(readOnly: !create, commitReadOnly: true) { txn in
            var dbi: MDB_dbi = 0
            try check(mdb_dbi_open(txn.txn, name, create ? UInt32(MDB_CREATE) : 0, &dbi), "open database \(name)")
            return Database(handle: dbi, name: name)
        }
    }

    /// Runs `body` in a read-only snapshot. The snapshot sees every transaction committed before it began.
    public func withReadTransaction<R>(_ body: (Transaction) throws -> R) throws -> R {
        try withTransaction(readOnly: true, body)
    }

    /// Runs `body` in the environment's single write transaction and commits (with sync) if it returns.
    /// If `body` throws, nothing it wrote is kept. A transaction that fills the map is retried once
    /// per doubling of the map size, so `body` must be safe to run again.
    public func withWriteTransaction<R>(_ body: (Transaction) throws -> R) throws -> R {
        while true {
            do {
                return try withTransaction(readOnly: false, body)
            } catch let error as LMDBError where error.code == LMDBError.mapFull {
                try grow()
            }
        }
    }

    /// Writes a compacted copy of the environment (free pages dropped) into the empty directory `path`.
    public func copyCompacted(to path: String) throws(LMDBError) {
        try check(mdb_env_copy2(env, path, UInt32(MDB_CP_COMPACT)), "compacting copy to \(path)")
    }

    /// Doubles the map size. Waits for this process's open transactions to end.
    public func grow() throws(LMDBError) {
        try gate.withWriteLock { () throws(LMDBError) in
            try check(mdb_env_set_mapsize(env, mapSize * 2), "grow map to \(mapSize * 2) bytes")
        }
    }

    private func withTransaction<R, E: Error>(
        readOnly: Bool, commitReadOnly: Bool = false, _ body: (Transaction) throws(E) -> R
    ) throws -> R {
        while true {
            let outcome: Result<R, any Error>? = gate.withReadLock {
                var raw: OpaquePointer?
                let flags = readOnly ? UInt32(MDB_RDONLY) : 0
                let status = mdb_txn_begin(env, nil, flags, &raw)
                if status == MDB_MAP_RESIZED { return nil }
                guard status == 0, let raw else {
                    return .failure(LMDBError(code: status, operation: readOnly ? "begin read" : "begin write"))
                }
                let txn = Transaction(txn: raw)
                do {
                    let result = try body(txn)
                    if readOnly && !commitReadOnly {
                        mdb_txn_abort(raw)
                    } else {
                        let committed = mdb_txn_commit(raw)
                        if committed != 0 { return .failure(LMDBError(code: committed, operation: "commit")) }
                    }
                    return .success(result)
                } catch {
                    mdb_txn_abort(raw)
                    return .failure(error)
                }
            }
            guard let outcome else {
                // Another process grew the map: adopt its size (no transaction of ours is open).
                try gate.withWriteLock { () throws(LMDBError) in
                    try check(mdb_env_set_mapsize(env, 0), "adopt grown map")
                }
                continue
            }
            return try outcome.get()
        }
    }
}
