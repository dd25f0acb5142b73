/*
 * Live sources: objects that produce bytes for one or more named streams from the event loop.
 *
 *   file     a path or a glob; follows rotation by rename and by copytruncate, truncation and
 *            deletion; remembers dev + inode + offset + a fingerprint per file
 *   exec     a command (argv, no shell) whose stdout and stderr are two streams; restarted with
 *            backoff; its process group is stopped with SIGTERM, then SIGKILL
 *   journal  sd_journal (the local journal or a directory) with matches; remembers the cursor
 *
 * Life cycle: cfw_source_new -> (cfw_source_restore) -> cfw_source_start -> ... ->
 * (cfw_source_stop, run the loop until cfw_source_stopped) -> cfw_source_save -> cfw_source_free.
 *
 * Streams: every data callback names its stream ("stdout", "stderr", "journal", or the path of
 * a file). A stream ends with one eof callback, sent only for a stream that delivered data; a
 * later data callback with the same name begins a new stream (e.g. the new file after a
 * rotation, or the command's next run), so the caller keeps one framer per stream name, creates
 * it on the first data and finishes it on eof. Positions saved by cfw_source_save are those of
 * the bytes already handed to the data callback: there is no separate commit step.
 *
 * Health (input.h's one enum): the state starts UP and the state callback fires on every
 * change. DEGRADED is a problem that may pass (a restart pending, a file missing for less than
 * down_after); DOWN is a source that stays broken, for which the caller opens a `source-down`
 * incident, resolved when the state returns to UP.
 *
 * The daemon runs these sources as the input kinds file, exec and journal (input.h).
 *
 * Callbacks run from the event loop. They may call cfw_source_stop and cfw_source_free on their
 * own source; the object is then released when the callback has returned.
 */
#ifndef CFWATCHD_SOURCE_H
#define CFWATCHD_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cfwatchd/common.h"
#include "cfwatchd/framer.h"
#include "cfwatchd/input.h"
#include "cfwatchd/yaml.h"

struct event_base;
struct cfw_source;

enum cfw_source_type {
    CFW_SOURCE_FILE = 1,
    CFW_SOURCE_EXEC,
    CFW_SOURCE_JOURNAL,
};

/* Common options (all sources). */
#define CFW_SOURCE_NAME_MAX 64
#define CFW_SOURCE_READ_BUDGET_DEFAULT (256u * 1024u)
#define CFW_SOURCE_READ_BUDGET_MIN 512u
#define CFW_SOURCE_READ_BUDGET_MAX (64u * 1024u * 1024u)
#define CFW_SOURCE_CHUNK_SIZE (64u * 1024u)
#define CFW_SOURCE_POLL_INTERVAL_DEFAULT_MS 1000
#define CFW_SOURCE_DOWN_AFTER_DEFAULT_MS (60 * 1000)
/* file */
#define CFW_SOURCE_MAX_FILES_DEFAULT 1024u
#define CFW_SOURCE_FINGERPRINT_MAX 1024u
/* exec */
#define CFW_SOURCE_RESTART_DELAY_DEFAULT_MS 1000
#define CFW_SOURCE_RESTART_DELAY_MAX_DEFAULT_MS (60 * 1000)
#define CFW_SOURCE_STABLE_AFTER_DEFAULT_MS (60 * 1000)
#define CFW_SOURCE_STOP_GRACE_DEFAULT_MS 5000
#define CFW_SOURCE_DOWN_AFTER_FAILURES_DEFAULT 5u
/* journal */
#define CFW_SOURCE_MAX_ENTRY_DEFAULT (64u * 1024u)
#define CFW_SOURCE_MAX_ENTRY_MAX (16u * 1024u * 1024u)

/* One entry of the `sources:` section; filled by cfw_source_conf_parse or by hand. */
struct cfw_source_conf {
    char *name;
    enum cfw_source_type type;
    /* common */
    size_t read_budget;           /* bytes per loop turn */
    int64_t poll_interval_ms;     /* file: periodic stat; journal: periodic check */
    int64_t down_after_ms;        /* file, journal: a problem lasting this long is DOWN */
    bool start_at_beginning;      /* file, journal: first start reads what exists already */
    enum cfw_input_format format; /* file, journal: passed through for the framer */
    /* file */
    char *path;       /* a path or a glob */
    size_t max_files; /* files tracked at once */
    bool expect_files; /* a glob matching nothing is a problem (default: waiting for files) */
    /* exec */
    char **command;        /* argv, NULL-terminated */
    struct cfw_fields env; /* added to (or replacing in) the daemon's environment */
    char *cwd;             /* NULL: the daemon's */
    enum cfw_input_format stdout_format;
    enum cfw_input_format stderr_format;
    int64_t restart_delay_ms;     /* first restart delay, doubled after each quick failure */
    int64_t restart_delay_max_ms; /* cap of the doubling */
    int64_t stable_after_ms;      /* a run this long resets the delay and the failure count */
    int64_t stop_grace_ms;        /* SIGTERM -> SIGKILL */
    unsigned down_after_failures; /* consecutive quick failures before DOWN */
    /* journal */
    char *directory;  /* NULL: the local journal */
    char **matches;   /* FIELD=value or "+", NULL-terminated or NULL */
    size_t max_entry; /* bytes of MESSAGE kept per entry (sd_journal data threshold) */
};

typedef void (*cfw_source_data_cb)(void *arg, struct cfw_source *src, const char *stream,
                                   const char *buf, size_t len);
typedef void (*cfw_source_eof_cb)(void *arg, struct cfw_source *src, const char *stream);
typedef void (*cfw_source_state_cb)(void *arg, struct cfw_source *src, enum cfw_input_health state,
                                    const char *reason);

/* The caller's callbacks; any may be NULL, arg is passed to each. */
struct cfw_source_cbs {
    cfw_source_data_cb data;
    cfw_source_eof_cb eof;
    cfw_source_state_cb state;
    void *arg;
};

/* Counters for metrics. */
struct cfw_source_stats {
    uint64_t bytes;       /* bytes handed to the data callback */
    uint64_t records;     /* journal entries delivered */
    uint64_t starts;      /* exec: command runs started */
    uint64_t failures;    /* exec: runs that ended (or failed to start) */
    uint64_t rotations;   /* file: files drained after a rename or deletion */
    uint64_t truncations; /* file: files read again from 0 after truncation/copytruncate */
    uint64_t files;       /* file: files currently tracked */
    uint64_t lag_bytes;   /* file: bytes known to be in the files and not delivered yet */
};

/* Parses file|exec|journal; returns -1 on anything else. */
int cfw_source_type_parse(const char *s, enum cfw_source_type *out);
/* Returns "file", "exec", "journal" or "?". */
const char *cfw_source_type_name(enum cfw_source_type type);

/* Fills conf with the defaults of a source of the given type (name and path unset). */
void cfw_source_conf_init(struct cfw_source_conf *conf, enum cfw_source_type type);
/* Releases what conf owns and leaves it zeroed; accepts a zeroed or half-filled conf. */
void cfw_source_conf_clear(struct cfw_source_conf *conf);
/*
 * Parses one entry of `sources:` (path is its key path, e.g. "sources[2]") into conf, which
 * must not own anything yet. Reports every problem to diag; returns 0 or -1 (conf is then
 * cleared).
 */
int cfw_source_conf_parse(const struct cfw_node *node, const char *path,
                          struct cfw_source_conf *conf, struct cfw_diag *diag);

/* Creates a source from conf (copied) on base; nothing is opened or run before start. */
struct cfw_source *cfw_source_new(struct event_base *base, const struct cfw_source_conf *conf,
                                  const struct cfw_source_cbs *cbs, struct cfw_err *err);
/* Begins reading (files opened, command spawned, journal opened); once per source. */
int cfw_source_start(struct cfw_source *src, struct cfw_err *err);
/*
 * Asks the source to stop: files and the journal are closed and their open streams get eof;
 * the command's process group gets SIGTERM, then SIGKILL after stop_grace. Completes from the
 * event loop; see cfw_source_stopped.
 */
void cfw_source_stop(struct cfw_source *src);
/* Tells whether a stop has completed (no child left, every stream closed). */
bool cfw_source_stopped(const struct cfw_source *src);
/* Frees the source; a command still running is killed with SIGKILL and reaped. NULL is fine. */
void cfw_source_free(struct cfw_source *src);

/*
 * Returns the source's position as a new JSON object (file: dev, inode, offset and fingerprint
 * per file; journal: cursor) covering exactly the bytes delivered so far.
 */
json_t *cfw_source_save(const struct cfw_source *src);
/*
 * Restores a position saved by cfw_source_save, before cfw_source_start. Returns -1 (logged,
 * the source then starts as on a first start) when the object does not fit this source.
 */
int cfw_source_restore(struct cfw_source *src, const json_t *state);

/* Returns the source's name (borrowed). */
const char *cfw_source_get_name(const struct cfw_source *src);
/* Returns the source's type. */
enum cfw_source_type cfw_source_get_type(const struct cfw_source *src);
/* Returns the current state; *reason (when reason is not NULL) is borrowed, "" when UP. */
enum cfw_input_health cfw_source_get_state(const struct cfw_source *src, const char **reason);
/* Returns the configured format of a stream (exec: per stdout/stderr). */
enum cfw_input_format cfw_source_get_format(const struct cfw_source *src, const char *stream);
/* Fills *out with the source's counters. */
void cfw_source_get_stats(const struct cfw_source *src, struct cfw_source_stats *out);

#endif
