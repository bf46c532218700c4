import ArgumentParser
import Foundation
import SteleClient
import SteleCore
import SteleCrypto
import SteleStore

/// `stele monitor`: what an auditor or a witness runs beside the log (`Specs/monitor.md`). It keeps
/// every checkpoint it verified in its state directory, and exits 1 the moment the log presents a
/// view that is unsigned, rolled back or inconsistent with one it verified.
struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor", abstract: "Follow the log's checkpoints; exit 1 the moment it shows a rollback, a fork or an unsigned view.")

    @Option(help: "The log's verifier key (C2SP signed-note form, or a file holding it).") var logKey: String
    @Option(help: "The monitor's own directory: every checkpoint it verified, and the newest (latest).") var state: String
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Follow a daemon through its socket (ops checkpoint and consistency) instead of reading --data.") var socket: String?
    @Option(help: "Seconds between two looks at the log.") var interval: Double = 60
    @Flag(help: "Look once and exit (0: consistent, 1: refused).") var once = false

    func run() throws {
        let key = try Failure.map { try verifierKey(logKey, option: "log-key") }
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let directory = CheckpointDirectory(path: state)
        var monitor: LogMonitor
        // After the log rotated its key, the state remembers the key it handed over to.
        let keyFile = state + "/key"
        let current = FileManager.default.contents(atPath: keyFile)
            .flatMap { try? NoteVerifierKey(parsing: String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) }
        do {
            let held = try directory.newest().map { try SignedNote(parsing: $0.bytes) }
            monitor = try LogMonitor(key: current ?? key, newest: held)
        } catch {
            throw Failure.couldNotRun("the state directory \(state) holds a checkpoint that does not verify under the key: \(error)")
        }
        while true {
            let source = try LogSource(data: dataOptions, socket: socket)
            guard let text = try source.latestCheckpoint() else {
                if once { return printLine("the log has signed no checkpoint yet") }
                Thread.sleep(forTimeInterval: interval)
                continue
            }
            do {
                let note = try SignedNote(parsing: Array(text.utf8))
                let proof = { (old: UInt64, new: UInt64) in try source.consistencyProof(from: old, to: new) }
                if (try? note.verify(trusting: [monitor.key])) == nil, let handOvers = try source.keyHandOvers(upTo: note) {
                    // The log may have handed over to a new key: follow each rotation the key in force signed.
                    for handOver in handOvers where handOver.body.fields["previous_key"]?.value?.stringValue == monitor.key.description {
                        try monitor.follow(handOver, proof: proof)
                        try directory.write(handOver.checkpoint, size: handOver.seq + 1)
                        try Data((monitor.key.description + "\n").utf8).write(to: URL(fileURLWithPath: keyFile), options: .atomic)
                        printLine("followed a key rotation at entry \(handOver.seq): the log now signs with \(monitor.key)")
                    }
                }
                if let checkpoint = try monitor.observe(note, proof: proof) {
                    try directory.write(note, size: checkpoint.size)
                    printLine("verified: size \(checkpoint.size), root \(Base64.encode(checkpoint.rootHash.bytes))")
                } else if once {
                    printLine("unchanged: size \(monitor.newest?.checkpoint.size ?? 0)")
                }
            } catch let refusal as LogMonitor.Refusal {
                FileHandle.standardError.write(Data("stele monitor: \(refusal)\n".utf8))
                throw ExitCode(1)
            } catch {
                FileHandle.standardError.write(Data("stele monitor: the log's checkpoint cannot be read: \(error)\n".utf8))
                throw ExitCode(1)
            }
            if once { return }
            Thread.sleep(forTimeInterval: interval)
        }
    }
}

/// Where a monitor reads the log: the store's files (read-only), or a daemon's socket.
private struct LogSource {
    let ledger: Ledger?
    let connection: SteleConnection?

    init(data: DataOptions, socket: String?) throws {
        if let socket {
            do { connection = try SteleConnection(socketPath: socket) } catch {
                throw Failure.couldNotRun("cannot reach the daemon at \(socket): \(error)")
            }
            ledger = nil
        } else {
            ledger = try data.openReadOnly()
            connection = nil
        }
    }

    func latestCheckpoint() throws -> String? {
        if let ledger { return try Failure.map { try ledger.latestCheckpoint() } }
        let reply = try ask(#"{"op":"checkpoint"}"#)
        if reply["error"]?["code"]?.stringValue == "no_checkpoint_yet" { return nil }
        guard let note = reply["checkpoint"]?.stringValue else { throw MonitorSourceError("the daemon's checkpoint reply has no note") }
        return note
    }

    /// The log's key rotations before `note`'s size, each with its proofs; nil through a socket,
    /// whose protocol does not carry them.
    func keyHandOvers(upTo note: SignedNote) throws -> [LogMonitor.KeyHandOver]? {
        guard let ledger, let size = (try? Checkpoint(parsing: note.text))?.size else { return nil }
        return try ledger.keyRotationEvidence(treeSize: size).compactMap { item in
            guard let seq = item["seq"]?.integerValue, let header = item["header"]?.stringValue, let body = item["body"].flatMap({ try? EntryBody(parsing: $0.canonicalBytes) }),
                let checkpoint = item["checkpoint"]?.stringValue.flatMap({ try? SignedNote(parsing: Array($0.utf8)) }),
                let inclusion = item["inclusion"]?.arrayValue?.compactMap({ $0.stringValue.flatMap(Base64.decode).flatMap { SHA256Digest(bytes: $0) } })
            else { return nil }
            return LogMonitor.KeyHandOver(seq: UInt64(seq), header: Array(header.utf8), body: body, checkpoint: checkpoint, inclusion: inclusion)
        }
    }

    func consistencyProof(from old: UInt64, to new: UInt64) throws -> [SHA256Digest] {
        if let ledger { return try ledger.consistencyProof(from: old, to: new).proof }
        let reply = try ask(#"{"op":"consistency","from":\#(old),"to":\#(new)}"#)
        guard let hashes = reply["consistency"]?["proof"]?.arrayValue else {
            throw MonitorSourceError("the daemon gave no consistency proof from \(old) to \(new): \(reply["error"]?["message"]?.stringValue ?? "")")
        }
        return try hashes.map { value in
            guard let digest = value.stringValue.flatMap(Base64.decode).flatMap({ SHA256Digest(bytes: $0) }) else {
                throw MonitorSourceError("the daemon's consistency proof holds a value that is not a hash")
            }
            return digest
        }
    }

    private func ask(_ line: String) throws -> JSONValue {
        guard let connection else { throw MonitorSourceError("no daemon connection") }
        return try JSONParser.parse(Array(try connection.request(line).utf8))
    }
}

struct MonitorSourceError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
