/*
 * Unit tests for the listener (listener*.c): the head parser and the chunked decoder (tables),
 * and the server over real loopback sockets with short deadlines: keep-alive, HEAD, pipelining,
 * partial heads and the head deadline, keep-alive idle timeout, the connection cap (eviction,
 * refusal), the check hook before any body byte, 100-continue, chunked bodies, body deadlines,
 * lingering close, EMFILE (pause, one log line) and libevent's messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "cfwatchd/common.h"
#include "cfwatchd/listener.h"
#include "cfwatchd/log.h"
#include "test_util.h"

/* ---- the head parser ---- */

static int parse(const char *s, struct cfw_listener_head *h)
{
    return cfw_listener_parse_head(s, strlen(s), NULL, h);
}

static void test_parse_complete(void **state)
{
    struct cfw_listener_head h;
    const char *req = "\r\nPOST /logpush/lp?a=1&b HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length:  12 \r\nX-Empty:\r\nexpect: 100-Continue\r\n\r\nbody";

    (void)state;
    assert_int_equal(parse(req, &h), CFW_LISTENER_HEAD_COMPLETE);
    assert_int_equal(h.method, CFW_LISTENER_POST);
    assert_int_equal(h.path_len, strlen("/logpush/lp"));
    assert_memory_equal(h.path, "/logpush/lp", h.path_len);
    assert_int_equal(h.query_len, 5);
    assert_memory_equal(h.query, "a=1&b", 5);
    assert_int_equal(h.minor, 1);
    assert_int_equal(h.nheaders, 4);
    assert_int_equal(h.content_length, 12);
    assert_true(h.keep_alive);
    assert_true(h.expect_continue);
    assert_false(h.chunked);
    assert_int_equal(h.headers[1].value_len, 2);
    assert_memory_equal(h.headers[1].value, "12", 2);
    assert_int_equal(h.headers[2].value_len, 0);
    assert_int_equal(h.head_len, strlen(req) - 4);

    /* every prefix of a complete head needs more bytes */
    for (size_t n = 0; n < h.head_len; n++) {
        struct cfw_listener_head p;
        assert_int_equal(cfw_listener_parse_head(req, n, NULL, &p), CFW_LISTENER_HEAD_PARTIAL);
    }

    /* bare LF line ends, HTTP/1.0 without Host, absolute-form, Connection: close */
    assert_int_equal(parse("GET http://example.com HTTP/1.0\n\n", &h), CFW_LISTENER_HEAD_COMPLETE);
    assert_int_equal(h.path_len, 1);
    assert_memory_equal(h.path, "/", 1);
    assert_false(h.keep_alive);
    assert_int_equal(parse("HEAD https://h:1/x/y?q HTTP/1.1\r\nHost: h\r\n"
                           "Connection: foo, Close\r\n\r\n",
                           &h),
                     CFW_LISTENER_HEAD_COMPLETE);
    assert_int_equal(h.method, CFW_LISTENER_HEAD);
    assert_memory_equal(h.path, "/x/y", 4);
    assert_false(h.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n", &h),
                     CFW_LISTENER_HEAD_COMPLETE);
    assert_true(h.chunked);
    assert_int_equal(h.content_length, -1);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                           "Content-Length: 5\r\n\r\n",
                           &h),
                     CFW_LISTENER_HEAD_COMPLETE);
    assert_int_equal(h.content_length, 5);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *text;
        int status; /* 0: partial */
    } cases[] = {
        {"GET / HTTP/1.1\r\n", 0},
        {"GE", 0},
        {"\x01\x02\xff garbage\r\n\r\n", 400},
        {"\x16\x03\x01", 400}, /* a TLS hello: refused before the line ends */
        {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
        {"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},                       /* no Host */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400}, /* two */
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\rX\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 413},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         400},
        {"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417},
        {"PUT / HTTP/1.1\r\nHost: x\r\n\r\n", 501},
        {"get / HTTP/1.1\r\nHost: x\r\n\r\n", 501},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTX/1.1\r\n", 400},
        {"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n", 400}, /* too many empty lines first */
        {"\rX", 400},
    };
    struct cfw_listener_head h;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = cfw_listener_parse_head(cases[i].text, strlen(cases[i].text), NULL, &h);
        if (cases[i].status == 0) {
            assert_int_equal(rc, CFW_LISTENER_HEAD_PARTIAL);
        } else {
            if (rc != CFW_LISTENER_HEAD_ERROR || h.status != cases[i].status) {
                fail_msg("case %zu: rc %d status %d, want %d", i, rc, h.status, cases[i].status);
            }
        }
    }
    /* NUL bytes are never part of a head */
    assert_int_equal(cfw_listener_parse_head("\0\1\2 garbage\r\n\r\n", 16, NULL, &h),
                     CFW_LISTENER_HEAD_ERROR);
    assert_int_equal(h.status, 400);
    assert_int_equal(cfw_listener_parse_head("GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n", 29, NULL, &h),
                     CFW_LISTENER_HEAD_ERROR);
    assert_int_equal(h.status, 400);
}

static void test_parse_caps(void **state)
{
    struct cfw_listener_limits lim = {256, 64, 4};
    struct cfw_listener_head h;
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    (void)state;
    /* a request line over max_line: 414, even before it ends */
    cfw_buf_puts(&b, "GET /");
    for (int i = 0; i < 70; i++) {
        cfw_buf_putc(&b, 'a');
    }
    assert_int_equal(cfw_listener_parse_head(b.data, b.len, &lim, &h), CFW_LISTENER_HEAD_ERROR);
    assert_int_equal(h.status, 414);
    cfw_buf_puts(&b, " HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cfw_listener_parse_head(b.data, b.len, &lim, &h), CFW_LISTENER_HEAD_ERROR);
    assert_int_equal(h.status, 414);
    /* one header line too many: 431 */
    cfw_buf_reset(&b);
    cfw_buf_puts(&b, "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n");
    assert_int_equal(cfw_listener_parse_head(b.data, b.len, &lim, &h), CFW_LISTENER_HEAD_PARTIAL);
    cfw_buf_puts(&b, "D: 4\r\n");
    assert_int_equal(cfw_listener_parse_head(b.data, b.len, &lim, &h), CFW_LISTENER_HEAD_ERROR);
    assert_int_equal(h.status, 431);
    /* a head over max_head, complete or not: 431 */
    cfw_buf_reset(&b);
    cfw_buf_puts(&b, "GET / HTTP/1.1\r\nHost: x\r\nX: ");
    for (int i = 0; i < 300; i++) {
        cfw_buf_putc(&b, 'v');
    }
    assert_int_equal(cfw_listener_parse_head(b.data, b.len, &lim, &h), CFW_LISTENER_HEAD_ERROR);
    assert_int_equal(h.status, 431);
    cfw_buf_puts(&b, "\r\n\r\n");
    assert_int_equal(cfw_listener_parse_head(b.data, b.len, &lim, &h), CFW_LISTENER_HEAD_ERROR);
    assert_int_equal(h.status, 431);
    cfw_buf_free(&b);
}

/* ---- the chunked decoder ---- */

/* Decodes s fed in pieces of step bytes; returns the last result, the body in out. */
static int dechunk_all(const char *s, size_t len, size_t step, size_t cap, struct cfw_buf *out,
                       size_t *consumed, int *status)
{
    struct cfw_listener_chunked st = {0};
    char *buf = malloc(len + 1);
    size_t pos = 0;
    int rc = 0;

    cfw_buf_reset(out);
    while (pos < len) {
        size_t n = len - pos < step ? len - pos : step;
        size_t used = 0, produced = 0;
        rc = cfw_listener_dechunk(&st, s + pos, n, buf, cap - out->len, &used, &produced);
        cfw_buf_append(out, buf, produced);
        pos += used;
        if (rc != 0) {
            break;
        }
        assert_int_equal(used, n);
    }
    free(buf);
    *consumed = pos;
    *status = st.status;
    return rc;
}

static void test_dechunk(void **state)
{
    const char *ok = "5;ext=1\r\nhello\r\n1\r\n \r\n00006 \r\nworld!\n0\r\nTrailer: x\r\n\r\nNEXT";
    struct cfw_buf out = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    size_t used;
    int status;

    (void)state;
    for (size_t step = 1; step <= strlen(ok); step++) {
        assert_int_equal(dechunk_all(ok, strlen(ok), step, 1000, &out, &used, &status), 1);
        assert_string_equal(out.data, "hello world!");
        assert_int_equal(used, strlen(ok) - 4); /* NEXT belongs to the next request */
    }
    /* over the cap: 413 as soon as the size line says so */
    assert_int_equal(dechunk_all("10\r\n", 4, 4, 15, &out, &used, &status), -1);
    assert_int_equal(status, 413);
    assert_int_equal(dechunk_all("8\r\naaaaaaaa\r\n8\r\n", 16, 16, 15, &out, &used, &status), -1);
    assert_int_equal(status, 413);
    assert_int_equal(dechunk_all("ffffffffffffffffff\r\n", 20, 20, 15, &out, &used, &status), -1);
    assert_int_equal(status, 413);
    /* malformed */
    assert_int_equal(dechunk_all("x\r\n", 3, 3, 100, &out, &used, &status), -1);
    assert_int_equal(status, 400);
    assert_int_equal(dechunk_all("\r\n", 2, 2, 100, &out, &used, &status), -1);
    assert_int_equal(status, 400);
    assert_int_equal(dechunk_all("2\r\nabX", 6, 6, 100, &out, &used, &status), -1);
    assert_int_equal(status, 400);
    assert_int_equal(dechunk_all("2\rX", 3, 3, 100, &out, &used, &status), -1);
    assert_int_equal(status, 400);
    assert_int_equal(dechunk_all("0\r\n\rX", 5, 5, 100, &out, &used, &status), -1);
    assert_int_equal(status, 400);
    /* a size line with endless extensions */
    {
        struct cfw_buf big = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
        cfw_buf_puts(&big, "1;");
        for (int i = 0; i < 2000; i++) {
            cfw_buf_putc(&big, 'e');
        }
        assert_int_equal(dechunk_all(big.data, big.len, 7, 100, &out, &used, &status), -1);
        assert_int_equal(status, 400);
        cfw_buf_free(&big);
    }
    cfw_buf_free(&out);
}

/* ---- the server ---- */

struct env {
    struct event_base *base;
    struct cfw_listener *l;
    int port;
    int handled;
    int checked;
    size_t check_max_body;
    char last[512];
};

static struct env E;

/* Echoes what it got: method, path, query, X-A and the body. */
static void echo(struct cfw_listener_req *req, const char *path, void *arg)
{
    struct env *e = arg;
    const char *q = cfw_listener_req_query(req);
    const char *xa = cfw_listener_req_header(req, "x-a");
    size_t len;
    const char *body = cfw_listener_req_body(req, &len);
    char out[512];
    int n;

    e->handled++;
    n = snprintf(out, sizeof(out), "m=%d path=%s q=%s xa=%s body=%.*s",
                 (int)cfw_listener_req_method(req), path, q != NULL ? q : "-",
                 xa != NULL ? xa : "-", (int)(len < 200 ? len : 200), body);
    snprintf(e->last, sizeof(e->last), "%s", out);
    cfw_listener_req_add_header(req, "X-Echo", "yes");
    cfw_listener_reply(req, 200, "text/plain", out, (size_t)n);
}

/* Takes the body (as the Logpush handler does) and answers its length. */
static void take(struct cfw_listener_req *req, const char *path, void *arg)
{
    struct env *e = arg;
    size_t len;
    char *body = cfw_listener_req_take_body(req, &len);
    char out[64];
    int n = snprintf(out, sizeof(out), "len=%zu", len);

    (void)path;
    e->handled++;
    assert_int_equal(body[len], '\0');
    free(body);
    cfw_listener_reply(req, 200, "text/plain", out, (size_t)n);
}

/* A token check on the head, as the Logpush route does. */
static int check(struct cfw_listener_req *req, const char *path, void *arg)
{
    struct env *e = arg;
    const char *tok = cfw_listener_req_header(req, "X-Token");

    (void)path;
    e->checked++;
    if (tok == NULL || strcmp(tok, "good") != 0) {
        cfw_listener_req_add_header(req, "WWW-Authenticate", "Bearer");
        cfw_listener_reply(req, 401, "text/plain", "no\n", 3);
        return -1;
    }
    if (e->check_max_body != 0) {
        cfw_listener_req_set_max_body(req, e->check_max_body);
    }
    return 0;
}

static void env_start(const struct cfw_listener_opts *opts)
{
    struct cfw_err err = {0};

    memset(&E, 0, sizeof(E));
    E.base = event_base_new();
    assert_non_null(E.base);
    E.l = cfw_listener_new(E.base, "127.0.0.1:0", opts, &err);
    if (E.l == NULL) {
        fail_msg("%s", err.msg);
    }
    E.port = cfw_listener_port(E.l);
    assert_true(E.port > 0);
    cfw_listener_route(E.l, "/echo", 0, NULL, echo, &E);
    cfw_listener_route(E.l, "/p/", 1, check, take, &E);
}

static void env_stop(void)
{
    cfw_listener_free(E.l);
    event_base_free(E.base);
    E.l = NULL;
    E.base = NULL;
}

static struct cfw_listener_opts fast_opts(void)
{
    struct cfw_listener_opts o = {0};

    o.head_timeout_ms = 400;
    o.idle_timeout_ms = 300;
    o.body_timeout_ms = 800;
    o.body_window_ms = 200;
    o.body_min_rate = 1000;
    o.write_timeout_ms = 2000;
    o.linger_ms = 500;
    o.accept_retry_min_ms = 50;
    o.accept_retry_max_ms = 200;
    return o;
}

/* Runs the server's loop for ms (at least one turn). */
static void pump(int ms)
{
    loop_run_for(E.base, ms);
}

struct client {
    int fd;
    struct cfw_buf in;
    bool eof;
};

struct resp {
    int status;
    char head[2048];
    char body[4096];
    size_t body_len;
};

static void cl_open(struct client *c)
{
    struct sockaddr_in sa;

    memset(c, 0, sizeof(*c));
    cfw_buf_init(&c->in, CFW_BUF_MAX_BUILT);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)E.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    /* the kernel completes the handshake from the backlog: no loop turn needed */
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
}

static void cl_close(struct client *c)
{
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    cfw_buf_free(&c->in);
}

/* Sends all of p, turning the loop while the socket is full; -1 when the server is gone. */
static int cl_send(struct client *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pump(1);
        } else {
            return -1;
        }
    }
    pump(5);
    return 0;
}

static void cl_puts(struct client *c, const char *s)
{
    assert_int_equal(cl_send(c, s, strlen(s)), 0);
}

/* Reads what is there; true when something new arrived or the end was seen. */
static bool cl_poll(struct client *c)
{
    char buf[65536];
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0);

    if (n > 0) {
        cfw_buf_append(&c->in, buf, (size_t)n);
        return true;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        c->eof = true;
        return true;
    }
    return false;
}

/* Takes one complete answer off c->in; 0, or -1 when there is none (yet). */
static int take_response(struct client *c, bool head, struct resp *r)
{
    char *end = c->in.data != NULL ? strstr(c->in.data, "\r\n\r\n") : NULL;
    const char *cl;
    size_t hl, bl = 0, total;

    if (end == NULL) {
        return -1;
    }
    hl = (size_t)(end - c->in.data) + 4;
    memset(r, 0, sizeof(*r));
    snprintf(r->head, sizeof(r->head), "%.*s", (int)hl, c->in.data);
    r->status = (int)strtol(c->in.data + 9, NULL, 10);
    cl = strstr(r->head, "Content-Length: ");
    if (cl != NULL && !head && r->status != 100) {
        bl = (size_t)strtoul(cl + 16, NULL, 10);
    }
    total = hl + bl;
    if (c->in.len < total) {
        return -1;
    }
    snprintf(r->body, sizeof(r->body), "%.*s", (int)bl, c->in.data + hl);
    r->body_len = bl;
    memmove(c->in.data, c->in.data + total, c->in.len - total + 1);
    c->in.len -= total;
    return 0;
}

/* Waits up to ms for one answer; 0, or -1 (end of file or time out first). */
static int cl_response(struct client *c, bool head, int ms, struct resp *r)
{
    int64_t end = cfw_now_mono_ms() + ms;

    while (cfw_now_mono_ms() < end) {
        if (take_response(c, head, r) == 0) {
            return 0;
        }
        if (c->eof) {
            return -1;
        }
        pump(1);
        cl_poll(c);
    }
    return take_response(c, head, r);
}

/* Sends req on c and asserts that the answer (read within 2 s) has status. */
static void expect_status(struct client *c, const char *req, int status, struct resp *r)
{
    cl_puts(c, req);
    assert_int_equal(cl_response(c, false, 2000, r), 0);
    assert_int_equal(r->status, status);
}

/* Sends data on a new connection and asserts that the answer has status. */
static void expect_status_raw(const char *data, size_t len, int status)
{
    struct client c;
    struct resp r;

    cl_open(&c);
    assert_int_equal(cl_send(&c, data, len), 0);
    assert_int_equal(cl_response(&c, false, 2000, &r), 0);
    assert_int_equal(r.status, status);
    cl_close(&c);
}

/* Waits up to ms for the server to close; true when it did. */
static bool cl_wait_eof(struct client *c, int ms)
{
    int64_t end = cfw_now_mono_ms() + ms;

    while (!c->eof && cfw_now_mono_ms() < end) {
        pump(1);
        while (!c->eof && cl_poll(c)) {
        }
    }
    return c->eof;
}

static void test_keepalive_head_pipelining(void **state)
{
    struct cfw_listener_opts o = fast_opts();
    struct client c;
    struct resp r;

    (void)state;
    env_start(&o);
    cl_open(&c);
    expect_status(&c, "GET /echo?x=1 HTTP/1.1\r\nHost: h\r\nX-A: va\r\n\r\n", 200, &r);
    assert_string_equal(r.body, "m=1 path=/echo q=x=1 xa=va body=");
    assert_non_null(strstr(r.head, "Content-Type: text/plain\r\n"));
    assert_non_null(strstr(r.head, "Cache-Control: no-store\r\n"));
    assert_non_null(strstr(r.head, "X-Echo: yes\r\n"));
    assert_null(strstr(r.head, "Connection: close"));
    /* the same connection: HEAD (no body, same length), then two pipelined requests */
    cl_puts(&c, "HEAD /echo HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(cl_response(&c, true, 2000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "Content-Length: 29\r\n")); /* "m=2 path=/echo ... body=" */
    assert_int_equal(c.in.len, 0);
    cl_puts(&c, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                "GET /nope HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(cl_response(&c, false, 2000, &r), 0);
    assert_string_equal(r.body, "m=3 path=/echo q=- xa=- body=abc");
    assert_int_equal(cl_response(&c, false, 2000, &r), 0);
    assert_int_equal(r.status, 404);
    assert_false(c.eof);
    /* Connection: close is honoured */
    cl_puts(&c, "GET /echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    assert_int_equal(cl_response(&c, false, 2000, &r), 0);
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(cl_wait_eof(&c, 2000));
    cl_close(&c);
    /* HTTP/1.0: one answer, then close */
    cl_open(&c);
    expect_status(&c, "GET /echo HTTP/1.0\r\n\r\n", 200, &r);
    assert_true(cl_wait_eof(&c, 2000));
    cl_close(&c);
    /* an unknown method: 501 and close */
    cl_open(&c);
    expect_status(&c, "PUT /echo HTTP/1.1\r\nHost: h\r\n\r\n", 501, &r);
    assert_true(cl_wait_eof(&c, 2000));
    cl_close(&c);
    assert_int_equal(E.handled, 5);
    assert_int_equal(cfw_listener_stats(E.l)->requests, 6);
    assert_int_equal(cfw_listener_stats(E.l)->bad_requests, 1);
    env_stop();
}

static void test_head_deadline_and_idle_timeout(void **state)
{
    struct cfw_listener_opts o = fast_opts();
    struct client quiet, slow, ka;
    struct resp r;
    int64_t t0;
    bool closed = false;

    (void)state;
    env_start(&o);
    cl_open(&quiet);
    cl_open(&slow);
    cl_open(&ka);
    cl_puts(&slow, "GET /echo HTTP/1.1\r\nHost: h\r\nX-Slow: ");
    cl_puts(&ka, "GET /echo HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(cl_response(&ka, false, 2000, &r), 0);
    /* one more header byte every 50 ms does not push the 400 ms deadline back */
    t0 = cfw_now_mono_ms();
    while (cfw_now_mono_ms() - t0 < 3 * 400 && !closed) {
        if (cl_send(&slow, "a", 1) != 0) {
            break;
        }
        pump(50);
        while (cl_poll(&slow) && !slow.eof) {
        }
        closed = slow.eof;
    }
    assert_true(cl_wait_eof(&slow, 2000));
    assert_int_equal(take_response(&slow, false, &r), 0);
    assert_int_equal(r.status, 408);
    /* nothing sent: closed without an answer; an idle keep-alive connection: closed */
    assert_true(cl_wait_eof(&quiet, 2000));
    assert_int_equal(quiet.in.len, 0);
    assert_true(cl_wait_eof(&ka, 2000));
    assert_int_equal(ka.in.len, 0);
    assert_int_equal(cfw_listener_stats(E.l)->timeouts, 2);
    cl_close(&quiet);
    cl_close(&slow);
    cl_close(&ka);
    pump(20);
    assert_int_equal(cfw_listener_stats(E.l)->connections, 0);
    env_stop();
}

static void test_cap_evicts_least_progress(void **state)
{
    struct cfw_listener_opts o = fast_opts();
    struct client held[4], good, busy[2], late;
    struct resp r;

    (void)state;
    o.max_conns = 4;
    o.head_timeout_ms = 5000;
    env_start(&o);
    assert_int_equal(cfw_listener_max_conns(E.l), 4);
    for (int i = 0; i < 4; i++) {
        cl_open(&held[i]);
        cl_puts(&held[i], "GET /echo HTTP/1.1\r\nHost: h\r\n");
        pump(10);
    }
    assert_int_equal(cfw_listener_stats(E.l)->connections, 4);
    /* a fifth, well-behaved client is served; the oldest unfinished head made room */
    cl_open(&good);
    expect_status(&good, "GET /echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 200, &r);
    assert_true(cl_wait_eof(&held[0], 2000));
    assert_int_equal(take_response(&held[0], false, &r), 0);
    assert_int_equal(r.status, 503);
    cl_poll(&held[1]);
    assert_false(held[1].eof);
    assert_int_equal(cfw_listener_stats(E.l)->evicted, 1);
    cl_close(&good);
    for (int i = 0; i < 4; i++) {
        cl_close(&held[i]);
    }
    pump(50);
    assert_int_equal(cfw_listener_stats(E.l)->connections, 0);

    /* connections receiving bodies are never evicted: at the cap, a new one is refused */
    o.max_conns = 2;
    env_stop();
    env_start(&o);
    for (int i = 0; i < 2; i++) {
        cl_open(&busy[i]);
        cl_puts(&busy[i], "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345");
    }
    cl_open(&late);
    assert_true(cl_wait_eof(&late, 2000));
    cl_close(&late);
    assert_int_equal(cfw_listener_stats(E.l)->refused, 1);
    /* once one is answered and idle, it can be evicted: a new connection gets in */
    expect_status(&busy[0], "67890", 200, &r);
    cl_open(&late);
    expect_status(&late, "GET /echo HTTP/1.1\r\nHost: h\r\n\r\n", 200, &r);
    assert_true(cl_wait_eof(&busy[0], 2000));
    assert_false(busy[1].eof);
    cl_close(&late);
    cl_close(&busy[0]);
    cl_close(&busy[1]);
    env_stop();
}

static void test_check_runs_before_the_body(void **state)
{
    struct cfw_listener_opts o = fast_opts();
    struct client c;
    struct resp r;

    (void)state;
    o.max_body = 100;
    env_start(&o);
    /* refused on the head alone: the 1 MB body is never sent, and the answer comes anyway */
    cl_open(&c);
    expect_status(&c, "POST /p/x HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000\r\n\r\n", 401, &r);
    assert_non_null(strstr(r.head, "WWW-Authenticate: Bearer\r\n"));
    assert_non_null(strstr(r.head, "Connection: close\r\n"));
    assert_true(cl_wait_eof(&c, 2000));
    cl_close(&c);
    assert_int_equal(E.handled, 0);
    /* with Expect: 100-continue, a refusal comes instead of the 100 */
    cl_open(&c);
    expect_status(
        &c, "POST /p/x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        401, &r);
    cl_close(&c);
    /* accepted: a 100 first, then the body, then the answer */
    cl_open(&c);
    expect_status(&c,
                  "POST /p/x HTTP/1.1\r\nHost: h\r\nX-Token: good\r\nContent-Length: 5\r\n"
                  "Expect: 100-continue\r\n\r\n",
                  100, &r);
    expect_status(&c, "hello", 200, &r);
    assert_string_equal(r.body, "len=5");
    /* over the route's cap (100): 413 before the body */
    expect_status(&c,
                  "POST /p/x HTTP/1.1\r\nHost: h\r\nX-Token: good\r\nContent-Length: 101\r\n\r\n",
                  413, &r);
    assert_true(cl_wait_eof(&c, 2000));
    cl_close(&c);
    /* a check may raise the cap for its request */
    E.check_max_body = 5000;
    cl_open(&c);
    cl_puts(&c, "POST /p/x HTTP/1.1\r\nHost: h\r\nX-Token: good\r\nContent-Length: 4000\r\n\r\n");
    {
        char body[4000];
        memset(body, 'z', sizeof(body));
        assert_int_equal(cl_send(&c, body, sizeof(body)), 0);
    }
    assert_int_equal(cl_response(&c, false, 2000, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "len=4000");
    cl_close(&c);
    assert_int_equal(E.checked, 5);
    assert_int_equal(E.handled, 2);
    env_stop();
}

static void test_refused_body_lingers(void **state)
{
    struct cfw_listener_opts o = fast_opts();
    size_t n = 4u * 1024u * 1024u;
    char *body = malloc(n);
    struct client c;
    struct resp r;

    (void)state;
    o.linger_ms = 3000;
    env_start(&o);
    memset(body, 'b', n);
    /* the client keeps sending 4 MiB after the 401: it is read and dropped, not reset */
    cl_open(&c);
    cl_puts(&c, "POST /p/x HTTP/1.1\r\nHost: h\r\nContent-Length: 4194304\r\n\r\n");
    assert_int_equal(cl_send(&c, body, n), 0);
    assert_int_equal(cl_response(&c, false, 2000, &r), 0);
    assert_int_equal(r.status, 401);
    assert_true(cl_wait_eof(&c, 2000));
    cl_close(&c);
    free(body);
    env_stop();
}

static void test_chunked_bodies(void **state)
{
    struct cfw_listener_opts o = fast_opts();
    struct client c;
    struct resp r;

    (void)state;
    o.max_body = 20;
    env_start(&o);
    cl_open(&c);
    cl_puts(&c, "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki");
    cl_puts(&c, "\r\n5;x=y\r\npedia\r\n0\r\nT: 1\r\n\r\nGET /echo HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(cl_response(&c, false, 2000, &r), 0);
    assert_string_equal(r.body, "m=3 path=/echo q=- xa=- body=wikipedia");
    assert_int_equal(cl_response(&c, false, 2000, &r), 0);
    assert_string_equal(r.body, "m=1 path=/echo q=- xa=- body=");
    /* over the cap of 20 decoded bytes: 413 */
    expect_status(&c,
                  "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "10\r\n0123456789abcdef\r\n10\r\n",
                  413, &r);
    assert_true(cl_wait_eof(&c, 2000));
    cl_close(&c);
    /* malformed: 400 */
    cl_open(&c);
    expect_status(&c, "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                  400, &r);
    cl_close(&c);
    /* another transfer coding: 501 */
    cl_open(&c);
    expect_status(&c, "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 501, &r);
    cl_close(&c);
    assert_int_equal(cfw_listener_stats(E.l)->too_large, 1);
    env_stop();
}

static void test_body_deadline_and_rate(void **state)
{
    struct cfw_listener_opts o = fast_opts();
    struct client stall, trickle;
    struct resp r;

    (void)state;
    env_start(&o);
    cl_open(&stall);
    cl_open(&trickle);
    cl_puts(&stall, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12");
    cl_puts(&trickle, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n");
    /* 10 bytes every 100 ms is 100 B/s, under the 1000 B/s floor */
    for (int i = 0; i < 20 && !trickle.eof; i++) {
        if (cl_send(&trickle, "0123456789", 10) != 0) {
            break;
        }
        pump(100);
        cl_poll(&trickle);
    }
    assert_int_equal(cl_response(&trickle, false, 2000, &r), 0);
    assert_int_equal(r.status, 408);
    assert_int_equal(cl_response(&stall, false, 2000, &r), 0);
    assert_int_equal(r.status, 408);
    assert_int_equal(cfw_listener_stats(E.l)->timeouts, 2);
    assert_int_equal(E.handled, 0);
    cl_close(&stall);
    cl_close(&trickle);
    env_stop();
}

static void test_oversized_heads(void **state)
{
    struct cfw_listener_opts o = fast_opts();
    struct cfw_buf big = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct client c;
    struct resp r;

    (void)state;
    env_start(&o);
    cfw_buf_puts(&big, "GET /echo HTTP/1.1\r\nHost: h\r\nX-Big: ");
    buf_put_repeat(&big, "a", 20000);
    cfw_buf_puts(&big, "\r\n\r\n");
    expect_status_raw(big.data, big.len, 431);
    cfw_buf_reset(&big);
    cfw_buf_puts(&big, "GET /");
    buf_put_repeat(&big, "a", 10000);
    expect_status_raw(big.data, big.len, 414);
    cfw_buf_reset(&big);
    cfw_buf_puts(&big, "GET /echo HTTP/1.1\r\nHost: h\r\n");
    buf_put_repeat(&big, "X: 1\r\n", 200);
    expect_status_raw(big.data, big.len, 431);
    cl_open(&c);
    expect_status(&c, "\x16\x03\x01\x02\x00\x01", 400, &r);
    cl_close(&c);
    assert_int_equal(cfw_listener_stats(E.l)->too_large, 3);
    cfw_buf_free(&big);
    env_stop();
}

/* Runs fn with stderr sent to a file; returns what was written (caller frees). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/cfw-listener-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(2);
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    char buf[4096];
    ssize_t n;

    assert_true(fd >= 0);
    fflush(stderr);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        cfw_buf_append(&b, buf, (size_t)n);
    }
    close(fd);
    unlink(path);
    return cfw_buf_take(&b);
}

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;

    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static struct client emfile_clients[8];

/*
 * The process's descriptor limit is lowered to what is open plus two: the listener accepts two
 * connections, then accept() fails with EMFILE while six more wait in the backlog.
 */
static void emfile_run(void)
{
    struct rlimit saved, low;
    int probe = dup(0);
    struct resp r;

    assert_true(probe >= 0);
    close(probe);
    for (int i = 0; i < 8; i++) {
        cl_open(&emfile_clients[i]);
    }
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    /* the lowest free descriptor plus what the eight clients took, plus two for the listener */
    low.rlim_cur = (rlim_t)probe + 8 + 2;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    pump(1000);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    /* a failed accept() evicts an idle connection and waits: a few tries, not a spin */
    assert_true(cfw_listener_stats(E.l)->accept_errors >= 1);
    assert_true(cfw_listener_stats(E.l)->accept_errors < 50);
    assert_true(cfw_listener_stats(E.l)->evicted >= 1);
    /* with descriptors back, the waiting clients are served */
    cl_puts(&emfile_clients[7], "GET /echo HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(cl_response(&emfile_clients[7], false, 3000, &r), 0);
    assert_int_equal(r.status, 200);
    for (int i = 0; i < 8; i++) {
        cl_close(&emfile_clients[i]);
    }
}

static void test_emfile_pauses_and_logs_once(void **state)
{
    struct cfw_listener_opts o = fast_opts();
    char *log;

    (void)state;
    o.head_timeout_ms = 10000;
    env_start(&o);
    log = capture_stderr(emfile_run);
    assert_int_equal(count(log, "accept() failed"), 1);
    assert_non_null(strstr(log, "Too many open files"));
    free(log);
    env_stop();
}

static void libevent_warnings(void)
{
    for (int i = 0; i < 30; i++) {
        event_base_free(NULL); /* libevent warns: no base to free */
    }
}

static void test_libevent_messages_are_rate_limited(void **state)
{
    struct cfw_listener_opts o = fast_opts();
    char *log;

    (void)state;
    env_start(&o); /* installs the log callback */
    log = capture_stderr(libevent_warnings);
    assert_true(count(log, "libevent: ") >= 1);
    assert_true(count(log, "libevent: ") <= CFW_LISTENER_LIBEVENT_LOG_MAX);
    assert_null(strstr(log, "[warn]"));
    free(log);
    env_stop();
}

static void test_bind_errors(void **state)
{
    struct event_base *base = event_base_new();
    struct cfw_err err = {0};
    struct cfw_listener *l;

    (void)state;
    assert_null(cfw_listener_new(base, "nocolon", NULL, &err));
    assert_non_null(strstr(err.msg, "host:port"));
    assert_null(cfw_listener_new(base, "127.0.0.1:99999", NULL, &err));
    l = cfw_listener_new(base, "[::1]:0", NULL, &err);
    if (l != NULL) { /* IPv6 may be off in a container */
        assert_true(cfw_listener_port(l) > 0);
        assert_true(cfw_listener_max_conns(l) >= 16);
    }
    cfw_listener_free(l);
    cfw_listener_free(NULL);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_complete),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_caps),
        cmocka_unit_test(test_dechunk),
        cmocka_unit_test(test_keepalive_head_pipelining),
        cmocka_unit_test(test_head_deadline_and_idle_timeout),
        cmocka_unit_test(test_cap_evicts_least_progress),
        cmocka_unit_test(test_check_runs_before_the_body),
        cmocka_unit_test(test_refused_body_lingers),
        cmocka_unit_test(test_chunked_bodies),
        cmocka_unit_test(test_body_deadline_and_rate),
        cmocka_unit_test(test_oversized_heads),
        cmocka_unit_test(test_emfile_pauses_and_logs_once),
        cmocka_unit_test(test_libevent_messages_are_rate_limited),
        cmocka_unit_test(test_bind_errors),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
