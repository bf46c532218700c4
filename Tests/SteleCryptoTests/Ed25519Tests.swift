import SteleCrypto
import SteleTestSupport
import Testing

@Suite("Ed25519 against RFC 8032")
struct Ed25519Tests {
    static func vectors() throws -> [[String: String]] {
        try Vectors.load("ed25519.json")["vectors"] as! [[String: String]]
    }

    @Test("keys and signatures equal the RFC's, and verify")
    func rfc8032Vectors() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count == 3)
        for vector in vectors {
            let key = try Ed25519PrivateKey(seed: hexBytes(vector["seed"]!))
            #expect(hexString(key.publicKey.rawRepresentation) == vector["public"]!)
            let message = hexBytes(vector["message"]!)
            let signature = try key.signature(for: message)
            #expect(hexString(signature) == vector["signature"]!)
            #expect(key.publicKey.isValidSignature(signature, for: message))
        }
    }

    @Test("a changed message, signature or key does not verify")
    func tamperedSignaturesFail() throws {
        let vector = try Self.vectors()[1]
        let key = try Ed25519PublicKey(rawRepresentation: hexBytes(vector["public"]!))
        let message = hexBytes(vector["message"]!)
        var signature = hexBytes(vector["signature"]!)
        #expect(key.isValidSignature(signature, for: message))
        #expect(!key.isValidSignature(signature, for: message + [0]))
        signature[10] ^= 1
        #expect(!key.isValidSignature(signature, for: message))
        #expect(!key.isValidSignature(signature.prefix(63), for: message))
        let other = try Ed25519PrivateKey().publicKey
        #expect(!other.isValidSignature(hexBytes(vector["signature"]!), for: message))
    }

    @Test("PEM round-trips private and public keys")
    func pemRoundTrip() throws {
        let key = try Ed25519PrivateKey()
        let pem = key.pemRepresentation
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        let reread = try Ed25519PrivateKey(pemRepresentation: pem)
        #expect(reread.seed == key.seed)
        let publicPEM = key.publicKey.pemRepresentation
        #expect(publicPEM.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        #expect(try Ed25519PublicKey(pemRepresentation: publicPEM) == key.publicKey)
    }

    @Test("malformed key material is a typed error", arguments: [
        "", "not pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ])
    func malformedPEM(text: String) {
        #expect(throws: CryptoError.self) { try Ed25519PrivateKey(pemRepresentation: text) }
        #expect(throws: CryptoError.self) { try Ed25519PublicKey(pemRepresentation: text) }
    }

    @Test("wrong-length raw keys are refused")
    func wrongLengths() {
        #expect(throws: CryptoError.self) { try Ed25519PrivateKey(seed: [1, 2, 3]) }
        #expect(throws: CryptoError.self) { try Ed25519PublicKey(rawRepresentation: [UInt8](repeating: 0, count: 31)) }
    }
}
