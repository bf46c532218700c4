// CRC-32C (Castagnoli), as used by iSCSI (RFC 3720) and ext4: the checksum of the store's journal
// records.
#ifndef STELE_CRC32C_H
#define STELE_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/// Continues a CRC-32C over `length` bytes. Start with `crc` = 0; the result of one call may be
/// passed as `crc` to the next to checksum data given in pieces.
uint32_t stele_crc32c(uint32_t crc, const void *bytes, size_t length);
#endif
