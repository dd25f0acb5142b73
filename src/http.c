/*
 * libcurl multi interface on libevent, in the shape of curl's multi-event example: the socket
 * callback keeps one struct event per socket (attached with curl_multi_assign), the timer
 * callback only arms one libevent timer, and the event callbacks call curl_multi_socket_action
 * and then collect finished transfers.
 */
#include "cfwatchd/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfwatchd/log.h"

struct sockctx {
    struct event *ev;
    curl_socket_t fd;
    struct cfw_http *h;
};

struct cfw_http_req {
    struct cfw_http *h;
    CURL *easy;
    struct curl_slist *headers;
    char *url;
    char *body;
    char *ca_file;
    struct cfw_buf resp;
    bool truncated;
    size_t header_bytes;
    size_t header_max;
    char *retry_after;
    char *content_type;
    char errbuf[CURL_ERROR_SIZE];
    char ownerr[128]; /* a cap this module enforced; curl's own text would be vaguer */
    int64_t start_ms;
    cfw_http_done_cb cb;
    void *arg;
    struct cfw_http_req *prev;
    struct cfw_http_req *next;
};

struct cfw_http {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct cfw_http_req *reqs;
    size_t active;
};

static bool curl_ready;

int cfw_http_global(struct cfw_err *err)
{
    CURLcode rc;

    if (curl_ready) {
        return 0;
    }
    rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        cfw_err_set(err, "libcurl initialisation failed: %s", curl_easy_strerror(rc));
        return -1;
    }
    curl_ready = true;
    return 0;
}

static void req_free(struct cfw_http_req *r)
{
    if (r == NULL) {
        return;
    }
    if (r->easy != NULL) {
        curl_easy_cleanup(r->easy);
    }
    curl_slist_free_all(r->headers);
    free(r->url);
    free(r->body);
    free(r->ca_file);
    free(r->retry_after);
    free(r->content_type);
    cfw_buf_free(&r->resp);
    free(r);
}

static void req_unlink(struct cfw_http *h, struct cfw_http_req *r)
{
    if (r->prev != NULL) {
        r->prev->next = r->next;
    } else {
        h->reqs = r->next;
    }
    if (r->next != NULL) {
        r->next->prev = r->prev;
    }
    r->prev = r->next = NULL;
    h->active--;
}

static void finish(struct cfw_http *h, CURL *easy, CURLcode code)
{
    struct cfw_http_req *r = NULL;
    struct cfw_http_response resp;
    long status = 0;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(h->multi, easy);
    req_unlink(h, r);
    memset(&resp, 0, sizeof(resp));
    resp.status = code == CURLE_OK ? status : 0;
    resp.curl_code = (int)code;
    if (code != CURLE_OK) {
        resp.error = r->ownerr[0] != '\0'   ? r->ownerr
                     : r->errbuf[0] != '\0' ? r->errbuf
                                            : curl_easy_strerror(code);
    } else {
        resp.error = "";
    }
    resp.body = r->resp.data != NULL ? r->resp.data : "";
    resp.body_len = r->resp.len;
    resp.body_truncated = r->truncated;
    resp.retry_after_ms = -1;
    if (r->retry_after != NULL) {
        resp.retry_after_ms = cfw_http_parse_retry_after(r->retry_after, cfw_now_wall_ms());
    }
    resp.content_type = r->content_type != NULL ? r->content_type : "";
    resp.elapsed_ms = cfw_now_mono_ms() - r->start_ms;
    if (r->cb != NULL) {
        r->cb(&resp, r->arg);
    }
    req_free(r);
}

static void check_done(struct cfw_http *h)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE) {
            finish(h, msg->easy_handle, msg->data.result);
        }
    }
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_http *h = arg;
    int flags = 0;
    int running = 0;

    if (what & EV_READ) {
        flags |= CURL_CSELECT_IN;
    }
    if (what & EV_WRITE) {
        flags |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_done(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_http *h = arg;
    int running = 0;

    (void)fd;
    (void)what;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

/* CURLMOPT_TIMERFUNCTION: arm or delete the one timer; curl itself is not called from here. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct cfw_http *h = userp;
    struct timeval tv;

    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(h->timer);
        return 0;
    }
    tv = cfw_ms_timeval(timeout_ms);
    evtimer_add(h->timer, &tv);
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: one persistent event per socket, kept as the socket's pointer. */
static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct cfw_http *h = userp;
    struct sockctx *sc = socketp;
    short kind = EV_PERSIST;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        /* a remove for a socket never added has no context: nothing to do */
        if (sc != NULL) {
            event_free(sc->ev);
            free(sc);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    if (what & CURL_POLL_IN) {
        kind |= EV_READ;
    }
    if (what & CURL_POLL_OUT) {
        kind |= EV_WRITE;
    }
    if (sc == NULL) {
        sc = calloc(1, sizeof(*sc));
        if (sc == NULL) {
            return -1;
        }
        sc->fd = s;
        sc->h = h;
        sc->ev = event_new(h->base, s, kind, on_socket_event, h);
        if (sc->ev == NULL) {
            free(sc);
            return -1;
        }
        curl_multi_assign(h->multi, s, sc);
    } else {
        event_del(sc->ev);
        event_assign(sc->ev, h->base, s, kind, on_socket_event, h);
    }
    event_add(sc->ev, NULL);
    return 0;
}

struct cfw_http *cfw_http_new(struct event_base *base, struct cfw_err *err)
{
    struct cfw_http *h;

    if (cfw_http_global(err) != 0) {
        return NULL;
    }
    h = cfw_xcalloc(1, sizeof(*h));
    h->base = base;
    h->timer = evtimer_new(base, on_timer, h);
    h->multi = curl_multi_init();
    if (h->timer == NULL || h->multi == NULL) {
        cfw_err_set(err, "cannot create the HTTP client");
        cfw_http_free(h);
        return NULL;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    return h;
}

void cfw_http_free(struct cfw_http *h)
{
    if (h == NULL) {
        return;
    }
    while (h->reqs != NULL) {
        cfw_http_cancel(h, h->reqs);
    }
    if (h->multi != NULL) {
        curl_multi_cleanup(h->multi);
    }
    if (h->timer != NULL) {
        event_free(h->timer);
    }
    free(h);
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct cfw_http_req *r = userdata;
    size_t n = size * nmemb;
    size_t room = r->resp.max > r->resp.len ? r->resp.max - r->resp.len : 0;

    if (n > room) {
        r->truncated = true;
        if (room > 0) {
            cfw_buf_append(&r->resp, ptr, room);
        }
        return n;
    }
    cfw_buf_append(&r->resp, ptr, n);
    return n;
}

static char *header_value(const char *line, size_t len, const char *name)
{
    size_t nl = strlen(name);
    size_t a, b;

    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') {
        return NULL;
    }
    a = nl + 1;
    b = len;
    while (a < b && (line[a] == ' ' || line[a] == '\t')) {
        a++;
    }
    while (b > a && isspace((unsigned char)line[b - 1])) {
        b--;
    }
    return cfw_xstrndup(line + a, b - a);
}

static size_t header_cb(char *ptr, size_t size, size_t nitems, void *userdata)
{
    struct cfw_http_req *r = userdata;
    size_t n = size * nitems;
    char *v;

    r->header_bytes += n;
    if (r->header_bytes > r->header_max) {
        snprintf(r->ownerr, sizeof(r->ownerr), "response headers over %zu bytes", r->header_max);
        return 0;
    }
    /* a new status line (after 100 Continue) starts a new header set */
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        free(r->retry_after);
        r->retry_after = NULL;
        free(r->content_type);
        r->content_type = NULL;
        return n;
    }
    if ((v = header_value(ptr, n, "Retry-After")) != NULL) {
        free(r->retry_after);
        r->retry_after = v;
    } else if ((v = header_value(ptr, n, "Content-Type")) != NULL) {
        free(r->content_type);
        r->content_type = v;
    }
    return n;
}

struct cfw_http_req *cfw_http_start(struct cfw_http *h, const struct cfw_http_request *rq,
                                    cfw_http_done_cb cb, void *arg, struct cfw_err *err)
{
    struct cfw_http_req *r;
    const char *method = rq->method;
    CURLMcode mc;

    if (rq->url == NULL) {
        cfw_err_set(err, "no URL");
        return NULL;
    }
    r = cfw_xcalloc(1, sizeof(*r));
    r->h = h;
    r->cb = cb;
    r->arg = arg;
    r->url = cfw_xstrdup(rq->url);
    cfw_buf_init(&r->resp, rq->body_max != 0 ? rq->body_max : CFW_HTTP_BODY_MAX_DEFAULT);
    r->header_max = rq->header_max != 0 ? rq->header_max : CFW_HTTP_HEADER_MAX_DEFAULT;
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        cfw_err_set(err, "cannot create a curl handle");
        req_free(r);
        return NULL;
    }
    for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
        r->headers = curl_slist_append(r->headers, rq->headers[i]);
    }
    /* no "Expect: 100-continue" round trip for small JSON bodies */
    r->headers = curl_slist_append(r->headers, "Expect:");
    if (method == NULL) {
        method = rq->body != NULL ? "POST" : "GET";
    }
    curl_easy_setopt(r->easy, CURLOPT_URL, r->url);
    curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_USERAGENT, CFW_HTTP_USER_AGENT);
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (rq->ca_file != NULL && rq->ca_file[0] != '\0') {
        r->ca_file = cfw_xstrdup(rq->ca_file);
        curl_easy_setopt(r->easy, CURLOPT_CAINFO, r->ca_file);
    }
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(rq->connect_timeout_ms > 0 ? rq->connect_timeout_ms
                                                       : CFW_HTTP_CONNECT_TIMEOUT_DEFAULT_MS));
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS,
                     (long)(rq->timeout_ms > 0 ? rq->timeout_ms : CFW_HTTP_TIMEOUT_DEFAULT_MS));
    curl_easy_setopt(r->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    if (rq->body != NULL) {
        r->body = cfw_xstrndup(rq->body, rq->body_len);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
    }
    if (strcmp(method, "POST") != 0 && strcmp(method, "GET") != 0) {
        curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0 && rq->body == NULL) {
        curl_easy_setopt(r->easy, CURLOPT_HTTPGET, 1L);
    }
    r->start_ms = cfw_now_mono_ms();
    r->next = h->reqs;
    if (h->reqs != NULL) {
        h->reqs->prev = r;
    }
    h->reqs = r;
    h->active++;
    mc = curl_multi_add_handle(h->multi, r->easy);
    if (mc != CURLM_OK) {
        cfw_err_set(err, "cannot start the request: %s", curl_multi_strerror(mc));
        req_unlink(h, r);
        req_free(r);
        return NULL;
    }
    return r;
}

void cfw_http_cancel(struct cfw_http *h, struct cfw_http_req *req)
{
    if (h == NULL || req == NULL) {
        return;
    }
    curl_multi_remove_handle(h->multi, req->easy);
    req_unlink(h, req);
    req_free(req);
}

size_t cfw_http_active(const struct cfw_http *h)
{
    return h != NULL ? h->active : 0;
}

int64_t cfw_http_parse_retry_after(const char *value, int64_t now_wall_ms)
{
    const char *p = value;
    const char *end;
    int64_t ms = 0;
    time_t t;

    if (value == NULL) {
        return -1;
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    end = p + strlen(p);
    while (end > p && isspace((unsigned char)end[-1])) {
        end--;
    }
    if (end == p) {
        return -1;
    }
    if (isdigit((unsigned char)*p)) {
        /* delta-seconds; a fraction (seen from some receivers) is rounded up */
        const char *q = p;
        int64_t secs = 0;
        while (q < end && isdigit((unsigned char)*q)) {
            if (secs > CFW_HTTP_RETRY_AFTER_MAX_MS / 1000) {
                return CFW_HTTP_RETRY_AFTER_MAX_MS;
            }
            secs = secs * 10 + (*q - '0');
            q++;
        }
        ms = secs * 1000;
        if (q < end && *q == '.') {
            int64_t frac = 0;
            int64_t scale = 100;
            q++;
            if (q == end) {
                return -1;
            }
            while (q < end && isdigit((unsigned char)*q)) {
                frac += (*q - '0') * scale;
                scale /= 10;
                q++;
            }
            ms += frac;
        }
        if (q != end) {
            return -1;
        }
    } else {
        char date[128];
        size_t n = (size_t)(end - p);
        if (n >= sizeof(date)) {
            return -1;
        }
        memcpy(date, p, n);
        date[n] = '\0';
        t = curl_getdate(date, NULL);
        if (t == (time_t)-1) {
            return -1;
        }
        ms = (int64_t)t * 1000 - now_wall_ms;
        if (ms < 0) {
            ms = 0;
        }
    }
    return ms > CFW_HTTP_RETRY_AFTER_MAX_MS ? CFW_HTTP_RETRY_AFTER_MAX_MS : ms;
}
