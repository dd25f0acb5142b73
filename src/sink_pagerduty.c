/*
 * PagerDuty Events API v2: `trigger` on open and reminders, `resolve` on resolve, both with a
 * dedup_key derived from the incident key (stable across restarts and instances). The spooled
 * body has no routing_key: it is added at send time, so the spool holds no secret.
 */
#include "sink_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/log.h"
#include "cfwatchd/sha256.h"

/* Without a Retry-After, a 429 waits this long (PagerDuty suggests 30 s between retries). */
#define PD_429_WAIT_MS 30000
/* Most bytes a built body may take: the routing key is added at send time. */
#define PD_BODY_BUILT_MAX (CFW_PD_BODY_MAX - 1024)
/* Longest routing key taken (PagerDuty's are 32 characters): it fits in the 1024 bytes. */
#define PD_ROUTING_KEY_MAX 256u

/* JSON's whitespace. */
static bool json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * A routing key goes into the request as it is (pd_prepare): printable ASCII without spaces,
 * '"' or '\\', and short enough to fit in what PD_BODY_BUILT_MAX leaves.
 */
static bool routing_key_ok(const char *key)
{
    size_t n = strlen(key);

    if (n == 0 || n > PD_ROUTING_KEY_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            return false;
        }
    }
    return true;
}

struct pd_priv {
    char *routing_key;
    char *client_url;
};

static void pd_free(struct cfw_sink *s)
{
    struct pd_priv *p = s->priv;

    if (p != NULL) {
        if (p->routing_key != NULL) {
            memset(p->routing_key, 0, strlen(p->routing_key));
        }
        free(p->routing_key);
        free(p->client_url);
        free(p);
    }
    s->priv = NULL;
}

/* Prepares the priv the rows fill; a rate_limit is said to be ignored. */
static int pd_parse(struct cfw_sink *s, const struct cfw_node *map, const char *path,
                    struct cfw_diag *diag)
{
    (void)diag;
    s->priv = cfw_xcalloc(1, sizeof(struct pd_priv));
    if (cfw_node_get(map, "rate_limit") != NULL) {
        /* accepted (older configurations have it) but not applied: said, not refused */
        const struct cfw_node *rl = cfw_node_get(map, "rate_limit");
        cfw_log_warn("%s:%d:%d: %s.rate_limit is ignored: a pagerduty sink sends every "
                     "transition on its own, paced by PagerDuty's 429 answers (a digest would "
                     "raise an alert that nothing resolves)",
                     rl->file != NULL ? rl->file : "?", rl->line, rl->col, path);
    }
    s->route.burst = 0;
    return 0;
}

/* routing_key or routing_key_file: required, a credential of the sink. */
static int read_routing_key(const struct cfw_schema_key *k, const struct cfw_node *map,
                            const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    struct pd_priv *p = s->priv;
    int rc = cfw_node_secret(map, k->name, "routing_key_file", path, &p->routing_key, diag);

    if (rc == 0) {
        cfw_diag_add(diag, map, path, "a pagerduty sink needs routing_key or routing_key_file");
        return -1;
    }
    if (rc != 1) {
        return rc;
    }
    cfw_sink_add_secret(s, p->routing_key);
    if (!routing_key_ok(p->routing_key)) {
        const struct cfw_node *at = cfw_node_get(map, k->name);
        /* the error names the key, never its value */
        cfw_diag_add(diag, at != NULL ? at : cfw_node_get(map, "routing_key_file"), path,
                     "routing_key must be 1 to %u characters of printable ASCII, without "
                     "spaces, quotes or backslashes (PagerDuty's integration keys are 32)",
                     PD_ROUTING_KEY_MAX);
        return -1;
    }
    return 1;
}

static int read_region(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                       void *conf, struct cfw_diag *diag)
{
    const char *region = NULL;
    int rc = cfw_node_str(map, k->name, path, &region, diag);

    (void)conf;
    if (rc == 1 && strcmp(region, "us") != 0 && strcmp(region, "eu") != 0) {
        cfw_diag_add(diag, cfw_node_get(map, k->name), path,
                     "unknown region '%.20s' (valid: us, eu)", region);
        return -1;
    }
    return rc;
}

/* url: the Events API URL; without it, the region's. */
static int read_url(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                    void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    const struct cfw_node *region = cfw_node_get(map, "region");
    const char *url = NULL;
    int rc = cfw_node_str(map, k->name, path, &url, diag);

    if (rc != 1) {
        bool eu =
            region != NULL && region->type == CFW_NODE_SCALAR && strcmp(region->value, "eu") == 0;
        cfw_sink_add_url(s, eu ? CFW_PD_URL_EU : CFW_PD_URL_US, false);
        return rc;
    }
    if (!cfw_sink_url_ok(url)) {
        cfw_diag_add(diag, cfw_node_get(map, k->name), path,
                     "url must start with http:// or https://");
        return -1;
    }
    cfw_sink_add_url(s, url, false);
    return 1;
}

static int read_client_url(const struct cfw_schema_key *k, const struct cfw_node *map,
                           const char *path, void *conf, struct cfw_diag *diag)
{
    struct pd_priv *p = ((struct cfw_sink *)conf)->priv;
    const char *client_url = NULL;
    int rc = cfw_node_str(map, k->name, path, &client_url, diag);

    if (rc == 1) {
        p->client_url = cfw_xstrdup(client_url);
    }
    return rc;
}

static const struct cfw_schema_key pd_keys[] = {
    {.name = "routing_key",
     .read = read_routing_key,
     .help = "the integration key, a secret (or routing_key_file; one of them is required)"},
    {.name = "routing_key_file", .help = "a file holding routing_key (read with routing_key)"},
    {.name = "region", .read = read_region, .help = "us (default) or eu"},
    {.name = "url", .read = read_url, .help = "the Events API URL, instead of the region's"},
    {.name = "client_url",
     .read = read_client_url,
     .help = "a link shown with the alert in PagerDuty"},
    {0},
};

static const struct cfw_schema pd_schema = {pd_keys, NULL};

static const char *pd_severity(enum cfw_severity sev)
{
    switch (sev) {
    case CFW_SEV_CRITICAL:
        return "critical";
    case CFW_SEV_ERROR:
        return "error";
    case CFW_SEV_WARNING:
        return "warning";
    case CFW_SEV_INFO:
        return "info";
    }
    return "error";
}

static void set_client(const struct cfw_sink *s, json_t *o)
{
    const struct pd_priv *p = s->priv;
    const char *url = p->client_url != NULL ? p->client_url : s->client_url;

    json_object_set_new(o, "client", json_string("cfwatchd"));
    if (url != NULL && url[0] != '\0') {
        json_object_set_new(o, "client_url", json_string(url));
    }
}

static json_t *summary(const char *text)
{
    char *t = cfw_sink_truncate(text, CFW_PD_SUMMARY_MAX, "...");
    json_t *o = json_string(t);

    free(t);
    return o;
}

static json_t *trigger(const struct cfw_sink *s, const struct cfw_incident *inc,
                       const char *transition, bool test, int64_t now)
{
    json_t *o = json_object();
    json_t *pl = json_object();
    json_t *cd = json_object();
    json_t *f = json_object();
    char dedup[CFW_PD_DEDUP_MAX + 1];
    char ts[40];
    char *sum;

    if (test) {
        snprintf(dedup, sizeof(dedup), "cfwatchd-test:%s:%" PRId64, s->name, now);
    } else {
        cfw_sink_dedup_key(inc->key != NULL ? inc->key : "", dedup, sizeof(dedup));
    }
    if (cfw_sink_field(inc, "script")[0] != '\0') {
        sum = cfw_xasprintf("%s[%s] %s (script %s)", test ? "[TEST] " : "",
                            cfw_severity_name(inc->severity),
                            inc->title != NULL ? inc->title : "", cfw_sink_field(inc, "script"));
    } else {
        /* no script named (a deploy log without one): no empty "(script )" */
        sum = cfw_xasprintf("%s[%s] %s", test ? "[TEST] " : "", cfw_severity_name(inc->severity),
                            inc->title != NULL ? inc->title : "");
    }
    for (size_t i = 0; i < inc->fields.n; i++) {
        json_object_set_new(f, inc->fields.v[i].key, json_string(inc->fields.v[i].value));
    }
    json_object_set_new(cd, "incident_key", json_string(inc->key != NULL ? inc->key : ""));
    json_object_set_new(cd, "transition", json_string(transition));
    json_object_set_new(cd, "rule", json_string(inc->rule != NULL ? inc->rule : ""));
    json_object_set_new(cd, "hint", json_string(inc->hint != NULL ? inc->hint : ""));
    json_object_set_new(cd, "count", json_integer((json_int_t)inc->count));
    /* where it was seen, for the person who gets the page */
    if (inc->first.input != NULL && inc->first.input[0] != '\0') {
        char *where = inc->first.line > 0 ? cfw_xasprintf("%s:%llu", inc->first.input,
                                                          (unsigned long long)inc->first.line)
                                          : cfw_xstrdup(inc->first.input);
        json_object_set_new(cd, "where", json_string(where));
        free(where);
    }
    {
        static const char *const where_fields[] = {"source", "version", "url",
                                                   "ray",    "deployment", NULL};
        for (size_t k = 0; where_fields[k] != NULL; k++) {
            if (cfw_sink_field(inc, where_fields[k])[0] != '\0') {
                json_object_set_new(cd, where_fields[k],
                                    json_string(cfw_sink_field(inc, where_fields[k])));
            }
        }
    }
    cfw_sink_time(inc->first.wall_ms, ts, sizeof(ts));
    json_object_set_new(cd, "first_seen", json_string(ts));
    cfw_sink_time(inc->last.wall_ms, ts, sizeof(ts));
    json_object_set_new(cd, "last_seen", json_string(ts));
    json_object_set_new(cd, "fields", f);
    json_object_set_new(cd, "sample", json_string(inc->sample != NULL ? inc->sample : ""));
    json_object_set_new(pl, "summary", summary(sum));
    json_object_set_new(pl, "source", json_string(s->host != NULL ? s->host : "cfwatchd"));
    json_object_set_new(pl, "severity", json_string(pd_severity(inc->severity)));
    cfw_sink_time(inc->opened_wall_ms > 0 ? inc->opened_wall_ms : now, ts, sizeof(ts));
    json_object_set_new(pl, "timestamp", json_string(ts));
    if (cfw_sink_field(inc, "script")[0] != '\0') {
        json_object_set_new(pl, "component", json_string(cfw_sink_field(inc, "script")));
    }
    json_object_set_new(pl, "group", json_string(inc->pack != NULL ? inc->pack : "cfwatchd"));
    json_object_set_new(pl, "class", json_string(inc->rule != NULL ? inc->rule : ""));
    json_object_set_new(pl, "custom_details", cd);
    json_object_set_new(o, "event_action", json_string("trigger"));
    json_object_set_new(o, "dedup_key", json_string(dedup));
    json_object_set_new(o, "payload", pl);
    set_client(s, o);
    free(sum);
    return o;
}

/* A dedup key, as cfw_sink_dedup_key writes it. */
typedef char pd_dedup_key[CFW_PD_DEDUP_MAX + 1];

/*
 * One line of a digest's custom_details.items (a string that is not UTF-8 is left out); arg:
 * the items' dedup keys.
 */
static json_t *digest_item(const struct cfw_notification *n, size_t i, const void *arg)
{
    const pd_dedup_key *keys = arg;
    const struct cfw_digest_item *di = &n->items[i];
    const struct cfw_incident *inc = &di->inc;
    json_t *it = json_object();

    json_object_set_new(it, "transition", json_string(cfw_transition_name(di->transition)));
    json_object_set_new(it, "dedup_key", json_string(keys[i]));
    json_object_set_new(it, "severity", json_string(cfw_severity_name(inc->severity)));
    json_object_set_new(it, "title", json_string(inc->title != NULL ? inc->title : ""));
    json_object_set_new(it, "script", json_string(cfw_sink_field(inc, "script")));
    return it;
}

/*
 * The opens and reminders of a digest as one trigger. custom_details.items lists them in order
 * while the body stays within PD_BODY_BUILT_MAX: long titles times up to CFW_ROUTER_DIGEST_MAX
 * items can pass PagerDuty's limit, and PagerDuty would refuse the whole digest. What does not
 * fit is counted in custom_details.unlisted.
 */
static json_t *digest(const struct cfw_sink *s, const struct cfw_notification *n)
{
    json_t *o = json_object();
    json_t *pl = json_object();
    json_t *items = json_array();
    pd_dedup_key *keys = cfw_xcalloc(n->n_items > 0 ? n->n_items : 1, sizeof(*keys));
    json_t *cd;
    struct cfw_sha256 h;
    uint8_t d[CFW_SHA256_LEN];
    char hex[CFW_SHA256_HEX_LEN];
    char ts[40];
    enum cfw_severity worst = CFW_SEV_INFO;
    struct cfw_buf sum;
    char *dedup;
    size_t listed;

    cfw_buf_init(&sum, CFW_BUF_MAX_BUILT);
    cfw_sha256_init(&h);
    cfw_buf_printf(&sum, "%zu cfwatchd notifications held back by the rate limit:",
                   n->n_items + (size_t)n->n_omitted);
    for (size_t i = 0; i < n->n_items; i++) {
        const struct cfw_incident *inc = &n->items[i].inc;

        cfw_sink_dedup_key(inc->key != NULL ? inc->key : "", keys[i], sizeof(keys[i]));
        if (inc->severity > worst) {
            worst = inc->severity;
        }
        cfw_sha256_update(&h, keys[i], strlen(keys[i]) + 1);
        if (sum.len < CFW_PD_SUMMARY_MAX + 8) {
            cfw_buf_printf(&sum, " %s;", inc->title != NULL ? inc->title : "");
        }
    }
    cfw_sha256_update(&h, &n->now_wall_ms, sizeof(n->now_wall_ms));
    cfw_sha256_final(&h, d);
    cfw_hex_encode(d, 12, hex);
    dedup = cfw_xasprintf("cfwatchd-digest:%s", hex);
    json_object_set_new(pl, "summary", summary(sum.data != NULL ? sum.data : ""));
    json_object_set_new(pl, "source", json_string(s->host != NULL ? s->host : "cfwatchd"));
    json_object_set_new(pl, "severity", json_string(pd_severity(worst)));
    cfw_sink_time(n->now_wall_ms, ts, sizeof(ts));
    json_object_set_new(pl, "timestamp", json_string(ts));
    json_object_set_new(pl, "class", json_string("cfwatchd-digest"));
    cd = json_pack("{s:O, s:I, s:I}", "items", items, "omitted", (json_int_t)n->n_omitted,
                   "unlisted", (json_int_t)n->n_items);
    json_object_set_new(pl, "custom_details", cd);
    json_object_set_new(o, "event_action", json_string("trigger"));
    json_object_set_new(o, "dedup_key", json_string(dedup));
    json_object_set_new(o, "payload", pl);
    set_client(s, o);
    free(dedup);
    cfw_buf_free(&sum);

    /* "unlisted" is as wide as it can get while the items are measured */
    listed = cfw_sink_list_within(o, items, n, digest_item, keys, PD_BODY_BUILT_MAX);
    json_object_set_new(cd, "unlisted", json_integer((json_int_t)(n->n_items - listed)));
    json_decref(items);
    free(keys);
    return o;
}

static json_t *pd_build(const struct cfw_sink *s, const struct cfw_notification *n)
{
    json_t *o;

    if (n->kind == CFW_NOTIFY_DIGEST) {
        return digest(s, n);
    }
    if (n->kind == CFW_NOTIFY_TRANSITION &&
        (n->transition == CFW_TRANSITION_RESOLVE || n->transition == CFW_TRANSITION_ACK)) {
        /* resolve and acknowledge name the alert by its dedup_key and carry nothing else */
        char dedup[CFW_PD_DEDUP_MAX + 1];
        cfw_sink_dedup_key(n->inc->key != NULL ? n->inc->key : "", dedup, sizeof(dedup));
        o = json_pack("{s:s, s:s}", "event_action",
                      n->transition == CFW_TRANSITION_ACK ? "acknowledge" : "resolve", "dedup_key",
                      dedup);
        set_client(s, o);
        return o;
    }
    o = trigger(s, n->inc, cfw_sink_event_name(n), n->kind == CFW_NOTIFY_TEST, n->now_wall_ms);
    /* PagerDuty refuses bodies over 512 KB: drop the bulky details first and say so */
    if (cfw_sink_json_len(o) > PD_BODY_BUILT_MAX) {
        json_t *cd = json_object_get(json_object_get(o, "payload"), "custom_details");
        json_object_set_new(cd, "sample", json_string("(dropped: over the PagerDuty size limit)"));
        json_object_set_new(cd, "fields", json_object());
        json_object_set_new(cd, "truncated", json_true());
    }
    return o;
}

/*
 * The request: the spooled event (a compact JSON object, as pd_build made it) with the routing
 * key put in as its last member, without parsing and re-encoding the event: the same bytes as
 * setting the key on the parsed object would give, for a fraction of the work on large digests.
 * A spooled body that is not an object ({...}) fails; one that is not JSON inside its braces
 * gets PagerDuty's 400 and is dead-lettered with its answer.
 */
static int pd_prepare(const struct cfw_sink *s, unsigned endpoint, const char *body, size_t len,
                      int64_t now_ms, struct cfw_sink_request *rq, struct cfw_err *err)
{
    const struct pd_priv *p = s->priv;
    struct cfw_buf b;
    size_t start = 0;
    size_t end = len;
    size_t inner;

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    (void)now_ms;
    while (start < end && json_space(body[start])) {
        start++;
    }
    while (end > start && json_space(body[end - 1])) {
        end--;
    }
    if (end - start < 2 || body[start] != '{' || body[end - 1] != '}') {
        cfw_err_set(err, "spooled PagerDuty event is not a JSON object");
        return -1;
    }
    inner = start + 1;
    while (inner < end - 1 && json_space(body[inner])) {
        inner++;
    }
    if (inner < end - 1) {
        cfw_buf_append(&b, body + start, end - 1 - start);
        cfw_buf_putc(&b, ',');
    } else {
        cfw_buf_putc(&b, '{'); /* an empty object: the key alone */
    }
    /* the routing key is the credential: it exists only in memory and in this request */
    cfw_buf_puts(&b, "\"routing_key\":\"");
    cfw_buf_puts(&b, p->routing_key); /* checked when read: nothing in it needs escaping */
    cfw_buf_puts(&b, "\"}");
    cfw_sink_request_base(s, rq, cfw_xstrdup(s->urls[endpoint]), b.data, b.len);
    return 0;
}

static void pd_classify(const struct cfw_sink *s, const struct cfw_http_response *resp,
                        struct cfw_sink_verdict *v)
{
    cfw_sink_classify_http(s, resp, v);
    if (resp->status == 429 && v->retry_after_ms < 0) {
        v->retry_after_ms = PD_429_WAIT_MS;
    }
}

const struct cfw_sink_ops cfw_sink_pagerduty_ops = {
    .type = "pagerduty",
    .schema = &pd_schema,
    /*
     * No rate limit of its own, so no digests: a digest would raise an alert under a key that
     * nothing resolves while its members' resolves go to keys PagerDuty never saw. PagerDuty
     * paces with 429, which the outbox honours (Retry-After, else PD_429_WAIT_MS).
     */
    .burst = 0,
    .per_ms = 500,
    .in_flight = 2,
    .digest_resolves = false,
    .parse = pd_parse,
    .build = pd_build,
    .prepare = pd_prepare,
    .classify = pd_classify,
    .free_priv = pd_free,
};
