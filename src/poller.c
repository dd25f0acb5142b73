/*
 * Cloudflare API pollers, the input kinds (input.h) that poll the API client of cloudflare.h:
 *
 *   cloudflare-deployments   per script, GET .../workers/scripts/<s>/deployments: each new
 *                            deployment is recorded (id, version, author, source, message, time)
 *                            so incidents can say which deployment they followed, which one fixed
 *                            them and which one brought them back; optionally an info event.
 *   cloudflare-observability POST .../workers/observability/telemetry/query for error events of
 *                            the configured scripts since the last cursor, paged; every event is
 *                            decoded and matched like any other.
 *   cloudflare-builds        new Workers Builds of the configured scripts (by script tag); their
 *                            logs fetched with the cursor until complete, each line matched; the
 *                            build outcome recorded.
 *
 * One request in flight per poller. Cursors and last-seen ids are saved with the daemon's state.
 * 401/403 put the poller DOWN with the permission the token is missing, which the daemon turns
 * into a `source-down` incident. The token never appears in a log line or error.
 */
#include "cfwatchd/cloudflare.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cfwatchd/log.h"
#include "cfwatchd/secrets.h"
#include "input_impl.h"

enum poller_type {
    CFW_POLLER_DEPLOYMENTS = 1,
    CFW_POLLER_OBSERVABILITY,
    CFW_POLLER_BUILDS,
};

struct poller_conf {
    char *name;
    enum poller_type type;
    char **scripts; /* NULL-terminated; builds: script tags (external_script_id) */
    int64_t interval_ms;
    bool notify;  /* deployments: an info event per new deployment */
    size_t limit; /* observability: events per page */
};

/* A bounded set of strings remembered in arrival order (ids already handled). */
struct seen {
    char **v;
    size_t n;
    size_t head;
};

/* A Workers Build whose log is being fetched. */
struct build {
    char *uuid;
    char *tag;
    char *cursor;
    bool finished; /* the build had stopped when its log was requested */
    char *outcome;
    int64_t created_wall_ms;
    bool deploys;          /* its deploy command deploys (not `wrangler versions upload`) */
    struct cfw_fields ctx; /* script, build, branch, commit: for every line of its log */
};

struct cfw_poller {
    struct poller_conf conf;
    struct cfw_input *in; /* what the poller reads goes to its callbacks */
    struct event_base *base;
    struct cfw_cf *cf;
    struct cfw_deploys *deploys;
    struct event *timer;
    bool baseline_done; /* the first poll records what exists without announcing it */
    bool in_flight;
    unsigned fail_streak; /* calls in a row without an answer or with a 5xx */
    size_t script_i;    /* which script the current cycle is at */
    unsigned pages;
    /* observability */
    int64_t cursor_ms;  /* the `to` of the last complete query */
    int64_t cycle_to;
    char *offset;
    struct seen seen;   /* event ids (observability) or build uuids (builds) */
    /* builds */
    struct build *builds;
    size_t nbuilds;
};

/* ---- configuration ---- */

static const char *type_name(enum poller_type t)
{
    switch (t) {
    case CFW_POLLER_DEPLOYMENTS:
        return "cloudflare-deployments";
    case CFW_POLLER_OBSERVABILITY:
        return "cloudflare-observability";
    case CFW_POLLER_BUILDS:
        return "cloudflare-builds";
    }
    return "?";
}

static void conf_clear(struct poller_conf *conf)
{
    free(conf->name);
    cfw_strlist_free(conf->scripts);
    memset(conf, 0, sizeof(*conf));
}

static int read_type(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                     void *conf, struct cfw_diag *diag)
{
    struct poller_conf *c = conf;
    const char *s = NULL;
    char *kp;
    int rc = cfw_node_str(map, k->name, path, &s, diag);

    if (rc != 1) {
        return rc;
    }
    for (int t = CFW_POLLER_DEPLOYMENTS; t <= CFW_POLLER_BUILDS; t++) {
        if (strcmp(s, type_name((enum poller_type)t)) == 0) {
            c->type = (enum poller_type)t;
        }
    }
    if (c->type != 0) {
        return 1;
    }
    kp = cfw_schema_path(k, path);
    cfw_diag_add(diag, cfw_node_get(map, k->name), kp,
                 "unknown type '%s' (cloudflare-deployments, cloudflare-observability, "
                 "cloudflare-builds)",
                 s);
    free(kp);
    return -1;
}

static int read_scripts(const struct cfw_schema_key *k, const struct cfw_node *map,
                        const char *path, void *conf, struct cfw_diag *diag)
{
    struct poller_conf *c = conf;
    int rc = cfw_node_strlist(map, k->name, path, &c->scripts, diag);
    char *kp;

    if (rc == 0) {
        kp = cfw_schema_path(k, path);
        cfw_diag_add(diag, map, kp, "scripts is required: the Workers to poll%s",
                     c->type == CFW_POLLER_BUILDS ? " (script tags for builds)" : "");
        free(kp);
        return -1;
    }
    return rc;
}

#define POLLER_KEY(member) offsetof(struct poller_conf, member)

static const struct cfw_schema_key poller_keys[] = {
    {.name = "name",
     .type = CFW_SCHEMA_STR,
     .offset = POLLER_KEY(name),
     .read = cfw_input_read_required_name,
     .help = "the source's name in incidents and state (required)"},
    {.name = "type",
     .offset = POLLER_KEY(type),
     .read = read_type,
     .help = "cloudflare-deployments, cloudflare-observability or cloudflare-builds"},
    {.name = "scripts",
     .type = CFW_SCHEMA_STRLIST,
     .offset = POLLER_KEY(scripts),
     .read = read_scripts,
     .help = "the Workers to poll (required; builds: their script tags)"},
    {.name = "interval",
     .type = CFW_SCHEMA_DURATION,
     .offset = POLLER_KEY(interval_ms),
     .def = CFW_CF_INTERVAL_DEFAULT_MS,
     .min = 1000,
     .bounds = "must be at least 1s (the API allows 1200 requests per 5 minutes)",
     .help = "how often the API is polled"},
    {.name = "notify",
     .type = CFW_SCHEMA_BOOL,
     .offset = POLLER_KEY(notify),
     .def = 0,
     .help = "deployments: an info event per new deployment"},
    {.name = "limit",
     .type = CFW_SCHEMA_SIZE,
     .offset = POLLER_KEY(limit),
     .def = CFW_CF_OBS_LIMIT_DEFAULT,
     .min = 1,
     .max = 2000,
     .help = "observability: events per page"},
    {0},
};

static const struct cfw_schema poller_schema = {.keys = poller_keys};

static int conf_parse(const struct cfw_node *node, const char *path, struct poller_conf *conf,
                      struct cfw_diag *diag)
{
    memset(conf, 0, sizeof(*conf));
    cfw_schema_defaults(&poller_schema, conf);
    if (cfw_schema_parse(&poller_schema, node, path, conf, diag) != 0) {
        conf_clear(conf);
        return -1;
    }
    return 0;
}

/* ---- small helpers ---- */

static bool seen_has(const struct seen *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i], id) == 0) {
            return true;
        }
    }
    return false;
}

static void seen_add(struct seen *s, const char *id)
{
    if (s->v == NULL) {
        s->v = cfw_xcalloc(CFW_CF_SEEN_MAX, sizeof(char *));
    }
    if (s->n < CFW_CF_SEEN_MAX) {
        s->v[s->n++] = cfw_xstrdup(id);
        return;
    }
    free(s->v[s->head]);
    s->v[s->head] = cfw_xstrdup(id);
    s->head = (s->head + 1) % CFW_CF_SEEN_MAX;
}

static void seen_clear(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i]);
    }
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static const char *jstr(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void schedule(struct cfw_poller *p, int64_t ms)
{
    struct timeval tv = cfw_ms_timeval(ms);

    evtimer_add(p->timer, &tv);
}

static void set_state(struct cfw_poller *p, bool up, const char *reason)
{
    char *clean;

    if (up) {
        p->fail_streak = 0;
    }
    if ((cfw_input_health(p->in, NULL) == CFW_INPUT_UP) == up) {
        return;
    }
    /* a reason becomes a source-down incident: no registered secret in it */
    clean = cfw_secrets_scrub(reason);
    cfw_input_tell_up(p->in, up, clean);
    free(clean);
}

static const char *permission_for(enum poller_type t)
{
    switch (t) {
    case CFW_POLLER_DEPLOYMENTS:
        return "Account > Workers Scripts > Read";
    case CFW_POLLER_OBSERVABILITY:
        return "Account > Workers Observability > Read";
    case CFW_POLLER_BUILDS:
        return "Account > Workers CI > Read (a user token; account-owned tokens are refused)";
    }
    return "?";
}

/* Ends a cycle: next one after the interval, or after the 429 block. */
static void cycle_done(struct cfw_poller *p)
{
    int64_t blocked = cfw_cf_blocked_until(p->cf);
    int64_t wait = p->conf.interval_ms;

    p->in_flight = false;
    p->script_i = 0;
    p->pages = 0;
    if (blocked != 0 && blocked - cfw_now_wall_ms() > wait) {
        wait = blocked - cfw_now_wall_ms();
    }
    schedule(p, wait);
}

/* Reports an API failure; a refused token puts the poller DOWN, naming the permission. */
static void failed(struct cfw_poller *p, const struct cfw_cf_result *r)
{
    char reason[1200];

    if (r->auth) {
        snprintf(reason, sizeof(reason), "Cloudflare API refused the token (%s); it needs %s",
                 r->error, permission_for(p->conf.type));
        set_state(p, false, reason);
        return;
    }
    cfw_log_warn("source=%s: Cloudflare API: %s", p->conf.name, r->error);
    /* no answer, or server errors, call after call: the poller is blind and says so */
    if ((r->status == 0 || r->status >= 500) && ++p->fail_streak >= CFW_CF_DOWN_AFTER_FAILURES) {
        snprintf(reason, sizeof(reason), "Cloudflare API failing for %u calls in a row (%s)",
                 p->fail_streak, r->error);
        set_state(p, false, reason);
    }
}

/*
 * True when a failed call ends the cycle: a refused token, the 429 block, or no answer at all.
 * Any other error concerns one script (a Worker that does not exist): the others go on.
 */
static bool fatal_for_cycle(const struct cfw_cf_result *r)
{
    return r->auth || r->rate_limited || r->status == 0;
}

/*
 * Handles a failed call of a cycle that walks the scripts one call each (deployments, builds):
 * reports it, then ends the cycle when the failure concerns every script, else goes on with the
 * next script through next.
 */
static void script_failed(struct cfw_poller *p, const struct cfw_cf_result *r,
                          void (*next)(struct cfw_poller *))
{
    failed(p, r);
    if (fatal_for_cycle(r)) {
        cycle_done(p);
        return;
    }
    p->script_i++;
    next(p);
}

/*
 * Hands over what a call brought: an event (JSON) as a record; a build's log as bytes of its
 * stream, text split over many calls that is framed like a file.
 */
static void emit_record(struct cfw_poller *p, const char *stream, const struct cfw_fields *ctx,
                        enum cfw_record_kind kind, const char *text, size_t len)
{
    struct cfw_record rec = {.kind = kind, .text = text, .len = len, .input = stream};
    struct cfw_input_bytes b = {
        .stream = stream,
        .label = stream,
        .format = CFW_FMT_LINES,
        .ctx = ctx,
        .buf = text,
        .len = len,
    };

    if (kind == CFW_REC_JSON) {
        cfw_input_emit_record(p->in, ctx, &rec);
    } else {
        cfw_input_emit_bytes(p->in, &b);
    }
}

/* ---- deployments ---- */

static void deployments_next(struct cfw_poller *p);

static void on_deployments(void *arg, const struct cfw_cf_result *r)
{
    struct cfw_poller *p = arg;
    const char *script = p->conf.scripts[p->script_i];
    const json_t *list;
    size_t i;
    json_t *d;

    if (!r->ok) {
        script_failed(p, r, deployments_next);
        return;
    }
    set_state(p, true, "");
    list = json_object_get(r->result, "deployments");
    if (list == NULL && json_is_array(r->result)) {
        list = r->result;
    }
    json_array_foreach((json_t *)list, i, d)
    {
        struct cfw_deployment dep = {0};
        const json_t *versions = json_object_get(d, "versions");
        const json_t *ann = json_object_get(d, "annotations");
        double best = -1;
        size_t k;
        json_t *v;

        dep.id = (char *)jstr(d, "id");
        dep.script = (char *)script;
        dep.author = (char *)jstr(d, "author_email");
        dep.source = (char *)jstr(d, "source");
        dep.message = (char *)jstr(ann, "workers/message");
        dep.created_wall_ms = cfw_parse_rfc3339_ms(jstr(d, "created_on"));
        json_array_foreach((json_t *)versions, k, v)
        {
            double pct = json_number_value(json_object_get(v, "percentage"));
            if (pct > best && jstr(v, "version_id") != NULL) {
                best = pct;
                dep.version = (char *)jstr(v, "version_id");
            }
        }
        if (dep.id == NULL || dep.created_wall_ms < 0) {
            continue;
        }
        if (cfw_deploys_add(p->deploys, &dep) == 1 && p->baseline_done) {
            cfw_input_emit_deployment(p->in, cfw_deploys_latest(p->deploys, script),
                                      p->conf.notify);
        }
    }
    p->script_i++;
    deployments_next(p);
}

static void deployments_next(struct cfw_poller *p)
{
    char *path;

    if (p->conf.scripts[p->script_i] == NULL) {
        p->baseline_done = true;
        cycle_done(p);
        return;
    }
    path = cfw_xasprintf("/accounts/{account}/workers/scripts/%s/deployments",
                         p->conf.scripts[p->script_i]);
    if (cfw_cf_call(p->cf, path, NULL, on_deployments, p) != 0) {
        cycle_done(p);
    }
    free(path);
}

/* ---- observability ---- */

static void observability_query(struct cfw_poller *p);

static void on_observability(void *arg, const struct cfw_cf_result *r)
{
    struct cfw_poller *p = arg;
    const json_t *events;
    const char *last_id = NULL;
    size_t i, n;
    json_t *e;

    if (!r->ok) {
        failed(p, r);
        cycle_done(p);
        return;
    }
    set_state(p, true, "");
    events = json_object_get(json_object_get(r->result, "events"), "events");
    n = json_array_size(events);
    json_array_foreach((json_t *)events, i, e)
    {
        const char *id = jstr(json_object_get(e, "$metadata"), "id");
        char *text;
        if (id != NULL) {
            last_id = id;
            if (seen_has(&p->seen, id)) {
                continue; /* the overlap window re-reads the end of the previous query */
            }
            seen_add(&p->seen, id);
        }
        text = json_dumps(e, JSON_COMPACT);
        if (text != NULL) {
            char stream[96];
            snprintf(stream, sizeof(stream), "observability:%s", p->conf.name);
            emit_record(p, stream, NULL, CFW_REC_JSON, text, strlen(text));
            free(text);
        }
    }
    if (n >= p->conf.limit && last_id != NULL && ++p->pages < CFW_CF_MAX_PAGES) {
        free(p->offset);
        p->offset = cfw_xstrdup(last_id);
        observability_query(p);
        return;
    }
    free(p->offset);
    p->offset = NULL;
    p->cursor_ms = p->cycle_to;
    cycle_done(p);
}

static void observability_query(struct cfw_poller *p)
{
    struct cfw_buf services;
    json_t *body, *filters;
    int64_t from;

    cfw_buf_init(&services, CFW_BUF_MAX_BUILT);
    for (size_t i = 0; p->conf.scripts[i] != NULL; i++) {
        cfw_buf_printf(&services, "%s%s", i > 0 ? "," : "", p->conf.scripts[i]);
    }
    if (p->offset == NULL) {
        p->cycle_to = cfw_now_wall_ms();
    }
    from = p->cursor_ms > 0 ? p->cursor_ms - CFW_CF_OBS_OVERLAP_MS
                            : p->cycle_to - CFW_CF_OBS_LOOKBACK_MS;
    filters = json_pack(
        "[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}, "
        "{s:s, s:s, s:s, s:s}]}]",
        "key", "$metadata.service", "operation", "in", "type", "string", "value", services.data,
        "kind", "group", "filterCombination", "or", "filters", "key", "$metadata.error",
        "operation", "exists", "type", "string", "key", "$metadata.level", "operation", "eq",
        "type", "string", "value", "error", "key", "$workers.outcome", "operation", "in", "type",
        "string", "value", "exception,exceededCpu,exceededMemory,exceededWallTime,internalError");
    body = json_pack("{s:s+, s:{s:I, s:I}, s:s, s:I, s:b, s:{s:[s], s:s, s:o}}", "queryId",
                     "cfwatchd-", p->conf.name, "timeframe", "from", (json_int_t)from, "to",
                     (json_int_t)p->cycle_to, "view", "events", "limit",
                     (json_int_t)p->conf.limit, "dry", 1, "parameters", "datasets",
                     "cloudflare-workers", "filterCombination", "and", "filters", filters);
    if (p->offset != NULL) {
        json_object_set_new(body, "offset", json_string(p->offset));
        json_object_set_new(body, "offsetDirection", json_string("next"));
    }
    if (cfw_cf_call(p->cf, "/accounts/{account}/workers/observability/telemetry/query", body,
                    on_observability, p) != 0) {
        cycle_done(p);
    }
    json_decref(body);
    cfw_buf_free(&services);
}

/* ---- builds ---- */

static void builds_next(struct cfw_poller *p);
static void build_logs(struct cfw_poller *p);

/*
 * The fields every line of a build's log carries: the Worker (the configured script tag, or the
 * name the build names), the build and its trigger (branch, commit).
 */
static void build_context(struct build *b, const json_t *build)
{
    const json_t *meta = json_object_get(build, "build_trigger_metadata");
    const char *v = jstr(meta, "deploy_command");

    /* a non-production branch builds with `wrangler versions upload`: a version, no deploy */
    b->deploys = v == NULL || strstr(v, "versions upload") == NULL;
    b->created_wall_ms = cfw_parse_rfc3339_ms(jstr(build, "created_on"));
    cfw_fields_set(&b->ctx, "script", b->tag);
    cfw_fields_set(&b->ctx, "script_tag", b->tag);
    cfw_fields_set(&b->ctx, "build", b->uuid);
    if ((v = jstr(build, "script")) != NULL || (v = jstr(meta, "script_name")) != NULL) {
        cfw_fields_set(&b->ctx, "script", v);
    }
    if ((v = jstr(meta, "branch")) != NULL) {
        cfw_fields_set(&b->ctx, "build_branch", v);
    }
    if ((v = jstr(meta, "commit_hash")) != NULL) {
        cfw_fields_set(&b->ctx, "build_commit", v);
    }
}

/* Queues a build whose log is to be read; its fields come from build (API answer or saved). */
static struct build *build_add(struct cfw_poller *p, const char *uuid, const char *tag,
                               const json_t *build)
{
    struct build *b;

    p->builds = cfw_xrealloc(p->builds, (p->nbuilds + 1) * sizeof(*p->builds));
    b = &p->builds[p->nbuilds++];
    memset(b, 0, sizeof(*b));
    b->uuid = cfw_xstrdup(uuid);
    b->tag = cfw_xstrdup(tag);
    build_context(b, build);
    return b;
}

static void build_drop_first(struct cfw_poller *p)
{
    struct build *b = &p->builds[0];

    free(b->uuid);
    free(b->tag);
    free(b->cursor);
    free(b->outcome);
    cfw_fields_clear(&b->ctx);
    memmove(&p->builds[0], &p->builds[1], (p->nbuilds - 1) * sizeof(*p->builds));
    p->nbuilds--;
}

static void on_build_logs(void *arg, const struct cfw_cf_result *r)
{
    struct cfw_poller *p = arg;
    struct build *b = &p->builds[0];
    const json_t *lines = json_object_get(r->result, "lines");
    const char *cursor = jstr(r->result, "cursor");
    const json_t *truncated = json_object_get(r->result, "truncated");
    struct cfw_buf text = CFW_BUF_INIT(CFW_CF_BODY_MAX);
    char stream[128];
    size_t i;
    json_t *line;

    snprintf(stream, sizeof(stream), "builds:%s", b->uuid);
    if (!r->ok) {
        failed(p, r);
        if (r->status == 404) {
            /* the build or its log is gone: waiting for it would hold up every later build */
            cfw_log_warn("source=%s build=%s script=%s: no log (404); skipped", p->conf.name,
                         b->uuid, b->tag);
            cfw_input_emit_eof(p->in, stream);
            build_drop_first(p);
            p->pages = 0;
            build_logs(p);
            return;
        }
        cycle_done(p);
        return;
    }
    /* [[epoch, "text"], ...] -> "<ISO time>\t<text>\n", the downloaded log's own format */
    json_array_foreach((json_t *)lines, i, line)
    {
        double epoch = json_number_value(json_array_get(line, 0));
        const json_t *t = json_array_get(line, 1);
        char iso[40];
        int64_t ms = epoch > 1e11 ? (int64_t)epoch : (int64_t)(epoch * 1000);
        if (!json_is_string(t)) {
            continue;
        }
        cfw_format_time_ms(ms, iso, sizeof(iso));
        cfw_buf_printf(&text, "%s\t%s\n", iso, json_string_value(t));
    }
    if (text.len > 0) {
        emit_record(p, stream, &b->ctx, CFW_REC_TEXT, text.data, text.len);
    }
    cfw_buf_free(&text);
    free(b->cursor);
    b->cursor = cursor != NULL && cursor[0] != '\0' ? cfw_xstrdup(cursor) : NULL;
    if (b->cursor != NULL && (json_is_true(truncated) || json_array_size(lines) > 0) &&
        ++p->pages < CFW_CF_MAX_PAGES) {
        build_logs(p);
        return;
    }
    if (b->finished) {
        cfw_input_emit_eof(p->in, stream);
        cfw_log_info("source=%s build=%s script=%s outcome=%s: log read", p->conf.name, b->uuid,
                     b->tag, b->outcome != NULL ? b->outcome : "?");
        if (b->outcome != NULL && strcmp(b->outcome, "success") == 0 && b->deploys) {
            cfw_input_emit_build_deployed(p->in, &b->ctx, b->created_wall_ms);
        }
        build_drop_first(p);
    } else if (p->nbuilds > 1) {
        /* still running: to the back of the queue, read on with its cursor next cycle */
        struct build keep = p->builds[0];
        memmove(&p->builds[0], &p->builds[1], (p->nbuilds - 1) * sizeof(*p->builds));
        p->builds[p->nbuilds - 1] = keep;
        p->pages = 0;
        cycle_done(p);
        return;
    } else {
        p->pages = 0;
        cycle_done(p);
        return;
    }
    p->pages = 0;
    build_logs(p);
}

static void build_logs(struct cfw_poller *p)
{
    char *path;

    if (p->nbuilds == 0) {
        cycle_done(p);
        return;
    }
    path = p->builds[0].cursor != NULL
               ? cfw_xasprintf("/accounts/{account}/builds/builds/%s/logs?cursor=%s",
                               p->builds[0].uuid, p->builds[0].cursor)
               : cfw_xasprintf("/accounts/{account}/builds/builds/%s/logs", p->builds[0].uuid);
    if (cfw_cf_call(p->cf, path, NULL, on_build_logs, p) != 0) {
        cycle_done(p);
    }
    free(path);
}

static struct build *build_find(struct cfw_poller *p, const char *uuid)
{
    for (size_t i = 0; i < p->nbuilds; i++) {
        if (strcmp(p->builds[i].uuid, uuid) == 0) {
            return &p->builds[i];
        }
    }
    return NULL;
}

static void on_builds(void *arg, const struct cfw_cf_result *r)
{
    struct cfw_poller *p = arg;
    const char *tag = p->conf.scripts[p->script_i];
    const json_t *list = r->result;
    size_t i;
    json_t *b;

    if (!r->ok) {
        script_failed(p, r, builds_next);
        return;
    }
    set_state(p, true, "");
    if (json_is_object(list) && json_is_array(json_object_get(list, "builds"))) {
        list = json_object_get(list, "builds");
    }
    json_array_foreach((json_t *)list, i, b)
    {
        const char *uuid = jstr(b, "build_uuid");
        const char *status = jstr(b, "status");
        const char *outcome = jstr(b, "build_outcome");
        struct build *known, *added;
        bool stopped = status != NULL && strcmp(status, "stopped") == 0;

        if (uuid == NULL) {
            continue;
        }
        known = build_find(p, uuid);
        if (known != NULL) {
            known->finished = stopped;
            if (outcome != NULL && known->outcome == NULL) {
                known->outcome = cfw_xstrdup(outcome);
            }
            continue;
        }
        if (seen_has(&p->seen, uuid)) {
            continue;
        }
        seen_add(&p->seen, uuid);
        if (!p->baseline_done && stopped) {
            continue; /* history before cfwatchd started watching */
        }
        added = build_add(p, uuid, tag, b);
        added->finished = stopped;
        added->outcome = outcome != NULL ? cfw_xstrdup(outcome) : NULL;
    }
    p->script_i++;
    builds_next(p);
}

static void builds_next(struct cfw_poller *p)
{
    char *path;

    if (p->conf.scripts[p->script_i] == NULL) {
        p->baseline_done = true;
        p->pages = 0;
        build_logs(p);
        return;
    }
    path = cfw_xasprintf("/accounts/{account}/builds/workers/%s/builds?page=1&per_page=20",
                         p->conf.scripts[p->script_i]);
    if (cfw_cf_call(p->cf, path, NULL, on_builds, p) != 0) {
        cycle_done(p);
    }
    free(path);
}

/* ---- life cycle ---- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_poller *p = arg;

    if (p->in_flight) {
        return;
    }
    if (cfw_cf_blocked_until(p->cf) != 0) {
        cycle_done(p);
        return;
    }
    p->in_flight = true;
    p->script_i = 0;
    p->pages = 0;
    switch (p->conf.type) {
    case CFW_POLLER_DEPLOYMENTS:
        deployments_next(p);
        break;
    case CFW_POLLER_OBSERVABILITY:
        observability_query(p);
        break;
    case CFW_POLLER_BUILDS:
        builds_next(p);
        break;
    }
}

static int poller_create(struct cfw_input *in, const void *cp, const struct cfw_input_env *env,
                         struct cfw_err *err)
{
    const struct poller_conf *conf = cp;
    struct cfw_poller *p = cfw_xcalloc(1, sizeof(*p));

    (void)err;
    p->conf = *conf;
    p->conf.name = cfw_xstrdup(conf->name);
    p->conf.scripts = cfw_strlist_dup(conf->scripts);
    p->in = in;
    p->base = env->base;
    p->cf = in->cf;
    p->deploys = env->deploys;
    p->timer = evtimer_new(env->base, on_timer, p);
    in->priv = p;
    return 0;
}

static void poller_destroy(struct cfw_input *in)
{
    struct cfw_poller *p = in->priv;

    if (p == NULL) {
        return;
    }
    if (p->timer != NULL) {
        event_free(p->timer);
    }
    while (p->nbuilds > 0) {
        build_drop_first(p);
    }
    free(p->builds);
    free(p->offset);
    seen_clear(&p->seen);
    conf_clear(&p->conf);
    free(p);
}

static int poller_start(struct cfw_input *in, struct cfw_err *err)
{
    (void)err;
    schedule(in->priv, 0);
    return 0;
}

/* Cursor and last-seen ids as a JSON object, and their restore (before start). */
static json_t *poller_save(const struct cfw_input *in)
{
    const struct cfw_poller *p = in->priv;
    json_t *seen = json_array();
    json_t *active = json_array();

    for (size_t i = 0; i < p->seen.n; i++) {
        /* oldest first, so a restore keeps the same eviction order */
        json_array_append_new(seen, json_string(p->seen.v[(p->seen.head + i) % p->seen.n]));
    }
    for (size_t i = 0; i < p->nbuilds; i++) {
        json_array_append_new(active, json_pack("{s:s, s:s, s:s?}", "uuid", p->builds[i].uuid,
                                                "tag", p->builds[i].tag, "cursor",
                                                p->builds[i].cursor));
    }
    return json_pack("{s:s, s:b, s:I, s:o, s:o}", "type", type_name(p->conf.type), "baseline_done",
                     p->baseline_done, "cursor_ms", (json_int_t)p->cursor_ms, "seen", seen,
                     "builds", active);
}

static void poller_restore(struct cfw_input *in, const json_t *state)
{
    struct cfw_poller *p = in->priv;
    const json_t *seen = json_object_get(state, "seen");
    const json_t *active = json_object_get(state, "builds");
    const char *type = jstr(state, "type");
    struct build *added;
    size_t i;
    json_t *v;

    if (type == NULL || strcmp(type, type_name(p->conf.type)) != 0) {
        return;
    }
    p->baseline_done = json_is_true(json_object_get(state, "baseline_done"));
    p->cursor_ms = json_integer_value(json_object_get(state, "cursor_ms"));
    json_array_foreach((json_t *)seen, i, v)
    {
        if (json_is_string(v)) {
            seen_add(&p->seen, json_string_value(v));
        }
    }
    json_array_foreach((json_t *)active, i, v)
    {
        const char *uuid = jstr(v, "uuid"), *tag = jstr(v, "tag"), *cursor = jstr(v, "cursor");
        if (uuid == NULL || tag == NULL) {
            continue;
        }
        added = build_add(p, uuid, tag, v);
        added->cursor = cursor != NULL ? cfw_xstrdup(cursor) : NULL;
    }
}

static int poller_parse(const struct cfw_node *node, const char *path, void *conf,
                        struct cfw_diag *diag)
{
    return conf_parse(node, path, conf, diag);
}

static void poller_conf_clear(void *conf)
{
    conf_clear(conf);
}

/* The three types share everything: the type in the configuration says what is polled. */
#define POLLER_OPS(type_name_)                                                                     \
    {                                                                                              \
        .type = (type_name_), .flags = CFW_INPUT_NEEDS_CLOUDFLARE, .schema = &poller_schema,       \
        .conf_size = sizeof(struct poller_conf), .parse = poller_parse,                            \
        .conf_clear = poller_conf_clear, .create = poller_create, .start = poller_start,           \
        .save = poller_save, .restore = poller_restore, .destroy = poller_destroy,                 \
    }

const struct cfw_input_ops cfw_input_cf_deployments_ops = POLLER_OPS("cloudflare-deployments");
const struct cfw_input_ops cfw_input_cf_observability_ops = POLLER_OPS("cloudflare-observability");
const struct cfw_input_ops cfw_input_cf_builds_ops = POLLER_OPS("cloudflare-builds");
