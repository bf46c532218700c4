// `--mode wait --threads T`: waiting clients that share a thread. Each connection sends its next
// request only once the reply to the previous one has arrived, exactly as in `runWaiting`; one
// poll set tells the thread which connections have a reply to read.
import Foundation
import Glibc
import SteleClient

struct LoadGeneratorError: Error, CustomStringConvertible {
    let description: String
}

func runWaitingShared(clients: [Int], stats: [ClientStats]) throws {
    let connections = try clients.map { _ in try SteleConnection(socketPath: options.socket) }
    var sentAt = [UInt64](repeating: 0, count: clients.count)
    var counts = [Int](repeating: 0, count: clients.count)
    var line: [UInt8] = []
    func sendNext(_ index: Int) throws {
        line.removeAll(keepingCapacity: true)
        request(client: clients[index], n: counts[index], into: &line)
        sentAt[index] = now()
        try connections[index].send(bytes: line)
    }
    for index in connections.indices { try sendNext(index) }
    // A finished connection's descriptor is set negative, which poll skips.
    var watched = connections.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
    var open = connections.count
    while open > 0 {
        let ready = poll(&watched, nfds_t(watched.count), 1000)
        if ready < 0 && errno == EINTR { continue }
        guard ready >= 0 else { throw LoadGeneratorError(description: "poll: \(String(cString: strerror(errno)))") }
        for index in watched.indices where watched[index].fd >= 0 && watched[index].revents != 0 {
            // One request in flight: the reply is the only line coming (receive waits for the rest
            // of it if only part has arrived).
            guard let ok = try connections[index].receive({ isOK($0) }) else {
                throw LoadGeneratorError(description: "client \(clients[index]): the connection ended")
            }
            let t = now()
            let sent = sentAt[index]
            let s = stats[index]
            counts[index] += 1
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
