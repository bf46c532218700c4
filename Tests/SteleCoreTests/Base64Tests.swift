import SteleCore
import Testing

@Suite("Base64: RFC 4648 encoding, strict decoding")
struct Base64Tests {
    @Test("the RFC 4648 §10 test vectors encode and decode exactly", arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ])
    func rfcVectors(plain: String, encoded: String) {
        #expect(Base64.encode(Array(plain.utf8)) == encoded)
        #expect(Base64.decode(encoded) == Array(plain.utf8))
    }

    @Test("appending an encoding keeps what the buffer held, and every length round-trips")
    func appendsAndRoundTrips() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...100 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var out: [UInt8] = Array("prefix:".utf8)
            bytes.withUnsafeBytes { Base64.encode($0, into: &out) }
            #expect(out.prefix(7) == Array("prefix:".utf8)[...])
            let text = String(decoding: out.dropFirst(7), as: UTF8.self)
            #expect(text.utf8.count == (length + 2) / 3 * 4)
            #expect(Base64.decode(text) == bytes, "length \(length)")
        }
    }
}
