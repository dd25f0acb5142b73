/*
 * The daemon's HTTP listener (libevent evhttp, loopback by default): routes by exact path or by
 * prefix, with caps on header and body sizes and a request timeout.
 */
#ifndef CFWATCHD_LISTENER_H
#define CFWATCHD_LISTENER_H

#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>

#include "cfwatchd/common.h"

#define CFW_LISTENER_MAX_HEADERS (16u * 1024u)
#define CFW_LISTENER_MAX_BODY (16u * 1024u * 1024u)
#define CFW_LISTENER_TIMEOUT_S 30
#define CFW_LISTENER_MAX_ROUTES 16

typedef void (*cfw_listener_handler)(struct evhttp_request *req, const char *path, void *arg);

struct cfw_listener;

/*
 * Binds addr ("host:port", "[v6]:port"; port 0 picks one) and serves on base. NULL with err
 * set when the address does not parse or cannot be bound.
 */
struct cfw_listener *cfw_listener_new(struct event_base *base, const char *addr,
                                      struct cfw_err *err);
void cfw_listener_free(struct cfw_listener *l);
/* Routes requests whose path equals path, or starts with it when prefix is true. */
void cfw_listener_route(struct cfw_listener *l, const char *path, int prefix,
                        cfw_listener_handler h, void *arg);
/* The bound port (useful with port 0). */
int cfw_listener_port(const struct cfw_listener *l);
/* Sets the body cap (e.g. the largest Logpush batch accepted). */
void cfw_listener_set_max_body(struct cfw_listener *l, size_t max);
/* Sends a text response with a status and content type. */
void cfw_listener_reply(struct evhttp_request *req, int code, const char *ctype,
                        const char *body, size_t len);

#endif
