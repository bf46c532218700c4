import CSteleLinux
import Glibc

/// Connecting to a Unix socket path, to tell a live daemon's socket from a stale file.
enum SocketProbe {
    struct Refused: Error {}

    static func connect(_ path: String) throws -> Int32 {
        let fd = stele_unix_connect(path)
        guard fd >= 0 else { throw Refused() }
        return fd
    }
}
