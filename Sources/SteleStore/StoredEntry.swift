public import SteleCore

/// An entry as read from the store: the exact header text, its parsed form and the body record.
public struct StoredEntry: Sendable, Hashable {
    /// The entry's seq.
    public let seq: UInt64
    /// The exact header bytes (the RFC 6962 leaf).
    public let headerBytes: [UInt8]
    /// The parsed header.
    public let header: EntryHeader
    /// The body, with redacted fields reduced to their digests.
    public let body: EntryBody

    /// The header text as a string.
    public var headerText: String { String(decoding: headerBytes, as: UTF8.self) }

    /// The entry as the one-line JSON object of the output contract: `seq`, `header` (the header text
    /// as a string), `body` (the remaining field values, or null once fully pruned) and `redacted`
    /// (names of redacted fields).
    public var outputJSON: JSONValue {
        .object([
            "seq": .integer(Int64(seq)),
            "header": headerObject,
            "header_text": .string(headerText),
            "body": body.disclosedValues.map { .object($0) } ?? .null,
            "redacted": .array(body.redactedNames.map { .string($0) }),
        ])
    }

    /// The header as a JSON object (its exact text is `header_text`).
    private var headerObject: JSONValue {
        (try? JSONParser.parse(headerBytes)) ?? .string(headerText)
    }

    /// ``outputJSON`` without the body's values: `body` null, `withheld` naming the fields held
    /// but not shown (`stele query` without a reason).
    public var withheldOutputJSON: JSONValue {
        .object([
            "seq": .integer(Int64(seq)),
            "header": headerObject,
            "header_text": .string(headerText),
            "body": .null,
            "redacted": .array(body.redactedNames.map { .string($0) }),
            "withheld": .array(body.orderedNames.filter { !body.fields[$0]!.isRedacted }.map { .string($0) }),
        ])
    }
}
