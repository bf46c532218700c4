import SteleCore
import SteleCrypto
import SteleStore
import SteleTestSupport
import Testing

@Suite("Proofs from the store equal the pure Merkle code")
struct LedgerProofTests {
    /// Appends `count` entries in batches of varying size and returns the leaf hashes.
    static func fill(_ ledger: Ledger, count: Int) throws -> [SHA256Digest] {
        var leaves: [SHA256Digest] = []
        var n = 0
        var batch = 1
        while n < count {
            let size = min(batch, count - n)
            leaves += try Fixture.receipts(ledger.append((n..<n + size).map { Fixture.login($0) })).map(\.leafHash)
            n += size
            batch = batch % 37 + 1
        }
        return leaves
    }

    @Test("every tree size up to 300: roots, inclusion and consistency proofs equal MemoryMerkleTree's")
    func everySmallSize() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        let leaves = try Self.fill(ledger, count: 300)
        let reference = MemoryMerkleTree(leafHashes: leaves).view()
        let verifier = MerkleVerifier()
        for n in UInt64(1)...300 {
            let root = try reference.rootHash(size: n)
            #expect(try ledger.rootHash(size: n) == root)
            for m in Set([0, n / 3, n / 2, n - 1]) {
                let proof = try ledger.inclusionProof(seq: m, size: n)
                #expect(proof.proof == (try reference.inclusionProof(index: m, size: n)))
                #expect(proof.leaf == leaves[Int(m)])
                try verifier.verifyInclusion(leafHash: proof.leaf, index: m, size: n, proof: proof.proof, root: root)
            }
            for old in Set([1, n / 2, n - 1, n].filter { $0 >= 1 }) {
                let proof = try ledger.consistencyProof(from: old, to: n)
                #expect(proof.proof == (try reference.consistencyProof(from: old, to: n)))
                try verifier.verifyConsistency(
                    oldSize: old, oldRoot: proof.oldRoot, newSize: n, newRoot: root, proof: proof.proof)
            }
        }
    }

    @Test("random sizes in a large store: proofs verify against roots rebuilt from the leaves")
    func largeStoreRandomSizes() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir, mapSize: 1 << 30)
        let total = 20_000
        var leaves: [SHA256Digest] = []
        for start in stride(from: 0, to: total, by: 1000) {
            leaves += try Fixture.receipts(ledger.append((start..<start + 1000).map { Fixture.login($0) })).map(\.leafHash)
        }
        let reference = MemoryMerkleTree(leafHashes: leaves).view()
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let n = UInt64.random(in: 1...UInt64(total), using: &generator)
            let m = UInt64.random(in: 0..<n, using: &generator)
            #expect(try ledger.rootHash(size: n) == (try reference.rootHash(size: n)))
            #expect(try ledger.inclusionProof(seq: m, size: n).proof == (try reference.inclusionProof(index: m, size: n)))
            let old = UInt64.random(in: 1...n, using: &generator)
            #expect(try ledger.consistencyProof(from: old, to: n).proof == (try reference.consistencyProof(from: old, to: n)))
        }
    }

    @Test("requests beyond the log are typed errors")
    func outOfRange() throws {
        let dir = TemporaryDirectory()
        let ledger = try Fixture.create(dir)
        _ = try Self.fill(ledger, count: 5)
        #expect(throws: LedgerError.self) { try ledger.inclusionProof(seq: 5) }
        #expect(throws: LedgerError.self) { try ledger.inclusionProof(seq: 1, size: 6) }
        #expect(throws: LedgerError.self) { try ledger.consistencyProof(from: 4, to: 3) }
        #expect(throws: LedgerError.self) { try ledger.rootHash(size: 6) }
    }
}
