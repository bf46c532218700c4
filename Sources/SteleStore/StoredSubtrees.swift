import SteleCore
import SteleCrypto
import SteleLMDB

/// The ledger's tree database seen as a ``MerkleSubtreeSource``, within one read snapshot.
struct StoredSubtrees: MerkleSubtreeSource {
    let txn: Transaction
    let tree: Database

    func subtreeHash(level: Int, index: UInt64) throws -> SHA256Digest {
        let position = MerkleSubtrees.storageIndex(level: level, index: index)
        guard let raw = try txn.get(tree, key: LedgerKeys.u64(position)), let digest = SHA256Digest(bytes: raw) else {
            throw LedgerError(.corrupt, "the stored Merkle subtree (level \(level), index \(index)) is missing or damaged")
        }
        return digest
    }
}
