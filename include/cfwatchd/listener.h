/*
 * The daemon's HTTP/1.1 listener (loopback by default), a small server on plain libevent events:
 * routes by exact path or by prefix, GET, HEAD and POST (other methods 501), keep-alive
 * (HTTP/1.1 unless `Connection: close`; HTTP/1.0 connections close after one answer), pipelined
 * requests answered in order.
 *
 * Limits, each with a named default below (struct cfw_listener_opts overrides them, for tests):
 *   - connections: at most CFW_LISTENER_MAX_CONNS_DEFAULT, lowered to leave
 *     CFW_LISTENER_FD_RESERVE descriptors of RLIMIT_NOFILE to the rest of the daemon. A new
 *     connection at the cap evicts the one that has made the least progress: one already answered
 *     and closing, else the oldest idle keep-alive connection, else the oldest one still sending
 *     its request head (it gets a 503). Connections receiving a body or being answered are never
 *     evicted; when every connection is in that state, the new one is refused (503) and accepting
 *     pauses until a connection closes;
 *   - request head: the request line and headers must arrive within head_timeout_ms of the
 *     connection (or of the first byte of a keep-alive request), a total deadline that trickled
 *     bytes do not extend (408, or a silent close when nothing was sent); at most max_line bytes
 *     of request line (414), max_head bytes of head and max_headers header lines (431);
 *   - keep-alive: an idle connection is closed after idle_timeout_ms;
 *   - body: a route's check hook runs on the complete head before any body byte is read and can
 *     answer (401, 405, 413...) without reading the body; then a Content-Length over the
 *     request's body cap gets 413 unread, `Expect: 100-continue` gets its 100, and the body must
 *     arrive within body_timeout_ms, at body_min_rate bytes/s or more over every body_window_ms
 *     (408). `Transfer-Encoding: chunked` is supported with the same body cap on the decoded size
 *     (413 as soon as a chunk would pass it), chunk extensions ignored and trailers read and
 *     discarded (at most max_head bytes, 431); any other transfer coding gets 501, and
 *     Transfer-Encoding with Content-Length, or on HTTP/1.0, gets 400. Bodies being received
 *     share body_budget bytes of memory (503 with Retry-After past it);
 *   - answers: written within write_timeout_ms. After an answer that leaves request bytes unread
 *     (an error, or a check that refused), the connection shuts its sending side and discards
 *     what the client still sends for up to linger_ms, so that the client reads the answer
 *     instead of a reset.
 * At EMFILE or ENFILE, accepting pauses (the connections wait in the kernel's backlog), one idle
 * or least-progressed connection is evicted to free a descriptor, and accepting is retried after
 * accept_retry_min_ms, doubling up to accept_retry_max_ms while it keeps failing; one log line
 * a minute at most, with the number of failed calls. libevent's own messages are routed through
 * cfw_log, at most CFW_LISTENER_LIBEVENT_LOG_MAX a minute.
 *
 * Handlers and checks run synchronously and must answer with cfw_listener_reply before they
 * return (the listener answers 500 otherwise); the request is valid only during the call.
 */
#ifndef CFWATCHD_LISTENER_H
#define CFWATCHD_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "cfwatchd/common.h"

#define CFW_LISTENER_MAX_CONNS_DEFAULT 512u
#define CFW_LISTENER_FD_RESERVE 64u
#define CFW_LISTENER_BACKLOG 511
#define CFW_LISTENER_MAX_HEAD (16u * 1024u)
#define CFW_LISTENER_MAX_LINE (8u * 1024u)
#define CFW_LISTENER_MAX_HEADERS 100u
#define CFW_LISTENER_MAX_BODY_DEFAULT (64u * 1024u)
#define CFW_LISTENER_BODY_BUDGET_DEFAULT (256u * 1024u * 1024u)
#define CFW_LISTENER_MAX_CHUNK_LINE 1024u
#define CFW_LISTENER_HEAD_TIMEOUT_MS 10000u
#define CFW_LISTENER_IDLE_TIMEOUT_MS 15000u
#define CFW_LISTENER_BODY_TIMEOUT_MS 300000u
#define CFW_LISTENER_BODY_WINDOW_MS 10000u
#define CFW_LISTENER_BODY_MIN_RATE 1024u
#define CFW_LISTENER_WRITE_TIMEOUT_MS 30000u
#define CFW_LISTENER_LINGER_MS 2000u
#define CFW_LISTENER_ACCEPT_RETRY_MIN_MS 250u
#define CFW_LISTENER_ACCEPT_RETRY_MAX_MS 1000u
#define CFW_LISTENER_LOG_INTERVAL_MS 60000u
#define CFW_LISTENER_LIBEVENT_LOG_MAX 10u
#define CFW_LISTENER_MAX_ROUTES 16

/* Tunables of a listener; a zero field takes the default named beside it. */
struct cfw_listener_opts {
    size_t max_conns;             /* CFW_LISTENER_MAX_CONNS_DEFAULT (then RLIMIT_NOFILE) */
    size_t max_head;              /* CFW_LISTENER_MAX_HEAD */
    size_t max_line;              /* CFW_LISTENER_MAX_LINE */
    size_t max_headers;           /* CFW_LISTENER_MAX_HEADERS, also the most accepted */
    size_t max_body;              /* CFW_LISTENER_MAX_BODY_DEFAULT, unless a check sets it */
    size_t body_budget;           /* CFW_LISTENER_BODY_BUDGET_DEFAULT */
    size_t body_min_rate;         /* CFW_LISTENER_BODY_MIN_RATE, bytes per second */
    unsigned head_timeout_ms;     /* CFW_LISTENER_HEAD_TIMEOUT_MS */
    unsigned idle_timeout_ms;     /* CFW_LISTENER_IDLE_TIMEOUT_MS */
    unsigned body_timeout_ms;     /* CFW_LISTENER_BODY_TIMEOUT_MS */
    unsigned body_window_ms;      /* CFW_LISTENER_BODY_WINDOW_MS */
    unsigned write_timeout_ms;    /* CFW_LISTENER_WRITE_TIMEOUT_MS */
    unsigned linger_ms;           /* CFW_LISTENER_LINGER_MS */
    unsigned accept_retry_min_ms; /* CFW_LISTENER_ACCEPT_RETRY_MIN_MS */
    unsigned accept_retry_max_ms; /* CFW_LISTENER_ACCEPT_RETRY_MAX_MS */
};

/* Counters of a listener (connections is a gauge). */
struct cfw_listener_stats {
    uint64_t connections;   /* open now */
    uint64_t accepted;      /* connections accepted */
    uint64_t requests;      /* request heads parsed */
    uint64_t evicted;       /* closed to make room for a new connection */
    uint64_t refused;       /* new connections closed at the cap (nothing could be evicted) */
    uint64_t timeouts;      /* head, body or write deadline passed */
    uint64_t bad_requests;  /* 400, 417, 501, 505 */
    uint64_t too_large;     /* 413, 414, 431 */
    uint64_t busy;          /* 503: the body budget was spent */
    uint64_t accept_errors; /* accept() failures other than EAGAIN (EMFILE, ENFILE...) */
};

enum cfw_listener_method {
    CFW_LISTENER_GET = 1,
    CFW_LISTENER_HEAD,
    CFW_LISTENER_POST,
    CFW_LISTENER_DELETE,
};

/* ---- the request-head parser (pure: no I/O, no allocation) ---- */

struct cfw_listener_limits {
    size_t max_head;    /* bytes up to and with the blank line */
    size_t max_line;    /* bytes of the request line */
    size_t max_headers; /* header lines, at most CFW_LISTENER_MAX_HEADERS */
};

struct cfw_listener_header {
    const char *name; /* as sent, not NUL-terminated */
    size_t name_len;
    const char *value; /* without surrounding whitespace, not NUL-terminated */
    size_t value_len;
};

struct cfw_listener_head {
    enum cfw_listener_method method;
    const char *path; /* origin-form path (or the path of an absolute-form target), no query */
    size_t path_len;
    const char *query; /* after '?'; NULL when there is none */
    size_t query_len;
    int minor; /* HTTP/1.<minor> */
    struct cfw_listener_header headers[CFW_LISTENER_MAX_HEADERS];
    size_t nheaders;
    int64_t content_length; /* -1 when absent */
    bool chunked;
    bool keep_alive;
    bool expect_continue;
    size_t head_len; /* bytes of the head, blank line included */
    int status;      /* with CFW_LISTENER_HEAD_ERROR: 400, 413, 414, 417, 431, 501 or 505 */
};

#define CFW_LISTENER_HEAD_ERROR (-1)
#define CFW_LISTENER_HEAD_PARTIAL 0
#define CFW_LISTENER_HEAD_COMPLETE 1

/*
 * Parses the request head at the start of buf[0..len) (lim NULL: the defaults). Returns
 * COMPLETE with out filled (pointers into buf), PARTIAL when more bytes are needed, or ERROR
 * with out->status set as soon as the bytes seen cannot start a valid head.
 */
int cfw_listener_parse_head(const char *buf, size_t len, const struct cfw_listener_limits *lim,
                            struct cfw_listener_head *out);

/* State of a chunked body being decoded; zero it before the first call. */
struct cfw_listener_chunked {
    int state;
    uint64_t left;   /* data bytes left in the current chunk, or the size being read */
    size_t line;     /* bytes of the current size or trailer line */
    size_t trailer;  /* trailer bytes so far */
    unsigned digits; /* hex digits of the current size */
    int status;      /* with -1: 400, 413 or 431 */
};

/*
 * Decodes chunked transfer coding from in[0..len), writing data to out, which must have room
 * for min(outcap, len) bytes; outcap is what the body may still grow by. *used and *outlen
 * receive the bytes consumed and produced. Returns 1 at the end of the body (the bytes after it
 * are not consumed), 0 when it needs more input, -1 with st->status set.
 */
int cfw_listener_dechunk(struct cfw_listener_chunked *st, const char *in, size_t len, char *out,
                         size_t outcap, size_t *used, size_t *outlen);

/* ---- the server ---- */

struct cfw_listener;
struct cfw_listener_req;
struct cfw_metrics;

typedef void (*cfw_listener_handler)(struct cfw_listener_req *req, const char *path, void *arg);
/*
 * Runs on a complete head, before the body is read: returns 0 to read the body and call the
 * handler, or -1 after answering with cfw_listener_reply (the body is then not read).
 */
typedef int (*cfw_listener_check)(struct cfw_listener_req *req, const char *path, void *arg);

/*
 * Binds addr ("host:port", "[v6]:port"; port 0 picks one) and serves on base; opts may be NULL
 * (defaults). NULL with err set when the address does not parse or cannot be bound.
 */
struct cfw_listener *cfw_listener_new(struct event_base *base, const char *addr,
                                      const struct cfw_listener_opts *opts, struct cfw_err *err);
/* Closes every connection and the socket; accepts NULL. */
void cfw_listener_free(struct cfw_listener *l);
/* Routes requests whose path equals path, or starts with it when prefix is true; check may be NULL.
 */
void cfw_listener_route(struct cfw_listener *l, const char *path, int prefix,
                        cfw_listener_check check, cfw_listener_handler h, void *arg);
/* The bound port (useful with port 0). */
int cfw_listener_port(const struct cfw_listener *l);
/* The connection cap in force (the option or default, lowered to fit RLIMIT_NOFILE). */
size_t cfw_listener_max_conns(const struct cfw_listener *l);
/* Sets the body cap of requests whose check does not set their own. */
void cfw_listener_set_max_body(struct cfw_listener *l, size_t max);
/* The listener's counters (borrowed). */
const struct cfw_listener_stats *cfw_listener_stats(const struct cfw_listener *l);
/* Adds the listener's families to the /metrics page: connections and refusals by reason. */
void cfw_listener_metrics(const struct cfw_listener *l, struct cfw_metrics *m);

/* The request method. */
enum cfw_listener_method cfw_listener_req_method(const struct cfw_listener_req *req);
/* The path, without the query string (not percent-decoded). */
const char *cfw_listener_req_path(const struct cfw_listener_req *req);
/* The query string after '?', or NULL. */
const char *cfw_listener_req_query(const struct cfw_listener_req *req);
/* The value of the first header named name (case-insensitive), or NULL. */
const char *cfw_listener_req_header(const struct cfw_listener_req *req, const char *name);
/* The declared Content-Length, or -1 (none, or chunked). */
int64_t cfw_listener_req_content_length(const struct cfw_listener_req *req);
/* Sets this request's body cap (from a check, before the body is read). */
void cfw_listener_req_set_max_body(struct cfw_listener_req *req, size_t max);
/* The body (NUL-terminated; "" before it is read or when there is none); *len its length. */
const char *cfw_listener_req_body(const struct cfw_listener_req *req, size_t *len);
/* Hands the body (NUL-terminated, never NULL) over to the caller; the request keeps "". */
char *cfw_listener_req_take_body(struct cfw_listener_req *req, size_t *len);
/* Adds a header line to the answer (before cfw_listener_reply); refused when it holds CR or LF. */
void cfw_listener_req_add_header(struct cfw_listener_req *req, const char *name, const char *value);
/* Answers with a status, a content type and a body (Cache-Control: no-store; no body for HEAD). */
void cfw_listener_reply(struct cfw_listener_req *req, int code, const char *ctype, const char *body,
                        size_t len);

#endif
