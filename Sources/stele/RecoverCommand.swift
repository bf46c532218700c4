import ArgumentParser
import Foundation
import SteleCore
import SteleCrypto
import SteleStore

/// `stele recover --accept-loss`: continues a log whose journal was lost or damaged, or whose
/// store is shorter than what its daemon acknowledged, and records the gap in the ledger itself.
struct RecoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Continue a log after acknowledged entries were lost, recording the gap as a ledger.recovered entry.",
        discussion: "Run it only once the journal and store cannot be restored: the entries lost are gone for good, and their receipts will not verify. Exit 0 recovered (or nothing to recover), 2 could not run.")

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The checkpoint directory holding the acknowledged mark.")
    var checkpoints: String = "./stele-checkpoints"

    @Flag(name: .customLong("accept-loss"), help: "Accept that the entries that cannot be recovered are lost.")
    var acceptLoss = false

    @Option(help: "Why, for the record (a ticket, an incident).")
    var reason: String

    func run() throws {
        guard acceptLoss else {
            throw Failure.couldNotRun("recover continues the log without entries it cannot read back; say --accept-loss to accept that")
        }
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else { throw Failure.couldNotRun("--reason must say why") }
        let ledger = try Failure.map { try Ledger(path: dataOptions.data) }
        let directory = CheckpointDirectory(path: checkpoints)
        var options = LedgerWriter.Options()
        options.acceptingJournalLoss = true
        let writer = try Failure.map { try LedgerWriter(ledger: ledger, options: options) }
        let kept = writer.size
        let mark = try Failure.map { try directory.acknowledged() }.flatMap { $0.origin == ledger.origin ? $0 : nil }
        var causes: [String] = []
        if let loss = writer.loss { causes.append("\(loss.code): \(loss.message)") }
        if let mark, let contradiction = try Failure.map({ try ledger.contradiction(of: mark, size: kept) }) {
            causes.append(contradiction)
        }
        guard !causes.isEmpty else {
            try Failure.map { try writer.close() }
            printLine("nothing to recover: the journal and the store hold everything acknowledged (\(kept) entries)")
            return
        }
        var attributes: [String: JSONValue] = [
            "reason": .string(reason), "cause": .string(causes.joined(separator: "; ")), "kept": .integer(Int64(kept)),
        ]
        if let mark { attributes["acknowledged"] = .integer(Int64(mark.size)) }
        let event = Event.ledger("ledger.recovered", actor: "uid:\(getuid())", attributes: attributes)
        let receipt = try Failure.map { try writer.perform { try $0.append(event) } }
        try Failure.map { try writer.close() }
        // The daemon may start again: the log now acknowledges the gap.
        try Failure.map {
            try directory.writeAcknowledged(.init(origin: ledger.origin, size: receipt.seq + 1, leaf: receipt.leafHash))
        }
        printLine("recovered: the log keeps \(kept) entries; entry \(receipt.seq) (ledger.recovered) records the gap: \(causes.joined(separator: "; "))")
    }
}
