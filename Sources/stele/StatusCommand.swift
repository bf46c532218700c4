import ArgumentParser
import SteleClient
import SteleCore

/// `stele status`: the daemon's statistics (appends, batches, errors, commit latency, tree size, uptime).
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Print the daemon's statistics as JSON.")

    @Option(help: "The daemon's socket.") var socket: String = "./stele-data/stele.sock"
    @Flag(help: "Output JSON (the default and only format).") var json = false

    func run() throws {
        do {
            let reply = try SteleConnection(socketPath: socket).request(#"{"op":"stats"}"#)
            guard let stats = try JSONParser.parse(Array(reply.utf8))["stats"] else { throw Failure.couldNotRun("unexpected reply: \(reply)") }
            printLine(stats.canonicalText)
        } catch let error as ClientError {
            throw Failure.couldNotRun(error.message)
        }
    }
}
