/* Per-sink filters, token-bucket rate limits and digests. */
#include "cfwatchd/router.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/log.h"

struct route {
    struct cfw_route_cfg cfg;
    int64_t credit_ms; /* token bucket as time credit: one token = per_ms */
    int64_t last_ms;
    bool started;
    struct cfw_digest_item *items;
    size_t n_items;
    size_t cap_items;
    uint64_t n_omitted;
    uint64_t digested;
    uint64_t digests;
};

struct cfw_router {
    struct event_base *base;
    struct event *timer;
    cfw_router_emit_fn emit;
    void *arg;
    struct route *routes;
    size_t n;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? cfw_xstrdup(s) : NULL;
}

void cfw_router_copy_incident(struct cfw_incident *dst, const struct cfw_incident *src)
{
    memset(dst, 0, sizeof(*dst));
    dst->key = dup_or_null(src->key);
    dst->rule = dup_or_null(src->rule);
    dst->pack = dup_or_null(src->pack);
    dst->severity = src->severity;
    dst->title = dup_or_null(src->title);
    dst->hint = dup_or_null(src->hint);
    cfw_fields_copy(&dst->fields, &src->fields);
    dst->sample = dup_or_null(src->sample);
    dst->count = src->count;
    dst->occurrences = src->occurrences;
    dst->first = src->first;
    dst->first.input = dup_or_null(src->first.input);
    dst->last = src->last;
    dst->last.input = dup_or_null(src->last.input);
    dst->state = src->state;
    dst->opened_wall_ms = src->opened_wall_ms;
    dst->resolved_wall_ms = src->resolved_wall_ms;
    dst->opened_at = src->opened_at;
    dst->resolved_at = src->resolved_at;
    dst->seq = src->seq;
    dst->opening = src->opening;
    dst->reminders = src->reminders;
    dst->on_success = src->on_success;
    dst->resolved_by = dup_or_null(src->resolved_by);
    dst->acked_by = dup_or_null(src->acked_by);
    dst->acked_wall_ms = src->acked_wall_ms;
}

void cfw_router_clear_incident(struct cfw_incident *inc)
{
    free(inc->key);
    free(inc->rule);
    free(inc->pack);
    free(inc->title);
    free(inc->hint);
    cfw_fields_clear(&inc->fields);
    free(inc->sample);
    free(inc->first.input);
    free(inc->last.input);
    free(inc->resolved_by);
    free(inc->acked_by);
    memset(inc, 0, sizeof(*inc));
}

static bool any_glob(char **globs, const char *s)
{
    for (size_t i = 0; globs[i] != NULL; i++) {
        if (cfw_glob_match(globs[i], s)) {
            return true;
        }
    }
    return false;
}

bool cfw_route_matches(const struct cfw_route_cfg *cfg, const struct cfw_incident *inc)
{
    const char *rule = inc->rule != NULL ? inc->rule : "";
    const char *script = cfw_fields_get(&inc->fields, "script");

    if (script == NULL) {
        script = "";
    }
    if (inc->severity < cfg->min_severity) {
        return false;
    }
    if (cfg->rules != NULL && !any_glob(cfg->rules, rule)) {
        return false;
    }
    if (cfg->exclude_rules != NULL && any_glob(cfg->exclude_rules, rule)) {
        return false;
    }
    if (cfg->scripts != NULL && !any_glob(cfg->scripts, script)) {
        return false;
    }
    if (cfg->exclude_scripts != NULL && any_glob(cfg->exclude_scripts, script)) {
        return false;
    }
    return true;
}

bool cfw_route_accepts(const struct cfw_route_cfg *cfg, const struct cfw_incident *inc,
                       enum cfw_transition t)
{
    switch (t) {
    case CFW_TRANSITION_OPEN:
        if (!cfg->send_open) {
            return false;
        }
        break;
    case CFW_TRANSITION_REMINDER:
        if (!cfg->send_reminder) {
            return false;
        }
        break;
    case CFW_TRANSITION_RESOLVE:
        if (!cfg->send_resolve) {
            return false;
        }
        break;
    case CFW_TRANSITION_ACK:
        if (!cfg->send_ack) {
            return false;
        }
        break;
    }
    return cfw_route_matches(cfg, inc);
}

static void refill(struct route *rt, int64_t now)
{
    int64_t cap = (int64_t)rt->cfg.burst * rt->cfg.per_ms;

    if (!rt->started) {
        rt->started = true;
        rt->credit_ms = cap;
        rt->last_ms = now;
        return;
    }
    if (now > rt->last_ms) {
        rt->credit_ms += now - rt->last_ms;
        if (rt->credit_ms > cap) {
            rt->credit_ms = cap;
        }
    }
    rt->last_ms = now;
}

static bool take_token(struct route *rt, int64_t now)
{
    if (rt->cfg.burst == 0) {
        return true;
    }
    refill(rt, now);
    if (rt->credit_ms >= rt->cfg.per_ms) {
        rt->credit_ms -= rt->cfg.per_ms;
        return true;
    }
    return false;
}

static int64_t token_wait(const struct route *rt)
{
    return rt->credit_ms >= rt->cfg.per_ms ? 0 : rt->cfg.per_ms - rt->credit_ms;
}

static void emit_one(struct cfw_router *r, size_t i, const struct cfw_incident *inc,
                     enum cfw_transition t, int64_t wall_ms)
{
    struct cfw_notification n;

    memset(&n, 0, sizeof(n));
    n.kind = CFW_NOTIFY_TRANSITION;
    n.transition = t;
    n.inc = inc;
    n.now_wall_ms = wall_ms;
    r->emit(i, &n, r->arg);
}

static void digest_clear(struct route *rt)
{
    for (size_t k = 0; k < rt->n_items; k++) {
        cfw_router_clear_incident(&rt->items[k].inc);
    }
    rt->n_items = 0;
    rt->n_omitted = 0;
}

/*
 * Sends the pending digest of route i. A digest of one item is sent as that item. For a sink
 * that must not fold resolves (PagerDuty), the resolves leave one by one after the digest of
 * the rest, so a resolve still follows the trigger it closes.
 */
static void emit_digest(struct cfw_router *r, size_t i, int64_t wall_ms)
{
    struct route *rt = &r->routes[i];
    struct cfw_digest_item *keep = rt->items;
    size_t n = rt->n_items;
    size_t folded = 0;
    struct cfw_notification dn;

    if (n == 0) {
        return;
    }
    if (!rt->cfg.digest_resolves) {
        /* stable partition: non-resolves first, resolves after */
        struct cfw_digest_item *tmp = cfw_xcalloc(n, sizeof(*tmp));
        size_t o = 0;
        for (size_t k = 0; k < n; k++) {
            if (keep[k].transition != CFW_TRANSITION_RESOLVE) {
                tmp[o++] = keep[k];
            }
        }
        folded = o;
        for (size_t k = 0; k < n; k++) {
            if (keep[k].transition == CFW_TRANSITION_RESOLVE) {
                tmp[o++] = keep[k];
            }
        }
        memcpy(keep, tmp, n * sizeof(*tmp));
        free(tmp);
    } else {
        folded = n;
    }
    if (folded == 1 && rt->n_omitted == 0) {
        emit_one(r, i, &keep[0].inc, keep[0].transition, wall_ms);
    } else if (folded > 0) {
        memset(&dn, 0, sizeof(dn));
        dn.kind = CFW_NOTIFY_DIGEST;
        dn.items = keep;
        dn.n_items = folded;
        dn.n_omitted = rt->n_omitted;
        dn.now_wall_ms = wall_ms;
        rt->digests++;
        cfw_log_notice("router: sink=%s rate limited: %zu notifications sent as one digest%s",
                       rt->cfg.name != NULL ? rt->cfg.name : "?", folded + (size_t)rt->n_omitted,
                       rt->n_omitted > 0 ? " (some listed only by count)" : "");
        r->emit(i, &dn, r->arg);
    }
    for (size_t k = folded; k < n; k++) {
        emit_one(r, i, &keep[k].inc, keep[k].transition, wall_ms);
    }
    digest_clear(rt);
}

static void arm(struct cfw_router *r, int64_t delay)
{
    struct timeval tv;

    if (r->timer == NULL || delay < 0) {
        return;
    }
    tv = cfw_ms_timeval(delay);
    evtimer_del(r->timer);
    evtimer_add(r->timer, &tv);
}

int64_t cfw_router_tick(struct cfw_router *r, int64_t now_ms)
{
    int64_t next = -1;
    int64_t wall = cfw_now_wall_ms();

    for (size_t i = 0; i < r->n; i++) {
        struct route *rt = &r->routes[i];
        int64_t w;
        if (rt->n_items == 0 && rt->n_omitted == 0) {
            continue;
        }
        if (take_token(rt, now_ms)) {
            emit_digest(r, i, wall);
            continue;
        }
        w = token_wait(rt);
        if (next < 0 || w < next) {
            next = w;
        }
    }
    return next;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_router *r = arg;

    (void)fd;
    (void)what;
    arm(r, cfw_router_tick(r, cfw_now_mono_ms()));
}

struct cfw_router *cfw_router_new(struct event_base *base, cfw_router_emit_fn emit, void *arg)
{
    struct cfw_router *r = cfw_xcalloc(1, sizeof(*r));

    r->base = base;
    r->emit = emit;
    r->arg = arg;
    if (base != NULL) {
        r->timer = evtimer_new(base, on_timer, r);
        if (r->timer == NULL) {
            free(r);
            return NULL;
        }
    }
    return r;
}

void cfw_router_free(struct cfw_router *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        struct route *rt = &r->routes[i];
        digest_clear(rt);
        free(rt->items);
        cfw_strlist_free(rt->cfg.rules);
        cfw_strlist_free(rt->cfg.exclude_rules);
        cfw_strlist_free(rt->cfg.scripts);
        cfw_strlist_free(rt->cfg.exclude_scripts);
    }
    free(r->routes);
    if (r->timer != NULL) {
        event_free(r->timer);
    }
    free(r);
}

size_t cfw_router_add_sink(struct cfw_router *r, const struct cfw_route_cfg *cfg)
{
    struct route *rt;

    r->routes = cfw_xrealloc(r->routes, (r->n + 1) * sizeof(*r->routes));
    rt = &r->routes[r->n];
    memset(rt, 0, sizeof(*rt));
    rt->cfg = *cfg;
    rt->cfg.rules = cfw_strlist_dup(cfg->rules);
    rt->cfg.exclude_rules = cfw_strlist_dup(cfg->exclude_rules);
    rt->cfg.scripts = cfw_strlist_dup(cfg->scripts);
    rt->cfg.exclude_scripts = cfw_strlist_dup(cfg->exclude_scripts);
    if (rt->cfg.per_ms <= 0) {
        rt->cfg.per_ms = 1000;
    }
    return r->n++;
}

static void digest_add(struct route *rt, const struct cfw_incident *inc, enum cfw_transition t,
                       int64_t wall_ms)
{
    rt->digested++;
    if (rt->n_items >= CFW_ROUTER_DIGEST_MAX) {
        rt->n_omitted++;
        return;
    }
    if (rt->n_items == rt->cap_items) {
        rt->cap_items = rt->cap_items == 0 ? 16 : rt->cap_items * 2;
        rt->items = cfw_xrealloc(rt->items, rt->cap_items * sizeof(*rt->items));
    }
    rt->items[rt->n_items].transition = t;
    rt->items[rt->n_items].wall_ms = wall_ms;
    cfw_router_copy_incident(&rt->items[rt->n_items].inc, inc);
    rt->n_items++;
}

size_t cfw_router_route(struct cfw_router *r, const struct cfw_incident *inc, enum cfw_transition t,
                        int64_t now_ms, int64_t wall_ms)
{
    size_t taken = 0;
    int64_t next = -1;
    bool queued = false;

    for (size_t i = 0; i < r->n; i++) {
        struct route *rt = &r->routes[i];
        bool pending = rt->n_items > 0 || rt->n_omitted > 0;

        if (!cfw_route_accepts(&rt->cfg, inc, t)) {
            continue;
        }
        taken++;
        if (!pending && take_token(rt, now_ms)) {
            emit_one(r, i, inc, t, wall_ms);
            continue;
        }
        if (!pending && t == CFW_TRANSITION_RESOLVE && !rt->cfg.digest_resolves) {
            emit_one(r, i, inc, t, wall_ms);
            continue;
        }
        digest_add(rt, inc, t, wall_ms);
        queued = true;
    }
    if (queued) {
        /* the one timer serves every sink: arm it for the soonest digest of all */
        for (size_t i = 0; i < r->n; i++) {
            struct route *rt = &r->routes[i];
            if (rt->n_items > 0 || rt->n_omitted > 0) {
                refill(rt, now_ms);
                if (next < 0 || token_wait(rt) < next) {
                    next = token_wait(rt);
                }
            }
        }
        arm(r, next);
    }
    return taken;
}

void cfw_router_flush(struct cfw_router *r, int64_t now_ms)
{
    int64_t wall = cfw_now_wall_ms();

    (void)now_ms;
    for (size_t i = 0; i < r->n; i++) {
        emit_digest(r, i, wall);
    }
}

size_t cfw_router_pending(const struct cfw_router *r)
{
    size_t n = 0;

    for (size_t i = 0; r != NULL && i < r->n; i++) {
        n += r->routes[i].n_items + (size_t)r->routes[i].n_omitted;
    }
    return n;
}

uint64_t cfw_router_digested(const struct cfw_router *r, size_t sink)
{
    return sink < r->n ? r->routes[sink].digested : 0;
}

uint64_t cfw_router_digests(const struct cfw_router *r, size_t sink)
{
    return sink < r->n ? r->routes[sink].digests : 0;
}
