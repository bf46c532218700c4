public import SteleCrypto

/// One separately committed body field: either disclosed (salt and value present) or redacted
/// (only its digest remains). See `Specs/entry-format.md` §Body.
///
/// digest = SHA-256(salt ‖ UTF-8(name) ‖ 0x00 ‖ RFC 8785 canonical(value)), with a 16-byte salt.
public struct BodyField: Hashable, Sendable {
    /// The length of a field salt in bytes.
    public static let saltLength = 16

    /// What is held of the field.
    public enum Content: Hashable, Sendable {
        /// The value and the salt that hides it.
        case disclosed(salt: [UInt8], value: JSONValue)
        /// Value and salt deleted; only the commitment is kept.
        case redacted(digest: SHA256Digest)
    }

    /// The field's content.
    public var content: Content

    /// A disclosed field. The salt must be 16 bytes.
    public init(salt: [UInt8], value: JSONValue) throws(EntryFormatError) {
        guard salt.count == Self.saltLength else {
            throw EntryFormatError(.invalidField, "a field salt must be 16 bytes, got \(salt.count)")
        }
        self.content = .disclosed(salt: salt, value: value)
    }

    /// A redacted field.
    public init(redactedDigest: SHA256Digest) {
        self.content = .redacted(digest: redactedDigest)
    }

    /// The value, if disclosed.
    public var value: JSONValue? {
        if case .disclosed(_, let value) = content { return value }
        return nil
    }

    /// True once value and salt are gone.
    public var isRedacted: Bool {
        if case .redacted = content { return true }
        return false
    }

    /// The field's commitment under `name`.
    public func digest(name: String, using sha: SHA256) -> SHA256Digest {
        switch content {
        case .redacted(let digest):
            return digest
        case .disclosed(let salt, let value):
            return salt.withUnsafeBytes { salt in
                value.canonicalBytes.withUnsafeBytes { Self.digest(salt: salt, name: name, canonicalValue: $0, using: sha) }
            }
        }
    }

    /// SHA-256(salt ‖ UTF-8(name) ‖ 0x00 ‖ canonicalValue).
    public static func digest(salt: UnsafeRawBufferPointer, name: String, canonicalValue: UnsafeRawBufferPointer, using sha: SHA256) -> SHA256Digest {
        sha.begin()
        sha.update(salt)
        name.withUTF8Bytes { sha.update($0) }
        sha.update(byte: 0)
        sha.update(canonicalValue)
        return sha.finish()
    }

    /// This field with value and salt removed.
    public func redacted(name: String, using sha: SHA256) -> BodyField {
        BodyField(redactedDigest: digest(name: name, using: sha))
    }
}
