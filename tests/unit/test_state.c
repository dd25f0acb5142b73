/*
 * Unit tests for state.c: atomic writes, incident save/restore across a clock change (stamps on
 * the boot clock, and the wall-clock fallback for older files and other boots).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfwatchd/fsutil.h"
#include "cfwatchd/incident.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/state.h"
#include "cfwatchd/yaml.h"
#include "rules_util.h"
#include "test_util.h"

static const char rules_yaml[] = "rules:\n"
                                 "  - id: src\n"
                                 "    pattern: 'No module named ''(?<module>[\\w.]+)'''\n"
                                 "    severity: critical\n"
                                 "    title: 'module {module}'\n"
                                 "    hint: 'fix {module}'\n";

/* Matches "No module named 'src'" from script api times times into set (mono 1 s). */
static void match_src(struct cfw_ruleset *rs, struct cfw_incidents *set, int times)
{
    struct cfw_event ev = {.text = "No module named 'src'", .input = "x.log", .line = 3};
    struct observe_to to = {set, 1000, 1700000001000};

    ev.len = strlen(ev.text);
    cfw_fields_set(&ev.fields, "script", "api");
    for (int i = 0; i < times; i++) {
        cfw_ruleset_match(rs, &ev, observe_cb, &to);
    }
    cfw_fields_clear(&ev.fields);
}

static int transitions;

static void count_transition(const struct cfw_incident *inc, enum cfw_transition t, void *arg)
{
    (void)inc;
    (void)t;
    (void)arg;
    transitions++;
}

static void test_write_atomic(void **state)
{
    char dir[64];
    struct cfw_err err = {0};
    struct stat st;
    json_t *j;
    char *path;

    (void)state;
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "state"), 0);
    assert_int_equal(cfw_fs_write_atomic(-1, dir, "s.json", "{\"a\":1}", 7, 0600, &err), 0);
    path = cfw_xasprintf("%s/s.json", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    j = cfw_state_read(path, 1024, &err);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
    json_decref(j);
    /* over the cap: refused, not truncated */
    assert_null(cfw_state_read(path, 3, &err));
    unlink(path);
    assert_null(cfw_state_read(path, 1024, &err));
    assert_int_equal(err.code, ENOENT);
    /* a directory that does not exist: an error naming it, nothing left behind */
    assert_int_equal(cfw_fs_write_atomic(-1, "/nonexistent-cfw", "s.json", "x", 1, 0600, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent-cfw"));
    free(path);
    assert_int_equal(tmpdir_remove(dir), 0);
}

/* Removes key from every saved incident (a file from before it existed, or another boot). */
static void strip_key(json_t *saved, const char *key)
{
    size_t i;
    json_t *o;

    json_array_foreach (saved, i, o) {
        json_object_del(o, key);
    }
}

static void test_roundtrip(void **state)
{
    struct cfw_ruleset *rs = rules_from_yaml_ok("t.yaml", rules_yaml, "t");
    struct cfw_incidents *a = cfw_incidents_new(NULL, NULL, NULL);
    struct cfw_incidents *b;
    const struct cfw_incident *inc, *orig;
    size_t skipped;
    json_t *saved, *old;

    (void)state;
    match_src(rs, a, 2);
    orig = cfw_incidents_find(a, "src/api/src");
    /* saved 5 s after the last match (mono 1000 -> 6000) */
    saved = cfw_state_incidents_save(a, 6000, 1700000006000);
    assert_int_equal(json_array_size(saved), 1);

    /*
     * A new process: the monotonic clock restarted near zero, the wall clock moved on 10 s. In
     * the same boot the boot clock tells the age (a wall-clock jump while cfwatchd was down does
     * not age the incident): 5 s plus the moments this test took.
     */
    transitions = 0;
    b = cfw_incidents_new(NULL, count_transition, NULL);
    assert_int_equal(cfw_state_incidents_restore(b, saved, 50, 1700000016000, &skipped), 1);
    assert_int_equal(skipped, 0);
    assert_int_equal(transitions, 0); /* restored incidents are not announced again */
    inc = cfw_incidents_find(b, "src/api/src");
    assert_non_null(inc);
    assert_int_equal(inc->state, CFW_INCIDENT_OPEN);
    assert_int_equal(inc->count, 2);
    assert_string_equal(inc->title, "module src");
    assert_string_equal(cfw_fields_get(&inc->fields, "module"), "src");
    assert_string_equal(inc->first.input, "x.log");
    assert_int_equal(inc->first.line, 3);
    assert_int_equal(inc->opened_wall_ms, 1700000001000);
    assert_int_equal(inc->opened_at.wall_ms, 1700000001000);
    assert_int_equal(inc->opened_at.boot_ms, orig->opened_at.boot_ms);
    assert_string_equal(inc->opened_at.boot_id, orig->opened_at.boot_id);
    if (cfw_boot_id()[0] != '\0') {
        assert_true(inc->last_seen_mono_ms <= 50 - 5000);
        assert_true(inc->last_seen_mono_ms > 50 - 15000);
    } else {
        assert_int_equal(inc->last_seen_mono_ms, 50 - 15000);
    }
    cfw_incidents_free(b);

    /* a file from an older version (no stamps): the wall clock, last seen 15 s ago */
    old = json_deep_copy(saved);
    strip_key(old, "opened_at");
    strip_key(old, "resolved_at");
    strip_key(old, "last_seen_at");
    strip_key(old, "last_notified_at");
    b = cfw_incidents_new(NULL, count_transition, NULL);
    assert_int_equal(cfw_state_incidents_restore(b, old, 50, 1700000016000, &skipped), 1);
    assert_int_equal(skipped, 0);
    inc = cfw_incidents_find(b, "src/api/src");
    assert_int_equal(inc->last_seen_mono_ms, 50 - 15000);
    assert_int_equal(inc->opened_at.wall_ms, 1700000001000);
    assert_int_equal(inc->opened_at.boot_ms, 0);
    assert_int_equal(cfw_incidents_open_count(b), 1);
    /* the resolve still happens after a restart */
    cfw_incidents_tick(b, 50 - 15000 + 30 * 60 * 1000, 0);
    assert_int_equal(transitions, 1);
    assert_int_equal(inc->state, CFW_INCIDENT_RESOLVED);
    cfw_incidents_free(b);
    json_decref(old);

    /* stamps of another boot: the wall clock too */
    old = json_deep_copy(saved);
    json_object_set_new(json_object_get(json_array_get(old, 0), "last_seen_at"), "boot_id",
                        json_string("00000000-0000-4000-8000-000000000000"));
    b = cfw_incidents_new(NULL, NULL, NULL);
    assert_int_equal(cfw_state_incidents_restore(b, old, 50, 1700000016000, &skipped), 1);
    assert_int_equal(cfw_incidents_find(b, "src/api/src")->last_seen_mono_ms, 50 - 15000);
    cfw_incidents_free(b);
    json_decref(old);

    /* damaged entries are skipped and counted, good ones kept */
    json_array_append_new(saved, json_pack("{s:s}", "key", "broken"));
    json_array_append_new(saved, json_integer(3));
    b = cfw_incidents_new(NULL, NULL, NULL);
    assert_int_equal(cfw_state_incidents_restore(b, saved, 0, 1700000016000, &skipped), 1);
    assert_int_equal(skipped, 2);

    json_decref(saved);
    cfw_incidents_free(a);
    cfw_incidents_free(b);
    cfw_ruleset_free(rs);
}

/*
 * A resolved incident keeps how long it was open across a restart, even when the wall clock
 * went back between its open and its resolve: the stamps travel in state.json.
 */
static void test_open_duration_survives_restart(void **state)
{
    struct cfw_ruleset *rs = rules_from_yaml_ok("t.yaml", rules_yaml, "t");
    struct cfw_incidents *a = cfw_incidents_new(NULL, NULL, NULL);
    struct cfw_incidents *b = cfw_incidents_new(NULL, NULL, NULL);
    const struct cfw_incident *orig, *inc;
    size_t skipped;
    json_t *saved, *o;

    (void)state;
    match_src(rs, a, 1);
    /* resolved 8 s later by the monotonic clock, an hour earlier by the wall clock */
    assert_int_equal(cfw_incidents_resolve(a, "src/api/src", 9000, 1700000009000 - 3600000), 0);
    orig = cfw_incidents_find(a, "src/api/src");
    assert_int_equal(orig->resolved_at.wall_ms, orig->resolved_wall_ms);
    saved = cfw_state_incidents_save(a, 9000, 1700000009000 - 3600000);
    o = json_array_get(saved, 0);
    assert_true(json_is_object(json_object_get(o, "opened_at")));
    assert_true(json_is_object(json_object_get(o, "resolved_at")));
    assert_int_equal(cfw_state_incidents_restore(b, saved, 0, 1700000020000, &skipped), 1);
    inc = cfw_incidents_find(b, "src/api/src");
    assert_int_equal(inc->state, CFW_INCIDENT_RESOLVED);
    assert_int_equal(inc->resolved_wall_ms, 1700000009000 - 3600000);
    assert_string_equal(inc->resolved_at.boot_id, orig->resolved_at.boot_id);
    assert_int_equal(inc->resolved_at.boot_ms, orig->resolved_at.boot_ms);
    assert_int_equal(cfw_incident_open_ms(inc, NULL), cfw_incident_open_ms(orig, NULL));
    json_decref(saved);
    cfw_incidents_free(a);
    cfw_incidents_free(b);
    cfw_ruleset_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_open_duration_survives_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
