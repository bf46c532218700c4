import Foundation
import SteleCore
import SteleTestSupport
import Testing

@Suite("RFC 8785 canonical JSON")
struct CanonicalJSONTests {
    static var vectors: [String: Any] { try! Vectors.load("canonical-json.json") }

    static var valid: [[String: String]] { vectors["valid"] as! [[String: String]] }
    static var invalid: [[String: String]] { vectors["invalid"] as! [[String: String]] }

    @Test("each valid input canonicalizes to exactly the expected text", arguments: valid)
    func canonicalForm(vector: [String: String]) throws {
        let output = try CanonicalJSON.canonicalize(Array(vector["input"]!.utf8))
        #expect(String(decoding: output, as: UTF8.self) == vector["canonical"]!, "\(vector["name"]!)")
        // Canonical form is a fixed point.
        #expect(try CanonicalJSON.canonicalize(output) == output)
    }

    @Test("each invalid input is refused with the expected error code", arguments: invalid)
    func refusals(vector: [String: String]) {
        let bytes = vector["input_hex"].map(hexBytes) ?? Array(vector["input"]!.utf8)
        do {
            _ = try JSONParser.parse(bytes)
            Issue.record("accepted \(vector["name"]!)")
        } catch {
            // The vectors name each code in camelCase; the code is the same words in snake_case.
            #expect(error.code.description == Self.snakeCase(vector["error"]!), "\(vector["name"]!): \(error)")
        }
    }

    @Test("nesting beyond the limit is refused, at the limit accepted")
    func depthLimit() throws {
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONError.self) { try JSONParser.parse(Array(deep.utf8)) }
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try JSONParser.parse(Array(ok.utf8)).depth == 64)
        let huge = String(repeating: "[", count: 100_000)
        #expect(throws: JSONError.self) { try JSONParser.parse(Array(huge.utf8)) }
    }

    @Test("serializing a built value sorts keys and escapes strings")
    func buildAndSerialize() {
        let value = JSONValue.object(["b": .integer(-5), "a": .array([.string("x\"y"), .null, .bool(true)])])
        #expect(value.canonicalText == #"{"a":["x\"y",null,true],"b":-5}"#)
    }

    @Test("integers are written in full, from Int64.min to Int64.max")
    func integersInFull() {
        for value: Int64 in [0, 7, -7, 10, -10, 9_007_199_254_740_991, -9_007_199_254_740_991, .max, .min] {
            var out: [UInt8] = [0x41]
            CanonicalJSON.writeInteger(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == "A\(value)")
        }
    }

    @Test("the writer's bound covers the worst case: every byte of every string escaped as \\u00XX")
    func boundsHoldForTheWorstCase() {
        let controls = String(decoding: (0..<0x20).map { UInt8($0) }.filter { ![0x08, 0x09, 0x0A, 0x0C, 0x0D].contains($0) }, as: UTF8.self)
        let worst = JSONValue.object([
            controls: .array([.string(controls), .integer(.min), .bool(false), .null, .object([:]), .array([])]),
            "": .string(""),
        ])
        let written = worst.canonicalBytes
        #expect(written.count <= ByteWriter.maximumLength(of: worst))
        // A string of such bytes takes exactly its bound.
        #expect(JSONValue.string(controls).canonicalBytes.count == ByteWriter.maximumStringLength(controls.utf8.count))
        // Written after other bytes, the value is the same.
        var out: [UInt8] = Array("prefix".utf8)
        CanonicalJSON.write(worst, to: &out)
        #expect(Array(out.dropFirst(6)) == written)
    }

    @Test("string escaping matches a byte-by-byte reference wherever the escaped byte falls")
    func escapingAtEveryPosition() throws {
        // The writer skips eight bytes at a time while none needs escaping; put each kind of byte
        // that does at every offset of strings up to 40 bytes long, beside bytes that must not be touched.
        func reference(_ bytes: [UInt8]) -> [UInt8] {
            var out: [UInt8] = [0x22]
            for b in bytes {
                switch b {
                case 0x22: out += [0x5C, 0x22]
                case 0x5C: out += [0x5C, 0x5C]
                case 0x08: out += Array("\\b".utf8)
                case 0x09: out += Array("\\t".utf8)
                case 0x0A: out += Array("\\n".utf8)
                case 0x0C: out += Array("\\f".utf8)
                case 0x0D: out += Array("\\r".utf8)
                case 0..<0x20: out += Array(String(format: "\\u%04x", b).utf8)
                default: out.append(b)
                }
            }
            return out + [0x22]
        }
        let specials: [UInt8] = [0x00, 0x01, 0x08, 0x0A, 0x1F, 0x22, 0x5C]
        let neighbours: [UInt8] = [0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x41]
        for length in 1...40 {
            for position in 0..<length {
                for special in specials {
                    var bytes = (0..<length).map { neighbours[$0 % neighbours.count] }
                    bytes[position] = special
                    var out: [UInt8] = []
                    bytes.withUnsafeBytes { CanonicalJSON.writeString(utf8: $0, to: &out) }
                    #expect(out == reference(bytes), "length \(length), byte \(special) at \(position)")
                }
            }
            let plain = (0..<length).map { neighbours[$0 % neighbours.count] }
            var out: [UInt8] = []
            plain.withUnsafeBytes { CanonicalJSON.writeString(utf8: $0, to: &out) }
            #expect(out == reference(plain))
        }
    }

    /// `floatNotAllowed` → `float_not_allowed`, `invalidUTF8` → `invalid_utf8`.
    static func snakeCase(_ name: String) -> String {
        var out = ""
        var previousUpper = true
        for character in name {
            if character.isUppercase && !previousUpper { out += "_" }
            previousUpper = character.isUppercase || character.isNumber
            out += character.lowercased()
        }
        return out
    }
}
