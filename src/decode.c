/* Decoder: records to events (Cloudflare JSON log shapes, text) and the text-derived fields. */
#include "cfwatchd/decode.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfwatchd/json.h"
#include "cfwatchd/pytb.h"
#include "decode_int.h"

/* Caps on what outside input can make the decoder hold or emit. */
#define CFW_DECODE_MAX_JSON (1024u * 1024u) /* larger JSON records are decoded as text */
#define CFW_DECODE_MAX_DEPTH 64u            /* deeper JSON records are decoded as text */
#define CFW_DECODE_MAX_TEXT (1024u * 1024u) /* bytes of one event's text */
#define CFW_DECODE_MAX_FIELD 1024u          /* bytes of one field value */
#define CFW_DECODE_MAX_EVENTS 1000u         /* events from one record */
#define CFW_DECODE_MAX_DIGITS 18u           /* longer numbers are not taken as fields */
#define CFW_DECODE_MAX_PATH 512u            /* bytes of a traceback frame's file name */
#define CFW_DECODE_MAX_NAME 256u            /* bytes of a quoted module or import name */

/* Epoch milliseconds of 9999-12-31T23:59:59.999Z: later times are not believed. */
#define MAX_TIME_MS 253402300799999LL

static const char REPLACEMENT[] = "\xEF\xBF\xBD"; /* U+FFFD */

/* ---- bytes and UTF-8 ---- */

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha_(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_word(unsigned char c)
{
    return is_alpha_(c) || is_digit(c);
}

/*
 * Copies s[0..n) into out as valid UTF-8 of at most room bytes, stopping before a character that
 * does not fit: invalid bytes become U+FFFD, NUL becomes a space (with controls, so do the other
 * C0 controls and DEL). Returns the bytes written; out is not NUL-terminated.
 */
static size_t utf8_copy(char *out, size_t room, const char *s, size_t n, bool controls)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    size_t i = 0;

    while (i < n) {
        size_t run = i;
        size_t k;

        /* printable ASCII, most of any log, is copied a run at a time */
        while (run < n && p[run] >= 0x20 && p[run] < 0x7f) {
            run++;
        }
        if (run > i) {
            k = run - i <= room - o ? run - i : room - o;
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
            if (i < run) {
                break;
            }
            continue;
        }
        k = cfw_utf8_len(p + i, n - i);
        if (k == 0) {
            if (o + 3 > room) {
                break;
            }
            memcpy(out + o, REPLACEMENT, 3);
            o += 3;
            i++;
            continue;
        }
        if (o + k > room) {
            break;
        }
        if (k == 1 && (p[i] == 0 || (controls && (p[i] < 0x20 || p[i] == 0x7f)))) {
            out[o] = ' ';
        } else {
            memcpy(out + o, p + i, k);
        }
        o += k;
        i += k;
    }
    return o;
}

/*
 * Copies s[0..n) as valid UTF-8 of at most cap bytes: invalid bytes become U+FFFD, NUL becomes a
 * space. Returns a new NUL-terminated string and its length.
 */
static char *text_sanitize(const char *s, size_t n, size_t cap, size_t *outlen)
{
    size_t room = n <= cap / 3 ? n * 3 : cap;
    char *out = cfw_xmalloc(room + 1);
    size_t o = utf8_copy(out, room, s, n, false);

    out[o] = '\0';
    *outlen = o;
    return out;
}

/* Appends valid UTF-8 text to b, cut at a character boundary at b's cap; -1 when cut. */
static int buf_add(struct cfw_buf *b, const char *s, size_t n)
{
    size_t room = b->max > b->len ? b->max - b->len : 0;
    size_t take = cfw_utf8_prefix(s, n, room);

    if (take > 0 && cfw_buf_append(b, s, take) != 0) {
        return -1;
    }
    return take == n ? 0 : -1;
}

/*
 * Sets a field from outside text: valid UTF-8, control characters as spaces, at most
 * CFW_DECODE_MAX_FIELD bytes; empty values are not set. With keep, a non-empty value stays.
 */
static void field_put(struct cfw_fields *f, const char *key, const char *s, size_t n, bool keep)
{
    char buf[CFW_DECODE_MAX_FIELD + 1];
    bool absent = false;
    size_t o;

    if (s == NULL) {
        return;
    }
    if (keep) {
        const char *cur = cfw_fields_get(f, key);

        if (cur != NULL && cur[0] != '\0') {
            return;
        }
        absent = cur == NULL;
    }
    /* printable ASCII that fits, most values, is what utf8_copy would make of it: set as it is */
    o = 0;
    while (o < n && (unsigned char)s[o] >= 0x20 && (unsigned char)s[o] < 0x7f) {
        o++;
    }
    if (o < n || n > CFW_DECODE_MAX_FIELD) {
        o = utf8_copy(buf, CFW_DECODE_MAX_FIELD, s, n, true);
        s = buf;
    }
    if (o == 0) {
        return;
    }
    if (absent) {
        cfw_fields_add(f, key, s, o);
    } else {
        cfw_fields_setn(f, key, s, o);
    }
}

static void field_puts(struct cfw_fields *f, const char *key, const char *s, bool keep)
{
    if (s != NULL) {
        field_put(f, key, s, strlen(s), keep);
    }
}

/* ---- text-derived fields ---- */

static const char *line_end(const char *p, const char *end)
{
    const char *q = memchr(p, '\n', (size_t)(end - p));

    return q != NULL ? q : end;
}

static void trim(const char **p, const char **e)
{
    while (*p < *e && is_space((unsigned char)**p)) {
        (*p)++;
    }
    while (*e > *p && is_space((unsigned char)(*e)[-1])) {
        (*e)--;
    }
}

/* Reads 1..CFW_DECODE_MAX_DIGITS digits at p; returns the end or NULL. */
static const char *digits(const char *p, const char *end)
{
    const char *q = p;

    while (q < end && is_digit((unsigned char)*q) && (size_t)(q - p) <= CFW_DECODE_MAX_DIGITS) {
        q++;
    }
    if (q == p || (size_t)(q - p) > CFW_DECODE_MAX_DIGITS) {
        return NULL;
    }
    return q;
}

/* Reads a decimal such as 29.85 at p; returns the end or NULL. */
static const char *decimal(const char *p, const char *end)
{
    const char *q = digits(p, end);

    if (q != NULL && q + 1 < end && *q == '.' && is_digit((unsigned char)q[1])) {
        q = digits(q + 1, end);
    }
    return q;
}

/* The traceback grammar (pytb.h) over [p, end), which ends at or before p's line end: the
 * exception name of the stricter test. */
static size_t exception_name(const char *p, const char *end)
{
    return cfw_tb_exception_named(p, (size_t)(end - p));
}

/*
 * A frame `File "<path>", line <N>` at p (which points at `File "`), on p's line. Returns the
 * end of the number, or NULL.
 */
static const char *frame_parse(const char *p, const char *end, const char **path, size_t *path_n,
                               const char **num, size_t *num_n)
{
    struct cfw_tb_frame fr;
    size_t k = cfw_tb_frame(p, (size_t)(line_end(p, end) - p), &fr);

    if (k == 0) {
        return NULL;
    }
    *path = fr.path;
    *path_n = fr.path_n;
    *num = fr.num;
    *num_n = fr.num_n;
    return p + k;
}

static const char *frame_end(const char *p, const char *le)
{
    size_t k = cfw_tb_frame(p, (size_t)(le - p), NULL);

    return k > 0 ? p + k : NULL;
}

struct exc_line {
    const char *at;   /* start of the exception name, NULL when none */
    const char *line; /* start of its line */
    size_t name_n;
    const char *msg;
    const char *msg_end;
};

/* Where a flattened traceback's exception may start in a line: after its last frame or after
 * its `Traceback (most recent call last):` header; NULL when the line has neither. */
static const char *inline_anchor(const char *ls, const char *le)
{
    const char *anchor = NULL;
    const char *p = ls;
    const char *q;
    size_t k;

    while (p < le && (q = cfw_find(p, (size_t)(le - p), "File \"", 6)) != NULL) {
        const char *r = frame_end(q, le);

        if (r != NULL) {
            anchor = r;
            p = r;
        } else {
            p = q + 6;
        }
    }
    k = cfw_tb_header(ls, (size_t)(le - ls));
    if (k != SIZE_MAX && (anchor == NULL || ls + k > anchor)) {
        anchor = ls + k;
    }
    return anchor;
}

/* The first exception name (followed by ": ") that starts a word in [from, le) of the line
 * starting at ls; NULL when none. */
static const char *first_exception(const char *from, const char *ls, const char *le, size_t *n)
{
    const char *q = from;

    while (q < le) {
        if (!is_alpha_((unsigned char)*q) ||
            (q > ls && (is_word((unsigned char)q[-1]) || q[-1] == '.'))) {
            q++;
            continue;
        }
        *n = exception_name(q, le);
        if (*n > 0) {
            return q;
        }
        while (q < le && (is_word((unsigned char)*q) || *q == '.')) {
            q++;
        }
    }
    return NULL;
}

/* The exception line at t with a name of n bytes: where its message starts (none: le). */
static struct exc_line exc_at(const char *t, const char *ls, size_t n, const char *le)
{
    const char *msg = t + n < le && t[n] == ':' ? t + n + 1 : le;

    if (msg < le && *msg == ' ') {
        msg++;
    }
    return (struct exc_line){t, ls, n, msg, le};
}

/*
 * Finds the exception line. In text laid out as a traceback it is the line after a frame (and
 * its source and mark lines), no deeper than the frame, that the grammar's exception test takes
 * (pytb.h; the framer ends the traceback there too): `StopIteration`, a user's `Boom: x`; the
 * last traceback of a chain wins. Without one, the stricter test: the last line that starts
 * with an exception, or in a traceback flattened onto one line the first exception name after
 * its last frame.
 */
static void find_exception(const char *text, const char *end, struct exc_line *ex)
{
    struct exc_line loose = {0};
    const char *ls = text;
    size_t frame_ind = 0;
    bool after_frame = false;

    memset(ex, 0, sizeof(*ex));
    while (ls < end) {
        const char *le = line_end(ls, end);
        const char *t = ls;
        const char *anchor;
        size_t n;

        while (t < le && is_space((unsigned char)*t)) {
            t++;
        }
        if (cfw_tb_frame(t, (size_t)(le - t), NULL) > 0) {
            after_frame = true;
            frame_ind = (size_t)(t - ls);
        } else if (after_frame && t < le && (size_t)(t - ls) <= frame_ind &&
                   !cfw_tb_caret(t, (size_t)(le - t))) {
            n = cfw_tb_exception(t, (size_t)(le - t));
            if (n > 0) {
                *ex = exc_at(t, ls, n, le);
            }
            after_frame = false;
        }
        n = exception_name(t, le);
        if (n > 0) {
            loose = exc_at(t, ls, n, le);
        }
        anchor = inline_anchor(ls, le);
        if (anchor != NULL) {
            const char *q = first_exception(anchor, ls, le, &n);

            if (q != NULL) {
                loose = exc_at(q, ls, n, le);
            }
        }
        if (le == end) {
            break;
        }
        ls = le + 1;
    }
    if (ex->at == NULL) {
        *ex = loose;
    }
}

/* If [p, *e) ends with `(Code: N)` or `[code: N]`, cuts that off (and the spaces before it). */
static void strip_code_suffix(const char *p, const char **e)
{
    const char *q = *e;
    const char *open;

    if (q - p < 8 || (q[-1] != ')' && q[-1] != ']')) {
        return;
    }
    q--;
    while (q > p && is_digit((unsigned char)q[-1])) {
        q--;
    }
    if (q == *e - 1) {
        return;
    }
    while (q > p && q[-1] == ' ') {
        q--;
    }
    if (q - p < 6 || strncasecmp(q - 5, "code:", 5) != 0) {
        return;
    }
    open = q - 6;
    if (!((*open == '(' && (*e)[-1] == ')') || (*open == '[' && (*e)[-1] == ']'))) {
        return;
    }
    while (open > p && is_space((unsigned char)open[-1])) {
        open--;
    }
    *e = open;
}

/* The source line of a frame ending at fe: the rest of a flattened line, or the next line. */
static void find_import(const char *end, const char *fe, const struct exc_line *ex,
                        struct cfw_fields *f)
{
    const char *le = line_end(fe, end);
    const char *s = fe;
    const char *se = le;
    const char *nf;
    const char *ns;
    const char *ne;
    const char *exc;
    size_t n;
    bool cut = false;

    if ((size_t)(le - s) >= 5 && memcmp(s, ", in ", 5) == 0) {
        s += 5;
        while (s < le && !is_space((unsigned char)*s)) {
            s++;
        }
    }
    exc = first_exception(s, s, le, &n);
    if (exc != NULL) {
        se = exc;
        cut = true;
    }
    nf = cfw_find(s, (size_t)(se - s), "File \"", 6);
    if (nf != NULL) {
        se = nf;
        cut = true;
    }
    trim(&s, &se);
    while (se > s && (se[-1] == '~' || se[-1] == '^' || is_space((unsigned char)se[-1]))) {
        se--;
    }
    if (se > s) {
        field_put(f, "import", s, (size_t)(se - s), true);
        return;
    }
    if (cut || le == end) {
        return;
    }
    /* a multi-line traceback: the source line follows the frame line, unless it has none */
    ns = le + 1;
    if (ex->line == ns) {
        return;
    }
    ne = line_end(ns, end);
    trim(&ns, &ne);
    if (ns == ne || cfw_tb_caret(ns, (size_t)(ne - ns)) ||
        ((size_t)(ne - ns) >= 6 && memcmp(ns, "File \"", 6) == 0) || exception_name(ns, ne) > 0) {
        return;
    }
    field_put(f, "import", ns, (size_t)(ne - ns), true);
}

/* exception, message, file, line, import. */
static void extract_traceback(const char *text, const char *end, struct cfw_fields *f)
{
    static const char needle[] = "File \"/session/metadata/";
    const size_t nlen = sizeof(needle) - 1;
    const char *limit;
    const char *p = text;
    const char *q;
    const char *best_end = NULL;
    const char *best_path = NULL;
    const char *best_num = NULL;
    size_t best_path_n = 0;
    size_t best_num_n = 0;
    struct exc_line ex;

    find_exception(text, end, &ex);
    if (ex.at != NULL) {
        const char *ms = ex.msg;
        const char *me = ex.msg_end;

        field_put(f, "exception", ex.at, ex.name_n, true);
        trim(&ms, &me);
        strip_code_suffix(ms, &me);
        field_put(f, "message", ms, (size_t)(me - ms), true);
    }
    limit = ex.at != NULL ? ex.at : end;
    while (p < limit && (q = cfw_find(p, (size_t)(limit - p), needle, nlen)) != NULL) {
        const char *path;
        const char *num;
        size_t path_n;
        size_t num_n;
        const char *r = frame_parse(q, end, &path, &path_n, &num, &num_n);

        if (r != NULL && path_n > nlen - 6) {
            best_end = r;
            best_path = path;
            best_path_n = path_n;
            best_num = num;
            best_num_n = num_n;
            p = r;
        } else {
            p = q + nlen;
        }
    }
    if (best_end == NULL) {
        return;
    }
    field_put(f, "file", best_path, best_path_n, true);
    field_put(f, "line", best_num, best_num_n, true);
    find_import(end, best_end, &ex, f);
}

/* script: the name in `A request to the Cloudflare API (.../workers/scripts/<name>...)`. */
static void extract_script(const char *text, const char *end, struct cfw_fields *f)
{
    static const char header[] = "A request to the Cloudflare API (";
    static const char path[] = "/workers/scripts/";
    const char *p = text;
    const char *q;

    while (p < end && (q = cfw_find(p, (size_t)(end - p), header, sizeof(header) - 1)) != NULL) {
        const char *le = line_end(q, end);
        const char *s = cfw_find(q, (size_t)(le - q), path, sizeof(path) - 1);

        if (s != NULL) {
            const char *n = s + sizeof(path) - 1;
            const char *ne = n;

            while (ne < le && *ne != '/' && *ne != ')' && !is_space((unsigned char)*ne)) {
                ne++;
            }
            if (ne > n && (size_t)(ne - n) <= CFW_DECODE_MAX_NAME) {
                field_put(f, "script", n, (size_t)(ne - n), true);
                return;
            }
        }
        p = le;
    }
}

/* code: the first `[code: N]` or `(Code: N)`. */
static void extract_code(const char *text, const char *end, struct cfw_fields *f)
{
    const char *p = text;
    const char *q;

    while (p < end && (q = cfw_find(p, (size_t)(end - p), "ode:", 4)) != NULL) {
        p = q + 4;
        if (q - text >= 2 && (q[-1] == 'c' || q[-1] == 'C') && (q[-2] == '[' || q[-2] == '(')) {
            const char *d = q + 4;
            const char *de;

            while (d < end && *d == ' ') {
                d++;
            }
            de = digits(d, end);
            if (de != NULL && de < end && *de == (q[-2] == '[' ? ']' : ')')) {
                field_put(f, "code", d, (size_t)(de - d), true);
                return;
            }
        }
    }
}

/* The last `<needle>'<value>'` (or with double quotes) on one line, e.g. No module named 'x'. */
static void extract_quoted(const char *text, const char *end, const char *needle, const char *key,
                           struct cfw_fields *f)
{
    size_t nlen = strlen(needle);
    const char *p = text;
    const char *q;
    const char *best = NULL;
    size_t best_n = 0;

    while (p < end && (q = cfw_find(p, (size_t)(end - p), needle, nlen)) != NULL) {
        const char *v = q + nlen;

        p = v;
        if (v < end && (*v == '\'' || *v == '"')) {
            const char *vs = v + 1;
            size_t win = (size_t)(end - vs) > CFW_DECODE_MAX_NAME ? CFW_DECODE_MAX_NAME + 1
                                                                  : (size_t)(end - vs);
            const char *ve = memchr(vs, *v, win);

            if (ve != NULL && ve > vs && memchr(vs, '\n', (size_t)(ve - vs)) == NULL) {
                best = v + 1;
                best_n = (size_t)(ve - (v + 1));
                p = ve + 1;
            }
        }
    }
    if (best != NULL) {
        field_put(f, key, best, best_n, true);
    }
}

/* Finds the first `<lead>N<tail>` in [text, end); true with the digits N at [*d, *de). */
static bool digits_between(const char *text, const char *end, const char *lead, const char *tail,
                           const char **d, const char **de)
{
    size_t lead_n = strlen(lead);
    size_t tail_n = strlen(tail);
    const char *p = text;
    const char *q;

    while (p < end && (q = cfw_find(p, (size_t)(end - p), lead, lead_n)) != NULL) {
        const char *n = q + lead_n;
        const char *ne = digits(n, end);

        p = n;
        if (ne != NULL && (size_t)(end - ne) >= tail_n && memcmp(ne, tail, tail_n) == 0) {
            *d = n;
            *de = ne;
            return true;
        }
    }
    return false;
}

/* startup_ms: `Worker Startup Time: N ms` or `startup exceeded CPU limit N<=L`. */
static void extract_startup(const char *text, const char *end, struct cfw_fields *f)
{
    const char *d;
    const char *de;

    if (digits_between(text, end, "Worker Startup Time: ", " ms", &d, &de) ||
        digits_between(text, end, "startup exceeded CPU limit ", "<=", &d, &de)) {
        field_put(f, "startup_ms", d, (size_t)(de - d), true);
    }
}

/* upload_kib, gzip_kib: `Total Upload: X KiB / gzip: Y KiB`. */
static void extract_upload(const char *text, const char *end, struct cfw_fields *f)
{
    static const char tu[] = "Total Upload: ";
    static const char gz[] = " KiB / gzip: ";
    const char *p = text;
    const char *q;

    while (p < end && (q = cfw_find(p, (size_t)(end - p), tu, sizeof(tu) - 1)) != NULL) {
        const char *x = q + sizeof(tu) - 1;
        const char *xe = decimal(x, end);
        const char *y;
        const char *ye;

        p = x;
        if (xe == NULL || (size_t)(end - xe) < 4 || memcmp(xe, " KiB", 4) != 0) {
            continue;
        }
        field_put(f, "upload_kib", x, (size_t)(xe - x), true);
        if ((size_t)(end - xe) >= sizeof(gz) - 1 && memcmp(xe, gz, sizeof(gz) - 1) == 0) {
            y = xe + sizeof(gz) - 1;
            ye = decimal(y, end);
            if (ye != NULL && (size_t)(end - ye) >= 4 && memcmp(ye, " KiB", 4) == 0) {
                field_put(f, "gzip_kib", y, (size_t)(ye - y), true);
            }
        }
        return;
    }
}

/* Adds the fields found in text by hand-written scanners (linear, no allocation but the fields). */
/*
 * Fields computed from others, for hints: file_name (the base name of file) and import_fixed
 * (import with its `src.` package prefix removed: `from src.a.b import C` -> `from a.b import C`,
 * `import src.a as b` -> `import a as b`), set only when import has that prefix.
 */
static void derive_fields(struct cfw_fields *fields)
{
    const char *file = cfw_fields_get(fields, "file");
    const char *imp = cfw_fields_get(fields, "import");
    const char *kw = NULL;

    if (file != NULL && file[0] != '\0' && cfw_fields_get(fields, "file_name") == NULL) {
        const char *slash = strrchr(file, '/');
        cfw_fields_set(fields, "file_name", slash != NULL ? slash + 1 : file);
    }
    if (imp == NULL || cfw_fields_get(fields, "import_fixed") != NULL) {
        return;
    }
    if (strncmp(imp, "from src.", 9) == 0) {
        kw = "from ";
    } else if (strncmp(imp, "import src.", 11) == 0) {
        kw = "import ";
    }
    if (kw != NULL) {
        char *fixed = cfw_xasprintf("%s%s", kw, imp + strlen(kw) + 4);
        cfw_fields_set(fields, "import_fixed", fixed);
        free(fixed);
    }
}

/* False: every scanner runs on every text (decode_int.h). */
static bool scanner_gates = true;

void cfw_decode_set_gates(bool on)
{
    scanner_gates = on;
}

void cfw_extract_fields(const char *text, size_t len, struct cfw_fields *fields)
{
    const char *end;
    bool colon;
    bool dquote;

    if (text == NULL || fields == NULL) {
        return;
    }
    if (len > CFW_DECODE_MAX_TEXT) {
        len = CFW_DECODE_MAX_TEXT;
    }
    end = text + len;
    /*
     * A scanner whose every form holds a byte that the text lacks finds nothing: a memchr for
     * that byte skips it. ':' is in code, the stricter exception test (`Name: `) and the
     * traceback header, startup_ms's first form and upload; '"' in a frame (`File "`); a quote
     * in module and name; '<' in startup_ms's second form.
     */
    colon = !scanner_gates || memchr(text, ':', len) != NULL;
    dquote = !scanner_gates || memchr(text, '"', len) != NULL;
    extract_script(text, end, fields);
    if (colon) {
        extract_code(text, end, fields);
    }
    if (colon || dquote) {
        extract_traceback(text, end, fields);
    }
    if (dquote || memchr(text, '\'', len) != NULL) {
        extract_quoted(text, end, "No module named ", "module", fields);
        extract_quoted(text, end, "cannot import name ", "name", fields);
    }
    if (colon || memchr(text, '<', len) != NULL) {
        extract_startup(text, end, fields);
    }
    if (colon) {
        extract_upload(text, end, fields);
    }
    derive_fields(fields);
}

/* ---- events ---- */

struct decode_ctx {
    const struct cfw_record *rec;
    cfw_event_cb cb;
    void *arg;
    struct cfw_decode_stats *stats;
    struct cfw_json *json;  /* the parse of a JSON record */
    struct cfw_fields base; /* context shared by the events of one record */
    struct cfw_fields evf;  /* the fields of its events, emptied after each */
    bool reused;            /* base and evf are decode_sets' */
    size_t events;
};

/*
 * The field sets of the records: one pair for the process (the daemon has one thread), emptied
 * but not freed from one event and record to the next, which saves an allocation and a free of
 * each set's array and block per event. A callback that decoded a record itself would find the
 * pair busy and use sets of its own.
 */
static struct {
    struct cfw_fields base;
    struct cfw_fields evf;
    bool busy;
} decode_sets;

/* What one event adds to the shared context. */
struct event_extra {
    const char *level;
    const char *exc_name; /* JSON exception name, used when the text names none */
    const char *exc_msg;
};

static void emit(struct decode_ctx *c, const char *kind, const char *text, size_t len,
                 const struct event_extra *x)
{
    struct cfw_event ev;

    if (c->events >= CFW_DECODE_MAX_EVENTS) {
        return;
    }
    memset(&ev, 0, sizeof(ev));
    ev.fields = c->evf; /* empty */
    cfw_fields_add(&ev.fields, "kind", kind, strlen(kind));
    cfw_fields_append(&ev.fields, &c->base); /* base has no kind */
    if (x != NULL) {
        field_puts(&ev.fields, "level", x->level, false);
    }
    cfw_extract_fields(text, len, &ev.fields);
    if (x != NULL && x->exc_name != NULL) {
        field_puts(&ev.fields, "exception", x->exc_name, true);
        if (x->exc_msg != NULL) {
            const char *nl = strchr(x->exc_msg, '\n');
            const char *ms = x->exc_msg;
            const char *me = nl != NULL ? nl : ms + strlen(ms);

            trim(&ms, &me);
            field_put(&ev.fields, "message", ms, (size_t)(me - ms), true);
        }
    }
    ev.text = text;
    ev.len = len;
    ev.input = c->rec->input;
    ev.line = c->rec->line;
    ev.line_end = c->rec->line_end;
    if (c->cb != NULL) {
        c->cb(&ev, c->arg);
    }
    cfw_fields_reset(&ev.fields);
    c->evf = ev.fields;
    c->events++;
    if (c->stats != NULL) {
        c->stats->events++;
    }
}

/* An object member by key: exact, else compared without case (Logpush keys vary in case). */
static const struct cfw_json_node *jget(struct decode_ctx *c, const struct cfw_json_node *obj,
                                        const char *key)
{
    const struct cfw_json_node *exact = cfw_json_get(c->json, obj, key);

    return exact != NULL ? exact : cfw_json_get_nocase(c->json, obj, key);
}

static const char *jstr(struct decode_ctx *c, const struct cfw_json_node *obj, const char *key)
{
    return cfw_json_str(c->json, jget(c, obj, key), NULL);
}

/* Reads epoch milliseconds (seconds when secs_below is passed and the value is below it). */
static bool json_time_ms(const struct cfw_json_node *v, double secs_below, int64_t *ms)
{
    double d;

    if (cfw_json_is(v, CFW_JSON_INTEGER)) {
        d = (double)cfw_json_int(v);
    } else if (cfw_json_is(v, CFW_JSON_REAL)) {
        d = cfw_json_real(v);
    } else {
        return false;
    }
    if (!(d >= 0.0 && d <= (double)MAX_TIME_MS)) {
        return false;
    }
    if (d < secs_below) {
        d *= 1000.0;
    }
    *ms = (int64_t)d;
    return true;
}

static void ctx_time(struct decode_ctx *c, const struct cfw_json_node *v, double secs_below)
{
    int64_t ms;
    char buf[64];

    if (v != NULL && json_time_ms(v, secs_below, &ms)) {
        cfw_format_time_ms(ms, buf, sizeof(buf));
        cfw_fields_set(&c->base, "time", buf);
    }
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return buf_add(data, buffer, size);
}

/* Appends a value: a string as it is, anything else as compact JSON. -1 when the cap cut it. */
static int add_value(struct decode_ctx *c, struct cfw_buf *b, const struct cfw_json_node *v)
{
    size_t len;
    const char *s = cfw_json_str(c->json, v, &len);

    if (s != NULL) {
        return buf_add(b, s, len);
    }
    return cfw_json_dump(c->json, v, dump_cb, b) == 0 ? 0 : -1;
}

static const char *buf_text(const struct cfw_buf *b)
{
    return b->data != NULL ? b->data : "";
}

static void emit_exception(struct decode_ctx *c, const struct cfw_json_node *e)
{
    struct cfw_buf b;
    const struct cfw_json_node *msg = jget(c, e, "message");
    const char *stack = jstr(c, e, "stack");
    size_t name_len = 0;
    const char *name_s = cfw_json_str(c->json, jget(c, e, "name"), &name_len);
    struct event_extra x = {0};

    cfw_buf_init(&b, CFW_DECODE_MAX_TEXT);
    if (name_len == 0) {
        name_s = NULL;
    }
    if (msg != NULL && cfw_json_is(msg, CFW_JSON_NULL)) {
        msg = NULL;
    }
    if (stack != NULL && stack[0] == '\0') {
        stack = NULL;
    }
    if (name_s == NULL && msg == NULL && stack == NULL) {
        return;
    }
    if (name_s != NULL) {
        buf_add(&b, name_s, strlen(name_s));
        if (msg != NULL) {
            buf_add(&b, ": ", 2);
        }
    }
    if (msg != NULL) {
        add_value(c, &b, msg);
    }
    if (stack != NULL) {
        if (b.len > 0) {
            buf_add(&b, "\n", 1);
        }
        buf_add(&b, stack, strlen(stack));
    }
    x.exc_name = name_s;
    x.exc_msg = cfw_json_str(c->json, msg, NULL);
    emit(c, "exception", buf_text(&b), b.len, &x);
    cfw_buf_free(&b);
}

static void emit_log(struct decode_ctx *c, const struct cfw_json_node *l)
{
    struct cfw_buf b;
    const struct cfw_json_node *msg = jget(c, l, "message");
    struct event_extra x = {0};

    cfw_buf_init(&b, CFW_DECODE_MAX_TEXT);
    if (msg == NULL) {
        return;
    }
    if (cfw_json_is(msg, CFW_JSON_ARRAY)) {
        struct cfw_json_iter it;
        bool first = true;

        cfw_json_iter_init(msg, &it);
        while (cfw_json_iter_next(c->json, &it)) {
            if ((!first && buf_add(&b, " ", 1) != 0) || add_value(c, &b, it.value) != 0) {
                break;
            }
            first = false;
        }
    } else {
        add_value(c, &b, msg);
    }
    x.level = jstr(c, l, "level");
    emit(c, "log", buf_text(&b), b.len, &x);
    cfw_buf_free(&b);
}

static void emit_outcome(struct decode_ctx *c, const char *outcome)
{
    struct cfw_buf b;

    cfw_buf_init(&b, CFW_DECODE_MAX_TEXT);
    if (outcome == NULL || outcome[0] == '\0' || strcasecmp(outcome, "ok") == 0 ||
        strcasecmp(outcome, "canceled") == 0) {
        return;
    }
    buf_add(&b, "outcome: ", 9);
    buf_add(&b, outcome, strlen(outcome));
    emit(c, "outcome", buf_text(&b), b.len, NULL);
    cfw_buf_free(&b);
}

/* A wrangler tail event or a Logpush Workers Trace Event (same shape, keys differ in case). */
static void decode_trace(struct decode_ctx *c, const struct cfw_json_node *root)
{
    const struct cfw_json_node *event = jget(c, root, "event");
    const struct cfw_json_node *ts = jget(c, root, "eventTimestamp");
    const char *outcome = jstr(c, root, "outcome");
    const struct cfw_json_node *arr;
    struct cfw_json_iter it;

    field_puts(&c->base, "script", jstr(c, root, "scriptName"), false);
    field_puts(&c->base, "version", jstr(c, jget(c, root, "scriptVersion"), "id"), false);
    field_puts(&c->base, "outcome", outcome, false);
    field_puts(&c->base, "url", jstr(c, jget(c, event, "request"), "url"), false);
    field_puts(&c->base, "ray", jstr(c, event, "rayId"), false);
    ctx_time(c, ts != NULL ? ts : jget(c, root, "eventTimestampMs"), 0.0);

    /* arrays only: an object there gives no events */
    arr = jget(c, root, "exceptions");
    cfw_json_iter_init(cfw_json_is(arr, CFW_JSON_ARRAY) ? arr : NULL, &it);
    while (cfw_json_iter_next(c->json, &it)) {
        emit_exception(c, it.value);
    }
    arr = jget(c, root, "logs");
    cfw_json_iter_init(cfw_json_is(arr, CFW_JSON_ARRAY) ? arr : NULL, &it);
    while (cfw_json_iter_next(c->json, &it)) {
        emit_log(c, it.value);
    }
    emit_outcome(c, outcome);
}

/* A Workers Observability (Workers Logs) event. */
static void decode_observability(struct decode_ctx *c, const struct cfw_json_node *root)
{
    const struct cfw_json_node *md = jget(c, root, "$metadata");
    const struct cfw_json_node *wk = jget(c, root, "$workers");
    const struct cfw_json_node *err = jget(c, md, "error");
    const struct cfw_json_node *msg = jget(c, md, "message");
    const char *script = jstr(c, wk, "scriptName");
    const char *url = jstr(c, md, "url");
    const char *rid = jstr(c, wk, "requestId");
    const char *outcome = jstr(c, wk, "outcome");
    size_t err_len = 0;
    struct event_extra x = {0};
    struct cfw_buf b;

    cfw_buf_init(&b, CFW_DECODE_MAX_TEXT);
    field_puts(&c->base, "script", script != NULL ? script : jstr(c, md, "service"), false);
    field_puts(&c->base, "version", jstr(c, jget(c, wk, "scriptVersion"), "id"), false);
    field_puts(&c->base, "outcome", outcome, false);
    field_puts(&c->base, "url",
               url != NULL ? url : jstr(c, jget(c, jget(c, wk, "event"), "request"), "url"), false);
    field_puts(&c->base, "request_id", rid != NULL ? rid : jstr(c, md, "requestId"), false);
    ctx_time(c, jget(c, root, "timestamp"), 0.0);
    x.level = jstr(c, md, "level");

    if (cfw_json_is(err, CFW_JSON_NULL) ||
        (cfw_json_str(c->json, err, &err_len) != NULL && err_len == 0)) {
        err = NULL;
    }
    if (cfw_json_is(msg, CFW_JSON_NULL)) {
        msg = NULL;
    }
    if (err != NULL) {
        add_value(c, &b, err);
        emit(c, "exception", buf_text(&b), b.len, &x);
        cfw_buf_reset(&b);
    }
    if (msg != NULL && !(err != NULL && cfw_json_equal(c->json, msg, err))) {
        add_value(c, &b, msg);
        emit(c, "log", buf_text(&b), b.len, &x);
    }
    cfw_buf_free(&b);
    emit_outcome(c, outcome);
}

/* A Workers Builds log line `[epoch, "text"]`. */
static void decode_builds_line(struct decode_ctx *c, const struct cfw_json_node *root)
{
    size_t len;
    const char *t = cfw_json_str(c->json, cfw_json_at(root, 1), &len);

    /* the API gives epoch seconds or milliseconds; 1e11 s is the year 5138, 1e11 ms 1973 */
    ctx_time(c, cfw_json_at(root, 0), 1e11);
    emit(c, "text", t, len, NULL);
}

enum json_shape {
    SHAPE_UNKNOWN,
    SHAPE_TAIL,
    SHAPE_LOGPUSH,
    SHAPE_OBSERVABILITY,
    SHAPE_VALIDATION,
    SHAPE_BUILDS_LINE,
};

static bool has_key_nocase(struct decode_ctx *c, const struct cfw_json_node *obj, const char *key)
{
    return jget(c, obj, key) != NULL;
}

static enum json_shape json_classify(struct decode_ctx *c, const struct cfw_json_node *root)
{
    static const char *const logpush_keys[] = {"Outcome",    "Exceptions",    "Logs",
                                               "ScriptName", "ScriptVersion", "EventType"};
    struct cfw_json *j = c->json;
    bool trace;

    if (cfw_json_is(root, CFW_JSON_ARRAY)) {
        if (cfw_json_size(root) == 2 && cfw_json_is_number(cfw_json_at(root, 0)) &&
            cfw_json_is(cfw_json_at(root, 1), CFW_JSON_STRING)) {
            return SHAPE_BUILDS_LINE;
        }
        return SHAPE_UNKNOWN;
    }
    if (!cfw_json_is(root, CFW_JSON_OBJECT)) {
        return SHAPE_UNKNOWN;
    }
    if (cfw_json_is(cfw_json_get(j, root, "$metadata"), CFW_JSON_OBJECT) ||
        cfw_json_is(cfw_json_get(j, root, "$workers"), CFW_JSON_OBJECT)) {
        return SHAPE_OBSERVABILITY;
    }
    if (cfw_json_size(root) == 1 &&
        cfw_json_is(cfw_json_get(j, root, "content"), CFW_JSON_STRING)) {
        return SHAPE_VALIDATION;
    }
    trace = cfw_json_is(jget(c, root, "outcome"), CFW_JSON_STRING) ||
            cfw_json_is(jget(c, root, "exceptions"), CFW_JSON_ARRAY) ||
            cfw_json_is(jget(c, root, "logs"), CFW_JSON_ARRAY);
    if (has_key_nocase(c, root, "EventTimestampMs")) {
        return SHAPE_LOGPUSH;
    }
    if (!trace) {
        return cfw_json_is_number(cfw_json_get(j, root, "eventTimestamp")) ? SHAPE_TAIL
                                                                           : SHAPE_UNKNOWN;
    }
    for (size_t i = 0; i < sizeof(logpush_keys) / sizeof(logpush_keys[0]); i++) {
        if (cfw_json_get(j, root, logpush_keys[i]) != NULL) {
            return SHAPE_LOGPUSH;
        }
    }
    return SHAPE_TAIL;
}

static void decode_text(struct decode_ctx *c, const char *text, size_t len)
{
    if (text == NULL) {
        text = "";
        len = 0;
    }
    if (len <= CFW_DECODE_MAX_TEXT && cfw_utf8_valid(text, len, false)) {
        emit(c, "text", text, len, NULL);
    } else {
        size_t n;
        char *copy = text_sanitize(text, len, CFW_DECODE_MAX_TEXT, &n);

        emit(c, "text", copy, n, NULL);
        free(copy);
    }
}

/*
 * The parser of the records no caller parsed: one for the process (the daemon has one thread),
 * its node array and string arena reused from one record to the next.
 */
static struct cfw_json *decoder_json;

static void decode_json(struct decode_ctx *c)
{
    const struct cfw_record *rec = c->rec;
    const struct cfw_json_node *root = NULL;

    if (c->stats != NULL) {
        c->stats->json_records++;
    }
    if (rec->text != NULL && rec->len <= CFW_DECODE_MAX_JSON) {
        /* a caller that parsed the same bytes hands its parse over: one parse per record */
        if (rec->parsed != NULL) {
            c->json = (struct cfw_json *)rec->parsed;
            root = cfw_json_root(c->json);
        } else {
            if (decoder_json == NULL) {
                decoder_json = cfw_json_new();
            }
            c->json = decoder_json;
            root = cfw_json_parse(c->json, rec->text, rec->len);
        }
        if (cfw_json_depth(c->json) > CFW_DECODE_MAX_DEPTH) {
            root = NULL; /* too deep to be one of the shapes: decoded as text */
        }
    }
    if (root == NULL) {
        if (c->stats != NULL) {
            c->stats->json_invalid++;
        }
        decode_text(c, rec->text, rec->len);
        return;
    }
    switch (json_classify(c, root)) {
    case SHAPE_TAIL:
        if (c->stats != NULL) {
            c->stats->tail_events++;
        }
        decode_trace(c, root);
        break;
    case SHAPE_LOGPUSH:
        if (c->stats != NULL) {
            c->stats->logpush_events++;
        }
        decode_trace(c, root);
        break;
    case SHAPE_OBSERVABILITY:
        if (c->stats != NULL) {
            c->stats->observability_events++;
        }
        decode_observability(c, root);
        break;
    case SHAPE_VALIDATION:
        break;
    case SHAPE_BUILDS_LINE:
        decode_builds_line(c, root);
        break;
    case SHAPE_UNKNOWN:
        /* the parser accepted it, so it is valid UTF-8 within the cap; but it also accepts a
         * number followed by one NUL byte ("0\0", as jansson), so NUL bytes are checked for */
        if (cfw_utf8_valid(rec->text, rec->len, false)) {
            emit(c, "json", rec->text, rec->len, NULL);
        } else {
            size_t n;
            char *copy = text_sanitize(rec->text, rec->len, CFW_DECODE_MAX_TEXT, &n);

            emit(c, "json", copy, n, NULL);
            free(copy);
        }
        break;
    }
}

/*
 * True when base, as the last record left it, is what rec's context starts as: its source and
 * time and nothing else (most records of an input share them, and a JSON record's context
 * fields make base differ). A value equal to the record's own string is what field_put made
 * of it, since field_put keeps a string that it could have made as it is.
 */
static bool base_holds(const struct cfw_fields *base, const struct cfw_record *rec)
{
    const char *const want[2][2] = {{"source", rec->input}, {"time", rec->time}};
    size_t i = 0;

    for (size_t k = 0; k < 2; k++) {
        if (want[k][1] == NULL || want[k][1][0] == '\0') {
            continue;
        }
        if (i >= base->n || strcmp(base->v[i].key, want[k][0]) != 0 ||
            strcmp(base->v[i].value, want[k][1]) != 0) {
            return false;
        }
        i++;
    }
    return i == base->n;
}

/* Decodes one record into events; stats and cb may be NULL. */
size_t cfw_decode_record(const struct cfw_record *rec, cfw_event_cb cb, void *arg,
                         struct cfw_decode_stats *stats)
{
    struct decode_ctx c = {.rec = rec, .cb = cb, .arg = arg, .stats = stats};

    if (rec == NULL) {
        return 0;
    }
    if (!decode_sets.busy) {
        decode_sets.busy = true;
        c.base = decode_sets.base;
        c.evf = decode_sets.evf;
        c.reused = true;
    }
    if (!c.reused || !base_holds(&c.base, rec)) {
        cfw_fields_reset(&c.base);
        field_puts(&c.base, "source", rec->input, false);
        field_puts(&c.base, "time", rec->time, false);
    }
    if (rec->kind == CFW_REC_JSON) {
        decode_json(&c);
    } else {
        decode_text(&c, rec->text, rec->len);
    }
    if (c.reused) {
        decode_sets.base = c.base; /* kept for the next record: see base_holds */
        decode_sets.evf = c.evf;
        decode_sets.busy = false;
    } else {
        cfw_fields_clear(&c.base);
        cfw_fields_clear(&c.evf);
    }
    return c.events;
}
