import Foundation
import SteleCore
import SteleCrypto
@testable import SteleStore
import SteleTestSupport
import Testing

@Suite("Journal: acknowledged entries survive a store that never committed them")
struct JournalTests {
    /// Journals `batches` through a writer (each one durable and answered) whose store commits
    /// none of them, as a daemon killed before its store commits would.
    private func acknowledgeWithoutCommit(_ ledger: Ledger, _ batches: [[Event]]) throws -> [Receipt] {
        try Fixture.killedWriter(ledger) { writer in
            try batches.flatMap { try Fixture.receipts(Fixture.journal(writer, $0)) }
        }
    }

    /// Appends one batch, in the store when this returns.
    private func appendAndApply(_ ledger: Ledger, _ events: [Event]) throws -> [Receipt] {
        try Fixture.receipts(ledger.append(events))
    }

    private func journalPath(_ dir: TemporaryDirectory) -> String { dir.path + "/journal" }

    @Test("journaled ids leave the window: a retry within it gets the original receipt, one over a second after it appends anew")
    func journaledIdsExpireWithTheWindow() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        let writer = try Fixture.lazyWriter(ledger, idempotencyWindow: 1_000_000)
        let t0 = Timestamp(microseconds: 1_800_000_000_000_000)
        func append(_ ids: [Int], at offset: Int64) throws -> [Receipt] {
            let events = ids.map { Fixture.login($0, id: "id-\($0)") }
            return try Fixture.receipts(writer.append(prepared: ledger.prepare(events), now: { t0.adding(microseconds: offset) }))
        }
        let originals = try append(Array(0..<1000), at: 0)
        let within = try append([0, 999], at: 500_000)
        #expect(within.map(\.duplicate) == [true, true])
        #expect(within.map(\.seq) == [originals[0].seq, originals[999].seq])
        // Far more keys expire here than one small batch drops; all of them are gone anyway.
        let after = try append([999, 0], at: 2_100_000)
        #expect(after.map(\.duplicate) == [false, false])
        #expect(after[0].seq == 1000)
    }

    @Test("through the journal, a retried id is compared with its original by value, whether the original is in this batch, the journal or the store")
    func journaledRetryComparedByValue() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        let writer = try Fixture.lazyWriter(ledger)
        let original = Fixture.login(1, id: "abc")
        var changed = original
        changed.attributes["ip"] = .string("198.51.100.1")
        func outcomes(_ events: [Event]) throws -> [Result<Receipt, LedgerError>] {
            try Fixture.journal(writer, events)
        }
        // The original earlier in the same batch.
        let sameBatch = try outcomes([original, original, changed])
        #expect(try sameBatch[1].get().duplicate)
        #expect(throws: LedgerError.self) { try sameBatch[2].get() }
        // The original journaled but not yet in the store.
        let journaled = try outcomes([changed, original])
        #expect(throws: LedgerError.self) { try journaled[0].get() }
        #expect(try journaled[1].get().duplicate)
        #expect(try journaled[1].get().seq == sameBatch[0].get().seq)
        // The original in the store, and no longer in the journal's memory.
        #expect(try ledger.size == 0)
        try writer.flushToStore()
        let stored = try outcomes([changed, original])
        #expect(throws: LedgerError.self) { try stored[0].get() }
        #expect(try stored[1].get().duplicate)
        #expect(try ledger.size == 1)
    }

    /// A new store in `dir` whose journal holds two records (entries 0–3, then 4–5), acknowledged
    /// and, if `applied`, committed to the store.
    private func twoJournalRecords(_ dir: TemporaryDirectory, applied: Bool) throws {
        let ledger = try Fixture.create(dir)
        try Fixture.killedWriter(ledger) { writer in
            for batch in [(0..<4).map { Fixture.login($0) }, (4..<6).map { Fixture.login($0) }] {
                _ = try Fixture.journal(writer, batch)
            }
            if applied { try writer.flushToStore() }
        }
    }

    /// Flips one bit of the journal in `dir`, at the offset `at` picks from its bytes; returns the
    /// damaged bytes.
    @discardableResult
    private func flipJournalBit(_ dir: TemporaryDirectory, at: (Data) throws -> Int) throws -> Data {
        let url = URL(fileURLWithPath: journalPath(dir))
        var data = try Data(contentsOf: url)
        data[try at(data)] ^= 0x01
        try data.write(to: url)
        return data
    }

    /// Gives `dir` a 64 KiB journal (two regions of 32 KiB, a few dozen entries each), so that
    /// writing moves between its regions after a few dozen entries.
    private func smallJournal(_ dir: TemporaryDirectory) throws {
        try #require(FileManager.default.createFile(atPath: journalPath(dir), contents: Data(count: 64 << 10)))
    }

    /// The seqs the journal in `dir` holds, in order.
    private func journaledSeqs(_ dir: TemporaryDirectory) throws -> [UInt64] {
        try #require(try Journal(directory: dir.path, create: false, exclusive: false, readOnly: true)).entries(storeSize: 0).map(\.seq)
    }

    /// Journals each event as its own batch, applying them to the store `every` batches (the
    /// store thread lagging behind the writer), and leaves the last `unapplied` unapplied.
    private func journalOneByOne(_ writer: LedgerWriter, _ seqs: Range<Int>, every: Int, unapplied: Int = 0) throws {
        var waiting = 0
        for i in seqs {
            _ = try Fixture.journal(writer, [Fixture.login(i)])
            waiting += 1
            if waiting >= every && i < seqs.upperBound - unapplied {
                try writer.flushToStore()
                waiting = 0
            }
        }
    }

    @Test("entries acknowledged from the journal reach the store on the next open, exactly as acknowledged")
    func acknowledgedEntriesAreMovedIntoTheStore() throws {
        let dir = TemporaryDirectory()
        var acknowledged: [Receipt] = []
        do {
            let ledger = try Fixture.create(dir)
            try Fixture.killedWriter(ledger) { writer in
                _ = try Fixture.journal(writer, (0..<5).map { Fixture.login($0) })
                try writer.flushToStore()
                for batch in [(5..<9).map { Fixture.login($0) }, [Fixture.consent("user:1", purpose: "marketing_email", id: "c1")]] {
                    acknowledged += try Fixture.receipts(Fixture.journal(writer, batch))
                }
            }
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
            _ = try acknowledgeWithoutCommit(ledger, [(0..<3).map { Fixture.login($0) }])
        }
        let ledger = try Ledger(path: dir.path)
        let next = try appendAndApply(ledger, [Fixture.login(3)])
        #expect(next.map(\.seq) == [3])
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("a torn last record (cut short: its end never written) is dropped; the records before it are moved in")
    func tornRecordEndsTheJournal() throws {
        let dir = TemporaryDirectory()
        try twoJournalRecords(dir, applied: false)
        // A write cut short: the last record's final bytes, and its terminator, never reached the disk.
        let url = URL(fileURLWithPath: journalPath(dir))
        var data = try Data(contentsOf: url)
        let last = try #require(data.lastIndex { $0 != 0 })
        data.replaceSubrange(last - 30...last, with: Data(count: 31))
        try data.write(to: url)
        #expect(try Ledger.completeJournal(path: dir.path) == 4)
        let ledger = try Fixture.readOnly(dir)
        #expect(try ledger.treeHead().size == 4)
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("a last record written whole but damaged since is refused, not dropped as if torn; recover --accept-loss continues without it")
    func damagedLastRecordIsRefused() throws {
        let dir = TemporaryDirectory()
        try twoJournalRecords(dir, applied: false)
        // One flipped byte inside the last record: its end and terminator are intact.
        let data = try flipJournalBit(dir) { try #require($0.lastIndex { $0 != 0 }) - 40 }
        #expect(throws: LedgerError.self) { try Ledger.completeJournal(path: dir.path) }
        let ledger = try Ledger(path: dir.path)
        let error = try #require(throws: LedgerError.self) { try LedgerWriter(ledger: ledger) }
        #expect(error.code == .corrupt && error.message.contains("written whole") && error.message.contains("recover --accept-loss"), "\(error)")
        #expect(try ledger.treeHead().size == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: journalPath(dir))) == data)
        let report = try ledger.verifyIntegrity()
        #expect(!report.isSound && report.problems.contains { $0.code == .corrupt })

        var options = LedgerWriter.Options()
        options.acceptingJournalLoss = true
        let writer = try LedgerWriter(ledger: ledger, options: options)
        #expect(writer.loss?.code == .corrupt)
        try writer.close()
        let kept = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("journal.damaged-") }
        #expect(kept.count == 1)  // the damaged journal is kept as evidence
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("a record damaged with later records after it stops every writer instead of losing acknowledged entries")
    func damagedMiddleRecordIsRefused() throws {
        let dir = TemporaryDirectory()
        try twoJournalRecords(dir, applied: false)
        // Damage one byte inside the first record's payload: the second record, acknowledged after
        // it, still checks out.
        let data = try flipJournalBit(dir) { _ in Journal.headerSize + 40 }

        #expect(throws: LedgerError.self) { try Ledger.completeJournal(path: dir.path) }
        let ledger = try Ledger(path: dir.path)
        let error = try #require(throws: LedgerError.self) { try LedgerWriter(ledger: ledger) }  // a daemon's start
        #expect(error.code == .corrupt && error.message.contains("damaged"))
        #expect(try ledger.treeHead().size == 0)  // nothing was written over the damage
        let report = try ledger.verifyIntegrity()
        #expect(!report.isSound && report.problems.contains { $0.code == .corrupt })
        #expect(try Data(contentsOf: URL(fileURLWithPath: journalPath(dir))) == data)
    }

    @Test("damage to journal records the store already holds does not stop the daemon")
    func damageToAppliedRecordsIsHarmless() throws {
        let dir = TemporaryDirectory()
        try twoJournalRecords(dir, applied: true)
        try flipJournalBit(dir) { _ in Journal.headerSize + 40 }

        let ledger = try Ledger(path: dir.path)
        let next = try ledger.append([Fixture.login(6)])
        #expect(try Fixture.receipts(next).map(\.seq) == [6])
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("writing alternates between the journal's two regions, reusing one only once the store holds it; a large batch spans records")
    func regionsAlternate() throws {
        let dir = TemporaryDirectory()
        let stored: UInt64
        do {
            let ledger = try Fixture.create(dir)
            try smallJournal(dir)
            try Fixture.killedWriter(ledger) { writer in
                // The store applies every 7 batches: writing still moves on without waiting for it.
                try journalOneByOne(writer, 0..<500, every: 7, unapplied: 5)
                // A batch larger than the record limit (a quarter of the journal: 16 KiB here) goes in two records.
                let large = try Fixture.journal(writer, (500..<550).map { Fixture.login($0) })
                #expect(try Fixture.receipts(large).map(\.seq) == Array(500..<550))
            }
            stored = try ledger.treeHead().size
        }
        let journaled = try journaledSeqs(dir)
        let first = try #require(journaled.first)
        // The journal holds one unbroken run ending at the last acknowledged entry, and every entry
        // the store does not hold is in it.
        #expect(journaled == Array(first...549))
        #expect(first > 0 && first <= stored && stored < 500)
        #expect(try Ledger.completeJournal(path: dir.path) == 550 - stored)
        let report = try Fixture.readOnly(dir).verifyIntegrity()
        #expect(report.isSound && report.size == 550, "\(report.problems)")
    }

    @Test("an event larger than the journal's region is committed to the store before it is answered")
    func eventLargerThanTheJournal() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        try smallJournal(dir)
        let writer = try Fixture.lazyWriter(ledger)
        var huge = Fixture.login(60)
        huge.attributes["user_agent"] = .string(String(repeating: "x", count: 40_000))
        // 60 events fill more than one record (a quarter of the journal) before the large one.
        let events = (0..<60).map { Fixture.login($0) } + [huge, Fixture.login(61)]
        let outcome = try Fixture.journal(writer, events)
        #expect(try Fixture.receipts(outcome).map(\.seq) == Array(0..<62))
        #expect(try ledger.treeHead().size == 61)  // up to the large one in the store; 61 is journaled
        try writer.flushToStore()
        #expect(try ledger.treeHead().size == 62)
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("a journal that does not continue the store (an older copy restored, another store's journal) stops every writer")
    func foreignOrGappedJournalIsRefused() throws {
        let dir = TemporaryDirectory()
        let backup = TemporaryDirectory()
        do {
            let ledger = try Fixture.create(dir)
            try smallJournal(dir)
            _ = try appendAndApply(ledger, [Fixture.login(0)])
        }
        try FileManager.default.copyItem(atPath: dir.path + "/data.mdb", toPath: backup.path + "/data.mdb")
        do {
            let ledger = try Ledger(path: dir.path)
            try Fixture.killedWriter(ledger) { writer in
                try journalOneByOne(writer, 1..<300, every: 1, unapplied: 1)  // 299 never applied
            }
        }
        // Writing has moved between the journal's regions: the region holding entries 1… was reused.
        let journaled = try journaledSeqs(dir)
        let first = try #require(journaled.first)
        #expect(first > 1 && journaled == Array(first...299))
        // The store goes back to the copy holding entry 0 only; the journal starts later.
        try FileManager.default.removeItem(atPath: dir.path + "/data.mdb")
        try FileManager.default.copyItem(atPath: backup.path + "/data.mdb", toPath: dir.path + "/data.mdb")
        let restored = try Ledger(path: dir.path)
        let gap = #expect(throws: LedgerError.self) { try restored.append([Fixture.login(9)]) }
        #expect(gap?.code == .corrupt && gap?.message.contains("missing") == true, "\(String(describing: gap))")
        #expect(try restored.treeHead().size == 1)
        #expect(try restored.verifyIntegrity().problems.map(\.code) == [.chainBroken])

        // Another store's journal: at the journal's first seq it breaks that store's chain; below
        // the store's head it contradicts the entries the store holds.
        for (size, expected) in [(Int(first), LedgerError.Code.chainBroken), (Int(first) + 1, .corrupt)] {
            let other = TemporaryDirectory()
            do {
                let ledger = try Fixture.create(other)
                _ = try ledger.append((0..<size).map { Fixture.login(100 + $0) })
            }
            try FileManager.default.removeItem(atPath: journalPath(other))  // the other store's own, empty
            try FileManager.default.copyItem(atPath: journalPath(dir), toPath: journalPath(other))
            let foreign = try Ledger(path: other.path)
            let refusal = #expect(throws: LedgerError.self) { try foreign.append([Fixture.login(200)]) }
            #expect(refusal?.code == expected, "\(String(describing: refusal))")
            #expect(try foreign.treeHead().size == UInt64(size))
            #expect(try foreign.verifyIntegrity().problems.map(\.code) == [expected])
        }
    }

    @Test("applying journaled entries that outgrow the map: the transaction is rerun whole, and retries are answered before and after")
    func applyOutgrowingTheMap() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir, mapSize: 1 << 16)
        let writer = try Fixture.lazyWriter(ledger)
        var answered: [Receipt] = []
        for batch in 0..<40 {
            answered += try Fixture.receipts(Fixture.journal(writer, (batch * 25..<(batch + 1) * 25).map { Fixture.login($0) }))
        }
        #expect(answered.map(\.seq) == Array(0..<1000))
        // A retry of a journaled, unapplied id gets the original receipt from the journal.
        let early = try Fixture.receipts(Fixture.journal(writer, [Fixture.login(7)]))
        #expect(early.count == 1 && early[0].duplicate && early[0].seq == 7 && early[0].leafHash == answered[7].leafHash && early[0].header == answered[7].header)
        try writer.flushToStore()
        for receipt in answered.filter({ $0.seq % 97 == 0 }) {
            #expect(try ledger.entry(receipt.seq).headerBytes == receipt.header)
        }
        // After applying, from the store; a reused id with another event is a conflict.
        let late = try Fixture.journal(writer, [Fixture.login(8), Fixture.login(9999, id: "req-9")])
        let again = try late[0].get()
        #expect(again.duplicate && again.seq == 8 && again.leafHash == answered[8].leafHash && again.header == answered[8].header)
        #expect((try? late[1].get()) == nil)
        #expect(writer.size == 1000)
        #expect(try ledger.verifyIntegrity().isSound)
    }
}
