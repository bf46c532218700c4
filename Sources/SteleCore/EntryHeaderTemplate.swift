public import SteleCrypto

/// A version-1 header's canonical text with everything known before the chain position filled in,
/// so the log's writer (which alone knows `prev`, `seq` and `ts`) only splices in those: the
/// writer's work is serialized, while templates are built in parallel.
/// ``bytes(prev:seq:timestamp:retainUntil:)`` produces exactly ``EntryHeader/canonicalBytes`` of the
/// same header.
public struct EntryHeaderTemplate: Sendable {
    /// `{"body":"…","class":…,"kind":…,"prev":"`
    private let prefix: [UInt8]
    /// `,"source":…,"ts":"`
    private let sourcePart: [UInt8]
    /// SHA-256 after absorbing `0x00 ‖ prefix`: the leaf hash's first blocks, computed with the template.
    private let leafMidstate: SHA256.State

    /// A template for a header with these members.
    public init(kind: String, retentionClass: String, source: String, bodyCommitment: SHA256Digest, using sha: SHA256) {
        var prefix = [UInt8]()
        prefix.reserveCapacity(96 + kind.utf8.count + retentionClass.utf8.count)
        CanonicalJSON.writeLiteral(#"{"body":""#, to: &prefix)
        bodyCommitment.withUnsafeBytes { Base64.encode($0, into: &prefix) }
        CanonicalJSON.writeLiteral(#"","class":"#, to: &prefix)
        CanonicalJSON.writeString(retentionClass, to: &prefix)
        CanonicalJSON.writeLiteral(#","kind":"#, to: &prefix)
        CanonicalJSON.writeString(kind, to: &prefix)
        CanonicalJSON.writeLiteral(#","prev":""#, to: &prefix)
        var sourcePart = [UInt8]()
        sourcePart.reserveCapacity(20 + source.utf8.count)
        CanonicalJSON.writeLiteral(#","source":"#, to: &sourcePart)
        CanonicalJSON.writeString(source, to: &sourcePart)
        CanonicalJSON.writeLiteral(#","ts":""#, to: &sourcePart)
        self.prefix = prefix
        self.sourcePart = sourcePart
        sha.begin()
        sha.update(byte: 0x00)
        sha.update(prefix)
        self.leafMidstate = sha.state
    }

    /// The RFC 6962 leaf hash, SHA-256(0x00 ‖ header), of `header` as returned by
    /// ``bytes(prev:seq:timestamp:retainUntil:)`` for this template, continuing from the prefix
    /// already absorbed.
    public func leafHash(of header: [UInt8], using sha: SHA256) -> SHA256Digest {
        precondition(header.count >= prefix.count, "not a header built from this template")
        sha.resume(leafMidstate)
        header.withUnsafeBytes { sha.update(UnsafeRawBufferPointer(rebasing: $0[prefix.count...])) }
        return sha.finish()
    }

    /// The header text for this position in the log.
    public func bytes(prev: SHA256Digest, seq: UInt64, timestamp: Timestamp, retainUntil: Timestamp?) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(prefix.count + sourcePart.count + 160)
        out.append(contentsOf: prefix)
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
        out.append(contentsOf: sourcePart)
        timestamp.write(to: &out)
        CanonicalJSON.writeLiteral(#"","v":1}"#, to: &out)
        return out
    }
}
