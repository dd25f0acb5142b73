/* Unit tests for deploys.c: ordering, lookups, and the A -> fixed by B -> regression in C story. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/deploys.h"

#define MIN (60 * 1000LL)
#define T0 1700000000000LL

static void add(struct cfw_deploys *d, const char *id, const char *version, int64_t at)
{
    struct cfw_deployment dep = {.id = (char *)id,
                                 .script = "py-api",
                                 .version = (char *)version,
                                 .author = "dev@example.com",
                                 .source = "wrangler",
                                 .message = "ship it",
                                 .created_wall_ms = at};

    cfw_deploys_add(d, &dep);
}

static void test_lookups(void **state)
{
    struct cfw_deploys *d = cfw_deploys_new();
    json_t *saved;
    struct cfw_deploys *e;

    (void)state;
    /* listed newest first by the API: kept in creation order */
    add(d, "C", "v3", T0 + 20 * MIN);
    add(d, "A", "v1", T0);
    add(d, "B", "v2", T0 + 10 * MIN);
    add(d, "B", "v2", T0 + 10 * MIN);
    assert_string_equal(cfw_deploys_latest(d, "py-api")->id, "C");
    assert_string_equal(cfw_deploys_before(d, "py-api", T0 + 15 * MIN)->id, "B");
    assert_null(cfw_deploys_before(d, "py-api", T0 - 1));
    assert_string_equal(cfw_deploys_between(d, "py-api", T0, T0 + 30 * MIN)->id, "B");
    assert_null(cfw_deploys_between(d, "py-api", T0 + 20 * MIN, T0 + 30 * MIN));
    assert_null(cfw_deploys_latest(d, "other"));

    saved = cfw_deploys_save(d);
    e = cfw_deploys_new();
    cfw_deploys_restore(e, saved);
    assert_string_equal(cfw_deploys_before(e, "py-api", T0 + 15 * MIN)->id, "B");
    json_decref(saved);
    cfw_deploys_free(e);
    cfw_deploys_free(d);
}

static void test_story(void **state)
{
    struct cfw_deploys *d = cfw_deploys_new();
    struct cfw_incident inc = {0};

    (void)state;
    cfw_fields_set(&inc.fields, "script", "py-api");
    add(d, "A", "v1", T0);
    /* errors 3 minutes after A */
    inc.first.wall_ms = T0 + 3 * MIN;
    inc.last.wall_ms = T0 + 5 * MIN;
    cfw_deploys_annotate(d, &inc, CFW_TRANSITION_OPEN, T0 + 3 * MIN);
    assert_string_equal(cfw_fields_get(&inc.fields, "deployment"), "A");
    assert_string_equal(cfw_fields_get(&inc.fields, "deployment_note"),
                        "first seen 3 min after deployment A (version v1, by dev@example.com: "
                        "ship it)");
    /* B lands, the errors stop, the incident resolves */
    add(d, "B", "v2", T0 + 6 * MIN);
    cfw_deploys_annotate(d, &inc, CFW_TRANSITION_RESOLVE, T0 + 40 * MIN);
    assert_string_equal(cfw_fields_get(&inc.fields, "deployment"), "B");
    assert_non_null(strstr(cfw_fields_get(&inc.fields, "deployment_note"), "fixed by deployment B"));
    /* C lands, the errors return */
    add(d, "C", "v3", T0 + 50 * MIN);
    inc.prev_resolved_wall_ms = T0 + 40 * MIN;
    inc.first.wall_ms = T0 + 52 * MIN;
    cfw_deploys_annotate(d, &inc, CFW_TRANSITION_OPEN, T0 + 52 * MIN);
    assert_string_equal(cfw_fields_get(&inc.fields, "deployment"), "C");
    assert_non_null(
        strstr(cfw_fields_get(&inc.fields, "deployment_note"), "regression in deployment C"));
    cfw_fields_clear(&inc.fields);
    cfw_deploys_free(d);
}

static void test_cap(void **state)
{
    struct cfw_deploys *d = cfw_deploys_new();
    char id[16];

    (void)state;
    for (int i = 0; i < CFW_DEPLOYS_PER_SCRIPT + 10; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        add(d, id, "v", T0 + i * MIN);
    }
    assert_null(cfw_deploys_before(d, "py-api", T0 + 5 * MIN));
    assert_string_equal(cfw_deploys_latest(d, "py-api")->id, "d73");
    cfw_deploys_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_story),
        cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
