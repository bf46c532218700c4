public import SteleCore
public import SteleCrypto

/// A bundle's files, assembled from what the log gave (`Specs/evidence-bundle.md` §1): pure, so
/// the same bytes come out wherever it runs.
public struct EvidenceBundle: Sendable {
    /// File name → bytes, `manifest.json` included.
    public var files: [String: [UInt8]]

    /// The files of a bundle.
    /// - Parameters:
    ///   - checkpoint: the signed checkpoint covering every record.
    ///   - consistency: the requester's earlier checkpoint and the proof from it, when asked.
    public init(
        type: BundleManifest.BundleType, query: BundleQuery, reason: String, created: Timestamp, checkpoint: SignedNote,
        verifierKey: NoteVerifierKey, records: [BundleRecord], consistency: (old: String, proof: [SHA256Digest])?,
        rotations: [JSONValue] = [], state: JSONValue? = nil
    ) throws(EvidenceError) {
        let parsed: Checkpoint
        do { parsed = try Checkpoint(parsing: checkpoint.text) } catch { throw EvidenceError(.cannotExport, "the checkpoint: \(error.message)") }
        let note = checkpoint.serialized
        var files: [String: [UInt8]] = [
            "checkpoint": Array(note.utf8),
            "verifier-key": Array((verifierKey.description + "\n").utf8),
            "public-key.pem": Array(verifierKey.publicKey.pemRepresentation.utf8),
        ]
        var lines: [UInt8] = []
        for record in records.sorted(by: { $0.seq < $1.seq }) {
            lines += record.line
            lines.append(0x0A)
            let proof = TlogProof(extra: record.header, index: record.seq, proof: record.proof, checkpoint: note)
            files["proofs/\(record.seq).tlog-proof"] = Array(proof.text.utf8)
        }
        files["entries.jsonl"] = lines
        if let consistency {
            files["consistency.json"] = JSONValue.object([
                "old_checkpoint": .string(consistency.old), "proof": .array(consistency.proof.map { .string(Base64.encode($0.bytes)) }),
            ]).canonicalBytes + [0x0A]
        }
        if !rotations.isEmpty { files["key-rotations.json"] = JSONValue.array(rotations).canonicalBytes + [0x0A] }
        files["README.txt"] = Array(Self.readme(type: type, origin: parsed.origin, key: verifierKey.description, consistency: consistency != nil).utf8)
        let manifest = BundleManifest(
            type: type, origin: parsed.origin, created: created, treeSize: parsed.size, query: query, reason: reason,
            counts: BundleManifest.Counts(records), files: files.mapValues { SHA256.hash($0).hex }, state: state,
            limitations: Self.limitations(type))
        files["manifest.json"] = manifest.json.canonicalBytes + [0x0A]
        self.files = files
    }

    static func limitations(_ type: BundleManifest.BundleType) -> [String] {
        [
            "Headers do not name subjects, so no bundle can prove that the log holds nothing else about the subject: this one holds every entry the log's indexes hold for the query.",
            "Entries pruned on schedule are no longer indexed by subject; their receipts exist in the log without subject names.",
            "That an erasure receipt is this subject's rests on the log's keyed subject hash, which only the log can recompute.",
            "The bundle proves the log as of its checkpoint; a consistency proof to a checkpoint you held before proves nothing you saw was rewritten.",
        ] + (type == .consentReceipt ? ["The state is Stele's reading of the cited entries by Specs/consent.md; the entries are what is proven."] : [])
    }

    static func readme(type: BundleManifest.BundleType, origin: String, key: String, consistency: Bool) -> String {
        """
        Stele evidence bundle (\(type.rawValue)) from the log \(origin)

        This bundle proves that the entries in entries.jsonl are in the log described by the signed
        checkpoint in the file "checkpoint", unchanged, with exactly the body fields shown. Check it
        offline; you need neither Stele nor access to the log.

        1. Get the log's verifier key from its operator through a channel you trust (published, or
           handed over in person), not only from this bundle. This bundle says the key is:
             \(key)
        2. Verify with Stele:
             stele verify-bundle THIS_DIRECTORY --key 'VERIFIER_KEY'
           or with the independent verifier, Tools/verify-bundle.py in Stele's source (Python 3 and
           the "cryptography" package):
             python3 verify-bundle.py THIS_DIRECTORY --key 'VERIFIER_KEY'
           Both exit 0 when the bundle is sound, 1 with findings, 2 when they cannot read it.
        3. The checkpoint's signature can also be checked with openssl alone (Ed25519 over the
           checkpoint text up to the blank line; the signature is the base64 after the log's name,
           without its first 4 bytes, the key id):
             sed -n '1,/^$/p' checkpoint | head -n -1 > checkpoint.text
             grep '^\u{2014} \(origin) ' checkpoint | head -1 | cut -d' ' -f3 | base64 -d | tail -c 64 > checkpoint.sig
             openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin -in checkpoint.text -sigfile checkpoint.sig
        4. Each proofs/SEQ.tlog-proof is a standard C2SP tlog-proof (c2sp.org/tlog-proof): any
           transparency-log tool checks inclusion with the log's origin and key. Its "extra" line
           is the entry's header text.
        \(consistency ? "5. consistency.json proves that this log extends the checkpoint you gave when asking.\n" : "")
        manifest.json lists what the bundle answers, the SHA-256 of every file, and what a bundle
        cannot prove. The format is Specs/evidence-bundle.md in Stele's source.

        """
    }
}
