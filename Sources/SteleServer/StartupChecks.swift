import Foundation
import SteleCore
import SteleCrypto
import SteleStore

/// The checks `stele serve` makes before it opens the socket. Each refusal is one line saying what
/// is wrong and what to do.
enum StartupChecks {
    /// Refuses an existing directory that another user owns, or that group or others may write:
    /// whoever can write it can delete or replace the store, its journal or its checkpoints.
    static func privateDirectory(_ path: String, what: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { return }  // created later, mode 0700
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw DaemonError("the \(what) \(path) is not a directory") }
        guard info.st_uid == geteuid() else {
            throw DaemonError("the \(what) \(path) is owned by uid \(info.st_uid), not by this daemon's uid \(geteuid())")
        }
        guard info.st_mode & 0o022 == 0 else {
            throw DaemonError("the \(what) \(path) is writable by \(info.st_mode & 0o002 != 0 ? "others" : "group") (mode \(String(info.st_mode & 0o777, radix: 8))): anyone who can write it can remove acknowledged entries; chmod go-w it")
        }
    }

    /// Refuses a signing key that another user owns or others may read or write, in a directory
    /// another user owns or others may write, or reached through a directory others may write
    /// (one with the sticky bit, such as /tmp, protects what is ours in it).
    static func keyPath(_ path: String) throws {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        var info = stat()
        if lstat(absolute, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFREG else { throw DaemonError("the signing key \(path) is not a regular file") }
            do { try SigningKeyFile.checkOwnership(absolute) } catch let error as LedgerError { throw DaemonError(error.message) }
        }
        var directory = (absolute as NSString).deletingLastPathComponent
        var nearest = true
        while true {
            if stat(directory, &info) == 0 {
                if nearest {
                    nearest = false
                    guard info.st_uid == geteuid() || info.st_uid == 0 else {
                        throw DaemonError("the signing key's directory \(directory) is owned by uid \(info.st_uid), not by this daemon's uid \(geteuid())")
                    }
                }
                guard info.st_mode & 0o002 == 0 || info.st_mode & S_ISVTX != 0 else {
                    throw DaemonError("the signing key \(path) is reached through \(directory), which others may write (mode \(String(info.st_mode & 0o777, radix: 8))): they could replace the key; keep it in a directory only its owner writes")
                }
            }
            if directory == "/" || directory.isEmpty { break }
            directory = (directory as NSString).deletingLastPathComponent
        }
    }

    /// Refuses to create a new signing key for a log that exists (a store or checkpoints): its
    /// checkpoints are signed with the lost one. Nothing is created.
    static func keyPresentForExistingLog(_ key: String, data: String, checkpoints: CheckpointDirectory) throws {
        guard !FileManager.default.fileExists(atPath: key) else { return }
        let hasCheckpoints = ((try? checkpoints.newest()) ?? nil) != nil
        guard Ledger.storeExists(at: data) || hasCheckpoints else { return }
        throw DaemonError("the signing key \(key) is missing, but the log it signs exists (\(Ledger.storeExists(at: data) ? data : checkpoints.path)): restore the signing key from your backup; a new key would not verify the log's checkpoints")
    }

    /// Creates the data directory (0700) if it is missing (``privateDirectory(_:what:)`` checked an existing one).
    static func dataDirectory(_ path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw DaemonError("cannot create the data directory \(path): \(error.localizedDescription)")
            }
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

    /// Refuses a data directory without a store: logs are created by `stele init` only, so a daemon
    /// started in the wrong directory never starts a second log.
    static func storePresent(_ data: String) throws {
        guard !Ledger.storeExists(at: data) else { return }
        throw DaemonError("no log at \(data): create one with stele init --data \(data) [--origin NAME] (or point --data at the log's directory)")
    }

    /// Refuses a store that is behind, or disagrees with, the newest checkpoint held outside it.
    /// - Returns: the size of that checkpoint (0 if none).
    static func checkpointAgreement(ledger: Ledger, directory: CheckpointDirectory, verifier: NoteVerifierKey) throws -> UInt64 {
        // After a rotation the key must be the one the log handed over to; the newest checkpoint may
        // still be the old key's (the one covering the rotation).
        let rotations = try ledger.keyRotations()
        if let last = rotations.last, last.next != verifier {
            throw DaemonError("the signing key (\(verifier)) is not the log's current key: it was rotated to \(last.next.map { "\($0)" } ?? "an unreadable key") at entry \(last.seq); start with that key's file; refusing to start")
        }
        guard let (name, bytes) = try directory.newest() else { return 0 }
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.open(bytes, trusting: [verifier] + rotations.compactMap(\.previous), origin: ledger.origin)
        } catch {
            throw DaemonError("the newest checkpoint \(directory.path)/\(name) does not verify with this log's key and origin: \(error); refusing to start")
        }
        let size = try ledger.size
        guard checkpoint.size <= size else {
            throw DaemonError("the store has \(size) entries but the checkpoint \(directory.path)/\(name) covers \(checkpoint.size): this store is older than the log (a restored backup?); refusing to start rather than fork the log: see stele restore (docs/operations.md)")
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
        if let problem = try ledger.contradiction(of: mark, size: writer.size) {
            throw DaemonError("\(problem) (\(file)); restore them, or see stele recover; refusing to start rather than sign a shorter or different log")
        }
    }
}
