/* Unit tests for log.c: the rate-limited log window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cfwatchd/log.h"

static void test_ratelog_once(void **state)
{
    struct cfw_ratelog r = {0};
    uint64_t skipped = 99;

    (void)state;
    assert_true(cfw_ratelog_ok(&r, 1000, 60000, 1, &skipped)); /* the first one is logged */
    assert_int_equal(skipped, 0);
    assert_false(cfw_ratelog_ok(&r, 1001, 60000, 1, &skipped));
    assert_false(cfw_ratelog_ok(&r, 60999, 60000, 1, &skipped));
    assert_int_equal(skipped, 0);
    /* a minute after the last one logged: logged again, telling the two skipped */
    assert_true(cfw_ratelog_ok(&r, 61000, 60000, 1, &skipped));
    assert_int_equal(skipped, 2);
    /* a quiet window: nothing skipped to tell */
    assert_true(cfw_ratelog_ok(&r, 200000, 60000, 1, &skipped));
    assert_int_equal(skipped, 0);
}

static void test_ratelog_burst(void **state)
{
    struct cfw_ratelog r = {0};
    uint64_t skipped;

    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_true(cfw_ratelog_ok(&r, 5 + i, 1000, 3, &skipped));
        assert_int_equal(skipped, 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_false(cfw_ratelog_ok(&r, 10 + i, 1000, 3, &skipped));
    }
    /* the window began with the first message (at 5) */
    assert_false(cfw_ratelog_ok(&r, 1004, 1000, 3, &skipped));
    assert_true(cfw_ratelog_ok(&r, 1005, 1000, 3, &skipped));
    assert_int_equal(skipped, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratelog_once),
        cmocka_unit_test(test_ratelog_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
