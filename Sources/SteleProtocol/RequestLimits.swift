/// Bounds on what one request may carry. Defaults are in `Specs/protocol.md`.
public struct RequestLimits: Sendable, Hashable {
    /// Maximum bytes in one request line, excluding the newline.
    public var maximumLineLength = 64 * 1024
    /// Maximum nesting depth of an attribute value (a scalar has depth 0).
    public var maximumAttributeDepth = 8
    /// Maximum number of attributes.
    public var maximumAttributeCount = 64
    /// Maximum bytes in any one string (attribute values and nested strings).
    public var maximumStringLength = 4096
    /// Maximum bytes of an identifier (`actor`, `subject`, `id`).
    public var maximumIdentifierLength = 128

    /// The defaults.
    public init() {}
}
