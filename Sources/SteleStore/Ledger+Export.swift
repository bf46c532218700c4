import SteleConsent
public import SteleCore
public import SteleEvidence
import SteleCrypto
import SteleLMDB

/// The records of evidence bundles (`Specs/evidence-bundle.md`): each export reads one snapshot and
/// proves every record in the tree of the checkpoint it will carry.
extension Ledger {
    /// The records answering an export `query`, proven in the tree of `treeSize` entries: the
    /// subject's entries the indexes hold, the entries an erasure receipt of the subject names
    /// (as `redacted` records), and the receipts that explain every redaction.
    /// Without `proofs`, records carry no proof (to learn which entries a bundle needs).
    public func exportRecords(_ query: BundleQuery, treeSize: UInt64, proofs: Bool = true) throws -> [BundleRecord] {
        try read { txn in
            try requireCovered(treeSize, txn: txn)
            let low = try query.since.map { try firstSeq(atOrAfter: $0, txn: txn) } ?? 0
            let high = min(try query.until.map { try firstSeq(atOrAfter: $0, txn: txn) } ?? treeSize, treeSize)
            var chosen: [UInt64: (StoredEntry, BundleRecord.Role)] = [:]
            let hash = subjectHash(query.subject)
            try index.seqs(txn, role: .subject, hash: hash, low: low, high: high, size: try head(txn).size) { seq in
                let entry = try entry(seq, txn: txn)
                let values = entry.body.fields
                guard values["subject"]?.value?.stringValue == query.subject, query.matches(kind: entry.header.kind) else { return true }
                if let actor = query.actor, values["actor"]?.value?.stringValue != actor { return true }
                chosen[seq] = (entry, .match)
                return true
            }
            // Erased entries of the subject: named by its erasure receipts, kept as headers.
            if query.actor == nil {
                try forEachEntry(ofKind: "ledger.erased", txn: txn, size: treeSize) { receipt in
                    guard receipt.body.fields["subject_hash"]?.value?.stringValue == hash.hex,
                        let seqs = receipt.body.fields["erased"]?.value.flatMap(SeqSet.seqs)
                    else { return }
                    for seq in seqs where seq >= low && seq < high && chosen[seq] == nil {
                        let entry = try entry(seq, txn: txn)
                        if query.matches(kind: entry.header.kind) { chosen[seq] = (entry, .redacted) }
                    }
                }
            }
            return try records(chosen, query: query, treeSize: treeSize, proofs: proofs, txn: txn)
        }
    }

    /// The records of a consent receipt: the subject's entries that decide `purpose` at `at`
    /// (`Specs/evidence-bundle.md` §6) and the notices they cite, proven in the tree of `treeSize`.
    public func consentReceiptRecords(_ query: BundleQuery, treeSize: UInt64, proofs: Bool = true) throws -> [BundleRecord] {
        guard let purpose = query.purpose, let at = query.at else { throw LedgerError(.invalidEvent, "a consent receipt needs a purpose and a moment") }
        guard let table = consentTable else {
            throw LedgerError(.notALedger, "this store was written before Stele kept consent state: start the daemon (or any writing command) on it once to build it")
        }
        return try read { txn in
            try requireCovered(treeSize, txn: txn)
            let high = min(try firstSeq(atOrAfter: at.adding(microseconds: 1), txn: txn), treeSize)
            var chosen: [UInt64: (StoredEntry, BundleRecord.Role)] = [:]
            var cited = Set<String>()
            for seq in try table.history(subjectHash(query.subject), below: high, txn: txn) {
                let entry = try entry(seq, txn: txn)
                let kind = entry.header.kind
                let values = entry.body.fields
                guard values["subject"]?.value?.stringValue == query.subject else { continue }
                let decides = kind == "subject.age_asserted" || kind.hasPrefix("account.")
                    || ((kind.hasPrefix("consent.") || kind.hasPrefix("rights.")) && (values["purpose"]?.value?.stringValue).map { $0 == purpose } ?? kind.hasPrefix("rights."))
                guard decides else { continue }
                if let notice = values["notice"]?.value?.stringValue { cited.insert(notice) }
                chosen[seq] = (entry, .match)
            }
            for notice in try table.notices(txn: txn).notices where cited.contains(notice.id) && notice.seq < high {
                chosen[notice.seq] = (try entry(notice.seq, txn: txn), .match)
            }
            return try records(chosen, query: query, treeSize: treeSize, proofs: proofs, txn: txn)
        }
    }

    private func requireCovered(_ treeSize: UInt64, txn: Transaction) throws {
        let size = try head(txn).size
        guard treeSize <= size else { throw LedgerError(.outOfRange, "the checkpoint's size \(treeSize) exceeds the log's \(size) entries") }
    }

    /// `chosen` as records, withheld fields redacted, each redaction explained by receipts (added
    /// as records), each record proven in the tree of `treeSize`.
    private func records(
        _ chosen: [UInt64: (StoredEntry, BundleRecord.Role)], query: BundleQuery, treeSize: UInt64, proofs: Bool, txn: Transaction
    ) throws -> [BundleRecord] {
        let sha = SHA256()
        let needing = Set(chosen.filter { !$0.value.0.body.redactedNames.isEmpty || $0.value.1 == .redacted }.keys)
        var explained: [UInt64: [UInt64]] = [:]
        var receipts: [UInt64: StoredEntry] = [:]
        if !needing.isEmpty {
            for (kind, member) in [("ledger.pruned", "seqs"), ("ledger.erased", "erased")] {
                try forEachEntry(ofKind: kind, txn: txn, size: treeSize) { receipt in
                    guard let seqs = receipt.body.fields[member]?.value.flatMap(SeqSet.seqs) else { return }
                    let covered = seqs.filter { needing.contains($0) && $0 < receipt.seq }
                    guard !covered.isEmpty else { return }
                    for seq in covered { explained[seq, default: []].append(receipt.seq) }
                    receipts[receipt.seq] = receipt
                }
            }
        }
        var all = chosen
        for (seq, receipt) in receipts where all[seq] == nil { all[seq] = (receipt, .receipt) }
        let tree = tree(txn, size: try head(txn).size)
        return try all.keys.sorted().map { seq in
            let (entry, role) = all[seq]!
            let withheld = query.withheldFields(entry.body)
            return BundleRecord(
                seq: seq, header: entry.headerBytes, role: role, body: entry.body.redacting(withheld, using: sha), withheld: withheld.sorted(),
                explainedBy: explained[seq] ?? [], proof: proofs ? try proofCall { try tree.inclusionProof(index: seq, size: treeSize) } : [])
        }
    }

    /// The log's key rotations handed over before the checkpoint of `treeSize` (whose checkpoint of
    /// seq + 1 is smaller), each with what proves it to a holder of the key it
    /// replaced (`Specs/evidence-bundle.md` §5a): the entry, the checkpoint of size seq + 1 the old
    /// key signed, the entry's inclusion proof in that tree, and the consistency proof from it to
    /// `treeSize`.
    public func keyRotationEvidence(treeSize: UInt64) throws -> [JSONValue] {
        try read { txn in
            try requireCovered(treeSize, txn: txn)
            let tree = tree(txn, size: try head(txn).size)
            return try keyRotations(txn: txn, size: treeSize).compactMap { rotation -> JSONValue? in
                let size = rotation.seq + 1
                guard size < treeSize, let note = try txn.get(databases.checkpoints, key: LedgerKeys.u64(size)) else { return nil }
                let entry = try entry(rotation.seq, txn: txn)
                let inclusion = try proofCall { try tree.inclusionProof(index: rotation.seq, size: size) }
                let consistency = try proofCall { try tree.consistencyProof(from: size, to: treeSize) }
                return .object([
                    "seq": .integer(Int64(rotation.seq)), "header": .string(entry.headerText), "body": entry.body.jsonValue,
                    "checkpoint": .string(String(decoding: note, as: UTF8.self)),
                    "inclusion": .array(inclusion.map { .string(Base64.encode($0.bytes)) }),
                    "consistency": .array(consistency.map { .string(Base64.encode($0.bytes)) }),
                ])
            }
        }
    }
}
