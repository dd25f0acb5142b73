/*
 * The Cloudflare API: a client (the `cloudflare:` section: account, token, base URL; the v4
 * envelope; page and cursor pagination; 429 -> wait at least Retry-After and assume the
 * documented five-minute block) shared by the input kinds that call the API: the pollers
 * cloudflare-deployments, cloudflare-observability and cloudflare-builds (poller.c) and
 * cloudflare-tail (cf_tail.h). The token never appears in a log line or error.
 */
#ifndef CFWATCHD_CLOUDFLARE_H
#define CFWATCHD_CLOUDFLARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cfwatchd/common.h"
#include "cfwatchd/deploys.h"
#include "cfwatchd/framer.h"
#include "cfwatchd/http.h"
#include "cfwatchd/yaml.h"

#define CFW_CF_BASE_URL_DEFAULT "https://api.cloudflare.com/client/v4"
#define CFW_CF_BLOCK_MS (5LL * 60 * 1000)
#define CFW_CF_BODY_MAX (8u * 1024u * 1024u)
#define CFW_CF_INTERVAL_DEFAULT_MS (60 * 1000)
#define CFW_CF_MAX_PAGES 50u
#define CFW_CF_DOWN_AFTER_FAILURES 3u
#define CFW_CF_OBS_LIMIT_DEFAULT 100u
#define CFW_CF_OBS_LOOKBACK_MS (5LL * 60 * 1000)
#define CFW_CF_OBS_OVERLAP_MS (2LL * 60 * 1000)
#define CFW_CF_SEEN_MAX 4096u

struct cfw_cf_conf {
    char *account_id;
    char *token; /* secret */
    char *base_url;
    char *ca_file;
    int64_t timeout_ms;
};

/* Parses the `cloudflare:` section (NULL node: nothing configured). 0, or -1 with diag. */
int cfw_cf_conf_parse(const struct cfw_node *node, struct cfw_cf_conf *conf,
                      struct cfw_diag *diag);
void cfw_cf_conf_clear(struct cfw_cf_conf *conf);

/* The outcome of one API call. */
struct cfw_cf_result {
    bool ok;               /* HTTP 2xx and success:true */
    long status;           /* HTTP status, 0 on a transport error */
    const json_t *result;  /* envelope's result (borrowed), NULL when absent */
    const json_t *info;    /* envelope's result_info, NULL when absent */
    /* readable: "403 code 10000: Authentication error"; registered secrets (the token, even
     * when the API quotes it back) replaced by "***" */
    const char *error;
    bool auth;             /* 401 or 403 */
    bool rate_limited;     /* 429, or refused locally while blocked */
};

typedef void (*cfw_cf_done_cb)(void *arg, const struct cfw_cf_result *r);

struct cfw_cf;

/* Creates a client; its token (and base URL credentials) stay registered while it lives. */
struct cfw_cf *cfw_cf_new(struct cfw_http *http, const struct cfw_cf_conf *conf);
void cfw_cf_free(struct cfw_cf *cf);
/* Starts a request to base_url + path ("/accounts/{account}/..." with {account} replaced);
 * body NULL for GET, else POSTed as JSON (borrowed). Returns 0, or -1 with cb not called. */
int cfw_cf_call(struct cfw_cf *cf, const char *path, const json_t *body, cfw_cf_done_cb cb,
                void *arg);
/* The same with the method given ("DELETE", "PUT", ...); body may be NULL with any method. */
int cfw_cf_request(struct cfw_cf *cf, const char *method, const char *path, const json_t *body,
                   cfw_cf_done_cb cb, void *arg);
/* The configured CA file (NULL: the system's store), for connections made outside libcurl. */
const char *cfw_cf_ca_file(const struct cfw_cf *cf);
/* Wall-clock ms until which calls are refused after a 429 (0 when not blocked). */
int64_t cfw_cf_blocked_until(const struct cfw_cf *cf);
uint64_t cfw_cf_requests(const struct cfw_cf *cf);

#endif
