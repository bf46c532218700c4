import Foundation
import SteleClient
import SteleCore
import SteleCrypto
import SteleEvidence
import SteleTestSupport
import Testing

/// `stele export`, `stele consent receipt` and both verifiers (`stele verify-bundle` and the
/// independent `Tools/verify-bundle.py`) on bundles of a real daemon's log: intact they pass,
/// and each tampering is rejected by both, for the right reason (`Specs/evidence-bundle.md`).
@Suite("evidence bundles: export, receipts, two verifiers", .serialized)
struct EvidenceBundleTests {
    static let python = ExternalProgram.repositoryFile("Tools/verify-bundle.py")

    /// A log with a subject's consent, logins, a staff member's action on the account, another
    /// subject, and a third subject erased; stopped cleanly.
    static func log(_ root: TemporaryDirectory) throws -> (key: String, checkpoint: String) {
        let daemon = try DaemonProcess(root: root)
        let connection = try SteleConnection(socketPath: daemon.socket)
        let lines = [
            #"{"kind":"notice.published","attrs":{"notice":"n1","sha256":"\#(String(repeating: "ab", count: 32))","purposes":["marketing.email"],"language":"en"}}"#,
            #"{"kind":"consent.granted","subject":"user:1","actor":"user:1","attrs":{"purpose":"marketing.email","notice":"n1","method":"checkbox"}}"#,
            login("a1", user: "user:1"), login("a2", user: "user:2"),
            #"{"kind":"admin.action","subject":"user:1","actor":"staff:7","attrs":{"action":"reset_mfa","target":"user:1"}}"#,
            #"{"kind":"consent.withdrawn","subject":"user:1","actor":"user:1","attrs":{"purpose":"marketing.email","method":"settings"}}"#,
            login("a3", user: "user:3"), login("a4", user: "user:3"),
        ]
        for line in lines { #expect(try reply(connection.request(line))["ok"] as? Bool == true, "\(line)") }
        let erase = try SteleBinary.run(["erase", "user:3", "--data", daemon.data, "--socket", daemon.socket, "--request", "T-1", "--reason", "account closed"])
        #expect(erase.status == 0, "\(erase.output)")
        let held = root.appending("held-checkpoint")
        try FileManager.default.copyItem(atPath: daemon.checkpoints + "/latest", toPath: held)
        for line in [login("a5", user: "user:1")] { _ = try connection.request(line) }
        #expect(daemon.stop() == 0)
        return (try VerifyCheckpointTests.verifierKey(root), held)
    }

    func export(_ root: TemporaryDirectory, _ name: String, _ extra: [String]) throws -> String {
        let out = root.appending(name)
        let run = try SteleBinary.run(
            ["export", "--data", root.appending("data"), "--key", root.appending("key/signing.key"), "--reason", "regulator request 7", "--out", out] + extra)
        try #require(run.status == 0, "\(run.output)")
        return out
    }

    /// Both verifiers' exit statuses and finding codes.
    func verifyBoth(_ path: String, key: String?) throws -> (swift: (Int32, Set<String>), python: (Int32, Set<String>)) {
        let swift = try SteleBinary.run(["verify-bundle", path, "--json"] + (key.map { ["--key", $0] } ?? []))
        let python = try ExternalProgram.run("/usr/bin/python3", [Self.python, path, "--json"] + (key.map { ["--key", $0] } ?? []))
        func codes(_ data: Data) -> Set<String> {
            let report = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            return Set(((report?["findings"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String })
        }
        return ((swift.status, codes(Data(swift.output.utf8))), (python.status, codes(Data(python.output.utf8))))
    }

    /// `Tools/verify-bundle.py`'s exit status on `path`.
    func pythonStatus(_ path: String, key: String) throws -> Int32 {
        try verifyBoth(path, key: key).python.0
    }

    /// A copy of bundle `path` changed by `change`, its manifest's file digests and counts
    /// recomputed as a careful forger would, so that only the deeper checks can catch it.
    func tampered(_ path: String, _ root: TemporaryDirectory, _ name: String, _ change: (inout [String: [UInt8]]) throws -> Void) throws -> String {
        var files = try BundleReader.files(at: path)
        try change(&files)
        if let manifestBytes = files["manifest.json"], var manifest = try? BundleManifest(parsing: manifestBytes) {
            manifest.files = files.filter { $0.key != "manifest.json" }.mapValues { SHA256.hash($0).hex }
            let records = (files["entries.jsonl"] ?? []).split(separator: 0x0A).compactMap { try? BundleRecord(parsing: $0) }
            manifest.counts = BundleManifest.Counts(records)
            files["manifest.json"] = manifest.json.canonicalBytes + [0x0A]
        }
        let out = root.appending(name)
        try BundleReader.write(files, to: out)
        return out
    }

    func lines(_ files: [String: [UInt8]]) -> [[UInt8]] {
        (files["entries.jsonl"] ?? []).split(separator: 0x0A).map(Array.init)
    }

    @Test("an export verifies with both verifiers, as a directory and as a tar; staff are withheld; erased entries come with their receipt; the read is logged")
    func roundTrip() throws {
        let root = TemporaryDirectory("stele-evidence")
        let (key, held) = try Self.log(root)
        let bundle = try export(root, "b1", ["--subject", "user:1", "--consistent-with", held, "--archive"])
        for path in [bundle, bundle + ".tar"] {
            let both = try verifyBoth(path, key: key)
            #expect(both.swift.0 == 0 && both.swift.1.isEmpty, "\(both.swift)")
            #expect(both.python.0 == 0 && both.python.1.isEmpty, "\(both.python)")
        }
        let files = try BundleReader.files(at: bundle)
        let records = lines(files).compactMap { try? BundleRecord(parsing: $0) }
        #expect(records.filter { $0.role == .match }.count == 5)  // consent ×2, logins a1 and a5, the admin action
        let staff = try #require(records.first { (try? EntryHeader(parsing: $0.header))?.kind == "admin.action" })
        #expect(staff.withheld == ["actor"] && staff.body.fields["actor"]?.isRedacted == true)
        #expect(files["consistency.json"] != nil && files["proofs/\(staff.seq).tlog-proof"] != nil)
        let proof = try TlogProof(parsing: String(decoding: try #require(files["proofs/\(staff.seq).tlog-proof"]), as: UTF8.self))
        #expect(proof.index == staff.seq && proof.extra == staff.header && proof.checkpoint == String(decoding: files["checkpoint"]!, as: UTF8.self))

        // With --include-staff the staff member is disclosed.
        let open = try BundleReader.files(at: try export(root, "b2", ["--subject", "user:1", "--include-staff", "--kind", "admin.*"]))
        let openRecords = lines(open).compactMap { try? BundleRecord(parsing: $0) }
        #expect(openRecords.count == 1 && openRecords[0].withheld.isEmpty && openRecords[0].body.fields["actor"]?.value == .string("staff:7"))

        // The erased subject: its entries as headers with the erasure receipt that explains them.
        let erased = try export(root, "b3", ["--subject", "user:3"])
        let erasedRecords = lines(try BundleReader.files(at: erased)).compactMap { try? BundleRecord(parsing: $0) }
        #expect(erasedRecords.filter { $0.role == .redacted }.count == 2 && erasedRecords.filter { $0.role == .receipt }.count == 1, "\(erasedRecords.map(\.role))")
        let bothErased = try verifyBoth(erased, key: key)
        #expect(bothErased.swift.0 == 0 && bothErased.python.0 == 0, "\(bothErased)")
        // Without its receipt, the redaction is unexplained.
        let unexplained = try tampered(erased, root, "t-receipt") { files in
            files["entries.jsonl"] = lines(files).filter { (try? BundleRecord(parsing: $0))?.role != .receipt }.flatMap { $0 + [0x0A] }
            for name in files.keys where name.hasPrefix("proofs/") {
                let seq = UInt64(name.dropFirst(7).dropLast(11))
                if let seq, !lines(files).contains(where: { (try? BundleRecord(parsing: $0))?.seq == seq }) { files[name] = nil }
            }
        }
        let missing = try verifyBoth(unexplained, key: key)
        #expect(missing.swift.0 == 1 && missing.swift.1.contains("redaction") && missing.python.0 == 1 && missing.python.1.contains("redaction"), "\(missing)")

        // Every read of personal data is in the log, with its reason and count.
        let accessed = try SteleBinary.run(["query", "--data", root.appending("data"), "--kind", "ledger.accessed", "--reason", "test: the access log"])
        #expect(accessed.output.split(separator: "\n").count == 3 && accessed.output.contains("regulator request 7"), "\(accessed.output)")
    }

    @Test("each tampering is rejected by both verifiers for its reason: body, header, proof hash, checkpoint, key, a dropped file, another subject's entry")
    func tampering() throws {
        let root = TemporaryDirectory("stele-evidence")
        let (key, _) = try Self.log(root)
        let bundle = try export(root, "b", ["--subject", "user:1"])
        let other = try BundleReader.files(at: try export(root, "o", ["--subject", "user:2"]))
        let forger = try NoteSigner(name: "stele.test/daemon", privateKey: Ed25519PrivateKey())
        func replaceLine(_ files: inout [String: [UInt8]], _ index: Int, _ change: (String) -> String) {
            var all = lines(files)
            all[index] = Array(change(String(decoding: all[index], as: UTF8.self)).utf8)
            files["entries.jsonl"] = all.flatMap { $0 + [0x0A] }
        }
        func resign(_ files: inout [String: [UInt8]]) throws {
            let note = try SignedNote(parsing: files["checkpoint"]!)
            let forged = Array(try Checkpoint(parsing: note.text).signed(by: forger).serialized.utf8)
            for name in files.keys where name.hasPrefix("proofs/") {
                let text = String(decoding: files[name]!, as: UTF8.self)
                files[name] = Array((text.replacingOccurrences(of: String(decoding: files["checkpoint"]!, as: UTF8.self), with: String(decoding: forged, as: UTF8.self))).utf8)
            }
            files["checkpoint"] = forged
        }
        let cases: [(String, String, (inout [String: [UInt8]]) throws -> Void)] = [
            ("body", "body", { replaceLine(&$0, 1) { $0.replacingOccurrences(of: #""value":"203.0.113.7""#, with: #""value":"203.0.113.8""#) } }),
            ("header", "inclusion", { replaceLine(&$0, 1) { $0.replacingOccurrences(of: #"\"class\":\"security\""#, with: #"\"class\":\"audit\""#) } }),
            ("proof", "inclusion", { files in
                replaceLine(&files, 0) { line in
                    let start = line.range(of: #""proof":[""#)!.upperBound
                    return line.replacingCharacters(in: start..<line.index(start, offsetBy: 4), with: "AAAA")
                }
            }),
            ("checkpoint", "checkpoint", { try resign(&$0) }),
            ("key", "key", { files in
                try resign(&files)
                files["verifier-key"] = Array((forger.verifierKey.description + "\n").utf8)
                files["public-key.pem"] = Array(forger.verifierKey.publicKey.pemRepresentation.utf8)
            }),
            ("dropped", "file_missing", { files in files["proofs/\(try BundleRecord(parsing: lines(files)[0]).seq).tlog-proof"] = nil }),
            ("inserted", "query", { files in
                let foreign = try #require(lines(other).first)
                let record = try BundleRecord(parsing: foreign)
                files["entries.jsonl"] = (lines(files) + [foreign]).sorted { (try! BundleRecord(parsing: $0)).seq < (try! BundleRecord(parsing: $1)).seq }.flatMap { $0 + [0x0A] }
                files["proofs/\(record.seq).tlog-proof"] = other["proofs/\(record.seq).tlog-proof"]
            }),
        ]
        for (name, code, change) in cases {
            var path = try tampered(bundle, root, "t-\(name)", change)
            if name == "dropped" {
                // Dropped after the manifest was written: the manifest still lists it.
                var files = try BundleReader.files(at: bundle)
                files["proofs/\(try BundleRecord(parsing: lines(files)[0]).seq).tlog-proof"] = nil
                path = root.appending("t-dropped-late")
                try BundleReader.write(files, to: path)
            }
            let both = try verifyBoth(path, key: key)
            #expect(both.swift.0 == 1 && both.swift.1.contains(code), "case \(name): swift \(both.swift)")
            #expect(both.python.0 == 1 && both.python.1.contains(code), "\(name): python \(both.python)")
        }
        // A forged key is only caught against the key the verifier pins: without one, both say so.
        let forgedKey = try tampered(bundle, root, "t-key-unpinned") { files in
            try resign(&files)
            files["verifier-key"] = Array((forger.verifierKey.description + "\n").utf8)
            files["public-key.pem"] = Array(forger.verifierKey.publicKey.pemRepresentation.utf8)
        }
        let unpinned = try SteleBinary.run(["verify-bundle", forgedKey])
        #expect(unpinned.status == 0 && unpinned.output.contains("bundle's own key only"), "\(unpinned.output)")
        // Not a bundle at all: exit 2 from both.
        let neither = try verifyBoth(root.appending("nowhere"), key: nil)
        #expect(neither.swift.0 == 2 && neither.python.0 == 2)
    }

    @Test("a consent receipt holds the entries that decide the purpose at the moment, the notice they cite, and the TS 27560 record; both verifiers agree")
    func consentReceipt() throws {
        let root = TemporaryDirectory("stele-evidence")
        let (key, _) = try Self.log(root)
        let data = root.appending("data")
        let history = try SteleBinary.run(["consent", "history", "user:1", "--data", data, "--json", "--reason", "test: the times of the history"])
        let times = history.output.split(separator: "\n").compactMap { (try? reply(String($0)))?["ts"] as? String }
        try #require(times.count >= 2, "\(history.output)")
        // Right after the grant: allowed; the withdrawal is not yet in the receipt.
        let out = root.appending("r1")
        let run = try SteleBinary.run([
            "consent", "receipt", "user:1", "--purpose", "marketing.email", "--at", times[0], "--data", data,
            "--key", root.appending("key/signing.key"), "--reason", "the subject asked", "--out", out,
        ])
        try #require(run.status == 0, "\(run.output)")
        let files = try BundleReader.files(at: out)
        let manifest = try BundleManifest(parsing: files["manifest.json"]!)
        #expect(manifest.type == .consentReceipt && manifest.state?["allowed"] == .bool(true))
        #expect(manifest.state?["record"]?["dpv:hasConsentStatus"] == .string("dpv:ConsentGiven"))
        let kinds = lines(files).compactMap { try? BundleRecord(parsing: $0) }.compactMap { (try? EntryHeader(parsing: $0.header))?.kind }
        #expect(kinds == ["notice.published", "consent.granted"], "\(kinds)")
        let both = try verifyBoth(out, key: key)
        #expect(both.swift.0 == 0 && both.python.0 == 0, "\(both)")
        // A record moved in from after the moment does not answer the receipt's query.
        let late = try tampered(out, root, "r-late") { files in
            let later = try BundleReader.files(at: try export(root, "w", ["--subject", "user:1", "--kind", "consent.withdrawn"]))
            let line = lines(later)[0]
            let record = try BundleRecord(parsing: line)
            files["entries.jsonl"] = (lines(files) + [line]).flatMap { $0 + [0x0A] }
            files["proofs/\(record.seq).tlog-proof"] = later["proofs/\(record.seq).tlog-proof"]
        }
        let caught = try verifyBoth(late, key: key)
        #expect(caught.swift.1.contains("query") && caught.python.1.contains("query"), "\(caught)")
    }

    @Test("a bundle's checkpoint signature verifies with openssl alone, by the commands its README.txt gives")
    func opensslChecksTheCheckpoint() throws {
        let root = TemporaryDirectory("stele-evidence")
        _ = try Self.log(root)
        let bundle = try export(root, "b", ["--subject", "user:1"])
        let readme = try String(contentsOfFile: bundle + "/README.txt", encoding: .utf8)
        let commands = readme.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { $0.hasPrefix("sed ") || $0.hasPrefix("grep ") || $0.hasPrefix("openssl ") }
        try #require(commands.count == 3, "\(readme)")
        func run(_ script: String) throws -> (Int32, String) {
            try ExternalProgram.run("/bin/bash", ["-c", script], currentDirectory: bundle)
        }
        let good = try run(commands.joined(separator: " && "))
        #expect(good.0 == 0 && good.1.contains("Signature Verified Successfully"), "\(good.1)")
        // The same commands on a checkpoint whose size was changed: openssl refuses it.
        let note = try String(contentsOfFile: bundle + "/checkpoint", encoding: .utf8)
        var lines = note.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines[1] = String(Int(lines[1])! + 1)
        try lines.joined(separator: "\n").write(toFile: bundle + "/checkpoint", atomically: true, encoding: .utf8)
        let bad = try run(commands.joined(separator: " && "))
        #expect(bad.0 != 0 && !bad.1.contains("Signature Verified Successfully"), "\(bad.1)")
    }
}
