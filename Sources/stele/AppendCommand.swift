import ArgumentParser
import Foundation
import SteleClient
import SteleCore

/// `stele append`: NDJSON requests from standard input to the daemon, pipelined; prints each reply.
/// Exit 0 if every request succeeded, 1 if any failed, 2 if the daemon could not be reached.
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
        let sender = Thread {
            do {
                var chunk = [UInt8]()
                while let line = readLine(strippingNewline: true) {
                    if line.isEmpty { continue }
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
        while let reply = try connection.receive() {
            printLine(reply)
            if (try? JSONParser.parse(Array(reply.utf8)))?["ok"] != .bool(true) { failed = true }
        }
        while !sender.isFinished { usleep(1000) }
        if let sendError { throw Failure.couldNotRun("\(sendError)") }
        if failed { throw ExitCode(1) }
    }
}
