import CSteleCRC32C

/// CRC-32C (Castagnoli; RFC 3720's iSCSI checksum): detects torn and damaged records. It is not a
/// cryptographic hash and guarantees nothing against deliberate alteration.
public enum CRC32C {
    /// The CRC-32C of `bytes`, continuing from `crc` (0 to start), so data can be checksummed in pieces.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress else { return crc }
        return stele_crc32c(crc, base, bytes.count)
    }

    /// The CRC-32C of `bytes`, continuing from `crc` (0 to start).
    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// The same checksum computed one byte at a time from the polynomial, without the hardware path
    /// (a reference for tests).
    public static func reference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }
}
