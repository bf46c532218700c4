import ArgumentParser
import Foundation
import SteleCore
import SteleStore

/// `--data DIR`: where the ledger lives.
struct DataOptions: ParsableArguments {
    @Option(name: .long, help: "The ledger's data directory.")
    var data: String = "./stele-data"

    /// Opens the existing ledger read-only (safe while a daemon writes). Entries that a stopped
    /// daemon acknowledged but left in the journal are moved into the store first, if this user may
    /// write it; beside a running daemon, what it acknowledged before now is waited for (up to 3 s)
    /// until its store has committed it.
    func openReadOnly() throws -> Ledger {
        try Failure.map { try openReadOnlyReporting() }
    }

    /// ``openReadOnly()``, throwing the ``LedgerError`` instead of printing it.
    func openReadOnlyReporting() throws -> Ledger {
        _ = try? Ledger.completeJournal(path: data)
        var options = Ledger.Options()
        options.readOnly = true
        let ledger = try Ledger(path: data, options: options)
        let lagging = ledger.awaitAcknowledged(timeout: 3)
        if lagging > 0 {
            FileHandle.standardError.write(Data(
                "stele: note: the running daemon has acknowledged \(lagging) entries its store has not committed yet (see store_commit_interval_ms); they are not included\n".utf8))
        }
        return ledger
    }

    /// Opens the ledger for writing, creating it (with the default origin) if absent.
    func openForWriting(createOrigin: String? = nil, testMode: Bool = false) throws -> Ledger {
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        chmod(data, 0o700)
        var options = Ledger.Options()
        options.createWithOrigin = createOrigin ?? Ledger.defaultOrigin
        options.createInTestMode = testMode
        return try Failure.map { try Ledger(path: data, options: options) }
    }
}

/// `--key FILE`: the signing key, kept outside the data directory.
struct KeyOptions: ParsableArguments {
    @Option(name: .long, help: "The Ed25519 signing key (PEM, mode 0600), outside the data directory.")
    var key: String = "./stele-key/signing.key"
}

/// Exit statuses: 0 done (or sound), 1 integrity failure found, 2 could not run.
enum Failure {
    /// Prints `message` to standard error and exits 2; a command asked for `--json` (or
    /// `--format json`) also prints it as one JSON object on standard output, so scripts reading
    /// JSON always get JSON.
    static func couldNotRun(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data(("stele: " + message + "\n").utf8))
        let arguments = CommandLine.arguments
        if arguments.contains("--json") || zip(arguments, arguments.dropFirst()).contains(where: { $0 == "--format" && $1 == "json" }) {
            let error = JSONValue.object(["ok": .bool(false), "error": .object(["code": .string("could_not_run"), "message": .string(message)])])
            FileHandle.standardOutput.write(Data((error.canonicalText + "\n").utf8))
        }
        return ExitCode(2)
    }

    /// Runs `body`, turning ledger errors into a one-line message and exit status 2.
    static func map<R>(_ body: () throws -> R) throws -> R {
        do { return try body() } catch let error as LedgerError {
            throw couldNotRun(error.message)
        }
    }
}

/// Writes one line to standard output.
func printLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// The verifier key an option names: the key itself (`name+id+base64`), or a file holding it.
/// - Throws: ``LedgerError`` `invalid_event` naming the option.
func verifierKey(_ text: String, option: String) throws -> NoteVerifierKey {
    let key = FileManager.default.contents(atPath: text).map { String(decoding: $0, as: UTF8.self) } ?? text
    do { return try NoteVerifierKey(parsing: key.trimmingCharacters(in: .whitespacesAndNewlines)) } catch {
        throw LedgerError(.invalidEvent, "--\(option) is not a verifier key (name+id+base64), nor a file holding one: \(error)")
    }
}
