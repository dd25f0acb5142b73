/* Running the event loop in the foreground: until a condition holds or a deadline passes. */
#ifndef CFWATCHD_LOOP_H
#define CFWATCHD_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

/* A condition checked between loop turns. */
typedef bool (*cfw_loop_done_fn)(void *arg);

/*
 * Runs base in EVLOOP_ONCE turns until done(arg) holds or the monotonic clock reaches
 * deadline_ms (cfw_now_mono_ms); says whether done held. A timer wakes each turn at the deadline
 * at the latest, so a turn neither waits past it nor spins. With done NULL: runs until the
 * deadline. done is checked before the first turn: nothing runs when it holds already.
 */
bool cfw_loop_until(struct event_base *base, cfw_loop_done_fn done, void *arg, int64_t deadline_ms);

#endif
