/// A JSON value in the subset Stele accepts: no floating-point numbers, integers within ±2^53,
/// object keys unique. Its ``canonicalBytes`` are the RFC 8785 (JCS) serialization.
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    /// An integer in the interoperable range −(2^53−1)…2^53−1.
    case integer(Int64)
    case string(String)
    case array([JSONValue])
    /// An object; keys are unique by construction.
    case object([String: JSONValue])

    /// The largest magnitude an integer may have (RFC 8785 §3.2.2.3, I-JSON).
    public static let maximumInteger: Int64 = (1 << 53) - 1

    /// The string, if this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer, if this is an integer.
    public var integerValue: Int64? {
        if case .integer(let i) = self { return i }
        return nil
    }

    /// The boolean, if this is a boolean.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The members, if this is an object.
    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// The elements, if this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// True for `null`.
    public var isNull: Bool { self == .null }

    /// Member lookup on objects; nil for other values or a missing key.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// The RFC 8785 canonical UTF-8 serialization.
    public var canonicalBytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(128)
        CanonicalJSON.write(self, to: &out)
        return out
    }

    /// The canonical serialization as a string.
    public var canonicalText: String {
        String(decoding: canonicalBytes, as: UTF8.self)
    }

    /// Nesting depth: 0 for scalars, 1 + the deepest member for arrays and objects.
    public var depth: Int {
        switch self {
        case .array(let a): return 1 + (a.map(\.depth).max() ?? 0)
        case .object(let o): return 1 + (o.values.map(\.depth).max() ?? 0)
        default: return 0
        }
    }
}
