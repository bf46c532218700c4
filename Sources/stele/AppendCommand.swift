import ArgumentParser
import Foundation
import SteleClient
import SteleCore

/// `stele append`: NDJSON requests from standard input to the daemon, pipelined; prints each reply.
/// Exit 0 if every request succeeded, 1 if any failed or was left unanswered (the daemon closed the
/// connection first: stopped, say), 2 if the daemon could not be reached.
struct AppendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append", abstract: "Send NDJSON events from standard input to the daemon and print the replies.")

    @Option(help: "The daemon's socket.") var socket: String = "./stele-data/stele.sock"

    func run() throws {
        let connection: SteleConnection
        do { connection = try SteleConnection(socketPath: socket) } catch {
            throw Failure.couldNotRun("\(error)")
        }
        // Send on one thread while this one reads replies: requests are pipelined.
        nonisolated(unsafe) var sendError: (any Error)?
        nonisolated(unsafe) var requests = 0  // read by this thread once the sender has finished
        let sender = Thread {
            do {
                var chunk = [UInt8]()
                while let line = readLine(strippingNewline: true) {
                    if line.isEmpty { continue }
                    requests += 1
                    chunk.append(contentsOf: line.utf8)
                    chunk.append(0x0A)
                    if chunk.count >= 65_536 {
                        try connection.send(bytes: chunk)
                        chunk.removeAll(keepingCapacity: true)
                    }
                }
                if !chunk.isEmpty { try connection.send(bytes: chunk) }
            } catch {
                sendError = error
            }
            connection.finishSending()
        }
        sender.start()
        var failed = false
        var replies = 0
        do {
            while let reply = try connection.receive() {
                printLine(reply)
                replies += 1
                if (try? JSONParser.parse(Array(reply.utf8)))?["ok"] != .bool(true) { failed = true }
            }
        } catch let error as ClientError where error.code == .closedWithRequestsUnread {
            // Counted below: the requests after the last reply were not taken.
        }
        while !sender.isFinished { usleep(1000) }
        if replies < requests {
            // One reply per request, in order: the unanswered ones are the last lines read.
            FileHandle.standardError.write(Data(
                "stele: the daemon closed the connection after answering the first \(replies) requests: the rest, from request \(replies + 1) on (blank lines not counted), were not taken; retry them with the same ids\n".utf8))
            throw ExitCode(1)
        }
        if let sendError { throw Failure.couldNotRun("\(sendError)") }
        if failed { throw ExitCode(1) }
    }
}
