import Foundation
public import SteleCore

/// The off-host checkpoint directory: one file per signed tree size, `checkpoint.<size, 20 digits>`,
/// and a copy named `latest`. Files are written durably (fsync, rename, fsync of the directory).
public struct CheckpointDirectory: Sendable {
    /// The directory.
    public let path: String

    /// The directory at `path`.
    public init(path: String) {
        self.path = path
    }

    /// Writes a signed checkpoint for `size`.
    public func write(_ note: SignedNote, size: UInt64) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let bytes = Array(note.serialized.utf8)
        try writeDurably(bytes, name: String(format: "checkpoint.%020llu", size))
        try writeDurably(bytes, name: "latest")
    }

    /// The newest checkpoint in the directory (largest size among `checkpoint.*` files), as note bytes.
    public func newest() throws -> (name: String, bytes: [UInt8])? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let names = try FileManager.default.contentsOfDirectory(atPath: path)
            .filter { $0.hasPrefix("checkpoint.") && !$0.hasSuffix(".tmp") }.sorted()
        guard let name = names.last else { return nil }
        let data = try Data(contentsOf: URL(fileURLWithPath: path + "/" + name))
        return (name, [UInt8](data))
    }

    private func writeDurably(_ bytes: [UInt8], name: String) throws {
        let final = path + "/" + name
        let temporary = final + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CheckpointDirectoryError(message: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, final) == 0 else {
            throw CheckpointDirectoryError(message: "cannot write \(final): \(String(cString: strerror(errno)))")
        }
        let directory = open(path, O_RDONLY)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}

/// A checkpoint file could not be written or read.
public struct CheckpointDirectoryError: Error, Sendable, CustomStringConvertible {
    /// What failed.
    public let message: String
    public var description: String { message }
}
