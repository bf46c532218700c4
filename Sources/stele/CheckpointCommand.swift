import ArgumentParser
import Foundation
import SteleCore
import SteleCrypto
import SteleStore

/// `stele checkpoint`: the latest signed checkpoint; `--sign` signs the current tree head first.
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint", abstract: "Print the latest signed checkpoint (C2SP signed note).")

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var keyOptions: KeyOptions
    @Option(help: "Directory outside the data directory that receives every signed checkpoint.")
    var checkpoints: String = "./stele-checkpoints"
    @Flag(help: "Sign the current tree head with --key, store it and write it to --checkpoints first.")
    var sign = false
    @Flag(help: "Output JSON: {\"note\": …}.") var json = false

    func run() throws {
        if sign {
            let ledger = try Failure.map { try Ledger(path: dataOptions.data) }
            // A log that has signed before is signed only by its current key; a key is made only for
            // a log that never signed (one filled by ingest).
            let newest = try Failure.map { try ledger.latestCheckpoint() }
            let rotations = try Failure.map { try ledger.keyRotations() }
            let key = try Failure.map { newest == nil && rotations.isEmpty ? try SigningKeyFile.loadOrCreate(keyOptions.key) : try SigningKeyFile.load(keyOptions.key) }
            let head = try Failure.map { try ledger.treeHead() }
            let signer = try NoteSigner(name: ledger.origin, privateKey: key)
            if let last = rotations.last {
                guard last.next == signer.verifierKey else {
                    throw Failure.couldNotRun("\(keyOptions.key) is not the log's current key (it was rotated to \(last.next.map { "\($0)" } ?? "?") at entry \(last.seq))")
                }
            } else if let newest, (try? SignedNote(parsing: Array(newest.utf8)).verify(trusting: [signer.verifierKey])) == nil {
                throw Failure.couldNotRun("\(keyOptions.key) did not sign this log's checkpoints: give the log's key")
            }
            let note = try Checkpoint(origin: ledger.origin, size: head.size, rootHash: head.root).signed(by: signer)
            try Failure.map { try ledger.storeCheckpoint(note) }
            try CheckpointDirectory(path: checkpoints).write(note, size: head.size)
        }
        let ledger = try dataOptions.openReadOnly()
        guard let note = try Failure.map({ try ledger.latestCheckpoint() }) else {
            throw Failure.couldNotRun("no checkpoint has been signed yet")
        }
        if json {
            printLine(JSONValue.object(["note": .string(note)]).canonicalText)
        } else {
            FileHandle.standardOutput.write(Data(note.utf8))
        }
    }
}
