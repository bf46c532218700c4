/// Standard base64 (RFC 4648 §4, with padding), strict on input: the text must be exactly what
/// encoding its bytes would produce, so no two texts decode to the same bytes.
///
/// Hand-written because Stele encodes several digests into every header and body on the append
/// path, and Foundation's `Data.base64EncodedString()` costs an intermediate `Data` and `String`
/// per call; this writes straight into the output buffer.
public enum Base64 {
    // A StaticString, not an array: reading it touches no reference count, so threads encoding at
    // the same time do not contend on one shared buffer.
    private static let alphabetText: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    static var alphabet: UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: alphabetText.utf8Start, count: alphabetText.utf8CodeUnitCount)
    }
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// Appends the encoding of `bytes` to `out`.
    public static func encode(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        out.appendWritten(maximumLength: ByteWriter.base64Length(bytes.count)) { $0.base64(bytes) }
    }

    /// Encodes bytes.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        if bytes.withContiguousStorageIfAvailable({ encode(UnsafeRawBufferPointer($0), into: &out) }) == nil {
            Array(bytes).withUnsafeBytes { encode($0, into: &out) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes canonical padded base64; nil for anything else (whitespace, missing padding,
    /// non-zero trailing bits, URL-safe alphabet).
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(input.count / 4 * 3)
        var i = 0
        while i < input.count {
            let last = i + 4 == input.count
            var values: [UInt32] = [0, 0, 0, 0]
            var padding = 0
            for j in 0..<4 {
                let c = input[i + j]
                if c == UInt8(ascii: "=") && last && j >= 2 {
                    padding += 1
                    continue
                }
                guard padding == 0 else { return nil }
                let v = reverse[Int(c)]
                guard v != 0xFF else { return nil }
                values[j] = UInt32(v)
            }
            let v = values[0] << 18 | values[1] << 12 | values[2] << 6 | values[3]
            out.append(UInt8(v >> 16 & 0xFF))
            if padding < 2 { out.append(UInt8(v >> 8 & 0xFF)) }
            if padding < 1 { out.append(UInt8(v & 0xFF)) }
            // Canonical form: the bits dropped by padding must be zero.
            if padding == 1 && v & 0xFF != 0 { return nil }
            if padding == 2 && v & 0xFFFF != 0 { return nil }
            i += 4
        }
        return out
    }
}
