/*
 * Framer: cuts a byte stream into records (the rules are in framer.h).
 *
 * How the bytes flow:
 *   - JSON format: json_feed runs a byte-level tokenizer (tok_run) over the raw bytes. Value
 *     bytes are copied once into jbuf; bytes outside values are skipped and counted.
 *   - Every other format: text_feed finds newlines with memchr, keeps a partial line in lbuf
 *     (capped at max_line; a longer line is skipped up to its newline and counted), and hands
 *     each complete line to process_line, which removes the CR, replaces NUL bytes, strips ANSI
 *     escapes and a time prefix. A line that needs no rewriting is not copied until it becomes
 *     part of a record. The line then goes to the mode: LINES -> text_line (block assembler),
 *     WRANGLER_LOG -> wlog_line, MIXED (what AUTO becomes for anything that is not a wrangler
 *     debug log) -> mixed_line, which runs the same tokenizer over lines that begin with '{'
 *     and falls back to text lines when the value does not parse.
 * Records are handed to the callback synchronously; the callback must not feed this framer.
 */
#include "cfwatchd/framer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/common.h"
#include "cfwatchd/pytb.h"
#include "framer_int.h"
#include "jsonline.h"

/* Longest time prefix kept: ISO 8601 with nine fraction digits and an offset is 35 bytes. */
#define TIME_MAX 48
/* Nesting levels tracked past max_depth while the rest of a too-deep JSON value is skipped. */
#define JSON_SKIP_DEPTH 1024u
/* Upper bound for max_depth (the container stack is allocated up front). */
#define JSON_MAX_DEPTH_LIMIT 65536u
/* Note lines (PEP 678) kept after a traceback's exception line. */
#define TB_MAX_NOTES 3u

#define LIT_LEN(lit) (sizeof(lit) - 1)

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
#define FRAMER_SWAR 1 /* scan 8 bytes at a time (the first flagged byte is found with ctz) */
#endif

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

enum mode {
    MODE_UNDECIDED, /* AUTO before the first non-blank line */
    MODE_LINES,
    MODE_JSON,
    MODE_WLOG,
    MODE_MIXED, /* AUTO resolved: text lines, where a line starting with '{' may begin JSON */
};

enum blk {
    BLK_NONE,
    BLK_WRANGLER, /* ✘ [ERROR] / ▲ [WARNING] message and its blank and indented lines */
    BLK_TB_BODY,  /* traceback header, frames, source and caret lines */
    BLK_TB_NOTES, /* after the exception line: note lines, or blank lines before a chain line */
    BLK_TB_CHAIN, /* after "During handling of the above exception ...": blanks, then a header */
};

enum jst {
    J_VALUE,     /* a value is expected (top level, after ':' or after ',' in an array) */
    J_ARR_FIRST, /* after '[': a value or ']' */
    J_OBJ_FIRST, /* after '{': a key or '}' */
    J_KEY,       /* after ',' in an object: a key */
    J_COLON,     /* after a key */
    J_AFTER,     /* after a value inside a container: ',' or the closing bracket */
    J_STR,
    J_ESC,
    J_HEX,
    J_NEG,
    J_ZERO,
    J_INT,
    J_DOT,
    J_FRAC,
    J_EXP,
    J_EXPSIGN,
    J_EXPDIG,
    J_LIT,
};

enum jres {
    JR_MORE, /* every byte consumed, the value is still open */
    JR_DONE, /* the value ended; *used bytes belong to it */
    JR_ERR,  /* not JSON at byte *used (not consumed) */
};

enum jstream {
    JS_IDLE,   /* between values */
    JS_VALUE,  /* inside a value */
    JS_RESYNC, /* after an error: waiting for a line whose first non-blank byte is '{' or '[' */
};

/* The JSON tokenizer: validates the grammar byte by byte, keeping only a container stack. */
struct jtok {
    enum jst st;
    bool key;      /* the string being read is an object key */
    bool too_deep; /* nesting went past max_depth */
    bool ws_only;  /* only blanks since the last newline */
    bool err_ws;   /* the byte that failed was the first non-blank byte of its line */
    unsigned hex;  /* hex digits left in a \u escape */
    const char *lit;
    size_t depth;
    size_t max_depth;
    size_t cap;
    unsigned char *stack; /* per level: 1 object, 0 array */
    uint64_t *nl;         /* bumped for every newline between tokens (NULL: not counted) */
};

/* One cleaned line; s[n] is NUL when term is set (else s may point into the caller's bytes). */
struct lview {
    const char *s;
    size_t n;
    uint64_t no;
    const char *time;
    bool term;
};

/* A line queued in MIXED mode while a JSON value may be open. */
struct mline {
    size_t off; /* in mbuf; the line is followed by '\n' there */
    size_t len;
    uint64_t no;
    size_t toff; /* in mtimes, when has_time */
    bool has_time;
};

struct cfw_framer {
    char *input;
    struct cfw_framer_opts o;
    cfw_record_cb cb;
    void *arg;
    struct cfw_framer_stats stats;
    enum mode mode;
    char last_byte;

    /* line splitter */
    struct cfw_buf lbuf; /* partial line */
    bool skipping;       /* inside an over-long line, waiting for its newline */
    bool mid;            /* started in the middle of its input (no byte order mark there) */
    char eol; /* the line end: '\n' (CRLF too), '\r' in CR-only input; 0 before any is known */
    bool cr_pending; /* CR mode: the last feed ended with CR, so a first LF is its CRLF's */
    char *work;      /* a line that must be rewritten or terminated */
    size_t work_cap;
    char ltime[TIME_MAX]; /* time prefix of the line being processed */

    /* block assembler */
    enum blk bst;
    struct cfw_buf bbuf;
    size_t blines;
    size_t bkeep; /* length up to the last non-blank line */
    uint64_t bfirst;
    uint64_t blast;
    size_t base_indent; /* the traceback's own indentation */
    size_t exc_indent;  /* indentation of its exception line */
    unsigned notes;
    bool gap; /* a blank line after the exception line */
    char btime[TIME_MAX];

    /* wrangler debug log */
    bool in_entry;
    char wtime[TIME_MAX];

    /* JSON */
    struct jtok tok;
    enum jstream js;
    struct cfw_buf jbuf;
    size_t jsize; /* bytes of the current value, also those not kept */
    bool no_fast; /* objects only through the tokenizer (cfw_framer_set_fast_json) */
    bool jlarge;  /* the current value passed max_json: skipped, not kept */
    uint64_t jline;
    bool ws_only;

    /* MIXED: lines of a JSON value being tried, and lines waiting to be replayed */
    struct cfw_buf mbuf;
    struct cfw_buf mtimes;
    struct mline *ml;
    size_t mn;
    size_t mcap;
    size_t mc; /* next line to process */
    size_t ms; /* first line of the open value */
    bool mopen;
};

/* Parses auto|lines|json|wrangler-log; returns -1 on anything else. */
int cfw_input_format_parse(const char *s, enum cfw_input_format *out)
{
    static const struct {
        const char *name;
        enum cfw_input_format f;
    } names[] = {
        {"auto", CFW_FMT_AUTO},
        {"lines", CFW_FMT_LINES},
        {"json", CFW_FMT_JSON},
        {"wrangler-log", CFW_FMT_WRANGLER_LOG},
    };
    size_t i;

    if (s == NULL) {
        return -1;
    }
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].f;
            return 0;
        }
    }
    return -1;
}

/* Returns the name cfw_input_format_parse accepts for f. */
const char *cfw_input_format_name(enum cfw_input_format f)
{
    switch (f) {
    case CFW_FMT_AUTO:
        return "auto";
    case CFW_FMT_LINES:
        return "lines";
    case CFW_FMT_JSON:
        return "json";
    case CFW_FMT_WRANGLER_LOG:
        return "wrangler-log";
    }
    return "unknown";
}

/* ---- small helpers ---- */

static bool is_digit(unsigned c)
{
    return c - '0' < 10u;
}

static bool is_hex(unsigned c)
{
    return is_digit(c) || (c | 0x20u) - 'a' < 6u;
}

static bool is_indent_char(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_blank_char(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static size_t indent_of(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n && is_indent_char(s[i])) {
        i++;
    }
    return i;
}

static bool is_blank(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!is_blank_char(s[i])) {
            return false;
        }
    }
    return true;
}

static bool has_prefix(const char *s, size_t n, const char *p, size_t pn)
{
    return n >= pn && memcmp(s, p, pn) == 0;
}

static void copy_time(char *dst, const char *src)
{
    size_t n;

    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    n = strnlen(src, TIME_MAX - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Emits a record; unterminated: text[len] is not NUL (only with opts.unterminated). */
static void emit_as(struct cfw_framer *f, enum cfw_record_kind kind, const char *text, size_t len,
                    uint64_t line, uint64_t line_end, const char *time, bool unterminated)
{
    struct cfw_record rec = {
        .kind = kind,
        .text = text,
        .len = len,
        .input = f->input,
        .line = line,
        .line_end = line_end,
        .time = time,
        .unterminated = unterminated,
    };

    f->stats.records++;
    if (kind == CFW_REC_JSON) {
        f->stats.json_values++;
    }
    if (f->cb != NULL) {
        f->cb(&rec, f->arg);
    }
}

static void emit(struct cfw_framer *f, enum cfw_record_kind kind, const char *text, size_t len,
                 uint64_t line, uint64_t line_end, const char *time)
{
    emit_as(f, kind, text, len, line, line_end, time, false);
}

static char *work_reserve(struct cfw_framer *f, size_t n)
{
    if (n > f->work_cap) {
        size_t cap = f->work_cap == 0 ? 256 : f->work_cap;

        while (cap < n) {
            cap *= 2;
        }
        f->work = cfw_xrealloc(f->work, cap);
        f->work_cap = cap;
    }
    return f->work;
}

/* Emits one line as a record of its own. */
static void emit_line(struct cfw_framer *f, const struct lview *lv)
{
    const char *s = lv->s;

    if (!lv->term && f->o.unterminated) {
        emit_as(f, CFW_REC_TEXT, s, lv->n, lv->no, lv->no, lv->time, true);
        return;
    }
    if (!lv->term) {
        char *w = work_reserve(f, lv->n + 1);

        memcpy(w, lv->s, lv->n);
        w[lv->n] = '\0';
        s = w;
    }
    emit(f, CFW_REC_TEXT, s, lv->n, lv->no, lv->no, lv->time);
}

/* ---- line classification for block assembly ---- */

/* A wrangler message header: ✘ [ERROR], X [ERROR], [ERROR], ▲ [WARNING] or [WARNING]. */
static bool is_marker(const char *s, size_t n)
{
    size_t i = indent_of(s, n);

    s += i;
    n -= i;
    if (n == 0) {
        return false;
    }
    /* most lines fail the first byte: the compares after it are for the few that pass */
    switch (s[0]) {
    case '\xe2':
        if (has_prefix(s, n, "\xe2\x9c\x98 ", LIT_LEN("\xe2\x9c\x98 "))) { /* ✘ */
            return has_prefix(s + 4, n - 4, "[ERROR]", LIT_LEN("[ERROR]"));
        }
        return has_prefix(s, n, "\xe2\x96\xb2 [WARNING]", LIT_LEN("\xe2\x96\xb2 [WARNING]"));
    case 'X':
        return has_prefix(s, n, "X [ERROR]", LIT_LEN("X [ERROR]"));
    case '[':
        return has_prefix(s, n, "[ERROR]", LIT_LEN("[ERROR]")) ||
               has_prefix(s, n, "[WARNING]", LIT_LEN("[WARNING]"));
    default:
        return false;
    }
}

/* Holds `[code: N]`, which ends a wrangler message. */
static bool has_code(const char *s, size_t n)
{
    const char *end = s + n;
    const char *p = s;

    while ((p = cfw_find(p, (size_t)(end - p), "[code: ", LIT_LEN("[code: "))) != NULL) {
        const char *q = p + LIT_LEN("[code: ");
        const char *d = q;

        while (d < end && is_digit((unsigned char)*d)) {
            d++;
        }
        if (d > q && d < end && *d == ']') {
            return true;
        }
        p = q;
    }
    return false;
}

/* The traceback grammar (pytb.h), on a line with its indentation. */
static size_t find_tb(const char *s, size_t n)
{
    return cfw_tb_header(s, n);
}

static bool is_frame(const char *s, size_t n)
{
    size_t i = indent_of(s, n);

    return cfw_tb_frame(s + i, n - i, NULL) > 0;
}

static bool is_exception(const char *s, size_t n)
{
    size_t i = indent_of(s, n);

    return cfw_tb_exception(s + i, n - i) > 0;
}

/* A Rich log level column (pywrangler): ERROR, WARNING, INFO ... followed by a space. */
static bool is_rich_level(const char *s, size_t n)
{
    static const char *const words[] = {"DEBUG ", "INFO ", "WARNING ", "ERROR ", "CRITICAL "};
    size_t k;

    for (k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
        if (has_prefix(s, n, words[k], strlen(words[k]))) {
            return true;
        }
    }
    return false;
}

/* The line between two chained tracebacks. */
static bool is_chain(const char *s, size_t n)
{
    static const char a[] = "During handling of the above exception, another exception occurred";
    static const char b[] = "The above exception was the direct cause of the following exception";
    size_t i = indent_of(s, n);

    return has_prefix(s + i, n - i, a, LIT_LEN(a)) || has_prefix(s + i, n - i, b, LIT_LEN(b));
}

/* A line that starts something else and so cannot be a traceback note. */
static bool starts_other(const char *s, size_t n)
{
    size_t i = indent_of(s, n);

    return is_marker(s, n) || is_rich_level(s + i, n - i) || find_tb(s, n) != SIZE_MAX ||
           has_prefix(s + i, n - i, "File \"", LIT_LEN("File \"")) || (n > 0 && s[0] == '{') ||
           cfw_tb_caret(s, n);
}

/* ---- block assembler ---- */

static void blk_emit(struct cfw_framer *f)
{
    if (f->bst == BLK_NONE) {
        return;
    }
    f->bst = BLK_NONE;
    f->bbuf.data[f->bkeep] = '\0';
    emit(f, CFW_REC_TEXT, f->bbuf.data, f->bkeep, f->bfirst, f->blast,
         f->btime[0] != '\0' ? f->btime : NULL);
    cfw_buf_reset(&f->bbuf);
}

static void blk_start(struct cfw_framer *f, const struct lview *lv, enum blk st)
{
    if (lv->n > f->o.max_record || f->o.max_block_lines <= 1) {
        emit_line(f, lv);
        return;
    }
    cfw_buf_reset(&f->bbuf);
    cfw_buf_append(&f->bbuf, lv->s, lv->n);
    f->bst = st;
    f->blines = 1;
    f->bkeep = lv->n;
    f->bfirst = lv->no;
    f->blast = lv->no;
    f->notes = 0;
    f->gap = false;
    copy_time(f->btime, lv->time);
}

/*
 * Adds a line to the open block. Returns 0 when added, 1 when added and the block was emitted
 * because it reached max_block_lines, -1 when the line did not fit in max_record (the block was
 * emitted without it and the caller processes the line again).
 */
static int blk_add(struct cfw_framer *f, const struct lview *lv)
{
    if (f->bbuf.len + 1 + lv->n > f->o.max_record) {
        blk_emit(f);
        return -1;
    }
    cfw_buf_putc(&f->bbuf, '\n');
    cfw_buf_append(&f->bbuf, lv->s, lv->n);
    f->blines++;
    if (!is_blank(lv->s, lv->n)) {
        f->bkeep = f->bbuf.len;
        f->blast = lv->no;
    }
    if (f->blines >= f->o.max_block_lines) {
        blk_emit(f);
        return 1;
    }
    return 0;
}

/* No block open: the line starts one or is a record of its own (blank lines are dropped). */
static void line_none(struct cfw_framer *f, const struct lview *lv)
{
    const char *s = lv->s;
    size_t n = lv->n;
    size_t tb;

    if (is_blank(s, n)) {
        return;
    }
    if (is_marker(s, n)) {
        blk_start(f, lv, BLK_WRANGLER);
        if (f->bst == BLK_WRANGLER && has_code(s, n)) {
            blk_emit(f);
        }
        return;
    }
    tb = find_tb(s, n);
    if (tb != SIZE_MAX) {
        /*
         * Text after the header means a flattened traceback (a dashboard copy ending in
         * `(Code: N)`, or a JSON string holding "\n" escapes): the line is complete as it is.
         */
        if (!is_blank(s + tb, n - tb)) {
            emit_line(f, lv);
            return;
        }
        f->base_indent = indent_of(s, n);
        blk_start(f, lv, BLK_TB_BODY);
        return;
    }
    if (is_frame(s, n)) {
        /* A traceback quoted without its header starts at its first frame. */
        f->base_indent = indent_of(s, n);
        blk_start(f, lv, BLK_TB_BODY);
        return;
    }
    emit_line(f, lv);
}

/* The next functions return false when the block ended without the line (process it again). */

static bool line_wrangler(struct cfw_framer *f, const struct lview *lv)
{
    const char *s = lv->s;
    size_t n = lv->n;
    int r;

    if (is_marker(s, n)) {
        blk_emit(f);
        return false;
    }
    if (is_blank(s, n) || is_indent_char(s[0]) || cfw_tb_caret(s, n)) {
        r = blk_add(f, lv);
        if (r < 0) {
            return false;
        }
        if (r == 0 && has_code(s, n)) {
            blk_emit(f);
        }
        return true;
    }
    blk_emit(f);
    return false;
}

static bool line_tb_body(struct cfw_framer *f, const struct lview *lv)
{
    const char *s = lv->s;
    size_t n = lv->n;
    size_t ind;
    int r;

    if (is_blank(s, n)) {
        return blk_add(f, lv) >= 0;
    }
    if (is_marker(s, n)) {
        blk_emit(f);
        return false;
    }
    ind = indent_of(s, n);
    if (ind <= f->base_indent && find_tb(s, n) != SIZE_MAX) {
        blk_emit(f);
        return false;
    }
    /* Caret lines are taken at any indentation: a wrapped one can land at column 0. */
    if (ind > f->base_indent || is_frame(s, n) || cfw_tb_caret(s, n)) {
        return blk_add(f, lv) >= 0;
    }
    if (is_exception(s, n)) {
        r = blk_add(f, lv);
        if (r < 0) {
            return false;
        }
        if (r == 0) {
            f->bst = BLK_TB_NOTES;
            f->notes = 0;
            f->gap = false;
            f->exc_indent = ind;
        }
        return true;
    }
    blk_emit(f);
    return false;
}

static bool line_tb_notes(struct cfw_framer *f, const struct lview *lv)
{
    const char *s = lv->s;
    size_t n = lv->n;
    int r;

    if (is_blank(s, n)) {
        /* Kept only if a chain line follows; trailing blank lines are trimmed on emit. */
        f->gap = true;
        return blk_add(f, lv) >= 0;
    }
    if (indent_of(s, n) != f->exc_indent) {
        blk_emit(f);
        return false;
    }
    if (is_chain(s, n)) {
        r = blk_add(f, lv);
        if (r == 0) {
            f->bst = BLK_TB_CHAIN;
        }
        return r >= 0;
    }
    if (f->gap || starts_other(s, n)) {
        blk_emit(f);
        return false;
    }
    r = blk_add(f, lv);
    if (r < 0) {
        return false;
    }
    if (r == 0 && ++f->notes >= TB_MAX_NOTES) {
        blk_emit(f);
    }
    return true;
}

static bool line_tb_chain(struct cfw_framer *f, const struct lview *lv)
{
    const char *s = lv->s;
    size_t n = lv->n;
    size_t tb;
    int r;

    if (is_blank(s, n)) {
        return blk_add(f, lv) >= 0;
    }
    tb = find_tb(s, n);
    if (tb != SIZE_MAX && indent_of(s, n) == f->base_indent && is_blank(s + tb, n - tb)) {
        r = blk_add(f, lv);
        if (r == 0) {
            f->bst = BLK_TB_BODY;
        }
        return r >= 0;
    }
    blk_emit(f);
    return false;
}

/* Feeds one cleaned text line to the block assembler. */
static void text_line(struct cfw_framer *f, const struct lview *lv)
{
    bool taken = false;

    while (!taken) {
        switch (f->bst) {
        case BLK_NONE:
            line_none(f, lv);
            taken = true;
            break;
        case BLK_WRANGLER:
            taken = line_wrangler(f, lv);
            break;
        case BLK_TB_BODY:
            taken = line_tb_body(f, lv);
            break;
        case BLK_TB_NOTES:
            taken = line_tb_notes(f, lv);
            break;
        case BLK_TB_CHAIN:
            taken = line_tb_chain(f, lv);
            break;
        }
    }
}

/* ---- JSON tokenizer ---- */

static void tok_reset(struct jtok *t, uint64_t *nl, bool ws_only)
{
    t->st = J_VALUE;
    t->key = false;
    t->too_deep = false;
    t->ws_only = ws_only;
    t->err_ws = false;
    t->hex = 0;
    t->lit = NULL;
    t->depth = 0;
    t->nl = nl;
}

/* Starts a value at byte c; false when c cannot start one. */
static bool tok_value(struct jtok *t, unsigned c)
{
    switch (c) {
    case '{':
    case '[':
        if (t->depth >= t->cap) {
            return false;
        }
        t->stack[t->depth++] = c == '{';
        if (t->depth > t->max_depth) {
            t->too_deep = true;
        }
        t->st = c == '{' ? J_OBJ_FIRST : J_ARR_FIRST;
        return true;
    case '"':
        t->key = false;
        t->st = J_STR;
        return true;
    case '-':
        t->st = J_NEG;
        return true;
    case '0':
        t->st = J_ZERO;
        return true;
    case 't':
        t->lit = "rue";
        t->st = J_LIT;
        return true;
    case 'f':
        t->lit = "alse";
        t->st = J_LIT;
        return true;
    case 'n':
        t->lit = "ull";
        t->st = J_LIT;
        return true;
    default:
        if (is_digit(c)) {
            t->st = J_INT;
            return true;
        }
        return false;
    }
}

/* Skips string bytes from i: stops at a control byte, '"' or '\\' (or n). */
static size_t str_skip(const unsigned char *p, size_t i, size_t n)
{
#ifdef FRAMER_SWAR
    while (i + 8 <= n) {
        uint64_t w;
        uint64_t q;
        uint64_t b;
        uint64_t m;

        memcpy(&w, p + i, 8);
        q = w ^ (ONES * '"');
        b = w ^ (ONES * '\\');
        m = (((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS;
        if (m != 0) {
            return i + (size_t)(__builtin_ctzll(m) >> 3);
        }
        i += 8;
    }
#endif
    while (i < n && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\') {
        i++;
    }
    return i;
}

/* Skips spaces from i (the indentation of pretty-printed JSON). */
static size_t space_skip(const unsigned char *p, size_t i, size_t n)
{
#ifdef FRAMER_SWAR
    while (i + 8 <= n) {
        uint64_t w;

        memcpy(&w, p + i, 8);
        if (w != ONES * ' ') {
            break;
        }
        i += 8;
    }
#endif
    while (i < n && p[i] == ' ') {
        i++;
    }
    return i;
}

/*
 * The end of a string's plain bytes at p[*ip]: a quote (closing the string) or a backslash
 * (starting an escape); false for a control byte. Compact JSON (NDJSON) is mostly
 * `"key":"value","key":...`: the ':' after a key, the ',' after a value in an object and the
 * '"' that opens the next string are taken here, without a pass through the tokenizer's
 * switch for each.
 */
static inline bool tok_str_end(struct jtok *t, const unsigned char *p, size_t *ip, size_t n)
{
    size_t i = *ip;
    unsigned c = p[i];

    if (c != '"') {
        if (c != '\\') {
            return false;
        }
        t->st = J_ESC;
        *ip = i + 1;
        return true;
    }
    t->st = t->key ? J_COLON : J_AFTER;
    if (i + 2 < n && p[i + 1] == (t->key ? ':' : ',') && (t->key || t->stack[t->depth - 1])) {
        t->ws_only = false;
        i += 2;
        t->st = t->key ? J_VALUE : J_KEY;
        if (p[i] == '"') {
            t->key = t->st == J_KEY;
            t->st = J_STR;
            i++;
        }
        *ip = i;
        return true;
    }
    *ip = i + 1;
    return true;
}

/* A number's byte c in state J_ZERO, J_INT or J_FRAC; a byte that ends it is left for J_AFTER. */
static inline void tok_number(struct jtok *t, unsigned c, size_t *ip)
{
    if (is_digit(c) && t->st != J_ZERO) {
        (*ip)++;
    } else if (c == '.' && t->st != J_FRAC) {
        t->st = J_DOT;
        (*ip)++;
    } else if (c == 'e' || c == 'E') {
        t->st = J_EXP;
        (*ip)++;
    } else {
        t->st = J_AFTER; /* the number ended: this byte again in J_AFTER */
    }
}

/* One byte c of a token other than a string's plain bytes; false when it is not JSON. */
static inline bool tok_scalar(struct jtok *t, unsigned c, size_t *ip)
{
    switch (t->st) {
    case J_ESC:
        if (c == 'u') {
            t->st = J_HEX;
            t->hex = 4;
        } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                   c == 'r' || c == 't') {
            t->st = J_STR;
        } else {
            return false;
        }
        break;
    case J_HEX:
        if (!is_hex(c)) {
            return false;
        }
        if (--t->hex == 0) {
            t->st = J_STR;
        }
        break;
    case J_NEG:
        if (c == '0') {
            t->st = J_ZERO;
        } else if (is_digit(c)) {
            t->st = J_INT;
        } else {
            return false;
        }
        break;
    case J_ZERO:
    case J_INT:
    case J_FRAC:
        tok_number(t, c, ip);
        return true;
    case J_DOT:
    case J_EXPSIGN:
        if (!is_digit(c)) {
            return false;
        }
        t->st = t->st == J_DOT ? J_FRAC : J_EXPDIG;
        break;
    case J_EXP:
        if (c == '+' || c == '-') {
            t->st = J_EXPSIGN;
        } else if (is_digit(c)) {
            t->st = J_EXPDIG;
        } else {
            return false;
        }
        break;
    case J_EXPDIG:
        if (!is_digit(c)) {
            t->st = J_AFTER;
            return true;
        }
        break;
    case J_LIT:
        if (c != (unsigned char)*t->lit) {
            return false;
        }
        if (*++t->lit == '\0') {
            t->st = J_AFTER;
        }
        break;
    default:
        break;
    }
    (*ip)++;
    return true;
}

/* Blanks between tokens from i (newlines counted); the index of the first other byte. */
static inline size_t tok_blanks(struct jtok *t, const unsigned char *p, size_t i, size_t n)
{
    while (i < n) {
        unsigned c = p[i];

        if (c == ' ') {
            i = space_skip(p, i + 1, n);
        } else if (c == '\t' || c == '\r') {
            i++;
        } else if (c == '\n') {
            if (t->nl != NULL) {
                (*t->nl)++;
            }
            t->ws_only = true;
            i++;
        } else {
            break;
        }
    }
    return i;
}

enum tstep {
    T_NEXT,  /* the byte was taken */
    T_CLOSE, /* a closing bracket: the container ends (if it is the right one) */
    T_ERR,   /* not JSON */
};

/* A structural byte c between tokens. */
static inline enum tstep tok_struct(struct jtok *t, unsigned c)
{
    switch (t->st) {
    case J_VALUE:
    case J_ARR_FIRST:
        if (c == ']' && t->st == J_ARR_FIRST) {
            return T_CLOSE;
        }
        return tok_value(t, c) ? T_NEXT : T_ERR;
    case J_OBJ_FIRST:
    case J_KEY:
        if (c == '}' && t->st == J_OBJ_FIRST) {
            return T_CLOSE;
        }
        if (c != '"') {
            return T_ERR;
        }
        t->key = true;
        t->st = J_STR;
        return T_NEXT;
    case J_COLON:
        if (c != ':') {
            return T_ERR;
        }
        t->st = J_VALUE;
        return T_NEXT;
    case J_AFTER:
        if (c == ',') {
            t->st = t->stack[t->depth - 1] ? J_KEY : J_VALUE;
            return T_NEXT;
        }
        return c == '}' || c == ']' ? T_CLOSE : T_ERR;
    default:
        return T_ERR;
    }
}

/*
 * Runs the tokenizer over n bytes of one value that starts with '{' or '['. Strings, which
 * are most of the bytes of a log event, are skipped by a tight loop; everything else goes
 * through one switch per byte. No allocation, no recursion.
 */
static enum jres tok_run(struct jtok *t, const char *buf, size_t n, size_t *used)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t i = 0;
    bool ls;
    unsigned c;

    while (i < n) {
        switch (t->st) {
        case J_STR:
            i = str_skip(p, i, n);
            if (i == n) {
                goto more;
            }
            if (!tok_str_end(t, p, &i, n)) {
                goto err;
            }
            continue;
        case J_VALUE:
        case J_ARR_FIRST:
        case J_OBJ_FIRST:
        case J_KEY:
        case J_COLON:
        case J_AFTER:
            break;
        default:
            if (!tok_scalar(t, p[i], &i)) {
                goto err;
            }
            continue;
        }
        i = tok_blanks(t, p, i, n);
        if (i == n) {
            break;
        }
        c = p[i];
        ls = t->ws_only;
        t->ws_only = false;
        switch (tok_struct(t, c)) {
        case T_NEXT:
            i++;
            continue;
        case T_ERR:
            t->err_ws = ls;
            *used = i;
            return JR_ERR;
        case T_CLOSE:
            break;
        }
        if (t->depth == 0 || c != (t->stack[t->depth - 1] ? '}' : ']')) {
            t->err_ws = ls;
            *used = i;
            return JR_ERR;
        }
        t->depth--;
        i++;
        if (t->depth == 0) {
            *used = i;
            return JR_DONE;
        }
        t->st = J_AFTER;
    }
more:
    *used = n;
    return JR_MORE;
err:
    t->err_ws = false;
    *used = i;
    return JR_ERR;
}

/* Turns the fast check of objects (jsonline.h) off or on (framer_int.h). */
void cfw_framer_set_fast_json(struct cfw_framer *f, bool on)
{
    f->no_fast = !on;
}

/* What mq_feed makes of a line that starts a value (framer_int.h). */
size_t cfw_framer_line_value(const char *s, size_t n, size_t max_depth)
{
    struct jtok t = {.max_depth = max_depth, .cap = max_depth + JSON_SKIP_DEPTH};
    char *line = cfw_xmalloc(n + 1);
    size_t used = 0;
    bool whole;

    t.stack = cfw_xmalloc(t.cap);
    tok_reset(&t, NULL, true);
    memcpy(line, s, n);
    line[n] = '\n';
    whole = n > 0 && s[0] == '{' && tok_run(&t, line, n + 1, &used) == JR_DONE && !t.too_deep &&
            is_blank(line + used, n - used);
    free(t.stack);
    free(line);
    return whole ? used : 0;
}

/* ---- JSON format ---- */

/*
 * Counting: garbage_bytes are the non-blank bytes between values, every byte skipped while
 * resynchronising (blanks and newlines included) and the bytes of abandoned values; each
 * abandoned value (malformed, larger than max_json, deeper than max_depth, cut by the end of
 * the input) is one json_error. A too-large or too-deep value is skipped to its real end by
 * the tokenizer; after a structural error the stream resynchronises at the next line whose
 * first non-blank byte is '{' or '[' (the failing byte itself when it is one).
 */
static void json_begin(struct cfw_framer *f)
{
    tok_reset(&f->tok, &f->stats.lines, f->ws_only);
    f->js = JS_VALUE;
    f->jline = f->stats.lines + 1;
    f->jsize = 0;
    f->jlarge = false;
    cfw_buf_reset(&f->jbuf);
}

static void json_store(struct cfw_framer *f, const char *p, size_t n)
{
    f->jsize += n;
    if (f->jlarge) {
        return;
    }
    if (f->jbuf.len + n > f->o.max_json) {
        f->jlarge = true;
        cfw_buf_reset(&f->jbuf);
        return;
    }
    cfw_buf_append(&f->jbuf, p, n);
}

static void json_abandon(struct cfw_framer *f)
{
    f->stats.json_errors++;
    f->stats.garbage_bytes += f->jsize;
    cfw_buf_reset(&f->jbuf);
    f->jsize = 0;
}

static void json_done(struct cfw_framer *f)
{
    if (f->jlarge || f->tok.too_deep) {
        json_abandon(f);
    } else {
        emit(f, CFW_REC_JSON, f->jbuf.data, f->jbuf.len, f->jline, f->stats.lines + 1, NULL);
        cfw_buf_reset(&f->jbuf);
    }
    f->js = JS_IDLE;
}

static void json_feed(struct cfw_framer *f, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        if (f->js == JS_IDLE) {
            for (; i < n; i++) {
                char c = p[i];

                if (c == '{' || c == '[') {
                    break;
                }
                if (c == '\n') {
                    f->stats.lines++;
                    f->ws_only = true;
                } else if (c != ' ' && c != '\t' && c != '\r') {
                    f->stats.garbage_bytes++;
                    f->ws_only = false;
                }
            }
            if (i < n) {
                json_begin(f);
            }
        } else if (f->js == JS_VALUE) {
            size_t used = 0;
            enum jres r = tok_run(&f->tok, p + i, n - i, &used);

            json_store(f, p + i, used);
            i += used;
            f->ws_only = f->tok.ws_only;
            if (r == JR_DONE) {
                json_done(f);
            } else if (r == JR_ERR) {
                json_abandon(f);
                f->js = JS_RESYNC;
                if ((p[i] == '{' || p[i] == '[') && f->tok.err_ws) {
                    f->js = JS_IDLE;
                    f->ws_only = true;
                }
            }
        } else {
            while (i < n) {
                char c = p[i];
                const char *nl;
                size_t stop;

                if (c == '\n') {
                    f->stats.lines++;
                    f->stats.garbage_bytes++;
                    f->ws_only = true;
                    i++;
                    continue;
                }
                if (f->ws_only) {
                    if (c == '{' || c == '[') {
                        f->js = JS_IDLE;
                        break;
                    }
                    f->stats.garbage_bytes++;
                    f->ws_only = c == ' ' || c == '\t' || c == '\r';
                    i++;
                    continue;
                }
                nl = memchr(p + i, '\n', n - i);
                stop = nl != NULL ? (size_t)(nl - p) : n;
                f->stats.garbage_bytes += stop - i;
                i = stop;
            }
        }
    }
}

/* ---- MIXED: JSON values among text lines ---- */

static void mq_push(struct cfw_framer *f, const struct lview *lv)
{
    struct mline *m;

    if (f->mn == f->mcap) {
        f->mcap = f->mcap == 0 ? 16 : f->mcap * 2;
        f->ml = cfw_xrealloc(f->ml, f->mcap * sizeof(*f->ml));
    }
    m = &f->ml[f->mn++];
    m->off = f->mbuf.len;
    m->len = lv->n;
    m->no = lv->no;
    m->toff = f->mtimes.len;
    m->has_time = lv->time != NULL;
    cfw_buf_append(&f->mbuf, lv->s, lv->n);
    cfw_buf_putc(&f->mbuf, '\n');
    if (lv->time != NULL) {
        cfw_buf_append(&f->mtimes, lv->time, strlen(lv->time) + 1);
    }
}

static const char *mq_time(const struct cfw_framer *f, const struct mline *m)
{
    return m->has_time ? f->mtimes.data + m->toff : NULL;
}

/* Processes queued line idx as text. */
static void mq_text(struct cfw_framer *f, size_t idx)
{
    const struct mline *m = &f->ml[idx];
    struct lview lv = {
        .s = f->mbuf.data + m->off,
        .n = m->len,
        .no = m->no,
        .time = mq_time(f, m),
        .term = false,
    };

    text_line(f, &lv);
}

/* Feeds queued line idx (and its newline) to the open value; *end is the value's end offset. */
static enum jres mq_feed(struct cfw_framer *f, size_t idx, size_t *end)
{
    const struct mline *m = &f->ml[idx];
    const char *s = f->mbuf.data + m->off;
    size_t start = f->ml[f->ms].off;
    size_t used = 0;
    enum jres r;

    /*
     * The line and the newline mq_push put after it, in one run: a value that starts with '{'
     * cannot end at a newline, so JR_DONE is inside the line, and a newline inside a string
     * stops the run there (JR_ERR), as a separate run of it did.
     */
    r = tok_run(&f->tok, s, m->len + 1, &used);
    if (r == JR_MORE) {
        if (f->tok.too_deep || m->off + m->len + 1 - start > f->o.max_json) {
            return JR_ERR;
        }
        return JR_MORE;
    }
    /* The value must end its line: `{...} more text` is text. */
    if (r == JR_ERR || f->tok.too_deep || !is_blank(s + used, m->len - used) ||
        m->off + used - start > f->o.max_json) {
        return JR_ERR;
    }
    *end = m->off + used;
    return JR_DONE;
}

/* Drops the processed lines in front of the open value, or everything when none is open. */
static void mq_compact(struct cfw_framer *f)
{
    size_t boff, toff, i;

    if (!f->mopen) {
        f->mn = 0;
        f->mc = 0;
        f->ms = 0;
        cfw_buf_reset(&f->mbuf);
        cfw_buf_reset(&f->mtimes);
        return;
    }
    if (f->ms == 0) {
        return;
    }
    boff = f->ml[f->ms].off;
    toff = f->ml[f->ms].toff;
    memmove(f->mbuf.data, f->mbuf.data + boff, f->mbuf.len - boff);
    f->mbuf.len -= boff;
    f->mbuf.data[f->mbuf.len] = '\0';
    if (f->mtimes.data != NULL) {
        memmove(f->mtimes.data, f->mtimes.data + toff, f->mtimes.len - toff);
        f->mtimes.len -= toff;
        f->mtimes.data[f->mtimes.len] = '\0';
    }
    for (i = f->ms; i < f->mn; i++) {
        f->ml[i - f->ms] = f->ml[i];
        f->ml[i - f->ms].off -= boff;
        f->ml[i - f->ms].toff -= toff;
    }
    f->mn -= f->ms;
    f->mc -= f->ms;
    f->ms = 0;
}

/* A failed value: its first line is text, the lines after it are looked at again. */
static void mq_fail(struct cfw_framer *f)
{
    f->stats.json_errors++;
    f->mopen = false;
    mq_text(f, f->ms);
    f->mc = f->ms + 1;
}

/*
 * Works through the queue. Iterative on purpose: a value that fails is replayed from its
 * second line, where another value may begin; each failure consumes at least one line.
 */
static void mq_drain(struct cfw_framer *f)
{
    while (f->mc < f->mn) {
        size_t end = 0;
        enum jres r;

        if (!f->mopen) {
            const struct mline *m = &f->ml[f->mc];

            if (m->len == 0 || f->mbuf.data[m->off] != '{') {
                mq_text(f, f->mc);
                f->mc++;
                continue;
            }
            blk_emit(f); /* a '{' at column 0 ends any block; keep the records in order */
            f->mopen = true;
            f->ms = f->mc;
            tok_reset(&f->tok, NULL, true);
        }
        r = mq_feed(f, f->mc, &end);
        f->mc++;
        if (r == JR_DONE) {
            const struct mline *first = &f->ml[f->ms];
            const struct mline *last = &f->ml[f->mc - 1];

            f->mbuf.data[end] = '\0';
            emit(f, CFW_REC_JSON, f->mbuf.data + first->off, end - first->off, first->no, last->no,
                 mq_time(f, first));
            f->mopen = false;
        } else if (r == JR_ERR) {
            mq_fail(f);
        }
    }
    mq_compact(f);
}

/* Gives up on an open value (end of input, or a skipped line inside it): its lines are text. */
static void mq_abort(struct cfw_framer *f)
{
    while (f->mopen) {
        mq_fail(f);
        mq_drain(f);
    }
}

/*
 * A line that starts a value with nothing queued: when the fast check (jsonline.h) says it holds
 * one whole object and nothing else, the record mq_drain would make of it, without the queue and
 * the tokenizer; false when the fast check is not sure (the queue then reads the line).
 */
static bool json_line(struct cfw_framer *f, const struct lview *lv)
{
    struct cfw_jsonline jl;
    char *w;

    if (f->no_fast || !cfw_jsonline_scan(lv->s, lv->n, f->o.max_depth, 0, &jl) ||
        jl.len > f->o.max_json) {
        return false;
    }
    blk_emit(f); /* a '{' at column 0 ends any block; keep the records in order */
    if (!lv->term && f->o.unterminated) {
        emit_as(f, CFW_REC_JSON, lv->s, jl.len, lv->no, lv->no, lv->time, true);
        return true;
    }
    if (lv->term) {
        w = (char *)lv->s; /* the framer's own bytes (see lview) */
    } else {
        w = work_reserve(f, jl.len + 1);
        memcpy(w, lv->s, jl.len);
    }
    w[jl.len] = '\0';
    emit(f, CFW_REC_JSON, w, jl.len, lv->no, lv->no, lv->time);
    return true;
}

/*
 * Raw bytes p[0, n) at the start of a line that starts with '{', in MIXED mode with nothing
 * queued: when the fast check takes an object there whose lines process_line and the queue
 * would leave as they are (no cleaning, no prefix, none too long), its record, as mq_drain would
 * make it over those lines. Returns the bytes taken (through the last line's newline), 0 when
 * the lines must go through process_line.
 */
static size_t json_run(struct cfw_framer *f, const char *p, size_t n)
{
    struct cfw_jsonline jl;
    uint64_t first = f->stats.lines + 1;
    char *w;

    if (f->no_fast || f->mode != MODE_MIXED || f->mn != 0 || f->eol != '\n' ||
        !cfw_jsonline_scan(p, n, f->o.max_depth, f->o.max_line, &jl) || jl.len > f->o.max_json) {
        return 0;
    }
    blk_emit(f);
    f->stats.lines += jl.lines;
    f->ltime[0] = '\0'; /* as strip_prefix leaves it after a line without a prefix */
    if (f->o.unterminated) {
        emit_as(f, CFW_REC_JSON, p, jl.len, first, first + jl.lines - 1, NULL, true);
        return jl.next;
    }
    w = work_reserve(f, jl.len + 1);
    memcpy(w, p, jl.len);
    w[jl.len] = '\0';
    emit(f, CFW_REC_JSON, w, jl.len, first, first + jl.lines - 1, NULL);
    return jl.next;
}

static void mixed_line(struct cfw_framer *f, const struct lview *lv)
{
    if (f->mn == 0) {
        if (lv->n == 0 || lv->s[0] != '{') {
            text_line(f, lv);
            return;
        }
        if (json_line(f, lv)) {
            return;
        }
    }
    mq_push(f, lv);
    mq_drain(f);
}

/* ---- WRANGLER_LOG ---- */

/*
 * wrangler's debug log (workers-sdk packages/wrangler/src/utils/log-file.ts,
 * appendToDebugLogFile) appends one entry per logger call:
 *     "\n--- " + new Date().toISOString() + " " + level + "\n" + stripVTControlCharacters(message)
 *     + "\n---\n"
 * so an entry is a blank line, `--- 2026-08-16T08:07:29.126Z error`, the message (one or many
 * lines, colours already removed), and a line `---`. Older wranglers (utils/debug-log-file.ts,
 * `wrangler-debug-<date>.log`) wrote the same without the level. The level is one of
 * debug/info/log/warn/error. A message is one logger call, so an entry boundary also ends any
 * block; lines outside entries are framed as text without a time.
 */
static bool is_wlog_header(const char *s, size_t n)
{
    return n > 4 && memcmp(s, "--- ", 4) == 0 && is_digit((unsigned char)s[4]);
}

static bool is_wlog_close(const char *s, size_t n)
{
    return n >= 3 && memcmp(s, "---", 3) == 0 && is_blank(s + 3, n - 3);
}

static void wlog_line(struct cfw_framer *f, struct lview *lv)
{
    if (is_wlog_header(lv->s, lv->n)) {
        size_t k = 4;
        size_t tn;

        while (k < lv->n && lv->s[k] != ' ' && lv->s[k] != '\t') {
            k++;
        }
        tn = k - 4 < TIME_MAX - 1 ? k - 4 : TIME_MAX - 1;
        blk_emit(f);
        memcpy(f->wtime, lv->s + 4, tn);
        f->wtime[tn] = '\0';
        f->in_entry = true;
        return;
    }
    if (is_wlog_close(lv->s, lv->n)) {
        blk_emit(f);
        f->in_entry = false;
        return;
    }
    if (f->in_entry) {
        lv->time = f->wtime;
    }
    text_line(f, lv);
}

/* ---- line cleaning ---- */

/* Removes CSI, OSC and other ESC sequences in place (no terminator added); returns the length. */
size_t cfw_strip_ansi(char *s, size_t len)
{
    char *esc = memchr(s, 0x1b, len);
    size_t r, w;

    if (esc == NULL) {
        return len;
    }
    r = w = (size_t)(esc - s);
    while (r < len) {
        unsigned char c;
        size_t k;

        if (s[r] != 0x1b) {
            char *nx = memchr(s + r, 0x1b, len - r);
            size_t end = nx != NULL ? (size_t)(nx - s) : len;

            memmove(s + w, s + r, end - r);
            w += end - r;
            r = end;
            continue;
        }
        if (r + 1 == len) {
            break; /* a lone ESC at the end */
        }
        c = (unsigned char)s[r + 1];
        k = r + 2;
        if (c == '[') {
            /* CSI: parameter bytes, intermediate bytes, one final byte. */
            while (k < len && (unsigned char)s[k] >= 0x30 && (unsigned char)s[k] <= 0x3f) {
                k++;
            }
            while (k < len && (unsigned char)s[k] >= 0x20 && (unsigned char)s[k] <= 0x2f) {
                k++;
            }
            if (k < len && (unsigned char)s[k] >= 0x40 && (unsigned char)s[k] <= 0x7e) {
                k++;
            }
        } else if (c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_') {
            /* OSC (and DCS, SOS, PM, APC): a string ended by BEL or ST (ESC \). */
            while (k < len && s[k] != 0x07 && s[k] != 0x1b) {
                k++;
            }
            if (k < len && s[k] == 0x07) {
                k++;
            } else if (k + 1 < len && s[k + 1] == '\\') {
                k += 2;
            }
        } else if (c >= 0x20 && c <= 0x2f) {
            /* nF escape (character set selection and the like): intermediates, a final byte. */
            k = r + 1;
            while (k < len && (unsigned char)s[k] >= 0x20 && (unsigned char)s[k] <= 0x2f) {
                k++;
            }
            if (k < len && (unsigned char)s[k] >= 0x30 && (unsigned char)s[k] <= 0x7e) {
                k++;
            }
        } else if (c < 0x30 || c > 0x7e) {
            k = r + 1; /* ESC before something that is no escape: drop the ESC alone */
        }
        r = k;
    }
    return w;
}

/* Length of an ISO 8601 date-time (`YYYY-MM-DDTHH:MM:SS[.frac][Z|+HH:MM]`) at s, or 0. */
static size_t iso_time_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 19; /* dddd-dd-ddTdd:dd:dd */
    size_t j;

    /* unrolled: every line of a Builds log starts so, and most other lines fail at once */
    if (n < i || !is_digit(u[0]) || !is_digit(u[1]) || !is_digit(u[2]) || !is_digit(u[3]) ||
        u[4] != '-' || !is_digit(u[5]) || !is_digit(u[6]) || u[7] != '-' || !is_digit(u[8]) ||
        !is_digit(u[9]) || u[10] != 'T' || !is_digit(u[11]) || !is_digit(u[12]) || u[13] != ':' ||
        !is_digit(u[14]) || !is_digit(u[15]) || u[16] != ':' || !is_digit(u[17]) ||
        !is_digit(u[18])) {
        return 0;
    }
    if (i < n && (s[i] == '.' || s[i] == ',')) {
        j = i + 1;
        while (j < n && j - i <= 9 && is_digit((unsigned char)s[j])) {
            j++;
        }
        if (j > i + 1) {
            i = j;
        }
    }
    if (i < n && s[i] == 'Z') {
        i++;
    } else if (i + 2 < n && (s[i] == '+' || s[i] == '-') && is_digit((unsigned char)s[i + 1]) &&
               is_digit((unsigned char)s[i + 2])) {
        j = i + 3;
        if (j + 2 < n && s[j] == ':' && is_digit((unsigned char)s[j + 1]) &&
            is_digit((unsigned char)s[j + 2])) {
            j += 3;
        } else if (j + 1 < n && is_digit((unsigned char)s[j]) &&
                   is_digit((unsigned char)s[j + 1])) {
            j += 2;
        }
        i = j;
    }
    return i;
}

/*
 * Removes a known line prefix: `HH:MM:SS.mmm | ` (Workers Builds UI copy) or an ISO 8601 time
 * and one TAB or space (Workers Builds download, GitHub Actions). Returns the prefix length
 * and copies the time into out (empty when there is none).
 */
static size_t strip_prefix(const char *s, size_t n, char *out)
{
    size_t k;

    out[0] = '\0';
    if (n >= 14 && is_digit((unsigned char)s[0]) && s[2] == ':' && s[5] == ':' && s[8] == '.' &&
        s[12] == ' ' && s[13] == '|' && (n == 14 || s[14] == ' ')) {
        static const char pat[] = "dd:dd:dd.ddd";

        for (k = 0; k < LIT_LEN(pat); k++) {
            if (pat[k] == 'd' && !is_digit((unsigned char)s[k])) {
                return 0;
            }
        }
        memcpy(out, s, 12);
        out[12] = '\0';
        return n == 14 ? 14 : 15;
    }
    k = iso_time_len(s, n);
    if (k == 0 || k >= TIME_MAX || (k < n && s[k] != '\t' && s[k] != ' ')) {
        return 0;
    }
    memcpy(out, s, k);
    out[k] = '\0';
    return k < n ? k + 1 : k;
}

/* Whether s[0..n) holds a NUL byte and an ESC byte, in one pass. */
static void has_nul_esc(const char *s, size_t n, bool *nul, bool *esc)
{
    size_t i = 0;

    *nul = false;
    *esc = false;
#ifdef FRAMER_SWAR
    while (i + 8 <= n) {
        uint64_t w;
        uint64_t e;

        memcpy(&w, s + i, 8);
        e = w ^ (ONES * 0x1b);
        if ((((w - ONES) & ~w) | ((e - ONES) & ~e)) & HIGHS) {
            break; /* one of them is here: the byte loop below says which */
        }
        i += 8;
    }
#endif
    for (; i < n; i++) {
        *nul = *nul || s[i] == '\0';
        *esc = *esc || s[i] == 0x1b;
    }
}

/*
 * Where the next ESC and NUL bytes of a read buffer are, found ahead with one memchr each, so
 * that a line without them (most lines) is told so by two compares instead of a scan of its
 * own. Offsets from the buffer's start; at n when there is none.
 */
struct specials {
    const char *buf;
    size_t n;
    size_t esc; /* valid when >= the offset asked about */
    size_t nul;
    bool known;
};

static size_t next_of(const struct specials *sp, size_t from, int c)
{
    const char *q = memchr(sp->buf + from, c, sp->n - from);

    return q != NULL ? (size_t)(q - sp->buf) : sp->n;
}

/* Whether buf[off, off + len) may hold an ESC or a NUL byte. */
static bool has_special(struct specials *sp, size_t off, size_t len)
{
    if (!sp->known || sp->esc < off) {
        sp->esc = next_of(sp, off, 0x1b);
    }
    if (!sp->known || sp->nul < off) {
        sp->nul = next_of(sp, off, '\0');
    }
    sp->known = true;
    return sp->esc < off + len || sp->nul < off + len;
}

/*
 * Cleans one raw line (without its '\n') and hands it to the mode. w is p when the bytes are
 * the framer's own and may be rewritten (with room for a terminator at p[n]), else NULL.
 * clean: the caller knows the line holds no ESC and no NUL byte.
 */
static void process_line(struct cfw_framer *f, const char *p, size_t n, char *w, bool clean)
{
    struct lview lv;
    bool nul = false, esc = false;
    size_t k;

    lv.no = ++f->stats.lines;
    if (n > 0 && p[n - 1] == '\r') {
        n--;
    }
    if (lv.no == 1 && !f->mid && n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
        p += 3;
        n -= 3;
        if (w != NULL) {
            w += 3;
        }
    }
    if (!clean) {
        has_nul_esc(p, n, &nul, &esc);
    }
    if (nul || esc) {
        if (w == NULL) {
            w = work_reserve(f, n + 1);
            memcpy(w, p, n);
        }
        if (nul) {
            char *z = w;

            while ((z = memchr(z, '\0', n - (size_t)(z - w))) != NULL) {
                *z = ' ';
                f->stats.nul_bytes++;
            }
        }
        if (esc) {
            n = cfw_strip_ansi(w, n);
            if (n > 0 && w[n - 1] == '\r') {
                n--;
            }
        }
        p = w;
    }
    k = strip_prefix(p, n, f->ltime);
    lv.s = p + k;
    lv.n = n - k;
    lv.time = k > 0 && f->ltime[0] != '\0' ? f->ltime : NULL;
    lv.term = w != NULL;
    if (w != NULL) {
        w[n] = '\0';
    }
    if (f->mode == MODE_UNDECIDED) {
        if (is_blank(lv.s, lv.n)) {
            return;
        }
        f->mode = is_wlog_header(lv.s, lv.n) ? MODE_WLOG : MODE_MIXED;
    }
    switch (f->mode) {
    case MODE_WLOG:
        wlog_line(f, &lv);
        break;
    case MODE_MIXED:
        mixed_line(f, &lv);
        break;
    default:
        text_line(f, &lv);
        break;
    }
}

/* An over-long line was skipped: a JSON value open across it cannot be whole. */
static void line_skipped(struct cfw_framer *f)
{
    f->stats.lines++;
    if (f->mode == MODE_MIXED) {
        mq_abort(f);
    }
}

static void text_feed(struct cfw_framer *f, const char *p, size_t n);

/*
 * CR-only input (classic Mac line ends, some exported logs). Lines end at LF (CRLF included),
 * except in an input with no LF before its first max_line + 1 bytes, or before its end when it
 * is shorter, and a CR among those bytes: then CR is the line end from there on, and what was
 * held is framed again, split at each CR. An LF that comes later (a file edited on two systems)
 * ends a line too, and CRLF is one line end, as with universal newlines. The decision depends
 * on the bytes only, not on how they were fed (one feed or many give the same records). A CI
 * log whose progress bars rewrite a line with CRs keeps LF: its first LF comes well before
 * max_line.
 */
static bool cr_in(const char *p, size_t n)
{
    return n > 0 && memchr(p, '\r', n) != NULL;
}

/* In CR mode: the first CR or LF in p[0..n), or NULL. */
static const char *cr_or_lf(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\r' || p[i] == '\n') {
            return p + i;
        }
    }
    return NULL;
}

/* Makes CR the line end and frames the held partial line and p[0..n) again. */
static void cr_switch(struct cfw_framer *f, const char *p, size_t n)
{
    size_t len = f->lbuf.len + n;
    char *held = cfw_xmalloc(len + 1);

    f->eol = '\r';
    if (f->lbuf.len > 0) {
        memcpy(held, f->lbuf.data, f->lbuf.len);
    }
    memcpy(held + f->lbuf.len, p, n);
    cfw_buf_reset(&f->lbuf);
    text_feed(f, held, len);
    free(held);
}

static void text_feed(struct cfw_framer *f, const char *p, size_t n)
{
    struct specials sp;

    if (f->cr_pending && n > 0) {
        f->cr_pending = false;
        if (p[0] == '\n') {
            p++;
            n--;
        }
    }
    sp = (struct specials){.buf = p, .n = n};
    while (n > 0) {
        const char *nl;
        size_t took;

        if (p[0] == '{' && f->eol == '\n' && !f->skipping && f->lbuf.len == 0 &&
            (took = json_run(f, p, n)) > 0) {
            /* a JSON object taken whole: it finds its own end, no newline search first */
            p += took;
            n -= took;
            continue;
        }
        nl = f->eol == '\r' ? cr_or_lf(p, n) : memchr(p, '\n', n);
        size_t seg = nl != NULL ? (size_t)(nl - p) : n;
        size_t adv = seg + 1;

        if (f->eol == '\r' && nl != NULL && *nl == '\r') {
            /* CRLF is one line end; a CR last in this feed may have its LF in the next */
            if (seg + 1 < n) {
                adv += p[seg + 1] == '\n';
            } else {
                f->cr_pending = true;
            }
        }
        if (f->eol == 0 && !f->skipping && f->lbuf.len + seg > f->o.max_line) {
            /* the first max_line + 1 bytes decide (lbuf never holds more than max_line) */
            size_t w = f->o.max_line + 1 - f->lbuf.len;

            if (cr_in(f->lbuf.data, f->lbuf.len) || cr_in(p, w < seg ? w : seg)) {
                cr_switch(f, p, n);
                return;
            }
            f->eol = '\n';
        }
        if (nl != NULL && f->eol == 0) {
            f->eol = '\n';
        }
        if (f->skipping) {
            if (nl == NULL) {
                return;
            }
            f->skipping = false;
            line_skipped(f);
        } else if (f->lbuf.len + seg > f->o.max_line) {
            f->stats.long_lines++;
            cfw_buf_reset(&f->lbuf);
            if (nl == NULL) {
                f->skipping = true;
                return;
            }
            line_skipped(f);
        } else if (nl == NULL) {
            cfw_buf_append(&f->lbuf, p, n);
            return;
        } else if (f->lbuf.len > 0) {
            cfw_buf_append(&f->lbuf, p, seg);
            process_line(f, f->lbuf.data, f->lbuf.len, f->lbuf.data, false);
            cfw_buf_reset(&f->lbuf);
        } else {
            process_line(f, p, seg, NULL, !has_special(&sp, (size_t)(p - sp.buf), seg));
        }
        p += adv;
        n -= adv;
    }
}

/* ---- public interface ---- */

/* Creates a framer for one input; opts may be NULL for defaults. */
struct cfw_framer *cfw_framer_new(const char *input, const struct cfw_framer_opts *opts,
                                  cfw_record_cb cb, void *arg)
{
    struct cfw_framer *f = cfw_xcalloc(1, sizeof(*f));
    const size_t slack = 64;
    size_t mq_max;

    if (opts != NULL) {
        f->o = *opts;
    }
    if (f->o.max_line == 0) {
        f->o.max_line = CFW_FRAMER_MAX_LINE_DEFAULT;
    }
    if (f->o.max_record == 0) {
        f->o.max_record = CFW_FRAMER_MAX_RECORD_DEFAULT;
    }
    if (f->o.max_block_lines == 0) {
        f->o.max_block_lines = CFW_FRAMER_MAX_BLOCK_LINES_DEFAULT;
    }
    if (f->o.max_json == 0) {
        f->o.max_json = CFW_FRAMER_MAX_JSON_DEFAULT;
    }
    if (f->o.max_depth == 0) {
        f->o.max_depth = CFW_FRAMER_MAX_DEPTH_DEFAULT;
    }
    if (f->o.max_depth > JSON_MAX_DEPTH_LIMIT) {
        f->o.max_depth = JSON_MAX_DEPTH_LIMIT;
    }
    /*
     * The checks by hand decide what is kept; the caps sit above them (slack bytes) and only
     * stop a bug. lbuf holds at most max_line, bbuf max_record, jbuf max_json; the MIXED queue
     * an open value (at most max_json) and one more line with its '\n', each of its lines (one
     * byte at least) a time of at most TIME_MAX bytes.
     */
    mq_max = f->o.max_json + f->o.max_line + 1 + slack;
    cfw_buf_init(&f->lbuf, f->o.max_line + slack);
    cfw_buf_init(&f->bbuf, f->o.max_record + slack);
    cfw_buf_init(&f->jbuf, f->o.max_json + slack);
    cfw_buf_init(&f->mbuf, mq_max);
    cfw_buf_init(&f->mtimes, mq_max * TIME_MAX);
    f->input = cfw_xstrdup(input != NULL ? input : "");
    f->cb = cb;
    f->arg = arg;
    switch (f->o.format) {
    case CFW_FMT_LINES:
        f->mode = MODE_LINES;
        break;
    case CFW_FMT_JSON:
        f->mode = MODE_JSON;
        break;
    case CFW_FMT_WRANGLER_LOG:
        f->mode = MODE_WLOG;
        break;
    default:
        f->mode = MODE_UNDECIDED;
        break;
    }
    f->tok.max_depth = f->o.max_depth;
    f->tok.cap = f->o.max_depth + JSON_SKIP_DEPTH;
    f->tok.stack = cfw_xmalloc(f->tok.cap);
    f->js = JS_IDLE;
    f->ws_only = true;
    f->last_byte = '\n';
    return f;
}

/* Feeds bytes; calls the callback for every record they complete. */
void cfw_framer_feed(struct cfw_framer *f, const char *buf, size_t len)
{
    if (f == NULL || len == 0) {
        return;
    }
    f->stats.bytes += len;
    f->last_byte = buf[len - 1];
    if (f->mode == MODE_JSON) {
        json_feed(f, buf, len);
    } else {
        text_feed(f, buf, len);
    }
}

/* Emits a held block; a partial line and an open JSON value are kept. */
void cfw_framer_flush(struct cfw_framer *f)
{
    if (f != NULL) {
        blk_emit(f);
    }
}

/* True when a block, a partial line or part of a JSON value is held. */
bool cfw_framer_pending(const struct cfw_framer *f)
{
    if (f == NULL) {
        return false;
    }
    return f->lbuf.len > 0 || f->bst != BLK_NONE || f->js == JS_VALUE || f->mn > 0;
}

/* End of input: emits everything held; an unfinished JSON value is counted as an error. */
void cfw_framer_finish(struct cfw_framer *f)
{
    if (f == NULL) {
        return;
    }
    if (f->mode == MODE_JSON) {
        if (f->last_byte != '\n') {
            f->stats.lines++;
        }
        if (f->js == JS_VALUE) {
            json_abandon(f);
        }
        f->js = JS_IDLE;
        f->ws_only = true;
    } else {
        if (f->eol == 0 && !f->skipping && cr_in(f->lbuf.data, f->lbuf.len)) {
            cr_switch(f, "", 0); /* a short CR-only input ends: split what is held */
        }
        if (f->skipping) {
            f->skipping = false;
            line_skipped(f);
        } else if (f->lbuf.len > 0) {
            process_line(f, f->lbuf.data, f->lbuf.len, f->lbuf.data, false);
            cfw_buf_reset(&f->lbuf);
        }
        if (f->mode == MODE_MIXED) {
            mq_abort(f);
        }
        blk_emit(f);
        f->in_entry = false;
    }
    f->last_byte = '\n';
}

bool cfw_framer_mid_of(const struct cfw_framer *f, struct cfw_framer_mid *mid)
{
    if ((f->mode != MODE_MIXED && f->mode != MODE_LINES) || f->eol != '\n') {
        return false;
    }
    mid->mode = (int)f->mode;
    return true;
}

struct cfw_framer *cfw_framer_new_mid(const char *input, const struct cfw_framer_opts *opts,
                                      cfw_record_cb cb, void *arg, const struct cfw_framer_mid *mid)
{
    struct cfw_framer *f = cfw_framer_new(input, opts, cb, arg);

    f->mode = (enum mode)mid->mode;
    f->eol = '\n';
    f->mid = true;
    return f;
}

/*
 * At rest, a MIXED or LINES framer's next record depends on the bytes to come only: no partial
 * line, no block that a next line might continue, no queued line of a JSON value being tried,
 * and the line end and mode decided. (The time prefix, the work buffer and the tokenizer are
 * set afresh for every line or value.)
 */
bool cfw_framer_at_rest(const struct cfw_framer *f)
{
    return (f->mode == MODE_MIXED || f->mode == MODE_LINES) && f->eol == '\n' && f->lbuf.len == 0 &&
           !f->skipping && !f->cr_pending && f->bst == BLK_NONE && f->mn == 0 && !f->mopen;
}

/* Returns the format in use; MIXED is reported as LINES (text lines with JSON values in them). */
enum cfw_input_format cfw_framer_format(const struct cfw_framer *f)
{
    switch (f->mode) {
    case MODE_UNDECIDED:
        return CFW_FMT_AUTO;
    case MODE_JSON:
        return CFW_FMT_JSON;
    case MODE_WLOG:
        return CFW_FMT_WRANGLER_LOG;
    case MODE_LINES:
    case MODE_MIXED:
        break;
    }
    return CFW_FMT_LINES;
}

/* Returns the framer's counters. */
const struct cfw_framer_stats *cfw_framer_stats(const struct cfw_framer *f)
{
    return &f->stats;
}

/* Frees the framer (NULL is fine) without emitting anything held. */
void cfw_framer_free(struct cfw_framer *f)
{
    if (f == NULL) {
        return;
    }
    free(f->input);
    cfw_buf_free(&f->lbuf);
    free(f->work);
    cfw_buf_free(&f->bbuf);
    cfw_buf_free(&f->jbuf);
    cfw_buf_free(&f->mbuf);
    cfw_buf_free(&f->mtimes);
    free(f->ml);
    free(f->tok.stack);
    free(f);
}
