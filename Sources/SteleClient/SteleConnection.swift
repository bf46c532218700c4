import CSteleLinux
import Glibc

/// A blocking connection to `stele serve` over its Unix-domain socket, for services written in Swift.
///
/// Requests are JSON lines (`Specs/protocol.md`); replies come back one line each, in request order,
/// so a caller may pipeline: send many lines, then read as many replies. Not thread-safe: use one
/// connection per thread, or one thread for sending and one for receiving.
public final class SteleConnection: @unchecked Sendable {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var start = 0

    /// Connects to the daemon's socket at `path`.
    public init(socketPath path: String) throws {
        let fd = stele_unix_connect(path)
        guard fd >= 0 else {
            throw ClientError("cannot connect to \(path): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Sends one request line (a newline is added).
    public func send(_ line: String) throws {
        try send(bytes: Array(line.utf8) + [0x0A])
    }

    /// Sends raw bytes (callers batching many lines into one write).
    public func send(bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError("sending to the daemon failed: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }

    /// Closes the sending side (the daemon still answers what it received).
    public func finishSending() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Reads the next reply line (without its newline), or nil at end of stream.
    public func receive() throws -> String? {
        try receive { String(decoding: $0, as: UTF8.self) }
    }

    /// Reads the next reply line and passes its bytes (without the newline, valid only during the
    /// call) to `body`; nil at end of stream. No copy is made of the line.
    public func receive<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                let result = try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<newline])) }
                start = newline + 1
                return result
            }
            // Keep only the unread tail, then read into the spare room after it.
            if start > 0 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            let used = buffer.count
            let room = Swift.max(65_536, used)
            var received = 0
            buffer.append(contentsOf: repeatElement(0, count: room))
            while true {
                received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + used, room, 0) }
                if received >= 0 || errno != EINTR { break }
            }
            buffer.removeLast(room - Swift.max(received, 0))
            if received < 0 {
                throw ClientError("reading from the daemon failed: \(String(cString: strerror(errno)))")
            }
            if received == 0 { return nil }
        }
    }

    /// Sends one request and waits for its reply.
    public func request(_ line: String) throws -> String {
        try send(line)
        guard let reply = try receive() else { throw ClientError("the daemon closed the connection") }
        return reply
    }
}
