import ArgumentParser
import Foundation
import SteleCore
import SteleCrypto
import SteleServer
import SteleStore

/// `stele init`: creates a new log explicitly: its store, its signing key and its checkpoint
/// directory. Refuses to touch anything that belongs to a log already.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a new log: store, signing key and checkpoint directory (exit 0 created, 2 refused).")

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var keyOptions: KeyOptions
    @Option(help: "The checkpoint directory outside the data directory.") var checkpoints: String = "./stele-checkpoints"
    @Option(help: "The log's name in its checkpoints, e.g. example.com/audit (default: stele/<host>-<random>, unique).") var origin: String?
    @Option(help: "The daemon's configuration: its data, key, checkpoints and origin (options given here win).") var config: String?
    @Flag(help: "Output JSON.") var json = false

    func run() throws {
        var data = dataOptions.data
        var key = keyOptions.key
        var checkpoints = self.checkpoints
        var origin = self.origin
        if let config {
            guard let bytes = FileManager.default.contents(atPath: config) else { throw Failure.couldNotRun("cannot read the configuration file \(config)") }
            var configuration = ServerConfiguration()
            do { try configuration.apply(json: [UInt8](bytes)) } catch { throw Failure.couldNotRun("bad configuration \(config): \(error.message)") }
            // An option left at its default yields to the file.
            if data == DataOptions().data { data = configuration.dataDirectory }
            if key == KeyOptions().key { key = configuration.keyPath }
            if checkpoints == "./stele-checkpoints" { checkpoints = configuration.checkpointDirectory }
            origin = origin ?? configuration.origin
        }
        // Every refusal comes before anything is created.
        if Ledger.storeExists(at: data) {
            let existing = (try? Ledger(path: data, options: readOnly))?.origin
            throw Failure.couldNotRun("a log already exists at \(data)\(existing.map { " (\($0))" } ?? ""); refusing to create another over it")
        }
        if let names = try? FileManager.default.contentsOfDirectory(atPath: checkpoints), names.contains(where: { $0.hasPrefix("checkpoint.") || $0 == "acknowledged" }) {
            throw Failure.couldNotRun("\(checkpoints) holds the checkpoints of a log already: a new log needs its own --checkpoints directory")
        }
        if FileManager.default.fileExists(atPath: key) {
            throw Failure.couldNotRun("a signing key already exists at \(key): a new log needs its own key; choose another --key")
        }
        for path in [data, checkpoints] where path.hasPrefix(key + "/") {
            throw Failure.couldNotRun("\(path) is inside the key's directory")
        }
        let name = origin ?? Ledger.defaultOrigin
        guard NoteVerifierKey.isValidName(name) else {
            throw Failure.couldNotRun("--origin \"\(name)\" is not a valid log name (one line, no spaces or +)")
        }
        do {
            // The data is private; checkpoints are public (auditors and shippers read them).
            for (path, mode) in [(data, 0o700), (checkpoints, 0o755)] {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
            }
        } catch {
            throw Failure.couldNotRun("cannot create the log's directories: \(error.localizedDescription)")
        }
        var options = Ledger.Options()
        options.createWithOrigin = name
        let ledger = try Failure.map { try Ledger(path: data, options: options) }
        let signing = try Failure.map { try SigningKeyFile.loadOrCreate(key) }
        let verifier = try Failure.map { try NoteVerifierKey(name: ledger.origin, publicKey: signing.publicKey) }
        if json {
            printLine(JSONValue.object([
                "origin": .string(ledger.origin), "data": .string(data), "key": .string(key), "checkpoints": .string(checkpoints),
                "verifier_key": .string("\(verifier)"),
            ]).canonicalText)
        } else {
            printLine("created the log \(ledger.origin) in \(data), its checkpoints in \(checkpoints)")
            printLine("signing key: \(key) (back it up offline now: without it the log cannot continue; see docs/operations.md)")
            printLine("verifier key (publish it to auditors): \(verifier)")
        }
    }

    private var readOnly: Ledger.Options {
        var options = Ledger.Options()
        options.readOnly = true
        return options
    }
}
