/*
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), written here so the webhook signature and
 * stable keys need no crypto library. Also a constant-time comparison and hex encoding.
 */
#ifndef CFWATCHD_SHA256_H
#define CFWATCHD_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFW_SHA256_LEN 32
#define CFW_SHA256_BLOCK 64
#define CFW_SHA256_HEX_LEN 65 /* 64 hex digits and a NUL */

struct cfw_sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[CFW_SHA256_BLOCK];
    size_t used;
};

struct cfw_hmac_sha256 {
    struct cfw_sha256 inner;
    struct cfw_sha256 outer;
};

/* Starts a SHA-256 computation. */
void cfw_sha256_init(struct cfw_sha256 *c);
/* Feeds len bytes. */
void cfw_sha256_update(struct cfw_sha256 *c, const void *data, size_t len);
/* Finishes and writes the 32-byte digest; the context must be re-initialised before reuse. */
void cfw_sha256_final(struct cfw_sha256 *c, uint8_t out[CFW_SHA256_LEN]);
/* Hashes one buffer. */
void cfw_sha256(const void *data, size_t len, uint8_t out[CFW_SHA256_LEN]);

/* Starts an HMAC-SHA256 with a key of any length. */
void cfw_hmac_sha256_init(struct cfw_hmac_sha256 *c, const void *key, size_t keylen);
/* Feeds message bytes to the HMAC. */
void cfw_hmac_sha256_update(struct cfw_hmac_sha256 *c, const void *data, size_t len);
/* Finishes the HMAC and writes the 32-byte tag; wipes the key material from the context. */
void cfw_hmac_sha256_final(struct cfw_hmac_sha256 *c, uint8_t out[CFW_SHA256_LEN]);
/* HMAC of one buffer. */
void cfw_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                     uint8_t out[CFW_SHA256_LEN]);

/* Writes 2*n lowercase hex digits and a NUL into out (at least 2*n+1 bytes). */
void cfw_hex_encode(const uint8_t *in, size_t n, char *out);
/* Compares two buffers in time independent of where they differ. */
bool cfw_ct_equal(const void *a, const void *b, size_t n);
/* Compares a given string with a secret in time that depends only on the secret's length. */
bool cfw_ct_str_equal(const char *given, const char *secret);

#endif
