import ArgumentParser
import SteleCore
import SteleCrypto
import SteleStore

/// `stele key show`: the log's verifier key (signed-note form) and PEM public key.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Show the log's public key.", subcommands: [Show.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the verifier key and the PEM public key.")
        @OptionGroup var dataOptions: DataOptions
        @OptionGroup var keyOptions: KeyOptions
        @Flag(help: "Output JSON: {\"verifier_key\", \"public_key_pem\", \"origin\"}.") var json = false

        func run() throws {
            let ledger = try dataOptions.openReadOnly()
            let key = try Failure.map { try SigningKeyFile.load(keyOptions.key) }
            let verifier = try NoteVerifierKey(name: ledger.origin, publicKey: key.publicKey)
            let pem = key.publicKey.pemRepresentation
            if json {
                printLine(JSONValue.object([
                    "origin": .string(ledger.origin), "verifier_key": .string(verifier.description),
                    "public_key_pem": .string(pem),
                ]).canonicalText)
            } else {
                printLine(verifier.description)
                print(pem, terminator: "")
            }
        }
    }
}
