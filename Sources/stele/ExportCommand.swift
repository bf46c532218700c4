import ArgumentParser
import Foundation
import SteleCore
import SteleCrypto
import SteleEvidence
import SteleStore

/// `stele export`: an evidence bundle for a query (`Specs/evidence-bundle.md`), read-only beside a
/// running daemon; the read is recorded as a `ledger.accessed` entry.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write an evidence bundle a regulator verifies offline (exit 0 written, 2 could not run).")

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var source: BundleSourceOptions
    @Option(help: "The data subject whose entries are exported.") var subject: String
    @Option(help: "Only entries by this actor.") var actor: String?
    @Option(help: "Only this kind, or kinds with this prefix (consent.*); repeat for several.") var kind: [String] = []
    @Option(help: "Only entries with ts at or after this time (RFC 3339 or a date).") var since: String?
    @Option(help: "Only entries with ts before this time (RFC 3339 or a date).") var until: String?
    @Option(help: "A checkpoint the requester holds: the bundle proves the log extends it.") var consistentWith: String?
    @Flag(help: "Disclose other people's fields (staff identities) too.") var includeStaff = false
    @Option(help: "Why, recorded in the bundle and in the access log.") var reason: String
    @Option(help: "The bundle directory to create.") var out: String
    @Flag(help: "Also write OUT.tar.") var archive = false
    @Flag(help: "Output the summary as JSON.") var json = false

    func run() throws {
        let query = BundleQuery(
            subject: subject, actor: actor, kinds: kind, since: try parseTime(since, "since"), until: try parseTime(until, "until"),
            includeStaff: includeStaff)
        if let since = query.since, let until = query.until, since >= until {
            throw Failure.couldNotRun("--since \(since) is not before --until \(until)")
        }
        try source.write(type: .export, query: query, reason: reason, out: out, archive: archive, json: json, dataOptions: dataOptions, consistentWith: consistentWith) {
            ledger, size, proofs in try ledger.exportRecords(query, treeSize: size, proofs: proofs)
        }
    }
}

/// Where a bundle's checkpoint and key come from, and how it is written (export and receipt).
struct BundleSourceOptions: ParsableArguments {
    @Option(help: "The log's verifier key, or a file holding it (default: from --key, else the key the daemon recorded at start).")
    var logKey: String?
    @OptionGroup var keyOptions: KeyOptions
    @Option(help: "The daemon's socket, for the access record (default: <data>/stele.sock).") var socket: String?
    @Option(help: "How long to wait for the daemon to sign a checkpoint covering the log.") var waitSeconds: Int = 10

    /// Waits for a checkpoint covering the log as it is now (never signing one), gathers the
    /// records, writes the bundle, records the access, and prints a summary.
    func write(
        type: BundleManifest.BundleType, query: BundleQuery, reason: String, out: String, archive: Bool, json: Bool,
        dataOptions: DataOptions, consistentWith: String?, state: JSONValue? = nil,
        records: (Ledger, UInt64, Bool) throws -> [BundleRecord]
    ) throws {
        guard reason.contains(where: { !$0.isWhitespace }) else { throw Failure.couldNotRun("--reason must say why: it is recorded in the bundle and the access log") }
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: out), !existing.isEmpty {
            throw Failure.couldNotRun("\(out) already exists and is not empty; choose a new --out")
        }
        let ledger = try dataOptions.openReadOnly()
        // The records as the log holds them now; then a checkpoint covering the newest of them
        // (later entries of others, such as access records, need not be covered yet).
        let size = try Failure.map { try ledger.size }
        let needed = try Failure.map { try records(ledger, size, false) }.map(\.seq).max().map { $0 + 1 } ?? 1
        let (note, checkpoint) = try coveringCheckpoint(ledger, size: needed)
        let key = try verifier(for: ledger, note: note)
        var consistency: (String, [SHA256Digest])?
        if let consistentWith {
            guard let bytes = FileManager.default.contents(atPath: consistentWith) else { throw Failure.couldNotRun("cannot read the checkpoint file \(consistentWith)") }
            let earlier: Checkpoint
            do { earlier = try Checkpoint.open([UInt8](bytes), trusting: [key], origin: ledger.origin) } catch {
                throw Failure.couldNotRun("--consistent-with \(consistentWith) is not a checkpoint of \(ledger.origin) signed by \(key): \(error.message)")
            }
            guard earlier.size <= checkpoint.size else {
                throw Failure.couldNotRun("--consistent-with \(consistentWith) covers \(earlier.size) entries, more than the log's newest checkpoint (\(checkpoint.size))")
            }
            let proof = try Failure.map { try ledger.consistencyProof(from: earlier.size, to: checkpoint.size) }
            guard proof.oldRoot == earlier.rootHash else {
                throw Failure.couldNotRun("the log's root at size \(earlier.size) differs from --consistent-with \(consistentWith): this log does not extend it (rewritten or forked)")
            }
            consistency = (String(decoding: bytes, as: UTF8.self), proof.proof)
        }
        let found = try Failure.map { try records(ledger, checkpoint.size, true) }
        let rotations = try Failure.map { try ledger.keyRotationEvidence(treeSize: checkpoint.size) }
        let bundle = try evidence { () throws(EvidenceError) in
            try EvidenceBundle(
                type: type, query: query, reason: reason, created: .now(), checkpoint: note, verifierKey: key, records: found,
                consistency: consistency, rotations: rotations, state: state)
        }
        let counts = BundleManifest.Counts(found)
        let access = try AccessRecord(
            command: type == .export ? "export" : "consent receipt", query: query.json, reason: reason, disclosed: counts.entries + counts.receipts
        ).record(data: dataOptions.data, socket: socket)
        try evidence { () throws(EvidenceError) in try BundleReader.write(bundle.files, to: out) }
        if archive {
            let tar = try evidence { () throws(EvidenceError) in try TarArchive.archive(bundle.files, modified: Timestamp.now().microseconds / 1_000_000) }
            guard FileManager.default.createFile(atPath: out + ".tar", contents: Data(tar)) else { throw Failure.couldNotRun("cannot write \(out).tar") }
        }
        if json {
            printLine(JSONValue.object([
                "out": .string(out), "archive": archive ? .string(out + ".tar") : .null, "tree_size": .integer(Int64(checkpoint.size)),
                "entries": .integer(Int64(counts.entries)), "receipts": .integer(Int64(counts.receipts)), "redacted": .integer(Int64(counts.redacted)),
                "withheld": .integer(Int64(counts.withheld)), "access_entry": .integer(Int64(access)),
            ]).canonicalText)
        } else {
            printLine("wrote \(out)\(archive ? " and \(out).tar" : ""): \(counts.entries) entries, \(counts.receipts) receipts, \(counts.redacted) redacted, \(counts.withheld) fields withheld; proven in the checkpoint of \(checkpoint.size) entries; this read is entry \(access)")
        }
    }

    /// The newest stored checkpoint once it covers the first `size` entries: the daemon signs
    /// about once a second while the log grows; without one, `stele checkpoint --sign` must.
    private func coveringCheckpoint(_ ledger: Ledger, size: UInt64) throws -> (SignedNote, Checkpoint) {
        let deadline = Date().addingTimeInterval(Double(waitSeconds))
        while true {
            if let text = try Failure.map({ try ledger.latestCheckpoint() }), let note = try? SignedNote(parsing: Array(text.utf8)),
                let checkpoint = try? Checkpoint(parsing: note.text), checkpoint.size >= size
            {
                return (note, checkpoint)
            }
            guard Date() < deadline else {
                throw Failure.couldNotRun(
                    "no signed checkpoint covers the log's first \(size) entries yet; a running daemon signs one within a second, or sign one with: stele checkpoint --sign --data \(ledger.path) --key KEY")
            }
            usleep(100_000)
        }
    }

    /// The verifier key: the one given, else the signing key's, else the one the daemon recorded in
    /// its newest `ledger.started`; the checkpoint must verify under it.
    private func verifier(for ledger: Ledger, note: SignedNote) throws -> NoteVerifierKey {
        let key: NoteVerifierKey
        if let logKey {
            key = try Failure.map { try verifierKey(logKey, option: "log-key") }
        } else if let signing = try? SigningKeyFile.load(keyOptions.key) {
            key = try Failure.map { try NoteVerifierKey(name: ledger.origin, publicKey: signing.publicKey) }
        } else if let recorded = try Failure.map({ try ledger.entries(LedgerQuery(kind: "ledger.started")).last })?.body.fields["key"]?.value?.stringValue {
            key = try Failure.map { try verifierKey(recorded, option: "log-key") }
        } else {
            throw Failure.couldNotRun("no verifier key: give --log-key (stele key show prints it)")
        }
        // The checkpoint is signed by this key, or (just after a rotation) by a key the log had before.
        let rotations = try Failure.map { try ledger.keyRotations() }
        let candidates = [key] + rotations.compactMap(\.previous) + rotations.compactMap(\.next)
        guard let signer = candidates.first(where: { (try? note.verify(trusting: [$0])) != nil }) else {
            throw Failure.couldNotRun("the log's newest checkpoint does not verify under \(key) or any key the log rotated through; give the log's key with --log-key")
        }
        return signer
    }
}

/// Runs `body`, turning a bundle error into a one-line message and exit status 2.
func evidence<R>(_ body: () throws(EvidenceError) -> R) throws -> R {
    do { return try body() } catch { throw Failure.couldNotRun(error.message) }
}
