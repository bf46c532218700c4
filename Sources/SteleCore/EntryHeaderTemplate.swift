public import SteleCrypto

/// A version-1 header's canonical text with everything known before the chain position filled in,
/// so the log's writer (which alone knows `prev`, `seq` and `ts`) only splices in those: the
/// writer's work is serialized, while templates are built in parallel.
/// ``bytes(prev:seq:timestamp:retainUntil:)`` produces exactly ``EntryHeader/canonicalBytes`` of the
/// same header.
public struct EntryHeaderTemplate: Sendable {
    /// `{"body":"…","class":…,"kind":…,"prev":"` (the prefix, `split` bytes) then `,"source":…,"ts":"`:
    /// one array rather than two, so that a template costs one allocation.
    private let parts: [UInt8]
    /// Where the prefix ends in `parts`.
    private let split: Int
    /// SHA-256 after absorbing `0x00 ‖ prefix`: the leaf hash's first blocks, computed with the template.
    private let leafMidstate: SHA256.State

    /// A template for a header with these members.
    public init(kind: String, retentionClass: String, source: String, bodyCommitment: SHA256Digest, using sha: SHA256) {
        var split = 0
        let syntax = 64  // the members' names and punctuation: 53 bytes
        let bound = syntax + ByteWriter.base64Length(SHA256Digest.byteCount) + ByteWriter.maximumStringLength(kind.utf8.count)
            + ByteWriter.maximumStringLength(retentionClass.utf8.count) + ByteWriter.maximumStringLength(source.utf8.count)
        let parts = [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
            var out = ByteWriter(buffer.baseAddress!)
            out.literal(#"{"body":""#)
            bodyCommitment.withUnsafeBytes { out.base64($0) }
            out.literal(#"","class":"#)
            out.string(retentionClass)
            out.literal(#","kind":"#)
            out.string(kind)
            out.literal(#","prev":""#)
            split = out.count
            out.literal(#","source":"#)
            out.string(source)
            out.literal(#","ts":""#)
            count = out.count
            precondition(count <= buffer.count, "a header template outgrew its bound")
        }
        self.parts = parts
        self.split = split
        sha.begin()
        sha.update(byte: 0x00)
        parts.withUnsafeBytes { sha.update(UnsafeRawBufferPointer(rebasing: $0[..<split])) }
        self.leafMidstate = sha.state
    }

    /// The RFC 6962 leaf hash, SHA-256(0x00 ‖ header), of `header` as returned by
    /// ``bytes(prev:seq:timestamp:retainUntil:)`` for this template, continuing from the prefix
    /// already absorbed.
    public func leafHash(of header: [UInt8], using sha: SHA256) -> SHA256Digest {
        precondition(header.count >= split, "not a header built from this template")
        sha.resume(leafMidstate)
        header.withUnsafeBytes { sha.update(UnsafeRawBufferPointer(rebasing: $0[split...])) }
        return sha.finish()
    }

    /// The header text for this position in the log.
    public func bytes(prev: SHA256Digest, seq: UInt64, timestamp: Timestamp, retainUntil: Timestamp?) -> [UInt8] {
        // What the template lacks: prev (44 bytes), retain_until (a quoted time or null), seq (at most
        // 20 digits), ts (27) and their syntax, 152 bytes at most.
        [UInt8](unsafeUninitializedCapacity: parts.count + 192) { buffer, count in
            var out = ByteWriter(buffer.baseAddress!)
            parts.withUnsafeBytes { out.bytes(UnsafeRawBufferPointer(rebasing: $0[..<split])) }
            prev.withUnsafeBytes { out.base64($0) }
            out.literal(#"","retain_until":"#)
            if let retainUntil {
                out.byte(UInt8(ascii: "\""))
                retainUntil.write(to: &out)
                out.byte(UInt8(ascii: "\""))
            } else {
                out.literal("null")
            }
            out.literal(#","seq":"#)
            out.integer(Int64(seq))
            parts.withUnsafeBytes { out.bytes(UnsafeRawBufferPointer(rebasing: $0[split...])) }
            timestamp.write(to: &out)
            out.literal(#"","v":1}"#)
            count = out.count
            precondition(count <= buffer.count, "a header outgrew its bound")
        }
    }
}
