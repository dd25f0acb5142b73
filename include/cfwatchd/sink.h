/*
 * Sinks: one receiver each (slack, pagerduty, webhook, alertmanager, stdout) behind a table of
 * functions. A sink parses its part of the `sinks:` configuration, builds a payload when a
 * notification is submitted (the payload is what the outbox spools: it never holds a secret),
 * turns a spooled payload into an HTTP request at send time (URL, routing key, signature,
 * headers), and classifies the receiver's answer as done, retry or permanent.
 *
 * Configuration keys of every sink: name, type, min_severity, rules, exclude_rules, scripts,
 * exclude_scripts, send, rate_limit {burst, per}, timeout, connect_timeout, ca_file. See
 * docs/sinks.md for the keys of each type.
 */
#ifndef CFWATCHD_SINK_H
#define CFWATCHD_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cfwatchd/common.h"
#include "cfwatchd/http.h"
#include "cfwatchd/outbox.h"
#include "cfwatchd/router.h"
#include "cfwatchd/sha256.h"
#include "cfwatchd/yaml.h"

#define CFW_SINK_NAME_MAX 64
#define CFW_SINK_REASON_MAX 256
/* Receiver text quoted in reasons and reports (escaped, secrets replaced). */
#define CFW_SINK_ANSWER_MAX 200
/* Slack: blocks per message, characters per section text, header text. */
#define CFW_SLACK_BLOCKS_MAX 50
#define CFW_SLACK_SECTION_MAX 3000
#define CFW_SLACK_HEADER_MAX 150
#define CFW_SLACK_FIELD_MAX 2000
#define CFW_SLACK_TEXT_MAX 3000
/* PagerDuty Events API v2 limits. */
#define CFW_PD_SUMMARY_MAX 1024
#define CFW_PD_DEDUP_MAX 255
#define CFW_PD_BODY_MAX 512000
#define CFW_PD_URL_US "https://events.pagerduty.com/v2/enqueue"
#define CFW_PD_URL_EU "https://events.eu.pagerduty.com/v2/enqueue"
/* Alertmanager: how long each send keeps an alert alive, in re-send intervals (by default). */
#define CFW_AM_ALIVE_FACTOR 4
/* Webhook signature headers (see docs/sinks.md). */
#define CFW_WEBHOOK_SIG_HEADER "X-Cfwatchd-Signature"
#define CFW_WEBHOOK_TS_HEADER "X-Cfwatchd-Timestamp"
#define CFW_WEBHOOK_SCHEMA_VERSION 1
/*
 * max_body of a webhook sink: a digest's body (nginx's default client_max_body_size is 1 MiB);
 * the default is the max_body row's (sink_webhook.c; the tests check it).
 */
#define CFW_WEBHOOK_BODY_DEFAULT (1024u * 1024u)
#define CFW_WEBHOOK_BODY_MIN 4096u
#define CFW_WEBHOOK_BODY_LIMIT (256u * 1024u * 1024u)

struct cfw_sink;
struct cfw_sinks;

/* An HTTP request for one spooled payload; every member is owned. */
struct cfw_sink_request {
    char *url;
    char **headers; /* "Name: value", NULL-terminated */
    char *body;
    size_t body_len;
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    const char *ca_file; /* borrowed from the sink */
};

struct cfw_sink_verdict {
    enum cfw_outbox_verdict verdict;
    int64_t retry_after_ms; /* -1: none */
    char reason[CFW_SINK_REASON_MAX];
};

/*
 * Parses the `sinks:` sequence (NULL: no sinks). Every problem goes to diag; returns NULL when
 * there was any, else the set (possibly empty).
 */
struct cfw_sinks *cfw_sinks_parse(const struct cfw_node *seq, const char *path,
                                  struct cfw_diag *diag);
/* Frees a set of sinks (NULL accepted). */
void cfw_sinks_free(struct cfw_sinks *set);
/* Sets the host name (PagerDuty source, message footers) and the client URL shown to people. */
void cfw_sinks_set_context(struct cfw_sinks *set, const char *host, const char *client_url);
/* Number of sinks in the set. */
size_t cfw_sinks_count(const struct cfw_sinks *set);
/* The i-th sink (borrowed), in configuration order. */
struct cfw_sink *cfw_sinks_at(const struct cfw_sinks *set, size_t i);
/* Finds a sink by name. */
struct cfw_sink *cfw_sinks_find(const struct cfw_sinks *set, const char *name);

/* The sink's configured name. */
const char *cfw_sink_name(const struct cfw_sink *s);
/* slack, pagerduty, webhook, alertmanager or stdout. */
const char *cfw_sink_type(const struct cfw_sink *s);
/* The routing configuration (filters, transitions, rate limit). */
const struct cfw_route_cfg *cfw_sink_route(const struct cfw_sink *s);
/* Number of endpoints (Alertmanager: one per base URL; stdout: 0; others 1). */
size_t cfw_sink_endpoints(const struct cfw_sink *s);
/* An endpoint's URL with the secret part replaced, for logs and reports. */
const char *cfw_sink_display_url(const struct cfw_sink *s, size_t endpoint);
/* Deliveries in flight per endpoint that suit the receiver. */
unsigned cfw_sink_in_flight(const struct cfw_sink *s);
/* True for a sink that writes locally (stdout) instead of going through the outbox. */
bool cfw_sink_is_local(const struct cfw_sink *s);

/* Builds the payload to spool for a notification; returns an allocated body or NULL. */
char *cfw_sink_build(const struct cfw_sink *s, const struct cfw_notification *n, size_t *len);
/* Turns a spooled payload into the request for an endpoint, at wall time now_ms. */
int cfw_sink_prepare(const struct cfw_sink *s, unsigned endpoint, const char *body, size_t len,
                     int64_t now_ms, struct cfw_sink_request *rq, struct cfw_err *err);
/* Frees what cfw_sink_prepare filled. */
void cfw_sink_request_clear(struct cfw_sink_request *rq);
/* Classifies a receiver's answer (or a transport failure). */
void cfw_sink_classify(const struct cfw_sink *s, const struct cfw_http_response *resp,
                       struct cfw_sink_verdict *v);
/* Lets a stateful sink (Alertmanager) track open incidents; others ignore it. */
void cfw_sink_observe(struct cfw_sink *s, const struct cfw_incident *inc, enum cfw_transition t);
/* Re-send interval of a sink that re-sends open alerts (ms), or 0. */
int64_t cfw_sink_refresh_interval(const struct cfw_sink *s);
/* Builds the periodic re-send payload of all open alerts, or NULL when none is open. */
char *cfw_sink_refresh_body(const struct cfw_sink *s, size_t *len);
/* The event name of a notification: open, reminder, resolve, digest or test. */
const char *cfw_sink_event_name(const struct cfw_notification *n);
/* Writes a notification for a local sink to fp. */
void cfw_sink_write(const struct cfw_sink *s, const struct cfw_notification *n, FILE *fp);

/*
 * Returns a copy of text with every registered secret (secrets.h: every sink's credentials and
 * their forms, among the others) and the sink's private values replaced by "***".
 */
char *cfw_sink_scrub(const struct cfw_sink *s, const char *text);
/*
 * Writes url with its secret parts replaced: user:password@, the query, and (unless keep_path)
 * the last path segment, e.g. https://hooks.slack.com/services/T000/B000/ followed by three stars.
 */
void cfw_url_redact(const char *url, bool keep_path, char *out, size_t outlen);
#define CFW_SINK_ID_LEN 32
/*
 * A notification's id (32 hex digits): a hash of the host, the sink and, per incident, its key,
 * when it opened, its opening number, the transition and (reminders) the reminder number. The
 * same transition built again (a re-send after a crash) gets the same id; digests hash their
 * items; test notifications get a new id each time.
 */
void cfw_sink_notification_id(const struct cfw_sink *s, const struct cfw_notification *n,
                              char out[CFW_SINK_ID_LEN + 1]);
/* A stable PagerDuty dedup_key (at most 255 bytes) derived from an incident key. */
void cfw_sink_dedup_key(const char *incident_key, char *out, size_t outlen);
/* Signs a webhook body: hex HMAC-SHA256 of "<timestamp>.<body>" with the secret. */
void cfw_webhook_signature(const char *secret, size_t secret_len, int64_t ts_sec, const char *body,
                           size_t len, char out[CFW_SHA256_HEX_LEN]);

#endif
