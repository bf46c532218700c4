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
    /// `ledger.compacted` entry first, so the compacted file holds it. Appends go on being
    /// acknowledged meanwhile: they wait only while the journal is zeroed.
    public func compact(request: String, reason: String, operatorName: String, now: @escaping @Sendable () -> Timestamp = Timestamp.now) throws -> CompactReport {
        let path = ledger.path
        let dataFile = path + "/data.mdb"
        let before = Self.fileSize(dataFile)
        let receipt = try perform(now: now) { context in
            try context.append(Event.ledger("ledger.compacted", actor: operatorName, attributes: [
                    "request": .string(request), "reason": .string(reason), "bytes_before": .integer(Int64(before)),
                    "files": .array([.string("data.mdb"), .string(Journal.fileName)]),
                ])).seq
        }
        let scratch = path + "/compact-\(Timestamp.now().microseconds)"
        guard mkdir(scratch, 0o700) == 0 else {
            throw LedgerError(.storage, "compaction could not create \(scratch): \(String(cString: strerror(errno)))")
        }
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try compactStoreAndScrubJournal(scratch: scratch)
        return CompactReport(receipt: receipt, bytesBefore: before, bytesAfter: Self.fileSize(dataFile))
    }

    private static func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }
}

extension Ledger {
    /// Replaces the store file with a compacted copy of itself, this ledger's environment staying
    /// open (``Environment/compactInPlace(scratch:databases:)``); on the store queue, no write under way.
    func compactInPlace(scratch: String) throws {
        let all = [databases.meta, databases.entries, databases.tree, databases.index, databases.checkpoints] + (databases.consent.map { [$0] } ?? [])
        do { try environment.compactInPlace(scratch: scratch, databases: all) } catch {
            throw LedgerError(.storage, "the compaction failed: \(error)")
        }
    }
}
