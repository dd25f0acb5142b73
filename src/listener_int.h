/*
 * Private to the listener: the objects its files share, and what each lends the others.
 *   - listener.c: the listening socket, accepting within the connection cap (eviction, the
 *     pause at EMFILE), libevent's messages, setup and teardown;
 *   - listener_conn.c: one connection's state machine (head, body, answer, keep-alive,
 *     lingering close) and its deadlines;
 *   - listener_req.c: a request as routes see it (routing, the accessors) and the answer's bytes;
 *   - listener_parse.c: the head parser and the chunked decoder (no I/O).
 */
#ifndef CFWATCHD_LISTENER_INT_H
#define CFWATCHD_LISTENER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "cfwatchd/listener.h"
#include "cfwatchd/log.h"

/* Empty lines tolerated before a request line (RFC 9112 2.2 asks for at least one). */
#define LEADING_EMPTY_MAX 4

enum conn_state { ST_HEAD, ST_IDLE, ST_BODY, ST_WRITE, ST_LINGER };

/* Eviction classes, in the order they are evicted; BUSY never is. */
enum { Q_LINGER, Q_IDLE, Q_HEAD, Q_BUSY, Q_N };

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
    struct cfw_ratelog accept_log; /* accept() failures: logged at most once a minute */
};

/* ---- listener.c ---- */

/* Accepts again, unless paused at the cap or waiting for the retry after an accept() error. */
void cfw_listener_accept_resume(struct cfw_listener *l);

/* ---- listener_conn.c ---- */

/* A new connection on an accepted socket, waiting for its head; NULL (closed) on failure. */
struct conn *cfw_listener_conn_new(struct cfw_listener *l, int fd);
/* Closes the socket and frees the connection and its request. */
void cfw_listener_conn_close(struct conn *c);
/* The connection's read event (arg: the connection). */
void cfw_listener_conn_on_read(evutil_socket_t fd, short what, void *arg);

/* ---- listener_req.c ---- */

/* The reason phrase of a status code. */
const char *cfw_listener_status_text(int code);
/* Queues an answer on c (no body with head_only; Connection: close with close_conn). */
void cfw_listener_put_response(struct conn *c, int code, const char *ctype, const char *extra,
                               const char *body, size_t len, bool head_only, bool close_conn);
/* Frees the connection's request, if any, and gives its body back to the budget. */
void cfw_listener_req_free(struct conn *c);
/* NUL-terminates the path, the query and every header name and value inside req->raw. */
void cfw_listener_req_terminate(struct cfw_listener_req *req);
/* Finds the route and runs its check; true when the request is answered already (404...). */
bool cfw_listener_req_route(struct cfw_listener_req *req);
/* Hands the complete request to its route's handler (500 when it does not answer). */
void cfw_listener_req_handle(struct cfw_listener_req *req);

#endif
