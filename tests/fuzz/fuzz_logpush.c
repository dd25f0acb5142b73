/*
 * Fuzz target: the Logpush body path. cfw_gunzip with small caps on output and ratio gets either
 * the raw bytes, or the payload compressed here (gzip or zlib wrapper, the payload repeated to
 * make bombs) and then truncated or with one byte flipped at fuzzer-chosen places. Checked: on
 * success the output is within max_out and the ratio cap and NUL-terminated, and an undamaged
 * stream comes back byte for byte; on failure the code is 400 (corrupt, truncated) or 413 (a
 * cap), and an undamaged stream fails only for a cap. The body is then split into NDJSON lines
 * as the receiver does (lines over its max_line skipped: the 1 MiB default, or 4 KiB by a caps
 * bit) and each distinct line decoded as a JSON record (events must be well-formed; lines that
 * are not a JSON object, which the receiver skips, go through the decoder's fallback too).
 */
#include <string.h>

#include <zlib.h>

#include "cfwatchd/decode.h"
#include "cfwatchd/log.h"
#include "cfwatchd/logpush.h"
#include "fuzz_util.h"

/*
 * Most bytes a bomb built here inflates to: above the 64 KiB + 100 output cap and the 64 KiB
 * from which the ratio cap applies, so every 413 is reachable, without deflating and decoding
 * half a megabyte per input (512 KiB, the earlier value, cost two thirds of a run).
 */
#define BOMB_MAX (160u * 1024u)
/* NDJSON lines decoded per input. */
#define LINES_MAX 200u
/* The receiver's max_line when a caps bit asks for a small one (its default is 1 MiB). */
#define LINE_SMALL 4096u

static char *compress_buf(const char *in, size_t n, int window_bits, size_t *outlen)
{
    z_stream zs;
    size_t cap;
    char *out;

    memset(&zs, 0, sizeof(zs));
    FUZZ_CHECK(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8,
                            Z_DEFAULT_STRATEGY) == Z_OK);
    cap = deflateBound(&zs, (uLong)n) + 32;
    out = cfw_xmalloc(cap);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    FUZZ_CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    *outlen = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static void on_event(const struct cfw_event *ev, void *arg)
{
    (void)arg;
    FUZZ_CHECK(ev->text[ev->len] == '\0');
    FUZZ_CHECK(fuzz_utf8_clean(ev->text, ev->len));
}

/* Lines already decoded, by CRC-32 (zlib's, not instrumented, so cheap beside the decoder). */
struct seen_line {
    const char *p;
    size_t n;
    uLong crc;
};

#define SEEN_SLOTS 512u /* a power of two above twice LINES_MAX: the table never fills */

/* True when p[0..n) was seen before; otherwise remembers it. */
static bool seen_before(struct seen_line *t, const char *p, size_t n)
{
    uLong crc = crc32(0L, (const Bytef *)p, (uInt)n);
    size_t i = crc & (SEEN_SLOTS - 1);

    for (; t[i].p != NULL; i = (i + 1) & (SEEN_SLOTS - 1)) {
        if (t[i].crc == crc && t[i].n == n && memcmp(t[i].p, p, n) == 0) {
            return true;
        }
    }
    t[i] = (struct seen_line){p, n, crc};
    return false;
}

/*
 * Splits a body into lines as the receiver does and decodes each as a JSON record; lines longer
 * than max_line are skipped, as the receiver does. A line equal to one decoded before is not
 * decoded again: the decoder is a function of the record's text, and a bomb's body is one
 * payload many times over.
 */
static void ndjson(char *data, size_t len, size_t max_line)
{
    static struct seen_line seen[SEEN_SLOTS];
    size_t pos = 0;
    uint64_t line = 0;
    unsigned lines = 0;

    memset(seen, 0, sizeof(seen));
    while (pos < len && lines < LINES_MAX) {
        char *start = data + pos;
        char *nl = memchr(start, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;
        struct cfw_record rec = {.kind = CFW_REC_JSON, .input = "logpush:fuzz"};
        char *copy;

        pos += n + (nl != NULL ? 1 : 0);
        line++;
        while (n > 0 && (start[n - 1] == '\r' || start[n - 1] == ' ')) {
            n--;
        }
        if (n == 0 || n > max_line || seen_before(seen, start, n)) {
            continue;
        }
        lines++;
        copy = cfw_xstrndup(start, n);
        rec.text = copy;
        rec.len = strlen(copy);
        rec.line = line;
        rec.line_end = line;
        cfw_decode_record(&rec, on_event, NULL, NULL);
        free(copy);
    }
}

FUZZ_INIT_QUIET

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t outs[] = {64, 4096, 65536 + 100, 1u << 20};
    static const unsigned ratios[] = {0, 2, 20, 200};
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    uint8_t caps = fuzz_u8(&in);
    uint8_t reps = fuzz_u8(&in);
    uint16_t cut = fuzz_u16(&in);
    uint16_t flip = fuzz_u16(&in);
    size_t max_out = outs[caps & 3];
    unsigned ratio = ratios[(caps >> 2) & 3];
    size_t max_line = (caps & 16) != 0 ? LINE_SMALL : CFW_LOGPUSH_MAX_LINE_DEFAULT;
    struct cfw_err err = {0};
    char *payload = NULL;
    size_t payload_len = in.n;
    char *body;
    size_t body_len;
    bool damaged = false;
    char *out = NULL;
    size_t outlen = 0;
    int rc;

    if ((mode & 3) == 0) {
        body = cfw_xmalloc(in.n > 0 ? in.n : 1);
        memcpy(body, in.p, in.n);
        body_len = in.n;
    } else {
        /*
         * The payload, repeated for a bomb (each copy a line of its own, as in an NDJSON body),
         * compressed with a gzip or a zlib wrapper. Copies run together would make one line of
         * up to BOMB_MAX bytes, and decoding it took most of a run while reaching no decoder
         * cap (those are at 1 MiB); long lines still come from the raw inputs' gzip streams.
         */
        size_t copies = (mode & 3) == 3 ? 1 + (size_t)reps * 64 : 1;
        bool nl = copies > 1 && in.n > 0 && in.p[in.n - 1] != '\n';
        size_t unit = in.n + (nl ? 1 : 0);

        if (unit > 0 && copies > BOMB_MAX / unit) {
            copies = BOMB_MAX / unit;
        }
        if (copies <= 1) {
            copies = 1;
            nl = false;
            unit = in.n;
        }
        payload_len = unit * copies;
        payload = cfw_xmalloc(payload_len + 1);
        for (size_t i = 0; i < copies; i++) {
            memcpy(payload + i * unit, in.p, in.n);
            if (nl) {
                payload[i * unit + in.n] = '\n';
            }
        }
        body = compress_buf(payload, payload_len, (mode & 4) != 0 ? 15 : 31, &body_len);
        if ((mode & 8) != 0 && body_len > 0) {
            body_len = cut % body_len; /* truncated */
            damaged = true;
        }
        if ((mode & 16) != 0 && body_len > 0) {
            body[flip % body_len] ^= (char)(1u << (mode >> 5));
            damaged = true;
        }
    }
    rc = cfw_gunzip(body, body_len, max_out, ratio, &out, &outlen, &err);
    if (rc == 0) {
        FUZZ_CHECK(out != NULL);
        FUZZ_CHECK(outlen <= max_out);
        FUZZ_CHECK(out[outlen] == '\0');
        FUZZ_CHECK(ratio == 0 || outlen <= 65536 ||
                   outlen / (body_len > 0 ? body_len : 1) <= ratio);
        if (payload != NULL && !damaged) {
            FUZZ_CHECK(outlen == payload_len && memcmp(out, payload, outlen) == 0);
        }
        ndjson(out, outlen, max_line);
        free(out);
    } else {
        FUZZ_CHECK(rc == -1);
        FUZZ_CHECK(err.code == 400 || err.code == 413);
        FUZZ_CHECK(err.msg[0] != '\0');
        if (payload != NULL && !damaged) {
            FUZZ_CHECK(err.code == 413);
            FUZZ_CHECK(payload_len > max_out || (ratio > 0 && payload_len > 65536));
        }
        if ((mode & 3) == 0 && !(body_len >= 2 && (uint8_t)body[0] == 0x1f &&
                                 (uint8_t)body[1] == 0x8b)) {
            /* the receiver passes a body that is not gzip through as it is */
            ndjson(body, body_len, max_line);
        }
    }
    free(body);
    free(payload);
    return 0;
}
