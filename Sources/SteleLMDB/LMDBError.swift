import CLMDB

/// An error returned by LMDB, with the operation that failed.
///
/// Compare by ``code``; well-known codes are provided as static constants (an open set, like
/// swift-system's `Errno`).
public struct LMDBError: Error, Hashable, Sendable, CustomStringConvertible {
    /// LMDB's or the system's numeric error code.
    public let code: Int32
    /// What Stele was doing when LMDB refused.
    public let operation: String

    /// An error with `code` from `operation`.
    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    /// The map (the file's maximum size) is full: grow it and retry.
    public static let mapFull = MDB_MAP_FULL
    /// Another process grew the map: adopt the new size and retry.
    public static let mapResized = MDB_MAP_RESIZED
    /// The key is not present.
    public static let notFound = MDB_NOTFOUND
    /// The key exists and overwriting was not allowed.
    public static let keyExists = MDB_KEYEXIST
    /// Too many reader slots are in use.
    public static let readersFull = MDB_READERS_FULL
    /// The file is not an LMDB environment, or is damaged.
    public static let invalid = MDB_INVALID
    /// The file is corrupted.
    public static let corrupted = MDB_CORRUPTED
    /// A page the file refers to is missing: the file is damaged or truncated.
    public static let pageNotFound = MDB_PAGE_NOTFOUND
    /// The disk is full.
    public static let noSpace: Int32 = 28  // ENOSPC
    /// Permission denied.
    public static let accessDenied: Int32 = 13  // EACCES
    /// The file system or environment is read-only.
    public static let readOnly: Int32 = 30  // EROFS

    /// LMDB's description of the code.
    public var reason: String { String(cString: mdb_strerror(code)) }

    public var description: String { "\(operation): \(reason) (\(code))" }

    public static func == (lhs: LMDBError, rhs: LMDBError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

/// Converts an LMDB return code into a thrown ``LMDBError``. The one place C codes become errors.
@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(LMDBError) {
    if code != 0 { throw LMDBError(code: code, operation: operation()) }
}
