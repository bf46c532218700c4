import Foundation
import SteleCore
import SteleCrypto
import SteleStore
import SteleTestSupport
import Testing

/// Stands in for a crash: thrown out of a session after its batches were acknowledged, so the store
/// transaction never commits and only the journal holds them.
private struct SimulatedCrash: Error {}

@Suite("Journal: acknowledged entries survive an uncommitted store transaction")
struct JournalTests {
    /// Appends `batches` in one journaled session that never commits; returns the receipts given.
    private func acknowledgeWithoutCommit(_ ledger: Ledger, _ batches: [[Event]]) throws -> [Receipt] {
        var receipts: [Receipt] = []
        #expect(throws: SimulatedCrash.self) {
            try ledger.withJournaledSession { session in
                for batch in batches {
                    receipts += try Fixture.receipts(session.append(prepared: ledger.prepare(batch)))
                }
                throw SimulatedCrash()
            }
        }
        return receipts
    }

    private func journalPath(_ dir: TemporaryDirectory) -> String { dir.path + "/journal" }

    @Test("entries acknowledged from the journal reach the store on the next open, exactly as acknowledged")
    func acknowledgedEntriesAreMovedIntoTheStore() throws {
        let dir = TemporaryDirectory()
        var acknowledged: [Receipt] = []
        do {
            let ledger = try Fixture.create(dir)
            try ledger.adoptJournal()
            _ = try ledger.withJournaledSession { session in
                try Fixture.receipts(session.append(prepared: ledger.prepare((0..<5).map { Fixture.login($0) })))
            }
            acknowledged = try acknowledgeWithoutCommit(ledger, [(5..<9).map { Fixture.login($0) }, [Fixture.consent("user:1", purpose: "marketing_email", id: "c1")]])
            #expect(try ledger.treeHead().size == 5)  // the store did not commit them
        }
        #expect(acknowledged.map(\.seq) == Array(5..<10))
        do {
            // Before they are moved: the store is sound, and verify counts them as waiting.
            let before = try Fixture.readOnly(dir)
            #expect(try before.treeHead().size == 5)
            let report = try before.verifyIntegrity()
            #expect(report.isSound && report.journalPending == 5, "\(report.problems)")
        }
        #expect(try Ledger.completeJournal(path: dir.path) == 5)
        let ledger = try Fixture.readOnly(dir)
        #expect(try ledger.treeHead().size == 10)
        for receipt in acknowledged {
            let entry = try ledger.entry(receipt.seq)
            #expect(entry.headerBytes == receipt.header)
            #expect(MerkleHasher().leafHash(entry.headerBytes) == receipt.leafHash)
        }
        // Indexes and idempotency records came along: queries find the entry, a retry gets its receipt.
        #expect(try ledger.entries(LedgerQuery(subject: "user:1")).map(\.header.seq).contains(9))
        let report = try ledger.verifyIntegrity()
        #expect(report.isSound, "\(report.problems)")
        #expect(try Ledger.completeJournal(path: dir.path) == 0)
        let writer = try Ledger(path: dir.path)
        let retried = try writer.append([Fixture.consent("user:1", purpose: "marketing_email", id: "c1")])
        #expect(try retried[0].get().duplicate && retried[0].get().seq == 9)
    }

    @Test("a daemon restarting on the store moves the journal in before appending, and the chain continues")
    func ownerMovesJournalOnRestart() throws {
        let dir = TemporaryDirectory()
        do {
            let ledger = try Fixture.create(dir)
            try ledger.adoptJournal()
            _ = try acknowledgeWithoutCommit(ledger, [(0..<3).map { Fixture.login($0) }])
        }
        let ledger = try Ledger(path: dir.path)
        try ledger.adoptJournal()
        let next = try ledger.withJournaledSession { session in
            try Fixture.receipts(session.append(prepared: ledger.prepare([Fixture.login(3)])))
        }
        #expect(next.map(\.seq) == [3])
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("a torn or damaged last record is not moved in; the records before it are")
    func tornRecordEndsTheJournal() throws {
        let dir = TemporaryDirectory()
        do {
            let ledger = try Fixture.create(dir)
            try ledger.adoptJournal()
            _ = try acknowledgeWithoutCommit(ledger, [(0..<4).map { Fixture.login($0) }, (4..<6).map { Fixture.login($0) }])
        }
        // Damage one byte near the end of the second record (what a write cut short by power loss leaves).
        let data = try Data(contentsOf: URL(fileURLWithPath: journalPath(dir)))
        let end = try #require(data.lastIndex { $0 != 0 })
        var damaged = data
        damaged[end - 10] ^= 0x01
        try damaged.write(to: URL(fileURLWithPath: journalPath(dir)))
        #expect(try Ledger.completeJournal(path: dir.path) == 4)
        let ledger = try Fixture.readOnly(dir)
        #expect(try ledger.treeHead().size == 4)
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("a journal that does not continue the store (an older copy restored, another store's journal) stops every writer")
    func foreignOrGappedJournalIsRefused() throws {
        let dir = TemporaryDirectory()
        let backup = TemporaryDirectory()
        do {
            let ledger = try Fixture.create(dir)
            try ledger.adoptJournal()
            _ = try ledger.withJournaledSession { session in try session.append(prepared: ledger.prepare([Fixture.login(0)])).count }
        }
        try FileManager.default.copyItem(atPath: dir.path + "/data.mdb", toPath: backup.path + "/data.mdb")
        do {
            let ledger = try Ledger(path: dir.path)
            try ledger.adoptJournal()
            _ = try ledger.withJournaledSession { session in try session.append(prepared: ledger.prepare([Fixture.login(1)])).count }
            _ = try acknowledgeWithoutCommit(ledger, [[Fixture.login(2)]])
        }
        // The store goes back to the copy holding entry 0 only; the journal starts at entry 2.
        try FileManager.default.removeItem(atPath: dir.path + "/data.mdb")
        try FileManager.default.copyItem(atPath: backup.path + "/data.mdb", toPath: dir.path + "/data.mdb")
        let restored = try Ledger(path: dir.path)
        let gap = #expect(throws: LedgerError.self) { try restored.append([Fixture.login(9)]) }
        #expect(gap?.code == .corrupt && gap?.message.contains("missing") == true, "\(String(describing: gap))")
        #expect(try restored.treeHead().size == 1)
        #expect(try restored.verifyIntegrity().problems.map(\.code) == [.chainBroken])

        // Another store's journal: at the journal's first seq it breaks that store's chain; below
        // the store's head it contradicts the entries the store holds.
        for (size, expected) in [(2, LedgerError.Code.chainBroken), (3, .corrupt)] {
            let other = TemporaryDirectory()
            do {
                let ledger = try Fixture.create(other)
                _ = try ledger.append((0..<size).map { Fixture.login(100 + $0) })
            }
            try FileManager.default.copyItem(atPath: journalPath(dir), toPath: journalPath(other))
            let foreign = try Ledger(path: other.path)
            let refusal = #expect(throws: LedgerError.self) { try foreign.append([Fixture.login(200)]) }
            #expect(refusal?.code == expected, "\(String(describing: refusal))")
            #expect(try foreign.treeHead().size == UInt64(size))
            #expect(try foreign.verifyIntegrity().problems.map(\.code) == [expected])
        }
    }

    @Test("a session that outgrows the map is rerun with every acknowledged batch back in place")
    func sessionRerunKeepsAcknowledgedBatches() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir, mapSize: 1 << 16)
        try ledger.adoptJournal()
        var answered: [Receipt] = []
        var runs = 0
        var next = 0
        try ledger.withJournaledSession { session in
            runs += 1
            // Each batch is appended once; a rerun continues after the last acknowledged one.
            while next < 40 {
                let batch = (next * 25..<(next + 1) * 25).map { Fixture.login($0) }
                answered += try Fixture.receipts(session.append(prepared: ledger.prepare(batch)))
                next += 1
            }
        }
        #expect(runs > 1)
        #expect(answered.map(\.seq) == Array(0..<1000))
        for receipt in answered.filter({ $0.seq % 97 == 0 }) {
            #expect(try ledger.entry(receipt.seq).headerBytes == receipt.header)
        }
        #expect(try ledger.verifyIntegrity().isSound)
    }
}
