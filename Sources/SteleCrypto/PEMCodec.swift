import COpenSSL

/// PEM reading and writing through libcrypto memory BIOs. Internal: callers see key types only.
enum PEMCodec {
    static func readPrivateKey(_ pem: String) -> OpaquePointer? {
        withMemoryBIO(pem) { PEM_read_bio_PrivateKey($0, nil, nil, nil) }
    }

    static func readPublicKey(_ pem: String) -> OpaquePointer? {
        withMemoryBIO(pem) { PEM_read_bio_PUBKEY($0, nil, nil, nil) }
    }

    static func writePrivateKey(_ key: OpaquePointer) -> String {
        write { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) }
    }

    static func writePublicKey(_ key: OpaquePointer) -> String {
        write { PEM_write_bio_PUBKEY($0, key) }
    }

    private static func withMemoryBIO(_ text: String, _ body: (OpaquePointer) -> OpaquePointer?) -> OpaquePointer? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { raw -> OpaquePointer? in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            let result = body(bio)
            ERR_clear_error()
            return result
        }
    }

    private static func write(_ body: (OpaquePointer) -> Int32) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { fatalError("libcrypto could not allocate a memory BIO") }
        defer { BIO_free(bio) }
        guard body(bio) == 1 else { fatalError("libcrypto failed to encode a key as PEM") }
        var data: UnsafeMutablePointer<CChar>?
        let length = stele_BIO_get_mem_data(bio, &data)
        guard let data, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }
}
