/* The cloudflare-tail source: Cloudflare's tail WebSocket spoken natively; see cf_tail.h. */
#include "cfwatchd/cf_tail.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cfwatchd/log.h"
#include "cfwatchd/metrics.h"
#include "cfwatchd/secrets.h"
#include "cfwatchd/websocket.h"
#include "input_impl.h"

/* The outcomes the runtime reports (workerd's outcome.capnp), and wrangler's `error`. */
static const char *const outcomes[] = {"unknown",
                                       "ok",
                                       "exception",
                                       "exceededCpu",
                                       "killSwitch",
                                       "daemonDown",
                                       "scriptNotFound",
                                       "canceled",
                                       "exceededMemory",
                                       "loadShed",
                                       "responseStreamDisconnected",
                                       "internalError",
                                       "exceededWallTime",
                                       "aborted",
                                       NULL};
/* wrangler tail --status error */
static const char *const error_outcomes[] = {"exception", "exceededCpu", "exceededMemory",
                                             "unknown", NULL};

/* One tail as created by the API, and its WebSocket. */
struct conn {
    struct conn *next; /* in src->closing once retired */
    struct cfw_tail *src;
    struct tail *tail; /* NULL once retired */
    char *id;
    char *url;
    int64_t expires_wall_ms; /* 0: unknown */
    struct cfw_ws *ws;
    bool open;
    struct cfw_secret_hold *hold; /* the URL: a capability to read the Worker's logs */
};

/* One Worker followed. */
struct tail {
    struct tail *next;
    struct cfw_tail *src;
    char *script;
    char *input; /* "<source>:<script>": the records' input name */
    bool from_glob;
    bool gone;            /* no longer matched: freed when its call returns */
    bool calling;         /* a tail creation in flight */
    struct conn *cur;     /* the connection delivering events */
    struct conn *pending; /* a new tail being connected (first, after a failure, renewal) */
    struct event *timer;  /* backoff, then renewal */
    int64_t delay_ms;
    unsigned failures;
    bool down;
    char *problem;
    int64_t open_mono_ms;
    uint64_t reconnects, messages, bytes;
    int64_t last_msg_mono_ms; /* 0: none yet */
    bool sampling;
    uint64_t overloads;
};

/* A DELETE in flight (a replaced tail, one left by an earlier run, the stop). */
struct del {
    struct del *next;
    struct cfw_tail *src;
    char *script;
    char *id;
};

struct cfw_tail {
    struct cfw_tail_conf conf;
    struct event_base *base;
    struct cfw_cf *cf;
    struct cfw_input *in; /* what the tails bring goes to its callbacks */
    struct tail *tails;
    struct del *dels;
    struct conn *closing;  /* retired connections whose close handshake runs */
    json_t *leftovers;     /* restored: [{script, id}] deleted on start */
    struct event *refresh; /* globs looked up again */
    bool listing;
    bool told; /* a state was told: later only changes are */
    bool started;
    bool stopping;
    int64_t stop_deadline_mono_ms;
    char *list_problem;
    unsigned list_failures;
    json_t *filters;
};

/* ---- configuration ---- */

bool cfw_tail_is(const struct cfw_node *node)
{
    const struct cfw_node *t = cfw_node_get(node, "type");

    return t != NULL && t->type == CFW_NODE_SCALAR && strcmp(t->value, "cloudflare-tail") == 0;
}

void cfw_tail_conf_clear(struct cfw_tail_conf *conf)
{
    free(conf->name);
    cfw_strlist_free(conf->scripts);
    cfw_strlist_free(conf->outcome);
    cfw_strlist_free(conf->method);
    free(conf->header_key);
    free(conf->header_query);
    cfw_strlist_free(conf->client_ip);
    free(conf->query);
    free(conf->script_version);
    memset(conf, 0, sizeof(*conf));
}

static bool is_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* A Worker name as it may go into an API path: letters, digits, '-' and '_'. */
static bool name_ok(const char *s, bool glob)
{
    if (s[0] == '\0' || strlen(s) > 255) {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || (glob && strchr("*?[]!", *p) != NULL))) {
            return false;
        }
    }
    return true;
}

static bool in_list(const char *const *list, const char *s)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(list[i], s) == 0) {
            return true;
        }
    }
    return false;
}

static int read_scripts(const struct cfw_schema_key *k, const struct cfw_node *map,
                        const char *path, void *conf, struct cfw_diag *diag)
{
    int rc = cfw_node_strlist(map, k->name, path, &((struct cfw_tail_conf *)conf)->scripts, diag);
    char *kp;

    if (rc == 0) {
        kp = cfw_schema_path(k, path);
        cfw_diag_add(diag, map, kp, "scripts is required: the Workers to tail (names or globs)");
        free(kp);
        return -1;
    }
    return rc;
}

static bool script_ok(const char *s)
{
    return name_ok(s, true);
}

static int check_scripts(const struct cfw_schema_key *k, const struct cfw_node *map,
                         const char *path, void *conf, struct cfw_diag *diag)
{
    return cfw_schema_check_items(
        k, map, path, ((struct cfw_tail_conf *)conf)->scripts, script_ok, "",
        "is not a Worker name or glob (letters, digits, '-', '_', and * ? [ ] in a "
        "glob)",
        diag);
}

static bool outcome_ok(const char *s)
{
    return strcmp(s, "error") == 0 || in_list(outcomes, s);
}

static int check_outcome(const struct cfw_schema_key *k, const struct cfw_node *map,
                         const char *path, void *conf, struct cfw_diag *diag)
{
    return cfw_schema_check_items(
        k, map, path, ((struct cfw_tail_conf *)conf)->outcome, outcome_ok, "unknown outcome ",
        "(error, ok, canceled, exception, exceededCpu, exceededMemory, unknown, "
        "...)",
        diag);
}

static int read_rate(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                     void *conf, struct cfw_diag *diag)
{
    double *rate = &((struct cfw_tail_conf *)conf)->sampling_rate;
    const char *s = NULL;
    char *end, *kp;
    int rc = cfw_node_str(map, k->name, path, &s, diag);

    if (rc != 1) {
        return rc;
    }
    errno = 0;
    *rate = strtod(s, &end);
    if (errno == 0 && *end == '\0' && end != s && *rate > 0.0 && *rate <= 1.0) {
        return 1;
    }
    kp = cfw_schema_path(k, path);
    cfw_diag_add(diag, cfw_node_get(map, k->name), kp, "'%s' is not a rate in (0, 1]", s);
    free(kp);
    *rate = 1.0;
    return -1;
}

static bool method_ok(const char *m)
{
    return m[0] != '\0' && strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == strlen(m);
}

static int check_method(const struct cfw_schema_key *k, const struct cfw_node *map,
                        const char *path, void *conf, struct cfw_diag *diag)
{
    return cfw_schema_check_items(k, map, path, ((struct cfw_tail_conf *)conf)->method, method_ok,
                                  "", "is not an HTTP method (upper case, e.g. GET)", diag);
}

static int read_header(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                       void *conf, struct cfw_diag *diag)
{
    struct cfw_tail_conf *c = conf;
    const struct cfw_node *h = cfw_node_get(map, k->name);
    char *child = cfw_schema_path(k, path);
    const char *s = NULL;
    static const char *const hkeys[] = {"key", "query", NULL};
    int rc = 1;

    /* absent or null (`header: ~`): no header filter, not a header named "~" */
    if (h == NULL ||
        (h->type == CFW_NODE_SCALAR && cfw_node_str(map, k->name, path, &s, diag) == 0)) {
        free(child);
        return 0;
    }
    if (h->type == CFW_NODE_SCALAR) {
        /* "Name" (present) or "Name: value", as wrangler's --header takes it */
        const char *colon = strchr(h->value, ':');
        if (colon != NULL) {
            const char *v = colon + 1;
            while (*v == ' ') {
                v++;
            }
            c->header_key = cfw_xstrndup(h->value, (size_t)(colon - h->value));
            c->header_query = cfw_xstrdup(v);
        } else {
            c->header_key = cfw_xstrdup(h->value);
        }
    } else if (cfw_node_check_keys(h, child, hkeys, diag) == 0) {
        if (cfw_node_str(h, "key", child, &s, diag) == 1) {
            c->header_key = cfw_xstrdup(s);
        }
        if (cfw_node_str(h, "query", child, &s, diag) == 1) {
            c->header_query = cfw_xstrdup(s);
        }
    }
    if (c->header_key == NULL || c->header_key[0] == '\0' ||
        strpbrk(c->header_key, " \t\r\n") != NULL) {
        cfw_diag_add(diag, h, child,
                     "a header name is required (\"Name\", \"Name: value\" or "
                     "{key, query})");
        rc = -1;
    }
    free(child);
    return rc;
}

static bool ip_ok(const char *ip)
{
    unsigned char a[16];

    return strcmp(ip, "self") == 0 || inet_pton(AF_INET, ip, a) == 1 ||
           inet_pton(AF_INET6, ip, a) == 1;
}

static int check_client_ip(const struct cfw_schema_key *k, const struct cfw_node *map,
                           const char *path, void *conf, struct cfw_diag *diag)
{
    return cfw_schema_check_items(k, map, path, ((struct cfw_tail_conf *)conf)->client_ip, ip_ok,
                                  "", "is not an IP address or \"self\"", diag);
}

/*
 * A lower bound checked after the value is stored rather than a bound of the row:
 * reconnect_delay_max is compared with what was written, as it always was.
 */
static int check_reconnect_delay(const struct cfw_schema_key *k, const struct cfw_node *map,
                                 const char *path, void *conf, struct cfw_diag *diag)
{
    char *kp;

    if (((struct cfw_tail_conf *)conf)->reconnect_delay_ms >= 100) {
        return 0;
    }
    kp = cfw_schema_path(k, path);
    cfw_diag_add(diag, cfw_node_get(map, k->name), kp, "must be at least 100ms");
    free(kp);
    return -1;
}

static int check_reconnect_delay_max(const struct cfw_schema_key *k, const struct cfw_node *map,
                                     const char *path, void *conf, struct cfw_diag *diag)
{
    const struct cfw_tail_conf *c = conf;
    char *kp;

    if (c->reconnect_delay_max_ms >= c->reconnect_delay_ms) {
        return 0;
    }
    kp = cfw_schema_path(k, path);
    cfw_diag_add(diag, cfw_node_get(map, k->name), kp, "must not be below reconnect_delay");
    free(kp);
    return -1;
}

#define TAIL_KEY(member) offsetof(struct cfw_tail_conf, member)

static const struct cfw_schema_key tail_keys[] = {
    {.name = "name",
     .type = CFW_SCHEMA_STR,
     .offset = TAIL_KEY(name),
     .read = cfw_input_read_required_name,
     .help = "the source's name in incidents and state (required)"},
    {.name = "type", .help = "cloudflare-tail"},
    {.name = "scripts",
     .type = CFW_SCHEMA_STRLIST,
     .offset = TAIL_KEY(scripts),
     .read = read_scripts,
     .check = check_scripts,
     .help = "the Workers to tail: names or globs (required)"},
    {.name = "outcome",
     .type = CFW_SCHEMA_STRLIST,
     .offset = TAIL_KEY(outcome),
     .check = check_outcome,
     .help = "filter: outcomes (\"error\": wrangler's list)"},
    {.name = "sampling_rate",
     .type = CFW_SCHEMA_DOUBLE,
     .offset = TAIL_KEY(sampling_rate),
     .def = 1.0,
     .read = read_rate,
     .help = "filter: the share of requests sent, in (0, 1]"},
    {.name = "method",
     .type = CFW_SCHEMA_STRLIST,
     .offset = TAIL_KEY(method),
     .check = check_method,
     .help = "filter: HTTP methods"},
    {.name = "header",
     .offset = TAIL_KEY(header_key),
     .read = read_header,
     .help = "filter: \"Name\", \"Name: value\" or {key, query}"},
    {.name = "client_ip",
     .type = CFW_SCHEMA_STRLIST,
     .offset = TAIL_KEY(client_ip),
     .check = check_client_ip,
     .help = "filter: client IP addresses or \"self\""},
    {.name = "query",
     .type = CFW_SCHEMA_STR,
     .offset = TAIL_KEY(query),
     .help = "filter: text the event must contain"},
    {.name = "script_version",
     .type = CFW_SCHEMA_STR,
     .offset = TAIL_KEY(script_version),
     .help = "filter: a version of the Worker"},
    {.name = "ping_interval",
     .type = CFW_SCHEMA_DURATION,
     .offset = TAIL_KEY(ping_interval_ms),
     .def = CFW_TAIL_PING_INTERVAL_DEFAULT_MS,
     .min = 100,
     .max = 5 * 60 * 1000,
     .bounds = "must be between 100ms and 5m",
     .help = "a ping every interval; no pong by the next one: the connection is dead"},
    {.name = "renew_before",
     .type = CFW_SCHEMA_DURATION,
     .offset = TAIL_KEY(renew_before_ms),
     .def = CFW_TAIL_RENEW_BEFORE_DEFAULT_MS,
     .help = "a tail is created again this long before it expires"},
    {.name = "reconnect_delay",
     .type = CFW_SCHEMA_DURATION,
     .offset = TAIL_KEY(reconnect_delay_ms),
     .def = CFW_TAIL_RECONNECT_DELAY_DEFAULT_MS,
     .check = check_reconnect_delay,
     .help = "the first delay before a lost tail is replaced (at least 100ms), doubled"},
    {.name = "reconnect_delay_max",
     .type = CFW_SCHEMA_DURATION,
     .offset = TAIL_KEY(reconnect_delay_max_ms),
     .def = CFW_TAIL_RECONNECT_DELAY_MAX_DEFAULT_MS,
     .check = check_reconnect_delay_max,
     .help = "the cap of the doubling"},
    {.name = "down_after_failures",
     .type = CFW_SCHEMA_UINT,
     .offset = TAIL_KEY(down_after_failures),
     .def = CFW_TAIL_DOWN_AFTER_FAILURES_DEFAULT,
     .min = 1,
     .max = 1000,
     .help = "failures in a row before the source is DOWN (a 403 at once)"},
    {.name = "scripts_refresh",
     .type = CFW_SCHEMA_DURATION,
     .offset = TAIL_KEY(scripts_refresh_ms),
     .def = CFW_TAIL_SCRIPTS_REFRESH_DEFAULT_MS,
     .min = 10 * 1000,
     .bounds = "must be at least 10s (the API allows 1200 requests per 5 minutes)",
     .help = "how often globs are looked up again"},
    {.name = "max_message",
     .type = CFW_SCHEMA_SIZE,
     .offset = TAIL_KEY(max_message),
     .def = CFW_WS_MAX_MESSAGE_DEFAULT,
     .min = 1024,
     .max = 64u * 1024u * 1024u,
     .help = "bytes of one WebSocket message"},
    {0},
};

static const struct cfw_schema tail_schema = {.keys = tail_keys};

int cfw_tail_conf_parse(const struct cfw_node *node, const char *path, struct cfw_tail_conf *conf,
                        struct cfw_diag *diag)
{
    memset(conf, 0, sizeof(*conf));
    cfw_schema_defaults(&tail_schema, conf);
    if (cfw_schema_parse(&tail_schema, node, path, conf, diag) != 0) {
        cfw_tail_conf_clear(conf);
        return -1;
    }
    return 0;
}

static json_t *str_array(char *const *list)
{
    json_t *a = json_array();

    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        json_array_append_new(a, json_string(list[i]));
    }
    return a;
}

json_t *cfw_tail_filters(const struct cfw_tail_conf *conf)
{
    json_t *filters = json_array();

    if (conf->sampling_rate < 1.0) {
        json_array_append_new(filters, json_pack("{s:f}", "sampling_rate", conf->sampling_rate));
    }
    if (conf->outcome != NULL) {
        json_t *a = json_array();
        for (size_t i = 0; conf->outcome[i] != NULL; i++) {
            const char *const *add = (const char *const[]){conf->outcome[i], NULL};
            if (strcmp(conf->outcome[i], "error") == 0) {
                add = error_outcomes;
            }
            for (size_t k = 0; add[k] != NULL; k++) {
                size_t j;
                json_t *v;
                bool dup = false;
                json_array_foreach (a, j, v) {
                    dup = dup || strcmp(json_string_value(v), add[k]) == 0;
                }
                if (!dup) {
                    json_array_append_new(a, json_string(add[k]));
                }
            }
        }
        json_array_append_new(filters, json_pack("{s:o}", "outcome", a));
    }
    if (conf->method != NULL) {
        json_array_append_new(filters, json_pack("{s:o}", "method", str_array(conf->method)));
    }
    if (conf->header_key != NULL) {
        json_t *h = json_pack("{s:s}", "key", conf->header_key);
        if (conf->header_query != NULL) {
            json_object_set_new(h, "query", json_string(conf->header_query));
        }
        json_array_append_new(filters, json_pack("{s:o}", "header", h));
    }
    if (conf->client_ip != NULL) {
        json_array_append_new(filters, json_pack("{s:o}", "client_ip", str_array(conf->client_ip)));
    }
    if (conf->query != NULL) {
        json_array_append_new(filters, json_pack("{s:s}", "query", conf->query));
    }
    if (conf->script_version != NULL) {
        json_array_append_new(filters, json_pack("{s:s}", "scriptVersion", conf->script_version));
    }
    return json_pack("{s:o}", "filters", filters);
}

/* ---- helpers ---- */

static int64_t mono_ms(void)
{
    return cfw_now_mono_ms();
}

static void arm(struct event *ev, int64_t ms)
{
    struct timeval tv = cfw_ms_timeval(ms); /* a delay already past runs at once */

    evtimer_add(ev, &tv);
}

/* An id from the API as it may go into a path (letters, digits, '-', '_'). */
static bool id_ok(const char *id)
{
    return id != NULL && name_ok(id, false);
}

/* The source is DOWN while a tail is down or the script list cannot be had. */
static void update_state(struct cfw_tail *src)
{
    const struct tail *bad = NULL;
    char *why;
    bool up;

    for (const struct tail *t = src->tails; t != NULL && bad == NULL; t = t->next) {
        if (t->down && !t->gone) {
            bad = t;
        }
    }
    up = bad == NULL && src->list_problem == NULL;
    if (up == (cfw_input_health(src->in, NULL) == CFW_INPUT_UP) && src->told) {
        return;
    }
    if (up && !src->told) {
        /* the first state told is a definite one: up once every tail is connected (a
         * source-down restored from the state is not resolved by a start that still fails) */
        for (const struct tail *t = src->tails; t != NULL; t = t->next) {
            if (!t->gone && (t->cur == NULL || !t->cur->open)) {
                return;
            }
        }
        if (src->tails == NULL) {
            return;
        }
    }
    src->told = true;
    why = bad != NULL ? cfw_xasprintf("script %s: %s", bad->script, bad->problem)
                      : cfw_xstrdup(up ? "" : src->list_problem);
    cfw_input_tell_up(src->in, up, why);
    free(why);
}

static void changed(struct cfw_tail *src)
{
    cfw_input_emit_changed(src->in);
}

/* ---- DELETE ---- */

static void del_free(struct del *d)
{
    free(d->script);
    free(d->id);
    free(d);
}

static void on_deleted(void *arg, const struct cfw_cf_result *r)
{
    struct del *d = arg;
    struct cfw_tail *src = d->src;
    struct del **pp = &src->dels;

    while (*pp != NULL && *pp != d) {
        pp = &(*pp)->next;
    }
    if (*pp == d) {
        *pp = d->next;
    }
    if (r->ok || r->status == 404) {
        cfw_log_debug("source=%s script=%s: tail deleted", src->conf.name, d->script);
    } else {
        cfw_log_warn("source=%s script=%s: cannot delete a tail: %s; the next start tries again",
                     src->conf.name, d->script, r->error);
        /* saved with the state like a tail left open */
        if (src->leftovers == NULL) {
            src->leftovers = json_array();
        }
        json_array_append_new(src->leftovers,
                              json_pack("{s:s, s:s}", "script", d->script, "id", d->id));
    }
    del_free(d);
    changed(src);
}

static void tail_delete(struct cfw_tail *src, const char *script, const char *id)
{
    struct del *d;
    char *path;

    if (!id_ok(id) || !name_ok(script, false)) {
        return;
    }
    d = cfw_xcalloc(1, sizeof(*d));
    d->src = src;
    d->script = cfw_xstrdup(script);
    d->id = cfw_xstrdup(id);
    d->next = src->dels;
    src->dels = d;
    path = cfw_xasprintf("/accounts/{account}/workers/scripts/%s/tails/%s", script, id);
    if (cfw_cf_request(src->cf, "DELETE", path, NULL, on_deleted, d) != 0) {
        src->dels = d->next;
        del_free(d);
    }
    free(path);
}

/* ---- connections ---- */

static void conn_free(struct conn *c)
{
    if (c == NULL) {
        return;
    }
    cfw_ws_free(c->ws);
    cfw_secret_hold_free(c->hold);
    free(c->id);
    free(c->url);
    free(c);
}

/* Ends a connection that is no longer wanted: closed with 1000 and its tail deleted. */
static void conn_retire(struct conn *c)
{
    struct cfw_tail *src = c->src;

    tail_delete(src, c->tail->script, c->id);
    c->tail = NULL;
    if (c->ws != NULL && cfw_ws_is_open(c->ws)) {
        /* the closed callback frees it; until then it is the source's */
        c->next = src->closing;
        src->closing = c;
        cfw_ws_close(c->ws, CFW_WS_CLOSE_NORMAL, "");
    } else {
        conn_free(c);
    }
}

static void closing_drop(struct cfw_tail *src, struct conn *c)
{
    for (struct conn **pp = &src->closing; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
}

static void tail_create(struct tail *t);
static void tail_free(struct tail *t);

static void tail_failed(struct tail *t, bool auth, const char *fmt, ...) CFW_PRINTF(3, 4);
static void tail_failed(struct tail *t, bool auth, const char *fmt, ...)
{
    struct cfw_tail *src = t->src;
    va_list ap;
    char why[1024];

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    free(t->problem);
    t->problem = cfw_secrets_scrub(why);
    t->failures++;
    if (t->open_mono_ms != 0 && mono_ms() - t->open_mono_ms >= CFW_TAIL_STABLE_AFTER_MS) {
        t->delay_ms = src->conf.reconnect_delay_ms;
    }
    t->open_mono_ms = 0;
    cfw_log_warn("source=%s script=%s: %s; again in %lld ms", src->conf.name, t->script, t->problem,
                 (long long)t->delay_ms);
    if (src->stopping) {
        return;
    }
    evtimer_del(t->timer);
    arm(t->timer, t->delay_ms);
    t->delay_ms *= 2;
    if (t->delay_ms > src->conf.reconnect_delay_max_ms) {
        t->delay_ms = src->conf.reconnect_delay_max_ms;
    }
    if (auth || t->failures >= src->conf.down_after_failures) {
        t->down = true;
    }
    update_state(src);
}

/* When to create the next tail: renew_before its expiry (half its lifetime when shorter). */
static void arm_renewal(struct tail *t)
{
    int64_t left = t->cur->expires_wall_ms - cfw_now_wall_ms();
    int64_t at = left - t->src->conf.renew_before_ms;

    if (t->cur->expires_wall_ms <= 0) {
        return;
    }
    if (at < left / 2) {
        at = left / 2;
    }
    evtimer_del(t->timer);
    arm(t->timer, at < 1000 ? 1000 : at);
}

static void ws_open(void *arg, struct cfw_ws *ws)
{
    struct conn *c = arg;
    struct tail *t = c->tail;
    static const char hello[] = "{\"debug\":false}";

    if (t == NULL) {
        return;
    }
    cfw_ws_send_text(ws, hello, sizeof(hello) - 1);
    c->open = true;
    if (c == t->pending) {
        struct conn *old = t->cur;
        t->cur = c;
        t->pending = NULL;
        if (old != NULL) {
            /* make before break: the new tail delivers from now on */
            conn_retire(old);
        }
    }
    cfw_log_notice("source=%s script=%s: tail connected%s", t->src->conf.name, t->script,
                   t->failures > 0 ? " again" : "");
    t->open_mono_ms = mono_ms();
    t->failures = 0;
    t->down = false;
    free(t->problem);
    t->problem = NULL;
    arm_renewal(t);
    update_state(t->src);
}

/* Cloudflare's sampling notices: tail-info events {type: overload | overload-stop}. */
static void check_sampling(struct tail *t, const char *data, size_t len)
{
    json_t *root, *ev;
    const char *type;

    if (memmem(data, len, "\"overload", 9) == NULL) {
        return;
    }
    root = json_loadb(data, len, 0, NULL);
    ev = json_object_get(root, "event");
    type = json_string_value(json_object_get(ev, "type"));
    if (type != NULL && strcmp(type, "overload") == 0) {
        if (!t->sampling) {
            cfw_log_warn("source=%s script=%s: Cloudflare samples this tail (high volume): "
                         "counts are sampled",
                         t->src->conf.name, t->script);
        }
        t->sampling = true;
        t->overloads++;
    } else if (type != NULL && strcmp(type, "overload-stop") == 0) {
        if (t->sampling) {
            cfw_log_notice("source=%s script=%s: the tail is no longer sampled", t->src->conf.name,
                           t->script);
        }
        t->sampling = false;
    }
    json_decref(root);
}

static void ws_message(void *arg, struct cfw_ws *ws, bool text, const char *data, size_t len)
{
    struct conn *c = arg;
    struct tail *t = c->tail;
    struct cfw_fields ctx = {0};
    struct cfw_record rec = {.kind = CFW_REC_JSON, .text = data, .len = len};

    (void)ws;
    (void)text; /* wrangler reads binary frames as text too */
    if (t == NULL || c != t->cur) {
        return;
    }
    t->messages++;
    t->bytes += len;
    t->last_msg_mono_ms = mono_ms();
    check_sampling(t, data, len);
    if (t->sampling) {
        cfw_fields_set(&ctx, "sampling",
                       "Cloudflare is sampling this tail (high volume): counts are sampled");
    } else if (t->src->conf.sampling_rate < 1.0) {
        char buf[128];
        snprintf(buf, sizeof(buf), "the tail samples %g%% of requests: counts are sampled",
                 t->src->conf.sampling_rate * 100.0);
        cfw_fields_set(&ctx, "sampling", buf);
    }
    rec.input = t->input;
    rec.line = t->messages;
    rec.line_end = t->messages;
    cfw_input_emit_record(t->src->in, ctx.n > 0 ? &ctx : NULL, &rec);
    cfw_fields_clear(&ctx);
}

static void ws_closed(void *arg, struct cfw_ws *ws, int code, const char *why)
{
    struct conn *c = arg;
    struct tail *t = c->tail;

    (void)ws;
    (void)code;
    if (t == NULL) {
        /* retired (replaced, no longer matched, the stop): its tail was deleted already */
        closing_drop(c->src, c);
        conn_free(c);
        return;
    }
    tail_delete(t->src, t->script, c->id);
    if (c == t->pending) {
        t->pending = NULL;
        conn_free(c);
        tail_failed(t, strstr(why, "HTTP 401") != NULL || strstr(why, "HTTP 403") != NULL,
                    "cannot connect the tail: %s", why);
    } else if (c == t->cur) {
        t->cur = NULL;
        t->reconnects++;
        conn_free(c);
        tail_failed(t, false, "tail connection lost: %s", why);
    } else {
        conn_free(c);
    }
}

static void on_created(void *arg, const struct cfw_cf_result *r)
{
    struct tail *t = arg;
    struct cfw_tail *src = t->src;
    const char *id = json_string_value(json_object_get(r->result, "id"));
    const char *url = json_string_value(json_object_get(r->result, "url"));
    const char *exp = json_string_value(json_object_get(r->result, "expires_at"));
    struct cfw_ws_conf wc = {.protocol = CFW_TAIL_PROTOCOL,
                             .ca_file = cfw_cf_ca_file(src->cf),
                             .ping_interval_ms = src->conf.ping_interval_ms,
                             /* Cloudflare sends each event as one frame */
                             .max_frame = src->conf.max_message,
                             .max_message = src->conf.max_message};
    struct cfw_ws_cbs cbs = {ws_open, ws_message, ws_closed, NULL};
    struct cfw_err err = {0};
    struct conn *c;

    t->calling = false;
    if (t->gone || src->stopping) {
        if (r->ok && id != NULL) {
            tail_delete(src, t->script, id);
        }
        if (t->gone) {
            tail_free(t); /* unlinked already: this was its last reference */
        }
        return;
    }
    if (!r->ok) {
        tail_failed(t, r->auth, "cannot create the tail: %s", r->error);
        return;
    }
    if (!id_ok(id) || url == NULL) {
        tail_failed(t, false, "cannot create the tail: the answer has no usable id and url");
        if (id_ok(id)) {
            tail_delete(src, t->script, id);
        }
        return;
    }
    c = cfw_xcalloc(1, sizeof(*c));
    c->src = src;
    c->tail = t;
    c->id = cfw_xstrdup(id);
    c->url = cfw_xstrdup(url);
    c->hold = cfw_secret_hold_new();
    cfw_secret_hold_add_url(c->hold, url, true);
    c->expires_wall_ms = exp != NULL ? cfw_parse_rfc3339_ms(exp) : 0;
    if (c->expires_wall_ms < 0) {
        c->expires_wall_ms = 0;
    }
    wc.url = c->url;
    cbs.arg = c;
    c->ws = cfw_ws_connect(src->base, &wc, &cbs, &err);
    if (c->ws == NULL) {
        tail_delete(src, t->script, id);
        conn_free(c);
        tail_failed(t, false, "cannot connect the tail: %s", err.msg);
        return;
    }
    conn_free(t->pending); /* never two at once, but stay safe */
    t->pending = c;
    changed(src);
}

static void tail_create(struct tail *t)
{
    struct cfw_tail *src = t->src;
    char *path;

    if (t->calling || t->pending != NULL || src->stopping) {
        return;
    }
    t->calling = true;
    path = cfw_xasprintf("/accounts/{account}/workers/scripts/%s/tails", t->script);
    if (cfw_cf_call(src->cf, path, src->filters, on_created, t) != 0) {
        t->calling = false;
        tail_failed(t, false, "cannot start the API request");
    }
    free(path);
}

static void on_tail_timer(evutil_socket_t fd, short what, void *arg)
{
    struct tail *t = arg;

    (void)fd;
    (void)what;
    /* a backoff ended, or the current tail is near its expiry: a new tail either way */
    tail_create(t);
}

static struct tail *tail_add(struct cfw_tail *src, const char *script, bool from_glob)
{
    struct tail *t = cfw_xcalloc(1, sizeof(*t));

    t->src = src;
    t->script = cfw_xstrdup(script);
    t->input = cfw_xasprintf("%s:%s", src->conf.name, script);
    t->from_glob = from_glob;
    t->delay_ms = src->conf.reconnect_delay_ms;
    t->timer = evtimer_new(src->base, on_tail_timer, t);
    t->next = src->tails;
    src->tails = t;
    return t;
}

/* Frees a tail whose connections may be open (no DELETE: see tail_source_destroy). */
static void tail_free(struct tail *t)
{
    if (t->cur != NULL) {
        t->cur->tail = NULL;
        conn_free(t->cur);
    }
    if (t->pending != NULL) {
        t->pending->tail = NULL;
        conn_free(t->pending);
    }
    if (t->timer != NULL) {
        event_free(t->timer);
    }
    free(t->script);
    free(t->input);
    free(t->problem);
    free(t);
}

static struct tail *tail_find(struct cfw_tail *src, const char *script)
{
    for (struct tail *t = src->tails; t != NULL; t = t->next) {
        if (strcmp(t->script, script) == 0) {
            return t;
        }
    }
    return NULL;
}

/* ---- globs ---- */

static void list_scripts(struct cfw_tail *src);

static void on_scripts(void *arg, const struct cfw_cf_result *r)
{
    struct cfw_tail *src = arg;
    size_t i, n = 0;
    json_t *s;

    src->listing = false;
    if (src->stopping) {
        return;
    }
    arm(src->refresh, src->conf.scripts_refresh_ms);
    if (!r->ok || !json_is_array(r->result)) {
        src->list_failures++;
        cfw_log_warn("source=%s: cannot list the Workers for the globs: %s", src->conf.name,
                     r->ok ? "no list in the answer" : r->error);
        if (r->auth || src->list_failures >= src->conf.down_after_failures) {
            free(src->list_problem);
            src->list_problem = cfw_xasprintf("cannot list the Workers: %s",
                                              r->ok ? "no list in the answer" : r->error);
            update_state(src);
        }
        if (!r->auth) {
            evtimer_del(src->refresh);
            arm(src->refresh, src->conf.reconnect_delay_max_ms);
        }
        return;
    }
    src->list_failures = 0;
    free(src->list_problem);
    src->list_problem = NULL;
    for (struct tail *t = src->tails; t != NULL; t = t->next) {
        t->gone = t->from_glob; /* until matched again */
    }
    json_array_foreach (r->result, i, s) {
        const char *name = json_string_value(json_object_get(s, "id"));
        struct tail *t;
        bool match = false;
        if (name == NULL || !name_ok(name, false)) {
            continue;
        }
        for (size_t k = 0; src->conf.scripts[k] != NULL && !match; k++) {
            match = is_glob(src->conf.scripts[k]) && cfw_glob_match(src->conf.scripts[k], name);
        }
        if (!match) {
            continue;
        }
        t = tail_find(src, name);
        if (t != NULL) {
            t->gone = false;
            continue;
        }
        if (n + 1 > CFW_TAIL_MAX_TAILS) {
            cfw_log_warn("source=%s: more than %u Workers match; the rest are not tailed",
                         src->conf.name, CFW_TAIL_MAX_TAILS);
            break;
        }
        n++;
        t = tail_add(src, name, true);
        cfw_log_notice("source=%s: tailing %s (matched by a glob)", src->conf.name, name);
        tail_create(t);
    }
    /* Workers no longer there: their tails are deleted */
    for (struct tail **pp = &src->tails; *pp != NULL;) {
        struct tail *t = *pp;
        if (!t->gone) {
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        cfw_log_notice("source=%s: %s no longer matches; its tail is deleted", src->conf.name,
                       t->script);
        if (t->cur != NULL) {
            conn_retire(t->cur);
            t->cur = NULL;
        }
        if (t->pending != NULL) {
            conn_retire(t->pending);
            t->pending = NULL;
        }
        if (!t->calling) {
            tail_free(t);
        } /* else on_created frees it */
    }
    update_state(src);
}

static void list_scripts(struct cfw_tail *src)
{
    if (src->listing || src->stopping) {
        return;
    }
    src->listing = true;
    if (cfw_cf_call(src->cf, "/accounts/{account}/workers/scripts", NULL, on_scripts, src) != 0) {
        src->listing = false;
        arm(src->refresh, src->conf.reconnect_delay_max_ms);
    }
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    list_scripts(arg);
}

/* ---- the object ---- */

/* Creates the source; in->cf must outlive it. Nothing happens before start. */
static int tail_source_create(struct cfw_input *in, const void *cp, const struct cfw_input_env *env,
                              struct cfw_err *err)
{
    const struct cfw_tail_conf *conf = cp;
    struct cfw_tail *src = cfw_xcalloc(1, sizeof(*src));

    (void)err;
    src->base = env->base;
    src->cf = in->cf;
    src->in = in;
    src->conf = *conf;
    src->conf.name = cfw_xstrdup(conf->name);
    src->conf.scripts = cfw_strlist_dup(conf->scripts);
    src->conf.outcome = cfw_strlist_dup(conf->outcome);
    src->conf.method = cfw_strlist_dup(conf->method);
    src->conf.header_key = conf->header_key != NULL ? cfw_xstrdup(conf->header_key) : NULL;
    src->conf.header_query = conf->header_query != NULL ? cfw_xstrdup(conf->header_query) : NULL;
    src->conf.client_ip = cfw_strlist_dup(conf->client_ip);
    src->conf.query = conf->query != NULL ? cfw_xstrdup(conf->query) : NULL;
    src->conf.script_version =
        conf->script_version != NULL ? cfw_xstrdup(conf->script_version) : NULL;
    src->filters = cfw_tail_filters(conf);
    src->refresh = evtimer_new(env->base, on_refresh, src);
    in->priv = src;
    return 0;
}

/* Drops every connection without deleting the tails (their ids stay in the saved state). */
static void tail_source_destroy(struct cfw_input *in)
{
    struct cfw_tail *src = in->priv;

    if (src == NULL) {
        return;
    }
    while (src->tails != NULL) {
        struct tail *t = src->tails;
        src->tails = t->next;
        tail_free(t);
    }
    while (src->closing != NULL) {
        struct conn *c = src->closing;
        src->closing = c->next;
        conn_free(c);
    }
    /* calls in flight are cancelled with the API client, which goes right after the sources */
    while (src->dels != NULL) {
        struct del *d = src->dels;
        src->dels = d->next;
        del_free(d);
    }
    event_free(src->refresh);
    json_decref(src->leftovers);
    json_decref(src->filters);
    free(src->list_problem);
    cfw_tail_conf_clear(&src->conf);
    free(src);
}

static int tail_source_start(struct cfw_input *in, struct cfw_err *err)
{
    struct cfw_tail *src = in->priv;
    bool globs = false;
    size_t i;
    json_t *l;

    (void)err;
    if (src->started) {
        return 0;
    }
    src->started = true;
    /* tails an earlier run left open (a crash, a kill): nobody reads them any more */
    json_array_foreach (src->leftovers, i, l) {
        const char *script = json_string_value(json_object_get(l, "script"));
        const char *id = json_string_value(json_object_get(l, "id"));
        if (script != NULL && id != NULL) {
            cfw_log_notice("source=%s script=%s: deleting a tail left by an earlier run",
                           src->conf.name, script);
            tail_delete(src, script, id);
        }
    }
    json_decref(src->leftovers);
    src->leftovers = NULL;
    for (i = 0; src->conf.scripts[i] != NULL; i++) {
        if (is_glob(src->conf.scripts[i])) {
            globs = true;
        } else if (tail_find(src, src->conf.scripts[i]) == NULL) {
            tail_create(tail_add(src, src->conf.scripts[i], false));
        }
    }
    if (globs) {
        list_scripts(src);
    }
    return 0;
}

/* Closes every WebSocket and DELETEs every tail; see tail_source_stopped. */
static void tail_source_stop(struct cfw_input *in)
{
    struct cfw_tail *src = in->priv;

    if (src->stopping) {
        return;
    }
    src->stopping = true;
    src->stop_deadline_mono_ms = mono_ms() + CFW_TAIL_STOP_DEADLINE_MS;
    evtimer_del(src->refresh);
    for (struct tail *t = src->tails; t != NULL; t = t->next) {
        evtimer_del(t->timer);
        if (t->cur != NULL) {
            conn_retire(t->cur);
            t->cur = NULL;
        }
        if (t->pending != NULL) {
            conn_retire(t->pending);
            t->pending = NULL;
        }
    }
}

/* Deletions, listings, creations or close handshakes still running. */
static bool busy(const struct cfw_tail *src)
{
    if (src->dels != NULL || src->listing || src->closing != NULL) {
        return true;
    }
    for (const struct tail *t = src->tails; t != NULL; t = t->next) {
        if (t->calling) {
            return true;
        }
    }
    return false;
}

/* True when the stop has completed (or its deadline passed). */
static bool tail_source_stopped(const struct cfw_input *in)
{
    const struct cfw_tail *src = in->priv;

    return src->stopping && (!busy(src) || mono_ms() >= src->stop_deadline_mono_ms);
}

static void save_one(json_t *a, const char *script, const char *id)
{
    if (id != NULL) {
        json_array_append_new(a, json_pack("{s:s, s:s}", "script", script, "id", id));
    }
}

/* {"tails":[{"script","id"}...]}: the tails open now (deleted after a crash on the next start). */
static json_t *tail_source_save(const struct cfw_input *in)
{
    const struct cfw_tail *src = in->priv;
    json_t *a = json_array();

    for (const struct tail *t = src->tails; t != NULL; t = t->next) {
        save_one(a, t->script, t->cur != NULL ? t->cur->id : NULL);
        save_one(a, t->script, t->pending != NULL ? t->pending->id : NULL);
    }
    /* deletions not confirmed yet, and leftovers not handled yet */
    for (const struct del *d = src->dels; d != NULL; d = d->next) {
        save_one(a, d->script, d->id);
    }
    if (src->leftovers != NULL) {
        json_array_extend(a, src->leftovers);
    }
    return json_pack("{s:o}", "tails", a);
}

/* Before start: the tails of an earlier run, deleted on start. */
static void tail_source_restore(struct cfw_input *in, const json_t *state)
{
    struct cfw_tail *src = in->priv;
    json_t *a = json_object_get(state, "tails");

    if (!json_is_array(a) || src->started) {
        return;
    }
    json_decref(src->leftovers);
    src->leftovers = json_deep_copy(a);
}

/* ---- metrics ---- */

static const char *tail_state(const struct tail *t)
{
    if (t->cur != NULL && t->cur->open) {
        return "open";
    }
    if (t->calling) {
        return "creating";
    }
    if (t->pending != NULL) {
        return "connecting";
    }
    return t->down ? "down" : "waiting";
}

/*
 * The families of a source's tails (each per Worker: state, reconnects, messages, bytes, last
 * message age, sampling); none for a source that follows no Worker yet.
 */
static void tail_source_metrics(const struct cfw_input *in, struct cfw_metrics *m)
{
    const struct cfw_tail *src = in->priv;
    struct cfw_metrics_family *f[8];
    int64_t now = mono_ms();

    if (src->tails == NULL) {
        return;
    }
    f[0] = cfw_metrics_family(
        m, "cfwatchd_tail_state", "gauge",
        "1 for the state a tail is in (open, creating, connecting, waiting, down)");
    f[1] = cfw_metrics_family(m, "cfwatchd_tail_reconnects_total", "counter",
                              "Tail connections lost and replaced");
    f[2] = cfw_metrics_family(m, "cfwatchd_tail_messages_total", "counter",
                              "TailEventMessages received");
    f[3] = cfw_metrics_family(m, "cfwatchd_tail_bytes_total", "counter",
                              "Bytes of TailEventMessages received");
    f[4] = cfw_metrics_family(m, "cfwatchd_tail_last_message_age_seconds", "gauge",
                              "Seconds since the last message of the tail");
    f[5] = cfw_metrics_family(m, "cfwatchd_tail_sampling", "gauge",
                              "1 while Cloudflare samples the tail (its counts are sampled)");
    f[6] = cfw_metrics_family(m, "cfwatchd_tail_sampling_notices_total", "counter",
                              "Sampling-mode notices (overload) from Cloudflare");
    f[7] = cfw_metrics_family(m, "cfwatchd_tail_sampling_rate", "gauge",
                              "The configured sampling_rate filter");
    for (const struct tail *t = src->tails; t != NULL; t = t->next) {
        const char *const *l = CFW_LABELS("source", in->name, "script", t->script);

        cfw_metrics_sample(
            f[0], CFW_LABELS("source", in->name, "script", t->script, "state", tail_state(t)), "1");
        cfw_metrics_u64(f[1], l, t->reconnects);
        cfw_metrics_u64(f[2], l, t->messages);
        cfw_metrics_u64(f[3], l, t->bytes);
        if (t->last_msg_mono_ms != 0) {
            cfw_metrics_sample(f[4], l, "%.3f", (double)(now - t->last_msg_mono_ms) / 1000.0);
        }
        cfw_metrics_sample(f[5], l, "%d", t->sampling ? 1 : 0);
        cfw_metrics_u64(f[6], l, t->overloads);
        cfw_metrics_sample(f[7], l, "%g", src->conf.sampling_rate);
    }
}

static int tail_source_parse(const struct cfw_node *node, const char *path, void *conf,
                             struct cfw_diag *diag)
{
    return cfw_tail_conf_parse(node, path, conf, diag);
}

static void tail_source_conf_clear(void *conf)
{
    cfw_tail_conf_clear(conf);
}

const struct cfw_input_ops cfw_input_cf_tail_ops = {
    .type = "cloudflare-tail",
    .flags = CFW_INPUT_NEEDS_CLOUDFLARE,
    .schema = &tail_schema,
    .conf_size = sizeof(struct cfw_tail_conf),
    .parse = tail_source_parse,
    .conf_clear = tail_source_conf_clear,
    .create = tail_source_create,
    .start = tail_source_start,
    .stop = tail_source_stop,
    .stopped = tail_source_stopped,
    .save = tail_source_save,
    .restore = tail_source_restore,
    .metrics = tail_source_metrics,
    .destroy = tail_source_destroy,
};
