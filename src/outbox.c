/* The durable notification spool and its single-timer retry scheduler. */
#include "cfwatchd/outbox.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cfwatchd/fsutil.h"
#include "cfwatchd/secrets.h"
#include "cfwatchd/log.h"

#define REASON_MAX 256
#define SPOOL_FILE_MAX (2u * CFW_OUTBOX_BODY_MAX + 64u * 1024u)
/* A repeated write or reserve error is logged at most this often; the rest are counted. */
#define LOG_INTERVAL_MS 60000
/* Attempts of one spool write on a full disk, each after giving back part of the reserve. */
#define WRITE_TRIES 3
/* Jobs named one by one when they are lost at exit; the rest are counted. */
#define LOST_LOG_MAX 20
#define RESERVE_ALIGN 4096u

struct lane {
    char *sink;
    unsigned endpoint;
    unsigned in_flight;
    unsigned max_in_flight;
    unsigned failures; /* consecutive retryable failures; 0 when healthy */
    int64_t blocked_until;
    uint64_t sent;
    uint64_t retried;
    uint64_t dead;
    uint64_t pending;
    struct lane *next;
};

struct cfw_outbox_job {
    struct cfw_outbox_job *prev;
    struct cfw_outbox_job *next;
    uint64_t seq;
    char id[48];
    char *sink;
    unsigned endpoint;
    char *kind;
    char **keys;
    uint64_t *khash;
    size_t nkeys;
    char *body;
    size_t body_len;
    size_t file_bytes;
    bool on_disk;
    bool held; /* not written: in memory only, counted in unspooled, the write is retried */
    bool test;
    bool in_flight;
    struct cfw_stamp created;
    unsigned attempts;
    int64_t due_mono;
    long last_status;
    char last_reason[REASON_MAX];
    void *ctx;
    struct lane *lane;
};

/*
 * The spool lock keeps a second process off a spool. Within one process a new outbox may open
 * the spool while the previous one still exists (a configuration reload builds the new
 * notifier before freeing the old): they share the lock, and jobs the old one still spools
 * (digests flushed on its way out) are handed to the newest.
 */
struct spool_lock {
    dev_t dev;
    ino_t ino;
    pid_t pid;
    int fd;
    unsigned refs;
    uint64_t next_seq; /* shared by every outbox on this spool: file names never collide */
    struct cfw_outbox *current;
    /* the reserve file, shared like the spool: kept at reserve_target when there is room */
    int reserve_fd;
    uint64_t reserve_size;
    uint64_t reserve_target;
    bool reserve_drawn; /* shrunk since it was last full */
    bool reserve_warned;
    struct spool_lock *next;
};

static struct spool_lock *spool_locks;

struct in_flight_cfg {
    char *sink;
    unsigned max;
    struct in_flight_cfg *next;
};

/* An error logged at most once per LOG_INTERVAL_MS; the others are counted and told later. */
struct ratelog {
    bool used;
    int64_t last_ms;
    uint64_t quiet;
};

struct cfw_outbox {
    struct event_base *base;
    struct cfw_outbox_opts opts;
    struct cfw_outbox_hooks hooks;
    char *dir;
    char *dead_dir;
    int dir_fd;
    int dead_fd;
    bool memory_only; /* the spool directory could not be opened (read-only): writes by path */
    struct spool_lock *lock;
    struct event *timer;
    struct event *respool_timer;
    uint64_t reserve_target;
    struct ratelog held_log;
    struct ratelog reserve_log;
    struct cfw_err last_werr; /* the last failed spool write */
    struct cfw_outbox_job *head;
    struct cfw_outbox_job *tail;
    struct lane *lanes;
    struct in_flight_cfg *cfgs;
    uint64_t rnd;
    bool running;
    bool rerun;
    /* scratch hash set of chain keys seen during one scheduler pass */
    uint64_t *busy;
    size_t busy_cap;
    struct cfw_outbox_stats st;
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
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

    h = fnv1a(h, sink, strlen(sink) + 1);
    h = fnv1a(h, &endpoint, sizeof(endpoint));
    h = fnv1a(h, key, strlen(key));
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

static void job_free(struct cfw_outbox_job *j)
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

static void job_filename(const struct cfw_outbox_job *j, char *out, size_t n)
{
    snprintf(out, n, "%020" PRIu64 ".job", j->seq);
}

static char *job_serialize(const struct cfw_outbox_job *j, const char *dead_reason, int64_t dead_at,
                           size_t *len)
{
    json_t *o = json_object();
    json_t *keys = json_array();
    char *text;

    for (size_t i = 0; i < j->nkeys; i++) {
        json_array_append_new(keys, json_string(j->keys[i]));
    }
    json_object_set_new(o, "v", json_integer(1));
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "seq", json_integer((json_int_t)j->seq));
    json_object_set_new(o, "created_ms", json_integer(j->created.wall_ms));
    if (j->created.boot_ms > 0 && j->created.boot_id[0] != '\0') {
        /* the age is measured on this clock while the machine has not rebooted */
        json_object_set_new(o, "created_boot_ms", json_integer(j->created.boot_ms));
        json_object_set_new(o, "boot_id", json_string(j->created.boot_id));
    }
    json_object_set_new(o, "sink", json_string(j->sink));
    json_object_set_new(o, "endpoint", json_integer(j->endpoint));
    json_object_set_new(o, "kind", json_string(j->kind));
    json_object_set_new(o, "keys", keys);
    json_object_set_new(o, "test", json_boolean(j->test));
    json_object_set_new(o, "body", json_stringn(j->body, j->body_len));
    if (dead_reason != NULL) {
        json_t *d = json_object();
        char at[40];
        cfw_format_time_ms(dead_at, at, sizeof(at));
        json_object_set_new(d, "reason", json_string(dead_reason));
        json_object_set_new(d, "at", json_string(at));
        json_object_set_new(d, "attempts", json_integer(j->attempts));
        json_object_set_new(d, "last_status", json_integer(j->last_status));
        json_object_set_new(o, "dead", d);
    }
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL) {
        return NULL;
    }
    *len = strlen(text);
    return text;
}

static void arm(struct cfw_outbox *ob, int64_t delay_ms)
{
    struct timeval tv;

    if (ob->timer == NULL) {
        return;
    }
    if (delay_ms < 0) {
        delay_ms = 0;
    }
    tv.tv_sec = delay_ms / 1000;
    tv.tv_usec = (delay_ms % 1000) * 1000;
    evtimer_del(ob->timer);
    evtimer_add(ob->timer, &tv);
}

void cfw_outbox_kick(struct cfw_outbox *ob)
{
    arm(ob, 0);
}

static void safe_name(const char *s, char *out, size_t n)
{
    size_t o = 0;

    for (; *s != '\0' && o + 1 < n; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        out[o++] = ok ? c : '_';
    }
    out[o] = '\0';
}

static void job_remove_file(struct cfw_outbox *ob, struct cfw_outbox_job *j)
{
    char name[64];

    job_filename(j, name, sizeof(name));
    /*
     * No fsync of the directory here: if the unlink is lost in a crash, the job is sent again
     * on the next start (at-least-once), which PagerDuty and Alertmanager absorb. A job held in
     * memory is unlinked too: a write whose final directory fsync failed may have left it.
     */
    if (unlinkat(ob->dir_fd, name, 0) != 0 && errno != ENOENT && j->on_disk) {
        cfw_log_warn("outbox: cannot remove %s: %s", name, strerror(errno));
    }
    j->on_disk = false;
}

static void job_gone(struct cfw_outbox *ob, struct cfw_outbox_job *j, bool delivered)
{
    job_unlink(ob, j);
    if (ob->hooks.gone != NULL) {
        ob->hooks.gone(j, delivered, ob->hooks.arg);
    }
    job_free(j);
}

static void dead_letter(struct cfw_outbox *ob, struct cfw_outbox_job *j, const char *why)
{
    char reason[REASON_MAX];
    char name[160];
    char sink[64];
    char *text;
    size_t len = 0;
    struct cfw_err err = {0};
    int64_t now = cfw_now_wall_ms();

    /* why may point into j->last_reason */
    snprintf(reason, sizeof(reason), "%s", why);
    snprintf(j->last_reason, sizeof(j->last_reason), "%s", reason);
    j->lane->dead++;
    ob->st.dead++;
    if (j->test) {
        cfw_log_warn("outbox: test notification for sink=%s not delivered: %s", j->sink, reason);
        job_remove_file(ob, j);
        job_gone(ob, j, false);
        return;
    }
    safe_name(j->sink, sink, sizeof(sink));
    snprintf(name, sizeof(name), "%013" PRId64 "-%06" PRIu64 "-%s.json", j->created.wall_ms, j->seq,
             sink);
    text = job_serialize(j, reason, now, &len);
    if (text == NULL ||
        cfw_fs_write_atomic(ob->dead_fd, ob->dead_dir, name, text, len, 0600, &err) != 0) {
        cfw_log_err("outbox: sink=%s job=%s dead-lettered after %u attempts (%s); the dead "
                    "letter could not be saved: %s",
                    j->sink, j->id, j->attempts, reason, text == NULL ? "encoding" : err.msg);
    } else {
        cfw_log_err("outbox: sink=%s job=%s kind=%s dead-lettered after %u attempts: %s "
                    "(saved as dead/%s)",
                    j->sink, j->id, j->kind, j->attempts, reason, name);
    }
    free(text);
    job_remove_file(ob, j);
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
            char reason[REASON_MAX + 64];
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
        job_remove_file(ob, j);
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
    job_remove_file(ob, j);
    job_gone(ob, j, false);
    arm(ob, 0);
}

static struct cfw_outbox_job *job_make(struct cfw_outbox *ob, uint64_t seq,
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

static void job_add_key(struct cfw_outbox_job *j, const char *key)
{
    j->keys = cfw_xrealloc(j->keys, (j->nkeys + 1) * sizeof(*j->keys));
    j->khash = cfw_xrealloc(j->khash, (j->nkeys + 1) * sizeof(*j->khash));
    j->keys[j->nkeys] = cfw_xstrdup(key);
    j->khash[j->nkeys] = chain_hash(j->sink, j->endpoint, key);
    j->nkeys++;
}

/*
 * Returns true when a rate-limited message may be logged now; note gets "" or how many such
 * messages were skipped since the last one (to append to it).
 */
static bool ratelog_ok(struct ratelog *r, char *note, size_t n)
{
    int64_t now = cfw_now_mono_ms();

    if (r->used && now - r->last_ms < LOG_INTERVAL_MS) {
        r->quiet++;
        return false;
    }
    note[0] = '\0';
    if (r->quiet > 0) {
        snprintf(note, n, " [%" PRIu64 " similar messages not logged]", r->quiet);
    }
    r->used = true;
    r->last_ms = now;
    r->quiet = 0;
    return true;
}

static double respool_interval_s(const struct cfw_outbox *ob)
{
    return (double)ob->opts.respool_interval_ms / 1000.0;
}

static bool reserve_wanted(const struct cfw_outbox *ob)
{
    const struct spool_lock *l = ob->lock;

    return l != NULL && (l->current == ob || l->current == NULL) && l->reserve_target > 0 &&
           (l->reserve_fd < 0 || l->reserve_size < l->reserve_target);
}

/* Arms the retry of held writes and of the reserve when either is needed and not yet armed. */
static void arm_respool(struct cfw_outbox *ob)
{
    struct timeval tv;

    if (ob->respool_timer == NULL || evtimer_pending(ob->respool_timer, NULL) ||
        (ob->st.unspooled == 0 && !reserve_wanted(ob))) {
        return;
    }
    tv.tv_sec = ob->opts.respool_interval_ms / 1000;
    tv.tv_usec = (ob->opts.respool_interval_ms % 1000) * 1000;
    evtimer_add(ob->respool_timer, &tv);
}

/*
 * Grows the reserve to its target. Why the check of free space first: the reserve must not
 * take the last room that the state file or the system needs right after a disk-full episode,
 * so it is only grown back when the file system has twice the missing part free. With force,
 * the allocation is made even when the file already has its size (it may be sparse).
 */
static void reserve_grow(struct cfw_outbox *ob, bool force)
{
    struct spool_lock *l = ob->lock;
    struct statvfs sv;
    uint64_t missing;
    int rc;

    if (l == NULL || l->reserve_fd < 0 || (!force && l->reserve_size >= l->reserve_target)) {
        return;
    }
    missing = l->reserve_target > l->reserve_size ? l->reserve_target - l->reserve_size : 0;
    if (missing > 0 && fstatvfs(l->reserve_fd, &sv) == 0 &&
        (uint64_t)sv.f_bavail * sv.f_frsize < 2 * missing) {
        if (!l->reserve_warned) {
            l->reserve_warned = true;
            cfw_log_warn("outbox: %" PRIu64 " bytes free in %s: the reserve %s stays at %" PRIu64
                         " of %" PRIu64 " bytes until twice the missing part is free",
                         (uint64_t)sv.f_bavail * sv.f_frsize, ob->dir, CFW_OUTBOX_RESERVE_FILE,
                         l->reserve_size, l->reserve_target);
        }
        return;
    }
    rc = posix_fallocate(l->reserve_fd, 0, (off_t)l->reserve_target);
    if (rc != 0) {
        /* a partial allocation is given back: the size known is the size held */
        if (ftruncate(l->reserve_fd, (off_t)l->reserve_size) != 0) {
            cfw_log_debug("outbox: cannot trim %s/%s: %s", ob->dir, CFW_OUTBOX_RESERVE_FILE,
                          strerror(errno));
        }
        if (!l->reserve_warned) {
            l->reserve_warned = true;
            cfw_log_warn("outbox: cannot reserve %" PRIu64 " bytes in %s/%s: %s (%s); trying "
                         "again every %.3g s",
                         l->reserve_target, ob->dir, CFW_OUTBOX_RESERVE_FILE, strerror(rc),
                         cfw_fs_errno_name(rc), respool_interval_s(ob));
        }
        return;
    }
    if (l->reserve_drawn || l->reserve_warned) {
        cfw_log_notice("outbox: reserve %s/%s back to %" PRIu64 " bytes", ob->dir,
                       CFW_OUTBOX_RESERVE_FILE, l->reserve_target);
    }
    l->reserve_size = l->reserve_target;
    l->reserve_drawn = false;
    l->reserve_warned = false;
}

/* Opens (creating) the reserve at this outbox's target, or removes it when there is none. */
static void reserve_open(struct cfw_outbox *ob)
{
    struct spool_lock *l = ob->lock;
    struct stat st;
    int fd;

    l->reserve_target = ob->reserve_target;
    if (l->reserve_target == 0) {
        if (l->reserve_fd >= 0) {
            close(l->reserve_fd);
            l->reserve_fd = -1;
        }
        l->reserve_size = 0;
        if (unlinkat(ob->dir_fd, CFW_OUTBOX_RESERVE_FILE, 0) == 0) {
            cfw_log_notice("outbox: reserve %s/%s removed (no reserve configured)", ob->dir,
                           CFW_OUTBOX_RESERVE_FILE);
        }
        return;
    }
    if (l->reserve_fd < 0) {
        fd = openat(ob->dir_fd, CFW_OUTBOX_RESERVE_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                    0600);
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            int e = fd < 0 ? errno : EINVAL;
            if (fd >= 0) {
                close(fd);
            }
            if (!l->reserve_warned) {
                l->reserve_warned = true;
                cfw_log_warn("outbox: cannot open the reserve %s/%s: %s (%s); trying again "
                             "every %.3g s",
                             ob->dir, CFW_OUTBOX_RESERVE_FILE, strerror(e), cfw_fs_errno_name(e),
                             respool_interval_s(ob));
            }
            return;
        }
        l->reserve_fd = fd;
        l->reserve_size = (uint64_t)st.st_size;
    }
    if (l->reserve_size > l->reserve_target &&
        ftruncate(l->reserve_fd, (off_t)l->reserve_target) == 0) {
        l->reserve_size = l->reserve_target;
    }
    reserve_grow(ob, true);
}

/*
 * Gives back what a write of len bytes needs from the reserve, after that write failed for
 * want of space (why). The cut is synced so that a journaling file system frees the blocks
 * at once. Returns false when there is nothing left to give, or no point: when the file system
 * is out of inodes, not blocks, a smaller reserve would not help.
 */
static bool reserve_release(struct cfw_outbox *ob, size_t len, const struct cfw_err *why)
{
    struct spool_lock *l = ob->lock;
    struct statvfs sv;
    uint64_t block = RESERVE_ALIGN;
    uint64_t need;
    uint64_t left;
    uint64_t given;
    char note[64];

    if (l == NULL || l->reserve_fd < 0 || l->reserve_size == 0) {
        return false;
    }
    if (fstatvfs(l->reserve_fd, &sv) == 0) {
        if (sv.f_files > 0 && sv.f_favail == 0) {
            return false;
        }
        if (sv.f_frsize >= 512 && sv.f_frsize <= 1024u * 1024u) {
            block = sv.f_frsize;
        }
    }
    need = ((uint64_t)len + block - 1) / block * block;
    if (need == 0) {
        need = block;
    }
    left = l->reserve_size > need ? l->reserve_size - need : 0;
    if (ftruncate(l->reserve_fd, (off_t)left) != 0) {
        cfw_log_err("outbox: cannot shrink the reserve %s/%s: %s (%s)", ob->dir,
                    CFW_OUTBOX_RESERVE_FILE, strerror(errno), cfw_fs_errno_name(errno));
        return false;
    }
    fsync(l->reserve_fd);
    given = l->reserve_size - left;
    l->reserve_size = left;
    l->reserve_drawn = true;
    ob->st.reserve_used++;
    if (ratelog_ok(&ob->reserve_log, note, sizeof(note))) {
        cfw_log_warn("outbox: %s; gave %" PRIu64 " bytes of the reserve %s/%s to the spool "
                     "(%" PRIu64 " bytes left)%s",
                     why->msg, given, ob->dir, CFW_OUTBOX_RESERVE_FILE, left, note);
    }
    arm_respool(ob);
    return true;
}

/*
 * Writes a job's spool file (text when given, else serialized now). When the file system is
 * full (ENOSPC, EDQUOT), the reserve gives back what the job needs and the write is tried
 * again, at most WRITE_TRIES times in all. *failed tells whether any attempt failed.
 */
static int job_write(struct cfw_outbox *ob, struct cfw_outbox_job *j, const char *text, size_t len,
                     bool *failed, struct cfw_err *err)
{
    char name[64];
    char *own = NULL;
    int rc = -1;

    *failed = false;
    if (text == NULL) {
        own = job_serialize(j, NULL, 0, &len);
        if (own == NULL) {
            cfw_err_set(err, "cannot encode job %s", j->id);
            return -1;
        }
        text = own;
    }
    job_filename(j, name, sizeof(name));
    for (unsigned t = 1;; t++) {
        if (cfw_fs_write_atomic(ob->dir_fd, ob->dir, name, text, len, 0600, err) == 0) {
            rc = 0;
            break;
        }
        *failed = true;
        if ((err->code != ENOSPC && err->code != EDQUOT) || t >= WRITE_TRIES ||
            !reserve_release(ob, len, err)) {
            break;
        }
    }
    if (rc == 0) {
        j->on_disk = true;
    }
    free(own);
    return rc;
}

/*
 * Writes the jobs held in memory, oldest first. Stops at the first failure unless all is set
 * (the last attempt before the jobs are freed). Returns how many are still held.
 */
static uint64_t respool(struct cfw_outbox *ob, bool all)
{
    size_t written = 0;
    struct cfw_err err = {0};
    bool failed;

    for (struct cfw_outbox_job *j = ob->head; j != NULL && ob->st.unspooled > 0; j = j->next) {
        if (!j->held) {
            continue;
        }
        if (job_write(ob, j, NULL, 0, &failed, &err) == 0) {
            j->held = false;
            ob->st.unspooled--;
            written++;
            continue;
        }
        ob->last_werr = err;
        if (!all) {
            break;
        }
    }
    if (written > 0) {
        cfw_log_notice("outbox: %zu notification(s) held in memory now written to %s (%" PRIu64
                       " still held)",
                       written, ob->dir, ob->st.unspooled);
    }
    return ob->st.unspooled;
}

static void on_respool(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_outbox *ob = arg;
    char note[64];

    (void)fd;
    (void)what;
    if (ob->st.unspooled > 0 && respool(ob, false) > 0 &&
        ratelog_ok(&ob->held_log, note, sizeof(note))) {
        cfw_log_err("outbox: %" PRIu64 " notification(s) still held in memory only (%s); "
                    "retrying every %.3g s; they are lost if cfwatchd is killed first%s",
                    ob->st.unspooled, ob->last_werr.msg, respool_interval_s(ob), note);
    }
    if (ob->st.unspooled == 0 && reserve_wanted(ob)) {
        /* the jobs first, then the reserve: it must not take the room they need */
        if (ob->lock->reserve_fd < 0) {
            reserve_open(ob);
        } else {
            reserve_grow(ob, false);
        }
    }
    arm_respool(ob);
}

static void log_not_spooled(struct cfw_outbox *ob, const struct cfw_outbox_job *j,
                            const struct cfw_err *why)
{
    char note[64];

    if (!ratelog_ok(&ob->held_log, note, sizeof(note))) {
        return;
    }
    if (j->test) {
        cfw_log_err("outbox: sink=%s job=%s not spooled (%s); delivering from memory only%s",
                    j->sink, j->id, why->msg, note);
        return;
    }
    cfw_log_err("outbox: sink=%s job=%s not spooled (%s); delivering from memory only and "
                "retrying the write every %.3g s (%" PRIu64 " held in memory, lost if cfwatchd "
                "is killed before they are written)%s",
                j->sink, j->id, why->msg, respool_interval_s(ob), ob->st.unspooled, note);
}

struct cfw_outbox_job *cfw_outbox_add(struct cfw_outbox *ob, const struct cfw_outbox_entry *e,
                                      struct cfw_err *err)
{
    struct cfw_outbox_job *j;
    struct cfw_stamp now;
    char *text;
    size_t len = 0;
    size_t nkeys = 0;
    bool failed = false;
    struct cfw_err werr = {0};

    if (ob->lock != NULL && ob->lock->current != NULL && ob->lock->current != ob) {
        /* a newer outbox owns this spool now: it delivers what this one still produces */
        return cfw_outbox_add(ob->lock->current, e, err);
    }
    if (e->sink == NULL || e->kind == NULL || e->body == NULL) {
        cfw_err_set(err, "outbox entry without sink, kind or body");
        return NULL;
    }
    if (e->body_len > CFW_OUTBOX_BODY_MAX) {
        cfw_err_set(err, "notification of %zu bytes is over the outbox limit of %u bytes",
                    e->body_len, CFW_OUTBOX_BODY_MAX);
        return NULL;
    }
    while (e->keys != NULL && e->keys[nkeys] != NULL) {
        nkeys++;
    }
    cfw_stamp_now(&now);
    j = job_make(ob, ob->lock->next_seq, &now, e->sink, e->endpoint, e->kind, e->body, e->body_len,
                 e->test);
    for (size_t i = 0; i < nkeys && i < CFW_OUTBOX_KEYS_MAX; i++) {
        job_add_key(j, e->keys[i]);
    }
    text = job_serialize(j, NULL, 0, &len);
    if (text == NULL) {
        cfw_err_set(err, "cannot encode the outbox job");
        job_free(j);
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
        job_free(j);
        return NULL;
    }
    ob->lock->next_seq++;
    j->file_bytes = len;
    if (ob->st.unspooled > 0) {
        /* older jobs first: after a restart the oldest notifications are the ones kept */
        respool(ob, false);
    }
    if (job_write(ob, j, text, len, &failed, &werr) != 0) {
        ob->last_werr = werr;
        j->held = !j->test; /* a test notification is never replayed: nothing to keep */
    }
    if (failed) {
        ob->st.write_errors++;
    }
    free(text);
    j->due_mono = 0;
    job_link_sorted(ob, j);
    if (!j->on_disk) {
        log_not_spooled(ob, j, &werr);
    }
    arm_respool(ob);
    arm(ob, 0);
    return j;
}

static int load_one(struct cfw_outbox *ob, const char *name, struct cfw_err *err)
{
    int fd = openat(ob->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    char *data = NULL;
    json_t *o = NULL;
    json_error_t jerr;
    struct cfw_outbox_job *j = NULL;
    json_t *keys;
    const char *sink, *kind, *body;
    size_t body_len;
    json_int_t seq, created, endpoint;
    struct cfw_stamp stamp;
    json_t *boot_ms;
    const char *boot_id;
    int rc = -1;
    ssize_t got = 0;

    if (fd < 0) {
        cfw_err_set(err, "cannot open: %s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > SPOOL_FILE_MAX) {
        cfw_err_set(err, "not a regular spool file of a sane size");
        goto out;
    }
    data = cfw_xmalloc((size_t)st.st_size + 1);
    while (got < st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)(st.st_size - got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            cfw_err_set(err, "short read");
            goto out;
        }
        got += n;
    }
    o = json_loadb(data, (size_t)got, 0, &jerr);
    if (o == NULL) {
        cfw_err_set(err, "invalid JSON at byte %d", jerr.position);
        goto out;
    }
    if (json_unpack_ex(o, &jerr, 0, "{s:I, s:I, s:s, s:I, s:s, s:o, s:s%}", "seq", &seq,
                       "created_ms", &created, "sink", &sink, "endpoint", &endpoint, "kind", &kind,
                       "keys", &keys, "body", &body, &body_len) != 0 ||
        seq < 0 || endpoint < 0 || !json_is_array(keys)) {
        cfw_err_set(err, "missing fields");
        goto out;
    }
    /*
     * The boot clock and boot id are absent from files written before they were recorded:
     * then the age falls back to the wall clock, as it was measured before.
     */
    memset(&stamp, 0, sizeof(stamp));
    stamp.wall_ms = created;
    boot_ms = json_object_get(o, "created_boot_ms");
    boot_id = json_string_value(json_object_get(o, "boot_id"));
    if (json_is_integer(boot_ms) && json_integer_value(boot_ms) > 0 && boot_id != NULL &&
        strlen(boot_id) == CFW_BOOT_ID_LEN) {
        stamp.boot_ms = json_integer_value(boot_ms);
        memcpy(stamp.boot_id, boot_id, CFW_BOOT_ID_LEN + 1);
    }
    {
        /* a payload spooled by an older version may hold a secret a receiver had echoed */
        char *clean = cfw_xmalloc(body_len + 1);
        size_t clean_len;

        memcpy(clean, body, body_len);
        clean[body_len] = '\0';
        clean_len = cfw_secrets_scrub_inplace(clean, body_len);
        j = job_make(ob, (uint64_t)seq, &stamp, sink, (unsigned)endpoint, kind, clean, clean_len,
                     json_is_true(json_object_get(o, "test")));
        free(clean);
    }
    for (size_t i = 0; i < json_array_size(keys) && i < CFW_OUTBOX_KEYS_MAX; i++) {
        const char *k = json_string_value(json_array_get(keys, i));
        if (k != NULL) {
            job_add_key(j, k);
        }
    }
    j->on_disk = true;
    j->file_bytes = (size_t)got;
    if (j->test) {
        /* a test notification belongs to the command that sent it: never replayed */
        job_remove_file(ob, j);
        job_free(j);
        rc = 0;
        goto out;
    }
    if (j->seq >= ob->lock->next_seq) {
        ob->lock->next_seq = j->seq + 1;
    }
    job_link_sorted(ob, j);
    ob->st.replayed++;
    if (ob->hooks.known != NULL && !ob->hooks.known(j->sink, j->endpoint, ob->hooks.arg)) {
        dead_letter(ob, j, "the sink is no longer configured");
    }
    rc = 0;
out:
    free(data);
    json_decref(o);
    close(fd);
    return rc;
}

static int load_spool(struct cfw_outbox *ob)
{
    DIR *d;
    struct dirent *de;
    int dfd = dup(ob->dir_fd);

    if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
        if (dfd >= 0) {
            close(dfd);
        }
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        struct cfw_err err = {0};

        if (strncmp(n, CFW_FS_TMP_PREFIX, strlen(CFW_FS_TMP_PREFIX)) == 0) {
            /* a write that never reached its rename: the submit did not complete */
            unlinkat(ob->dir_fd, n, 0);
            continue;
        }
        if (len < 5 || strcmp(n + len - 4, ".job") != 0) {
            continue;
        }
        if (load_one(ob, n, &err) != 0) {
            char dead[320];
            snprintf(dead, sizeof(dead), "corrupt-%s", n);
            cfw_log_err("outbox: spool file %s is unreadable (%s); moved to dead/%s", n, err.msg,
                        dead);
            if (renameat(ob->dir_fd, n, ob->dead_fd, dead) != 0) {
                unlinkat(ob->dir_fd, n, 0);
            }
            ob->st.dead++;
        }
    }
    rewinddir(d);
    closedir(d);
    fsync(ob->dir_fd);
    return 0;
}

/* Errors that mean the state directory cannot be written (rather than a broken setup). */
static bool read_only_errno(int e)
{
    return e == EROFS || e == EACCES || e == EPERM;
}

/* The spool's identity for the lock registry; a spool held in memory is named by its path. */
static void spool_identity(const struct cfw_outbox *ob, dev_t *dev, ino_t *ino)
{
    *dev = (dev_t)-1;
    *ino = (ino_t)fnv1a(0xcbf29ce484222325ULL, ob->dir, strlen(ob->dir));
}

static int lock_spool(struct cfw_outbox *ob, struct cfw_err *err)
{
    struct stat st;
    struct spool_lock *l;
    int fd = -1;

    if (ob->memory_only) {
        spool_identity(ob, &st.st_dev, &st.st_ino);
    } else if (fstat(ob->dir_fd, &st) != 0) {
        cfw_err_setc(err, errno, "cannot stat %s: %s", ob->dir, strerror(errno));
        return -1;
    }
    for (l = spool_locks; l != NULL; l = l->next) {
        if (l->dev == st.st_dev && l->ino == st.st_ino && l->pid == getpid()) {
            l->refs++;
            l->current = ob;
            ob->lock = l;
            return 0;
        }
    }
    if (!ob->memory_only) {
        fd = openat(ob->dir_fd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 && read_only_errno(errno)) {
            /* a read-only state directory: an existing lock file can still be locked */
            fd = openat(ob->dir_fd, ".lock", O_RDONLY | O_CLOEXEC);
        }
    }
    if (fd < 0 && !ob->memory_only) {
        cfw_err_setc(err, errno, "cannot create %s/.lock: %s", ob->dir, strerror(errno));
        return -1;
    }
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        cfw_err_setc(err, errno, "the outbox %s is in use by another cfwatchd", ob->dir);
        close(fd);
        return -1;
    }
    l = cfw_xcalloc(1, sizeof(*l));
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    l->pid = getpid();
    l->fd = fd;
    l->refs = 1;
    l->next_seq = 1;
    l->reserve_fd = -1;
    l->current = ob;
    l->next = spool_locks;
    spool_locks = l;
    ob->lock = l;
    return 0;
}

static void unlock_spool(struct cfw_outbox *ob)
{
    struct spool_lock *l = ob->lock;
    struct spool_lock **pp;

    if (l == NULL) {
        return;
    }
    ob->lock = NULL;
    if (l->current == ob) {
        l->current = NULL;
    }
    if (--l->refs > 0) {
        return;
    }
    if (l->reserve_fd >= 0) {
        /* the file stays: the next start finds its room already taken for the spool */
        close(l->reserve_fd);
    }
    if (l->fd >= 0) {
        close(l->fd);
    }
    for (pp = &spool_locks; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    free(l);
}

static int open_dir(const char *path, struct cfw_err *err)
{
    int fd;

    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        cfw_err_setc(err, errno, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        cfw_err_setc(err, errno, "cannot open %s: %s", path, strerror(errno));
    }
    return fd;
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
    if (opts != NULL) {
        ob->opts = *opts;
    }
    if (ob->opts.backoff_base_ms <= 0) {
        ob->opts.backoff_base_ms = CFW_OUTBOX_BACKOFF_BASE_DEFAULT_MS;
    }
    if (ob->opts.backoff_max_ms <= 0) {
        ob->opts.backoff_max_ms = CFW_OUTBOX_BACKOFF_MAX_DEFAULT_MS;
    }
    if (ob->opts.backoff_max_ms < ob->opts.backoff_base_ms) {
        ob->opts.backoff_max_ms = ob->opts.backoff_base_ms;
    }
    if (ob->opts.max_age_ms <= 0) {
        ob->opts.max_age_ms = CFW_OUTBOX_MAX_AGE_DEFAULT_MS;
    }
    if (ob->opts.max_jobs == 0) {
        ob->opts.max_jobs = CFW_OUTBOX_MAX_JOBS_DEFAULT;
    }
    if (ob->opts.max_bytes == 0) {
        ob->opts.max_bytes = CFW_OUTBOX_MAX_BYTES_DEFAULT;
    }
    if (ob->opts.reserve_bytes == 0) {
        ob->opts.reserve_bytes = (int64_t)CFW_OUTBOX_RESERVE_DEFAULT;
    }
    if (ob->opts.reserve_bytes > 0) {
        uint64_t r = (uint64_t)ob->opts.reserve_bytes;
        if (r > ob->opts.max_bytes / 4) {
            r = ob->opts.max_bytes / 4;
        }
        ob->reserve_target = r / RESERVE_ALIGN * RESERVE_ALIGN;
    }
    if (ob->opts.respool_interval_ms <= 0) {
        ob->opts.respool_interval_ms = CFW_OUTBOX_RESPOOL_INTERVAL_DEFAULT_MS;
    }
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        seed = (uint64_t)cfw_now_wall_ms() ^ ((uint64_t)getpid() << 32);
    }
    ob->rnd = seed != 0 ? seed : 0x9e3779b97f4a7c15ULL;
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        cfw_err_setc(err, errno, "cannot create the state directory %s: %s", state_dir,
                     strerror(errno));
        goto fail;
    }
    ob->dir = cfw_xasprintf("%s/outbox", state_dir);
    ob->dead_dir = cfw_xasprintf("%s/dead", state_dir);
    if ((ob->dir_fd = open_dir(ob->dir, err)) < 0 ||
        (ob->dead_fd = open_dir(ob->dead_dir, err)) < 0) {
        if (!read_only_errno(err->code)) {
            goto fail;
        }
        /* a read-only state directory: run, deliver from memory, retry the writes */
        cfw_log_err("outbox: %s; notifications are delivered from memory only (lost if cfwatchd "
                    "dies) and their writes retried every %.3g s",
                    err->msg, respool_interval_s(ob));
        if (ob->dir_fd >= 0) {
            close(ob->dir_fd);
        }
        ob->dir_fd = ob->dead_fd = -1;
        ob->memory_only = true;
    }
    if (lock_spool(ob, err) != 0) {
        goto fail;
    }
    if (base != NULL) {
        ob->timer = evtimer_new(base, on_timer, ob);
        ob->respool_timer = evtimer_new(base, on_respool, ob);
        if (ob->timer == NULL || ob->respool_timer == NULL) {
            cfw_err_set(err, "cannot create the outbox timer");
            goto fail;
        }
    }
    if (!ob->memory_only && load_spool(ob) != 0) {
        cfw_err_setc(err, errno, "cannot read %s: %s", ob->dir, strerror(errno));
        goto fail;
    }
    if (ob->st.jobs > 0) {
        cfw_log_notice("outbox: replaying %" PRIu64 " pending notifications from %s", ob->st.jobs,
                       ob->dir);
    }
    reserve_open(ob);
    arm_respool(ob);
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
        job_link_sorted(heir, j);
        n++;
        if (heir->hooks.known != NULL &&
            !heir->hooks.known(j->sink, j->endpoint, heir->hooks.arg)) {
            dead_letter(heir, j, "the sink is no longer configured");
        }
    }
    cfw_log_notice("outbox: %zu notification(s) held in memory handed over to the new "
                   "configuration",
                   n);
    heir->last_werr = ob->last_werr;
    respool(heir, false);
    arm_respool(heir);
    arm(heir, 0);
}

/* Logs, job by job, what is held in memory and goes away with this outbox. */
static void log_lost(const struct cfw_outbox *ob)
{
    size_t n = 0;

    cfw_log_err("outbox: %" PRIu64 " notification(s) could not be written to %s (%s) and are "
                "lost with this exit",
                ob->st.unspooled, ob->dir, ob->last_werr.msg);
    for (const struct cfw_outbox_job *j = ob->head; j != NULL; j = j->next) {
        char key[160];
        if (!j->held) {
            continue;
        }
        if (n++ >= LOST_LOG_MAX) {
            continue;
        }
        cfw_log_escape(j->nkeys > 0 ? j->keys[0] : "-", j->nkeys > 0 ? strlen(j->keys[0]) : 1, 120,
                       key, sizeof(key));
        cfw_log_err("outbox: lost sink=%s endpoint=%u job=%s kind=%s key=%s", j->sink, j->endpoint,
                    j->id, j->kind, key);
    }
    if (n > LOST_LOG_MAX) {
        cfw_log_err("outbox: and %zu more lost notification(s)", n - LOST_LOG_MAX);
    }
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
        } else if (respool(ob, true) > 0) {
            log_lost(ob);
        }
    }
    while (ob->head != NULL) {
        struct cfw_outbox_job *j = ob->head;
        job_unlink(ob, j);
        job_free(j);
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
    unlock_spool(ob);
    if (ob->dir_fd >= 0) {
        close(ob->dir_fd);
    }
    if (ob->dead_fd >= 0) {
        close(ob->dead_fd);
    }
    free(ob->busy);
    free(ob->dir);
    free(ob->dead_dir);
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
