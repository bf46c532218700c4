/// Writes canonical JSON pieces into memory the caller has sized with the `maximumLength`
/// functions, with no check or reallocation per piece.
///
/// Stele writes every entry's body, header and reply on the append path, each out of dozens of
/// small pieces. Appended to an `Array` one by one, every piece paid for a uniqueness check, a
/// capacity check and a copy call (about a twentieth of the daemon's instructions per event); here a
/// piece is a store or one copy. The canonical forms are those of ``CanonicalJSON``, which is
/// written on top of this type.
public struct ByteWriter {
    /// Where the next byte goes.
    @usableFromInline var cursor: UnsafeMutablePointer<UInt8>
    @usableFromInline let start: UnsafeMutablePointer<UInt8>

    /// A writer at `start`, which must have room for everything written.
    @inlinable
    public init(_ start: UnsafeMutablePointer<UInt8>) {
        self.start = start
        self.cursor = start
    }

    /// Bytes written so far.
    @inlinable
    public var count: Int { cursor - start }

    /// One byte.
    @inlinable
    public mutating func byte(_ byte: UInt8) {
        cursor.initialize(to: byte)
        cursor += 1
    }

    /// Bytes as they are.
    @inlinable
    public mutating func bytes(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        UnsafeMutableRawPointer(cursor).copyMemory(from: base, byteCount: bytes.count)
        cursor += bytes.count
    }

    /// Bytes that are already canonical (syntax, member names).
    @inlinable
    public mutating func literal(_ literal: StaticString) {
        bytes(UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    // MARK: Canonical values

    /// The most bytes ``string(utf8:)`` writes for a string of `count` UTF-8 bytes.
    public static func maximumStringLength(_ count: Int) -> Int { 2 + 6 * count }

    /// A string literal, given as valid UTF-8, with RFC 8785 escaping.
    public mutating func string(utf8 raw: UnsafeRawBufferPointer) {
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        byte(UInt8(ascii: "\""))
        var runStart = 0
        var i = Self.firstEscape(raw)
        while i < bytes.count {
            let c = bytes[i]
            i += 1
            guard c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") else { continue }
            self.bytes(UnsafeRawBufferPointer(rebasing: raw[runStart..<i - 1]))
            runStart = i
            byte(UInt8(ascii: "\\"))
            switch c {
            case UInt8(ascii: "\""): byte(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): byte(UInt8(ascii: "\\"))
            case 0x08: byte(UInt8(ascii: "b"))
            case 0x09: byte(UInt8(ascii: "t"))
            case 0x0A: byte(UInt8(ascii: "n"))
            case 0x0C: byte(UInt8(ascii: "f"))
            case 0x0D: byte(UInt8(ascii: "r"))
            default:
                literal("u00")
                byte(Self.hexDigit(c >> 4))
                byte(Self.hexDigit(c & 0x0f))
            }
        }
        self.bytes(UnsafeRawBufferPointer(rebasing: raw[runStart..<bytes.count]))
        byte(UInt8(ascii: "\""))
    }

    /// A string with RFC 8785 escaping.
    public mutating func string(_ string: String) {
        string.withUTF8Bytes { self.string(utf8: $0) }
    }

    /// The most bytes ``integer(_:)`` writes.
    public static let maximumIntegerLength = 20

    /// A decimal integer.
    public mutating func integer(_ value: Int64) {
        if value < 0 { byte(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        var position = cursor + digits
        cursor = position
        repeat {
            position -= 1
            position.initialize(to: UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
    }

    /// The most bytes ``json(_:)`` writes for `value`.
    public static func maximumLength(of value: JSONValue) -> Int {
        switch value {
        case .null, .bool: 5
        case .integer: maximumIntegerLength
        case .string(let s): maximumStringLength(s.utf8.count)
        case .array(let elements): elements.reduce(2) { $0 + 1 + maximumLength(of: $1) }
        case .object(let members):
            members.reduce(2) { $0 + 2 + maximumStringLength($1.key.utf8.count) + maximumLength(of: $1.value) }
        }
    }

    /// The RFC 8785 serialization of `value`.
    public mutating func json(_ value: JSONValue) {
        switch value {
        case .null: literal("null")
        case .bool(let b): if b { literal("true") } else { literal("false") }
        case .integer(let i): integer(i)
        case .string(let s): string(s)
        case .array(let elements):
            byte(UInt8(ascii: "["))
            for (n, element) in elements.enumerated() {
                if n > 0 { byte(UInt8(ascii: ",")) }
                json(element)
            }
            byte(UInt8(ascii: "]"))
        case .object(let members):
            byte(UInt8(ascii: "{"))
            for (n, key) in CanonicalJSON.sortedKeys(members.keys).enumerated() {
                if n > 0 { byte(UInt8(ascii: ",")) }
                string(key)
                byte(UInt8(ascii: ":"))
                json(members[key]!)
            }
            byte(UInt8(ascii: "}"))
        }
    }

    // MARK: Base64

    /// The bytes ``base64(_:)`` writes for `count` input bytes.
    public static func base64Length(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// Standard base64 with padding (``Base64``).
    public mutating func base64(_ bytes: UnsafeRawBufferPointer) {
        let a = Base64.alphabet
        var i = 0
        while i + 3 <= bytes.count {
            let v = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            cursor[0] = a[Int(v >> 18 & 63)]
            cursor[1] = a[Int(v >> 12 & 63)]
            cursor[2] = a[Int(v >> 6 & 63)]
            cursor[3] = a[Int(v & 63)]
            cursor += 4
            i += 3
        }
        if i < bytes.count {
            let two = bytes.count - i == 2
            let v = UInt32(bytes[i]) << 16 | (two ? UInt32(bytes[i + 1]) << 8 : 0)
            cursor[0] = a[Int(v >> 18 & 63)]
            cursor[1] = a[Int(v >> 12 & 63)]
            cursor[2] = two ? a[Int(v >> 6 & 63)] : UInt8(ascii: "=")
            cursor[3] = UInt8(ascii: "=")
            cursor += 4
        }
    }

    // MARK: Helpers

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

extension Array where Element == UInt8 {
    /// Appends what `write` writes, at most `maximumLength` bytes, with one capacity check.
    public mutating func appendWritten(maximumLength: Int, _ write: (inout ByteWriter) -> Void) {
        let start = count
        // Zero-filled first: an Array offers no uninitialized tail to write into. Filling costs
        // one pass of `memset`, far less than a checked append per piece.
        append(contentsOf: repeatElement(0, count: maximumLength))
        let written = withUnsafeMutableBufferPointer { buffer in
            var writer = ByteWriter(buffer.baseAddress! + start)
            write(&writer)
            return writer.count
        }
        precondition(written <= maximumLength, "wrote past the reserved length")
        removeLast(maximumLength - written)
    }
}
