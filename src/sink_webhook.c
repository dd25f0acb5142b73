/*
 * Generic webhook: a documented, versioned JSON body (schema version 1, see docs/sinks.md),
 * an optional HMAC-SHA256 signature over "<timestamp>.<body>" in X-Cfwatchd-Signature with
 * the timestamp in X-Cfwatchd-Timestamp (signed at each attempt, so a receiver can bound the
 * age of a request), and custom headers. Header values may be ${ENV} references; those, and the
 * values of credential headers (by name), are registered secrets, and every other value is
 * hidden from this receiver's answers. A digest lists its items while the body stays within
 * max_body and counts the rest (a digest of CFW_ROUTER_DIGEST_MAX whole incidents runs to
 * megabytes).
 */
#include "sink_impl.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfwatchd/sha256.h"

struct wh_priv {
    char *secret;
    size_t secret_len;
    char **headers;    /* "Name: value", NULL-terminated */
    uint64_t max_body; /* bytes a digest's body may take */
};

static void wh_free(struct cfw_sink *s)
{
    struct wh_priv *p = s->priv;

    if (p != NULL) {
        if (p->secret != NULL) {
            memset(p->secret, 0, p->secret_len);
        }
        free(p->secret);
        for (size_t i = 0; p->headers != NULL && p->headers[i] != NULL; i++) {
            memset(p->headers[i], 0, strlen(p->headers[i]));
            free(p->headers[i]);
        }
        free(p->headers);
        free(p);
    }
    s->priv = NULL;
}

static bool header_name_ok(const char *n)
{
    if (*n == '\0') {
        return false;
    }
    for (; *n != '\0'; n++) {
        if (!isalnum((unsigned char)*n) && strchr("!#$%&'*+-.^_`|~", *n) == NULL) {
            return false;
        }
    }
    return true;
}

/* Headers that carry credentials by their name (Authorization, X-Api-Key, Cookie, ...). */
static bool credential_header(const char *name)
{
    static const char *const words[] = {"auth",     "token",      "key",    "secret", "signature",
                                        "password", "credential", "cookie", "session"};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasestr(name, words[i]) != NULL) {
            return true;
        }
    }
    return false;
}

static void parse_headers(struct cfw_sink *s, struct wh_priv *p, const struct cfw_node *map,
                          const char *path, struct cfw_diag *diag)
{
    const struct cfw_node *h = cfw_node_get(map, "headers");
    char *hpath;
    size_t n = 0;

    if (h == NULL) {
        return;
    }
    hpath = cfw_xasprintf("%s.headers", path);
    if (h->type != CFW_NODE_MAP) {
        cfw_diag_add(diag, h, hpath, "expected a map of header names to values");
        free(hpath);
        return;
    }
    p->headers = cfw_xcalloc(h->n + 1, sizeof(*p->headers));
    for (size_t i = 0; i < h->n; i++) {
        char *value = NULL;
        const char *name = h->keys[i];
        if (!header_name_ok(name)) {
            cfw_diag_add(diag, h->keynodes[i], hpath, "invalid header name '%.60s'", name);
            continue;
        }
        if (strcasecmp(name, "Content-Type") == 0 ||
            strcasecmp(name, CFW_WEBHOOK_SIG_HEADER) == 0 ||
            strcasecmp(name, CFW_WEBHOOK_TS_HEADER) == 0 || strcasecmp(name, "Host") == 0 ||
            strcasecmp(name, "Content-Length") == 0) {
            cfw_diag_add(diag, h->keynodes[i], hpath, "header %s is set by cfwatchd", name);
            continue;
        }
        /* a value may be ${ENV}; it is handled like a secret either way */
        if (cfw_node_secret(h, name, NULL, hpath, &value, diag) != 1) {
            continue;
        }
        if (strpbrk(value, "\r\n") != NULL) {
            cfw_diag_add(diag, h->items[i], hpath, "header %s has a line break in its value", name);
            free(value);
            continue;
        }
        p->headers[n] = cfw_xasprintf("%s: %s", name, value);
        /*
         * A credential header and any value from ${ENV} are scrubbed everywhere (held while the
         * sink lives), with the value's token and a Basic pair; a plain value such as
         * "X-Team: ops" only from this receiver's answers, where it would be quoted back.
         */
        if (credential_header(name) || strncmp(h->items[i]->value, "${", 2) == 0) {
            cfw_sink_add_header(s, p->headers[n]);
        } else {
            cfw_sink_add_private(s, value);
        }
        n++;
        memset(value, 0, strlen(value));
        free(value);
    }
    free(hpath);
}

/* Prepares the priv the rows fill. */
static int wh_parse(struct cfw_sink *s, const struct cfw_node *map, const char *path,
                    struct cfw_diag *diag)
{
    struct wh_priv *p = cfw_xcalloc(1, sizeof(*p));

    (void)map;
    (void)path;
    (void)diag;
    s->priv = p;
    return 0;
}

/* secret or secret_file: the HMAC key, a credential of the sink. */
static int read_secret(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                       void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    struct wh_priv *p = s->priv;
    int rc = cfw_node_secret(map, k->name, "secret_file", path, &p->secret, diag);

    if (rc == 1) {
        p->secret_len = strlen(p->secret);
        cfw_sink_add_secret(s, p->secret);
    }
    return rc;
}

static int read_headers(const struct cfw_schema_key *k, const struct cfw_node *map,
                        const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    size_t before = diag->n;

    if (cfw_node_get(map, k->name) == NULL) {
        return 0;
    }
    parse_headers(s, s->priv, map, path, diag);
    return diag->n > before ? -1 : 1;
}

/* max_body, in the priv (where cfw_schema_defaults cannot reach): the row's default if absent. */
static int read_max_body(const struct cfw_schema_key *k, const struct cfw_node *map,
                         const char *path, void *conf, struct cfw_diag *diag)
{
    struct wh_priv *p = ((struct cfw_sink *)conf)->priv;

    p->max_body = (uint64_t)k->def;
    return cfw_node_u64(map, k->name, path, k->min, k->max, &p->max_body, diag);
}

static const struct cfw_schema_key wh_keys[] = {
    {.name = "url",
     .read = cfw_sink_read_required_url,
     .help = "the receiver's URL, a secret (or url_file; one of them is required)"},
    {.name = "url_file", .help = "a file holding url (read with url)"},
    {.name = "secret",
     .read = read_secret,
     .help = "the HMAC key the body is signed with, a secret (or secret_file)"},
    {.name = "secret_file", .help = "a file holding secret (read with secret)"},
    {.name = "headers",
     .read = read_headers,
     .help = "extra request headers (their values are secrets and may be ${NAME})"},
    {.name = "max_body",
     .def = CFW_WEBHOOK_BODY_DEFAULT,
     .min = CFW_WEBHOOK_BODY_MIN,
     .max = CFW_WEBHOOK_BODY_LIMIT,
     .read = read_max_body,
     .help = "the largest body of a digest (default 1 MiB, 4096 to 256 MiB)"},
    {0},
};

static const struct cfw_schema wh_schema = {wh_keys, NULL};

static json_t *envelope(const struct cfw_sink *s, const struct cfw_notification *n)
{
    json_t *o = json_object();
    char ts[40];
    char hex[CFW_SINK_ID_LEN + 1];

    /* the same for a retry (it is spooled) and for a re-send after a crash: receivers dedupe */
    cfw_sink_notification_id(s, n, hex);
    cfw_sink_time(n->now_wall_ms, ts, sizeof(ts));
    json_object_set_new(o, "version", json_integer(CFW_WEBHOOK_SCHEMA_VERSION));
    json_object_set_new(o, "event", json_string(cfw_sink_event_name(n)));
    json_object_set_new(o, "id", json_string(hex));
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "test", json_boolean(n->kind == CFW_NOTIFY_TEST));
    json_object_set_new(o, "source",
                        json_pack("{s:s, s:s, s:s, s:s}", "program", "cfwatchd", "version",
                                  CFW_VERSION, "host", s->host != NULL ? s->host : "", "sink",
                                  s->name));
    return o;
}

/* One entry of a digest's items: the transition, when it happened, the incident. */
static json_t *digest_item(const struct cfw_notification *n, size_t i, const void *arg)
{
    char ts[40];

    (void)arg;
    cfw_sink_time(n->items[i].wall_ms, ts, sizeof(ts));
    return json_pack("{s:s, s:s, s:o}", "event", cfw_transition_name(n->items[i].transition),
                     "time", ts, "incident", cfw_sink_incident_json(&n->items[i].inc));
}

static json_t *wh_build(const struct cfw_sink *s, const struct cfw_notification *n)
{
    const struct wh_priv *p = s->priv;
    json_t *o = envelope(s, n);

    if (n->kind == CFW_NOTIFY_DIGEST) {
        json_t *items = json_array();
        size_t listed;

        json_object_set(o, "items", items);
        json_object_set_new(o, "omitted", json_integer((json_int_t)n->n_omitted));
        /* "unlisted" is as wide as it can get while the items are measured */
        json_object_set_new(o, "unlisted", json_integer((json_int_t)n->n_items));
        listed = cfw_sink_list_within(o, items, n, digest_item, NULL, (size_t)p->max_body);
        json_object_set_new(o, "unlisted", json_integer((json_int_t)(n->n_items - listed)));
        json_decref(items);
    } else {
        json_object_set_new(o, "incident", cfw_sink_incident_json(n->inc));
    }
    return o;
}

static int wh_prepare(const struct cfw_sink *s, unsigned endpoint, const char *body, size_t len,
                      int64_t now_ms, struct cfw_sink_request *rq, struct cfw_err *err)
{
    const struct wh_priv *p = s->priv;

    (void)err;
    cfw_sink_request_base(s, rq, cfw_xstrdup(s->urls[endpoint]), cfw_xstrndup(body, len), len);
    if (p->secret != NULL) {
        char sig[CFW_SHA256_HEX_LEN];
        char *line;
        int64_t ts = now_ms / 1000;
        cfw_webhook_signature(p->secret, p->secret_len, ts, body, len, sig);
        line = cfw_xasprintf("%s: %" PRId64, CFW_WEBHOOK_TS_HEADER, ts);
        cfw_sink_request_header(rq, line);
        free(line);
        line = cfw_xasprintf("%s: v1=%s", CFW_WEBHOOK_SIG_HEADER, sig);
        cfw_sink_request_header(rq, line);
        free(line);
    }
    for (size_t i = 0; p->headers != NULL && p->headers[i] != NULL; i++) {
        cfw_sink_request_header(rq, p->headers[i]);
    }
    return 0;
}

const struct cfw_sink_ops cfw_sink_webhook_ops = {
    .type = "webhook",
    .schema = &wh_schema,
    .burst = 20,
    .per_ms = 200,
    .in_flight = 4,
    .digest_resolves = true,
    .parse = wh_parse,
    .build = wh_build,
    .prepare = wh_prepare,
    .free_priv = wh_free,
};
