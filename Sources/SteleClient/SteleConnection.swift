import CSteleLinux
import Glibc

/// A blocking connection to `stele serve` over its Unix-domain socket, for services written in Swift.
///
/// Requests are JSON lines (`Specs/protocol.md`); replies come back one line each, in request order,
/// so a caller may pipeline: send many lines, then read as many replies. Not thread-safe: use one
/// connection per thread, or one thread for sending and one for receiving.
public final class SteleConnection: @unchecked Sendable {
    private let fd: Int32
    /// Received bytes: `buffer[start..<end]` is not yet returned; the rest is room for reading.
    private var buffer = [UInt8](repeating: 0, count: 65_536)
    private var start = 0
    private var end = 0

    /// Connects to the daemon's socket at `path`.
    public init(socketPath path: String) throws {
        let fd = stele_unix_connect(path)
        guard fd >= 0 else {
            throw ClientError("cannot connect to \(path): \(String(cString: strerror(errno)))")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// The connection's socket, for a caller that waits on several connections at once (`poll(2)`
    /// for `POLLIN`) and then calls ``receive()`` on a ready one. Read and write only through this
    /// connection: it keeps received bytes that ``receive()`` has not yet returned.
    public var descriptor: Int32 { fd }

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
    ///
    /// Throws a ``ClientError`` of kind ``ClientError/Kind/closedWithRequestsUnread``, after the
    /// last reply, if the daemon closed the connection with requests of it still unread.
    public func receive<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        var checked = 0  // unread bytes already known to hold no newline
        while true {
            if let newline = buffer[(start + checked)..<end].firstIndex(of: 0x0A) {
                let result = try buffer.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<newline])) }
                start = newline + 1
                return result
            }
            checked = end - start
            try fill()
            if end - start == checked { return nil }  // end of stream
        }
    }

    /// Reads what the daemon has sent into the room after `end` (first moving the unread tail to
    /// the front, or growing the buffer when a line fills it). Leaves `end` unchanged at end of stream.
    private func fill() throws {
        if start > 0 {
            let unread = end - start
            buffer.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: $0.baseAddress! + start, byteCount: unread) }
            (start, end) = (0, unread)
        }
        if end == buffer.count { buffer += repeatElement(0, count: buffer.count) }
        // Wait in poll(2) rather than in recv(2): the kernel wakes a reader blocked in recv on a
        // Unix socket whenever the daemon frees send space (each time it reads a request), while
        // poll sleeps until there is data to read; on a busy host this halves the wakeups.
        var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&ready, 1, -1) < 0 {
            guard errno == EINTR else {
                throw ClientError("waiting for the daemon failed: \(String(cString: strerror(errno)))")
            }
        }
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + end, $0.count - end, 0) }
            if received >= 0 {
                end += received
                return
            }
            if errno == ECONNRESET {
                // The kernel reports the reset only after every byte the daemon sent has been read.
                throw ClientError(
                    "the daemon closed the connection without reading every request sent; those after the last reply were not taken (retry them with the same ids)",
                    code: .closedWithRequestsUnread)
            }
            guard errno == EINTR else {
                throw ClientError("reading from the daemon failed: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Sends one request and waits for its reply.
    public func request(_ line: String) throws -> String {
        try send(line)
        guard let reply = try receive() else { throw ClientError("the daemon closed the connection") }
        return reply
    }
}
