import Foundation
import SteleCore
import SteleCrypto
@testable import SteleStore
import SteleTestSupport
import Testing

@Suite("Redaction and queries")
struct LedgerRedactionTests {
    @Test("a redacted entry still verifies, keeps its proofs, and loses value and salt")
    func redactedEntryStillVerifies() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        _ = try ledger.append((0..<8).map { Fixture.login($0) })
        let rootBefore = try ledger.rootHash(size: 8)
        let proofBefore = try ledger.inclusionProof(seq: 3, size: 8)
        let receipt = Event(kind: "ledger.redaction", retentionClass: "ledger", retention: nil, source: "stele", attributes: ["seq": .integer(3)])
        let (redacted, receiptOut) = try ledger.redact(seq: 3, fields: ["subject", "ip", "nonexistent"], receipt: receipt)
        #expect(Set(redacted) == ["subject", "ip"])
        #expect(receiptOut?.seq == 8)
        let entry = try ledger.entry(3)
        #expect(entry.body.fields["subject"]?.isRedacted == true)
        #expect(entry.body.fields["ip"]?.isRedacted == true)
        #expect(entry.body.fields["actor"]?.value == .string("user:3"))
        #expect(entry.body.redactedNames == ["ip", "subject"])
        #expect(try ledger.rootHash(size: 8) == rootBefore)
        #expect(try ledger.inclusionProof(seq: 3, size: 8).proof == proofBefore.proof)
        #expect(try ledger.verifyIntegrity().isSound)
        // Redacting again changes nothing.
        #expect(try ledger.redact(seq: 3, fields: ["subject"]).redacted.isEmpty)
        // The subject index no longer finds the entry.
        #expect(try ledger.entries(LedgerQuery(subject: "user:3")).isEmpty)
        // Fully redacted: body prints as null.
        _ = try ledger.redact(seq: 3, fields: Array(entry.body.fields.keys))
        #expect(try ledger.entry(3).outputJSON["body"] == .null)
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("queries select by subject, actor, kind and half-open time range")
    func queries() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        let base = Timestamp(microseconds: 1_800_000_000_000_000)
        for i in 0..<20 {
            let event = i % 4 == 0 ? Fixture.consent("user:\(i % 3)", purpose: "marketing_email", id: "c\(i)") : Fixture.login(i, users: 3)
            _ = try ledger.append([event], now: { base.adding(microseconds: Int64(i) * 1_000_000) })
        }
        let all = try ledger.entries()
        #expect(all.count == 20)
        let user1 = try ledger.entries(LedgerQuery(subject: "user:1"))
        #expect(user1.map(\.seq) == all.filter { $0.body.fields["subject"]?.value == .string("user:1") }.map(\.seq))
        #expect(!user1.isEmpty)
        #expect(try ledger.entries(LedgerQuery(actor: "user:2")).allSatisfy { $0.body.fields["actor"]?.value == .string("user:2") })
        #expect(try ledger.entries(LedgerQuery(kind: "consent.granted")).map(\.seq) == [0, 4, 8, 12, 16])
        let window = try ledger.entries(LedgerQuery(since: base.adding(microseconds: 5_000_000), until: base.adding(microseconds: 9_000_000)))
        #expect(window.map(\.seq) == [5, 6, 7, 8])
        let combined = try ledger.entries(LedgerQuery(subject: "user:0", kind: "consent.granted", since: base.adding(microseconds: 1)))
        #expect(combined.allSatisfy { $0.header.kind == "consent.granted" && $0.seq > 0 })
        #expect(try ledger.entries(LedgerQuery(subject: "user:nobody")).isEmpty)
    }

    @Test("tampering with a header in the on-disk file is found by the integrity check")
    func tamperedHeaderIsFound() throws {
        let dir = TemporaryDirectory()
        do {
            let ledger = try Fixture.create(dir)
            _ = try ledger.append((0..<10).map { Fixture.login($0) })
            _ = try ledger.append([Fixture.consent("user:9", purpose: "marketing_email", id: "tamper-me")])
        }
        let file = URL(fileURLWithPath: dir.appending("data.mdb"))
        var data = try Data(contentsOf: file)
        let needle = Data(#""kind":"consent.granted""#.utf8)
        let range = try #require(data.range(of: needle))
        data.replaceSubrange(range, with: Data(#""kind":"consent.grantee""#.utf8))
        try data.write(to: file)
        let report = try Fixture.readOnly(dir).verifyIntegrity()
        #expect(!report.isSound)
        #expect(report.problems.contains { $0.code == .corrupt || $0.code == .chainBroken })
    }

    @Test("tampering with a body value on disk breaks its commitment")
    func tamperedBodyIsFound() throws {
        let dir = TemporaryDirectory()
        do {
            let ledger = try Fixture.create(dir)
            _ = try ledger.append([Fixture.consent("user:42", purpose: "marketing_email", id: "b1")])
        }
        let file = URL(fileURLWithPath: dir.appending("data.mdb"))
        var data = try Data(contentsOf: file)
        let range = try #require(data.range(of: Data(#""value":"marketing_email""#.utf8)))
        data.replaceSubrange(range, with: Data(#""value":"marketing_emaiX""#.utf8))
        try data.write(to: file)
        let report = try Fixture.readOnly(dir).verifyIntegrity()
        #expect(report.problems.map(\.code) == [.chainBroken])
        #expect(report.problems.first?.message.contains("entry 0") == true)
    }
}

@Suite("Indexes across sealed blocks")
struct LedgerIndexBlockTests {
    @Test("subject, actor and kind queries agree with a full scan across sealed blocks and the recent region")
    func queriesAcrossBlocks() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir, mapSize: 1 << 28)
        let total = 9_300  // two sealed blocks of 4096 and a recent tail
        for start in stride(from: 0, to: total, by: 700) {
            _ = try ledger.append((start..<min(total, start + 700)).map { n in
                n % 10 == 0 ? Fixture.consent("user:\(n % 37)", purpose: "marketing_email", id: "c\(n)") : Fixture.login(n, users: 37)
            })
        }
        let all = try ledger.entries()
        #expect(all.count == total)
        for user in ["user:0", "user:5", "user:36"] {
            let expected = all.filter { $0.body.fields["subject"]?.value == .string(user) }.map(\.seq)
            #expect(try ledger.entries(LedgerQuery(subject: user)).map(\.seq) == expected)
            let window = try ledger.entries(LedgerQuery(subject: user, since: all[4000].header.timestamp, until: all[8200].header.timestamp))
            #expect(window.map(\.seq) == expected.filter { $0 >= 4000 && $0 < 8200 })
        }
        #expect(try ledger.entries(LedgerQuery(kind: "consent.granted")).map(\.seq) == all.filter { $0.header.kind == "consent.granted" }.map(\.seq))
        #expect(try ledger.entries(LedgerQuery(actor: "user:7")).count == all.filter { $0.body.fields["actor"]?.value == .string("user:7") }.count)
        // Redacting the subject removes the entry from the index, in a sealed block and in the recent tail.
        let sealedSeq = try ledger.entries(LedgerQuery(subject: "user:5")).first!.seq
        let recentSeq = try ledger.entries(LedgerQuery(subject: "user:5")).last!.seq
        #expect(sealedSeq < 4096 && recentSeq >= 8192)
        _ = try ledger.redact(seq: sealedSeq, fields: ["subject"])
        _ = try ledger.redact(seq: recentSeq, fields: ["subject"])
        let after = try ledger.entries(LedgerQuery(subject: "user:5")).map(\.seq)
        #expect(!after.contains(sealedSeq) && !after.contains(recentSeq))
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("postings sealed from the writer's memory agree with a full scan, also after another writer's redaction and with two writers taking turns")
    func postingsFromMemoryAgree() throws {
        let dir = TemporaryDirectory()
        let first = try Fixture.create(dir, mapSize: 1 << 28)
        // Block 0 and most of block 1 by one writer, in batches that cross the block boundary.
        for start in stride(from: 0, to: 1900, by: 300) {
            _ = try first.append((start..<min(1900, start + 300)).map { Fixture.login($0, users: 11) })
        }
        // Another writer (as another process would) redacts the subject of an entry in the unsealed
        // block, appending nothing; the first writer then finishes the block: its posting must not
        // list the redacted entry.
        let second = try Ledger(path: dir.path)
        let redacted = try first.entries(LedgerQuery(subject: "user:4")).last!.seq
        #expect(redacted >= 1024)
        _ = try second.redact(seq: redacted, fields: ["subject"])
        _ = try first.append((1900..<2100).map { Fixture.login($0, users: 11) })
        // The two writers take turns across blocks 2 and 3.
        for round in 0..<8 {
            let writer = round % 2 == 0 ? second : first
            _ = try writer.append((0..<250).map { Fixture.login(2100 + round * 250 + $0, users: 11) })
        }
        let all = try first.entries()
        #expect(all.count == 4100)
        for user in (0..<11).map({ "user:\($0)" }) {
            let expected = all.filter { $0.body.fields["subject"]?.value == .string(user) }.map(\.seq)
            #expect(try first.entries(LedgerQuery(subject: user)).map(\.seq) == expected, "\(user)")
            let actors = all.filter { $0.body.fields["actor"]?.value == .string(user) }.map(\.seq)
            #expect(try second.entries(LedgerQuery(actor: user)).map(\.seq) == actors, "\(user)")
        }
        #expect(!(try first.entries(LedgerQuery(subject: "user:4")).map(\.seq).contains(redacted)))
        // The sealed posting itself no longer lists the redacted entry (a query would filter it out
        // anyway, by reading the body).
        let hash = LedgerKeys.identifierHash(indexKey: first.indexKey, role: "subject", identifier: "user:4", sha: SHA256())
        var indexed: [UInt64] = []
        try first.read { txn in
            try first.index.seqs(txn, role: .subject, hash: hash, low: 1024, high: 2048, size: 4100) { indexed.append($0); return true }
        }
        #expect(!indexed.isEmpty && !indexed.contains(redacted))
        #expect(try first.verifyIntegrity().isSound)
    }
}
