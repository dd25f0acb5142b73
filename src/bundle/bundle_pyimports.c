/* --check-bundle: a Python tokenizer that finds import statements and the block they run in. */
#include <stdlib.h>
#include <string.h>

#include "bundle_int.h"
#include "cfwatchd/bundle.h"

/* Tokens kept per logical line; a longer line (a huge literal) is only partly looked at. */
#define MAX_LINE_TOKENS 65536
/* Nesting of strings inside f-string replacement fields. */
#define MAX_FSTRING_DEPTH 16
/* Nesting of tracked blocks (def, try, if TYPE_CHECKING). */
#define MAX_BLOCKS 256

enum tk { TK_NAME, TK_NUMBER, TK_STRING, TK_OP };

struct tok {
    enum tk kind;
    char op;
    size_t start;
    size_t end;
    int line;
    int col;
};

enum bkind { B_DEF, B_TRY, B_TYPECHECK, B_MAINGUARD, B_EXCEPT };

struct blk {
    int indent;
    enum bkind kind;
    int try_idx;
};

struct tryrec {
    int indent;
    int parent;
    bool catches;
    bool open; /* still accepting except/else/finally clauses */
};

struct sc {
    const char *s;
    size_t len;
    size_t pos;
    int line;
    size_t line_start;
    int depth; /* bracket depth */
    struct tok *toks;
    size_t ntoks;
    size_t captoks;
    struct blk blocks[MAX_BLOCKS];
    int nblocks;
    struct tryrec *tries;
    size_t ntries;
    size_t captries;
    int *imp_try;     /* per import: innermost enclosing try record, or -1 */
    int *imp_handler; /* per import: the try record whose except clause holds it, or -1 */
    size_t cap_imp_try;
    struct cfw_bundle_imports *out;
};

static char at(const struct sc *c, size_t off)
{
    return c->pos + off < c->len ? c->s[c->pos + off] : '\0';
}

static void newline_at(struct sc *c, size_t nl_pos)
{
    c->line++;
    c->line_start = nl_pos + 1;
}

static bool is_ident_start(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_' || ch >= 0x80;
}

static bool is_ident_char(unsigned char ch)
{
    return is_ident_start(ch) || (ch >= '0' && ch <= '9');
}

static void skip_string(struct sc *c, bool fmt, int nest);

/* If a string (with an optional r/b/u/f/t prefix) starts at pos + off, returns its flags. */
static bool string_start(const struct sc *c, size_t off, size_t *prefix_len, bool *fmt)
{
    size_t k = 0;

    *fmt = false;
    while (k < 2) {
        char ch = at(c, off + k);
        if (strchr("rRbBuUfFtT", ch) == NULL || ch == '\0') {
            break;
        }
        if (ch == 'f' || ch == 'F' || ch == 't' || ch == 'T') {
            *fmt = true;
        }
        k++;
    }
    if (at(c, off + k) == '"' || at(c, off + k) == '\'') {
        /* "rr", "ub", ... are not prefixes; Python rejects them, so treat them as names. */
        if (k == 2) {
            char a = (char)(at(c, off) | 0x20), b = (char)(at(c, off + 1) | 0x20);
            if (a == b || a == 'u' || b == 'u' || !(a == 'r' || b == 'r')) {
                return false;
            }
        }
        *prefix_len = k;
        return true;
    }
    return false;
}

/* Skips an f-string replacement field; pos is on the '{'. */
static void skip_fexpr(struct sc *c, int nest)
{
    int d = 0;
    bool spec = false;

    c->pos++;
    while (c->pos < c->len) {
        char ch = c->s[c->pos];
        size_t plen;
        bool fmt;

        if (ch == '\n') {
            newline_at(c, c->pos);
            c->pos++;
            continue;
        }
        if (spec) {
            /* The format spec is literal text with nested {fields}. */
            if (ch == '{') {
                skip_fexpr(c, nest);
                continue;
            }
            if (ch == '}') {
                c->pos++;
                return;
            }
            c->pos++;
            continue;
        }
        if (string_start(c, 0, &plen, &fmt) &&
            (plen == 0 || !is_ident_char((unsigned char)(c->pos > 0 ? c->s[c->pos - 1] : ' ')))) {
            if (nest >= MAX_FSTRING_DEPTH) {
                c->pos++;
                continue;
            }
            c->pos += plen;
            skip_string(c, fmt, nest + 1);
            continue;
        }
        if (ch == '(' || ch == '[' || ch == '{') {
            d++;
        } else if (ch == ')' || ch == ']') {
            d--;
        } else if (ch == '}') {
            if (d <= 0) {
                c->pos++;
                return;
            }
            d--;
        } else if (ch == ':' && d <= 0) {
            spec = true;
        } else if (ch == '!' && d <= 0 && at(c, 1) != '=') {
            /* !r / !s / !a conversion: the spec (if any) follows. */
        }
        c->pos++;
    }
}

/* Skips a string literal; pos is on the opening quote (after any prefix). */
static void skip_string(struct sc *c, bool fmt, int nest)
{
    char q = at(c, 0);
    bool triple = at(c, 1) == q && at(c, 2) == q;

    c->pos += triple ? 3 : 1;
    while (c->pos < c->len) {
        char ch = c->s[c->pos];

        if (ch == '\\') {
            /* In raw strings too, a backslash keeps the next quote from closing the string. */
            if (c->pos + 1 < c->len) {
                if (c->s[c->pos + 1] == '\n') {
                    newline_at(c, c->pos + 1);
                }
                c->pos += 2;
            } else {
                c->pos++;
            }
            continue;
        }
        if (ch == '\n') {
            if (!triple) {
                return; /* unterminated: stop at the end of the line */
            }
            newline_at(c, c->pos);
            c->pos++;
            continue;
        }
        if (ch == q) {
            if (!triple) {
                c->pos++;
                return;
            }
            if (at(c, 1) == q && at(c, 2) == q) {
                c->pos += 3;
                return;
            }
        }
        if (fmt && ch == '{') {
            if (at(c, 1) == '{') {
                c->pos += 2;
                continue;
            }
            skip_fexpr(c, nest);
            continue;
        }
        c->pos++;
    }
}

static void push_tok(struct sc *c, enum tk kind, char op, size_t start, int line, int col)
{
    if (c->ntoks == MAX_LINE_TOKENS) {
        return;
    }
    if (c->ntoks == c->captoks) {
        c->captoks = c->captoks ? c->captoks * 2 : 64;
        c->toks = cfw_xrealloc(c->toks, c->captoks * sizeof(*c->toks));
    }
    c->toks[c->ntoks++] = (struct tok){kind, op, start, c->pos, line, col};
}

static bool tok_is(const struct sc *c, size_t i, size_t n, const char *word)
{
    size_t wl = strlen(word);
    return i < n && c->toks[i].kind == TK_NAME && c->toks[i].end - c->toks[i].start == wl &&
           memcmp(c->s + c->toks[i].start, word, wl) == 0;
}

static bool tok_op(const struct sc *c, size_t i, size_t n, char op)
{
    return i < n && c->toks[i].kind == TK_OP && c->toks[i].op == op;
}

static char *tok_str(const struct sc *c, size_t i)
{
    return cfw_xstrndup(c->s + c->toks[i].start, c->toks[i].end - c->toks[i].start);
}

static int current_handler(const struct sc *c)
{
    for (int k = c->nblocks; k > 0; k--) {
        if (c->blocks[k - 1].kind == B_EXCEPT) {
            return c->blocks[k - 1].try_idx;
        }
    }
    return -1;
}

static struct cfw_bundle_import *new_import(struct sc *c, unsigned ctx, int try_idx)
{
    struct cfw_bundle_imports *o = c->out;

    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->v = cfw_xrealloc(o->v, o->cap * sizeof(*o->v));
    }
    if (o->n >= c->cap_imp_try) {
        c->cap_imp_try = o->cap;
        c->imp_try = cfw_xrealloc(c->imp_try, c->cap_imp_try * sizeof(*c->imp_try));
        c->imp_handler = cfw_xrealloc(c->imp_handler, c->cap_imp_try * sizeof(*c->imp_handler));
    }
    c->imp_try[o->n] = try_idx;
    c->imp_handler[o->n] = current_handler(c);
    memset(&o->v[o->n], 0, sizeof(o->v[o->n]));
    o->v[o->n].ctx = ctx;
    return &o->v[o->n++];
}

/* Parses NAME ('.' NAME)* at *i; returns the dotted name or NULL. */
static char *dotted(struct sc *c, size_t *i, size_t n, struct cfw_bundle_import *im)
{
    struct cfw_buf b;

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    if (*i >= n || c->toks[*i].kind != TK_NAME) {
        return NULL;
    }
    im->mod_start = c->toks[*i].start;
    im->line = c->toks[*i].line;
    im->col = c->toks[*i].col;
    for (;;) {
        cfw_buf_append(&b, c->s + c->toks[*i].start, c->toks[*i].end - c->toks[*i].start);
        (*i)++;
        if (tok_op(c, *i, n, '.') && *i + 1 < n && c->toks[*i + 1].kind == TK_NAME) {
            if (im->first_dot_end == 0) {
                im->first_dot_end = c->toks[*i].end;
            }
            cfw_buf_putc(&b, '.');
            (*i)++;
            continue;
        }
        break;
    }
    return cfw_buf_take(&b);
}

static void push_name(struct cfw_bundle_import *im, char *name)
{
    im->names = cfw_xrealloc(im->names, (im->n_names + 1) * sizeof(char *));
    im->names[im->n_names++] = name;
}

/* A simple statement toks[a..b): records it when it is an import. */
static void simple_stmt(struct sc *c, size_t a, size_t b, unsigned ctx, int try_idx)
{
    size_t i;

    if (tok_is(c, a, b, "import")) {
        i = a + 1;
        for (;;) {
            struct cfw_bundle_import *im = new_import(c, ctx, try_idx);
            im->stmt_start = c->toks[a].start;
            im->stmt_line = c->toks[a].line;
            im->module = dotted(c, &i, b, im);
            if (im->module == NULL) {
                c->out->n--; /* not an import we can read */
                return;
            }
            if (tok_is(c, i, b, "as")) {
                im->has_alias = true;
                i += 2;
            }
            if (!tok_op(c, i, b, ',')) {
                return;
            }
            i++;
        }
    }
    if (tok_is(c, a, b, "from")) {
        struct cfw_bundle_import *im = new_import(c, ctx, try_idx);
        im->is_from = true;
        im->stmt_start = c->toks[a].start;
        im->stmt_line = c->toks[a].line;
        i = a + 1;
        while (tok_op(c, i, b, '.')) {
            if (im->level == 0) {
                im->line = c->toks[i].line;
                im->col = c->toks[i].col;
                im->mod_start = c->toks[i].start;
            }
            im->level++;
            i++;
        }
        if (!tok_is(c, i, b, "import")) {
            size_t save_start = im->mod_start;
            int save_line = im->line, save_col = im->col;
            im->module = dotted(c, &i, b, im);
            if (im->level > 0) {
                im->mod_start = save_start;
                im->line = save_line;
                im->col = save_col;
            }
        } else {
            im->module = cfw_xstrdup("");
        }
        if (im->module == NULL || !tok_is(c, i, b, "import") ||
            (im->level == 0 && im->module[0] == '\0')) {
            free(im->module);
            im->module = NULL;
            c->out->n--;
            return;
        }
        im->import_kw = c->toks[i].start;
        i++;
        if (tok_op(c, i, b, '(')) {
            im->parenthesized = true;
            i++;
        }
        while (i < b) {
            if (tok_op(c, i, b, '*')) {
                push_name(im, cfw_xstrdup("*"));
                i++;
            } else if (c->toks[i].kind == TK_NAME) {
                push_name(im, tok_str(c, i));
                i++;
                if (tok_is(c, i, b, "as")) {
                    i += 2;
                }
            } else {
                break;
            }
            if (!tok_op(c, i, b, ',')) {
                break;
            }
            i++;
        }
    }
}

static bool except_catches_import(const struct sc *c, size_t a, size_t colon)
{
    static const char *const broad[] = {"ImportError", "ModuleNotFoundError", "Exception",
                                        "BaseException"};
    size_t first = a + 1;

    if (tok_op(c, first, colon, '*')) {
        first++;
    }
    if (first >= colon) {
        return true; /* bare except: */
    }
    for (size_t i = first; i < colon; i++) {
        if (tok_is(c, i, colon, "as")) {
            break;
        }
        for (size_t k = 0; k < sizeof(broad) / sizeof(broad[0]); k++) {
            if (tok_is(c, i, colon, broad[k])) {
                return true;
            }
        }
    }
    return false;
}

/* Whether a string token's text (with quotes and prefix) is the literal "__main__". */
static bool is_main_literal(const struct sc *c, size_t i)
{
    const char *s = c->s + c->toks[i].start;
    size_t l = c->toks[i].end - c->toks[i].start;

    return c->toks[i].kind == TK_STRING && l == 10 && (s[0] == '"' || s[0] == '\'') &&
           memcmp(s + 1, "__main__", 8) == 0 && s[9] == s[0];
}

/* `if __name__ == "__main__":` or `if "__main__" == __name__:` (toks[0] is `if`). */
static bool is_main_guard(const struct sc *c, size_t colon)
{
    if (colon != 5 || !tok_op(c, 2, colon, '=') || !tok_op(c, 3, colon, '=')) {
        return false;
    }
    return (tok_is(c, 1, colon, "__name__") && is_main_literal(c, 4)) ||
           (is_main_literal(c, 1) && tok_is(c, 4, colon, "__name__"));
}

static bool is_compound(const struct sc *c, size_t n)
{
    static const char *const kw[] = {"def",  "class",  "if",      "elif", "else",
                                     "try",  "except", "finally", "for",  "while",
                                     "with", "async",  "match",   "case"};
    for (size_t k = 0; k < sizeof(kw) / sizeof(kw[0]); k++) {
        if (tok_is(c, 0, n, kw[k])) {
            return true;
        }
    }
    return false;
}

static void context(const struct sc *c, unsigned *ctx, int *try_idx)
{
    *ctx = 0;
    *try_idx = -1;
    for (int k = 0; k < c->nblocks; k++) {
        switch (c->blocks[k].kind) {
        case B_DEF:
            *ctx |= CFW_BUNDLE_IMPORT_LAZY;
            break;
        case B_TRY:
            *ctx |= CFW_BUNDLE_IMPORT_TRY;
            *try_idx = c->blocks[k].try_idx;
            break;
        case B_TYPECHECK:
            *ctx |= CFW_BUNDLE_IMPORT_TYPECHECK;
            break;
        case B_MAINGUARD:
            *ctx |= CFW_BUNDLE_IMPORT_MAINGUARD;
            break;
        case B_EXCEPT:
            break;
        }
    }
}

static void statements(struct sc *c, size_t a, size_t b, unsigned ctx, int try_idx)
{
    size_t start = a;
    int d = 0;

    for (size_t i = a; i <= b; i++) {
        if (i < b && c->toks[i].kind == TK_OP) {
            char op = c->toks[i].op;
            if (op == '(' || op == '[' || op == '{') {
                d++;
            } else if (op == ')' || op == ']' || op == '}') {
                d--;
            }
        }
        if (i == b || (d <= 0 && tok_op(c, i, b, ';'))) {
            if (i > start) {
                simple_stmt(c, start, i, ctx, try_idx);
            }
            start = i + 1;
        }
    }
}

static int new_try(struct sc *c, int indent, int parent)
{
    if (c->ntries == c->captries) {
        c->captries = c->captries ? c->captries * 2 : 16;
        c->tries = cfw_xrealloc(c->tries, c->captries * sizeof(*c->tries));
    }
    c->tries[c->ntries] = (struct tryrec){indent, parent, false, true};
    return (int)c->ntries++;
}

/* Leaves the blocks a line at this indent is outside of, and closes the try: statements whose
 * clauses can no longer follow (clause: the line is an except, else or finally). */
static void close_blocks(struct sc *c, int indent, bool clause)
{
    while (c->nblocks > 0 && c->blocks[c->nblocks - 1].indent >= indent) {
        c->nblocks--;
    }
    for (size_t k = 0; k < c->ntries; k++) {
        if (c->tries[k].open &&
            (c->tries[k].indent > indent || (c->tries[k].indent == indent && !clause))) {
            c->tries[k].open = false;
        }
    }
}

/* The colon that ends a compound statement's header (outside brackets, not `:=`). */
static bool header_colon(const struct sc *c, size_t n, size_t *colon)
{
    int d = 0;

    for (size_t i = 0; i < n; i++) {
        if (c->toks[i].kind != TK_OP) {
            continue;
        }
        if (strchr("([{", c->toks[i].op) != NULL) {
            d++;
        } else if (strchr(")]}", c->toks[i].op) != NULL) {
            d--;
        } else if (c->toks[i].op == ':' && d <= 0 && !tok_op(c, i + 1, n, '=')) {
            *colon = i;
            return true;
        }
    }
    return false;
}

/* Whether a compound statement's header opens a tracked block (def, try, if TYPE_CHECKING, the
 * main guard, an except clause of an open try), and which: filled into nb. */
static bool tracked_block(struct sc *c, size_t n, size_t colon, int try_idx, struct blk *nb)
{
    if (tok_is(c, 0, n, "def") || (tok_is(c, 0, n, "async") && tok_is(c, 1, n, "def"))) {
        return true;
    }
    if (tok_is(c, 0, n, "try")) {
        nb->kind = B_TRY;
        nb->try_idx = new_try(c, nb->indent, try_idx);
        return true;
    }
    if (tok_is(c, 0, n, "if") &&
        ((colon == 2 && tok_is(c, 1, n, "TYPE_CHECKING")) ||
         (colon == 4 && tok_op(c, 2, n, '.') && tok_is(c, 3, n, "TYPE_CHECKING")))) {
        nb->kind = B_TYPECHECK;
        return true;
    }
    if (tok_is(c, 0, n, "if") && is_main_guard(c, colon)) {
        nb->kind = B_MAINGUARD;
        return true;
    }
    if (tok_is(c, 0, n, "except")) {
        for (size_t k = c->ntries; k > 0; k--) {
            struct tryrec *t = &c->tries[k - 1];
            if (t->open && t->indent == nb->indent) {
                t->catches |= except_catches_import(c, 0, colon);
                nb->kind = B_EXCEPT;
                nb->try_idx = (int)(k - 1);
                return true;
            }
        }
    }
    return false;
}

/* `try: import x` — the body is on the header's line, in the block the header opens. */
static void header_body(struct sc *c, size_t colon, bool track, struct blk nb, unsigned ctx,
                        int try_idx)
{
    size_t n = c->ntoks;

    if (track) {
        static const unsigned flag[] = {[B_DEF] = CFW_BUNDLE_IMPORT_LAZY,
                                        [B_TRY] = CFW_BUNDLE_IMPORT_TRY,
                                        [B_TYPECHECK] = CFW_BUNDLE_IMPORT_TYPECHECK,
                                        [B_MAINGUARD] = CFW_BUNDLE_IMPORT_MAINGUARD,
                                        [B_EXCEPT] = 0};
        ctx |= flag[nb.kind];
        if (nb.kind == B_TRY) {
            try_idx = nb.try_idx;
        }
    }
    /* `except ImportError: import y` on one line: y is that clause's body. */
    if (track && nb.kind == B_EXCEPT && c->nblocks < MAX_BLOCKS) {
        c->blocks[c->nblocks++] = nb;
        statements(c, colon + 1, n, ctx, try_idx);
        c->nblocks--;
    } else {
        statements(c, colon + 1, n, ctx, try_idx);
    }
}

/* Handles one logical line: block structure first, then its statements. */
static void logical_line(struct sc *c, int indent)
{
    size_t n = c->ntoks, colon = 0;
    unsigned ctx;
    int try_idx;
    struct blk nb = {indent, B_DEF, -1};
    bool track;

    close_blocks(c, indent,
                 tok_is(c, 0, n, "except") || tok_is(c, 0, n, "else") ||
                     tok_is(c, 0, n, "finally"));
    context(c, &ctx, &try_idx);
    /* Not compound, or `match = 3`, `case(x)` used as names: plain statements. */
    if (!is_compound(c, n) || !header_colon(c, n, &colon)) {
        statements(c, 0, n, ctx, try_idx);
        return;
    }
    track = tracked_block(c, n, colon, try_idx, &nb);
    if (colon + 1 < n) {
        header_body(c, colon, track, nb, ctx, try_idx);
    } else if (track && c->nblocks < MAX_BLOCKS) {
        c->blocks[c->nblocks++] = nb;
    }
}

/* Visual indentation of the first token of a line (tabs to multiples of 8). */
static int indent_of(const struct sc *c, size_t line_start, size_t tok_start)
{
    int col = 0;

    for (size_t k = line_start; k < tok_start; k++) {
        if (c->s[k] == '\t') {
            col = (col / 8 + 1) * 8;
        } else if (c->s[k] == '\f') {
            col = 0;
        } else {
            col++;
        }
    }
    return col;
}

/* A backslash continuation: the logical line goes on past the newline (pos is on the '\'). */
static void skip_continuation(struct sc *c)
{
    c->pos++;
    if (at(c, 0) == '\r') {
        c->pos++;
    }
    if (at(c, 0) == '\n') {
        newline_at(c, c->pos);
        c->pos++;
    }
}

/* A number token, loosely: digits, letters, '_', '.' and an exponent's sign. */
static void skip_number(struct sc *c)
{
    while (c->pos < c->len) {
        char d = c->s[c->pos];
        if (is_ident_char((unsigned char)d) || d == '.') {
            c->pos++;
        } else if ((d == '+' || d == '-') && (c->s[c->pos - 1] == 'e' || c->s[c->pos - 1] == 'E')) {
            c->pos++;
        } else {
            break;
        }
    }
}

/* An import is guarded when any enclosing try: has an except clause that catches it. */
static void mark_guarded(const struct sc *c, struct cfw_bundle_imports *out, size_t first_import)
{
    for (size_t k = first_import; k < out->n; k++) {
        out->v[k].guard_try = -1;
        out->v[k].handler_of = c->imp_handler[k];
        for (int t = c->imp_try[k]; t >= 0; t = c->tries[t].parent) {
            if (c->tries[t].catches) {
                out->v[k].guarded = true;
                out->v[k].guard_try = t;
                break;
            }
        }
    }
}

int cfw_bundle_py_imports(const char *text, size_t len, struct cfw_bundle_imports *out,
                          struct cfw_err *err)
{
    struct sc c = {.s = text, .len = len, .line = 1, .out = out};
    int indent = 0;
    size_t first_import = out->n;

    (void)err;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        c.pos = 3;
        c.line_start = 3;
    }
    while (c.pos <= c.len) {
        unsigned char ch = c.pos < c.len ? (unsigned char)c.s[c.pos] : '\0';
        size_t start = c.pos, plen;
        int line = c.line, col = (int)(c.pos - c.line_start) + 1;
        bool fmt;

        if (ch == '\0' && c.pos >= c.len) {
            if (c.ntoks > 0) {
                logical_line(&c, indent);
            }
            break;
        }
        if (ch == '\n') {
            newline_at(&c, c.pos);
            c.pos++;
            if (c.depth <= 0 && c.ntoks > 0) {
                logical_line(&c, indent);
                c.ntoks = 0;
                c.depth = 0;
            }
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\f' || ch == '\r' || ch == '\0') {
            c.pos++;
            continue;
        }
        if (ch == '#') {
            while (c.pos < c.len && c.s[c.pos] != '\n') {
                c.pos++;
            }
            continue;
        }
        if (ch == '\\') {
            skip_continuation(&c);
            continue;
        }
        if (c.ntoks == 0) {
            indent = indent_of(&c, c.line_start, c.pos);
        }
        if (string_start(&c, 0, &plen, &fmt)) {
            c.pos += plen;
            skip_string(&c, fmt, 0);
            push_tok(&c, TK_STRING, 0, start, line, col);
            continue;
        }
        if (is_ident_start(ch)) {
            while (c.pos < c.len && is_ident_char((unsigned char)c.s[c.pos])) {
                c.pos++;
            }
            push_tok(&c, TK_NAME, 0, start, line, col);
            continue;
        }
        if ((ch >= '0' && ch <= '9') || (ch == '.' && at(&c, 1) >= '0' && at(&c, 1) <= '9')) {
            skip_number(&c);
            push_tok(&c, TK_NUMBER, 0, start, line, col);
            continue;
        }
        if (ch == '(' || ch == '[' || ch == '{') {
            c.depth++;
        } else if ((ch == ')' || ch == ']' || ch == '}') && c.depth > 0) {
            c.depth--;
        }
        c.pos++;
        push_tok(&c, TK_OP, (char)ch, start, line, col);
    }
    mark_guarded(&c, out, first_import);
    free(c.toks);
    free(c.tries);
    free(c.imp_try);
    free(c.imp_handler);
    return 0;
}

void cfw_bundle_imports_clear(struct cfw_bundle_imports *im)
{
    if (im == NULL) {
        return;
    }
    for (size_t k = 0; k < im->n; k++) {
        free(im->v[k].module);
        for (size_t j = 0; j < im->v[k].n_names; j++) {
            free(im->v[k].names[j]);
        }
        free(im->v[k].names);
    }
    free(im->v);
    memset(im, 0, sizeof(*im));
}
