/* Unit tests for state.c: atomic writes, incident save/restore across a clock change. */
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

#include "cfwatchd/incident.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/state.h"
#include "cfwatchd/yaml.h"

static const char rules_yaml[] = "rules:\n"
                                 "  - id: src\n"
                                 "    pattern: 'No module named ''(?<module>[\\w.]+)'''\n"
                                 "    severity: critical\n"
                                 "    title: 'module {module}'\n"
                                 "    hint: 'fix {module}'\n";

static void on_match(const struct cfw_match *m, const struct cfw_event *ev, void *arg)
{
    cfw_incidents_observe(arg, m, ev, 1000, 1700000001000);
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
    char dir[] = "/tmp/cfw-state-XXXXXX";
    struct cfw_err err = {0};
    struct stat st;
    json_t *j;
    char *path;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(cfw_write_atomic(dir, "s.json", "{\"a\":1}", 7, 0600, &err), 0);
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
    assert_int_equal(cfw_write_atomic("/nonexistent-cfw", "s.json", "x", 1, 0600, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent-cfw"));
    free(path);
    rmdir(dir);
}

static void test_roundtrip(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = cfw_yaml_load_string("t.yaml", rules_yaml, strlen(rules_yaml), &diag);
    struct cfw_ruleset *rs = cfw_ruleset_new();
    struct cfw_incidents *a = cfw_incidents_new(NULL, NULL, NULL);
    struct cfw_incidents *b;
    struct cfw_event ev = {.text = "No module named 'src'", .input = "x.log", .line = 3};
    const struct cfw_incident *inc;
    size_t skipped;
    json_t *saved;

    (void)state;
    ev.len = strlen(ev.text);
    cfw_ruleset_add_node(rs, cfw_node_get(doc->root, "rules"), "rules", "t", &diag);
    assert_int_equal(diag.n, 0);
    cfw_fields_set(&ev.fields, "script", "api");
    cfw_ruleset_match(rs, &ev, on_match, a);
    cfw_ruleset_match(rs, &ev, on_match, a);
    /* saved 5 s after the last match (mono 1000 -> 6000) */
    saved = cfw_state_incidents_save(a, 6000, 1700000006000);
    assert_int_equal(json_array_size(saved), 1);

    /* a new process: the monotonic clock restarted near zero, the wall clock moved on 10 s */
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
    /* last seen 15 s of wall time ago */
    assert_int_equal(inc->last_seen_mono_ms, 50 - 15000);
    assert_int_equal(cfw_incidents_open_count(b), 1);
    /* the resolve still happens after a restart */
    cfw_incidents_tick(b, 50 - 15000 + 30 * 60 * 1000, 0);
    assert_int_equal(transitions, 1);
    assert_int_equal(inc->state, CFW_INCIDENT_RESOLVED);

    /* damaged entries are skipped and counted, good ones kept */
    json_array_append_new(saved, json_pack("{s:s}", "key", "broken"));
    json_array_append_new(saved, json_integer(3));
    cfw_incidents_free(b);
    b = cfw_incidents_new(NULL, NULL, NULL);
    assert_int_equal(cfw_state_incidents_restore(b, saved, 0, 1700000016000, &skipped), 1);
    assert_int_equal(skipped, 2);

    json_decref(saved);
    cfw_fields_clear(&ev.fields);
    cfw_incidents_free(a);
    cfw_incidents_free(b);
    cfw_ruleset_free(rs);
    cfw_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_atomic),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
