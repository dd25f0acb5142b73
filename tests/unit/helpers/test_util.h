/*
 * Test helpers any unit test can use: an event loop run (EVLOOP_ONCE turns) until a condition
 * holds or a deadline passes, a ticker that counts loop turns, and temporary directories made
 * with mkdtemp, removed with nftw and looked into; strings made and searched. Assertions are
 * cmocka's.
 */
#ifndef CFW_TEST_UTIL_H
#define CFW_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

typedef bool (*loop_pred_fn)(void *arg);

/* A new event base (with precise timers, so lower bounds on delays hold exactly); never NULL. */
struct event_base *loop_base_new(bool precise);
/* Adds a 10 ms persistent no-op timer, so EVLOOP_ONCE returns often enough to check things. */
struct event *loop_tick_new(struct event_base *base);
/*
 * Runs the loop (EVLOOP_ONCE turns, none past the deadline) until pred(arg) holds or timeout_ms
 * passes; says whether it held. With pred NULL: runs until the deadline.
 */
bool loop_run_until(struct event_base *base, loop_pred_fn pred, void *arg, int64_t timeout_ms);
/* Runs the loop for ms (at least one turn). */
void loop_run_for(struct event_base *base, int64_t ms);
/*
 * For a condition the loop's events do not signal (another process, a file): checks pred(arg),
 * then runs the loop for step_ms, until pred holds or timeout_ms passes; says whether it held.
 */
bool loop_poll_until(struct event_base *base, loop_pred_fn pred, void *arg, int64_t timeout_ms,
                     int64_t step_ms);

/* A zero-delay timer re-armed each time it runs: n counts the loop turns that ran timers. */
struct loop_ticker {
    struct event *ev;
    uint64_t n;
};

/* Starts t (zeroed) on base. */
void loop_ticker_start(struct event_base *base, struct loop_ticker *t);
/* Stops and frees t's timer. */
void loop_ticker_stop(struct loop_ticker *t);

/* Makes a fresh directory /tmp/cfw-<name>-XXXXXX into dir; 0 or -1. */
int tmpdir_make(char *dir, size_t size, const char *name);
/* Removes a directory and everything below it (not following links); 0, or -1 when some stays. */
int tmpdir_remove(const char *dir);
/* How many entries of dir not starting with '.' end with suffix (0 when dir cannot be read). */
size_t dir_count(const char *dir, const char *suffix);

struct cfw_buf;

/* A string of n copies of c (free it). */
char *str_repeat(char c, size_t n);
/* Appends piece to b n times. */
void buf_put_repeat(struct cfw_buf *b, const char *piece, size_t n);
/* Asserts that text holds each string of the NULL-ended list needles (fails naming one missing). */
void assert_has_all(const char *text, const char *const *needles);
/* assert_has_all() of the strings given as arguments. */
#define ASSERT_HAS_ALL(text, ...) assert_has_all((text), (const char *const[]){__VA_ARGS__, NULL})

#endif
