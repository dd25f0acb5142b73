/*
 * Unit tests for the outbox (outbox.c, outbox_spool.c): real files in a temporary state
 * directory, a real event_base; the deliveries are done by a small sender in this file that
 * answers with scripted outcomes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cfwatchd/common.h"
#include "cfwatchd/outbox.h"
#include "test_util.h"

#define MAX_LOG 256

struct attempt {
    char kind[32];
    char body[64];
    unsigned n;
    int64_t at;
};

struct t {
    struct event_base *base;
    struct cfw_outbox *ob;
    char dir[64];
    /* scripted outcome: fails_left per body text, retry_after, permanent */
    int fail_first;      /* number of RETRY answers for every job before DONE */
    int64_t retry_after; /* -1: none */
    bool permanent;
    bool always_retry;
    const char *fail_body; /* when set, only this body fails */
    struct attempt log[MAX_LOG];
    size_t nlog;
    size_t gone_ok;
    size_t gone_dead;
    const char *unknown_sink;
    /* completions are reported from the loop, never inside send */
    struct cfw_outbox_job *pending[64];
    size_t npending;
    struct event *complete_ev;
    bool mounted; /* t->dir is a small tmpfs (the disk-full tests) */
};

static void do_complete(evutil_socket_t fd, short what, void *arg)
{
    struct t *t = arg;
    size_t n = t->npending;
    struct cfw_outbox_job *jobs[64];

    (void)fd;
    (void)what;
    memcpy(jobs, t->pending, n * sizeof(jobs[0]));
    t->npending = 0;
    for (size_t i = 0; i < n; i++) {
        struct cfw_outbox_job *j = jobs[i];
        size_t len;
        const char *body = cfw_outbox_job_body(j, &len);
        struct cfw_outbox_result r = {CFW_OUTBOX_DONE, -1, 200, "HTTP 200"};
        bool targeted = t->fail_body == NULL || strcmp(t->fail_body, body) == 0;
        if (targeted && t->permanent) {
            r.verdict = CFW_OUTBOX_PERMANENT;
            r.status = 400;
            r.reason = "HTTP 400: invalid_payload";
        } else if (targeted &&
                   (t->always_retry || (int)cfw_outbox_job_attempts(j) <= t->fail_first)) {
            r.verdict = CFW_OUTBOX_RETRY;
            r.status = t->retry_after >= 0 ? 429 : 500;
            r.retry_after_ms = t->retry_after;
            r.reason = "HTTP 500: boom";
        }
        cfw_outbox_complete(t->ob, j, &r);
    }
}

static int sender(struct cfw_outbox_job *job, struct cfw_outbox_result *fail, void *arg)
{
    struct t *t = arg;
    size_t len;

    (void)fail;
    if (t->nlog < MAX_LOG) {
        struct attempt *a = &t->log[t->nlog++];
        snprintf(a->kind, sizeof(a->kind), "%s", cfw_outbox_job_kind(job));
        snprintf(a->body, sizeof(a->body), "%s", cfw_outbox_job_body(job, &len));
        a->n = cfw_outbox_job_attempts(job);
        a->at = cfw_now_mono_ms();
    }
    t->pending[t->npending++] = job;
    event_active(t->complete_ev, EV_TIMEOUT, 0);
    return 0;
}

static bool known(const char *sink, unsigned endpoint, void *arg)
{
    struct t *t = arg;

    (void)endpoint;
    return t->unknown_sink == NULL || strcmp(sink, t->unknown_sink) != 0;
}

static void gone(struct cfw_outbox_job *job, bool delivered, void *arg)
{
    struct t *t = arg;

    (void)job;
    if (delivered) {
        t->gone_ok++;
    } else {
        t->gone_dead++;
    }
}

/* The outbox's default options (the rows of its table), for a test to change some. */
static struct cfw_outbox_opts defaults(void)
{
    struct cfw_outbox_opts o;

    cfw_outbox_opts_default(&o);
    return o;
}

static struct cfw_outbox *open_ob(struct t *t, const struct cfw_outbox_opts *opts)
{
    struct cfw_outbox_hooks h = {sender, known, gone, t};
    struct cfw_err err = {0};
    struct cfw_outbox *ob = cfw_outbox_new(t->base, t->dir, opts, &h, &err);

    if (ob == NULL) {
        fprintf(stderr, "outbox: %s\n", err.msg);
    }
    return ob;
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof(*t));

    if (tmpdir_make(t->dir, sizeof(t->dir), "outbox") != 0) {
        return -1;
    }
    t->base = event_base_new();
    t->complete_ev = event_new(t->base, -1, 0, do_complete, t);
    t->retry_after = -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;

    cfw_outbox_free(t->ob);
    event_free(t->complete_ev);
    event_base_free(t->base);
    if (t->mounted) {
        umount2(t->dir, MNT_DETACH);
    }
    if (tmpdir_remove(t->dir) != 0) {
        return -1;
    }
    free(t);
    return 0;
}

static bool is_empty(void *arg)
{
    struct t *t = arg;

    return cfw_outbox_pending(t->ob) == 0;
}

/* Runs the loop until the outbox is empty, for max_ms at most. */
static void run_until_empty(struct t *t, int64_t max_ms)
{
    loop_run_until(t->base, is_empty, t, max_ms);
}

static bool attempted(void *arg)
{
    struct t *t = arg;

    return t->nlog >= 1;
}

static struct cfw_outbox_job *add(struct t *t, const char *sink, const char *kind, const char *key,
                                  const char *body)
{
    const char *keys[] = {key, NULL};
    struct cfw_outbox_entry e = {sink, 0, kind, keys, body, strlen(body), false};
    struct cfw_err err = {0};

    return cfw_outbox_add(t->ob, &e, &err);
}

static void test_spooled_before_attempt(void **state)
{
    struct t *t = *state;
    char path[128];
    struct cfw_outbox_stats st;

    t->ob = open_ob(t, NULL);
    assert_non_null(t->ob);
    assert_non_null(add(t, "s", "open", "k1", "{\"a\":1}"));
    snprintf(path, sizeof(path), "%s/outbox", t->dir);
    /* on disk before the loop ran any attempt */
    assert_int_equal(t->nlog, 0);
    assert_int_equal(dir_count(path, ".job"), 1);
    run_until_empty(t, 5000);
    assert_int_equal(t->nlog, 1);
    assert_string_equal(t->log[0].body, "{\"a\":1}");
    assert_int_equal(dir_count(path, ".job"), 0);
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.sent, 1);
    assert_int_equal(st.jobs, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.write_errors, 0);
    assert_int_equal(st.unspooled, 0);
    /* the default reserve sits beside the jobs */
    assert_int_equal(st.reserve_target, CFW_OUTBOX_RESERVE_DEFAULT);
    assert_int_equal(st.reserve_bytes, CFW_OUTBOX_RESERVE_DEFAULT);
    assert_int_equal(st.reserve_used, 0);
    assert_int_equal(t->gone_ok, 1);
}

static void test_replay(void **state)
{
    struct t *t = *state;
    char path[160];
    int fd;
    struct cfw_outbox_stats st;
    struct cfw_outbox_job *j;

    t->ob = open_ob(t, NULL);
    add(t, "s", "open", "k1", "one");
    add(t, "s", "open", "k2", "two");
    add(t, "gone-sink", "open", "k3", "three");
    {
        const char *keys[] = {"k4", NULL};
        struct cfw_outbox_entry e = {"s", 0, "test", keys, "test-body", 9, true};
        struct cfw_err err = {0};
        j = cfw_outbox_add(t->ob, &e, &err);
        assert_non_null(j);
    }
    cfw_outbox_free(t->ob); /* like a crash: nothing was attempted */
    t->ob = NULL;
    /* a write that never reached its rename, and a corrupt file */
    snprintf(path, sizeof(path), "%s/outbox/.tmp-00000000000000000099.job", t->dir);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/outbox/00000000000000000050.job", t->dir);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_int_equal(write(fd, "{not json", 9), 9);
    close(fd);
    t->unknown_sink = "gone-sink";
    t->ob = open_ob(t, NULL);
    assert_non_null(t->ob);
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.replayed, 3); /* one, two, three; the test job is never resent */
    assert_int_equal(cfw_outbox_pending(t->ob), 2);
    assert_non_null(add(t, "s", "open", "k5", "five"));
    run_until_empty(t, 5000);
    assert_int_equal(t->nlog, 3);
    assert_string_equal(t->log[0].body, "one");
    assert_string_equal(t->log[1].body, "two");
    assert_string_equal(t->log[2].body, "five");
    snprintf(path, sizeof(path), "%s/outbox", t->dir);
    assert_int_equal(dir_count(path, ".job"), 0);
    assert_int_equal(dir_count(path, ".tmp-00000000000000000099.job"), 0);
    snprintf(path, sizeof(path), "%s/dead", t->dir);
    /* the unknown sink's job with a reason, and the corrupt file */
    assert_int_equal(dir_count(path, "-gone-sink.json"), 1);
    assert_int_equal(dir_count(path, "00000000000000000050.job"), 1);
}

static void test_backoff_then_done(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();
    struct cfw_outbox_lane_stats ls;

    o.backoff_base_ms = 100;
    o.backoff_max_ms = 400;
    t->fail_first = 2;
    t->ob = open_ob(t, &o);
    add(t, "s", "open", "k", "x");
    run_until_empty(t, 10000);
    assert_int_equal(t->nlog, 3);
    assert_int_equal(t->log[2].n, 3);
    /* full jitter with a floor of a quarter of the base */
    assert_true(t->log[1].at - t->log[0].at >= 25);
    assert_true(t->log[2].at - t->log[1].at >= 25);
    cfw_outbox_sink_stats(t->ob, "s", &ls);
    assert_int_equal(ls.retried, 2);
    assert_int_equal(ls.sent, 1);
    assert_int_equal(ls.dead, 0);
}

static void test_backoff_bounds(void **state)
{
    (void)state;
    for (uint64_t r = 0; r < 1000; r += 7) {
        int64_t d0 = cfw_outbox_backoff_ms(1000, 60000, 0, r * 2654435761u);
        int64_t d5 = cfw_outbox_backoff_ms(1000, 60000, 5, r * 2654435761u);
        int64_t d30 = cfw_outbox_backoff_ms(1000, 60000, 30, r * 2654435761u);
        assert_true(d0 >= 250 && d0 <= 1000);
        assert_true(d5 >= 250 && d5 <= 32000);
        assert_true(d30 >= 250 && d30 <= 60000);
    }
}

static void test_retry_after_pauses_lane(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();

    o.backoff_base_ms = 10;
    o.backoff_max_ms = 20;
    t->fail_first = 1;
    t->retry_after = 600;
    t->fail_body = "a";
    t->ob = open_ob(t, &o);
    add(t, "s", "open", "ka", "a");
    run_until_empty(t, 0);
    /* let the first attempt fail, then add another job to the same lane */
    loop_run_until(t->base, attempted, t, 50);
    loop_run_for(t->base, 20);
    add(t, "s", "open", "kb", "b");
    run_until_empty(t, 10000);
    assert_int_equal(t->nlog, 3);
    /* both the retried job and the new one waited for Retry-After */
    assert_string_equal(t->log[0].body, "a");
    assert_true(t->log[1].at - t->log[0].at >= 590);
    assert_true(t->log[2].at - t->log[0].at >= 590);
}

static void test_permanent_dead_letter(void **state)
{
    struct t *t = *state;
    char path[128];
    DIR *d;
    struct dirent *de;
    json_t *o = NULL;
    struct cfw_outbox_lane_stats ls;

    t->permanent = true;
    t->ob = open_ob(t, NULL);
    add(t, "ops-slack", "open", "k", "{\"text\":\"hi\"}");
    run_until_empty(t, 5000);
    assert_int_equal(t->nlog, 1); /* not retried */
    assert_int_equal(t->gone_dead, 1);
    cfw_outbox_sink_stats(t->ob, "ops-slack", &ls);
    assert_int_equal(ls.dead, 1);
    snprintf(path, sizeof(path), "%s/dead", t->dir);
    d = opendir(path);
    while ((de = readdir(d)) != NULL) {
        if (strstr(de->d_name, "-ops-slack.json") != NULL) {
            char file[400];
            snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
            o = json_load_file(file, 0, NULL);
        }
    }
    closedir(d);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "dead"), "reason")),
                        "HTTP 400: invalid_payload");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "dead"), "attempts")),
                     1);
    assert_string_equal(json_string_value(json_object_get(o, "body")), "{\"text\":\"hi\"}");
    json_decref(o);
}

static void test_max_age(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();
    char path[128];

    o.backoff_base_ms = 20;
    o.backoff_max_ms = 40;
    o.max_age_ms = 300;
    t->always_retry = true;
    t->ob = open_ob(t, &o);
    add(t, "s", "open", "k", "old");
    run_until_empty(t, 5000);
    assert_int_equal(cfw_outbox_pending(t->ob), 0);
    assert_true(t->nlog >= 2);
    assert_int_equal(t->gone_dead, 1);
    snprintf(path, sizeof(path), "%s/dead", t->dir);
    assert_int_equal(dir_count(path, "-s.json"), 1);
}

static void test_full_spool(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();
    struct cfw_outbox_stats st;
    const char *keys[] = {"k", NULL};
    struct cfw_outbox_entry e = {"s", 0, "open", keys, "x", 1, false};
    struct cfw_err err = {0};

    o.max_jobs = 2;
    t->ob = open_ob(t, &o);
    assert_non_null(add(t, "s", "open", "k", "1"));
    assert_non_null(add(t, "s", "open", "k", "2"));
    assert_null(cfw_outbox_add(t->ob, &e, &err));
    assert_non_null(strstr(err.msg, "outbox full"));
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.refused_full, 1);
    run_until_empty(t, 5000);
    assert_int_equal(t->nlog, 2);
}

static void test_full_spool_bytes(void **state)
{
    struct t *t = *state;
    /* about 530 bytes a job (body, fields, creation stamp); the reserve is off at this size */
    struct cfw_outbox_opts o = defaults();
    char big[400];
    struct cfw_outbox_stats st;

    o.max_bytes = 800;
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    t->ob = open_ob(t, &o);
    assert_non_null(add(t, "s", "open", "k", big));
    assert_null(add(t, "s", "open", "k", big));
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.refused_full, 1);
}

static void test_order_per_key(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();
    int pos_open = -1, pos_resolve = -1, pos_other = -1;

    o.backoff_base_ms = 40;
    o.backoff_max_ms = 80;
    t->fail_first = 3;
    t->fail_body = "open-A";
    t->ob = open_ob(t, &o);
    add(t, "s", "open", "A", "open-A");
    add(t, "s", "resolve", "A", "resolve-A");
    add(t, "s", "open", "B", "open-B");
    run_until_empty(t, 10000);
    for (size_t i = 0; i < t->nlog; i++) {
        if (strcmp(t->log[i].body, "open-A") == 0 && t->log[i].n == 4) {
            pos_open = (int)i;
        }
        if (strcmp(t->log[i].body, "resolve-A") == 0) {
            assert_int_equal(pos_resolve, -1);
            pos_resolve = (int)i;
        }
        if (strcmp(t->log[i].body, "open-B") == 0) {
            pos_other = (int)i;
        }
    }
    /* the resolve waited for its trigger; another incident did not */
    assert_true(pos_open >= 0);
    assert_true(pos_resolve > pos_open);
    assert_true(pos_other >= 0 && pos_other < pos_open);
}

static void test_lock(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_hooks h = {sender, known, gone, t};
    struct cfw_err err = {0};
    struct cfw_outbox *newer;
    pid_t pid;
    int st;

    t->ob = open_ob(t, NULL);
    /* another process cannot use the spool */
    pid = fork();
    if (pid == 0) {
        struct cfw_outbox *other = cfw_outbox_new(NULL, t->dir, NULL, &h, &err);
        _exit(other == NULL && strstr(err.msg, "in use") != NULL ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* the same process may open it again (a reload): the newest outbox takes new jobs */
    newer = cfw_outbox_new(t->base, t->dir, NULL, &h, &err);
    assert_non_null(newer);
    assert_non_null(add(t, "s", "digest", "k", "late"));
    assert_int_equal(cfw_outbox_pending(t->ob), 0);
    assert_int_equal(cfw_outbox_pending(newer), 1);
    cfw_outbox_free(newer);
    /* with the newer one gone, the old one spools for itself again */
    assert_non_null(add(t, "s", "open", "k2", "own"));
    assert_int_equal(cfw_outbox_pending(t->ob), 1);
    /* "late" is on disk for the next start */
    {
        char path[128];
        snprintf(path, sizeof(path), "%s/outbox", t->dir);
        assert_int_equal(dir_count(path, ".job"), 2);
    }
}

static json_t *load_job_file(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    json_t *o = NULL;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] != '.' && l > 4 && strcmp(de->d_name + l - 4, ".job") == 0) {
            char file[400];
            snprintf(file, sizeof(file), "%s/%s", dir, de->d_name);
            o = json_load_file(file, 0, NULL);
        }
    }
    closedir(d);
    return o;
}

static void test_spool_file_records_boot_clock(void **state)
{
    struct t *t = *state;
    char path[128];
    struct cfw_stamp now;
    json_t *o;

    t->ob = open_ob(t, NULL);
    assert_non_null(add(t, "s", "open", "k", "x"));
    snprintf(path, sizeof(path), "%s/outbox", t->dir);
    o = load_job_file(path);
    assert_non_null(o);
    cfw_stamp_now(&now);
    assert_true(json_integer_value(json_object_get(o, "created_ms")) <= now.wall_ms);
    if (now.boot_id[0] != '\0') {
        json_int_t boot = json_integer_value(json_object_get(o, "created_boot_ms"));
        assert_true(boot > 0 && boot <= now.boot_ms);
        assert_string_equal(json_string_value(json_object_get(o, "boot_id")), now.boot_id);
    }
    json_decref(o);
}

/* Writes a spool file as a running outbox (or an older version without boot fields) would. */
static void write_job(struct t *t, unsigned seq, const char *sink, int64_t wall_ms, int64_t boot_ms,
                      const char *boot_id)
{
    char path[160];
    json_t *o = json_object();

    json_object_set_new(o, "v", json_integer(1));
    json_object_set_new(o, "seq", json_integer(seq));
    json_object_set_new(o, "created_ms", json_integer(wall_ms));
    if (boot_id != NULL) {
        json_object_set_new(o, "created_boot_ms", json_integer(boot_ms));
        json_object_set_new(o, "boot_id", json_string(boot_id));
    }
    json_object_set_new(o, "sink", json_string(sink));
    json_object_set_new(o, "endpoint", json_integer(0));
    json_object_set_new(o, "kind", json_string("open"));
    json_object_set_new(o, "keys", json_pack("[s]", sink));
    json_object_set_new(o, "body", json_string(sink));
    snprintf(path, sizeof(path), "%s/outbox", t->dir);
    mkdir(t->dir, 0700);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/outbox/%020u.job", t->dir, seq);
    assert_int_equal(json_dump_file(o, path, JSON_COMPACT), 0);
    json_decref(o);
}

static void test_max_age_follows_the_boot_clock(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();
    struct cfw_stamp now;
    const int64_t two_h = 2 * 3600 * 1000;
    char path[128];
    bool rebooted_test = false;

    o.backoff_base_ms = 20;
    o.backoff_max_ms = 40;
    o.max_age_ms = 3600 * 1000;
    cfw_stamp_now(&now);
    if (now.boot_id[0] == '\0') {
        skip();
    }
    /* the wall clock says two hours, the boot clock one second: a wall-clock jump, kept */
    write_job(t, 1, "jumped", now.wall_ms - two_h, now.boot_ms - 1000, now.boot_id);
    /* an older spool file without the boot clock: the wall clock decides, as before */
    write_job(t, 2, "legacy", now.wall_ms - two_h, 0, NULL);
    /* written before a reboot: the boot clocks cannot be compared, the wall clock decides */
    write_job(t, 3, "rebooted", now.wall_ms - two_h, now.boot_ms - 1000,
              "00000000-0000-0000-0000-000000000000");
    /* fresh by the wall clock (set back since), two hours old by the boot clock: expired */
    if (now.boot_ms > two_h + 60000) {
        write_job(t, 4, "setback", now.wall_ms, now.boot_ms - two_h, now.boot_id);
        rebooted_test = true;
    }
    t->always_retry = true;
    t->ob = open_ob(t, &o);
    assert_non_null(t->ob);
    loop_run_for(t->base, 100);
    assert_int_equal(cfw_outbox_pending(t->ob), 1);
    assert_int_equal(t->gone_dead, rebooted_test ? 3 : 2);
    snprintf(path, sizeof(path), "%s/dead", t->dir);
    assert_int_equal(dir_count(path, "-jumped.json"), 0);
    assert_int_equal(dir_count(path, "-legacy.json"), 1);
    assert_int_equal(dir_count(path, "-rebooted.json"), 1);
    assert_int_equal(dir_count(path, "-setback.json"), rebooted_test ? 1 : 0);
    /* the one kept is being retried */
    assert_true(t->nlog >= 1);
    assert_string_equal(t->log[0].body, "jumped");
}

static off_t file_size(const char *dir, const char *name, blkcnt_t *blocks)
{
    char path[160];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (stat(path, &st) != 0) {
        return -1;
    }
    if (blocks != NULL) {
        *blocks = st.st_blocks;
    }
    return st.st_size;
}

static void test_reserve_counts_in_the_cap(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();
    char path[128];
    char body[5001];
    blkcnt_t blocks = 0;
    struct cfw_outbox_stats st;

    o.max_bytes = 16384;
    o.reserve_bytes = 4096;
    memset(body, 'b', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    snprintf(path, sizeof(path), "%s/outbox", t->dir);
    t->ob = open_ob(t, &o);
    assert_int_equal(file_size(path, CFW_OUTBOX_RESERVE_FILE, &blocks), 4096);
    assert_true(blocks * 512 >= 4096); /* allocated, not sparse */
    /* 3 x 5 KB fit in 16 KiB, but not beside a 4 KiB reserve */
    assert_non_null(add(t, "s", "open", "k", body));
    assert_non_null(add(t, "s", "open", "k", body));
    assert_null(add(t, "s", "open", "k", body));
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.refused_full, 1);
    assert_int_equal(st.reserve_bytes, 4096);
    cfw_outbox_free(t->ob);

    /* more than a quarter of max_bytes is cut down to it */
    o.reserve_bytes = 1024 * 1024;
    t->ob = open_ob(t, &o);
    assert_int_equal(file_size(path, CFW_OUTBOX_RESERVE_FILE, NULL), 4096);
    cfw_outbox_free(t->ob);

    /* no reserve: the file goes */
    o.reserve_bytes = -1;
    t->ob = open_ob(t, &o);
    assert_int_equal(file_size(path, CFW_OUTBOX_RESERVE_FILE, NULL), -1);
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.reserve_target, 0);
    assert_int_equal(st.reserve_bytes, 0);
}

/* Mounts a tmpfs of size KiB on t->dir (root only), or skips the test. */
static void mount_small_disk(struct t *t, unsigned kib)
{
    char opts[64];

    snprintf(opts, sizeof(opts), "size=%uk,mode=0700", kib);
    if (geteuid() != 0 || mount("cfw-outbox-test", t->dir, "tmpfs", 0, opts) != 0) {
        skip();
    }
    t->mounted = true;
}

static void fill_disk(struct t *t)
{
    static const char block[4096];
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/filler", t->dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    while (write(fd, block, sizeof(block)) > 0) {
    }
    close(fd);
}

static void free_disk(struct t *t)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/filler", t->dir);
    assert_int_equal(unlink(path), 0);
}

/*
 * Opens t's outbox with opts o on a full tmpfs of kib KiB (or skips the test), answering every
 * attempt with a retry; path gets the outbox directory.
 */
static void open_on_full_disk(struct t *t, const struct cfw_outbox_opts *o, unsigned kib,
                              char *path, size_t size)
{
    mount_small_disk(t, kib);
    snprintf(path, size, "%s/outbox", t->dir);
    t->always_retry = true;
    t->ob = open_ob(t, o);
    fill_disk(t);
}

/* Whether the held jobs are written and the reserve is back to 64 KiB. */
static bool respooled(void *arg)
{
    struct t *t = arg;
    struct cfw_outbox_stats st;

    cfw_outbox_stats(t->ob, &st);
    return st.unspooled == 0 && st.reserve_bytes >= 64 * 1024;
}

static void test_disk_full_draws_on_the_reserve(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();
    char path[128];
    char body[1001];
    struct cfw_outbox_stats st;
    size_t added = 0;

    o.reserve_bytes = 64 * 1024;
    o.respool_interval_ms = 50;
    o.backoff_base_ms = 1000;
    o.backoff_max_ms = 2000;
    memset(body, 'z', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    mount_small_disk(t, 512);
    snprintf(path, sizeof(path), "%s/outbox", t->dir);
    t->always_retry = true;
    t->ob = open_ob(t, &o);
    assert_non_null(t->ob);
    assert_int_equal(file_size(path, CFW_OUTBOX_RESERVE_FILE, NULL), 64 * 1024);
    fill_disk(t);

    /* the disk is full: the job is written in room given back by the reserve */
    assert_non_null(add(t, "s", "open", "k0", body));
    added++;
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.write_errors, 1);
    assert_int_equal(st.unspooled, 0);
    assert_true(st.reserve_used >= 1);
    assert_int_equal(st.reserve_bytes, 60 * 1024);
    assert_int_equal(dir_count(path, ".job"), 1);

    /* until the reserve is used up; then jobs are held in memory and still delivered */
    while (st.unspooled == 0 && added < 40) {
        char key[16];
        snprintf(key, sizeof(key), "k%zu", added);
        assert_non_null(add(t, "s", "open", key, body));
        added++;
        cfw_outbox_stats(t->ob, &st);
    }
    assert_int_equal(st.unspooled, 1);
    assert_true(added >= 10);
    assert_int_equal(st.reserve_bytes, 0);
    assert_int_equal(st.write_errors, added);
    assert_int_equal(dir_count(path, ".job"), added - 1);
    assert_int_equal(cfw_outbox_pending(t->ob), added);
    loop_run_for(t->base, 200);
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.unspooled, 1); /* still full: retried, still held */

    /* room again: the held job is written, then the reserve grows back */
    free_disk(t);
    loop_run_until(t->base, respooled, t, 5000);
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.unspooled, 0);
    assert_int_equal(st.reserve_bytes, 64 * 1024);
    assert_int_equal(dir_count(path, ".job"), added);
    assert_int_equal(file_size(path, CFW_OUTBOX_RESERVE_FILE, NULL), 64 * 1024);
}

static void test_held_jobs_are_written_at_free(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();
    char path[128];
    struct cfw_outbox_stats st;

    o.reserve_bytes = -1;
    o.respool_interval_ms = 60000;
    open_on_full_disk(t, &o, 256, path, sizeof(path));
    assert_non_null(add(t, "s", "open", "k1", "one"));
    assert_non_null(add(t, "s", "open", "k2", "two"));
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.write_errors, 2);
    assert_int_equal(st.unspooled, 2);
    assert_int_equal(dir_count(path, ".job"), 0);
    /* room returns just before the stop, long before the retry timer */
    free_disk(t);
    cfw_outbox_free(t->ob);
    t->ob = NULL;
    assert_int_equal(dir_count(path, ".job"), 2);
    t->always_retry = false;
    t->ob = open_ob(t, &o);
    cfw_outbox_stats(t->ob, &st);
    assert_int_equal(st.replayed, 2);
    run_until_empty(t, 5000);
    assert_int_equal(t->gone_ok, 2);
}

static void test_held_jobs_lost_at_free_are_logged(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();
    char path[128];
    char logf[] = "/tmp/cfw-outbox-log-XXXXXX";
    int logfd = mkstemp(logf);
    int saved = dup(2);
    char text[8192];
    ssize_t n;

    o.reserve_bytes = -1;
    o.respool_interval_ms = 60000;
    assert_true(logfd >= 0 && saved >= 0);
    open_on_full_disk(t, &o, 256, path, sizeof(path));
    assert_non_null(add(t, "s", "open", "incident/1", "one"));
    /* still full at the stop: nothing can be saved, and the log says exactly what is lost */
    fflush(stderr);
    dup2(logfd, 2);
    cfw_outbox_free(t->ob);
    t->ob = NULL;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(dir_count(path, ".job"), 0);
    n = pread(logfd, text, sizeof(text) - 1, 0);
    close(logfd);
    unlink(logf);
    assert_true(n > 0);
    text[n] = '\0';
    assert_non_null(strstr(text, "1 notification(s) could not be written to"));
    assert_non_null(strstr(text, "ENOSPC"));
    assert_non_null(strstr(text, "lost sink=s endpoint=0 job="));
    assert_non_null(strstr(text, "key=incident/1"));
}

static void test_held_jobs_handed_over_on_reload(void **state)
{
    struct t *t = *state;
    struct cfw_outbox_opts o = defaults();
    struct cfw_outbox_hooks h = {sender, known, gone, t};
    struct cfw_err err = {0};
    struct cfw_outbox *newer;
    struct cfw_outbox_stats st;
    char path[128];

    o.reserve_bytes = -1;
    o.respool_interval_ms = 60000;
    open_on_full_disk(t, &o, 256, path, sizeof(path));
    assert_non_null(add(t, "s", "open", "k1", "held"));
    /* a reload: the new outbox starts, then the old one is freed */
    newer = cfw_outbox_new(t->base, t->dir, &o, &h, &err);
    assert_non_null(newer);
    cfw_outbox_free(t->ob);
    t->ob = newer;
    assert_int_equal(cfw_outbox_pending(newer), 1);
    cfw_outbox_stats(newer, &st);
    assert_int_equal(st.unspooled, 1);
    /* room again: the next write takes the held job with it, oldest first */
    free_disk(t);
    assert_non_null(add(t, "s", "open", "k2", "later"));
    cfw_outbox_stats(newer, &st);
    assert_int_equal(st.unspooled, 0);
    assert_int_equal(dir_count(path, ".job"), 2);
}

/* A test run with the fixture of setup() and teardown(). */
#define FX(test) cmocka_unit_test_setup_teardown(test, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_spooled_before_attempt),
        FX(test_replay),
        FX(test_backoff_then_done),
        cmocka_unit_test(test_backoff_bounds),
        FX(test_retry_after_pauses_lane),
        FX(test_permanent_dead_letter),
        FX(test_max_age),
        FX(test_full_spool),
        FX(test_full_spool_bytes),
        FX(test_order_per_key),
        FX(test_lock),
        FX(test_spool_file_records_boot_clock),
        FX(test_max_age_follows_the_boot_clock),
        FX(test_reserve_counts_in_the_cap),
        FX(test_disk_full_draws_on_the_reserve),
        FX(test_held_jobs_are_written_at_free),
        FX(test_held_jobs_lost_at_free_are_logged),
        FX(test_held_jobs_handed_over_on_reload),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
