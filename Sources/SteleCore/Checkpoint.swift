public import SteleCrypto

/// A C2SP tlog-checkpoint body: origin line, decimal tree size, base64 root hash, then optional
/// extension lines. Stele signs it as a ``SignedNote`` whose key name is the origin.
public struct Checkpoint: Hashable, Sendable {
    /// The log's origin: a unique, stable name for the log, fixed when the store is created.
    public let origin: String
    /// The number of entries the checkpoint covers.
    public let size: UInt64
    /// MTH of the first `size` entries.
    public let rootHash: SHA256Digest
    /// Extension lines (without newlines), in order. Stele writes none.
    public let extensions: [String]

    /// A checkpoint body.
    public init(origin: String, size: UInt64, rootHash: SHA256Digest, extensions: [String] = []) throws(NoteError) {
        guard !origin.isEmpty, !origin.contains("\n"), !origin.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw NoteError(.malformedCheckpoint, "the checkpoint origin must be a non-empty single line")
        }
        guard extensions.allSatisfy({ !$0.isEmpty && !$0.unicodeScalars.contains(where: { $0.value < 0x20 }) }) else {
            throw NoteError(.malformedCheckpoint, "checkpoint extension lines must be non-empty single lines")
        }
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
        self.extensions = extensions
    }

    /// The note text: `origin\nsize\nbase64(root)\n` followed by extension lines.
    public var text: String {
        ([origin, String(size), Base64.encode(rootHash.bytes)] + extensions).map { $0 + "\n" }.joined()
    }

    /// Parses a checkpoint note text.
    public init(parsing text: String) throws(NoteError) {
        guard text.hasSuffix("\n") else { throw NoteError(.malformedCheckpoint, "checkpoint text must end in a newline") }
        let lines = text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= 3 else { throw NoteError(.malformedCheckpoint, "a checkpoint has origin, size and root lines") }
        guard let size = UInt64(lines[1]), String(size) == lines[1] else {
            throw NoteError(.malformedCheckpoint, "the checkpoint size \"\(lines[1])\" is not a decimal number without leading zeros")
        }
        guard let raw = Base64.decode(lines[2]), let root = SHA256Digest(bytes: raw) else {
            throw NoteError(.malformedCheckpoint, "the checkpoint root is not base64 of 32 bytes")
        }
        try self.init(origin: lines[0], size: size, rootHash: root, extensions: Array(lines[3...]))
    }

    /// Signs this checkpoint. The signer's key name should be the origin.
    public func signed(by signer: NoteSigner) throws -> SignedNote {
        try SignedNote(text: text, signatures: [signer.sign(text)])
    }

    /// Parses and verifies a signed checkpoint against trusted keys; checks the origin when given.
    public static func open(
        _ bytes: some Collection<UInt8>, trusting keys: [NoteVerifierKey], origin: String? = nil
    ) throws(NoteError) -> Checkpoint {
        let note = try SignedNote(parsing: bytes)
        try note.verify(trusting: keys)
        let checkpoint = try Checkpoint(parsing: note.text)
        if let origin, checkpoint.origin != origin {
            throw NoteError(.malformedCheckpoint, "checkpoint origin \"\(checkpoint.origin)\" is not this log's origin \"\(origin)\"")
        }
        return checkpoint
    }
}
