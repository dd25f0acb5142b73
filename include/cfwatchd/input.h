/*
 * Inputs: every kind of `sources:` entry behind one interface, found by its type name as the
 * sinks are (sink.h). A kind brings its configuration keys, its parser and the life cycle
 * below; the daemon keeps one array of inputs and runs each job over all of it.
 *
 *   file, exec, journal         byte streams read from the event loop (source.h)
 *   logpush                     batches POSTed to the daemon's listener (logpush.h)
 *   cloudflare-deployments,
 *   cloudflare-observability,
 *   cloudflare-builds           Cloudflare API pollers (poller.c, on the client of cloudflare.h)
 *   cloudflare-tail             Cloudflare's live tail over WebSockets (cf_tail.h)
 *
 * Life cycle: cfw_input_new -> (cfw_input_restore) -> cfw_input_start -> ... -> (cfw_input_stop,
 * run the loop until cfw_input_stopped) -> cfw_input_save -> cfw_input_drain -> cfw_input_free.
 *
 * What an input produces goes to the caller's callbacks: bytes of named streams (the caller
 * frames them, one framer per stream name from its first bytes to its eof; bytes after an eof
 * begin a new stream), records ready to decode, health changes, and what only some kinds see
 * (deployments, builds that deployed, tails opened or closed). Callbacks run from the event
 * loop and never free their input.
 *
 * Health: UP, DEGRADED (a problem that may pass), DOWN (an input that stays broken, for which
 * the caller opens a `source-down` incident, resolved when the input is UP again). Every input
 * starts UP and tells its changes; a cloudflare-tail also tells its first definite state.
 */
#ifndef CFWATCHD_INPUT_H
#define CFWATCHD_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cfwatchd/common.h"
#include "cfwatchd/deploys.h"
#include "cfwatchd/framer.h"
#include "cfwatchd/yaml.h"

struct event_base;
struct cfw_cf;
struct cfw_input;
struct cfw_listener_req;
struct cfw_metrics;

enum cfw_input_health {
    CFW_INPUT_UP = 0,
    CFW_INPUT_DEGRADED,
    CFW_INPUT_DOWN,
};

/* What a configuration provides to the inputs that need it (cfw_input_check). */
#define CFW_INPUT_NEEDS_CLOUDFLARE 0x1u /* the cloudflare: section (the API client) */
#define CFW_INPUT_NEEDS_LISTENER 0x2u   /* the HTTP listener */

/* What inputs are made with; borrowed, it outlives them. */
struct cfw_input_env {
    struct event_base *base;
    const char *state_dir;       /* a Logpush receiver spools under <state_dir>/logpush */
    struct cfw_deploys *deploys; /* where the pollers record deployments */
    /* The Cloudflare API client, made on first use; NULL with the reason in diag. */
    struct cfw_cf *(*cloudflare)(void *arg, struct cfw_diag *diag);
    void *arg;
};

/* Bytes of one stream of an input, for the caller to frame. */
struct cfw_input_bytes {
    const char *stream; /* its name, unique within the input ("stdout", a path, "builds:<id>") */
    const char *label;  /* the input name its records carry; NULL: "<input name>:<stream>" */
    enum cfw_input_format format;
    const struct cfw_fields *ctx; /* fields for every event of the stream, or NULL */
    const char *buf;
    size_t len;
};

/* The caller's callbacks; any may be NULL, arg is passed to each. */
struct cfw_input_cbs {
    void (*bytes)(void *arg, struct cfw_input *in, const struct cfw_input_bytes *b);
    /* a stream ended (sent only for a stream that delivered bytes) */
    void (*eof)(void *arg, struct cfw_input *in, const char *stream);
    /* a record to decode and match; ctx (may be NULL) holds fields for each of its events */
    void (*record)(void *arg, struct cfw_input *in, const struct cfw_fields *ctx,
                   const struct cfw_record *rec);
    /* whether a record is worth parsing at all (the prefilter); a record turned down is counted */
    bool (*want)(void *arg, struct cfw_input *in, const struct cfw_record *rec);
    /* the health changed; reason is "" when UP */
    void (*health)(void *arg, struct cfw_input *in, enum cfw_input_health health,
                   const char *reason);
    /*
     * A deployment seen for the first time (not those present at the first poll); announce:
     * the input was configured to announce each new deployment.
     */
    void (*deployment)(void *arg, struct cfw_input *in, const struct cfw_deployment *dep,
                       bool announce);
    /*
     * A Workers Builds build that deploys stopped with outcome "success", its log read; ctx
     * holds its script, build, branch and commit; created_wall_ms is -1 when unknown.
     */
    void (*build_deployed)(void *arg, struct cfw_input *in, const struct cfw_fields *ctx,
                           int64_t created_wall_ms);
    /* what cfw_input_save returns changed between reads (a tail created or deleted) */
    void (*changed)(void *arg, struct cfw_input *in);
    void *arg;
};

/* Returns "up", "degraded", "down" or "?". */
const char *cfw_input_health_name(enum cfw_input_health health);

/*
 * Checks one entry of `sources:` (path is its key path, e.g. "sources[2]") as cfw_input_new
 * would parse it; have tells what the configuration provides (CFW_INPUT_NEEDS_*), and an input
 * that needs more is reported. 0, or -1 with every problem in diag.
 */
int cfw_input_check(const struct cfw_node *node, const char *path, unsigned have,
                    struct cfw_diag *diag);
/*
 * The text an entry is kept running by across a reload (an exec source: no gap in what its
 * command prints), or NULL for an entry that is always started again (other kinds, and exec
 * sources whose environment comes from files or the process environment, which a reload must
 * read again). Two entries with the same text are the same input.
 */
char *cfw_input_keep_text(const struct cfw_node *node);

/*
 * Parses an entry and creates its input on env->base; nothing is read before start. NULL when
 * the entry has problems (in diag) or the input cannot be made (logged).
 */
struct cfw_input *cfw_input_new(const struct cfw_node *node, const char *path,
                                const struct cfw_input_env *env, const struct cfw_input_cbs *cbs,
                                struct cfw_diag *diag);
/* Restores what cfw_input_save returned in an earlier run, before start (mismatches are logged). */
void cfw_input_restore(struct cfw_input *in, const json_t *state);
/* Begins reading; an input that cannot start now logs why, reports DOWN and keeps trying. */
void cfw_input_start(struct cfw_input *in);
/* Asks the input to stop (commands ended, tails deleted); completes from the event loop. */
void cfw_input_stop(struct cfw_input *in);
/* Tells whether a stop has completed (or its deadline passed). */
bool cfw_input_stopped(const struct cfw_input *in);
/* The input's position or cursors as a new JSON object, or NULL for a kind that keeps none. */
json_t *cfw_input_save(const struct cfw_input *in);
/* True for a kind whose saved state moves with the records it hands over. */
bool cfw_input_keeps_state(const struct cfw_input *in);
/* Hands over what was accepted and not matched yet (a Logpush receiver's batches: answered 200). */
void cfw_input_drain(struct cfw_input *in);
/* Frees the input without any callback (NULL accepted). */
void cfw_input_free(struct cfw_input *in);

/* The input's configured name (borrowed). */
const char *cfw_input_name(const struct cfw_input *in);
/* The input's type name: file, exec, ..., cloudflare-tail. */
const char *cfw_input_type(const struct cfw_input *in);
/* The current health; *reason (when reason is not NULL) is borrowed, "" when UP. */
enum cfw_input_health cfw_input_health(const struct cfw_input *in, const char **reason);
/* The text that keeps this input running across a reload (cfw_input_keep_text), or NULL. */
const char *cfw_input_kept_by(const struct cfw_input *in);

/* True for an input that receives HTTP requests (a Logpush receiver: /logpush/<name>). */
bool cfw_input_accepts_http(const struct cfw_input *in);
/*
 * Checks a request's head before its body is read: 0 to read the body, or -1 when it has been
 * answered (refused).
 */
int cfw_input_http_check(struct cfw_input *in, struct cfw_listener_req *req);
/* Handles a request whose body has been read. */
void cfw_input_http_handle(struct cfw_input *in, struct cfw_listener_req *req);

/*
 * Adds the families of n inputs to m: cfwatchd_source_up for each, the byte sources' counters
 * and what each kind counts.
 */
void cfw_inputs_metrics(struct cfw_input *const *v, size_t n, struct cfw_metrics *m);

#endif
