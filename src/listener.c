/*
 * The daemon's HTTP/1.1 listener: accept loop, per-connection state machine (head, body, answer,
 * keep-alive, lingering close), the head parser and the chunked decoder. See listener.h for the
 * limits and why they are what they are.
 */
#include "cfwatchd/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cfwatchd/log.h"

/* Empty lines tolerated before a request line (RFC 9112 2.2 asks for at least one). */
#define LEADING_EMPTY_MAX 4
/* Bytes read per call (the head is read in pieces of at most this). */
#define READ_CHUNK (16u * 1024u)
/* Bytes read per call into a Content-Length body. */
#define BODY_READ_CHUNK (64u * 1024u)
/* Connections accepted per callback, so that accepted ones are served between bursts. */
#define ACCEPT_BUDGET 64u
/* Bytes discarded per callback while lingering. */
#define LINGER_BUDGET (64u * 1024u)
/* Fewest connections allowed however low RLIMIT_NOFILE is. */
#define MIN_CONNS 16u

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

/* ---- the server ---- */

enum conn_state { ST_HEAD, ST_IDLE, ST_BODY, ST_WRITE, ST_LINGER };

/* Eviction classes, in the order they are evicted; BUSY never is. */
enum { Q_LINGER, Q_IDLE, Q_HEAD, Q_BUSY, Q_N };

/* What a step of the connection's state machine left to do. */
enum step { STEP_WAIT, STEP_AGAIN, STEP_GONE };

struct bytes {
    char *p;
    size_t len;
    size_t cap;
};

struct route {
    char *path;
    int prefix;
    cfw_listener_check check;
    cfw_listener_handler h;
    void *arg;
};

struct conn {
    TAILQ_ENTRY(conn) link;
    struct cfw_listener *l;
    int fd;
    enum conn_state state;
    int queue;
    struct event *ev_read, *ev_write, *ev_timer;
    bool reading, writing;
    struct bytes in;  /* read and not consumed yet */
    size_t scan;      /* head: bytes of in searched for line ends */
    size_t nlines;    /* head: line ends seen */
    int64_t deadline; /* of the current state */
    int64_t window_start;
    size_t window_bytes;
    struct cfw_buf out;
    size_t out_pos;
    bool close_after;
    struct cfw_listener_req *req;
};

TAILQ_HEAD(conn_list, conn);

struct cfw_listener_req {
    struct conn *c;
    const struct route *route;
    char *raw; /* a copy of the head, its strings NUL-terminated in place */
    struct cfw_listener_head head;
    const char *path;
    const char *query;
    size_t max_body;
    char *body;
    size_t body_len;
    size_t body_cap; /* counted in the listener's body_bytes */
    bool body_done;
    struct cfw_listener_chunked ch;
    struct cfw_buf extra; /* header lines for the answer */
    bool replied;
};

struct cfw_listener {
    struct event_base *base;
    int fd;
    struct event *ev_accept;
    struct event *ev_retry;
    bool accepting;
    bool paused_full;
    unsigned retry_ms;
    struct route routes[CFW_LISTENER_MAX_ROUTES];
    size_t nroutes;
    int port;
    struct cfw_listener_opts o;
    struct cfw_listener_limits lim;
    size_t max_conns;
    size_t nconns;
    struct conn_list q[Q_N];
    size_t body_bytes;
    struct cfw_listener_stats stats;
    bool logged;
    int64_t log_ms;
    uint64_t log_failures;
};

static enum step conn_process(struct conn *c);
static void accept_resume(struct cfw_listener *l);

static void bytes_reserve(struct bytes *b, size_t extra)
{
    size_t cap = b->cap != 0 ? b->cap : 256;

    if (b->len + extra <= b->cap) {
        return;
    }
    while (cap < b->len + extra) {
        cap *= 2;
    }
    b->p = cfw_xrealloc(b->p, cap);
    b->cap = cap;
}

static void bytes_consume(struct bytes *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

static const char *reason(int code)
{
    switch (code) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Supported"; /* 501: a method or transfer coding this server lacks */
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return code < 300 ? "OK" : code < 500 ? "Bad Request" : "Error";
    }
}

static int64_t now_ms(void)
{
    return cfw_now_mono_ms();
}

static void arm_at(struct conn *c, int64_t at)
{
    int64_t d = at - now_ms();
    struct timeval tv;

    if (d < 0) {
        d = 0;
    }
    tv.tv_sec = (time_t)(d / 1000);
    tv.tv_usec = (suseconds_t)(d % 1000 * 1000);
    evtimer_add(c->ev_timer, &tv);
}

static void arm_state_timer(struct conn *c)
{
    int64_t at = c->deadline;

    if (c->state == ST_BODY && c->window_start + c->l->o.body_window_ms < at) {
        at = c->window_start + c->l->o.body_window_ms;
    }
    arm_at(c, at);
}

static void set_reading(struct conn *c, bool on)
{
    if (on && !c->reading) {
        event_add(c->ev_read, NULL);
    } else if (!on && c->reading) {
        event_del(c->ev_read);
    }
    c->reading = on;
}

static void set_writing(struct conn *c, bool on)
{
    if (on && !c->writing) {
        event_add(c->ev_write, NULL);
    } else if (!on && c->writing) {
        event_del(c->ev_write);
    }
    c->writing = on;
}

/* Enters a state: its eviction class (appended: the oldest first), read interest and timer. */
static void set_state(struct conn *c, enum conn_state st, int64_t deadline)
{
    struct cfw_listener *l = c->l;
    int q = st == ST_LINGER ? Q_LINGER : st == ST_IDLE ? Q_IDLE : st == ST_HEAD ? Q_HEAD : Q_BUSY;

    c->state = st;
    c->deadline = deadline;
    if (q != c->queue) {
        if (c->queue >= 0) {
            TAILQ_REMOVE(&l->q[c->queue], c, link);
        }
        TAILQ_INSERT_TAIL(&l->q[q], c, link);
        c->queue = q;
    }
    if (q != Q_BUSY && l->paused_full) {
        /* refused at the cap earlier; this one could now make room */
        l->paused_full = false;
        accept_resume(l);
    }
    set_reading(c, st != ST_WRITE);
    arm_state_timer(c);
}

static void req_free(struct conn *c)
{
    struct cfw_listener_req *req = c->req;

    if (req == NULL) {
        return;
    }
    c->l->body_bytes -= req->body_cap;
    free(req->body);
    free(req->raw);
    cfw_buf_free(&req->extra);
    free(req);
    c->req = NULL;
}

static void accept_resume(struct cfw_listener *l)
{
    if (!l->accepting && !l->paused_full && !evtimer_pending(l->ev_retry, NULL)) {
        event_add(l->ev_accept, NULL);
        l->accepting = true;
    }
}

static void conn_close(struct conn *c)
{
    struct cfw_listener *l = c->l;

    if (c->queue >= 0) {
        TAILQ_REMOVE(&l->q[c->queue], c, link);
    }
    req_free(c);
    if (c->ev_read != NULL) {
        event_free(c->ev_read);
    }
    if (c->ev_write != NULL) {
        event_free(c->ev_write);
    }
    if (c->ev_timer != NULL) {
        event_free(c->ev_timer);
    }
    close(c->fd);
    bytes_free(&c->in);
    cfw_buf_free(&c->out);
    free(c);
    l->nconns--;
    l->stats.connections = l->nconns;
    if (l->paused_full && l->nconns < l->max_conns) {
        l->paused_full = false;
        accept_resume(l);
    }
}

static void http_date(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0) {
        out[0] = '\0';
    }
}

static void put_response(struct conn *c, int code, const char *ctype, const char *extra,
                         const char *body, size_t len, bool head_only, bool close_conn)
{
    char date[64];

    http_date(date, sizeof(date));
    cfw_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", code, reason(code), date);
    if (ctype != NULL) {
        cfw_buf_printf(&c->out, "Content-Type: %s\r\n", ctype);
    }
    cfw_buf_printf(&c->out, "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s\r\n", len,
                   extra != NULL ? extra : "", close_conn ? "Connection: close\r\n" : "");
    if (!head_only && len > 0) {
        cfw_buf_append(&c->out, body, len);
    }
}

/* Writes what is pending: AGAIN when all of it went, WAIT when the socket is full, GONE. */
static enum step flush(struct conn *c)
{
    while (c->out_pos < c->out.len) {
        ssize_t n = send(c->fd, c->out.data + c->out_pos, c->out.len - c->out_pos, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_writing(c, true);
                return STEP_WAIT;
            }
            conn_close(c);
            return STEP_GONE;
        }
        c->out_pos += (size_t)n;
    }
    cfw_buf_free(&c->out);
    c->out_pos = 0;
    set_writing(c, false);
    return STEP_AGAIN;
}

static void count_status(struct cfw_listener *l, int code)
{
    if (code == 408) {
        l->stats.timeouts++;
    } else if (code == 413 || code == 414 || code == 431) {
        l->stats.too_large++;
    } else if (code == 503) {
        l->stats.busy++;
    } else {
        l->stats.bad_requests++;
    }
}

/* Answers an error from the listener itself and closes the connection after it. */
static enum step respond_error(struct conn *c, int code)
{
    char body[64];
    bool head_only = c->req != NULL && c->req->head.method == CFW_LISTENER_HEAD;

    count_status(c->l, code);
    snprintf(body, sizeof(body), "%d %s\n", code, reason(code));
    req_free(c);
    c->close_after = true;
    put_response(c, code, "text/plain; charset=utf-8", code == 503 ? "Retry-After: 1\r\n" : NULL,
                 body, strlen(body), head_only, true);
    set_state(c, ST_WRITE, now_ms() + c->l->o.write_timeout_ms);
    return STEP_AGAIN;
}

/*
 * Why linger: closing a socket whose receive queue still holds request bytes makes the kernel
 * send a reset, and a client that is still sending may then lose the answer. So the sending side
 * is shut (the client reads the answer and an end of file) and what it still sends is read and
 * dropped until it closes or linger_ms pass.
 */
static enum step start_linger(struct conn *c)
{
    if (shutdown(c->fd, SHUT_WR) != 0) {
        conn_close(c);
        return STEP_GONE;
    }
    bytes_free(&c->in);
    set_state(c, ST_LINGER, now_ms() + c->l->o.linger_ms);
    return STEP_WAIT;
}

static enum step write_step(struct conn *c)
{
    enum step s = flush(c);

    if (s != STEP_AGAIN) {
        return s;
    }
    if (c->close_after) {
        return start_linger(c);
    }
    if (c->in.len > 0) {
        set_state(c, ST_HEAD, now_ms() + c->l->o.head_timeout_ms);
        return STEP_AGAIN;
    }
    bytes_free(&c->in);
    set_state(c, ST_IDLE, now_ms() + c->l->o.idle_timeout_ms);
    return STEP_WAIT;
}

/* The answer is queued: the request is done with. */
static enum step finish_request(struct conn *c)
{
    req_free(c);
    set_state(c, ST_WRITE, now_ms() + c->l->o.write_timeout_ms);
    return STEP_AGAIN;
}

static enum step dispatch(struct conn *c)
{
    struct cfw_listener_req *req = c->req;

    req->body_done = true;
    req->route->h(req, req->path, req->route->arg);
    if (!req->replied) {
        cfw_log_err("listener: the handler of %s did not answer", req->route->path);
        cfw_listener_reply(req, 500, "text/plain; charset=utf-8", "no answer\n", 10);
    }
    return finish_request(c);
}

/* Grows the body buffer to hold total bytes, within the body budget. */
static int body_reserve(struct conn *c, size_t total)
{
    struct cfw_listener *l = c->l;
    struct cfw_listener_req *req = c->req;
    size_t cap;

    if (total <= req->body_cap) {
        return 0;
    }
    cap = req->body_cap * 2 > total ? req->body_cap * 2 : total;
    if (cap < 4096) {
        cap = 4096;
    }
    if (cap > req->max_body + 1) {
        cap = req->max_body + 1 > total ? req->max_body + 1 : total;
    }
    if (l->body_bytes - req->body_cap + cap > l->o.body_budget) {
        return -1;
    }
    req->body = cfw_xrealloc(req->body, cap);
    l->body_bytes = l->body_bytes - req->body_cap + cap;
    req->body_cap = cap;
    return 0;
}

static const struct route *find_route(const struct cfw_listener *l, const char *path)
{
    for (size_t i = 0; i < l->nroutes; i++) {
        const struct route *r = &l->routes[i];
        if (r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0 : strcmp(path, r->path) == 0) {
            return r;
        }
    }
    return NULL;
}

/* NUL-terminates the path, the query and every header name and value inside req->raw. */
static void terminate_strings(struct cfw_listener_req *req)
{
    struct cfw_listener_head *h = &req->head;
    uintptr_t lo = (uintptr_t)req->raw, hi = lo + h->head_len;
    /* an absolute-form target without a path has the static "/" as its path */
    bool own_path = (uintptr_t)h->path >= lo && (uintptr_t)h->path < hi;

    for (size_t i = 0; i < h->nheaders; i++) {
        char *name = (char *)(uintptr_t)h->headers[i].name;
        char *value = (char *)(uintptr_t)h->headers[i].value;
        name[h->headers[i].name_len] = '\0';
        value[h->headers[i].value_len] = '\0';
    }
    if (own_path) {
        ((char *)(uintptr_t)h->path)[h->path_len] = '\0';
    }
    if (h->query != NULL) {
        ((char *)(uintptr_t)h->query)[h->query_len] = '\0';
    }
    req->path = own_path ? h->path : "/";
    req->query = h->query;
}

static enum step start_request(struct conn *c, size_t head_len)
{
    struct cfw_listener *l = c->l;
    struct cfw_listener_req *req = cfw_xcalloc(1, sizeof(*req));
    const struct route *r;
    enum step s;

    req->c = c;
    c->req = req;
    req->raw = cfw_xmalloc(head_len + 1);
    memcpy(req->raw, c->in.p, head_len);
    req->raw[head_len] = '\0';
    bytes_consume(&c->in, head_len);
    c->scan = 0;
    c->nlines = 0;
    if (cfw_listener_parse_head(req->raw, head_len, &l->lim, &req->head) !=
        CFW_LISTENER_HEAD_COMPLETE) {
        return respond_error(c, 400);
    }
    terminate_strings(req);
    l->stats.requests++;
    req->max_body = l->o.max_body;
    req->body_done = req->head.content_length <= 0 && !req->head.chunked;
    r = find_route(l, req->path);
    if (r == NULL) {
        cfw_listener_reply(req, 404, "text/plain; charset=utf-8", "not found\n", 10);
        return finish_request(c);
    }
    req->route = r;
    if (r->check != NULL) {
        int rc = r->check(req, req->path, r->arg);
        if (!req->replied && rc != 0) {
            cfw_listener_reply(req, 500, "text/plain; charset=utf-8", "check failed\n", 13);
        }
        if (req->replied) {
            return finish_request(c);
        }
    }
    if (req->body_done) {
        return dispatch(c);
    }
    if (req->head.content_length > 0 && (uint64_t)req->head.content_length > req->max_body) {
        return respond_error(c, 413);
    }
    if (!req->head.chunked && body_reserve(c, (size_t)req->head.content_length + 1) != 0) {
        return respond_error(c, 503);
    }
    if (req->head.expect_continue && c->in.len == 0) {
        cfw_buf_puts(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
        s = flush(c);
        if (s == STEP_GONE) {
            return s;
        }
    }
    c->window_start = now_ms();
    c->window_bytes = 0;
    set_state(c, ST_BODY, c->window_start + l->o.body_timeout_ms);
    return STEP_AGAIN;
}

/*
 * Why the parser is not run on every read: a client can send its head one byte at a time, and
 * parsing the whole buffer each time would cost the square of the head size. The new bytes are
 * scanned for line ends, and the parser runs only when a line that decides something ends (one
 * of the first lines, the blank line, one line too many) or a cap is passed.
 */
static enum step head_step(struct conn *c)
{
    struct cfw_listener *l = c->l;
    struct cfw_listener_head scratch;
    bool parse = c->nlines == 0 && c->in.len <= 256;
    int rc;

    for (size_t i = c->scan; i < c->in.len; i++) {
        const char *nl = memchr(c->in.p + i, '\n', c->in.len - i);
        if (nl == NULL) {
            break;
        }
        i = (size_t)(nl - c->in.p);
        c->nlines++;
        if (c->nlines <= LEADING_EMPTY_MAX + 2 ||
            c->nlines > l->lim.max_headers + LEADING_EMPTY_MAX + 2 ||
            (i >= 1 && c->in.p[i - 1] == '\n') ||
            (i >= 2 && c->in.p[i - 1] == '\r' && c->in.p[i - 2] == '\n')) {
            parse = true;
        }
    }
    c->scan = c->in.len;
    if (c->in.len > l->lim.max_head || (c->nlines == 0 && c->in.len > l->lim.max_line)) {
        parse = true;
    }
    if (!parse) {
        return STEP_WAIT;
    }
    rc = cfw_listener_parse_head(c->in.p, c->in.len, &l->lim, &scratch);
    if (rc == CFW_LISTENER_HEAD_ERROR) {
        return respond_error(c, scratch.status);
    }
    if (rc == CFW_LISTENER_HEAD_PARTIAL) {
        return c->in.len > l->lim.max_head ? respond_error(c, 431) : STEP_WAIT;
    }
    return start_request(c, scratch.head_len);
}

static enum step body_step(struct conn *c)
{
    struct cfw_listener_req *req = c->req;

    if (req->head.chunked) {
        size_t room = req->max_body - req->body_len;
        size_t want = c->in.len < room ? c->in.len : room;
        size_t used = 0, produced = 0;
        int rc;

        if (c->in.len == 0) {
            return STEP_WAIT;
        }
        if (body_reserve(c, req->body_len + want + 1) != 0) {
            return respond_error(c, 503);
        }
        rc = cfw_listener_dechunk(&req->ch, c->in.p, c->in.len, req->body + req->body_len, room,
                                  &used, &produced);
        req->body_len += produced;
        bytes_consume(&c->in, used);
        if (rc < 0) {
            return respond_error(c, req->ch.status);
        }
        if (rc == 0) {
            return STEP_WAIT;
        }
    } else {
        size_t need = (size_t)req->head.content_length - req->body_len;
        size_t n = c->in.len < need ? c->in.len : need;

        memcpy(req->body + req->body_len, c->in.p, n);
        req->body_len += n;
        bytes_consume(&c->in, n);
        if (req->body_len < (size_t)req->head.content_length) {
            return STEP_WAIT;
        }
    }
    if (req->body == NULL) {
        req->body = cfw_xmalloc(1);
    }
    req->body[req->body_len] = '\0';
    return dispatch(c);
}

static enum step conn_process(struct conn *c)
{
    for (;;) {
        enum step s;

        switch (c->state) {
        case ST_HEAD:
            s = head_step(c);
            break;
        case ST_BODY:
            s = body_step(c);
            break;
        case ST_WRITE:
            s = write_step(c);
            break;
        default:
            return STEP_WAIT;
        }
        if (s != STEP_AGAIN) {
            return s;
        }
    }
}

/* Reads once into c->in (at most max bytes): >0 bytes, 0 at end of file, -1 error, -2 again. */
static ssize_t read_in(struct conn *c, size_t max)
{
    char tmp[READ_CHUNK];
    ssize_t n;

    if (max > sizeof(tmp)) {
        max = sizeof(tmp);
    }
    do {
        n = recv(c->fd, tmp, max, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
    }
    if (n > 0) {
        bytes_reserve(&c->in, (size_t)n);
        memcpy(c->in.p + c->in.len, tmp, (size_t)n);
        c->in.len += (size_t)n;
    }
    return n;
}

static void linger_drain(struct conn *c)
{
    char tmp[READ_CHUNK];
    size_t total = 0;

    while (total < LINGER_BUDGET) {
        ssize_t n = recv(c->fd, tmp, sizeof(tmp), 0);
        if (n > 0) {
            total += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EINTR)) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        conn_close(c);
        return;
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct cfw_listener *l = c->l;
    ssize_t n;

    (void)fd;
    (void)what;
    switch (c->state) {
    case ST_LINGER:
        linger_drain(c);
        return;
    case ST_IDLE:
    case ST_HEAD:
        if (c->in.len > l->lim.max_head) {
            break;
        }
        n = read_in(c, l->lim.max_head + 1 - c->in.len);
        if (n == -2) {
            return;
        }
        if (n <= 0) {
            conn_close(c);
            return;
        }
        if (c->state == ST_IDLE) {
            set_state(c, ST_HEAD, now_ms() + l->o.head_timeout_ms);
        }
        break;
    case ST_BODY:
        if (c->req->head.chunked) {
            n = read_in(c, READ_CHUNK);
        } else {
            struct cfw_listener_req *req = c->req;
            size_t need = (size_t)req->head.content_length - req->body_len;
            if (need > BODY_READ_CHUNK) {
                need = BODY_READ_CHUNK;
            }
            do {
                n = recv(c->fd, req->body + req->body_len, need, 0);
            } while (n < 0 && errno == EINTR);
            if (n < 0) {
                n = errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
            } else {
                req->body_len += (size_t)n;
            }
        }
        if (n == -2) {
            return;
        }
        if (n <= 0) {
            conn_close(c);
            return;
        }
        c->window_bytes += (size_t)n;
        break;
    default:
        set_reading(c, false);
        return;
    }
    conn_process(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    if (c->state == ST_WRITE) {
        conn_process(c);
    } else {
        flush(c);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct cfw_listener *l = c->l;
    int64_t now = now_ms();

    (void)fd;
    (void)what;
    switch (c->state) {
    case ST_HEAD:
        if (c->in.len == 0) {
            l->stats.timeouts++;
            conn_close(c);
            return;
        }
        break;
    case ST_BODY:
        if (now < c->deadline && now >= c->window_start + l->o.body_window_ms) {
            uint64_t want = (uint64_t)l->o.body_min_rate * l->o.body_window_ms / 1000;
            if (c->window_bytes >= want) {
                c->window_start = now;
                c->window_bytes = 0;
                arm_state_timer(c);
                return;
            }
        } else if (now < c->deadline) {
            arm_state_timer(c);
            return;
        }
        break;
    case ST_WRITE:
        l->stats.timeouts++;
        conn_close(c);
        return;
    default:
        conn_close(c);
        return;
    }
    if (respond_error(c, 408) == STEP_AGAIN) {
        conn_process(c);
    }
}

/* Closes c to make room: a short 503 first to one that was sending its request. */
static void evict(struct conn *c)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               "Retry-After: 1\r\nConnection: close\r\n\r\n";

    if (c->state == ST_HEAD && c->in.len > 0) {
        ssize_t n = send(c->fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
    conn_close(c);
}

/* The connection that has made the least progress, or NULL when all are busy. */
static struct conn *victim(struct cfw_listener *l)
{
    for (int q = Q_LINGER; q < Q_BUSY; q++) {
        if (!TAILQ_EMPTY(&l->q[q])) {
            return TAILQ_FIRST(&l->q[q]);
        }
    }
    return NULL;
}

static struct conn *conn_new(struct cfw_listener *l, int fd)
{
    struct conn *c = cfw_xcalloc(1, sizeof(*c));

    c->l = l;
    c->fd = fd;
    c->queue = -1;
    c->ev_read = event_new(l->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->ev_write = event_new(l->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    c->ev_timer = evtimer_new(l->base, on_timer, c);
    l->nconns++;
    l->stats.connections = l->nconns;
    l->stats.accepted++;
    if (c->ev_read == NULL || c->ev_write == NULL || c->ev_timer == NULL) {
        conn_close(c);
        return NULL;
    }
    set_state(c, ST_HEAD, now_ms() + l->o.head_timeout_ms);
    return c;
}

static void accept_pause(struct cfw_listener *l)
{
    if (l->accepting) {
        event_del(l->ev_accept);
        l->accepting = false;
    }
}

/*
 * Why pause at EMFILE: the pending connection stays in the backlog and the socket stays
 * readable, so retrying at once spins the loop (libevent's own listener did, logging each try).
 * Accepting stops for a short, growing while; one connection that has made the least progress is
 * closed so that the retry finds a descriptor; one line a minute says how many calls failed.
 */
static void accept_failed(struct cfw_listener *l, int err)
{
    int64_t now = now_ms();
    struct timeval tv;
    struct conn *v;

    l->stats.accept_errors++;
    l->log_failures++;
    if (!l->logged || now - l->log_ms >= CFW_LISTENER_LOG_INTERVAL_MS) {
        cfw_log_warn("listener: accept() failed %llu time(s)%s (last: %s); new connections "
                     "wait in the backlog, retried every %u to %u ms (logged once a minute)",
                     (unsigned long long)l->log_failures, l->logged ? " in the last minute" : "",
                     strerror(err), l->o.accept_retry_min_ms, l->o.accept_retry_max_ms);
        l->logged = true;
        l->log_ms = now;
        l->log_failures = 0;
    }
    accept_pause(l);
    if ((err == EMFILE || err == ENFILE) && (v = victim(l)) != NULL) {
        l->stats.evicted++;
        evict(v);
    }
    tv.tv_sec = (time_t)(l->retry_ms / 1000);
    tv.tv_usec = (suseconds_t)(l->retry_ms % 1000 * 1000);
    evtimer_add(l->ev_retry, &tv);
    l->retry_ms =
        l->retry_ms * 2 < l->o.accept_retry_max_ms ? l->retry_ms * 2 : l->o.accept_retry_max_ms;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_listener *l = arg;

    (void)fd;
    (void)what;
    accept_resume(l);
}

static bool accept_transient(int err)
{
    switch (err) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_listener *l = arg;

    (void)fd;
    (void)what;
    for (unsigned i = 0; i < ACCEPT_BUDGET; i++) {
        int cfd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c, *v;

        if (cfd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* the backlog is empty: whatever failed before has passed */
                l->retry_ms = l->o.accept_retry_min_ms;
                return;
            }
            if (accept_transient(errno)) {
                continue;
            }
            accept_failed(l, errno);
            return;
        }
        c = conn_new(l, cfd);
        if (c == NULL) {
            continue;
        }
        if (l->nconns > l->max_conns) {
            v = victim(l);
            if (v == c) {
                /* nothing older to evict: every other connection is receiving or answered */
                l->stats.refused++;
                evict(c);
                l->paused_full = true;
                accept_pause(l);
                return;
            }
            l->stats.evicted++;
            evict(v);
        }
        /* the request is usually there already: answering it now saves a turn of the loop */
        on_read(c->fd, EV_READ, c);
    }
}

/* ---- libevent's own messages ---- */

static struct {
    int64_t window;
    unsigned n;
    uint64_t suppressed;
    bool started;
} evlog;

static void on_libevent_log(int severity, const char *msg)
{
    int64_t now = now_ms();
    char esc[512];
    enum cfw_log_level lvl = severity >= EVENT_LOG_ERR    ? CFW_LOG_ERR
                             : severity == EVENT_LOG_WARN ? CFW_LOG_WARNING
                             : severity == EVENT_LOG_MSG  ? CFW_LOG_INFO
                                                          : CFW_LOG_DEBUG;

    if (!evlog.started || now - evlog.window >= CFW_LISTENER_LOG_INTERVAL_MS) {
        if (evlog.suppressed > 0) {
            cfw_log_warn("libevent: %llu more message(s) in the last minute not logged",
                         (unsigned long long)evlog.suppressed);
        }
        evlog.started = true;
        evlog.window = now;
        evlog.n = 0;
        evlog.suppressed = 0;
    }
    if (evlog.n >= CFW_LISTENER_LIBEVENT_LOG_MAX) {
        evlog.suppressed++;
        return;
    }
    evlog.n++;
    cfw_log_escape(msg, strlen(msg), 400, esc, sizeof(esc));
    cfw_log(lvl, "libevent: %s", esc);
}

/* ---- setup ---- */

/* Splits "host:port" or "[v6]:port"; host is written to out. */
static int split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon;
    uint64_t p;
    size_t hl;

    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':') {
            return -1;
        }
        hl = (size_t)(end - addr - 1);
        addr++;
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL) {
            return -1;
        }
        hl = (size_t)(colon - addr);
    }
    if (hl == 0 || hl >= hostlen || cfw_parse_u64(colon + 1, &p) != 0 || p > 65535) {
        return -1;
    }
    memcpy(host, addr, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

static int bind_socket(const char *host, int port, struct cfw_err *err)
{
    struct addrinfo hints, *res = NULL;
    char service[16];
    int fd = -1, rc, one = 1, saved = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(service, sizeof(service), "%d", port);
    rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        cfw_err_set(err, "listen: cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, CFW_LISTENER_BACKLOG) == 0) {
            break;
        }
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        cfw_err_set(err, "listen: cannot bind %s:%d: %s", host, port, strerror(saved));
    }
    return fd;
}

static void resolve_opts(struct cfw_listener_opts *o, const struct cfw_listener_opts *in)
{
    if (in != NULL) {
        *o = *in;
    }
#define DEF(field, value)                                                                          \
    do {                                                                                           \
        if (o->field == 0) {                                                                       \
            o->field = (value);                                                                    \
        }                                                                                          \
    } while (0)
    DEF(max_conns, CFW_LISTENER_MAX_CONNS_DEFAULT);
    DEF(max_head, CFW_LISTENER_MAX_HEAD);
    DEF(max_line, CFW_LISTENER_MAX_LINE);
    DEF(max_headers, CFW_LISTENER_MAX_HEADERS);
    DEF(max_body, CFW_LISTENER_MAX_BODY_DEFAULT);
    DEF(body_budget, CFW_LISTENER_BODY_BUDGET_DEFAULT);
    DEF(body_min_rate, CFW_LISTENER_BODY_MIN_RATE);
    DEF(head_timeout_ms, CFW_LISTENER_HEAD_TIMEOUT_MS);
    DEF(idle_timeout_ms, CFW_LISTENER_IDLE_TIMEOUT_MS);
    DEF(body_timeout_ms, CFW_LISTENER_BODY_TIMEOUT_MS);
    DEF(body_window_ms, CFW_LISTENER_BODY_WINDOW_MS);
    DEF(write_timeout_ms, CFW_LISTENER_WRITE_TIMEOUT_MS);
    DEF(linger_ms, CFW_LISTENER_LINGER_MS);
    DEF(accept_retry_min_ms, CFW_LISTENER_ACCEPT_RETRY_MIN_MS);
    DEF(accept_retry_max_ms, CFW_LISTENER_ACCEPT_RETRY_MAX_MS);
#undef DEF
    if (o->max_headers > CFW_LISTENER_MAX_HEADERS) {
        o->max_headers = CFW_LISTENER_MAX_HEADERS;
    }
    if (o->accept_retry_max_ms < o->accept_retry_min_ms) {
        o->accept_retry_max_ms = o->accept_retry_min_ms;
    }
}

/* The cap, lowered so that RLIMIT_NOFILE keeps CFW_LISTENER_FD_RESERVE descriptors spare. */
static size_t fit_nofile(size_t want)
{
    struct rlimit rl;
    size_t room;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) {
        return want;
    }
    room = rl.rlim_cur > CFW_LISTENER_FD_RESERVE + MIN_CONNS
               ? (size_t)rl.rlim_cur - CFW_LISTENER_FD_RESERVE
               : MIN_CONNS;
    if (room < want) {
        cfw_log_notice("listener: RLIMIT_NOFILE is %llu: at most %zu connections (not %zu)",
                       (unsigned long long)rl.rlim_cur, room, want);
        return room;
    }
    return want;
}

struct cfw_listener *cfw_listener_new(struct event_base *base, const char *addr,
                                      const struct cfw_listener_opts *opts, struct cfw_err *err)
{
    struct cfw_listener *l;
    char host[256];
    int port;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (split_addr(addr, host, sizeof(host), &port) != 0) {
        cfw_err_set(err, "listen: '%s' is not host:port", addr);
        return NULL;
    }
    event_set_log_callback(on_libevent_log);
    l = cfw_xcalloc(1, sizeof(*l));
    l->base = base;
    for (int q = 0; q < Q_N; q++) {
        TAILQ_INIT(&l->q[q]);
    }
    resolve_opts(&l->o, opts);
    l->lim.max_head = l->o.max_head;
    l->lim.max_line = l->o.max_line;
    l->lim.max_headers = l->o.max_headers;
    l->retry_ms = l->o.accept_retry_min_ms;
    l->max_conns = fit_nofile(l->o.max_conns);
    l->fd = bind_socket(host, port, err);
    if (l->fd < 0) {
        free(l);
        return NULL;
    }
    l->ev_accept = event_new(base, l->fd, EV_READ | EV_PERSIST, on_accept, l);
    l->ev_retry = evtimer_new(base, on_retry, l);
    if (l->ev_accept == NULL || l->ev_retry == NULL) {
        cfw_err_set(err, "listen: cannot create events for %s", addr);
        cfw_listener_free(l);
        return NULL;
    }
    event_add(l->ev_accept, NULL);
    l->accepting = true;
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0) {
        l->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return l;
}

void cfw_listener_free(struct cfw_listener *l)
{
    if (l == NULL) {
        return;
    }
    l->paused_full = false;
    l->accepting = true; /* nothing to resume while closing */
    for (int q = 0; q < Q_N; q++) {
        while (!TAILQ_EMPTY(&l->q[q])) {
            conn_close(TAILQ_FIRST(&l->q[q]));
        }
    }
    if (l->ev_accept != NULL) {
        event_free(l->ev_accept);
    }
    if (l->ev_retry != NULL) {
        event_free(l->ev_retry);
    }
    if (l->fd >= 0) {
        close(l->fd);
    }
    for (size_t i = 0; i < l->nroutes; i++) {
        free(l->routes[i].path);
    }
    free(l);
}

void cfw_listener_route(struct cfw_listener *l, const char *path, int prefix,
                        cfw_listener_check check, cfw_listener_handler h, void *arg)
{
    if (l->nroutes == CFW_LISTENER_MAX_ROUTES) {
        cfw_log_err("listener: too many routes; %s not served", path);
        return;
    }
    l->routes[l->nroutes].path = cfw_xstrdup(path);
    l->routes[l->nroutes].prefix = prefix;
    l->routes[l->nroutes].check = check;
    l->routes[l->nroutes].h = h;
    l->routes[l->nroutes].arg = arg;
    l->nroutes++;
}

int cfw_listener_port(const struct cfw_listener *l)
{
    return l->port;
}

size_t cfw_listener_max_conns(const struct cfw_listener *l)
{
    return l->max_conns;
}

void cfw_listener_set_max_body(struct cfw_listener *l, size_t max)
{
    l->o.max_body = max;
}

const struct cfw_listener_stats *cfw_listener_stats(const struct cfw_listener *l)
{
    return &l->stats;
}

/* ---- requests ---- */

enum cfw_listener_method cfw_listener_req_method(const struct cfw_listener_req *req)
{
    return req->head.method;
}

const char *cfw_listener_req_path(const struct cfw_listener_req *req)
{
    return req->path;
}

const char *cfw_listener_req_query(const struct cfw_listener_req *req)
{
    return req->query;
}

const char *cfw_listener_req_header(const struct cfw_listener_req *req, const char *name)
{
    for (size_t i = 0; i < req->head.nheaders; i++) {
        if (strcasecmp(req->head.headers[i].name, name) == 0) {
            return req->head.headers[i].value;
        }
    }
    return NULL;
}

int64_t cfw_listener_req_content_length(const struct cfw_listener_req *req)
{
    return req->head.chunked ? -1 : req->head.content_length;
}

void cfw_listener_req_set_max_body(struct cfw_listener_req *req, size_t max)
{
    if (!req->body_done && req->body_cap == 0) {
        req->max_body = max;
    }
}

const char *cfw_listener_req_body(const struct cfw_listener_req *req, size_t *len)
{
    *len = req->body != NULL ? req->body_len : 0;
    return req->body != NULL ? req->body : "";
}

char *cfw_listener_req_take_body(struct cfw_listener_req *req, size_t *len)
{
    char *b = req->body;

    *len = b != NULL ? req->body_len : 0;
    if (b == NULL) {
        return cfw_xstrdup("");
    }
    req->c->l->body_bytes -= req->body_cap;
    req->body = NULL;
    req->body_len = 0;
    req->body_cap = 0;
    return b;
}

void cfw_listener_req_add_header(struct cfw_listener_req *req, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL) {
        cfw_log_err("listener: header %s refused (CR, LF or a colon in it)", name);
        return;
    }
    cfw_buf_printf(&req->extra, "%s: %s\r\n", name, value);
}

void cfw_listener_reply(struct cfw_listener_req *req, int code, const char *ctype, const char *body,
                        size_t len)
{
    struct conn *c;
    bool close_conn;

    if (req == NULL || req->replied) {
        return;
    }
    c = req->c;
    req->replied = true;
    /* a body left unread cannot be skipped to find the next request */
    close_conn = !req->head.keep_alive || !req->body_done;
    c->close_after = c->close_after || close_conn;
    put_response(c, code, ctype, req->extra.data, body, len, req->head.method == CFW_LISTENER_HEAD,
                 c->close_after);
}
