/*
 * Fuzz target: the WebSocket frame parser (cfw_ws_parse), the bytes a tail server sends after
 * the handshake. Input: a mode byte (bits 0-1 pick the caps: the defaults or small ones that
 * reach every cap), a 16-bit split point, then the bytes. The bytes are parsed as the client
 * does (consume what the parser used, wait for *need bytes otherwise), once on the whole input
 * and once fed in two pieces at the split point, each time from an exact-size heap copy.
 * Checked: used never exceeds what was given, an incomplete frame asks for more bytes than it
 * has; a delivery is a message (within the message cap, NUL-terminated, UTF-8 when text), a
 * ping or pong of at most 125 bytes, or a close with a code allowed on the wire and a UTF-8
 * reason; an error carries 1002, 1007 or 1009 and stops; both feeds deliver the same sequence
 * (kinds, lengths, a hash of the bytes) and end alike.
 */
#include <string.h>

#include "cfwatchd/log.h"
#include "cfwatchd/websocket.h"
#include "fuzz_util.h"

/* Deliveries compared per run. */
#define MAX_DELIVERIES 512u

struct caps {
    size_t frame, message;
};

static const struct caps caps[] = {
    {0, 0},
    {64, 200},
    {1000, 1000},
    {125, 4096},
};

struct run {
    unsigned kinds[MAX_DELIVERIES];
    size_t lens[MAX_DELIVERIES];
    uint64_t hash;
    size_t n;
    int end; /* 0: all consumed or incomplete; -1: error */
    uint16_t code;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 1099511628211ull;
    }
    return h;
}

static void check_frame(const struct cfw_ws_frame *f, const struct caps *c)
{
    size_t maxm = c->message != 0 ? c->message : CFW_WS_MAX_MESSAGE_DEFAULT;

    switch (f->op) {
    case CFW_WS_OP_TEXT:
    case CFW_WS_OP_BINARY:
        FUZZ_CHECK(f->op != CFW_WS_OP_TEXT || cfw_utf8_valid(f->data, f->len, true));
        FUZZ_CHECK(f->len <= maxm);
        FUZZ_CHECK(f->data[f->len] == '\0');
        break;
    case CFW_WS_OP_PING:
    case CFW_WS_OP_PONG:
        FUZZ_CHECK(f->len <= 125);
        break;
    case CFW_WS_OP_CLOSE:
        FUZZ_CHECK(f->len <= 123);
        FUZZ_CHECK(f->code == CFW_WS_CLOSE_NO_STATUS ||
                   (f->code >= 1000 && f->code <= 1014 && f->code != 1004 && f->code != 1005 &&
                    f->code != 1006) ||
                   (f->code >= 3000 && f->code <= 4999));
        FUZZ_CHECK(cfw_utf8_valid(f->data, f->len, true));
        break;
    default:
        FUZZ_CHECK(!"an opcode that is not delivered");
    }
}

/* Feeds data[0..len) into the parser with buffered leftovers (held in *pend). */
static int feed(struct cfw_ws_parser *p, const struct caps *c, struct cfw_buf *pend,
                const uint8_t *data, size_t len, struct run *r)
{
    unsigned char *copy;
    size_t off = 0;

    cfw_buf_append(pend, data, len);
    copy = cfw_xmalloc(pend->len + 1);
    memcpy(copy, pend->data != NULL ? pend->data : "", pend->len);
    while (off < pend->len) {
        size_t used = 9999999, need = 0;
        struct cfw_ws_frame f;
        uint16_t code = 0;
        struct cfw_err err = {0};
        size_t have = pend->len - off;
        int rc = cfw_ws_parse(p, copy + off, have, &used, &need, &f, &code, &err);

        if (rc < 0) {
            FUZZ_CHECK(code == CFW_WS_CLOSE_PROTOCOL || code == CFW_WS_CLOSE_BAD_DATA ||
                       code == CFW_WS_CLOSE_TOO_BIG);
            FUZZ_CHECK(err.msg[0] != '\0');
            r->end = -1;
            r->code = code;
            free(copy);
            return -1;
        }
        FUZZ_CHECK(used <= have);
        if (used == 0) {
            FUZZ_CHECK(rc == 0 && need > have);
            break;
        }
        if (rc == 1) {
            check_frame(&f, c);
            if (r->n < MAX_DELIVERIES) {
                r->kinds[r->n] = f.op;
                r->lens[r->n++] = f.len;
            }
            r->hash = fnv(r->hash, f.data, f.len);
            r->hash = fnv(r->hash, &f.code, sizeof(f.code));
        }
        off += used;
    }
    /* keep what is not consumed yet */
    if (pend->data != NULL) {
        memmove(pend->data, pend->data + off, pend->len - off);
        pend->len -= off;
        pend->data[pend->len] = '\0';
    }
    free(copy);
    return 0;
}

static void run(const uint8_t *data, size_t len, size_t split, const struct caps *c, struct run *r)
{
    struct cfw_ws_parser p = {.max_frame = c->frame, .max_message = c->message};
    struct cfw_buf pend = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    memset(r, 0, sizeof(*r));
    r->hash = 14695981039346656037ull;
    if (split > len) {
        split = len;
    }
    if (feed(&p, c, &pend, data, split, r) == 0) {
        feed(&p, c, &pend, data + split, len - split, r);
    }
    cfw_buf_free(&pend);
    cfw_ws_parser_clear(&p);
}

FUZZ_INIT_QUIET

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run *whole, *parts;
    const struct caps *c;
    size_t split;

    if (size < 3) {
        return 0;
    }
    c = &caps[data[0] & 3];
    split = ((size_t)data[1] << 8) | data[2];
    data += 3;
    size -= 3;
    whole = cfw_xcalloc(1, sizeof(*whole));
    parts = cfw_xcalloc(1, sizeof(*parts));
    run(data, size, size, c, whole);
    run(data, size, split, c, parts);
    FUZZ_CHECK(whole->n == parts->n);
    FUZZ_CHECK(whole->end == parts->end && whole->code == parts->code);
    FUZZ_CHECK(whole->hash == parts->hash);
    FUZZ_CHECK(memcmp(whole->kinds, parts->kinds, whole->n * sizeof(whole->kinds[0])) == 0);
    FUZZ_CHECK(memcmp(whole->lens, parts->lens, whole->n * sizeof(whole->lens[0])) == 0);
    free(whole);
    free(parts);
    return 0;
}
