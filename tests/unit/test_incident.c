/* Unit tests for incident.c: folding, open/reminder/resolve, thresholds, caps (injected clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/incident.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/yaml.h"
#include "rules_util.h"

static const char rules_yaml[] = "rules:\n"
                                 "  - id: src\n"
                                 "    pattern: 'No module named ''(?<module>[\\w.]+)'''\n"
                                 "    severity: critical\n"
                                 "    title: 'module {module} missing in {script}'\n"
                                 "    hint: 'fix {module}'\n"
                                 "  - id: noisy\n"
                                 "    pattern: 'noisy'\n"
                                 "    severity: warning\n"
                                 "    threshold: {count: 3, window: 10s}\n"
                                 "  - id: quick\n"
                                 "    pattern: 'quick'\n"
                                 "    resolve_after: 5s\n"
                                 "    repeat_interval: 1m\n"
                                 "  - id: deployfail\n"
                                 "    pattern: 'deploy failed'\n"
                                 "    resolve: success\n"
                                 "    resolve_after: 5s\n"
                                 "    resolve_fallback: 1h\n";

struct recorder {
    enum cfw_transition t[64];
    char *keys[64];
    size_t n;
};

static void on_transition(const struct cfw_incident *inc, enum cfw_transition t, void *arg)
{
    struct recorder *r = arg;

    if (r->n < 64) {
        r->t[r->n] = t;
        r->keys[r->n] = strdup(inc->key);
        r->n++;
    }
}

static void recorder_free(struct recorder *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->keys[i]);
    }
    r->n = 0;
}

struct fixture {
    struct cfw_ruleset *rs;
    struct recorder rec;
    struct cfw_incidents *set;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct cfw_incident_opts opts = {.repeat_interval_ms = 3600 * 1000,
                                     .resolve_after_ms = 600 * 1000};

    fx->rs = rules_from_yaml_ok("test.yaml", rules_yaml, "test");
    fx->set = cfw_incidents_new(&opts, on_transition, &fx->rec);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    cfw_incidents_free(fx->set);
    cfw_ruleset_free(fx->rs);
    recorder_free(&fx->rec);
    free(fx);
    return 0;
}

/* Runs one event of a kind with a script field through the rules at time now (ms). */
static void feed_kind(struct fixture *fx, const char *text, const char *script, const char *kind,
                      int64_t now)
{
    struct cfw_event ev = {.text = text, .len = strlen(text), .input = "in.log", .line = 7};
    struct observe_to to = {fx->set, now, 1700000000000 + now};

    cfw_fields_set(&ev.fields, "kind", kind);
    if (script != NULL) {
        cfw_fields_set(&ev.fields, "script", script);
    }
    cfw_ruleset_match(fx->rs, &ev, observe_cb, &to);
    cfw_fields_clear(&ev.fields);
}

/* Runs one text event (a log line) with a script field through the rules at time now (ms). */
static void feed(struct fixture *fx, const char *text, const char *script, int64_t now)
{
    feed_kind(fx, text, script, "text", now);
}

static void test_resolve_on_success(void **state)
{
    struct fixture *fx = *state;
    const struct cfw_incident *inc;

    feed(fx, "deploy failed", "api", 0);
    feed(fx, "deploy failed", "web", 0);
    inc = cfw_incidents_find(fx->set, "deployfail/api/");
    assert_non_null(inc);
    assert_true(inc->on_success);
    assert_int_equal(inc->opening, 1);
    /* quiet for longer than resolve_after: still open, it waits for a deploy */
    assert_int_equal(cfw_incidents_tick(fx->set, 60000, 0), 3600000 - 60000);
    assert_int_equal(cfw_incidents_open_count(fx->set), 2);
    /* a deployment older than the failure fixes nothing; one of another script neither */
    assert_int_equal(cfw_incidents_succeed(fx->set, "api", NULL, "old", 1700000000000 - 1, 61000,
                                           0),
                     0);
    assert_int_equal(cfw_incidents_succeed(fx->set, "other", "in.log", "x", 0, 61000, 0), 0);
    assert_int_equal(
        cfw_incidents_succeed(fx->set, "api", "in.log", "Uploaded api (1.0 sec)", 0, 62000, 0), 1);
    inc = cfw_incidents_find(fx->set, "deployfail/api/");
    assert_int_equal(inc->state, CFW_INCIDENT_RESOLVED);
    assert_string_equal(inc->resolved_by, "Uploaded api (1.0 sec)");
    assert_int_equal(fx->rec.t[fx->rec.n - 1], CFW_TRANSITION_RESOLVE);
    /* it fails again: a second opening, resolved_by cleared */
    feed(fx, "deploy failed", "api", 70000);
    inc = cfw_incidents_find(fx->set, "deployfail/api/");
    assert_int_equal(inc->state, CFW_INCIDENT_OPEN);
    assert_int_equal(inc->opening, 2);
    assert_null(inc->resolved_by);
    /* the fallback: an hour without a match */
    cfw_incidents_tick(fx->set, 70000 + 3600000, 0);
    assert_int_equal(cfw_incidents_open_count(fx->set), 0);
}

static void test_success_rule_in_telemetry_resolves_when_quiet(void **state)
{
    struct fixture *fx = *state;
    const struct cfw_incident *inc;

    /* the same rule matched in request-time JSON (tail, Logpush): it ends when quiet */
    feed_kind(fx, "deploy failed", "api", "exception", 0);
    inc = cfw_incidents_find(fx->set, "deployfail/api/");
    assert_false(inc->on_success);
    cfw_incidents_tick(fx->set, 5000, 0);
    assert_int_equal(inc->state, CFW_INCIDENT_RESOLVED);
    assert_null(inc->resolved_by);
}

static void test_success_without_script_matches_the_input(void **state)
{
    struct fixture *fx = *state;

    feed(fx, "deploy failed", NULL, 0);
    assert_int_equal(cfw_incidents_succeed(fx->set, "api", "other.log", "x", 0, 1000, 0), 0);
    assert_int_equal(cfw_incidents_succeed(fx->set, "api", "in.log", "Uploaded api", 0, 1000, 0),
                     1);
}

static void test_reload_applies_rule_settings(void **state)
{
    struct fixture *fx = *state;
    static const char y[] = "rules:\n"
                            "  - id: quick\n"
                            "    pattern: 'quick'\n"
                            "    resolve_after: 1h\n";
    struct cfw_ruleset *rs = rules_from_yaml_ok("new.yaml", y, "test");
    const struct cfw_incident *inc;

    feed(fx, "quick", "api", 0);
    inc = cfw_incidents_find(fx->set, "quick/api/");
    assert_int_equal(inc->resolve_after_ms, 5000);
    cfw_incidents_apply_rules(fx->set, rs);
    assert_int_equal(inc->resolve_after_ms, 3600000);
    cfw_incidents_tick(fx->set, 10000, 0);
    assert_int_equal(inc->state, CFW_INCIDENT_OPEN);
    cfw_ruleset_free(rs);
}

static void test_fold_and_resolve(void **state)
{
    struct fixture *fx = *state;
    const struct cfw_incident *inc;

    feed(fx, "ModuleNotFoundError: No module named 'src'", "api", 0);
    feed(fx, "ModuleNotFoundError: No module named 'src'", "api", 1000);
    feed(fx, "ModuleNotFoundError: No module named 'src'", "web", 2000);
    assert_int_equal(cfw_incidents_count(fx->set), 2);
    assert_int_equal(fx->rec.n, 2);
    assert_int_equal(fx->rec.t[0], CFW_TRANSITION_OPEN);
    assert_string_equal(fx->rec.keys[0], "src/api/src");
    assert_string_equal(fx->rec.keys[1], "src/web/src");
    inc = cfw_incidents_find(fx->set, "src/api/src");
    assert_non_null(inc);
    assert_int_equal(inc->count, 2);
    assert_string_equal(inc->title, "module src missing in api");
    assert_string_equal(inc->hint, "fix src");
    assert_string_equal(inc->first.input, "in.log");
    assert_int_equal(inc->first.line, 7);
    assert_int_equal(inc->severity, CFW_SEV_CRITICAL);
    assert_int_equal(cfw_incidents_open_count(fx->set), 2);

    /* not due yet: the answer is the time left until the earliest resolve */
    assert_int_equal(cfw_incidents_tick(fx->set, 300000, 0), 600000 - 300000 + 1000);
    assert_int_equal(fx->rec.n, 2);
    /* api's last match was at 1 s, web's at 2 s */
    assert_int_equal(cfw_incidents_tick(fx->set, 601000, 0), 1000);
    assert_int_equal(fx->rec.n, 3);
    assert_int_equal(fx->rec.t[2], CFW_TRANSITION_RESOLVE);
    assert_string_equal(fx->rec.keys[2], "src/api/src");
    assert_int_equal(cfw_incidents_tick(fx->set, 602000, 0), -1);
    assert_int_equal(cfw_incidents_open_count(fx->set), 0);

    /* it comes back: a new open with a fresh count */
    feed(fx, "ModuleNotFoundError: No module named 'src'", "api", 700000);
    assert_int_equal(fx->rec.n, 5);
    assert_int_equal(fx->rec.t[4], CFW_TRANSITION_OPEN);
    assert_int_equal(cfw_incidents_find(fx->set, "src/api/src")->count, 1);
}

static void test_reminder(void **state)
{
    struct fixture *fx = *state;

    feed(fx, "quick", "a", 0);
    feed(fx, "quick", "a", 59000);
    assert_int_equal(fx->rec.n, 1);
    feed(fx, "quick", "a", 60000);
    assert_int_equal(fx->rec.n, 2);
    assert_int_equal(fx->rec.t[1], CFW_TRANSITION_REMINDER);
    /* the next reminder counts from the last notification */
    feed(fx, "quick", "a", 61000);
    assert_int_equal(fx->rec.n, 2);
    /* per-rule resolve_after of 5 s */
    assert_int_equal(cfw_incidents_tick(fx->set, 65000, 0), 1000);
    cfw_incidents_tick(fx->set, 66000, 0);
    assert_int_equal(fx->rec.n, 3);
    assert_int_equal(fx->rec.t[2], CFW_TRANSITION_RESOLVE);
}

static void test_threshold(void **state)
{
    struct fixture *fx = *state;
    const struct cfw_incident *inc;

    feed(fx, "noisy", "a", 0);
    feed(fx, "noisy", "a", 20000);
    feed(fx, "noisy", "a", 25000);
    assert_int_equal(fx->rec.n, 0);
    inc = cfw_incidents_at(fx->set, 0);
    assert_int_equal(inc->state, CFW_INCIDENT_PENDING);
    /* a pending incident is never resolved: it was never announced */
    cfw_incidents_tick(fx->set, 10000000, 0);
    assert_int_equal(fx->rec.n, 0);
    feed(fx, "noisy", "a", 26000);
    assert_int_equal(fx->rec.n, 1);
    assert_int_equal(fx->rec.t[0], CFW_TRANSITION_OPEN);
    assert_int_equal(inc->state, CFW_INCIDENT_OPEN);
    assert_int_equal(inc->count, 4);
}

static void test_missing_fields_in_key(void **state)
{
    struct fixture *fx = *state;

    feed(fx, "quick", NULL, 0);
    assert_non_null(cfw_incidents_find(fx->set, "quick//"));
}

static void test_sample_cap(void **state)
{
    struct fixture *fx = *state;
    size_t n = CFW_INCIDENT_SAMPLE_MAX * 3;
    char *big = malloc(n + 1);

    memset(big, 'x', n);
    memcpy(big, "quick ", 6);
    /* a multi-byte character straddling the cap must not be cut in half */
    memcpy(big + CFW_INCIDENT_SAMPLE_MAX - 1, "\xc3\xa9", 2);
    big[n] = '\0';
    feed(fx, big, "a", 0);
    assert_int_equal(strlen(cfw_incidents_at(fx->set, 0)->sample), CFW_INCIDENT_SAMPLE_MAX - 1);
    free(big);
}

static void test_cap_evicts_resolved_only(void **state)
{
    struct fixture *fx = *state;
    struct cfw_incident_opts opts = {.max_incidents = 4, .resolve_after_ms = 1000};
    char script[16];

    cfw_incidents_set_opts(fx->set, &opts);
    for (int i = 0; i < 4; i++) {
        snprintf(script, sizeof(script), "s%d", i);
        feed(fx, "ModuleNotFoundError: No module named 'x'", script, 0);
    }
    /* all open: a fifth is refused and counted, nothing open is lost */
    feed(fx, "ModuleNotFoundError: No module named 'x'", "s4", 0);
    assert_int_equal(cfw_incidents_count(fx->set), 4);
    assert_int_equal(cfw_incidents_dropped(fx->set), 1);
    cfw_incidents_tick(fx->set, 5000, 0);
    feed(fx, "ModuleNotFoundError: No module named 'x'", "s5", 6000);
    assert_non_null(cfw_incidents_find(fx->set, "src/s5/x"));
    assert_null(cfw_incidents_find(fx->set, "src/s0/x"));
}

/* Opening and resolving stamp the incident; how long it was open comes from the stamps. */
static void test_stamps_and_open_duration(void **state)
{
    static const char id_a[] = "0f6c3d53-8c4e-4d4e-9d64-3c3e0b0e2a11";
    static const char id_b[] = "7d1e0c9b-8a6f-4e3d-b2c1-0a9f8e7d6c5b";
    struct fixture *fx = *state;
    const struct cfw_incident *inc;
    struct cfw_incident x;
    struct cfw_stamp now;

    feed(fx, "ModuleNotFoundError: No module named 'src'", "api", 0);
    inc = cfw_incidents_find(fx->set, "src/api/src");
    assert_int_equal(inc->opened_wall_ms, 1700000000000);
    assert_int_equal(inc->opened_at.wall_ms, 1700000000000);
    assert_int_equal(inc->resolved_at.wall_ms, 0);
    assert_int_equal(inc->resolved_at.boot_ms, 0);
    if (cfw_boot_id()[0] != '\0') {
        assert_string_equal(inc->opened_at.boot_id, cfw_boot_id());
        assert_true(inc->opened_at.boot_ms > 0);
    }
    /* resolved while the wall clock stands an hour back: the duration is not a wall difference */
    assert_int_equal(cfw_incidents_resolve(fx->set, "src/api/src", 5000, 1700000000000 - 3600000),
                     0);
    assert_int_equal(inc->resolved_wall_ms, 1700000000000 - 3600000);
    assert_int_equal(inc->resolved_at.wall_ms, inc->resolved_wall_ms);
    if (cfw_boot_id()[0] != '\0') {
        assert_int_equal(cfw_incident_open_ms(inc, NULL),
                         inc->resolved_at.boot_ms - inc->opened_at.boot_ms);
    }
    /* it comes back: a new opening clears the resolve */
    feed(fx, "ModuleNotFoundError: No module named 'src'", "api", 700000);
    assert_int_equal(inc->opened_at.wall_ms, 1700000700000);
    assert_int_equal(inc->resolved_at.wall_ms, 0);
    assert_int_equal(inc->resolved_at.boot_ms, 0);
    assert_int_equal(inc->resolved_wall_ms, 0);

    /* without stamps (a state file from an older version): the wall fields, never negative */
    memset(&x, 0, sizeof(x));
    x.opened_wall_ms = 1000000;
    x.resolved_wall_ms = 1000000 + 90000;
    assert_int_equal(cfw_incident_open_ms(&x, NULL), 90000);
    x.resolved_wall_ms = 1000000 - 3600000 + 8000;
    assert_int_equal(cfw_incident_open_ms(&x, NULL), 0);
    /* stamps of one boot: the boot clock */
    x.opened_at.wall_ms = x.opened_wall_ms;
    x.opened_at.boot_ms = 5000;
    memcpy(x.opened_at.boot_id, id_a, sizeof(id_a));
    x.resolved_at = x.opened_at;
    x.resolved_at.wall_ms = x.resolved_wall_ms;
    x.resolved_at.boot_ms = 13000;
    assert_int_equal(cfw_incident_open_ms(&x, NULL), 8000);
    /* resolved in another boot: the wall clock again */
    memcpy(x.resolved_at.boot_id, id_b, sizeof(id_b));
    assert_int_equal(cfw_incident_open_ms(&x, NULL), 0);
    /* still open: up to now */
    memset(&x.resolved_at, 0, sizeof(x.resolved_at));
    x.resolved_wall_ms = 0;
    now = x.opened_at;
    now.wall_ms -= 3600000;
    now.boot_ms = 65000;
    assert_int_equal(cfw_incident_open_ms(&x, &now), 60000);
}

/* A test run with the fixture of setup() and teardown(). */
#define FX(test) cmocka_unit_test_setup_teardown(test, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_fold_and_resolve),
        FX(test_reminder),
        FX(test_threshold),
        FX(test_missing_fields_in_key),
        FX(test_sample_cap),
        FX(test_cap_evicts_resolved_only),
        FX(test_stamps_and_open_duration),
        FX(test_resolve_on_success),
        FX(test_success_rule_in_telemetry_resolves_when_quiet),
        FX(test_success_without_script_matches_the_input),
        FX(test_reload_applies_rule_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
