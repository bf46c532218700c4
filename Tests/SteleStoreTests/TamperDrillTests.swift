import Foundation
import SteleCore
import SteleLMDB
@testable import SteleStore
import SteleTestSupport
import Testing

/// Tamper drills (`Specs/threat-model.md`): each attack made on the real LMDB file with a separate
/// writer, as an operator with file access could, and the exact finding verify reports for it.
/// Rollback, rewrite and re-signing need what is held outside the store: `VerifyCheckpointTests`.
@Suite("Tamper drills on the store file")
struct TamperDrillTests {
    /// 1,200 logins (a sealed index block and a tail) and a prune receipt for the first 100, in a test-mode store.
    static func store() throws -> (TemporaryDirectory, receipt: UInt64) {
        let log = try RetentionLog()
        for i in 0..<1200 { try log.add("login.succeeded", "user:\(i % 31)", at: RetentionLog.at(days: i < 100 ? 0 : 10 + Double(i) / 1000), retentionDays: 365) }
        let report = try log.prune(at: RetentionLog.at(days: 366))
        #expect(report.pruned == 100 && report.receipts.count == 1)
        try log.writer.close()
        #expect(try log.ledger.verifyIntegrity().isSound)
        return (log.directory, report.receipts[0])
    }

    static func entriesKey(_ seq: UInt64, _ tag: UInt8) -> [UInt8] { withUnsafeBytes(of: seq.bigEndian) { Array($0) } + [tag] }

    static func problems(_ dir: TemporaryDirectory) throws -> [LedgerError] {
        try Fixture.readOnly(dir).verifyIntegrity().problems
    }

    @Test("one byte of a body changed: its commitment fails, at its seq")
    func bodyByte() throws {
        let (dir, _) = try Self.store()
        try DerivedRecordAuditTests.tamper(dir, "entries") { txn, db in
            var body = try #require(try txn.get(db, key: Self.entriesKey(500, 2)))
            // A letter inside the first disclosed value: the record still parses, its digest differs.
            let marker = Array(#""value":""#.utf8)
            let at = try #require((0..<body.count - marker.count).first { Array(body[$0..<$0 + marker.count]) == marker }) + marker.count + 1
            body[at] ^= 0x01
            try txn.put(db, key: Self.entriesKey(500, 2), value: body)
        }
        let found = try Self.problems(dir)
        #expect(found.contains { $0.code == .chainBroken && $0.message.contains("entry 500") && $0.seq == 500 && $0.expected != nil })
        #expect(!found.contains { $0.message.contains("entry 499") || $0.message.contains("entry 501 ") })
    }

    @Test("one byte of a header changed: the next entry's link and the stored tree fail")
    func headerByte() throws {
        let (dir, _) = try Self.store()
        try DerivedRecordAuditTests.tamper(dir, "entries") { txn, db in
            let header = String(decoding: try #require(try txn.get(db, key: Self.entriesKey(600, 1))), as: UTF8.self)
            try txn.put(db, key: Self.entriesKey(600, 1), value: Array(header.replacingOccurrences(of: #""source":"web""#, with: #""source":"wbe""#).utf8))
        }
        let found = try Self.problems(dir)
        #expect(found.contains { $0.code == .chainBroken && $0.seq == 601 && $0.expected != $0.found }, "\(found.map(\.message))")
        #expect(found.contains { $0.code == .corrupt && $0.message.contains("stored Merkle hash") })
    }

    @Test("an entry deleted, or two swapped: found at their seqs")
    func deletedAndSwapped() throws {
        let (dir, _) = try Self.store()
        try DerivedRecordAuditTests.tamper(dir, "entries") { txn, db in
            _ = try txn.delete(db, key: Self.entriesKey(700, 1))
            _ = try txn.delete(db, key: Self.entriesKey(700, 2))
        }
        #expect(try Self.problems(dir).contains { $0.code == .chainBroken && $0.message == "entry 700 is missing" && $0.seq == 700 })

        let (other, _) = try Self.store()
        try DerivedRecordAuditTests.tamper(other, "entries") { txn, db in
            for tag: UInt8 in [1, 2] {
                let a = try #require(try txn.get(db, key: Self.entriesKey(300, tag)))
                let b = try #require(try txn.get(db, key: Self.entriesKey(301, tag)))
                try txn.put(db, key: Self.entriesKey(300, tag), value: b)
                try txn.put(db, key: Self.entriesKey(301, tag), value: a)
            }
        }
        #expect(try Self.problems(other).contains {
            $0.code == .chainBroken && $0.message == "entry 300 carries seq 301" && $0.seq == 300 && $0.expected == "seq 300" && $0.found == "seq 301"
        })
    }

    @Test("a stored subtree hash flipped: found by its storage index")
    func subtreeHash() throws {
        let (dir, _) = try Self.store()
        try DerivedRecordAuditTests.tamper(dir, "tree") { txn, db in
            let key = withUnsafeBytes(of: UInt64(42).bigEndian) { Array($0) }
            var hash = try #require(try txn.get(db, key: key))
            hash[0] ^= 0x80
            try txn.put(db, key: key, value: hash)
        }
        #expect(try Self.problems(dir).contains { $0.code == .corrupt && $0.message == "stored Merkle hash 42 does not match the entries" })
    }

    @Test("a prune receipt removed: the chain breaks at it, and every redaction it explained is unexplained")
    func receiptRemoved() throws {
        let (dir, receipt) = try Self.store()
        try DerivedRecordAuditTests.tamper(dir, "entries") { txn, db in
            for tag: UInt8 in [1, 2] { _ = try txn.delete(db, key: Self.entriesKey(receipt, tag)) }
        }
        #expect(try Self.problems(dir).contains { $0.code == .chainBroken && $0.message == "entry \(receipt) is missing" })
        let report = try Fixture.readOnly(dir).retentionReport(now: RetentionLog.at(days: 366))
        #expect(report.findings.filter { $0.kind == .unexplainedRedaction }.map(\.seq) == Array(0..<100))
    }

    @Test("a pruned entry deleted: verify finds it missing, and the lawfulness check still runs and names the receipt")
    func prunedEntryDeleted() throws {
        let (dir, receipt) = try Self.store()
        try DerivedRecordAuditTests.tamper(dir, "entries") { txn, db in
            for tag: UInt8 in [1, 2] { _ = try txn.delete(db, key: Self.entriesKey(50, tag)) }
        }
        #expect(try Self.problems(dir).contains { $0.message == "entry 50 is missing" && $0.seq == 50 })
        let report = try Fixture.readOnly(dir).retentionReport(now: RetentionLog.at(days: 366))
        #expect(report.findings.contains { $0.kind == .invalidReceipt && $0.seq == receipt && $0.message.contains("entry 50") })
    }
}
