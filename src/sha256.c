/* SHA-256 (FIPS 180-4 section 6.2) and HMAC (RFC 2104), no external crypto library. */
#include "cfwatchd/sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void compress(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    uint32_t a, b, c, d, e, f, g, k, t1, t2;

    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0];
    b = h[1];
    c = h[2];
    d = h[3];
    e = h[4];
    f = h[5];
    g = h[6];
    k = h[7];
    for (int i = 0; i < 64; i++) {
        t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

void cfw_sha256_init(struct cfw_sha256 *c)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

    memcpy(c->h, iv, sizeof(iv));
    c->total = 0;
    c->used = 0;
}

void cfw_sha256_update(struct cfw_sha256 *c, const void *data, size_t len)
{
    const uint8_t *p = data;

    c->total += len;
    if (c->used > 0) {
        size_t take = CFW_SHA256_BLOCK - c->used;
        if (take > len) {
            take = len;
        }
        memcpy(c->block + c->used, p, take);
        c->used += take;
        p += take;
        len -= take;
        if (c->used < CFW_SHA256_BLOCK) {
            return;
        }
        compress(c->h, c->block);
        c->used = 0;
    }
    while (len >= CFW_SHA256_BLOCK) {
        compress(c->h, p);
        p += CFW_SHA256_BLOCK;
        len -= CFW_SHA256_BLOCK;
    }
    if (len > 0) {
        memcpy(c->block, p, len);
        c->used = len;
    }
}

void cfw_sha256_final(struct cfw_sha256 *c, uint8_t out[CFW_SHA256_LEN])
{
    uint64_t bits = c->total * 8;

    /* padding: 0x80, zeros up to 56 mod 64, then the bit length big-endian (5.1.1) */
    c->block[c->used++] = 0x80;
    if (c->used > 56) {
        memset(c->block + c->used, 0, CFW_SHA256_BLOCK - c->used);
        compress(c->h, c->block);
        c->used = 0;
    }
    memset(c->block + c->used, 0, 56 - c->used);
    for (int i = 0; i < 8; i++) {
        c->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    compress(c->h, c->block);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
    memset(c->block, 0, sizeof(c->block));
}

void cfw_sha256(const void *data, size_t len, uint8_t out[CFW_SHA256_LEN])
{
    struct cfw_sha256 c;

    cfw_sha256_init(&c);
    cfw_sha256_update(&c, data, len);
    cfw_sha256_final(&c, out);
}

void cfw_hmac_sha256_init(struct cfw_hmac_sha256 *c, const void *key, size_t keylen)
{
    uint8_t k[CFW_SHA256_BLOCK];
    uint8_t pad[CFW_SHA256_BLOCK];

    /* keys longer than a block are hashed first; shorter ones are zero-padded */
    memset(k, 0, sizeof(k));
    if (keylen > CFW_SHA256_BLOCK) {
        cfw_sha256(key, keylen, k);
    } else if (keylen > 0) {
        memcpy(k, key, keylen);
    }
    for (size_t i = 0; i < sizeof(pad); i++) {
        pad[i] = k[i] ^ 0x36;
    }
    cfw_sha256_init(&c->inner);
    cfw_sha256_update(&c->inner, pad, sizeof(pad));
    for (size_t i = 0; i < sizeof(pad); i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    cfw_sha256_init(&c->outer);
    cfw_sha256_update(&c->outer, pad, sizeof(pad));
    memset(k, 0, sizeof(k));
    memset(pad, 0, sizeof(pad));
}

void cfw_hmac_sha256_update(struct cfw_hmac_sha256 *c, const void *data, size_t len)
{
    cfw_sha256_update(&c->inner, data, len);
}

void cfw_hmac_sha256_final(struct cfw_hmac_sha256 *c, uint8_t out[CFW_SHA256_LEN])
{
    uint8_t ih[CFW_SHA256_LEN];

    cfw_sha256_final(&c->inner, ih);
    cfw_sha256_update(&c->outer, ih, sizeof(ih));
    cfw_sha256_final(&c->outer, out);
    memset(ih, 0, sizeof(ih));
    memset(c, 0, sizeof(*c));
}

void cfw_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                     uint8_t out[CFW_SHA256_LEN])
{
    struct cfw_hmac_sha256 c;

    cfw_hmac_sha256_init(&c, key, keylen);
    cfw_hmac_sha256_update(&c, data, len);
    cfw_hmac_sha256_final(&c, out);
}

void cfw_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
}

bool cfw_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t diff = 0;

    for (size_t i = 0; i < n; i++) {
        diff |= (uint8_t)(x[i] ^ y[i]);
    }
    return diff == 0;
}

bool cfw_ct_str_equal(const char *given, const char *secret)
{
    size_t lg = strlen(given), ls = strlen(secret);
    unsigned char diff = (unsigned char)(lg != ls);

    for (size_t i = 0; i < ls; i++) {
        diff |= (unsigned char)(given[i < lg ? i : 0] ^ secret[i]);
    }
    return diff == 0;
}
