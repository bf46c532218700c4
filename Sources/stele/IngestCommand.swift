import ArgumentParser
import Foundation
import SteleConsent
import SteleCore
import SteleCrypto
import SteleProtocol
import SteleStore

/// `stele ingest`: appends NDJSON events from standard input directly to the store, through the
/// store's one writer (``LedgerWriter``), for operators on the ledger host and for bulk loads, when
/// no daemon is writing the store (it refuses otherwise). Services use `stele serve`.
struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Append NDJSON events from standard input directly to the store.",
        discussion: "Each line is an append request as in Specs/protocol.md; one reply line is printed per request, after its batch is durable.")

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The source name recorded in each header.")
    var source: String = "operator"

    @Option(help: "Events per write transaction.")
    var batch: Int = 100

    @Option(help: "The log origin, if this creates the store (default: from the host name).")
    var origin: String?

    @OptionGroup var policyOptions: ConsentPolicyOptions

    @Flag(help: "Create the store in test mode (recorded in it for good): prune then accepts --now later than the clock, for simulating years. Never for production.")
    var testMode = false

    func run() throws {
        guard (1...100_000).contains(batch) else { throw Failure.couldNotRun("--batch must be 1...100000") }
        if testMode && Ledger.storeExists(at: dataOptions.data) {
            throw Failure.couldNotRun("--test-mode applies only when ingest creates the store; \(dataOptions.data) already holds one")
        }
        let ledger = try dataOptions.openForWriting(createOrigin: origin, testMode: testMode)
        // Waits while another direct writer finishes; refuses beside a daemon.
        let writer = try Failure.map { try LedgerWriter(ledger: ledger) }
        let decoder = RequestDecoder(catalogue: EventCatalogue.builtIn.naming(try policyOptions.policy()))
        var failures = 0
        var pending: [(id: String?, outcome: Result<Event, ProtocolError>)] = []

        func flush() throws {
            let events = pending.compactMap { try? $0.outcome.get() }
            var results = try Failure.map { try writer.append(events) }.makeIterator()
            for item in pending {
                switch item.outcome {
                case .failure(let error):
                    failures += 1
                    printLine(Reply.error(id: item.id, error))
                case .success:
                    switch results.next()! {
                    case .success(let receipt): printLine(Reply.ok(id: item.id, receipt: receipt, includeHeader: false))
                    case .failure(let error):
                        failures += 1
                        printLine(Reply.error(id: item.id, ProtocolError(.idempotencyConflict, error.message)))
                    }
                }
            }
            pending.removeAll(keepingCapacity: true)
        }

        while let line = readLine(strippingNewline: true) {
            if line.isEmpty { continue }
            let (request, id) = decoder.decode(line: Array(line.utf8), source: source)
            switch request {
            case .success(.append(let event, _)): pending.append((id, .success(event)))
            case .success: pending.append((id, .failure(ProtocolError(.unknownOp, "ingest accepts append requests only"))))
            case .failure(let error): pending.append((id, .failure(error)))
            }
            if pending.count >= batch { try flush() }
        }
        if !pending.isEmpty { try flush() }
        try Failure.map { try writer.close() }
        if failures > 0 { throw ExitCode(1) }
    }
}
