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
            let writer = try LedgerWriter(ledger: try Ledger(path: data))
            let seq = try writer.recordAccess(self, operatorUID: getuid())
            try writer.close()
            return seq
        } catch let error as LedgerError {
            throw Failure.couldNotRun("this read could not be recorded, so nothing is disclosed: \(error.message)")
        }
    }
}
