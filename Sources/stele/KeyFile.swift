import Foundation
import SteleCrypto

/// The daemon's Ed25519 signing key on disk: a PKCS #8 PEM file of mode 0600, outside the data directory.
enum KeyFile {
    /// Loads the key at `path`, refusing a file others can read.
    static func load(_ path: String) throws -> Ed25519PrivateKey {
        var info = stat()
        guard stat(path, &info) == 0 else { throw Failure.couldNotRun("cannot read the signing key \(path): \(String(cString: strerror(errno)))") }
        guard info.st_mode & 0o077 == 0 else {
            throw Failure.couldNotRun("the signing key \(path) is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        guard let pem = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Failure.couldNotRun("cannot read the signing key \(path)")
        }
        do { return try Ed25519PrivateKey(pemRepresentation: pem) } catch {
            throw Failure.couldNotRun("the signing key \(path) is not an Ed25519 PEM private key")
        }
    }

    /// Loads the key at `path`, creating a new one (mode 0600, directory 0700) if the file does not exist.
    static func loadOrCreate(_ path: String) throws -> Ed25519PrivateKey {
        if FileManager.default.fileExists(atPath: path) { return try load(path) }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let key = try Ed25519PrivateKey()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw Failure.couldNotRun("cannot create the signing key \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let pem = Array(key.pemRepresentation.utf8)
        guard write(fd, pem, pem.count) == pem.count, fsync(fd) == 0 else {
            throw Failure.couldNotRun("cannot write the signing key \(path)")
        }
        return key
    }
}
