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
            let key = try Failure.map { try SigningKeyFile.loadOrCreate(keyOptions.key) }
            let head = try Failure.map { try ledger.treeHead() }
            let signer = try NoteSigner(name: ledger.origin, privateKey: key)
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
