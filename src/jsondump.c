/* jansson 2.14's JSON_INDENT(2) | JSON_ENSURE_ASCII dump, into one growing buffer. */
#include "cfwatchd/jsondump.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define INDENT 2

/*
 * Pieces are gathered in chunk and go into b a chunk at a time: most pieces are a few bytes (a
 * bracket, an indent, an escape), and b's checks per append would cost more than the copy.
 */
struct dump {
    struct cfw_buf *b;
    bool full; /* b's cap was reached: the text in b is cut short */
    size_t used;
    char chunk[4096];
};

/* The containers being written, innermost first: jansson refuses a tree that holds itself. */
struct parent {
    const json_t *v;
    const struct parent *up;
};

static int flush(struct dump *d)
{
    size_t n = d->used;

    d->used = 0;
    if (d->full || cfw_buf_append(d->b, d->chunk, n) != 0) {
        d->full = true;
        return -1;
    }
    return 0;
}

static int put(struct dump *d, const void *p, size_t n)
{
    if (n <= sizeof(d->chunk) - d->used) {
        memcpy(d->chunk + d->used, p, n);
        d->used += n;
        return 0;
    }
    if (flush(d) != 0) {
        return -1;
    }
    if (n <= sizeof(d->chunk)) {
        memcpy(d->chunk, p, n);
        d->used = n;
        return 0;
    }
    if (cfw_buf_append(d->b, p, n) != 0) {
        d->full = true;
        return -1;
    }
    return 0;
}

/* A newline and depth levels of indentation. */
static int put_indent(struct dump *d, size_t depth)
{
    static const char spaces[] = "\n                                ";
    size_t n = depth * INDENT;

    if (put(d, spaces, 1) != 0) {
        return -1;
    }
    while (n > 0) {
        size_t k = n < sizeof(spaces) - 2 ? n : sizeof(spaces) - 2;
        if (put(d, spaces + 1, k) != 0) {
            return -1;
        }
        n -= k;
    }
    return 0;
}

/*
 * The code point of the UTF-8 sequence at p (at most avail bytes) and its length, or 0 when it
 * is not valid UTF-8 as jansson's utf8_iterate sees it: a continuation byte, 0xC0, 0xC1 or
 * 0xF5..0xFF first, a sequence cut short, an overlong form, a surrogate, above U+10FFFF.
 */
static size_t utf8_decode(const unsigned char *p, size_t avail, uint32_t *cp)
{
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n;
    uint32_t v;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        n = 2;
        v = p[0] & 0x1Fu;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        n = 3;
        v = p[0] & 0x0Fu;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        n = 4;
        v = p[0] & 0x07u;
    } else {
        return 0;
    }
    if (n > avail) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0u) != 0x80u) {
            return 0;
        }
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || v < least[n]) {
        return 0;
    }
    *cp = v;
    return n;
}

static void hex4(char *out, uint32_t v)
{
    static const char digits[] = "0123456789ABCDEF";

    out[0] = '\\';
    out[1] = 'u';
    for (int i = 0; i < 4; i++) {
        out[2 + i] = digits[(v >> (12 - 4 * i)) & 0xFu];
    }
}

/* The escape of code point cp into out (12 bytes); returns its length. */
static size_t escape(uint32_t cp, char *out)
{
    char c;

    switch (cp) {
    case '\\':
    case '"':
        c = (char)cp;
        break;
    case '\b':
        c = 'b';
        break;
    case '\f':
        c = 'f';
        break;
    case '\n':
        c = 'n';
        break;
    case '\r':
        c = 'r';
        break;
    case '\t':
        c = 't';
        break;
    default:
        if (cp < 0x10000) {
            hex4(out, cp);
            return 6;
        }
        cp -= 0x10000;
        hex4(out, 0xD800 | (cp >> 10));
        hex4(out + 6, 0xDC00 | (cp & 0x3FF));
        return 12;
    }
    out[0] = '\\';
    out[1] = c;
    return 2;
}

/*
 * Whether the 8 bytes at p are all plain: 0x20..0x7F but '"' and '\\' (word tricks from "Bit
 * Twiddling Hacks": a byte below n, n <= 0x80, or a zero byte, sets its top bit in the sum).
 */
static bool plain8(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ULL;
    const uint64_t tops = 0x8080808080808080ULL;
    uint64_t x;
    uint64_t q;
    uint64_t bs;

    memcpy(&x, p, sizeof(x));
    q = x ^ (ones * '"');
    bs = x ^ (ones * '\\');
    return ((x | ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & tops) == 0;
}

/*
 * A quoted, escaped string. Plain runs are copied whole; on invalid UTF-8 the run before the
 * bad byte is left out, as jansson's dump_string returns before writing it.
 */
static int dump_string(struct dump *d, const char *str, size_t len)
{
    const unsigned char *p = (const unsigned char *)str;
    const unsigned char *lim = p + len;
    const unsigned char *run = p;

    if (put(d, "\"", 1) != 0) {
        return -1;
    }
    while (p < lim) {
        char esc[12];
        uint32_t cp;
        size_t n;

        if (lim - p >= 8 && plain8(p)) {
            p += 8;
            continue;
        }
        if (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') {
            p++;
            continue;
        }
        n = utf8_decode(p, (size_t)(lim - p), &cp);
        if (n == 0) {
            return -1;
        }
        if (put(d, run, (size_t)(p - run)) != 0 || put(d, esc, escape(cp, esc)) != 0) {
            return -1;
        }
        p += n;
        run = p;
    }
    if (put(d, run, (size_t)(p - run)) != 0) {
        return -1;
    }
    return put(d, "\"", 1);
}

static int dump_integer(struct dump *d, json_int_t v)
{
    char digits[24];
    char *end = digits + sizeof(digits);
    char *s = end;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        *--s = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *--s = '-';
    }
    return put(d, s, (size_t)(end - s));
}

/* A real as jansson writes it (the report holds none: not worth a copy of jsonp_dtostr). */
static int dump_real(struct dump *d, const json_t *json)
{
    char *text = json_dumps(json, JSON_ENCODE_ANY);
    int rc;

    if (text == NULL) {
        return -1;
    }
    rc = put(d, text, strlen(text));
    free(text);
    return rc;
}

static int dump_value(struct dump *d, const json_t *json, size_t depth, const struct parent *up);

static int dump_array(struct dump *d, const json_t *json, size_t depth, const struct parent *up)
{
    struct parent self = {json, up};
    size_t n = json_array_size(json);

    if (put(d, "[", 1) != 0) {
        return -1;
    }
    if (n == 0) {
        return put(d, "]", 1);
    }
    if (put_indent(d, depth + 1) != 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (dump_value(d, json_array_get(json, i), depth + 1, &self) != 0) {
            return -1;
        }
        if (i + 1 < n ? put(d, ",", 1) != 0 || put_indent(d, depth + 1) != 0
                      : put_indent(d, depth) != 0) {
            return -1;
        }
    }
    return put(d, "]", 1);
}

static int dump_object(struct dump *d, const json_t *json, size_t depth, const struct parent *up)
{
    struct parent self = {json, up};
    void *iter = json_object_iter((json_t *)json);

    if (put(d, "{", 1) != 0) {
        return -1;
    }
    if (iter == NULL) {
        return put(d, "}", 1);
    }
    if (put_indent(d, depth + 1) != 0) {
        return -1;
    }
    while (iter != NULL) {
        void *next = json_object_iter_next((json_t *)json, iter);

        /* jansson ignores a key's failure: a bad key is cut short and the dump goes on */
        (void)dump_string(d, json_object_iter_key(iter), json_object_iter_key_len(iter));
        if (put(d, ": ", 2) != 0 ||
            dump_value(d, json_object_iter_value(iter), depth + 1, &self) != 0) {
            return -1;
        }
        if (next != NULL ? put(d, ",", 1) != 0 || put_indent(d, depth + 1) != 0
                         : put_indent(d, depth) != 0) {
            return -1;
        }
        iter = next;
    }
    return put(d, "}", 1);
}

static int dump_value(struct dump *d, const json_t *json, size_t depth, const struct parent *up)
{
    switch (json_typeof(json)) {
    case JSON_NULL:
        return put(d, "null", 4);
    case JSON_TRUE:
        return put(d, "true", 4);
    case JSON_FALSE:
        return put(d, "false", 5);
    case JSON_INTEGER:
        return dump_integer(d, json_integer_value(json));
    case JSON_REAL:
        return dump_real(d, json);
    case JSON_STRING:
        return dump_string(d, json_string_value(json), json_string_length(json));
    case JSON_ARRAY:
    case JSON_OBJECT:
        for (const struct parent *p = up; p != NULL; p = p->up) {
            if (p->v == json) {
                return -1; /* before its bracket, as jansson's loop check */
            }
        }
        return json_is_array(json) ? dump_array(d, json, depth, up)
                                   : dump_object(d, json, depth, up);
    }
    return -1;
}

int cfw_jsondump_append(struct cfw_buf *b, const json_t *json)
{
    struct dump d;
    int rc;

    if (!json_is_array(json) && !json_is_object(json)) {
        return -1;
    }
    d.b = b;
    d.full = false;
    d.used = 0;
    rc = dump_value(&d, json, 0, NULL);
    (void)flush(&d); /* on a failure too: b holds the text up to it */
    return d.full ? CFW_JSONDUMP_FULL : rc;
}
