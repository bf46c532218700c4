import ArgumentParser
import Foundation
import SteleCore
import SteleCrypto
import SteleStore

/// `stele backup`: a compacted, consistent copy of the store, safe while the daemon runs
/// (`Specs/store.md`, "Backup and restore"). Never the signing key.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Copy the store, compacted and consistent, while the daemon runs (exit 0 written, 2 could not run).")

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "The backup directory to create (empty or absent).") var out: String
    @Flag(help: "Output the manifest as JSON.") var json = false

    func run() throws {
        if let existing = try? FileManager.default.contentsOfDirectory(atPath: out), !existing.isEmpty {
            throw Failure.couldNotRun("\(out) already exists and is not empty; choose a new --out")
        }
        // Read-only opening waits until the store holds every entry acknowledged before now.
        let ledger = try dataOptions.openReadOnly()
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
            throw Failure.couldNotRun("cannot create \(out): \(error.localizedDescription)")
        }
        let manifest = try Failure.map { try ledger.backup(to: out) }
        if json {
            printLine(manifest.json.canonicalText)
        } else {
            printLine("backed up \(manifest.size) entries of \(manifest.origin) to \(out) (root \(Base64.encode(manifest.root.bytes)))")
            printLine("the signing key is not in it: keep its own offline copy (docs/operations.md)")
        }
    }
}

/// `stele restore`: puts a backup back. A backup older than the log's checkpoints cannot continue
/// that log without forking it: it becomes a new log whose first new entry, `ledger.restored`,
/// cites the old one.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Restore a backup; one older than the log's checkpoints becomes a new log citing the old (exit 0 restored, 2 refused).")

    @Argument(help: "The backup directory.") var backup: String
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "The log's checkpoint directory (outside the data directory).") var checkpoints: String = "./stele-checkpoints"
    @Option(help: "The new log's origin when the backup must start a new log (default: a unique one).") var origin: String?
    @Option(help: "Why, recorded in ledger.restored.") var reason: String = "restored from a backup"
    @Flag(help: "Output JSON.") var json = false

    func run() throws {
        guard let manifestBytes = FileManager.default.contents(atPath: backup + "/backup.json") else {
            throw Failure.couldNotRun("\(backup) holds no backup.json: not a stele backup")
        }
        let manifest = try Failure.map { try BackupManifest(parsing: [UInt8](manifestBytes)) }
        if Ledger.storeExists(at: dataOptions.data) {
            throw Failure.couldNotRun("\(dataOptions.data) already holds a store: restore into an empty data directory (move the damaged one aside first)")
        }
        // What the log showed outside its store: its newest checkpoint and acknowledged mark.
        let directory = CheckpointDirectory(path: checkpoints)
        let newest = try? directory.newest()
        let newestCheckpoint = newest.flatMap { try? SignedNote(parsing: $0.bytes) }.flatMap { try? Checkpoint(parsing: $0.text) }
        let mark = try? directory.acknowledged()
        if let newestCheckpoint, newestCheckpoint.origin != manifest.origin {
            throw Failure.couldNotRun("\(checkpoints) holds checkpoints of \(newestCheckpoint.origin), but the backup is of \(manifest.origin): give that log's checkpoint directory")
        }
        let logSize = max(newestCheckpoint?.size ?? 0, mark?.origin == manifest.origin ? mark?.size ?? 0 : 0)
        let behind = logSize > manifest.size
        var archived: String?
        var newLog: (origin: String, oldCheckpoint: String?, reason: String, operatorName: String)?
        if behind {
            let name = origin ?? Ledger.defaultOrigin
            newLog = (name, newest.map { String(decoding: $0.bytes, as: UTF8.self) }, reason, "uid:\(getuid())")
        }
        let restored = try Failure.map { try Ledger.restore(backup: backup, to: dataOptions.data, newLog: newLog) }
        if !behind, let newestCheckpoint, try Failure.map({ try restored.ledger.rootHash(size: newestCheckpoint.size) }) != newestCheckpoint.rootHash {
            try? FileManager.default.removeItem(atPath: dataOptions.data + "/data.mdb")
            throw Failure.couldNotRun("the backup disagrees with the log's checkpoint of \(newestCheckpoint.size) entries in \(checkpoints): it is not a copy of that log; nothing restored")
        }
        if behind {
            // The old log's checkpoints stay, under a name of their own; the new log starts a directory.
            let stamp = Timestamp.now().description.replacingOccurrences(of: ":", with: "")
            let moved = checkpoints.hasSuffix("/") ? String(checkpoints.dropLast()) : checkpoints
            archived = moved + ".before-restore-" + stamp
            guard rename(moved, archived!) == 0 else {
                throw Failure.couldNotRun("the new log is in \(dataOptions.data), but \(checkpoints) could not be moved aside (\(String(cString: strerror(errno)))): move it yourself before starting the daemon")
            }
            try? FileManager.default.createDirectory(atPath: moved, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        if json {
            printLine(JSONValue.object([
                "restored_entries": .integer(Int64(manifest.size)), "origin": .string(restored.ledger.origin), "new_log": .bool(behind),
                "restored_entry": restored.restored.map { .integer(Int64($0)) } ?? .null, "old_origin": .string(manifest.origin),
                "old_checkpoints": archived.map(JSONValue.string) ?? .null,
            ]).canonicalText)
        } else if let seq = restored.restored {
            printLine("the backup holds \(manifest.size) entries of \(manifest.origin), whose checkpoints show \(logSize): it cannot continue that log without forking it")
            printLine("restored as a new log, \(restored.ledger.origin); entry \(seq), ledger.restored, cites the old log and the backup")
            printLine("the old log's checkpoints are kept in \(archived ?? "?"); publish the new origin and its verifier key (stele key show) to auditors")
        } else {
            printLine("restored \(manifest.size) entries of \(manifest.origin) into \(dataOptions.data); the log continues")
            if newestCheckpoint == nil {
                printLine("note: \(checkpoints) holds no checkpoint of this log, so nothing showed whether the log had grown past this backup")
            }
        }
    }
}
