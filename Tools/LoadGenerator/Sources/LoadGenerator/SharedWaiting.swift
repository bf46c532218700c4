// `--mode wait --threads T`: waiting clients that share a thread. Each connection sends its next
// request only once the reply to the previous one has arrived, exactly as in `runWaiting`; one
// poll set tells the thread which connections have a reply to read.
import Foundation
import Glibc

struct LoadGeneratorError: Error, CustomStringConvertible {
    let description: String
}

/// One waiting client's connection: its socket, the reply bytes read so far, and its request.
private struct WaitingClient {
    let client: Int
    let fd: Int32
    var received: [UInt8] = []
    var line: [UInt8] = []
    var n = 0
    var sent: UInt64 = 0
}

/// Connects a blocking stream socket to the daemon's Unix socket.
private func connectUnix(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw LoadGeneratorError(description: "socket: \(String(cString: strerror(errno)))") }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
        close(fd)
        throw LoadGeneratorError(description: "socket path too long: \(path)")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: bytes) }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard result == 0 else {
        let reason = String(cString: strerror(errno))
        close(fd)
        throw LoadGeneratorError(description: "cannot connect to \(path): \(reason)")
    }
    return fd
}

/// Writes all of `bytes` to `fd`.
private func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw LoadGeneratorError(description: "send: \(String(cString: strerror(errno)))") }
        offset += n
    }
}

func runWaitingShared(clients: [Int], stats: [ClientStats]) throws {
    var connections: [WaitingClient] = []
    defer { for connection in connections { close(connection.fd) } }
    for client in clients { connections.append(WaitingClient(client: client, fd: try connectUnix(options.socket))) }
    func sendNext(_ index: Int) throws {
        connections[index].line.removeAll(keepingCapacity: true)
        request(client: connections[index].client, n: connections[index].n, into: &connections[index].line)
        connections[index].sent = now()
        try sendAll(connections[index].fd, connections[index].line)
    }
    for index in connections.indices { try sendNext(index) }
    // A finished connection's descriptor is set negative, which poll skips.
    var watched = connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
    var open = connections.count
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while open > 0 {
        let ready = poll(&watched, nfds_t(watched.count), 1000)
        if ready < 0 && errno == EINTR { continue }
        guard ready >= 0 else { throw LoadGeneratorError(description: "poll: \(String(cString: strerror(errno)))") }
        for index in watched.indices where watched[index].fd >= 0 && watched[index].revents != 0 {
            let fd = connections[index].fd
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw LoadGeneratorError(description: "client \(connections[index].client): the connection ended")
            }
            connections[index].received.append(contentsOf: buffer[0..<n])
            // One request in flight: at most one reply line is waiting.
            guard let newline = connections[index].received.firstIndex(of: 0x0A) else { continue }
            let t = now()
            let ok = connections[index].received[..<newline].withUnsafeBytes { isOK($0) }
            connections[index].received.removeSubrange(...newline)
            let sent = connections[index].sent
            let s = stats[index]
            connections[index].n += 1
            if !ok { s.errors += 1 }
            if sent >= measureStart && sent < measureEnd { s.latencies.append(t - sent) }
            if sent >= measureStart && t <= measureEnd { s.completed += 1 }
            if t < measureEnd {
                try sendNext(index)
            } else {
                watched[index].fd = -1
                open -= 1
            }
        }
    }
}
