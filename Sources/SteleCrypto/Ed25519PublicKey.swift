import COpenSSL

/// An Ed25519 public key (RFC 8032): 32 bytes.
public struct Ed25519PublicKey: Hashable, Sendable {
    /// The 32 raw key bytes.
    public let rawRepresentation: [UInt8]

    /// Wraps 32 raw key bytes.
    /// - Throws: ``CryptoError`` `invalidKey` for any other length.
    public init(rawRepresentation: [UInt8]) throws {
        guard rawRepresentation.count == 32 else {
            throw CryptoError(.invalidKey, "an Ed25519 public key is 32 bytes, got \(rawRepresentation.count)")
        }
        self.rawRepresentation = rawRepresentation
    }

    /// Reads a SubjectPublicKeyInfo PEM document (`-----BEGIN PUBLIC KEY-----`) holding an Ed25519 key.
    public init(pemRepresentation pem: String) throws {
        guard let key = PEMCodec.readPublicKey(pem) else {
            throw CryptoError(.invalidPEM, "the text is not a PEM-encoded public key")
        }
        defer { EVP_PKEY_free(key) }
        guard EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 else {
            throw CryptoError(.invalidPEM, "the PEM public key is not an Ed25519 key")
        }
        var out = [UInt8](repeating: 0, count: 32)
        var length = 32
        EVP_PKEY_get_raw_public_key(key, &out, &length)
        try self.init(rawRepresentation: out)
    }

    /// The key as a SubjectPublicKeyInfo PEM document.
    public var pemRepresentation: String {
        let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, rawRepresentation, 32)!
        defer { EVP_PKEY_free(key) }
        return PEMCodec.writePublicKey(key)
    }

    /// True if `signature` is a valid RFC 8032 signature of `message` under this key.
    /// Malformed signatures and keys verify as false; this never throws.
    public func isValidSignature(_ signature: some Collection<UInt8>, for message: some Collection<UInt8>) -> Bool {
        guard signature.count == 64 else { return false }
        guard let key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, rawRepresentation, 32) else {
            return false
        }
        defer { EVP_PKEY_free(key) }
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, nil, nil, key) == 1 else { return false }
        let signature = Array(signature)
        let message = Array(message)
        return message.withUnsafeBufferPointer { m in
            EVP_DigestVerify(context, signature, 64, m.baseAddress, m.count) == 1
        }
    }
}
