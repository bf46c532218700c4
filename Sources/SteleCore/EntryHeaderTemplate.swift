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
        var parts = [UInt8]()
        parts.reserveCapacity(116 + kind.utf8.count + retentionClass.utf8.count + source.utf8.count)
        CanonicalJSON.writeLiteral(#"{"body":""#, to: &parts)
        bodyCommitment.withUnsafeBytes { Base64.encode($0, into: &parts) }
        CanonicalJSON.writeLiteral(#"","class":"#, to: &parts)
        CanonicalJSON.writeString(retentionClass, to: &parts)
        CanonicalJSON.writeLiteral(#","kind":"#, to: &parts)
        CanonicalJSON.writeString(kind, to: &parts)
        CanonicalJSON.writeLiteral(#","prev":""#, to: &parts)
        let split = parts.count
        CanonicalJSON.writeLiteral(#","source":"#, to: &parts)
        CanonicalJSON.writeString(source, to: &parts)
        CanonicalJSON.writeLiteral(#","ts":""#, to: &parts)
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
        var out = [UInt8]()
        out.reserveCapacity(parts.count + 160)
        parts.withUnsafeBufferPointer { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0[..<split])) }
        prev.withUnsafeBytes { Base64.encode($0, into: &out) }
        CanonicalJSON.writeLiteral(#"","retain_until":"#, to: &out)
        if let retainUntil {
            out.append(UInt8(ascii: "\""))
            retainUntil.write(to: &out)
            out.append(UInt8(ascii: "\""))
        } else {
            CanonicalJSON.writeLiteral("null", to: &out)
        }
        CanonicalJSON.writeLiteral(#","seq":"#, to: &out)
        CanonicalJSON.writeInteger(Int64(seq), to: &out)
        parts.withUnsafeBufferPointer { out.append(contentsOf: UnsafeBufferPointer(rebasing: $0[split...])) }
        timestamp.write(to: &out)
        CanonicalJSON.writeLiteral(#"","v":1}"#, to: &out)
        return out
    }
}
