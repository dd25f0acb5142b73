/* Unit tests for router.c: filters, token buckets, digests and ordering, with explicit times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/router.h"

struct emitted {
    size_t sink;
    enum cfw_notify_kind kind;
    enum cfw_transition t;
    char key[64];
    size_t n_items;
    uint64_t omitted;
    char item_keys[8][64];
    enum cfw_transition item_t[8];
};

static struct emitted out[1024];
static size_t nout;

static void emit(size_t sink, const struct cfw_notification *n, void *arg)
{
    struct emitted *e = &out[nout++];

    (void)arg;
    memset(e, 0, sizeof(*e));
    e->sink = sink;
    e->kind = n->kind;
    if (n->kind == CFW_NOTIFY_DIGEST) {
        e->n_items = n->n_items;
        e->omitted = n->n_omitted;
        for (size_t i = 0; i < n->n_items && i < 8; i++) {
            snprintf(e->item_keys[i], sizeof(e->item_keys[i]), "%s", n->items[i].inc.key);
            e->item_t[i] = n->items[i].transition;
        }
    } else {
        e->t = n->transition;
        snprintf(e->key, sizeof(e->key), "%s", n->inc->key);
    }
}

static void mk(struct cfw_incident *inc, const char *key, const char *rule, const char *script,
               enum cfw_severity sev)
{
    memset(inc, 0, sizeof(*inc));
    inc->key = (char *)key;
    inc->rule = (char *)rule;
    inc->title = (char *)"title";
    inc->severity = sev;
    cfw_fields_set(&inc->fields, "script", script);
}

static struct cfw_route_cfg base_cfg(void)
{
    struct cfw_route_cfg c;

    memset(&c, 0, sizeof(c));
    c.min_severity = CFW_SEV_INFO;
    c.send_open = c.send_reminder = c.send_resolve = true;
    c.digest_resolves = true;
    return c;
}

/* A router whose one sink is c with a bucket of burst tokens, one every per_ms; out emptied. */
static struct cfw_router *router_one_sink(struct cfw_route_cfg *c, uint32_t burst, int64_t per_ms)
{
    struct cfw_router *r = cfw_router_new(NULL, emit, NULL);

    nout = 0;
    c->burst = burst;
    c->per_ms = per_ms;
    cfw_router_add_sink(r, c);
    return r;
}

/* Asserts that emission i is a digest of n_items. */
static void assert_digest(size_t i, size_t n_items)
{
    assert_true(i < nout);
    assert_int_equal(out[i].kind, CFW_NOTIFY_DIGEST);
    assert_int_equal(out[i].n_items, n_items);
}

static void test_filters(void **state)
{
    struct cfw_route_cfg c = base_cfg();
    struct cfw_incident a, b;
    char *rules[] = {"py-*", NULL};
    char *xrules[] = {"py-noisy", NULL};
    char *scripts[] = {"api-*", NULL};
    char *xscripts[] = {"api-staging", NULL};

    (void)state;
    mk(&a, "k", "py-src-import", "api-prod", CFW_SEV_ERROR);
    mk(&b, "k", "other", "api-prod", CFW_SEV_WARNING);
    assert_true(cfw_route_accepts(&c, &a, CFW_TRANSITION_OPEN));
    c.min_severity = CFW_SEV_ERROR;
    assert_true(cfw_route_accepts(&c, &a, CFW_TRANSITION_OPEN));
    assert_false(cfw_route_accepts(&c, &b, CFW_TRANSITION_OPEN));
    c.min_severity = CFW_SEV_INFO;
    c.rules = rules;
    assert_true(cfw_route_accepts(&c, &a, CFW_TRANSITION_OPEN));
    assert_false(cfw_route_accepts(&c, &b, CFW_TRANSITION_OPEN));
    c.exclude_rules = xrules;
    a.rule = (char *)"py-noisy";
    assert_false(cfw_route_accepts(&c, &a, CFW_TRANSITION_OPEN));
    a.rule = (char *)"py-src-import";
    c.scripts = scripts;
    c.exclude_scripts = xscripts;
    assert_true(cfw_route_accepts(&c, &a, CFW_TRANSITION_OPEN));
    cfw_fields_set(&a.fields, "script", "api-staging");
    assert_false(cfw_route_accepts(&c, &a, CFW_TRANSITION_OPEN));
    cfw_fields_set(&a.fields, "script", "worker");
    assert_false(cfw_route_accepts(&c, &a, CFW_TRANSITION_OPEN));
    cfw_fields_set(&a.fields, "script", "api-prod");
    c.send_reminder = false;
    assert_true(cfw_route_accepts(&c, &a, CFW_TRANSITION_OPEN));
    assert_false(cfw_route_accepts(&c, &a, CFW_TRANSITION_REMINDER));
    assert_true(cfw_route_accepts(&c, &a, CFW_TRANSITION_RESOLVE));
    assert_true(cfw_route_matches(&c, &a));
    cfw_fields_clear(&a.fields);
    cfw_fields_clear(&b.fields);
}

static void test_rate_limit_digest(void **state)
{
    struct cfw_route_cfg c = base_cfg();
    struct cfw_router *r = router_one_sink(&c, 3, 1000);
    struct cfw_incident inc[10];
    char keys[10][16];

    (void)state;
    for (int i = 0; i < 10; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        mk(&inc[i], keys[i], "rule", "s", CFW_SEV_ERROR);
        assert_int_equal(cfw_router_route(r, &inc[i], CFW_TRANSITION_OPEN, 0, 0), 1);
    }
    /* the burst goes out one by one, the rest waits as one digest */
    assert_int_equal(nout, 3);
    assert_int_equal(cfw_router_pending(r), 7);
    assert_int_equal(cfw_router_tick(r, 500), 500);
    assert_int_equal(nout, 3);
    assert_int_equal(cfw_router_tick(r, 1000), -1);
    assert_int_equal(nout, 4);
    assert_digest(3, 7);
    assert_string_equal(out[3].item_keys[0], "k3");
    assert_int_equal(cfw_router_pending(r), 0);
    assert_int_equal(cfw_router_digested(r, 0), 7);
    assert_int_equal(cfw_router_digests(r, 0), 1);
    /* the bucket is empty now: one more waits, and a digest of one leaves as itself */
    cfw_router_route(r, &inc[0], CFW_TRANSITION_REMINDER, 1100, 0);
    assert_int_equal(nout, 4);
    assert_int_equal(cfw_router_tick(r, 2000), -1);
    assert_int_equal(nout, 5);
    assert_int_equal(out[4].kind, CFW_NOTIFY_TRANSITION);
    assert_int_equal(out[4].t, CFW_TRANSITION_REMINDER);
    for (int i = 0; i < 10; i++) {
        cfw_fields_clear(&inc[i].fields);
    }
    cfw_router_free(r);
}

static void test_order_within_digest(void **state)
{
    struct cfw_route_cfg c = base_cfg();
    struct cfw_router *r = router_one_sink(&c, 1, 1000);
    struct cfw_incident a, b;

    (void)state;
    mk(&a, "A", "rule", "s", CFW_SEV_ERROR);
    mk(&b, "B", "rule", "s", CFW_SEV_ERROR);
    cfw_router_route(r, &a, CFW_TRANSITION_OPEN, 0, 0);
    cfw_router_route(r, &b, CFW_TRANSITION_OPEN, 10, 0);
    /* a token is due but a digest is pending: the resolve joins it, after B's open */
    cfw_router_route(r, &b, CFW_TRANSITION_RESOLVE, 20, 0);
    cfw_router_tick(r, 1000);
    assert_int_equal(nout, 2);
    assert_digest(1, 2);
    assert_int_equal(out[1].item_t[0], CFW_TRANSITION_OPEN);
    assert_int_equal(out[1].item_t[1], CFW_TRANSITION_RESOLVE);
    cfw_fields_clear(&a.fields);
    cfw_fields_clear(&b.fields);
    cfw_router_free(r);
}

static void test_resolves_not_folded(void **state)
{
    struct cfw_route_cfg c = base_cfg();
    struct cfw_router *r;
    struct cfw_incident a, b, x;

    (void)state;
    c.digest_resolves = false;
    r = router_one_sink(&c, 1, 1000);
    mk(&a, "A", "rule", "s", CFW_SEV_ERROR);
    mk(&b, "B", "rule", "s", CFW_SEV_CRITICAL);
    mk(&x, "X", "rule", "s", CFW_SEV_ERROR);
    cfw_router_route(r, &x, CFW_TRANSITION_OPEN, 0, 0);
    /* bucket empty, nothing pending: a resolve still leaves at once */
    cfw_router_route(r, &x, CFW_TRANSITION_RESOLVE, 1, 0);
    assert_int_equal(nout, 2);
    assert_int_equal(out[1].t, CFW_TRANSITION_RESOLVE);
    cfw_router_route(r, &a, CFW_TRANSITION_OPEN, 2, 0);
    cfw_router_route(r, &b, CFW_TRANSITION_OPEN, 3, 0);
    cfw_router_route(r, &a, CFW_TRANSITION_RESOLVE, 4, 0);
    assert_int_equal(nout, 2);
    cfw_router_tick(r, 1000);
    /* one digest of the opens, then the resolve on its own, after them */
    assert_int_equal(nout, 4);
    assert_digest(2, 2);
    assert_int_equal(out[3].kind, CFW_NOTIFY_TRANSITION);
    assert_int_equal(out[3].t, CFW_TRANSITION_RESOLVE);
    assert_string_equal(out[3].key, "A");
    cfw_fields_clear(&a.fields);
    cfw_fields_clear(&b.fields);
    cfw_fields_clear(&x.fields);
    cfw_router_free(r);
}

static void test_unlimited_and_flush(void **state)
{
    struct cfw_router *r = cfw_router_new(NULL, emit, NULL);
    struct cfw_route_cfg free_cfg = base_cfg();
    struct cfw_route_cfg tight = base_cfg();
    struct cfw_incident a;

    (void)state;
    nout = 0;
    tight.burst = 1;
    tight.per_ms = 60000;
    tight.min_severity = CFW_SEV_ERROR;
    cfw_router_add_sink(r, &free_cfg);
    cfw_router_add_sink(r, &tight);
    mk(&a, "A", "rule", "s", CFW_SEV_ERROR);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(cfw_router_route(r, &a, CFW_TRANSITION_REMINDER, i, 0), 2);
    }
    /* sink 0 has no limit: 20; sink 1: 1 and 19 pending */
    assert_int_equal(nout, 21);
    assert_int_equal(cfw_router_pending(r), 19);
    cfw_router_flush(r, 30);
    assert_int_equal(nout, 22);
    assert_int_equal(out[21].sink, 1);
    assert_digest(21, 19);
    a.severity = CFW_SEV_INFO;
    assert_int_equal(cfw_router_route(r, &a, CFW_TRANSITION_REMINDER, 40, 0), 1);
    cfw_fields_clear(&a.fields);
    cfw_router_free(r);
}

static void test_digest_cap(void **state)
{
    struct cfw_route_cfg c = base_cfg();
    struct cfw_router *r = router_one_sink(&c, 1, 1000);
    struct cfw_incident a;

    (void)state;
    mk(&a, "A", "rule", "s", CFW_SEV_ERROR);
    for (int i = 0; i < 601; i++) {
        cfw_router_route(r, &a, CFW_TRANSITION_REMINDER, 0, 0);
    }
    assert_int_equal(cfw_router_pending(r), 600);
    cfw_router_tick(r, 1000);
    assert_int_equal(nout, 2);
    assert_int_equal(out[1].n_items, CFW_ROUTER_DIGEST_MAX);
    assert_int_equal(out[1].omitted, 600 - CFW_ROUTER_DIGEST_MAX);
    cfw_fields_clear(&a.fields);
    cfw_router_free(r);
}

static void test_copy_incident(void **state)
{
    struct cfw_incident a, b;

    (void)state;
    mk(&a, "A", "rule", "s", CFW_SEV_ERROR);
    a.sample = (char *)"sample";
    a.first.input = (char *)"in";
    a.count = 7;
    cfw_router_copy_incident(&b, &a);
    assert_string_equal(b.key, "A");
    assert_string_equal(b.sample, "sample");
    assert_string_equal(b.first.input, "in");
    assert_null(b.last.input);
    assert_string_equal(cfw_fields_get(&b.fields, "script"), "s");
    assert_int_equal(b.count, 7);
    cfw_router_clear_incident(&b);
    cfw_fields_clear(&a.fields);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_rate_limit_digest),
        cmocka_unit_test(test_order_within_digest),
        cmocka_unit_test(test_resolves_not_folded),
        cmocka_unit_test(test_unlimited_and_flush),
        cmocka_unit_test(test_digest_cap),
        cmocka_unit_test(test_copy_incident),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
