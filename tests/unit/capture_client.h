/*
 * Test helper: runs tests/integration/lib/capture_server.py as a child process (real loopback
 * HTTP) and talks to its control port with blocking libcurl calls. Header-only, for the
 * delivery tests (test_http.c, test_delivery.c).
 */
#ifndef CFW_TEST_CAPTURE_CLIENT_H
#define CFW_TEST_CAPTURE_CLIENT_H

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct capture {
    pid_t pid;
    int port;
    int control;
    int stdin_fd;
};

static inline int capture_start(struct capture *c)
{
    int in[2], out[2];
    char line[256];
    size_t n = 0;
    json_t *o;

    memset(c, 0, sizeof(*c));
    if (pipe(in) != 0 || pipe(out) != 0) {
        return -1;
    }
    c->pid = fork();
    if (c->pid < 0) {
        return -1;
    }
    if (c->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execlp("python3", "python3", CFW_SOURCE_DIR "/tests/integration/lib/capture_server.py",
               (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    c->stdin_fd = in[1];
    while (n + 1 < sizeof(line)) {
        ssize_t r = read(out[0], line + n, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0 || line[n] == '\n') {
            break;
        }
        n++;
    }
    line[n] = '\0';
    close(out[0]);
    o = json_loads(line, 0, NULL);
    if (o == NULL) {
        return -1;
    }
    c->port = (int)json_integer_value(json_object_get(o, "port"));
    c->control = (int)json_integer_value(json_object_get(o, "control"));
    json_decref(o);
    return c->port > 0 && c->control > 0 ? 0 : -1;
}

static inline void capture_stop(struct capture *c)
{
    int st;

    if (c->pid <= 0) {
        return;
    }
    close(c->stdin_fd);
    for (int i = 0; i < 50; i++) {
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
            c->pid = 0;
            return;
        }
        usleep(100000);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, &st, 0);
    c->pid = 0;
}

static inline size_t capture_sink_cb(char *p, size_t sz, size_t nm, void *ud)
{
    struct {
        char *data;
        size_t len;
    } *b = ud;
    size_t n = sz * nm;

    b->data = realloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* POSTs (body != NULL) or GETs path on the control port; returns the parsed JSON answer. */
static inline json_t *capture_ctl(const struct capture *c, const char *path, const char *body)
{
    CURL *e = curl_easy_init();
    char url[128];
    struct {
        char *data;
        size_t len;
    } b = {NULL, 0};
    json_t *o = NULL;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", c->control, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, capture_sink_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 30L);
    if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    }
    if (curl_easy_perform(e) == CURLE_OK && b.data != NULL) {
        o = json_loads(b.data, 0, NULL);
    }
    free(b.data);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    return o;
}

/* Posts a control command and drops the answer. */
static inline void capture_cmd(const struct capture *c, const char *path, const char *body)
{
    json_decref(capture_ctl(c, path, body != NULL ? body : "{}"));
}

/* The recorded requests to path (all when NULL), as a new JSON array. */
static inline json_t *capture_requests(const struct capture *c, const char *path)
{
    json_t *all = capture_ctl(c, "/requests", NULL);
    json_t *out = json_array();
    size_t i;
    json_t *r;

    json_array_foreach (all, i, r) {
        if (path == NULL || strcmp(json_string_value(json_object_get(r, "path")), path) == 0) {
            json_array_append(out, r);
        }
    }
    json_decref(all);
    return out;
}

static inline void capture_url(const struct capture *c, const char *path, char *out, size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%d%s", c->port, path);
}

#endif
