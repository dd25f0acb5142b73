/*
 * Prometheus Alertmanager: POST /api/v2/alerts to every configured base URL (an Alertmanager
 * cluster wants each alert at each member). Labels identify the incident, never the sender
 * (alertname = rule, script, severity, module, incident, plus configured labels), so that the
 * same incident from several cfwatchd instances is one alert to Alertmanager; which host sent
 * it is the cfwatchd_host annotation. Firing alerts get endsAt = send time + ends_after
 * (default 4 re-send intervals) at each send, and open alerts are re-sent every
 * resend_interval, so Alertmanager neither times them out while an instance runs nor keeps
 * them once every instance that saw them stopped. A resolve sends endsAt = the resolve time.
 */
#include "sink_impl.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct am_priv {
    json_t *open;   /* incident key -> alert object without endsAt */
    json_t *labels; /* configured extra labels */
    char *runbook_url;
    int64_t ends_after_ms; /* endsAt of a firing alert = send time + this; 0: the default */
};

static void am_free(struct cfw_sink *s)
{
    struct am_priv *p = s->priv;

    if (p != NULL) {
        json_decref(p->open);
        json_decref(p->labels);
        free(p->runbook_url);
        free(p);
    }
    s->priv = NULL;
}

static bool label_name_ok(const char *n)
{
    if (!isalpha((unsigned char)*n) && *n != '_') {
        return false;
    }
    for (; *n != '\0'; n++) {
        if (!isalnum((unsigned char)*n) && *n != '_') {
            return false;
        }
    }
    return true;
}

/* Prepares the priv the rows fill. */
static int am_parse(struct cfw_sink *s, const struct cfw_node *map, const char *path,
                    struct cfw_diag *diag)
{
    struct am_priv *p = cfw_xcalloc(1, sizeof(*p));

    (void)map;
    (void)path;
    (void)diag;
    s->priv = p;
    p->open = json_object();
    p->labels = json_object();
    return 0;
}

/* urls: required, each an http(s) base URL (its trailing slashes cut). */
static int read_urls(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                     void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    size_t before = diag->n;
    char **urls = NULL;

    if (cfw_node_strlist(map, k->name, path, &urls, diag) == 1) {
        for (size_t i = 0; urls[i] != NULL; i++) {
            char *u = urls[i];
            size_t l = strlen(u);
            if (!cfw_sink_url_ok(u)) {
                cfw_diag_add(diag, cfw_node_get(map, k->name), path,
                             "urls[%zu] must start with http:// or https://", i);
                continue;
            }
            while (l > 0 && u[l - 1] == '/') {
                u[--l] = '\0';
            }
            cfw_sink_add_url(s, u, false);
        }
        cfw_strlist_free(urls);
    }
    if (s->n_urls == 0) {
        cfw_diag_add(diag, map, path, "an alertmanager sink needs urls (one or more base URLs)");
    }
    return diag->n > before ? -1 : 1;
}

static int read_labels(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                       void *conf, struct cfw_diag *diag)
{
    struct am_priv *p = ((struct cfw_sink *)conf)->priv;
    const struct cfw_node *lab = cfw_node_get(map, k->name);
    size_t before = diag->n;
    char *lpath;

    if (lab == NULL) {
        return 0;
    }
    lpath = cfw_schema_path(k, path);
    if (lab->type != CFW_NODE_MAP) {
        cfw_diag_add(diag, lab, lpath, "expected a map of label names to values");
    } else {
        for (size_t i = 0; i < lab->n; i++) {
            const char *v = NULL;
            if (!label_name_ok(lab->keys[i])) {
                cfw_diag_add(diag, lab->keynodes[i], lpath,
                             "invalid label name '%.60s' ([a-zA-Z_][a-zA-Z0-9_]*)", lab->keys[i]);
            } else if (cfw_node_str(lab, lab->keys[i], lpath, &v, diag) == 1) {
                json_object_set_new(p->labels, lab->keys[i], json_string(v));
            }
        }
    }
    free(lpath);
    return diag->n > before ? -1 : 1;
}

static int read_resend(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                       void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    int64_t ms;
    int rc = cfw_node_duration(map, k->name, path, &ms, diag);

    if (rc == 1 && ms < 1000) {
        cfw_diag_add(diag, cfw_node_get(map, k->name), path, "resend_interval must be at least 1s");
        return -1;
    }
    if (rc == 1) {
        s->refresh_ms = ms;
    }
    return rc;
}

static int read_ends_after(const struct cfw_schema_key *k, const struct cfw_node *map,
                           const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    struct am_priv *p = s->priv;
    int64_t ms;
    int rc = cfw_node_duration(map, k->name, path, &ms, diag);

    /* a firing alert must outlive the next re-send, with one lost re-send to spare */
    if (rc == 1 && ms < 2 * s->refresh_ms) {
        cfw_diag_add(diag, cfw_node_get(map, k->name), path,
                     "ends_after must be at least twice resend_interval (%lld ms)",
                     (long long)(2 * s->refresh_ms));
        return -1;
    }
    if (rc == 1) {
        p->ends_after_ms = ms;
    }
    return rc;
}

static int read_runbook_url(const struct cfw_schema_key *k, const struct cfw_node *map,
                            const char *path, void *conf, struct cfw_diag *diag)
{
    struct am_priv *p = ((struct cfw_sink *)conf)->priv;
    const char *rb = NULL;
    int rc = cfw_node_str(map, k->name, path, &rb, diag);

    if (rc == 1) {
        p->runbook_url = cfw_xstrdup(rb);
    }
    return rc;
}

static const struct cfw_schema_key am_keys[] = {
    {.name = "urls",
     .read = read_urls,
     .help = "required: the base URL of each Alertmanager of a cluster; each gets every alert"},
    {.name = "labels", .read = read_labels, .help = "extra labels on every alert"},
    {.name = "resend_interval",
     .type = CFW_SCHEMA_DURATION,
     .offset = offsetof(struct cfw_sink, refresh_ms),
     .def = 60 * 1000,
     .read = read_resend,
     .help = "how often open alerts are sent again (default 1m, at least 1s)"},
    /* no .def: its default is computed, CFW_AM_ALIVE_FACTOR times resend_interval (am_prepare) */
    {.name = "ends_after",
     .read = read_ends_after,
     .help = "an alert's endsAt is the sending time plus this (default 4 times "
             "resend_interval, at least twice it)"},
    {.name = "runbook_url",
     .read = read_runbook_url,
     .help = "added to the alerts as an annotation"},
    {0},
};

static const struct cfw_schema am_schema = {am_keys, NULL};

static void set_label(json_t *labels, const char *name, const char *value)
{
    /* an empty label is the same as no label to Alertmanager: leave it out */
    if (value != NULL && value[0] != '\0') {
        json_object_set_new(labels, name, json_string(value));
    }
}

static json_t *alert(const struct cfw_sink *s, const struct cfw_incident *inc, bool test,
                     bool resolved, int64_t now)
{
    const struct am_priv *p = s->priv;
    json_t *o = json_object();
    json_t *labels = json_deep_copy(p->labels);
    json_t *ann = json_object();
    char ts[40];
    char count[32];
    const char *runbook = cfw_sink_field(inc, "runbook_url");
    struct cfw_buf desc;

    cfw_buf_init(&desc, 8192);
    set_label(labels, "alertname", test ? "CfwatchdTest" : inc->rule);
    set_label(labels, "script", cfw_sink_field(inc, "script"));
    set_label(labels, "severity", cfw_severity_name(inc->severity));
    set_label(labels, "module", cfw_sink_field(inc, "module"));
    set_label(labels, "incident", inc->key);
    if (test) {
        set_label(labels, "cfwatchd_test", "true");
    }
    cfw_buf_puts(&desc, inc->hint != NULL ? inc->hint : "");
    if (inc->sample != NULL && inc->sample[0] != '\0') {
        char *sample = cfw_sink_truncate(inc->sample, 2000, "... (truncated)");
        cfw_buf_printf(&desc, "%sFirst sample:\n%s", desc.len > 0 ? "\n\n" : "", sample);
        free(sample);
    }
    set_label(ann, "summary", inc->title);
    set_label(ann, "description", desc.data);
    if (runbook[0] == '\0' && p->runbook_url != NULL) {
        runbook = p->runbook_url;
    }
    set_label(ann, "runbook_url", runbook);
    snprintf(count, sizeof(count), "%" PRIu64, inc->count);
    set_label(ann, "count", count);
    set_label(ann, "cfwatchd_host", s->host);
    cfw_buf_free(&desc);
    json_object_set_new(o, "labels", labels);
    json_object_set_new(o, "annotations", ann);
    cfw_sink_time(inc->opened_wall_ms > 0 ? inc->opened_wall_ms : now, ts, sizeof(ts));
    json_object_set_new(o, "startsAt", json_string(ts));
    if (resolved) {
        cfw_sink_time(inc->resolved_wall_ms > 0 ? inc->resolved_wall_ms : now, ts, sizeof(ts));
        json_object_set_new(o, "endsAt", json_string(ts));
    }
    if (s->client_url != NULL && s->client_url[0] != '\0') {
        json_object_set_new(o, "generatorURL", json_string(s->client_url));
    }
    return o;
}

static json_t *am_build(const struct cfw_sink *s, const struct cfw_notification *n)
{
    json_t *arr = json_array();

    if (n->kind == CFW_NOTIFY_DIGEST) {
        /* Alertmanager takes a list: a digest is every alert in one request, nothing lost */
        for (size_t i = 0; i < n->n_items; i++) {
            const struct cfw_digest_item *it = &n->items[i];
            json_array_append_new(
                arr,
                alert(s, &it->inc, false, it->transition == CFW_TRANSITION_RESOLVE, it->wall_ms));
        }
    } else {
        json_array_append_new(
            arr, alert(s, n->inc, n->kind == CFW_NOTIFY_TEST,
                       n->kind == CFW_NOTIFY_TRANSITION && n->transition == CFW_TRANSITION_RESOLVE,
                       n->now_wall_ms));
    }
    return arr;
}

static void am_observe(struct cfw_sink *s, const struct cfw_incident *inc, enum cfw_transition t)
{
    struct am_priv *p = s->priv;

    if (inc->key == NULL) {
        return;
    }
    if (t == CFW_TRANSITION_RESOLVE) {
        json_object_del(p->open, inc->key);
    } else {
        json_object_set_new(p->open, inc->key, alert(s, inc, false, false, cfw_now_wall_ms()));
    }
}

static char *am_refresh(const struct cfw_sink *s, size_t *len)
{
    const struct am_priv *p = s->priv;
    json_t *arr;
    const char *key;
    json_t *v;
    char *text;

    if (json_object_size(p->open) == 0) {
        return NULL;
    }
    arr = json_array();
    json_object_foreach (p->open, key, v) {
        json_array_append(arr, v);
    }
    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (text != NULL && len != NULL) {
        *len = strlen(text);
    }
    return text;
}

static int am_prepare(const struct cfw_sink *s, unsigned endpoint, const char *body, size_t len,
                      int64_t now_ms, struct cfw_sink_request *rq, struct cfw_err *err)
{
    const struct am_priv *p = s->priv;
    int64_t ends_after =
        p->ends_after_ms > 0 ? p->ends_after_ms : CFW_AM_ALIVE_FACTOR * s->refresh_ms;
    json_t *arr = json_loadb(body, len, 0, NULL);
    char ends[40];
    size_t i;
    json_t *a;
    char *text;

    if (arr == NULL || !json_is_array(arr)) {
        json_decref(arr);
        cfw_err_set(err, "spooled Alertmanager alerts are not a JSON list");
        return -1;
    }
    /* a firing alert lives until now + ends_after unless it is sent again */
    cfw_sink_time(now_ms + ends_after, ends, sizeof(ends));
    json_array_foreach (arr, i, a) {
        if (json_object_get(a, "endsAt") == NULL) {
            json_object_set_new(a, "endsAt", json_string(ends));
        }
    }
    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (text == NULL) {
        cfw_err_set(err, "cannot encode the alerts");
        return -1;
    }
    cfw_sink_request_base(s, rq, cfw_xasprintf("%s/api/v2/alerts", s->urls[endpoint]), text,
                          strlen(text));
    return 0;
}

const struct cfw_sink_ops cfw_sink_alertmanager_ops = {
    .type = "alertmanager",
    .schema = &am_schema,
    .burst = 50,
    .per_ms = 100,
    .in_flight = 2,
    .digest_resolves = true,
    .no_ack = true,
    .parse = am_parse,
    .build = am_build,
    .prepare = am_prepare,
    .observe = am_observe,
    .refresh = am_refresh,
    .free_priv = am_free,
};
