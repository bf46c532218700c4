import SteleCrypto
import SteleTestSupport
import Testing

@Suite("SHA-256 against FIPS 180-4")
struct SHA256Tests {
    @Test("every published digest is reproduced")
    func fipsVectors() throws {
        let vectors = try Vectors.load("sha256.json")["vectors"] as! [[String: Any]]
        #expect(vectors.count == 4)
        let hasher = SHA256()
        for vector in vectors {
            let unit = Array((vector["message_utf8"] as! String).utf8)
            let repeatCount = vector["repeat"] as? Int ?? 1
            var message = [UInt8]()
            message.reserveCapacity(unit.count * repeatCount)
            for _ in 0..<repeatCount { message.append(contentsOf: unit) }
            #expect(hasher.hash(message).hex == vector["sha256"] as! String)
            #expect(SHA256.hash(message).hex == vector["sha256"] as! String)
        }
    }

    @Test("a reused context gives the same digest as a fresh one, for parts and wholes")
    func contextReuse() {
        let hasher = SHA256()
        let whole = Array("hello, ledger".utf8)
        let first = hasher.hash(whole)
        _ = hasher.hash(Array("something else".utf8))
        let parts = whole.withUnsafeBytes { raw in
            hasher.hash(parts: [UnsafeRawBufferPointer(rebasing: raw[0..<5]), UnsafeRawBufferPointer(rebasing: raw[5...])])
        }
        #expect(first == parts)
        #expect(first == SHA256.hash(whole))
    }

    @Test("digests round-trip through bytes and reject wrong lengths")
    func digestBytes() {
        let digest = SHA256.hash(Array("x".utf8))
        #expect(SHA256Digest(bytes: digest.bytes) == digest)
        #expect(SHA256Digest(bytes: [UInt8](repeating: 0, count: 31)) == nil)
        #expect(SHA256Digest(bytes: [UInt8](repeating: 0, count: 33)) == nil)
        #expect(SHA256Digest.zero.bytes == [UInt8](repeating: 0, count: 32))
    }
}
