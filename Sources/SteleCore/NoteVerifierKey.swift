public import SteleCrypto

/// A C2SP signed-note Ed25519 verifier key: `<name>+<key id as 8 hex digits>+<base64(0x01 ‖ public key)>`.
///
/// The key id is the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), read big-endian.
public struct NoteVerifierKey: Hashable, Sendable, CustomStringConvertible {
    /// The signature type byte of Ed25519 in signed notes.
    public static let ed25519Type: UInt8 = 0x01

    /// The key name (for Stele, the log origin).
    public let name: String
    /// The 32-bit key id.
    public let keyID: UInt32
    /// The Ed25519 public key.
    public let publicKey: Ed25519PublicKey

    /// The verifier key for `publicKey` under `name`.
    public init(name: String, publicKey: Ed25519PublicKey) throws(NoteError) {
        guard Self.isValidName(name) else {
            throw NoteError(.malformedKey, "key name \"\(name)\" must be non-empty UTF-8 without spaces or '+'")
        }
        self.name = name
        self.publicKey = publicKey
        self.keyID = Self.keyID(name: name, publicKey: publicKey)
    }

    /// Parses a verifier key string, checking that its key id matches its name and key.
    public init(parsing text: String) throws(NoteError) {
        let parts = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].utf8.count == 8, let id = UInt32(parts[1], radix: 16),
            parts[1].allSatisfy({ $0.isHexDigit && !$0.isUppercase })
        else {
            throw NoteError(.malformedKey, "a verifier key is name+keyid+base64key")
        }
        guard let raw = Base64.decode(parts[2]), raw.count == 33, raw[0] == Self.ed25519Type,
            let key = try? Ed25519PublicKey(rawRepresentation: Array(raw[1...]))
        else {
            throw NoteError(.malformedKey, "the verifier key is not an Ed25519 key (type 0x01 followed by 32 bytes)")
        }
        try self.init(name: String(parts[0]), publicKey: key)
        guard keyID == id else {
            throw NoteError(.malformedKey, "the verifier key id \(parts[1]) does not match its name and key")
        }
    }

    /// The key string.
    public var description: String {
        "\(name)+\(Self.hex(keyID))+\(Base64.encode([Self.ed25519Type] + publicKey.rawRepresentation))"
    }

    /// The C2SP key id of an Ed25519 key.
    public static func keyID(name: String, publicKey: Ed25519PublicKey) -> UInt32 {
        let digest = SHA256.hash(Array(name.utf8) + [0x0A, ed25519Type] + publicKey.rawRepresentation)
        return digest.bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Key names are non-empty, contain no Unicode whitespace and no '+'.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && !name.unicodeScalars.contains { $0 == "+" || $0.properties.isWhitespace || $0.value < 0x20 }
    }

    static func hex(_ id: UInt32) -> String {
        let s = String(id, radix: 16)
        return String(repeating: "0", count: 8 - s.count) + s
    }
}
