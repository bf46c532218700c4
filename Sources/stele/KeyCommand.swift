import ArgumentParser
import Foundation
import SteleClient
import SteleCore
import SteleCrypto
import SteleStore

/// `stele key show`: the log's verifier key (signed-note form) and PEM public key.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Show the log's public key, or rotate its signing key.", subcommands: [Show.self, Rotate.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the verifier key and the PEM public key.")
        @OptionGroup var dataOptions: DataOptions
        @OptionGroup var keyOptions: KeyOptions
        @Flag(help: "Output JSON: {\"verifier_key\", \"public_key_pem\", \"origin\"}.") var json = false

        func run() throws {
            let ledger = try dataOptions.openReadOnly()
            let key = try Failure.map { try SigningKeyFile.load(keyOptions.key) }
            let verifier = try NoteVerifierKey(name: ledger.origin, publicKey: key.publicKey)
            let pem = key.publicKey.pemRepresentation
            if json {
                printLine(JSONValue.object([
                    "origin": .string(ledger.origin), "verifier_key": .string(verifier.description),
                    "public_key_pem": .string(pem),
                ]).canonicalText)
            } else {
                printLine(verifier.description)
                print(pem, terminator: "")
            }
        }
    }

    /// `stele key rotate`: hands the log over to a new signing key (`Specs/checkpoint.md`, "Key
    /// rotation"), with the daemon stopped: the rotation entry is covered by a checkpoint the old
    /// key signs; the old key file is kept beside the new one as `<key>.retired-<seq>`.
    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate the signing key: record ledger.key_rotated, sign it with the old key, install the new one (daemon stopped).")
        @OptionGroup var dataOptions: DataOptions
        @OptionGroup var keyOptions: KeyOptions
        @Option(help: "The checkpoint directory outside the data directory.") var checkpoints: String = "./stele-checkpoints"
        @Option(help: "The daemon's socket (default: <data>/stele.sock); rotation refuses while a daemon serves.") var socket: String?
        @Option(help: "Why, recorded in the rotation entry.") var reason: String
        @Flag(help: "Output JSON.") var json = false

        func run() throws {
            guard reason.contains(where: { !$0.isWhitespace }) else { throw Failure.couldNotRun("--reason must say why the key is rotated") }
            if let connection = try? SteleConnection(socketPath: socket ?? dataOptions.data + "/stele.sock") {
                _ = connection
                throw Failure.couldNotRun("a daemon serves this log: stop it, rotate, then start it again (it signs with the key file it finds at start)")
            }
            let path = keyOptions.key
            let old = try Failure.map { try SigningKeyFile.load(path) }
            let ledger = try Failure.map { try Ledger(path: dataOptions.data) }
            let signer = try Failure.map { try NoteSigner(name: ledger.origin, privateKey: old) }
            let fresh = path + ".new"
            guard !FileManager.default.fileExists(atPath: fresh) else {
                throw Failure.couldNotRun("\(fresh) exists from an interrupted rotation: check it, then remove it")
            }
            let next = try Failure.map { try SigningKeyFile.loadOrCreate(fresh) }
            let nextKey = try Failure.map { try NoteVerifierKey(name: ledger.origin, publicKey: next.publicKey) }
            let rotated: (seq: UInt64, checkpoint: SignedNote)
            do {
                let writer = try Failure.map { try LedgerWriter(ledger: ledger, options: .withoutIdempotency) }
                rotated = try Failure.map { try writer.rotateKey(from: signer, to: nextKey, reason: reason, operatorName: "uid:\(getuid())") }
                try Failure.map { try writer.close() }
            } catch {
                try? FileManager.default.removeItem(atPath: fresh)
                throw error
            }
            try Failure.map { try CheckpointDirectory(path: checkpoints).write(rotated.checkpoint, size: rotated.seq + 1) }
            let retired = path + ".retired-\(rotated.seq)"
            guard rename(path, retired) == 0, rename(fresh, path) == 0 else {
                throw Failure.couldNotRun("the rotation is recorded (entry \(rotated.seq)), but installing the new key failed: move \(fresh) to \(path) by hand (\(String(cString: strerror(errno))))")
            }
            if json {
                printLine(JSONValue.object([
                    "entry": .integer(Int64(rotated.seq)), "previous_key": .string("\(signer.verifierKey)"), "key": .string("\(nextKey)"),
                    "retired_key_file": .string(retired),
                ]).canonicalText)
            } else {
                printLine("rotated at entry \(rotated.seq), covered by a checkpoint the old key signed")
                printLine("new verifier key: \(nextKey)")
                printLine("the old private key is now \(retired): move it to offline storage or destroy it; publish the new verifier key")
            }
        }
    }
}
