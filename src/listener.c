/*
 * The daemon's HTTP/1.1 listener: the listening socket, the accept loop within the connection
 * cap (eviction of the least-progressed connection, the pause at EMFILE), libevent's own
 * messages, setup and teardown. A connection's state machine is in listener_conn.c, the
 * request routes see in listener_req.c, the head parser and the chunked decoder in
 * listener_parse.c. See listener.h for the limits and why they are what they are.
 */
#include "cfwatchd/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cfwatchd/log.h"
#include "cfwatchd/metrics.h"
#include "listener_int.h"

/* Connections accepted per callback, so that accepted ones are served between bursts. */
#define ACCEPT_BUDGET 64u
/* Fewest connections allowed however low RLIMIT_NOFILE is. */
#define MIN_CONNS 16u

/* ---- accepting ---- */

void cfw_listener_accept_resume(struct cfw_listener *l)
{
    if (!l->accepting && !l->paused_full && !evtimer_pending(l->ev_retry, NULL)) {
        event_add(l->ev_accept, NULL);
        l->accepting = true;
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
    cfw_listener_conn_close(c);
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
    bool again = l->accept_log.started;
    uint64_t skipped;
    struct timeval tv;
    struct conn *v;

    l->stats.accept_errors++;
    if (cfw_ratelog_ok(&l->accept_log, cfw_now_mono_ms(), CFW_LISTENER_LOG_INTERVAL_MS, 1,
                       &skipped)) {
        cfw_log_warn("listener: accept() failed %llu time(s)%s (last: %s); new connections "
                     "wait in the backlog, retried every %u to %u ms (logged once a minute)",
                     (unsigned long long)skipped + 1, again ? " in the last minute" : "",
                     strerror(err), l->o.accept_retry_min_ms, l->o.accept_retry_max_ms);
    }
    accept_pause(l);
    if ((err == EMFILE || err == ENFILE) && (v = victim(l)) != NULL) {
        l->stats.evicted++;
        evict(v);
    }
    tv = cfw_ms_timeval(l->retry_ms);
    evtimer_add(l->ev_retry, &tv);
    l->retry_ms =
        l->retry_ms * 2 < l->o.accept_retry_max_ms ? l->retry_ms * 2 : l->o.accept_retry_max_ms;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_listener *l = arg;

    (void)fd;
    (void)what;
    cfw_listener_accept_resume(l);
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
        c = cfw_listener_conn_new(l, cfd);
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
        cfw_listener_conn_on_read(c->fd, EV_READ, c);
    }
}

/* ---- libevent's own messages ---- */

static struct cfw_ratelog evlog;

static void on_libevent_log(int severity, const char *msg)
{
    uint64_t suppressed;
    bool ok = cfw_ratelog_ok(&evlog, cfw_now_mono_ms(), CFW_LISTENER_LOG_INTERVAL_MS,
                             CFW_LISTENER_LIBEVENT_LOG_MAX, &suppressed);
    char esc[512];
    enum cfw_log_level lvl = severity >= EVENT_LOG_ERR    ? CFW_LOG_ERR
                             : severity == EVENT_LOG_WARN ? CFW_LOG_WARNING
                             : severity == EVENT_LOG_MSG  ? CFW_LOG_INFO
                                                          : CFW_LOG_DEBUG;

    if (suppressed > 0) {
        cfw_log_warn("libevent: %llu more message(s) in the last minute not logged",
                     (unsigned long long)suppressed);
    }
    if (!ok) {
        return;
    }
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
            cfw_listener_conn_close(TAILQ_FIRST(&l->q[q]));
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

void cfw_listener_metrics(const struct cfw_listener *l, struct cfw_metrics *m)
{
    const struct cfw_listener_stats *ls = &l->stats;
    const struct cfw_metric one[] = {
        {"cfwatchd_listener_connections", "gauge", "Connections open on the HTTP listener.",
         ls->connections},
        {"cfwatchd_listener_connections_total", "counter",
         "Connections accepted by the HTTP listener.", ls->accepted},
    };
    const struct {
        const char *reason;
        uint64_t v;
    } rej[] = {
        {"timeout", ls->timeouts},           {"evicted", ls->evicted},     {"refused", ls->refused},
        {"bad_request", ls->bad_requests},   {"too_large", ls->too_large}, {"busy", ls->busy},
        {"accept_error", ls->accept_errors},
    };
    struct cfw_metrics_family *f;

    cfw_metrics_add(m, one, sizeof(one) / sizeof(one[0]));
    f = cfw_metrics_family(m, "cfwatchd_listener_rejected_total", "counter",
                           "Connections or requests the HTTP listener refused or closed, by "
                           "reason.");
    for (size_t k = 0; k < sizeof(rej) / sizeof(rej[0]); k++) {
        cfw_metrics_u64(f, CFW_LABELS("reason", rej[k].reason), rej[k].v);
    }
}
