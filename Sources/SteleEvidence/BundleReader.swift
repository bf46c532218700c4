import Foundation

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

    /// Writes `files` under the directory `path` (created; it must not exist or be empty).
    public static func write(_ files: [String: [UInt8]], to path: String) throws(EvidenceError) {
        let manager = FileManager.default
        if let existing = try? manager.contentsOfDirectory(atPath: path), !existing.isEmpty {
            throw EvidenceError(.cannotExport, "\(path) already exists and is not empty; choose a new --out")
        }
        do {
            for (name, bytes) in files {
                let full = path + "/" + name
                try manager.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                guard manager.createFile(atPath: full, contents: Data(bytes), attributes: [.posixPermissions: 0o644]) else {
                    throw EvidenceError(.cannotExport, "cannot write \(full)")
                }
            }
        } catch let error as EvidenceError {
            throw error
        } catch {
            throw EvidenceError(.cannotExport, "cannot write the bundle to \(path): \(error.localizedDescription)")
        }
    }
}
