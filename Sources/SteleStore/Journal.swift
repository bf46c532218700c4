import Glibc
import SteleCore
import SteleCrypto

/// The store's write-ahead journal (`journal` in the data directory; `Specs/store.md`, "Journal").
///
/// A journaled writer makes a batch durable with one sequential, synchronous write here and answers
/// at once; the LMDB transaction holding many such batches commits (with full sync) a few
/// milliseconds later. Until it has, the journal is the only durable copy of those entries, and
/// every writer that opens the store moves them into it before writing anything else.
///
/// The file is preallocated and zero-filled, so a record write changes no file-system metadata and
/// costs one device flush. Records of the current generation run from offset 0; a generation ends
/// when the store has committed all of it, and the next one overwrites the file from the start.
final class Journal {
    static let fileName = "journal"
    static let initialSize = 2 << 20
    static let headerSize = 20
    /// "SJR1" read as a little-endian word.
    static let magic: UInt32 = 0x3152_4A53

    let path: String
    private let fd: Int32
    /// The generation new records carry.
    private(set) var generation: UInt64
    /// Where the next record goes: the end of the current generation's records.
    private(set) var end: Int
    private var fileSize: Int

    /// Opens the journal in `directory`, creating and zero-filling it if `create` and absent.
    /// - Returns: nil when there is no journal and `create` is false.
    /// - Parameter exclusive: take the journal's lock (one journaled writer per store); fails with
    ///   `storage` if another process still holds it after `lockWait` seconds (a read-only tool
    ///   holds it for a moment while it moves a stopped daemon's entries into the store).
    /// - Parameter readOnly: open for reading only (`create` and `exclusive` must be false).
    init?(directory: String, create: Bool, exclusive: Bool, lockWait: Double = 0, readOnly: Bool = false) throws {
        path = directory + "/" + Self.fileName
        var descriptor = Glibc.open(path, readOnly ? O_RDONLY | O_CLOEXEC : O_RDWR | O_DSYNC | O_CLOEXEC)
        if descriptor < 0 && errno == ENOENT {
            guard create else { return nil }
            try Self.createZeroed(path)
            descriptor = Glibc.open(path, O_RDWR | O_DSYNC | O_CLOEXEC)
        }
        guard descriptor >= 0 else { throw Self.failure("open the journal \(path)") }
        fd = descriptor
        if exclusive && !Self.lock(fd, waitingUpTo: lockWait) {
            Glibc.close(fd)
            throw LedgerError(.storage, "another daemon is writing this store (its journal \(path) is locked); stop it first")
        }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            Glibc.close(fd)
            throw Self.failure("inspect the journal \(path)")
        }
        fileSize = Int(status.st_size)
        generation = 0
        end = 0
        let (found, records) = try scan()
        generation = found ?? UInt64.random(in: 1...UInt64.max / 2)
        end = records
    }

    deinit { Glibc.close(fd) }

    private static func lock(_ fd: Int32, waitingUpTo seconds: Double) -> Bool {
        var waited = 0.0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, waited < seconds else { return false }
            usleep(10_000)
            waited += 0.01
        }
        return true
    }

    /// Reads the file again: another process may have written it since it was opened.
    func rescan() throws {
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw Self.failure("inspect the journal \(path)") }
        fileSize = Int(status.st_size)
        let (found, records) = try scan()
        if let found { generation = found }
        end = records
    }

    /// The entries of the current generation, in order (possibly already in the store).
    func entries() throws -> [JournalEntry] {
        guard end > 0 else { return [] }
        let bytes = try read(offset: 0, count: end)
        var entries: [JournalEntry] = []
        var offset = 0
        while offset < bytes.count {
            let length = Int(Self.u32(bytes, offset + 12))
            var reader = JournalEntry.Reader(bytes: bytes, range: offset + Self.headerSize..<offset + Self.headerSize + length)
            try reader.readAll(into: &entries)
            offset += Self.headerSize + length
        }
        return entries
    }

    /// Writes one record (the builder's entries) at the end of the current generation and returns
    /// once it is on disk (`O_DSYNC`).
    func append(_ record: inout JournalRecordBuilder) throws {
        let bytes = record.finish(generation: generation)
        if end + bytes.count > fileSize { try extend(to: end + bytes.count) }
        try bytes.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let n = pwrite(fd, raw.baseAddress! + written, raw.count - written, off_t(end + written))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    let code = errno
                    if code == ENOSPC { throw LedgerError(.storageFull, "the disk is full: the journal could not be written; nothing of this batch was acknowledged") }
                    throw Self.failure("write the journal \(path)", code: code)
                }
                written += n
            }
        }
        end += bytes.count
    }

    /// Starts a new generation at offset 0: the store has committed every entry of the current one.
    func startNewGeneration() {
        generation &+= 1
        end = 0
    }

    /// Bytes written in the current generation.
    var generationBytes: Int { end }

    /// The file's size: records beyond it make it grow.
    var capacity: Int { fileSize }

    /// Finds the current generation (the first record's) and where its valid records end.
    private func scan() throws -> (generation: UInt64?, end: Int) {
        guard fileSize >= Self.headerSize else { return (nil, 0) }
        let bytes = try read(offset: 0, count: fileSize)
        var offset = 0
        var generation: UInt64?
        while offset + Self.headerSize <= bytes.count, Self.u32(bytes, offset) == Self.magic {
            let recordGeneration = Self.u64(bytes, offset + 4)
            if let generation, recordGeneration != generation { break }
            let length = Int(Self.u32(bytes, offset + 12))
            guard length <= bytes.count - offset - Self.headerSize else { break }
            let crc = bytes.withUnsafeBytes { raw in
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[offset + 4..<offset + 16]))
                    .continuing(UnsafeRawBufferPointer(rebasing: raw[offset + Self.headerSize..<offset + Self.headerSize + length]))
            }
            guard crc == Self.u32(bytes, offset + 16) else { break }  // a torn or damaged write ends the journal
            generation = recordGeneration
            offset += Self.headerSize + length
        }
        return (generation, offset)
    }

    private func read(offset: Int, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        try bytes.withUnsafeMutableBytes { raw in
            while done < count {
                let n = pread(fd, raw.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { throw Self.failure("read the journal \(path)") }
                if n == 0 { break }
                done += n
            }
        }
        return Array(bytes[0..<done])
    }

    /// Grows the file with zeros (a record larger than the space left; rare) and syncs its size.
    private func extend(to size: Int) throws {
        let target = (size + (1 << 20) - 1) & ~((1 << 20) - 1)
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var offset = fileSize
        while offset < target {
            let n = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress!, min(zeros.count, target - offset), off_t(offset)) }
            guard n > 0 else {
                if errno == EINTR { continue }
                if errno == ENOSPC { throw LedgerError(.storageFull, "the disk is full: the journal could not grow; nothing of this batch was acknowledged") }
                throw Self.failure("grow the journal \(path)")
            }
            offset += n
        }
        guard fsync(fd) == 0 else { throw Self.failure("sync the journal \(path)") }
        fileSize = target
    }

    private static func createZeroed(_ path: String) throws {
        let temporary = path + ".new"
        let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("create the journal \(temporary)") }
        defer { Glibc.close(fd) }
        do {
            // 2 MiB, or a quarter of the free space on a small file system (at least 64 KiB).
            var info = statvfs()
            let free = statvfs(temporary, &info) == 0 ? Int(info.f_bavail) * Int(info.f_frsize) : Int.max
            let size = max(64 << 10, min(initialSize, free / 4)) & ~0xFFFF
            let zeros = [UInt8](repeating: 0, count: 64 << 10)
            for chunk in 0..<(size / zeros.count) {
                let n = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress!, zeros.count, off_t(chunk * zeros.count)) }
                guard n == zeros.count else { throw failure("zero-fill the journal \(temporary)", code: n < 0 ? errno : ENOSPC) }
            }
            guard fsync(fd) == 0, rename(temporary, path) == 0 else { throw failure("create the journal \(path)") }
        } catch {
            unlink(temporary)
            throw error
        }
        let directory = Glibc.open(String(path[..<path.lastIndex(of: "/")!]), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            Glibc.close(directory)
        }
    }

    private static func failure(_ what: String, code: Int32 = errno) -> LedgerError {
        if code == ENOSPC { return LedgerError(.storageFull, "the disk is full: could not \(what)") }
        return LedgerError(.storage, "could not \(what): \(String(cString: strerror(code)))")
    }

    static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) }
    }

    static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) }
    }
}

extension UInt32 {
    fileprivate func continuing(_ bytes: UnsafeRawBufferPointer) -> UInt32 { CRC32C.checksum(bytes, continuing: self) }
}
