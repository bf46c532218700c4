import SteleCore
@testable import SteleStore
import SteleTestSupport
import Testing

@Suite("Idempotency keys held in memory are bounded")
struct IdempotencyLimitTests {
    private func open(_ dir: TemporaryDirectory, maximumKeys: Int, create: Bool = false) throws -> Ledger {
        var options = Ledger.Options()
        if create { options.createWithOrigin = "stele.test/log" }
        options.idempotencyMaximumKeys = maximumKeys
        return try Ledger(path: dir.path, options: options)
    }

    /// Appends `events` through a journal writer and applies them, as the daemon does.
    private func append(_ ledger: Ledger, _ writer: JournalWriter, _ events: [Event]) throws -> [Receipt] {
        let outcome = try writer.append(prepared: ledger.prepare(events))
        try ledger.apply(outcome.entries)
        writer.markApplied(size: writer.size)
        return try Fixture.receipts(outcome.results)
    }

    @Test("past idempotency_max_keys the oldest keys are dropped and counted; the newest still answer retries, also after a restart")
    func oldestKeysDropped() throws {
        let dir = TemporaryDirectory()
        do {
            let ledger = try open(dir, maximumKeys: 3, create: true)
            try ledger.adoptJournal()
            try ledger.apply([])
            let writer = try JournalWriter(ledger: ledger)
            for n in 0..<5 { _ = try append(ledger, writer, [Fixture.login(n)]) }
            #expect(writer.idempotencyKeysEvicted == 2)
            let newest = try append(ledger, writer, [Fixture.login(4)])
            #expect(newest[0].duplicate && newest[0].seq == 4)
            let oldest = try append(ledger, writer, [Fixture.login(0)])  // dropped: appended anew
            #expect(!oldest[0].duplicate && oldest[0].seq == 5)
        }
        // A restart loads at most the last 3 entries' keys (seqs 3, 4, 5).
        let ledger = try open(dir, maximumKeys: 3)
        try ledger.adoptJournal()
        try ledger.apply([])
        let writer = try JournalWriter(ledger: ledger)
        #expect(try append(ledger, writer, [Fixture.login(3)])[0].duplicate)
        #expect(try !append(ledger, writer, [Fixture.login(2)])[0].duplicate)
        #expect(try ledger.verifyIntegrity().isSound)
    }
}
