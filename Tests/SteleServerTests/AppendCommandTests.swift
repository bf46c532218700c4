import Foundation
import Glibc
import SteleTestSupport
import Testing

@Suite("stele append: requests left unanswered")
struct AppendCommandTests {
    /// How the scripted peer ends the connection after answering the first request.
    enum Ending: CaseIterable, Sendable {
        /// It closes with the other requests unread in its socket, as a daemon stopping would: the
        /// client sees the connection reset after the reply.
        case closesWithRequestsUnread
        /// It reads every request, then closes: the client sees the end of the stream.
        case closesAfterReadingAll
    }

    @Test("requests the peer never answered are counted on standard error and the exit status is 1", arguments: Ending.allCases)
    func unansweredRequestsFail(ending: Ending) throws {
        let root = TemporaryDirectory("stele-append")
        let path = root.appending("peer.sock")
        let listener = try Self.listen(at: path)
        defer { close(listener) }
        let input = (1...3).map { login("a\($0)") }.joined(separator: "\n") + "\n"
        let peer = Thread {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 16)
            repeat {
                let n = recv(fd, &buffer, buffer.count, 0)
                guard n > 0 else { break }
                received += buffer[..<n]
            } while ending == .closesAfterReadingAll && received.count < input.utf8.count
            let answer = Array(#"{"id":"a1","leaf":"AA==","ok":true,"seq":0}"#.utf8) + [0x0A]
            _ = send(fd, answer, answer.count, Int32(MSG_NOSIGNAL))
            close(fd)
        }
        peer.start()

        let (status, output, errors) = try SteleBinary.runKeepingErrors(["append", "--socket", path], input: input)
        #expect(status == 1, "\(errors)")
        #expect(output.split(separator: "\n").count == 1)
        #expect(output.contains(#""id":"a1""#))
        #expect(errors.contains("after answering the first 1 requests: the rest, from request 2 on"), "\(errors)")
    }

    /// A listening Unix socket at `path`.
    static func listen(at path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, 1) == 0 else {
            close(fd)
            throw ClientErrorLike("cannot listen on \(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }
}
