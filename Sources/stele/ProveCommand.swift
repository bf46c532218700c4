import ArgumentParser
import SteleCore
import SteleCrypto
import SteleStore

/// `stele prove inclusion|consistency`: RFC 9162 proofs from the store, read-only.
struct ProveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove", abstract: "Print RFC 9162 inclusion and consistency proofs.",
        subcommands: [Inclusion.self, Consistency.self])

    struct Inclusion: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Prove that entry --seq is in the tree of --size entries.")
        @OptionGroup var dataOptions: DataOptions
        @Option(help: "The entry.") var seq: UInt64
        @Option(help: "The tree size (default: the whole log).") var size: UInt64?
        @Flag(help: "Output JSON (the default and only format).") var json = false

        func run() throws {
            let ledger = try dataOptions.openReadOnly()
            let proof = try Failure.map { try ledger.inclusionProof(seq: seq, size: size) }
            printLine(JSONValue.object([
                "tree_size": .integer(Int64(proof.size)), "root": .string(Base64.encode(proof.root.bytes)),
                "leaf_index": .integer(Int64(seq)), "leaf": .string(Base64.encode(proof.leaf.bytes)),
                "proof": .array(proof.proof.map { .string(Base64.encode($0.bytes)) }),
            ]).canonicalText)
        }
    }

    struct Consistency: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Prove that the tree of --to entries extends that of --from.")
        @OptionGroup var dataOptions: DataOptions
        @Option(help: "The older tree size.") var from: UInt64
        @Option(help: "The newer tree size (default: the whole log).") var to: UInt64?
        @Flag(help: "Output JSON (the default and only format).") var json = false

        func run() throws {
            let ledger = try dataOptions.openReadOnly()
            let proof = try Failure.map { try ledger.consistencyProof(from: from, to: to) }
            printLine(JSONValue.object([
                "old_size": .integer(Int64(from)), "old_root": .string(Base64.encode(proof.oldRoot.bytes)),
                "tree_size": .integer(Int64(proof.newSize)), "root": .string(Base64.encode(proof.newRoot.bytes)),
                "proof": .array(proof.proof.map { .string(Base64.encode($0.bytes)) }),
            ]).canonicalText)
        }
    }
}
