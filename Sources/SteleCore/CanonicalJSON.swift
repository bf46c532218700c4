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
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .integer(let i): writeInteger(i, to: &out)
        case .string(let s): writeString(s, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (n, element) in elements.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                write(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (n, key) in sortedKeys(members.keys).enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(members[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
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
        if value == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            }
            if value < 0 { out.append(UInt8(ascii: "-")) }
            for i in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[i]) }
        }
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
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        out.append(UInt8(ascii: "\""))
        var runStart = 0
        var i = firstEscape(raw)
        while i < bytes.count {
            let byte = bytes[i]
            i += 1
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i - 1]))
            runStart = i
            out.append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x09: out.append(UInt8(ascii: "t"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            default:
                writeLiteral("u00", to: &out)
                out.append(hexDigit(byte >> 4))
                out.append(hexDigit(byte & 0x0f))
            }
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        out.append(UInt8(ascii: "\""))
    }

    /// The index of the first byte that needs escaping (a control character, `"` or `\`), or at
    /// least the index where a byte-by-byte check must resume; the count when there is none. Checks
    /// eight bytes per step: most strings need no escaping at all.
    private static func firstEscape(_ raw: UnsafeRawBufferPointer) -> Int {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        var i = 0
        guard let base = raw.baseAddress else { return 0 }
        while i + 8 <= raw.count {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let control = (word &- ones &* 0x20) & ~word & highs
            let quote = ((word ^ (ones &* 0x22)) &- ones) & ~(word ^ (ones &* 0x22)) & highs
            let backslash = ((word ^ (ones &* 0x5C)) &- ones) & ~(word ^ (ones &* 0x5C)) & highs
            if control | quote | backslash != 0 { return i }
            i += 8
        }
        return i
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
