import ArgumentParser
import Foundation
import SteleClient
import SteleCore
import SteleStore

extension AccessRecord {
    /// Appends this read's `ledger.accessed` entry through the daemon when one serves `data`
    /// (the caller must be an operator peer), else with a writer of its own; returns its seq.
    /// Nothing is disclosed when this fails: a person's data is never read without a trace.
    func record(data: String, socket: String?) throws -> UInt64 {
        guard reason.contains(where: { !$0.isWhitespace }) else {
            throw Failure.couldNotRun("--reason must say why: every read of personal data is recorded with it")
        }
        if let connection = try? SteleConnection(socketPath: socket ?? data + "/stele.sock") {
            let order = JSONValue.object([
                "op": .string("accessed"), "command": .string(command), "query": query, "reason": .string(reason),
                "disclosed": .integer(Int64(disclosed)),
            ])
            let line: String
            do { line = try connection.request(order.canonicalText) } catch {
                throw Failure.couldNotRun("the daemon did not answer the access record, so nothing is disclosed: \(error)")
            }
            let reply = try? JSONParser.parse(Array(line.utf8))
            guard reply?["ok"] == .bool(true), let seq = reply?["accessed"]?.integerValue else {
                throw Failure.couldNotRun("the daemon refused to record this read, so nothing is disclosed: \(reply?["error"]?["message"]?.stringValue ?? line)")
            }
            return UInt64(seq)
        }
        do {
            let writer = try LedgerWriter(ledger: try Ledger(path: data), options: .withoutIdempotency)
            let seq = try writer.recordAccess(self, operatorUID: getuid())
            try writer.close()
            return seq
        } catch let error as LedgerError {
            throw Failure.couldNotRun("this read could not be recorded, so nothing is disclosed: \(error.message)")
        }
    }
}

/// `--reason TEXT`: why personal data is read; the read is recorded as `ledger.accessed` before
/// anything is shown.
struct ReadReasonOptions: ParsableArguments {
    @Option(help: "Why you read this person's data: recorded, with the query, in the ledger before anything is shown.")
    var reason: String?
    @Option(help: "The daemon's socket, for recording the read (default: <data>/stele.sock).")
    var socket: String?

    /// Records the read of `disclosed` records by `command` on `query`; refuses without a reason.
    func record(_ command: String, query: JSONValue, disclosed: Int, data: String) throws {
        guard let reason else {
            throw Failure.couldNotRun("--reason is required: every read of a person's data is recorded in the ledger with its reason")
        }
        _ = try AccessRecord(command: command, query: query, reason: reason, disclosed: disclosed).record(data: data, socket: socket)
    }
}

extension LedgerWriter.Options {
    /// For a writer appending only entries without an idempotency key (Stele's own records): it
    /// skips loading the keys of the window, a scan of every entry of the last day.
    static var withoutIdempotency: Self {
        var options = Self()
        options.idempotencyWindow = 0
        return options
    }
}
