public import SteleCrypto

/// A C2SP `tlog-proof@v1`: an entry's index, its inclusion proof and the signed checkpoint the proof
/// leads to, with optional opaque extra data (Stele puts the entry's header text there).
/// Parsing checks syntax only; the checkpoint's signature and the proof are the verifier's to check.
public struct TlogProof: Hashable, Sendable {
    public static let firstLine = "c2sp.org/tlog-proof@v1"

    public var extra: [UInt8]?
    public var index: UInt64
    public var proof: [SHA256Digest]
    /// The signed checkpoint, verbatim.
    public var checkpoint: String

    public init(extra: [UInt8]?, index: UInt64, proof: [SHA256Digest], checkpoint: String) {
        self.extra = extra
        self.index = index
        self.proof = proof
        self.checkpoint = checkpoint
    }

    /// The file's text.
    public var text: String {
        var out = Self.firstLine + "\n"
        if let extra { out += "extra " + Base64.encode(extra) + "\n" }
        out += "index \(index)\n"
        for hash in proof { out += Base64.encode(hash.bytes) + "\n" }
        return out + "\n" + checkpoint
    }

    /// Parses a proof file.
    public init(parsing text: String) throws(NoteError) {
        var rest = Substring(text)
        func line() throws(NoteError) -> Substring {
            guard let end = rest.firstIndex(of: "\n") else { throw NoteError(.malformedProof, "the tlog-proof ends without a newline") }
            let value = rest[..<end]
            rest = rest[rest.index(after: end)...]
            return value
        }
        guard try line() == Self.firstLine else { throw NoteError(.malformedProof, "the first line is not \(Self.firstLine)") }
        var next = try line()
        if next.hasPrefix("extra ") {
            guard let bytes = Base64.decode(next.dropFirst(6)) else { throw NoteError(.malformedProof, "the extra line is not base64") }
            extra = bytes
            next = try line()
        } else {
            extra = nil
        }
        let digits = next.dropFirst(6)
        guard next.hasPrefix("index "), let value = UInt64(digits), digits == "\(value)" else {
            throw NoteError(.malformedProof, "the index line is not \"index\" and a decimal without leading zeros")
        }
        index = value
        var hashes: [SHA256Digest] = []
        while true {
            let hashLine = try line()
            if hashLine.isEmpty { break }
            guard let bytes = Base64.decode(hashLine), let digest = SHA256Digest(bytes: bytes) else {
                throw NoteError(.malformedProof, "proof line \(hashes.count + 1) is not a base64 SHA-256 hash")
            }
            hashes.append(digest)
        }
        proof = hashes
        checkpoint = String(rest)
    }
}
