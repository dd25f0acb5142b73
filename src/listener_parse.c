/*
 * The listener's HTTP/1.1 request-head parser and chunked decoder: pure functions over bytes (no
 * I/O, no allocation), fuzzed alone (fuzz target http). See listener.h for the limits.
 */
#include "cfwatchd/listener.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "listener_int.h"

/* ---- the head parser ---- */

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool is_vchar(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f;
}

/* field-vchar, SP, HTAB and obs-text (RFC 9110 5.5) */
static bool is_field_char(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static bool is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

static int head_fail(struct cfw_listener_head *out, int status)
{
    out->status = status;
    return CFW_LISTENER_HEAD_ERROR;
}

static bool token_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* True when s[0..n) can still become "METHOD SP target SP HTTP/d.d". */
static bool request_line_prefix_ok(const char *s, size_t n)
{
    size_t i = 0, j;

    while (i < n && is_tchar((unsigned char)s[i])) {
        i++;
    }
    if (i == n) {
        return true;
    }
    if (s[i] != ' ' || i == 0) {
        return false;
    }
    j = ++i;
    while (i < n && is_vchar((unsigned char)s[i])) {
        i++;
    }
    if (i == n) {
        return true;
    }
    if (s[i] != ' ' || i == j) {
        return false;
    }
    for (i++; i < n; i++) {
        if (strchr("HTP/0123456789.\r", s[i]) == NULL || s[i] == '\0') {
            return false;
        }
    }
    return true;
}

/* Splits a target into path and query; 0, or -1 when it is neither origin- nor absolute-form. */
static int split_target(const char *t, size_t n, struct cfw_listener_head *out)
{
    const char *q, *path = t, *end = t + n;

    if (n == 0) {
        return -1;
    }
    if (t[0] != '/') {
        size_t skip = n >= 7 && strncasecmp(t, "http://", 7) == 0    ? 7
                      : n >= 8 && strncasecmp(t, "https://", 8) == 0 ? 8
                                                                     : 0;
        if (skip == 0) {
            return -1;
        }
        path = t + skip;
        while (path < end && *path != '/' && *path != '?') {
            path++;
        }
        if (path == t + skip) {
            return -1; /* no authority */
        }
    }
    q = memchr(path, '?', (size_t)(end - path));
    if (q != NULL) {
        out->query = q + 1;
        out->query_len = (size_t)(end - q - 1);
        end = q;
    }
    if (path == end) {
        out->path = "/";
        out->path_len = 1;
    } else if (path[0] != '/') {
        return -1;
    } else {
        out->path = path;
        out->path_len = (size_t)(end - path);
    }
    return 0;
}

static int parse_request_line(const char *s, size_t n, const struct cfw_listener_limits *lim,
                              struct cfw_listener_head *out)
{
    size_t i = 0, m, t0;
    bool known;

    if (n > lim->max_line) {
        return head_fail(out, 414);
    }
    while (i < n && is_tchar((unsigned char)s[i])) {
        i++;
    }
    if (i == 0 || i == n || s[i] != ' ') {
        return head_fail(out, 400);
    }
    m = i;
    known = true;
    if (m == 3 && memcmp(s, "GET", 3) == 0) {
        out->method = CFW_LISTENER_GET;
    } else if (m == 4 && memcmp(s, "HEAD", 4) == 0) {
        out->method = CFW_LISTENER_HEAD;
    } else if (m == 4 && memcmp(s, "POST", 4) == 0) {
        out->method = CFW_LISTENER_POST;
    } else if (m == 6 && memcmp(s, "DELETE", 6) == 0) {
        out->method = CFW_LISTENER_DELETE;
    } else {
        known = false;
    }
    t0 = ++i;
    while (i < n && is_vchar((unsigned char)s[i])) {
        i++;
    }
    if (i == t0 || i == n || s[i] != ' ') {
        return head_fail(out, 400);
    }
    if (n - i - 1 != 8 || memcmp(s + i + 1, "HTTP/", 5) != 0 ||
        !is_digit((unsigned char)s[i + 6]) || s[i + 7] != '.' ||
        !is_digit((unsigned char)s[i + 8])) {
        return head_fail(out, 400);
    }
    if (s[i + 6] != '1') {
        return head_fail(out, 505);
    }
    out->minor = s[i + 8] - '0';
    if (!known) {
        return head_fail(out, 501);
    }
    if (split_target(s + t0, i - t0, out) != 0) {
        return head_fail(out, 400);
    }
    return CFW_LISTENER_HEAD_PARTIAL;
}

/* Flags of the headers the parser interprets. */
struct head_flags {
    unsigned hosts;
    bool te;
    bool close;
};

static int header_meaning(const struct cfw_listener_header *h, struct head_flags *f,
                          struct cfw_listener_head *out)
{
    const char *v = h->value;
    size_t n = h->value_len;

    if (token_is(h->name, h->name_len, "content-length")) {
        uint64_t x = 0;
        if (n == 0) {
            return head_fail(out, 400);
        }
        for (size_t i = 0; i < n; i++) {
            if (!is_digit((unsigned char)v[i])) {
                return head_fail(out, 400);
            }
        }
        if (n > 18) {
            return head_fail(out, 413);
        }
        for (size_t i = 0; i < n; i++) {
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        if (out->content_length >= 0 && (uint64_t)out->content_length != x) {
            return head_fail(out, 400);
        }
        out->content_length = (int64_t)x;
    } else if (token_is(h->name, h->name_len, "transfer-encoding")) {
        if (f->te) {
            return head_fail(out, 400); /* chunked twice, or a coding after chunked */
        }
        f->te = true;
        if (!token_is(v, n, "chunked")) {
            return head_fail(out, 501);
        }
        out->chunked = true;
    } else if (token_is(h->name, h->name_len, "connection")) {
        size_t i = 0;
        while (i < n) {
            size_t j = i, e;
            while (j < n && v[j] != ',') {
                j++;
            }
            e = j;
            while (i < e && (v[i] == ' ' || v[i] == '\t')) {
                i++;
            }
            while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t')) {
                e--;
            }
            if (token_is(v + i, e - i, "close")) {
                f->close = true;
            }
            i = j + 1;
        }
    } else if (token_is(h->name, h->name_len, "expect")) {
        if (!token_is(v, n, "100-continue")) {
            return head_fail(out, 417);
        }
        out->expect_continue = true;
    } else if (token_is(h->name, h->name_len, "host")) {
        if (++f->hosts > 1) {
            return head_fail(out, 400);
        }
    }
    return CFW_LISTENER_HEAD_PARTIAL;
}

static int parse_header_line(const char *s, size_t n, struct head_flags *f, size_t max_headers,
                             struct cfw_listener_head *out)
{
    struct cfw_listener_header *h;
    size_t i = 0, e = n;

    if (s[0] == ' ' || s[0] == '\t') {
        return head_fail(out, 400); /* obs-fold */
    }
    while (i < n && is_tchar((unsigned char)s[i])) {
        i++;
    }
    if (i == 0 || i == n || s[i] != ':') {
        return head_fail(out, 400);
    }
    if (out->nheaders >= max_headers) {
        return head_fail(out, 431);
    }
    h = &out->headers[out->nheaders++];
    h->name = s;
    h->name_len = i;
    for (i++; i < n && (s[i] == ' ' || s[i] == '\t'); i++) {
    }
    while (e > i && (s[e - 1] == ' ' || s[e - 1] == '\t')) {
        e--;
    }
    for (size_t k = i; k < e; k++) {
        if (!is_field_char((unsigned char)s[k])) {
            return head_fail(out, 400);
        }
    }
    h->value = s + i;
    h->value_len = e - i;
    return header_meaning(h, f, out);
}

int cfw_listener_parse_head(const char *buf, size_t len, const struct cfw_listener_limits *lim,
                            struct cfw_listener_head *out)
{
    static const struct cfw_listener_limits defaults = {
        CFW_LISTENER_MAX_HEAD, CFW_LISTENER_MAX_LINE, CFW_LISTENER_MAX_HEADERS};
    struct head_flags f = {0};
    size_t p = 0, empties = 0, max_headers;
    bool first = true;
    int rc;

    if (lim == NULL) {
        lim = &defaults;
    }
    max_headers =
        lim->max_headers < CFW_LISTENER_MAX_HEADERS ? lim->max_headers : CFW_LISTENER_MAX_HEADERS;
    memset(out, 0, sizeof(*out));
    out->content_length = -1;
    while (p < len && (buf[p] == '\r' || buf[p] == '\n')) {
        if (buf[p] == '\r') {
            if (p + 1 == len) {
                return CFW_LISTENER_HEAD_PARTIAL;
            }
            if (buf[p + 1] != '\n') {
                return head_fail(out, 400);
            }
            p++;
        }
        p++;
        if (++empties > LEADING_EMPTY_MAX) {
            return head_fail(out, 400);
        }
    }
    for (;;) {
        const char *nl = p < len ? memchr(buf + p, '\n', len - p) : NULL;
        size_t eol, end;

        if (nl == NULL) {
            if (first) {
                if (len - p > lim->max_line) {
                    return head_fail(out, 414);
                }
                if (!request_line_prefix_ok(buf + p, len - p)) {
                    return head_fail(out, 400);
                }
            }
            return len > lim->max_head ? head_fail(out, 431) : CFW_LISTENER_HEAD_PARTIAL;
        }
        eol = (size_t)(nl - buf);
        if (eol + 1 > lim->max_head) {
            return head_fail(out, first && eol - p > lim->max_line ? 414 : 431);
        }
        end = eol > p && buf[eol - 1] == '\r' ? eol - 1 : eol;
        if (first) {
            rc = parse_request_line(buf + p, end - p, lim, out);
            first = false;
        } else if (end == p) {
            break;
        } else {
            rc = parse_header_line(buf + p, end - p, &f, max_headers, out);
        }
        if (rc != CFW_LISTENER_HEAD_PARTIAL) {
            return rc;
        }
        p = eol + 1;
    }
    if (out->chunked && (out->minor == 0 || out->content_length >= 0)) {
        return head_fail(out, 400);
    }
    if (out->minor >= 1 && f.hosts == 0) {
        return head_fail(out, 400);
    }
    out->keep_alive = out->minor >= 1 && !f.close;
    out->expect_continue = out->expect_continue && out->minor >= 1;
    out->head_len = p + (buf[p] == '\r' ? 2 : 1);
    return CFW_LISTENER_HEAD_COMPLETE;
}

/* ---- the chunked decoder ---- */

enum {
    CH_SIZE,       /* hex digits */
    CH_EXT,        /* after the digits: extensions up to the end of the line */
    CH_SIZE_LF,    /* CR seen at the end of the size line */
    CH_DATA,       /* chunk data */
    CH_DATA_END,   /* CRLF after the data */
    CH_DATA_LF,    /* CR seen after the data */
    CH_TRAILER,    /* at the start of a trailer line (or of the final blank line) */
    CH_TRAILER_IN, /* inside a trailer line */
    CH_END_LF,     /* CR seen at the start of the final line */
    CH_DONE,
};

static int chunk_fail(struct cfw_listener_chunked *st, int status)
{
    st->status = status;
    return -1;
}

/* The size line ended: on to the data, or to the trailers after the last chunk. */
static int chunk_size_done(struct cfw_listener_chunked *st, size_t room)
{
    st->line = 0;
    st->digits = 0;
    if (st->left == 0) {
        st->state = CH_TRAILER;
        return 0;
    }
    if (st->left > room) {
        return chunk_fail(st, 413);
    }
    st->state = CH_DATA;
    return 0;
}

/* One byte of a trailer line (read and dropped, within the head cap). */
static int trailer_byte(struct cfw_listener_chunked *st, unsigned char ch)
{
    if (ch == '\0') {
        return chunk_fail(st, 400);
    }
    if (++st->trailer > CFW_LISTENER_MAX_HEAD) {
        return chunk_fail(st, 431);
    }
    if (ch == '\n') {
        st->state = CH_TRAILER;
    }
    return 0;
}

/* One byte of a size line, a line end or a trailer; 0, or -1 with st->status set. */
static int chunk_byte(struct cfw_listener_chunked *st, unsigned char ch, size_t room)
{
    int hv;

    switch (st->state) {
    case CH_SIZE:
    case CH_EXT:
        if (++st->line > CFW_LISTENER_MAX_CHUNK_LINE) {
            return chunk_fail(st, 400);
        }
        hv = cfw_hex_value(ch);
        if (st->state == CH_SIZE && hv >= 0) {
            if (st->left > (UINT64_MAX >> 4)) {
                return chunk_fail(st, 413);
            }
            st->left = st->left * 16 + (uint64_t)hv;
            st->digits++;
            return 0;
        }
        if (st->digits == 0) {
            return chunk_fail(st, 400);
        }
        if (ch == '\r') {
            st->state = CH_SIZE_LF;
        } else if (ch == '\n') {
            return chunk_size_done(st, room);
        } else if (st->state == CH_SIZE && ch != ';' && ch != ' ' && ch != '\t') {
            return chunk_fail(st, 400);
        } else if (ch < 0x20 && ch != '\t') {
            return chunk_fail(st, 400);
        } else {
            st->state = CH_EXT;
        }
        return 0;
    case CH_SIZE_LF:
        return ch == '\n' ? chunk_size_done(st, room) : chunk_fail(st, 400);
    case CH_DATA_END:
        if (ch == '\r') {
            st->state = CH_DATA_LF;
            return 0;
        }
        if (ch != '\n') {
            return chunk_fail(st, 400);
        }
        st->state = CH_SIZE;
        return 0;
    case CH_DATA_LF:
        if (ch != '\n') {
            return chunk_fail(st, 400);
        }
        st->state = CH_SIZE;
        return 0;
    case CH_TRAILER:
        if (ch == '\r' || ch == '\n') {
            st->state = ch == '\r' ? CH_END_LF : CH_DONE;
            return 0;
        }
        st->state = CH_TRAILER_IN;
        return trailer_byte(st, ch);
    case CH_TRAILER_IN:
        return trailer_byte(st, ch);
    case CH_END_LF:
        if (ch != '\n') {
            return chunk_fail(st, 400);
        }
        st->state = CH_DONE;
        return 0;
    default:
        return chunk_fail(st, 400);
    }
}

int cfw_listener_dechunk(struct cfw_listener_chunked *st, const char *in, size_t len, char *out,
                         size_t outcap, size_t *used, size_t *outlen)
{
    size_t i = 0, o = 0;
    int rc = 0;

    if (st->status != 0) {
        rc = -1;
    }
    while (rc == 0 && i < len && st->state != CH_DONE) {
        if (st->state == CH_DATA) {
            size_t n = len - i < st->left ? len - i : (size_t)st->left;
            memcpy(out + o, in + i, n);
            o += n;
            i += n;
            st->left -= n;
            if (st->left == 0) {
                st->state = CH_DATA_END;
            }
            continue;
        }
        rc = chunk_byte(st, (unsigned char)in[i], outcap - o);
        if (rc == 0) {
            i++;
        }
    }
    *used = i;
    *outlen = o;
    if (rc != 0) {
        return -1;
    }
    return st->state == CH_DONE ? 1 : 0;
}
