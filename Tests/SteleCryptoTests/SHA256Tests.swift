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

@Suite("CRC-32C")
struct CRC32CTests {
    @Test("RFC 3720 B.4 vectors and the common check value")
    func publishedVectors() {
        // RFC 3720, Appendix B.4 (iSCSI CRC examples), and the CRC catalogue's check value for "123456789".
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test("the hardware path equals the bit-wise reference at every length and split point")
    func matchesReference() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<300 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let whole = CRC32C.checksum(bytes)
            #expect(whole == CRC32C.reference(bytes))
            let split = length / 3
            #expect(CRC32C.checksum(Array(bytes[split...]), continuing: CRC32C.checksum(Array(bytes[..<split]))) == whole)
        }
    }
}
