// OpenSSL's libcrypto, as Debian's libssl-dev installs it. Only SteleCrypto imports this module.
//
// Swift cannot call function-like macros, so the few Stele needs are re-exposed here as
// static inline functions with a `stele_` prefix.
#ifndef STELE_COPENSSL_SHIM_H
#define STELE_COPENSSL_SHIM_H
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
#endif
