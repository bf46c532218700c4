public import SteleCrypto

/// The permanent, non-personal part of a ledger entry. Its canonical JSON text is the RFC 6962 leaf:
/// leaf hash = SHA-256(0x00 ‖ ``canonicalBytes``). See `Specs/entry-format.md`.
public struct EntryHeader: Hashable, Sendable {
    /// The only format version this implementation writes and reads.
    public static let currentVersion: Int64 = 1

    /// Format version (`v`).
    public var version: Int64
    /// 0-based position in the log (`seq`).
    public var seq: UInt64
    /// Server time of the append, strictly increasing along the log (`ts`).
    public var timestamp: Timestamp
    /// Event kind, e.g. `login.succeeded` (`kind`).
    public var kind: String
    /// Retention class, e.g. `security` (`class`).
    public var retentionClass: String
    /// The authenticated service that appended the event (`source`).
    public var source: String
    /// When the body may be pruned; nil while the deadline depends on later events (`retain_until`).
    public var retainUntil: Timestamp?
    /// Leaf hash of entry `seq − 1`; all zero for entry 0 (`prev`).
    public var prev: SHA256Digest
    /// The body commitment (`body`).
    public var bodyCommitment: SHA256Digest

    /// Creates a version-1 header.
    public init(
        seq: UInt64, timestamp: Timestamp, kind: String, retentionClass: String, source: String,
        retainUntil: Timestamp?, prev: SHA256Digest, bodyCommitment: SHA256Digest
    ) {
        self.version = Self.currentVersion
        self.seq = seq
        self.timestamp = timestamp
        self.kind = kind
        self.retentionClass = retentionClass
        self.source = source
        self.retainUntil = retainUntil
        self.prev = prev
        self.bodyCommitment = bodyCommitment
    }

    /// The canonical JSON text: members in RFC 8785 order
    /// (`body`, `class`, `kind`, `prev`, `retain_until`, `seq`, `source`, `ts`, `v`).
    public var canonicalBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(320)
        Self.key("{\"body\":", &out); Self.digest(bodyCommitment, &out)
        Self.key(",\"class\":", &out); CanonicalJSON.writeString(retentionClass, to: &out)
        Self.key(",\"kind\":", &out); CanonicalJSON.writeString(kind, to: &out)
        Self.key(",\"prev\":", &out); Self.digest(prev, &out)
        Self.key(",\"retain_until\":", &out)
        if let retainUntil { Self.time(retainUntil, &out) } else { Self.key("null", &out) }
        Self.key(",\"seq\":", &out); CanonicalJSON.writeInteger(Int64(seq), to: &out)
        Self.key(",\"source\":", &out); CanonicalJSON.writeString(source, to: &out)
        Self.key(",\"ts\":", &out); Self.time(timestamp, &out)
        Self.key(",\"v\":", &out); CanonicalJSON.writeInteger(version, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    // Static helpers rather than nested functions: a nested function capturing `out` would box it
    // and pay an exclusivity check on every append.
    private static func key(_ literal: StaticString, _ out: inout [UInt8]) {
        CanonicalJSON.writeLiteral(literal, to: &out)
    }

    private static func digest(_ d: SHA256Digest, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        d.withUnsafeBytes { Base64.encode($0, into: &out) }
        out.append(UInt8(ascii: "\""))
    }

    private static func time(_ t: Timestamp, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        t.write(to: &out)
        out.append(UInt8(ascii: "\""))
    }

    /// The canonical text as a string.
    public var canonicalText: String { String(decoding: canonicalBytes, as: UTF8.self) }

    /// Parses a header text, which must be exactly the canonical form of a valid version-1 header.
    /// - Throws: ``EntryFormatError`` naming the first problem found.
    public init(parsing bytes: some Collection<UInt8>) throws(EntryFormatError) {
        // One contiguous copy first (free for an array): the checks below then run specialized, where
        // on a generic collection the final byte comparison alone took 40% of `verify`.
        let bytes = Array(bytes)
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw EntryFormatError(.malformedJSON, "header is not valid JSON: \(error)")
        }
        guard let members = value.objectValue else { throw EntryFormatError(.invalidField, "header is not a JSON object") }
        let known: Set<String> = ["body", "class", "kind", "prev", "retain_until", "seq", "source", "ts", "v"]
        if let extra = members.keys.first(where: { !known.contains($0) }) {
            throw EntryFormatError(.invalidField, "header has unknown member \"\(extra)\"")
        }
        guard let version = members["v"]?.integerValue else { throw Self.missing("v", "an integer") }
        guard version == Self.currentVersion else {
            throw EntryFormatError(.unsupportedVersion, "header version \(version) is not supported (expected 1)")
        }
        guard let seq = members["seq"]?.integerValue, seq >= 0 else { throw Self.missing("seq", "a non-negative integer") }
        guard let ts = members["ts"]?.stringValue.flatMap(Self.strictTime) else { throw Self.missing("ts", "an RFC 3339 UTC time with 6 fraction digits") }
        guard let kind = members["kind"]?.stringValue, !kind.isEmpty else { throw Self.missing("kind", "a non-empty string") }
        guard let cls = members["class"]?.stringValue, !cls.isEmpty else { throw Self.missing("class", "a non-empty string") }
        guard let source = members["source"]?.stringValue, !source.isEmpty else { throw Self.missing("source", "a non-empty string") }
        var retainUntil: Timestamp?
        switch members["retain_until"] {
        case .null?: retainUntil = nil
        case .string(let s)?:
            guard let t = Self.strictTime(s) else { throw Self.missing("retain_until", "null or an RFC 3339 UTC time") }
            retainUntil = t
        default: throw Self.missing("retain_until", "null or an RFC 3339 UTC time")
        }
        guard let prev = members["prev"]?.stringValue.flatMap(Self.digest) else { throw Self.missing("prev", "base64 of 32 bytes") }
        guard let body = members["body"]?.stringValue.flatMap(Self.digest) else { throw Self.missing("body", "base64 of 32 bytes") }
        self.init(
            seq: UInt64(seq), timestamp: ts, kind: kind, retentionClass: cls, source: source,
            retainUntil: retainUntil, prev: prev, bodyCommitment: body)
        guard canonicalBytes.elementsEqual(bytes) else {
            throw EntryFormatError(.notCanonical, "header text is not in canonical (RFC 8785) form")
        }
    }

    private static func missing(_ name: String, _ expected: String) -> EntryFormatError {
        EntryFormatError(.invalidField, "header member \"\(name)\" must be \(expected)")
    }

    private static func strictTime(_ text: String) -> Timestamp? {
        guard let t = Timestamp(rfc3339: text), t.description == text else { return nil }
        return t
    }

    private static func digest(_ text: String) -> SHA256Digest? {
        Base64.decode(text).flatMap { SHA256Digest(bytes: $0) }
    }
}

extension EntryHeader {
    /// The `ts` of a canonical header text, found without parsing the rest. In canonical form the
    /// bytes `,"ts":"` occur only as the `ts` member (quotes inside strings are escaped).
    public static func timestamp(inCanonical bytes: [UInt8]) -> Timestamp? {
        let marker = Array(#","ts":""#.utf8)
        guard bytes.count >= marker.count + 27 else { return nil }
        var i = bytes.count - marker.count - 27
        while i >= 0 {
            if bytes[i] == marker[0] && bytes[i..<i + marker.count].elementsEqual(marker) {
                return Timestamp(rfc3339: String(decoding: bytes[(i + marker.count)..<(i + marker.count + 27)], as: UTF8.self))
            }
            i -= 1
        }
        return nil
    }

    /// The `retain_until` of a canonical header text, found without parsing the rest: `.some(nil)`
    /// for `null`, nil when the text has no valid member. In canonical form the bytes
    /// `,"retain_until":` occur only as that member.
    public static func retainUntil(inCanonical bytes: UnsafeRawBufferPointer) -> Timestamp?? {
        let marker = Array(#","retain_until":"#.utf8)
        guard bytes.count > marker.count + 4 else { return nil }
        var i = bytes.count - marker.count - 4
        while i >= 0 {
            if bytes[i] == marker[0] && bytes[i..<i + marker.count].elementsEqual(marker) {
                let start = i + marker.count
                if bytes[start] == UInt8(ascii: "n") { return .some(nil) }
                guard start + 29 <= bytes.count, bytes[start] == UInt8(ascii: "\"") else { return nil }
                return Timestamp(rfc3339: String(decoding: bytes[(start + 1)..<(start + 28)], as: UTF8.self)).map { .some($0) }
            }
            i -= 1
        }
        return nil
    }
}
