/* Test helpers for event loops and temporary directories: see test_util.h. */
#include "test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "cfwatchd/common.h"
#include "cfwatchd/loop.h"

/* ---- event loop ---- */

struct event_base *loop_base_new(bool precise)
{
    struct event_config *cfg;
    struct event_base *base;

    if (!precise) {
        base = event_base_new();
        assert_non_null(base);
        return base;
    }
    cfg = event_config_new();
    assert_non_null(cfg);
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    assert_non_null(base);
    return base;
}

static void loop_on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

struct event *loop_tick_new(struct event_base *base)
{
    struct timeval tv = {0, 10000};
    struct event *tick = event_new(base, -1, EV_PERSIST, loop_on_tick, NULL);

    assert_non_null(tick);
    assert_int_equal(event_add(tick, &tv), 0);
    return tick;
}

/*
 * One EVLOOP_ONCE turn that returns by the deadline at the latest: a timer is armed for it, so
 * that the turn neither waits for an event due later nor spins when no event is pending.
 */
static void loop_turn(struct event_base *base, struct event *wake, int64_t end)
{
    struct timeval tv = cfw_ms_timeval(end - cfw_now_mono_ms());

    assert_int_equal(evtimer_add(wake, &tv), 0);
    event_base_loop(base, EVLOOP_ONCE);
}

bool loop_run_until(struct event_base *base, loop_pred_fn pred, void *arg, int64_t timeout_ms)
{
    return cfw_loop_until(base, pred, arg, cfw_now_mono_ms() + timeout_ms);
}

void loop_run_for(struct event_base *base, int64_t ms)
{
    int64_t end = cfw_now_mono_ms() + ms;
    struct event *wake = evtimer_new(base, loop_on_tick, NULL);

    assert_non_null(wake);
    do {
        loop_turn(base, wake, end);
    } while (cfw_now_mono_ms() < end);
    event_free(wake);
}

bool loop_poll_until(struct event_base *base, loop_pred_fn pred, void *arg, int64_t timeout_ms,
                     int64_t step_ms)
{
    int64_t end = cfw_now_mono_ms() + timeout_ms;

    for (;;) {
        if (pred(arg)) {
            return true;
        }
        if (cfw_now_mono_ms() >= end) {
            return false;
        }
        loop_run_for(base, step_ms);
    }
}

static void loop_on_ticker(evutil_socket_t fd, short what, void *arg)
{
    struct loop_ticker *t = arg;
    struct timeval zero = {0, 0};

    (void)fd;
    (void)what;
    t->n++;
    event_add(t->ev, &zero);
}

void loop_ticker_start(struct event_base *base, struct loop_ticker *t)
{
    struct timeval zero = {0, 0};

    t->n = 0;
    t->ev = evtimer_new(base, loop_on_ticker, t);
    assert_non_null(t->ev);
    assert_int_equal(event_add(t->ev, &zero), 0);
}

void loop_ticker_stop(struct loop_ticker *t)
{
    event_free(t->ev);
    t->ev = NULL;
}

/* ---- temporary directories ---- */

int tmpdir_make(char *dir, size_t size, const char *name)
{
    int n = snprintf(dir, size, "/tmp/cfw-%s-XXXXXX", name);

    if (n < 0 || (size_t)n >= size) {
        return -1;
    }
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int tmpdir_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int tmpdir_remove(const char *dir)
{
    struct stat st;

    nftw(dir, tmpdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return lstat(dir, &st) != 0 && errno == ENOENT ? 0 : -1;
}

size_t dir_count(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t want = strlen(suffix);
    size_t n = 0;

    if (d == NULL) {
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        if (de->d_name[0] != '.' && len >= want && strcmp(de->d_name + len - want, suffix) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

/* ---- strings ---- */

char *str_repeat(char c, size_t n)
{
    char *s = cfw_xmalloc(n + 1);

    memset(s, c, n);
    s[n] = '\0';
    return s;
}

void buf_put_repeat(struct cfw_buf *b, const char *piece, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(cfw_buf_puts(b, piece), 0);
    }
}

void assert_has_all(const char *text, const char *const *needles)
{
    assert_non_null(text);
    for (size_t i = 0; needles[i] != NULL; i++) {
        if (strstr(text, needles[i]) == NULL) {
            fail_msg("\"%s\" is not in: %s", needles[i], text);
        }
    }
}
