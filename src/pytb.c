/* The Python traceback grammar shared by the framer and the decoder (see pytb.h). */
#include "cfwatchd/pytb.h"

#include <stdint.h>
#include <string.h>

#define LIT_LEN(lit) (sizeof(lit) - 1)

static bool is_digit(unsigned c)
{
    return c - '0' < 10u;
}

static bool is_ident_start(unsigned c)
{
    return (c | 0x20u) - 'a' < 26u || c == '_';
}

static bool is_ident_char(unsigned c)
{
    return is_ident_start(c) || is_digit(c);
}

static bool is_blank_char(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

size_t cfw_tb_header(const char *s, size_t n)
{
    const char *end = s + n;
    const char *p = s;

    while ((size_t)(end - p) >= LIT_LEN(CFW_TB_HEADER) &&
           (p = memchr(p, 'T', (size_t)(end - p) - LIT_LEN(CFW_TB_HEADER) + 1)) != NULL) {
        if (memcmp(p, CFW_TB_HEADER, LIT_LEN(CFW_TB_HEADER)) == 0) {
            return (size_t)(p - s) + LIT_LEN(CFW_TB_HEADER);
        }
        p++;
    }
    return SIZE_MAX;
}

size_t cfw_tb_frame(const char *s, size_t n, struct cfw_tb_frame *fr)
{
    size_t win, k;
    const char *pe;

    if (n < LIT_LEN("File \"") || memcmp(s, "File \"", LIT_LEN("File \"")) != 0) {
        return 0;
    }
    s += LIT_LEN("File \"");
    n -= LIT_LEN("File \"");
    win = n > CFW_TB_MAX_PATH ? CFW_TB_MAX_PATH + 1 : n;
    pe = memchr(s, '"', win);
    if (pe == NULL || pe == s) {
        return 0;
    }
    k = (size_t)(pe - s);
    if (n - k < LIT_LEN("\", line ") || memcmp(pe, "\", line ", LIT_LEN("\", line ")) != 0) {
        return 0;
    }
    k += LIT_LEN("\", line ");
    {
        size_t d = k;

        while (d < n && is_digit((unsigned char)s[d]) && d - k <= CFW_TB_MAX_DIGITS) {
            d++;
        }
        if (d == k || d - k > CFW_TB_MAX_DIGITS) {
            return 0;
        }
        if (fr != NULL) {
            fr->path = s;
            fr->path_n = (size_t)(pe - s);
            fr->num = s + k;
            fr->num_n = d - k;
        }
        return d + LIT_LEN("File \"");
    }
}

bool cfw_tb_caret(const char *s, size_t n)
{
    bool mark = false;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '^' || s[i] == '~') {
            mark = true;
        } else if (!is_blank_char(s[i])) {
            return false;
        }
    }
    return mark;
}

/* A dotted name at s whose last part starts with a capital: its length, else 0. */
static size_t class_name(const char *s, size_t n)
{
    size_t i = 0;
    size_t last;

    for (;;) {
        last = i;
        if (i == n || !is_ident_start((unsigned char)s[i])) {
            return 0;
        }
        while (i < n && is_ident_char((unsigned char)s[i])) {
            i++;
        }
        if (i == n || s[i] != '.') {
            break;
        }
        i++;
    }
    return (unsigned)(unsigned char)s[last] - 'A' < 26u ? i : 0;
}

size_t cfw_tb_exception(const char *s, size_t n)
{
    size_t i = class_name(s, n);
    size_t k;

    if (i == 0) {
        return 0;
    }
    if (i < n && s[i] == ':' && (i + 1 == n || s[i + 1] == ' ')) {
        return i;
    }
    for (k = i; k < n && is_blank_char(s[k]); k++) {
    }
    return k == n ? i : 0;
}

size_t cfw_tb_exception_named(const char *s, size_t n)
{
    static const char *const suffixes[] = {"Error",   "Exception", "Exit", "Interrupt",
                                           "Warning", "Iteration", "Group"};
    size_t i = class_name(s, n);

    if (i == 0 || n - i < 2 || s[i] != ':' || s[i + 1] != ' ') {
        return 0;
    }
    for (size_t k = 0; k < sizeof(suffixes) / sizeof(suffixes[0]); k++) {
        size_t sl = strlen(suffixes[k]);

        if (i > sl && memcmp(s + i - sl, suffixes[k], sl) == 0) {
            return i;
        }
    }
    return 0;
}
