/*
 * The outbox: a durable spool of notifications under state_dir/outbox/ and the scheduler that
 * delivers them. Each job is written (temp file, fsync, rename, fsync of the directory) before
 * its first attempt and removed only when the receiver accepted it; the spool is replayed on
 * start. One retry timer is re-armed to the earliest due job. Failures back off exponentially
 * with full jitter per job and per lane (a sink endpoint); Retry-After pauses the lane.
 * Permanent failures and jobs older than max_age move to state_dir/dead/ with the reason.
 * A job's age is measured on the boot clock (CLOCK_BOOTTIME, recorded with the boot id in the
 * spool file), so a jump of the wall clock neither expires nor rejuvenates it.
 *
 * Disk full: a reserve file (outbox/.reserve, preallocated, counted in max_bytes) is shrunk
 * when a spool write fails with ENOSPC or EDQUOT so that the job can be written, and grown back
 * once there is room. A job that still cannot be written is delivered from memory, counted
 * (unspooled) and its write is retried on a timer, before every later write, and once more when
 * the outbox is freed. It is lost only when the process is killed, or stopped while the disk is
 * still full (then each one is logged).
 *
 * Ordering: every job carries chain keys (an incident key); a job is not attempted while an
 * earlier job of the same lane shares one of its keys, so a resolve never overtakes its trigger.
 *
 * The outbox knows nothing of HTTP: a send function starts a delivery and the owner reports
 * its outcome with cfw_outbox_complete().
 */
#ifndef CFWATCHD_OUTBOX_H
#define CFWATCHD_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/common.h"

struct cfw_diag;
struct cfw_metrics;
struct cfw_node;
struct event_base;

#define CFW_OUTBOX_BODY_MAX (1024u * 1024u)
#define CFW_OUTBOX_IN_FLIGHT_DEFAULT 4u
#define CFW_OUTBOX_KEYS_MAX 256u
/* The default of the reserve_bytes row (outbox.c's outbox_keys; the tests check it). */
#define CFW_OUTBOX_RESERVE_DEFAULT (1024ull * 1024)
/* The default of respool_interval_ms, which is not a key of the section. */
#define CFW_OUTBOX_RESPOOL_INTERVAL_DEFAULT_MS 5000
#define CFW_OUTBOX_RESERVE_FILE ".reserve"

/*
 * The outbox's options: the `outbox:` section's keys (the rows of outbox.c's outbox_keys give
 * their defaults and bounds) and the pace of the re-spool. Start from cfw_outbox_opts_default.
 */
struct cfw_outbox_opts {
    int64_t backoff_base_ms;     /* first retry waits up to this (full jitter) */
    int64_t backoff_max_ms;      /* cap of the exponential (below backoff_base: backoff_base) */
    int64_t max_age_ms;          /* older jobs are dead-lettered */
    size_t max_jobs;             /* jobs the spool holds at most */
    uint64_t max_bytes;          /* covers the jobs and the reserve */
    int64_t reserve_bytes;       /* 0 or less: no reserve; cut to max_bytes / 4 */
    int64_t respool_interval_ms; /* retry of unspooled writes and of the reserve (not a key) */
};

enum cfw_outbox_verdict {
    CFW_OUTBOX_DONE,      /* accepted by the receiver */
    CFW_OUTBOX_RETRY,     /* transient: try again later */
    CFW_OUTBOX_PERMANENT, /* the receiver will never accept it: dead-letter */
};

struct cfw_outbox_result {
    enum cfw_outbox_verdict verdict;
    int64_t retry_after_ms; /* -1: none; otherwise the lane pauses this long */
    long status;            /* HTTP status, 0 when none */
    const char *reason;     /* short, secret-free text for logs and dead letters */
};

/* What to spool: one delivery to one endpoint of one sink. */
struct cfw_outbox_entry {
    const char *sink;
    unsigned endpoint;
    const char *kind;        /* open, reminder, resolve, digest, test */
    const char *const *keys; /* chain keys, NULL-terminated; may be NULL */
    const char *body;
    size_t body_len;
    bool test; /* a test notification (never replayed) */
};

struct cfw_outbox;
struct cfw_outbox_job;

struct cfw_outbox_result;

/*
 * Starts delivering job; returns 0 when started (cfw_outbox_complete follows later, never
 * from inside this call), or -1 with fail's verdict and reason set (the reason must stay valid
 * until the call returns to the outbox).
 */
typedef int (*cfw_outbox_send_fn)(struct cfw_outbox_job *job, struct cfw_outbox_result *fail,
                                  void *arg);
/* Decides whether a replayed job still has a sink; returns false to dead-letter it. */
typedef bool (*cfw_outbox_known_fn)(const char *sink, unsigned endpoint, void *arg);
/* Called after every job leaves the spool (delivered or dead). */
typedef void (*cfw_outbox_gone_fn)(struct cfw_outbox_job *job, bool delivered, void *arg);

struct cfw_outbox_hooks {
    cfw_outbox_send_fn send;
    cfw_outbox_known_fn known; /* may be NULL: every sink is known */
    cfw_outbox_gone_fn gone;   /* may be NULL */
    void *arg;
};

/*
 * Sets every option to its default: the `outbox:` section's rows' (cfw_schema_defaults), and
 * CFW_OUTBOX_RESPOOL_INTERVAL_DEFAULT_MS.
 */
void cfw_outbox_opts_default(struct cfw_outbox_opts *opts);
/*
 * Reads an `outbox:` map (max_age, backoff_base, backoff_max, max_jobs, max_bytes,
 * reserve_bytes: the rows of outbox.c's outbox_keys) into opts, whose defaults are the
 * caller's (see cfw_outbox_opts_default); a duration of 0 is its default. Returns the number
 * of problems added to diag.
 */
int cfw_outbox_opts_parse(const struct cfw_node *map, const char *path,
                          struct cfw_outbox_opts *opts, struct cfw_diag *diag);

/*
 * Opens (creating as needed, mode 0700) state_dir/outbox and state_dir/dead, takes the spool
 * lock, and replays the spool: its jobs are scheduled at once. opts NULL: the defaults.
 * Returns NULL with err set.
 */
struct cfw_outbox *cfw_outbox_new(struct event_base *base, const char *state_dir,
                                  const struct cfw_outbox_opts *opts,
                                  const struct cfw_outbox_hooks *hooks, struct cfw_err *err);
/*
 * Frees the in-memory queue; spooled jobs stay on disk for the next start. Jobs held in memory
 * only are handed to a newer outbox on the same spool (a reload) or written one last time; what
 * still cannot be written is logged as lost, job by job.
 */
void cfw_outbox_free(struct cfw_outbox *ob);

/* Sets how many deliveries one sink may have in flight per endpoint (default 4). */
void cfw_outbox_set_in_flight(struct cfw_outbox *ob, const char *sink, unsigned max);

/*
 * Spools one job and schedules it. Returns the job (borrowed, valid until it leaves the spool)
 * or NULL with err set: the spool is full (counted, the caller logs it) or the entry is invalid.
 * Jobs held in memory by earlier failed writes are written first. When the write fails even
 * with the reserve, the job is kept in memory, delivered, and its write retried (logged,
 * counted).
 */
struct cfw_outbox_job *cfw_outbox_add(struct cfw_outbox *ob, const struct cfw_outbox_entry *e,
                                      struct cfw_err *err);
/* Reports the outcome of a delivery started by the send function. */
void cfw_outbox_complete(struct cfw_outbox *ob, struct cfw_outbox_job *job,
                         const struct cfw_outbox_result *r);
/* Removes a job that is not in flight (an abandoned test notification); no dead letter. */
void cfw_outbox_drop(struct cfw_outbox *ob, struct cfw_outbox_job *job);
/* Runs the scheduler now (otherwise it runs from the event loop). */
void cfw_outbox_kick(struct cfw_outbox *ob);

/* The job's id: "<created ms>-<sequence>", stable across restarts. */
const char *cfw_outbox_job_id(const struct cfw_outbox_job *job);
/* The sink name the job is for. */
const char *cfw_outbox_job_sink(const struct cfw_outbox_job *job);
/* The endpoint number within the sink. */
unsigned cfw_outbox_job_endpoint(const struct cfw_outbox_job *job);
/* open, reminder, resolve, digest or test. */
const char *cfw_outbox_job_kind(const struct cfw_outbox_job *job);
/* The spooled payload (borrowed) and its length. */
const char *cfw_outbox_job_body(const struct cfw_outbox_job *job, size_t *len);
/* Attempts started so far in this process. */
unsigned cfw_outbox_job_attempts(const struct cfw_outbox_job *job);
/* Wall-clock ms when the job was first spooled. */
int64_t cfw_outbox_job_created_ms(const struct cfw_outbox_job *job);
/* True for a test notification. */
bool cfw_outbox_job_test(const struct cfw_outbox_job *job);
/* The last outcome's HTTP status (0 before any answer). */
long cfw_outbox_job_last_status(const struct cfw_outbox_job *job);
/* The last outcome's reason ("" before any attempt). */
const char *cfw_outbox_job_last_reason(const struct cfw_outbox_job *job);
/* Attaches an opaque pointer for the sender (e.g. the HTTP request in flight). */
void cfw_outbox_job_set_ctx(struct cfw_outbox_job *job, void *ctx);
/* Returns the pointer set by cfw_outbox_job_set_ctx (NULL when none is in flight). */
void *cfw_outbox_job_ctx(const struct cfw_outbox_job *job);

struct cfw_outbox_lane_stats {
    uint64_t sent;    /* accepted by the receiver */
    uint64_t retried; /* attempts that will be retried */
    uint64_t dead;    /* dead-lettered (permanent or expired) */
    uint64_t pending; /* jobs in the spool */
    uint64_t in_flight;
};

struct cfw_outbox_stats {
    uint64_t jobs;
    uint64_t bytes;
    uint64_t refused_full;   /* jobs refused because the spool was full */
    uint64_t write_errors;   /* jobs whose write to disk failed at least once */
    uint64_t unspooled;      /* jobs held in memory only now: lost if the process dies */
    uint64_t reserve_bytes;  /* the reserve file's current size */
    uint64_t reserve_target; /* the size it is kept at when there is room (0: none) */
    uint64_t reserve_used;   /* times the reserve was shrunk to write a job */
    uint64_t dead;
    uint64_t sent;
    uint64_t replayed;
};

/* Totals of the outbox. */
void cfw_outbox_stats(const struct cfw_outbox *ob, struct cfw_outbox_stats *out);
/* Counters of one sink over all its endpoints. */
void cfw_outbox_sink_stats(const struct cfw_outbox *ob, const char *sink,
                           struct cfw_outbox_lane_stats *out);
/* Number of jobs in the spool (including in flight). */
size_t cfw_outbox_pending(const struct cfw_outbox *ob);
/*
 * Adds the outbox's families to the /metrics page from its totals (cfw_outbox_stats): its spool,
 * write errors and refusals, and depth, the notifications waiting (the owner's count: it may
 * hold some before they reach the outbox).
 */
void cfw_outbox_metrics(const struct cfw_outbox_stats *st, uint64_t depth, struct cfw_metrics *m);

/* Backoff with full jitter: a uniform draw in [0, min(max, base * 2^attempt)]. */
int64_t cfw_outbox_backoff_ms(int64_t base_ms, int64_t max_ms, unsigned attempt, uint64_t rnd);

#endif
