/*
 * Fuzz target: the listener's request-head parser and chunked decoder (pure functions, no I/O).
 * Input: a mode byte (bits 0-1 pick the limits, small ones reach every cap; bit 2 feeds the
 * whole input to the chunked decoder instead of what follows a complete head), a 16-bit split
 * point, then the bytes. Checked: the result is one of the three and an error carries one of the
 * documented statuses; a complete head lies within the bytes and the caps, every pointer points
 * inside it (or at the static "/"), names are tokens and values hold no CR, LF or NUL, the same
 * head parses alike on its own and every shorter prefix needs more bytes; a partial head is
 * within the cap. The decoder gives the same result, output and consumption whether its input
 * comes in one piece or two, never writes past the room it is given, and stops at the end of
 * the body.
 */
#include <string.h>

#include "cfwatchd/listener.h"
#include "cfwatchd/log.h"
#include "fuzz_util.h"

/* Decoded bytes allowed per input (the body cap of the decoder runs). */
#define BODY_CAP 4096u

static const struct cfw_listener_limits limits[] = {
    {CFW_LISTENER_MAX_HEAD, CFW_LISTENER_MAX_LINE, CFW_LISTENER_MAX_HEADERS},
    {256, 64, 4},
    {64, 40, 2},
    {2048, 2048, 100},
};

static bool inside(const char *p, size_t n, const char *buf, size_t len)
{
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)buf;

    return a >= lo && a - lo <= len && n <= len - (a - lo);
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL) {
            return false;
        }
    }
    return true;
}

static void check_head(const char *buf, size_t len, const struct cfw_listener_limits *lim,
                       const struct cfw_listener_head *h, uint16_t split)
{
    struct cfw_listener_head *again = cfw_xmalloc(sizeof(*again));

    FUZZ_CHECK(h->head_len > 0 && h->head_len <= len && h->head_len <= lim->max_head);
    FUZZ_CHECK(buf[h->head_len - 1] == '\n');
    FUZZ_CHECK(h->method >= CFW_LISTENER_GET && h->method <= CFW_LISTENER_DELETE);
    FUZZ_CHECK(h->nheaders <= lim->max_headers);
    FUZZ_CHECK(h->path_len > 0 && h->path[0] == '/');
    FUZZ_CHECK(inside(h->path, h->path_len, buf, h->head_len) ||
               (h->path_len == 1 && strcmp(h->path, "/") == 0));
    for (size_t i = 0; i < h->path_len; i++) {
        FUZZ_CHECK(h->path[i] > 0x20 && h->path[i] < 0x7f && h->path[i] != '?');
    }
    FUZZ_CHECK(h->query == NULL || inside(h->query, h->query_len, buf, h->head_len));
    FUZZ_CHECK(h->content_length >= -1);
    FUZZ_CHECK(!h->chunked || h->content_length == -1);
    FUZZ_CHECK(!h->keep_alive || h->minor >= 1);
    for (size_t i = 0; i < h->nheaders; i++) {
        const struct cfw_listener_header *x = &h->headers[i];
        FUZZ_CHECK(inside(x->name, x->name_len, buf, h->head_len));
        FUZZ_CHECK(inside(x->value, x->value_len, buf, h->head_len));
        FUZZ_CHECK(is_token(x->name, x->name_len));
        FUZZ_CHECK(memchr(x->value, '\r', x->value_len) == NULL);
        FUZZ_CHECK(memchr(x->value, '\n', x->value_len) == NULL);
        FUZZ_CHECK(memchr(x->value, '\0', x->value_len) == NULL);
        FUZZ_CHECK(x->value_len == 0 || (x->value[0] != ' ' && x->value[x->value_len - 1] != ' '));
    }
    /* what follows the head does not change it */
    FUZZ_CHECK(cfw_listener_parse_head(buf, h->head_len, lim, again) == CFW_LISTENER_HEAD_COMPLETE);
    FUZZ_CHECK(again->head_len == h->head_len && again->nheaders == h->nheaders &&
               again->content_length == h->content_length && again->chunked == h->chunked &&
               again->method == h->method && again->keep_alive == h->keep_alive);
    /* a shorter prefix is never complete, and never refused once the whole head is fine */
    FUZZ_CHECK(cfw_listener_parse_head(buf, split % h->head_len, lim, again) ==
               CFW_LISTENER_HEAD_PARTIAL);
    free(again);
}

/* Decodes in[0..len) in two pieces split at split; returns the result. */
static int dechunk(const char *in, size_t len, size_t split, char *out, size_t *outlen,
                   size_t *used, int *status)
{
    struct cfw_listener_chunked st = {0};
    size_t cuts[2] = {split < len ? split : len, len};
    size_t pos = 0;
    int rc = 0;

    *outlen = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        size_t n = cuts[k] - pos;
        size_t u = 0, o = 0;
        /* the room given is exactly what the contract asks for: min(outcap, len) */
        size_t room = BODY_CAP - *outlen;
        size_t give = room < n ? room : n;
        char *piece = cfw_xmalloc(give > 0 ? give : 1);

        rc = cfw_listener_dechunk(&st, in + pos, n, piece, room, &u, &o);
        FUZZ_CHECK(u <= n && o <= give && o <= u);
        memcpy(out + *outlen, piece, o);
        free(piece);
        *outlen += o;
        pos += u;
        FUZZ_CHECK(rc != 0 || u == n);
    }
    FUZZ_CHECK(rc >= -1 && rc <= 1);
    FUZZ_CHECK(rc != -1 || st.status == 400 || st.status == 413 || st.status == 431);
    *used = pos;
    *status = rc == -1 ? st.status : 0;
    return rc;
}

static void check_dechunk(const char *in, size_t len, uint16_t split)
{
    char *a = cfw_xmalloc(BODY_CAP + 1);
    char *b = cfw_xmalloc(BODY_CAP + 1);
    size_t alen, blen, aused, bused;
    int astatus, bstatus;
    int ra = dechunk(in, len, len, a, &alen, &aused, &astatus);
    int rb = dechunk(in, len, split % (len + 1), b, &blen, &bused, &bstatus);

    FUZZ_CHECK(ra == rb && astatus == bstatus);
    FUZZ_CHECK(alen == blen && memcmp(a, b, alen) == 0);
    if (ra != -1) {
        FUZZ_CHECK(aused == bused);
    }
    if (ra == 1) {
        FUZZ_CHECK(aused >= 3 && in[aused - 1] == '\n');
    }
    free(a);
    free(b);
}

FUZZ_INIT_QUIET

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    uint16_t split = fuzz_u16(&in);
    const struct cfw_listener_limits *lim = &limits[mode & 3];
    struct cfw_listener_head *h = cfw_xmalloc(sizeof(*h));
    /* an exact-size copy: a read past the end is caught */
    char *buf = cfw_xmalloc(in.n > 0 ? in.n : 1);
    int rc;

    memcpy(buf, in.p, in.n);
    rc = cfw_listener_parse_head(buf, in.n, lim, h);
    FUZZ_CHECK(rc == CFW_LISTENER_HEAD_ERROR || rc == CFW_LISTENER_HEAD_PARTIAL ||
               rc == CFW_LISTENER_HEAD_COMPLETE);
    if (rc == CFW_LISTENER_HEAD_ERROR) {
        FUZZ_CHECK(h->status == 400 || h->status == 413 || h->status == 414 || h->status == 417 ||
                   h->status == 431 || h->status == 501 || h->status == 505);
    } else if (rc == CFW_LISTENER_HEAD_PARTIAL) {
        FUZZ_CHECK(in.n <= lim->max_head);
    } else {
        check_head(buf, in.n, lim, h, split);
    }
    if ((mode & 4) != 0) {
        check_dechunk(buf, in.n, split);
    } else if (rc == CFW_LISTENER_HEAD_COMPLETE && h->chunked) {
        check_dechunk(buf + h->head_len, in.n - h->head_len, split);
    }
    free(buf);
    free(h);
    return 0;
}
