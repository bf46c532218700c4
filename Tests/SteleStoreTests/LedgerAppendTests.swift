import Foundation
import SteleCore
import SteleCrypto
import SteleLMDB
import SteleStore
import SteleTestSupport
import Testing

@Suite("Ledger appends: chaining, atomicity, idempotency, durability")
struct LedgerAppendTests {
    @Test("appended entries chain, carry strictly increasing ts, and read back as written")
    func appendsChainAndReadBack() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        let receipts = try Fixture.receipts(ledger.append((0..<10).map { Fixture.login($0) }))
        #expect(receipts.map(\.seq) == Array(0..<10))
        var prev = SHA256Digest.zero
        var lastTime: Timestamp?
        for receipt in receipts {
            let entry = try ledger.entry(receipt.seq)
            #expect(entry.headerBytes == receipt.header)
            #expect(entry.header.prev == prev)
            if let lastTime { #expect(entry.header.timestamp > lastTime) }
            #expect(entry.header.retainUntil == entry.header.timestamp.adding(microseconds: 365 * 86_400_000_000))
            #expect(entry.body.fields["subject"]?.value == .string("user:\(receipt.seq)"))
            #expect(MerkleHasher().leafHash(entry.headerBytes) == receipt.leafHash)
            prev = receipt.leafHash
            lastTime = entry.header.timestamp
        }
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test("a clock that goes backwards still yields strictly increasing ts")
    func backwardsClock() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        _ = try ledger.append([Fixture.login(0)], now: { Timestamp(microseconds: 2_000_000_000_000_000) })
        _ = try ledger.append([Fixture.login(1), Fixture.login(2)], now: { Timestamp(microseconds: 1_000_000_000_000_000) })
        let times = try ledger.entries().map(\.header.timestamp.microseconds)
        #expect(times == [2_000_000_000_000_000, 2_000_000_000_000_001, 2_000_000_000_000_002])
    }

    @Test("a failure in the middle of a batch leaves no trace, and the chain continues after it")
    func batchFailureLeavesNoTrace() throws {
        let dir = TemporaryDirectory()
        do {
            let ledger = try Fixture.create(dir)
            _ = try ledger.append([Fixture.login(0), Fixture.login(1)])
        }
        // Remove the stored subtree (level 1, index 0) from the file. The next batch writes entry 2
        // (which needs nothing old), then fails on entry 3, whose parent needs that subtree.
        let treeKey = withUnsafeBytes(of: MerkleSubtrees.storageIndex(level: 1, index: 0).bigEndian) { Array($0) }
        var removed: [UInt8]?
        do {
            let environment = try Environment(path: dir.path, maxDatabases: 16)
            let tree = try environment.openDatabase("tree", create: false)
            try environment.withWriteTransaction { txn in
                removed = try txn.get(tree, key: treeKey)
                try txn.delete(tree, key: treeKey)
            }
        }
        let ledger = try Ledger(path: dir.path)
        let before = try ledger.size
        let error = #expect(throws: LedgerError.self) { try ledger.append([Fixture.login(2), Fixture.login(3), Fixture.login(4)]) }
        #expect(error?.code == .corrupt)
        #expect(try ledger.size == before)
        #expect(throws: LedgerError.self) { try ledger.entry(2) }
        #expect(try ledger.entries(LedgerQuery(subject: "user:2")).isEmpty)
        // Put the subtree back: the same events now append as new entries 2, 3 and 4 (their ids
        // were not recorded by the failed batch).
        do {
            let environment = try Environment(path: dir.path, maxDatabases: 16)
            let tree = try environment.openDatabase("tree", create: false)
            try environment.withWriteTransaction { txn in try txn.put(tree, key: treeKey, value: removed!) }
        }
        let reopened = try Ledger(path: dir.path)
        let receipts = try Fixture.receipts(reopened.append([Fixture.login(2), Fixture.login(3), Fixture.login(4)]))
        #expect(receipts.map(\.seq) == [2, 3, 4])
        #expect(receipts.allSatisfy { !$0.duplicate })
        #expect(try reopened.verifyIntegrity().isSound)
    }

    @Test("a retried id returns the original receipt; a reused id with another event is a conflict")
    func idempotentRetry() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        let first = try ledger.append([Fixture.login(1, id: "abc")])[0].get()
        let again = try ledger.append([Fixture.login(1, id: "abc")])[0].get()
        #expect(again.seq == first.seq)
        #expect(again.leafHash == first.leafHash)
        #expect(again.duplicate)
        let conflict = try ledger.append([Fixture.login(2, id: "abc")])[0]
        #expect(throws: LedgerError.self) { try conflict.get() }
        // Same id from another source is a different key.
        var other = Fixture.login(1, id: "abc")
        other.source = "mailer"
        #expect(try ledger.append([other])[0].get().seq == 1)
        // Duplicates within one batch collapse too.
        let batch = try Fixture.receipts(ledger.append([Fixture.login(5, id: "x"), Fixture.login(5, id: "x")]))
        #expect(batch[0].seq == batch[1].seq)
        #expect(try ledger.size == 3)
    }

    @Test("a retried id is compared with its original by value: any changed, added or missing field is a conflict; a field redacted since matches anything")
    func retryComparedByValue() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        let original = Fixture.login(1, id: "abc")
        _ = try ledger.append([original])[0].get()
        var changedValue = original
        changedValue.attributes["ip"] = .string("198.51.100.1")
        var addedField = original
        addedField.attributes["method"] = .string("password")
        var missingField = original
        missingField.attributes["user_agent"] = nil
        var addedOccurred = original
        addedOccurred.occurred = Timestamp(microseconds: 1_800_000_000_000_000)
        for variant in [changedValue, addedField, missingField, addedOccurred] {
            #expect(throws: LedgerError.self) { try ledger.append([variant])[0].get() }
        }
        #expect(try ledger.append([original])[0].get().duplicate)
        // After the ip is redacted, a retry carrying any ip still matches: the stored value is gone.
        _ = try ledger.redact(seq: 0, fields: ["ip"])
        #expect(try ledger.append([changedValue])[0].get().duplicate)
        #expect(throws: LedgerError.self) { try ledger.append([addedField])[0].get() }
        #expect(try ledger.size == 1)
    }

    @Test("idempotency keys expire after the window")
    func idempotencyWindow() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir, idempotencyWindow: 1_000_000)
        let t0 = Timestamp(microseconds: 1_800_000_000_000_000)
        _ = try ledger.append([Fixture.login(1, id: "w")], now: { t0 })
        #expect(try ledger.append([Fixture.login(1, id: "w")], now: { t0.adding(microseconds: 500_000) })[0].get().duplicate)
        #expect(try !ledger.append([Fixture.login(1, id: "w")], now: { t0.adding(microseconds: 2_000_000) })[0].get().duplicate)
    }

    @Test("the raw client id and identifiers never appear as index keys on disk")
    func rawIdentifiersNotInIndexes() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        _ = try ledger.append([Fixture.login(1, id: "needle-id-7f3a")])
        let data = try Data(contentsOf: URL(fileURLWithPath: dir.appending("data.mdb")))
        // The id appears once: inside the body record (salted commitment input), never as a key.
        let occurrences = data.ranges(of: Data("needle-id-7f3a".utf8))
        #expect(occurrences.count == 1)
    }

    @Test("the chain continues across close and reopen")
    func chainContinuesAcrossReopen() throws {
        let dir = TemporaryDirectory()
        do {
            let ledger = try Fixture.create(dir)
            _ = try ledger.append((0..<5).map { Fixture.login($0) })
        }
        let reopened = try Ledger(path: dir.path)
        #expect(reopened.origin == "stele.test/log")
        let receipts = try Fixture.receipts(reopened.append((5..<8).map { Fixture.login($0) }))
        #expect(receipts.first?.seq == 5)
        #expect(try reopened.entry(5).header.prev == MerkleHasher().leafHash(try reopened.entry(4).headerBytes))
        #expect(try reopened.verifyIntegrity().isSound)
    }

    @Test("opening a directory without a ledger is a clear error")
    func notALedger() throws {
        let dir = TemporaryDirectory()
        let error = #expect(throws: LedgerError.self) { try Ledger(path: dir.path) }
        #expect(error?.code == .notALedger)
        #expect(throws: LedgerError.self) { try Fixture.readOnly(dir) }
    }

    @Test("the map grows as the store fills")
    func mapGrows() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir, mapSize: 1 << 16)
        for batch in 0..<40 {
            _ = try ledger.append((0..<50).map { Fixture.login(batch * 50 + $0) })
        }
        // A large batch (prepared on two threads while it is appended) that outgrows the map mid-transaction.
        let used = ledger.usedBytes
        _ = try ledger.append((2000..<4000).map { Fixture.login($0) })
        #expect(ledger.usedBytes > used * 3 / 2)
        #expect(try ledger.size == 4000)
        #expect(ledger.usedBytes > 1 << 16)
        #expect(try ledger.verifyIntegrity().isSound)
    }

    @Test(
        "a full disk is a clear error and writes nothing",
        .enabled(if: SmallDisk.isAvailable, "needs to mount a small tmpfs (root)"))
    func fullDisk() throws {
        let dir = TemporaryDirectory()
        try #require(SmallDisk.mount(size: "256k", on: dir.path), "could not mount a tmpfs at \(dir.path)")
        defer { SmallDisk.unmount(dir.path) }
        let ledger = try Fixture.create(dir, mapSize: 1 << 22)
        var committed: UInt64 = 0
        var failure: LedgerError?
        for batch in 0..<200 {
            do {
                _ = try ledger.append((0..<20).map { Fixture.login(batch * 20 + $0) })
                committed += 20
            } catch let error as LedgerError {
                failure = error
                break
            }
        }
        #expect(failure?.code == .storageFull, "\(String(describing: failure))")
        #expect(try ledger.size == committed)
        #expect(try ledger.verifyIntegrity().isSound)
    }
}

@Suite("Large batches prepared on two threads")
struct LedgerPipelineTests {
    @Test("an invalid event deep in a large batch fails the whole call and appends nothing; a valid one appends in order")
    func invalidEventInPipelinedBatch() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        _ = try ledger.append([Fixture.login(0)])
        var events = (1...500).map { Fixture.login($0) }
        events[377].attributes["Bad Name"] = .string("x")
        let error = #expect(throws: LedgerError.self) { try ledger.append(events) }
        #expect(error?.code == .invalidEvent)
        #expect(try ledger.size == 1)
        events[377].attributes["Bad Name"] = nil
        let receipts = try Fixture.receipts(ledger.append(events))
        #expect(receipts.map(\.seq) == Array(1...500))
        #expect(try ledger.entry(378).body.fields["id"]?.value == .string("req-378"))
        #expect(try ledger.verifyIntegrity().isSound)
    }
}

@Suite("Checkpoints signed by the writer")
struct LedgerCheckpointTests {
    @Test("the writer signs the committed tree, records the note in the store and writes its file outside it")
    func writerSignsCheckpoints() throws {
        let dir = TemporaryDirectory()
        let files = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        let signer = try NoteSigner(name: ledger.origin, privateKey: Ed25519PrivateKey())
        let writer = try LedgerWriter(ledger: ledger)
        writer.publish(CheckpointPublisher(
            signer: signer, directory: CheckpointDirectory(path: files.path), signedSize: 0, logger: LedgerWriter.Options().logger))
        _ = try writer.append((0..<5).map { Fixture.login($0) })
        try writer.close()  // signs the final tree
        let head = try ledger.treeHead()
        let note = try #require(try ledger.latestCheckpoint())
        let checkpoint = try Checkpoint.open(Array(note.utf8), trusting: [signer.verifierKey], origin: ledger.origin)
        #expect(checkpoint.size == 5 && checkpoint.rootHash == head.root)
        #expect(try CheckpointDirectory(path: files.path).newest()?.bytes == Array(note.utf8))
        // The acknowledged mark beside it names the log's size and last leaf.
        let mark = try #require(try CheckpointDirectory(path: files.path).acknowledged())
        let leaf = MerkleHasher().leafHash(try ledger.entry(4).headerBytes)
        #expect(mark.size == 5 && mark.origin == ledger.origin && mark.leaf == leaf)
        #expect(try ledger.verifyIntegrity().isSound)
    }
}
