/* Streaming gzip decoder over zlib's inflate: every member, zero padding, bounded memory. */
#include "cfwatchd/gzip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define OUT_CHUNK (128u * 1024u)
/* inflate takes a uInt count: longer inputs are fed in slices of this size */
#define IN_SLICE (1u << 30)

enum state {
    ST_START,   /* nothing read yet: the first byte must begin a member */
    ST_MEMBER,  /* inside a member: bytes go to inflate */
    ST_BETWEEN, /* a member ended: another member, zero padding or the end may follow */
    ST_PADDING, /* zero padding: only zeros may follow */
    ST_FAILED,  /* an error was returned: it is returned again */
};

struct cfw_gzip {
    z_stream zs;
    bool zs_ready;
    enum state state;
    cfw_gzip_out_fn out;
    void *arg;
    uint64_t in;          /* compressed bytes accepted */
    uint64_t out_total;   /* decompressed bytes delivered */
    uint64_t members;     /* members ended */
    uint64_t member_at;   /* offset of the current member's first byte */
    struct cfw_err error; /* kept for ST_FAILED */
    unsigned char *buf;
};

bool cfw_gzip_magic(const void *buf, size_t len)
{
    const unsigned char *p = buf;

    return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

struct cfw_gzip *cfw_gzip_new(cfw_gzip_out_fn out, void *arg, struct cfw_err *err)
{
    struct cfw_gzip *gz = cfw_xcalloc(1, sizeof(*gz));

    gz->out = out;
    gz->arg = arg;
    gz->state = ST_START;
    /* 16 + MAX_WBITS: gzip wrapper only (the caller saw the magic bytes), largest window */
    if (inflateInit2(&gz->zs, 16 + MAX_WBITS) != Z_OK) {
        cfw_err_setc(err, CFW_GZIP_E_ZLIB, "cannot initialise zlib: %s",
                     gz->zs.msg != NULL ? gz->zs.msg : "out of memory");
        free(gz);
        return NULL;
    }
    gz->zs_ready = true;
    gz->buf = cfw_xmalloc(OUT_CHUNK);
    return gz;
}

void cfw_gzip_free(struct cfw_gzip *gz)
{
    if (gz == NULL) {
        return;
    }
    if (gz->zs_ready) {
        inflateEnd(&gz->zs);
    }
    free(gz->buf);
    free(gz);
}

static int fail(struct cfw_gzip *gz, struct cfw_err *err, int code, const char *fmt, ...)
    CFW_PRINTF(4, 5);

static int fail(struct cfw_gzip *gz, struct cfw_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    gz->state = ST_FAILED;
    gz->error.code = code;
    va_start(ap, fmt);
    vsnprintf(gz->error.msg, sizeof(gz->error.msg), fmt, ap);
    va_end(ap);
    if (err != NULL) {
        *err = gz->error;
    }
    return -1;
}

/* Inflates the slice [p, p + n) of the current member; *used is what inflate consumed. */
static int inflate_slice(struct cfw_gzip *gz, const unsigned char *p, size_t n, size_t *used,
                         struct cfw_err *err)
{
    z_stream *zs = &gz->zs;
    int zrc;

    zs->next_in = (Bytef *)(uintptr_t)p;
    zs->avail_in = (uInt)n;
    for (;;) {
        size_t produced;

        zs->next_out = gz->buf;
        zs->avail_out = OUT_CHUNK;
        zrc = inflate(zs, Z_NO_FLUSH);
        produced = OUT_CHUNK - zs->avail_out;
        *used = n - zs->avail_in;
        if (produced > 0) {
            struct cfw_err cb = {0};
            gz->out_total += produced;
            if (gz->out(gz->arg, (const char *)gz->buf, produced, &cb) != 0) {
                gz->in += *used;
                return fail(gz, err, CFW_GZIP_E_STOPPED, "%s", cb.msg);
            }
        }
        if (zrc == Z_STREAM_END) {
            gz->members++;
            gz->state = ST_BETWEEN;
            gz->in += *used;
            return 0;
        }
        if ((zrc == Z_BUF_ERROR || zrc == Z_OK) && zs->avail_in == 0 && zs->avail_out != 0) {
            /* all input taken and all output given: wait for more input */
            gz->in += *used;
            return 0;
        }
        if (zrc == Z_BUF_ERROR) {
            zrc = Z_DATA_ERROR; /* no progress with input and room left: never expected */
        }
        if (zrc != Z_OK) {
            uint64_t at = gz->in + *used;
            if (zrc == Z_MEM_ERROR) {
                return fail(gz, err, CFW_GZIP_E_ZLIB, "zlib is out of memory at byte %llu",
                            (unsigned long long)at);
            }
            return fail(gz, err, CFW_GZIP_E_CORRUPT,
                        "corrupt gzip data at byte %llu (member %llu: %s)", (unsigned long long)at,
                        (unsigned long long)gz->members + 1,
                        zs->msg != NULL      ? zs->msg
                        : zrc == Z_NEED_DICT ? "needs a dictionary"
                                             : "zlib error");
        }
    }
}

int cfw_gzip_feed(struct cfw_gzip *gz, const void *buf, size_t len, struct cfw_err *err)
{
    const unsigned char *p = buf;
    size_t i = 0;

    if (gz->state == ST_FAILED) {
        if (err != NULL) {
            *err = gz->error;
        }
        return -1;
    }
    while (i < len) {
        switch (gz->state) {
        case ST_START:
        case ST_BETWEEN:
            if (p[i] == 0x1f) {
                /* a new member: inflate checks the rest of its header */
                if (gz->state == ST_BETWEEN && inflateReset(&gz->zs) != Z_OK) {
                    return fail(gz, err, CFW_GZIP_E_ZLIB, "cannot reset zlib");
                }
                gz->member_at = gz->in;
                gz->state = ST_MEMBER;
            } else if (p[i] == 0 && gz->state == ST_BETWEEN) {
                gz->state = ST_PADDING;
            } else if (gz->state == ST_START) {
                return fail(gz, err, CFW_GZIP_E_CORRUPT, "not gzip data (byte 0 is 0x%02x)", p[i]);
            } else {
                return fail(gz, err, CFW_GZIP_E_TRAILING,
                            "trailing garbage after gzip member %llu at byte %llu (neither a "
                            "gzip member nor zero padding)",
                            (unsigned long long)gz->members, (unsigned long long)gz->in);
            }
            break;
        case ST_PADDING:
            while (i < len && p[i] == 0) {
                i++;
                gz->in++;
            }
            if (i < len) {
                return fail(gz, err, CFW_GZIP_E_TRAILING,
                            "trailing garbage after gzip member %llu and zero padding at byte "
                            "%llu",
                            (unsigned long long)gz->members, (unsigned long long)gz->in);
            }
            break;
        case ST_MEMBER: {
            size_t n = len - i < IN_SLICE ? len - i : IN_SLICE;
            size_t used = 0;
            if (inflate_slice(gz, p + i, n, &used, err) != 0) {
                return -1;
            }
            i += used;
            break;
        }
        case ST_FAILED:
            return -1;
        }
    }
    return 0;
}

int cfw_gzip_finish(struct cfw_gzip *gz, struct cfw_err *err)
{
    if (gz->state == ST_FAILED) {
        if (err != NULL) {
            *err = gz->error;
        }
        return -1;
    }
    if (gz->state == ST_MEMBER) {
        return fail(gz, err, CFW_GZIP_E_TRUNCATED,
                    "truncated gzip member (member %llu begins at byte %llu, the input ends at "
                    "byte %llu)",
                    (unsigned long long)gz->members + 1, (unsigned long long)gz->member_at,
                    (unsigned long long)gz->in);
    }
    return 0;
}

uint64_t cfw_gzip_total_in(const struct cfw_gzip *gz)
{
    return gz->in;
}

uint64_t cfw_gzip_total_out(const struct cfw_gzip *gz)
{
    return gz->out_total;
}

uint64_t cfw_gzip_members(const struct cfw_gzip *gz)
{
    return gz->members;
}
