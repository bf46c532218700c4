public import SteleCore
import SteleCrypto

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
        out.appendWritten(maximumLength: maximumOkLength(id: id, receipt: receipt, includeHeader: includeHeader)) { out in
            out.byte(UInt8(ascii: "{"))
            if receipt.duplicate { out.literal(#""duplicate":true,"#) }
            if includeHeader {
                out.literal(#""header":"#)
                receipt.header.withUnsafeBytes { out.string(utf8: $0) }
                out.byte(UInt8(ascii: ","))
            }
            out.literal(#""id":"#)
            if let id { out.string(id) } else { out.literal("null") }
            out.literal(#","leaf":""#)
            receipt.leafHash.withUnsafeBytes { out.base64($0) }
            out.literal(#"","ok":true,"seq":"#)
            out.integer(Int64(receipt.seq))
            out.byte(UInt8(ascii: "}"))
        }
        return out
    }

    /// The most bytes ``okBytes(id:receipt:includeHeader:)`` writes.
    private static func maximumOkLength(id: String?, receipt: Receipt, includeHeader: Bool) -> Int {
        let syntax = 80  // the members' names, punctuation, `true` and `null`: 65 bytes
        return syntax + ByteWriter.maximumStringLength(id?.utf8.count ?? 0) + ByteWriter.base64Length(SHA256Digest.byteCount)
            + ByteWriter.maximumIntegerLength + (includeHeader ? ByteWriter.maximumStringLength(receipt.header.count) : 0)
    }

    /// `{"ok":false,"id":…,"error":{"code":…,"message":…}}`.
    public static func error(id: String?, _ error: ProtocolError) -> String {
        JSONValue.object([
            "ok": .bool(false), "id": id.map(JSONValue.string) ?? .null,
            "error": .object(["code": .string(error.code.description), "message": .string(error.message)]),
        ]).canonicalText
    }
}
