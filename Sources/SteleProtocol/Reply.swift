import SteleCore
import SteleCrypto
public import SteleStore

/// Reply lines of `Specs/protocol.md` (canonical JSON, without the newline), shared by `ingest` and the daemon.
public enum Reply {
    /// `{"ok":true,"id":…,"seq":…,"leaf":…}`, with `duplicate` for a retried id and `header` on request.
    public static func ok(id: String?, receipt: Receipt, includeHeader: Bool) -> String {
        var object: [String: JSONValue] = [
            "ok": .bool(true), "id": id.map(JSONValue.string) ?? .null, "seq": .integer(Int64(receipt.seq)),
            "leaf": .string(Base64.encode(receipt.leafHash.bytes)),
        ]
        if receipt.duplicate { object["duplicate"] = .bool(true) }
        if includeHeader { object["header"] = .string(String(decoding: receipt.header, as: UTF8.self)) }
        return JSONValue.object(object).canonicalText
    }

    /// `{"ok":false,"id":…,"error":{"code":…,"message":…}}`.
    public static func error(id: String?, _ error: ProtocolError) -> String {
        JSONValue.object([
            "ok": .bool(false), "id": id.map(JSONValue.string) ?? .null,
            "error": .object(["code": .string(error.code), "message": .string(error.message)]),
        ]).canonicalText
    }
}
