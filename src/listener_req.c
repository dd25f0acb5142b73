/*
 * A request as the listener's routes see it: the routes and how a request finds one (its check,
 * then its handler), the request's accessors, and the answer (status line, headers and body
 * queued on the connection).
 */
#include "cfwatchd/listener.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cfwatchd/log.h"
#include "listener_int.h"

/* ---- routing ---- */

void cfw_listener_route(struct cfw_listener *l, const char *path, int prefix,
                        cfw_listener_check check, cfw_listener_handler h, void *arg)
{
    if (l->nroutes == CFW_LISTENER_MAX_ROUTES) {
        cfw_log_err("listener: too many routes; %s not served", path);
        return;
    }
    l->routes[l->nroutes].path = cfw_xstrdup(path);
    l->routes[l->nroutes].prefix = prefix;
    l->routes[l->nroutes].check = check;
    l->routes[l->nroutes].h = h;
    l->routes[l->nroutes].arg = arg;
    l->nroutes++;
}

static const struct route *find_route(const struct cfw_listener *l, const char *path)
{
    for (size_t i = 0; i < l->nroutes; i++) {
        const struct route *r = &l->routes[i];
        if (r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0 : strcmp(path, r->path) == 0) {
            return r;
        }
    }
    return NULL;
}

bool cfw_listener_req_route(struct cfw_listener_req *req)
{
    const struct route *r = find_route(req->c->l, req->path);

    if (r == NULL) {
        cfw_listener_reply(req, 404, "text/plain; charset=utf-8", "not found\n", 10);
        return true;
    }
    req->route = r;
    if (r->check != NULL) {
        int rc = r->check(req, req->path, r->arg);
        if (!req->replied && rc != 0) {
            cfw_listener_reply(req, 500, "text/plain; charset=utf-8", "check failed\n", 13);
        }
    }
    return req->replied;
}

void cfw_listener_req_handle(struct cfw_listener_req *req)
{
    req->body_done = true;
    req->route->h(req, req->path, req->route->arg);
    if (!req->replied) {
        cfw_log_err("listener: the handler of %s did not answer", req->route->path);
        cfw_listener_reply(req, 500, "text/plain; charset=utf-8", "no answer\n", 10);
    }
}

/* ---- requests ---- */

void cfw_listener_req_free(struct conn *c)
{
    struct cfw_listener_req *req = c->req;

    if (req == NULL) {
        return;
    }
    c->l->body_bytes -= req->body_cap;
    free(req->body);
    free(req->raw);
    cfw_buf_free(&req->extra);
    free(req);
    c->req = NULL;
}

void cfw_listener_req_terminate(struct cfw_listener_req *req)
{
    struct cfw_listener_head *h = &req->head;
    uintptr_t lo = (uintptr_t)req->raw, hi = lo + h->head_len;
    /* an absolute-form target without a path has the static "/" as its path */
    bool own_path = (uintptr_t)h->path >= lo && (uintptr_t)h->path < hi;

    for (size_t i = 0; i < h->nheaders; i++) {
        char *name = (char *)(uintptr_t)h->headers[i].name;
        char *value = (char *)(uintptr_t)h->headers[i].value;
        name[h->headers[i].name_len] = '\0';
        value[h->headers[i].value_len] = '\0';
    }
    if (own_path) {
        ((char *)(uintptr_t)h->path)[h->path_len] = '\0';
    }
    if (h->query != NULL) {
        ((char *)(uintptr_t)h->query)[h->query_len] = '\0';
    }
    req->path = own_path ? h->path : "/";
    req->query = h->query;
}

enum cfw_listener_method cfw_listener_req_method(const struct cfw_listener_req *req)
{
    return req->head.method;
}

const char *cfw_listener_req_path(const struct cfw_listener_req *req)
{
    return req->path;
}

const char *cfw_listener_req_query(const struct cfw_listener_req *req)
{
    return req->query;
}

const char *cfw_listener_req_header(const struct cfw_listener_req *req, const char *name)
{
    for (size_t i = 0; i < req->head.nheaders; i++) {
        if (strcasecmp(req->head.headers[i].name, name) == 0) {
            return req->head.headers[i].value;
        }
    }
    return NULL;
}

int64_t cfw_listener_req_content_length(const struct cfw_listener_req *req)
{
    return req->head.chunked ? -1 : req->head.content_length;
}

void cfw_listener_req_set_max_body(struct cfw_listener_req *req, size_t max)
{
    if (!req->body_done && req->body_cap == 0) {
        req->max_body = max;
    }
}

const char *cfw_listener_req_body(const struct cfw_listener_req *req, size_t *len)
{
    *len = req->body != NULL ? req->body_len : 0;
    return req->body != NULL ? req->body : "";
}

char *cfw_listener_req_take_body(struct cfw_listener_req *req, size_t *len)
{
    char *b = req->body;

    *len = b != NULL ? req->body_len : 0;
    if (b == NULL) {
        return cfw_xstrdup("");
    }
    req->c->l->body_bytes -= req->body_cap;
    req->body = NULL;
    req->body_len = 0;
    req->body_cap = 0;
    return b;
}

void cfw_listener_req_add_header(struct cfw_listener_req *req, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n:") != NULL || strpbrk(value, "\r\n") != NULL) {
        cfw_log_err("listener: header %s refused (CR, LF or a colon in it)", name);
        return;
    }
    cfw_buf_printf(&req->extra, "%s: %s\r\n", name, value);
}

/* ---- the answer ---- */

const char *cfw_listener_status_text(int code)
{
    switch (code) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Supported"; /* 501: a method or transfer coding this server lacks */
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return code < 300 ? "OK" : code < 500 ? "Bad Request" : "Error";
    }
}

static void http_date(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, n, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0) {
        out[0] = '\0';
    }
}

void cfw_listener_put_response(struct conn *c, int code, const char *ctype, const char *extra,
                               const char *body, size_t len, bool head_only, bool close_conn)
{
    char date[64];

    http_date(date, sizeof(date));
    cfw_buf_printf(&c->out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", code, cfw_listener_status_text(code),
                   date);
    if (ctype != NULL) {
        cfw_buf_printf(&c->out, "Content-Type: %s\r\n", ctype);
    }
    cfw_buf_printf(&c->out, "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s\r\n", len,
                   extra != NULL ? extra : "", close_conn ? "Connection: close\r\n" : "");
    if (!head_only && len > 0) {
        cfw_buf_append(&c->out, body, len);
    }
}

void cfw_listener_reply(struct cfw_listener_req *req, int code, const char *ctype, const char *body,
                        size_t len)
{
    struct conn *c;
    bool close_conn;

    if (req == NULL || req->replied) {
        return;
    }
    c = req->c;
    req->replied = true;
    /* a body left unread cannot be skipped to find the next request */
    close_conn = !req->head.keep_alive || !req->body_done;
    c->close_after = c->close_after || close_conn;
    cfw_listener_put_response(c, code, ctype, req->extra.data, body, len,
                              req->head.method == CFW_LISTENER_HEAD, c->close_after);
}
