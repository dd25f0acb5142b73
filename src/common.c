/* Shared small types: errors, capped buffers, string fields, allocation, time. */
#include "cfwatchd/common.h"

#include <assert.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cfw_err_set(struct cfw_err *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    if (err->code == 0) {
        err->code = -1;
    }
}

void cfw_err_setc(struct cfw_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->code = code;
}

void cfw_err_clear(struct cfw_err *err)
{
    if (err != NULL) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

void *cfw_xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);

    if (p == NULL) {
        fprintf(stderr, "cfwatchd: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

void *cfw_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

    if (p == NULL) {
        fprintf(stderr, "cfwatchd: out of memory (%zu x %zu bytes)\n", n, size);
        abort();
    }
    return p;
}

void *cfw_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);

    if (q == NULL) {
        fprintf(stderr, "cfwatchd: out of memory (%zu bytes)\n", n);
        abort();
    }
    return q;
}

char *cfw_xstrdup(const char *s)
{
    return cfw_xstrndup(s, strlen(s));
}

char *cfw_xstrndup(const char *s, size_t n)
{
    char *p = cfw_xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *cfw_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return cfw_xstrdup("");
    }
    p = cfw_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* Makes room for extra more bytes and the NUL; -1 past the cap, or without one (never init). */
static int buf_reserve(struct cfw_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t cap;

    assert(b->max != 0 && "a cfw_buf used without cfw_buf_init or CFW_BUF_INIT");
    if (b->max == 0 || extra > SIZE_MAX / 2 || b->len + extra > b->max) {
        return -1;
    }
    if (need <= b->cap) {
        return 0;
    }
    cap = b->cap == 0 ? 256 : b->cap;
    while (cap < need) {
        cap *= 2;
    }
    if (cap > b->max + 1) {
        cap = b->max + 1;
    }
    b->data = cfw_xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

void cfw_buf_init(struct cfw_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

int cfw_buf_append(struct cfw_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0) {
        return -1;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int cfw_buf_puts(struct cfw_buf *b, const char *s)
{
    return cfw_buf_append(b, s, strlen(s));
}

int cfw_buf_putc(struct cfw_buf *b, char c)
{
    return cfw_buf_append(b, &c, 1);
}

int cfw_buf_printf(struct cfw_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0) {
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void cfw_buf_reset(struct cfw_buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

char *cfw_buf_take(struct cfw_buf *b)
{
    char *p = b->data;

    if (p == NULL) {
        p = cfw_xstrdup("");
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void cfw_buf_free(struct cfw_buf *b)
{
    if (b == NULL) {
        return;
    }
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void cfw_busy_enter(struct cfw_busy *b)
{
    b->depth++;
}

bool cfw_busy_leave(struct cfw_busy *b)
{
    /* a leave without its enter is a bug: it must not wrap depth (the object would never go) */
    assert(b->depth > 0);
    if (b->depth > 0) {
        b->depth--;
    }
    return b->depth > 0 || !b->doomed;
}

bool cfw_busy_defer_free(struct cfw_busy *b)
{
    if (b->depth == 0) {
        return false;
    }
    b->doomed = true;
    return true;
}

/*
 * Keys are compared inline, a byte at a time: most keys of a set differ in their first or
 * second byte, and a call to strcmp per key cost more than the rest of a lookup.
 */
static struct cfw_field *fields_find(const struct cfw_fields *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++) {
        const char *a = f->v[i].key;
        const char *b = key;

        while (*a != '\0' && *a == *b) {
            a++;
            b++;
        }
        if (*a == *b) {
            return &f->v[i];
        }
    }
    return NULL;
}

struct cfw_fields_block {
    struct cfw_fields_block *next;
    size_t len;
    size_t cap;
    char data[];
};

#define FIELDS_BLOCK_MIN 256
#define FIELDS_BLOCK_KEEP (16u * 1024u) /* larger blocks are freed by cfw_fields_reset */
#define FIELDS_COPY_SLACK 64u           /* bytes for more fields in a copy's block */

static void fields_block_new(struct cfw_fields *f, size_t cap)
{
    struct cfw_fields_block *b = cfw_xmalloc(sizeof(*b) + cap);

    b->next = f->blk;
    b->len = 0;
    b->cap = cap;
    f->blk = b;
}

/* n bytes in f's newest block, or in a new one (twice the last, at least n). */
static char *fields_alloc(struct cfw_fields *f, size_t n)
{
    struct cfw_fields_block *b = f->blk;

    if (b == NULL || b->cap - b->len < n) {
        size_t cap = b == NULL ? FIELDS_BLOCK_MIN : b->cap * 2;

        fields_block_new(f, cap < n ? n : cap);
        b = f->blk;
    }
    b->len += n;
    return b->data + b->len - n;
}

/* A field's key length: its value follows "key\0" in the same place. */
static size_t field_key_len(const struct cfw_field *e)
{
    return (size_t)(e->value - e->key) - 1;
}

/* Puts "key\0value\0" in f's blocks for e, with room for a value of at least room bytes. */
static void field_fill(struct cfw_fields *f, struct cfw_field *e, const char *key, size_t kl,
                       const char *value, size_t len, size_t room)
{
    char *b = fields_alloc(f, kl + room + 2);

    memcpy(b, key, kl);
    b[kl] = '\0';
    memcpy(b + kl + 1, value, len);
    b[kl + 1 + len] = '\0';
    e->key = b;
    e->value = b + kl + 1;
    e->room = room;
}

static void fields_reserve(struct cfw_fields *f, size_t n)
{
    if (n > f->cap) {
        f->cap = f->cap == 0 ? 8 : f->cap;
        while (f->cap < n) {
            f->cap *= 2;
        }
        f->v = cfw_xrealloc(f->v, f->cap * sizeof(*f->v));
    }
}

void cfw_fields_setn(struct cfw_fields *f, const char *key, const char *value, size_t len)
{
    struct cfw_field *e = fields_find(f, key);

    len = strnlen(value, len);
    if (e == NULL) {
        cfw_fields_add(f, key, value, len);
    } else if (len <= e->room) {
        /* value may point into the old value: memmove */
        memmove(e->value, value, len);
        e->value[len] = '\0';
    } else {
        /*
         * A new place, with room for twice the old value: a key set again and again with
         * values that grow leaves a bounded trail (the old places stay until the clear).
         */
        field_fill(f, e, e->key, field_key_len(e), value, len,
                   len > 2 * e->room ? len : 2 * e->room);
    }
}

void cfw_fields_add(struct cfw_fields *f, const char *key, const char *value, size_t len)
{
    len = strnlen(value, len);
    fields_reserve(f, f->n + 1);
    field_fill(f, &f->v[f->n], key, strlen(key), value, len, len);
    f->n++;
}

void cfw_fields_set(struct cfw_fields *f, const char *key, const char *value)
{
    cfw_fields_setn(f, key, value, strlen(value));
}

void cfw_fields_set_default(struct cfw_fields *f, const char *key, const char *value)
{
    const char *cur = cfw_fields_get(f, key);

    if (cur == NULL || cur[0] == '\0') {
        cfw_fields_set(f, key, value);
    }
}

const char *cfw_fields_get(const struct cfw_fields *f, const char *key)
{
    const struct cfw_field *e = fields_find(f, key);

    return e != NULL ? e->value : NULL;
}

void cfw_fields_append(struct cfw_fields *dst, const struct cfw_fields *src)
{
    fields_reserve(dst, dst->n + src->n);
    for (size_t i = 0; i < src->n; i++) {
        const struct cfw_field *e = &src->v[i];
        size_t kl = field_key_len(e);
        size_t len = strlen(e->value);
        /* "key\0value\0" lies in one piece in src's block: one copy */
        char *b = fields_alloc(dst, kl + len + 2);

        memcpy(b, e->key, kl + len + 2);
        dst->v[dst->n + i] = (struct cfw_field){.key = b, .value = b + kl + 1, .room = len};
    }
    dst->n += src->n;
}

void cfw_fields_copy(struct cfw_fields *dst, const struct cfw_fields *src)
{
    if (dst->n > 0) {
        for (size_t i = 0; i < src->n; i++) {
            cfw_fields_set(dst, src->v[i].key, src->v[i].value);
        }
        return;
    }
    /*
     * Into an empty set (the common case): src's keys are distinct, no lookups, and a set that
     * has no block yet gets one of the size of the copy (an incident keeps its copy for long)
     * and a little more, for the field or two that a match adds to a copy of its event's.
     */
    if (dst->blk == NULL && src->n > 0) {
        size_t total = FIELDS_COPY_SLACK;

        for (size_t i = 0; i < src->n; i++) {
            total += field_key_len(&src->v[i]) + strlen(src->v[i].value) + 2;
        }
        fields_block_new(dst, total);
    }
    cfw_fields_append(dst, src);
}

void cfw_fields_reset(struct cfw_fields *f)
{
    if (f == NULL || f->blk == NULL) {
        if (f != NULL) {
            f->n = 0;
        }
        return;
    }
    /* the newest block is the largest (each is twice the last): it is the one kept, unless
     * one long value made it too large to hold on to */
    if (f->blk->cap > FIELDS_BLOCK_KEEP) {
        cfw_fields_clear(f);
        return;
    }
    while (f->blk->next != NULL) {
        struct cfw_fields_block *b = f->blk->next;

        f->blk->next = b->next;
        free(b);
    }
    f->blk->len = 0;
    f->n = 0;
}

void cfw_fields_clear(struct cfw_fields *f)
{
    if (f == NULL) {
        return;
    }
    while (f->blk != NULL) {
        struct cfw_fields_block *b = f->blk;

        f->blk = b->next;
        free(b);
    }
    free(f->v);
    f->v = NULL;
    f->n = 0;
    f->cap = 0;
}

int cfw_parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10) {
            return -1;
        }
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

int cfw_parse_duration_ms(const char *s, int64_t *out_ms)
{
    uint64_t v = 0;
    uint64_t mult;
    const char *p = s;
    int64_t total = 0;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    /* a sequence of <number><unit>, e.g. 1h30m; a bare number is seconds */
    while (*p != '\0') {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        v = 0;
        while (*p >= '0' && *p <= '9') {
            if (v > 1000000000ULL) {
                return -1;
            }
            v = v * 10 + (uint64_t)(*p - '0');
            p++;
        }
        if (strncmp(p, "ms", 2) == 0) {
            mult = 1;
            p += 2;
        } else if (*p == 's') {
            mult = 1000;
            p++;
        } else if (*p == 'm') {
            mult = 60ULL * 1000;
            p++;
        } else if (*p == 'h') {
            mult = 3600ULL * 1000;
            p++;
        } else if (*p == 'd') {
            mult = 86400ULL * 1000;
            p++;
        } else if (*p == '\0' && p != s) {
            mult = 1000;
        } else {
            return -1;
        }
        total += (int64_t)(v * mult);
        if (total > (int64_t)365 * 86400 * 1000 * 100) {
            return -1;
        }
    }
    *out_ms = total;
    return 0;
}

int cfw_hex_value(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

long cfw_percent_decode(const char *s, size_t len, char *out, bool strict)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int hi = s[i] == '%' && i + 2 < len ? cfw_hex_value((unsigned char)s[i + 1]) : -1;
        int lo = hi >= 0 ? cfw_hex_value((unsigned char)s[i + 2]) : -1;

        if (s[i] != '%') {
            out[o++] = s[i];
        } else if (lo >= 0 && !(strict && hi == 0 && lo == 0)) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (strict) {
            return -1;
        } else {
            out[o++] = s[i];
        }
    }
    return (long)o;
}

struct timeval cfw_ms_timeval(int64_t ms)
{
    struct timeval tv;

    if (ms < 0) {
        ms = 0;
    }
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
    return tv;
}

int64_t cfw_now_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t cfw_now_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *cfw_boot_id(void)
{
    static char id[CFW_BOOT_ID_LEN + 1];
    static bool read_once;

    if (!read_once) {
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
        read_once = true;
        if (f != NULL) {
            size_t n = fread(id, 1, CFW_BOOT_ID_LEN, f);
            fclose(f);
            id[n == CFW_BOOT_ID_LEN ? n : 0] = '\0';
        }
    }
    return id;
}

void cfw_stamp_now(struct cfw_stamp *s)
{
    struct timespec ts;

    memset(s, 0, sizeof(*s));
    s->wall_ms = cfw_now_wall_ms();
    if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0) {
        s->boot_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        memcpy(s->boot_id, cfw_boot_id(), sizeof(s->boot_id));
    }
}

int64_t cfw_stamp_elapsed_ms(const struct cfw_stamp *since, const struct cfw_stamp *now)
{
    int64_t d;

    if (since->boot_ms > 0 && now->boot_ms > 0 && since->boot_id[0] != '\0' &&
        strcmp(since->boot_id, now->boot_id) == 0) {
        d = now->boot_ms - since->boot_ms;
    } else {
        d = now->wall_ms - since->wall_ms;
    }
    return d > 0 ? d : 0;
}

int64_t cfw_parse_rfc3339_ms(const char *s)
{
    struct tm tm = {0};
    int y, mo, d, h, mi, sec, n = 0;
    int64_t ms = 0, off = 0;
    const char *p;

    if (s == NULL || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6) {
        return -1;
    }
    p = s + n;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++) {
            if (digits++ < 3) {
                ms = ms * 10 + (*p - '0');
            }
        }
        for (; digits < 3; digits++) {
            ms *= 10;
        }
    }
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2) {
            return -1;
        }
        off = ((int64_t)oh * 60 + om) * 60 * 1000 * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z' && *p != 'z') {
        return -1;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    return (int64_t)timegm(&tm) * 1000 + ms - off;
}

size_t cfw_utf8_put(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when the byte there starts none. */
size_t cfw_utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];

    if (c < 0x80) {
        return 1;
    }
    if (c < 0xC2) {
        return 0;
    }
    if (c < 0xE0) {
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (c < 0xF0) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) {
            return 0;
        }
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)) {
            return 0; /* overlong, or a surrogate */
        }
        return 3;
    }
    if (c < 0xF5) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) {
            return 0;
        }
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)) {
            return 0; /* overlong, or above U+10FFFF */
        }
        return 4;
    }
    return 0;
}

size_t cfw_utf8_prefix(const char *s, size_t n, size_t max)
{
    if (n <= max) {
        return n;
    }
    /* step back over continuation bytes so that a code point is never split */
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    return max;
}

bool cfw_utf8_valid(const char *s, size_t n, bool nul_ok)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        size_t k;

        if (i + 8 <= n) {
            uint64_t w;

            memcpy(&w, p + i, 8);
            /* eight ASCII bytes (and no NUL among them unless allowed) at a time */
            if ((w & UINT64_C(0x8080808080808080)) == 0 &&
                (nul_ok ||
                 ((w - UINT64_C(0x0101010101010101)) & ~w & UINT64_C(0x8080808080808080)) == 0)) {
                i += 8;
                continue;
            }
        }
        if (p[i] < 0x80) {
            if (p[i] == 0 && !nul_ok) {
                return false;
            }
            i++;
            continue;
        }
        k = cfw_utf8_len(p + i, n - i);
        if (k == 0) {
            return false;
        }
        i += k;
    }
    return true;
}

void cfw_format_time_ms(int64_t ms, char *out, size_t outlen)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, outlen, "?");
        return;
    }
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

bool cfw_glob_match(const char *pattern, const char *s)
{
    return fnmatch(pattern, s, 0) == 0;
}

const char *cfw_find(const char *h, size_t hn, const char *nd, size_t nn)
{
    const char *end = h + hn;

    if (nn == 0) {
        return h;
    }
    while ((size_t)(end - h) >= nn) {
        const char *q = memchr(h, nd[0], (size_t)(end - h) - nn + 1);

        if (q == NULL) {
            return NULL;
        }
        if (memcmp(q + 1, nd + 1, nn - 1) == 0) {
            return q;
        }
        h = q + 1;
    }
    return NULL;
}
