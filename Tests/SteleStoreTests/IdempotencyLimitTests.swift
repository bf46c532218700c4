import SteleCore
@testable import SteleStore
import SteleTestSupport
import Testing

@Suite("Idempotency keys held in memory are bounded")
struct IdempotencyLimitTests {
    private func open(_ dir: TemporaryDirectory, maximumKeys: Int, create: Bool = false) throws -> LedgerWriter {
        var options = Ledger.Options()
        if create { options.createWithOrigin = "stele.test/log" }
        var writerOptions = LedgerWriter.Options()
        writerOptions.idempotencyMaximumKeys = maximumKeys
        return try LedgerWriter(ledger: Ledger(path: dir.path, options: options), options: writerOptions)
    }

    private func append(_ writer: LedgerWriter, _ events: [Event]) throws -> [Receipt] {
        try Fixture.receipts(writer.append(events))
    }

    @Test("past idempotency_max_keys the oldest keys are dropped and counted; the newest still answer retries, also after a restart")
    func oldestKeysDropped() throws {
        let dir = TemporaryDirectory()
        do {
            let writer = try open(dir, maximumKeys: 3, create: true)
            for n in 0..<5 { _ = try append(writer, [Fixture.login(n)]) }
            #expect(writer.idempotencyKeysEvicted == 2)
            let newest = try append(writer, [Fixture.login(4)])
            #expect(newest[0].duplicate && newest[0].seq == 4)
            let oldest = try append(writer, [Fixture.login(0)])  // dropped: appended anew
            #expect(!oldest[0].duplicate && oldest[0].seq == 5)
            try writer.close()
        }
        // A restart loads at most the last 3 entries' keys (seqs 3, 4, 5).
        let writer = try open(dir, maximumKeys: 3)
        #expect(try append(writer, [Fixture.login(3)])[0].duplicate)
        #expect(try !append(writer, [Fixture.login(2)])[0].duplicate)
        #expect(try writer.ledger.verifyIntegrity().isSound)
    }
}
