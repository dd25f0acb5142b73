/*
 * One connection of the listener: a state machine that reads the request head (scanning new
 * bytes only), the body (Content-Length or chunked, within its cap, the body budget and the
 * minimum rate), writes the answer, keeps the connection alive or lingers before closing, and
 * holds every state to its deadline. See listener.h for the limits.
 */
#include "cfwatchd/listener.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "listener_int.h"

/* Bytes read per call (the head is read in pieces of at most this). */
#define READ_CHUNK (16u * 1024u)
/* Bytes read per call into a Content-Length body. */
#define BODY_READ_CHUNK (64u * 1024u)
/* Bytes discarded per callback while lingering. */
#define LINGER_BUDGET (64u * 1024u)

/* What a step of the connection's state machine left to do. */
enum step { STEP_WAIT, STEP_AGAIN, STEP_GONE };

static enum step conn_process(struct conn *c);

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

static int64_t now_ms(void)
{
    return cfw_now_mono_ms();
}

static void arm_at(struct conn *c, int64_t at)
{
    struct timeval tv = cfw_ms_timeval(at - now_ms());

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
        cfw_listener_accept_resume(l);
    }
    set_reading(c, st != ST_WRITE);
    arm_state_timer(c);
}

void cfw_listener_conn_close(struct conn *c)
{
    struct cfw_listener *l = c->l;

    if (c->queue >= 0) {
        TAILQ_REMOVE(&l->q[c->queue], c, link);
    }
    cfw_listener_req_free(c);
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
        cfw_listener_accept_resume(l);
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
            cfw_listener_conn_close(c);
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
    snprintf(body, sizeof(body), "%d %s\n", code, cfw_listener_status_text(code));
    cfw_listener_req_free(c);
    c->close_after = true;
    cfw_listener_put_response(c, code, "text/plain; charset=utf-8",
                              code == 503 ? "Retry-After: 1\r\n" : NULL, body, strlen(body),
                              head_only, true);
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
        cfw_listener_conn_close(c);
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
    cfw_listener_req_free(c);
    set_state(c, ST_WRITE, now_ms() + c->l->o.write_timeout_ms);
    return STEP_AGAIN;
}

/* The body is complete: the route's handler answers. */
static enum step dispatch(struct conn *c)
{
    cfw_listener_req_handle(c->req);
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

/* A complete head of head_len bytes in c->in: the request, routed and checked before its body. */
static enum step start_request(struct conn *c, size_t head_len)
{
    struct cfw_listener *l = c->l;
    struct cfw_listener_req *req = cfw_xcalloc(1, sizeof(*req));
    enum step s;

    req->c = c;
    c->req = req;
    cfw_buf_init(&req->extra, CFW_BUF_MAX_BUILT);
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
    cfw_listener_req_terminate(req);
    l->stats.requests++;
    req->max_body = l->o.max_body;
    req->body_done = req->head.content_length <= 0 && !req->head.chunked;
    if (cfw_listener_req_route(req)) {
        return finish_request(c);
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
        cfw_listener_conn_close(c);
        return;
    }
}

void cfw_listener_conn_on_read(evutil_socket_t fd, short what, void *arg)
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
            cfw_listener_conn_close(c);
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
            cfw_listener_conn_close(c);
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
            cfw_listener_conn_close(c);
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
        cfw_listener_conn_close(c);
        return;
    default:
        cfw_listener_conn_close(c);
        return;
    }
    if (respond_error(c, 408) == STEP_AGAIN) {
        conn_process(c);
    }
}

struct conn *cfw_listener_conn_new(struct cfw_listener *l, int fd)
{
    struct conn *c = cfw_xcalloc(1, sizeof(*c));

    c->l = l;
    c->fd = fd;
    c->queue = -1;
    cfw_buf_init(&c->out, CFW_BUF_MAX_BUILT); /* answers the daemon builds */
    c->ev_read = event_new(l->base, fd, EV_READ | EV_PERSIST, cfw_listener_conn_on_read, c);
    c->ev_write = event_new(l->base, fd, EV_WRITE | EV_PERSIST, on_write, c);
    c->ev_timer = evtimer_new(l->base, on_timer, c);
    l->nconns++;
    l->stats.connections = l->nconns;
    l->stats.accepted++;
    if (c->ev_read == NULL || c->ev_write == NULL || c->ev_timer == NULL) {
        cfw_listener_conn_close(c);
        return NULL;
    }
    set_state(c, ST_HEAD, now_ms() + l->o.head_timeout_ms);
    return c;
}
