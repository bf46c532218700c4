public import SteleCore
import Foundation
import Glibc
public import SteleCrypto
import SteleLMDB

/// `backup.json`: what a backup holds (`Specs/store.md`, "Backup and restore").
public struct BackupManifest: Sendable {
    public static let format = "stele-backup/1"
    public var origin: String
    public var size: UInt64
    public var root: SHA256Digest
    /// The newest checkpoint the store held, as note text (covering at most `size` entries).
    public var checkpoint: String?
    public var created: Timestamp
    /// SHA-256 (hex) of `data.mdb`.
    public var dataSHA256: String

    public var json: JSONValue {
        .object([
            "format": .string(Self.format), "origin": .string(origin), "size": .integer(Int64(size)), "root": .string(Base64.encode(root.bytes)),
            "checkpoint": checkpoint.map(JSONValue.string) ?? .null, "created": .string(created.description), "data_sha256": .string(dataSHA256),
        ])
    }

    public init(parsing bytes: [UInt8]) throws {
        guard let value = try? JSONParser.parse(bytes), value["format"]?.stringValue == Self.format,
            let origin = value["origin"]?.stringValue, let size = value["size"]?.integerValue, size >= 0,
            let root = value["root"]?.stringValue.flatMap(Base64.decode).flatMap({ SHA256Digest(bytes: $0) }),
            let created = value["created"]?.stringValue.flatMap(Timestamp.init(rfc3339:)), let digest = value["data_sha256"]?.stringValue
        else { throw LedgerError(.invalidEvent, "backup.json is not a \(Self.format) manifest") }
        self.init(origin: origin, size: UInt64(size), root: root, checkpoint: value["checkpoint"]?.stringValue, created: created, dataSHA256: digest)
    }

    init(origin: String, size: UInt64, root: SHA256Digest, checkpoint: String?, created: Timestamp, dataSHA256: String) {
        self.origin = origin
        self.size = size
        self.root = root
        self.checkpoint = checkpoint
        self.created = created
        self.dataSHA256 = dataSHA256
    }
}

extension Ledger {
    /// Writes a compacted copy of the store, as one read snapshot holds it, into the empty directory
    /// `out` (`data.mdb` and `backup.json`), safe beside a running daemon. The copy records no
    /// writer's journal: it is complete as it stands. Never includes the signing key.
    public func backup(to out: String) throws -> BackupManifest {
        do { try environment.copyCompacted(to: out) } catch {
            throw LedgerError(.storage, "the backup copy to \(out) failed: \(error)")
        }
        // The copy is this process's alone: clear the live writer's journal mark in it, read its head.
        let copy = try Ledger(path: out)
        try copy.write { txn, _, _ in try copy.setJournalMark(nil, txn: txn) }
        let head = try copy.treeHead()
        let checkpoint = try copy.latestCheckpoint()
        unlink(out + "/lock.mdb")
        let manifest = BackupManifest(
            origin: origin, size: head.size, root: head.root, checkpoint: checkpoint, created: .now(),
            dataSHA256: try Self.fileDigest(out + "/data.mdb"))
        let text = manifest.json.canonicalBytes + [0x0A]
        guard FileManager.default.createFile(atPath: out + "/backup.json", contents: Data(text), attributes: [.posixPermissions: 0o600]) else {
            throw LedgerError(.storage, "cannot write \(out)/backup.json")
        }
        return manifest
    }

    static func fileDigest(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw LedgerError(.storage, "cannot read \(path)") }
        defer { try? handle.close() }
        let sha = SHA256()
        sha.begin()
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { sha.update([UInt8](chunk)) }
        return sha.finish().hex
    }

    /// Restores the backup in directory `backup` into the data directory `data` (which must hold no
    /// store): checks the copy against its manifest, then copies it in. As `newLog`, the copy
    /// becomes a new log: its origin is changed, the old log's stored checkpoints are dropped (they
    /// stay in the backup), and its next entry is `ledger.restored`, citing the old log.
    /// - Returns: the restored ledger, and the `ledger.restored` entry's seq for a new log.
    public static func restore(
        backup: String, to data: String, newLog: (origin: String, oldCheckpoint: String?, reason: String, operatorName: String)?
    ) throws -> (ledger: Ledger, restored: UInt64?, manifest: BackupManifest) {
        guard let bytes = FileManager.default.contents(atPath: backup + "/backup.json") else {
            throw LedgerError(.invalidEvent, "\(backup) holds no backup.json: not a stele backup")
        }
        let manifest = try BackupManifest(parsing: [UInt8](bytes))
        let digest = try fileDigest(backup + "/data.mdb")
        guard digest == manifest.dataSHA256 else {
            throw LedgerError(.corrupt, "\(backup)/data.mdb does not match its manifest (SHA-256 \(digest), the manifest says \(manifest.dataSHA256)): the backup is damaged")
        }
        guard !storeExists(at: data) else { throw LedgerError(.invalidEvent, "\(data) already holds a store: restore into an empty data directory") }
        do {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.copyItem(atPath: backup + "/data.mdb", toPath: data + "/data.mdb")
        } catch {
            throw LedgerError(.storage, "cannot copy the backup into \(data): \(error.localizedDescription)")
        }
        chmod(data + "/data.mdb", 0o600)
        var ledger = try Ledger(path: data)
        let head = try ledger.treeHead()
        guard head.size == manifest.size, head.root == manifest.root, ledger.origin == manifest.origin else {
            throw LedgerError(.corrupt, "the restored store does not hold what its manifest says (size \(head.size), root \(Base64.encode(head.root.bytes))): the backup is damaged")
        }
        guard let newLog else { return (ledger, nil, manifest) }
        guard NoteVerifierKey.isValidName(newLog.origin), newLog.origin != manifest.origin else {
            throw LedgerError(.invalidEvent, "the new log needs a new origin (one line, no spaces or +), not \(newLog.origin)")
        }
        try ledger.environment.withWriteTransaction { txn in
            try txn.put(ledger.databases.meta, key: LedgerKeys.originKey, value: Array(newLog.origin.utf8))
            try txn.empty(ledger.databases.checkpoints)
        }
        ledger = try Ledger(path: data)
        let writer = try LedgerWriter(ledger: ledger)
        var attributes: [String: JSONValue] = [
            "origin": .string(manifest.origin), "backup_size": .integer(Int64(manifest.size)), "backup_root": .string(Base64.encode(manifest.root.bytes)),
            "backup_checkpoint": manifest.checkpoint.map(JSONValue.string) ?? .null, "backup_created": .string(manifest.created.description),
            "reason": .string(newLog.reason),
        ]
        if let old = newLog.oldCheckpoint { attributes["old_checkpoint"] = .string(old) }
        let seq = try writer.perform { context in
            try context.append(Event.ledger("ledger.restored", actor: newLog.operatorName, attributes: attributes)).seq
        }
        try writer.close()
        return (ledger, seq, manifest)
    }
}
