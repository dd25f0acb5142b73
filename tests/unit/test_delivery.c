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
#include "cfwatchd/yaml.h"

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

static void rm_rf(const char *dir)
{
    char cmd[160];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stdout, "cannot remove %s\n", dir);
    }
}

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

static void incident_free(struct cfw_incident *inc)
{
    free(inc->key);
    free(inc->rule);
    free(inc->pack);
    free(inc->title);
    free(inc->hint);
    free(inc->sample);
    cfw_fields_clear(&inc->fields);
}

static json_t *reqs(const char *path)
{
    return capture_requests(&cap, path);
}

static const char *jget(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(o, a);

    if (b != NULL) {
        v = json_object_get(v, b);
    }
    return json_string_value(v);
}

static json_t *body_of(json_t *rec)
{
    return json_loads(json_string_value(json_object_get(rec, "body")), 0, NULL);
}

static size_t count_dir(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    if (d == NULL) {
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.' && (needle == NULL || strstr(de->d_name, needle) != NULL)) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static void settle(struct event_base *base, int ms)
{
    int64_t end = cfw_now_mono_ms() + ms;

    while (cfw_now_mono_ms() < end) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(2000);
    }
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

    snprintf(e->dir, sizeof(e->dir), "/tmp/cfw-delivery-XXXXXX");
    if (mkdtemp(e->dir) == NULL) {
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
    rm_rf(e->dir);
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

static void test_payload_fields(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc;
    json_t *r, *b, *a;
    struct cfw_notifier_stats st;

    capture_cmd(&cap, "/hmac",
                "{\"path\":\"/hook/" HOOK_TOKEN "\",\"secret\":\"" HOOK_SECRET "\"}");
    capture_cmd(&cap, "/script",
                "{\"path\":\"/pd\",\"responses\":[],\"then\":{\"status\":202,\"body\":"
                "\"{\\\"status\\\":\\\"success\\\"}\"}}");
    notifier(e, yaml);
    incident(&inc, 1, CFW_SEV_CRITICAL);
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_OPEN), 0);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);

    r = reqs("/slack/T000/B000/" SLACK_TOKEN);
    assert_int_equal(json_array_size(r), 1);
    b = body_of(json_array_get(r, 0));
    assert_non_null(strstr(json_string_value(json_object_get(b, "text")), "api-1 imports src"));
    {
        /* the fields reach Slack; their markup is test_sinks.c's business */
        char *dump = json_dumps(json_object_get(b, "blocks"), 0);
        static const char *const want[] = {"Severity", "critical",       "Script",
                                           "api-1",    "Rule",           "py-src-import",
                                           "Count",    "First seen",     "Last seen",
                                           "Hint",     "Import modules", "ModuleNotFoundError"};
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
            if (strstr(dump, want[k]) == NULL) {
                fail_msg("'%s' is not in the Slack blocks: %s", want[k], dump);
            }
        }
        free(dump);
    }
    assert_string_equal(
        jget(json_object_get(json_array_get(r, 0), "headers"), "content-type", NULL),
        "application/json");
    json_decref(b);
    json_decref(r);

    r = reqs("/pd");
    assert_int_equal(json_array_size(r), 1);
    b = body_of(json_array_get(r, 0));
    assert_string_equal(jget(b, "routing_key", NULL), PD_KEY);
    assert_string_equal(jget(b, "event_action", NULL), "trigger");
    assert_string_equal(jget(b, "dedup_key", NULL), "cfwatchd:py-src-import/api-1/src");
    assert_string_equal(jget(b, "payload", "severity"), "critical");
    assert_string_equal(jget(b, "payload", "source"), "test-host");
    assert_non_null(strstr(jget(b, "payload", "summary"), "api-1 imports src"));
    assert_string_equal(jget(json_object_get(b, "payload"), "custom_details", "hint"), inc.hint);
    assert_string_equal(jget(b, "client", NULL), "cfwatchd");
    json_decref(b);
    json_decref(r);

    r = reqs("/hook/" HOOK_TOKEN);
    assert_int_equal(json_array_size(r), 1);
    a = json_array_get(r, 0);
    /* the capture server recomputed the HMAC with Python's hmac module */
    assert_true(json_is_true(json_object_get(a, "hmac_ok")));
    assert_string_equal(jget(a, "headers", "authorization"), "Bearer " HOOK_BEARER);
    assert_string_equal(jget(a, "headers", "user-agent"), "cfwatchd/" CFW_VERSION);
    b = body_of(a);
    assert_int_equal(json_integer_value(json_object_get(b, "version")), 1);
    assert_string_equal(jget(b, "event", NULL), "open");
    assert_string_equal(jget(b, "incident", "key"), "py-src-import/api-1/src");
    assert_string_equal(jget(b, "incident", "severity"), "critical");
    assert_string_equal(jget(b, "incident", "sample"), inc.sample);
    assert_string_equal(jget(b, "incident", "script"), "api-1");
    json_decref(b);
    json_decref(r);

    r = reqs("/am1/api/v2/alerts");
    assert_int_equal(json_array_size(r), 1);
    b = body_of(json_array_get(r, 0));
    a = json_array_get(b, 0);
    assert_string_equal(jget(a, "labels", "alertname"), "py-src-import");
    assert_string_equal(jget(a, "labels", "script"), "api-1");
    assert_string_equal(jget(a, "labels", "severity"), "critical");
    assert_string_equal(jget(a, "labels", "module"), "src");
    assert_string_equal(jget(a, "labels", "team"), "ops");
    assert_string_equal(jget(a, "annotations", "summary"), inc.title);
    assert_non_null(jget(a, "endsAt", NULL));
    json_decref(b);
    json_decref(r);

    /* the resolve: PagerDuty resolve with the same dedup_key, Alertmanager endsAt, Slack */
    capture_cmd(&cap, "/reset", NULL);
    inc.state = CFW_INCIDENT_RESOLVED;
    inc.resolved_wall_ms = cfw_now_wall_ms();
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_RESOLVE), 0);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    r = reqs("/pd");
    assert_int_equal(json_array_size(r), 1);
    b = body_of(json_array_get(r, 0));
    assert_string_equal(jget(b, "event_action", NULL), "resolve");
    assert_string_equal(jget(b, "dedup_key", NULL), "cfwatchd:py-src-import/api-1/src");
    json_decref(b);
    json_decref(r);
    r = reqs("/slack/T000/B000/" SLACK_TOKEN);
    b = body_of(json_array_get(r, 0));
    assert_non_null(strstr(jget(b, "text", NULL), "Resolved"));
    json_decref(b);
    json_decref(r);
    r = reqs("/hook/" HOOK_TOKEN);
    b = body_of(json_array_get(r, 0));
    assert_string_equal(jget(b, "event", NULL), "resolve");
    json_decref(b);
    json_decref(r);

    cfw_notifier_stats(e->n, &st);
    assert_int_equal(st.n_sinks, 4);
    for (size_t i = 0; i < st.n_sinks; i++) {
        assert_int_equal(st.sinks[i].sent, 2);
        assert_int_equal(st.sinks[i].dead, 0);
        assert_int_equal(st.sinks[i].pending, 0);
    }
    cfw_notifier_stats_clear(&st);
    incident_free(&inc);
    free(yaml);
}

static void test_filters_end_to_end(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc;
    json_t *r;

    notifier(e, yaml);
    incident(&inc, 2, CFW_SEV_WARNING);
    free(inc.rule);
    inc.rule = cfw_xstrdup("other-rule");
    /* warning: not for pd (min error); rule other-rule: not for slack (py-*) */
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_OPEN), 0);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    r = reqs(NULL);
    assert_int_equal(json_array_size(r), 2);
    json_decref(r);
    r = reqs("/pd");
    assert_int_equal(json_array_size(r), 0);
    json_decref(r);
    incident_free(&inc);
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
    incident(&inc, 3, CFW_SEV_INFO);
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_OPEN), 0);
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
    incident_free(&inc);
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
    incident(&inc, 4, CFW_SEV_ERROR);
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_OPEN), 0);
    inc.state = CFW_INCIDENT_RESOLVED;
    inc.resolved_wall_ms = cfw_now_wall_ms();
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_RESOLVE), 0);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    r = reqs("/hook/" HOOK_TOKEN);
    json_array_foreach (r, i, rec) {
        if (json_integer_value(json_object_get(rec, "status")) == 200) {
            b = body_of(rec);
            if (ok < 2) {
                order[ok] = strcmp(jget(b, "event", NULL), "open") == 0 ? "open" : "resolve";
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
    incident_free(&inc);
    free(yaml);
}

static void test_400_dead_letter(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc;
    json_t *r;
    char dead[96];
    struct cfw_notifier_stats st;
    DIR *d;
    struct dirent *de;
    bool reason_found = false;

    capture_cmd(&cap, "/script",
                "{\"path\":\"/slack/T000/B000/" SLACK_TOKEN "\",\"responses\":[],\"then\":{"
                "\"status\":400,\"body\":\"invalid_payload\"}}");
    notifier(e, yaml);
    incident(&inc, 5, CFW_SEV_INFO);
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_OPEN), 0);
    /* something could not be delivered: drain says so */
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 10000), -1);
    settle(e->base, 800);
    r = reqs("/slack/T000/B000/" SLACK_TOKEN);
    assert_int_equal(json_array_size(r), 1); /* not retried */
    json_decref(r);
    cfw_notifier_stats(e->n, &st);
    assert_int_equal(st.sinks[0].dead, 1);
    assert_int_equal(st.sinks[0].sent, 0);
    assert_int_equal(st.sinks[2].sent, 1);
    cfw_notifier_stats_clear(&st);
    snprintf(dead, sizeof(dead), "%s/dead", e->dir);
    assert_int_equal(count_dir(dead, "-slack.json"), 1);
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
            reason_found = strstr(jget(o, "dead", "reason"), "invalid_payload") != NULL;
            assert_null(strstr(json_string_value(json_object_get(o, "body")), SLACK_TOKEN));
            json_decref(o);
        }
    }
    closedir(d);
    assert_true(reason_found);
    incident_free(&inc);
    free(yaml);
}

static void test_receiver_down_20s(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc[50];
    json_t *r, *rec;
    size_t i;
    int seen[50];
    int64_t until;

    memset(seen, 0, sizeof(seen));
    capture_cmd(&cap, "/down", NULL);
    notifier(e, yaml);
    for (int k = 0; k < 50; k++) {
        incident(&inc[k], 100 + k, CFW_SEV_WARNING);
        assert_int_equal(cfw_notifier_submit(e->n, &inc[k], CFW_TRANSITION_OPEN), 0);
    }
    until = cfw_now_mono_ms() + 20000;
    assert_int_equal(cfw_notifier_drain(e->n, until), -1);
    assert_true(cfw_notifier_pending(e->n) >= 50);
    capture_cmd(&cap, "/up", NULL);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 30000), 0);
    r = reqs("/hook/" HOOK_TOKEN);
    json_array_foreach (r, i, rec) {
        json_t *b = body_of(rec);
        int n = (int)strtol(strrchr(jget(b, "incident", "script"), '-') + 1, NULL, 10) - 100;
        assert_true(n >= 0 && n < 50);
        seen[n]++;
        json_decref(b);
    }
    /* all 50 delivered, each exactly once */
    assert_int_equal(json_array_size(r), 50);
    for (int k = 0; k < 50; k++) {
        assert_int_equal(seen[k], 1);
        incident_free(&inc[k]);
    }
    json_decref(r);
    free(yaml);
}

static void test_free_without_drain(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml(NULL);
    struct cfw_incident inc[5];
    json_t *r;
    char outbox[96];

    capture_cmd(&cap, "/down", NULL);
    notifier(e, yaml);
    for (int k = 0; k < 5; k++) {
        incident(&inc[k], 200 + k, CFW_SEV_WARNING);
        assert_int_equal(cfw_notifier_submit(e->n, &inc[k], CFW_TRANSITION_OPEN), 0);
    }
    settle(e->base, 300);
    cfw_notifier_free(e->n);
    e->n = NULL;
    snprintf(outbox, sizeof(outbox), "%s/outbox", e->dir);
    /* 5 incidents x 3 HTTP sinks that take warnings (slack, hook, am) stay spooled */
    assert_int_equal(count_dir(outbox, ".job"), 15);
    capture_cmd(&cap, "/up", NULL);
    notifier(e, yaml);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    r = reqs("/hook/" HOOK_TOKEN);
    assert_int_equal(json_array_size(r), 5);
    json_decref(r);
    r = reqs("/slack/T000/B000/" SLACK_TOKEN);
    assert_int_equal(json_array_size(r), 5);
    json_decref(r);
    assert_int_equal(count_dir(outbox, ".job"), 0);
    for (int k = 0; k < 5; k++) {
        incident_free(&inc[k]);
    }
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
    json_t *r, *rec;
    size_t i;
    int seen[10];

    memset(seen, 0, sizeof(seen));
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
            incident_free(&inc);
        }
        settle(child.base, 300);
        if (write(ready[1], "r", 1) != 1) {
            _exit(3);
        }
        for (;;) {
            settle(child.base, 1000);
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
    r = reqs("/hook/" HOOK_TOKEN);
    json_array_foreach (r, i, rec) {
        json_t *b = body_of(rec);
        int n = (int)strtol(strrchr(jget(b, "incident", "script"), '-') + 1, NULL, 10) - 300;
        assert_true(n >= 0 && n < 10);
        seen[n]++;
        json_decref(b);
    }
    assert_int_equal(json_array_size(r), 10);
    for (int k = 0; k < 10; k++) {
        assert_int_equal(seen[k], 1);
    }
    json_decref(r);
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
    for (int k = 0; k < 10; k++) {
        incident(&inc[k], 400 + k, CFW_SEV_WARNING);
        assert_int_equal(cfw_notifier_submit(old, &inc[k], CFW_TRANSITION_OPEN), 0);
    }
    settle(e->base, 200);
    /* a reload: the new notifier starts before the old one is freed, on the same spool */
    e->n = NULL;
    notifier(e, yaml);
    cfw_notifier_free(old);
    capture_cmd(&cap, "/up", NULL);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 15000), 0);
    r = reqs("/hook/" HOOK_TOKEN);
    assert_int_equal(json_array_size(r), 10);
    json_decref(r);
    /* Slack: 5 within its burst, the other 5 in the digest the old notifier held */
    r = reqs("/slack/T000/B000/" SLACK_TOKEN);
    json_array_foreach (r, i, rec) {
        json_t *b = body_of(rec);
        const char *text = jget(b, "text", NULL);
        listed += strstr(text, "rate limited") != NULL ? 5 : 1;
        json_decref(b);
    }
    assert_int_equal(json_array_size(r), 6);
    assert_int_equal(listed, 10);
    json_decref(r);
    for (int k = 0; k < 10; k++) {
        incident_free(&inc[k]);
    }
    free(yaml);
}

static void test_test_alert(void **state)
{
    struct env *e = *state;
    char *yaml = sinks_yaml("  - {name: out, type: stdout}\n");
    struct cfw_test_result res;
    json_t *r, *b;

    notifier(e, yaml);
    assert_int_equal(cfw_notifier_test_alert(e->n, "hook", cfw_now_mono_ms() + 10000, &res), 0);
    assert_true(res.delivered);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.answer, "HTTP 200"));
    assert_non_null(strstr(res.answer, "/hook/***"));
    assert_null(strstr(res.answer, HOOK_TOKEN));
    r = reqs("/hook/" HOOK_TOKEN);
    assert_int_equal(json_array_size(r), 1);
    b = body_of(json_array_get(r, 0));
    assert_string_equal(jget(b, "event", NULL), "test");
    assert_true(json_is_true(json_object_get(b, "test")));
    json_decref(b);
    json_decref(r);
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
        const char *s = jget(a, "labels", "script");
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
            const char *s = jget(a, "labels", "script");
            const char *st = jget(a, "status", NULL);
            const char *name = jget(a, "labels", "alertname");
            const char *team = jget(a, "labels", "team");
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

static void test_real_alertmanager(void **state)
{
    struct env *e = *state;
    int am_port = free_port();
    char cfg[128], store[128], *conf, *yaml, arg_cfg[160], arg_store[160], arg_listen[64];
    FILE *fp;
    pid_t pid;
    int st;
    json_t *a = NULL;
    struct cfw_incident inc;
    int64_t deadline;
    char ready_url[96];

    if (system("command -v prometheus-alertmanager >/dev/null 2>&1") != 0) {
        fprintf(stdout, "SKIPPED: prometheus-alertmanager is not installed "
                        "(apt-get install prometheus-alertmanager)\n");
        skip();
    }
    snprintf(cfg, sizeof(cfg), "%s/am.yml", e->dir);
    snprintf(store, sizeof(store), "%s/am-data", e->dir);
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
    snprintf(arg_listen, sizeof(arg_listen), "--web.listen-address=127.0.0.1:%d", am_port);
    pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("prometheus-alertmanager", "prometheus-alertmanager", arg_cfg, arg_store, arg_listen,
               "--cluster.listen-address=", (char *)NULL);
        _exit(127);
    }
    snprintf(ready_url, sizeof(ready_url), "http://127.0.0.1:%d/api/v2/status", am_port);
    deadline = cfw_now_mono_ms() + 20000;
    while (cfw_now_mono_ms() < deadline && (a = http_get_json(ready_url)) == NULL) {
        usleep(200000);
    }
    assert_non_null(a);
    json_decref(a);
    a = NULL;

    yaml = cfw_xasprintf("sinks:\n"
                         "  - name: am\n"
                         "    type: alertmanager\n"
                         "    urls: ['http://127.0.0.1:%d']\n"
                         "    labels: {team: ops}\n"
                         "    resend_interval: 2s\n",
                         am_port);
    notifier(e, yaml);
    incident(&inc, 900, CFW_SEV_CRITICAL);
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_OPEN), 0);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 10000), 0);
    /* it shows up in Alertmanager's API with the right labels */
    deadline = cfw_now_mono_ms() + 10000;
    while (cfw_now_mono_ms() < deadline && (a = am_alert(am_port, "api-900")) == NULL) {
        settle(e->base, 200);
    }
    assert_non_null(a);
    assert_string_equal(jget(a, "labels", "alertname"), "py-src-import");
    assert_string_equal(jget(a, "labels", "severity"), "critical");
    assert_string_equal(jget(a, "labels", "module"), "src");
    assert_string_equal(jget(a, "labels", "team"), "ops");
    assert_string_equal(jget(a, "labels", "incident"), "py-src-import/api-900/src");
    assert_string_equal(jget(a, "annotations", "summary"), inc.title);
    assert_string_equal(jget(a, "status", "state"), "active");
    json_decref(a);
    /* and reaches the capture server through Alertmanager's own routing */
    deadline = cfw_now_mono_ms() + 20000;
    while (cfw_now_mono_ms() < deadline && !webhook_has("firing", "api-900")) {
        settle(e->base, 300);
    }
    assert_true(webhook_has("firing", "api-900"));
    /* the re-send keeps it alive (the loop keeps running for a few intervals) */
    settle(e->base, 4500);
    a = am_alert(am_port, "api-900");
    assert_non_null(a);
    assert_string_equal(jget(a, "status", "state"), "active");
    json_decref(a);
    /* cfwatchd resolves it: Alertmanager sends the resolved notification */
    inc.state = CFW_INCIDENT_RESOLVED;
    inc.resolved_wall_ms = cfw_now_wall_ms();
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_RESOLVE), 0);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 10000), 0);
    deadline = cfw_now_mono_ms() + 20000;
    while (cfw_now_mono_ms() < deadline && !webhook_has("resolved", "api-900")) {
        settle(e->base, 300);
    }
    assert_true(webhook_has("resolved", "api-900"));
    a = am_alert(am_port, "api-900");
    assert_null(a); /* no longer among the active alerts */
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    incident_free(&inc);
    free(yaml);
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
    json_t *r;
    size_t before;
    int64_t deadline;
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
    incident(&inc, 950, CFW_SEV_CRITICAL);
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_OPEN), 0);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 10000), 0);
    /* wait for a re-send to reach the receiver: it is now waiting for its answer */
    r = reqs(path);
    before = json_array_size(r);
    json_decref(r);
    deadline = cfw_now_mono_ms() + 10000;
    for (;;) {
        size_t now_n;
        settle(e->base, 20);
        r = reqs(path);
        now_n = json_array_size(r);
        json_decref(r);
        if (now_n > before || cfw_now_mono_ms() > deadline) {
            break;
        }
    }
    inc.state = CFW_INCIDENT_RESOLVED;
    inc.resolved_wall_ms = cfw_now_wall_ms();
    assert_int_equal(cfw_notifier_submit(e->n, &inc, CFW_TRANSITION_RESOLVE), 0);
    assert_int_equal(cfw_notifier_drain(e->n, cfw_now_mono_ms() + 10000), 0);
    r = reqs(path);
    assert_true(json_array_size(r) >= before + 2);
    t_resend = json_real_value(json_object_get(json_array_get(r, before), "time"));
    t_resolve = json_real_value(json_object_get(json_array_get(r, json_array_size(r) - 1), "time"));
    fprintf(stdout, "the resolve reached the receiver %.3f s after the re-send in flight\n",
            t_resolve - t_resend);
    /* the re-send's answer came 0.8 s after it arrived; the resolve left after that answer */
    assert_true(t_resolve - t_resend >= 0.75);
    assert_non_null(strstr(json_string_value(json_object_get(
                               json_array_get(r, json_array_size(r) - 1), "body")),
                           "endsAt"));
    json_decref(r);
    incident_free(&inc);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_payload_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters_end_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_500_then_200_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_400_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receiver_down_20s, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_without_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sigkill_then_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_test_alert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_alertmanager, setup, teardown),
        cmocka_unit_test_setup_teardown(test_am_resolve_waits_for_resend, setup, teardown),
        cmocka_unit_test(test_no_secret_in_logs),
        cmocka_unit_test(test_outbox_opts),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
