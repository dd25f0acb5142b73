/*
 * Unit tests for http.c against real loopback servers: the capture server (child process),
 * and a TLS server with a throw-away certificate for the verification test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "capture_client.h"
#include "cfwatchd/common.h"
#include "cfwatchd/http.h"
#include "test_util.h"

struct result {
    int done;
    long status;
    int curl_code;
    char *body;
    size_t body_len;
    bool truncated;
    int64_t retry_after_ms;
    char error[256];
    char content_type[64];
};

static struct capture cap;

static void on_done(const struct cfw_http_response *resp, void *arg)
{
    struct result *r = arg;

    r->done++;
    r->status = resp->status;
    r->curl_code = resp->curl_code;
    r->body = cfw_xstrndup(resp->body, resp->body_len);
    r->body_len = resp->body_len;
    r->truncated = resp->body_truncated;
    r->retry_after_ms = resp->retry_after_ms;
    snprintf(r->error, sizeof(r->error), "%s", resp->error);
    snprintf(r->content_type, sizeof(r->content_type), "%s", resp->content_type);
}

/* n results, done when each has its answer */
struct results {
    struct result *v;
    size_t n;
};

static int count_done(const struct results *rs)
{
    int done = 0;

    for (size_t i = 0; i < rs->n; i++) {
        done += rs->v[i].done;
    }
    return done;
}

static bool all_done(void *arg)
{
    const struct results *rs = arg;

    return count_done(rs) >= (int)rs->n;
}

static void fetch(struct cfw_http_request *rq, struct result *r)
{
    struct results one = {r, 1};

    struct event_base *base = event_base_new();
    struct cfw_err err = {0};
    struct cfw_http *h = cfw_http_new(base, &err);

    assert_non_null(h);
    memset(r, 0, sizeof(*r));
    assert_non_null(cfw_http_start(h, rq, on_done, r, &err));
    assert_int_equal(cfw_http_active(h), 1);
    loop_run_until(base, all_done, &one, 20000);
    assert_int_equal(r->done, 1);
    assert_int_equal(cfw_http_active(h), 0);
    cfw_http_free(h);
    event_base_free(base);
}

static int setup(void **state)
{
    (void)state;
    return capture_start(&cap);
}

static int teardown(void **state)
{
    (void)state;
    capture_stop(&cap);
    return 0;
}

static void test_retry_after_parse(void **state)
{
    /* Wed, 21 Oct 2015 07:28:00 GMT */
    const int64_t at = 1445412480LL * 1000;
    const struct {
        const char *text;
        int64_t now_ms;
        int64_t want;
    } cases[] = {
        {"2", 0, 2000},
        {" 120 ", 0, 120000},
        {"1.5", 0, 1500},
        {"0", 0, 0},
        {"", 0, -1},
        {"soon", 0, -1},
        {"5s", 0, -1},
        {"-3", 0, -1},
        {"99999999999999999999", 0, CFW_HTTP_RETRY_AFTER_MAX_MS},
        {"Wed, 21 Oct 2015 07:28:00 GMT", at - 10000, 10000},
        {"Wednesday, 21-Oct-15 07:28:00 GMT", at - 3000, 3000},
        {"Wed Oct 21 07:28:00 2015", at - 4000, 4000},
        /* a date in the past means "now" */
        {"Wed, 21 Oct 2015 07:28:00 GMT", at + 5000, 0},
        {"Wed, 21 Oct 2015 07:28:00 GMT", 0, CFW_HTTP_RETRY_AFTER_MAX_MS},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(cfw_http_parse_retry_after(cases[i].text, cases[i].now_ms), cases[i].want);
    }
}

/* A request to a path of the capture server, and what came back. */
struct call {
    char url[128];
    struct cfw_http_request rq;
    struct result r;
};

/* Aims c at path with body (its length taken with strlen when len is -1). */
static void call_init(struct call *c, const char *path, const char *body, ssize_t len)
{
    memset(c, 0, sizeof(*c));
    capture_url(&cap, path, c->url, sizeof(c->url));
    c->rq.url = c->url;
    c->rq.body = body;
    c->rq.body_len = len >= 0 ? (size_t)len : strlen(body);
}

/* Sends c's request and frees the body of the answer before that. */
static void call_fetch(struct call *c)
{
    free(c->r.body);
    fetch(&c->rq, &c->r);
}

static void test_post_and_answer(void **state)
{
    struct call c;
    const char *hdrs[] = {"Content-Type: application/json", "X-Test: 1", NULL};
    json_t *reqs;
    json_t *rec;

    (void)state;
    capture_cmd(&cap, "/script",
                "{\"path\":\"/a\",\"responses\":[{\"status\":429,\"headers\":{\"Retry-After\":"
                "\"7\",\"Content-Type\":\"application/json\"},\"body\":"
                "\"{\\\"retry_after\\\":7}\"}]}");
    call_init(&c, "/a", "{\"x\":1}", 7);
    c.rq.headers = hdrs;
    call_fetch(&c);
    assert_int_equal(c.r.status, 429);
    assert_int_equal(c.r.retry_after_ms, 7000);
    assert_string_equal(c.r.body, "{\"retry_after\":7}");
    assert_string_equal(c.r.content_type, "application/json");
    call_fetch(&c);
    assert_int_equal(c.r.status, 200);
    assert_int_equal(c.r.retry_after_ms, -1);
    assert_string_equal(c.r.body, "ok");
    free(c.r.body);
    reqs = capture_requests(&cap, "/a");
    assert_int_equal(json_array_size(reqs), 2);
    rec = json_array_get(reqs, 0);
    assert_string_equal(json_string_value(json_object_get(rec, "method")), "POST");
    assert_string_equal(json_string_value(json_object_get(rec, "body")), "{\"x\":1}");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "headers"), "user-agent")),
        "cfwatchd/" CFW_VERSION);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(rec, "headers"), "x-test")), "1");
    assert_null(json_object_get(json_object_get(rec, "headers"), "expect"));
    json_decref(reqs);
}

static void test_body_cap(void **state)
{
    struct call c;
    char *big = str_repeat('b', 20000);
    char *cmd;

    (void)state;
    cmd =
        cfw_xasprintf("{\"path\":\"/big\",\"responses\":[{\"status\":200,\"body\":\"%s\"}]}", big);
    capture_cmd(&cap, "/script", cmd);
    call_init(&c, "/big", "", -1);
    c.rq.body_max = 100;
    call_fetch(&c);
    assert_int_equal(c.r.status, 200);
    assert_int_equal(c.r.body_len, 100);
    assert_true(c.r.truncated);
    free(c.r.body);
    free(cmd);
    free(big);
}

static void test_header_cap(void **state)
{
    struct call c;
    char *big = str_repeat('h', 3000);
    char *cmd;

    (void)state;
    cmd = cfw_xasprintf("{\"path\":\"/hdr\",\"responses\":[{\"status\":200,\"headers\":{\"X-A\":"
                        "\"%s\",\"X-B\":\"%s\"},\"body\":\"ok\"}]}",
                        big, big);
    capture_cmd(&cap, "/script", cmd);
    call_init(&c, "/hdr", "", -1);
    c.rq.header_max = 4096;
    call_fetch(&c);
    assert_int_equal(c.r.status, 0);
    assert_non_null(strstr(c.r.error, "headers over"));
    free(c.r.body);
    free(cmd);
    free(big);
}

static void test_timeout(void **state)
{
    struct call c;
    int64_t t0;

    (void)state;
    capture_cmd(
        &cap, "/script",
        "{\"path\":\"/slow\",\"responses\":[{\"status\":200,\"delay\":3,\"body\":\"ok\"}]}");
    call_init(&c, "/slow", "x", 1);
    c.rq.timeout_ms = 400;
    t0 = cfw_now_mono_ms();
    call_fetch(&c);
    assert_int_equal(c.r.status, 0);
    assert_int_equal(c.r.curl_code, CURLE_OPERATION_TIMEDOUT);
    assert_true(cfw_now_mono_ms() - t0 < 2900);
    free(c.r.body);
}

static void test_refused(void **state)
{
    struct call c;

    (void)state;
    capture_cmd(&cap, "/down", NULL);
    call_init(&c, "/x", "x", 1);
    call_fetch(&c);
    assert_int_equal(c.r.status, 0);
    assert_int_equal(c.r.curl_code, CURLE_COULDNT_CONNECT);
    capture_cmd(&cap, "/up", NULL);
    call_fetch(&c);
    assert_int_equal(c.r.status, 200);
    free(c.r.body);
}

static void test_many_and_cancel(void **state)
{
    struct event_base *base = event_base_new();
    struct cfw_err err = {0};
    struct cfw_http *h = cfw_http_new(base, &err);
    struct result rs[40];
    struct cfw_http_req *slow;
    struct result slow_r;
    char url[128];
    char slow_url[128];
    struct cfw_http_request rq = {0};
    struct results many = {rs, 40};

    (void)state;
    memset(rs, 0, sizeof(rs));
    memset(&slow_r, 0, sizeof(slow_r));
    /* the slow answers outlast the wait below (20 s), so the cancel always finds a request in
     * flight: with 5 s a loaded machine finished it first and the cancel freed it twice */
    capture_cmd(&cap, "/script",
                "{\"path\":\"/never\",\"responses\":[{\"status\":200,\"delay\":60,\"body\":\"ok\"},"
                "{\"status\":200,\"delay\":60,\"body\":\"ok\"}]}");
    capture_url(&cap, "/many", url, sizeof(url));
    capture_url(&cap, "/never", slow_url, sizeof(slow_url));
    rq.body = "m";
    rq.body_len = 1;
    rq.url = slow_url;
    slow = cfw_http_start(h, &rq, on_done, &slow_r, &err);
    assert_non_null(slow);
    rq.url = url;
    for (int i = 0; i < 40; i++) {
        assert_non_null(cfw_http_start(h, &rq, on_done, &rs[i], &err));
    }
    loop_run_until(base, all_done, &many, 20000);
    assert_int_equal(count_done(&many), 40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(rs[i].status, 200);
        free(rs[i].body);
    }
    /* cancelling never calls back; freeing with another request pending tears it down too */
    cfw_http_cancel(h, slow);
    rq.url = slow_url;
    assert_non_null(cfw_http_start(h, &rq, on_done, &slow_r, &err));
    event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    cfw_http_free(h);
    event_base_free(base);
    assert_int_equal(slow_r.done, 0);
}

static void test_tls_verification(void **state)
{
    char dir[64];
    char cmd[1024];
    char cert[256], key[256], url[128];
    struct result r;
    struct cfw_http_request rq = {0};
    int fds[2];
    pid_t pid;
    char line[64];
    ssize_t n;
    int st;

    (void)state;
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        skip();
    }
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "tls"), 0);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 1 "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    if (pid == 0) {
        static const char prog[] =
            "import http.server, ssl, sys\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            "    def do_POST(self):\n"
            "        self.rfile.read(int(self.headers.get('Content-Length') or 0))\n"
            "        self.send_response(200); self.send_header('Content-Length','2');\n"
            "        self.end_headers(); self.wfile.write(b'ok')\n"
            "    def log_message(self, *a): pass\n"
            "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
            "c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
            "c.load_cert_chain(sys.argv[1], sys.argv[2])\n"
            "s.socket = c.wrap_socket(s.socket, server_side=True)\n"
            "print(s.server_address[1], flush=True)\n"
            "s.serve_forever()\n";
        dup2(fds[1], 1);
        close(fds[0]);
        execlp("python3", "python3", "-c", prog, cert, key, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    n = read(fds[0], line, sizeof(line) - 1);
    assert_true(n > 0);
    line[n] = '\0';
    snprintf(url, sizeof(url), "https://127.0.0.1:%ld/tls", strtol(line, NULL, 10));
    rq.url = url;
    rq.body = "t";
    rq.body_len = 1;
    /* verification is always on: an unknown CA fails */
    fetch(&rq, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.curl_code, CURLE_PEER_FAILED_VERIFICATION);
    free(r.body);
    /* the configured CA file makes it pass */
    rq.ca_file = cert;
    fetch(&rq, &r);
    assert_int_equal(r.status, 200);
    free(r.body);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    close(fds[0]);
    assert_int_equal(tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_after_parse), cmocka_unit_test(test_post_and_answer),
        cmocka_unit_test(test_body_cap),          cmocka_unit_test(test_header_cap),
        cmocka_unit_test(test_timeout),           cmocka_unit_test(test_refused),
        cmocka_unit_test(test_many_and_cancel),   cmocka_unit_test(test_tls_verification),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
