/* The framer's internals that its unit tests reach (not part of the public API). */
#ifndef CFWATCHD_FRAMER_INT_H
#define CFWATCHD_FRAMER_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "cfwatchd/framer.h"

/* Removes ANSI escape sequences in place; returns the new length. */
size_t cfw_strip_ansi(char *s, size_t len);

/*
 * What the tokenizer makes of a line s[0, n) that starts a value in MIXED mode, as the queue
 * decides it: the value's length when the line holds it whole (at most max_depth levels) with
 * only blanks after it, else 0. fuzz_jsonline holds the fast check (jsonline.h) to it.
 */
size_t cfw_framer_line_value(const char *s, size_t n, size_t max_depth);

/* Frames objects with the tokenizer only (on: false), as before the fast check; tests compare. */
void cfw_framer_set_fast_json(struct cfw_framer *f, bool on);

#endif
