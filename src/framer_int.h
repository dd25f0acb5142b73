/* The framer's internals that its unit tests reach (not part of the public API). */
#ifndef CFWATCHD_FRAMER_INT_H
#define CFWATCHD_FRAMER_INT_H

#include <stddef.h>

/* Removes ANSI escape sequences in place; returns the new length. */
size_t cfw_strip_ansi(char *s, size_t len);

#endif
