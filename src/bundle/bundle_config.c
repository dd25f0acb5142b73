/* --check-bundle: the wrangler configuration readers (a TOML subset and JSONC) and rule globs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle_int.h"
#include "cfwatchd/bundle.h"

/* How a TOML table or array came to exist: the rules for redefinition depend on it. */
#define TF_EXPLICIT 0x1u /* [header] */
#define TF_IMPLICIT 0x2u /* parent of a [header] */
#define TF_DOTTED 0x4u   /* created by a dotted key */
#define TF_INLINE 0x8u   /* inline table or static array: closed */
#define TF_AOT 0x10u     /* array of tables */

#define MAX_KEY_PARTS 32

/* ---- values ---- */

static struct cfw_bundle_value *value_new(enum cfw_bundle_vtype type, int line, int col)
{
    struct cfw_bundle_value *v = cfw_xcalloc(1, sizeof(*v));

    v->type = type;
    v->line = line;
    v->col = col;
    return v;
}

void cfw_bundle_value_free(struct cfw_bundle_value *v)
{
    if (v == NULL) {
        return;
    }
    for (size_t k = 0; k < v->n; k++) {
        if (v->keys != NULL) {
            free(v->keys[k]);
        }
        cfw_bundle_value_free(v->items[k]);
    }
    free(v->keys);
    free(v->items);
    free(v->str);
    free(v);
}

/* Appends an item (and its key, owned, for tables). */
static void value_push(struct cfw_bundle_value *t, char *key, struct cfw_bundle_value *item)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->items = cfw_xrealloc(t->items, t->cap * sizeof(*t->items));
        if (t->type == CFW_BUNDLE_V_TABLE) {
            t->keys = cfw_xrealloc(t->keys, t->cap * sizeof(*t->keys));
        }
    }
    if (t->type == CFW_BUNDLE_V_TABLE) {
        t->keys[t->n] = key;
    }
    t->items[t->n++] = item;
}

static struct cfw_bundle_value *table_find(const struct cfw_bundle_value *t, const char *key)
{
    if (t == NULL || t->type != CFW_BUNDLE_V_TABLE) {
        return NULL;
    }
    /* Last wins, as JSON.parse does with duplicate keys. */
    for (size_t k = t->n; k > 0; k--) {
        if (strcmp(t->keys[k - 1], key) == 0) {
            return t->items[k - 1];
        }
    }
    return NULL;
}

const struct cfw_bundle_value *cfw_bundle_value_get(const struct cfw_bundle_value *table,
                                                    const char *key)
{
    return table_find(table, key);
}

static const char *vtype_name(enum cfw_bundle_vtype t)
{
    switch (t) {
    case CFW_BUNDLE_V_STRING:
        return "string";
    case CFW_BUNDLE_V_INT:
        return "integer";
    case CFW_BUNDLE_V_FLOAT:
        return "float";
    case CFW_BUNDLE_V_BOOL:
        return "boolean";
    case CFW_BUNDLE_V_DATETIME:
        return "date";
    case CFW_BUNDLE_V_NULL:
        return "null";
    case CFW_BUNDLE_V_ARRAY:
        return "array";
    case CFW_BUNDLE_V_TABLE:
        return "table";
    }
    return "value";
}

/* ---- a cursor over the text shared by both readers ---- */

struct cur {
    const char *s;
    size_t len;
    size_t pos;
    int line;
    size_t line_start;
    int depth;
    const char *file;
    struct cfw_err *err;
};

static int cur_col(const struct cur *c)
{
    return (int)(c->pos - c->line_start) + 1;
}

static char peek_at(const struct cur *c, size_t off)
{
    return c->pos + off < c->len ? c->s[c->pos + off] : '\0';
}

static char peek(const struct cur *c)
{
    return peek_at(c, 0);
}

static bool at_end(const struct cur *c)
{
    return c->pos >= c->len;
}

static void adv(struct cur *c)
{
    if (c->pos < c->len) {
        if (c->s[c->pos] == '\n') {
            c->line++;
            c->line_start = c->pos + 1;
        }
        c->pos++;
    }
}

static void advn(struct cur *c, size_t n)
{
    while (n-- > 0) {
        adv(c);
    }
}

static int fail_at(struct cur *c, int line, int col, const char *fmt, ...) CFW_PRINTF(4, 5);

static int fail_at(struct cur *c, int line, int col, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cfw_err_set(c->err, "%s:%d:%d: %s", c->file, line, col, msg);
    return -1;
}

#define FAIL(c, ...) fail_at((c), (c)->line, cur_col(c), __VA_ARGS__)

/* Describes the character at the cursor for an error message. */
static const char *what_here(const struct cur *c, char *buf, size_t n)
{
    unsigned char ch = (unsigned char)peek(c);

    if (at_end(c)) {
        return "end of file";
    }
    if (ch == '\n' || ch == '\r') {
        return "end of line";
    }
    if (ch >= 0x21 && ch < 0x7f) {
        snprintf(buf, n, "'%c'", ch);
    } else {
        snprintf(buf, n, "byte 0x%02x", ch);
    }
    return buf;
}

/* Appends the UTF-8 encoding of a code point; -1 for surrogates and out-of-range values. */
static int put_utf8(struct cfw_buf *b, uint32_t cp)
{
    char u[4];

    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return -1;
    }
    cfw_buf_append(b, u, cfw_utf8_put(cp, u));
    return 0;
}

/* Reads n hex digits at the cursor into *out. */
static int read_hex(struct cur *c, int n, uint32_t *out)
{
    uint32_t v = 0;

    for (int k = 0; k < n; k++) {
        int h = cfw_hex_value(peek(c));
        if (h < 0) {
            return FAIL(c, "expected %d hexadecimal digits in a \\%c escape", n,
                        n == 4 ? 'u' : 'U');
        }
        v = v * 16 + (uint32_t)h;
        adv(c);
    }
    *out = v;
    return 0;
}

/* ======================================================================================== */
/* TOML                                                                                     */
/* ======================================================================================== */

static void t_skip_ws(struct cur *c)
{
    while (peek(c) == ' ' || peek(c) == '\t') {
        adv(c);
    }
}

static void t_skip_comment(struct cur *c)
{
    if (peek(c) == '#') {
        while (!at_end(c) && peek(c) != '\n') {
            adv(c);
        }
    }
}

static bool t_at_newline(const struct cur *c)
{
    return peek(c) == '\n' || (peek(c) == '\r' && peek_at(c, 1) == '\n');
}

static void t_eat_newline(struct cur *c)
{
    if (peek(c) == '\r') {
        adv(c);
    }
    if (peek(c) == '\n') {
        adv(c);
    }
}

/* Requires the rest of the line to be blank or a comment, and consumes the newline. */
static int t_expect_eol(struct cur *c, const char *after)
{
    char w[32];

    t_skip_ws(c);
    t_skip_comment(c);
    if (at_end(c)) {
        return 0;
    }
    if (!t_at_newline(c)) {
        return FAIL(c, "expected the end of the line after %s, found %s", after,
                    what_here(c, w, sizeof(w)));
    }
    t_eat_newline(c);
    return 0;
}

/* Skips whitespace, comments and newlines (inside arrays and inline tables). */
static void t_skip_all(struct cur *c)
{
    for (;;) {
        t_skip_ws(c);
        t_skip_comment(c);
        if (t_at_newline(c)) {
            t_eat_newline(c);
            continue;
        }
        return;
    }
}

static int t_escape(struct cur *c, struct cfw_buf *b)
{
    char ch;
    uint32_t cp = 0;
    int line = c->line, col = cur_col(c);

    adv(c); /* backslash */
    ch = peek(c);
    switch (ch) {
    case 'b':
        cfw_buf_putc(b, '\b');
        break;
    case 't':
        cfw_buf_putc(b, '\t');
        break;
    case 'n':
        cfw_buf_putc(b, '\n');
        break;
    case 'f':
        cfw_buf_putc(b, '\f');
        break;
    case 'r':
        cfw_buf_putc(b, '\r');
        break;
    case 'e':
        cfw_buf_putc(b, '\x1b');
        break;
    case '"':
        cfw_buf_putc(b, '"');
        break;
    case '\\':
        cfw_buf_putc(b, '\\');
        break;
    case 'u':
    case 'U':
        adv(c);
        if (read_hex(c, ch == 'u' ? 4 : 8, &cp) != 0) {
            return -1;
        }
        if (put_utf8(b, cp) != 0) {
            return fail_at(c, line, col, "escape \\%c%0*X is not a Unicode scalar value", ch,
                           ch == 'u' ? 4 : 8, (unsigned)cp);
        }
        return 0;
    default: {
        char w[32];
        return fail_at(c, line, col, "unknown escape sequence \\%s in a basic string",
                       at_end(c) ? "(end of file)" : what_here(c, w, sizeof(w)));
    }
    }
    adv(c);
    return 0;
}

/* Rejects control characters other than tab inside strings. */
static int t_check_char(struct cur *c, bool multiline)
{
    unsigned char ch = (unsigned char)peek(c);

    if ((ch < 0x20 && ch != '\t' && !(multiline && (ch == '\n' || ch == '\r'))) || ch == 0x7f) {
        if (ch == '\n' || ch == '\r') {
            return FAIL(c, "newline inside a single-line string (close it, or use a "
                           "multi-line string with triple quotes)");
        }
        return FAIL(c, "control character 0x%02x inside a string", ch);
    }
    return 0;
}

/* The cursor is on the string's own quote character: closes the string (true) or, inside a
 * multi-line string, keeps a quote that does not close it (up to two quotes right before the
 * closing three belong to the content). */
static bool t_quote(struct cur *c, struct cfw_buf *b, char q, bool multi)
{
    if (!multi) {
        adv(c);
        return true;
    }
    if (peek_at(c, 1) == q && peek_at(c, 2) == q) {
        size_t run = 3;
        while (run < 5 && peek_at(c, run) == q) {
            run++;
        }
        for (size_t k = 3; k < run; k++) {
            cfw_buf_putc(b, q);
        }
        advn(c, run);
        return true;
    }
    cfw_buf_putc(b, q);
    adv(c);
    return false;
}

/* In a multi-line basic string, a line-ending backslash trims the newline and the whitespace
 * after it: true when the backslash at the cursor was one. */
static bool t_line_ending_backslash(struct cur *c)
{
    size_t k = 1;

    while (peek_at(c, k) == ' ' || peek_at(c, k) == '\t') {
        k++;
    }
    if (!(peek_at(c, k) == '\n' || (peek_at(c, k) == '\r' && peek_at(c, k + 1) == '\n'))) {
        return false;
    }
    advn(c, k);
    while (peek(c) == ' ' || peek(c) == '\t' || t_at_newline(c)) {
        adv(c);
    }
    return true;
}

/* Parses a basic or literal string, single- or multi-line; the cursor is on the opening quote. */
static int t_string(struct cur *c, char **out)
{
    struct cfw_buf b;
    char q = peek(c);
    bool multi = peek_at(c, 1) == q && peek_at(c, 2) == q;
    int line = c->line, col = cur_col(c);

    cfw_buf_init(&b, CFW_BUNDLE_MAX_CONFIG_BYTES);
    advn(c, multi ? 3 : 1);
    if (multi && t_at_newline(c)) {
        t_eat_newline(c); /* a newline right after the opening quotes is trimmed */
    }
    for (;;) {
        if (at_end(c)) {
            cfw_buf_free(&b);
            return fail_at(c, line, col, "unterminated string");
        }
        if (peek(c) == q) {
            if (t_quote(c, &b, q, multi)) {
                break;
            }
            continue;
        }
        if (q == '"' && peek(c) == '\\') {
            if (multi && t_line_ending_backslash(c)) {
                continue;
            }
            if (t_escape(c, &b) != 0) {
                cfw_buf_free(&b);
                return -1;
            }
            continue;
        }
        if (t_check_char(c, multi) != 0) {
            cfw_buf_free(&b);
            return -1;
        }
        cfw_buf_putc(&b, peek(c));
        adv(c);
    }
    *out = cfw_buf_take(&b);
    return 0;
}

static bool is_bare_key_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

static void free_parts(char **parts, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(parts[k]);
    }
}

/* Parses a (possibly dotted, possibly quoted) key into parts. */
static int t_key(struct cur *c, char **parts, size_t *n)
{
    char w[32];

    *n = 0;
    for (;;) {
        char *part = NULL;
        char ch = peek(c);

        t_skip_ws(c);
        ch = peek(c);
        if (ch == '"' || ch == '\'') {
            if (peek_at(c, 1) == ch && peek_at(c, 2) == ch) {
                free_parts(parts, *n);
                return FAIL(c, "multi-line strings cannot be keys");
            }
            if (t_string(c, &part) != 0) {
                free_parts(parts, *n);
                return -1;
            }
        } else if (is_bare_key_char(ch)) {
            size_t start = c->pos;
            while (is_bare_key_char(peek(c))) {
                adv(c);
            }
            part = cfw_xstrndup(c->s + start, c->pos - start);
        } else {
            free_parts(parts, *n);
            return FAIL(c,
                        "expected a key (letters, digits, '_', '-', or a quoted string), "
                        "found %s",
                        what_here(c, w, sizeof(w)));
        }
        if (*n == MAX_KEY_PARTS) {
            free(part);
            free_parts(parts, *n);
            return FAIL(c, "key has more than %d dotted parts", MAX_KEY_PARTS);
        }
        parts[(*n)++] = part;
        t_skip_ws(c);
        if (peek(c) != '.') {
            return 0;
        }
        adv(c);
    }
}

static char *join_key(char **parts, size_t n)
{
    struct cfw_buf b;

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    for (size_t k = 0; k < n; k++) {
        if (k > 0) {
            cfw_buf_putc(&b, '.');
        }
        cfw_buf_puts(&b, parts[k]);
    }
    return cfw_buf_take(&b);
}

static int t_value(struct cur *c, struct cfw_bundle_value **out);

static bool is_value_end(char ch)
{
    return ch == '\0' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == ',' ||
           ch == ']' || ch == '}' || ch == '#';
}

/* Reads a bare token (number, boolean, date) and returns its length. */
static size_t t_bare_token(struct cur *c)
{
    size_t start = c->pos;

    while (!is_value_end(peek(c))) {
        adv(c);
    }
    /* A date and a time may be separated by one space ("1979-05-27 07:32:00"). */
    if (c->pos - start == 10 && peek(c) == ' ' && peek_at(c, 1) >= '0' && peek_at(c, 1) <= '9' &&
        peek_at(c, 3) == ':') {
        adv(c);
        while (!is_value_end(peek(c))) {
            adv(c);
        }
    }
    return c->pos - start;
}

/* A date or a time has a colon or starts like "1979-05-27". */
static bool t_is_datetime(const char *tok, size_t n)
{
    return memchr(tok, ':', n) != NULL ||
           (n >= 10 && tok[4] == '-' && tok[7] == '-' && tok[0] >= '0' && tok[0] <= '9');
}

/* Offset date-times, local date-times, dates and times: only their characters are checked. */
static int t_datetime(struct cur *c, const char *tok, size_t n, int line, int col,
                      struct cfw_bundle_value **out)
{
    for (size_t k = 0; k < n; k++) {
        if (strchr("0123456789-:.TtZz+ ", tok[k]) == NULL) {
            return fail_at(c, line, col, "malformed date or time '%.*s'", (int)n, tok);
        }
    }
    *out = value_new(CFW_BUNDLE_V_DATETIME, line, col);
    return 0;
}

/* Copies a number without its underscores, each of which must sit between two digits; NULL if
 * one does not. */
static char *t_strip_underscores(const char *tok, size_t n)
{
    char *clean = cfw_xmalloc(n + 1);
    size_t m = 0;

    for (size_t k = 0; k < n; k++) {
        if (tok[k] == '_') {
            if (!(k > 0 && k + 1 < n && cfw_hex_value(tok[k - 1]) >= 0 &&
                  cfw_hex_value(tok[k + 1]) >= 0)) {
                free(clean);
                return NULL;
            }
            continue;
        }
        clean[m++] = tok[k];
    }
    clean[m] = '\0';
    return clean;
}

/* A hexadecimal, octal or binary integer ("0x1f", "0o17", "0b11": no sign allowed). */
static int t_int_based(const char *d, bool sign, long long *iv)
{
    int base = d[1] == 'x' ? 16 : d[1] == 'o' ? 8 : 2;

    if (sign || d[2] == '\0') {
        return -1;
    }
    for (const char *q = d + 2; *q != '\0'; q++) {
        int h = cfw_hex_value(*q);
        if (h < 0 || h >= base) {
            return -1;
        }
    }
    errno = 0;
    *iv = strtoll(d + 2, NULL, base);
    return errno != 0 ? -1 : 0;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* One or more digits at q: the first character after them, or NULL when there is none. */
static const char *t_digits(const char *q)
{
    if (!is_digit(*q)) {
        return NULL;
    }
    while (is_digit(*q)) {
        q++;
    }
    return q;
}

/* What follows a float's integer part: [. digits] [e [sign] digits], and nothing else. */
static int t_float_tail(const char *q)
{
    if (*q == '.') {
        q = t_digits(q + 1);
        if (q == NULL) {
            return -1;
        }
    }
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') {
            q++;
        }
        q = t_digits(q);
        if (q == NULL) {
            return -1;
        }
    }
    return *q == '\0' ? 0 : -1;
}

/* A decimal integer or a float: the sign is already skipped (d), clean still has it. */
static struct cfw_bundle_value *t_decimal(const char *clean, const char *d, int line, int col)
{
    const char *q = t_digits(d);
    struct cfw_bundle_value *v;
    long long iv;

    /* int: digits without a leading zero; float: int [. digits] [e [sign] digits] */
    if (q == NULL || (d[0] == '0' && is_digit(d[1]))) {
        return NULL;
    }
    if (*q != '\0') {
        return t_float_tail(q) == 0 ? value_new(CFW_BUNDLE_V_FLOAT, line, col) : NULL;
    }
    errno = 0;
    iv = strtoll(clean, NULL, 10);
    if (errno != 0) {
        return NULL;
    }
    v = value_new(CFW_BUNDLE_V_INT, line, col);
    v->i = iv;
    return v;
}

/* Integers (decimal, hexadecimal, octal, binary) and floats (inf and nan too); NULL when the
 * token is neither. */
static struct cfw_bundle_value *t_number(const char *tok, size_t n, int line, int col)
{
    char *clean = t_strip_underscores(tok, n);
    const char *d = clean;
    struct cfw_bundle_value *v = NULL;
    bool sign = false;
    long long iv;

    if (clean == NULL) {
        return NULL;
    }
    if (d[0] == '+' || d[0] == '-') {
        sign = true;
        d++;
    }
    if (d[0] == '0' && (d[1] == 'x' || d[1] == 'o' || d[1] == 'b')) {
        if (t_int_based(d, sign, &iv) == 0) {
            v = value_new(CFW_BUNDLE_V_INT, line, col);
            v->i = iv;
        }
    } else if (strcmp(d, "inf") == 0 || strcmp(d, "nan") == 0) {
        v = value_new(CFW_BUNDLE_V_FLOAT, line, col);
    } else {
        v = t_decimal(clean, d, line, col);
    }
    free(clean);
    return v;
}

/* A bare token that is not a value: a word is most likely a string without its quotes. */
static int t_bad_scalar(struct cur *c, int line, int col, const char *tok)
{
    if ((tok[0] >= 'A' && tok[0] <= 'Z') || (tok[0] >= 'a' && tok[0] <= 'z')) {
        return fail_at(c, line, col,
                       "expected a value, found '%s' (strings must be quoted: \"%s\")", tok, tok);
    }
    return fail_at(c, line, col, "malformed number '%s'", tok);
}

/* Numbers, booleans and dates: bare tokens classified after reading. */
static int t_scalar(struct cur *c, struct cfw_bundle_value **out)
{
    int line = c->line, col = cur_col(c);
    size_t start = c->pos, n = t_bare_token(c);
    struct cfw_bundle_value *v = NULL;
    char *tok;

    if (n == 0) {
        char w[32];
        return fail_at(c, line, col,
                       "expected a value (string, number, boolean, date, array or inline "
                       "table), found %s",
                       what_here(c, w, sizeof(w)));
    }
    tok = cfw_xstrndup(c->s + start, n);
    if (strcmp(tok, "true") == 0 || strcmp(tok, "false") == 0) {
        v = value_new(CFW_BUNDLE_V_BOOL, line, col);
        v->b = tok[0] == 't';
    } else if (t_is_datetime(tok, n)) {
        if (t_datetime(c, tok, n, line, col, &v) != 0) {
            free(tok);
            return -1;
        }
    } else if ((v = t_number(tok, n, line, col)) == NULL) {
        int r = t_bad_scalar(c, line, col, tok);
        free(tok);
        return r;
    }
    v->str = tok;
    *out = v;
    return 0;
}

/* Sets parts = v inside table t, creating dotted tables; v is consumed either way. */
static int t_set(struct cur *c, struct cfw_bundle_value *t, char **parts, size_t n,
                 struct cfw_bundle_value *v, int line, int col)
{
    for (size_t k = 0; k + 1 < n; k++) {
        struct cfw_bundle_value *child = table_find(t, parts[k]);
        if (child == NULL) {
            child = value_new(CFW_BUNDLE_V_TABLE, line, col);
            child->flags = TF_DOTTED;
            value_push(t, cfw_xstrdup(parts[k]), child);
        } else if (child->type != CFW_BUNDLE_V_TABLE || (child->flags & TF_INLINE)) {
            char *key = join_key(parts, k + 1);
            int r = fail_at(c, line, col,
                            "cannot add keys to '%s': it is already defined as %s "
                            "at line %d",
                            key,
                            child->type == CFW_BUNDLE_V_TABLE ? "an inline table"
                                                              : vtype_name(child->type),
                            child->line);
            free(key);
            cfw_bundle_value_free(v);
            return r;
        }
        t = child;
    }
    {
        struct cfw_bundle_value *old = table_find(t, parts[n - 1]);
        if (old != NULL) {
            char *key = join_key(parts, n);
            int r = fail_at(c, line, col, "duplicate key '%s' (first defined at line %d)", key,
                            old->line);
            free(key);
            cfw_bundle_value_free(v);
            return r;
        }
    }
    value_push(t, cfw_xstrdup(parts[n - 1]), v);
    return 0;
}

static int t_array(struct cur *c, struct cfw_bundle_value **out)
{
    struct cfw_bundle_value *a = value_new(CFW_BUNDLE_V_ARRAY, c->line, cur_col(c));
    char w[32];

    a->flags = TF_INLINE;
    adv(c); /* [ */
    for (;;) {
        struct cfw_bundle_value *item = NULL;

        t_skip_all(c);
        if (peek(c) == ']') {
            adv(c);
            break;
        }
        if (t_value(c, &item) != 0) {
            cfw_bundle_value_free(a);
            return -1;
        }
        value_push(a, NULL, item);
        t_skip_all(c);
        if (peek(c) == ',') {
            adv(c);
            continue;
        }
        if (peek(c) == ']') {
            adv(c);
            break;
        }
        cfw_bundle_value_free(a);
        return FAIL(c, "expected ',' or ']' in an array, found %s", what_here(c, w, sizeof(w)));
    }
    *out = a;
    return 0;
}

static int t_inline_table(struct cur *c, struct cfw_bundle_value **out)
{
    struct cfw_bundle_value *t = value_new(CFW_BUNDLE_V_TABLE, c->line, cur_col(c));
    char w[32];

    adv(c); /* { */
    for (;;) {
        char *parts[MAX_KEY_PARTS];
        size_t n = 0;
        struct cfw_bundle_value *v = NULL;
        int line, col;

        t_skip_all(c);
        if (peek(c) == '}') {
            adv(c);
            break;
        }
        line = c->line;
        col = cur_col(c);
        if (t_key(c, parts, &n) != 0) {
            cfw_bundle_value_free(t);
            return -1;
        }
        t_skip_ws(c);
        if (peek(c) != '=') {
            free_parts(parts, n);
            cfw_bundle_value_free(t);
            return FAIL(c, "expected '=' after a key, found %s", what_here(c, w, sizeof(w)));
        }
        adv(c);
        t_skip_ws(c);
        if (t_value(c, &v) != 0 || t_set(c, t, parts, n, v, line, col) != 0) {
            free_parts(parts, n);
            cfw_bundle_value_free(t);
            return -1;
        }
        free_parts(parts, n);
        t_skip_all(c);
        if (peek(c) == ',') {
            adv(c);
            continue;
        }
        if (peek(c) == '}') {
            adv(c);
            break;
        }
        cfw_bundle_value_free(t);
        return FAIL(c, "expected ',' or '}' in an inline table, found %s",
                    what_here(c, w, sizeof(w)));
    }
    /* Everything inside an inline table is closed to later additions. */
    t->flags = TF_INLINE;
    *out = t;
    return 0;
}

static int t_value(struct cur *c, struct cfw_bundle_value **out)
{
    char ch = peek(c);
    int line = c->line, col = cur_col(c), r;

    if (c->depth >= CFW_BUNDLE_MAX_NESTING) {
        return FAIL(c, "values nested more than %d deep", CFW_BUNDLE_MAX_NESTING);
    }
    c->depth++;
    if (ch == '"' || ch == '\'') {
        char *s = NULL;
        r = t_string(c, &s);
        if (r == 0) {
            *out = value_new(CFW_BUNDLE_V_STRING, line, col);
            (*out)->str = s;
        }
    } else if (ch == '[') {
        r = t_array(c, out);
    } else if (ch == '{') {
        r = t_inline_table(c, out);
    } else {
        r = t_scalar(c, out);
    }
    c->depth--;
    return r;
}

/* [a.b] or [[a.b]]: finds or creates the table and makes it current. */
static int t_header(struct cur *c, struct cfw_bundle_value *root, struct cfw_bundle_value **cur)
{
    char *parts[MAX_KEY_PARTS];
    size_t n = 0;
    bool aot = peek_at(c, 1) == '[';
    int line = c->line, col = cur_col(c);
    struct cfw_bundle_value *t = root, *child;
    char w[32];

    advn(c, aot ? 2 : 1);
    if (t_key(c, parts, &n) != 0) {
        return -1;
    }
    t_skip_ws(c);
    if (peek(c) != ']' || (aot && peek_at(c, 1) != ']')) {
        free_parts(parts, n);
        return FAIL(c, "expected '%s' to close the table header, found %s", aot ? "]]" : "]",
                    what_here(c, w, sizeof(w)));
    }
    advn(c, aot ? 2 : 1);
    for (size_t k = 0; k + 1 < n; k++) {
        child = table_find(t, parts[k]);
        if (child == NULL) {
            child = value_new(CFW_BUNDLE_V_TABLE, line, col);
            child->flags = TF_IMPLICIT;
            value_push(t, cfw_xstrdup(parts[k]), child);
        } else if (child->type == CFW_BUNDLE_V_ARRAY && (child->flags & TF_AOT) && child->n > 0) {
            child = child->items[child->n - 1];
        } else if (child->type != CFW_BUNDLE_V_TABLE || (child->flags & TF_INLINE)) {
            char *key = join_key(parts, k + 1);
            int r = fail_at(c, line, col, "'%s' is already defined as %s at line %d", key,
                            child->type == CFW_BUNDLE_V_TABLE ? "an inline table"
                                                              : vtype_name(child->type),
                            child->line);
            free(key);
            free_parts(parts, n);
            return r;
        }
        t = child;
    }
    child = table_find(t, parts[n - 1]);
    if (aot) {
        struct cfw_bundle_value *elem;
        if (child == NULL) {
            child = value_new(CFW_BUNDLE_V_ARRAY, line, col);
            child->flags = TF_AOT;
            value_push(t, cfw_xstrdup(parts[n - 1]), child);
        } else if (child->type != CFW_BUNDLE_V_ARRAY || !(child->flags & TF_AOT)) {
            char *key = join_key(parts, n);
            int r = fail_at(c, line, col,
                            "cannot define [[%s]]: '%s' is already defined as %s at line %d", key,
                            key, vtype_name(child->type), child->line);
            free(key);
            free_parts(parts, n);
            return r;
        }
        elem = value_new(CFW_BUNDLE_V_TABLE, line, col);
        elem->flags = TF_EXPLICIT;
        value_push(child, NULL, elem);
        *cur = elem;
    } else {
        if (child == NULL) {
            child = value_new(CFW_BUNDLE_V_TABLE, line, col);
            child->flags = TF_EXPLICIT;
            value_push(t, cfw_xstrdup(parts[n - 1]), child);
        } else if (child->type != CFW_BUNDLE_V_TABLE || (child->flags & ~TF_IMPLICIT) != 0) {
            char *key = join_key(parts, n);
            int r = fail_at(c, line, col, "table [%s] is defined twice (first at line %d)", key,
                            child->line);
            free(key);
            free_parts(parts, n);
            return r;
        } else {
            child->flags = TF_EXPLICIT;
            child->line = line;
            child->col = col;
        }
        *cur = child;
    }
    free_parts(parts, n);
    return t_expect_eol(c, "a table header");
}

struct cfw_bundle_value *cfw_bundle_toml_parse(const char *text, size_t len, const char *file,
                                               struct cfw_err *err)
{
    struct cur c = {.s = text, .len = len, .line = 1, .file = file, .err = err};
    struct cfw_bundle_value *root = value_new(CFW_BUNDLE_V_TABLE, 1, 1);
    struct cfw_bundle_value *cur = root;

    if (memchr(text, '\0', len) != NULL) {
        const char *z = memchr(text, '\0', len);
        c.pos = (size_t)(z - text);
        for (size_t k = 0; k < c.pos; k++) {
            if (text[k] == '\n') {
                c.line++;
                c.line_start = k + 1;
            }
        }
        FAIL(&c, "NUL byte in the file");
        goto fail;
    }
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        c.pos = 3;
        c.line_start = 3;
    }
    while (!at_end(&c)) {
        char ch;

        t_skip_ws(&c);
        ch = peek(&c);
        if (ch == '#') {
            t_skip_comment(&c);
            if (t_expect_eol(&c, "a comment") != 0) {
                goto fail;
            }
        } else if (t_at_newline(&c)) {
            t_eat_newline(&c);
        } else if (at_end(&c)) {
            break;
        } else if (ch == '[') {
            if (t_header(&c, root, &cur) != 0) {
                goto fail;
            }
        } else {
            char *parts[MAX_KEY_PARTS];
            size_t n = 0;
            struct cfw_bundle_value *v = NULL;
            int line = c.line, col = cur_col(&c);
            char w[32];

            if (t_key(&c, parts, &n) != 0) {
                goto fail;
            }
            t_skip_ws(&c);
            if (peek(&c) != '=') {
                free_parts(parts, n);
                FAIL(&c, "expected '=' after a key, found %s", what_here(&c, w, sizeof(w)));
                goto fail;
            }
            adv(&c);
            t_skip_ws(&c);
            if (t_value(&c, &v) != 0) {
                free_parts(parts, n);
                goto fail;
            }
            if (t_set(&c, cur, parts, n, v, line, col) != 0) {
                free_parts(parts, n);
                goto fail;
            }
            free_parts(parts, n);
            if (t_expect_eol(&c, "a value") != 0) {
                goto fail;
            }
        }
    }
    return root;
fail:
    cfw_bundle_value_free(root);
    return NULL;
}

/* ======================================================================================== */
/* JSON with comments and trailing commas                                                   */
/* ======================================================================================== */

static int j_skip(struct cur *c)
{
    for (;;) {
        char ch = peek(c);
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            adv(c);
        } else if (ch == '/' && peek_at(c, 1) == '/') {
            while (!at_end(c) && peek(c) != '\n') {
                adv(c);
            }
        } else if (ch == '/' && peek_at(c, 1) == '*') {
            int line = c->line, col = cur_col(c);
            advn(c, 2);
            while (!(peek(c) == '*' && peek_at(c, 1) == '/')) {
                if (at_end(c)) {
                    return fail_at(c, line, col, "unterminated /* comment");
                }
                adv(c);
            }
            advn(c, 2);
        } else {
            return 0;
        }
    }
}

/* A \uXXXX escape, with its low surrogate when it is a high one; the cursor is after the 'u'. */
static int j_unicode(struct cur *c, struct cfw_buf *b, int eline, int ecol)
{
    uint32_t cp = 0, lo = 0;

    if (read_hex(c, 4, &cp) != 0) {
        return -1;
    }
    if (cp >= 0xd800 && cp <= 0xdbff && peek(c) == '\\' && peek_at(c, 1) == 'u') {
        advn(c, 2);
        if (read_hex(c, 4, &lo) != 0) {
            return -1;
        }
        if (lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else {
            return fail_at(c, eline, ecol, "unpaired UTF-16 surrogate in \\u escape");
        }
    }
    if (put_utf8(b, cp) != 0) {
        return fail_at(c, eline, ecol, "unpaired UTF-16 surrogate in \\u escape");
    }
    return 0;
}

/* A backslash escape in a JSON string; the cursor is on the backslash. */
static int j_escape(struct cur *c, struct cfw_buf *b)
{
    int eline = c->line, ecol = cur_col(c);
    unsigned char ch;

    adv(c);
    ch = (unsigned char)peek(c);
    adv(c);
    switch (ch) {
    case '"':
    case '\\':
    case '/':
        cfw_buf_putc(b, (char)ch);
        break;
    case 'b':
        cfw_buf_putc(b, '\b');
        break;
    case 'f':
        cfw_buf_putc(b, '\f');
        break;
    case 'n':
        cfw_buf_putc(b, '\n');
        break;
    case 'r':
        cfw_buf_putc(b, '\r');
        break;
    case 't':
        cfw_buf_putc(b, '\t');
        break;
    case 'u':
        return j_unicode(c, b, eline, ecol);
    default:
        return fail_at(c, eline, ecol, "unknown escape sequence in a string");
    }
    return 0;
}

static int j_string(struct cur *c, char **out)
{
    struct cfw_buf b;
    int line = c->line, col = cur_col(c);

    cfw_buf_init(&b, CFW_BUNDLE_MAX_CONFIG_BYTES);
    adv(c); /* " */
    for (;;) {
        unsigned char ch = (unsigned char)peek(c);
        if (at_end(c)) {
            cfw_buf_free(&b);
            return fail_at(c, line, col, "unterminated string");
        }
        if (ch == '"') {
            adv(c);
            break;
        }
        if (ch < 0x20) {
            cfw_buf_free(&b);
            return FAIL(c, "control character 0x%02x inside a string (escape it)", ch);
        }
        if (ch == '\\') {
            if (j_escape(c, &b) != 0) {
                cfw_buf_free(&b);
                return -1;
            }
            continue;
        }
        cfw_buf_putc(&b, (char)ch);
        adv(c);
    }
    *out = cfw_buf_take(&b);
    return 0;
}

static int j_value(struct cur *c, struct cfw_bundle_value **out);

static int j_container(struct cur *c, struct cfw_bundle_value **out, bool object)
{
    struct cfw_bundle_value *v =
        value_new(object ? CFW_BUNDLE_V_TABLE : CFW_BUNDLE_V_ARRAY, c->line, cur_col(c));
    char close = object ? '}' : ']';
    char w[32];

    adv(c);
    for (;;) {
        struct cfw_bundle_value *item = NULL;
        char *key = NULL;

        if (j_skip(c) != 0) {
            goto fail;
        }
        if (peek(c) == close) {
            adv(c);
            break;
        }
        if (object) {
            if (peek(c) != '"') {
                FAIL(c, "expected a quoted key or '}', found %s", what_here(c, w, sizeof(w)));
                goto fail;
            }
            if (j_string(c, &key) != 0) {
                goto fail;
            }
            if (j_skip(c) != 0) {
                free(key);
                goto fail;
            }
            if (peek(c) != ':') {
                free(key);
                FAIL(c, "expected ':' after a key, found %s", what_here(c, w, sizeof(w)));
                goto fail;
            }
            adv(c);
        }
        if (j_skip(c) != 0 || j_value(c, &item) != 0) {
            free(key);
            goto fail;
        }
        value_push(v, key, item);
        if (j_skip(c) != 0) {
            goto fail;
        }
        if (peek(c) == ',') {
            adv(c);
            continue;
        }
        if (peek(c) == close) {
            adv(c);
            break;
        }
        FAIL(c, "expected ',' or '%c', found %s", close, what_here(c, w, sizeof(w)));
        goto fail;
    }
    *out = v;
    return 0;
fail:
    cfw_bundle_value_free(v);
    return -1;
}

/* One or more digits at the cursor ("malformed number" when there is none). */
static int j_digits(struct cur *c)
{
    if (!is_digit(peek(c))) {
        return FAIL(c, "malformed number");
    }
    while (is_digit(peek(c))) {
        adv(c);
    }
    return 0;
}

/* A JSON number; an integer beyond long long is kept as a float (its text is kept either way). */
static int j_number(struct cur *c, int line, int col, struct cfw_bundle_value **out)
{
    size_t start = c->pos;
    bool isfloat = false;

    if (peek(c) == '-') {
        adv(c);
    }
    if (peek(c) == '0') {
        adv(c);
    } else if (j_digits(c) != 0) {
        return -1;
    }
    if (peek(c) == '.') {
        isfloat = true;
        adv(c);
        if (j_digits(c) != 0) {
            return -1;
        }
    }
    if (peek(c) == 'e' || peek(c) == 'E') {
        isfloat = true;
        adv(c);
        if (peek(c) == '+' || peek(c) == '-') {
            adv(c);
        }
        if (j_digits(c) != 0) {
            return -1;
        }
    }
    *out = value_new(isfloat ? CFW_BUNDLE_V_FLOAT : CFW_BUNDLE_V_INT, line, col);
    (*out)->str = cfw_xstrndup(c->s + start, c->pos - start);
    if (!isfloat) {
        errno = 0;
        (*out)->i = strtoll((*out)->str, NULL, 10);
        if (errno != 0) {
            (*out)->type = CFW_BUNDLE_V_FLOAT;
        }
    }
    return 0;
}

/* true, false or null at the cursor: 0 with *out set, 1 when the text is none of them. */
static int j_literal(struct cur *c, int line, int col, struct cfw_bundle_value **out)
{
    size_t left = c->len - c->pos;

    if (left >= 4 && strncmp(c->s + c->pos, "true", 4) == 0) {
        advn(c, 4);
        *out = value_new(CFW_BUNDLE_V_BOOL, line, col);
        (*out)->b = true;
    } else if (left >= 5 && strncmp(c->s + c->pos, "false", 5) == 0) {
        advn(c, 5);
        *out = value_new(CFW_BUNDLE_V_BOOL, line, col);
    } else if (left >= 4 && strncmp(c->s + c->pos, "null", 4) == 0) {
        advn(c, 4);
        *out = value_new(CFW_BUNDLE_V_NULL, line, col);
    } else {
        return 1;
    }
    return 0;
}

static int j_value(struct cur *c, struct cfw_bundle_value **out)
{
    char ch = peek(c);
    int line = c->line, col = cur_col(c), r;
    char w[32];

    if (c->depth >= CFW_BUNDLE_MAX_NESTING) {
        return FAIL(c, "values nested more than %d deep", CFW_BUNDLE_MAX_NESTING);
    }
    c->depth++;
    if (ch == '{' || ch == '[') {
        r = j_container(c, out, ch == '{');
    } else if (ch == '"') {
        char *s = NULL;
        r = j_string(c, &s);
        if (r == 0) {
            *out = value_new(CFW_BUNDLE_V_STRING, line, col);
            (*out)->str = s;
        }
    } else if (j_literal(c, line, col, out) == 0) {
        r = 0;
    } else if (ch == '-' || is_digit(ch)) {
        r = j_number(c, line, col, out);
    } else {
        r = FAIL(c, "expected a JSON value, found %s", what_here(c, w, sizeof(w)));
    }
    c->depth--;
    return r;
}

struct cfw_bundle_value *cfw_bundle_jsonc_parse(const char *text, size_t len, const char *file,
                                                struct cfw_err *err)
{
    struct cur c = {.s = text, .len = len, .line = 1, .file = file, .err = err};
    struct cfw_bundle_value *v = NULL;
    char w[32];

    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        c.pos = 3;
        c.line_start = 3;
    }
    if (j_skip(&c) != 0 || j_value(&c, &v) != 0) {
        return NULL;
    }
    if (j_skip(&c) != 0) {
        cfw_bundle_value_free(v);
        return NULL;
    }
    if (!at_end(&c)) {
        FAIL(&c, "unexpected %s after the top-level value", what_here(&c, w, sizeof(w)));
        cfw_bundle_value_free(v);
        return NULL;
    }
    return v;
}

/* ======================================================================================== */
/* Module-rule globs (wrangler uses glob-to-regexp with globstar)                           */
/* ======================================================================================== */

enum gtok { G_LIT, G_STAR, G_GLOBSTAR };

struct gpat {
    enum gtok kind;
    char ch;
};

static bool g_match(const struct gpat *p, size_t np, const char *s)
{
    if (np == 0) {
        return *s == '\0';
    }
    switch (p->kind) {
    case G_LIT:
        return *s == p->ch && g_match(p + 1, np - 1, s + 1);
    case G_STAR:
        /* [^/]* */
        for (size_t k = 0;; k++) {
            if (g_match(p + 1, np - 1, s + k)) {
                return true;
            }
            if (s[k] == '\0' || s[k] == '/') {
                return false;
            }
        }
    case G_GLOBSTAR:
        /* ((?:[^/]*(?:/|$))*): empty, up to and including any '/', or everything. */
        if (g_match(p + 1, np - 1, s)) {
            return true;
        }
        for (size_t k = 0; s[k] != '\0'; k++) {
            if ((s[k] == '/' || s[k + 1] == '\0') && g_match(p + 1, np - 1, s + k + 1)) {
                return true;
            }
        }
        return false;
    }
    return false;
}

bool cfw_bundle_glob_match(const char *glob, const char *path)
{
    size_t n = strlen(glob), np = 0;
    struct gpat *p = cfw_xcalloc(n + 1, sizeof(*p));
    bool r;

    for (size_t i = 0; i < n; i++) {
        if (glob[i] == '*') {
            char prev = i > 0 ? glob[i - 1] : '\0';
            size_t stars = 1;
            char next;
            while (glob[i + 1] == '*') {
                stars++;
                i++;
            }
            next = glob[i + 1];
            if (stars > 1 && (prev == '/' || prev == '\0') && (next == '/' || next == '\0')) {
                p[np++].kind = G_GLOBSTAR;
                if (next == '/') {
                    i++;
                }
            } else {
                p[np++].kind = G_STAR;
            }
        } else {
            p[np].kind = G_LIT;
            p[np++].ch = glob[i];
        }
    }
    r = g_match(p, np, path);
    free(p);
    return r;
}

/* ======================================================================================== */
/* Loading the configuration                                                                */
/* ======================================================================================== */

char *bundle_join(const char *dir, const char *rel)
{
    size_t n;

    if (rel == NULL || rel[0] == '\0' || strcmp(rel, ".") == 0) {
        return cfw_xstrdup(dir == NULL || dir[0] == '\0' ? "." : dir);
    }
    if (dir == NULL || dir[0] == '\0' || strcmp(dir, ".") == 0 || strcmp(dir, "./") == 0) {
        return cfw_xstrdup(rel);
    }
    n = strlen(dir);
    return cfw_xasprintf("%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", rel);
}

void cfw_bundle_config_clear(struct cfw_bundle_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    free(cfg->path);
    free(cfg->main);
    free(cfg->base_dir);
    free(cfg->compat_date);
    for (size_t k = 0; k < cfg->n_compat_flags; k++) {
        free(cfg->compat_flags[k]);
    }
    free(cfg->compat_flags);
    for (size_t k = 0; k < cfg->n_rules; k++) {
        free(cfg->rules[k].type);
        for (size_t g = 0; g < cfg->rules[k].n_globs; g++) {
            free(cfg->rules[k].globs[g]);
        }
        free(cfg->rules[k].globs);
    }
    free(cfg->rules);
    for (size_t k = 0; k < cfg->n_py_excludes; k++) {
        free(cfg->py_excludes[k]);
    }
    free(cfg->py_excludes);
    free(cfg->env_note);
    memset(cfg, 0, sizeof(*cfg));
}

static int type_error(struct cfw_err *err, const char *file, const struct cfw_bundle_value *v,
                      const char *key, const char *want)
{
    cfw_err_set(err, "%s:%d:%d: \"%s\" must be %s, found %s", file, v->line, v->col, key, want,
                vtype_name(v->type));
    return -1;
}

/* Copies an array of strings; -1 with err when the value is not one. */
static int string_array(const struct cfw_bundle_value *v, const char *file, const char *key,
                        char ***out, size_t *n, struct cfw_err *err)
{
    if (v->type != CFW_BUNDLE_V_ARRAY) {
        return type_error(err, file, v, key, "an array of strings");
    }
    for (size_t k = 0; k < v->n; k++) {
        if (v->items[k]->type != CFW_BUNDLE_V_STRING) {
            return type_error(err, file, v->items[k], key, "an array of strings");
        }
    }
    *out = cfw_xcalloc(v->n + 1, sizeof(char *));
    for (size_t k = 0; k < v->n; k++) {
        (*out)[k] = cfw_xstrdup(v->items[k]->str);
    }
    *n = v->n;
    return 0;
}

static int load_rules(const struct cfw_bundle_value *v, const char *file,
                      struct cfw_bundle_config *cfg, struct cfw_err *err)
{
    if (v->type != CFW_BUNDLE_V_ARRAY) {
        return type_error(err, file, v, "rules", "an array of tables");
    }
    cfg->rules = cfw_xcalloc(v->n + 1, sizeof(*cfg->rules));
    for (size_t k = 0; k < v->n; k++) {
        const struct cfw_bundle_value *r = v->items[k], *t, *g, *f;
        struct cfw_bundle_rule *rule = &cfg->rules[cfg->n_rules];

        if (r->type != CFW_BUNDLE_V_TABLE) {
            return type_error(err, file, r, "rules", "an array of tables");
        }
        t = table_find(r, "type");
        g = table_find(r, "globs");
        f = table_find(r, "fallthrough");
        if (t == NULL || t->type != CFW_BUNDLE_V_STRING) {
            cfw_err_set(err, "%s:%d:%d: a module rule needs a \"type\" string", file, r->line,
                        r->col);
            return -1;
        }
        if (g == NULL) {
            cfw_err_set(err, "%s:%d:%d: a module rule needs \"globs\"", file, r->line, r->col);
            return -1;
        }
        if (string_array(g, file, "globs", &rule->globs, &rule->n_globs, err) != 0) {
            return -1;
        }
        cfg->n_rules++;
        rule->type = cfw_xstrdup(t->str);
        if (f != NULL) {
            if (f->type != CFW_BUNDLE_V_BOOL) {
                return type_error(err, file, f, "fallthrough", "a boolean");
            }
            rule->fallthrough = f->b;
        }
    }
    return 0;
}

static const struct cfw_bundle_value *pick(const struct cfw_bundle_value *root,
                                           const struct cfw_bundle_value *envt, const char *key)
{
    const struct cfw_bundle_value *v = envt != NULL ? table_find(envt, key) : NULL;
    return v != NULL ? v : table_find(root, key);
}

static int config_from_tree(const struct cfw_bundle_value *root, const char *env,
                            struct cfw_bundle_config *cfg, struct cfw_err *err)
{
    const char *file = cfg->path;
    const struct cfw_bundle_value *envt = NULL, *v;

    if (root->type != CFW_BUNDLE_V_TABLE) {
        cfw_err_set(err, "%s:%d:%d: the configuration must be a table/object", file, root->line,
                    root->col);
        return -1;
    }
    if (env != NULL) {
        const struct cfw_bundle_value *envs = table_find(root, "env");
        if (envs != NULL && envs->type == CFW_BUNDLE_V_TABLE) {
            envt = table_find(envs, env);
            if (envt == NULL) {
                struct cfw_buf names;
                cfw_buf_init(&names, CFW_BUF_MAX_BUILT);
                for (size_t k = 0; k < envs->n; k++) {
                    cfw_buf_printf(&names, "%s\"%s\"", k ? ", " : "", envs->keys[k]);
                }
                cfw_err_set(err,
                            "%s: No environment found in configuration with name \"%s\". The "
                            "available configured environment names are: [%s]",
                            file, env, names.data ? names.data : "");
                cfw_buf_free(&names);
                return -1;
            }
            if (envt->type != CFW_BUNDLE_V_TABLE) {
                return type_error(err, file, envt, "env", "a table of environments");
            }
        } else {
            cfg->env_note = cfw_xasprintf("No environment found in configuration with name "
                                          "\"%s\"; using the top-level configuration",
                                          env);
        }
    }
    if ((v = pick(root, envt, "main")) != NULL) {
        if (v->type != CFW_BUNDLE_V_STRING) {
            return type_error(err, file, v, "main", "a string");
        }
        cfg->main = cfw_xstrdup(v->str);
        cfg->main_line = v->line;
        cfg->main_col = v->col;
    }
    if ((v = pick(root, envt, "base_dir")) != NULL) {
        if (v->type != CFW_BUNDLE_V_STRING) {
            return type_error(err, file, v, "base_dir", "a string");
        }
        cfg->base_dir = cfw_xstrdup(v->str);
    }
    if ((v = pick(root, envt, "compatibility_date")) != NULL) {
        if (v->type != CFW_BUNDLE_V_STRING && v->type != CFW_BUNDLE_V_DATETIME) {
            return type_error(err, file, v, "compatibility_date", "a string");
        }
        cfg->compat_date = cfw_xstrdup(v->str);
    }
    if ((v = pick(root, envt, "compatibility_flags")) != NULL) {
        if (string_array(v, file, "compatibility_flags", &cfg->compat_flags, &cfg->n_compat_flags,
                         err) != 0) {
            return -1;
        }
        cfg->flags_line = v->line;
        cfg->flags_col = v->col;
    }
    if ((v = pick(root, envt, "no_bundle")) != NULL) {
        if (v->type != CFW_BUNDLE_V_BOOL) {
            return type_error(err, file, v, "no_bundle", "a boolean");
        }
        cfg->no_bundle = v->b;
    }
    if ((v = pick(root, envt, "rules")) != NULL && load_rules(v, file, cfg, err) != 0) {
        return -1;
    }
    if ((v = pick(root, envt, "python_modules")) != NULL) {
        const struct cfw_bundle_value *ex;
        if (v->type != CFW_BUNDLE_V_TABLE) {
            return type_error(err, file, v, "python_modules", "a table");
        }
        if ((ex = table_find(v, "exclude")) != NULL &&
            string_array(ex, file, "python_modules.exclude", &cfg->py_excludes, &cfg->n_py_excludes,
                         err) != 0) {
            return -1;
        }
    }
    if (cfg->py_excludes == NULL) {
        cfg->py_excludes = cfw_xcalloc(2, sizeof(char *));
        cfg->py_excludes[0] = cfw_xstrdup("**/*.pyc");
        cfg->n_py_excludes = 1;
    }
    /* wrangler: rawEnv.build ?? topLevel.build */
    if ((v = pick(root, envt, "build")) != NULL && v->type == CFW_BUNDLE_V_TABLE) {
        const struct cfw_bundle_value *up = table_find(v, "upload");
        if (up != NULL) {
            cfg->build_upload = true;
            cfg->upload_line = up->line;
            cfg->upload_col = up->col;
        }
    }
    return 0;
}

int cfw_bundle_config_load(const char *dir, const char *env, struct cfw_bundle_config *cfg,
                           struct cfw_err *err)
{
    static const char *const names[] = {"wrangler.json", "wrangler.jsonc", "wrangler.toml"};
    struct cfw_bundle_value *root = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        char *p = bundle_join(dir, names[k]);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            cfg->path = p;
            break;
        }
        free(p);
    }
    if (cfg->path == NULL) {
        cfw_err_set(err, "%s: no wrangler.json, wrangler.jsonc or wrangler.toml found", dir);
        return -1;
    }
    if ((text = cfw_fs_read_file(cfg->path, CFW_BUNDLE_MAX_CONFIG_BYTES, &len, err)) == NULL) {
        goto out;
    }
    if (strlen(cfg->path) > 5 && strcmp(cfg->path + strlen(cfg->path) - 5, ".toml") == 0) {
        root = cfw_bundle_toml_parse(text, len, cfg->path, err);
    } else {
        root = cfw_bundle_jsonc_parse(text, len, cfg->path, err);
    }
    if (root == NULL) {
        goto out;
    }
    rc = config_from_tree(root, env, cfg, err);
out:
    cfw_bundle_value_free(root);
    free(text);
    if (rc != 0) {
        cfw_bundle_config_clear(cfg);
    }
    return rc;
}
