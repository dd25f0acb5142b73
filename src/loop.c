/* Running the event loop in the foreground until a condition holds: see loop.h. */
#include "cfwatchd/loop.h"

#include "cfwatchd/common.h"

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

bool cfw_loop_until(struct event_base *base, cfw_loop_done_fn done, void *arg, int64_t deadline_ms)
{
    struct event *wake = evtimer_new(base, on_wake, NULL);
    bool held = false;

    for (;;) {
        int64_t now = cfw_now_mono_ms();
        struct timeval tv;

        if (done != NULL && done(arg)) {
            held = true;
            break;
        }
        if (now >= deadline_ms || wake == NULL) {
            break;
        }
        tv = cfw_ms_timeval(deadline_ms - now);
        evtimer_add(wake, &tv);
        if (event_base_loop(base, EVLOOP_ONCE) < 0) {
            break;
        }
    }
    if (wake != NULL) {
        event_free(wake);
    }
    return held;
}
