/*
 * Unit tests for websocket.c: the frame parser on bytes (lengths, fragmentation, control
 * frames, caps, UTF-8, close codes), the client frame encoder, the accept key of RFC 6455's
 * example, and the client against a scripted WebSocket server on loopback in the same loop
 * (handshake checks, a fragmented message with a ping between its fragments, pongs, a missing
 * pong, a close with 1011, a refused upgrade).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfwatchd/common.h"
#include "cfwatchd/websocket.h"

/* A server frame (never masked) into out; returns its length. */
static size_t server_frame(unsigned char *out, int fin, int op, const char *payload, size_t len)
{
    size_t h = 0;

    out[h++] = (unsigned char)((fin ? 0x80 : 0) | op);
    if (len < 126) {
        out[h++] = (unsigned char)len;
    } else if (len < 65536) {
        out[h++] = 126;
        out[h++] = (unsigned char)(len >> 8);
        out[h++] = (unsigned char)len;
    } else {
        out[h++] = 127;
        for (int i = 7; i >= 0; i--) {
            out[h++] = (unsigned char)((uint64_t)len >> (8 * i));
        }
    }
    memcpy(out + h, payload, len);
    return h + len;
}

/* Parses everything in buf; returns the number of deliveries, the last one in *last. */
static int parse_all(struct cfw_ws_parser *p, const unsigned char *buf, size_t len,
                     struct cfw_ws_frame *last, uint16_t *code, char *err_out)
{
    int n = 0;
    size_t off = 0;

    while (off < len) {
        size_t used, need;
        struct cfw_err err = {0};
        int rc = cfw_ws_parse(p, buf + off, len - off, &used, &need, last, code, &err);
        if (rc < 0) {
            snprintf(err_out, 256, "%.200s", err.msg);
            return -1;
        }
        if (used == 0) {
            break;
        }
        off += used;
        n += rc;
    }
    return n;
}

static void test_accept_key(void **state)
{
    char out[32];

    (void)state;
    /* RFC 6455 section 1.3 */
    cfw_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_lengths_and_partial_input(void **state)
{
    struct cfw_ws_parser p = {0};
    unsigned char buf[70000 + 14];
    char *big = cfw_xmalloc(70000);
    size_t sizes[] = {0, 5, 125, 126, 300, 65535, 65536, 70000};
    struct cfw_ws_frame f;
    uint16_t code;
    char err[256];

    (void)state;
    memset(big, 'x', 70000);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = server_frame(buf, 1, CFW_WS_OP_TEXT, big, sizes[i]);
        size_t used, need;
        struct cfw_err e = {0};
        /* every prefix is incomplete and consumes nothing */
        for (size_t cut = 0; cut < n; cut += (n / 7) + 1) {
            assert_int_equal(cfw_ws_parse(&p, buf, cut, &used, &need, &f, &code, &e), 0);
            assert_int_equal(used, 0);
            assert_true(need > cut);
        }
        assert_int_equal(parse_all(&p, buf, n, &f, &code, err), 1);
        assert_int_equal(f.op, CFW_WS_OP_TEXT);
        assert_int_equal(f.len, sizes[i]);
        assert_int_equal(f.data[f.len], '\0');
    }
    cfw_ws_parser_clear(&p);
    free(big);
}

static void test_fragments_with_ping_between(void **state)
{
    struct cfw_ws_parser p = {0};
    unsigned char buf[512];
    size_t n = 0, off = 0;
    struct cfw_ws_frame f;
    uint16_t code;
    int deliveries = 0;
    const char *got[4];
    size_t gotlen[4];
    char copy[4][64];

    (void)state;
    n += server_frame(buf + n, 0, CFW_WS_OP_TEXT, "{\"outcome\":", 11);
    n += server_frame(buf + n, 1, CFW_WS_OP_PING, "hi", 2);
    n += server_frame(buf + n, 0, CFW_WS_OP_CONT, "\"exception\"", 11);
    n += server_frame(buf + n, 1, CFW_WS_OP_CONT, "}", 1);
    n += server_frame(buf + n, 1, CFW_WS_OP_BINARY, "\x00\xff", 2);
    while (off < n) {
        size_t used, need;
        struct cfw_err e = {0};
        int rc = cfw_ws_parse(&p, buf + off, n - off, &used, &need, &f, &code, &e);
        assert_true(rc >= 0);
        assert_true(used > 0);
        off += used;
        if (rc == 1) {
            got[deliveries] = f.op == CFW_WS_OP_PING   ? "ping"
                              : f.op == CFW_WS_OP_TEXT ? "text"
                                                       : "bin";
            memcpy(copy[deliveries], f.data, f.len);
            gotlen[deliveries++] = f.len;
        }
    }
    assert_int_equal(deliveries, 3);
    assert_string_equal(got[0], "ping");
    assert_memory_equal(copy[0], "hi", 2);
    assert_string_equal(got[1], "text");
    assert_int_equal(gotlen[1], 23);
    assert_memory_equal(copy[1], "{\"outcome\":\"exception\"}", 23);
    assert_string_equal(got[2], "bin");
    assert_int_equal(gotlen[2], 2);
    cfw_ws_parser_clear(&p);
}

/* One frame sequence that must fail with code and a message containing what. */
static void expect_error(const unsigned char *buf, size_t n, size_t max_frame, size_t max_msg,
                         uint16_t want, const char *what)
{
    struct cfw_ws_parser p = {.max_frame = max_frame, .max_message = max_msg};
    struct cfw_ws_frame f;
    uint16_t code = 0;
    char err[256] = "";

    assert_int_equal(parse_all(&p, buf, n, &f, &code, err), -1);
    assert_int_equal(code, want);
    if (strstr(err, what) == NULL) {
        fail_msg("error '%s' does not say '%s'", err, what);
    }
    cfw_ws_parser_clear(&p);
}

static void test_protocol_errors_and_caps(void **state)
{
    unsigned char buf[4096];
    size_t n;
    char data[300];

    (void)state;
    memset(data, 'a', sizeof(data));
    n = server_frame(buf, 1, CFW_WS_OP_TEXT, "x", 1);
    buf[1] |= 0x80; /* masked by the server */
    expect_error(buf, n + 4, 0, 0, CFW_WS_CLOSE_PROTOCOL, "masked");
    n = server_frame(buf, 1, CFW_WS_OP_TEXT, "x", 1);
    buf[0] |= 0x40;
    expect_error(buf, n, 0, 0, CFW_WS_CLOSE_PROTOCOL, "reserved");
    n = server_frame(buf, 1, 0x3, "x", 1);
    expect_error(buf, n, 0, 0, CFW_WS_CLOSE_PROTOCOL, "opcode");
    n = server_frame(buf, 0, CFW_WS_OP_PING, "x", 1);
    expect_error(buf, n, 0, 0, CFW_WS_CLOSE_PROTOCOL, "fragmented control");
    n = server_frame(buf, 1, CFW_WS_OP_PONG, data, 126);
    expect_error(buf, n, 0, 0, CFW_WS_CLOSE_PROTOCOL, "control frame of 126");
    n = server_frame(buf, 1, CFW_WS_OP_CONT, "x", 1);
    expect_error(buf, n, 0, 0, CFW_WS_CLOSE_PROTOCOL, "continuation");
    n = server_frame(buf, 0, CFW_WS_OP_TEXT, "x", 1);
    n += server_frame(buf + n, 1, CFW_WS_OP_TEXT, "y", 1);
    expect_error(buf, n, 0, 0, CFW_WS_CLOSE_PROTOCOL, "before the fragmented");
    /* caps: one frame, and a message made of small frames */
    n = server_frame(buf, 1, CFW_WS_OP_TEXT, data, 300);
    expect_error(buf, 4, 299, 0, CFW_WS_CLOSE_TOO_BIG, "cap is 299");
    n = server_frame(buf, 0, CFW_WS_OP_TEXT, data, 100);
    n += server_frame(buf + n, 0, CFW_WS_OP_CONT, data, 100);
    n += server_frame(buf + n, 1, CFW_WS_OP_CONT, data, 100);
    expect_error(buf, n, 0, 250, CFW_WS_CLOSE_TOO_BIG, "over 250");
    /* a 64-bit length with its top bit set, and one over the frame cap */
    memcpy(buf, "\x81\x7f\x80\x00\x00\x00\x00\x00\x00\x01", 10);
    expect_error(buf, 10, 0, 0, CFW_WS_CLOSE_PROTOCOL, "top bit");
    memcpy(buf, "\x81\x7f\x00\x00\x00\x01\x00\x00\x00\x00", 10);
    expect_error(buf, 10, 0, 0, CFW_WS_CLOSE_TOO_BIG, "cap");
    /* UTF-8 */
    n = server_frame(buf, 1, CFW_WS_OP_TEXT, "\xc3\x28", 2);
    expect_error(buf, n, 0, 0, CFW_WS_CLOSE_BAD_DATA, "UTF-8");
    n = server_frame(buf, 0, CFW_WS_OP_TEXT, "\xe2\x82", 2); /* split across fragments: fine */
    n += server_frame(buf + n, 1, CFW_WS_OP_CONT, "\xac\xed\xa0\x80", 4); /* then a surrogate */
    expect_error(buf, n, 0, 0, CFW_WS_CLOSE_BAD_DATA, "UTF-8");
    /* close frames */
    n = server_frame(buf, 1, CFW_WS_OP_CLOSE, "\x03", 1);
    expect_error(buf, n, 0, 0, CFW_WS_CLOSE_PROTOCOL, "1 byte");
    n = server_frame(buf, 1, CFW_WS_OP_CLOSE, "\x03\xed", 2); /* 1005 may not be sent */
    expect_error(buf, n, 0, 0, CFW_WS_CLOSE_PROTOCOL, "1005");
}

static void test_close_frames(void **state)
{
    struct cfw_ws_parser p = {0};
    unsigned char buf[64];
    struct cfw_ws_frame f;
    uint16_t code;
    char err[256];
    size_t n;

    (void)state;
    n = server_frame(buf, 1, CFW_WS_OP_CLOSE, "\x03\xf3overloaded", 12);
    assert_int_equal(parse_all(&p, buf, n, &f, &code, err), 1);
    assert_int_equal(f.op, CFW_WS_OP_CLOSE);
    assert_int_equal(f.code, 1011);
    assert_int_equal(f.len, 10);
    assert_memory_equal(f.data, "overloaded", 10);
    n = server_frame(buf, 1, CFW_WS_OP_CLOSE, "", 0);
    assert_int_equal(parse_all(&p, buf, n, &f, &code, err), 1);
    assert_int_equal(f.code, CFW_WS_CLOSE_NO_STATUS);
    cfw_ws_parser_clear(&p);
}

static void test_encode_masks(void **state)
{
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    char payload[300];
    size_t sizes[] = {0, 3, 125, 126, 300};

    (void)state;
    memset(payload, 'q', sizeof(payload));
    for (size_t i = 0; i < 5; i++) {
        size_t len = sizes[i], h;
        cfw_buf_reset(&b);
        assert_int_equal(cfw_ws_frame_encode(&b, CFW_WS_OP_TEXT, payload, len, mask), 0);
        assert_int_equal((unsigned char)b.data[0], 0x81);
        assert_true(((unsigned char)b.data[1] & 0x80) != 0);
        h = len < 126 ? 2 : 4;
        assert_int_equal(b.len, h + 4 + len);
        assert_memory_equal(b.data + h, mask, 4);
        for (size_t k = 0; k < len; k++) {
            assert_int_equal((unsigned char)b.data[h + 4 + k] ^ mask[k & 3], 'q');
        }
    }
    cfw_buf_free(&b);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(cfw_utf8_valid("plain", 5, true));
    assert_true(cfw_utf8_valid("\xe2\x9c\x98 \xf0\x9f\x98\x80", 8, true));
    assert_false(cfw_utf8_valid("\xc0\xaf", 2, true));         /* overlong */
    assert_false(cfw_utf8_valid("\xf4\x90\x80\x80", 4, true)); /* > U+10FFFF */
    assert_false(cfw_utf8_valid("\xe2\x9c", 2, true));         /* cut */
    assert_false(cfw_utf8_valid("\xff", 1, true));
}

/* ---- the client against a scripted server on loopback ---- */

enum scenario {
    SC_OK,         /* 101 with trace-v1; then the test drives frames */
    SC_BAD_ACCEPT, /* a wrong Sec-WebSocket-Accept */
    SC_NO_PROTO,   /* no subprotocol in the answer */
    SC_FORBIDDEN,  /* 403 */
    SC_HUGE_HEAD,  /* 101 with 20 KiB of headers, in one write */
};

struct server {
    struct event_base *base;
    struct evconnlistener *lis;
    struct bufferevent *bev;
    enum scenario sc;
    bool answered;
    bool answer_pings;
    int pings;
    int pongs;
    char request[4096];
    struct cfw_buf client_text; /* text messages from the client, unmasked, '|' between */
    bool all_masked;
    int close_code; /* of the client's close frame, 0 none */
};

struct client {
    bool opened;
    int closed;
    int code;
    char why[512];
    char msgs[4][256];
    int nmsgs;
};

static void srv_send(struct server *s, int fin, int op, const char *payload, size_t len)
{
    unsigned char buf[512];
    size_t n = server_frame(buf, fin, op, payload, len);

    bufferevent_write(s->bev, buf, n);
}

/* Reads the client's (masked) frames. */
static void srv_frames(struct server *s, struct evbuffer *in)
{
    for (;;) {
        size_t len = evbuffer_get_length(in), h = 2, plen;
        unsigned char *d;
        unsigned char mask[4] = {0};
        if (len < 2) {
            return;
        }
        d = evbuffer_pullup(in, (ev_ssize_t)len);
        plen = d[1] & 0x7F;
        if (plen == 126) {
            h = 4;
            plen = len >= 4 ? ((size_t)d[2] << 8 | d[3]) : 0;
        }
        if ((d[1] & 0x80) == 0) {
            s->all_masked = false;
        } else {
            if (len < h + 4) {
                return;
            }
            memcpy(mask, d + h, 4);
            h += 4;
        }
        if (len < h + plen) {
            return;
        }
        for (size_t i = 0; i < plen; i++) {
            d[h + i] ^= mask[i & 3];
        }
        switch (d[0] & 0x0F) {
        case CFW_WS_OP_TEXT:
            cfw_buf_append(&s->client_text, d + h, plen);
            cfw_buf_putc(&s->client_text, '|');
            break;
        case CFW_WS_OP_PING:
            s->pings++;
            if (s->answer_pings) {
                srv_send(s, 1, CFW_WS_OP_PONG, (const char *)d + h, plen);
            }
            break;
        case CFW_WS_OP_PONG:
            s->pongs++;
            break;
        case CFW_WS_OP_CLOSE:
            s->close_code = plen >= 2 ? (d[h] << 8 | d[h + 1]) : 1005;
            break;
        }
        evbuffer_drain(in, h + plen);
    }
}

static void srv_read(struct bufferevent *bev, void *arg)
{
    struct server *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    if (!s->answered) {
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        char key[64] = "", accept[32], *k;
        if (end.pos < 0) {
            return;
        }
        evbuffer_remove(in, s->request, (size_t)end.pos + 4);
        s->request[end.pos + 4] = '\0';
        k = strcasestr(s->request, "Sec-WebSocket-Key: ");
        if (k != NULL) {
            sscanf(k + 19, "%63[^\r]", key);
        }
        cfw_ws_accept_key(key, accept);
        if (s->sc == SC_BAD_ACCEPT) {
            accept[0] = accept[0] == 'A' ? 'B' : 'A';
        }
        if (s->sc == SC_HUGE_HEAD) {
            char pad[1001];
            memset(pad, 'a', 1000);
            pad[1000] = '\0';
            evbuffer_add_printf(bufferevent_get_output(bev), "HTTP/1.1 101 Switching\r\n");
            for (int i = 0; i < 20; i++) {
                evbuffer_add_printf(bufferevent_get_output(bev), "X-Pad-%d: %s\r\n", i, pad);
            }
            evbuffer_add_printf(bufferevent_get_output(bev), "\r\n");
        } else if (s->sc == SC_FORBIDDEN) {
            evbuffer_add_printf(bufferevent_get_output(bev),
                                "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        } else {
            evbuffer_add_printf(bufferevent_get_output(bev),
                                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                                "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                                "%s\r\n",
                                accept,
                                s->sc == SC_NO_PROTO ? "" : "Sec-WebSocket-Protocol: trace-v1\r\n");
        }
        s->answered = true;
    }
    srv_frames(s, in);
}

static void srv_event(struct bufferevent *bev, short what, void *arg)
{
    struct server *s = arg;

    (void)what;
    bufferevent_free(bev);
    s->bev = NULL;
}

static void srv_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len,
                       void *arg)
{
    struct server *s = arg;

    (void)lis;
    (void)sa;
    (void)len;
    s->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(s->bev, srv_read, NULL, srv_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static int srv_start(struct server *s, struct event_base *base, enum scenario sc)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);

    memset(s, 0, sizeof(*s));
    cfw_buf_init(&s->client_text, CFW_BUF_MAX_BUILT);
    s->base = base;
    s->sc = sc;
    s->answer_pings = true;
    s->all_masked = true;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lis = evconnlistener_new_bind(base, srv_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                     8, (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(s->lis);
    getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&sin, &sl);
    return ntohs(sin.sin_port);
}

static void srv_stop(struct server *s)
{
    if (s->bev != NULL) {
        bufferevent_free(s->bev);
    }
    evconnlistener_free(s->lis);
    cfw_buf_free(&s->client_text);
}

static void cl_open(void *arg, struct cfw_ws *ws)
{
    struct client *c = arg;

    c->opened = true;
    cfw_ws_send_text(ws, "{\"debug\":false}", 15);
}

static void cl_message(void *arg, struct cfw_ws *ws, bool text, const char *data, size_t len)
{
    struct client *c = arg;

    (void)ws;
    assert_true(text);
    if (c->nmsgs < 4) {
        snprintf(c->msgs[c->nmsgs++], 256, "%.*s", (int)len, data);
    }
}

static void cl_closed(void *arg, struct cfw_ws *ws, int code, const char *why)
{
    struct client *c = arg;

    (void)ws;
    c->closed++;
    c->code = code;
    snprintf(c->why, sizeof(c->why), "%s", why);
}

/* Runs the loop until cond or a bound on loop turns. */
#define RUN_UNTIL(base, cond)                                                                      \
    do {                                                                                           \
        for (int i_ = 0; i_ < 4000 && !(cond); i_++) {                                             \
            struct timeval tv_ = {0, 2000};                                                        \
            event_base_loopexit(base, &tv_);                                                       \
            event_base_dispatch(base);                                                             \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

static struct cfw_ws *connect_to(struct event_base *base, int port, struct client *c,
                                 int64_t ping_ms)
{
    char url[128];
    struct cfw_ws_conf conf = {.url = url,
                               .protocol = "trace-v1",
                               .ping_interval_ms = ping_ms,
                               .user_agent = "cfwatchd-test"};
    struct cfw_ws_cbs cbs = {cl_open, cl_message, cl_closed, c};
    struct cfw_err err = {0};
    struct cfw_ws *ws;

    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/tail0001?x=1", port);
    ws = cfw_ws_connect(base, &conf, &cbs, &err);
    assert_non_null(ws);
    return ws;
}

static void test_client_session(void **state)
{
    struct event_base *base = event_base_new();
    struct server s;
    struct client c = {0};
    int port = srv_start(&s, base, SC_OK);
    struct cfw_ws *ws = connect_to(base, port, &c, 200);
    struct cfw_ws_stats st;

    (void)state;
    RUN_UNTIL(base, c.opened && s.client_text.len > 0);
    assert_non_null(strstr(s.request, "GET /tail0001?x=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(s.request, "Sec-WebSocket-Protocol: trace-v1\r\n"));
    assert_non_null(strstr(s.request, "Sec-WebSocket-Version: 13\r\n"));
    assert_non_null(strstr(s.request, "User-Agent: cfwatchd-test\r\n"));
    assert_string_equal(s.client_text.data, "{\"debug\":false}|");
    /* a message in three fragments with a ping between them: the ping is answered */
    srv_send(&s, 0, CFW_WS_OP_TEXT, "{\"a\":", 5);
    srv_send(&s, 1, CFW_WS_OP_PING, "p1", 2);
    srv_send(&s, 0, CFW_WS_OP_CONT, "[1,", 3);
    srv_send(&s, 1, CFW_WS_OP_CONT, "2]}", 3);
    RUN_UNTIL(base, c.nmsgs == 1 && s.pongs == 1);
    assert_string_equal(c.msgs[0], "{\"a\":[1,2]}");
    /* pings from the client every 200 ms, answered: the connection stays */
    RUN_UNTIL(base, s.pings >= 3);
    assert_int_equal(c.closed, 0);
    assert_true(s.all_masked);
    cfw_ws_get_stats(ws, &st);
    assert_true(st.pongs_in >= 2);
    assert_int_equal(st.messages_in, 1);
    /* the server closes with 1011: echoed, reported */
    srv_send(&s, 1, CFW_WS_OP_CLOSE,
             "\x03\xf3"
             "backend restart",
             17);
    RUN_UNTIL(base, c.closed == 1 && s.close_code != 0);
    assert_int_equal(c.code, 1011);
    assert_int_equal(s.close_code, 1011);
    assert_string_equal(c.why, "closed by the server with 1011: backend restart");
    cfw_ws_free(ws);
    srv_stop(&s);
    event_base_free(base);
}

static void test_client_missing_pong(void **state)
{
    struct event_base *base = event_base_new();
    struct server s;
    struct client c = {0};
    int port = srv_start(&s, base, SC_OK);
    struct cfw_ws *ws;

    (void)state;
    s.answer_pings = false;
    ws = connect_to(base, port, &c, 100);
    RUN_UNTIL(base, c.closed == 1);
    assert_int_equal(c.code, CFW_WS_CLOSE_ABNORMAL);
    assert_non_null(strstr(c.why, "no pong"));
    assert_int_equal(s.pings, 1);
    cfw_ws_free(ws);
    srv_stop(&s);
    event_base_free(base);
}

static void test_client_close_by_us(void **state)
{
    struct event_base *base = event_base_new();
    struct server s;
    struct client c = {0};
    int port = srv_start(&s, base, SC_OK);
    struct cfw_ws *ws = connect_to(base, port, &c, 0);

    (void)state;
    RUN_UNTIL(base, c.opened);
    cfw_ws_close(ws, CFW_WS_CLOSE_NORMAL, "bye");
    RUN_UNTIL(base, s.close_code == 1000);
    srv_send(&s, 1, CFW_WS_OP_CLOSE, "\x03\xe8", 2);
    RUN_UNTIL(base, c.closed == 1);
    assert_int_equal(c.code, 1000);
    cfw_ws_free(ws);
    srv_stop(&s);
    event_base_free(base);
}

static void handshake_fails(enum scenario sc, const char *what)
{
    struct event_base *base = event_base_new();
    struct server s;
    struct client c = {0};
    int port = srv_start(&s, base, sc);
    struct cfw_ws *ws = connect_to(base, port, &c, 0);

    RUN_UNTIL(base, c.closed == 1);
    assert_false(c.opened);
    if (strstr(c.why, what) == NULL) {
        fail_msg("'%s' does not say '%s'", c.why, what);
    }
    assert_null(strstr(c.why, "tail0001")); /* the URL's path is not told */
    cfw_ws_free(ws);
    srv_stop(&s);
    event_base_free(base);
}

static void test_client_handshake_checks(void **state)
{
    (void)state;
    handshake_fails(SC_BAD_ACCEPT, "Sec-WebSocket-Accept");
    handshake_fails(SC_NO_PROTO, "subprotocol trace-v1 not accepted");
    handshake_fails(SC_FORBIDDEN, "HTTP 403");
    handshake_fails(SC_HUGE_HEAD, "an answer head over 16384 bytes");
}

static void test_client_refused_and_bad_urls(void **state)
{
    struct event_base *base = event_base_new();
    struct server s;
    struct client c = {0};
    int port = srv_start(&s, base, SC_OK);
    struct cfw_ws_conf conf = {.url = "http://127.0.0.1/"};
    struct cfw_ws_cbs cbs = {cl_open, cl_message, cl_closed, &c};
    struct cfw_err err = {0};
    struct cfw_ws *ws;

    (void)state;
    assert_null(cfw_ws_connect(base, &conf, &cbs, &err));
    conf.url = "ws://127.0.0.1:99999/";
    assert_null(cfw_ws_connect(base, &conf, &cbs, &err));
    conf.url = "ws://user:pw@127.0.0.1/";
    assert_null(cfw_ws_connect(base, &conf, &cbs, &err));
    /* nobody listens any more: a connection error, reported once from the loop */
    srv_stop(&s);
    ws = connect_to(base, port, &c, 0);
    RUN_UNTIL(base, c.closed == 1);
    assert_int_equal(c.code, CFW_WS_CLOSE_ABNORMAL);
    cfw_ws_free(ws);
    /*
     * A connect that fails inside bufferevent's connect (an address needing no lookup, and
     * connect() refused at once: ENETUNREACH for the broadcast address) is told from the loop
     * too, after the caller has its handle.
     */
    memset(&c, 0, sizeof(c));
    conf.url = "ws://255.255.255.255:80/x";
    ws = cfw_ws_connect(base, &conf, &cbs, &err);
    assert_non_null(ws);
    assert_int_equal(c.closed, 0);
    RUN_UNTIL(base, c.closed == 1);
    assert_int_equal(c.code, CFW_WS_CLOSE_ABNORMAL);
    cfw_ws_free(ws);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_lengths_and_partial_input),
        cmocka_unit_test(test_fragments_with_ping_between),
        cmocka_unit_test(test_protocol_errors_and_caps),
        cmocka_unit_test(test_close_frames),
        cmocka_unit_test(test_encode_masks),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_client_session),
        cmocka_unit_test(test_client_missing_pong),
        cmocka_unit_test(test_client_close_by_us),
        cmocka_unit_test(test_client_handshake_checks),
        cmocka_unit_test(test_client_refused_and_bad_urls),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
