/* The WebSocket client (RFC 6455) over libevent bufferevents; see websocket.h. */
#include "cfwatchd/websocket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cfwatchd/log.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* A message buffer grown past this is released after its message instead of kept. */
#define WS_KEEP_BUF (64u * 1024u)

/* ---- keys ---- */

void cfw_ws_accept_key(const char *key, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char *in = cfw_xasprintf("%s%s", key, WS_GUID);

    if (EVP_Digest(in, strlen(in), md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) {
        out[0] = '\0'; /* never equal to a server's value */
    } else {
        EVP_EncodeBlock((unsigned char *)out, md, 20);
    }
    free(in);
}

/* ---- the parser ---- */

static bool close_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

void cfw_ws_parser_clear(struct cfw_ws_parser *p)
{
    cfw_buf_free(&p->msg);
    p->msg_op = CFW_WS_OP_CONT;
}

/* A frame's header as read off the wire. */
struct frame_head {
    bool fin;
    unsigned op;
    size_t hdr;    /* bytes of the header */
    uint64_t plen; /* bytes of the payload */
};

/*
 * Reads the frame header at buf[0..len): 1 with h filled, 0 when it is incomplete (*need: the
 * bytes it takes), -1 with err set when a server may not send it.
 */
static int frame_head(const unsigned char *buf, size_t len, struct frame_head *h, size_t *need,
                      struct cfw_err *err)
{
    h->hdr = 2;
    if (len < 2) {
        return 0;
    }
    h->fin = (buf[0] & 0x80) != 0;
    h->op = buf[0] & 0x0F;
    if ((buf[0] & 0x70) != 0) {
        cfw_err_set(err, "a frame with reserved bits set (no extension was negotiated)");
        return -1;
    }
    if ((buf[1] & 0x80) != 0) {
        cfw_err_set(err, "a masked frame from the server");
        return -1;
    }
    h->plen = buf[1] & 0x7F;
    if (h->plen == 126) {
        h->hdr = 4;
        if (len < h->hdr) {
            *need = h->hdr;
            return 0;
        }
        h->plen = ((uint64_t)buf[2] << 8) | buf[3];
    } else if (h->plen == 127) {
        h->hdr = 10;
        if (len < h->hdr) {
            *need = h->hdr;
            return 0;
        }
        h->plen = 0;
        for (int i = 2; i < 10; i++) {
            h->plen = (h->plen << 8) | buf[i];
        }
        if ((h->plen >> 63) != 0) {
            cfw_err_set(err, "a frame length with its top bit set");
            return -1;
        }
    }
    return 1;
}

/*
 * Checks that the frame may come now: a known opcode, control frames whole and short, data
 * frames in or out of a fragmented message as they should be and within maxf bytes. 0, or -1
 * with err set (and *close_code when it is not a protocol error).
 */
static int frame_allowed(const struct cfw_ws_parser *p, const struct frame_head *h, size_t maxf,
                         uint16_t *close_code, struct cfw_err *err)
{
    switch (h->op) {
    case CFW_WS_OP_CLOSE:
    case CFW_WS_OP_PING:
    case CFW_WS_OP_PONG:
        if (!h->fin) {
            cfw_err_set(err, "a fragmented control frame (opcode 0x%x)", h->op);
            return -1;
        }
        if (h->plen > 125) {
            cfw_err_set(err, "a control frame of %llu bytes (at most 125)",
                        (unsigned long long)h->plen);
            return -1;
        }
        return 0;
    case CFW_WS_OP_CONT:
    case CFW_WS_OP_TEXT:
    case CFW_WS_OP_BINARY:
        if (h->op == CFW_WS_OP_CONT && p->msg_op == CFW_WS_OP_CONT) {
            cfw_err_set(err, "a continuation frame outside a message");
            return -1;
        }
        if (h->op != CFW_WS_OP_CONT && p->msg_op != CFW_WS_OP_CONT) {
            cfw_err_set(err, "a new message before the fragmented one ended");
            return -1;
        }
        if (h->plen > maxf) {
            *close_code = CFW_WS_CLOSE_TOO_BIG;
            cfw_err_set(err, "a frame of %llu bytes (the cap is %zu)", (unsigned long long)h->plen,
                        maxf);
            return -1;
        }
        return 0;
    default:
        cfw_err_set(err, "unknown opcode 0x%x", h->op);
        return -1;
    }
}

/* Delivers a close frame's code and reason; -1 with err set when they are not allowed. */
static int close_frame(const unsigned char *payload, size_t plen, struct cfw_ws_frame *out,
                       uint16_t *close_code, struct cfw_err *err)
{
    out->op = CFW_WS_OP_CLOSE;
    out->code = CFW_WS_CLOSE_NO_STATUS;
    out->data = "";
    if (plen == 1) {
        cfw_err_set(err, "a close frame of 1 byte");
        return -1;
    }
    if (plen >= 2) {
        out->code = (uint16_t)((payload[0] << 8) | payload[1]);
        if (!close_code_ok(out->code)) {
            cfw_err_set(err, "close code %u is not allowed on the wire", out->code);
            return -1;
        }
        out->data = (const char *)payload + 2;
        out->len = plen - 2;
        if (!cfw_utf8_valid(out->data, out->len, true)) {
            *close_code = CFW_WS_CLOSE_BAD_DATA;
            cfw_err_set(err, "a close reason that is not UTF-8");
            return -1;
        }
    }
    return 1;
}

/*
 * Adds a data frame to the message (a new one unless it continues one), within maxm bytes.
 * Returns 1 with out filled when the frame was the message's last, 0 when more are to come, -1
 * with err and *close_code set.
 */
static int data_frame(struct cfw_ws_parser *p, const struct frame_head *h,
                      const unsigned char *payload, size_t maxm, struct cfw_ws_frame *out,
                      uint16_t *close_code, struct cfw_err *err)
{
    if (h->op != CFW_WS_OP_CONT) {
        if (p->msg.cap > WS_KEEP_BUF) {
            cfw_buf_free(&p->msg);
        }
        cfw_buf_reset(&p->msg);
        p->msg_op = (enum cfw_ws_op)h->op;
    }
    p->msg.max = maxm; /* msg's init: the parser is made zeroed, with its caps as options */
    if (cfw_buf_append(&p->msg, payload, (size_t)h->plen) != 0) {
        *close_code = CFW_WS_CLOSE_TOO_BIG;
        cfw_err_set(err, "a message over %zu bytes", maxm);
        return -1;
    }
    if (!h->fin) {
        return 0;
    }
    out->op = p->msg_op;
    out->data = p->msg.data != NULL ? p->msg.data : "";
    out->len = p->msg.len;
    p->msg_op = CFW_WS_OP_CONT;
    if (out->op == CFW_WS_OP_TEXT && !cfw_utf8_valid(out->data, out->len, true)) {
        *close_code = CFW_WS_CLOSE_BAD_DATA;
        cfw_err_set(err, "a text message that is not UTF-8");
        return -1;
    }
    return 1;
}

int cfw_ws_parse(struct cfw_ws_parser *p, const unsigned char *buf, size_t len, size_t *used,
                 size_t *need, struct cfw_ws_frame *out, uint16_t *close_code, struct cfw_err *err)
{
    size_t maxf = p->max_frame != 0 ? p->max_frame : CFW_WS_MAX_FRAME_DEFAULT;
    size_t maxm = p->max_message != 0 ? p->max_message : CFW_WS_MAX_MESSAGE_DEFAULT;
    struct frame_head h;
    const unsigned char *payload;
    int rc;

    *used = 0;
    *need = 2;
    memset(out, 0, sizeof(*out));
    *close_code = CFW_WS_CLOSE_PROTOCOL;
    rc = frame_head(buf, len, &h, need, err);
    if (rc <= 0) {
        return rc;
    }
    if (frame_allowed(p, &h, maxf, close_code, err) != 0) {
        return -1;
    }
    if (len - h.hdr < h.plen) {
        *need = h.hdr + (size_t)h.plen;
        return 0;
    }
    payload = buf + h.hdr;
    *used = h.hdr + (size_t)h.plen;
    p->frames++;
    if (h.op == CFW_WS_OP_PING || h.op == CFW_WS_OP_PONG) {
        out->op = (enum cfw_ws_op)h.op;
        out->data = (const char *)payload;
        out->len = (size_t)h.plen;
        return 1;
    }
    if (h.op == CFW_WS_OP_CLOSE) {
        return close_frame(payload, (size_t)h.plen, out, close_code, err);
    }
    return data_frame(p, &h, payload, maxm, out, close_code, err);
}

int cfw_ws_frame_encode(struct cfw_buf *out, enum cfw_ws_op op, const void *payload, size_t len,
                        const unsigned char mask[4])
{
    unsigned char hdr[14];
    size_t h = 0;
    const unsigned char *in = payload;
    size_t start = out->len;

    hdr[h++] = (unsigned char)(0x80 | (unsigned)op);
    if (len < 126) {
        hdr[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) {
            hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
        }
    }
    memcpy(hdr + h, mask, 4);
    h += 4;
    if (cfw_buf_append(out, hdr, h) != 0 || cfw_buf_append(out, payload, len) != 0) {
        out->len = start;
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        out->data[start + h + i] = (char)(in[i] ^ mask[i & 3]);
    }
    return 0;
}

/* ---- the client ---- */

enum ws_state {
    WS_CONNECTING, /* resolving, TCP, TLS */
    WS_HANDSHAKE,  /* the upgrade request sent, waiting for 101 */
    WS_OPEN,
    WS_CLOSING, /* a close frame sent (ours, or the echo of the server's) */
    WS_DONE,
};

struct cfw_ws {
    struct event_base *base;
    struct cfw_ws_cbs cbs;
    char *host;
    int port;
    char *path;
    bool tls;
    char *protocol;
    char *user_agent;
    int64_t connect_timeout_ms;
    int64_t ping_interval_ms;
    struct evdns_base *dns;
    SSL_CTX *ctx;
    struct bufferevent *bev;
    struct event *timer; /* connect timeout, ping interval, close timeout */
    struct event *defer; /* a closed callback to deliver from the loop */
    char key[32];
    struct cfw_ws_parser parser;
    size_t need;
    enum ws_state state;
    bool pong_pending;
    bool close_received;
    int close_code; /* what the closed callback will say */
    char *close_why;
    struct cfw_busy busy; /* freed from a callback: destroyed by the outermost leave */
    bool connecting; /* inside cfw_ws_connect: a failure is told from the loop, not now */
    struct cfw_ws_stats stats;
};

static void ws_release(struct cfw_ws *ws)
{
    if (ws->bev != NULL) {
        bufferevent_free(ws->bev); /* closes the socket and frees the SSL object */
        ws->bev = NULL;
    }
    if (ws->timer != NULL) {
        event_free(ws->timer);
        ws->timer = NULL;
    }
    if (ws->defer != NULL) {
        event_free(ws->defer);
        ws->defer = NULL;
    }
    if (ws->dns != NULL) {
        /* a lookup still in flight ends through libevent's shutdown path, which releases the
         * request and its reference to the bufferevent (0 would leave both, and a timer) */
        evdns_base_free(ws->dns, 1);
        ws->dns = NULL;
    }
    if (ws->ctx != NULL) {
        SSL_CTX_free(ws->ctx);
        ws->ctx = NULL;
    }
}

static void ws_destroy(struct cfw_ws *ws)
{
    ws_release(ws);
    cfw_ws_parser_clear(&ws->parser);
    free(ws->host);
    free(ws->path);
    free(ws->protocol);
    free(ws->user_agent);
    free(ws->close_why);
    free(ws);
}

void cfw_ws_free(struct cfw_ws *ws)
{
    if (ws == NULL) {
        return;
    }
    if (cfw_busy_defer_free(&ws->busy)) {
        memset(&ws->cbs, 0, sizeof(ws->cbs));
        return;
    }
    ws_destroy(ws);
}

static void enter(struct cfw_ws *ws)
{
    cfw_busy_enter(&ws->busy);
}

/* Returns false when ws was freed (the caller must not touch it). */
static bool leave(struct cfw_ws *ws)
{
    if (!cfw_busy_leave(&ws->busy)) {
        ws_destroy(ws);
        return false;
    }
    return true;
}

/* The connection is over: everything released, the closed callback called once. */
static void finish(struct cfw_ws *ws, int code, const char *fmt, ...) CFW_PRINTF(3, 4);
static void finish(struct cfw_ws *ws, int code, const char *fmt, ...)
{
    char why[512];
    va_list ap;

    if (ws->state == WS_DONE) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (ws->connecting) {
        /*
         * A connect that failed at once (an address needing no lookup, then socket() or
         * connect() refused: EMFILE, ENETUNREACH) calls back inside bufferevent's connect:
         * the caller has no handle yet, so the closed callback comes from the loop.
         */
        free(ws->close_why);
        ws->close_why = cfw_xstrdup(why);
        event_active(ws->defer, EV_TIMEOUT, 0);
        return;
    }
    ws->state = WS_DONE;
    ws_release(ws);
    if (ws->cbs.closed != NULL) {
        ws->cbs.closed(ws->cbs.arg, ws, code, why);
    }
}

static void arm(struct cfw_ws *ws, int64_t ms)
{
    struct timeval tv = cfw_ms_timeval(ms);

    evtimer_add(ws->timer, &tv);
}

static int send_frame(struct cfw_ws *ws, enum cfw_ws_op op, const void *data, size_t len)
{
    struct cfw_buf b;
    unsigned char mask[4];
    int rc;

    cfw_buf_init(&b, CFW_WS_SEND_MAX + 16);
    if (ws->bev == NULL ||
        evbuffer_get_length(bufferevent_get_output(ws->bev)) + len > CFW_WS_SEND_MAX) {
        return -1;
    }
    if (RAND_bytes(mask, sizeof(mask)) != 1) {
        return -1;
    }
    rc = cfw_ws_frame_encode(&b, op, data, len, mask);
    if (rc == 0) {
        rc = bufferevent_write(ws->bev, b.data, b.len);
    }
    cfw_buf_free(&b);
    return rc;
}

/* Sends a close frame and waits (bounded) for the server's. */
static void start_close(struct cfw_ws *ws, uint16_t code, const char *reason)
{
    unsigned char payload[125];
    size_t rlen = reason != NULL ? strlen(reason) : 0;

    if (rlen > sizeof(payload) - 2) {
        rlen = sizeof(payload) - 2;
    }
    payload[0] = (unsigned char)(code >> 8);
    payload[1] = (unsigned char)code;
    if (rlen > 0) {
        memcpy(payload + 2, reason, rlen);
    }
    send_frame(ws, CFW_WS_OP_CLOSE, payload, rlen + 2);
    ws->state = WS_CLOSING;
    evtimer_del(ws->timer);
    arm(ws, CFW_WS_CLOSE_TIMEOUT_MS);
}

/* A protocol error from the server: a close with the code, then the connection is over. */
static void fail(struct cfw_ws *ws, uint16_t code, const char *what)
{
    free(ws->close_why);
    ws->close_why = cfw_xasprintf("protocol error: %s", what);
    ws->close_code = CFW_WS_CLOSE_ABNORMAL;
    start_close(ws, code, "");
    /* no need to wait for the answer of a peer that breaks the protocol */
    finish(ws, CFW_WS_CLOSE_ABNORMAL, "protocol error: %s", what);
}

static bool token_in(const char *list, const char *token)
{
    size_t n = strlen(token);

    for (const char *p = list; *p != '\0';) {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        if (strncasecmp(p, token, n) == 0 &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t')) {
            return true;
        }
        while (*p != '\0' && *p != ',') {
            p++;
        }
    }
    return false;
}

/* Checks the server's answer to the upgrade request; NULL or what is wrong (static text). */
static const char *check_head(struct cfw_ws *ws, char *head, char *why, size_t whylen)
{
    char *line, *save = NULL;
    char expect[32];
    bool upgrade = false, connection = false, accept = false;
    const char *proto = NULL;
    int status = 0;

    line = strtok_r(head, "\r\n", &save);
    if (line == NULL || sscanf(line, "HTTP/1.%*d %d", &status) != 1) {
        return "not an HTTP answer";
    }
    if (status != 101) {
        snprintf(why, whylen, "HTTP %d%s", status,
                 status == 401 || status == 403 ? " (the tail refused the credentials)" : "");
        return why;
    }
    cfw_ws_accept_key(ws->key, expect);
    while ((line = strtok_r(NULL, "\r\n", &save)) != NULL) {
        char *colon = strchr(line, ':');
        char *v;
        if (colon == NULL) {
            continue;
        }
        *colon = '\0';
        v = colon + 1;
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        for (char *e = v + strlen(v); e > v && (e[-1] == ' ' || e[-1] == '\t'); e--) {
            e[-1] = '\0';
        }
        if (strcasecmp(line, "upgrade") == 0) {
            upgrade = strcasecmp(v, "websocket") == 0;
        } else if (strcasecmp(line, "connection") == 0) {
            connection = connection || token_in(v, "upgrade");
        } else if (strcasecmp(line, "sec-websocket-accept") == 0) {
            accept = strcmp(v, expect) == 0;
        } else if (strcasecmp(line, "sec-websocket-protocol") == 0) {
            proto = v;
        } else if (strcasecmp(line, "sec-websocket-extensions") == 0) {
            return "an extension the client did not offer";
        }
    }
    if (!upgrade) {
        return "no Upgrade: websocket";
    }
    if (!connection) {
        return "no Connection: Upgrade";
    }
    if (!accept) {
        return "a wrong or missing Sec-WebSocket-Accept";
    }
    if (ws->protocol != NULL && (proto == NULL || strcmp(proto, ws->protocol) != 0)) {
        snprintf(why, whylen, "subprotocol %s not accepted (the server chose %s)", ws->protocol,
                 proto != NULL ? proto : "none");
        return why;
    }
    if (ws->protocol == NULL && proto != NULL) {
        return "a subprotocol the client did not offer";
    }
    return NULL;
}

/* Returns false when the connection ended (or ws was freed) while handling the frame. */
static bool on_frame(struct cfw_ws *ws, const struct cfw_ws_frame *f)
{
    switch (f->op) {
    case CFW_WS_OP_TEXT:
    case CFW_WS_OP_BINARY:
        ws->stats.messages_in++;
        if (ws->state == WS_OPEN && ws->cbs.message != NULL) {
            ws->cbs.message(ws->cbs.arg, ws, f->op == CFW_WS_OP_TEXT, f->data, f->len);
        }
        break;
    case CFW_WS_OP_PING:
        if (ws->state == WS_OPEN) {
            send_frame(ws, CFW_WS_OP_PONG, f->data, f->len);
        }
        break;
    case CFW_WS_OP_PONG:
        ws->stats.pongs_in++;
        ws->pong_pending = false;
        break;
    case CFW_WS_OP_CLOSE:
        if (ws->state == WS_CLOSING) {
            /* the answer to our close */
            finish(ws, ws->close_code, "%s",
                   ws->close_why != NULL ? ws->close_why : "closed by the client");
            return false;
        }
        free(ws->close_why);
        if (f->code == CFW_WS_CLOSE_NO_STATUS) {
            ws->close_why = cfw_xstrdup("closed by the server (no status code)");
        } else {
            ws->close_why = cfw_xasprintf("closed by the server with %u%s%.*s", f->code,
                                          f->len > 0 ? ": " : "", (int)f->len, f->data);
        }
        ws->close_code = f->code;
        ws->close_received = true;
        /* echo it, then end once the echo is written (or after the close timeout) */
        start_close(ws, f->code == CFW_WS_CLOSE_NO_STATUS ? CFW_WS_CLOSE_NORMAL : f->code, "");
        if (ws->bev != NULL && evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0) {
            finish(ws, ws->close_code, "%s", ws->close_why);
            return false;
        }
        break;
    default:
        break;
    }
    return ws->state != WS_DONE && !ws->busy.doomed;
}

static void read_frames(struct cfw_ws *ws)
{
    struct evbuffer *in = bufferevent_get_input(ws->bev);

    while (ws->state == WS_OPEN || (ws->state == WS_CLOSING && !ws->close_received)) {
        size_t len = evbuffer_get_length(in);
        size_t used = 0, need = 0;
        struct cfw_ws_frame f;
        uint16_t code;
        struct cfw_err err = {0};
        const unsigned char *data;
        int rc;

        if (len == 0 || len < ws->need) {
            return;
        }
        data = evbuffer_pullup(in, (ev_ssize_t)len);
        rc = cfw_ws_parse(&ws->parser, data, len, &used, &need, &f, &code, &err);
        if (rc < 0) {
            fail(ws, code, err.msg);
            return;
        }
        ws->need = used == 0 ? need : 0;
        if (used > 0) {
            ws->stats.frames_in++;
        }
        if (rc == 1 && !on_frame(ws, &f)) {
            return;
        }
        if (used == 0) {
            return;
        }
        evbuffer_drain(in, used);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct cfw_ws *ws = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    enter(ws);
    if (ws->state == WS_HANDSHAKE) {
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        char why[256];
        const char *bad;
        char *head;

        if (end.pos < 0 || end.pos > (ev_off_t)CFW_WS_HEAD_MAX) {
            if (end.pos >= 0 || evbuffer_get_length(in) > CFW_WS_HEAD_MAX) {
                finish(ws, CFW_WS_CLOSE_ABNORMAL, "handshake: an answer head over %u bytes",
                       CFW_WS_HEAD_MAX);
            }
            leave(ws);
            return;
        }
        head = cfw_xmalloc((size_t)end.pos + 1);
        evbuffer_remove(in, head, (size_t)end.pos);
        head[end.pos] = '\0';
        evbuffer_drain(in, 4);
        ws->stats.bytes_in += (uint64_t)end.pos + 4;
        bad = check_head(ws, head, why, sizeof(why));
        free(head);
        if (bad != NULL) {
            finish(ws, CFW_WS_CLOSE_ABNORMAL, "handshake: %s", bad);
            leave(ws);
            return;
        }
        ws->state = WS_OPEN;
        ws->need = 0;
        evtimer_del(ws->timer);
        if (ws->ping_interval_ms > 0) {
            arm(ws, ws->ping_interval_ms);
        }
        if (ws->cbs.open != NULL) {
            ws->cbs.open(ws->cbs.arg, ws);
        }
        if (ws->busy.doomed || ws->state == WS_DONE) {
            leave(ws);
            return;
        }
    }
    if (ws->state == WS_OPEN || ws->state == WS_CLOSING) {
        size_t before = evbuffer_get_length(in);
        read_frames(ws);
        if (!ws->busy.doomed && ws->state != WS_DONE) {
            ws->stats.bytes_in += before - evbuffer_get_length(in);
        } else {
            ws->stats.bytes_in += before;
        }
    }
    leave(ws);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct cfw_ws *ws = arg;

    /* the echo of the server's close is written: the exchange is complete */
    if (ws->state == WS_CLOSING && ws->close_received &&
        evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        enter(ws);
        finish(ws, ws->close_code, "%s", ws->close_why);
        leave(ws);
    }
}

static void send_upgrade(struct cfw_ws *ws)
{
    unsigned char nonce[16];
    struct evbuffer *out = bufferevent_get_output(ws->bev);
    bool dflt = ws->port == (ws->tls ? 443 : 80);
    bool v6 = strchr(ws->host, ':') != NULL;

    if (RAND_bytes(nonce, sizeof(nonce)) != 1) {
        finish(ws, CFW_WS_CLOSE_ABNORMAL, "no random bytes for the handshake key");
        return;
    }
    EVP_EncodeBlock((unsigned char *)ws->key, nonce, sizeof(nonce));
    evbuffer_add_printf(out, "GET %s HTTP/1.1\r\nHost: %s%s%s", ws->path, v6 ? "[" : "", ws->host,
                        v6 ? "]" : "");
    if (!dflt) {
        evbuffer_add_printf(out, ":%d", ws->port);
    }
    evbuffer_add_printf(out,
                        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                        "User-Agent: %s\r\n",
                        ws->key, ws->user_agent);
    if (ws->protocol != NULL) {
        evbuffer_add_printf(out, "Sec-WebSocket-Protocol: %s\r\n", ws->protocol);
    }
    evbuffer_add(out, "\r\n", 2);
    ws->state = WS_HANDSHAKE;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct cfw_ws *ws = arg;

    enter(ws);
    if ((what & BEV_EVENT_CONNECTED) != 0) {
        send_upgrade(ws);
    } else if ((what & BEV_EVENT_ERROR) != 0) {
        unsigned long ssl_err = ws->tls ? bufferevent_get_openssl_error(bev) : 0;
        int dns_err = bufferevent_socket_get_dns_error(bev);
        int sock_err = EVUTIL_SOCKET_ERROR();
        SSL *ssl = ws->tls ? bufferevent_openssl_get_ssl(bev) : NULL;
        long verify = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
        const char *stage = ws->state == WS_CONNECTING ? "connect" : "connection";

        if (dns_err != 0) {
            finish(ws, CFW_WS_CLOSE_ABNORMAL, "cannot resolve %s: %s", ws->host,
                   evutil_gai_strerror(dns_err));
        } else if (verify != X509_V_OK) {
            finish(ws, CFW_WS_CLOSE_ABNORMAL, "TLS: the certificate of %s is not trusted: %s",
                   ws->host, X509_verify_cert_error_string(verify));
        } else if (ssl_err != 0) {
            char buf[256];
            ERR_error_string_n(ssl_err, buf, sizeof(buf));
            finish(ws, CFW_WS_CLOSE_ABNORMAL, "TLS with %s: %s", ws->host, buf);
        } else if (sock_err != 0) {
            finish(ws, CFW_WS_CLOSE_ABNORMAL, "%s to %s:%d: %s", stage, ws->host, ws->port,
                   evutil_socket_error_to_string(sock_err));
        } else {
            finish(ws, CFW_WS_CLOSE_ABNORMAL, "%s to %s:%d failed", stage, ws->host, ws->port);
        }
    } else if ((what & BEV_EVENT_EOF) != 0) {
        if (ws->state == WS_CLOSING) {
            finish(ws, ws->close_code, "%s",
                   ws->close_why != NULL ? ws->close_why : "closed by the client");
        } else {
            finish(ws, CFW_WS_CLOSE_ABNORMAL, "the server closed the connection%s",
                   ws->state == WS_HANDSHAKE ? " during the handshake" : " without a close frame");
        }
    }
    leave(ws);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_ws *ws = arg;

    (void)fd;
    (void)what;
    enter(ws);
    switch (ws->state) {
    case WS_CONNECTING:
    case WS_HANDSHAKE:
        finish(ws, CFW_WS_CLOSE_ABNORMAL, "no %s with %s:%d within %lld ms",
               ws->state == WS_CONNECTING ? "connection" : "handshake answer", ws->host, ws->port,
               (long long)ws->connect_timeout_ms);
        break;
    case WS_OPEN:
        if (ws->pong_pending) {
            finish(ws, CFW_WS_CLOSE_ABNORMAL, "no pong within %lld s: the connection is dead",
                   (long long)(ws->ping_interval_ms / 1000));
            break;
        }
        if (send_frame(ws, CFW_WS_OP_PING, "cfwatchd", 8) == 0) {
            ws->stats.pings_sent++;
            ws->pong_pending = true;
        }
        arm(ws, ws->ping_interval_ms);
        break;
    case WS_CLOSING:
        finish(ws, ws->close_code, "%s (the close handshake timed out)",
               ws->close_why != NULL ? ws->close_why : "closed by the client");
        break;
    case WS_DONE:
        break;
    }
    leave(ws);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_ws *ws = arg;

    (void)fd;
    (void)what;
    enter(ws);
    finish(ws, CFW_WS_CLOSE_ABNORMAL, "%s", ws->close_why != NULL ? ws->close_why : "closed");
    leave(ws);
}

/* Splits ws[s]://host[:port][/path] into ws; -1 with err set. */
static int parse_url(struct cfw_ws *ws, const char *url, struct cfw_err *err)
{
    const char *p, *host_end, *path;
    long port;

    if (strncmp(url, "wss://", 6) == 0) {
        ws->tls = true;
        p = url + 6;
    } else if (strncmp(url, "ws://", 5) == 0) {
        p = url + 5;
    } else {
        cfw_err_set(err, "not a ws:// or wss:// URL");
        return -1;
    }
    path = p + strcspn(p, "/?#");
    if (memchr(p, '@', (size_t)(path - p)) != NULL) {
        cfw_err_set(err, "credentials in a WebSocket URL are not supported");
        return -1;
    }
    if (*p == '[') {
        host_end = memchr(p, ']', (size_t)(path - p));
        if (host_end == NULL) {
            cfw_err_set(err, "an IPv6 address without its closing bracket");
            return -1;
        }
        ws->host = cfw_xstrndup(p + 1, (size_t)(host_end - p - 1));
        host_end++;
    } else {
        host_end = p + strcspn(p, ":/?#");
        ws->host = cfw_xstrndup(p, (size_t)(host_end - p));
    }
    ws->port = ws->tls ? 443 : 80;
    if (*host_end == ':') {
        char *end;
        errno = 0;
        port = strtol(host_end + 1, &end, 10);
        if (errno != 0 || end != path || port < 1 || port > 65535) {
            cfw_err_set(err, "a bad port in the WebSocket URL");
            return -1;
        }
        ws->port = (int)port;
    } else if (host_end != path) {
        cfw_err_set(err, "a bad host in the WebSocket URL");
        return -1;
    }
    if (ws->host[0] == '\0') {
        cfw_err_set(err, "no host in the WebSocket URL");
        return -1;
    }
    if (*path == '/') {
        ws->path = cfw_xstrndup(path, strcspn(path, "#"));
    } else {
        ws->path = cfw_xasprintf("/%.*s", (int)strcspn(path, "#"), path);
    }
    for (const char *c = ws->path; *c != '\0'; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7F) {
            cfw_err_set(err, "a WebSocket URL with spaces or control characters");
            return -1;
        }
    }
    return 0;
}

static struct bufferevent *tls_bev(struct cfw_ws *ws, const char *ca_file, struct cfw_err *err)
{
    struct in6_addr a6;
    struct in_addr a4;
    bool ip = inet_pton(AF_INET, ws->host, &a4) == 1 || inet_pton(AF_INET6, ws->host, &a6) == 1;
    struct bufferevent *bev;
    SSL *ssl;

    ws->ctx = SSL_CTX_new(TLS_client_method());
    if (ws->ctx == NULL) {
        cfw_err_set(err, "cannot create a TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ws->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ws->ctx, SSL_VERIFY_PEER, NULL);
    if (ca_file != NULL ? SSL_CTX_load_verify_locations(ws->ctx, ca_file, NULL) != 1
                        : SSL_CTX_set_default_verify_paths(ws->ctx) != 1) {
        cfw_err_set(err, "cannot load the CA certificates%s%s", ca_file != NULL ? " of " : "",
                    ca_file != NULL ? ca_file : "");
        ERR_clear_error();
        return NULL;
    }
    ssl = SSL_new(ws->ctx);
    if (ssl == NULL) {
        cfw_err_set(err, "cannot create a TLS session");
        return NULL;
    }
    if (ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ws->host);
    } else {
        SSL_set_tlsext_host_name(ssl, ws->host);
        SSL_set1_host(ssl, ws->host);
    }
    bev = bufferevent_openssl_socket_new(ws->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        /* (libevent freed ssl: BEV_OPT_CLOSE_ON_FREE) */
        cfw_err_set(err, "cannot create a TLS connection");
        return NULL;
    }
    /* a peer that drops the TCP connection without close_notify is an EOF, not an error */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

struct cfw_ws *cfw_ws_connect(struct event_base *base, const struct cfw_ws_conf *conf,
                              const struct cfw_ws_cbs *cbs, struct cfw_err *err)
{
    struct cfw_ws *ws = cfw_xcalloc(1, sizeof(*ws));

    ws->base = base;
    ws->cbs = *cbs;
    ws->state = WS_CONNECTING;
    ws->close_code = CFW_WS_CLOSE_NORMAL;
    ws->parser.max_frame = conf->max_frame;
    ws->parser.max_message = conf->max_message;
    ws->protocol = conf->protocol != NULL ? cfw_xstrdup(conf->protocol) : NULL;
    ws->user_agent =
        cfw_xstrdup(conf->user_agent != NULL ? conf->user_agent : "cfwatchd/" CFW_VERSION);
    ws->connect_timeout_ms =
        conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : CFW_WS_CONNECT_TIMEOUT_DEFAULT_MS;
    ws->ping_interval_ms = conf->ping_interval_ms;
    if (parse_url(ws, conf->url, err) != 0) {
        ws_destroy(ws);
        return NULL;
    }
    if (strchr(ws->user_agent, '\r') != NULL || strchr(ws->user_agent, '\n') != NULL ||
        (ws->protocol != NULL && strpbrk(ws->protocol, "\r\n, ") != NULL)) {
        cfw_err_set(err, "a user agent or subprotocol with line breaks or separators");
        ws_destroy(ws);
        return NULL;
    }
    ws->timer = evtimer_new(base, on_timer, ws);
    ws->defer = evtimer_new(base, on_defer, ws);
    ws->dns =
        evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (ws->dns == NULL) {
        /* no resolv.conf: names from /etc/hosts and literal addresses still work */
        ws->dns = evdns_base_new(base, 0);
        if (ws->dns != NULL) {
            evdns_base_load_hosts(ws->dns, NULL);
        }
    }
    if (ws->tls) {
        ws->bev = tls_bev(ws, conf->ca_file, err);
    } else {
        ws->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (ws->bev == NULL) {
            cfw_err_set(err, "cannot create a connection");
        }
    }
    if (ws->bev == NULL) {
        ws_destroy(ws);
        return NULL;
    }
    bufferevent_setcb(ws->bev, on_read, on_write, on_event, ws);
    bufferevent_enable(ws->bev, EV_READ | EV_WRITE);
    arm(ws, ws->connect_timeout_ms);
    ws->connecting = true;
    if (bufferevent_socket_connect_hostname(ws->bev, ws->dns, AF_UNSPEC, ws->host, ws->port) != 0 &&
        ws->close_why == NULL) {
        /* reported from the loop, as every other failure */
        ws->close_why = cfw_xasprintf("cannot connect to %s:%d", ws->host, ws->port);
        event_active(ws->defer, EV_TIMEOUT, 0);
    }
    ws->connecting = false;
    return ws;
}

int cfw_ws_send_text(struct cfw_ws *ws, const char *data, size_t len)
{
    if (ws->state != WS_OPEN) {
        return -1;
    }
    return send_frame(ws, CFW_WS_OP_TEXT, data, len);
}

int cfw_ws_ping(struct cfw_ws *ws, const char *data, size_t len)
{
    if (ws->state != WS_OPEN || len > 125) {
        return -1;
    }
    ws->stats.pings_sent++;
    return send_frame(ws, CFW_WS_OP_PING, data, len);
}

void cfw_ws_close(struct cfw_ws *ws, uint16_t code, const char *reason)
{
    if (ws->state == WS_OPEN) {
        free(ws->close_why);
        ws->close_why = cfw_xasprintf("closed by the client with %u", code);
        ws->close_code = code;
        start_close(ws, code, reason);
    } else if (ws->state == WS_CONNECTING || ws->state == WS_HANDSHAKE) {
        free(ws->close_why);
        ws->close_why = cfw_xstrdup("closed before it opened");
        if (ws->bev != NULL) {
            bufferevent_disable(ws->bev, EV_READ | EV_WRITE);
        }
        event_active(ws->defer, EV_TIMEOUT, 0);
    }
}

bool cfw_ws_is_open(const struct cfw_ws *ws)
{
    return ws->state == WS_OPEN;
}

void cfw_ws_get_stats(const struct cfw_ws *ws, struct cfw_ws_stats *out)
{
    *out = ws->stats;
}
