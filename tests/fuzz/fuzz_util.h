/*
 * Helpers shared by the fuzz targets (header-only, so that each target stays one file): the
 * libFuzzer entry points' prototypes, a reader over the fuzzer's bytes, strict UTF-8 checks and
 * FUZZ_CHECK, which aborts so that libFuzzer (or the replay driver) reports the input.
 */
#ifndef CFW_FUZZ_UTIL_H
#define CFW_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/common.h"
#include "cfwatchd/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The LLVMFuzzerInitialize of a target that needs nothing set up but quiet logging. */
#define FUZZ_INIT_QUIET                                                                            \
    int LLVMFuzzerInitialize(int *argc, char ***argv)                                              \
    {                                                                                              \
        (void)argc;                                                                                \
        (void)argv;                                                                                \
        cfw_log_init(CFW_LOG_ERR);                                                                 \
        return 0;                                                                                  \
    }

/* An invariant of the code under test: a violation aborts with the condition and place. */
#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/*
 * True when name is listed in the environment variable CFW_FUZZ_KNOWN (comma-separated): a
 * finding reported and not fixed yet, whose check is skipped so that fuzzing can go on past it.
 * Unset (CI, ctest) means every check is made.
 */
static inline bool fuzz_known(const char *name)
{
    const char *list = getenv("CFW_FUZZ_KNOWN");
    size_t n = strlen(name);

    for (const char *p = list; p != NULL && *p != '\0'; p++) {
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0') &&
            (p == list || p[-1] == ',')) {
            return true;
        }
    }
    return false;
}

/* An injected clock the target moves by hand (the arg of pipeline.h's struct cfw_clock). */
struct fuzz_clock {
    int64_t mono;
    int64_t wall;
};

static inline int64_t fuzz_clock_mono(void *arg)
{
    return ((struct fuzz_clock *)arg)->mono;
}

static inline int64_t fuzz_clock_wall(void *arg)
{
    return ((struct fuzz_clock *)arg)->wall;
}

/* The fuzzer's bytes, consumed from the front. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
    uint8_t v = 0;

    if (in->n > 0) {
        v = in->p[0];
        in->p++;
        in->n--;
    }
    return v;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
    uint16_t hi = fuzz_u8(in);

    return (uint16_t)((hi << 8) | fuzz_u8(in));
}

/*
 * Takes the bytes up to the next NUL (or the end) as a new NUL-terminated string and skips the
 * NUL; *len (may be NULL) receives its length. NUL separates the parts of a structured input.
 */
static inline char *fuzz_part(struct fuzz_in *in, size_t *len)
{
    const uint8_t *z = in->n > 0 ? memchr(in->p, 0, in->n) : NULL;
    size_t k = z != NULL ? (size_t)(z - in->p) : in->n;
    char *s = cfw_xstrndup((const char *)in->p, k);

    in->p += k;
    in->n -= k;
    if (z != NULL) {
        in->p++;
        in->n--;
    }
    if (len != NULL) {
        *len = k;
    }
    return s;
}

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 (RFC 3629: no overlongs, surrogates). */
static inline size_t fuzz_utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];

    if (c < 0x80) {
        return 1;
    }
    if (c < 0xC2 || c > 0xF4) {
        return 0;
    }
    if (c < 0xE0) {
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (c < 0xF0) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
            (c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)) {
            return 0;
        }
        return 3;
    }
    if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80 ||
        (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)) {
        return 0;
    }
    return 4;
}

/* True when s[0..n) is well-formed UTF-8 without NUL bytes. */
static inline bool fuzz_utf8_clean(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        size_t k;

        if (p[i] == 0) {
            return false;
        }
        k = fuzz_utf8_seq(p + i, n - i);
        if (k == 0) {
            return false;
        }
        i += k;
    }
    return true;
}

/* Number of code points of well-formed UTF-8 text (what receivers such as Slack count). */
static inline size_t fuzz_utf8_chars(const char *s)
{
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p & 0xC0) != 0x80) {
            n++;
        }
    }
    return n;
}

/* A copy of s[0..n) as well-formed UTF-8 without NUL: bad bytes become '?', NUL a space. */
static inline char *fuzz_utf8_fix(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    char *out = cfw_xmalloc(n + 1);
    size_t i = 0;

    while (i < n) {
        size_t k = fuzz_utf8_seq(p + i, n - i);

        if (k == 0) {
            out[i++] = '?';
        } else if (k == 1 && p[i] == 0) {
            out[i++] = ' ';
        } else {
            memcpy(out + i, p + i, k);
            i += k;
        }
    }
    out[n] = '\0';
    return out;
}

#endif
