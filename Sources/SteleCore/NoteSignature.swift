/// One signature line of a signed note: `— <name> <base64(key id ‖ signature)>`.
public struct NoteSignature: Hashable, Sendable {
    /// The signing key's name.
    public let name: String
    /// The signing key's 32-bit id (big-endian in the encoding).
    public let keyID: UInt32
    /// The signature bytes (64 for Ed25519).
    public let signature: [UInt8]

    /// A signature by the key (`name`, `keyID`).
    public init(name: String, keyID: UInt32, signature: [UInt8]) {
        self.name = name
        self.keyID = keyID
        self.signature = signature
    }

    /// The line, including the leading em dash and the final newline.
    public var line: String {
        let id: [UInt8] = [UInt8(keyID >> 24), UInt8(keyID >> 16 & 0xff), UInt8(keyID >> 8 & 0xff), UInt8(keyID & 0xff)]
        return "\u{2014} \(name) \(Base64.encode(id + signature))\n"
    }
}
