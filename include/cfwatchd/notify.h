/*
 * The notifier: the facade the daemon and --once use for delivery. It owns the sinks parsed
 * from the `sinks:` section, the router (filters, rate limits, digests), the outbox under
 * state_dir (durable spool, retries, dead letters) and the HTTP client on the application's
 * event_base. A submitted transition is routed, turned into each sink's payload and spooled
 * before submit returns; delivery happens from the event loop.
 */
#ifndef CFWATCHD_NOTIFY_H
#define CFWATCHD_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cfwatchd/incident.h"
#include "cfwatchd/metrics.h"
#include "cfwatchd/outbox.h"
#include "cfwatchd/yaml.h"

struct event_base;
struct cfw_notifier;

struct cfw_notifier_opts {
    struct cfw_outbox_opts outbox; /* from cfw_outbox_opts_default (see outbox.h) */
    const char *host;              /* NULL: gethostname() */
    const char *client_url;        /* shown as PagerDuty client_url / Alertmanager generatorURL */
    FILE *local_out;               /* where stdout sinks write; NULL: stdout */
};

/*
 * Parses an optional `outbox:` map (may be NULL) into opts->outbox: cfw_outbox_opts_parse,
 * whose defaults are the caller's. Returns the number of problems added to diag.
 */
int cfw_notifier_parse_opts(const struct cfw_node *map, const char *path,
                            struct cfw_notifier_opts *opts, struct cfw_diag *diag);

/* Creates a notifier with default options; see cfw_notifier_new_opts. */
struct cfw_notifier *cfw_notifier_new(struct event_base *base, const struct cfw_node *sinks_seq,
                                      const char *state_dir, struct cfw_diag *diag);
/*
 * Creates a notifier: parses sinks_seq (may be NULL: no sinks), opens state_dir/outbox and
 * replays what an earlier run left there. opts NULL: the defaults. Returns NULL with the
 * problems in diag.
 */
struct cfw_notifier *cfw_notifier_new_opts(struct event_base *base,
                                           const struct cfw_node *sinks_seq, const char *state_dir,
                                           const struct cfw_notifier_opts *opts,
                                           struct cfw_diag *diag);
/*
 * Starts the notifier of a configuration: its outbox: map (may be NULL) parsed, then
 * cfw_notifier_new_opts for sinks_seq under state_dir. public_url (NULL or "": none) makes the
 * client_url "<public_url>/incidents"; no_reserve keeps no reserve for a full disk (a private
 * spool removed at exit). Returns NULL with the problems in diag.
 */
struct cfw_notifier *cfw_notifier_start(struct event_base *base, const struct cfw_node *sinks_seq,
                                        const struct cfw_node *outbox, const char *state_dir,
                                        const char *public_url, bool no_reserve,
                                        struct cfw_diag *diag);
/*
 * Frees the notifier before the event base: pending digests are spooled first; requests in
 * flight are abandoned and stay in the spool for the next start.
 */
void cfw_notifier_free(struct cfw_notifier *n);

/*
 * Routes one incident transition to the sinks and spools the resulting payloads. Returns 0,
 * or -1 when a notification could not be spooled (spool full; logged and counted).
 */
int cfw_notifier_submit(struct cfw_notifier *n, const struct cfw_incident *inc,
                        enum cfw_transition t);
/* Tells stateful sinks about an incident restored open from saved state (no notification). */
void cfw_notifier_restore(struct cfw_notifier *n, const struct cfw_incident *inc);

/*
 * Runs the event loop until everything submitted or replayed has left the outbox, or until
 * the monotonic deadline (cfw_now_mono_ms based). Not to be called from an event callback.
 * Returns 0 when all was delivered and nothing was dead-lettered or refused since the
 * notifier was created, -1 otherwise (a summary is logged).
 */
int cfw_notifier_drain(struct cfw_notifier *n, int64_t deadline_ms);

/* Called (from the event loop) whenever the outbox and the digests become empty. */
typedef void (*cfw_notifier_idle_cb)(void *arg);
/* Sets the idle callback (NULL to remove it). */
void cfw_notifier_set_idle_cb(struct cfw_notifier *n, cfw_notifier_idle_cb cb, void *arg);

struct cfw_test_result {
    bool delivered; /* every endpoint accepted it */
    long status;    /* the last HTTP status (0: none) */
    unsigned attempts;
    char answer[1024]; /* per endpoint: URL (redacted), status and the receiver's answer */
};

/*
 * Sends one clearly marked test notification through the real path (payload builder, spool,
 * HTTP, response classification) of sink_name and waits for the receiver's answer until the
 * monotonic deadline. Not to be called from an event callback. Returns 0 when delivered.
 */
int cfw_notifier_test_alert(struct cfw_notifier *n, const char *sink_name, int64_t deadline_ms,
                            struct cfw_test_result *out);

struct cfw_notifier_sink_stats {
    const char *name; /* borrowed from the notifier */
    const char *type;
    uint64_t submitted; /* notifications built for this sink */
    uint64_t sent;      /* accepted by the receiver (or written, for stdout) */
    uint64_t retried;   /* failed attempts that will be retried */
    uint64_t dead;      /* dead-lettered */
    uint64_t refused;   /* not spooled (spool full or payload error) */
    uint64_t digested;  /* transitions folded into digests by the rate limit */
    uint64_t digests;   /* digest notifications */
    uint64_t pending;   /* in the spool */
    uint64_t in_flight;
};

struct cfw_notifier_stats {
    size_t n_sinks;
    struct cfw_notifier_sink_stats *sinks; /* owned: free with cfw_notifier_stats_clear */
    struct cfw_outbox_stats outbox;
    uint64_t router_pending;
};

/* Fills counters per sink and for the outbox (for /metrics). */
void cfw_notifier_stats(const struct cfw_notifier *n, struct cfw_notifier_stats *out);
/* Frees what cfw_notifier_stats allocated. */
void cfw_notifier_stats_clear(struct cfw_notifier_stats *st);

/* Number of notifications not yet delivered (spool and digests). */
size_t cfw_notifier_pending(const struct cfw_notifier *n);
/* Adds the notifier's families to the /metrics page: notifications per sink, then the outbox's. */
void cfw_notifier_metrics(const struct cfw_notifier *n, struct cfw_metrics *m);
/* Number of configured sinks (for summaries such as --check-config). */
size_t cfw_notifier_sink_count(const struct cfw_notifier *n);
/* The i-th sink's name. */
const char *cfw_notifier_sink_name(const struct cfw_notifier *n, size_t i);
/* The i-th sink's type. */
const char *cfw_notifier_sink_type(const struct cfw_notifier *n, size_t i);
/* The i-th sink's number of endpoints. */
size_t cfw_notifier_sink_endpoints(const struct cfw_notifier *n, size_t i);
/* An endpoint URL of the i-th sink with its secret part replaced. */
const char *cfw_notifier_sink_url(const struct cfw_notifier *n, size_t i, size_t endpoint);

#endif
