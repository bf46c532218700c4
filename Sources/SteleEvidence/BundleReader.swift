import Foundation
import Glibc
import CSteleLinux

/// Reads a bundle's files from a directory or a `.tar` archive.
public enum BundleReader {
    /// File name (relative, `/`-separated) → bytes.
    public static func files(at path: String) throws(EvidenceError) -> [String: [UInt8]] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw EvidenceError(.notABundle, "\(path) does not exist")
        }
        guard isDirectory.boolValue else {
            guard let data = FileManager.default.contents(atPath: path) else { throw EvidenceError(.notABundle, "cannot read \(path)") }
            return try TarArchive.files(in: [UInt8](data))
        }
        guard let walker = FileManager.default.enumerator(atPath: path) else { throw EvidenceError(.notABundle, "cannot read the directory \(path)") }
        var files: [String: [UInt8]] = [:]
        while let name = walker.nextObject() as? String {
            var inner: ObjCBool = false
            let full = path + "/" + name
            guard FileManager.default.fileExists(atPath: full, isDirectory: &inner), !inner.boolValue else { continue }
            guard let data = FileManager.default.contents(atPath: full) else { throw EvidenceError(.notABundle, "cannot read \(full)") }
            files[name] = [UInt8](data)
        }
        return files
    }

    /// Writes `files` under the directory `path` (created; it must not exist or be empty), then
    /// syncs its file system once: a bundle is durable when this returns.
    public static func write(_ files: [String: [UInt8]], to path: String) throws(EvidenceError) {
        let manager = FileManager.default
        if let existing = try? manager.contentsOfDirectory(atPath: path), !existing.isEmpty {
            throw EvidenceError(.cannotExport, "\(path) already exists and is not empty; choose a new --out")
        }
        var directories = Set<String>()
        for name in files.keys {
            var parent = (name as NSString).deletingLastPathComponent
            while !parent.isEmpty {
                directories.insert(parent)
                parent = (parent as NSString).deletingLastPathComponent
            }
        }
        do {
            try manager.createDirectory(atPath: path, withIntermediateDirectories: true)
            for directory in directories.sorted() { try manager.createDirectory(atPath: path + "/" + directory, withIntermediateDirectories: true) }
        } catch {
            throw EvidenceError(.cannotExport, "cannot create the bundle directory \(path): \(error.localizedDescription)")
        }
        for (name, bytes) in files {
            let full = path + "/" + name
            let fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw EvidenceError(.cannotExport, "cannot write \(full): \(String(cString: strerror(errno)))") }
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == bytes.count else { throw EvidenceError(.cannotExport, "cannot write \(full): the disk is full or failing") }
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { if fd >= 0 { close(fd) } }
        guard fd >= 0, stele_syncfs(fd) == 0 else { throw EvidenceError(.cannotExport, "cannot sync the bundle at \(path): \(String(cString: strerror(errno)))") }
    }
}
