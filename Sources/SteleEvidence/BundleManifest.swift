public import SteleCore

/// `manifest.json` (`Specs/evidence-bundle.md` §2).
public struct BundleManifest: Hashable, Sendable {
    public static let format = "stele-evidence/1"

    public enum BundleType: String, Sendable {
        case export
        case consentReceipt = "consent-receipt"
    }

    public struct Counts: Hashable, Sendable {
        public var entries = 0
        public var receipts = 0
        public var redacted = 0
        public var withheld = 0

        public init() {}

        /// The counts `records` give.
        public init(_ records: [BundleRecord]) {
            for record in records {
                if record.role == .receipt { receipts += 1 } else if record.role == .match { entries += 1 }
                if !record.redactedFields.isEmpty { redacted += 1 }
                withheld += record.withheld.count
            }
        }

        var json: JSONValue {
            .object([
                "entries": .integer(Int64(entries)), "receipts": .integer(Int64(receipts)),
                "redacted": .integer(Int64(redacted)), "withheld": .integer(Int64(withheld)),
            ])
        }
    }

    public var type: BundleType
    public var origin: String
    public var created: Timestamp
    public var treeSize: UInt64
    public var query: BundleQuery
    public var reason: String
    public var counts: Counts
    /// File name → lowercase hex SHA-256.
    public var files: [String: String]
    /// A consent receipt's answer and TS 27560 record.
    public var state: JSONValue?
    public var limitations: [String]

    public init(
        type: BundleType, origin: String, created: Timestamp, treeSize: UInt64, query: BundleQuery, reason: String,
        counts: Counts, files: [String: String], state: JSONValue?, limitations: [String]
    ) {
        self.type = type
        self.origin = origin
        self.created = created
        self.treeSize = treeSize
        self.query = query
        self.reason = reason
        self.counts = counts
        self.files = files
        self.state = state
        self.limitations = limitations
    }

    public var json: JSONValue {
        var members: [String: JSONValue] = [
            "format": .string(Self.format), "type": .string(type.rawValue), "origin": .string(origin),
            "created": .string(created.description), "tree_size": .integer(Int64(treeSize)), "query": query.json,
            "reason": .string(reason), "counts": counts.json, "files": .object(files.mapValues(JSONValue.string)),
            "limitations": .array(limitations.map(JSONValue.string)),
        ]
        if let state { members["state"] = state }
        return .object(members)
    }

    /// Parses a manifest; the error says which member is wrong.
    public init(parsing bytes: [UInt8]) throws(EvidenceError) {
        func bad(_ why: String) -> EvidenceError { EvidenceError(.notABundle, "manifest.json: \(why)") }
        guard let value = try? JSONParser.parse(bytes), value.objectValue != nil else { throw bad("not a JSON object") }
        guard value["format"]?.stringValue == Self.format else { throw bad("format is not \(Self.format)") }
        guard let type = value["type"]?.stringValue.flatMap(BundleType.init(rawValue:)) else { throw bad("type is not export or consent-receipt") }
        guard let origin = value["origin"]?.stringValue else { throw bad("no origin") }
        guard let created = value["created"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) else { throw bad("created is not a time") }
        guard let size = value["tree_size"]?.integerValue, size > 0 else { throw bad("tree_size is not a positive integer") }
        guard let query = value["query"].flatMap(BundleQuery.init(json:)) else { throw bad("query is not a query") }
        guard let reason = value["reason"]?.stringValue else { throw bad("no reason") }
        guard let counts = value["counts"]?.objectValue,
            let entries = counts["entries"]?.integerValue, let receipts = counts["receipts"]?.integerValue,
            let redacted = counts["redacted"]?.integerValue, let withheld = counts["withheld"]?.integerValue
        else { throw bad("counts lacks entries, receipts, redacted or withheld") }
        guard let fileMembers = value["files"]?.objectValue else { throw bad("no files") }
        var files: [String: String] = [:]
        for (name, digest) in fileMembers {
            guard let hex = digest.stringValue else { throw bad("the digest of \(name) is not a string") }
            files[name] = hex
        }
        var parsedCounts = Counts()
        parsedCounts.entries = Int(entries)
        parsedCounts.receipts = Int(receipts)
        parsedCounts.redacted = Int(redacted)
        parsedCounts.withheld = Int(withheld)
        self.init(
            type: type, origin: origin, created: created, treeSize: UInt64(size), query: query, reason: reason, counts: parsedCounts,
            files: files, state: value["state"], limitations: (value["limitations"]?.arrayValue ?? []).compactMap(\.stringValue))
    }
}
