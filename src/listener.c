/* The daemon's HTTP listener: evhttp with exact and prefix routes and size caps. */
#include "cfwatchd/listener.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "cfwatchd/log.h"

struct route {
    char *path;
    int prefix;
    cfw_listener_handler h;
    void *arg;
};

struct cfw_listener {
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    struct route routes[CFW_LISTENER_MAX_ROUTES];
    size_t nroutes;
    int port;
};

void cfw_listener_reply(struct evhttp_request *req, int code, const char *ctype,
                        const char *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    const char *reason = code == 200   ? "OK"
                         : code == 401 ? "Unauthorized"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 413 ? "Payload Too Large"
                         : code == 503 ? "Service Unavailable"
                         : code >= 500 ? "Error"
                                       : "Bad Request";

    if (b == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, body, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void dispatch(struct evhttp_request *req, void *arg)
{
    struct cfw_listener *l = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;

    if (path == NULL || path[0] == '\0') {
        path = "/";
    }
    for (size_t i = 0; i < l->nroutes; i++) {
        const struct route *r = &l->routes[i];
        if (r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0 : strcmp(path, r->path) == 0) {
            r->h(req, path, r->arg);
            return;
        }
    }
    cfw_listener_reply(req, 404, "text/plain; charset=utf-8", "not found\n", 10);
}

/* Splits "host:port" or "[v6]:port"; host is written to out. */
static int split_addr(const char *addr, char *host, size_t hostlen, int *port)
{
    const char *colon;
    uint64_t p;
    size_t hl;

    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':') {
            return -1;
        }
        hl = (size_t)(end - addr - 1);
        addr++;
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL) {
            return -1;
        }
        hl = (size_t)(colon - addr);
    }
    if (hl == 0 || hl >= hostlen || cfw_parse_u64(colon + 1, &p) != 0 || p > 65535) {
        return -1;
    }
    memcpy(host, addr, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

struct cfw_listener *cfw_listener_new(struct event_base *base, const char *addr,
                                      struct cfw_err *err)
{
    struct cfw_listener *l;
    char host[256];
    int port;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (split_addr(addr, host, sizeof(host), &port) != 0) {
        cfw_err_set(err, "listen: '%s' is not host:port", addr);
        return NULL;
    }
    l = cfw_xcalloc(1, sizeof(*l));
    l->http = evhttp_new(base);
    if (l->http == NULL) {
        cfw_err_set(err, "listen: cannot create the HTTP server");
        free(l);
        return NULL;
    }
    evhttp_set_max_headers_size(l->http, CFW_LISTENER_MAX_HEADERS);
    evhttp_set_max_body_size(l->http, CFW_LISTENER_MAX_BODY);
    evhttp_set_timeout(l->http, CFW_LISTENER_TIMEOUT_S);
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(l->http, dispatch, l);
    l->sock = evhttp_bind_socket_with_handle(l->http, host, (ev_uint16_t)port);
    if (l->sock == NULL) {
        cfw_err_set(err, "listen: cannot bind %s", addr);
        cfw_listener_free(l);
        return NULL;
    }
    if (getsockname(evhttp_bound_socket_get_fd(l->sock), (struct sockaddr *)&ss, &sl) == 0) {
        l->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    return l;
}

void cfw_listener_free(struct cfw_listener *l)
{
    if (l == NULL) {
        return;
    }
    if (l->http != NULL) {
        evhttp_free(l->http);
    }
    for (size_t i = 0; i < l->nroutes; i++) {
        free(l->routes[i].path);
    }
    free(l);
}

void cfw_listener_route(struct cfw_listener *l, const char *path, int prefix,
                        cfw_listener_handler h, void *arg)
{
    if (l->nroutes == CFW_LISTENER_MAX_ROUTES) {
        cfw_log_err("listener: too many routes; %s not served", path);
        return;
    }
    l->routes[l->nroutes].path = cfw_xstrdup(path);
    l->routes[l->nroutes].prefix = prefix;
    l->routes[l->nroutes].h = h;
    l->routes[l->nroutes].arg = arg;
    l->nroutes++;
}

int cfw_listener_port(const struct cfw_listener *l)
{
    return l->port;
}

void cfw_listener_set_max_body(struct cfw_listener *l, size_t max)
{
    evhttp_set_max_body_size(l->http, max);
}
