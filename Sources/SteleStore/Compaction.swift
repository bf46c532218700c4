public import SteleCore
import Foundation
import Glibc
import SteleLMDB

/// What a compaction did.
public struct CompactReport: Sendable {
    /// The `ledger.compacted` entry.
    public let receipt: UInt64
    public let bytesBefore: Int
    public let bytesAfter: Int

    public var json: JSONValue {
        .object(["receipt": .integer(Int64(receipt)), "bytes_before": .integer(Int64(bytesBefore)), "bytes_after": .integer(Int64(bytesAfter))])
    }
}

extension LedgerWriter {
    /// Rewrites the store file without its free pages, where LMDB keeps the values and salts that
    /// redactions replaced until it reuses them, and zeroes the journal, which keeps acknowledged
    /// bodies until its regions are overwritten (`Specs/retention.md`, "Compaction"). Records a
    /// `ledger.compacted` entry first, so the compacted file holds it; then closes the writer,
    /// copies the store compacted beside it, and renames the copy over the store file (atomic),
    /// with LMDB's lock file removed so the next opener reads the new file's own metadata.
    ///
    /// The writer must be the store's only user (a direct command holding the directory's lock);
    /// it is closed afterwards.
    public func compact(request: String, reason: String, operatorName: String, now: @escaping @Sendable () -> Timestamp = Timestamp.now) throws -> CompactReport {
        let path = ledger.path
        let dataFile = path + "/data.mdb"
        let before = Self.fileSize(dataFile)
        let receipt = try perform(now: now) { context in
            try context.append(Event(
                kind: "ledger.compacted", retentionClass: "ledger", retention: nil, source: "stele", actor: operatorName,
                attributes: [
                    "request": .string(request), "reason": .string(reason), "bytes_before": .integer(Int64(before)),
                    "files": .array([.string("data.mdb"), .string(Journal.fileName)]),
                ])).seq
        }
        try close()
        try scrubJournal()
        let temporary = path + "/compact-\(Timestamp.now().microseconds)"
        guard mkdir(temporary, 0o700) == 0 else { throw Self.failure("create \(temporary)") }
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        do { try ledger.environment.copyCompacted(to: temporary) } catch {
            throw LedgerError(.storage, "the compacting copy failed: \(error); the store is unchanged")
        }
        let copy = temporary + "/data.mdb"
        let fd = open(copy, O_RDONLY)
        guard fd >= 0, fsync(fd) == 0 else { throw Self.failure("sync \(copy)") }
        Glibc.close(fd)
        guard rename(copy, dataFile) == 0 else { throw Self.failure("replace \(dataFile)") }
        unlink(path + "/lock.mdb")
        let directory = open(path, O_RDONLY | O_DIRECTORY)
        if directory >= 0 {
            fsync(directory)
            Glibc.close(directory)
        }
        return CompactReport(receipt: receipt, bytesBefore: before, bytesAfter: Self.fileSize(dataFile))
    }

    private static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    private static func failure(_ what: String) -> LedgerError {
        LedgerError(.storage, "compaction could not \(what): \(String(cString: strerror(errno)))")
    }
}
