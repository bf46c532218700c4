import Foundation
public import SteleCrypto

/// The daemon's Ed25519 signing key on disk: a PKCS #8 PEM file of mode 0600 in a 0700 directory,
/// outside the data directory. Refuses a key file others can read.
public enum SigningKeyFile {
    /// Loads the key at `path`.
    /// - Throws: ``LedgerError`` `signing_key` naming the file and what is wrong with it.
    public static func load(_ path: String) throws -> Ed25519PrivateKey {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw LedgerError(.signingKey, "cannot read the signing key \(path): \(String(cString: strerror(errno)))")
        }
        try checkOwnership(path)
        guard let pem = try? String(contentsOfFile: path, encoding: .utf8), let key = try? Ed25519PrivateKey(pemRepresentation: pem) else {
            throw LedgerError(.signingKey, "the signing key \(path) is unreadable or not an Ed25519 PEM private key")
        }
        return key
    }

    /// Refuses a key file another user owns, or that others may read or write: they could copy the
    /// key, or replace it. Nothing to check when there is no file.
    public static func checkOwnership(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        guard info.st_uid == geteuid() else {
            throw LedgerError(.signingKey, "the signing key \(path) is owned by uid \(info.st_uid), not by this daemon's uid \(geteuid()); chown it")
        }
        guard info.st_mode & 0o077 == 0 else {
            let exposure = info.st_mode & 0o044 != 0 ? "readable" : "writable"
            throw LedgerError(.signingKey, "the signing key \(path) is \(exposure) by others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
    }

    /// Loads the key at `path`, creating a new one if no file exists there.
    public static func loadOrCreate(_ path: String) throws -> Ed25519PrivateKey {
        if FileManager.default.fileExists(atPath: path) { return try load(path) }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let key = try Ed25519PrivateKey()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw LedgerError(.signingKey, "cannot create the signing key \(path): \(String(cString: strerror(errno)))") }
        let pem = Array(key.pemRepresentation.utf8)
        let written = pem.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == pem.count, synced == 0 else { throw LedgerError(.signingKey, "cannot write the signing key \(path)") }
        return key
    }
}
