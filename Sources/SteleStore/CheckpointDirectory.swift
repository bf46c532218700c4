import Foundation
public import SteleCore
public import SteleCrypto

/// The off-host checkpoint directory: one file per signed tree size, `checkpoint.<size, 20 digits>`,
/// and a copy named `latest`. Files are written durably (fsync, rename, fsync of the directory).
public struct CheckpointDirectory: Sendable {
    /// The directory.
    public let path: String
    /// How many `checkpoint.*` files ``prune()`` keeps, the newest; 0 keeps every file.
    public let kept: Int

    /// The directory at `path`, keeping the newest `kept` checkpoint files (0: all).
    public init(path: String, kept: Int = 0) {
        self.path = path
        self.kept = kept
    }

    /// Deletes all but the newest ``kept`` checkpoint files (none when ``kept`` is 0). The newest,
    /// which decides whether a store may be served, is never deleted; every checkpoint also stays in
    /// the ledger's own `checkpoints` database.
    /// - Returns: how many files were deleted.
    @discardableResult
    public func prune() throws -> Int {
        guard kept > 0, FileManager.default.fileExists(atPath: path) else { return 0 }
        let names = try checkpointNames()
        guard names.count > kept else { return 0 }
        var deleted = 0
        for name in names.dropLast(kept) where unlink(path + "/" + name) == 0 { deleted += 1 }
        return deleted
    }

    /// `checkpoint.*` file names, oldest (smallest size) first.
    private func checkpointNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path)
            .filter { $0.hasPrefix("checkpoint.") && !$0.hasSuffix(".tmp") }.sorted()
    }

    /// Writes a signed checkpoint for `size`.
    public func write(_ note: SignedNote, size: UInt64) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let bytes = Array(note.serialized.utf8)
        try writeDurably(bytes, name: String(format: "checkpoint.%020llu", size))
        try writeDurably(bytes, name: "latest")
    }

    /// The newest checkpoint in the directory (largest size among `checkpoint.*` files), as note bytes.
    public func newest() throws -> (name: String, bytes: [UInt8])? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let name = try checkpointNames().last else { return nil }
        let data = try Data(contentsOf: URL(fileURLWithPath: path + "/" + name))
        return (name, [UInt8](data))
    }

    /// The log's acknowledged high-water mark (`acknowledged`): the size of the log its writer had
    /// acknowledged and the leaf hash of its last entry, written about once a second and when the
    /// writer stops (`Specs/store.md`, "Acknowledged mark").
    public struct AcknowledgedMark: Sendable, Equatable {
        public let origin: String
        public let size: UInt64
        public let leaf: SHA256Digest

        public init(origin: String, size: UInt64, leaf: SHA256Digest) {
            self.origin = origin
            self.size = size
            self.leaf = leaf
        }

        /// `stele-acknowledged/1 <origin> <size> <base64 leaf>` and a newline.
        var text: String { "stele-acknowledged/1 \(origin) \(size) \(Base64.encode(leaf.bytes))\n" }

        init?(text: String) {
            let fields = text.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 4, fields[0] == "stele-acknowledged/1", let size = UInt64(fields[2]),
                let bytes = Base64.decode(String(fields[3].trimmingCharacters(in: .newlines))), let leaf = SHA256Digest(bytes: bytes)
            else { return nil }
            self.init(origin: String(fields[1]), size: size, leaf: leaf)
        }
    }

    /// Records the acknowledged mark, durably.
    public func writeAcknowledged(_ mark: AcknowledgedMark) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try writeDurably(Array(mark.text.utf8), name: "acknowledged")
    }

    /// The acknowledged mark, if one was written.
    /// - Throws: `checkpoint_file` when the file exists but does not read as a mark.
    public func acknowledged() throws -> AcknowledgedMark? {
        let file = path + "/acknowledged"
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8), let mark = AcknowledgedMark(text: text) else {
            throw LedgerError(.checkpointFile, "\(file) is not an acknowledged mark (stele-acknowledged/1 ORIGIN SIZE LEAF)")
        }
        return mark
    }

    private func writeDurably(_ bytes: [UInt8], name: String) throws {
        let final = path + "/" + name
        let temporary = final + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw LedgerError(.checkpointFile, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        // Public, whatever the umask: the daemon narrows it while it binds its socket, on another thread.
        fchmod(fd, 0o644)
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, final) == 0 else {
            throw LedgerError(.checkpointFile, "cannot write \(final): \(String(cString: strerror(errno)))")
        }
        let directory = open(path, O_RDONLY)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}

extension Ledger {
    /// How a log of `size` entries (the store and its journal) contradicts the acknowledged `mark`:
    /// shorter than what was acknowledged, or a different entry where the last acknowledged one
    /// was; nil when it holds everything the mark names.
    public func contradiction(of mark: CheckpointDirectory.AcknowledgedMark, size: UInt64) throws -> String? {
        guard mark.size <= size else {
            return "the log has \(size) entries, but its daemon had acknowledged \(mark.size): acknowledged entries are missing (the store or its journal was truncated, replaced, or restored from an older copy)"
        }
        guard mark.size > 0, MerkleHasher().leafHash(try entry(mark.size - 1).headerBytes) != mark.leaf else { return nil }
        return "entry \(mark.size - 1) is not the one the daemon acknowledged: the log was replaced or rewritten"
    }
}
