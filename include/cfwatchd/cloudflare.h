/*
 * The Cloudflare API: a client (the `cloudflare:` section: account, token, base URL; the v4
 * envelope; page and cursor pagination; 429 -> wait at least Retry-After and assume the
 * documented five-minute block) and the pollers that are source types:
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

/* ---- pollers ---- */

enum cfw_poller_type {
    CFW_POLLER_DEPLOYMENTS = 1,
    CFW_POLLER_OBSERVABILITY,
    CFW_POLLER_BUILDS,
};

struct cfw_poller_conf {
    char *name;
    enum cfw_poller_type type;
    char **scripts; /* NULL-terminated; builds: script tags (external_script_id) */
    int64_t interval_ms;
    bool notify;    /* deployments: an info event per new deployment */
    size_t limit;   /* observability: events per page */
};

/* True when node is a source entry whose type starts with "cloudflare-". */
bool cfw_poller_is(const struct cfw_node *node);
int cfw_poller_conf_parse(const struct cfw_node *node, const char *path,
                          struct cfw_poller_conf *conf, struct cfw_diag *diag);
void cfw_poller_conf_clear(struct cfw_poller_conf *conf);

struct cfw_poller;

struct cfw_poller_cbs {
    /*
     * A record to decode and match; stream names its input (e.g. "builds:<uuid>"), ctx (may be
     * NULL) holds fields for every event of that stream (a build log: script, build, branch,
     * commit), since its lines do not say which Worker they belong to.
     */
    void (*record)(void *arg, struct cfw_poller *p, const char *stream,
                   const struct cfw_fields *ctx, const struct cfw_record *rec);
    /* a stream is complete (a build's log) */
    void (*eof)(void *arg, struct cfw_poller *p, const char *stream);
    /* up (reason "") / down with a reason */
    void (*state)(void *arg, struct cfw_poller *p, bool up, const char *reason);
    /* a deployment seen for the first time (not for those present at the first poll) */
    void (*deployment)(void *arg, struct cfw_poller *p, const struct cfw_deployment *dep);
    /*
     * A Workers Builds build that deploys (not `wrangler versions upload`) stopped with outcome
     * "success", its log read; ctx holds its script, build, branch and commit; created_wall_ms
     * is its created_on (-1 when unknown).
     */
    void (*build_deployed)(void *arg, struct cfw_poller *p, const struct cfw_fields *ctx,
                           int64_t created_wall_ms);
    void *arg;
};

/* Creates a poller; deploys (borrowed) receives deployments. */
struct cfw_poller *cfw_poller_new(struct event_base *base, struct cfw_cf *cf,
                                  const struct cfw_poller_conf *conf, struct cfw_deploys *deploys,
                                  const struct cfw_poller_cbs *cbs);
void cfw_poller_free(struct cfw_poller *p);
void cfw_poller_start(struct cfw_poller *p);
const char *cfw_poller_name(const struct cfw_poller *p);
const char *cfw_poller_type_name(enum cfw_poller_type t);
enum cfw_poller_type cfw_poller_get_type(const struct cfw_poller *p);
bool cfw_poller_up(const struct cfw_poller *p);
/* True when the poller was configured to announce each new deployment. */
bool cfw_poller_notify(const struct cfw_poller *p);
uint64_t cfw_poller_polls(const struct cfw_poller *p);
/* Cursor and last-seen ids as a JSON object, and their restore (before start). */
json_t *cfw_poller_save(const struct cfw_poller *p);
void cfw_poller_restore(struct cfw_poller *p, const json_t *state);

#endif
