/*
 * The router: decides, per sink, which incident transitions become notifications. Filters are
 * a minimum severity, include/exclude globs on the rule id and on the script, and the set of
 * transitions to send. Each sink has a token bucket; a transition that finds the bucket empty
 * joins the sink's pending digest, which leaves as one notification as soon as a token is
 * available again: never a flood, never silence. While a digest is pending, later transitions
 * of that sink join it too, so notifications of one incident keep their order.
 */
#ifndef CFWATCHD_ROUTER_H
#define CFWATCHD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/incident.h"
#include "cfwatchd/rules.h"

struct event_base;

/* Items listed one by one in a digest; the rest are counted. */
#define CFW_ROUTER_DIGEST_MAX 500u

struct cfw_route_cfg {
    const char *name; /* the sink's name, for logs (borrowed; may be NULL) */
    enum cfw_severity min_severity;
    char **rules;         /* include globs on the rule id (NULL: all) */
    char **exclude_rules; /* exclude globs on the rule id */
    char **scripts;       /* include globs on the incident's script field (NULL: all) */
    char **exclude_scripts;
    bool send_open;
    bool send_reminder;
    bool send_resolve;
    bool send_ack; /* acknowledgements (not for Alertmanager, which has no such state) */
    uint32_t burst;       /* bucket size; 0: no rate limit */
    int64_t per_ms;       /* one token every per_ms */
    bool digest_resolves; /* false: a resolve bypasses an empty bucket (PagerDuty) */
};

/* A transition held for a digest: a copy of the incident's displayable parts. */
struct cfw_digest_item {
    enum cfw_transition transition;
    int64_t wall_ms; /* when the transition happened */
    struct cfw_incident inc;
};

enum cfw_notify_kind {
    CFW_NOTIFY_TRANSITION,
    CFW_NOTIFY_DIGEST,
    CFW_NOTIFY_TEST,
};

/* One notification for one sink, as the sink's payload builder sees it. */
struct cfw_notification {
    enum cfw_notify_kind kind;
    enum cfw_transition transition;      /* TRANSITION and TEST */
    const struct cfw_incident *inc;      /* TRANSITION and TEST */
    const struct cfw_digest_item *items; /* DIGEST */
    size_t n_items;
    uint64_t n_omitted; /* DIGEST: transitions beyond CFW_ROUTER_DIGEST_MAX */
    int64_t now_wall_ms;
};

/* Receives every notification the router lets through, for sink number sink. */
typedef void (*cfw_router_emit_fn)(size_t sink, const struct cfw_notification *n, void *arg);

struct cfw_router;

/* Creates a router; with a base, a timer flushes digests, without one call cfw_router_tick. */
struct cfw_router *cfw_router_new(struct event_base *base, cfw_router_emit_fn emit, void *arg);
/* Frees the router; pending digests are dropped (call cfw_router_flush first to keep them). */
void cfw_router_free(struct cfw_router *r);
/* Adds a sink with its routing configuration (copied); returns its number. */
size_t cfw_router_add_sink(struct cfw_router *r, const struct cfw_route_cfg *cfg);
/* Tells whether a sink's severity, rule and script filters accept an incident. */
bool cfw_route_matches(const struct cfw_route_cfg *cfg, const struct cfw_incident *inc);
/* Same, and the transition is one the sink sends (rate limit not considered). */
bool cfw_route_accepts(const struct cfw_route_cfg *cfg, const struct cfw_incident *inc,
                       enum cfw_transition t);
/*
 * Routes one transition to every sink at monotonic time now_ms (wall_ms for display). Returns
 * the number of sinks that sent or queued it.
 */
size_t cfw_router_route(struct cfw_router *r, const struct cfw_incident *inc, enum cfw_transition t,
                        int64_t now_ms, int64_t wall_ms);
/* Emits digests whose token is due; returns ms until the next one, or -1 when none waits. */
int64_t cfw_router_tick(struct cfw_router *r, int64_t now_ms);
/* Emits every pending digest now, ignoring the rate limit (shutdown, drain deadline). */
void cfw_router_flush(struct cfw_router *r, int64_t now_ms);
/* Number of transitions waiting in digests. */
size_t cfw_router_pending(const struct cfw_router *r);
/* Transitions folded into digests so far for sink (rate limited). */
uint64_t cfw_router_digested(const struct cfw_router *r, size_t sink);
/* Digest notifications emitted so far for sink. */
uint64_t cfw_router_digests(const struct cfw_router *r, size_t sink);

/* Deep-copies the parts of an incident a notification shows (no threshold ring). */
void cfw_router_copy_incident(struct cfw_incident *dst, const struct cfw_incident *src);
/* Frees what cfw_router_copy_incident allocated. */
void cfw_router_clear_incident(struct cfw_incident *inc);

#endif
