import ArgumentParser
import Foundation
import SteleClient
import SteleConsent
import SteleCore
import SteleEvidence
import SteleProtocol
import SteleStore

/// `stele dsar`: a data subject's own records as one JSON (portable, Art. 20) or HTML document
/// (`Specs/dsar.md`); the read is logged, and the request is recorded as completed.
struct DsarCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dsar", abstract: "Write a data subject's access report and record the request completed (exit 0 written, 2 could not run).")

    enum Format: String, ExpressibleByArgument { case json, html }

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var policyOptions: ConsentPolicyOptions
    @Argument(help: "The data subject.") var subject: String
    @Option(help: "The rights request's id (recorded as completed).") var request: String
    @Option(help: "Why, recorded in the access log.") var reason: String
    @Option(help: "The document to write.") var out: String
    @Option(help: "json (machine-readable, for portability) or html (for a person).") var format: Format = .json
    @Option(help: "The daemon's socket (default: <data>/stele.sock).") var socket: String?

    func run() throws {
        guard request.contains(where: { !$0.isWhitespace }) else { throw Failure.couldNotRun("--request must name the rights request being answered") }
        guard !FileManager.default.fileExists(atPath: out) else { throw Failure.couldNotRun("\(out) already exists; choose a new --out") }
        let policy = try policyOptions.policy()
        let ledger = try dataOptions.openReadOnly()
        let now = Timestamp.now()
        let (items, answers) = try Failure.map { () throws -> ([SubjectAccessReport.Item], [JSONValue]) in
            let items = try ledger.entries(LedgerQuery(subject: subject)).map { entry in
                SubjectAccessReport.Item(
                    seq: entry.seq, header: entry.header, values: entry.body.fields.compactMapValues(\.value), redacted: entry.body.redactedNames)
            }
            let (state, notices) = try ledger.currentConsent(subject: subject)
            return (items, policy.purposeNames.sorted().map { policy.answer(state, purpose: $0, at: now, notices: notices).json })
        }
        let report = SubjectAccessReport(subject: subject, request: request, origin: ledger.origin, created: now, consentNow: answers, items: items)
        let query = JSONValue.object(["subject": .string(subject), "request": .string(request), "format": .string(format.rawValue)])
        let access = try AccessRecord(command: "dsar", query: query, reason: reason, disclosed: items.count).record(data: dataOptions.data, socket: socket)
        let bytes = format == .json ? report.json.canonicalBytes + [0x0A] : Array(report.html.utf8)
        guard FileManager.default.createFile(atPath: out, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw Failure.couldNotRun("cannot write \(out)")
        }
        let completed = try recordCompleted()
        printLine("wrote \(out): \(items.count) records of \(subject); this read is entry \(access); request \(request) recorded completed as entry \(completed)")
    }

    /// Appends `rights.completed` for the request, through the daemon when one serves, else directly.
    private func recordCompleted() throws -> UInt64 {
        let line = JSONValue.object([
            "kind": .string("rights.completed"), "subject": .string(subject), "actor": .string("uid:\(getuid())"),
            "attrs": .object(["request": .string(request), "outcome": .string("fulfilled")]),
        ]).canonicalText
        if let connection = try? SteleConnection(socketPath: socket ?? dataOptions.data + "/stele.sock") {
            let answer = try? JSONParser.parse(Array((try connection.request(line)).utf8))
            guard answer?["ok"] == .bool(true), let seq = answer?["seq"]?.integerValue else {
                throw Failure.couldNotRun("the document is written, but the daemon refused to record the request completed: \(answer?["error"]?["message"]?.stringValue ?? "no answer"); append rights.completed for \(request) yourself")
            }
            return UInt64(seq)
        }
        let decoder = RequestDecoder(catalogue: EventCatalogue.builtIn.naming(try policyOptions.policy()))
        guard case .success(.append(let event, _)) = decoder.decode(line: Array(line.utf8), source: "operator").request else {
            throw Failure.couldNotRun("rights.completed could not be built for request \(request)")
        }
        return try Failure.map { () throws -> UInt64 in
            let writer = try LedgerWriter(ledger: try Ledger(path: dataOptions.data), options: .withoutIdempotency)
            let receipt = try writer.append([event])[0].get()
            try writer.close()
            return receipt.seq
        }
    }
}
