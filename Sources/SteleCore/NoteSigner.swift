public import SteleCrypto

/// Signs note texts with an Ed25519 key under a key name (C2SP signed-note).
public struct NoteSigner: Sendable {
    /// The private key.
    public let privateKey: Ed25519PrivateKey
    /// The verifier key others use to check this signer's notes.
    public let verifierKey: NoteVerifierKey

    /// A signer for `name`.
    public init(name: String, privateKey: Ed25519PrivateKey) throws(NoteError) {
        self.privateKey = privateKey
        self.verifierKey = try NoteVerifierKey(name: name, publicKey: privateKey.publicKey)
    }

    /// Parses a signer key string `PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖ seed)>` (the form used by
    /// the Go note package and its test vectors).
    public init(parsing text: String) throws(NoteError) {
        let parts = text.split(separator: "+", maxSplits: 4, omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "PRIVATE", parts[1] == "KEY", let id = UInt32(parts[3], radix: 16),
            let raw = Base64.decode(parts[4]), raw.count == 33, raw[0] == NoteVerifierKey.ed25519Type,
            let key = try? Ed25519PrivateKey(seed: Array(raw[1...]))
        else {
            throw NoteError(.malformedKey, "a signer key is PRIVATE+KEY+name+keyid+base64(0x01 seed)")
        }
        try self.init(name: String(parts[2]), privateKey: key)
        guard verifierKey.keyID == id else {
            throw NoteError(.malformedKey, "the signer key id does not match its name and key")
        }
    }

    /// The signature of `text` as a note signature line's content.
    public func sign(_ text: String) throws -> NoteSignature {
        let signature = try privateKey.signature(for: Array(text.utf8))
        return NoteSignature(name: verifierKey.name, keyID: verifierKey.keyID, signature: signature)
    }
}
