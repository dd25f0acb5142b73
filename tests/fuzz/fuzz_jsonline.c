/*
 * Differential target: the framer's fast check of a JSON object on one line (src/jsonline.c)
 * against its tokenizer (cfw_framer_line_value), which decides the same lines when the check is not
 * sure. (Objects over many lines: fuzz_framer frames every input with the check and without.)
 *   - the fast check never accepts a line the tokenizer would not, nor with another length;
 *   - its vector and byte paths agree;
 *   - it is not sure only where it says it may be (a backslash or control byte, nesting past its
 *     64 levels), so that it does not quietly leave every line to the tokenizer.
 * Input: one byte for max_depth (1 + byte % 80), then the line (cut at its first newline); a
 * line that does not start with '{' gets one in front.
 */
#include "fuzz_util.h"

#include "framer_int.h"
#include "jsonline.h"

FUZZ_INIT_QUIET

static bool has_bad_byte(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' || (unsigned char)s[i] < 0x20) {
            return true;
        }
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t max_depth;
    const char *nl;
    size_t n;
    char *line;
    struct cfw_jsonline a, b;
    size_t fast, bytes, ref;

    if (size < 1) {
        return 0;
    }
    max_depth = 1 + data[0] % 80;
    data++;
    size--;
    nl = memchr(data, '\n', size);
    n = nl != NULL ? (size_t)((const uint8_t *)nl - data) : size;
    line = malloc(n + 2);
    if (line == NULL) {
        return 0;
    }
    line[0] = '{';
    memcpy(line + 1, data, n);
    if (n > 0 && data[0] == '{') {
        memmove(line, line + 1, n); /* it has its own */
    } else {
        n++;
    }
    fast = cfw_jsonline_scan_with(line, n, max_depth, 0, true, &a) ? a.len : 0;
    bytes = cfw_jsonline_scan_with(line, n, max_depth, 0, false, &b) ? b.len : 0;
    FUZZ_CHECK(fast == 0 || (a.next == n && a.lines == 1));
    ref = cfw_framer_line_value(line, n, max_depth);
    FUZZ_CHECK(fast == bytes);
    FUZZ_CHECK(fast == 0 || fast == ref);
    if (ref != 0 && !has_bad_byte(line, n) && max_depth <= CFW_JSONLINE_MAX_DEPTH) {
        FUZZ_CHECK(fast == ref);
    }
    free(line);
    return 0;
}
