/*
 * A fast check of one line holding one compact JSON object (NDJSON: Logpush, `--format json`
 * tools), for the framer's MIXED mode. Not part of the public API.
 *
 * The framer's tokenizer reads such a line a byte at a time through its state machine. This
 * check finds strings with bit masks over 64 bytes at a time (AVX2 where the processor has it)
 * and runs the grammar only on what lies between them: a token per structural byte, string and
 * scalar. It is a sound shortcut, never a second opinion: it accepts a line only when the
 * tokenizer would accept it the same way, and says "not sure" for everything else (a backslash or
 * a control byte anywhere, nesting past 64 levels, a value that does not end on the line), which
 * the tokenizer then reads as before. tests/fuzz/fuzz_jsonline.c holds the two to that.
 */
#ifndef CFWATCHD_JSONLINE_H
#define CFWATCHD_JSONLINE_H

#include <stdbool.h>
#include <stddef.h>

#define CFW_JSONLINE_MAX_DEPTH 64u /* deeper values are left to the tokenizer */

/*
 * For a line s[0, n) (without its newline) that starts with '{': the length of the object when
 * it is valid JSON, at most max_depth levels deep, followed by nothing but spaces; 0 when not
 * sure.
 */
size_t cfw_jsonline_end(const char *s, size_t n, size_t max_depth);
/* The same with the vector path on or off (tests compare both). */
size_t cfw_jsonline_end_with(const char *s, size_t n, size_t max_depth, bool simd);

#endif
