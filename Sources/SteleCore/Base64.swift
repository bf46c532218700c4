import Foundation

/// Standard base64 (RFC 4648 §4, with padding), strict on input: the text must be exactly what
/// encoding its bytes would produce, so no two texts decode to the same bytes.
public enum Base64 {
    /// Encodes bytes.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        Data(bytes).base64EncodedString()
    }

    /// Decodes canonical padded base64; nil for anything else (whitespace, missing padding,
    /// non-zero trailing bits, URL-safe alphabet).
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        guard let data = Data(base64Encoded: String(text)) else { return nil }
        let bytes = [UInt8](data)
        guard encode(bytes) == text else { return nil }
        return bytes
    }
}
