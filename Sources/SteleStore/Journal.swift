import Glibc
import SteleCore
import SteleCrypto

/// The store's write-ahead journal (`journal` in the data directory; `Specs/store.md`, "Journal").
///
/// The daemon makes a batch durable with one sequential, synchronous write here and answers at once;
/// another thread applies the journaled entries to the LMDB store (with full sync) a few milliseconds
/// later. Until it has, the journal is the only durable copy of those entries, and every writer
/// that opens the store moves them into it before writing anything else.
///
/// The file is preallocated and zero-filled, so a record write changes no file-system metadata and
/// costs one device flush. It has two equal regions. Records go to one region, from its start, all
/// carrying the region's generation; writing moves to the other region (overwriting it from its
/// start with the next generation) once the store holds every entry there. So the writer never has
/// to wait for the store while the store keeps up.
final class Journal {
    static let fileName = "journal"
    static let initialSize = 8 << 20
    static let headerSize = 20
    /// "SJR2" read as a little-endian word.
    static let magic: UInt32 = 0x3252_4A53

    /// What one region holds: the generation of the record at its start, where that generation's
    /// valid records end (relative to the region) and the last entry they hold.
    struct Region {
        var generation: UInt64?
        var end = 0
        var lastSeq: UInt64?
        /// Set when a record was damaged after it was written (see ``scan(_:)``).
        var damage: Damage?
    }

    /// A record that does not check out though it was written whole: followed by valid records
    /// of its generation, or itself complete (`Specs/store.md`, "Journal", torn or damaged).
    struct Damage {
        /// Where reading stopped, in the region.
        var at: Int
        /// The first later valid record of the same generation, if any.
        var later: Int?
        /// The last entry the damaged record and the valid records after it hold, as far as can
        /// be read (`UInt64.max` when unknown).
        var lastSeq: UInt64
    }

    let path: String
    private let fd: Int32
    /// Bytes in each region (half the file, in whole 4 KiB pages).
    let regionSize: Int
    private var regions = [Region(), Region()]
    /// The region new records go to.
    private(set) var current = 0

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
        regionSize = (Int(status.st_size) / 2) & ~4095
        try rescan()
    }

    deinit { Glibc.close(fd) }

    /// Takes `fd`'s exclusive `flock`, retrying every 10 ms for up to `seconds`; false if it could not.
    static func lock(_ fd: Int32, waitingUpTo seconds: Double) -> Bool {
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
        for index in 0..<2 {
            regions[index] = try scan(index)
            guard let damage = regions[index].damage else { continue }
            // A reader beside a live daemon (`verify`) can read a record half-written and, a moment
            // later, records written after it: damage is real only if it stays where it was.
            usleep(10_000)
            regions[index] = try scan(index)
            if regions[index].damage.map({ $0.at != damage.at }) ?? false { regions[index].damage = nil }
        }
        // Writing continues in the region holding the newest entries.
        current = (regions[1].lastSeq ?? 0) > (regions[0].lastSeq ?? 0) ? 1 : 0
    }

    /// The last entry the journal holds (as of the last scan), if any.
    var lastSeq: UInt64? {
        [regions[0].lastSeq, regions[1].lastSeq].compactMap { $0 }.max()
    }

    /// Every entry the journal holds, in log order (some or all may already be in the store), for
    /// a store holding `storeSize` entries.
    /// - Throws: `corrupt` when a record was damaged after it was written and the store lacks
    ///   entries journaled after it: entries acknowledged to clients cannot be read, and nothing
    ///   may be written over them. (Damage to records the store already holds entirely is harmless:
    ///   the entries before it are returned.)
    func entries(storeSize: UInt64) throws -> [JournalEntry] {
        if let problem = damage(storeSize: storeSize) { throw problem }
        var lists = try (0..<2).map { try entries(in: $0) }
        lists.sort { ($0.first?.seq ?? 0) < ($1.first?.seq ?? 0) }
        return lists[0] + lists[1]
    }

    /// Every entry the valid records hold, in log order, whatever damage follows them (for `verify`,
    /// which reports the damage itself).
    func readableEntries() throws -> [JournalEntry] {
        var lists = try (0..<2).map { try entries(in: $0) }
        lists.sort { ($0.first?.seq ?? 0) < ($1.first?.seq ?? 0) }
        return lists[0] + lists[1]
    }

    /// Whether the journal at `directory` is the one a writer that did not close left behind: it
    /// wrote a mark of generation `mark` when it opened (`Specs/store.md`, "Journal"), so every
    /// record it wrote since has that generation or a newer one. Nil when it is (or when no writer
    /// was open: `mark` nil); else `journal_lost`, naming what may be lost and the way forward.
    static func loss(in directory: String, mark: UInt64?, storeSize: UInt64) -> LedgerError? {
        guard mark != nil else { return nil }
        do {
            return loss(of: try Journal(directory: directory, create: false, exclusive: false, readOnly: true), in: directory, mark: mark, storeSize: storeSize)
        } catch {
            return LedgerError(.journalLost, "the journal \(directory)/\(fileName) cannot be read (\(error)), but the store's last writer did not stop cleanly: entries it acknowledged after entry \(Int64(storeSize) - 1) may be in it. Make it readable; or, to continue without them, run stele recover --accept-loss --reason TEXT")
        }
    }

    /// ``loss(in:mark:storeSize:)`` for `journal`, opened already (nil: no journal file).
    static func loss(of journal: Journal?, in directory: String, mark: UInt64?, storeSize: UInt64) -> LedgerError? {
        guard let mark else { return nil }
        let path = directory + "/" + fileName
        let what: String
        if let journal {
            guard (journal.newestGeneration ?? 0) < mark else { return nil }
            what = journal.newestGeneration == nil ? "holds no records (zeroed or emptied)" : "is not the one its writer wrote (replaced by an older or another store's journal)"
        } else {
            what = "is missing"
        }
        return LedgerError(.journalLost, "the journal \(path) \(what), but the store's last writer did not stop cleanly: entries it acknowledged after entry \(Int64(storeSize) - 1) may be lost. Restore the journal file; or, to continue without them, run stele recover --accept-loss --reason TEXT")
    }

    /// The `corrupt` error ``entries(storeSize:)`` throws for a store of `storeSize` entries, if any.
    func damage(storeSize: UInt64) -> LedgerError? {
        for index in 0..<2 {
            guard let damage = regions[index].damage, damage.lastSeq >= storeSize else { continue }
            let reason = damage.later.map { "yet a record written after it follows at byte \(index * regionSize + $0)" }
                ?? "yet it was written whole (it is not a torn write)"
            return LedgerError(
                .corrupt,
                "the journal \(path) is damaged: the record at byte \(index * regionSize + damage.at) does not check out, \(reason), so entries already acknowledged to clients (after entry \(Int64(storeSize) - 1)) cannot be read; refusing to write. Keep the file as evidence; to continue without those entries, whose receipts will then not verify, run stele recover --accept-loss --reason TEXT")
        }
        return nil
    }

    private func entries(in index: Int) throws -> [JournalEntry] {
        let region = regions[index]
        guard region.end > 0 else { return [] }
        let bytes = try read(offset: index * regionSize, count: region.end)
        var entries: [JournalEntry] = []
        var offset = 0
        // Checked again: beside a live writer (a reader's view), the region may have been
        // rewritten since it was scanned.
        while offset < bytes.count, Self.validRecord(in: bytes, at: offset, generation: region.generation) != nil {
            let length = Int(Self.u32(bytes, offset + 12))
            var reader = JournalEntry.Reader(bytes: bytes, range: offset + Self.headerSize..<offset + Self.headerSize + length)
            try reader.readAll(into: &entries)
            offset += Self.headerSize + length
        }
        return entries
    }

    /// Bytes the current region has room for, keeping room for the terminator after them.
    var spaceLeft: Int { max(0, regionSize - regions[current].end - Self.headerSize) }

    /// The largest record a region holds, with its terminator.
    var maximumRecord: Int { regionSize - Self.headerSize }

    /// Bytes written to the current region in its generation.
    var bytesInRegion: Int { regions[current].end }

    /// The last entry the other region holds (nil if none): writing may move there once the store
    /// holds it.
    var otherRegionLastSeq: UInt64? { regions[1 - current].lastSeq }

    /// Moves writing to the other region, from its start, with a new generation. Only once the
    /// store holds every entry of that region (``otherRegionLastSeq``).
    func switchRegion() {
        let generation = nextGeneration
        current = 1 - current
        regions[current] = Region(generation: generation)
    }

    /// A generation newer than any this journal has held since it was opened (random in a new journal).
    private var nextGeneration: UInt64 {
        let newest = max(regions[0].generation ?? 0, regions[1].generation ?? 0, newestCleared)
        return newest == 0 ? UInt64.random(in: 1...UInt64.max / 2) : newest &+ 1
    }

    /// The newest generation before ``clear()``, so that generations keep rising after it.
    private var newestCleared: UInt64 = 0

    /// Empties both regions (by zeroing the first record header of each): only once the store
    /// holds every journaled entry. Writing then starts at region 0.
    func clear() throws {
        newestCleared = max(regions[0].generation ?? 0, regions[1].generation ?? 0, newestCleared)
        let zeros = [UInt8](repeating: 0, count: Self.headerSize)
        for index in 0..<2 where regions[index].generation != nil {
            let n = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress!, zeros.count, off_t(index * regionSize)) }
            guard n == zeros.count else { throw Self.failure("clear the journal \(path)") }
        }
        regions = [Region(), Region()]
        current = 0
    }

    /// Overwrites the whole file with zeros and syncs it: no body an earlier record held stays on
    /// disk (erasure, `Specs/retention.md`). Only once the store holds every entry.
    func scrub() throws {
        try clear()
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var offset = 0
        while offset < 2 * regionSize {
            let count = min(zeros.count, 2 * regionSize - offset)
            let n = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress!, count, off_t(offset)) }
            guard n == count else { throw Self.failure("scrub the journal \(path)") }
            offset += count
        }
        guard fsync(fd) == 0 else { throw Self.failure("sync the journal \(path)") }
        regions = [Region(), Region()]
        current = 0
    }

    /// Writes one record (the builder's entries) at the end of the current region, followed by a
    /// terminator of zeros, and returns once both are on disk (`O_DSYNC`). The terminator tells a
    /// record written whole from one cut short (see ``scan(_:)``).
    /// - Throws: `storage` if the record does not fit in the region (see ``spaceLeft``).
    func append(_ record: inout JournalRecordBuilder) throws {
        let generation = regions[current].generation ?? nextGeneration  // nil: an empty region
        let bytes = record.finish(generation: generation) + Self.terminator
        guard bytes.count <= spaceLeft + Self.headerSize else {
            throw LedgerError(.storage, "a journal record of \(bytes.count) bytes does not fit in the journal's \(spaceLeft) free bytes")
        }
        let position = current * regionSize + regions[current].end
        try bytes.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let n = pwrite(fd, raw.baseAddress! + written, raw.count - written, off_t(position + written))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    let code = errno
                    if code == ENOSPC { throw LedgerError(.storageFull, "the disk is full: the journal could not be written; nothing of this batch was acknowledged") }
                    throw Self.failure("write the journal \(path)", code: code)
                }
                written += n
            }
        }
        regions[current].generation = generation
        regions[current].end += bytes.count - Self.headerSize  // the next record overwrites the terminator
        regions[current].lastSeq = record.lastSeq ?? regions[current].lastSeq
    }

    /// Zeros written after every record: a record's header is never followed by stale bytes.
    private static let terminator = [UInt8](repeating: 0, count: headerSize)

    /// Writes a record of no entries, so that the journal holds a record of this writer's first
    /// generation from the start (`Specs/store.md`, "Journal", the writer's mark).
    /// - Returns: its generation.
    func appendMark() throws -> UInt64 {
        var mark = JournalRecordBuilder()
        try append(&mark)
        return regions[current].generation!
    }

    /// The newest generation of a valid record in either region, if any.
    var newestGeneration: UInt64? {
        [regions[0].generation, regions[1].generation].compactMap { $0 }.max()
    }

    /// Finds a region's generation (its first record's), where that generation's valid records
    /// end, the last entry they hold, and any damage before later records.
    private func scan(_ index: Int) throws -> Region {
        guard regionSize >= Self.headerSize else { return Region() }
        let base = index * regionSize
        var region = Region()
        // Read in growing pieces: a region is mostly zeros beyond its records.
        var bytes: [UInt8] = []
        func have(_ count: Int) throws -> Bool {
            if count > bytes.count && bytes.count < regionSize {
                bytes += try read(offset: base + bytes.count, count: min(regionSize - bytes.count, max(count - bytes.count, bytes.count, 64 << 10)))
            }
            return count <= bytes.count
        }
        var offset = 0
        var lastRecord: Range<Int>?
        while try have(offset + Self.headerSize) {
            let length = Int(Self.u32(bytes, offset + 12))
            // A torn or damaged write ends the region.
            guard length <= regionSize - offset - Self.headerSize, try have(offset + Self.headerSize + length),
                let size = Self.validRecord(in: bytes, at: offset, generation: region.generation)
            else { break }
            region.generation = Self.u64(bytes, offset + 4)
            lastRecord = offset..<offset + size
            offset += size
        }
        region.end = offset
        region.lastSeq = try lastRecord.flatMap { try Self.lastSeq(in: bytes, record: $0) }
        // The writer never writes past a record that failed (it rewrites that place), so only the
        // last record of a generation can be torn. A valid record of the same generation after the
        // place reading stopped means the record there was damaged after it was written.
        var claimed = region.generation
        if claimed == nil, try have(Self.headerSize), Self.u32(bytes, 0) == Self.magic { claimed = Self.u64(bytes, 4) }
        if let claimed, try have(regionSize), let later = Self.firstRecord(of: claimed, in: bytes, after: offset) {
            var next = later
            var last = later..<later
            while let size = Self.validRecord(in: bytes, at: next, generation: claimed) {
                last = next..<next + size
                next += size
            }
            region.damage = Damage(at: offset, later: later, lastSeq: try Self.lastSeq(in: bytes, record: last) ?? 0)
        } else if try have(offset + Self.headerSize), bytes[offset..<offset + Self.headerSize].contains(where: { $0 != 0 }),
            try have(regionSize), let lastSeq = Self.wholeButDamaged(in: bytes, at: offset)
        {
            region.damage = Damage(at: offset, later: nil, lastSeq: lastSeq)
        }
        return region
    }

    /// Where reading stopped at `offset` with no valid record after it: nil when that is the
    /// journal's end or a torn write, which was never acknowledged and is dropped; else the last
    /// entry the damaged record claims (`UInt64.max` when unreadable).
    ///
    /// A record whose header names a length and whose checksum fails was written whole, and
    /// damaged since, when its terminator is in place (zeros after it, or the region's end) and
    /// its last byte is not zero. A write cut short leaves zeros where its end should be (a fresh
    /// region), or the older bytes it was overwriting, terminator included (a reused one).
    private static func wholeButDamaged(in bytes: [UInt8], at offset: Int) -> UInt64? {
        guard offset + headerSize <= bytes.count else { return nil }
        let header = bytes[offset..<offset + headerSize]
        guard header.contains(where: { $0 != 0 }) else { return nil }  // the end of the records
        let length = Int(u32(bytes, offset + 12))
        let end = offset + headerSize + length
        guard length >= 4, end <= bytes.count else { return nil }  // no length: stale bytes or a torn header
        let checksumHolds = validRecord(in: bytes, at: offset, generation: nil, ignoringMagic: true) != nil
        if u32(bytes, offset) != magic && !checksumHolds { return nil }  // not a record of this journal
        if u32(bytes, offset) == magic && checksumHolds { return nil }  // a whole record of an older generation
        let terminated = end == bytes.count || (end + headerSize <= bytes.count && bytes[end..<end + headerSize].allSatisfy { $0 == 0 })
        guard terminated, bytes[end - 1] != 0 else { return nil }  // torn
        // What the damaged record holds, as far as it decodes.
        var entries: [JournalEntry] = []
        var reader = JournalEntry.Reader(bytes: bytes, range: offset + headerSize..<end)
        try? reader.readAll(into: &entries)
        return entries.last?.seq ?? UInt64.max
    }

    /// The size of the record at `offset` if it is whole and valid: magic, `generation` (any if
    /// nil), a length within `bytes`, and its CRC.
    private static func validRecord(in bytes: [UInt8], at offset: Int, generation: UInt64?, ignoringMagic: Bool = false) -> Int? {
        guard offset + headerSize <= bytes.count, ignoringMagic || u32(bytes, offset) == magic else { return nil }
        guard generation == nil || u64(bytes, offset + 4) == generation else { return nil }
        let length = Int(u32(bytes, offset + 12))
        guard length <= bytes.count - offset - headerSize else { return nil }
        let crc = bytes.withUnsafeBytes { raw in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[offset + 4..<offset + 16]))
                .continuing(UnsafeRawBufferPointer(rebasing: raw[offset + headerSize..<offset + headerSize + length]))
        }
        return crc == u32(bytes, offset + 16) ? headerSize + length : nil
    }

    /// The offset of the first valid record of `generation` that starts after `offset`, if any.
    private static func firstRecord(of generation: UInt64, in bytes: [UInt8], after offset: Int) -> Int? {
        bytes.withUnsafeBytes { raw -> Int? in
            var position = offset + 1
            while position + headerSize <= raw.count {
                // memchr: a region is megabytes, mostly zeros or entry text.
                guard let found = memchr(raw.baseAddress! + position, 0x53, raw.count - headerSize + 1 - position) else { return nil }  // "S"
                let at = UnsafeRawPointer(found) - raw.baseAddress!
                if raw.loadUnaligned(fromByteOffset: at, as: UInt32.self) == magic.littleEndian,
                    validRecord(in: bytes, at: at, generation: generation) != nil
                {
                    return at
                }
                position = at + 1
            }
            return nil
        }
    }

    /// The seq of the last entry in the (valid) record at `record`.
    private static func lastSeq(in bytes: [UInt8], record: Range<Int>) throws -> UInt64? {
        guard record.count > headerSize else { return nil }
        var entries: [JournalEntry] = []
        var reader = JournalEntry.Reader(bytes: bytes, range: record.lowerBound + headerSize..<record.upperBound)
        try reader.readAll(into: &entries)
        return entries.last?.seq
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

    private static func createZeroed(_ path: String) throws {
        let temporary = path + ".new"
        let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("create the journal \(temporary)") }
        defer { Glibc.close(fd) }
        do {
            // 8 MiB, or a quarter of the free space on a small file system (at least 64 KiB).
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
        precondition(at >= 0 && at + 4 <= bytes.count)
        return UInt32(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) })
    }

    static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        precondition(at >= 0 && at + 8 <= bytes.count)
        return UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) })
    }
}

extension UInt32 {
    fileprivate func continuing(_ bytes: UnsafeRawBufferPointer) -> UInt32 { CRC32C.checksum(bytes, continuing: self) }
}
