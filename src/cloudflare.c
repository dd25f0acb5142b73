/* The Cloudflare API client: envelope, errors, 429 blocking; the `cloudflare:` section. */
#include "cfwatchd/cloudflare.h"

#include <stdlib.h>
#include <string.h>

#include "cfwatchd/log.h"
#include "cfwatchd/secrets.h"

static const char *const cf_keys[] = {"account_id", "api_token",  "api_token_file",
                                      "base_url",   "ca_file",    "timeout", NULL};

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

int cfw_cf_conf_parse(const struct cfw_node *node, struct cfw_cf_conf *conf,
                      struct cfw_diag *diag)
{
    size_t before = diag->n;
    const char *s = NULL;
    int rc;

    memset(conf, 0, sizeof(*conf));
    if (node == NULL) {
        return 0;
    }
    if (cfw_node_check_keys(node, "cloudflare", cf_keys, diag) != 0 &&
        node->type != CFW_NODE_MAP) {
        return -1;
    }
    rc = cfw_node_str(node, "account_id", "cloudflare.account_id", &s, diag);
    if (rc == 1) {
        if (strspn(s, "0123456789abcdefABCDEF") != strlen(s) || s[0] == '\0') {
            cfw_diag_add(diag, cfw_node_get(node, "account_id"), "cloudflare.account_id",
                         "'%s' is not an account id (hexadecimal)", s);
        }
        conf->account_id = cfw_xstrdup(s);
    } else if (rc == 0) {
        /* absent or null (`account_id: ~`) */
        cfw_diag_add(diag, node, "cloudflare", "account_id is required");
    }
    rc = cfw_node_secret(node, "api_token", "api_token_file", "cloudflare", &conf->token, diag);
    if (rc == 0) {
        cfw_diag_add(diag, node, "cloudflare", "api_token or api_token_file is required");
    } else if (rc == 1) {
        cfw_secret_register(conf->token, strlen(conf->token));
    }
    conf->base_url = cfw_xstrdup(CFW_CF_BASE_URL_DEFAULT);
    if (cfw_node_str(node, "base_url", "cloudflare.base_url", &s, diag) == 1) {
        if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0) {
            cfw_diag_add(diag, cfw_node_get(node, "base_url"), "cloudflare.base_url",
                         "'%s' is not an http(s) URL", s);
        }
        free(conf->base_url);
        conf->base_url = cfw_xstrdup(s);
        /* a user:password@ or a query in it is a credential too */
        cfw_secret_hold_add_url(NULL, conf->base_url, false);
        while (conf->base_url[0] != '\0' && conf->base_url[strlen(conf->base_url) - 1] == '/') {
            conf->base_url[strlen(conf->base_url) - 1] = '\0';
        }
    }
    if (cfw_node_str(node, "ca_file", "cloudflare.ca_file", &s, diag) == 1) {
        conf->ca_file = cfw_xstrdup(s);
    }
    cfw_node_duration(node, "timeout", "cloudflare.timeout", &conf->timeout_ms, diag);
    if (diag->n > before) {
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
    struct cfw_buf err = {.max = 1024};
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
