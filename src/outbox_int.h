/*
 * Private to the outbox: the objects shared by its two halves, and what each lends the other.
 * outbox.c schedules the deliveries (lanes, the one retry timer, in-flight limits, chain keys,
 * backoff); outbox_spool.c keeps the jobs on disk (file names, the encoding, writes with the
 * reserve, loading and removing job files, dead letters, the spool lock), as OpenSMTPD keeps
 * its queue storage apart from its scheduler.
 */
#ifndef CFWATCHD_OUTBOX_INT_H
#define CFWATCHD_OUTBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/util.h>

#include "cfwatchd/log.h"
#include "cfwatchd/outbox.h"

#define OUTBOX_REASON_MAX 256
/* The reserve file's size is a multiple of this. */
#define OUTBOX_RESERVE_ALIGN 4096u

struct event;

/* One sink endpoint: its in-flight count, failures, pause and counters. */
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
    char last_reason[OUTBOX_REASON_MAX];
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

struct in_flight_cfg;

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
    struct cfw_ratelog held_log; /* errors logged at most once a minute, the others counted */
    struct cfw_ratelog reserve_log;
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

/* ---- the scheduler (outbox.c), for the spool ---- */

/* FNV-1a over n bytes, continuing from h. */
uint64_t cfw_outbox_fnv1a(uint64_t h, const void *p, size_t n);
/* A job in memory, on its lane, without chain keys; not linked into the queue yet. */
struct cfw_outbox_job *cfw_outbox_job_make(struct cfw_outbox *ob, uint64_t seq,
                                           const struct cfw_stamp *created, const char *sink,
                                           unsigned endpoint, const char *kind, const char *body,
                                           size_t body_len, bool test);
/* Adds a chain key to a job. */
void cfw_outbox_job_add_key(struct cfw_outbox_job *j, const char *key);
/* Frees a job that is not linked (accepts NULL). */
void cfw_outbox_job_free(struct cfw_outbox_job *j);
/* Queues a job read back from the spool (dead-lettered when its sink is no longer known). */
void cfw_outbox_replay(struct cfw_outbox *ob, struct cfw_outbox_job *j);

/* ---- the spool (outbox_spool.c), for the scheduler ---- */

/*
 * Creates and opens state_dir/outbox and state_dir/dead (mode 0700) and takes the spool lock;
 * a read-only state directory leaves the outbox in memory only (logged). -1 with err set.
 */
int cfw_outbox_spool_open(struct cfw_outbox *ob, const char *state_dir, struct cfw_err *err);
/* Reads the spool's job files back (each through cfw_outbox_replay); -1 with err set. */
int cfw_outbox_spool_load(struct cfw_outbox *ob, struct cfw_err *err);
/* Releases the spool lock, closes the directories and frees their names. */
void cfw_outbox_spool_close(struct cfw_outbox *ob);
/* The job's spool file text (free it) and its length; NULL when it cannot be encoded. */
char *cfw_outbox_spool_encode(const struct cfw_outbox_job *j, size_t *len);
/*
 * Writes a new job's spool file text[0..len), after the jobs held in memory: when it cannot be
 * written, the job is held (a test notification is not) and why is set.
 */
void cfw_outbox_spool_write_new(struct cfw_outbox *ob, struct cfw_outbox_job *j, const char *text,
                                size_t len, struct cfw_err *why);
/* Logs (rate-limited) that a job is delivered from memory only, for why. */
void cfw_outbox_spool_log_held(struct cfw_outbox *ob, const struct cfw_outbox_job *j,
                               const struct cfw_err *why);
/*
 * Writes the jobs held in memory, oldest first. Stops at the first failure unless all is set
 * (the last attempt before the jobs are freed). Returns how many are still held.
 */
uint64_t cfw_outbox_spool_respool(struct cfw_outbox *ob, bool all);
/* Logs, job by job, what is held in memory and goes away with this outbox. */
void cfw_outbox_spool_log_lost(const struct cfw_outbox *ob);
/* Removes a job's spool file (when there is one). */
void cfw_outbox_spool_remove(struct cfw_outbox *ob, struct cfw_outbox_job *j);
/* Saves a job in dead/ with the reason and logs it. */
void cfw_outbox_spool_bury(struct cfw_outbox *ob, const struct cfw_outbox_job *j,
                           const char *reason);
/* Opens (creating) the reserve at this outbox's target, or removes it when there is none. */
void cfw_outbox_spool_reserve_open(struct cfw_outbox *ob);
/* Arms the retry of held writes and of the reserve when either is needed and not yet armed. */
void cfw_outbox_spool_arm_respool(struct cfw_outbox *ob);
/* The respool timer's callback (arg: the outbox). */
void cfw_outbox_spool_on_respool(evutil_socket_t fd, short what, void *arg);

#endif
