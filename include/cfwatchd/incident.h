/*
 * Incidents: matches folded by a key template into one incident with a count, first and last
 * position, the first sample record, fields, and the rendered title and hint.
 *
 * Lifecycle: the first match opens an incident (or, with a rule threshold, the count-th match
 * within the window), later matches count and, after repeat_interval, produce a reminder; no
 * match for resolve_after resolves it. Each of these is a transition handed to the caller's
 * callback (the router in the daemon, nothing in a plain --once scan). Times are monotonic
 * milliseconds for windows and wall-clock milliseconds for what is shown; how long an incident
 * was open is measured on stamps (boot clock within one boot), never as a difference of
 * wall-clock times, so that a clock jump does not move it.
 */
#ifndef CFWATCHD_INCIDENT_H
#define CFWATCHD_INCIDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/common.h"
#include "cfwatchd/rules.h"

#define CFW_INCIDENT_KEY_DEFAULT "{rule}/{script}/{module}"
#define CFW_INCIDENT_SAMPLE_MAX (4u * 1024u)
#define CFW_INCIDENT_REPEAT_DEFAULT_MS (4LL * 3600 * 1000)
#define CFW_INCIDENT_RESOLVE_DEFAULT_MS (30LL * 60 * 1000)
#define CFW_INCIDENT_MAX_DEFAULT 100000u

enum cfw_incident_state {
    CFW_INCIDENT_PENDING,  /* below its threshold: not announced */
    CFW_INCIDENT_OPEN,
    CFW_INCIDENT_RESOLVED,
};

enum cfw_transition {
    CFW_TRANSITION_OPEN,
    CFW_TRANSITION_REMINDER,
    CFW_TRANSITION_RESOLVE,
    CFW_TRANSITION_ACK, /* someone took it: reminders stop, PagerDuty is told "acknowledge" */
};

#define CFW_TRANSITIONS 4

const char *cfw_transition_name(enum cfw_transition t);

struct cfw_position {
    char *input; /* source or input name */
    uint64_t line;
    int64_t wall_ms; /* when cfwatchd saw it */
};

struct cfw_incident {
    char *key;
    char *rule;
    char *pack;
    enum cfw_severity severity;
    char *title;
    char *hint;
    struct cfw_fields fields; /* fields of the first match */
    char *sample;             /* first record's text, capped at CFW_INCIDENT_SAMPLE_MAX */
    uint64_t count;           /* matches in the current opening */
    uint64_t occurrences;     /* matches since the key was first seen, over all its openings */
    struct cfw_position first;
    struct cfw_position last;
    enum cfw_incident_state state;
    int64_t opened_wall_ms;
    int64_t resolved_wall_ms;
    int64_t prev_resolved_wall_ms; /* when it was last resolved before this opening, or 0 */
    /*
     * The same moments for durations: wall_ms equals opened_wall_ms / resolved_wall_ms, the boot
     * clock is read when the transition happens. Without a boot part (a state file from an older
     * version, another boot, an incident built by hand, where a zero wall_ms stands for the wall
     * field) durations fall back to the wall clock.
     */
    struct cfw_stamp opened_at;
    struct cfw_stamp resolved_at; /* zero while open */
    int64_t last_seen_mono_ms;
    int64_t last_notified_mono_ms;
    uint64_t count_at_notify; /* count when the last notification left */
    int64_t repeat_interval_ms;
    int64_t resolve_after_ms;
    /* threshold bookkeeping: times of recent matches (ring) */
    uint64_t threshold_count;
    int64_t threshold_window_ms;
    int64_t *recent;
    size_t recent_n;
    size_t recent_head;
    uint64_t seq; /* creation order, for stable reports */
    /*
     * How many times this key has opened (1 for the first), and the reminders sent in the
     * current opening: with the key and opened_wall_ms they name each notification stably
     * (cfw_sink_notification_id), so a re-send after a crash carries the same id.
     */
    uint64_t opening;
    uint64_t reminders;
    /*
     * A `resolve: success` rule matched in deploy output (a text record): the incident is a
     * state ("api cannot be deployed") that ends on evidence of a later successful deploy of
     * the same script (cfw_incidents_succeed), else after resolve_fallback_ms without a match.
     */
    bool on_success;
    int64_t resolve_fallback_ms;
    char *resolved_by; /* what resolved it, when evidence did ("Uploaded api (12.3 sec) at ...") */
    char *acked_by;    /* who acknowledged this opening (NULL: nobody) */
    int64_t acked_wall_ms;
    bool muted; /* this opening was silenced: its open was not sent, nor is what follows */
};

struct cfw_incident_opts {
    const char *key_template;   /* NULL: CFW_INCIDENT_KEY_DEFAULT */
    int64_t repeat_interval_ms; /* 0: default; <0: never remind */
    int64_t resolve_after_ms;   /* 0: default; <0: never resolve */
    size_t max_incidents;       /* 0: default; beyond it the oldest resolved are dropped */
};

typedef void (*cfw_transition_cb)(const struct cfw_incident *inc, enum cfw_transition t,
                                  void *arg);

struct cfw_incidents;
struct cfw_metrics;

struct cfw_incidents *cfw_incidents_new(const struct cfw_incident_opts *opts,
                                        cfw_transition_cb cb, void *arg);
void cfw_incidents_free(struct cfw_incidents *set);
/*
 * Called (with the set's cb argument) on the incident itself just before each transition is
 * told, so that the set's owner can annotate it (deployment context, a silence) before cb sees it.
 */
typedef void (*cfw_annotate_cb)(struct cfw_incident *inc, enum cfw_transition t, void *arg);
void cfw_incidents_set_annotate(struct cfw_incidents *set, cfw_annotate_cb fn);
/*
 * Replaces options (reload). With rules (NULL: keep), incidents whose rule is still there take
 * its new intervals (repeat_interval, resolve_after, resolve_fallback) and the set's new
 * defaults, so a changed setting applies to incidents already open.
 */
void cfw_incidents_set_opts(struct cfw_incidents *set, const struct cfw_incident_opts *opts);
void cfw_incidents_apply_rules(struct cfw_incidents *set, const struct cfw_ruleset *rules);

/* Records one match at the given times; returns the incident (borrowed). */
const struct cfw_incident *cfw_incidents_observe(struct cfw_incidents *set,
                                                 const struct cfw_match *m,
                                                 const struct cfw_event *ev, int64_t mono_ms,
                                                 int64_t wall_ms);
/* Fires reminders and resolves that are due; returns ms until the next due time, or -1. */
int64_t cfw_incidents_tick(struct cfw_incidents *set, int64_t mono_ms, int64_t wall_ms);

size_t cfw_incidents_count(const struct cfw_incidents *set);
size_t cfw_incidents_open_count(const struct cfw_incidents *set);
/* Incidents in creation order; i < cfw_incidents_count(). */
const struct cfw_incident *cfw_incidents_at(const struct cfw_incidents *set, size_t i);
const struct cfw_incident *cfw_incidents_find(const struct cfw_incidents *set, const char *key);
/* New incidents refused because the cap was reached with every incident open. */
uint64_t cfw_incidents_dropped(const struct cfw_incidents *set);
/*
 * Adds the incidents' families to the /metrics page: open, tracked and dropped, and transitions
 * (counted by the caller, per kind: CFW_TRANSITIONS of them).
 */
void cfw_incidents_metrics(const struct cfw_incidents *set, const uint64_t transitions[],
                           struct cfw_metrics *m);

/*
 * Touched incidents: with tracking on, every incident a match counts is remembered (and kept
 * from eviction) until cfw_incidents_take_touched hands it over, so that the daemon can journal
 * counts together with the positions that produced them.
 */
void cfw_incidents_track_touched(struct cfw_incidents *set, bool on);
typedef void (*cfw_incident_fn)(const struct cfw_incident *inc, void *arg);
/* Calls fn for each incident touched since the last call (open or resolved ones) and forgets them. */
void cfw_incidents_take_touched(struct cfw_incidents *set, cfw_incident_fn fn, void *arg);

/*
 * Evidence of a successful deploy: resolves every open `on_success` incident of script (its
 * `script` field, or `script_tag`, the Worker of a Workers Builds log; when the incident names
 * no script, those of the same input), saying evidence as resolved_by.
 * script or input may be NULL. With deployed_wall_ms > 0 (a deployment listed by the API, a
 * Workers Builds build) only incidents whose failure happened before that moment (the first
 * event's own time, else when it opened) are resolved. Returns the number resolved. A success
 * that no open incident waits for (the usual one) costs a look-up, not a walk over the set.
 */
size_t cfw_incidents_succeed(struct cfw_incidents *set, const char *script, const char *input,
                             const char *evidence, int64_t deployed_wall_ms, int64_t mono_ms,
                             int64_t wall_ms);
/* Whether cfw_incidents_succeed (without a deployment time) would resolve anything: what the
 * evidence says need not be written for the many success lines that fix nothing. A look-up. */
bool cfw_incidents_fixable(const struct cfw_incidents *set, const char *script, const char *input);
/*
 * Resolves an open incident now, saying why when by is not NULL (a removed source, ...); 0, or
 * -1 if not open.
 */
int cfw_incidents_resolve_by(struct cfw_incidents *set, const char *key, const char *by,
                             int64_t mono_ms, int64_t wall_ms);

/*
 * Acknowledges an open incident for by (a person): no more reminders for this opening, and an
 * acknowledge transition. Returns 0, -1 when there is no such open incident, 1 when it was
 * acknowledged already.
 */
int cfw_incidents_ack(struct cfw_incidents *set, const char *key, const char *by,
                      int64_t mono_ms, int64_t wall_ms);

/* Resolves an open incident now (e.g. a source that recovered); 0, or -1 if not open. */
int cfw_incidents_resolve(struct cfw_incidents *set, const char *key, int64_t mono_ms,
                          int64_t wall_ms);

/*
 * How long inc has been open, in ms: until its resolve when it has one (opening clears it), else
 * until now (NULL: the current time). Boot clock within one boot, else wall clock (as
 * cfw_stamp_elapsed_ms); stamps without a wall time take the incident's wall fields. Never
 * negative.
 */
int64_t cfw_incident_open_ms(const struct cfw_incident *inc, const struct cfw_stamp *now);
/* Fills s with the current boot clock and boot id and the caller's wall time wall_ms. */
void cfw_incident_stamp(struct cfw_stamp *s, int64_t wall_ms);

/*
 * Inserts an incident restored from persisted state (takes ownership of inc's contents; inc
 * itself is copied), replacing one with the same key (a journal record newer than the
 * snapshot). No transition is announced.
 */
void cfw_incidents_restore(struct cfw_incidents *set, struct cfw_incident *inc);

#endif
