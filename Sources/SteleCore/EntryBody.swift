public import SteleCrypto

/// The redactable, possibly personal part of a ledger entry: named fields, each committed on its own.
///
/// The header's `body` member is ``commitment(using:)``: SHA-256 of the field digests concatenated in
/// ascending byte order of field name. Redacting any set of fields leaves the commitment unchanged.
/// The stored form (``canonicalBytes``) is a canonical JSON object mapping each field name to
/// `{"salt":…,"value":…}` (disclosed) or `{"digest":…}` (redacted). See `Specs/entry-format.md`.
public struct EntryBody: Hashable, Sendable {
    /// Fields by name.
    public var fields: [String: BodyField]

    /// A body of the given fields.
    public init(fields: [String: BodyField] = [:]) {
        self.fields = fields
    }

    /// Builds a body from plain values, drawing a fresh random 16-byte salt for each field.
    /// - Throws: ``EntryFormatError`` for an invalid field name.
    public init(values: [String: JSONValue]) throws {
        var salts = try SecureRandom.bytes(values.count * BodyField.saltLength)
        var fields = [String: BodyField](minimumCapacity: values.count)
        var offset = 0
        for (name, value) in values {
            try Self.validate(name: name)
            let salt = Array(salts[offset..<offset + BodyField.saltLength])
            offset += BodyField.saltLength
            fields[name] = try BodyField(salt: salt, value: value)
        }
        for i in salts.indices { salts[i] = 0 }
        self.fields = fields
    }

    /// Field names, in the order their digests enter the commitment (ascending bytes).
    public var orderedNames: [String] {
        fields.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// The body commitment that the header records.
    public func commitment(using sha: SHA256) -> SHA256Digest {
        var concatenated = [UInt8]()
        concatenated.reserveCapacity(fields.count * SHA256Digest.byteCount)
        for name in orderedNames {
            fields[name]!.digest(name: name, using: sha).withUnsafeBytes { concatenated.append(contentsOf: $0) }
        }
        return sha.hash(concatenated)
    }

    /// The disclosed values, or nil when every field is redacted (a fully pruned body).
    public var disclosedValues: [String: JSONValue]? {
        var values = [String: JSONValue]()
        for (name, field) in fields { if let value = field.value { values[name] = value } }
        return values.isEmpty && !fields.isEmpty ? nil : values
    }

    /// Names of redacted fields, in commitment order.
    public var redactedNames: [String] {
        orderedNames.filter { fields[$0]!.isRedacted }
    }

    /// This body with the named fields redacted. Names not present are ignored.
    public func redacting(_ names: some Sequence<String>, using sha: SHA256) -> EntryBody {
        var copy = self
        for name in names {
            if let field = copy.fields[name] { copy.fields[name] = field.redacted(name: name, using: sha) }
        }
        return copy
    }

    /// The stored form as JSON.
    public var jsonValue: JSONValue {
        // Cold path (tests, tools): the record's canonical text parsed back.
        try! JSONParser.parse(canonicalBytes)
    }

    /// The stored form's canonical text, written directly (field names are ASCII, so byte order is
    /// RFC 8785 order; inside a field `digest`, `salt` < `value`).
    public var canonicalBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(64 * fields.count + 2)
        out.append(UInt8(ascii: "{"))
        for (n, name) in orderedNames.enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            switch fields[name]!.content {
            case .disclosed(let salt, let value):
                salt.withUnsafeBytes { Self.writeDisclosedOpening(name: name, salt: $0, to: &out) }
                CanonicalJSON.write(value, to: &out)
                out.append(UInt8(ascii: "}"))
            case .redacted(let digest):
                CanonicalJSON.writeString(name, to: &out)
                out.append(contentsOf: #":{"digest":""#.utf8)
                digest.withUnsafeBytes { Base64.encode($0, into: &out) }
                out.append(contentsOf: #""}"#.utf8)
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Writes a disclosed field up to its value: `"name":{"salt":"…","value":` (the caller writes
    /// the canonical value and the closing brace).
    static func writeDisclosedOpening(name: String, salt: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let length = ByteWriter.maximumStringLength(name.utf8.count) + disclosedSyntaxLength + ByteWriter.base64Length(salt.count)
        out.appendWritten(maximumLength: length) { $0.disclosedOpening(name: name, salt: salt) }
    }

    /// A new body sealed in one pass: its stored record and its commitment.
    public struct Sealed: Sendable {
        /// The canonical stored record (all fields disclosed).
        public let record: [UInt8]
        /// The commitment the header records.
        public let commitment: SHA256Digest
    }

    /// Builds a body from plain values with fresh random salts and returns its record and commitment,
    /// without building intermediate values (the append path's form of ``init(values:)`` plus
    /// ``canonicalBytes`` and ``commitment(using:)``).
    public static func seal(values: [String: JSONValue], using sha: SHA256, randomness: SecureRandomPool? = nil) throws -> Sealed {
        try seal(fields: values.map { PlainField(name: $0.key, value: $0.value) }, using: sha, randomness: randomness)
    }

    /// A field to seal: a name and its plain value. (A struct rather than a tuple: arrays of tuples
    /// are copied and sorted through runtime generic metadata, which is slow on the append path.)
    public struct PlainField: Sendable {
        /// The field name.
        public var name: String
        /// The value.
        public var value: JSONValue

        /// A field.
        public init(name: String, value: JSONValue) {
            self.name = name
            self.value = value
        }
    }

    /// ``seal(values:using:randomness:)`` for fields given as a list.
    /// - Throws: ``EntryFormatError`` for an invalid or repeated field name.
    /// (`fields` is consumed: sorted in place rather than copied.)
    public static func seal(fields unsorted: consuming [PlainField], using sha: SHA256, randomness: SecureRandomPool? = nil) throws -> Sealed {
        var fields = consume unsorted
        for n in fields.indices { try validate(name: fields[n].name) }
        // Valid names are ASCII, for which String order is byte order.
        fields.sort { $0.name < $1.name }
        // Lengths first: comparing unequal strings takes String's slow path.
        for n in fields.indices.dropFirst()
        where fields[n].name.utf8.count == fields[n - 1].name.utf8.count && fields[n].name == fields[n - 1].name {
            throw EntryFormatError(.invalidField, "body field \"\(fields[n].name)\" is given twice (an attribute may not be named actor, subject, id or occurred)")
        }
        let sorted = fields  // immutable from here: its elements are read without being copied
        let count = sorted.count
        let saltLength = BodyField.saltLength
        return try withUnsafeTemporaryAllocation(byteCount: count * (saltLength + 32), alignment: 8) { scratch in
            let salts = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<count * saltLength])
            let digests = UnsafeMutableRawBufferPointer(rebasing: scratch[count * saltLength..<scratch.count])
            defer { salts.initializeMemory(as: UInt8.self, repeating: 0) }
            if let randomness { try randomness.fill(salts) } else { try SecureRandom.fill(salts) }
            var bound = 2
            for n in 0..<count { bound += 2 + maximumDisclosedLength(name: sorted[n].name, value: sorted[n].value) }
            return withUnsafeTemporaryAllocation(of: WrittenField.self, capacity: count) { written in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: bound) { text in
                    var record = ByteWriter(text.baseAddress!)
                    record.byte(UInt8(ascii: "{"))
                    for n in 0..<count {
                        if n > 0 { record.byte(UInt8(ascii: ",")) }
                        // A valid name needs no escaping: its bytes sit between the quotes as they are.
                        let nameStart = record.count + 1
                        record.disclosedOpening(
                            name: sorted[n].name, salt: UnsafeRawBufferPointer(rebasing: salts[n * saltLength..<(n + 1) * saltLength]))
                        let nameEnd = nameStart + sorted[n].name.utf8.count
                        let valueStart = record.count
                        record.json(sorted[n].value)
                        written.initializeElement(at: n, to: WrittenField(name: nameStart..<nameEnd, value: valueStart..<record.count))
                        record.byte(UInt8(ascii: "}"))
                    }
                    record.byte(UInt8(ascii: "}"))
                    precondition(record.count <= bound, "a sealed body outgrew its bound")
                    let bytes = UnsafeRawBufferPointer(start: text.baseAddress, count: record.count)
                    digestFields(salts: UnsafeRawBufferPointer(salts), written: UnsafeBufferPointer(written), record: bytes, into: digests, using: sha)
                    written.deinitialize()
                    return Sealed(record: Array(bytes), commitment: sha.hash(UnsafeRawBufferPointer(digests)))
                }
            }
        }
    }

    /// The most bytes a disclosed field takes: `"name":{"salt":"…","value":…}`.
    private static func maximumDisclosedLength(name: String, value: JSONValue) -> Int {
        ByteWriter.maximumStringLength(name.utf8.count) + disclosedSyntaxLength + ByteWriter.base64Length(BodyField.saltLength)
            + ByteWriter.maximumLength(of: value)
    }

    private static let saltOpening: StaticString = #":{"salt":""#
    private static let valueOpening: StaticString = #"","value":"#
    /// The syntax around a disclosed field's name, salt and value.
    private static let disclosedSyntaxLength = saltOpening.utf8CodeUnitCount + valueOpening.utf8CodeUnitCount + 1

    /// Where a field's name and canonical value were written in a record being sealed.
    private struct WrittenField {
        let name: Range<Int>
        let value: Range<Int>
    }

    /// Writes each field's digest, SHA-256(salt ‖ name ‖ 0x00 ‖ canonical value), with the names and
    /// canonical values taken from where they were written in `record`. The digests are computed
    /// side by side (``SHA256/hash(each:into:)``), so the inputs are first laid out one after another.
    private static func digestFields(
        salts: UnsafeRawBufferPointer, written: UnsafeBufferPointer<WrittenField>, record recordBytes: UnsafeRawBufferPointer,
        into digests: UnsafeMutableRawBufferPointer, using sha: SHA256
    ) {
        let saltLength = BodyField.saltLength
        var total = 0
        for field in written { total += saltLength + field.name.count + 1 + field.value.count }
        withUnsafeTemporaryAllocation(byteCount: total, alignment: 1) { inputs in
            defer { inputs.initializeMemory(as: UInt8.self, repeating: 0) }
            withUnsafeTemporaryAllocation(of: UnsafeRawBufferPointer.self, capacity: written.count) { messages in
                do {
                    var offset = 0
                    for n in written.indices {
                        let start = offset
                        inputs.baseAddress!.advanced(by: offset).copyMemory(from: salts.baseAddress!.advanced(by: n * saltLength), byteCount: saltLength)
                        offset += saltLength
                        let name = written[n].name
                        inputs.baseAddress!.advanced(by: offset).copyMemory(from: recordBytes.baseAddress!.advanced(by: name.lowerBound), byteCount: name.count)
                        offset += name.count
                        inputs[offset] = 0
                        offset += 1
                        let value = UnsafeRawBufferPointer(rebasing: recordBytes[written[n].value])
                        if value.count > 0 { inputs.baseAddress!.advanced(by: offset).copyMemory(from: value.baseAddress!, byteCount: value.count) }
                        offset += value.count
                        messages.initializeElement(at: n, to: UnsafeRawBufferPointer(rebasing: inputs[start..<offset]))
                    }
                }
                sha.hash(each: UnsafeBufferPointer(messages), into: digests)
                messages.deinitialize()
            }
        }
    }

    /// Parses the stored form (canonical or not; what matters is the commitment).
    public init(parsing bytes: some Collection<UInt8>) throws(EntryFormatError) {
        let value: JSONValue
        do { value = try JSONParser.parse(bytes) } catch {
            throw EntryFormatError(.malformedJSON, "body is not valid JSON: \(error)")
        }
        try self.init(json: value)
    }

    /// Reads the stored form from a parsed JSON value.
    public init(json value: JSONValue) throws(EntryFormatError) {
        guard let object = value.objectValue else { throw EntryFormatError(.invalidField, "body is not a JSON object") }
        var fields = [String: BodyField]()
        for (name, member) in object {
            try Self.validate(name: name)
            guard let parts = member.objectValue else {
                throw EntryFormatError(.invalidField, "body field \"\(name)\" is not an object")
            }
            if parts.count == 1, let digestText = parts["digest"]?.stringValue {
                guard let digest = Base64.decode(digestText).flatMap({ SHA256Digest(bytes: $0) }) else {
                    throw EntryFormatError(.invalidField, "body field \"\(name)\" has a digest that is not base64 of 32 bytes")
                }
                fields[name] = BodyField(redactedDigest: digest)
            } else if parts.count == 2, let saltText = parts["salt"]?.stringValue, let fieldValue = parts["value"] {
                guard let salt = Base64.decode(saltText), salt.count == BodyField.saltLength else {
                    throw EntryFormatError(.invalidField, "body field \"\(name)\" has a salt that is not base64 of 16 bytes")
                }
                fields[name] = try BodyField(salt: salt, value: fieldValue)
            } else {
                throw EntryFormatError(.invalidField, "body field \"\(name)\" must be {\"salt\",\"value\"} or {\"digest\"}")
            }
        }
        self.fields = fields
    }

    /// Field names are 1–64 bytes of `a-z`, `0-9`, `_` and `.`, starting with a letter.
    public static func validate(name: String) throws(EntryFormatError) {
        // Over the contiguous bytes (every native String has them): iterating the UTF-8 view one
        // index at a time cost several times more, on every field of every append.
        let valid = name.utf8.withContiguousStorageIfAvailable(isValidName) ?? Array(name.utf8).withUnsafeBufferPointer(isValidName)
        guard valid else {
            throw EntryFormatError(.invalidField, "field name \"\(name)\" must be 1-64 of a-z 0-9 _ . starting with a letter")
        }
    }

    private static func isValidName(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard (1...64).contains(bytes.count), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[0]) else { return false }
        for byte in bytes {
            guard (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            else { return false }
        }
        return true
    }
}

extension ByteWriter {
    /// A disclosed field up to its value: `"name":{"salt":"…","value":`.
    fileprivate mutating func disclosedOpening(name: String, salt: UnsafeRawBufferPointer) {
        string(name)
        literal(#":{"salt":""#)
        base64(salt)
        literal(#"","value":"#)
    }
}
