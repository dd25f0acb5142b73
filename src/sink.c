/* Sink configuration, the function-table dispatch, and helpers the payload builders share. */
#include "sink_impl.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfwatchd/log.h"
#include "cfwatchd/schema.h"
#include "cfwatchd/sha256.h"

struct cfw_sinks {
    struct cfw_sink **v;
    size_t n;
    char *host;
    char *client_url;
};

static const struct cfw_sink_ops *const all_ops[] = {
    &cfw_sink_slack_ops,        &cfw_sink_pagerduty_ops, &cfw_sink_webhook_ops,
    &cfw_sink_alertmanager_ops, &cfw_sink_stdout_ops,    NULL,
};

/* ---- helpers shared by the sinks ---- */

const char *cfw_sink_field(const struct cfw_incident *inc, const char *name)
{
    const char *v = cfw_fields_get(&inc->fields, name);

    return v != NULL ? v : "";
}

char *cfw_sink_truncate(const char *s, size_t max, const char *marker)
{
    size_t len = strlen(s);
    size_t ml = strlen(marker);
    size_t keep;
    char *out;

    if (len <= max) {
        return cfw_xstrdup(s);
    }
    keep = cfw_utf8_prefix(s, len, max > ml ? max - ml : 0);
    out = cfw_xmalloc(keep + ml + 1);
    memcpy(out, s, keep);
    memcpy(out + keep, marker, ml + 1);
    return out;
}

void cfw_sink_time(int64_t ms, char *out, size_t outlen)
{
    if (ms <= 0) {
        snprintf(out, outlen, "%s", "");
        return;
    }
    cfw_format_time_ms(ms, out, outlen);
}

void cfw_sink_duration(int64_t ms, char *out, size_t outlen)
{
    int64_t s = ms / 1000;

    if (s < 0) {
        s = 0;
    }
    if (s >= 86400) {
        snprintf(out, outlen, "%" PRId64 "d%" PRId64 "h", s / 86400, (s % 86400) / 3600);
    } else if (s >= 3600) {
        snprintf(out, outlen, "%" PRId64 "h%" PRId64 "m", s / 3600, (s % 3600) / 60);
    } else if (s >= 60) {
        snprintf(out, outlen, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    } else {
        snprintf(out, outlen, "%" PRId64 "s", s);
    }
}

const char *cfw_sink_event_name(const struct cfw_notification *n)
{
    if (n->kind == CFW_NOTIFY_DIGEST) {
        return "digest";
    }
    if (n->kind == CFW_NOTIFY_TEST) {
        return "test";
    }
    return cfw_transition_name(n->transition);
}

const char *cfw_sink_severity_label(enum cfw_severity sev)
{
    switch (sev) {
    case CFW_SEV_CRITICAL:
        return "CRITICAL";
    case CFW_SEV_ERROR:
        return "ERROR";
    case CFW_SEV_WARNING:
        return "WARNING";
    case CFW_SEV_INFO:
        return "INFO";
    }
    return "UNKNOWN";
}

static json_t *str_or_null(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static json_t *time_or_null(int64_t ms)
{
    char t[40];

    if (ms <= 0) {
        return json_null();
    }
    cfw_format_time_ms(ms, t, sizeof(t));
    return json_string(t);
}

static json_t *position_json(const struct cfw_position *p)
{
    json_t *o = json_object();

    json_object_set_new(o, "input", str_or_null(p->input));
    json_object_set_new(o, "line", json_integer((json_int_t)p->line));
    json_object_set_new(o, "seen_at", time_or_null(p->wall_ms));
    return o;
}

json_t *cfw_sink_incident_json(const struct cfw_incident *inc)
{
    json_t *o = json_object();
    json_t *f = json_object();

    for (size_t i = 0; i < inc->fields.n; i++) {
        json_object_set_new(f, inc->fields.v[i].key, json_string(inc->fields.v[i].value));
    }
    json_object_set_new(o, "key", str_or_null(inc->key));
    json_object_set_new(o, "rule", str_or_null(inc->rule));
    json_object_set_new(o, "pack", str_or_null(inc->pack));
    json_object_set_new(o, "severity", json_string(cfw_severity_name(inc->severity)));
    json_object_set_new(o, "title", str_or_null(inc->title));
    json_object_set_new(o, "hint", str_or_null(inc->hint));
    json_object_set_new(o, "script", json_string(cfw_sink_field(inc, "script")));
    json_object_set_new(o, "module", json_string(cfw_sink_field(inc, "module")));
    json_object_set_new(o, "fields", f);
    json_object_set_new(o, "sample", str_or_null(inc->sample));
    json_object_set_new(o, "count", json_integer((json_int_t)inc->count));
    json_object_set_new(o, "first_seen", time_or_null(inc->first.wall_ms));
    json_object_set_new(o, "last_seen", time_or_null(inc->last.wall_ms));
    json_object_set_new(o, "opened_at", time_or_null(inc->opened_wall_ms));
    json_object_set_new(o, "opening", json_integer((json_int_t)inc->opening));
    json_object_set_new(o, "resolved_at", time_or_null(inc->resolved_wall_ms));
    json_object_set_new(o, "resolved_by", str_or_null(inc->resolved_by));
    json_object_set_new(o, "acked_by", str_or_null(inc->acked_by));
    json_object_set_new(o, "first_position", position_json(&inc->first));
    json_object_set_new(o, "last_position", position_json(&inc->last));
    return o;
}

size_t cfw_sink_json_len(const json_t *v)
{
    /* measured, not written: jansson counts what it would write to a buffer of size 0 */
    size_t n = v != NULL ? json_dumpb(v, NULL, 0, JSON_COMPACT) : 0;

    return n > 0 ? n : SIZE_MAX;
}

size_t cfw_sink_list_within(const json_t *body, json_t *list, const struct cfw_notification *n,
                            cfw_sink_item_fn *item, const void *arg, size_t max)
{
    size_t used = cfw_sink_json_len(body);
    size_t listed = 0;

    for (; listed < n->n_items && used <= max; listed++) {
        json_t *it = item(n, listed, arg);
        size_t len = cfw_sink_json_len(it);

        len = len < SIZE_MAX ? len + 1 : len; /* + the comma */
        if (len > max - used) {
            json_decref(it);
            break;
        }
        used += len;
        json_array_append_new(list, it);
    }
    return listed;
}

static void quote_answer(const struct cfw_sink *s, const char *body, size_t len, char *out,
                         size_t outlen)
{
    char *copy = cfw_xstrndup(body, len);
    char *clean = cfw_sink_scrub(s, copy);

    cfw_log_escape(clean, strlen(clean), CFW_SINK_ANSWER_MAX, out, outlen);
    free(clean);
    free(copy);
}

static void CFW_PRINTF(2, 3) set_reason(struct cfw_sink_verdict *v, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
}

void cfw_sink_classify_http(const struct cfw_sink *s, const struct cfw_http_response *resp,
                            struct cfw_sink_verdict *v)
{
    char answer[CFW_SINK_ANSWER_MAX * 4 + 8];
    long st = resp->status;

    v->retry_after_ms = -1;
    if (st == 0) {
        char *clean = cfw_sink_scrub(s, resp->error != NULL ? resp->error : "no answer");
        v->verdict = CFW_OUTBOX_RETRY;
        set_reason(v, "transport: %s", clean);
        free(clean);
        return;
    }
    quote_answer(s, resp->body, resp->body_len, answer, sizeof(answer));
    if (st >= 200 && st < 300) {
        v->verdict = CFW_OUTBOX_DONE;
        set_reason(v, "HTTP %ld", st);
        return;
    }
    set_reason(v, "HTTP %ld: %s", st, answer[0] != '\0' ? answer : "(empty body)");
    if (st == 429) {
        int64_t j = cfw_sink_json_retry_after(resp->body, resp->body_len);
        v->verdict = CFW_OUTBOX_RETRY;
        v->retry_after_ms = resp->retry_after_ms > j ? resp->retry_after_ms : j;
        return;
    }
    if (st == 408 || st == 425 || st >= 500) {
        v->verdict = CFW_OUTBOX_RETRY;
        if (st == 503 && resp->retry_after_ms >= 0) {
            v->retry_after_ms = resp->retry_after_ms;
        }
        return;
    }
    v->verdict = CFW_OUTBOX_PERMANENT;
}

int64_t cfw_sink_json_retry_after(const char *body, size_t len)
{
    json_t *o;
    json_t *ra;
    int64_t ms = -1;

    if (body == NULL || len == 0 || body[0] != '{') {
        return -1;
    }
    o = json_loadb(body, len, 0, NULL);
    if (o == NULL) {
        return -1;
    }
    ra = json_object_get(o, "retry_after");
    if (json_is_number(ra) && json_number_value(ra) >= 0) {
        double secs = json_number_value(ra);
        if (secs > (double)CFW_HTTP_RETRY_AFTER_MAX_MS / 1000.0) {
            secs = (double)CFW_HTTP_RETRY_AFTER_MAX_MS / 1000.0;
        }
        ms = (int64_t)(secs * 1000.0 + 0.999);
    }
    json_decref(o);
    return ms;
}

void cfw_sink_request_header(struct cfw_sink_request *rq, const char *line)
{
    size_t n = 0;

    while (rq->headers != NULL && rq->headers[n] != NULL) {
        n++;
    }
    rq->headers = cfw_xrealloc(rq->headers, (n + 2) * sizeof(*rq->headers));
    rq->headers[n] = cfw_xstrdup(line);
    rq->headers[n + 1] = NULL;
}

void cfw_sink_request_base(const struct cfw_sink *s, struct cfw_sink_request *rq, char *url,
                           char *body, size_t body_len)
{
    rq->url = url;
    rq->body = body;
    rq->body_len = body_len;
    rq->timeout_ms = s->timeout_ms;
    rq->connect_timeout_ms = s->connect_timeout_ms;
    rq->ca_file = s->ca_file;
    cfw_sink_request_header(rq, "Content-Type: application/json");
}

void cfw_sink_request_clear(struct cfw_sink_request *rq)
{
    if (rq == NULL) {
        return;
    }
    for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
        free(rq->headers[i]);
    }
    free(rq->headers);
    free(rq->url);
    free(rq->body);
    memset(rq, 0, sizeof(*rq));
}

/* ---- URLs and secrets ---- */

void cfw_url_redact(const char *url, bool keep_path, char *out, size_t outlen)
{
    struct cfw_buf b;
    const char *p = strstr(url, "://");
    const char *host;
    const char *at;
    const char *path;
    const char *q;
    const char *last;
    char *s;

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    if (p == NULL) {
        snprintf(out, outlen, "%s", "***");
        return;
    }
    host = p + 3;
    path = host + strcspn(host, "/?#");
    at = memchr(host, '@', (size_t)(path - host));
    cfw_buf_append(&b, url, (size_t)(host - url));
    if (at != NULL) {
        cfw_buf_puts(&b, "***@");
        host = at + 1;
    }
    cfw_buf_append(&b, host, (size_t)(path - host));
    q = path + strcspn(path, "?#");
    if (keep_path) {
        cfw_buf_append(&b, path, (size_t)(q - path));
    } else if (q > path) {
        /* the last non-empty segment is the token in Slack, Discord and most webhook URLs */
        const char *end = q;
        while (end > path && end[-1] == '/') {
            end--;
        }
        last = end;
        while (last > path && last[-1] != '/') {
            last--;
        }
        if (last < end) {
            cfw_buf_append(&b, path, (size_t)(last - path));
            cfw_buf_puts(&b, "***");
            cfw_buf_append(&b, end, (size_t)(q - end));
        } else {
            cfw_buf_append(&b, path, (size_t)(q - path));
        }
    }
    if (*q == '?') {
        cfw_buf_puts(&b, "?***");
    }
    s = cfw_buf_take(&b);
    snprintf(out, outlen, "%s", s);
    free(s);
}

static struct cfw_secret_hold *sink_hold(struct cfw_sink *s)
{
    if (s->hold == NULL) {
        s->hold = cfw_secret_hold_new();
    }
    return s->hold;
}

void cfw_sink_add_secret(struct cfw_sink *s, const char *secret)
{
    if (secret != NULL) {
        cfw_secret_hold_add(sink_hold(s), secret, strlen(secret));
    }
}

void cfw_sink_add_header(struct cfw_sink *s, const char *line)
{
    cfw_secret_hold_add_header(sink_hold(s), line);
}

void cfw_sink_add_private(struct cfw_sink *s, const char *value)
{
    /* very short strings would mangle unrelated text: they are not worth hiding alone */
    if (value == NULL || strlen(value) < CFW_SECRETS_MIN_LEN) {
        return;
    }
    s->secrets = cfw_xrealloc(s->secrets, (s->n_secrets + 1) * sizeof(*s->secrets));
    s->secrets[s->n_secrets++] = cfw_xstrdup(value);
}

void cfw_sink_add_url(struct cfw_sink *s, const char *url, bool secret)
{
    char shown[1024];

    cfw_url_redact(url, !secret, shown, sizeof(shown));
    s->urls = cfw_xrealloc(s->urls, (s->n_urls + 1) * sizeof(*s->urls));
    s->display = cfw_xrealloc(s->display, (s->n_urls + 1) * sizeof(*s->display));
    s->urls[s->n_urls] = cfw_xstrdup(url);
    s->display[s->n_urls] = cfw_xstrdup(shown);
    s->n_urls++;
    /*
     * What cfw_url_redact hides is registered: user:password@ (and the base64 pair libcurl
     * sends as Authorization: Basic), the query, and for a secret URL the URL, its path and its
     * last segment when they look like a token. The rest of a secret URL's path (".../hook")
     * is hidden from this receiver's answers only.
     */
    cfw_secret_hold_add_url(sink_hold(s), url, secret);
    if (secret) {
        const char *host = strstr(url, "://");
        const char *path = host != NULL ? host + 3 + strcspn(host + 3, "/?#") : url;
        const char *q = path + strcspn(path, "?#");
        const char *end = q;
        const char *last;
        if (*path != '\0') {
            cfw_sink_add_private(s, path);
        }
        while (end > path && end[-1] == '/') {
            end--;
        }
        last = end;
        while (last > path && last[-1] != '/') {
            last--;
        }
        if (end > last) {
            char *seg = cfw_xstrndup(last, (size_t)(end - last));
            cfw_sink_add_private(s, seg);
            free(seg);
        }
        if (*q == '?' && q[1] != '\0') {
            cfw_sink_add_private(s, q + 1);
        }
    }
}

char *cfw_sink_scrub(const struct cfw_sink *s, const char *text)
{
    char *cur = cfw_secrets_scrub(text);

    /* then the sink's private values, longest first so a longer one is replaced whole */
    for (size_t pass = 0; s != NULL && pass < s->n_secrets; pass++) {
        const char *sec = NULL;
        size_t best = 0;
        for (size_t i = 0; i < s->n_secrets; i++) {
            size_t l = strlen(s->secrets[i]);
            size_t rank = 0;
            for (size_t k = 0; k < s->n_secrets; k++) {
                size_t lk = strlen(s->secrets[k]);
                if (lk > l || (lk == l && k < i)) {
                    rank++;
                }
            }
            if (rank == pass) {
                sec = s->secrets[i];
                best = l;
            }
        }
        if (sec == NULL || best == 0) {
            continue;
        }
        for (;;) {
            char *hit = strstr(cur, sec);
            struct cfw_buf b;
            cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
            if (hit == NULL) {
                break;
            }
            cfw_buf_append(&b, cur, (size_t)(hit - cur));
            cfw_buf_puts(&b, CFW_SECRETS_MASK);
            cfw_buf_puts(&b, hit + best);
            free(cur);
            cur = cfw_buf_take(&b);
        }
    }
    return cur;
}

bool cfw_sink_url_ok(const char *url)
{
    const char *host;

    if (strncmp(url, "https://", 8) == 0) {
        host = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        host = url + 7;
    } else {
        return false;
    }
    if (*host == '\0' || *host == '/' || *host == '?') {
        return false;
    }
    for (const char *p = url; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

int cfw_sink_parse_url(struct cfw_sink *s, const struct cfw_node *map, const char *path,
                       struct cfw_diag *diag)
{
    char *url = NULL;
    int rc = cfw_node_secret(map, "url", "url_file", path, &url, diag);

    if (rc != 1) {
        return rc;
    }
    if (!cfw_sink_url_ok(url)) {
        const struct cfw_node *at = cfw_node_get(map, "url");
        cfw_diag_add(diag, at != NULL ? at : cfw_node_get(map, "url_file"), path,
                     "the URL must start with http:// or https:// and have a host (not shown: "
                     "it is a secret)");
        free(url);
        return -1;
    }
    cfw_sink_add_url(s, url, true);
    free(url);
    return 1;
}

/* ---- configuration ---- */

int cfw_sink_read_required_url(const struct cfw_schema_key *k, const struct cfw_node *map,
                               const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    int rc = cfw_sink_parse_url(s, map, path, diag);

    (void)k;
    if (rc == 0) {
        cfw_diag_add(diag, map, path, "a %s sink needs url or url_file", s->ops->type);
        return -1;
    }
    return rc;
}

static void sink_free(struct cfw_sink *s)
{
    if (s == NULL) {
        return;
    }
    if (s->ops != NULL && s->ops->free_priv != NULL) {
        s->ops->free_priv(s);
    }
    for (size_t i = 0; i < s->n_urls; i++) {
        free(s->urls[i]);
        free(s->display[i]);
    }
    free(s->urls);
    free(s->display);
    for (size_t i = 0; i < s->n_secrets; i++) {
        /* wipe before freeing: secrets should not linger in freed heap memory */
        memset(s->secrets[i], 0, strlen(s->secrets[i]));
        free(s->secrets[i]);
    }
    free(s->secrets);
    cfw_secret_hold_free(s->hold);
    cfw_strlist_free(s->route.rules);
    cfw_strlist_free(s->route.exclude_rules);
    cfw_strlist_free(s->route.scripts);
    cfw_strlist_free(s->route.exclude_scripts);
    free(s->ca_file);
    free(s->name);
    free(s);
}

static bool name_ok(const char *n)
{
    size_t len = strlen(n);

    if (len == 0 || len > CFW_SINK_NAME_MAX) {
        return false;
    }
    for (const char *p = n; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.') {
            return false;
        }
    }
    return true;
}

/* ---- the keys every sink has, read by their schema ---- */

#define SINK_KEY(m) offsetof(struct cfw_sink, m)

static int read_min_severity(const struct cfw_schema_key *k, const struct cfw_node *map,
                             const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    const char *sev = NULL;
    int rc = cfw_node_str(map, k->name, path, &sev, diag);

    if (rc == 1 && cfw_severity_parse(sev, &s->route.min_severity) != 0) {
        cfw_diag_add(diag, cfw_node_get(map, k->name), path,
                     "unknown severity '%.40s' (valid: info, warning, error, critical)", sev);
        return -1;
    }
    return rc;
}

static int read_send(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                     void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    char **list = NULL;
    int rc = cfw_node_strlist(map, k->name, path, &list, diag);

    if (rc != 1) {
        return rc;
    }
    s->route.send_open = s->route.send_reminder = s->route.send_resolve = s->route.send_ack = false;
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(list[i], "open") == 0) {
            s->route.send_open = true;
        } else if (strcmp(list[i], "reminder") == 0) {
            s->route.send_reminder = true;
        } else if (strcmp(list[i], "resolve") == 0) {
            s->route.send_resolve = true;
        } else if (strcmp(list[i], "acknowledge") == 0) {
            s->route.send_ack = true;
        } else {
            char *child = cfw_schema_path(k, path);
            cfw_diag_add(diag, cfw_node_get(map, k->name), child,
                         "unknown transition '%.40s' (valid: open, reminder, resolve, "
                         "acknowledge)",
                         list[i]);
            free(child);
            rc = -1;
        }
    }
    cfw_strlist_free(list);
    return rc;
}

static int read_rate(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                     void *conf, struct cfw_diag *diag)
{
    static const char *const keys[] = {"burst", "per", NULL};
    struct cfw_sink *s = conf;
    const struct cfw_node *rl = cfw_node_get(map, k->name);
    size_t before = diag->n;
    char *child;
    uint64_t burst;
    int64_t per;

    if (rl == NULL) {
        return 0;
    }
    child = cfw_schema_path(k, path);
    if (cfw_node_check_keys(rl, child, keys, diag) == 0 && rl->type == CFW_NODE_MAP) {
        if (cfw_node_u64(rl, "burst", child, 0, 100000, &burst, diag) == 1) {
            s->route.burst = (uint32_t)burst;
        }
        if (cfw_node_duration(rl, "per", child, &per, diag) == 1) {
            if (per <= 0) {
                cfw_diag_add(diag, cfw_node_get(rl, "per"), child, "per must be above 0");
            } else {
                s->route.per_ms = per;
            }
        }
    }
    free(child);
    return diag->n > before ? -1 : 1;
}

/* timeout, connect_timeout: above 0 (reported at the sink, as "<key> must be above 0"). */
static int read_timeout(const struct cfw_schema_key *k, const struct cfw_node *map,
                        const char *path, void *conf, struct cfw_diag *diag)
{
    int64_t ms;
    int rc = cfw_node_duration(map, k->name, path, &ms, diag);

    if (rc == 1 && ms <= 0) {
        cfw_diag_add(diag, cfw_node_get(map, k->name), path, "%s must be above 0", k->name);
        return -1;
    }
    if (rc == 1) {
        *(int64_t *)((char *)conf + k->offset) = ms;
    }
    return rc;
}

static int read_ca_file(const struct cfw_schema_key *k, const struct cfw_node *map,
                        const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_sink *s = conf;
    const char *ca = NULL;
    int rc = cfw_node_str(map, k->name, path, &ca, diag);

    if (rc == 1 && access(ca, R_OK) != 0) {
        cfw_diag_add(diag, cfw_node_get(map, k->name), path, "ca_file %.200s cannot be read", ca);
        return -1;
    }
    if (rc == 1) {
        s->ca_file = cfw_xstrdup(ca);
    }
    return rc;
}

void cfw_sink_read_keys(const struct cfw_schema *sc, struct cfw_sink *s, const struct cfw_node *map,
                        const char *path, struct cfw_diag *diag)
{
    for (const struct cfw_schema_key *k = sc->keys; k->name != NULL; k++) {
        int rc = k->read != NULL ? k->read(k, map, path, s, diag)
                                 : cfw_schema_read_typed(k, map, path, s, diag);

        if (rc == 1 && k->check != NULL) {
            k->check(k, map, path, s, diag);
        }
    }
    if (sc->check != NULL) {
        sc->check(map, path, s, diag);
    }
}

/* name and type are read first, by parse_name_type (the type chooses the other keys). */
static const struct cfw_schema_key common_keys[] = {
    {.name = "name", .help = "the sink's name, unique: 1-64 letters, digits, '-', '_' or '.'"},
    {.name = "type", .help = "slack, pagerduty, webhook, alertmanager or stdout"},
    {.name = "min_severity",
     .read = read_min_severity,
     .help = "the least severity sent: info (default), warning, error or critical"},
    {.name = "rules",
     .type = CFW_SCHEMA_STRLIST,
     .offset = SINK_KEY(route.rules),
     .help = "globs on the rule id of the incidents sent (default: all)"},
    {.name = "exclude_rules",
     .type = CFW_SCHEMA_STRLIST,
     .offset = SINK_KEY(route.exclude_rules),
     .help = "globs on the rule id of the incidents not sent"},
    {.name = "scripts",
     .type = CFW_SCHEMA_STRLIST,
     .offset = SINK_KEY(route.scripts),
     .help = "globs on the script of the incidents sent (default: all)"},
    {.name = "exclude_scripts",
     .type = CFW_SCHEMA_STRLIST,
     .offset = SINK_KEY(route.exclude_scripts),
     .help = "globs on the script of the incidents not sent"},
    {.name = "send",
     .read = read_send,
     .help = "the transitions sent: open, reminder, resolve, acknowledge (default: all)"},
    {.name = "rate_limit",
     .read = read_rate,
     .help = "{burst, per}: a bucket of burst notifications, one more every per (0 to 100000)"},
    {.name = "timeout",
     .type = CFW_SCHEMA_DURATION,
     .offset = SINK_KEY(timeout_ms),
     .def = CFW_HTTP_TIMEOUT_DEFAULT_MS,
     .read = read_timeout,
     .help = "the timeout of one delivery, above 0 (default 30s)"},
    {.name = "connect_timeout",
     .type = CFW_SCHEMA_DURATION,
     .offset = SINK_KEY(connect_timeout_ms),
     .def = CFW_HTTP_CONNECT_TIMEOUT_DEFAULT_MS,
     .read = read_timeout,
     .help = "the timeout of a connection, above 0 (default 10s)"},
    {.name = "ca_file",
     .read = read_ca_file,
     .help = "a readable CA bundle to verify the receiver's certificate with"},
    {0},
};

static const struct cfw_schema common_schema = {common_keys, NULL};

static const struct cfw_sink_ops *find_ops(const char *type)
{
    for (size_t i = 0; all_ops[i] != NULL; i++) {
        if (strcmp(all_ops[i]->type, type) == 0) {
            return all_ops[i];
        }
    }
    return NULL;
}

/* The names of the common keys, then of the type's (ops NULL: the common ones). */
static const char **merged_keys(const struct cfw_sink_ops *ops)
{
    size_t n = 0;
    size_t m = 0;
    const char **keys;

    while (common_keys[n].name != NULL) {
        n++;
    }
    while (ops != NULL && ops->schema->keys[m].name != NULL) {
        m++;
    }
    keys = cfw_xcalloc(n + m + 1, sizeof(*keys));
    for (size_t i = 0; i < n; i++) {
        keys[i] = common_keys[i].name;
    }
    for (size_t i = 0; i < m; i++) {
        keys[n + i] = ops->schema->keys[i].name;
    }
    return keys;
}

/* Reads name and type (the type chooses ops); reports what is wrong with them. */
static void parse_name_type(struct cfw_sink *s, const struct cfw_node *map, const char *path,
                            struct cfw_diag *diag)
{
    const char *name = NULL;
    const char *type = NULL;

    if (cfw_node_str(map, "name", path, &name, diag) == 0) {
        cfw_diag_add(diag, map, path, "a sink needs a name");
    } else if (name != NULL && !name_ok(name)) {
        cfw_diag_add(diag, cfw_node_get(map, "name"), path,
                     "sink name '%.80s' must be 1-64 letters, digits, '-', '_' or '.'", name);
    }
    s->name = cfw_xstrdup(name != NULL ? name : "?");
    s->route.name = s->name;
    if (cfw_node_str(map, "type", path, &type, diag) == 0) {
        cfw_diag_add(diag, map, path,
                     "a sink needs a type (slack, pagerduty, webhook, alertmanager, stdout)");
    } else if (type != NULL && (s->ops = find_ops(type)) == NULL) {
        cfw_diag_add(diag, cfw_node_get(map, "type"), path,
                     "unknown sink type '%.40s' (valid: slack, pagerduty, webhook, "
                     "alertmanager, stdout)",
                     type);
    }
}

static struct cfw_sink *parse_one(const struct cfw_node *map, const char *path,
                                  struct cfw_diag *diag)
{
    struct cfw_sink *s = cfw_xcalloc(1, sizeof(*s));
    const char **keys;
    size_t before = diag->n;

    if (map->type != CFW_NODE_MAP) {
        cfw_diag_add(diag, map, path, "a sink must be a map with at least name and type");
        sink_free(s);
        return NULL;
    }
    parse_name_type(s, map, path, diag);
    keys = merged_keys(s->ops);
    cfw_node_check_keys(map, path, keys, diag);
    free(keys);
    if (s->ops == NULL) {
        sink_free(s);
        return NULL;
    }
    /* defaults no row can hold: an enumeration, the four flags of `send`, the type's rate */
    s->route.min_severity = CFW_SEV_INFO;
    s->route.send_open = s->route.send_reminder = s->route.send_resolve = true;
    s->route.send_ack = true;
    s->route.burst = s->ops->burst;
    s->route.per_ms = s->ops->per_ms;
    s->route.digest_resolves = s->ops->digest_resolves;
    cfw_schema_defaults(&common_schema, s);
    cfw_schema_defaults(s->ops->schema, s);
    cfw_sink_read_keys(&common_schema, s, map, path, diag);
    if (s->ops->parse != NULL) {
        s->ops->parse(s, map, path, diag);
    }
    cfw_sink_read_keys(s->ops->schema, s, map, path, diag);
    if (s->ops->no_ack) {
        s->route.send_ack = false; /* even when `send` names acknowledge */
    }
    if (diag->n != before) {
        sink_free(s);
        return NULL;
    }
    return s;
}

struct cfw_sinks *cfw_sinks_parse(const struct cfw_node *seq, const char *path,
                                  struct cfw_diag *diag)
{
    struct cfw_sinks *set = cfw_xcalloc(1, sizeof(*set));
    size_t before = diag->n;
    char host[256];

    if (gethostname(host, sizeof(host)) != 0) {
        snprintf(host, sizeof(host), "%s", "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    set->host = cfw_xstrdup(host);
    if (path == NULL) {
        path = "sinks";
    }
    if (seq == NULL) {
        return set;
    }
    if (seq->type != CFW_NODE_SEQ) {
        cfw_diag_add(diag, seq, path, "expected a list of sinks");
        cfw_sinks_free(set);
        return NULL;
    }
    for (size_t i = 0; i < seq->n; i++) {
        char *ipath = cfw_xasprintf("%s[%zu]", path, i);
        struct cfw_sink *s = parse_one(seq->items[i], ipath, diag);
        if (s != NULL) {
            if (cfw_sinks_find(set, s->name) != NULL) {
                cfw_diag_add(diag, seq->items[i], ipath, "duplicate sink name '%s'", s->name);
                sink_free(s);
            } else {
                s->host = set->host;
                set->v = cfw_xrealloc(set->v, (set->n + 1) * sizeof(*set->v));
                set->v[set->n++] = s;
            }
        }
        free(ipath);
    }
    if (diag->n != before) {
        cfw_sinks_free(set);
        return NULL;
    }
    return set;
}

void cfw_sinks_free(struct cfw_sinks *set)
{
    if (set == NULL) {
        return;
    }
    for (size_t i = 0; i < set->n; i++) {
        sink_free(set->v[i]);
    }
    free(set->v);
    free(set->host);
    free(set->client_url);
    free(set);
}

void cfw_sinks_set_context(struct cfw_sinks *set, const char *host, const char *client_url)
{
    if (host != NULL) {
        free(set->host);
        set->host = cfw_xstrdup(host);
    }
    if (client_url != NULL) {
        free(set->client_url);
        set->client_url = cfw_xstrdup(client_url);
    }
    for (size_t i = 0; i < set->n; i++) {
        set->v[i]->host = set->host;
        set->v[i]->client_url = set->client_url;
    }
}

size_t cfw_sinks_count(const struct cfw_sinks *set)
{
    return set != NULL ? set->n : 0;
}

struct cfw_sink *cfw_sinks_at(const struct cfw_sinks *set, size_t i)
{
    return i < set->n ? set->v[i] : NULL;
}

struct cfw_sink *cfw_sinks_find(const struct cfw_sinks *set, const char *name)
{
    for (size_t i = 0; set != NULL && i < set->n; i++) {
        if (strcmp(set->v[i]->name, name) == 0) {
            return set->v[i];
        }
    }
    return NULL;
}

/* ---- dispatch ---- */

const char *cfw_sink_name(const struct cfw_sink *s)
{
    return s->name;
}

const char *cfw_sink_type(const struct cfw_sink *s)
{
    return s->ops->type;
}

const struct cfw_route_cfg *cfw_sink_route(const struct cfw_sink *s)
{
    return &s->route;
}

size_t cfw_sink_endpoints(const struct cfw_sink *s)
{
    return s->ops->local ? 0 : s->n_urls;
}

const char *cfw_sink_display_url(const struct cfw_sink *s, size_t endpoint)
{
    return endpoint < s->n_urls ? s->display[endpoint] : "";
}

unsigned cfw_sink_in_flight(const struct cfw_sink *s)
{
    return s->ops->in_flight != 0 ? s->ops->in_flight : CFW_OUTBOX_IN_FLIGHT_DEFAULT;
}

bool cfw_sink_is_local(const struct cfw_sink *s)
{
    return s->ops->local;
}

char *cfw_sink_build(const struct cfw_sink *s, const struct cfw_notification *n, size_t *len)
{
    json_t *o;
    char *text;

    if (s->ops->build == NULL) {
        return NULL;
    }
    o = s->ops->build(s, n);
    if (o == NULL) {
        return NULL;
    }
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text != NULL && len != NULL) {
        *len = strlen(text);
    }
    return text;
}

int cfw_sink_prepare(const struct cfw_sink *s, unsigned endpoint, const char *body, size_t len,
                     int64_t now_ms, struct cfw_sink_request *rq, struct cfw_err *err)
{
    memset(rq, 0, sizeof(*rq));
    if (s->ops->prepare == NULL || endpoint >= s->n_urls) {
        cfw_err_set(err, "sink %s has no endpoint %u", s->name, endpoint);
        return -1;
    }
    return s->ops->prepare(s, endpoint, body, len, now_ms, rq, err);
}

void cfw_sink_classify(const struct cfw_sink *s, const struct cfw_http_response *resp,
                       struct cfw_sink_verdict *v)
{
    memset(v, 0, sizeof(*v));
    if (s->ops->classify != NULL) {
        s->ops->classify(s, resp, v);
    } else {
        cfw_sink_classify_http(s, resp, v);
    }
}

void cfw_sink_observe(struct cfw_sink *s, const struct cfw_incident *inc, enum cfw_transition t)
{
    if (s->ops->observe != NULL) {
        s->ops->observe(s, inc, t);
    }
}

int64_t cfw_sink_refresh_interval(const struct cfw_sink *s)
{
    return s->ops->refresh != NULL ? s->refresh_ms : 0;
}

char *cfw_sink_refresh_body(const struct cfw_sink *s, size_t *len)
{
    return s->ops->refresh != NULL ? s->ops->refresh(s, len) : NULL;
}

void cfw_sink_write(const struct cfw_sink *s, const struct cfw_notification *n, FILE *fp)
{
    if (s->ops->write != NULL) {
        s->ops->write(s, n, fp);
    }
}

/* Feeds what names one transition of one incident to the id's hash input. */
static void id_part(struct cfw_buf *b, const struct cfw_incident *inc, enum cfw_transition t)
{
    const char *key = inc->key != NULL ? inc->key : "";

    /* length-prefixed: no key can be made to look like another key and its numbers */
    cfw_buf_printf(b, "%zu:%s|%" PRId64 "|%" PRIu64 "|%s", strlen(key), key, inc->opened_wall_ms,
                   inc->opening, cfw_transition_name(t));
    if (t == CFW_TRANSITION_REMINDER) {
        cfw_buf_printf(b, "|%" PRIu64, inc->reminders);
    }
    cfw_buf_putc(b, '\n');
}

void cfw_sink_notification_id(const struct cfw_sink *s, const struct cfw_notification *n,
                              char out[CFW_SINK_ID_LEN + 1])
{
    static uint64_t serial;
    struct cfw_buf b;
    uint8_t d[CFW_SHA256_LEN];

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    cfw_buf_printf(&b, "%s|%s|", s->host != NULL ? s->host : "", s->name);
    if (n->kind == CFW_NOTIFY_TRANSITION && n->inc != NULL) {
        id_part(&b, n->inc, n->transition);
    } else if (n->kind == CFW_NOTIFY_DIGEST) {
        cfw_buf_puts(&b, "digest\n");
        for (size_t i = 0; i < n->n_items; i++) {
            id_part(&b, &n->items[i].inc, n->items[i].transition);
        }
        cfw_buf_printf(&b, "+%" PRIu64, n->n_omitted);
    } else {
        /* a test: every one is new */
        cfw_buf_printf(&b, "test|%" PRId64 "|%" PRIu64 "|%p", n->now_wall_ms, ++serial,
                       (const void *)n);
    }
    cfw_sha256(b.data != NULL ? b.data : "", b.len, d);
    cfw_hex_encode(d, CFW_SINK_ID_LEN / 2, out);
    out[CFW_SINK_ID_LEN] = '\0';
    cfw_buf_free(&b);
}

void cfw_sink_dedup_key(const char *incident_key, char *out, size_t outlen)
{
    static const char prefix[] = "cfwatchd:";
    size_t kl = strlen(incident_key);
    bool printable = true;

    for (size_t i = 0; i < kl; i++) {
        if ((unsigned char)incident_key[i] < 0x20 || incident_key[i] == 0x7f) {
            printable = false;
        }
    }
    /* readable when it fits; otherwise a hash, so the same incident always maps the same way */
    if (printable && sizeof(prefix) - 1 + kl <= CFW_PD_DEDUP_MAX) {
        snprintf(out, outlen, "%s%s", prefix, incident_key);
    } else {
        uint8_t d[CFW_SHA256_LEN];
        char hex[CFW_SHA256_HEX_LEN];
        cfw_sha256(incident_key, kl, d);
        cfw_hex_encode(d, sizeof(d), hex);
        snprintf(out, outlen, "%ssha256:%s", prefix, hex);
    }
}

void cfw_webhook_signature(const char *secret, size_t secret_len, int64_t ts_sec, const char *body,
                           size_t len, char out[CFW_SHA256_HEX_LEN])
{
    struct cfw_hmac_sha256 h;
    uint8_t tag[CFW_SHA256_LEN];
    char ts[32];

    snprintf(ts, sizeof(ts), "%" PRId64 ".", ts_sec);
    cfw_hmac_sha256_init(&h, secret, secret_len);
    cfw_hmac_sha256_update(&h, ts, strlen(ts));
    cfw_hmac_sha256_update(&h, body, len);
    cfw_hmac_sha256_final(&h, tag);
    cfw_hex_encode(tag, sizeof(tag), out);
}
