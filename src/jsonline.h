/*
 * A fast check of a JSON object that starts a line, for the framer's MIXED mode: NDJSON (Logpush,
 * tools writing `--format json`) and pretty-printed objects (`wrangler tail --format json`). Not
 * part of the public API.
 *
 * The framer's tokenizer reads such an object a byte at a time through its state machine, and
 * a line at a time through its queue. This check finds strings with bit masks over 64 bytes at a
 * time (AVX2 where the processor has it) and runs the grammar only on what lies between them: a
 * token per structural byte, string and scalar, one table lookup each. It is a sound shortcut,
 * never a second opinion: it accepts an object only when the framer, line by line, would make
 * the same record of it, and says "not sure" for everything else (a backslash, a control byte, a
 * line the framer would clean, cut or look at for a time prefix, nesting past 64 levels, an
 * object that does not end within the bytes given), which the framer then reads as before.
 * tests/fuzz/fuzz_jsonline.c and tests/fuzz/fuzz_framer.c hold the two to that.
 */
#ifndef CFWATCHD_JSONLINE_H
#define CFWATCHD_JSONLINE_H

#include <stdbool.h>
#include <stddef.h>

#define CFW_JSONLINE_MAX_DEPTH 64u /* deeper objects are left to the tokenizer */

/* An object the check accepted. */
struct cfw_jsonline {
    size_t len;   /* its length: it is s[0, len) */
    size_t next;  /* where the line after its last line starts */
    size_t lines; /* the lines it spans */
};

/*
 * s[0, n) starts with '{' at the start of a line. With max_line 0 it is that one line (without
 * its newline); else as many lines as the caller has, each of which the framer would take as it
 * is if it is at most max_line bytes and does not start with a digit. True, with out filled,
 * when the object is valid JSON, at most max_depth levels deep, ends within s[0, n) and has
 * nothing but spaces after it on its last line (which, with max_line set, ends with a newline
 * within s[0, n)); false when not sure.
 */
bool cfw_jsonline_scan(const char *s, size_t n, size_t max_depth, size_t max_line,
                       struct cfw_jsonline *out);
/* The same with the vector path on or off (tests compare both). */
bool cfw_jsonline_scan_with(const char *s, size_t n, size_t max_depth, size_t max_line, bool simd,
                            struct cfw_jsonline *out);

#endif
