#ifndef STELE_SHA256X8_H
#define STELE_SHA256X8_H

#include <stddef.h>
#include <stdint.h>

/// Whether this CPU can run stele_sha256_x8 (AVX2).
int stele_sha256_x8_available(void);

/// Whether this CPU has the SHA extensions (x86 SHA-NI), which libcrypto uses for each single hash.
int stele_cpu_has_sha_extensions(void);

/// SHA-256 (FIPS 180-4) of `count` (1 to 8) independent messages at once, one per 32-bit lane of
/// AVX2 registers. Writes digest i to digests + 32 * i. Returns 0, or -1 (nothing written) when
/// AVX2 is unavailable or `count` is out of range.
int stele_sha256_x8(const uint8_t *const *messages, const size_t *lengths, int count, uint8_t *digests);

#endif
