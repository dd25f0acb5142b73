/*
 * jansson's indented, ASCII-only dump of a json_t tree, written straight into a cfw_buf (the
 * --once JSON report: jansson's dump goes through a callback per piece and is most of the
 * report's cost).
 *
 * Contract: cfw_jsondump_append appends exactly the bytes that jansson 2.14's
 * json_dumps(json, CFW_JSONDUMP_FLAGS) returns, and fails where it fails:
 *   - json must be an object or an array; members in the object's (insertion) order;
 *   - "{" or "[", then each member on its own line indented by 2 spaces a level, "key": value,
 *     "," between members, the closing bracket on its own line at the outer indent; "{}" and
 *     "[]" when empty;
 *   - strings: \\ \" \b \f \n \r \t, every other byte below 0x20 and every code point above
 *     0x7F as \uXXXX (uppercase hex), above U+FFFF as a UTF-16 surrogate pair; '/' and DEL as
 *     they are; integers as %lld; true, false, null; reals as jansson writes them;
 *   - a string value that is not valid UTF-8, or a container that holds itself, fails the
 *     dump; a key that is not valid UTF-8 is written up to the bad byte and the dump goes on.
 *     jansson's json_string and json_object_set refuse invalid UTF-8, so only the _nocheck
 *     functions can put it in a tree. On a failure b holds what jansson's dump callback would
 *     have been given up to it.
 */
#ifndef CFWATCHD_JSONDUMP_H
#define CFWATCHD_JSONDUMP_H

#include <jansson.h>

#include "cfwatchd/common.h"

#define CFW_JSONDUMP_FLAGS (JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER)

/* cfw_jsondump_append's result when b's cap is reached (b then holds a truncated text). */
#define CFW_JSONDUMP_FULL (-2)

/*
 * Appends json to b as json_dumps(json, CFW_JSONDUMP_FLAGS) writes it; returns 0, -1 where
 * json_dumps fails, or CFW_JSONDUMP_FULL.
 */
int cfw_jsondump_append(struct cfw_buf *b, const json_t *json);

#endif
