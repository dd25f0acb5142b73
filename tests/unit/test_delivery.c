/*
 * End-to-end delivery tests: a real event_base, the real notifier (router, outbox, sinks,
 * libcurl multi) against the Python capture server running as a child process on loopback,
 * and a real Alertmanager when Debian's prometheus-alertmanager is installed. Everything
 * cfwatchd logs goes to a file that the last test searches for secrets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "capture_client.h"
#include "cfwatchd/common.h"
#include "cfwatchd/http.h"
#include "cfwatchd/log.h"
#include "cfwatchd/notify.h"
#include "cfwatchd/router.h"
#include "cfwatchd/yaml.h"
#include "json_check.h"
#include "test_util.h"

#define SLACK_TOKEN "SlackSecretToken0042"
#define HOOK_TOKEN "HookPathToken0077"
#define HOOK_SECRET "hmac-secret-for-tests-9"
#define HOOK_BEARER "BearerValue123456"
#define PD_KEY "PDROUTINGKEYabcdef0123456789abcd"

static struct capture cap;
static char log_path[64];
static int saved_stderr = -1;
static off_t log_mark;

struct env {
    char dir[64];
    struct event_base *base;
    struct cfw_doc *doc;
    struct cfw_notifier *n;
};

/* ---- helpers ---- */

static char *sinks_yaml(const char *extra)
{
    return cfw_xasprintf("sinks:\n"
                         "  - name: slack\n"
                         "    type: slack\n"
                         "    url: 'http://127.0.0.1:%d/slack/T000/B000/" SLACK_TOKEN "'\n"
                         "    rules: [py-*]\n"
                         "  - name: pd\n"
                         "    type: pagerduty\n"
                         "    routing_key: " PD_KEY "\n"
                         "    url: 'http://127.0.0.1:%d/pd'\n"
                         "    min_severity: error\n"
                         "  - name: hook\n"
                         "    type: webhook\n"
                         "    url: 'http://127.0.0.1:%d/hook/" HOOK_TOKEN "'\n"
                         "    secret: " HOOK_SECRET "\n"
                         "    headers: {Authorization: 'Bearer " HOOK_BEARER "'}\n"
                         "    rate_limit: {burst: 200, per: 10ms}\n"
                         "    timeout: 5s\n"
                         "    connect_timeout: 1s\n"
                         "  - name: am\n"
                         "    type: alertmanager\n"
                         "    urls: ['http://127.0.0.1:%d/am1']\n"
                         "    labels: {team: ops}\n"
                         "%s",
                         cap.port, cap.port, cap.port, cap.port, extra != NULL ? extra : "");
}

static struct cfw_notifier *notifier(struct env *e, const char *yaml)
{
    struct cfw_diag d = {0};
    struct cfw_notifier_opts o;

    memset(&o, 0, sizeof(o));
    cfw_outbox_opts_default(&o.outbox);
    o.outbox.backoff_base_ms = 100;
    o.outbox.backoff_max_ms = 1000;
    o.host = "test-host";
    if (e->doc == NULL) {
        e->doc = cfw_yaml_load_string("delivery.yaml", yaml, strlen(yaml), &d);
    }
    assert_non_null(e->doc);
    e->n = cfw_notifier_new_opts(e->base, cfw_node_get(e->doc->root, "sinks"), e->dir, &o, &d);
    cfw_diag_print(&d, stdout);
    cfw_diag_free(&d);
    assert_non_null(e->n);
    return e->n;
}

static void incident(struct cfw_incident *inc, int i, enum cfw_severity sev)
{
    char key[64];

    memset(inc, 0, sizeof(*inc));
    snprintf(key, sizeof(key), "py-src-import/api-%d/src", i);
    inc->key = cfw_xstrdup(key);
    inc->rule = cfw_xstrdup("py-src-import");
    inc->pack = cfw_xstrdup("python-workers");
    inc->severity = sev;
    inc->title = cfw_xasprintf("Python Worker api-%d imports src", i);
    inc->hint = cfw_xstrdup("Import modules relative to main's directory.");
    inc->sample = cfw_xstrdup("ModuleNotFoundError: No module named 'src'");
    inc->count = 3;
    inc->first.wall_ms = inc->last.wall_ms = inc->opened_wall_ms = cfw_now_wall_ms();
    inc->state = CFW_INCIDENT_OPEN;
    /* script "api-<i>" from the key "py-src-import/api-<i>/src" */
    cfw_fields_setn(&inc->fields, "script", key + 14, strlen(key + 14) - 4);
    cfw_fields_set(&inc->fields, "module", "src");
}

/* Makes incident i and submits it as opened. */
static void open_one(struct cfw_notifier *n, struct cfw_incident *inc, int i, enum cfw_severity sev)
{
    incident(inc, i, sev);
    assert_int_equal(cfw_notifier_submit(n, inc, CFW_TRANSITION_OPEN), 0);
}

/* Makes n warnings numbered from first and submits each as opened. */
static void open_incidents(struct cfw_notifier *n, struct cfw_incident *inc, int count, int first)
{
    for (int k = 0; k < count; k++) {
        open_one(n, &inc[k], first + k, CFW_SEV_WARNING);
    }
}

static void incidents_free(struct cfw_incident *inc, int count)
{
    for (int k = 0; k < count; k++) {
        cfw_router_clear_incident(&inc[k]);
    }
}

/* Marks inc resolved now and submits the resolve. */
static void resolve(struct cfw_notifier *n, struct cfw_incident *inc)
{
    inc->state = CFW_INCIDENT_RESOLVED;
    inc->resolved_wall_ms = cfw_now_wall_ms();
    assert_int_equal(cfw_notifier_submit(n, inc, CFW_TRANSITION_RESOLVE), 0);
}

static json_t *reqs(const char *path)
{
    return capture_requests(&cap, path);
}

static json_t *body_of(json_t *rec)
{
    return json_loads(json_string_value(json_object_get(rec, "body")), 0, NULL);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    int fd;

    (void)state;
    if (capture_start(&cap) != 0) {
        return -1;
    }
    snprintf(log_path, sizeof(log_path), "/tmp/cfw-delivery-log-XXXXXX");
    fd = mkstemp(log_path);
    if (fd < 0) {
        return -1;
    }
    close(fd);
    cfw_log_init(CFW_LOG_DEBUG);
    fprintf(stdout, "cfwatchd log of these tests: %s\n", log_path);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    capture_stop(&cap);
    unlink(log_path);
    return 0;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    int fd;
    struct stat st;

    if (tmpdir_make(e->dir, sizeof(e->dir), "delivery") != 0) {
        return -1;
    }
    e->base = event_base_new();
    capture_cmd(&cap, "/reset", NULL);
    capture_cmd(&cap, "/up", NULL);
    /* everything cfwatchd writes to stderr goes to the log file */
    fflush(stderr);
    saved_stderr = dup(2);
    fd = open(log_path, O_WRONLY | O_APPEND);
    dup2(fd, 2);
    close(fd);
    log_mark = stat(log_path, &st) == 0 ? st.st_size : 0;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    FILE *fp;
    char line[1024];

    cfw_notifier_free(e->n);
    cfw_doc_free(e->doc);
    event_base_free(e->base);
    if (tmpdir_remove(e->dir) != 0) {
        fprintf(stdout, "cannot remove %s\n", e->dir);
    }
    free(e);
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    /* show what this test logged, without the debug chatter */
    fp = fopen(log_path, "r");
    if (fp != NULL) {
        fseek(fp, log_mark, SEEK_SET);
        while (fgets(line, sizeof(line), fp) != NULL) {
            if (strstr(line, ": debug: ") == NULL) {
                fputs(line, stdout);
            }
        }
        fclose(fp);
    }
    return 0;
}

/* ---- tests ---- */

/* The body of the first request to path, parsed; the requests there must number n (0: any). */
static json_t *first_body(const char *path, size_t n)
{
    json_t *r = reqs(path);
    json_t *b;

    if (n > 0) {
        assert_int_equal(json_array_size(r), n);
    }
    b = body_of(json_array_get(r, 0));
    json_decref(r);
    return b;
}

/* Asserts that path received n requests. */
static void assert_requests(const char *path, size_t n)
{
    json_t *r = reqs(path);

    assert_int_equal(json_array_size(r), n);
    json_decref(r);
}

/*
 * Asserts that the webhook received the n incidents made with incidents() from number first,
 * each exactly once, and nothing else.
 */
static void assert_hook_got_each_once(int first, int n)
{
    json_t *r = reqs("/hook/" HOOK_TOKEN);
    json_t *rec;
    size_t i;
    int seen[64] = {0};

    assert_true(n <= 64);
    json_array_foreach (r, i, rec) {
        json_t *b = body_of(rec);
        int k = (int)strtol(strrchr(json_str_at(b, "incident.script"), '-') + 1, NULL, 10) - first;
        assert_true(k >= 0 && k < n);
        seen[k]++;
        json_decref(b);
    }
    assert_int_equal(json_array_size(r), n);
    for (int k = 0; k < n; k++) {
        assert_int_equal(seen[k], 1);
    }
    json_decref(r);
}

static void check_slack_open(void)
{
    json_t *r = reqs("/slack/T000/B000/" SLACK_TOKEN);
    json_t *b;

    assert_int_equal(json_array_size(r), 1);
    b = body_of(json_array_get(r, 0));
    assert_non_null(strstr(json_string_value(json_object_get(b, "text")), "api-1 imports src"));
    {
        /* the fields reach Slack; their markup is test_sinks.c's business */
        char *dump = json_dumps(json_object_get(b, "blocks"), 0);
        ASSERT_HAS_ALL(dump, "Severity", "critical", "Script", "api-1", "Rule", "py-src-import",
                       "Count", "First seen", "Last seen", "Hint", "Import modules",
                       "ModuleNotFoundError");
        free(dump);
    }
    assert_string_equal(json_str_at(json_array_get(r, 0), "headers.content-type"),
                        "application/json");
    json_decref(b);
    json_decref(r);
}

static void check_pd_open(const struct cfw_incident *inc)
{
    json_t *b = first_body("/pd", 1);

    ASSERT_JSON_STRS(b, {"routing_key", PD_KEY}, {"event_action", "trigger"},
                     {"dedup_key", "cfwatchd:py-src-import/api-1/src"},
                     {"payload.severity", "critical"}, {"payload.source", "test-host"},
                     {"client", "cfwatchd"});
    assert_non_null(strstr(json_str_at(b, "payload.summary"), "api-1 imports src"));
    assert_string_equal(json_str_at(json_object_get(b, "payload"), "custom_details.hint"),
                        inc->hint);
    json_decref(b);
}

static void check_hook_open(const struct cfw_incident *inc)
{
    json_t *r = reqs("/hook/" HOOK_TOKEN);
    json_t *a, *b;

    assert_int_equal(json_array_size(r), 1);
    a = json_array_get(r, 0);
    /* the capture server recomputed the HMAC with Python's hmac module */
    assert_true(json_is_true(json_object_get(a, "hmac_ok")));
    ASSERT_JSON_STRS(a, {"headers.authorization", "Bearer " HOOK_BEARER},
                     {"headers.user-agent", "cfwatchd/" CFW_VERSION});
    b = body_of(a);
    assert_int_equal(json_integer_value(json_object_get(b, "version")), 1);
    ASSERT_JSON_STRS(b, {"event", "open"}, {"incident.key", "py-src-import/api-1/src"},
                     {"incident.severity", "critical"}, {"incident.sample", inc->sample},
                     {"incident.script", "api-1"});
    json_decref(b);
    json_decref(r);
}

static void check_am_open(const struct cfw_incident *inc)
{
    json_t *b = first_body("/am1/api/v2/alerts", 1);
    json_t *a = json_array_get(b, 0);

    ASSERT_JSON_STRS(a, {"labels.alertname", "py-src-import"}, {"labels.script", "api-1"},
                     {"labels.severity", "critical"}, {"labels.module", "src"},
                     {"labels.team", "ops"}, {"annotations.summary", inc->title});
    assert_non_null(json_str_at(a, "endsAt"));
    json_decref(b);
}

/* The resolve: PagerDuty resolve with the same dedup_key, Slack and the webhook say so. */
static void check_resolves(void)
{
    json_t *b = first_body("/pd", 1);

    assert_string_equal(json_str_at(b, "event_action"), "resolve");
    assert_string_equal(json_str_at(b, "dedup_key"), "cfwatchd:py-src-import/api-1/src");
    json_decref(b);
    b = first_body("/slack/T000/B000/" SLACK_TOKEN, 0);
    assert_non_null(strstr(json_str_at(b, "text"), "Resolved"));
    json_decref(b);
    b = first_body("/hook/" HOOK_TOKEN, 0);
    assert_string_equal(json_str_at(b, "event"), "resolve");
    json_decref(b);
}

static void test_payload_fields(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc;
    struct cfw_notifier_stats st;

    capture_cmd(&cap, "/hmac",
                "{\"path\":\"/hook/" HOOK_TOKEN "\",\"secret\":\"" HOOK_SECRET "\"}");
    capture_cmd(&cap, "/script",
                "{\"path\":\"/pd\",\"responses\":[],\"then\":{\"status\":202,\"body\":"
                "\"{\\\"status\\\":\\\"success\\\"}\"}}");
    notifier(e, yaml);
    open_one(e->n, &inc, 1, CFW_SEV_CRITICAL);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    check_slack_open();
    check_pd_open(&inc);
    check_hook_open(&inc);
    check_am_open(&inc);

    /* the resolve: PagerDuty resolve with the same dedup_key, Alertmanager endsAt, Slack */
    capture_cmd(&cap, "/reset", NULL);
    resolve(e->n, &inc);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    check_resolves();

    cfw_notifier_stats(e->n, &st);
    assert_int_equal(st.n_sinks, 4);
    for (size_t i = 0; i < st.n_sinks; i++) {
        assert_int_equal(st.sinks[i].sent, 2);
        assert_int_equal(st.sinks[i].dead, 0);
        assert_int_equal(st.sinks[i].pending, 0);
    }
    cfw_notifier_stats_clear(&st);
    cfw_router_clear_incident(&inc);
    free(yaml);
}

static void test_filters_end_to_end(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc;

    notifier(e, yaml);
    incident(&inc, 2, CFW_SEV_WARNING);
    free(inc.rule);
    inc.rule = cfw_xstrdup("other-rule");
    /* warning: not for pd (min error); rule other-rule: not for slack (py-*) */
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_OPEN), 0);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    assert_requests(NULL, 2);
    assert_requests("/pd", 0);
    cfw_router_clear_incident(&inc);
    free(yaml);
}

static void test_429_retry_after(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc;
    json_t *r;
    double t0, t1;
    struct cfw_notifier_stats st;

    capture_cmd(&cap, "/script",
                "{\"path\":\"/slack/T000/B000/" SLACK_TOKEN "\",\"responses\":[{\"status\":429,"
                "\"headers\":{\"Retry-After\":\"2\",\"Content-Type\":\"application/json\"},"
                "\"body\":\"{\\\"retry_after\\\":2,\\\"ok\\\":false,\\\"error\\\":"
                "\\\"rate_limited\\\"}\"}]}");
    notifier(e, yaml);
    open_one(e->n, &inc, 3, CFW_SEV_INFO);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 20000), 0);
    r = reqs("/slack/T000/B000/" SLACK_TOKEN);
    assert_int_equal(json_array_size(r), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "status")), 429);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 1), "status")), 200);
    t0 = json_real_value(json_object_get(json_array_get(r, 0), "time"));
    t1 = json_real_value(json_object_get(json_array_get(r, 1), "time"));
    fprintf(stdout, "retry after 429 waited %.3f s\n", t1 - t0);
    assert_true(t1 - t0 >= 2.0);
    json_decref(r);
    cfw_notifier_stats(e->n, &st);
    assert_int_equal(st.sinks[0].retried, 1);
    assert_int_equal(st.sinks[0].sent, 1);
    cfw_notifier_stats_clear(&st);
    cfw_router_clear_incident(&inc);
    free(yaml);
}

static void test_500_then_200_in_order(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc;
    json_t *r, *b;
    size_t i;
    json_t *rec;
    int ok = 0;
    const char *order[2] = {NULL, NULL};

    capture_cmd(&cap, "/script",
                "{\"path\":\"/hook/" HOOK_TOKEN "\",\"responses\":[{\"status\":500,\"body\":"
                "\"oops\"},{\"status\":503,\"body\":\"busy\"}]}");
    notifier(e, yaml);
    open_one(e->n, &inc, 4, CFW_SEV_ERROR);
    resolve(e->n, &inc);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    r = reqs("/hook/" HOOK_TOKEN);
    json_array_foreach (r, i, rec) {
        if (json_integer_value(json_object_get(rec, "status")) == 200) {
            b = body_of(rec);
            if (ok < 2) {
                order[ok] = strcmp(json_str_at(b, "event"), "open") == 0 ? "open" : "resolve";
            }
            ok++;
            json_decref(b);
        }
    }
    /* each delivered once, and the resolve did not overtake its trigger */
    assert_int_equal(ok, 2);
    assert_string_equal(order[0], "open");
    assert_string_equal(order[1], "resolve");
    assert_int_equal(json_array_size(r), 4);
    json_decref(r);
    cfw_router_clear_incident(&inc);
    free(yaml);
}

static void test_400_dead_letter(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc;
    char dead[96];
    struct cfw_notifier_stats st;
    DIR *d;
    struct dirent *de;
    bool reason_found = false;

    capture_cmd(&cap, "/script",
                "{\"path\":\"/slack/T000/B000/" SLACK_TOKEN "\",\"responses\":[],\"then\":{"
                "\"status\":400,\"body\":\"invalid_payload\"}}");
    notifier(e, yaml);
    open_one(e->n, &inc, 5, CFW_SEV_INFO);
    /* something could not be delivered: drain says so */
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 10000), -1);
    loop_run_for(e->base, 800);
    assert_requests("/slack/T000/B000/" SLACK_TOKEN, 1); /* not retried */
    cfw_notifier_stats(e->n, &st);
    assert_int_equal(st.sinks[0].dead, 1);
    assert_int_equal(st.sinks[0].sent, 0);
    assert_int_equal(st.sinks[2].sent, 1);
    cfw_notifier_stats_clear(&st);
    snprintf(dead, sizeof(dead), "%s/dead", e->dir);
    assert_int_equal(dir_count(dead, "-slack.json"), 1);
    d = opendir(dead);
    while ((de = readdir(d)) != NULL) {
        if (strstr(de->d_name, "-slack.json") != NULL) {
            char file[400];
            json_t *o;
            /* the dead letter's name and content hold no secret; it says why */
            assert_null(strstr(de->d_name, SLACK_TOKEN));
            snprintf(file, sizeof(file), "%s/%s", dead, de->d_name);
            o = json_load_file(file, 0, NULL);
            assert_non_null(o);
            reason_found = strstr(json_str_at(o, "dead.reason"), "invalid_payload") != NULL;
            assert_null(strstr(json_string_value(json_object_get(o, "body")), SLACK_TOKEN));
            json_decref(o);
        }
    }
    closedir(d);
    assert_true(reason_found);
    cfw_router_clear_incident(&inc);
    free(yaml);
}

static void test_receiver_down_20s(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc[50];
    int64_t until;

    capture_cmd(&cap, "/down", NULL);
    notifier(e, yaml);
    open_incidents(e->n, inc, 50, 100);
    until = cfw_now_mono_ms() + 20000;
    assert_int_equal(cfw_notifier_drain(e->n, until), -1);
    assert_true(cfw_notifier_pending(e->n) >= 50);
    capture_cmd(&cap, "/up", NULL);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 30000), 0);
    /* all 50 delivered, each exactly once */
    assert_hook_got_each_once(100, 50);
    incidents_free(inc, 50);
    free(yaml);
}

static void test_free_without_drain(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc[5];
    char outbox[96];

    capture_cmd(&cap, "/down", NULL);
    notifier(e, yaml);
    open_incidents(e->n, inc, 5, 200);
    loop_run_for(e->base, 300);
    cfw_notifier_free(e->n);
    e->n = NULL;
    snprintf(outbox, sizeof(outbox), "%s/outbox", e->dir);
    /* 5 incidents x 3 HTTP sinks that take warnings (slack, hook, am) stay spooled */
    assert_int_equal(dir_count(outbox, ".job"), 15);
    capture_cmd(&cap, "/up", NULL);
    notifier(e, yaml);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    assert_requests("/hook/" HOOK_TOKEN, 5);
    assert_requests("/slack/T000/B000/" SLACK_TOKEN, 5);
    assert_int_equal(dir_count(outbox, ".job"), 0);
    incidents_free(inc, 5);
    free(yaml);
}

static void test_sigkill_then_restart(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    int ready[2];
    pid_t pid;
    char c;
    int st;

    capture_cmd(&cap, "/down", NULL);
    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct env child;
        struct cfw_incident inc;
        memset(&child, 0, sizeof(child));
        snprintf(child.dir, sizeof(child.dir), "%s", e->dir);
        child.base = event_base_new();
        notifier(&child, yaml);
        for (int k = 0; k < 10; k++) {
            incident(&inc, 300 + k, CFW_SEV_WARNING);
            cfw_notifier_submit(child.n, &inc, CFW_TRANSITION_OPEN);
            cfw_router_clear_incident(&inc);
        }
        loop_run_for(child.base, 300);
        if (write(ready[1], "r", 1) != 1) {
            _exit(3);
        }
        for (;;) {
            loop_run_for(child.base, 1000);
        }
    }
    close(ready[1]);
    assert_int_equal(read(ready[0], &c, 1), 1);
    close(ready[0]);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st));
    capture_cmd(&cap, "/up", NULL);
    notifier(e, yaml);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    assert_hook_got_each_once(300, 10);
    free(yaml);
}

static void test_reload_handover(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc[10];
    struct cfw_notifier *old;
    json_t *r, *rec;
    size_t i;
    size_t listed = 0;

    capture_cmd(&cap, "/down", NULL);
    old = notifier(e, yaml);
    open_incidents(old, inc, 10, 400);
    loop_run_for(e->base, 200);
    /* a reload: the new notifier starts before the old one is freed, on the same spool */
    e->n = NULL;
    notifier(e, yaml);
    cfw_notifier_free(old);
    capture_cmd(&cap, "/up", NULL);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    assert_requests("/hook/" HOOK_TOKEN, 10);
    /* Slack: 5 within its burst, the other 5 in the digest the old notifier held */
    r = reqs("/slack/T000/B000/" SLACK_TOKEN);
    json_array_foreach (r, i, rec) {
        json_t *b = body_of(rec);
        const char *text = json_str_at(b, "text");
        listed += strstr(text, "rate limited") != NULL ? 5 : 1;
        json_decref(b);
    }
    assert_int_equal(json_array_size(r), 6);
    assert_int_equal(listed, 10);
    json_decref(r);
    incidents_free(inc, 10);
    free(yaml);
}

static void test_test_alert(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml("  - {name: out, type: stdout}\n");
    struct cfw_test_result res;
    json_t *b;

    notifier(e, yaml);
    assert_int_equal(cfw_notifier_test_alert(e->n, "hook", cfw_now_mono_ms() + 10000, &res), 0);
    assert_true(res.delivered);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.answer, "HTTP 200"));
    assert_non_null(strstr(res.answer, "/hook/***"));
    assert_null(strstr(res.answer, HOOK_TOKEN));
    b = first_body("/hook/" HOOK_TOKEN, 1);
    assert_string_equal(json_str_at(b, "event"), "test");
    assert_true(json_is_true(json_object_get(b, "test")));
    json_decref(b);
    /* the receiver's refusal is reported, and the test job is not kept */
    capture_cmd(&cap, "/script",
                "{\"path\":\"/slack/T000/B000/" SLACK_TOKEN "\",\"responses\":[{\"status\":403,"
                "\"body\":\"action_prohibited\"}]}");
    assert_int_equal(cfw_notifier_test_alert(e->n, "slack", cfw_now_mono_ms() + 10000, &res), -1);
    assert_false(res.delivered);
    assert_non_null(strstr(res.answer, "action_prohibited"));
    assert_int_equal(cfw_notifier_pending(e->n), 0);
    assert_int_equal(cfw_notifier_test_alert(e->n, "nope", cfw_now_mono_ms() + 1000, &res), -1);
    assert_non_null(strstr(res.answer, "no sink named"));
    /* no answer before the deadline */
    capture_cmd(&cap, "/down", NULL);
    assert_int_equal(cfw_notifier_test_alert(e->n, "pd", cfw_now_mono_ms() + 700, &res), -1);
    assert_false(res.delivered);
    assert_true(res.answer[0] != '\0');
    assert_int_equal(cfw_notifier_pending(e->n), 0);
    free(yaml);
}

/* ---- a real Alertmanager ---- */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    socklen_t l = sizeof(a);
    int port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (struct sockaddr *)&a, sizeof(a));
    getsockname(s, (struct sockaddr *)&a, &l);
    port = ntohs(a.sin_port);
    close(s);
    return port;
}

static json_t *http_get_json(const char *url)
{
    CURL *c = curl_easy_init();
    struct {
        char *data;
        size_t len;
    } b = {NULL, 0};
    json_t *o = NULL;
    long status = 0;

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, capture_sink_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    if (curl_easy_perform(c) == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200 && b.data != NULL) {
            o = json_loads(b.data, 0, NULL);
        }
    }
    free(b.data);
    curl_easy_cleanup(c);
    return o;
}

static json_t *am_alert(int am_port, const char *script)
{
    char url[128];
    json_t *arr;
    json_t *a;
    size_t i;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v2/alerts", am_port);
    arr = http_get_json(url);
    json_array_foreach (arr, i, a) {
        const char *s = json_str_at(a, "labels.script");
        if (s != NULL && strcmp(s, script) == 0) {
            json_incref(a);
            json_decref(arr);
            return a;
        }
    }
    json_decref(arr);
    return NULL;
}

static bool webhook_has(const char *status, const char *script)
{
    json_t *r = reqs("/am-webhook");
    json_t *rec;
    size_t i;
    bool found = false;

    json_array_foreach (r, i, rec) {
        json_t *b = body_of(rec);
        json_t *alerts = json_object_get(b, "alerts");
        json_t *a;
        size_t k;
        json_array_foreach (alerts, k, a) {
            const char *s = json_str_at(a, "labels.script");
            const char *st = json_str_at(a, "status");
            const char *name = json_str_at(a, "labels.alertname");
            const char *team = json_str_at(a, "labels.team");
            if (s != NULL && st != NULL && name != NULL && team != NULL && strcmp(s, script) == 0 &&
                strcmp(st, status) == 0 && strcmp(name, "py-src-import") == 0 &&
                strcmp(team, "ops") == 0) {
                found = true;
            }
        }
        json_decref(b);
    }
    json_decref(r);
    return found;
}

/* What the polls of the Alertmanager tests wait for. */
struct am_wait {
    int port;
    const char *script;
    const char *status; /* of the webhook notification */
    json_t *alert;      /* what am_has_alert found */
    const char *path;   /* of more_requests */
    size_t before;
};

static bool am_ready(void *arg)
{
    struct am_wait *w = arg;
    char url[96];
    json_t *o;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/api/v2/status", w->port);
    o = http_get_json(url);
    json_decref(o);
    return o != NULL;
}

static bool am_has_alert(void *arg)
{
    struct am_wait *w = arg;

    w->alert = am_alert(w->port, w->script);
    return w->alert != NULL;
}

static bool am_webhook_has(void *arg)
{
    struct am_wait *w = arg;

    return webhook_has(w->status, w->script);
}

/* Starts Alertmanager on port with its files in dir, routing to /am-webhook; returns its pid. */
static pid_t am_start(struct event_base *base, const char *dir, int port)
{
    char cfg[128], store[128], *conf, arg_cfg[160], arg_store[160], arg_listen[64];
    struct am_wait w = {.port = port};
    FILE *fp;
    pid_t pid;

    snprintf(cfg, sizeof(cfg), "%s/am.yml", dir);
    snprintf(store, sizeof(store), "%s/am-data", dir);
    conf = cfw_xasprintf("route:\n"
                         "  receiver: capture\n"
                         "  group_by: ['alertname', 'script']\n"
                         "  group_wait: 1s\n"
                         "  group_interval: 1s\n"
                         "  repeat_interval: 1h\n"
                         "receivers:\n"
                         "  - name: capture\n"
                         "    webhook_configs:\n"
                         "      - url: 'http://127.0.0.1:%d/am-webhook'\n"
                         "        send_resolved: true\n",
                         cap.port);
    fp = fopen(cfg, "w");
    fputs(conf, fp);
    fclose(fp);
    free(conf);
    snprintf(arg_cfg, sizeof(arg_cfg), "--config.file=%s", cfg);
    snprintf(arg_store, sizeof(arg_store), "--storage.path=%s", store);
    snprintf(arg_listen, sizeof(arg_listen), "--web.listen-address=127.0.0.1:%d", port);
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("prometheus-alertmanager", "prometheus-alertmanager", arg_cfg, arg_store, arg_listen,
               "--cluster.listen-address=", (char *)NULL);
        _exit(127);
    }
    assert_true(loop_poll_until(base, am_ready, &w, 20000, 200));
    return pid;
}

/* Asserts that the incident's alert is active in Alertmanager's API with the right labels. */
static void check_am_active(struct event_base *base, int port, const struct cfw_incident *inc)
{
    struct am_wait w = {.port = port, .script = "api-900"};
    json_t *a;

    loop_poll_until(base, am_has_alert, &w, 10000, 200);
    a = w.alert;
    assert_non_null(a);
    ASSERT_JSON_STRS(a, {"labels.alertname", "py-src-import"}, {"labels.severity", "critical"},
                     {"labels.module", "src"}, {"labels.team", "ops"},
                     {"labels.incident", "py-src-import/api-900/src"},
                     {"annotations.summary", inc->title}, {"status.state", "active"});
    json_decref(a);
}

static void test_real_alertmanager(void **state)
{
    struct env *e = *state;
    int am_port = free_port();
    struct am_wait firing = {.script = "api-900", .status = "firing"};
    struct am_wait resolved = {.script = "api-900", .status = "resolved"};
    char *yaml;
    pid_t pid;
    int st;
    json_t *a;
    struct cfw_incident inc;

    if (system("command -v prometheus-alertmanager >/dev/null 2>&1") != 0) {
        fprintf(stdout, "SKIPPED: prometheus-alertmanager is not installed "
                        "(apt-get install prometheus-alertmanager)\n");
        skip();
    }
    pid = am_start(e->base, e->dir, am_port);
    yaml = cfw_xasprintf("sinks:\n"
                         "  - name: am\n"
                         "    type: alertmanager\n"
                         "    urls: ['http://127.0.0.1:%d']\n"
                         "    labels: {team: ops}\n"
                         "    resend_interval: 2s\n",
                         am_port);
    notifier(e, yaml);
    open_one(e->n, &inc, 900, CFW_SEV_CRITICAL);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 10000), 0);
    /* it shows up in Alertmanager's API with the right labels */
    check_am_active(e->base, am_port, &inc);
    /* and reaches the capture server through Alertmanager's own routing */
    loop_poll_until(e->base, am_webhook_has, &firing, 20000, 300);
    assert_true(webhook_has("firing", "api-900"));
    /* the re-send keeps it alive (the loop keeps running for a few intervals) */
    loop_run_for(e->base, 4500);
    a = am_alert(am_port, "api-900");
    assert_non_null(a);
    assert_string_equal(json_str_at(a, "status.state"), "active");
    json_decref(a);
    /* cfwatchd resolves it: Alertmanager sends the resolved notification */
    resolve(e->n, &inc);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 10000), 0);
    loop_poll_until(e->base, am_webhook_has, &resolved, 20000, 300);
    assert_true(webhook_has("resolved", "api-900"));
    a = am_alert(am_port, "api-900");
    assert_null(a); /* no longer among the active alerts */
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    cfw_router_clear_incident(&inc);
    free(yaml);
}

static bool more_requests(void *arg)
{
    struct am_wait *w = arg;
    json_t *r = reqs(w->path);
    size_t n = json_array_size(r);

    json_decref(r);
    return n > w->before;
}

/*
 * A resolve does not overtake a re-send of open alerts in flight to the same Alertmanager: the
 * re-send left while the incident was open, and arriving after the resolve it would fire the
 * alert again until ends_after. The receiver answers each request 0.8 s late; the resolve is
 * submitted while a re-send waits for its answer, and reaches the receiver after that answer.
 */
static void test_am_resolve_waits_for_resend(void **state)
{
    struct env *e = *state;
    const char *path = "/amslow/api/v2/alerts";
    char *yaml;
    struct cfw_incident inc;
    struct am_wait wait = {.path = path};
    json_t *r;
    double t_resend, t_resolve;

    capture_cmd(&cap, "/script",
                "{\"path\":\"/amslow/api/v2/alerts\",\"responses\":[],"
                "\"then\":{\"status\":200,\"delay\":0.8}}");
    yaml = cfw_xasprintf("sinks:\n"
                         "  - name: am\n"
                         "    type: alertmanager\n"
                         "    urls: ['http://127.0.0.1:%d/amslow']\n"
                         "    resend_interval: 1s\n",
                         cap.port);
    notifier(e, yaml);
    open_one(e->n, &inc, 950, CFW_SEV_CRITICAL);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 10000), 0);
    /* wait for a re-send to reach the receiver: it is now waiting for its answer */
    r = reqs(path);
    wait.before = json_array_size(r);
    json_decref(r);
    loop_poll_until(e->base, more_requests, &wait, 10000, 20);
    resolve(e->n, &inc);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 10000), 0);
    r = reqs(path);
    assert_true(json_array_size(r) >= wait.before + 2);
    t_resend = json_real_value(json_object_get(json_array_get(r, wait.before), "time"));
    t_resolve = json_real_value(json_object_get(json_array_get(r, json_array_size(r) - 1), "time"));
    fprintf(stdout, "the resolve reached the receiver %.3f s after the re-send in flight\n",
            t_resolve - t_resend);
    /* the re-send's answer came 0.8 s after it arrived; the resolve left after that answer */
    assert_true(t_resolve - t_resend >= 0.75);
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_array_get(r, json_array_size(r) - 1), "body")),
                           "endsAt"));
    json_decref(r);
    cfw_router_clear_incident(&inc);
    free(yaml);
}

static void test_no_secret_in_logs(void **state)
{
    static const char *const secrets[] = {SLACK_TOKEN, HOOK_TOKEN, HOOK_SECRET,
                                          HOOK_BEARER, PD_KEY,     NULL};
    FILE *fp = fopen(log_path, "r");
    char line[4096];
    size_t lines = 0;

    (void)state;
    assert_non_null(fp);
    while (fgets(line, sizeof(line), fp) != NULL) {
        lines++;
        for (size_t i = 0; secrets[i] != NULL; i++) {
            if (strstr(line, secrets[i]) != NULL) {
                fprintf(stdout, "secret leaked into the log: %s", line);
                fail();
            }
        }
    }
    fclose(fp);
    fprintf(stdout, "searched %zu log lines for secrets\n", lines);
    /* the log really covered deliveries, failures and dead letters */
    assert_true(lines > 20);
}

static void test_outbox_opts(void **state)
{
    static const struct {
        const char *yaml;
        int problems;
        int64_t reserve; /* expected opts.outbox.reserve_bytes */
    } cases[] = {
        {"outbox: {max_age: 1h}\n", 0, 0},       /* default reserve */
        {"outbox: {reserve_bytes: 0}\n", 0, -1}, /* none */
        {"outbox: {reserve_bytes: 65536}\n", 0, 65536},
        {"outbox: {max_bytes: 65536, reserve_bytes: 16384}\n", 0, 16384},
        /* the reserve lives inside max_bytes: at most a quarter of it */
        {"outbox: {max_bytes: 65536, reserve_bytes: 16385}\n", 1, 16385},
        {"outbox: {reserve_bytes: -1}\n", 1, 0},
        {"outbox: {reserve: 1}\n", 1, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfw_diag d = {0};
        struct cfw_notifier_opts o;
        struct cfw_doc *doc =
            cfw_yaml_load_string("opts.yaml", cases[i].yaml, strlen(cases[i].yaml), &d);
        int n;

        memset(&o, 0, sizeof(o));
        assert_non_null(doc);
        n = cfw_notifier_parse_opts(cfw_node_get(doc->root, "outbox"), "outbox", &o, &d);
        if (n != cases[i].problems || o.outbox.reserve_bytes != cases[i].reserve) {
            cfw_diag_print(&d, stdout);
            fail_msg("case %zu: %d problems, reserve %lld", i, n,
                     (long long)o.outbox.reserve_bytes);
        }
        if (cases[i].problems > 0) {
            assert_non_null(strstr(d.msgs[0], "reserve"));
        }
        cfw_diag_free(&d);
        cfw_doc_free(doc);
    }
}

/* A test run with the fixture of setup() and teardown(). */
#define FX(test) cmocka_unit_test_setup_teardown(test, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_payload_fields),
        FX(test_filters_end_to_end),
        FX(test_429_retry_after),
        FX(test_500_then_200_in_order),
        FX(test_400_dead_letter),
        FX(test_receiver_down_20s),
        FX(test_free_without_drain),
        FX(test_sigkill_then_restart),
        FX(test_reload_handover),
        FX(test_test_alert),
        FX(test_real_alertmanager),
        FX(test_am_resolve_waits_for_resend),
        cmocka_unit_test(test_no_secret_in_logs),
        cmocka_unit_test(test_outbox_opts),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
