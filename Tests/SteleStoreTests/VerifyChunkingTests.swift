import Foundation
import SteleCore
import SteleLMDB
@testable import SteleStore
import SteleTestSupport
import Testing

/// The integrity check decodes entries on several threads, a chunk at a time, ahead of its in-order
/// checks. Where the chunks fall must change nothing it reports.
@Suite("Integrity check in chunks")
struct VerifyChunkingTests {
    /// A closed store of `count` logins by 9 users.
    static func store(logins count: Int) throws -> TemporaryDirectory {
        let dir = TemporaryDirectory()
        _ = try Fixture.create(dir).append((0..<count).map { Fixture.login($0, users: 9) })
        return dir
    }

    @Test("tampering on and beside chunk boundaries is reported the same for every chunk size")
    func chunkingDoesNotChangeTheReport() throws {
        let dir = try Self.store(logins: 100)
        for chunk in [1, 7, 4096] { #expect(try Fixture.readOnly(dir).verifyIntegrity(chunkSize: chunk).isSound) }
        func key(_ seq: UInt64, _ tag: UInt8) -> [UInt8] { withUnsafeBytes(of: seq.bigEndian) { Array($0) } + [tag] }
        try DerivedRecordAuditTests.tamper(dir, "entries") { txn, db in
            // Entry 14 (last of the second chunk of 7): one byte of its header's ts, so entry 15 no
            // longer chains to it. Entry 21 (first of a chunk): its body no longer matches its header.
            var header = try #require(try txn.get(db, key: key(14, LedgerKeys.headerTag)))
            let ts = try #require(String(decoding: header, as: UTF8.self).range(of: #""ts":"2"#)).upperBound.utf16Offset(in: String(decoding: header, as: UTF8.self))
            header[ts + 2] = header[ts + 2] == UInt8(ascii: "9") ? UInt8(ascii: "8") : header[ts + 2] + 1
            try txn.put(db, key: key(14, LedgerKeys.headerTag), value: header)
            var body = try #require(try txn.get(db, key: key(21, LedgerKeys.bodyTag)))
            let value = try #require(String(decoding: body, as: UTF8.self).range(of: "user:")).upperBound.utf16Offset(in: String(decoding: body, as: UTF8.self))
            body[value] = body[value] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
            try txn.put(db, key: key(21, LedgerKeys.bodyTag), value: body)
            // Entry 56 (first of a chunk of 7 and of 8): its body record is gone.
            #expect(try txn.delete(db, key: key(56, LedgerKeys.bodyTag)))
        }
        let ledger = try Fixture.readOnly(dir)
        let reports = try [1, 7, 8, 100, 4096].map { try ledger.verifyIntegrity(chunkSize: $0) }
        let messages = reports.map { $0.problems.map(\.message) }
        let first = try #require(messages.first)
        #expect(first.contains { $0.contains("entry 15 breaks the hash chain") })
        #expect(first.contains { $0.contains("the body of entry 21 does not match the commitment") })
        #expect(first.contains { $0.contains("the body record of entry 56 is missing") })
        for other in messages.dropFirst() { #expect(other == first) }
        #expect(Set(reports.map { $0.root }).count == 1)
        #expect(reports.allSatisfy { $0.size == 100 })
    }

    @Test("a damaged entries page ends the check with the same report for every chunk size and thread count")
    func damagedEntriesPageIsReportedAlike() throws {
        let dir = try Self.store(logins: 300)
        let file = URL(fileURLWithPath: dir.appending("data.mdb"))
        var data = try Data(contentsOf: file)
        // In a branch page (flags 0x01) of the entries database (keys of 9 bytes: seq and tag), the
        // child page number of the middle node now points past the end of the file.
        let pageSize = 4096
        var damaged = false
        for page in 2..<(data.count / pageSize) where !damaged {
            let base = page * pageSize
            let flags = UInt16(data[base + 10]) | UInt16(data[base + 11]) << 8
            let lower = Int(UInt16(data[base + 12]) | UInt16(data[base + 13]) << 8)
            let nodes = (lower - 16) / 2
            guard flags == 0x01, nodes >= 3 else { continue }
            let node = base + Int(UInt16(data[base + 16 + 2 * (nodes / 2)]) | UInt16(data[base + 17 + 2 * (nodes / 2)]) << 8)
            guard Int(UInt16(data[node + 6]) | UInt16(data[node + 7]) << 8) == 9 else { continue }
            for i in 0..<6 { data[node + i] = 0xFF }
            damaged = true
        }
        #expect(damaged)
        try data.write(to: file)
        let ledger = try Fixture.readOnly(dir)
        var messages: [[String]] = []
        for (chunk, threads) in [(1, 1), (7, 2), (64, 2), (4096, 1), (4096, 2)] {
            let report = try ledger.verifyIntegrity(chunkSize: chunk, threads: threads)
            #expect(report.problems.contains { $0.code == .corrupt && $0.message.contains("LMDB file is damaged") })
            messages.append(report.problems.map(\.message))
        }
        for other in messages.dropFirst() { #expect(other == messages[0]) }
    }
}
