import Foundation
import SteleClient
import SteleCore
import SteleCrypto
import SteleEvidence
import SteleStore
import SteleTestSupport
import Testing

/// `stele key rotate` (`Specs/checkpoint.md`, "Key rotation"): each hand-over is signed by the key
/// it replaces; verify and bundles follow the chain from a pinned key; a forged rotation, and a
/// daemon started with a retired key, are refused.
@Suite("key rotation", .serialized)
struct KeyRotationTests {
    static func rotate(_ root: TemporaryDirectory) throws -> String {
        let run = try SteleBinary.run([
            "key", "rotate", "--data", root.appending("data"), "--key", root.appending("key/signing.key"),
            "--checkpoints", root.appending("checkpoints"), "--reason", "scheduled rotation", "--json",
        ])
        try #require(run.status == 0, "\(run.output)")
        return try #require(try reply(run.output)["key"] as? String)
    }

    static func serve(_ root: TemporaryDirectory, _ names: [String]) throws {
        let daemon = try DaemonProcess(root: root)
        let connection = try SteleConnection(socketPath: daemon.socket)
        for name in names { #expect(try reply(connection.request(login(name)))["ok"] as? Bool == true) }
        #expect(daemon.stop() == 0, "\(daemon.log)")
    }

    @Test("two rotations: verify and bundles follow the chain from the first key or from the last; a retired key cannot start the daemon, and the refusal changes nothing")
    func twoRotations() throws {
        let root = TemporaryDirectory("stele-rotate")
        try Self.serve(root, ["r0", "r1"])
        let first = try VerifyCheckpointTests.verifierKey(root)
        let second = try Self.rotate(root)
        try Self.serve(root, ["r2", "r3"])
        let third = try Self.rotate(root)
        try Self.serve(root, ["r4"])
        #expect(Set([first, second, third]).count == 3)
        let data = root.appending("data")
        for pinned in [first, second, third] {
            let verify = try SteleBinary.run(["verify", "--data", data, "--key", pinned, "--checkpoints", root.appending("checkpoints")])
            #expect(verify.status == 0, "pinned \(pinned): \(verify.output)")
        }
        let stranger = try NoteSigner(name: "stele.test/daemon", privateKey: Ed25519PrivateKey()).verifierKey
        #expect(try SteleBinary.run(["verify", "--data", data, "--key", "\(stranger)"]).status == 1)

        // A bundle carries the rotations: a regulator pinning the first key reaches the third.
        let out = root.appending("bundle")
        let export = try SteleBinary.run(["export", "--data", data, "--key", root.appending("key/signing.key"), "--subject", "user:1", "--reason", "r", "--out", out])
        try #require(export.status == 0, "\(export.output)")
        #expect(FileManager.default.fileExists(atPath: out + "/key-rotations.json"))
        for pinned in [first, third] {
            let swift = try SteleBinary.run(["verify-bundle", out, "--key", pinned])
            #expect(swift.status == 0, "\(swift.output)")
            let python = try EvidenceBundleTests().pythonStatus(out, key: pinned)
            #expect(python == 0)
        }

        // The retired key cannot start the daemon, and the refused start creates nothing.
        let retired = try #require(try FileManager.default.contentsOfDirectory(atPath: root.appending("key")).first { $0.contains("retired") })
        let before = try listing(root.path)
        let refused = try DaemonProcess(root: root, key: root.appending("key/" + retired), wait: false)
        #expect(refused.waitForExit() == 2)
        #expect(refused.log.contains("not the log's current key"), "\(refused.log)")
        #expect(try listing(root.path).filter { !$0.hasSuffix(".log") } == before.filter { !$0.hasSuffix(".log") })
        // Nor can it sign a checkpoint by hand.
        let signed = try SteleBinary.runKeepingErrors([
            "checkpoint", "--sign", "--data", data, "--key", root.appending("key/" + retired), "--checkpoints", root.appending("checkpoints"),
        ])
        #expect(signed.status == 2 && signed.errors.contains("not the log's current key"), "\(signed.errors)")
    }

    @Test("a rotation appended by someone without the key in force is a forged rotation: verify fails, and bundles pinned to the real key reject the forger's checkpoints")
    func forgedRotation() throws {
        let root = TemporaryDirectory("stele-rotate")
        try Self.serve(root, ["f0", "f1"])
        let real = try VerifyCheckpointTests.verifierKey(root)
        // A forger with write access to the data directory, but not the key.
        let forger = try NoteSigner(name: "stele.test/daemon", privateKey: Ed25519PrivateKey())
        do {
            let ledger = try Ledger(path: root.appending("data"))
            let writer = try LedgerWriter(ledger: ledger)
            let seq = try writer.perform { context in
                try context.append(Event(
                    kind: "ledger.key_rotated", retentionClass: "ledger", retention: nil, source: "stele", actor: "uid:666",
                    attributes: ["previous_key": .string(real), "key": .string("\(forger.verifierKey)"), "reason": .string("forged")])).seq
            }
            let note = try Checkpoint(origin: ledger.origin, size: seq + 1, rootHash: try ledger.rootHash(size: seq + 1)).signed(by: forger)
            try ledger.storeCheckpoint(note)
            try writer.close()
        }
        let verify = try SteleBinary.run(["verify", "--data", root.appending("data"), "--key", real])
        #expect(verify.status == 1 && verify.output.contains("forged rotation"), "\(verify.output)")
    }

    @Test("stele monitor pinned to the first key follows each rotation the key in force signed, remembers the new key, and refuses a forged one")
    func monitorFollowsRotations() throws {
        let root = TemporaryDirectory("stele-rotate")
        try Self.serve(root, ["m0"])
        let first = try VerifyCheckpointTests.verifierKey(root)
        let state = root.appending("monitor")
        func look() throws -> (status: Int32, output: String, errors: String) {
            try SteleBinary.runKeepingErrors(["monitor", "--once", "--log-key", first, "--state", state, "--data", root.appending("data")])
        }
        #expect(try look().status == 0)
        _ = try Self.rotate(root)
        try Self.serve(root, ["m1"])
        let second = try Self.rotate(root)
        try Self.serve(root, ["m2"])
        let followed = try look()
        #expect(followed.status == 0 && followed.output.components(separatedBy: "followed a key rotation").count == 3, "\(followed)")
        #expect(try String(contentsOfFile: state + "/key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == second)
        #expect(try look().output.contains("unchanged"))
        // A rotation appended by someone without the key in force.
        let forger = try NoteSigner(name: "stele.test/daemon", privateKey: Ed25519PrivateKey())
        let current = try String(contentsOfFile: state + "/key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        do {
            let ledger = try Ledger(path: root.appending("data"))
            let writer = try LedgerWriter(ledger: ledger)
            let seq = try writer.perform { context in
                try context.append(Event(
                    kind: "ledger.key_rotated", retentionClass: "ledger", retention: nil, source: "stele", actor: "uid:666",
                    attributes: ["previous_key": .string("\(forger.verifierKey)"), "key": .string("\(forger.verifierKey)"), "reason": .string("forged")])).seq
            }
            try ledger.storeCheckpoint(try Checkpoint(origin: ledger.origin, size: seq + 1, rootHash: try ledger.rootHash(size: seq + 1)).signed(by: forger))
            try writer.close()
        }
        let refused = try look()
        #expect(refused.status == 1 && refused.errors.contains("does not verify"), "\(refused)")
        #expect(try String(contentsOfFile: state + "/key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == current)
    }

    private func listing(_ path: String) throws -> [String] {
        (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []).sorted()
    }
}
