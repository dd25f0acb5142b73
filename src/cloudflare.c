/* The Cloudflare API client: envelope, errors, 429 blocking; the `cloudflare:` section. */
#include "cfwatchd/cloudflare.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/log.h"
#include "cfwatchd/schema.h"
#include "cfwatchd/secrets.h"

/* One call in flight: the caller's callback, and the request to cancel when the client goes. */
struct call {
    struct call *next;
    struct cfw_cf *cf;
    struct cfw_http_req *req;
    cfw_cf_done_cb cb;
    void *arg;
};

struct cfw_cf {
    struct cfw_http *http;
    struct cfw_cf_conf conf;
    struct cfw_secret_hold *hold; /* the token, registered while the client lives */
    int64_t blocked_until;
    uint64_t requests;
    struct call *calls; /* in flight: cancelled by cfw_cf_free (reload, stop) */
};

void cfw_cf_conf_clear(struct cfw_cf_conf *conf)
{
    free(conf->account_id);
    if (conf->token != NULL) {
        explicit_bzero(conf->token, strlen(conf->token));
        free(conf->token);
    }
    free(conf->base_url);
    free(conf->ca_file);
    memset(conf, 0, sizeof(*conf));
}

/* ---- the `cloudflare:` section, read by its schema ---- */

#define CF_KEY(m) offsetof(struct cfw_cf_conf, m)

/* account_id: required, hexadecimal (null is missing: `account_id: ~`). */
static int read_account_id(const struct cfw_schema_key *k, const struct cfw_node *map,
                           const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_cf_conf *c = conf;
    int rc = cfw_schema_read_typed(k, map, path, conf, diag);
    char *kp;

    if (rc == 0) {
        cfw_diag_add(diag, map, path, "account_id is required");
    }
    if (rc != 1) {
        return rc;
    }
    if (strspn(c->account_id, "0123456789abcdefABCDEF") == strlen(c->account_id) &&
        c->account_id[0] != '\0') {
        return 1;
    }
    kp = cfw_schema_path(k, path);
    cfw_diag_add(diag, cfw_node_get(map, k->name), kp, "'%s' is not an account id (hexadecimal)",
                 c->account_id);
    free(kp);
    return -1;
}

/* api_token or api_token_file (one of them): the token, registered as a secret. */
static int read_token(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                      void *conf, struct cfw_diag *diag)
{
    struct cfw_cf_conf *c = conf;
    int rc = cfw_node_secret(map, k->name, "api_token_file", path, &c->token, diag);

    if (rc == 0) {
        cfw_diag_add(diag, map, path, "api_token or api_token_file is required");
    } else if (rc == 1) {
        cfw_secret_register(c->token, strlen(c->token));
    }
    return rc;
}

/* base_url: an http(s) URL without its trailing slashes (default CFW_CF_BASE_URL_DEFAULT). */
static int read_base_url(const struct cfw_schema_key *k, const struct cfw_node *map,
                         const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_cf_conf *c = conf;
    int rc = cfw_schema_read_typed(k, map, path, conf, diag);
    bool bad;
    char *kp;
    size_t len;

    if (rc != 1) {
        c->base_url = cfw_xstrdup(CFW_CF_BASE_URL_DEFAULT);
        return rc;
    }
    bad = strncmp(c->base_url, "https://", 8) != 0 && strncmp(c->base_url, "http://", 7) != 0;
    if (bad) {
        kp = cfw_schema_path(k, path);
        cfw_diag_add(diag, cfw_node_get(map, k->name), kp, "'%s' is not an http(s) URL",
                     c->base_url);
        free(kp);
    }
    /* a user:password@ or a query in it is a credential too */
    cfw_secret_hold_add_url(NULL, c->base_url, false);
    while ((len = strlen(c->base_url)) > 0 && c->base_url[len - 1] == '/') {
        c->base_url[len - 1] = '\0';
    }
    return bad ? -1 : 1;
}

static const struct cfw_schema_key cf_keys[] = {
    {.name = "account_id",
     .type = CFW_SCHEMA_STR,
     .offset = CF_KEY(account_id),
     .read = read_account_id,
     .help = "the Cloudflare account id (hexadecimal; required)"},
    {.name = "api_token",
     .read = read_token,
     .help = "the API token (or api_token_file; one of them is required)"},
    {.name = "api_token_file", .help = "a file holding the API token (read with api_token)"},
    {.name = "base_url",
     .type = CFW_SCHEMA_STR,
     .offset = CF_KEY(base_url),
     .read = read_base_url,
     .help = "the API's base URL, http(s) (default " CFW_CF_BASE_URL_DEFAULT ")"},
    {.name = "ca_file",
     .type = CFW_SCHEMA_STR,
     .offset = CF_KEY(ca_file),
     .help = "a CA bundle to verify the API's certificate with"},
    {.name = "timeout",
     .type = CFW_SCHEMA_DURATION,
     .offset = CF_KEY(timeout_ms),
     .help = "the timeout of one API request (default: the HTTP client's)"},
    {0},
};

static const struct cfw_schema cf_schema = {cf_keys, NULL};

int cfw_cf_conf_parse(const struct cfw_node *node, struct cfw_cf_conf *conf, struct cfw_diag *diag)
{
    memset(conf, 0, sizeof(*conf));
    if (node == NULL) {
        return 0;
    }
    if (cfw_schema_parse(&cf_schema, node, "cloudflare", conf, diag) != 0) {
        cfw_cf_conf_clear(conf);
        return -1;
    }
    return 0;
}

struct cfw_cf *cfw_cf_new(struct cfw_http *http, const struct cfw_cf_conf *conf)
{
    struct cfw_cf *cf = cfw_xcalloc(1, sizeof(*cf));

    cf->http = http;
    cf->conf.account_id = cfw_xstrdup(conf->account_id);
    cf->conf.token = cfw_xstrdup(conf->token);
    cf->conf.base_url = cfw_xstrdup(conf->base_url);
    cf->conf.ca_file = conf->ca_file != NULL ? cfw_xstrdup(conf->ca_file) : NULL;
    cf->conf.timeout_ms = conf->timeout_ms;
    cf->hold = cfw_secret_hold_new();
    cfw_secret_hold_add(cf->hold, cf->conf.token, strlen(cf->conf.token));
    cfw_secret_hold_add_url(cf->hold, cf->conf.base_url, false);
    return cf;
}

void cfw_cf_free(struct cfw_cf *cf)
{
    if (cf == NULL) {
        return;
    }
    /* the HTTP client outlives us (reload): its answers must not reach freed pollers */
    while (cf->calls != NULL) {
        struct call *c = cf->calls;
        cf->calls = c->next;
        cfw_http_cancel(cf->http, c->req);
        free(c);
    }
    cfw_cf_conf_clear(&cf->conf);
    cfw_secret_hold_free(cf->hold);
    free(cf);
}

int64_t cfw_cf_blocked_until(const struct cfw_cf *cf)
{
    return cf->blocked_until > cfw_now_wall_ms() ? cf->blocked_until : 0;
}

uint64_t cfw_cf_requests(const struct cfw_cf *cf)
{
    return cf->requests;
}

/*
 * Renders the envelope's errors[] ({code, message}) as "code N: message; ...". Each message is
 * scrubbed whole before it is cut to 200 bytes: cut first, a token quoted across the cut would
 * survive as a prefix that no registered form matches.
 */
static void envelope_errors(const json_t *root, struct cfw_buf *out)
{
    const json_t *errors = json_object_get(root, "errors");
    size_t i;
    json_t *e;
    char *clean;

    json_array_foreach((json_t *)errors, i, e)
    {
        const json_t *code = json_object_get(e, "code");
        const json_t *msg = json_object_get(e, "message");
        if (i >= 3) {
            break;
        }
        clean = cfw_secrets_scrub(json_is_string(msg) ? json_string_value(msg) : "?");
        cfw_buf_printf(out, "%scode %lld: %.200s", i > 0 ? "; " : "",
                       (long long)json_integer_value(code), clean);
        free(clean);
    }
    /* some endpoints answer {code, error} instead of the envelope */
    if (out->len == 0 && json_is_string(json_object_get(root, "error"))) {
        clean = cfw_secrets_scrub(json_string_value(json_object_get(root, "error")));
        cfw_buf_printf(out, "%.200s", clean);
        free(clean);
    }
}

static void on_done(const struct cfw_http_response *resp, void *arg)
{
    struct call *c = arg;
    struct cfw_cf *cf = c->cf;
    struct cfw_cf_result r = {.status = resp->status};
    struct cfw_buf err = CFW_BUF_INIT(1024);
    json_t *root = NULL;
    struct call **pp = &cf->calls;

    while (*pp != NULL && *pp != c) {
        pp = &(*pp)->next;
    }
    if (*pp == c) {
        *pp = c->next;
    }
    if (resp->status == 0) {
        cfw_buf_printf(&err, "no answer: %s", resp->error);
    } else {
        root = json_loadb(resp->body, resp->body_len, 0, NULL);
        if (resp->status == 429) {
            int64_t wait = resp->retry_after_ms > CFW_CF_BLOCK_MS ? resp->retry_after_ms
                                                                  : CFW_CF_BLOCK_MS;
            /* Cloudflare blocks every call for five minutes after the limit is hit */
            cf->blocked_until = cfw_now_wall_ms() + wait;
            r.rate_limited = true;
            cfw_buf_printf(&err, "429 rate limited; pausing API calls for %lld s",
                           (long long)(wait / 1000));
        } else if (root == NULL) {
            cfw_buf_printf(&err, "%ld with a body that is not JSON%s", resp->status,
                           resp->body_truncated ? " (truncated)" : "");
        } else {
            const json_t *success = json_object_get(root, "success");
            r.result = json_object_get(root, "result");
            r.info = json_object_get(root, "result_info");
            r.ok = resp->status >= 200 && resp->status < 300 &&
                   (success == NULL || json_is_true(success));
            if (!r.ok) {
                cfw_buf_printf(&err, "%ld ", resp->status);
                envelope_errors(root, &err);
            }
        }
        r.auth = resp->status == 401 || resp->status == 403;
    }
    /*
     * The API's messages are outside text, and an API that quotes the request back (the token
     * of a refused Authorization header) must not put it into the reason of a source-down
     * incident, the log, the state or a payload: scrubbed here, where they enter.
     */
    if (err.data != NULL) {
        err.len = cfw_secrets_scrub_inplace(err.data, err.len);
    }
    r.error = err.data != NULL ? err.data : "";
    c->cb(c->arg, &r);
    json_decref(root);
    cfw_buf_free(&err);
    free(c);
}

int cfw_cf_call(struct cfw_cf *cf, const char *path, const json_t *body, cfw_cf_done_cb cb,
                void *arg)
{
    return cfw_cf_request(cf, body != NULL ? "POST" : "GET", path, body, cb, arg);
}

const char *cfw_cf_ca_file(const struct cfw_cf *cf)
{
    return cf->conf.ca_file;
}

int cfw_cf_request(struct cfw_cf *cf, const char *method, const char *path, const json_t *body,
                   cfw_cf_done_cb cb, void *arg)
{
    struct cfw_buf url;
    char *auth = cfw_xasprintf("Authorization: Bearer %s", cf->conf.token);
    const char *headers[] = {auth, "Content-Type: application/json", "Accept: application/json",
                             NULL};
    struct cfw_http_request rq = {.url = NULL,
                                  .headers = headers,
                                  .timeout_ms = cf->conf.timeout_ms,
                                  .ca_file = cf->conf.ca_file,
                                  .body_max = CFW_CF_BODY_MAX};
    struct cfw_err err = {0};
    struct call *c;
    char *text = NULL;
    const char *p;

    if (cfw_cf_blocked_until(cf) != 0) {
        struct cfw_cf_result r = {.rate_limited = true, .error = "API calls paused after a 429"};
        explicit_bzero(auth, strlen(auth));
        free(auth);
        cb(arg, &r);
        return 0;
    }
    cfw_buf_init(&url, CFW_BUF_MAX_BUILT);
    cfw_buf_puts(&url, cf->conf.base_url);
    /* {account} in the path is the configured account id */
    for (p = path; *p != '\0'; p++) {
        if (strncmp(p, "{account}", 9) == 0) {
            cfw_buf_puts(&url, cf->conf.account_id);
            p += 8;
        } else {
            cfw_buf_putc(&url, *p);
        }
    }
    rq.url = url.data;
    rq.method = method;
    if (body != NULL) {
        text = json_dumps(body, JSON_COMPACT);
        rq.body = text;
        rq.body_len = text != NULL ? strlen(text) : 0;
    }
    c = cfw_xcalloc(1, sizeof(*c));
    c->cf = cf;
    c->cb = cb;
    c->arg = arg;
    cf->requests++;
    c->req = cfw_http_start(cf->http, &rq, on_done, c, &err);
    if (c->req == NULL) {
        free(c);
        cfw_log_warn("cloudflare: cannot start a request: %s", err.msg);
        explicit_bzero(auth, strlen(auth));
        free(auth);
        free(text);
        cfw_buf_free(&url);
        return -1;
    }
    c->next = cf->calls;
    cf->calls = c;
    explicit_bzero(auth, strlen(auth));
    free(auth);
    free(text);
    cfw_buf_free(&url);
    return 0;
}
