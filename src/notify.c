/* The notifier facade: sinks + router + outbox + HTTP on one event_base. */
#include "cfwatchd/notify.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/http.h"
#include "cfwatchd/log.h"
#include "cfwatchd/loop.h"
#include "cfwatchd/router.h"
#include "cfwatchd/sink.h"

/* A spool-full error is logged at most this often; the rest are counted. */
#define FULL_LOG_INTERVAL_MS 60000
#define TEST_ENDPOINTS_MAX 16

struct nsink;

struct delivery {
    struct cfw_notifier *n;
    struct cfw_outbox_job *job; /* NULL for an Alertmanager re-send */
    struct nsink *ns;
    unsigned endpoint;
    struct cfw_http_req *req; /* NULL while parked behind a re-send (refresh_busy) */
    struct delivery *prev;
    struct delivery *next;
};

struct nsink {
    struct cfw_notifier *n;
    struct cfw_sink *sink;
    uint64_t submitted;
    uint64_t refused;
    uint64_t local_sent;
    struct event *refresh;
    unsigned refresh_in_flight;
    bool refresh_warned;
};

struct cfw_notifier {
    struct event_base *base;
    struct cfw_sinks *sinks;
    struct nsink *ns;
    size_t n;
    struct cfw_router *router;
    struct cfw_outbox *outbox;
    struct cfw_http *http;
    FILE *out;
    struct delivery *deliveries;
    char scratch[CFW_SINK_REASON_MAX];
    uint64_t undelivered;
    bool submit_failed;
    struct cfw_ratelog full_log; /* refused notifications: logged at most once a minute */
    cfw_notifier_idle_cb idle_cb;
    void *idle_arg;
    /* the test notification in progress */
    struct cfw_outbox_job *test_jobs[TEST_ENDPOINTS_MAX];
    size_t test_n;
    size_t test_left;
    bool test_all_ok;
    struct cfw_test_result *test_out;
};

static struct nsink *find_ns(const struct cfw_notifier *n, const char *name)
{
    for (size_t i = 0; i < n->n; i++) {
        if (strcmp(cfw_sink_name(n->ns[i].sink), name) == 0) {
            return &n->ns[i];
        }
    }
    return NULL;
}

static void delivery_link(struct cfw_notifier *n, struct delivery *d)
{
    d->next = n->deliveries;
    if (n->deliveries != NULL) {
        n->deliveries->prev = d;
    }
    n->deliveries = d;
}

static void delivery_unlink(struct cfw_notifier *n, struct delivery *d)
{
    if (d->prev != NULL) {
        d->prev->next = d->next;
    } else {
        n->deliveries = d->next;
    }
    if (d->next != NULL) {
        d->next->prev = d->prev;
    }
}

static size_t test_index(const struct cfw_notifier *n, const struct cfw_outbox_job *job)
{
    for (size_t i = 0; i < n->test_n; i++) {
        if (n->test_jobs[i] == job) {
            return i;
        }
    }
    return SIZE_MAX;
}

static void test_note(struct cfw_notifier *n, struct nsink *ns, unsigned endpoint, const char *what)
{
    struct cfw_test_result *r = n->test_out;
    size_t used;

    if (r == NULL) {
        return;
    }
    used = strlen(r->answer);
    snprintf(r->answer + used, sizeof(r->answer) - used, "%s%s: %s", used > 0 ? "\n" : "",
             cfw_sink_display_url(ns->sink, endpoint), what);
}

static void on_delivered(const struct cfw_http_response *resp, void *arg)
{
    struct delivery *d = arg;
    struct cfw_notifier *n = d->n;
    struct cfw_sink_verdict v;
    struct cfw_outbox_result r;
    struct cfw_outbox_job *job = d->job;

    delivery_unlink(n, d);
    cfw_sink_classify(d->ns->sink, resp, &v);
    if (job != NULL && test_index(n, job) != SIZE_MAX && n->test_out != NULL) {
        n->test_out->status = resp->status;
        n->test_out->attempts++;
        if (v.verdict != CFW_OUTBOX_RETRY || resp->status != 0) {
            test_note(n, d->ns, d->endpoint, v.reason);
        }
    }
    cfw_log_debug("notify: sink=%s endpoint=%u job=%s %s in %" PRId64 " ms",
                  cfw_sink_name(d->ns->sink), d->endpoint,
                  job != NULL ? cfw_outbox_job_id(job) : "resend", v.reason, resp->elapsed_ms);
    free(d);
    if (job == NULL) {
        return;
    }
    r.verdict = v.verdict;
    r.retry_after_ms = v.retry_after_ms;
    r.status = resp->status;
    r.reason = v.reason;
    cfw_outbox_complete(n->outbox, job, &r);
}

static int start_request(struct cfw_notifier *n, struct nsink *ns, unsigned endpoint,
                         const char *body, size_t len, struct cfw_outbox_job *job,
                         cfw_http_done_cb cb, struct cfw_err *err, bool *permanent)
{
    struct cfw_sink_request rq;
    struct cfw_http_request hr;
    struct delivery *d;

    *permanent = false;
    if (cfw_sink_prepare(ns->sink, endpoint, body, len, cfw_now_wall_ms(), &rq, err) != 0) {
        *permanent = true;
        return -1;
    }
    memset(&hr, 0, sizeof(hr));
    hr.method = "POST";
    hr.url = rq.url;
    hr.headers = (const char *const *)rq.headers;
    hr.body = rq.body;
    hr.body_len = rq.body_len;
    hr.timeout_ms = rq.timeout_ms;
    hr.connect_timeout_ms = rq.connect_timeout_ms;
    hr.ca_file = rq.ca_file;
    d = cfw_xcalloc(1, sizeof(*d));
    d->n = n;
    d->job = job;
    d->ns = ns;
    d->endpoint = endpoint;
    d->req = cfw_http_start(n->http, &hr, cb, d, err);
    cfw_sink_request_clear(&rq);
    if (d->req == NULL) {
        free(d);
        return -1;
    }
    delivery_link(n, d);
    if (job != NULL) {
        cfw_outbox_job_set_ctx(job, d);
    }
    return 0;
}

/*
 * Whether a re-send of open alerts to this endpoint is in flight. A notification for the same
 * endpoint waits for its answer (it is parked): a re-send that left while an incident was
 * still open and arrived after that incident's resolve would make Alertmanager fire the alert
 * again, until ends_after. One re-send at a time per sink, so the wait is one round trip.
 */
static bool refresh_busy(const struct cfw_notifier *n, const struct nsink *ns, unsigned endpoint)
{
    for (const struct delivery *d = n->deliveries; d != NULL; d = d->next) {
        if (d->job == NULL && d->ns == ns && d->endpoint == endpoint && d->req != NULL) {
            return true;
        }
    }
    return false;
}

static void park(struct cfw_notifier *n, struct nsink *ns, struct cfw_outbox_job *job)
{
    struct delivery *d = cfw_xcalloc(1, sizeof(*d));

    d->n = n;
    d->job = job;
    d->ns = ns;
    d->endpoint = cfw_outbox_job_endpoint(job);
    delivery_link(n, d);
    cfw_outbox_job_set_ctx(job, d);
}

static int send_job(struct cfw_outbox_job *job, struct cfw_outbox_result *fail, void *arg);

/* Starts the notifications parked behind the re-send to this endpoint that just ended. */
static void unpark(struct cfw_notifier *n, struct nsink *ns, unsigned endpoint)
{
    struct delivery *d = n->deliveries;

    while (d != NULL) {
        struct delivery *next = d->next;
        if (d->req == NULL && d->job != NULL && d->ns == ns && d->endpoint == endpoint) {
            struct cfw_outbox_job *job = d->job;
            /* no Retry-After (0 would say "retry now") */
            struct cfw_outbox_result r = {.verdict = CFW_OUTBOX_RETRY, .retry_after_ms = -1};

            delivery_unlink(n, d);
            cfw_outbox_job_set_ctx(job, NULL);
            free(d);
            if (send_job(job, &r, n) != 0) {
                cfw_outbox_complete(n->outbox, job, &r);
            }
            /* the list changed under us: start over (parked entries left are few) */
            next = n->deliveries;
        }
        d = next;
    }
}

static int send_job(struct cfw_outbox_job *job, struct cfw_outbox_result *fail, void *arg)
{
    struct cfw_notifier *n = arg;
    struct nsink *ns = find_ns(n, cfw_outbox_job_sink(job));
    struct cfw_err err = {0};
    size_t len = 0;
    const char *body = cfw_outbox_job_body(job, &len);
    bool permanent = false;
    char *clean;

    if (ns == NULL || cfw_sink_is_local(ns->sink) ||
        cfw_outbox_job_endpoint(job) >= cfw_sink_endpoints(ns->sink)) {
        fail->verdict = CFW_OUTBOX_PERMANENT;
        fail->reason = "the sink or its endpoint is no longer configured";
        return -1;
    }
    if (refresh_busy(n, ns, cfw_outbox_job_endpoint(job))) {
        park(n, ns, job);
        return 0;
    }
    if (start_request(n, ns, cfw_outbox_job_endpoint(job), body, len, job, on_delivered, &err,
                      &permanent) == 0) {
        return 0;
    }
    clean = cfw_sink_scrub(ns->sink, err.msg);
    snprintf(n->scratch, sizeof(n->scratch), "%s", clean);
    free(clean);
    fail->verdict = permanent ? CFW_OUTBOX_PERMANENT : CFW_OUTBOX_RETRY;
    fail->reason = n->scratch;
    return -1;
}

static bool known_sink(const char *sink, unsigned endpoint, void *arg)
{
    struct cfw_notifier *n = arg;
    struct nsink *ns = find_ns(n, sink);

    return ns != NULL && endpoint < cfw_sink_endpoints(ns->sink);
}

static void on_gone(struct cfw_outbox_job *job, bool delivered, void *arg)
{
    struct cfw_notifier *n = arg;
    size_t ti = test_index(n, job);

    if (ti != SIZE_MAX) {
        struct nsink *ns = find_ns(n, cfw_outbox_job_sink(job));
        n->test_jobs[ti] = NULL;
        n->test_left--;
        if (!delivered) {
            n->test_all_ok = false;
            if (ns != NULL && n->test_out != NULL && cfw_outbox_job_last_status(job) == 0) {
                test_note(n, ns, cfw_outbox_job_endpoint(job), cfw_outbox_job_last_reason(job));
            }
        }
        return;
    }
    if (!delivered) {
        n->undelivered++;
    }
    if (n->idle_cb != NULL && cfw_outbox_pending(n->outbox) == 0 &&
        cfw_router_pending(n->router) == 0) {
        n->idle_cb(n->idle_arg);
    }
}

static void log_refused(struct cfw_notifier *n, struct nsink *ns, const char *why)
{
    uint64_t unlogged;

    ns->refused++;
    n->undelivered++;
    n->submit_failed = true;
    if (cfw_ratelog_ok(&n->full_log, cfw_now_mono_ms(), FULL_LOG_INTERVAL_MS, 1, &unlogged)) {
        cfw_log_err("notify: sink=%s notification not spooled: %s%s", cfw_sink_name(ns->sink), why,
                    unlogged > 0 ? " (and earlier ones, counted)" : "");
    }
}

static void on_emit(size_t idx, const struct cfw_notification *note, void *arg)
{
    struct cfw_notifier *n = arg;
    struct nsink *ns = &n->ns[idx];
    const char **keys;
    size_t nkeys = 0;
    size_t len = 0;
    char *body;
    struct cfw_outbox_entry e;

    ns->submitted++;
    if (cfw_sink_is_local(ns->sink)) {
        cfw_sink_write(ns->sink, note, n->out);
        ns->local_sent++;
        return;
    }
    body = cfw_sink_build(ns->sink, note, &len);
    if (body == NULL) {
        log_refused(n, ns, "the payload could not be built");
        return;
    }
    if (note->kind == CFW_NOTIFY_DIGEST) {
        keys = cfw_xcalloc(note->n_items + 1, sizeof(*keys));
        for (size_t i = 0; i < note->n_items; i++) {
            if (note->items[i].inc.key != NULL) {
                keys[nkeys++] = note->items[i].inc.key;
            }
        }
    } else {
        keys = cfw_xcalloc(2, sizeof(*keys));
        if (note->inc->key != NULL) {
            keys[nkeys++] = note->inc->key;
        }
    }
    memset(&e, 0, sizeof(e));
    e.sink = cfw_sink_name(ns->sink);
    e.kind = cfw_sink_event_name(note);
    e.keys = keys;
    e.body = body;
    e.body_len = len;
    for (size_t ep = 0; ep < cfw_sink_endpoints(ns->sink); ep++) {
        struct cfw_err err = {0};
        e.endpoint = (unsigned)ep;
        if (cfw_outbox_add(n->outbox, &e, &err) == NULL) {
            log_refused(n, ns, err.msg);
        }
    }
    free(keys);
    free(body);
}

/* ---- Alertmanager re-sends ---- */

static void on_resent(const struct cfw_http_response *resp, void *arg)
{
    struct delivery *d = arg;
    struct cfw_sink_verdict v;
    struct nsink *ns = d->ns;

    delivery_unlink(d->n, d);
    ns->refresh_in_flight--;
    unpark(d->n, ns, d->endpoint);
    cfw_sink_classify(ns->sink, resp, &v);
    if (v.verdict != CFW_OUTBOX_DONE) {
        if (!ns->refresh_warned) {
            cfw_log_warn("notify: sink=%s re-send of open alerts to %s failed: %s (next "
                         "interval retries; further failures logged at debug)",
                         cfw_sink_name(ns->sink), cfw_sink_display_url(ns->sink, d->endpoint),
                         v.reason);
            ns->refresh_warned = true;
        } else {
            cfw_log_debug("notify: sink=%s re-send failed: %s", cfw_sink_name(ns->sink), v.reason);
        }
    } else {
        ns->refresh_warned = false;
    }
    free(d);
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
    struct nsink *ns = arg;
    struct cfw_notifier *n = ns->n;
    size_t len = 0;
    char *body;

    (void)fd;
    (void)what;
    if (ns->refresh_in_flight > 0) {
        return;
    }
    body = cfw_sink_refresh_body(ns->sink, &len);
    if (body == NULL) {
        return;
    }
    for (size_t ep = 0; ep < cfw_sink_endpoints(ns->sink); ep++) {
        struct cfw_err err = {0};
        bool permanent;
        /* re-sends are not spooled: the next interval is their retry */
        if (start_request(n, ns, (unsigned)ep, body, len, NULL, on_resent, &err, &permanent) == 0) {
            ns->refresh_in_flight++;
        } else {
            cfw_log_debug("notify: sink=%s re-send not started", cfw_sink_name(ns->sink));
        }
    }
    free(body);
}

/* ---- lifecycle ---- */

int cfw_notifier_parse_opts(const struct cfw_node *map, const char *path,
                            struct cfw_notifier_opts *opts, struct cfw_diag *diag)
{
    return cfw_outbox_opts_parse(map, path, &opts->outbox, diag);
}

struct cfw_notifier *cfw_notifier_start(struct event_base *base, const struct cfw_node *sinks_seq,
                                        const struct cfw_node *outbox, const char *state_dir,
                                        const char *public_url, bool no_reserve,
                                        struct cfw_diag *diag)
{
    struct cfw_notifier_opts no = {0};
    struct cfw_notifier *n = NULL;
    char *client_url = NULL;

    if (public_url != NULL && public_url[0] != '\0') {
        size_t len = strlen(public_url);
        client_url =
            cfw_xasprintf("%s%sincidents", public_url, public_url[len - 1] == '/' ? "" : "/");
    }
    no.client_url = client_url;
    cfw_outbox_opts_default(&no.outbox);
    if (cfw_notifier_parse_opts(outbox, "outbox", &no, diag) == 0) {
        if (no_reserve) {
            no.outbox.reserve_bytes = -1;
        }
        n = cfw_notifier_new_opts(base, sinks_seq, state_dir, &no, diag);
    }
    free(client_url);
    return n;
}

struct cfw_notifier *cfw_notifier_new(struct event_base *base, const struct cfw_node *sinks_seq,
                                      const char *state_dir, struct cfw_diag *diag)
{
    return cfw_notifier_new_opts(base, sinks_seq, state_dir, NULL, diag);
}

struct cfw_notifier *cfw_notifier_new_opts(struct event_base *base,
                                           const struct cfw_node *sinks_seq, const char *state_dir,
                                           const struct cfw_notifier_opts *opts,
                                           struct cfw_diag *diag)
{
    struct cfw_notifier *n = cfw_xcalloc(1, sizeof(*n));
    struct cfw_notifier_opts o;
    struct cfw_outbox_hooks hooks;
    struct cfw_err err = {0};

    memset(&o, 0, sizeof(o));
    cfw_outbox_opts_default(&o.outbox);
    if (opts != NULL) {
        o = *opts;
    }
    n->base = base;
    n->out = o.local_out != NULL ? o.local_out : stdout;
    n->sinks = cfw_sinks_parse(sinks_seq, "sinks", diag);
    if (n->sinks == NULL) {
        goto fail;
    }
    cfw_sinks_set_context(n->sinks, o.host, o.client_url);
    n->router = cfw_router_new(base, on_emit, n);
    n->http = cfw_http_new(base, &err);
    if (n->router == NULL || n->http == NULL) {
        cfw_diag_addf(diag, "notify: %s", err.msg[0] != '\0' ? err.msg : "cannot start");
        goto fail;
    }
    n->n = cfw_sinks_count(n->sinks);
    n->ns = cfw_xcalloc(n->n, sizeof(*n->ns));
    for (size_t i = 0; i < n->n; i++) {
        struct nsink *ns = &n->ns[i];
        ns->n = n;
        ns->sink = cfw_sinks_at(n->sinks, i);
        cfw_router_add_sink(n->router, cfw_sink_route(ns->sink));
        if (cfw_sink_refresh_interval(ns->sink) > 0) {
            struct timeval tv = cfw_ms_timeval(cfw_sink_refresh_interval(ns->sink));
            ns->refresh = event_new(base, -1, EV_PERSIST, on_refresh, ns);
            if (ns->refresh != NULL) {
                event_add(ns->refresh, &tv);
            }
        }
        for (size_t ep = 0; ep < cfw_sink_endpoints(ns->sink); ep++) {
            cfw_log_info("notify: sink=%s type=%s endpoint=%s", cfw_sink_name(ns->sink),
                         cfw_sink_type(ns->sink), cfw_sink_display_url(ns->sink, ep));
        }
    }
    memset(&hooks, 0, sizeof(hooks));
    hooks.send = send_job;
    hooks.known = known_sink;
    hooks.gone = on_gone;
    hooks.arg = n;
    n->outbox = cfw_outbox_new(base, state_dir, &o.outbox, &hooks, &err);
    if (n->outbox == NULL) {
        cfw_diag_addf(diag, "notify: %s", err.msg);
        goto fail;
    }
    for (size_t i = 0; i < n->n; i++) {
        cfw_outbox_set_in_flight(n->outbox, cfw_sink_name(n->ns[i].sink),
                                 cfw_sink_in_flight(n->ns[i].sink));
    }
    return n;
fail:
    cfw_notifier_free(n);
    return NULL;
}

void cfw_notifier_free(struct cfw_notifier *n)
{
    if (n == NULL) {
        return;
    }
    if (n->router != NULL && n->outbox != NULL) {
        /* digests waiting for a token go to the spool, so nothing is lost */
        cfw_router_flush(n->router, cfw_now_mono_ms());
    }
    for (size_t i = 0; i < n->n; i++) {
        if (n->ns[i].refresh != NULL) {
            event_free(n->ns[i].refresh);
        }
    }
    while (n->deliveries != NULL) {
        struct delivery *d = n->deliveries;
        delivery_unlink(n, d);
        cfw_http_cancel(n->http, d->req);
        free(d);
    }
    cfw_http_free(n->http);
    cfw_router_free(n->router);
    cfw_outbox_free(n->outbox);
    cfw_sinks_free(n->sinks);
    free(n->ns);
    free(n);
}

int cfw_notifier_submit(struct cfw_notifier *n, const struct cfw_incident *inc,
                        enum cfw_transition t)
{
    for (size_t i = 0; i < n->n; i++) {
        if (cfw_route_matches(cfw_sink_route(n->ns[i].sink), inc)) {
            cfw_sink_observe(n->ns[i].sink, inc, t);
        }
    }
    n->submit_failed = false;
    cfw_router_route(n->router, inc, t, cfw_now_mono_ms(), cfw_now_wall_ms());
    return n->submit_failed ? -1 : 0;
}

void cfw_notifier_restore(struct cfw_notifier *n, const struct cfw_incident *inc)
{
    if (inc->state != CFW_INCIDENT_OPEN) {
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        if (cfw_route_matches(cfw_sink_route(n->ns[i].sink), inc)) {
            cfw_sink_observe(n->ns[i].sink, inc, CFW_TRANSITION_OPEN);
        }
    }
}

size_t cfw_notifier_pending(const struct cfw_notifier *n)
{
    return cfw_outbox_pending(n->outbox) + cfw_router_pending(n->router);
}

static bool drained(void *arg)
{
    return cfw_notifier_pending(arg) == 0;
}

int cfw_notifier_drain(struct cfw_notifier *n, int64_t deadline_ms)
{
    size_t left;

    cfw_loop_until(n->base, drained, n, deadline_ms);
    left = cfw_outbox_pending(n->outbox);
    if (cfw_router_pending(n->router) > 0) {
        /* digests still waiting for a token: spool them so a later run sends them */
        cfw_router_flush(n->router, cfw_now_mono_ms());
        left = cfw_outbox_pending(n->outbox);
    }
    if (left == 0 && n->undelivered == 0) {
        return 0;
    }
    cfw_log_err("notify: %zu notifications still pending at the deadline (kept in the outbox "
                "for the next run), %" PRIu64 " dead-lettered or refused",
                left, n->undelivered);
    return -1;
}

void cfw_notifier_set_idle_cb(struct cfw_notifier *n, cfw_notifier_idle_cb cb, void *arg)
{
    n->idle_cb = cb;
    n->idle_arg = arg;
}

static bool test_finished(void *arg)
{
    const struct cfw_notifier *n = arg;

    return n->test_left == 0;
}

/* The incident a test notification describes, under key (its fields are cleared by the caller). */
static void test_incident(struct cfw_incident *inc, char *key, int64_t wall)
{
    memset(inc, 0, sizeof(*inc));
    inc->key = key;
    inc->rule = "cfwatchd-test";
    inc->pack = "cfwatchd";
    inc->severity = CFW_SEV_INFO;
    inc->title = "cfwatchd test notification - no action needed";
    inc->hint = "Sent by cfwatchd --test-alert to check this receiver; it is not an incident.";
    inc->sample = "cfwatchd test notification";
    inc->count = 1;
    inc->occurrences = 1;
    inc->first.wall_ms = inc->last.wall_ms = inc->opened_wall_ms = wall;
    inc->first.input = inc->last.input = "test-alert";
    inc->state = CFW_INCIDENT_OPEN;
    cfw_fields_set(&inc->fields, "script", "cfwatchd-test");
}

/* Spools the test payload once for each endpoint of the sink; a refusal is noted at once. */
static void test_spool(struct cfw_notifier *n, struct nsink *ns, const char *sink_name,
                       const char *key, const char *body, size_t len)
{
    const char *keys[2];
    struct cfw_outbox_entry e;

    keys[0] = key;
    keys[1] = NULL;
    memset(&e, 0, sizeof(e));
    e.sink = sink_name;
    e.kind = "test";
    e.keys = keys;
    e.body = body;
    e.body_len = len;
    e.test = true;
    n->test_n = 0;
    n->test_all_ok = true;
    for (size_t ep = 0; ep < cfw_sink_endpoints(ns->sink) && ep < TEST_ENDPOINTS_MAX; ep++) {
        struct cfw_err err = {0};
        struct cfw_outbox_job *job;
        e.endpoint = (unsigned)ep;
        job = cfw_outbox_add(n->outbox, &e, &err);
        if (job == NULL) {
            test_note(n, ns, (unsigned)ep, err.msg);
            n->test_all_ok = false;
            continue;
        }
        n->test_jobs[n->test_n++] = job;
    }
}

/* Abandons the test jobs still without a final answer at the deadline: not kept for later. */
static void test_abandon(struct cfw_notifier *n, struct nsink *ns)
{
    for (size_t i = 0; i < n->test_n; i++) {
        struct cfw_outbox_job *job = n->test_jobs[i];
        struct delivery *d;
        if (job == NULL) {
            continue;
        }
        d = cfw_outbox_job_ctx(job);
        if (d != NULL) {
            delivery_unlink(n, d);
            cfw_http_cancel(n->http, d->req);
            free(d);
        }
        test_note(n, ns, cfw_outbox_job_endpoint(job),
                  cfw_outbox_job_last_reason(job)[0] != '\0' ? cfw_outbox_job_last_reason(job)
                                                             : "no answer before the deadline");
        n->test_jobs[i] = NULL;
        n->test_all_ok = false;
        cfw_outbox_drop(n->outbox, job);
    }
}

int cfw_notifier_test_alert(struct cfw_notifier *n, const char *sink_name, int64_t deadline_ms,
                            struct cfw_test_result *out)
{
    struct nsink *ns = find_ns(n, sink_name);
    struct cfw_incident inc;
    struct cfw_notification note;
    int64_t wall = cfw_now_wall_ms();
    char *key;
    char *body;
    size_t len = 0;

    memset(out, 0, sizeof(*out));
    if (ns == NULL) {
        snprintf(out->answer, sizeof(out->answer), "no sink named '%.100s'", sink_name);
        return -1;
    }
    key = cfw_xasprintf("cfwatchd-test/%s", sink_name);
    test_incident(&inc, key, wall);
    memset(&note, 0, sizeof(note));
    note.kind = CFW_NOTIFY_TEST;
    note.transition = CFW_TRANSITION_OPEN;
    note.inc = &inc;
    note.now_wall_ms = wall;
    if (cfw_sink_is_local(ns->sink)) {
        cfw_sink_write(ns->sink, &note, n->out);
        out->delivered = true;
        snprintf(out->answer, sizeof(out->answer), "written to standard output");
        cfw_fields_clear(&inc.fields);
        free(key);
        return 0;
    }
    body = cfw_sink_build(ns->sink, &note, &len);
    cfw_fields_clear(&inc.fields);
    if (body == NULL) {
        snprintf(out->answer, sizeof(out->answer), "the test payload could not be built");
        free(key);
        return -1;
    }
    n->test_out = out;
    test_spool(n, ns, sink_name, key, body, len);
    free(body);
    free(key);
    n->test_left = n->test_n;
    cfw_loop_until(n->base, test_finished, n, deadline_ms);
    test_abandon(n, ns);
    out->delivered = n->test_all_ok && n->test_n > 0;
    n->test_out = NULL;
    n->test_n = 0;
    n->test_left = 0;
    return out->delivered ? 0 : -1;
}

void cfw_notifier_stats(const struct cfw_notifier *n, struct cfw_notifier_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->n_sinks = n->n;
    out->sinks = cfw_xcalloc(n->n, sizeof(*out->sinks));
    for (size_t i = 0; i < n->n; i++) {
        struct cfw_notifier_sink_stats *s = &out->sinks[i];
        struct cfw_outbox_lane_stats l;
        cfw_outbox_sink_stats(n->outbox, cfw_sink_name(n->ns[i].sink), &l);
        s->name = cfw_sink_name(n->ns[i].sink);
        s->type = cfw_sink_type(n->ns[i].sink);
        s->submitted = n->ns[i].submitted;
        s->sent = l.sent + n->ns[i].local_sent;
        s->retried = l.retried;
        s->dead = l.dead;
        s->refused = n->ns[i].refused;
        s->digested = cfw_router_digested(n->router, i);
        s->digests = cfw_router_digests(n->router, i);
        s->pending = l.pending;
        s->in_flight = l.in_flight;
    }
    cfw_outbox_stats(n->outbox, &out->outbox);
    out->router_pending = cfw_router_pending(n->router);
}

void cfw_notifier_stats_clear(struct cfw_notifier_stats *st)
{
    if (st != NULL) {
        free(st->sinks);
        st->sinks = NULL;
        st->n_sinks = 0;
    }
}

size_t cfw_notifier_sink_count(const struct cfw_notifier *n)
{
    return n->n;
}

const char *cfw_notifier_sink_name(const struct cfw_notifier *n, size_t i)
{
    return i < n->n ? cfw_sink_name(n->ns[i].sink) : NULL;
}

const char *cfw_notifier_sink_type(const struct cfw_notifier *n, size_t i)
{
    return i < n->n ? cfw_sink_type(n->ns[i].sink) : NULL;
}

size_t cfw_notifier_sink_endpoints(const struct cfw_notifier *n, size_t i)
{
    return i < n->n ? cfw_sink_endpoints(n->ns[i].sink) : 0;
}

const char *cfw_notifier_sink_url(const struct cfw_notifier *n, size_t i, size_t endpoint)
{
    return i < n->n ? cfw_sink_display_url(n->ns[i].sink, endpoint) : NULL;
}

void cfw_notifier_metrics(const struct cfw_notifier *n, struct cfw_metrics *m)
{
    static const char *const names[] = {"sent", "retried", "dead", "refused", "digested"};
    struct cfw_notifier_stats ns = {0};

    cfw_notifier_stats(n, &ns);
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        char *name = cfw_xasprintf("cfwatchd_notifications_%s_total", names[k]);
        char *help = cfw_xasprintf("Notifications %s per sink.", names[k]);
        struct cfw_metrics_family *f = cfw_metrics_family(m, name, "counter", help);

        for (size_t i = 0; i < ns.n_sinks; i++) {
            const struct cfw_notifier_sink_stats *x = &ns.sinks[i];
            const uint64_t v[] = {x->sent, x->retried, x->dead, x->refused, x->digested};

            cfw_metrics_u64(f, CFW_LABELS("sink", x->name), v[k]);
        }
        free(name);
        free(help);
    }
    cfw_outbox_metrics(&ns.outbox, cfw_notifier_pending(n), m);
    cfw_notifier_stats_clear(&ns);
}
