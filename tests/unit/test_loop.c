/* Unit tests for loop.c: running the loop until a condition holds or a deadline passes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>

#include "cfwatchd/common.h"
#include "cfwatchd/loop.h"

struct fired {
    int n;
};

static void on_fire(evutil_socket_t fd, short what, void *arg)
{
    struct fired *f = arg;

    (void)fd;
    (void)what;
    f->n++;
}

static bool fired_once(void *arg)
{
    return ((struct fired *)arg)->n > 0;
}

static void test_until_done(void **state)
{
    struct event_base *base = event_base_new();
    struct fired f = {0};
    struct event *ev = evtimer_new(base, on_fire, &f);
    struct timeval tv = cfw_ms_timeval(20);
    int64_t start = cfw_now_mono_ms();

    (void)state;
    evtimer_add(ev, &tv);
    assert_true(cfw_loop_until(base, fired_once, &f, start + 5000));
    assert_int_equal(f.n, 1);
    assert_true(cfw_now_mono_ms() - start < 4000); /* returned when it held, not at the deadline */
    /* holding already: no turn runs */
    evtimer_add(ev, &tv);
    assert_true(cfw_loop_until(base, fired_once, &f, start));
    assert_int_equal(f.n, 1);
    event_free(ev);
    event_base_free(base);
}

static void test_until_deadline(void **state)
{
    struct event_base *base = event_base_new();
    struct fired f = {0};
    int64_t start = cfw_now_mono_ms();

    (void)state;
    /* nothing pending: the loop waits for the deadline, neither spinning nor past it */
    assert_false(cfw_loop_until(base, fired_once, &f, start + 50));
    assert_true(cfw_now_mono_ms() >= start + 50);
    /* no condition: runs until the deadline */
    start = cfw_now_mono_ms();
    assert_false(cfw_loop_until(base, NULL, NULL, start + 30));
    assert_true(cfw_now_mono_ms() >= start + 30);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_until_done),
        cmocka_unit_test(test_until_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
