// OpenSSL's libcrypto, as Debian's libssl-dev installs it. Only SteleCrypto imports this module.
//
// Swift cannot call function-like macros, so the few Stele needs are re-exposed here as
// static inline functions with a `stele_` prefix.
#ifndef STELE_COPENSSL_SHIM_H
#define STELE_COPENSSL_SHIM_H
// The low-level SHA-256 functions are deprecated in OpenSSL 3 in favour of EVP, but on the ledger's
// hot path (a dozen hashes of one or two blocks per entry) they cost 0.37 µs against EVP's 0.52 µs
// per hash on this project's machines, so Stele uses them behind these wrappers.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>

/// `BIO_get_mem_data` is a macro over `BIO_ctrl`.
static inline long stele_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

/// `OPENSSL_free` is a macro that records the caller's file and line.
static inline void stele_OPENSSL_free(void *pointer) {
    OPENSSL_free(pointer);
}

/// A SHA-256 context that Swift can allocate and reuse.
typedef SHA256_CTX stele_sha256_ctx;

static inline void stele_sha256_init(stele_sha256_ctx *ctx) { SHA256_Init(ctx); }

static inline void stele_sha256_update(stele_sha256_ctx *ctx, const void *data, size_t length) {
    SHA256_Update(ctx, data, length);
}

static inline void stele_sha256_final(stele_sha256_ctx *ctx, unsigned char *out) { SHA256_Final(out, ctx); }
#endif
