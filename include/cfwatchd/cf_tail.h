/*
 * The `cloudflare-tail` source: Cloudflare's live tail spoken natively, so that following live
 * Workers needs no Node.js and no `wrangler tail` per Worker (see shared/FORMATS.md section 2).
 *
 * Per Worker (`scripts:` names, or globs resolved through GET .../workers/scripts and looked up
 * again every scripts_refresh): POST .../workers/scripts/<name>/tails with the filters in the
 * body, a WebSocket to the returned wss:// URL with the subprotocol trace-v1 (TLS verified, the
 * `cloudflare:` section's ca_file), {"debug":false} sent on open, then one TailEventMessage per
 * message, handed over as a JSON record: the same decoder as `wrangler tail --format json`.
 *
 * Liveness: a ping every ping_interval, the connection dead when the previous pong has not come
 * back; every lost connection is replaced (the old tail deleted, a new one created) after a
 * backoff that doubles up to reconnect_delay_max and never gives up; the tail is recreated
 * renew_before its expires_at, because the backend stops delivering at that time without
 * closing. A clean stop closes the WebSocket and DELETEs the tail; the ids of the tails that
 * are open are saved with the state, so that a start after a crash deletes those left behind.
 * A tail that fails down_after_failures times in a row (a 403 at once) puts the source DOWN
 * with the API's reason, secrets scrubbed; the daemon opens `source-down` for it.
 *
 * Cloudflare samples a tail under load and says so with tail-info events (type "overload",
 * then "overload-stop"): while sampled, and when sampling_rate < 1 is configured, every event
 * of the tail carries a `sampling` field saying its counts are sampled, and /metrics shows it.
 *
 * The daemon runs it as the input kind `cloudflare-tail` (input.h).
 */
#ifndef CFWATCHD_CF_TAIL_H
#define CFWATCHD_CF_TAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cfwatchd/cloudflare.h"
#include "cfwatchd/common.h"
#include "cfwatchd/framer.h"
#include "cfwatchd/yaml.h"

#define CFW_TAIL_PROTOCOL "trace-v1"
#define CFW_TAIL_PING_INTERVAL_DEFAULT_MS (10 * 1000)
#define CFW_TAIL_RENEW_BEFORE_DEFAULT_MS (10 * 60 * 1000)
#define CFW_TAIL_RECONNECT_DELAY_DEFAULT_MS 1000
#define CFW_TAIL_RECONNECT_DELAY_MAX_DEFAULT_MS (60 * 1000)
#define CFW_TAIL_STABLE_AFTER_MS (60 * 1000)
#define CFW_TAIL_DOWN_AFTER_FAILURES_DEFAULT 3u
#define CFW_TAIL_SCRIPTS_REFRESH_DEFAULT_MS (5 * 60 * 1000)
#define CFW_TAIL_MAX_TAILS 100u
#define CFW_TAIL_STOP_DEADLINE_MS 5000

struct cfw_tail_conf {
    char *name;
    char **scripts; /* names or globs, NULL-terminated */
    /* filters, as `wrangler tail` offers them (FORMATS.md section 2) */
    char **outcome;       /* raw outcomes; "error" expands to wrangler's list */
    double sampling_rate; /* 0 < r <= 1; 1: no filter */
    char **method;
    char *header_key;
    char *header_query; /* NULL: the header's presence */
    char **client_ip;
    char *query;
    char *script_version;
    /* behaviour */
    int64_t ping_interval_ms;
    int64_t renew_before_ms;
    int64_t reconnect_delay_ms;
    int64_t reconnect_delay_max_ms;
    unsigned down_after_failures;
    int64_t scripts_refresh_ms;
    size_t max_message;
};

/* True when node is a source entry of type cloudflare-tail. */
bool cfw_tail_is(const struct cfw_node *node);
int cfw_tail_conf_parse(const struct cfw_node *node, const char *path, struct cfw_tail_conf *conf,
                        struct cfw_diag *diag);
void cfw_tail_conf_clear(struct cfw_tail_conf *conf);
/* The POST body of a tail creation: {"filters":[...]} (a new reference). */
json_t *cfw_tail_filters(const struct cfw_tail_conf *conf);

#endif
