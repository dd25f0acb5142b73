/*
 * The records of a `--once -j N` worker (scanjob.h): what a pipeline's tap writes, replayed into
 * an incident set, gives the incidents a pipeline that holds the set makes itself (keys, counts,
 * first and last positions, samples with their bytes, a failure resolved by a later success);
 * data cut short, of an unknown kind or naming a rule the set does not have is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfwatchd/pipeline.h"
#include "cfwatchd/scanjob.h"
#include "cfwatchd/yaml.h"

static const char rules_yaml[] = "rules:\n"
                                 "  - id: ok\n"
                                 "    success: true\n"
                                 "    pattern: 'Uploaded (?<script>[a-z-]+)'\n"
                                 "  - id: boom\n"
                                 "    resolve: success\n"
                                 "    pattern: 'BOOM (?<what>\\w+) in (?<script>[a-z-]+)'\n"
                                 "    key: '{rule}/{script}/{what}'\n"
                                 "    title: 'boom {what}'\n";

/* boom/api/x twice, boom/web/y once, then api deployed (resolves boom/api/x); a NUL in a line */
static const char input[] = "start\n"
                            "BOOM x in api\n"
                            "nothing\0here\n"
                            "BOOM y in web \0tail\n"
                            "BOOM x in api\n"
                            "Uploaded api (1.2 sec)\n";

struct fixture {
    struct cfw_doc *doc;
    struct cfw_ruleset *rs;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct cfw_diag diag = {0};

    fx->doc = cfw_yaml_load_string("test.yaml", rules_yaml, strlen(rules_yaml), &diag);
    assert_non_null(fx->doc);
    fx->rs = cfw_ruleset_new();
    cfw_ruleset_add_node(fx->rs, cfw_node_get(fx->doc->root, "rules"), "rules", "test", &diag);
    cfw_diag_print(&diag, stderr);
    assert_int_equal(diag.n, 0);
    cfw_diag_free(&diag);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    cfw_ruleset_free(fx->rs);
    cfw_doc_free(fx->doc);
    free(fx);
    return 0;
}

struct tap_ctx {
    struct cfw_buf buf;
    const struct cfw_ruleset *rs;
};

static void tap_observe(const struct cfw_match *m, const struct cfw_event *ev, void *arg)
{
    struct tap_ctx *t = arg;

    assert_int_equal(cfw_scanjob_put_observe(&t->buf, t->rs, m, ev), 0);
}

static void tap_succeed(const char *script, const char *input_name, const char *line,
                        uint64_t lineno, void *arg)
{
    struct tap_ctx *t = arg;

    assert_int_equal(cfw_scanjob_put_succeed(&t->buf, script, input_name, line, lineno), 0);
}

/* Scans input through a pipeline into set, or with tap != NULL into the tap. */
static void scan(struct cfw_ruleset *rs, struct cfw_incidents *set, struct tap_ctx *tap)
{
    struct cfw_pipeline_tap pt = {tap_observe, tap_succeed, tap};
    struct cfw_pipeline *p = cfw_pipeline_new(rs, set, NULL);
    struct cfw_framer_opts fo = {.format = CFW_FMT_LINES};
    struct cfw_pipeline_input *in;

    if (tap != NULL) {
        cfw_pipeline_set_tap(p, &pt);
    }
    in = cfw_pipeline_input_new(p, "a.log", NULL, &fo);
    cfw_pipeline_input_feed(in, input, sizeof(input) - 1);
    cfw_pipeline_input_free(in);
    cfw_pipeline_free(p);
}

static void assert_same_incidents(const struct cfw_incidents *a, const struct cfw_incidents *b)
{
    assert_int_equal(cfw_incidents_count(a), cfw_incidents_count(b));
    for (size_t i = 0; i < cfw_incidents_count(a); i++) {
        const struct cfw_incident *x = cfw_incidents_at(a, i);
        const struct cfw_incident *y = cfw_incidents_at(b, i);
        assert_string_equal(x->key, y->key);
        assert_string_equal(x->title, y->title);
        assert_int_equal(x->count, y->count);
        assert_int_equal(x->state, y->state);
        assert_string_equal(x->first.input, y->first.input);
        assert_int_equal(x->first.line, y->first.line);
        assert_int_equal(x->last.line, y->last.line);
        assert_string_equal(x->sample, y->sample);
        assert_true((x->resolved_by == NULL) == (y->resolved_by == NULL));
        if (x->resolved_by != NULL) {
            assert_string_equal(x->resolved_by, y->resolved_by);
        }
    }
}

static void test_replay_equals_direct(void **state)
{
    struct fixture *fx = *state;
    struct cfw_incident_opts opts = {0};
    struct cfw_incidents *direct = cfw_incidents_new(&opts, NULL, NULL);
    struct cfw_incidents *replayed = cfw_incidents_new(&opts, NULL, NULL);
    struct tap_ctx tap = {.buf = CFW_BUF_INIT(CFW_BUF_MAX_BUILT), .rs = fx->rs};
    struct cfw_err err = {0};
    const struct cfw_incident *x;

    scan(fx->rs, direct, NULL);
    scan(fx->rs, NULL, &tap);
    assert_true(tap.buf.len > 0);
    assert_int_equal(cfw_incidents_count(replayed), 0);
    assert_int_equal(cfw_scanjob_replay(tap.buf.data, tap.buf.len, fx->rs, replayed, NULL, &err),
                     0);
    assert_int_equal(cfw_incidents_count(direct), 2);
    assert_same_incidents(direct, replayed);
    x = cfw_incidents_find(replayed, "boom/api/x");
    assert_non_null(x);
    assert_int_equal(x->count, 2);
    assert_int_equal(x->first.line, 2);
    assert_int_equal(x->last.line, 5);
    assert_int_equal(x->state, CFW_INCIDENT_RESOLVED);
    assert_non_null(strstr(x->resolved_by, "Uploaded api"));
    assert_int_equal(cfw_incidents_find(replayed, "boom/web/y")->state, CFW_INCIDENT_OPEN);
    cfw_buf_free(&tap.buf);
    cfw_incidents_free(direct);
    cfw_incidents_free(replayed);
}

/* A part of a file (cfw_scanjob_shift): records up to skip left out, lines moved by base. */
static void test_replay_shift(void **state)
{
    struct fixture *fx = *state;
    struct cfw_incident_opts opts = {0};
    struct cfw_incidents *set = cfw_incidents_new(&opts, NULL, NULL);
    struct tap_ctx tap = {.buf = CFW_BUF_INIT(CFW_BUF_MAX_BUILT), .rs = fx->rs};
    struct cfw_scanjob_shift sh = {.skip = 2, .base = 100};
    struct cfw_err err = {0};
    const struct cfw_incident *x, *y;

    scan(fx->rs, NULL, &tap);
    assert_int_equal(cfw_scanjob_replay(tap.buf.data, tap.buf.len, fx->rs, set, &sh, &err), 0);
    x = cfw_incidents_find(set, "boom/api/x");
    y = cfw_incidents_find(set, "boom/web/y");
    assert_non_null(x);
    assert_non_null(y);
    assert_int_equal(x->count, 1); /* the one of line 2 was the part before's */
    assert_int_equal(x->first.line, 105);
    assert_int_equal(x->last.line, 105);
    assert_int_equal(y->first.line, 104);
    assert_int_equal(x->state, CFW_INCIDENT_RESOLVED);
    assert_non_null(strstr(x->resolved_by, "Uploaded api (1.2 sec) (a.log:106)"));
    assert_int_equal(y->state, CFW_INCIDENT_OPEN);
    /* everything left out: nothing replayed */
    cfw_incidents_free(set);
    set = cfw_incidents_new(&opts, NULL, NULL);
    sh.skip = 6;
    assert_int_equal(cfw_scanjob_replay(tap.buf.data, tap.buf.len, fx->rs, set, &sh, &err), 0);
    assert_int_equal(cfw_incidents_count(set), 0);
    cfw_buf_free(&tap.buf);
    cfw_incidents_free(set);
}

static void test_bad_records(void **state)
{
    struct fixture *fx = *state;
    struct cfw_incident_opts opts = {0};
    struct cfw_incidents *set = cfw_incidents_new(&opts, NULL, NULL);
    struct tap_ctx tap = {.buf = CFW_BUF_INIT(CFW_BUF_MAX_BUILT), .rs = fx->rs};
    struct cfw_err err = {0};
    struct cfw_ruleset *other = cfw_ruleset_new();
    struct cfw_match m = {.rule = cfw_ruleset_rule(fx->rs, 1)};
    struct cfw_event ev = {.text = "BOOM z in api", .len = 13};
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    scan(fx->rs, NULL, &tap);
    /* cut anywhere inside: refused, and what came before the cut is replayed */
    for (size_t cut = 1; cut < tap.buf.len; cut += 7) {
        struct cfw_incidents *s = cfw_incidents_new(&opts, NULL, NULL);
        int rc = cfw_scanjob_replay(tap.buf.data, cut, fx->rs, s, NULL, &err);
        if (rc != 0) {
            assert_non_null(strstr(err.msg, "cut short"));
        }
        cfw_incidents_free(s);
    }
    assert_int_equal(cfw_scanjob_replay(tap.buf.data, tap.buf.len - 1, fx->rs, set, NULL, &err),
                     -1);
    assert_non_null(strstr(err.msg, "cut short"));
    /* an unknown kind */
    assert_int_equal(cfw_scanjob_replay("X\0\0\0\0", 5, fx->rs, set, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "unknown kind 0x58"));
    /* a rule the replaying set does not have */
    assert_int_equal(cfw_scanjob_put_observe(&b, other, &m, &ev), -1);
    assert_int_equal(b.len, 0);
    assert_int_equal(cfw_scanjob_put_observe(&b, fx->rs, &m, &ev), 0);
    assert_int_equal(cfw_scanjob_replay(b.data, b.len, other, set, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "names rule 1 of 0"));
    cfw_buf_free(&b);
    cfw_buf_free(&tap.buf);
    cfw_ruleset_free(other);
    cfw_incidents_free(set);
}

/*
 * A record that does not fit under the buffer's cap is refused whole: nothing of it is left
 * (no length pointing past the data), and the records before it replay as they were.
 */
static void test_full_buffer(void **state)
{
    struct fixture *fx = *state;
    struct cfw_incident_opts opts = {0};
    struct cfw_incidents *set = cfw_incidents_new(&opts, NULL, NULL);
    struct cfw_match m = {.rule = cfw_ruleset_rule(fx->rs, 1)};
    struct cfw_event ev = {.text = "BOOM z in api", .len = 13};
    struct cfw_err err = {0};
    struct cfw_buf one = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    char evidence[512];
    size_t rec;

    memset(evidence, 'e', sizeof(evidence) - 1);
    evidence[sizeof(evidence) - 1] = '\0';
    assert_int_equal(cfw_scanjob_put_observe(&one, fx->rs, &m, &ev), 0);
    rec = one.len;
    /* room for one record and a bit: a second and a success with long evidence do not fit */
    for (size_t cap = rec; cap < 2 * rec; cap += 3) {
        struct cfw_buf b = CFW_BUF_INIT(cap);
        assert_int_equal(cfw_scanjob_put_observe(&b, fx->rs, &m, &ev), 0);
        assert_int_equal(cfw_scanjob_put_observe(&b, fx->rs, &m, &ev), -1);
        assert_int_equal(b.len, rec);
        assert_int_equal(cfw_scanjob_put_succeed(&b, "api", "a.log", evidence, 1), -1);
        assert_int_equal(b.len, rec);
        assert_memory_equal(b.data, one.data, rec);
        cfw_buf_free(&b);
    }
    assert_int_equal(cfw_scanjob_replay(one.data, one.len, fx->rs, set, NULL, &err), 0);
    assert_int_equal(cfw_incidents_count(set), 1);
    assert_int_equal(cfw_incidents_at(set, 0)->count, 1);
    cfw_buf_free(&one);
    cfw_incidents_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_equals_direct),
        cmocka_unit_test(test_replay_shift),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_full_buffer),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
