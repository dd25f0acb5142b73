/* The decoder's internals that its tests and fuzz target reach (not part of the public API). */
#ifndef CFWATCHD_DECODE_INT_H
#define CFWATCHD_DECODE_INT_H

#include <stdbool.h>

/*
 * Runs every field scanner on every text (on: false), as before cfw_extract_fields skipped
 * those whose marker bytes a text lacks; tests and fuzz_decode compare the two.
 */
void cfw_decode_set_gates(bool on);

#endif
