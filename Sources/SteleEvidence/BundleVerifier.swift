public import SteleCore
import SteleCrypto

/// One failed check of a bundle (`Specs/evidence-bundle.md` §7).
public struct BundleFinding: Hashable, Sendable {
    public var code: String
    public var file: String
    public var seq: UInt64?
    public var message: String

    public var json: JSONValue {
        var members: [String: JSONValue] = ["code": .string(code), "file": .string(file), "message": .string(message)]
        if let seq { members["seq"] = .integer(Int64(seq)) }
        return .object(members)
    }
}

/// What verifying a bundle found.
public struct BundleReport: Sendable {
    public var findings: [BundleFinding] = []
    public var type: String?
    public var origin: String?
    public var treeSize: UInt64?
    public var records = 0
    /// True when the signature was checked against a key the caller pinned, not the bundle's own.
    public var keyPinned = false
    public var sound: Bool { findings.isEmpty }

    mutating func add(_ code: String, _ file: String, _ seq: UInt64?, _ message: String) {
        findings.append(BundleFinding(code: code, file: file, seq: seq, message: message))
    }

    mutating func add(_ code: String, _ file: String, _ message: String) {
        add(code, file, nil, message)
    }

    public var json: JSONValue {
        .object([
            "sound": .bool(sound), "type": type.map(JSONValue.string) ?? .null, "origin": origin.map(JSONValue.string) ?? .null,
            "tree_size": treeSize.map { .integer(Int64($0)) } ?? .null, "records": .integer(Int64(records)),
            "key_pinned": .bool(keyPinned), "findings": .array(findings.map(\.json)),
        ])
    }
}

/// Checks a bundle's files against its manifest, its checkpoint and a pinned key: every check of
/// `Specs/evidence-bundle.md` §7, each failure reported with its file and seq.
public struct BundleVerifier {
    private let sha = SHA256()
    private let merkle = MerkleHasher()

    public init() {}

    public func verify(_ files: [String: [UInt8]], pinned: NoteVerifierKey?) -> BundleReport {
        var report = BundleReport()
        report.keyPinned = pinned != nil
        guard let manifestBytes = files["manifest.json"] else {
            report.add("file_missing", "manifest.json", "the bundle has no manifest.json")
            return report
        }
        let manifest: BundleManifest
        do { manifest = try BundleManifest(parsing: manifestBytes) } catch {
            report.add("manifest", "manifest.json", error.message)
            return report
        }
        report.type = manifest.type.rawValue
        report.origin = manifest.origin
        report.treeSize = manifest.treeSize

        // Files: each listed one present with its digest; nothing unlisted.
        for (name, digest) in manifest.files.sorted(by: { $0.key < $1.key }) {
            guard let bytes = files[name] else {
                report.add("file_missing", name, "listed in the manifest but missing from the bundle")
                continue
            }
            let found = SHA256.hash(bytes).hex
            if found != digest { report.add("file_hash", name, "expected SHA-256 \(digest), found \(found)") }
        }
        for name in files.keys.sorted() where name != "manifest.json" && manifest.files[name] == nil {
            report.add("file_unlisted", name, "in the bundle but not listed in the manifest")
        }

        // Key and checkpoint: the pinned key, followed through the bundle's key rotations, must be
        // the key that signed the checkpoint.
        let bundleKey = files["verifier-key"].flatMap { String(decoding: $0, as: UTF8.self).split(separator: "\n").first }
            .flatMap { try? NoteVerifierKey(parsing: String($0)) }
        if bundleKey == nil { report.add("key", "verifier-key", "not a verifier key (name+keyid+base64)") }
        var pendingConsistency: [(seq: UInt64, size: UInt64, root: SHA256Digest, proof: [SHA256Digest])] = []
        var followed = pinned
        // Pinned to the key that signed the checkpoint, the rotations need no following: that
        // checkpoint covers them. Pinned to an earlier key, they must lead from it to the signer.
        if let pinned, pinned != bundleKey, let bytes = files["key-rotations.json"] {
            followed = followRotations(bytes, from: pinned, origin: manifest.origin, pending: &pendingConsistency, into: &report)
        }
        if let followed, let bundleKey, followed != bundleKey {
            report.add("key", "verifier-key", "expected \(followed) (the pinned key, followed through the bundle's key rotations), found \(bundleKey)")
        }
        if let bundleKey, let pem = files["public-key.pem"] {
            let key = try? Ed25519PublicKey(pemRepresentation: String(decoding: pem, as: UTF8.self))
            if key != bundleKey.publicKey { report.add("key", "public-key.pem", "expected the public key of verifier-key, found another or none") }
        }
        guard let key = followed ?? bundleKey else { return report }
        guard let checkpointBytes = files["checkpoint"] else {
            report.add("file_missing", "checkpoint", "the bundle has no checkpoint")
            return report
        }
        let checkpoint: Checkpoint
        do { checkpoint = try Checkpoint.open(checkpointBytes, trusting: [key], origin: manifest.origin) } catch {
            report.add("checkpoint", "checkpoint", "expected a checkpoint of \(manifest.origin) signed by \(key): \(error.message)")
            return report
        }
        if checkpoint.size != manifest.treeSize {
            report.add("checkpoint", "checkpoint", "expected size \(manifest.treeSize) (the manifest's tree_size), found \(checkpoint.size)")
        }
        for pending in pendingConsistency {
            do {
                try MerkleVerifier(hasher: merkle).verifyConsistency(
                    oldSize: pending.size, oldRoot: pending.root, newSize: checkpoint.size, newRoot: checkpoint.rootHash, proof: pending.proof)
            } catch {
                report.add("key_rotation", "key-rotations.json", pending.seq, "expected the log to extend the checkpoint covering the rotation: \((error as? MerkleProofError)?.message ?? "\(error)")")
            }
        }
        let checkpointText = String(decoding: checkpointBytes, as: UTF8.self)

        // Records.
        var records: [BundleRecord] = []
        let lines = (files["entries.jsonl"] ?? []).split(separator: 0x0A, omittingEmptySubsequences: true)
        for (n, line) in lines.enumerated() {
            do { records.append(try BundleRecord(parsing: line)) } catch {
                report.add("manifest", "entries.jsonl", nil, "line \(n + 1): \(error.message)")
            }
        }
        report.records = records.count
        var previous: UInt64?
        for record in records {
            if let p = previous, record.seq <= p { report.add("manifest", "entries.jsonl", record.seq, "records are not in ascending seq order, each once") }
            previous = record.seq
        }
        let receipts = Dictionary(records.filter { $0.role == .receipt }.map { ($0.seq, $0) }, uniquingKeysWith: { a, _ in a })
        let citedNotices = Set(records.filter { $0.role == .match }.compactMap { $0.body.fields["notice"]?.value?.stringValue })
        for record in records {
            check(record, checkpoint: checkpoint, checkpointText: checkpointText, files: files, manifest: manifest,
                  receipts: receipts, citedNotices: citedNotices, into: &report)
        }
        let counts = BundleManifest.Counts(records)
        if counts != manifest.counts {
            report.add("counts", "manifest.json", "expected counts \(counts.json.canonicalText) from the records, found \(manifest.counts.json.canonicalText)")
        }

        // Consistency with the requester's earlier checkpoint.
        if let bytes = files["consistency.json"] {
            checkConsistency(bytes, key: key, origin: manifest.origin, checkpoint: checkpoint, into: &report)
        }
        return report
    }

    private func check(
        _ record: BundleRecord, checkpoint: Checkpoint, checkpointText: String, files: [String: [UInt8]], manifest: BundleManifest,
        receipts: [UInt64: BundleRecord], citedNotices: Set<String>, into report: inout BundleReport
    ) {
        let seq = record.seq
        let file = "entries.jsonl"
        let header: EntryHeader
        do { header = try EntryHeader(parsing: record.header) } catch {
            return report.add("header", file, seq, "the header is not a canonical entry header: \(error.message)")
        }
        if header.seq != seq { report.add("header", file, seq, "expected the header of entry \(seq), found that of \(header.seq)") }
        let commitment = record.body.commitment(using: sha)
        if commitment != header.bodyCommitment {
            report.add("body", file, seq, "expected body commitment \(Base64.encode(header.bodyCommitment.bytes)) (the header's), found \(Base64.encode(commitment.bytes))")
        }
        let leaf = record.header.withUnsafeBytes { merkle.leafHash($0) }
        do {
            try MerkleVerifier(hasher: merkle).verifyInclusion(leafHash: leaf, index: seq, size: checkpoint.size, proof: record.proof, root: checkpoint.rootHash)
        } catch {
            report.add("inclusion", file, seq, "expected a proof to the checkpoint's root: \((error as? MerkleProofError)?.message ?? "\(error)")")
        }
        // The standard proof file says the same.
        let proofName = "proofs/\(seq).tlog-proof"
        if let bytes = files[proofName] {
            // Byte for byte what the record and the checkpoint give; parsed only to say what differs.
            let expected = TlogProof(extra: record.header, index: seq, proof: record.proof, checkpoint: checkpointText).text
            if !bytes.elementsEqual(expected.utf8) {
                let parsed = try? TlogProof(parsing: String(decoding: bytes, as: UTF8.self))
                report.add("tlog_proof", proofName, seq, parsed == nil
                    ? "not a c2sp.org/tlog-proof@v1 file"
                    : "expected the record's header, index, proof and the bundle's checkpoint; found others")
            }
        } else {
            report.add("tlog_proof", proofName, seq, "the record's proof file is missing")
        }
        for name in record.withheld where record.body.fields[name]?.isRedacted != true {
            report.add("withheld", file, seq, "field \(name) is listed as withheld but disclosed or absent")
        }
        // The record answers the query.
        let query = manifest.query
        let values = record.body.fields.compactMapValues(\.value)
        if record.role == .match {
            var mismatches: [String] = []
            let isNotice = header.kind == "notice.published" && manifest.type == .consentReceipt
            if isNotice {
                if !citedNotices.contains(values["notice"]?.stringValue ?? "") { mismatches.append("a notice no consent record of the receipt cites") }
            } else if values["subject"]?.stringValue != query.subject {
                mismatches.append("subject \(values["subject"]?.stringValue ?? "not disclosed"), not \(query.subject)")
            }
            if let actor = query.actor, values["actor"]?.stringValue != actor { mismatches.append("actor \(values["actor"]?.stringValue ?? "not disclosed"), not \(actor)") }
            if !query.matches(kind: header.kind) { mismatches.append("kind \(header.kind), not one of \(query.kinds)") }
            if !query.matches(time: header.timestamp) { mismatches.append("ts \(header.timestamp), outside the query's time range") }
            if let purpose = query.purpose, let found = values["purpose"]?.stringValue, found != purpose { mismatches.append("purpose \(found), not \(purpose)") }
            if !mismatches.isEmpty { report.add("query", file, seq, "an entry that does not answer the query: " + mismatches.joined(separator: "; ")) }
        } else if record.role == .redacted, !query.matches(kind: header.kind) || !query.matches(time: header.timestamp) {
            report.add("query", file, seq, "a redacted entry outside the query's kinds or time range")
        }
        // Redactions are explained by receipts in the bundle.
        if !record.redactedFields.isEmpty || record.role == .redacted {
            let covering = record.explainedBy.filter { receipts[$0].map { covers($0, seq) } ?? false }
            if covering.isEmpty {
                report.add("redaction", file, seq, "fields \(record.redactedFields) are redacted, and no receipt of the bundle covers this entry")
            }
        }
        if record.role == .receipt, header.kind != "ledger.pruned" && header.kind != "ledger.erased" {
            report.add("redaction", file, seq, "a receipt record of kind \(header.kind), not ledger.pruned or ledger.erased")
        }
    }

    /// Follows `key-rotations.json` from `pinned`: each rotation hands over from the key in force,
    /// which signed a checkpoint covering the rotation entry. Returns the key reached.
    private func followRotations(
        _ bytes: [UInt8], from pinned: NoteVerifierKey, origin: String,
        pending: inout [(seq: UInt64, size: UInt64, root: SHA256Digest, proof: [SHA256Digest])], into report: inout BundleReport
    ) -> NoteVerifierKey {
        let file = "key-rotations.json"
        guard let list = (try? JSONParser.parse(bytes))?.arrayValue else {
            report.add("key_rotation", file, "expected a list of key rotations")
            return pinned
        }
        var current = pinned
        for item in list {
            func hashes(_ name: String) -> [SHA256Digest]? {
                guard let values = item[name]?.arrayValue else { return nil }
                let digests = values.compactMap { $0.stringValue.flatMap(Base64.decode).flatMap { SHA256Digest(bytes: $0) } }
                return digests.count == values.count ? digests : nil
            }
            guard let seqValue = item["seq"]?.integerValue, seqValue >= 0, let headerText = item["header"]?.stringValue,
                let bodyValue = item["body"], let body = try? EntryBody(parsing: bodyValue.canonicalBytes), let note = item["checkpoint"]?.stringValue,
                let inclusion = hashes("inclusion"), let consistency = hashes("consistency")
            else {
                report.add("key_rotation", file, "a rotation lacks its seq, header, body, checkpoint or proofs")
                return current
            }
            let seq = UInt64(seqValue)
            let headerBytes = Array(headerText.utf8)
            guard let header = try? EntryHeader(parsing: headerBytes), header.seq == seq, header.kind == "ledger.key_rotated",
                body.commitment(using: sha) == header.bodyCommitment
            else {
                report.add("key_rotation", file, seq, "expected a ledger.key_rotated entry whose body matches its header")
                return current
            }
            let values = body.fields.compactMapValues(\.value)
            guard values["previous_key"]?.stringValue == "\(current)", let next = values["key"]?.stringValue.flatMap({ try? NoteVerifierKey(parsing: $0) }) else {
                report.add("key_rotation", file, seq, "expected a hand-over from \(current), found one from \(values["previous_key"]?.stringValue ?? "no key")")
                return current
            }
            let old: Checkpoint
            do { old = try Checkpoint.open(Array(note.utf8), trusting: [current], origin: origin) } catch {
                report.add("key_rotation", file, seq, "expected the checkpoint covering the rotation to be signed by \(current): \(error.message)")
                return current
            }
            let leaf = headerBytes.withUnsafeBytes { merkle.leafHash($0) }
            guard old.size == seq + 1, (try? MerkleVerifier(hasher: merkle).verifyInclusion(leafHash: leaf, index: seq, size: old.size, proof: inclusion, root: old.rootHash)) != nil else {
                report.add("key_rotation", file, seq, "expected the rotation entry to be the last leaf of the checkpoint signed by \(current)")
                return current
            }
            pending.append((seq, old.size, old.rootHash, consistency))
            current = next
        }
        return current
    }

    /// True when receipt `receipt` names `seq` in its seq ranges (§3.1).
    private func covers(_ receipt: BundleRecord, _ seq: UInt64) -> Bool {
        guard seq < receipt.seq, let header = try? EntryHeader(parsing: receipt.header) else { return false }
        let member = header.kind == "ledger.pruned" ? "seqs" : header.kind == "ledger.erased" ? "erased" : nil
        guard let member, let ranges = receipt.body.fields[member]?.value?.arrayValue else { return false }
        return ranges.contains { range in
            guard let pair = range.arrayValue, pair.count == 2, let first = pair[0].integerValue, let last = pair[1].integerValue else { return false }
            return Int64(seq) >= first && Int64(seq) <= last
        }
    }

    private func checkConsistency(_ bytes: [UInt8], key: NoteVerifierKey, origin: String, checkpoint: Checkpoint, into report: inout BundleReport) {
        let file = "consistency.json"
        guard let value = try? JSONParser.parse(bytes), let old = value["old_checkpoint"]?.stringValue,
            let proofValues = value["proof"]?.arrayValue
        else { return report.add("consistency", file, "expected {\"old_checkpoint\", \"proof\"}") }
        let proof = proofValues.compactMap { $0.stringValue.flatMap(Base64.decode).flatMap { SHA256Digest(bytes: $0) } }
        guard proof.count == proofValues.count else { return report.add("consistency", file, "a proof hash is not base64 of 32 bytes") }
        let earlier: Checkpoint
        do { earlier = try Checkpoint.open(Array(old.utf8), trusting: [key], origin: origin) } catch {
            return report.add("consistency", file, "the earlier checkpoint does not verify under the log's key: \(error.message)")
        }
        do {
            try MerkleVerifier(hasher: merkle).verifyConsistency(
                oldSize: earlier.size, oldRoot: earlier.rootHash, newSize: checkpoint.size, newRoot: checkpoint.rootHash, proof: proof)
        } catch {
            report.add("consistency", file, "expected the log of \(checkpoint.size) entries to extend the earlier one of \(earlier.size): \((error as? MerkleProofError)?.message ?? "\(error)")")
        }
    }
}
