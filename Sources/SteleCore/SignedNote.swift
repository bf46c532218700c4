import SteleCrypto

/// A C2SP signed note: a text ending in a newline, a blank line, and one or more signature lines.
public struct SignedNote: Hashable, Sendable {
    /// Notes with more signature lines than this are refused.
    public static let maximumSignatures = 100

    /// The signed text, including its final newline.
    public let text: String
    /// The signature lines, in order.
    public let signatures: [NoteSignature]

    /// A note of `text` carrying `signatures`.
    public init(text: String, signatures: [NoteSignature]) throws(NoteError) {
        try Self.validateText(text)
        guard !signatures.isEmpty else { throw NoteError(.malformedNote, "a signed note needs at least one signature") }
        self.text = text
        self.signatures = signatures
    }

    /// The note's bytes: text, blank line, signature lines.
    public var serialized: String {
        text + "\n" + signatures.map(\.line).joined()
    }

    /// Parses a signed note, checking its syntax only (see ``verify(trusting:)``).
    public init(parsing bytes: some Collection<UInt8>) throws(NoteError) {
        guard let message = String(validating: bytes, as: UTF8.self) else {
            throw NoteError(.malformedNote, "the note is not valid UTF-8")
        }
        guard !message.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) else {
            throw NoteError(.malformedNote, "the note contains a control character other than newline")
        }
        let utf8 = Array(message.utf8)
        // The text ends at the last blank line: split after the first newline of the last "\n\n".
        var split: Int?
        var i = utf8.count - 2
        while i >= 0 {
            if utf8[i] == 0x0A && utf8[i + 1] == 0x0A { split = i + 1; break }
            i -= 1
        }
        guard let split else { throw NoteError(.malformedNote, "the note has no blank line before its signatures") }
        let text = String(decoding: utf8[..<split], as: UTF8.self)
        let block = utf8[(split + 1)...]
        guard block.last == 0x0A else { throw NoteError(.malformedNote, "the last signature line does not end in a newline") }
        var signatures: [NoteSignature] = []
        for rawLine in block.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false) {
            guard signatures.count < Self.maximumSignatures else {
                throw NoteError(.malformedNote, "the note has more than \(Self.maximumSignatures) signatures")
            }
            signatures.append(try Self.parseSignatureLine(String(decoding: rawLine, as: UTF8.self)))
        }
        try self.init(text: text, signatures: signatures)
    }

    /// The signatures made by trusted keys, after checking them all.
    ///
    /// Signatures by keys not in `keys` are ignored. A signature whose name and key id match a trusted
    /// key but which does not verify makes the whole note invalid, as the C2SP spec requires.
    /// - Throws: ``NoteError`` `invalidSignature`, or `unverified` if no trusted key signed.
    @discardableResult
    public func verify(trusting keys: [NoteVerifierKey]) throws(NoteError) -> [NoteVerifierKey] {
        var verified: [NoteVerifierKey] = []
        let message = Array(text.utf8)
        for signature in signatures {
            guard let key = keys.first(where: { $0.name == signature.name && $0.keyID == signature.keyID }) else { continue }
            guard key.publicKey.isValidSignature(signature.signature, for: message) else {
                throw NoteError(.invalidSignature, "the signature by \(key.name) does not match the note text: the text was altered or the signature is forged")
            }
            if !verified.contains(key) { verified.append(key) }
        }
        guard !verified.isEmpty else {
            throw NoteError(.unverified, "the note carries no signature by a trusted key (\(keys.map(\.name).joined(separator: ", ")))")
        }
        return verified
    }

    static func validateText(_ text: String) throws(NoteError) {
        guard text.utf8.last == 0x0A else { throw NoteError(.malformedNote, "note text must end in a newline") }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" }) else {
            throw NoteError(.malformedNote, "note text contains a control character other than newline")
        }
    }

    static func parseSignatureLine(_ line: String) throws(NoteError) -> NoteSignature {
        let prefix = "\u{2014} "
        guard line.hasPrefix(prefix) else {
            throw NoteError(.malformedNote, "a signature line must start with an em dash and a space")
        }
        let rest = line.dropFirst(prefix.count)
        let parts = rest.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, NoteVerifierKey.isValidName(String(parts[0])) else {
            throw NoteError(.malformedNote, "a signature line is '— name base64signature'")
        }
        guard let raw = Base64.decode(parts[1]), raw.count >= 5 else {
            throw NoteError(.malformedNote, "the signature of \(parts[0]) is not base64 of a key id and signature")
        }
        let id = raw.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return NoteSignature(name: String(parts[0]), keyID: id, signature: Array(raw.dropFirst(4)))
    }
}
