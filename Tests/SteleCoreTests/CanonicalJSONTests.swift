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
            #expect(error.code.description == vector["error"]!, "\(vector["name"]!): \(error)")
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
}
