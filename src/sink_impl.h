/* Internal to the sinks: the function table and the shared sink object. */
#ifndef CFWATCHD_SINK_IMPL_H
#define CFWATCHD_SINK_IMPL_H

#include <jansson.h>

#include "cfwatchd/schema.h"
#include "cfwatchd/secrets.h"
#include "cfwatchd/sink.h"

struct cfw_sink_ops {
    const char *type;
    const struct cfw_schema *schema; /* the type's keys, after the common ones (conf: the sink) */
    uint32_t burst;          /* default rate limit: bucket and one token every per_ms */
    int64_t per_ms;
    unsigned in_flight;
    bool digest_resolves;
    bool no_ack; /* the receiver has no acknowledged state: acknowledgements are not sent */
    bool local;
    /*
     * Prepares s->priv before the rows of schema are read (their conf is s, where their
     * defaults were set); NULL: none.
     */
    int (*parse)(struct cfw_sink *s, const struct cfw_node *map, const char *path,
                 struct cfw_diag *diag);
    json_t *(*build)(const struct cfw_sink *s, const struct cfw_notification *n);
    int (*prepare)(const struct cfw_sink *s, unsigned endpoint, const char *body, size_t len,
                   int64_t now_ms, struct cfw_sink_request *rq, struct cfw_err *err);
    void (*classify)(const struct cfw_sink *s, const struct cfw_http_response *resp,
                     struct cfw_sink_verdict *v);
    void (*observe)(struct cfw_sink *s, const struct cfw_incident *inc, enum cfw_transition t);
    char *(*refresh)(const struct cfw_sink *s, size_t *len);
    void (*write)(const struct cfw_sink *s, const struct cfw_notification *n, FILE *fp);
    void (*free_priv)(struct cfw_sink *s);
};

struct cfw_sink {
    const struct cfw_sink_ops *ops;
    char *name;
    struct cfw_route_cfg route;
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    char *ca_file;
    char **urls; /* endpoint URLs (may hold secrets) */
    char **display;
    size_t n_urls;
    struct cfw_secret_hold *hold; /* the sink's credentials, in the secret registry */
    char **secrets; /* values hidden only in this sink's answers (plain header values) */
    size_t n_secrets;
    const char *host;       /* borrowed from the set */
    const char *client_url; /* borrowed from the set */
    int64_t refresh_ms;     /* Alertmanager: re-send interval */
    void *priv;
};

extern const struct cfw_sink_ops cfw_sink_slack_ops;
extern const struct cfw_sink_ops cfw_sink_pagerduty_ops;
extern const struct cfw_sink_ops cfw_sink_webhook_ops;
extern const struct cfw_sink_ops cfw_sink_alertmanager_ops;
extern const struct cfw_sink_ops cfw_sink_stdout_ops;

/*
 * Reads every row of sc (their conf is s; no key check), then sc's check: the common keys,
 * then the type's.
 */
void cfw_sink_read_keys(const struct cfw_schema *sc, struct cfw_sink *s, const struct cfw_node *map,
                        const char *path, struct cfw_diag *diag);
/* Registers a credential of the sink with the secret registry (held while the sink lives). */
void cfw_sink_add_secret(struct cfw_sink *s, const char *secret);
/* Registers a header line "Name: value" of the sink (its value and its credential parts). */
void cfw_sink_add_header(struct cfw_sink *s, const char *line);
/*
 * Remembers a value hidden only in what this sink's receiver answers (a plain header value, too
 * common a word to replace in every text); cfw_sink_scrub replaces it after the registry's.
 */
void cfw_sink_add_private(struct cfw_sink *s, const char *value);
/* Adds an endpoint URL; secret URLs are redacted for display (keep_path for plain ones). */
void cfw_sink_add_url(struct cfw_sink *s, const char *url, bool secret);
/*
 * A schema reader (conf: the sink) of a url/url_file pair that must be there: "a <type> sink
 * needs url or url_file" when neither is.
 */
cfw_schema_fn cfw_sink_read_required_url;
/* Checks that url is http:// or https:// with a host; the message never quotes the URL. */
bool cfw_sink_url_ok(const char *url);
/* Reads a url/url_file pair into an endpoint; returns 1 set, 0 absent, -1 error. */
int cfw_sink_parse_url(struct cfw_sink *s, const struct cfw_node *map, const char *path,
                       struct cfw_diag *diag);

/* The value of an incident field or "". */
const char *cfw_sink_field(const struct cfw_incident *inc, const char *name);
/* Copies s cut to max bytes (UTF-8 safe) with marker appended when cut (marker counted). */
char *cfw_sink_truncate(const char *s, size_t max, const char *marker);
/* Bytes of v dumped compact, counted without writing them (SIZE_MAX if it cannot be). */
size_t cfw_sink_json_len(const json_t *v);
/* Item i of a digest's list, as a new JSON value (arg: the caller's). */
typedef json_t *cfw_sink_item_fn(const struct cfw_notification *n, size_t i, const void *arg);
/*
 * Appends item(n, 0, arg), item(n, 1, arg) ... to list (a JSON array inside body, empty) while
 * body dumped compact stays within max bytes; returns how many it appended. An item is built
 * only when the ones before it fit. Counts that change with the result belong in body at their
 * widest when it is called.
 */
size_t cfw_sink_list_within(const json_t *body, json_t *list, const struct cfw_notification *n,
                            cfw_sink_item_fn *item, const void *arg, size_t max);
/* RFC 3339 time of epoch ms ("" for 0). */
void cfw_sink_time(int64_t ms, char *out, size_t outlen);
/* The incident as the versioned webhook/stdout JSON object. */
json_t *cfw_sink_incident_json(const struct cfw_incident *inc);
/* Common HTTP classification: 2xx done; 408, 425, 429, 5xx, no answer retry; rest permanent. */
void cfw_sink_classify_http(const struct cfw_sink *s, const struct cfw_http_response *resp,
                            struct cfw_sink_verdict *v);
/* A Discord-style JSON body's retry_after (float seconds) in ms, or -1. */
int64_t cfw_sink_json_retry_after(const char *body, size_t len);
/* Fills the parts of a request every HTTP sink shares; takes url and body. */
void cfw_sink_request_base(const struct cfw_sink *s, struct cfw_sink_request *rq, char *url,
                           char *body, size_t body_len);
/* Appends one "Name: value" header line (copied) to rq. */
void cfw_sink_request_header(struct cfw_sink_request *rq, const char *line);
/* "Open", "Reminder", ... for people. */
const char *cfw_sink_severity_label(enum cfw_severity sev);
/* Duration as "3h12m" / "45s". */
void cfw_sink_duration(int64_t ms, char *out, size_t outlen);

#endif
