public import SteleCore
public import SteleCrypto

/// One line of `entries.jsonl` (`Specs/evidence-bundle.md` §3).
public struct BundleRecord: Hashable, Sendable {
    public enum Role: String, Sendable {
        /// Answers the query.
        case match
        /// The subject's entry, redacted by an erasure whose receipt names it.
        case redacted
        /// A `ledger.pruned` or `ledger.erased` receipt explaining redactions.
        case receipt
    }

    public var seq: UInt64
    public var header: [UInt8]
    public var role: Role
    public var body: EntryBody
    public var withheld: [String]
    public var explainedBy: [UInt64]
    public var proof: [SHA256Digest]

    public init(seq: UInt64, header: [UInt8], role: Role, body: EntryBody, withheld: [String], explainedBy: [UInt64], proof: [SHA256Digest]) {
        self.seq = seq
        self.header = header
        self.role = role
        self.body = body
        self.withheld = withheld
        self.explainedBy = explainedBy
        self.proof = proof
    }

    /// Fields given as digests that the store itself redacted (not withheld by the export).
    public var redactedFields: [String] {
        body.redactedNames.filter { !withheld.contains($0) }
    }

    /// The line's canonical text, without its newline.
    public var line: [UInt8] {
        var members: [String: JSONValue] = [
            "seq": .integer(Int64(seq)), "header": .string(String(decoding: header, as: UTF8.self)), "role": .string(role.rawValue),
            "body": body.jsonValue, "withheld": .array(withheld.map(JSONValue.string)),
            "proof": .array(proof.map { .string(Base64.encode($0.bytes)) }),
        ]
        if !explainedBy.isEmpty { members["explained_by"] = .array(explainedBy.map { .integer(Int64($0)) }) }
        return JSONValue.object(members).canonicalBytes
    }

    /// Parses a line; the message says what is wrong.
    public init(parsing line: some Collection<UInt8>) throws(EvidenceError) {
        func bad(_ why: String) -> EvidenceError { EvidenceError(.notABundle, why) }
        guard let value = try? JSONParser.parse(line), let object = value.objectValue else { throw bad("not a JSON object") }
        guard let seq = object["seq"]?.integerValue, seq >= 0 else { throw bad("no seq") }
        guard let header = object["header"]?.stringValue else { throw bad("no header") }
        guard let role = object["role"]?.stringValue.flatMap(Role.init(rawValue:)) else { throw bad("no role (match, redacted or receipt)") }
        guard let bodyValue = object["body"], let body = try? EntryBody(parsing: bodyValue.canonicalBytes) else { throw bad("the body is not a body record") }
        guard let withheld = object["withheld"]?.arrayValue?.compactMap(\.stringValue), withheld.count == object["withheld"]?.arrayValue?.count else {
            throw bad("withheld is not a list of field names")
        }
        let explained = object["explained_by"]?.arrayValue ?? []
        let explainedBy = explained.compactMap { $0.integerValue.flatMap { $0 >= 0 ? UInt64($0) : nil } }
        guard explainedBy.count == explained.count else { throw bad("explained_by is not a list of seqs") }
        guard let proofValues = object["proof"]?.arrayValue else { throw bad("no proof") }
        let proof = proofValues.compactMap { $0.stringValue.flatMap(Base64.decode).flatMap { SHA256Digest(bytes: $0) } }
        guard proof.count == proofValues.count else { throw bad("a proof hash is not base64 of 32 bytes") }
        self.init(
            seq: UInt64(seq), header: Array(header.utf8), role: role, body: body, withheld: withheld, explainedBy: explainedBy, proof: proof)
    }
}
