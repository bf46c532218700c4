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
    // Every field is either immutable or protected by `gate`/LMDB's own locking; `env` changes only
    // under the gate's write lock (``compactInPlace(scratch:databases:)``).
    private var env: OpaquePointer
    private let maxDatabases: Int
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
        var flags = UInt32(MDB_NOTLS)
        if readOnly { flags |= UInt32(MDB_RDONLY) }
        let env: OpaquePointer
        do {
            env = try Self.openHandle(path, flags: flags, maxDatabases: maxDatabases, mapSize: mapSize, readOnly: readOnly)
        } catch let error where readOnly && (error.code == EACCES || error.code == EROFS) && access(path, W_OK) != 0 {
            // Read-only media (a WORM backup, a read-only mount or directory): no lock file can be
            // made there, and no writer can be at work there, so read without one.
            env = try Self.openHandle(path, flags: flags | UInt32(MDB_NOLOCK), maxDatabases: maxDatabases, mapSize: mapSize, readOnly: readOnly)
        }
        self.env = env
        self.maxDatabases = maxDatabases
        self.isReadOnly = readOnly
        self.path = path
    }

    /// A new environment handle opened on `path`, or closed again if opening fails (LMDB's rule).
    private static func openHandle(_ path: String, flags: UInt32, maxDatabases: Int, mapSize: Int, readOnly: Bool) throws(LMDBError) -> OpaquePointer {
        var created: OpaquePointer?
        try check(mdb_env_create(&created), "create environment")
        guard let env = created else { throw LMDBError(code: 12, operation: "create environment") }
        do throws(LMDBError) {
            try check(mdb_env_set_maxdbs(env, MDB_dbi(maxDatabases)), "set database count")
            try check(mdb_env_set_maxreaders(env, 252), "set reader count")
            if !readOnly { try check(mdb_env_set_mapsize(env, mapSize), "set map size") }
            try check(mdb_env_open(env, path, flags, 0o600), "open environment at \(path)")
        } catch {
            mdb_env_close(env)
            throw error
        }
        return env
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

    /// Replaces the data file with a compacted copy of itself while this process keeps the
    /// environment: waits for this process's transactions to end and holds new ones back, copies
    /// the environment compacted into the empty directory `scratch` and syncs the copy, closes the
    /// environment, renames the copy over `data.mdb` (atomic) and removes `lock.mdb` (its reader
    /// table and last transaction belong to the old file), then reopens, and opens `databases` again
    /// in the order of their handles, which gives them their old handles (checked). Another
    /// process that has the old file open keeps reading it until it closes.
    public func compactInPlace(scratch: String, databases: [Database]) throws(LMDBError) {
        try gate.withWriteLock { () throws(LMDBError) in
            try check(mdb_env_copy2(env, scratch, UInt32(MDB_CP_COMPACT)), "compacting copy to \(scratch)")
            let copy = scratch + "/data.mdb"
            let fd = open(copy, O_RDONLY)
            guard fd >= 0, fsync(fd) == 0 else { throw LMDBError(code: errno, operation: "sync \(copy)") }
            Glibc.close(fd)
            let size = mapSize
            mdb_env_close(env)
            guard rename(copy, path + "/data.mdb") == 0 else {
                let code = errno
                try reopen(mapSize: size, databases: databases)
                throw LMDBError(code: code, operation: "replace \(path)/data.mdb")
            }
            unlink(path + "/lock.mdb")
            let directory = open(path, O_RDONLY | O_DIRECTORY)
            if directory >= 0 {
                fsync(directory)
                Glibc.close(directory)
            }
            try reopen(mapSize: size, databases: databases)
        }
    }

    /// Opens the environment again after ``compactInPlace(scratch:databases:)`` closed it; under the write lock.
    private func reopen(mapSize: Int, databases: [Database]) throws(LMDBError) {
        var fresh: OpaquePointer?
        try check(mdb_env_create(&fresh), "create environment")
        guard let fresh else { throw LMDBError(code: 12, operation: "create environment") }
        try check(mdb_env_set_maxdbs(fresh, MDB_dbi(maxDatabases)), "set database count")
        try check(mdb_env_set_maxreaders(fresh, 252), "set reader count")
        try check(mdb_env_set_mapsize(fresh, mapSize), "set map size")
        try check(mdb_env_open(fresh, path, UInt32(MDB_NOTLS), 0o600), "reopen environment at \(path)")
        env = fresh
        var raw: OpaquePointer?
        try check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &raw), "begin read")
        // Handles are given in the order of first opening: the same order gives the same handles.
        for database in databases.sorted(by: { $0.handle < $1.handle }) {
            var dbi: MDB_dbi = 0
            let status = mdb_dbi_open(raw, database.name, 0, &dbi)
            guard status == 0, dbi == database.handle else {
                mdb_txn_abort(raw)
                throw LMDBError(code: status == 0 ? MDB_INCOMPATIBLE : status, operation: "reopen database \(database.name)")
            }
        }
        try check(mdb_txn_commit(raw), "commit database handles")
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
