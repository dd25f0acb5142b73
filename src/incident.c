/* Incidents: matches folded by key into one incident each, with open/reminder/resolve. */
#include "cfwatchd/incident.h"

#include <stdlib.h>
#include <string.h>

#include "cfwatchd/log.h"
#include "cfwatchd/metrics.h"

/*
 * Who a success can fix: the names under which the open `on_success` incidents wait (their
 * script and script_tag; their last input when they name no script), each with the number of
 * incidents waiting under it. A success whose script and input are counted nowhere fixes
 * nothing, and that is known without a walk over every incident (a deploy log says "Deployed
 * X" far more often than it fixes something); cfw_incidents_succeed walks the set only for one
 * that is counted, and there fixed_by decides, with the deployment time, as it always did.
 */
struct waiter {
    char *name;
    size_t refs; /* incidents waiting under name */
    struct waiter *next;
};

struct waiters {
    struct waiter **b;
    size_t nb, n;
};

enum { WAIT_SCRIPT, WAIT_TAG, WAIT_INPUT, WAITS };

struct entry {
    struct cfw_incident inc;
    struct entry *next;         /* hash chain */
    bool touched;               /* in the touched list */
    struct waiter *wait[WAITS]; /* where it is counted (all NULL unless open and on_success) */
};

struct cfw_incidents {
    char *key_template;
    int64_t repeat_interval_ms;
    int64_t resolve_after_ms;
    size_t max_incidents;
    cfw_transition_cb cb;
    cfw_annotate_cb annotate; /* NULL: none */
    void *cb_arg;
    struct entry **buckets;
    size_t nbuckets;
    struct entry **order; /* creation order */
    size_t n;
    size_t cap;
    size_t open;
    uint64_t seq;
    uint64_t dropped; /* new incidents refused at the cap */
    bool track;       /* remember touched incidents */
    struct entry **touched;
    size_t ntouched, touched_cap;
    struct waiters scripts; /* script and script_tag names of incidents a success can fix */
    struct waiters inputs;  /* inputs of those that name no script */
};

const char *cfw_transition_name(enum cfw_transition t)
{
    switch (t) {
    case CFW_TRANSITION_OPEN:
        return "open";
    case CFW_TRANSITION_REMINDER:
        return "reminder";
    case CFW_TRANSITION_RESOLVE:
        return "resolve";
    case CFW_TRANSITION_ACK:
        return "acknowledge";
    }
    return "unknown";
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct waiter *waiters_find(const struct waiters *w, const char *name)
{
    struct waiter *x = w->n != 0 ? w->b[hash_str(name) & (w->nb - 1)] : NULL;

    for (; x != NULL && strcmp(x->name, name) != 0; x = x->next) {
    }
    return x;
}

static void waiters_grow(struct waiters *w)
{
    size_t nb = w->nb == 0 ? 64 : w->nb * 2;
    struct waiter **b = cfw_xcalloc(nb, sizeof(*b));

    for (size_t i = 0; i < w->nb; i++) {
        while (w->b[i] != NULL) {
            struct waiter *x = w->b[i];
            size_t h = hash_str(x->name) & (nb - 1);

            w->b[i] = x->next;
            x->next = b[h];
            b[h] = x;
        }
    }
    free(w->b);
    w->b = b;
    w->nb = nb;
}

/* Counts one more incident waiting under name; returns its waiter. */
static struct waiter *waiters_hold(struct waiters *w, const char *name)
{
    struct waiter *x = waiters_find(w, name);
    size_t h;

    if (x == NULL) {
        if (w->n >= w->nb) {
            waiters_grow(w);
        }
        x = cfw_xcalloc(1, sizeof(*x));
        x->name = cfw_xstrdup(name);
        h = hash_str(name) & (w->nb - 1);
        x->next = w->b[h];
        w->b[h] = x;
        w->n++;
    }
    x->refs++;
    return x;
}

static void waiters_drop(struct waiters *w, struct waiter *x)
{
    struct waiter **at;

    if (--x->refs > 0) {
        return;
    }
    for (at = &w->b[hash_str(x->name) & (w->nb - 1)]; *at != x; at = &(*at)->next) {
    }
    *at = x->next;
    w->n--;
    free(x->name);
    free(x);
}

static void waiters_free(struct waiters *w)
{
    for (size_t i = 0; i < w->nb; i++) {
        while (w->b[i] != NULL) {
            struct waiter *x = w->b[i];

            w->b[i] = x->next;
            free(x->name);
            free(x);
        }
    }
    free(w->b);
    memset(w, 0, sizeof(*w));
}

/* Moves *slot to name's waiter (NULL: to none), unless it is there already. */
static void wait_under(struct waiters *w, struct waiter **slot, const char *name)
{
    if (*slot != NULL && name != NULL && strcmp((*slot)->name, name) == 0) {
        return;
    }
    if (*slot != NULL) {
        waiters_drop(w, *slot);
    }
    *slot = name != NULL ? waiters_hold(w, name) : NULL;
}

/*
 * Counts e under the names a success would fix it by (fixed_by's terms, without the
 * deployment time), or under none when no success can fix it. Called after every change of
 * what those terms read: its state, on_success, its fields (a new opening, an annotation), its
 * last input.
 */
static void wait_index(struct cfw_incidents *set, struct entry *e)
{
    const struct cfw_incident *inc = &e->inc;
    const char *its = NULL;
    const char *tag = NULL;
    const char *input = NULL;

    if (inc->state == CFW_INCIDENT_OPEN && inc->on_success) {
        its = cfw_fields_get(&inc->fields, "script");
        tag = cfw_fields_get(&inc->fields, "script_tag");
        if (its != NULL && its[0] == '\0') {
            its = NULL;
        }
        if (tag != NULL && tag[0] == '\0') {
            tag = NULL; /* no script is empty (no_empty): an empty tag fixes nothing */
        }
        if (its == NULL) {
            input = inc->last.input;
        }
    } else if (e->wait[WAIT_SCRIPT] == NULL && e->wait[WAIT_TAG] == NULL &&
               e->wait[WAIT_INPUT] == NULL) {
        return; /* the usual case: neither waiting nor counted */
    }
    wait_under(&set->scripts, &e->wait[WAIT_SCRIPT], its);
    wait_under(&set->scripts, &e->wait[WAIT_TAG], tag);
    wait_under(&set->inputs, &e->wait[WAIT_INPUT], input);
}

static void apply_opts(struct cfw_incidents *set, const struct cfw_incident_opts *opts)
{
    free(set->key_template);
    set->key_template = cfw_xstrdup(opts != NULL && opts->key_template != NULL
                                        ? opts->key_template
                                        : CFW_INCIDENT_KEY_DEFAULT);
    set->repeat_interval_ms = opts != NULL && opts->repeat_interval_ms != 0
                                  ? opts->repeat_interval_ms
                                  : CFW_INCIDENT_REPEAT_DEFAULT_MS;
    set->resolve_after_ms = opts != NULL && opts->resolve_after_ms != 0
                                ? opts->resolve_after_ms
                                : CFW_INCIDENT_RESOLVE_DEFAULT_MS;
    set->max_incidents = opts != NULL && opts->max_incidents != 0 ? opts->max_incidents
                                                                  : CFW_INCIDENT_MAX_DEFAULT;
}

struct cfw_incidents *cfw_incidents_new(const struct cfw_incident_opts *opts,
                                        cfw_transition_cb cb, void *arg)
{
    struct cfw_incidents *set = cfw_xcalloc(1, sizeof(*set));

    apply_opts(set, opts);
    set->cb = cb;
    set->cb_arg = arg;
    set->nbuckets = 1024;
    set->buckets = cfw_xcalloc(set->nbuckets, sizeof(*set->buckets));
    return set;
}

void cfw_incidents_set_annotate(struct cfw_incidents *set, cfw_annotate_cb fn)
{
    set->annotate = fn;
}

void cfw_incidents_set_opts(struct cfw_incidents *set, const struct cfw_incident_opts *opts)
{
    apply_opts(set, opts);
}

void cfw_incidents_apply_rules(struct cfw_incidents *set, const struct cfw_ruleset *rules)
{
    for (size_t i = 0; i < set->n; i++) {
        struct cfw_incident *inc = &set->order[i]->inc;
        const struct cfw_rule *r = inc->rule != NULL ? cfw_ruleset_find(rules, inc->rule) : NULL;
        const struct cfw_rule_opts *ro;

        if (r == NULL) {
            continue; /* an internal or removed rule: its incident keeps what it had */
        }
        ro = cfw_rule_opts(r);
        inc->repeat_interval_ms =
            ro->repeat_interval_ms != 0 ? ro->repeat_interval_ms : set->repeat_interval_ms;
        inc->resolve_after_ms =
            ro->resolve_after_ms != 0 ? ro->resolve_after_ms : set->resolve_after_ms;
        inc->resolve_fallback_ms =
            ro->resolve_fallback_ms != 0 ? ro->resolve_fallback_ms : CFW_RESOLVE_FALLBACK_DEFAULT_MS;
        if (ro->resolve != CFW_RESOLVE_SUCCESS) {
            inc->on_success = false; /* the rule no longer waits for a deploy */
            wait_index(set, set->order[i]);
        }
    }
}

static void incident_clear(struct cfw_incident *inc)
{
    free(inc->key);
    free(inc->rule);
    free(inc->pack);
    free(inc->title);
    free(inc->hint);
    free(inc->sample);
    free(inc->first.input);
    free(inc->last.input);
    free(inc->recent);
    free(inc->resolved_by);
    free(inc->acked_by);
    cfw_fields_clear(&inc->fields);
}

/* Frees an entry taken out of the set, and its counts in the waiters. */
static void entry_free(struct cfw_incidents *set, struct entry *e)
{
    wait_under(&set->scripts, &e->wait[WAIT_SCRIPT], NULL);
    wait_under(&set->scripts, &e->wait[WAIT_TAG], NULL);
    wait_under(&set->inputs, &e->wait[WAIT_INPUT], NULL);
    incident_clear(&e->inc);
    free(e);
}

void cfw_incidents_free(struct cfw_incidents *set)
{
    if (set == NULL) {
        return;
    }
    for (size_t i = 0; i < set->n; i++) {
        incident_clear(&set->order[i]->inc);
        free(set->order[i]);
    }
    free(set->order);
    free(set->touched);
    free(set->buckets);
    free(set->key_template);
    waiters_free(&set->scripts);
    waiters_free(&set->inputs);
    free(set);
}

static struct entry *lookup(const struct cfw_incidents *set, const char *key)
{
    struct entry *e = set->buckets[hash_str(key) & (set->nbuckets - 1)];

    for (; e != NULL; e = e->next) {
        if (strcmp(e->inc.key, key) == 0) {
            return e;
        }
    }
    return NULL;
}

static void rehash(struct cfw_incidents *set)
{
    size_t nb = set->nbuckets * 2;
    struct entry **b = cfw_xcalloc(nb, sizeof(*b));

    for (size_t i = 0; i < set->n; i++) {
        struct entry *e = set->order[i];
        size_t h = hash_str(e->inc.key) & (nb - 1);
        e->next = b[h];
        b[h] = e;
    }
    free(set->buckets);
    set->buckets = b;
    set->nbuckets = nb;
}

static void insert(struct cfw_incidents *set, struct entry *e)
{
    size_t h;

    if (set->n == set->cap) {
        set->cap = set->cap == 0 ? 64 : set->cap * 2;
        set->order = cfw_xrealloc(set->order, set->cap * sizeof(*set->order));
    }
    set->order[set->n++] = e;
    if (set->n > set->nbuckets) {
        rehash(set);
    } else {
        h = hash_str(e->inc.key) & (set->nbuckets - 1);
        e->next = set->buckets[h];
        set->buckets[h] = e;
    }
    if (e->inc.state == CFW_INCIDENT_OPEN) {
        set->open++;
    }
}

/*
 * At the cap, the oldest resolved (or never-opened pending) incidents make room, a batch at a
 * time so that a steady stream of new keys does not cost a full compaction per match. Open
 * incidents are never evicted: they still owe a resolve.
 */
static bool make_room(struct cfw_incidents *set)
{
    size_t want = set->max_incidents / 100 + 1;
    size_t freed = 0;
    size_t w = 0;

    for (size_t i = 0; i < set->n; i++) {
        struct entry *e = set->order[i];
        if (freed < want && e->inc.state != CFW_INCIDENT_OPEN && !e->touched) {
            entry_free(set, e);
            freed++;
            continue;
        }
        set->order[w++] = e;
    }
    if (freed == 0) {
        return false;
    }
    set->n = w;
    memset(set->buckets, 0, set->nbuckets * sizeof(*set->buckets));
    for (size_t i = 0; i < set->n; i++) {
        struct entry *e = set->order[i];
        size_t h = hash_str(e->inc.key) & (set->nbuckets - 1);
        e->next = set->buckets[h];
        set->buckets[h] = e;
    }
    return true;
}

/*
 * Where an event says when it happened (a Logpush record's EventTimestampMs, a tail event's
 * eventTimestamp, a CI log's ISO time prefix: the decoder's `time` field), that is when it
 * was seen, not when cfwatchd read it (a Logpush batch arrives up to minutes later); the
 * clock's time otherwise, and for a time ahead of it (a skewed clock elsewhere).
 */
static void set_position(struct cfw_position *pos, const struct cfw_event *ev, int64_t wall_ms)
{
    int64_t t = cfw_parse_rfc3339_ms(cfw_fields_get(&ev->fields, "time"));

    free(pos->input);
    pos->input = cfw_xstrdup(ev->input != NULL ? ev->input : "");
    pos->line = ev->line;
    pos->wall_ms = t > 0 && t <= wall_ms ? t : wall_ms;
}

static void fill_from_match(struct cfw_incident *inc, const struct cfw_match *m,
                            const struct cfw_event *ev, const struct cfw_fields *fields)
{
    /* cut on a UTF-8 boundary so the sample stays valid where the input was */
    size_t len = cfw_utf8_prefix(ev->text, ev->len, CFW_INCIDENT_SAMPLE_MAX);

    cfw_fields_clear(&inc->fields);
    cfw_fields_copy(&inc->fields, fields);
    free(inc->title);
    free(inc->hint);
    free(inc->sample);
    inc->title = cfw_template_render(cfw_rule_title(m->rule), fields);
    inc->hint = cfw_template_render(cfw_rule_hint(m->rule), fields);
    if (cfw_fields_get(fields, "sampling") != NULL) {
        /* a live tail that Cloudflare samples (cf_tail.c): the counts are not all there was */
        char *h = cfw_xasprintf("%s%sNote: %s.", inc->hint, inc->hint[0] != '\0' ? " " : "",
                                cfw_fields_get(fields, "sampling"));
        free(inc->hint);
        inc->hint = h;
    }
    inc->sample = cfw_xstrndup(ev->text, len);
    inc->severity = cfw_rule_severity(m->rule);
}

/* Deploy output is text; request-time telemetry (tail, Logpush, Observability) is JSON. */
static void set_resolve_mode(struct cfw_incident *inc, const struct cfw_rule_opts *ro,
                             const struct cfw_event *ev)
{
    const char *kind = cfw_fields_get(&ev->fields, "kind");

    inc->on_success = ro->resolve == CFW_RESOLVE_SUCCESS && (kind == NULL || strcmp(kind, "text") == 0);
    inc->resolve_fallback_ms =
        ro->resolve_fallback_ms != 0 ? ro->resolve_fallback_ms : CFW_RESOLVE_FALLBACK_DEFAULT_MS;
}

static bool threshold_reached(struct cfw_incident *inc, int64_t mono_ms)
{
    size_t n = (size_t)inc->threshold_count;
    size_t within = 0;

    if (inc->recent == NULL) {
        inc->recent = cfw_xcalloc(n, sizeof(*inc->recent));
    }
    inc->recent[inc->recent_head] = mono_ms;
    inc->recent_head = (inc->recent_head + 1) % n;
    if (inc->recent_n < n) {
        inc->recent_n++;
    }
    for (size_t i = 0; i < inc->recent_n; i++) {
        if (mono_ms - inc->recent[i] <= inc->threshold_window_ms) {
            within++;
        }
    }
    return within >= n;
}

/* Remembers a counted or changed incident for cfw_incidents_take_touched (when tracking). */
static void touch(struct cfw_incidents *set, struct entry *e)
{
    if (!set->track || e->touched) {
        return;
    }
    if (set->ntouched == set->touched_cap) {
        set->touched_cap = set->touched_cap == 0 ? 64 : set->touched_cap * 2;
        set->touched = cfw_xrealloc(set->touched, set->touched_cap * sizeof(*set->touched));
    }
    set->touched[set->ntouched++] = e;
    e->touched = true;
}

static void announce(struct cfw_incidents *set, struct cfw_incident *inc, enum cfw_transition t,
                     int64_t mono_ms)
{
    /* inc is the first member of its entry; touched, it is not evicted before it is journaled */
    touch(set, (struct entry *)(void *)inc);
    inc->last_notified_mono_ms = mono_ms;
    inc->count_at_notify = inc->count;
    if (set->annotate != NULL) {
        set->annotate(inc, t, set->cb_arg);
    }
    if (set->cb != NULL) {
        set->cb(inc, t, set->cb_arg);
    }
    /* the transition changed the state, the annotation may have changed the fields */
    wait_index(set, (struct entry *)(void *)inc);
}

void cfw_incident_stamp(struct cfw_stamp *s, int64_t wall_ms)
{
    cfw_stamp_now(s);
    s->wall_ms = wall_ms;
}

int64_t cfw_incident_open_ms(const struct cfw_incident *inc, const struct cfw_stamp *now)
{
    struct cfw_stamp from = inc->opened_at;
    struct cfw_stamp to;

    if (from.wall_ms == 0) {
        from.wall_ms = inc->opened_wall_ms;
    }
    if (inc->resolved_at.wall_ms != 0 || inc->resolved_at.boot_ms != 0 ||
        inc->resolved_wall_ms != 0) {
        to = inc->resolved_at;
        if (to.wall_ms == 0) {
            to.wall_ms = inc->resolved_wall_ms;
        }
    } else if (now != NULL) {
        to = *now;
    } else {
        cfw_stamp_now(&to);
    }
    return cfw_stamp_elapsed_ms(&from, &to);
}

static void open_incident(struct cfw_incidents *set, struct cfw_incident *inc, int64_t mono_ms,
                          int64_t wall_ms)
{
    inc->state = CFW_INCIDENT_OPEN;
    inc->opening++;
    inc->reminders = 0;
    inc->opened_wall_ms = wall_ms;
    inc->resolved_wall_ms = 0;
    cfw_incident_stamp(&inc->opened_at, wall_ms);
    memset(&inc->resolved_at, 0, sizeof(inc->resolved_at));
    set->open++;
    announce(set, inc, CFW_TRANSITION_OPEN, mono_ms);
}

const struct cfw_incident *cfw_incidents_observe(struct cfw_incidents *set,
                                                 const struct cfw_match *m,
                                                 const struct cfw_event *ev, int64_t mono_ms,
                                                 int64_t wall_ms)
{
    const struct cfw_rule_opts *ro = cfw_rule_opts(m->rule);
    const char *tmpl = cfw_rule_key(m->rule) != NULL ? cfw_rule_key(m->rule) : set->key_template;
    struct cfw_fields fields = {0};
    struct entry *e;
    struct cfw_incident *inc;
    char *key;

    cfw_fields_copy(&fields, &m->fields);
    cfw_fields_set(&fields, "rule", cfw_rule_id(m->rule));
    key = cfw_template_render(tmpl, &fields);
    e = lookup(set, key);
    if (e == NULL) {
        if (set->n >= set->max_incidents && !make_room(set)) {
            if (set->dropped++ == 0) {
                cfw_log_warn("incidents: %zu open incidents reached the cap; new ones are counted "
                             "and dropped",
                             set->n);
            }
            free(key);
            cfw_fields_clear(&fields);
            return NULL;
        }
        e = cfw_xcalloc(1, sizeof(*e));
        inc = &e->inc;
        inc->key = key;
        key = NULL;
        inc->rule = cfw_xstrdup(cfw_rule_id(m->rule));
        inc->pack = cfw_xstrdup(cfw_rule_pack(m->rule));
        inc->seq = ++set->seq;
        inc->state = CFW_INCIDENT_PENDING;
        inc->repeat_interval_ms =
            ro->repeat_interval_ms != 0 ? ro->repeat_interval_ms : set->repeat_interval_ms;
        inc->resolve_after_ms =
            ro->resolve_after_ms != 0 ? ro->resolve_after_ms : set->resolve_after_ms;
        inc->threshold_count = ro->threshold_count;
        inc->threshold_window_ms = ro->threshold_window_ms;
        fill_from_match(inc, m, ev, &fields);
        set_position(&inc->first, ev, wall_ms);
        set_resolve_mode(inc, ro, ev);
        insert(set, e);
    } else {
        inc = &e->inc;
        free(key);
        key = NULL;
        if (inc->state == CFW_INCIDENT_RESOLVED) {
            /* it came back: a new occurrence, told as a new open with fresh details */
            inc->prev_resolved_wall_ms = inc->resolved_wall_ms;
            inc->state = CFW_INCIDENT_PENDING;
            inc->count = 0;
            inc->recent_n = 0;
            inc->recent_head = 0;
            fill_from_match(inc, m, ev, &fields);
            set_position(&inc->first, ev, wall_ms);
            set_resolve_mode(inc, ro, ev);
            free(inc->resolved_by);
            inc->resolved_by = NULL;
            free(inc->acked_by);
            inc->acked_by = NULL;
            inc->acked_wall_ms = 0;
            inc->muted = false;
        }
    }
    inc->count++;
    inc->occurrences++;
    inc->last_seen_mono_ms = mono_ms;
    touch(set, e);
    set_position(&inc->last, ev, wall_ms);
    if (inc->state == CFW_INCIDENT_PENDING) {
        if (inc->threshold_count <= 1 || threshold_reached(inc, mono_ms)) {
            open_incident(set, inc, mono_ms, wall_ms);
        }
    } else if (inc->repeat_interval_ms > 0 && inc->acked_by == NULL &&
               mono_ms - inc->last_notified_mono_ms >= inc->repeat_interval_ms) {
        inc->reminders++;
        announce(set, inc, CFW_TRANSITION_REMINDER, mono_ms);
    }
    wait_index(set, e); /* a new opening's fields, or the input of the last match */
    cfw_fields_clear(&fields);
    return inc;
}

static void resolve(struct cfw_incidents *set, struct cfw_incident *inc, int64_t mono_ms,
                    int64_t wall_ms)
{
    inc->state = CFW_INCIDENT_RESOLVED;
    inc->resolved_wall_ms = wall_ms;
    cfw_incident_stamp(&inc->resolved_at, wall_ms);
    set->open--;
    announce(set, inc, CFW_TRANSITION_RESOLVE, mono_ms);
}

int64_t cfw_incidents_tick(struct cfw_incidents *set, int64_t mono_ms, int64_t wall_ms)
{
    int64_t next = -1;

    for (size_t i = 0; i < set->n; i++) {
        struct cfw_incident *inc = &set->order[i]->inc;
        int64_t due;

        int64_t after = inc->on_success ? inc->resolve_fallback_ms : inc->resolve_after_ms;

        if (inc->state != CFW_INCIDENT_OPEN || after < 0) {
            continue;
        }
        due = inc->last_seen_mono_ms + after;
        if (due <= mono_ms) {
            resolve(set, inc, mono_ms, wall_ms);
        } else if (next < 0 || due - mono_ms < next) {
            next = due - mono_ms;
        }
    }
    return next;
}

/*
 * Whether evidence of a successful deploy of script (or in input) fixes inc. wait_index counts
 * incidents in the same terms (without the deployment time): change the two together.
 */
static bool fixed_by(const struct cfw_incident *inc, const char *script, const char *input,
                     int64_t deployed_wall_ms)
{
    /* when the failure happened: its event's own time where it had one */
    int64_t failed = inc->first.wall_ms > 0 ? inc->first.wall_ms : inc->opened_wall_ms;
    const char *its, *tag;

    if (inc->state != CFW_INCIDENT_OPEN || !inc->on_success ||
        (deployed_wall_ms > 0 && failed >= deployed_wall_ms)) {
        return false; /* a deployment older than the failure does not fix it */
    }
    its = cfw_fields_get(&inc->fields, "script");
    tag = cfw_fields_get(&inc->fields, "script_tag"); /* a Workers Builds log's Worker */
    if (script != NULL && tag != NULL && strcmp(tag, script) == 0) {
        return true;
    }
    if (its != NULL && its[0] != '\0') {
        return script != NULL && strcmp(its, script) == 0;
    }
    /* no script named: the same deploy log (file, command, build) tells */
    return input != NULL && inc->last.input != NULL && strcmp(inc->last.input, input) == 0;
}

static const char *no_empty(const char *script)
{
    return script != NULL && script[0] == '\0' ? NULL : script;
}

/*
 * Whether an incident waits for script or input. Counted under script, an incident is open,
 * on_success and names script as its script or script_tag; under input, it names no script and
 * its last match came from input: without a deployment time, fixed_by holds for it. So this is
 * fixed_by over the whole set, for the price of a look-up or two.
 */
static bool someone_waits(const struct cfw_incidents *set, const char *script, const char *input)
{
    return (script != NULL && waiters_find(&set->scripts, script) != NULL) ||
           (input != NULL && waiters_find(&set->inputs, input) != NULL);
}

bool cfw_incidents_fixable(const struct cfw_incidents *set, const char *script, const char *input)
{
    return someone_waits(set, no_empty(script), input);
}

size_t cfw_incidents_succeed(struct cfw_incidents *set, const char *script, const char *input,
                             const char *evidence, int64_t deployed_wall_ms, int64_t mono_ms,
                             int64_t wall_ms)
{
    size_t n = 0;

    script = no_empty(script);
    if (!someone_waits(set, script, input)) {
        return 0; /* the usual success: it fixes nothing */
    }
    for (size_t i = 0; i < set->n; i++) {
        struct cfw_incident *inc = &set->order[i]->inc;

        if (fixed_by(inc, script, input, deployed_wall_ms)) {
            free(inc->resolved_by);
            inc->resolved_by = cfw_xstrdup(evidence != NULL ? evidence : "a successful deploy");
            resolve(set, inc, mono_ms, wall_ms);
            n++;
        }
    }
    return n;
}

int cfw_incidents_ack(struct cfw_incidents *set, const char *key, const char *by,
                      int64_t mono_ms, int64_t wall_ms)
{
    struct entry *e = lookup(set, key);
    struct cfw_incident *inc;
    int64_t last;

    if (e == NULL || e->inc.state != CFW_INCIDENT_OPEN) {
        return -1;
    }
    inc = &e->inc;
    if (inc->acked_by != NULL) {
        return 1;
    }
    inc->acked_by = cfw_xstrdup(by != NULL && by[0] != '\0' ? by : "someone");
    inc->acked_wall_ms = wall_ms;
    /* an acknowledgement is not a notification of the incident: reminders keep their clock */
    last = inc->last_notified_mono_ms;
    announce(set, inc, CFW_TRANSITION_ACK, mono_ms);
    inc->last_notified_mono_ms = last;
    return 0;
}

int cfw_incidents_resolve_by(struct cfw_incidents *set, const char *key, const char *by,
                             int64_t mono_ms, int64_t wall_ms)
{
    struct entry *e = lookup(set, key);

    if (e == NULL || e->inc.state != CFW_INCIDENT_OPEN) {
        return -1;
    }
    free(e->inc.resolved_by);
    e->inc.resolved_by = by != NULL ? cfw_xstrdup(by) : NULL;
    resolve(set, &e->inc, mono_ms, wall_ms);
    return 0;
}

int cfw_incidents_resolve(struct cfw_incidents *set, const char *key, int64_t mono_ms,
                          int64_t wall_ms)
{
    return cfw_incidents_resolve_by(set, key, NULL, mono_ms, wall_ms);
}

void cfw_incidents_track_touched(struct cfw_incidents *set, bool on)
{
    set->track = on;
}

void cfw_incidents_take_touched(struct cfw_incidents *set, cfw_incident_fn fn, void *arg)
{
    for (size_t i = 0; i < set->ntouched; i++) {
        struct entry *e = set->touched[i];
        e->touched = false;
        if (fn != NULL && e->inc.state != CFW_INCIDENT_PENDING) {
            fn(&e->inc, arg);
        }
    }
    set->ntouched = 0;
}

size_t cfw_incidents_count(const struct cfw_incidents *set)
{
    return set->n;
}

size_t cfw_incidents_open_count(const struct cfw_incidents *set)
{
    return set->open;
}

const struct cfw_incident *cfw_incidents_at(const struct cfw_incidents *set, size_t i)
{
    return i < set->n ? &set->order[i]->inc : NULL;
}

const struct cfw_incident *cfw_incidents_find(const struct cfw_incidents *set, const char *key)
{
    struct entry *e = lookup(set, key);

    return e != NULL ? &e->inc : NULL;
}

uint64_t cfw_incidents_dropped(const struct cfw_incidents *set)
{
    return set->dropped;
}

void cfw_incidents_metrics(const struct cfw_incidents *set, const uint64_t transitions[],
                           struct cfw_metrics *m)
{
    const struct cfw_metric one[] = {
        {"cfwatchd_incidents_open", "gauge", "Open incidents.", cfw_incidents_open_count(set)},
        {"cfwatchd_incidents_tracked", "gauge", "Incidents kept in memory.",
         cfw_incidents_count(set)},
        {"cfwatchd_incidents_dropped_total", "counter",
         "New incidents refused at the max_incidents cap.", set->dropped},
    };
    struct cfw_metrics_family *f;

    cfw_metrics_add(m, one, sizeof(one) / sizeof(one[0]));
    f = cfw_metrics_family(m, "cfwatchd_transitions_total", "counter", "Incident transitions.");
    for (int t = 0; t < CFW_TRANSITIONS; t++) {
        cfw_metrics_u64(f, CFW_LABELS("transition", cfw_transition_name((enum cfw_transition)t)),
                        transitions[t]);
    }
}

void cfw_incidents_restore(struct cfw_incidents *set, struct cfw_incident *inc)
{
    struct entry *e;

    if (inc->key == NULL) {
        incident_clear(inc);
        memset(inc, 0, sizeof(*inc));
        return;
    }
    free(inc->recent);
    inc->recent = NULL;
    inc->recent_n = 0;
    inc->recent_head = 0;
    if (inc->opening == 0 && inc->state != CFW_INCIDENT_PENDING) {
        inc->opening = 1; /* a state file from before openings were counted */
    }
    e = lookup(set, inc->key);
    if (e != NULL) {
        /* a newer record of the same incident: it takes the old one's place in the order */
        struct entry *next = e->next;
        uint64_t seq = e->inc.seq;

        if (e->inc.state == CFW_INCIDENT_OPEN) {
            set->open--;
        }
        incident_clear(&e->inc);
        e->inc = *inc;
        e->inc.seq = seq;
        e->next = next;
        memset(inc, 0, sizeof(*inc));
        if (e->inc.state == CFW_INCIDENT_OPEN) {
            set->open++;
        }
        wait_index(set, e);
        return;
    }
    e = cfw_xcalloc(1, sizeof(*e));
    e->inc = *inc;
    memset(inc, 0, sizeof(*inc));
    e->inc.seq = ++set->seq;
    insert(set, e);
    wait_index(set, e);
}
