/// RFC 8785 JSON Canonicalization Scheme for ``JSONValue``.
///
/// Stele's values hold no floating-point numbers, so number serialization reduces to the decimal
/// form of an integer; strings use the minimal escaping of RFC 8785 §3.2.2.2; object members are
/// sorted by the UTF-16 code units of their names (§3.2.3).
public enum CanonicalJSON {
    /// Parses `bytes` (strictly, see ``JSONParser``) and returns their canonical form.
    public static func canonicalize(_ bytes: some Collection<UInt8>) throws(JSONError) -> [UInt8] {
        try JSONParser.parse(bytes).canonicalBytes
    }

    /// Appends the canonical serialization of `value` to `out`.
    public static func write(_ value: JSONValue, to out: inout [UInt8]) {
        out.appendWritten(maximumLength: ByteWriter.maximumLength(of: value)) { $0.json(value) }
    }

    /// Keys in RFC 8785 order: lexicographic by UTF-16 code unit.
    public static func sortedKeys(_ keys: some Sequence<String>) -> [String] {
        let array = Array(keys)
        // For ASCII keys (the common case) UTF-8 byte order is UTF-16 code-unit order.
        if array.allSatisfy({ $0.utf8.allSatisfy { $0 < 0x80 } }) {
            return array.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        }
        return array.sorted { $0.utf16.lexicographicallyPrecedes($1.utf16) }
    }

    /// Appends a decimal integer.
    public static func writeInteger(_ value: Int64, to out: inout [UInt8]) {
        out.appendWritten(maximumLength: ByteWriter.maximumIntegerLength) { $0.integer(value) }
    }

    /// Appends the bytes of a literal that is already in canonical form (syntax, member names).
    static func writeLiteral(_ literal: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Appends a string literal with RFC 8785 escaping.
    public static func writeString(_ string: String, to out: inout [UInt8]) {
        string.withUTF8Bytes { writeString(utf8: $0, to: &out) }
    }

    /// Appends a string literal, given as valid UTF-8, with RFC 8785 escaping.
    public static func writeString(utf8 raw: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.appendWritten(maximumLength: ByteWriter.maximumStringLength(raw.count)) { $0.string(utf8: raw) }
    }
}
