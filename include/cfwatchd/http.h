/*
 * HTTP client on the libcurl multi interface driven by the application's libevent loop
 * (curl's multi-event pattern): one struct event per socket, one timer, never a blocking call.
 * Every request has connect and total timeouts, TLS verification always on (an optional CA
 * file), the proxy environment variables honoured (libcurl's default), a User-Agent of
 * cfwatchd/<version>, and caps on the response body and headers.
 */
#ifndef CFWATCHD_HTTP_H
#define CFWATCHD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/common.h"

struct event_base;

#define CFW_HTTP_USER_AGENT "cfwatchd/" CFW_VERSION
#define CFW_HTTP_CONNECT_TIMEOUT_DEFAULT_MS 10000
#define CFW_HTTP_TIMEOUT_DEFAULT_MS 30000
/* Response bytes kept; the rest is read and discarded (body_truncated is set). */
#define CFW_HTTP_BODY_MAX_DEFAULT (64u * 1024u)
/* Response header bytes accepted; beyond it the transfer fails. */
#define CFW_HTTP_HEADER_MAX_DEFAULT (32u * 1024u)
/* A Retry-After beyond this is clamped. */
#define CFW_HTTP_RETRY_AFTER_MAX_MS (6LL * 3600 * 1000)

struct cfw_http;
struct cfw_http_req;

struct cfw_http_request {
    const char *method;         /* NULL: POST when a body is given, else GET */
    const char *url;            /* may contain a secret: never logged by this module */
    const char *const *headers; /* "Name: value" lines, NULL-terminated, may be NULL */
    const char *body;
    size_t body_len;
    int64_t connect_timeout_ms; /* 0: default */
    int64_t timeout_ms;         /* 0: default */
    const char *ca_file;        /* NULL: the system's CA store */
    size_t body_max;            /* 0: CFW_HTTP_BODY_MAX_DEFAULT */
    size_t header_max;          /* 0: CFW_HTTP_HEADER_MAX_DEFAULT */
};

struct cfw_http_response {
    long status;       /* 0 when no HTTP response arrived */
    int curl_code;     /* CURLE_OK on a completed exchange */
    const char *error; /* transport error text ("" when none); may name the host */
    const char *body;  /* NUL-terminated, at most body_max bytes */
    size_t body_len;
    bool body_truncated;
    int64_t retry_after_ms;   /* from Retry-After (seconds or HTTP-date), -1 when absent */
    const char *content_type; /* "" when absent */
    int64_t elapsed_ms;
};

/* Called once per request from the event loop; must not free the client. */
typedef void (*cfw_http_done_cb)(const struct cfw_http_response *resp, void *arg);

/* Creates a client on base (libcurl's global init must have happened, see cfw_http_global). */
struct cfw_http *cfw_http_new(struct event_base *base, struct cfw_err *err);
/* Cancels every pending request (no callbacks) and tears curl down; call before freeing base. */
void cfw_http_free(struct cfw_http *h);
/* Initialises libcurl once per process; returns 0 or -1. */
int cfw_http_global(struct cfw_err *err);

/* Starts a request; the request's strings are copied. Returns a handle or NULL with err set. */
struct cfw_http_req *cfw_http_start(struct cfw_http *h, const struct cfw_http_request *rq,
                                    cfw_http_done_cb cb, void *arg, struct cfw_err *err);
/* Cancels one pending request without calling its callback. */
void cfw_http_cancel(struct cfw_http *h, struct cfw_http_req *req);
/* Number of requests in flight. */
size_t cfw_http_active(const struct cfw_http *h);

/*
 * Parses a Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate, RFC 850, asctime),
 * relative to now_wall_ms. Returns milliseconds to wait (0 for a date in the past, clamped to
 * CFW_HTTP_RETRY_AFTER_MAX_MS), or -1 when the value is not valid.
 */
int64_t cfw_http_parse_retry_after(const char *value, int64_t now_wall_ms);

#endif
