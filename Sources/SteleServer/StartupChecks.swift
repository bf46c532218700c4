import Foundation
import SteleCore
import SteleCrypto
import SteleStore

/// The checks `stele serve` makes before it opens the socket.
enum StartupChecks {
    /// Creates the data directory (0700) if needed and refuses one owned by another user.
    static func dataDirectory(_ path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw DaemonError("cannot create the data directory \(path): \(error.localizedDescription)")
            }
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw DaemonError("the data path \(path) is not a directory")
        }
        guard info.st_uid == geteuid() else {
            throw DaemonError("the data directory \(path) is owned by uid \(info.st_uid), not by this daemon's uid \(geteuid())")
        }
    }

    /// The absolute, symlink-free form of `path` (of its parent when the file does not exist yet).
    static func resolved(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        if FileManager.default.fileExists(atPath: url.path) { return url.resolvingSymlinksInPath().path }
        return url.deletingLastPathComponent().resolvingSymlinksInPath().appendingPathComponent(url.lastPathComponent).path
    }

    /// Refuses a key or checkpoint directory inside the data directory: they must leave the host with it.
    static func outside(_ path: String, of data: String, what: String) throws {
        let inner = resolved(path)
        let outer = resolved(data)
        if inner == outer || inner.hasPrefix(outer + "/") {
            throw DaemonError("the \(what) \(path) is inside the data directory \(data); keep it outside (a backup of the data must not hold it)")
        }
    }

    /// Refuses to create a store while the checkpoint directory already holds a log's checkpoints:
    /// the store of that log is missing (deleted, emptied, or a wrong `--data`), and a new one would
    /// fork it. Runs before anything is created, so the refusal changes nothing.
    static func noLogWithoutStore(_ data: String, checkpoints: CheckpointDirectory) throws {
        guard !Ledger.storeExists(at: data), let (name, bytes) = try? checkpoints.newest() else { return }
        // Named from the note's text, unverified: the refusal does not depend on it.
        let parsed = (try? SignedNote(parsing: bytes)).flatMap { try? Checkpoint(parsing: $0.text) }
        let log = parsed.map { "the log \($0.origin) (\($0.size) entries)" } ?? "a log"
        throw DaemonError(
            "the data directory \(data) holds no store, but the checkpoint directory \(checkpoints.path) holds checkpoints of \(log), newest \(name): refusing to create a new store that would fork it; restore that log's store, or start a new log with an empty --checkpoints directory")
    }

    /// Refuses a store that is behind, or disagrees with, the newest checkpoint held outside it.
    /// - Returns: the size of that checkpoint (0 if none).
    static func checkpointAgreement(ledger: Ledger, directory: CheckpointDirectory, verifier: NoteVerifierKey) throws -> UInt64 {
        guard let (name, bytes) = try directory.newest() else { return 0 }
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.open(bytes, trusting: [verifier], origin: ledger.origin)
        } catch {
            throw DaemonError("the newest checkpoint \(directory.path)/\(name) does not verify with this log's key and origin: \(error); refusing to start")
        }
        let size = try ledger.size
        guard checkpoint.size <= size else {
            throw DaemonError("the store has \(size) entries but the checkpoint \(directory.path)/\(name) covers \(checkpoint.size): this store is older than the log (a restored backup?); refusing to start rather than fork the log")
        }
        let root = try ledger.rootHash(size: checkpoint.size)
        guard root == checkpoint.rootHash else {
            throw DaemonError("the store's root at size \(checkpoint.size) differs from the checkpoint \(directory.path)/\(name): the store was replaced or altered; refusing to start")
        }
        return checkpoint.size
    }

    /// Refuses a log shorter than, or different from, what this log's daemon acknowledged (the
    /// acknowledged mark in the checkpoint directory): acknowledged entries went missing with the
    /// store or the journal (truncated, replaced, or an older copy restored).
    static func acknowledgedMark(writer: LedgerWriter, directory: CheckpointDirectory) throws {
        let ledger = writer.ledger
        let mark: CheckpointDirectory.AcknowledgedMark?
        do { mark = try directory.acknowledged() } catch let error as LedgerError { throw DaemonError(error.message) }
        guard let mark else { return }
        let file = directory.path + "/acknowledged"
        guard mark.origin == ledger.origin else {
            throw DaemonError("\(file) belongs to the log \(mark.origin), not to this store's \(ledger.origin): use that log's checkpoint directory; refusing to start")
        }
        let size = writer.size
        guard mark.size <= size else {
            throw DaemonError("the log has \(size) entries, but its daemon had acknowledged \(mark.size) (\(file)): acknowledged entries are missing (the store or its journal was truncated, replaced, or restored from an older copy); restore them, or see stele recover; refusing to start rather than sign a shorter log")
        }
        guard mark.size > 0 else { return }
        let leaf = MerkleHasher().leafHash(try ledger.entry(mark.size - 1).headerBytes)
        guard leaf == mark.leaf else {
            throw DaemonError("entry \(mark.size - 1) is not the one the daemon acknowledged (\(file)): the log was replaced or rewritten; refusing to start")
        }
    }
}
