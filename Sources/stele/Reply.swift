import SteleCore
import SteleCrypto
import SteleProtocol
import SteleStore

/// Reply lines of `Specs/protocol.md`, shared by `ingest` and the daemon.
enum Reply {
    static func ok(id: String?, receipt: Receipt, includeHeader: Bool) -> String {
        var object: [String: JSONValue] = [
            "ok": .bool(true), "id": id.map(JSONValue.string) ?? .null, "seq": .integer(Int64(receipt.seq)),
            "leaf": .string(Base64.encode(receipt.leafHash.bytes)),
        ]
        if receipt.duplicate { object["duplicate"] = .bool(true) }
        if includeHeader { object["header"] = .string(String(decoding: receipt.header, as: UTF8.self)) }
        return JSONValue.object(object).canonicalText
    }

    static func error(id: String?, _ error: ProtocolError) -> String {
        JSONValue.object([
            "ok": .bool(false), "id": id.map(JSONValue.string) ?? .null,
            "error": .object(["code": .string(error.code), "message": .string(error.message)]),
        ]).canonicalText
    }
}
