import SteleCore
import SteleCrypto
public import SteleStore

/// Reply lines of `Specs/protocol.md` (canonical JSON, without the newline), shared by `ingest` and the daemon.
public enum Reply {
    /// `{"ok":true,"id":…,"seq":…,"leaf":…}`, with `duplicate` for a retried id and `header` on request.
    public static func ok(id: String?, receipt: Receipt, includeHeader: Bool) -> String {
        String(decoding: okBytes(id: id, receipt: receipt, includeHeader: includeHeader), as: UTF8.self)
    }

    /// ``ok(id:receipt:includeHeader:)`` as UTF-8 bytes.
    public static func okBytes(id: String?, receipt: Receipt, includeHeader: Bool) -> [UInt8] {
        // Written directly in canonical member order (duplicate, header, id, leaf, ok, seq): this runs
        // once per appended event.
        var out = [UInt8]()
        out.reserveCapacity(includeHeader ? 512 : 128)
        out.append(UInt8(ascii: "{"))
        if receipt.duplicate { out.append(contentsOf: #""duplicate":true,"#.utf8) }
        if includeHeader {
            out.append(contentsOf: #""header":"#.utf8)
            receipt.header.withUnsafeBytes { CanonicalJSON.writeString(utf8: $0, to: &out) }
            out.append(UInt8(ascii: ","))
        }
        out.append(contentsOf: #""id":"#.utf8)
        if let id { CanonicalJSON.writeString(id, to: &out) } else { out.append(contentsOf: "null".utf8) }
        out.append(contentsOf: #","leaf":""#.utf8)
        receipt.leafHash.withUnsafeBytes { Base64.encode($0, into: &out) }
        out.append(contentsOf: #"","ok":true,"seq":"#.utf8)
        CanonicalJSON.writeInteger(Int64(receipt.seq), to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `{"ok":false,"id":…,"error":{"code":…,"message":…}}`.
    public static func error(id: String?, _ error: ProtocolError) -> String {
        JSONValue.object([
            "ok": .bool(false), "id": id.map(JSONValue.string) ?? .null,
            "error": .object(["code": .string(error.code), "message": .string(error.message)]),
        ]).canonicalText
    }
}
