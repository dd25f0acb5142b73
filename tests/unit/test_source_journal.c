/*
 * Unit tests for the journal source (source_journal.c): export-format entries generated here are
 * written into journal files by systemd-journal-remote (Debian package systemd-journal-remote)
 * in a temporary directory, and read back with a `directory:` source and matches, through a
 * real event_base. Without systemd-journal-remote the tests are skipped, saying so.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "cfwatchd/common.h"
#include "cfwatchd/source.h"
#include "cfwatchd/yaml.h"
#include "source_harness.h"

#define BOOT_ID "6a3f0c2b9d8e4f1a8b7c6d5e4f3a2b1c"

static const char *const remote_paths[] = {
    "/lib/systemd/systemd-journal-remote",
    "/usr/lib/systemd/systemd-journal-remote",
    NULL,
};

/* ---- helpers ---- */

struct ctx {
    struct src_env env;
    const char *remote;
    uint64_t mono; /* monotonic timestamp of the next entry (us) */
    unsigned files;
};

static int setup(void **state)
{
    struct ctx *c = cfw_xcalloc(1, sizeof(*c));

    for (size_t i = 0; remote_paths[i] != NULL; i++) {
        if (access(remote_paths[i], X_OK) == 0) {
            c->remote = remote_paths[i];
            break;
        }
    }
    if (src_env_init(&c->env, "srcjournal", false) < 0) {
        return -1;
    }
    c->mono = 1000000;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    src_env_clear(&c->env);
    free(c);
    return 0;
}

static void need_remote(const struct ctx *c)
{
    if (c->remote == NULL) {
        print_message("SKIPPED: systemd-journal-remote is not installed "
                      "(apt-get install systemd-journal-remote); journal source not tested\n");
        skip();
    }
}

struct entry {
    const char *unit;
    const char *ident;   /* SYSLOG_IDENTIFIER or NULL */
    int priority;        /* -1: none */
    const char *message; /* NULL: an entry without MESSAGE */
};

/* Appends one field in export format (binary form when the value holds a newline). */
static void export_field(struct cfw_buf *b, const char *name, const char *value)
{
    size_t n = strlen(value);

    if (strchr(value, '\n') == NULL) {
        cfw_buf_printf(b, "%s=%s\n", name, value);
        return;
    }
    cfw_buf_printf(b, "%s\n", name);
    for (int i = 0; i < 8; i++) {
        cfw_buf_putc(b, (char)((uint64_t)n >> (8 * i) & 0xff));
    }
    cfw_buf_append(b, value, n);
    cfw_buf_putc(b, '\n');
}

/* Writes entries into a new journal file in the directory with systemd-journal-remote. */
static void write_journal(struct ctx *c, const struct entry *e, size_t n)
{
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    char *cmd;
    FILE *fp;
    int64_t now_us = cfw_now_wall_ms() * 1000;

    for (size_t i = 0; i < n; i++) {
        c->mono += 1000;
        cfw_buf_printf(&b, "__REALTIME_TIMESTAMP=%lld\n", (long long)(now_us + (int64_t)i));
        cfw_buf_printf(&b, "__MONOTONIC_TIMESTAMP=%llu\n", (unsigned long long)c->mono);
        cfw_buf_printf(&b, "_BOOT_ID=%s\n", BOOT_ID);
        cfw_buf_printf(&b, "_SYSTEMD_UNIT=%s\n", e[i].unit);
        if (e[i].ident != NULL) {
            cfw_buf_printf(&b, "SYSLOG_IDENTIFIER=%s\n", e[i].ident);
        }
        if (e[i].priority >= 0) {
            cfw_buf_printf(&b, "PRIORITY=%d\n", e[i].priority);
        }
        if (e[i].message != NULL) {
            export_field(&b, "MESSAGE", e[i].message);
        }
        cfw_buf_putc(&b, '\n');
    }
    c->files++;
    cmd = cfw_xasprintf("%s -o %s/f%u.journal - 2>/dev/null", c->remote, c->env.dir, c->files);
    fp = popen(cmd, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(b.data, 1, b.len, fp), b.len);
    assert_int_equal(pclose(fp), 0);
    free(cmd);
    cfw_buf_free(&b);
}

/* Starts conf as the configuration of a journal source named units reading directory. */
static void journal_conf(struct cfw_source_conf *conf, const char *directory)
{
    cfw_source_conf_init(conf, CFW_SOURCE_JOURNAL);
    conf->name = cfw_xstrdup("units");
    conf->directory = cfw_xstrdup(directory);
}

/* A new source of conf (cleared) recording into r, restored from saved unless NULL, started. */
static struct cfw_source *start_source(struct ctx *c, struct cfw_source_conf *conf, struct rec *r,
                                       const json_t *saved)
{
    struct cfw_source_cbs cbs = rec_cbs(r);
    struct cfw_err err = {0};
    struct cfw_source *src = cfw_source_new(c->env.base, conf, &cbs, &err);

    cfw_source_conf_clear(conf);
    assert_non_null(src);
    if (saved != NULL) {
        assert_int_equal(cfw_source_restore(src, saved), 0);
    }
    assert_int_equal(cfw_source_start(src, &err), 0);
    return src;
}

static struct cfw_source *journal_source(struct ctx *c, struct rec *r, char **matches,
                                         bool beginning, const json_t *saved)
{
    struct cfw_source_conf conf;

    journal_conf(&conf, c->env.dir);
    conf.matches = matches;
    conf.start_at_beginning = beginning;
    return start_source(c, &conf, r, saved);
}

/* ---- tests ---- */

static const char *const traceback = "Traceback (most recent call last):\n"
                                     "  File \"/session/metadata/worker.py\", line 3, in <module>\n"
                                     "    from src.app import handler\n"
                                     "ModuleNotFoundError: No module named 'src'";

/* Waits until r holds as many bytes as want, runs the loop ms more, asserts r holds want. */
static void expect_text(struct ctx *c, struct rec *r, const char *want, int64_t ms)
{
    assert_true(rec_wait_bytes(c->env.base, r, strlen(want), REC_WAIT_MS));
    loop_run_for(c->env.base, ms);
    assert_string_equal(rec_text(r), want);
}

static void test_directory_with_matches(void **state)
{
    struct ctx *c = *state;
    struct rec r = {.only_stream = "journal"};
    struct cfw_source *src;
    struct cfw_source_stats st;
    const struct entry e[] = {
        {"py.service", NULL, 6, "one"},     {"other.service", NULL, 6, "not for us"},
        {"py.service", NULL, 3, traceback}, {"py.service", NULL, 6, NULL},
        {"py.service", NULL, 6, "four\n"},
    };
    char *want = cfw_xasprintf("one\n%s\nfour\n", traceback);

    need_remote(c);
    write_journal(c, e, 5);
    src = journal_source(c, &r, strv_of("_SYSTEMD_UNIT=py.service", NULL), true, NULL);
    expect_text(c, &r, want, 100);
    cfw_source_get_stats(src, &st);
    assert_int_equal(st.records, 4); /* the entry without MESSAGE is passed over */
    assert_int_equal(cfw_source_get_state(src, NULL), CFW_INPUT_UP);
    cfw_source_stop(src);
    loop_run_for(c->env.base, 50);
    assert_true(cfw_source_stopped(src));
    assert_int_equal(r.eofs, 1);
    cfw_source_free(src);
    rec_clear(&r);
    free(want);
}

static void test_live_entries_and_cursor_restore(void **state)
{
    struct ctx *c = *state;
    struct rec r = {.only_stream = "journal"};
    struct cfw_source *src;
    json_t *saved;
    const struct entry a[] = {{"py.service", NULL, 6, "a1"}, {"py.service", NULL, 6, "a2"}};
    const struct entry b[] = {{"py.service", NULL, 6, "b1"}, {"other.service", NULL, 6, "bx"}};
    const struct entry d[] = {{"py.service", NULL, 6, "c1"}, {"py.service", NULL, 6, "c2"}};

    need_remote(c);
    write_journal(c, a, 2);
    src = journal_source(c, &r, strv_of("_SYSTEMD_UNIT=py.service", NULL), true, NULL);
    assert_true(rec_wait_bytes(c->env.base, &r, 6, REC_WAIT_MS));
    /* Written while the source runs: the journal's fd in the loop wakes it. */
    write_journal(c, b, 2);
    expect_text(c, &r, "a1\na2\nb1\n", 100);
    saved = source_save_roundtrip(src);
    assert_non_null(json_string_value(json_object_get(saved, "cursor")));
    cfw_source_free(src);
    rec_clear(&r);

    /* Down: more entries. Restart from the cursor: exactly those. */
    write_journal(c, d, 2);
    src = journal_source(c, &r, strv_of("_SYSTEMD_UNIT=py.service", NULL), true, saved);
    json_decref(saved);
    expect_text(c, &r, "c1\nc2\n", 200);
    saved = source_save_roundtrip(src);
    cfw_source_free(src);
    rec_clear(&r);

    /* Nothing new: nothing delivered. */
    src = journal_source(c, &r, strv_of("_SYSTEMD_UNIT=py.service", NULL), true, saved);
    json_decref(saved);
    loop_run_for(c->env.base, 200);
    assert_int_equal(r.bytes, 0);
    cfw_source_free(src);
    rec_clear(&r);
}

static void test_start_at_tail(void **state)
{
    struct ctx *c = *state;
    struct rec r = {.only_stream = "journal"};
    struct cfw_source *src;
    json_t *saved;
    const struct entry a[] = {{"py.service", NULL, 6, "old1"}, {"py.service", NULL, 6, "old2"}};
    const struct entry b[] = {{"py.service", NULL, 6, "new1"}};
    const struct entry d[] = {{"py.service", NULL, 6, "while down"}};

    need_remote(c);
    write_journal(c, a, 2);
    src = journal_source(c, &r, NULL, false, NULL);
    loop_run_for(c->env.base, 200);
    assert_int_equal(r.bytes, 0);
    write_journal(c, b, 1);
    expect_text(c, &r, "new1\n", 100);
    cfw_source_free(src);
    rec_clear(&r);

    /* Saved before anything new arrived: the tail position itself is remembered. */
    src = journal_source(c, &r, NULL, false, NULL);
    loop_run_for(c->env.base, 100);
    saved = source_save_roundtrip(src);
    assert_non_null(json_string_value(json_object_get(saved, "cursor")));
    cfw_source_free(src);
    rec_clear(&r);
    write_journal(c, d, 1);
    src = journal_source(c, &r, NULL, false, saved);
    json_decref(saved);
    expect_text(c, &r, "while down\n", 100);
    cfw_source_free(src);
    rec_clear(&r);
}

static void test_match_semantics(void **state)
{
    struct ctx *c = *state;
    struct rec r = {.only_stream = "journal"};
    struct cfw_source *src;
    const struct entry e[] = {
        {"a.service", NULL, 3, "a-err"},   {"a.service", NULL, 6, "a-info"},
        {"b.service", NULL, 3, "b-err"},   {"c.service", NULL, 3, "c-err"},
        {"c.service", "x", 6, "c-x-info"},
    };

    need_remote(c);
    write_journal(c, e, 5);
    /* Same field: OR; different fields: AND. */
    src = journal_source(
        c, &r, strv_of("_SYSTEMD_UNIT=a.service", "_SYSTEMD_UNIT=b.service", "PRIORITY=3", NULL),
        true, NULL);
    expect_text(c, &r, "a-err\nb-err\n", 100);
    cfw_source_free(src);
    rec_clear(&r);
    /* "+" separates alternatives. */
    src = journal_source(
        c, &r, strv_of("_SYSTEMD_UNIT=a.service", "PRIORITY=6", "+", "SYSLOG_IDENTIFIER=x", NULL),
        true, NULL);
    expect_text(c, &r, "a-info\nc-x-info\n", 100);
    cfw_source_free(src);
    rec_clear(&r);
}

static void test_budget_spreads_entries(void **state)
{
    struct ctx *c = *state;
    struct rec r = {.only_stream = "journal"};
    struct cfw_source_conf conf;
    struct cfw_source *src;
    struct entry e[400];
    char msgs[400][48];
    size_t total = 0;

    need_remote(c);
    for (size_t i = 0; i < 400; i++) {
        snprintf(msgs[i], sizeof(msgs[i]), "entry number %03zu with some padding text", i);
        e[i] = (struct entry){"py.service", NULL, 6, msgs[i]};
        total += strlen(msgs[i]) + 1;
    }
    write_journal(c, e, 400);
    journal_conf(&conf, c->env.dir);
    conf.start_at_beginning = true;
    conf.read_budget = 1024;
    src = start_source(c, &conf, &r, NULL);
    assert_true(rec_wait_bytes(c->env.base, &r, total, REC_WAIT_MS));
    /* ~17 KiB with a 1 KiB budget: delivered over many loop turns, in order. */
    assert_true(r.ndata >= 10);
    ASSERT_HAS_ALL(rec_text(&r), "entry number 000");
    assert_true(strstr(rec_text(&r), "entry number 398") <
                strstr(rec_text(&r), "entry number 399"));
    cfw_source_free(src);
    rec_clear(&r);
}

static void test_missing_directory_down_then_up(void **state)
{
    struct ctx *c = *state;
    struct rec r = {.only_stream = "journal"};
    struct cfw_source_conf conf;
    struct cfw_source *src;
    char *dir = cfw_xasprintf("%s/later", c->env.dir);

    journal_conf(&conf, dir);
    conf.down_after_ms = 200;
    conf.poll_interval_ms = 50;
    src = start_source(c, &conf, &r, NULL);
    source_wait_state(c->env.base, src, CFW_INPUT_DOWN, 5000);
    assert_int_equal(r.nstates, 2);
    assert_int_equal(r.states[0], CFW_INPUT_DEGRADED);
    assert_int_equal(r.states[1], CFW_INPUT_DOWN);
    ASSERT_HAS_ALL(r.reasons[1], "cannot open the journal");
    assert_int_equal(mkdir(dir, 0755), 0);
    source_wait_state(c->env.base, src, CFW_INPUT_UP, 5000);
    assert_int_equal(cfw_source_get_state(src, NULL), CFW_INPUT_UP);
    cfw_source_free(src);
    rec_clear(&r);
    free(dir);
}

static void test_conf_journal(void **state)
{
    const char *ok =
        "name: units\n"
        "type: journal\n"
        "directory: /var/log/journal/remote\n"
        "matches: ['_SYSTEMD_UNIT=py-api.service', '+', 'SYSLOG_IDENTIFIER=wrangler']\n"
        "start_at: beginning\n"
        "max_entry: 4096\n";
    const char *bad = "name: units\n"
                      "type: journal\n"
                      "matches: ['unit=py', 'MESSAGE']\n"
                      "max_entry: 10\n"
                      "command: [x]\n";
    struct cfw_diag diag = {0};
    struct cfw_source_conf conf;

    (void)state;
    assert_int_equal(source_conf_parse_text("t.yaml", ok, "sources[0]", &conf, &diag), 0);
    assert_int_equal(conf.type, CFW_SOURCE_JOURNAL);
    assert_string_equal(conf.directory, "/var/log/journal/remote");
    assert_string_equal(conf.matches[0], "_SYSTEMD_UNIT=py-api.service");
    assert_string_equal(conf.matches[1], "+");
    assert_null(conf.matches[3]);
    assert_true(conf.start_at_beginning);
    assert_int_equal(conf.max_entry, 4096);
    cfw_source_conf_clear(&conf);

    assert_int_equal(source_conf_parse_text("t.yaml", bad, "sources[0]", &conf, &diag), -1);
    assert_int_equal(diag.n, 4);
    cfw_diag_free(&diag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_directory_with_matches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_live_entries_and_cursor_restore, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_at_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_spreads_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_directory_down_then_up, setup, teardown),
        cmocka_unit_test(test_conf_journal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
