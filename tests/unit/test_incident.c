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

/* Runs one event with the given input, script and script_tag (NULL: no such field) at now (ms). */
static void feed_in(struct fixture *fx, const char *text, const char *input, const char *script,
                    const char *tag, const char *kind, int64_t now)
{
    struct cfw_event ev = {.text = text, .len = strlen(text), .input = input, .line = 7};
    struct observe_to to = {fx->set, now, 1700000000000 + now};

    cfw_fields_set(&ev.fields, "kind", kind);
    if (script != NULL) {
        cfw_fields_set(&ev.fields, "script", script);
    }
    if (tag != NULL) {
        cfw_fields_set(&ev.fields, "script_tag", tag);
    }
    cfw_ruleset_match(fx->rs, &ev, observe_cb, &to);
    cfw_fields_clear(&ev.fields);
}

/* An annotation that names the incident's Worker, as a later field of the opening. */
static void tag_on_open(struct cfw_incident *inc, enum cfw_transition t, void *arg)
{
    (void)arg;
    if (t == CFW_TRANSITION_OPEN && cfw_fields_get(&inc->fields, "annotate_tag") != NULL) {
        cfw_fields_set(&inc->fields, "script_tag", cfw_fields_get(&inc->fields, "annotate_tag"));
    }
}

/* The fixture's deployfail rule after a reload that made it quiet (no `resolve: success`). */
static struct cfw_ruleset *quiet_rules(void)
{
    return rules_from_yaml_ok("quiet.yaml",
                              "rules:\n"
                              "  - id: deployfail\n"
                              "    pattern: 'deploy failed'\n",
                              "test");
}

/* What a success could fix follows each way an incident opens, changes and ends. */
static void test_fixable_follows_every_change(void **state)
{
    struct fixture *fx = *state;
    struct cfw_ruleset *rs = quiet_rules();

    assert_false(cfw_incidents_fixable(fx->set, "api", "in.log"));
    /* open, with a script: the script fixes it, not the input nor an empty script */
    feed_in(fx, "deploy failed", "in.log", "api", NULL, "text", 0);
    assert_true(cfw_incidents_fixable(fx->set, "api", NULL));
    assert_false(cfw_incidents_fixable(fx->set, "web", "in.log"));
    assert_false(cfw_incidents_fixable(fx->set, "", "in.log"));
    /* acknowledged: still open, still waiting */
    assert_int_equal(cfw_incidents_ack(fx->set, "deployfail/api/", "ann", 1000, 0), 0);
    assert_true(cfw_incidents_fixable(fx->set, "api", NULL));
    /* a deployment from before the failure fixes nothing, and it still waits */
    assert_int_equal(cfw_incidents_succeed(fx->set, "api", NULL, "old", 1, 2000, 0), 0);
    assert_true(cfw_incidents_fixable(fx->set, "api", NULL));
    /* resolved by the fallback timer */
    cfw_incidents_tick(fx->set, 3600000, 0);
    assert_false(cfw_incidents_fixable(fx->set, "api", NULL));
    /* reopened, then resolved by hand */
    feed_in(fx, "deploy failed", "in.log", "api", NULL, "text", 3700000);
    assert_true(cfw_incidents_fixable(fx->set, "api", NULL));
    assert_int_equal(cfw_incidents_resolve_by(fx->set, "deployfail/api/", "gone", 3701000, 0), 0);
    assert_false(cfw_incidents_fixable(fx->set, "api", NULL));
    /* reopened, then fixed by a success */
    feed_in(fx, "deploy failed", "in.log", "api", NULL, "text", 3800000);
    assert_int_equal(cfw_incidents_succeed(fx->set, "api", "x.log", "ok", 0, 3801000, 0), 1);
    assert_false(cfw_incidents_fixable(fx->set, "api", NULL));
    assert_int_equal(cfw_incidents_succeed(fx->set, "api", "x.log", "ok", 0, 3802000, 0), 0);

    /* no script: the input of its last match tells, and follows later matches */
    feed_in(fx, "deploy failed", "a.log", NULL, NULL, "text", 3900000);
    assert_true(cfw_incidents_fixable(fx->set, NULL, "a.log"));
    assert_true(cfw_incidents_fixable(fx->set, "", "a.log"));
    assert_false(cfw_incidents_fixable(fx->set, "api", "b.log"));
    feed_in(fx, "deploy failed", "b.log", NULL, NULL, "text", 3901000);
    assert_false(cfw_incidents_fixable(fx->set, NULL, "a.log"));
    assert_true(cfw_incidents_fixable(fx->set, "api", "b.log"));
    assert_int_equal(cfw_incidents_succeed(fx->set, NULL, "b.log", "ok", 0, 3902000, 0), 1);
    assert_false(cfw_incidents_fixable(fx->set, NULL, "b.log"));

    /* a Worker's tag: of the first match of each opening, as its fields are */
    feed_in(fx, "deploy failed", "c.log", "w", "t1", "text", 4000000);
    feed_in(fx, "deploy failed", "c.log", "w", "t2", "text", 4001000);
    assert_true(cfw_incidents_fixable(fx->set, "t1", NULL));
    assert_false(cfw_incidents_fixable(fx->set, "t2", NULL));
    assert_true(cfw_incidents_fixable(fx->set, "w", NULL));
    assert_int_equal(cfw_incidents_succeed(fx->set, "t1", NULL, "ok", 0, 4002000, 0), 1);
    feed_in(fx, "deploy failed", "c.log", "w", "t2", "text", 4003000);
    assert_false(cfw_incidents_fixable(fx->set, "t1", NULL));
    assert_true(cfw_incidents_fixable(fx->set, "t2", NULL));

    /* the same rule in request-time telemetry does not wait for a deploy */
    feed_in(fx, "deploy failed", "d.log", "tele", NULL, "exception", 4004000);
    assert_false(cfw_incidents_fixable(fx->set, "tele", "d.log"));

    /* an annotation that changes the fields at the open is followed */
    cfw_incidents_set_annotate(fx->set, tag_on_open);
    feed_in(fx, "deploy failed", "e.log", "v", "", "text", 4005000);
    assert_false(cfw_incidents_fixable(fx->set, "", "e.log"));
    cfw_incidents_set_annotate(fx->set, NULL);

    /* a reload that makes the rule quiet: nothing waits any more */
    cfw_incidents_apply_rules(fx->set, rs);
    assert_false(cfw_incidents_fixable(fx->set, "t2", NULL));
    assert_false(cfw_incidents_fixable(fx->set, "v", NULL));
    assert_int_equal(cfw_incidents_succeed(fx->set, "t2", "c.log", "ok", 0, 4006000, 0), 0);
    cfw_ruleset_free(rs);
}

/* An annotation's script_tag counts as the first match's would. */
static void test_fixable_after_annotation(void **state)
{
    struct fixture *fx = *state;
    struct cfw_event ev = {.text = "deploy failed", .len = 13, .input = "in.log", .line = 1};
    struct observe_to to = {fx->set, 0, 1700000000000};

    cfw_incidents_set_annotate(fx->set, tag_on_open);
    cfw_fields_set(&ev.fields, "kind", "text");
    cfw_fields_set(&ev.fields, "annotate_tag", "worker");
    cfw_ruleset_match(fx->rs, &ev, observe_cb, &to);
    cfw_fields_clear(&ev.fields);
    assert_true(cfw_incidents_fixable(fx->set, "worker", NULL));
    assert_true(cfw_incidents_fixable(fx->set, NULL, "in.log"));
    assert_int_equal(cfw_incidents_succeed(fx->set, "worker", NULL, "ok", 0, 1000, 0), 1);
    assert_false(cfw_incidents_fixable(fx->set, NULL, "in.log"));
}

/* An incident built by hand, as state.c restores one. */
static void restore_one(struct fixture *fx, const char *key, enum cfw_incident_state st,
                        bool on_success, const char *script, const char *input)
{
    struct cfw_incident inc;

    memset(&inc, 0, sizeof(inc));
    inc.key = strdup(key);
    inc.rule = strdup("deployfail");
    inc.state = st;
    inc.on_success = on_success;
    inc.opened_wall_ms = 1700000000000;
    inc.first.input = strdup(input);
    inc.last.input = strdup(input);
    inc.resolve_after_ms = 5000;
    inc.resolve_fallback_ms = 3600000;
    if (script != NULL) {
        cfw_fields_set(&inc.fields, "script", script);
    }
    cfw_incidents_restore(fx->set, &inc);
}

/* Restored incidents wait as observed ones do, and a newer record of one replaces what it said. */
static void test_fixable_after_restore(void **state)
{
    struct fixture *fx = *state;

    restore_one(fx, "k1", CFW_INCIDENT_OPEN, true, "api", "in.log");
    restore_one(fx, "k2", CFW_INCIDENT_OPEN, false, "web", "in.log");
    restore_one(fx, "k3", CFW_INCIDENT_RESOLVED, true, "db", "in.log");
    assert_true(cfw_incidents_fixable(fx->set, "api", NULL));
    assert_false(cfw_incidents_fixable(fx->set, "web", NULL));
    assert_false(cfw_incidents_fixable(fx->set, "db", NULL));
    /* newer records: k1 resolved, k3 open without a script */
    restore_one(fx, "k1", CFW_INCIDENT_RESOLVED, true, "api", "in.log");
    restore_one(fx, "k3", CFW_INCIDENT_OPEN, true, NULL, "z.log");
    assert_false(cfw_incidents_fixable(fx->set, "api", NULL));
    assert_true(cfw_incidents_fixable(fx->set, NULL, "z.log"));
    assert_int_equal(cfw_incidents_succeed(fx->set, NULL, "z.log", "ok", 0, 1000, 0), 1);
    assert_false(cfw_incidents_fixable(fx->set, NULL, "z.log"));
    /* a new record */
    restore_one(fx, "k4", CFW_INCIDENT_OPEN, true, "q", "in.log");
    assert_true(cfw_incidents_fixable(fx->set, "q", NULL));
    assert_int_equal(cfw_incidents_count(fx->set), 4);
}

/* Whether an incident waits for script's success, by looking at it. */
static bool waits_for(const struct cfw_incidents *set, int i)
{
    char key[32];
    const struct cfw_incident *inc;

    snprintf(key, sizeof(key), "deployfail/s%d/", i);
    inc = cfw_incidents_find(set, key);
    return inc != NULL && inc->state == CFW_INCIDENT_OPEN && inc->on_success;
}

/* Eviction at the cap takes only incidents that wait for nothing; what waits stays counted. */
static void test_fixable_across_eviction(void **state)
{
    struct fixture *fx = *state;
    struct cfw_incident_opts opts = {.max_incidents = 4};
    char script[16];

    cfw_incidents_set_opts(fx->set, &opts);
    for (int i = 0; i < 12; i++) {
        snprintf(script, sizeof(script), "s%d", i);
        feed_in(fx, "deploy failed", "in.log", script, NULL, "text", i * 1000);
        if (i % 3 != 0 && waits_for(fx->set, i)) {
            assert_int_equal(cfw_incidents_succeed(fx->set, script, NULL, "ok", 0, i * 1000, 0), 1);
        }
        for (int j = 0; j <= i; j++) {
            snprintf(script, sizeof(script), "s%d", j);
            assert_int_equal(cfw_incidents_fixable(fx->set, script, NULL), waits_for(fx->set, j));
        }
    }
    assert_true(cfw_incidents_dropped(fx->set) > 0);
}

/* fixed_by as a plain walk over the set would see it: the oracle of the wait index. */
static bool ref_fixed_by(const struct cfw_incident *inc, const char *script, const char *input,
                         int64_t deployed_wall_ms)
{
    int64_t failed = inc->first.wall_ms > 0 ? inc->first.wall_ms : inc->opened_wall_ms;
    const char *its = cfw_fields_get(&inc->fields, "script");
    const char *tag = cfw_fields_get(&inc->fields, "script_tag");

    if (script != NULL && script[0] == '\0') {
        script = NULL;
    }
    if (inc->state != CFW_INCIDENT_OPEN || !inc->on_success ||
        (deployed_wall_ms > 0 && failed >= deployed_wall_ms)) {
        return false;
    }
    if (script != NULL && tag != NULL && strcmp(tag, script) == 0) {
        return true;
    }
    if (its != NULL && its[0] != '\0') {
        return script != NULL && strcmp(its, script) == 0;
    }
    return input != NULL && inc->last.input != NULL && strcmp(inc->last.input, input) == 0;
}

static bool ref_fixable(const struct cfw_incidents *set, const char *script, const char *input)
{
    for (size_t i = 0; i < cfw_incidents_count(set); i++) {
        if (ref_fixed_by(cfw_incidents_at(set, i), script, input, 0)) {
            return true;
        }
    }
    return false;
}

static const char *const rnd_scripts[] = {NULL, "", "a", "b", "c", "d", "t"};
static const char *const rnd_tags[] = {NULL, "", "a", "t"};
static const char *const rnd_inputs[] = {NULL, "", "x.log", "y.log", "z.log"};
#define NSCRIPTS (sizeof(rnd_scripts) / sizeof(rnd_scripts[0]))
#define NINPUTS (sizeof(rnd_inputs) / sizeof(rnd_inputs[0]))

static size_t pick(uint64_t *rng, size_t n)
{
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    return (size_t)(*rng % n);
}

/* A success with a random deployment time: its count and what it resolved, as the walk says. */
static void random_succeed(struct fixture *fx, uint64_t *rng, int64_t now)
{
    const char *script = rnd_scripts[pick(rng, NSCRIPTS)];
    const char *input = rnd_inputs[pick(rng, NINPUTS)];
    int64_t wall = 1700000000000 + now;
    int64_t deployed = pick(rng, 3) == 0 ? wall - (int64_t)pick(rng, 3 * 3600000) : 0;
    size_t n = cfw_incidents_count(fx->set);
    bool *want = calloc(n + 1, sizeof(*want));
    size_t expect = 0;

    for (size_t i = 0; i < n; i++) {
        want[i] = ref_fixed_by(cfw_incidents_at(fx->set, i), script, input, deployed);
        expect += want[i];
    }
    assert_int_equal(cfw_incidents_succeed(fx->set, script, input, "evidence", deployed, now, wall),
                     expect);
    assert_int_equal(cfw_incidents_count(fx->set), n);
    for (size_t i = 0; i < n; i++) {
        if (want[i]) {
            assert_int_equal(cfw_incidents_at(fx->set, i)->state, CFW_INCIDENT_RESOLVED);
            assert_string_equal(cfw_incidents_at(fx->set, i)->resolved_by, "evidence");
        }
    }
    free(want);
}

/* A restored incident of random state, fields and input, under a new or a known key. */
static void random_restore(struct fixture *fx, uint64_t *rng, int64_t now)
{
    static const enum cfw_incident_state states[] = {CFW_INCIDENT_PENDING, CFW_INCIDENT_OPEN,
                                                     CFW_INCIDENT_RESOLVED};
    size_t n = cfw_incidents_count(fx->set);
    struct cfw_incident inc;
    const char *script = rnd_scripts[pick(rng, NSCRIPTS)];
    const char *tag = rnd_tags[pick(rng, 4)];
    const char *input = rnd_inputs[2 + pick(rng, NINPUTS - 2)];
    char key[16];

    memset(&inc, 0, sizeof(inc));
    if (n > 0 && pick(rng, 2) == 0) {
        inc.key = strdup(cfw_incidents_at(fx->set, pick(rng, n))->key);
    } else {
        snprintf(key, sizeof(key), "r%zu", pick(rng, 6));
        inc.key = strdup(key);
    }
    inc.rule = strdup(pick(rng, 2) == 0 ? "deployfail" : "gone");
    inc.state = states[pick(rng, 3)];
    inc.on_success = pick(rng, 3) != 0;
    inc.opened_wall_ms = 1700000000000 + now;
    inc.first.wall_ms = pick(rng, 2) == 0 ? 0 : inc.opened_wall_ms - (int64_t)pick(rng, 3600000);
    inc.first.input = strdup(input);
    inc.last.input = strdup(input);
    inc.last_seen_mono_ms = now;
    inc.resolve_after_ms = 5000;
    inc.resolve_fallback_ms = 3600000;
    if (script != NULL) {
        cfw_fields_set(&inc.fields, "script", script);
    }
    if (tag != NULL) {
        cfw_fields_set(&inc.fields, "script_tag", tag);
    }
    cfw_incidents_restore(fx->set, &inc);
}

/* Acknowledges or resolves one of the incidents (or a key that is not there). */
static void random_by_key(struct fixture *fx, uint64_t *rng, int64_t now, bool ack)
{
    size_t n = cfw_incidents_count(fx->set);
    char *key =
        strdup(n > 0 && pick(rng, 4) != 0 ? cfw_incidents_at(fx->set, pick(rng, n))->key : "none");

    if (ack) {
        cfw_incidents_ack(fx->set, key, "someone", now, 1700000000000 + now);
    } else {
        cfw_incidents_resolve_by(fx->set, key, pick(rng, 2) == 0 ? "by" : NULL, now,
                                 1700000000000 + now);
    }
    free(key);
}

/* One random operation on the set, of every kind that changes what a success fixes. */
static void random_step(struct fixture *fx, uint64_t *rng, int64_t *now,
                        const struct cfw_ruleset *quiet)
{
    static const size_t caps[] = {0, 3, 8};
    size_t op = pick(rng, 100);

    *now += pick(rng, 8) == 0 ? (int64_t)pick(rng, 2 * 3600000) : (int64_t)pick(rng, 20000);
    if (op < 40) {
        feed_in(fx, pick(rng, 5) == 0 ? "quick" : "deploy failed", rnd_inputs[pick(rng, NINPUTS)],
                rnd_scripts[pick(rng, NSCRIPTS)], rnd_tags[pick(rng, 4)],
                pick(rng, 6) == 0 ? "exception" : "text", *now);
    } else if (op < 52) {
        cfw_incidents_tick(fx->set, *now, 1700000000000 + *now);
    } else if (op < 75) {
        random_succeed(fx, rng, *now);
    } else if (op < 81) {
        random_by_key(fx, rng, *now, true);
    } else if (op < 86) {
        random_by_key(fx, rng, *now, false);
    } else if (op < 93) {
        random_restore(fx, rng, *now);
    } else if (op < 96) {
        struct cfw_incident_opts opts = {.max_incidents = caps[pick(rng, 3)]};

        cfw_incidents_set_opts(fx->set, &opts);
    } else if (op < 98) {
        cfw_incidents_track_touched(fx->set, pick(rng, 2) == 0);
        cfw_incidents_take_touched(fx->set, NULL, NULL);
    } else {
        cfw_incidents_apply_rules(fx->set, pick(rng, 2) == 0 ? quiet : fx->rs);
    }
}

/*
 * Thousands of random operations: after each, cfw_incidents_fixable says for every script and
 * input what a walk over the set with fixed_by says, and every success resolves what the walk
 * would (random_succeed).
 */
static void test_fixable_matches_the_walk(void **state)
{
    struct fixture *fx = *state;
    struct cfw_ruleset *rs = quiet_rules();

    for (uint64_t seed = 1; seed <= 4; seed++) {
        uint64_t rng = seed * 0x9e3779b97f4a7c15ULL;
        int64_t now = 0;

        cfw_incidents_free(fx->set);
        fx->set = cfw_incidents_new(NULL, NULL, NULL);
        cfw_incidents_set_annotate(fx->set, seed % 2 == 0 ? tag_on_open : NULL);
        for (int step = 0; step < 2500; step++) {
            random_step(fx, &rng, &now, rs);
            for (size_t i = 0; i < NSCRIPTS; i++) {
                for (size_t j = 0; j < NINPUTS; j++) {
                    bool want = ref_fixable(fx->set, rnd_scripts[i], rnd_inputs[j]);

                    if (cfw_incidents_fixable(fx->set, rnd_scripts[i], rnd_inputs[j]) != want) {
                        fail_msg("seed %llu step %d: fixable(%s, %s) is not %d",
                                 (unsigned long long)seed, step,
                                 rnd_scripts[i] != NULL ? rnd_scripts[i] : "NULL",
                                 rnd_inputs[j] != NULL ? rnd_inputs[j] : "NULL", want);
                    }
                }
            }
        }
    }
    cfw_ruleset_free(rs);
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
        FX(test_fixable_follows_every_change),
        FX(test_fixable_after_annotation),
        FX(test_fixable_after_restore),
        FX(test_fixable_across_eviction),
        FX(test_fixable_matches_the_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
