import Foundation
import SteleCore
import SteleCrypto
import SteleLMDB
import SteleStore
import SteleTestSupport
import Testing

/// Tampering with what the store derives from its entries (indexes, idempotency log, stored
/// checkpoints) in the on-disk file, through LMDB as anyone with write access to the file could,
/// and with raw bytes where LMDB itself is damaged. Key layouts are those of `Specs/store.md`.
@Suite("Integrity check of derived records")
struct DerivedRecordAuditTests {
    /// 2,100 logins by 37 users (two sealed blocks of 1024 and a recent tail), closed again.
    static func store() throws -> TemporaryDirectory {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir, mapSize: 1 << 26)
        _ = try ledger.append((0..<2100).map { Fixture.login($0, users: 37) })
        #expect(try ledger.verifyIntegrity().isSound)
        return dir
    }

    /// Runs `body` in a write transaction on the store's `database`, outside the ledger's API.
    static func tamper(_ dir: TemporaryDirectory, _ database: String, _ body: (Transaction, Database) throws -> Void) throws {
        let environment = try Environment(path: dir.path, maxDatabases: 8, mapSize: 1 << 26)
        let db = try environment.openDatabase(database, create: false)
        try environment.withWriteTransaction { txn in try body(txn, db) }
    }

    static func recentKey(_ seq: UInt64, _ role: Character) -> [UInt8] {
        [UInt8(ascii: "r")] + withUnsafeBytes(of: seq.bigEndian) { Array($0) } + [role.asciiValue!]
    }

    static func indexProblems(_ dir: TemporaryDirectory) throws -> [String] {
        try Fixture.readOnly(dir).verifyIntegrity().problems.filter { $0.code == .indexMismatch }.map(\.message)
    }

    @Test("an altered, a removed and an injected index record are each found; the entries still verify")
    func alteredIndexRecordsAreFound() throws {
        let dir = try Self.store()
        let seqsOfUser5 = try Fixture.readOnly(dir).entries(LedgerQuery(subject: "user:5")).map(\.seq)
        #expect(seqsOfUser5.contains(2077))
        try Self.tamper(dir, "idx") { txn, db in
            // Entry 2077's subject record now names someone else: queries for user:5 lose it.
            var value = try #require(try txn.get(db, key: Self.recentKey(2077, "s")))
            value[0] ^= 0xFF
            try txn.put(db, key: Self.recentKey(2077, "s"), value: value)
            #expect(try txn.delete(db, key: Self.recentKey(2090, "k")))
            try txn.put(db, key: Self.recentKey(2100, "a"), value: Array(repeating: 7, count: 16))
        }
        let ledger = try Fixture.readOnly(dir)
        #expect(!(try ledger.entries(LedgerQuery(subject: "user:5")).map(\.seq).contains(2077)))
        let problems = try Self.indexProblems(dir)
        #expect(problems.contains { $0.contains("subject index record of entry 2077 does not match") })
        #expect(problems.contains { $0.contains("kind index has no record for entry 2090") })
        #expect(problems.contains { $0.contains("belongs to no entry") })
        let report = try ledger.verifyIntegrity()
        #expect(report.problems.allSatisfy { $0.code == .indexMismatch })
        #expect(report.size == 2100)
    }

    @Test("a posting of a sealed block that loses or gains an entry is found")
    func alteredPostingIsFound() throws {
        let dir = try Self.store()
        try Self.tamper(dir, "idx") { txn, db in
            // The first posting of block 0 (key "b" ‖ 0 ‖ role ‖ hash) loses its first offset.
            let key = try txn.withCursor(db) { cursor in
                Array(try #require(try cursor.seek(atOrAfter: [UInt8(ascii: "b"), 0, 0, 0, 0])).key)
            }
            #expect(key.count == 22 && key[0] == UInt8(ascii: "b") && key[1...4].allSatisfy { $0 == 0 })
            let value = try #require(try txn.get(db, key: key))
            #expect(value.count >= 4)
            try txn.put(db, key: key, value: Array(value.dropFirst(2)))
        }
        #expect(try Self.indexProblems(dir).contains { $0.contains("posting of block 0 (entries 0-1023) does not list exactly") })

        try Self.tamper(dir, "idx") { txn, db in
            // An extra posting for block 1 under a hash no entry has.
            try txn.put(db, key: [UInt8(ascii: "b"), 0, 0, 0, 1, UInt8(ascii: "s")] + Array(repeating: 9, count: 16), value: [0, 3])
        }
        #expect(try Self.indexProblems(dir).contains { $0.contains("postings for sealed blocks, expected") })
    }

    @Test("an idempotency record removed, altered or added is found")
    func idempotencyRecordTamperIsFound() throws {
        let dir = TemporaryDirectory()
        do {
            let ledger = try Fixture.create(dir)
            _ = try ledger.append((0..<20).map { Fixture.login($0) })
            var withoutID = Fixture.login(20)
            withoutID.id = nil
            _ = try ledger.append([withoutID])
        }
        func key(_ seq: UInt64) -> [UInt8] { withUnsafeBytes(of: seq.bigEndian) { Array($0) } + [3] }
        try Self.tamper(dir, "entries") { txn, db in
            #expect(try txn.delete(db, key: key(3)))
            var value = try #require(try txn.get(db, key: key(4)))
            value[15] ^= 1
            try txn.put(db, key: key(4), value: value)
            #expect(try txn.get(db, key: key(20)) == nil)
            try txn.put(db, key: key(20), value: value)
        }
        let problems = try Self.indexProblems(dir)
        #expect(problems.contains { $0.contains("entry 3 has an id but no idempotency record") })
        #expect(problems.contains { $0.contains("idempotency record of entry 4 does not match") })
        #expect(problems.contains { $0.contains("entry 20 has an idempotency record but no id") })
    }

    @Test("a stored checkpoint with another root, or beyond the log, is found")
    func storedCheckpointTamperIsFound() throws {
        let dir = TemporaryDirectory()
        let signer: NoteSigner
        do {
            let ledger = try Fixture.create(dir)
            _ = try ledger.append((0..<8).map { Fixture.login($0) })
            signer = try NoteSigner(name: ledger.origin, privateKey: Ed25519PrivateKey())
            let head = try ledger.treeHead()
            try ledger.storeCheckpoint(try Checkpoint(origin: ledger.origin, size: head.size, rootHash: head.root).signed(by: signer))
            #expect(try ledger.verifyIntegrity().isSound)
        }
        let forged = try Checkpoint(origin: "stele.test/log", size: 5, rootHash: SHA256().hash(Array("x".utf8))).signed(by: signer)
        let ahead = try Checkpoint(origin: "stele.test/log", size: 9, rootHash: SHA256().hash(Array("y".utf8))).signed(by: signer)
        try Self.tamper(dir, "checkpoints") { txn, db in
            try txn.put(db, key: withUnsafeBytes(of: UInt64(5).bigEndian) { Array($0) }, value: Array(forged.serialized.utf8))
            try txn.put(db, key: withUnsafeBytes(of: UInt64(9).bigEndian) { Array($0) }, value: Array(ahead.serialized.utf8))
        }
        let messages = try Fixture.readOnly(dir).verifyIntegrity().problems.map(\.message)
        #expect(messages.contains { $0.contains("checkpoint for size 5 names a root the log does not have") })
        #expect(messages.contains { $0.contains("checkpoint for size 9 is beyond the log's 8 entries") })
    }

    @Test("a damaged index page that LMDB cannot follow is reported as corrupt, not thrown")
    func damagedPageIsReported() throws {
        let dir = try Self.store()
        let file = URL(fileURLWithPath: dir.appending("data.mdb"))
        var data = try Data(contentsOf: file)
        // Find a branch page (flags 0x01) of the index: its keys after the first start with "r".
        let pageSize = 4096
        var damaged = 0
        for page in 2..<(data.count / pageSize) {
            let base = page * pageSize
            let flags = UInt16(data[base + 10]) | UInt16(data[base + 11]) << 8
            let lower = Int(UInt16(data[base + 12]) | UInt16(data[base + 13]) << 8)
            guard flags == 0x01 else { continue }
            for slot in 1..<max(1, (lower - 16) / 2) {
                let node = base + Int(UInt16(data[base + 16 + 2 * slot]) | UInt16(data[base + 17 + 2 * slot]) << 8)
                guard data[node + 8] == UInt8(ascii: "r") else { continue }
                // The node's child page number (its first six bytes) now points past the end of the file.
                for i in 0..<6 { data[node + i] = 0xFF }
                damaged += 1
            }
        }
        #expect(damaged > 0)
        try data.write(to: file)
        let report = try Fixture.readOnly(dir).verifyIntegrity()
        #expect(report.problems.contains { $0.code == .corrupt && $0.message.contains("LMDB file is damaged") })
    }
}
