import COpenSSL

/// An Ed25519 signing key (RFC 8032) held by libcrypto.
///
/// The key is immutable once created; signing from several threads at once is safe.
public final class Ed25519PrivateKey: @unchecked Sendable {
    // Owned exclusively by this object; libcrypto's EVP_PKEY is safe for concurrent signing.
    private let key: OpaquePointer

    private init(owning key: OpaquePointer) {
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    /// Generates a fresh key from libcrypto's secure random generator.
    public convenience init() throws {
        var seed = try SecureRandom.bytes(32)
        defer { for i in seed.indices { seed[i] = 0 } }
        try self.init(seed: seed)
    }

    /// The key whose 32-byte RFC 8032 secret (the seed) is `seed`.
    /// - Throws: ``CryptoError`` `invalidKey` if `seed` is not 32 bytes.
    public convenience init(seed: [UInt8]) throws {
        guard seed.count == 32 else {
            throw CryptoError(.invalidKey, "an Ed25519 private key is 32 bytes, got \(seed.count)")
        }
        guard let key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            throw CryptoError(.library, "libcrypto refused the Ed25519 seed")
        }
        self.init(owning: key)
    }

    /// Reads a PKCS #8 PEM document (`-----BEGIN PRIVATE KEY-----`) holding an Ed25519 key.
    /// - Throws: ``CryptoError`` `invalidPEM` if the text is not such a document.
    public convenience init(pemRepresentation pem: String) throws {
        guard let key = PEMCodec.readPrivateKey(pem) else {
            throw CryptoError(.invalidPEM, "the file is not a PEM-encoded private key")
        }
        guard EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 else {
            EVP_PKEY_free(key)
            throw CryptoError(.invalidPEM, "the PEM private key is not an Ed25519 key")
        }
        self.init(owning: key)
    }

    /// The 32-byte secret seed. Handle with care.
    public var seed: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var length = 32
        EVP_PKEY_get_raw_private_key(key, &out, &length)
        return out
    }

    /// The matching public key.
    public var publicKey: Ed25519PublicKey {
        var out = [UInt8](repeating: 0, count: 32)
        var length = 32
        EVP_PKEY_get_raw_public_key(key, &out, &length)
        // 32 bytes from libcrypto's own key are always a valid public key.
        return try! Ed25519PublicKey(rawRepresentation: out)
    }

    /// The key as a PKCS #8 PEM document.
    public var pemRepresentation: String {
        PEMCodec.writePrivateKey(key)
    }

    /// The 64-byte RFC 8032 signature of `message`.
    public func signature(for message: some Collection<UInt8>) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw CryptoError(.library, "out of memory") }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, nil, nil, key) == 1 else {
            throw CryptoError(.library, "libcrypto could not start an Ed25519 signature")
        }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let message = Array(message)
        let status = message.withUnsafeBufferPointer { m in
            EVP_DigestSign(context, &signature, &length, m.baseAddress, m.count)
        }
        guard status == 1, length == 64 else {
            throw CryptoError(.library, "libcrypto failed to produce an Ed25519 signature")
        }
        return signature
    }
}
