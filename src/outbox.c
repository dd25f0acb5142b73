/*
 * The outbox's scheduler: the queue of jobs in sequence order, lanes (one per sink endpoint)
 * with their in-flight limits, pauses and counters, chain keys that keep a resolve behind its
 * trigger, backoff with full jitter and the one retry timer re-armed to the earliest due job.
 * The spool files behind the jobs are kept by outbox_spool.c.
 */
#include "cfwatchd/outbox.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "cfwatchd/log.h"
#include "cfwatchd/metrics.h"
#include "cfwatchd/schema.h"
#include "cfwatchd/secrets.h"
#include "outbox_int.h"

struct in_flight_cfg {
    char *sink;
    unsigned max;
    struct in_flight_cfg *next;
};

uint64_t cfw_outbox_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;

    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t chain_hash(const char *sink, unsigned endpoint, const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    h = cfw_outbox_fnv1a(h, sink, strlen(sink) + 1);
    h = cfw_outbox_fnv1a(h, &endpoint, sizeof(endpoint));
    h = cfw_outbox_fnv1a(h, key, strlen(key));
    return h == 0 ? 1 : h;
}

static uint64_t next_rand(struct cfw_outbox *ob)
{
    /* xorshift64*: good enough for jitter */
    uint64_t x = ob->rnd;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ob->rnd = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int64_t cfw_outbox_backoff_ms(int64_t base_ms, int64_t max_ms, unsigned attempt, uint64_t rnd)
{
    int64_t cap = base_ms;
    int64_t floor_ms = base_ms / 4;

    for (unsigned i = 0; i < attempt && cap < max_ms; i++) {
        cap *= 2;
    }
    if (cap > max_ms) {
        cap = max_ms;
    }
    if (cap <= floor_ms) {
        return cap;
    }
    return floor_ms + (int64_t)(rnd % (uint64_t)(cap - floor_ms + 1));
}

static struct lane *lane_get(struct cfw_outbox *ob, const char *sink, unsigned endpoint)
{
    struct lane *l;

    for (l = ob->lanes; l != NULL; l = l->next) {
        if (l->endpoint == endpoint && strcmp(l->sink, sink) == 0) {
            return l;
        }
    }
    l = cfw_xcalloc(1, sizeof(*l));
    l->sink = cfw_xstrdup(sink);
    l->endpoint = endpoint;
    l->max_in_flight = CFW_OUTBOX_IN_FLIGHT_DEFAULT;
    for (struct in_flight_cfg *c = ob->cfgs; c != NULL; c = c->next) {
        if (strcmp(c->sink, sink) == 0) {
            l->max_in_flight = c->max;
        }
    }
    l->next = ob->lanes;
    ob->lanes = l;
    return l;
}

void cfw_outbox_set_in_flight(struct cfw_outbox *ob, const char *sink, unsigned max)
{
    struct in_flight_cfg *c = cfw_xcalloc(1, sizeof(*c));

    if (max == 0) {
        max = 1;
    }
    c->sink = cfw_xstrdup(sink);
    c->max = max;
    c->next = ob->cfgs;
    ob->cfgs = c;
    for (struct lane *l = ob->lanes; l != NULL; l = l->next) {
        if (strcmp(l->sink, sink) == 0) {
            l->max_in_flight = max;
        }
    }
}

void cfw_outbox_job_free(struct cfw_outbox_job *j)
{
    if (j == NULL) {
        return;
    }
    for (size_t i = 0; i < j->nkeys; i++) {
        free(j->keys[i]);
    }
    free(j->keys);
    free(j->khash);
    free(j->sink);
    free(j->kind);
    free(j->body);
    free(j);
}

static void job_link_sorted(struct cfw_outbox *ob, struct cfw_outbox_job *j)
{
    struct cfw_outbox_job *at = ob->tail;

    /* jobs arrive in seq order, except during replay: walk back from the tail */
    while (at != NULL && at->seq > j->seq) {
        at = at->prev;
    }
    j->prev = at;
    j->next = at != NULL ? at->next : ob->head;
    if (j->next != NULL) {
        j->next->prev = j;
    } else {
        ob->tail = j;
    }
    if (at != NULL) {
        at->next = j;
    } else {
        ob->head = j;
    }
    ob->st.jobs++;
    ob->st.bytes += j->file_bytes;
    if (j->held) {
        ob->st.unspooled++;
    }
    j->lane->pending++;
}

static void job_unlink(struct cfw_outbox *ob, struct cfw_outbox_job *j)
{
    if (j->prev != NULL) {
        j->prev->next = j->next;
    } else {
        ob->head = j->next;
    }
    if (j->next != NULL) {
        j->next->prev = j->prev;
    } else {
        ob->tail = j->prev;
    }
    j->prev = j->next = NULL;
    ob->st.jobs--;
    ob->st.bytes -= j->file_bytes;
    if (j->held) {
        ob->st.unspooled--;
    }
    j->lane->pending--;
}

static void arm(struct cfw_outbox *ob, int64_t delay_ms)
{
    struct timeval tv;

    if (ob->timer == NULL) {
        return;
    }
    tv = cfw_ms_timeval(delay_ms);
    evtimer_del(ob->timer);
    evtimer_add(ob->timer, &tv);
}

void cfw_outbox_kick(struct cfw_outbox *ob)
{
    arm(ob, 0);
}

static void job_gone(struct cfw_outbox *ob, struct cfw_outbox_job *j, bool delivered)
{
    job_unlink(ob, j);
    if (ob->hooks.gone != NULL) {
        ob->hooks.gone(j, delivered, ob->hooks.arg);
    }
    cfw_outbox_job_free(j);
}

/* Dead-letters a job: saved in dead/ with the reason (a test notification is only logged). */
static void dead_letter(struct cfw_outbox *ob, struct cfw_outbox_job *j, const char *why)
{
    char reason[OUTBOX_REASON_MAX];

    /* why may point into j->last_reason */
    snprintf(reason, sizeof(reason), "%s", why);
    snprintf(j->last_reason, sizeof(j->last_reason), "%s", reason);
    j->lane->dead++;
    ob->st.dead++;
    if (j->test) {
        cfw_log_warn("outbox: test notification for sink=%s not delivered: %s", j->sink, reason);
    } else {
        cfw_outbox_spool_bury(ob, j, reason);
    }
    cfw_outbox_spool_remove(ob, j);
    job_gone(ob, j, false);
}

static bool busy_test_set(struct cfw_outbox *ob, uint64_t h)
{
    size_t mask = ob->busy_cap - 1;
    size_t i = (size_t)h & mask;

    while (ob->busy[i] != 0) {
        if (ob->busy[i] == h) {
            return true;
        }
        i = (i + 1) & mask;
    }
    ob->busy[i] = h;
    return false;
}

static void busy_reset(struct cfw_outbox *ob)
{
    size_t nkeys = 0;
    size_t want = 64;

    for (struct cfw_outbox_job *j = ob->head; j != NULL; j = j->next) {
        nkeys += j->nkeys;
    }
    while (want < nkeys * 2 + 1) {
        want *= 2;
    }
    if (want != ob->busy_cap) {
        free(ob->busy);
        ob->busy = cfw_xcalloc(want, sizeof(*ob->busy));
        ob->busy_cap = want;
    } else {
        memset(ob->busy, 0, want * sizeof(*ob->busy));
    }
}

static void fail_job(struct cfw_outbox *ob, struct cfw_outbox_job *j,
                     const struct cfw_outbox_result *r);

/*
 * One scheduler pass over the spool in sequence order. A job may start when it is due, its
 * lane is not paused, the lane has room (one probe at a time while the lane is failing), and
 * no earlier job of the lane shares a chain key. The pass also dead-letters expired jobs and
 * re-arms the one timer to the earliest moment something can change. Every time here is
 * monotonic: due times and pauses on CLOCK_MONOTONIC, ages on the boot clock (see
 * cfw_stamp_elapsed_ms), so a jump of the wall clock changes nothing.
 */
static void run(struct cfw_outbox *ob)
{
    int64_t now = cfw_now_mono_ms();
    struct cfw_stamp stamp;
    int64_t wake = INT64_MAX;
    struct cfw_outbox_job *j;
    struct cfw_outbox_job *next;

    if (ob->running) {
        ob->rerun = true;
        return;
    }
    ob->running = true;
    cfw_stamp_now(&stamp);
    busy_reset(ob);
    for (j = ob->head; j != NULL; j = next) {
        bool blocked = false;
        int64_t ready;
        int64_t expire;
        int64_t age = cfw_stamp_elapsed_ms(&j->created, &stamp);
        unsigned limit;
        struct cfw_outbox_result fail = {CFW_OUTBOX_RETRY, -1, 0, NULL};

        next = j->next;
        if (!j->in_flight && age > ob->opts.max_age_ms) {
            char reason[OUTBOX_REASON_MAX + 64];
            snprintf(reason, sizeof(reason), "expired after %u attempts (last: %s)", j->attempts,
                     j->last_reason[0] != '\0' ? j->last_reason : "none");
            dead_letter(ob, j, reason);
            continue;
        }
        for (size_t k = 0; k < j->nkeys; k++) {
            if (busy_test_set(ob, j->khash[k])) {
                blocked = true;
            }
        }
        if (j->in_flight) {
            continue;
        }
        expire = now + (ob->opts.max_age_ms - age) + 1;
        wake = expire < wake ? expire : wake;
        if (blocked) {
            continue;
        }
        ready = j->due_mono > j->lane->blocked_until ? j->due_mono : j->lane->blocked_until;
        if (ready > now) {
            wake = ready < wake ? ready : wake;
            continue;
        }
        limit = j->lane->failures > 0 ? 1 : j->lane->max_in_flight;
        if (j->lane->in_flight >= limit) {
            continue;
        }
        j->in_flight = true;
        j->lane->in_flight++;
        j->attempts++;
        if (ob->hooks.send(j, &fail, ob->hooks.arg) != 0) {
            j->in_flight = false;
            j->lane->in_flight--;
            if (fail.reason == NULL) {
                fail.reason = "could not start the delivery";
            }
            fail_job(ob, j, &fail);
            if (fail.verdict == CFW_OUTBOX_RETRY) {
                wake = j->due_mono < wake ? j->due_mono : wake;
            }
        }
    }
    ob->running = false;
    if (ob->rerun) {
        ob->rerun = false;
        arm(ob, 0);
    } else if (wake != INT64_MAX) {
        arm(ob, wake - now);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run(arg);
}

static void fail_job(struct cfw_outbox *ob, struct cfw_outbox_job *j,
                     const struct cfw_outbox_result *r)
{
    int64_t now = cfw_now_mono_ms();
    struct lane *l = j->lane;
    int64_t delay;

    j->last_status = r->status;
    {
        /* reasons arrive scrubbed; the outbox still keeps none that holds a secret */
        char *clean = cfw_secrets_scrub(r->reason != NULL ? r->reason : "");
        snprintf(j->last_reason, sizeof(j->last_reason), "%s", clean);
        free(clean);
    }
    if (r->verdict == CFW_OUTBOX_PERMANENT) {
        /* the receiver answered: the lane itself is healthy */
        l->failures = 0;
        dead_letter(ob, j, j->last_reason);
        return;
    }
    l->retried++;
    l->failures++;
    if (r->retry_after_ms >= 0) {
        /* the receiver said when: pause the whole lane, not only this job */
        delay = r->retry_after_ms;
        if (l->blocked_until < now + delay) {
            l->blocked_until = now + delay;
        }
    } else {
        delay = cfw_outbox_backoff_ms(ob->opts.backoff_base_ms, ob->opts.backoff_max_ms,
                                      j->attempts > 0 ? j->attempts - 1 : 0, next_rand(ob));
        int64_t lane_delay = cfw_outbox_backoff_ms(
            ob->opts.backoff_base_ms, ob->opts.backoff_max_ms, l->failures - 1, next_rand(ob));
        if (l->blocked_until < now + lane_delay) {
            l->blocked_until = now + lane_delay;
        }
    }
    j->due_mono = now + delay;
    if (l->failures == 1) {
        cfw_log_warn("outbox: sink=%s endpoint=%u delivery failing (%s); retrying with backoff",
                     l->sink, l->endpoint, j->last_reason);
    } else {
        cfw_log_debug("outbox: sink=%s job=%s attempt %u failed (%s); next in %" PRId64 " ms",
                      l->sink, j->id, j->attempts, j->last_reason, delay);
    }
}

void cfw_outbox_complete(struct cfw_outbox *ob, struct cfw_outbox_job *j,
                         const struct cfw_outbox_result *r)
{
    struct lane *l = j->lane;

    j->in_flight = false;
    j->ctx = NULL;
    l->in_flight--;
    if (r->verdict == CFW_OUTBOX_DONE) {
        if (l->failures > 0) {
            cfw_log_notice("outbox: sink=%s endpoint=%u delivering again after %u failed "
                           "attempts",
                           l->sink, l->endpoint, l->failures);
        }
        l->failures = 0;
        l->blocked_until = 0;
        l->sent++;
        ob->st.sent++;
        j->last_status = r->status;
        cfw_outbox_spool_remove(ob, j);
        job_gone(ob, j, true);
    } else {
        fail_job(ob, j, r);
    }
    arm(ob, 0);
}

void cfw_outbox_drop(struct cfw_outbox *ob, struct cfw_outbox_job *j)
{
    if (j->in_flight) {
        j->in_flight = false;
        j->lane->in_flight--;
    }
    cfw_outbox_spool_remove(ob, j);
    job_gone(ob, j, false);
    arm(ob, 0);
}

struct cfw_outbox_job *cfw_outbox_job_make(struct cfw_outbox *ob, uint64_t seq,
                                           const struct cfw_stamp *created, const char *sink,
                                           unsigned endpoint, const char *kind, const char *body,
                                           size_t body_len, bool test)
{
    struct cfw_outbox_job *j = cfw_xcalloc(1, sizeof(*j));

    j->seq = seq;
    j->created = *created;
    snprintf(j->id, sizeof(j->id), "%013" PRId64 "-%06" PRIu64, created->wall_ms, seq);
    j->sink = cfw_xstrdup(sink);
    j->endpoint = endpoint;
    j->kind = cfw_xstrdup(kind);
    j->body = cfw_xstrndup(body, body_len);
    j->body_len = body_len;
    j->test = test;
    j->lane = lane_get(ob, sink, endpoint);
    return j;
}

void cfw_outbox_job_add_key(struct cfw_outbox_job *j, const char *key)
{
    j->keys = cfw_xrealloc(j->keys, (j->nkeys + 1) * sizeof(*j->keys));
    j->khash = cfw_xrealloc(j->khash, (j->nkeys + 1) * sizeof(*j->khash));
    j->keys[j->nkeys] = cfw_xstrdup(key);
    j->khash[j->nkeys] = chain_hash(j->sink, j->endpoint, key);
    j->nkeys++;
}

/* Queues a job, or dead-letters it when its sink is no longer configured. */
static void take_in(struct cfw_outbox *ob, struct cfw_outbox_job *j)
{
    job_link_sorted(ob, j);
    if (ob->hooks.known != NULL && !ob->hooks.known(j->sink, j->endpoint, ob->hooks.arg)) {
        dead_letter(ob, j, "the sink is no longer configured");
    }
}

void cfw_outbox_replay(struct cfw_outbox *ob, struct cfw_outbox_job *j)
{
    ob->st.replayed++;
    take_in(ob, j);
}

/* Whether an entry can be spooled at all; err says why not. */
static bool entry_ok(const struct cfw_outbox_entry *e, struct cfw_err *err)
{
    if (e->sink == NULL || e->kind == NULL || e->body == NULL) {
        cfw_err_set(err, "outbox entry without sink, kind or body");
        return false;
    }
    if (e->body_len > CFW_OUTBOX_BODY_MAX) {
        cfw_err_set(err, "notification of %zu bytes is over the outbox limit of %u bytes",
                    e->body_len, CFW_OUTBOX_BODY_MAX);
        return false;
    }
    return true;
}

struct cfw_outbox_job *cfw_outbox_add(struct cfw_outbox *ob, const struct cfw_outbox_entry *e,
                                      struct cfw_err *err)
{
    struct cfw_outbox_job *j;
    struct cfw_stamp now;
    char *text;
    size_t len = 0;
    size_t nkeys = 0;
    struct cfw_err werr = {0};

    if (ob->lock != NULL && ob->lock->current != NULL && ob->lock->current != ob) {
        /* a newer outbox owns this spool now: it delivers what this one still produces */
        return cfw_outbox_add(ob->lock->current, e, err);
    }
    if (!entry_ok(e, err)) {
        return NULL;
    }
    while (e->keys != NULL && e->keys[nkeys] != NULL) {
        nkeys++;
    }
    cfw_stamp_now(&now);
    j = cfw_outbox_job_make(ob, ob->lock->next_seq, &now, e->sink, e->endpoint, e->kind, e->body,
                            e->body_len, e->test);
    for (size_t i = 0; i < nkeys && i < CFW_OUTBOX_KEYS_MAX; i++) {
        cfw_outbox_job_add_key(j, e->keys[i]);
    }
    text = cfw_outbox_spool_encode(j, &len);
    if (text == NULL) {
        cfw_err_set(err, "cannot encode the outbox job");
        cfw_outbox_job_free(j);
        return NULL;
    }
    /* the reserve counts in max_bytes: the spool directory never holds more than that */
    if (ob->st.jobs + 1 > ob->opts.max_jobs ||
        ob->st.bytes + len + ob->reserve_target > ob->opts.max_bytes) {
        ob->st.refused_full++;
        cfw_err_set(err,
                    "outbox full (%" PRIu64 " jobs, %" PRIu64 " bytes and a reserve of %" PRIu64
                    " bytes; limits %zu jobs, %" PRIu64 " bytes)",
                    ob->st.jobs, ob->st.bytes, ob->reserve_target, ob->opts.max_jobs,
                    ob->opts.max_bytes);
        free(text);
        cfw_outbox_job_free(j);
        return NULL;
    }
    ob->lock->next_seq++;
    j->file_bytes = len;
    cfw_outbox_spool_write_new(ob, j, text, len, &werr);
    free(text);
    j->due_mono = 0;
    job_link_sorted(ob, j);
    if (!j->on_disk) {
        cfw_outbox_spool_log_held(ob, j, &werr);
    }
    cfw_outbox_spool_arm_respool(ob);
    arm(ob, 0);
    return j;
}

/*
 * The `outbox:` section, read into struct cfw_outbox_opts: the master copy of its keys'
 * defaults and bounds (cfw_outbox_opts_default sets the defaults, cfw_outbox_opts_parse reads
 * the section).
 */
#define OUTBOX_KEY(m) offsetof(struct cfw_outbox_opts, m)

static const struct cfw_schema outbox_schema;

/* A duration of 0 (the rows' minimum) is the row's default, as the outbox has always taken it. */
static int zero_is_default(const struct cfw_schema_key *k, const struct cfw_node *map,
                           const char *path, void *conf, struct cfw_diag *diag)
{
    int64_t *v = (int64_t *)((char *)conf + k->offset);

    (void)map;
    (void)path;
    (void)diag;
    if (*v == 0) {
        *v = (int64_t)k->def;
    }
    return 0;
}

/*
 * reserve_bytes: 0 turns the reserve off; it lives inside max_bytes, beside the jobs. max_bytes
 * is the row's default when it is 0 (a caller that set no defaults: --check-config, a fuzzer).
 */
static int read_reserve(const struct cfw_schema_key *k, const struct cfw_node *map,
                        const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_outbox_opts *o = conf;
    uint64_t v = 0;
    uint64_t max = o->max_bytes > 0 ? o->max_bytes
                                    : (uint64_t)cfw_schema_find(&outbox_schema, "max_bytes")->def;
    int rc = cfw_node_u64(map, k->name, path, k->min, k->max, &v, diag);
    char *kp;

    if (rc != 1) {
        return rc;
    }
    o->reserve_bytes = v == 0 ? -1 : (int64_t)v;
    if (v <= max / 4) {
        return 1;
    }
    kp = cfw_schema_path(k, path);
    cfw_diag_add(diag, cfw_node_get(map, k->name), kp,
                 "%" PRIu64 " is more than a quarter of max_bytes (%" PRIu64
                 "): the reserve is part of the spool's cap",
                 v, max);
    free(kp);
    return -1;
}

static const struct cfw_schema_key outbox_keys[] = {
    {.name = "max_age",
     .type = CFW_SCHEMA_DURATION,
     .offset = OUTBOX_KEY(max_age_ms),
     .def = 24.0 * 3600 * 1000,
     .check = zero_is_default,
     .help = "jobs older than this are dead-lettered (default 24h)"},
    {.name = "backoff_base",
     .type = CFW_SCHEMA_DURATION,
     .offset = OUTBOX_KEY(backoff_base_ms),
     .def = 2000,
     .check = zero_is_default,
     .help = "the first retry waits up to this, with full jitter (default 2s)"},
    {.name = "backoff_max",
     .type = CFW_SCHEMA_DURATION,
     .offset = OUTBOX_KEY(backoff_max_ms),
     .def = 5.0 * 60 * 1000,
     .check = zero_is_default,
     .help = "the cap of the exponential backoff (default 5m)"},
    {.name = "max_jobs",
     .type = CFW_SCHEMA_SIZE,
     .offset = OUTBOX_KEY(max_jobs),
     .def = 10000,
     .min = 1,
     .max = 10000000,
     .help = "jobs the spool holds at most (default 10000)"},
    {.name = "max_bytes",
     .type = CFW_SCHEMA_U64,
     .offset = OUTBOX_KEY(max_bytes),
     .def = 64.0 * 1024 * 1024,
     .min = 4096,
     .max = UINT64_MAX / 2,
     .help = "bytes the spool holds at most, the reserve included (default 64 MiB)"},
    /* an int64_t the reader stores (-1: none); cfw_schema_defaults sets it as a U64's bits */
    {.name = "reserve_bytes",
     .type = CFW_SCHEMA_U64,
     .offset = OUTBOX_KEY(reserve_bytes),
     .def = CFW_OUTBOX_RESERVE_DEFAULT,
     .min = 0,
     .max = UINT64_MAX / 2,
     .read = read_reserve,
     .help = "bytes kept aside for when the disk fills, at most max_bytes / 4; 0 turns it off "
             "(default 1 MiB)"},
    {0},
};

static const struct cfw_schema outbox_schema = {outbox_keys, NULL};

void cfw_outbox_opts_default(struct cfw_outbox_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    cfw_schema_defaults(&outbox_schema, opts);
    opts->respool_interval_ms = CFW_OUTBOX_RESPOOL_INTERVAL_DEFAULT_MS;
}

int cfw_outbox_opts_parse(const struct cfw_node *map, const char *path,
                          struct cfw_outbox_opts *opts, struct cfw_diag *diag)
{
    size_t before = diag->n;

    if (map == NULL) {
        return 0;
    }
    cfw_schema_parse(&outbox_schema, map, path, opts, diag);
    return (int)(diag->n - before);
}

/* The options in force: opts (NULL: the defaults), the reserve a quarter of max_bytes at most. */
static void set_opts(struct cfw_outbox *ob, const struct cfw_outbox_opts *opts)
{
    if (opts != NULL) {
        ob->opts = *opts;
    } else {
        cfw_outbox_opts_default(&ob->opts);
    }
    if (ob->opts.backoff_max_ms < ob->opts.backoff_base_ms) {
        ob->opts.backoff_max_ms = ob->opts.backoff_base_ms;
    }
    if (ob->opts.reserve_bytes > 0) {
        uint64_t r = (uint64_t)ob->opts.reserve_bytes;
        if (r > ob->opts.max_bytes / 4) {
            r = ob->opts.max_bytes / 4;
        }
        ob->reserve_target = r / OUTBOX_RESERVE_ALIGN * OUTBOX_RESERVE_ALIGN;
    }
}

struct cfw_outbox *cfw_outbox_new(struct event_base *base, const char *state_dir,
                                  const struct cfw_outbox_opts *opts,
                                  const struct cfw_outbox_hooks *hooks, struct cfw_err *err)
{
    struct cfw_outbox *ob = cfw_xcalloc(1, sizeof(*ob));
    uint64_t seed = 0;

    ob->dir_fd = ob->dead_fd = -1;
    ob->base = base;
    ob->hooks = *hooks;
    set_opts(ob, opts);
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        seed = (uint64_t)cfw_now_wall_ms() ^ ((uint64_t)getpid() << 32);
    }
    ob->rnd = seed != 0 ? seed : 0x9e3779b97f4a7c15ULL;
    if (cfw_outbox_spool_open(ob, state_dir, err) != 0) {
        goto fail;
    }
    if (base != NULL) {
        ob->timer = evtimer_new(base, on_timer, ob);
        ob->respool_timer = evtimer_new(base, cfw_outbox_spool_on_respool, ob);
        if (ob->timer == NULL || ob->respool_timer == NULL) {
            cfw_err_set(err, "cannot create the outbox timer");
            goto fail;
        }
    }
    if (cfw_outbox_spool_load(ob, err) != 0) {
        goto fail;
    }
    if (ob->st.jobs > 0) {
        cfw_log_notice("outbox: replaying %" PRIu64 " pending notifications from %s", ob->st.jobs,
                       ob->dir);
    }
    cfw_outbox_spool_reserve_open(ob);
    cfw_outbox_spool_arm_respool(ob);
    arm(ob, 0);
    return ob;
fail:
    cfw_outbox_free(ob);
    return NULL;
}

/* Moves the jobs held in memory to the newer outbox on the same spool (a reload). */
static void handover(struct cfw_outbox *ob, struct cfw_outbox *heir)
{
    struct cfw_outbox_job *next;
    size_t n = 0;

    for (struct cfw_outbox_job *j = ob->head; j != NULL; j = next) {
        next = j->next;
        if (!j->held) {
            continue;
        }
        job_unlink(ob, j);
        j->in_flight = false;
        j->ctx = NULL;
        j->lane = lane_get(heir, j->sink, j->endpoint);
        n++;
        take_in(heir, j);
    }
    cfw_log_notice("outbox: %zu notification(s) held in memory handed over to the new "
                   "configuration",
                   n);
    heir->last_werr = ob->last_werr;
    cfw_outbox_spool_respool(heir, false);
    cfw_outbox_spool_arm_respool(heir);
    arm(heir, 0);
}

void cfw_outbox_free(struct cfw_outbox *ob)
{
    if (ob == NULL) {
        return;
    }
    if (ob->st.unspooled > 0) {
        /* the last chance for what the disk refused: a newer outbox, or one more write */
        struct cfw_outbox *heir = ob->lock != NULL ? ob->lock->current : NULL;
        if (heir != NULL && heir != ob) {
            handover(ob, heir);
        } else if (cfw_outbox_spool_respool(ob, true) > 0) {
            cfw_outbox_spool_log_lost(ob);
        }
    }
    while (ob->head != NULL) {
        struct cfw_outbox_job *j = ob->head;
        job_unlink(ob, j);
        cfw_outbox_job_free(j);
    }
    while (ob->lanes != NULL) {
        struct lane *l = ob->lanes;
        ob->lanes = l->next;
        free(l->sink);
        free(l);
    }
    while (ob->cfgs != NULL) {
        struct in_flight_cfg *c = ob->cfgs;
        ob->cfgs = c->next;
        free(c->sink);
        free(c);
    }
    if (ob->timer != NULL) {
        event_free(ob->timer);
    }
    if (ob->respool_timer != NULL) {
        event_free(ob->respool_timer);
    }
    cfw_outbox_spool_close(ob);
    free(ob->busy);
    free(ob);
}

const char *cfw_outbox_job_id(const struct cfw_outbox_job *j)
{
    return j->id;
}

const char *cfw_outbox_job_sink(const struct cfw_outbox_job *j)
{
    return j->sink;
}

unsigned cfw_outbox_job_endpoint(const struct cfw_outbox_job *j)
{
    return j->endpoint;
}

const char *cfw_outbox_job_kind(const struct cfw_outbox_job *j)
{
    return j->kind;
}

const char *cfw_outbox_job_body(const struct cfw_outbox_job *j, size_t *len)
{
    if (len != NULL) {
        *len = j->body_len;
    }
    return j->body;
}

unsigned cfw_outbox_job_attempts(const struct cfw_outbox_job *j)
{
    return j->attempts;
}

int64_t cfw_outbox_job_created_ms(const struct cfw_outbox_job *j)
{
    return j->created.wall_ms;
}

bool cfw_outbox_job_test(const struct cfw_outbox_job *j)
{
    return j->test;
}

long cfw_outbox_job_last_status(const struct cfw_outbox_job *j)
{
    return j->last_status;
}

const char *cfw_outbox_job_last_reason(const struct cfw_outbox_job *j)
{
    return j->last_reason;
}

void cfw_outbox_job_set_ctx(struct cfw_outbox_job *j, void *ctx)
{
    j->ctx = ctx;
}

void *cfw_outbox_job_ctx(const struct cfw_outbox_job *j)
{
    return j->ctx;
}

void cfw_outbox_stats(const struct cfw_outbox *ob, struct cfw_outbox_stats *out)
{
    *out = ob->st;
    out->reserve_target = ob->reserve_target;
    out->reserve_bytes = ob->lock != NULL ? ob->lock->reserve_size : 0;
}

void cfw_outbox_sink_stats(const struct cfw_outbox *ob, const char *sink,
                           struct cfw_outbox_lane_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (const struct lane *l = ob->lanes; l != NULL; l = l->next) {
        if (strcmp(l->sink, sink) == 0) {
            out->sent += l->sent;
            out->retried += l->retried;
            out->dead += l->dead;
            out->pending += l->pending;
            out->in_flight += l->in_flight;
        }
    }
}

size_t cfw_outbox_pending(const struct cfw_outbox *ob)
{
    return ob != NULL ? (size_t)ob->st.jobs : 0;
}

void cfw_outbox_metrics(const struct cfw_outbox_stats *st, uint64_t depth, struct cfw_metrics *m)
{
    const struct cfw_metric one[] = {
        {"cfwatchd_outbox_depth", "gauge", "Notifications waiting in the outbox.", depth},
        {"cfwatchd_outbox_spooled_bytes", "gauge", "Bytes of notifications spooled.", st->bytes},
        {"cfwatchd_outbox_write_errors_total", "counter",
         "Notifications whose spool write failed at least once (disk full, read-only).",
         st->write_errors},
        {"cfwatchd_outbox_unspooled", "gauge",
         "Notifications held in memory only (not on disk): lost if cfwatchd is killed.",
         st->unspooled},
        {"cfwatchd_outbox_reserve_bytes", "gauge",
         "Bytes preallocated in outbox/.reserve for a full disk.", st->reserve_bytes},
        {"cfwatchd_outbox_refused_total", "counter",
         "Notifications refused because the spool was at its cap.", st->refused_full},
    };

    cfw_metrics_add(m, one, sizeof(one) / sizeof(one[0]));
}
