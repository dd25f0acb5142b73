/*
 * Unit tests for the exec source (source_exec.c): real child processes (scripts in
 * tests/data/sources), a real event_base driven with EVLOOP_ONCE. Output and eof per stream,
 * restart with backoff, DOWN after repeated failures, stop through the process group (SIGTERM,
 * then SIGKILL after the grace period), no zombies left, a flooding child not starving the loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "cfwatchd/common.h"
#include "cfwatchd/source.h"
#include "cfwatchd/yaml.h"
#include "diag_check.h"
#include "source_harness.h"

#define DATA CFW_TEST_DATA "/sources"

/* ---- helpers ---- */

static int setup(void **state)
{
    return src_env_setup(state, NULL, true);
}

/* Starts conf as the configuration of an exec source running command (a strv_of() list). */
static void exec_conf(struct cfw_source_conf *conf, char **command)
{
    cfw_source_conf_init(conf, CFW_SOURCE_EXEC);
    conf->command = command;
}

static struct cfw_source *exec_source(struct src_env *c, struct cfw_source_conf *conf,
                                      struct rec *r)
{
    struct cfw_source_cbs cbs = rec_cbs(r);
    struct cfw_err err = {0};
    struct cfw_source *src;

    if (conf->name == NULL) {
        conf->name = cfw_xstrdup("cmd");
    }
    src = cfw_source_new(c->base, conf, &cbs, &err);
    cfw_source_conf_clear(conf);
    assert_non_null(src);
    assert_int_equal(cfw_source_start(src, &err), 0);
    return src;
}

struct want_text {
    struct rec *r;
    const char *stream;
    const char *needle;
    unsigned count;
};

static unsigned count_in(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static bool has_text(void *arg)
{
    struct want_text *w = arg;
    size_t ns, ne;
    char *t = rec_stream_text(w->r, w->stream, &ns, &ne);
    bool ok = count_in(t, w->needle) >= w->count;
    free(t);
    return ok;
}

static bool wait_text(struct src_env *c, struct rec *r, const char *stream, const char *needle,
                      unsigned count, int64_t timeout_ms)
{
    struct want_text w = {r, stream, needle, count};
    return loop_run_until(c->base, has_text, &w, timeout_ms);
}

static bool is_stopped(void *arg)
{
    return cfw_source_stopped(arg);
}

/* The pid printed after "key " in text, or -1. */
static pid_t pid_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    uint64_t v;
    char num[32];
    size_t n = 0;

    if (p == NULL) {
        return -1;
    }
    p += strlen(key);
    while (p[n] >= '0' && p[n] <= '9' && n < sizeof(num) - 1) {
        num[n] = p[n];
        n++;
    }
    num[n] = '\0';
    return cfw_parse_u64(num, &v) == 0 ? (pid_t)v : -1;
}

/* The pid printed after "key " on the stdout r recorded, or -1. */
static pid_t stdout_pid(const struct rec *r, const char *key)
{
    size_t ns, ne;
    char *out = rec_stream_text(r, "stdout", &ns, &ne);
    pid_t pid = pid_after(out, key);

    free(out);
    return pid;
}

static bool proc_exists(pid_t pid)
{
    char path[64];
    struct stat st;

    snprintf(path, sizeof(path), "/proc/%d", (int)pid);
    return stat(path, &st) == 0;
}

/* Reaps every child that has ended; true when none is left (ECHILD). */
static bool no_child_left(void *arg)
{
    (void)arg;
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            continue;
        }
        return p < 0 && errno == ECHILD;
    }
}

/*
 * The test process is a child subreaper, so orphaned grandchildren come back to it: collect
 * them, asserting they are dead, and check that no child is left running or unreaped.
 */
static void reap_orphans_and_check_none_left(struct event_base *base)
{
    if (!loop_poll_until(base, no_child_left, NULL, 5000, 10)) {
        fail_msg("a child process is still running");
    }
}

/* Frees src, checks that it left no child, frees what r recorded. */
static void finish(struct src_env *c, struct cfw_source *src, struct rec *r)
{
    cfw_source_free(src);
    reap_orphans_and_check_none_left(c->base);
    rec_clear(r);
}

/* Stops src, waits until it has stopped (timeout_ms), then finish(). */
static void stop_and_finish(struct src_env *c, struct cfw_source *src, struct rec *r,
                            int64_t timeout_ms)
{
    cfw_source_stop(src);
    assert_true(loop_run_until(c->base, is_stopped, src, timeout_ms));
    finish(c, src, r);
}

/* ---- tests ---- */

/* Parses "start <ns>" / "exit <ns>" lines of tail_json.sh from the stderr text. */
static size_t times_of(const char *text, const char *key, int64_t *out, size_t max)
{
    size_t n = 0;
    size_t kl = strlen(key);

    for (const char *p = text; p != NULL && *p != '\0' && n < max;) {
        const char *nl = strchr(p, '\n');
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
            uint64_t v;
            char num[32];
            size_t len = (size_t)((nl != NULL ? nl : p + strlen(p)) - (p + kl + 1));
            if (len < sizeof(num)) {
                memcpy(num, p + kl + 1, len);
                num[len] = '\0';
                if (cfw_parse_u64(num, &v) == 0) {
                    out[n++] = (int64_t)v;
                }
            }
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    return n;
}

static void test_output_eof_and_restart_backoff(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source *src;
    struct cfw_source_stats st;
    int64_t starts[4], exits[4];
    size_t ns, ne;
    char *out, *err;

    exec_conf(&conf, strv_of("sh", DATA "/tail_json.sh", "3", NULL));
    conf.stdout_format = CFW_FMT_JSON;
    conf.stderr_format = CFW_FMT_LINES;
    src = exec_source(c, &conf, &r);
    assert_int_equal(cfw_source_get_format(src, "stdout"), CFW_FMT_JSON);
    assert_int_equal(cfw_source_get_format(src, "stderr"), CFW_FMT_LINES);
    /* Three runs: restarts after 1 s, then 2 s (defaults: 1 s doubling). */
    assert_true(wait_text(c, &r, "stderr", "exit ", 3, 15000));
    assert_true(wait_text(c, &r, "stdout", "\"outcome\"", 3, 5000));
    loop_run_for(c->base, 100);
    out = rec_stream_text(&r, "stdout", &ns, &ne);
    assert_int_equal(count_in(out, "ModuleNotFoundError: No module named 'src'"), 3);
    assert_int_equal(ns, 3); /* one stream per run, each ended */
    assert_int_equal(ne, 3);
    free(out);
    err = rec_stream_text(&r, "stderr", &ns, &ne);
    assert_int_equal(ns, 3);
    assert_int_equal(ne, 3);
    assert_int_equal(times_of(err, "start", starts, 4), 3);
    assert_int_equal(times_of(err, "exit", exits, 4), 3);
    print_message("restart gaps: %lldms, %lldms\n", (long long)((starts[1] - exits[0]) / 1000000),
                  (long long)((starts[2] - exits[1]) / 1000000));
    assert_true(starts[1] - exits[0] >= 1000000000LL);
    assert_true(starts[2] - exits[1] >= 2000000000LL);
    free(err);
    assert_int_equal(r.stray_eofs, 0);
    assert_true(r.nstates >= 1);
    assert_int_equal(r.states[0], CFW_INPUT_DEGRADED);
    ASSERT_HAS_ALL(r.reasons[0], "exited with status 3", "restarting in 1000ms");
    cfw_source_get_stats(src, &st);
    assert_int_equal(st.starts, 3);
    assert_int_equal(st.failures, 3);
    stop_and_finish(c, src, &r, 5000);
}

static void test_repeated_failures_go_down(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source *src;
    struct cfw_source_stats st;
    const char *reason = NULL;

    exec_conf(&conf, strv_of("sh", DATA "/fail_fast.sh", "7", NULL));
    conf.restart_delay_ms = 50;
    conf.down_after_failures = 3;
    src = exec_source(c, &conf, &r);
    assert_true(rec_wait_state(c->base, &r, CFW_INPUT_DOWN, 10000));
    assert_int_equal(r.nstates, 2);
    assert_int_equal(r.states[0], CFW_INPUT_DEGRADED);
    assert_int_equal(r.states[1], CFW_INPUT_DOWN);
    ASSERT_HAS_ALL(r.reasons[1], "failed 3 times in a row", "exited with status 7");
    assert_int_equal(cfw_source_get_state(src, &reason), CFW_INPUT_DOWN);
    assert_string_equal(reason, r.reasons[1]);
    cfw_source_get_stats(src, &st);
    assert_true(st.failures >= 3);
    assert_true(wait_text(c, &r, "stderr", "You must be logged in", 3, 5000));
    stop_and_finish(c, src, &r, 5000);
}

static void test_spawn_failure_counts(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source *src;

    exec_conf(&conf, strv_of("/nonexistent/wrangler", "tail", NULL));
    conf.restart_delay_ms = 50;
    conf.down_after_failures = 2;
    src = exec_source(c, &conf, &r);
    assert_true(rec_wait_state(c->base, &r, CFW_INPUT_DOWN, 5000));
    ASSERT_HAS_ALL(r.reasons[r.nstates - 1], "No such file or directory");
    finish(c, src, &r);
}

static size_t degraded_count(const struct rec *r)
{
    size_t n = 0;

    for (size_t i = 0; i < r->nstates; i++) {
        n += r->states[i] == CFW_INPUT_DEGRADED ? 1 : 0;
    }
    return n;
}

static bool three_degraded(void *arg)
{
    return degraded_count(arg) >= 3;
}

/* A run that lasts stable_after resets the backoff: every restart is after the first delay. */
static void test_stable_run_resets_backoff(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source *src;

    exec_conf(&conf, strv_of("sh", "-c", "sleep 0.3; exit 1", NULL));
    conf.restart_delay_ms = 100;
    conf.stable_after_ms = 150;
    src = exec_source(c, &conf, &r);
    /* UP (stable) -> DEGRADED (exit) -> UP (stable again) -> DEGRADED ... */
    loop_run_until(c->base, three_degraded, &r, 10000);
    assert_int_equal(degraded_count(&r), 3);
    for (size_t i = 0; i < r.nstates; i++) {
        enum cfw_input_health want = i % 2 == 0 ? CFW_INPUT_DEGRADED : CFW_INPUT_UP;
        assert_int_equal(r.states[i], want);
        if (want == CFW_INPUT_DEGRADED) {
            ASSERT_HAS_ALL(r.reasons[i], "restarting in 100ms");
        }
    }
    finish(c, src, &r);
}

/* A child to wait for, and its status once waitpid() returned. */
struct child_wait {
    pid_t pid;
    int status;
};

/* Whether waitpid() for the child returned (reaped, or an error): polled, not signalled. */
static bool child_waited(void *arg)
{
    struct child_wait *w = arg;

    return waitpid(w->pid, &w->status, WNOHANG) != 0;
}

static void test_stop_kills_process_group(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source *src;
    pid_t leader, grandchild;
    struct child_wait gc = {0};

    exec_conf(&conf, strv_of("sh", DATA "/group.sh", NULL));
    conf.stop_grace_ms = 5000;
    src = exec_source(c, &conf, &r);
    assert_true(wait_text(c, &r, "stdout", "leader ", 1, 5000));
    assert_true(wait_text(c, &r, "stdout", "sleeper ignores TERM", 1, 5000));
    leader = stdout_pid(&r, "leader ");
    grandchild = stdout_pid(&r, "grandchild ");
    assert_true(leader > 0 && grandchild > 0);
    assert_true(proc_exists(grandchild));
    gc.pid = grandchild;
    cfw_source_stop(src);
    assert_true(loop_run_until(c->base, is_stopped, src, 10000));
    /* The leader was reaped by the source; nothing is left to wait for. */
    assert_int_equal(waitpid(leader, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    /* The grandchild ignored SIGTERM: it got SIGKILL (it is our orphan, as subreaper). */
    loop_poll_until(c->base, child_waited, &gc, 5000, 10);
    assert_true(WIFSIGNALED(gc.status));
    assert_int_equal(WTERMSIG(gc.status), SIGKILL);
    assert_false(proc_exists(grandchild));
    assert_true(r.segs[0].ended);
    assert_int_equal(r.stray_eofs, 0);
    finish(c, src, &r);
}

static void test_sigkill_after_grace(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source *src;
    pid_t leader;
    int64_t t0, took;

    exec_conf(&conf, strv_of("sh", DATA "/ignore_term.sh", NULL));
    conf.stop_grace_ms = 500;
    src = exec_source(c, &conf, &r);
    assert_true(wait_text(c, &r, "stdout", "leader ", 1, 5000));
    leader = stdout_pid(&r, "leader ");
    assert_true(leader > 0);
    t0 = cfw_now_mono_ms();
    cfw_source_stop(src);
    assert_true(loop_run_until(c->base, is_stopped, src, 10000));
    took = cfw_now_mono_ms() - t0;
    print_message("stopped after %lldms\n", (long long)took);
    assert_true(took >= 500);
    assert_false(proc_exists(leader));
    assert_int_equal(waitpid(leader, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    finish(c, src, &r);
}

static void test_free_kills_running_child(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source *src;
    pid_t leader;

    exec_conf(&conf, strv_of("sh", DATA "/ignore_term.sh", NULL));
    src = exec_source(c, &conf, &r);
    assert_true(wait_text(c, &r, "stdout", "leader ", 1, 5000));
    leader = stdout_pid(&r, "leader ");
    cfw_source_free(src); /* SIGKILL and reap, no callbacks */
    assert_false(proc_exists(leader));
    reap_orphans_and_check_none_left(c->base);
    rec_clear(&r);
}

static void test_flood_does_not_starve_loop(void **state)
{
    struct src_env *c = *state;
    struct rec r = {.count_only = true};
    struct cfw_source_conf conf;
    struct cfw_source *src;
    struct loop_ticker t = {0};
    uint64_t want = 16u * 1024u * 1024u;

    loop_ticker_start(c->base, &t);
    r.ticks = &t.n;
    exec_conf(&conf, strv_of("yes", "a flooding line of output from a runaway command", NULL));
    conf.read_budget = 64 * 1024;
    src = exec_source(c, &conf, &r);
    assert_true(rec_wait_bytes(c->base, &r, want, 60000));
    print_message("ticks while reading 16 MiB: %llu\n",
                  (unsigned long long)(r.last_tick - r.first_tick));
    assert_true(r.last_tick - r.first_tick >= 100);
    loop_ticker_stop(&t);
    stop_and_finish(c, src, &r, 10000);
}

static void test_closed_stdout_keeps_running(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source *src;
    struct cfw_source_stats st;

    exec_conf(&conf,
              strv_of("sh", "-c", "echo out; exec 1>&-; echo alive >&2; exec sleep 1000", NULL));
    src = exec_source(c, &conf, &r);
    assert_true(wait_text(c, &r, "stderr", "alive", 1, 5000));
    loop_run_for(c->base, 300);
    assert_int_equal(r.nsegs, 2);
    assert_string_equal(r.segs[0].stream, "stdout");
    assert_string_equal(rec_seg_text(&r.segs[0]), "out\n");
    assert_true(r.segs[0].ended);
    assert_string_equal(rec_seg_text(&r.segs[1]), "alive\n");
    assert_false(r.segs[1].ended);
    cfw_source_get_stats(src, &st);
    assert_int_equal(st.starts, 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(r.nstates, 0);
    cfw_source_stop(src);
    assert_true(loop_run_until(c->base, is_stopped, src, 10000));
    assert_true(r.segs[1].ended);
    finish(c, src, &r);
}

static void test_env_and_cwd(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source *src;
    char *want;

    exec_conf(&conf, strv_of("sh", "-c", "echo \"$CFW_TEST_VAR\"; pwd; exec sleep 1000", NULL));
    cfw_fields_set(&conf.env, "CFW_TEST_VAR", "from the config");
    conf.cwd = cfw_xstrdup(DATA);
    src = exec_source(c, &conf, &r);
    want = cfw_xasprintf("from the config\n%s\n", DATA);
    assert_true(wait_text(c, &r, "stdout", DATA "\n", 1, 5000));
    assert_string_equal(rec_seg_text(&r.segs[0]), want);
    free(want);
    finish(c, src, &r);
}

static void test_save_restore_trivial(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source_cbs cbs = rec_cbs(&r);
    struct cfw_source *src;
    json_t *saved;

    cfw_source_conf_init(&conf, CFW_SOURCE_EXEC);
    conf.name = cfw_xstrdup("cmd");
    conf.command = strv_of("true", NULL);
    src = cfw_source_new(c->base, &conf, &cbs, NULL);
    cfw_source_conf_clear(&conf);
    saved = cfw_source_save(src);
    assert_string_equal(json_string_value(json_object_get(saved, "type")), "exec");
    assert_int_equal(cfw_source_restore(src, saved), 0);
    assert_true(cfw_source_stopped(src)); /* never started */
    json_decref(saved);
    cfw_source_free(src);
    rec_clear(&r);
}

/* ---- configuration ---- */

static void test_conf_exec(void **state)
{
    const char *text = "name: py-api\n"
                       "type: exec\n"
                       "command: [wrangler, tail, py-api, --format, json]\n"
                       "env:\n"
                       "  CLOUDFLARE_ACCOUNT_ID: abc\n"
                       "  NO_COLOR: '1'\n"
                       "cwd: /srv/app\n"
                       "stdout_format: json\n"
                       "stderr_format: lines\n"
                       "restart_delay: 2s\n"
                       "restart_delay_max: 5m\n"
                       "stable_after: 30s\n"
                       "stop_grace: 10s\n"
                       "down_after_failures: 4\n";
    struct cfw_diag diag = {0};
    struct cfw_source_conf conf;

    (void)state;
    assert_int_equal(source_conf_parse_text("t.yaml", text, "sources[0]", &conf, &diag), 0);
    assert_int_equal(conf.type, CFW_SOURCE_EXEC);
    assert_string_equal(conf.command[0], "wrangler");
    assert_string_equal(conf.command[4], "json");
    assert_null(conf.command[5]);
    assert_string_equal(cfw_fields_get(&conf.env, "CLOUDFLARE_ACCOUNT_ID"), "abc");
    assert_string_equal(cfw_fields_get(&conf.env, "NO_COLOR"), "1");
    assert_string_equal(conf.cwd, "/srv/app");
    assert_int_equal(conf.stdout_format, CFW_FMT_JSON);
    assert_int_equal(conf.stderr_format, CFW_FMT_LINES);
    assert_int_equal(conf.restart_delay_ms, 2000);
    assert_int_equal(conf.restart_delay_max_ms, 300000);
    assert_int_equal(conf.stable_after_ms, 30000);
    assert_int_equal(conf.stop_grace_ms, 10000);
    assert_int_equal(conf.down_after_failures, 4);
    cfw_source_conf_clear(&conf);

    text = "name: x\ntype: exec\ncommand: [true]\n";
    assert_int_equal(source_conf_parse_text("t.yaml", text, "sources[0]", &conf, &diag), 0);
    assert_int_equal(conf.restart_delay_ms, CFW_SOURCE_RESTART_DELAY_DEFAULT_MS);
    assert_int_equal(conf.restart_delay_max_ms, CFW_SOURCE_RESTART_DELAY_MAX_DEFAULT_MS);
    assert_int_equal(conf.stable_after_ms, CFW_SOURCE_STABLE_AFTER_DEFAULT_MS);
    assert_int_equal(conf.stop_grace_ms, CFW_SOURCE_STOP_GRACE_DEFAULT_MS);
    assert_int_equal(conf.down_after_failures, CFW_SOURCE_DOWN_AFTER_FAILURES_DEFAULT);
    assert_int_equal(conf.stdout_format, CFW_FMT_AUTO);
    assert_null(conf.cwd);
    cfw_source_conf_clear(&conf);
    cfw_diag_free(&diag);
}

static void test_conf_exec_errors(void **state)
{
    const char *text = "name: x\n"
                       "type: exec\n"
                       "command: wrangler tail py-api\n"
                       "env: [A]\n"
                       "stdout_format: yaml\n"
                       "restart_delay: 10s\n"
                       "restart_delay_max: 1s\n"
                       "path: /x\n";
    struct cfw_diag diag = {0};
    struct cfw_source_conf conf;

    (void)state;
    assert_int_equal(source_conf_parse_text("t.yaml", text, "sources[3]", &conf, &diag), -1);
    ASSERT_DIAG_HAS_ALL(&diag, "no shell", "sources[3].env", "unknown format 'yaml'",
                        "restart_delay_max must not be less", "unknown key 'path'");
    cfw_diag_free(&diag);
}

#define EXEC_TEST(f) cmocka_unit_test_setup_teardown(f, setup, src_env_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* children on a loop */
        EXEC_TEST(test_output_eof_and_restart_backoff),
        EXEC_TEST(test_repeated_failures_go_down),
        EXEC_TEST(test_spawn_failure_counts),
        EXEC_TEST(test_stable_run_resets_backoff),
        EXEC_TEST(test_stop_kills_process_group),
        EXEC_TEST(test_sigkill_after_grace),
        EXEC_TEST(test_free_kills_running_child),
        EXEC_TEST(test_flood_does_not_starve_loop),
        EXEC_TEST(test_closed_stdout_keeps_running),
        EXEC_TEST(test_env_and_cwd),
        EXEC_TEST(test_save_restore_trivial),
        /* configuration */
        cmocka_unit_test(test_conf_exec),
        cmocka_unit_test(test_conf_exec_errors),
    };

    /* Orphaned grandchildren come back to us, so the tests can check they were killed. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        perror("prctl(PR_SET_CHILD_SUBREAPER)");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
