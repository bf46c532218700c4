/// A strict RFC 8259 parser producing ``JSONValue``.
///
/// Hand-written because no available parser reports what Stele must refuse: Foundation's
/// `JSONSerialization` keeps the last of duplicate keys and turns every number into a `Double`
/// (so `1.0`, `1e2` and 2^60 are indistinguishable from integers), and it repairs invalid UTF-8.
/// This parser rejects duplicate keys, fractions and exponents, integers beyond ±(2^53−1),
/// invalid UTF-8, lone surrogate escapes and nesting deeper than `maximumDepth`.
public struct JSONParser {
    /// The default limit on nesting depth.
    public static let defaultMaximumDepth = 64

    /// Parses one JSON text (surrounding whitespace allowed, nothing else).
    public static func parse(
        _ bytes: some Collection<UInt8>,
        maximumDepth: Int = defaultMaximumDepth
    ) throws(JSONError) -> JSONValue {
        let array = Array(bytes)
        var result: Result<JSONValue, JSONError> = .success(.null)
        array.withUnsafeBytes { raw in result = Result { () throws(JSONError) in try parse(raw, maximumDepth: maximumDepth) } }
        return try result.get()
    }

    /// Parses one JSON text held in a buffer (no copy).
    public static func parse(
        _ raw: UnsafeRawBufferPointer,
        maximumDepth: Int = defaultMaximumDepth
    ) throws(JSONError) -> JSONValue {
        let buffer = raw.assumingMemoryBound(to: UInt8.self)
        var parser = Parser(input: buffer, maximumDepth: maximumDepth)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == buffer.count else {
            throw JSONError(.syntax, at: parser.position, "unexpected data after the JSON value")
        }
        return value
    }
}

extension JSONParser {
    /// Parses one JSON text whose top level should be an object, handing each member to `visit` in
    /// text order instead of building a dictionary (for request lines, whose few members are
    /// dispatched by name). Member values are parsed as by ``parse(_:maximumDepth:)``; duplicate
    /// member names are refused.
    /// - Returns: false if the text is valid JSON but its top level is not an object.
    public static func parseMembers(
        _ raw: UnsafeRawBufferPointer,
        maximumDepth: Int = defaultMaximumDepth,
        _ visit: (consuming String, consuming JSONValue) -> Void
    ) throws(JSONError) -> Bool {
        let buffer = raw.assumingMemoryBound(to: UInt8.self)
        var parser = Parser(input: buffer, maximumDepth: maximumDepth)
        parser.skipWhitespace()
        guard parser.position < buffer.count, buffer[parser.position] == UInt8(ascii: "{") else {
            _ = try parse(raw, maximumDepth: maximumDepth)
            return false
        }
        try parser.parseMembers(visit)
        parser.skipWhitespace()
        guard parser.position == buffer.count else {
            throw JSONError(.syntax, at: parser.position, "unexpected data after the JSON value")
        }
        return true
    }
}

private struct Parser {
    let input: UnsafeBufferPointer<UInt8>
    let maximumDepth: Int
    var position = 0

    init(input: UnsafeBufferPointer<UInt8>, maximumDepth: Int) {
        self.input = input
        self.maximumDepth = maximumDepth
    }

    mutating func skipWhitespace() {
        while position < input.count {
            switch input[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    func fail(_ code: JSONError.Code, _ message: String) -> JSONError {
        JSONError(code, at: position, message)
    }

    mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        guard position < input.count else { throw fail(.syntax, "unexpected end of input") }
        switch input[position] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .integer(try parseInteger())
        default: throw fail(.syntax, "unexpected character")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= input.count else { throw fail(.syntax, "unexpected end of input") }
        for i in 0..<count where input[position + i] != literal.utf8Start[i] {
            throw fail(.syntax, "invalid literal")
        }
        position += count
    }

    mutating func parseObject(depth: Int) throws(JSONError) -> JSONValue {
        guard depth <= maximumDepth else { throw fail(.tooDeep, "nesting deeper than \(maximumDepth) levels") }
        var members = [String: JSONValue](minimumCapacity: 8)
        try walkObject(depth: depth) { (key, keyOffset, value) throws(JSONError) in
            guard members.updateValue(value, forKey: key) == nil else {
                throw JSONError(.duplicateKey, at: keyOffset, "duplicate object key \"\(key)\"")
            }
        }
        return .object(members)
    }

    /// The top-level object's members, visited in order; names seen are kept in a small array
    /// (request lines have a handful of members), so no dictionary is built.
    mutating func parseMembers(_ visit: (consuming String, consuming JSONValue) -> Void) throws(JSONError) {
        var seen: [String] = []
        seen.reserveCapacity(16)  // one allocation, not one per doubling
        var seenSet: Set<String>?
        try walkObject(depth: 1) { (key, keyOffset, value) throws(JSONError) in
            // A linear check for the usual handful of members; a set once there are many.
            let repeated = seenSet.map { $0.contains(key) } ?? seen.contains(key)
            guard !repeated else {
                throw JSONError(.duplicateKey, at: keyOffset, "duplicate object key \"\(key)\"")
            }
            if seenSet != nil {
                seenSet!.insert(key)
            } else {
                seen.append(key)
                if seen.count > 16 { seenSet = Set(seen) }
            }
            visit(key, value)
        }
    }

    /// Parses an object (at its `{`), handing each member's name, the name's offset and the value to
    /// `member` in text order.
    mutating func walkObject(depth: Int, _ member: (consuming String, Int, consuming JSONValue) throws(JSONError) -> Void) throws(JSONError) {
        position += 1
        skipWhitespace()
        if position < input.count, input[position] == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            guard position < input.count, input[position] == UInt8(ascii: "\"") else {
                throw fail(.syntax, "expected a string as object key")
            }
            let keyOffset = position
            let key = try parseString()
            skipWhitespace()
            guard position < input.count, input[position] == UInt8(ascii: ":") else {
                throw fail(.syntax, "expected ':' after object key")
            }
            position += 1
            skipWhitespace()
            try member(key, keyOffset, try parseValue(depth: depth))
            skipWhitespace()
            guard position < input.count else { throw fail(.syntax, "unexpected end of input in object") }
            switch input[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"): position += 1; return
            default: throw fail(.syntax, "expected ',' or '}' in object")
            }
        }
    }

    mutating func parseArray(depth: Int) throws(JSONError) -> JSONValue {
        guard depth <= maximumDepth else { throw fail(.tooDeep, "nesting deeper than \(maximumDepth) levels") }
        position += 1
        var elements = [JSONValue]()
        skipWhitespace()
        if position < input.count, input[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard position < input.count else { throw fail(.syntax, "unexpected end of input in array") }
            switch input[position] {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"): position += 1; return .array(elements)
            default: throw fail(.syntax, "expected ',' or ']' in array")
            }
        }
    }

    mutating func parseInteger() throws(JSONError) -> Int64 {
        let start = position
        var negative = false
        if input[position] == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        guard position < input.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(input[position]) else {
            throw fail(.syntax, "expected a digit")
        }
        if input[position] == UInt8(ascii: "0"), position + 1 < input.count,
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(input[position + 1])
        {
            throw fail(.syntax, "leading zeros are not allowed")
        }
        var magnitude: Int64 = 0
        var overflow = false
        while position < input.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(input[position]) {
            if magnitude > JSONValue.maximumInteger { overflow = true } else {
                magnitude = magnitude * 10 + Int64(input[position] - UInt8(ascii: "0"))
            }
            position += 1
        }
        if position < input.count,
            input[position] == UInt8(ascii: ".") || input[position] == UInt8(ascii: "e") || input[position] == UInt8(ascii: "E")
        {
            throw JSONError(.floatNotAllowed, at: start, "numbers must be integers (no fraction or exponent)")
        }
        guard !overflow, magnitude <= JSONValue.maximumInteger else {
            throw JSONError(.integerOutOfRange, at: start, "integer outside ±(2^53−1)")
        }
        return negative ? -magnitude : magnitude
    }

    mutating func parseHex4() throws(JSONError) -> UInt16 {
        guard position + 4 <= input.count else { throw fail(.syntax, "truncated \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let c = input[position]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw fail(.syntax, "invalid hex digit in \\u escape")
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    mutating func parseString() throws(JSONError) -> String {
        position += 1  // opening quote
        // Fast path: no escapes, so the string is the input bytes themselves.
        let start = position
        var highBits: UInt8 = 0
        while position < input.count {
            let c = input[position]
            if c == UInt8(ascii: "\"") {
                let text = UnsafeBufferPointer(rebasing: input[start..<position])
                position += 1
                // ASCII needs no validation; anything else must be well-formed UTF-8 (refused, not repaired).
                if highBits < 0x80 { return String(decoding: text, as: UTF8.self) }
                guard let string = String(validating: text, as: UTF8.self) else {
                    position -= 1
                    throw fail(.invalidUTF8, "string is not valid UTF-8")
                }
                return string
            }
            if c < 0x20 || c == UInt8(ascii: "\\") { break }
            highBits |= c
            position += 1
        }
        position = start
        var bytes = [UInt8]()
        var runStart = position
        while true {
            guard position < input.count else { throw fail(.syntax, "unterminated string") }
            let c = input[position]
            if c == UInt8(ascii: "\"") {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[runStart..<position]))
                position += 1
                break
            }
            if c < 0x20 { throw fail(.syntax, "unescaped control character in string") }
            if c != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: input[runStart..<position]))
            position += 1
            guard position < input.count else { throw fail(.syntax, "unterminated escape") }
            let e = input[position]
            position += 1
            switch e {
            case UInt8(ascii: "\""): bytes.append(0x22)
            case UInt8(ascii: "\\"): bytes.append(0x5C)
            case UInt8(ascii: "/"): bytes.append(0x2F)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                let escapeStart = position - 2
                var scalar = UInt32(try parseHex4())
                if (0xD800...0xDBFF).contains(scalar) {
                    guard position + 6 <= input.count, input[position] == UInt8(ascii: "\\"),
                        input[position + 1] == UInt8(ascii: "u")
                    else {
                        throw JSONError(.loneSurrogate, at: escapeStart, "high surrogate without a low surrogate")
                    }
                    position += 2
                    let low = UInt32(try parseHex4())
                    guard (0xDC00...0xDFFF).contains(low) else {
                        throw JSONError(.loneSurrogate, at: escapeStart, "high surrogate without a low surrogate")
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw JSONError(.loneSurrogate, at: escapeStart, "low surrogate without a high surrogate")
                }
                bytes.append(contentsOf: String(Unicode.Scalar(scalar)!).utf8)
            default:
                throw fail(.syntax, "invalid escape sequence")
            }
            runStart = position
        }
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw fail(.invalidUTF8, "string is not valid UTF-8")
        }
        return string
    }
}
