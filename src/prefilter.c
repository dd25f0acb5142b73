/* Prefilter: required literals of PCRE2 patterns and a two-byte fingerprint search. */
#include "cfwatchd/prefilter.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/common.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PF_SIMD 1 /* SSSE3 / AVX2 nibble tables, chosen at run time */
#endif

unsigned cfw_kind_bit(const char *kind)
{
    static const char *const names[] = {"text", "json", "exception", "log", "outcome"};

    for (unsigned i = 0; kind != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(kind, names[i]) == 0) {
            return 1u << i;
        }
    }
    return 0;
}

/* ---- literal extraction ----
 *
 * A recursive walk over the pattern text. Each sequence keeps its runs of literal characters;
 * a group gives the set of its branches (a branch without literal makes the group have none).
 * The sequence keeps the candidate whose shortest literal is longest. A quantifier that allows
 * zero drops its atom; one that requires it ends the run after it. Escapes, classes, groups and
 * verbs the walk does not know end the extraction: "no literal" is always a safe answer.
 */

struct lset {
    bool none;
    size_t n;
    struct cfw_literal_alt *alt;
};

struct lx {
    const char *p;
    const char *end;
    bool fail;
    bool caseless;
    unsigned depth;
};

#define LX_MAX_DEPTH 64u

static void alt_clear(struct cfw_literal_alt *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i]);
    }
    a->n = 0;
}

/* Adds a literal to an AND list unless it is there; a full list drops it (requiring less). */
static void alt_add(struct cfw_literal_alt *a, const char *lit, size_t n)
{
    for (size_t i = 0; i < a->n; i++) {
        if (a->len[i] == n && memcmp(a->v[i], lit, n) == 0) {
            return;
        }
    }
    if (a->n < CFW_LITERALS_AND_MAX) {
        a->v[a->n] = cfw_xstrndup(lit, n);
        a->len[a->n] = n;
        a->n++;
    }
}

static void alt_merge(struct cfw_literal_alt *dst, const struct cfw_literal_alt *src)
{
    for (size_t i = 0; i < src->n; i++) {
        alt_add(dst, src->v[i], src->len[i]);
    }
}

static void lset_clear(struct lset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        alt_clear(&s->alt[i]);
    }
    free(s->alt);
    s->alt = NULL;
    s->n = 0;
}

/* Appends a copy of an alternative; false when the set is full. */
static bool lset_push(struct lset *s, const struct cfw_literal_alt *a)
{
    if (s->n >= CFW_LITERALS_MAX) {
        return false;
    }
    s->alt = cfw_xrealloc(s->alt, (s->n + 1) * sizeof(*s->alt));
    memset(&s->alt[s->n], 0, sizeof(s->alt[s->n]));
    alt_merge(&s->alt[s->n], a);
    s->n++;
    return true;
}

/* How good a set is as a filter: its weakest alternative's longest literal. */
static size_t lset_score(const struct lset *s)
{
    size_t m = SIZE_MAX;

    for (size_t i = 0; i < s->n; i++) {
        size_t best = 0;

        for (size_t j = 0; j < s->alt[i].n; j++) {
            best = s->alt[i].len[j] > best ? s->alt[i].len[j] : best;
        }
        m = best < m ? best : m;
    }
    return s->n > 0 ? m : 0;
}

static bool is_alnum_ascii(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit_ascii(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex_ascii(unsigned char c)
{
    return is_digit_ascii(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Bytes of the UTF-8 character at p (1 for a stray byte). */
static size_t char_len(const char *p, const char *end)
{
    unsigned char c = (unsigned char)*p;
    size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;

    return (size_t)(end - p) < n ? (size_t)(end - p) : n;
}

/* Skips `{...}` at p (p at '{'); false when unclosed. */
static bool skip_braces(struct lx *x)
{
    const char *q = memchr(x->p, '}', (size_t)(x->end - x->p));

    if (q == NULL) {
        return false;
    }
    x->p = q + 1;
    return true;
}

/*
 * Reads a quantifier at x->p: returns its minimum and moves past it (with a lazy or possessive
 * suffix), or -1 when there is none. `{` that is not a quantifier is a literal (as PCRE2 says).
 */
static long quantifier(struct lx *x)
{
    const char *p = x->p;
    long min = -1;

    if (p >= x->end) {
        return -1;
    }
    if (*p == '?' || *p == '*') {
        min = 0;
        p++;
    } else if (*p == '+') {
        min = 1;
        p++;
    } else if (*p == '{') {
        const char *q = p + 1;
        long d1 = -1;
        bool comma = false;
        bool d2 = false;

        while (q < x->end && is_digit_ascii((unsigned char)*q)) {
            d1 = (d1 < 0 ? 0 : d1) * 10 + (*q - '0');
            if (d1 > 100000) {
                d1 = 100000;
            }
            q++;
        }
        if (q < x->end && *q == ',') {
            comma = true;
            q++;
            while (q < x->end && is_digit_ascii((unsigned char)*q)) {
                d2 = true;
                q++;
            }
        }
        /* {n}, {n,}, {n,m}; {,m} (a quantifier in newer PCRE2) is taken as one, which is safe */
        if (q < x->end && *q == '}' && (d1 >= 0 || (comma && d2))) {
            min = d1 >= 0 ? d1 : 0;
            p = q + 1;
        } else {
            return -1;
        }
    } else {
        return -1;
    }
    if (p < x->end && (*p == '?' || *p == '+')) {
        p++;
    }
    x->p = p;
    return min;
}

/* Skips a character class at x->p (at '['). */
static void skip_class(struct lx *x)
{
    const char *p = x->p + 1;

    if (p < x->end && *p == '^') {
        p++;
    }
    if (p < x->end && *p == ']') {
        p++;
    }
    while (p < x->end && *p != ']') {
        if (*p == '\\') {
            if (p + 1 >= x->end || p[1] == 'Q' || p[1] == 'E') {
                x->fail = true;
                return;
            }
            if (strchr("xopPN", p[1]) != NULL && p + 2 < x->end && p[2] == '{') {
                const char *q = memchr(p, '}', (size_t)(x->end - p));
                if (q == NULL) {
                    x->fail = true;
                    return;
                }
                p = q + 1;
            } else {
                p += 2;
            }
        } else if (*p == '[' && p + 1 < x->end && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            const char *q = p + 2;
            while (q + 1 < x->end && !(q[0] == p[1] && q[1] == ']')) {
                q++;
            }
            if (q + 1 >= x->end) {
                x->fail = true;
                return;
            }
            p = q + 2;
        } else {
            p++;
        }
    }
    if (p >= x->end) {
        x->fail = true;
        return;
    }
    x->p = p + 1;
}

/* What one escape sequence is. */
enum esc {
    ESC_LITERAL, /* the character itself (out holds it) */
    ESC_ATOM,    /* matches one character that is not a known literal */
    ESC_ASSERT,  /* zero-width */
    ESC_QUOTE,   /* \Q */
    ESC_NOTHING, /* \E outside \Q */
    ESC_FAIL,
};

/* Reads the escape at x->p (at '\'); for ESC_LITERAL sets *lit and *litn. */
static enum esc escape(struct lx *x, const char **lit, size_t *litn)
{
    const char *p = x->p + 1;
    unsigned char c;

    if (p >= x->end) {
        return ESC_FAIL;
    }
    c = (unsigned char)*p;
    if (!is_alnum_ascii(c)) {
        *lit = p;
        *litn = char_len(p, x->end);
        x->p = p + *litn;
        return ESC_LITERAL;
    }
    x->p = p + 1;
    switch (c) {
    case 'd':
    case 'D':
    case 's':
    case 'S':
    case 'w':
    case 'W':
    case 'h':
    case 'H':
    case 'v':
    case 'V':
    case 'R':
    case 'X':
    case 'a':
    case 'e':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return ESC_ATOM;
    case 'N':
        return x->p < x->end && *x->p == '{' ? ESC_FAIL : ESC_ATOM;
    case 'b':
    case 'B':
    case 'A':
    case 'z':
    case 'Z':
    case 'G':
    case 'K':
        return ESC_ASSERT;
    case 'Q':
        return ESC_QUOTE;
    case 'E':
        return ESC_NOTHING;
    case 'x':
        if (x->p < x->end && *x->p == '{') {
            return skip_braces(x) ? ESC_ATOM : ESC_FAIL;
        }
        for (int i = 0; i < 2 && x->p < x->end && is_hex_ascii((unsigned char)*x->p); i++) {
            x->p++;
        }
        return ESC_ATOM;
    case 'o':
        return x->p < x->end && *x->p == '{' && skip_braces(x) ? ESC_ATOM : ESC_FAIL;
    case '0':
        for (int i = 0; i < 2 && x->p < x->end && *x->p >= '0' && *x->p <= '7'; i++) {
            x->p++;
        }
        return ESC_ATOM;
    case 'c':
        if (x->p >= x->end) {
            return ESC_FAIL;
        }
        x->p++;
        return ESC_ATOM;
    case 'p':
    case 'P':
        if (x->p < x->end && *x->p == '{') {
            return skip_braces(x) ? ESC_ATOM : ESC_FAIL;
        }
        if (x->p >= x->end) {
            return ESC_FAIL;
        }
        x->p++;
        return ESC_ATOM;
    default:
        /* back references, \g, \k, \C and the rest: not understood */
        return ESC_FAIL;
    }
}

/*
 * A sequence being read: the literal run being built, the literals every match holds (runs and
 * groups of one alternative), and the best group of several alternatives.
 */
struct seq {
    char run[CFW_LITERAL_MAX];
    size_t runlen;
    struct cfw_literal_alt all;
    struct lset group;
};

static void seq_group(struct seq *s, struct lset *g)
{
    if (g->none || g->n == 0) {
        lset_clear(g);
        return;
    }
    if (g->n == 1) {
        alt_merge(&s->all, &g->alt[0]);
        lset_clear(g);
        return;
    }
    if (s->group.n == 0 || lset_score(g) > lset_score(&s->group)) {
        lset_clear(&s->group);
        s->group = *g;
        memset(g, 0, sizeof(*g));
    } else {
        lset_clear(g);
    }
}

static void seq_flush(struct seq *s)
{
    if (s->runlen == 0) {
        return;
    }
    alt_add(&s->all, s->run, s->runlen);
    s->runlen = 0;
}

static void seq_append(struct seq *s, const char *c, size_t n)
{
    if (s->runlen + n > sizeof(s->run)) {
        seq_flush(s);
    }
    memcpy(s->run + s->runlen, c, n);
    s->runlen += n;
}

/* One literal character followed by an optional quantifier. */
static void seq_char(struct lx *x, struct seq *s, const char *c, size_t n)
{
    long min = quantifier(x);

    if (min == 0) {
        seq_flush(s);
        return;
    }
    seq_append(s, c, n);
    if (min > 0) {
        seq_flush(s);
    }
}

/* One non-literal atom (class, dot, escape class) and its quantifier. */
static void seq_atom(struct lx *x, struct seq *s)
{
    seq_flush(s);
    (void)quantifier(x);
}

static void parse_alt(struct lx *x, struct lset *out);

/* Reads inline flags after "(?" up to ')' or ':'; returns the stop character or 0. */
static char group_flags(struct lx *x)
{
    bool neg = false;

    while (x->p < x->end) {
        char c = *x->p++;

        if (c == ')' || c == ':') {
            return c;
        }
        if (c == '-') {
            neg = true;
        } else if (c == '^') {
            neg = false;
        } else if (c == 'x') {
            if (!neg) {
                x->fail = true; /* extended syntax: whitespace and comments are not literals */
            }
        } else if (c == 'i') {
            if (!neg) {
                x->caseless = true;
            }
        } else if (strchr("msnJUa", c) == NULL || c == '\0') {
            x->fail = true;
            return 0;
        }
    }
    x->fail = true;
    return 0;
}

/* Moves x->p past the next ')' from p (a comment, a back reference); fails when there is none. */
static void skip_past_paren(struct lx *x, const char *p)
{
    const char *q = memchr(p, ')', (size_t)(x->end - p));

    if (q == NULL) {
        x->fail = true;
        return;
    }
    x->p = q + 1;
}

/* A group at x->p (at '('): its literal set into out; *zero set for lookarounds and options. */
static void parse_group(struct lx *x, struct lset *out, bool *zero)
{
    const char *p = x->p + 1;
    bool look = false;

    *zero = false;
    out->none = true;
    if (p < x->end && *p == '*') {
        x->fail = true; /* verbs such as (*ACCEPT) change what must match */
        return;
    }
    if (p < x->end && *p == '?') {
        p++;
        if (p >= x->end) {
            x->fail = true;
            return;
        }
        if (*p == '#') {
            *zero = true; /* a comment */
            skip_past_paren(x, p);
            return;
        }
        if (*p == ':' || *p == '|' || *p == '>') {
            p++;
        } else if (*p == '=' || *p == '!') {
            look = true;
            p++;
        } else if (*p == '<' && p + 1 < x->end && (p[1] == '=' || p[1] == '!')) {
            look = true;
            p += 2;
        } else if (*p == '<' || *p == '\'' || (*p == 'P' && p + 1 < x->end && p[1] == '<')) {
            /* a named group: (?<name>, (?'name', (?P<name> */
            char close = *p == '\'' ? '\'' : '>';
            const char *q = memchr(p + 1, close, (size_t)(x->end - p - 1));

            if (q == NULL) {
                x->fail = true;
                return;
            }
            p = q + 1;
        } else if (*p == 'P' && p + 1 < x->end && p[1] == '=') {
            skip_past_paren(x, p); /* (?P=name): a back reference */
            return;
        } else {
            char stop;

            x->p = p;
            stop = group_flags(x);
            if (x->fail) {
                return;
            }
            if (stop == ')') {
                *zero = true;
                return;
            }
            p = x->p;
        }
    }
    x->p = p;
    if (++x->depth > LX_MAX_DEPTH) {
        x->fail = true;
        return;
    }
    parse_alt(x, out);
    x->depth--;
    if (x->fail || x->p >= x->end || *x->p != ')') {
        x->fail = true;
        return;
    }
    x->p++;
    if (look) {
        lset_clear(out);
        out->none = true;
        *zero = true;
    }
}

/* A sequence up to '|', ')' or the end. */
/* \Q...\E: every character but the last is plain; a quantifier after \E applies to it. */
static void seq_quote(struct lx *x, struct seq *s)
{
    const char *q = x->p;
    const char *e = x->p;

    while (e < x->end && !(e[0] == '\\' && e + 1 < x->end && e[1] == 'E')) {
        e++;
    }
    while (q < e) {
        size_t k = char_len(q, e);
        if (q + k < e) {
            seq_append(s, q, k);
        } else {
            x->p = e < x->end ? e + 2 : e;
            seq_char(x, s, q, k);
        }
        q += k;
    }
    if (e >= x->end || q == x->p) {
        x->p = e < x->end ? e + 2 : e;
    }
}

/* A backslash sequence in a sequence. */
static void seq_escape(struct lx *x, struct seq *s)
{
    const char *lit = NULL;
    size_t n = 0;

    switch (escape(x, &lit, &n)) {
    case ESC_LITERAL:
        seq_char(x, s, lit, n);
        break;
    case ESC_ATOM:
        seq_atom(x, s);
        break;
    case ESC_ASSERT:
        seq_flush(s);
        break;
    case ESC_NOTHING:
        break;
    case ESC_QUOTE:
        seq_quote(x, s);
        break;
    case ESC_FAIL:
        x->fail = true;
        break;
    }
}

/* A group in a sequence, with its quantifier: kept unless it may match nothing. */
static void seq_paren(struct lx *x, struct seq *s)
{
    struct lset g = {0};
    bool zero = false;
    long min;

    seq_flush(s);
    parse_group(x, &g, &zero);
    if (x->fail) {
        lset_clear(&g);
        return;
    }
    min = zero ? -1 : quantifier(x);
    if (min == 0 || zero) {
        lset_clear(&g);
    } else {
        seq_group(s, &g);
    }
}

/* The literal set of a parsed sequence: each alternative of its group with what it all holds. */
static void seq_result(const struct lx *x, struct seq *s, struct lset *out)
{
    seq_flush(s);
    out->none = true;
    if (!x->fail && s->group.n > 0) {
        out->none = false;
        for (size_t i = 0; i < s->group.n && !out->none; i++) {
            struct cfw_literal_alt a = {0};

            alt_merge(&a, &s->all);
            alt_merge(&a, &s->group.alt[i]);
            out->none = !lset_push(out, &a);
            alt_clear(&a);
        }
        if (out->none) {
            lset_clear(out);
        }
    }
    if (!x->fail && out->n == 0 && s->all.n > 0) {
        out->none = !lset_push(out, &s->all);
    }
    alt_clear(&s->all);
    lset_clear(&s->group);
}

static void parse_seq(struct lx *x, struct lset *out)
{
    struct seq s = {0};

    while (x->p < x->end && !x->fail) {
        char c = *x->p;

        if (c == '|' || c == ')') {
            break;
        }
        if (c == '(') {
            seq_paren(x, &s);
        } else if (c == '[') {
            seq_flush(&s);
            skip_class(x);
            if (!x->fail) {
                (void)quantifier(x);
            }
        } else if (c == '.') {
            x->p++;
            seq_atom(x, &s);
        } else if (c == '^' || c == '$') {
            x->p++;
            seq_flush(&s);
        } else if (c == '\\') {
            seq_escape(x, &s);
        } else if (c == '*' || c == '+' || c == '?') {
            x->fail = true; /* nothing to repeat: PCRE2 refuses it; so do we */
        } else {
            size_t n = char_len(x->p, x->end);
            const char *ch = x->p;

            x->p += n;
            seq_char(x, &s, ch, n);
        }
    }
    seq_result(x, &s, out);
}

/* Branches up to ')' or the end: the union of their sets, none when one has none. */
static void parse_alt(struct lx *x, struct lset *out)
{
    bool none = false;

    memset(out, 0, sizeof(*out));
    for (;;) {
        struct lset b = {0};

        parse_seq(x, &b);
        if (b.none || x->fail) {
            none = true;
        }
        for (size_t i = 0; !none && i < b.n; i++) {
            none = !lset_push(out, &b.alt[i]);
        }
        lset_clear(&b);
        if (x->fail || x->p >= x->end || *x->p != '|') {
            break;
        }
        x->p++;
    }
    if (none) {
        lset_clear(out);
    }
    out->none = none;
}

int cfw_pattern_literals(const char *pattern, struct cfw_literals *out)
{
    struct lx x = {.p = pattern, .end = pattern + (pattern != NULL ? strlen(pattern) : 0)};
    struct lset set = {0};

    memset(out, 0, sizeof(*out));
    if (pattern == NULL) {
        return -1;
    }
    parse_alt(&x, &set);
    if (x.fail || set.none || set.n == 0 || x.p != x.end) {
        lset_clear(&set);
        return -1;
    }
    out->n = set.n;
    out->alt = set.alt;
    out->caseless = x.caseless;
    return 0;
}

void cfw_literals_clear(struct cfw_literals *l)
{
    for (size_t i = 0; i < l->n; i++) {
        alt_clear(&l->alt[i]);
    }
    free(l->alt);
    memset(l, 0, sizeof(*l));
}

/* ---- the search ---- */

enum anchor_type {
    A_PIECE,   /* a piece of an alternative: check the others */
    A_UESC,    /* `\u` in a JSON record */
    A_OUTCOME, /* "outcome" key */
    A_EXC,     /* "exceptions" key */
    A_ERROR,   /* "error" key */
};

#define PIECES_MAX 16u

struct piece {
    const char *s; /* points into the alternative's copy of the literal */
    size_t len;
    size_t rare; /* offset of its rarest byte, which contains looks for first */
};

/* One literal of one rule, in one form (text or JSON): all its pieces must be present. */
struct alt {
    char *lit;
    size_t rule; /* the id of the rule it belongs to */
    bool caseless;
    size_t npieces;
    struct piece pieces[PIECES_MAX];
};

struct anchor {
    const char *s;
    size_t len;
    size_t off; /* offset of the fingerprint pair in s */
    bool caseless;
    enum anchor_type type;
    size_t alt;
    size_t piece;
    size_t next; /* the next anchor with the same bytes (another alternative), or SIZE_MAX */
    bool shadow; /* such a later anchor: found through the first one's chain, not in tables */
};

/*
 * An anchor as the search sees it: its first bytes (up to 8, ASCII letters lower-cased when
 * caseless) to compare with one 8-byte load before anchor_hit is called, which is what most
 * fingerprint hits fail.
 */
struct slot {
    uint64_t head; /* those bytes, 0 past them */
    uint64_t mask; /* 0xff for each of them */
    uint64_t fold; /* 0x20 for each caseless letter among them: (bytes | fold) & mask == head */
    size_t anchor;
    size_t off; /* of the anchor's fingerprint */
    size_t len; /* of the anchor */
};

/* The tables of one record form. */
struct scanner {
    uint64_t bits[65536 / 64];
    struct slot *bucket[256]; /* anchors by the pair's first byte as it appears in the record */
    size_t nbucket[256];
    struct anchor *anchors;
    size_t nanchors;
    struct alt *alts;
    size_t nalts;
    /*
     * Nibble tables of the fingerprints, in 8 buckets (bit k: bucket k), for the vector path:
     * a byte position is looked at only when the low and high nibbles of its byte and of the
     * next two all allow a common bucket (Hyperscan's "Teddy" idea, on three bytes).
     */
    uint8_t lo0[16], hi0[16], lo1[16], hi1[16], lo2[16], hi2[16];
    bool wanted;  /* some rule applies to records of this form at all */
    bool json;    /* JSON records: a \u escape makes a candidate */
    bool structs; /* JSON: exceptions, error and outcome make candidates */
    /*
     * Rule selections (one bit per rule id, cfw_prefilter.words words, made by build): the
     * rules of this form, those with no usable literal here, and those a structural fact
     * (exceptions, error, outcome) selects: the rules of exception and outcome events.
     */
    uint64_t *all_set;
    uint64_t *always_set;
    uint64_t *struct_set;
    size_t *ids[3]; /* the ids of those three sets, as rules are added */
    size_t nids[3];
    size_t words;
};

enum { SET_ALL, SET_ALWAYS, SET_STRUCT };

struct cfw_prefilter {
    struct scanner text;
    struct scanner json;
    size_t nrules; /* one more than the highest rule id added */
    bool built;
};

struct cfw_prefilter *cfw_prefilter_new(void)
{
    struct cfw_prefilter *pf = cfw_xcalloc(1, sizeof(*pf));

    pf->json.json = true;
    return pf;
}

static void scanner_free(struct scanner *sc)
{
    for (size_t i = 0; i < sc->nalts; i++) {
        free(sc->alts[i].lit);
    }
    free(sc->alts);
    free(sc->anchors);
    for (size_t i = 0; i < 256; i++) {
        free(sc->bucket[i]);
    }
    for (size_t i = 0; i < 3; i++) {
        free(sc->ids[i]);
    }
    free(sc->all_set);
    free(sc->always_set);
    free(sc->struct_set);
}

void cfw_prefilter_free(struct cfw_prefilter *pf)
{
    if (pf == NULL) {
        return;
    }
    scanner_free(&pf->text);
    scanner_free(&pf->json);
    free(pf);
}

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static unsigned char upper(unsigned char c)
{
    return c >= 'a' && c <= 'z' ? (unsigned char)(c - 32) : c;
}

/* Where a piece ends: the bytes that may not be part of one, for the form and case mode. */
static size_t separator(const unsigned char *s, size_t i, size_t n, bool json, bool caseless)
{
    unsigned char c = s[i];

    if (c == 0xef && i + 2 < n && s[i + 1] == 0xbf && s[i + 2] == 0xbd) {
        return 3; /* U+FFFD: what sanitising writes for invalid bytes */
    }
    if (caseless && (c >= 0x80 || lower(c) == 'k' || lower(c) == 's')) {
        return 1;
    }
    if (!json) {
        return 0;
    }
    if (c <= 0x20 || c == 0x7f || strchr(":\"\\/'<>&+,[]{}-", c) != NULL || is_digit_ascii(c)) {
        return 1;
    }
    if ((c == 'e' || c == 'E') &&
        ((i > 0 && is_digit_ascii(s[i - 1])) || (i + 1 < n && is_digit_ascii(s[i + 1])))) {
        return 1; /* an exponent: numbers are written again by the decoder */
    }
    return 0;
}

/* How common a byte is in logs (a rough weight; rarer pairs make better fingerprints). */
static unsigned weight_of(unsigned char c)
{
    static const char common[] = " etaoinsrhldcumfpgwybvk";

    if (c >= 0x80) {
        return 4;
    }
    if (is_digit_ascii(c) || c == '"' || c == ':' || c == ',') {
        return 40;
    }
    if (c >= 'a' && c <= 'z') {
        const char *q = strchr(common, c);
        return q != NULL ? (unsigned)(60 - (q - common) * 2) : 6;
    }
    if (c == ' ') {
        return 100;
    }
    if (c >= 'A' && c <= 'Z') {
        return 10;
    }
    return 12;
}

/* weight_of, from a table made on first use (the rules' build asks it tens of thousands times). */
static unsigned weight(unsigned char c)
{
    static unsigned w[256];

    if (w[0] == 0) {
        for (unsigned k = 0; k < 256; k++) {
            w[k] = weight_of((unsigned char)k);
        }
    }
    return w[c];
}

static uint64_t byte_weight(unsigned char c, bool caseless)
{
    return weight(c) + (caseless ? weight(c == lower(c) ? upper(c) : lower(c)) : 0);
}

/* c itself, or (caseless) its upper or lower case. */
static unsigned char case_of(unsigned char c, bool caseless, bool up)
{
    return !caseless ? c : up ? upper(c) : lower(c);
}

/*
 * The most common letter pairs of English text (in any case) and of JSON, which byte weights
 * undervalue: a bit per pair, from a table made on first use (asked for every fingerprint tried).
 */
static bool common_bigram(unsigned char a, unsigned char b)
{
    static const char pairs[] = "th he in er an re on at en nd ti es or te of ed is it al ar st "
                                "to nt ng se ha as ou io le ve co me de hi ri ro ic ne ea ra ce "
                                "li ch ll be ma si om ur ex am na lo ge ct ss ta el ut ue rr "
                                "qu ";
    static const char json[] = "\":\",\"}{\",\":\"";
    static uint64_t bits[65536 / 64];
    static bool made;
    unsigned k = (unsigned)a << 8 | b;

    if (!made) {
        for (const char *p = pairs; p[0] != '\0'; p += 3) {
            for (int v = 0; v < 4; v++) {
                unsigned x = (unsigned)case_of((unsigned char)p[0], true, (v & 1) != 0) << 8 |
                             case_of((unsigned char)p[1], true, (v & 2) != 0);

                bits[x >> 6] |= UINT64_C(1) << (x & 63);
            }
        }
        for (const char *p = json; p[0] != '\0'; p += 2) {
            unsigned x = (unsigned)(unsigned char)p[0] << 8 | (unsigned char)p[1];

            bits[x >> 6] |= UINT64_C(1) << (x & 63);
        }
        made = true;
    }
    return (bits[k >> 6] >> (k & 63) & 1) != 0;
}

static uint64_t pair_cost(unsigned char a, unsigned char b, bool caseless)
{
    return byte_weight(a, caseless) * byte_weight(b, caseless) * (common_bigram(a, b) ? 16 : 1);
}

/*
 * What a fingerprint at s (3 bytes when n >= 3, else 2) costs: how often its first pair (the
 * exact filter) turns up, counted twice, and its next pair (the vector filter's third byte).
 */
static uint64_t fp_cost(const unsigned char *s, size_t n, bool caseless)
{
    uint64_t p = pair_cost(s[0], s[1], caseless);

    return p * p * (n >= 3 ? pair_cost(s[1], s[2], caseless) : 4000);
}

/*
 * Words every Workers log is full of (JSON keys, URL parts, wrangler's own words): a piece that
 * is part of one makes a poor anchor, since each hit costs a check of the other pieces.
 */
static const char common_words[] = "workers.dev\n"
                                   "scriptName\n"
                                   "ScriptName\n"
                                   "scriptVersion\n"
                                   "ScriptVersion\n"
                                   "eventTimestamp\n"
                                   "EventTimestampMs\n"
                                   "outcome\n"
                                   "Outcome\n"
                                   "exceptions\n"
                                   "Exceptions\n"
                                   "logs\n"
                                   "Logs\n"
                                   "message\n"
                                   "Message\n"
                                   "level\n"
                                   "Level\n"
                                   "request\n"
                                   "Request\n"
                                   "response\n"
                                   "headers\n"
                                   "method\n"
                                   "https\n"
                                   "url\n"
                                   "URL\n"
                                   "RayID\n"
                                   "rayId\n"
                                   "status\n"
                                   "timestamp\n"
                                   "event\n"
                                   "Event\n"
                                   "name\n"
                                   "stack\n"
                                   "error\n"
                                   "Error\n"
                                   "The\n"
                                   "the\n"
                                   "Worker\n"
                                   "wrangler\n"
                                   "Traceback\n"
                                   "File\n"
                                   "line\n"
                                   "python\n"
                                   "Python\n"
                                   "module\n"
                                   "cloudflare\n"
                                   "Cloudflare\n"
                                   "executionModel\n"
                                   "truncated\n"
                                   "diagnosticsChannelEvents\n"
                                   "info\n"
                                   "log\n"
                                   "cpuTime\n"
                                   "wallTime\n"
                                   "CPUTimeMs\n"
                                   "WallTimeMs\n"
                                   "EventType\n"
                                   "fetch\n"
                                   "scheduled\n"
                                   "entrypoint\n"
                                   "dispatchNamespace\n"
                                   "Uncaught\n"
                                   "KiB\n";

/*
 * True when s[0..n) is part of a common word (ASCII-caselessly when asked): one search over
 * the list, whose '\n' ends keep a match inside one word. Called for every offset of every
 * piece when the rules load: it was half of `--once` on a small CI log as a loop per word.
 */
static bool in_common_word(const char *s, size_t n, bool caseless)
{
    const char *w = common_words;
    const char *end = common_words + sizeof(common_words) - 1;

    if (n == 0 || memchr(s, '\n', n) != NULL) {
        return false;
    }
    if (!caseless) {
        return memmem(w, (size_t)(end - w), s, n) != NULL;
    }
    for (; (size_t)(end - w) >= n; w++) {
        size_t j = 0;

        while (j < n && lower((unsigned char)w[j]) == lower((unsigned char)s[j])) {
            j++;
        }
        if (j == n) {
            return true;
        }
    }
    return false;
}

/* Adds an anchor; one with the same bytes as an earlier piece joins that one's chain. */
static void add_anchor(struct scanner *sc, const struct anchor *a)
{
    size_t first = SIZE_MAX;

    for (size_t i = 0; a->type == A_PIECE && i < sc->nanchors && first == SIZE_MAX; i++) {
        const struct anchor *o = &sc->anchors[i];

        if (o->type == A_PIECE && !o->shadow && o->len == a->len && o->off == a->off &&
            o->caseless == a->caseless && memcmp(o->s, a->s, a->len) == 0) {
            first = i;
        }
    }
    sc->anchors = cfw_xrealloc(sc->anchors, (sc->nanchors + 1) * sizeof(*sc->anchors));
    sc->anchors[sc->nanchors] = *a;
    sc->anchors[sc->nanchors].next = SIZE_MAX;
    if (first != SIZE_MAX) {
        while (sc->anchors[first].next != SIZE_MAX) {
            first = sc->anchors[first].next;
        }
        sc->anchors[first].next = sc->nanchors;
        sc->anchors[sc->nanchors].shadow = true;
    }
    sc->nanchors++;
}

/*
 * Whether a fingerprint (two or three bytes) may be part of a common word: a bit per hash of
 * the fingerprint's bytes, lower-cased, set for every such run of the list (built once). A
 * false "may" only makes a piece look dearer than it is (a slower anchor, never a wrong one);
 * a "no" is sure. Searching the list at every offset of every piece was a fifth of the
 * instructions of `--once` on a small log.
 */
static bool maybe_common_fp(const char *s, size_t n)
{
    static uint64_t bits[2][1024];
    static bool built;
    const char *w = common_words;

    if (!built) {
        for (size_t i = 0; w[i] != '\0'; i++) {
            for (size_t k = 2; k <= 3; k++) {
                unsigned h = 0;
                size_t j = 0;

                while (j < k && w[i + j] != '\0' && w[i + j] != '\n') {
                    h = h * 131 + lower((unsigned char)w[i + j]);
                    j++;
                }
                if (j == k) {
                    h &= 65535;
                    bits[k - 2][h >> 6] |= UINT64_C(1) << (h & 63);
                }
            }
        }
        built = true;
    }
    {
        unsigned h = 0;

        for (size_t j = 0; j < n; j++) {
            h = h * 131 + lower((unsigned char)s[j]);
        }
        h &= 65535;
        return (bits[n - 2][h >> 6] & (UINT64_C(1) << (h & 63))) != 0;
    }
}

/* The cheapest fingerprint of a piece: its cost, and its offset in *off. */
static uint64_t piece_cost(const struct piece *pc, bool caseless, size_t *off)
{
    size_t fp = pc->len >= 3 ? 3 : 2;
    uint64_t best = UINT64_MAX;

    for (size_t k = 0; k + fp <= pc->len; k++) {
        uint64_t c = fp_cost((const unsigned char *)pc->s + k, fp, caseless);

        if (maybe_common_fp(pc->s + k, fp) && in_common_word(pc->s + k, fp, caseless)) {
            c = c > UINT64_MAX / 256 ? UINT64_MAX : c * 256;
        }
        if (c < best) {
            best = c;
            *off = k;
        }
    }
    /* a common word is found everywhere, whatever its bytes say */
    return in_common_word(pc->s, pc->len, caseless)
               ? (best > UINT64_MAX / 1024 ? UINT64_MAX : best * 1024)
               : best;
}

/* The offset of the rarest byte of s[0..n) (the first of equals). */
static size_t rarest(const unsigned char *s, size_t n, bool caseless)
{
    size_t r = 0;

    for (size_t k = 1; k < n; k++) {
        if (byte_weight(s[k], caseless) < byte_weight(s[r], caseless)) {
            r = k;
        }
    }
    return r;
}

/* Splits the literals of one alternative into pieces; false when none is usable. */
static bool add_alt(struct scanner *sc, const struct cfw_literal_alt *la, bool json, bool caseless,
                    size_t rule)
{
    struct alt al = {.rule = rule, .caseless = caseless};
    size_t total = 0;
    char *w;
    size_t best = SIZE_MAX;

    for (size_t j = 0; j < la->n; j++) {
        total += la->len[j];
    }
    al.lit = cfw_xmalloc(total + 1);
    w = al.lit;
    for (size_t j = 0; j < la->n; j++) {
        const unsigned char *s = (const unsigned char *)la->v[j];
        size_t n = la->len[j];
        size_t start = 0;
        size_t i = 0;

        memcpy(w, s, n);
        while (i <= n) {
            size_t sep = i < n ? separator(s, i, n, json, caseless) : 1;

            if (sep == 0) {
                i++;
                continue;
            }
            /* pieces of one byte are left out: a re-encoded number could make one up */
            if (i - start >= 2 && al.npieces < PIECES_MAX) {
                al.pieces[al.npieces].s = w + start;
                al.pieces[al.npieces].len = i - start;
                al.pieces[al.npieces].rare = rarest(s + start, i - start, caseless);
                al.npieces++;
            }
            i += sep;
            start = i;
        }
        w += n;
    }
    *w = '\0';
    if (al.npieces == 0) {
        free(al.lit);
        return false;
    }
    {
        /* the anchor: the piece with the rarest fingerprint (the fewest positions looked at) */
        uint64_t best_cost = UINT64_MAX;
        size_t best_off = 0;
        struct anchor a = {.caseless = caseless, .type = A_PIECE, .alt = sc->nalts};

        for (size_t k = 0; k < al.npieces; k++) {
            size_t off = 0;
            uint64_t c = piece_cost(&al.pieces[k], caseless, &off);

            if (best == SIZE_MAX || c < best_cost ||
                (c == best_cost && al.pieces[k].len > al.pieces[best].len)) {
                best = k;
                best_cost = c;
                best_off = off;
            }
        }
        a.s = al.pieces[best].s;
        a.len = al.pieces[best].len;
        a.off = best_off;
        a.piece = best;
        add_anchor(sc, &a);
    }
    sc->alts = cfw_xrealloc(sc->alts, (sc->nalts + 1) * sizeof(*sc->alts));
    sc->alts[sc->nalts++] = al;
    return true;
}

/* Notes a rule id in one of a form's selections (made into bits by build). */
static void note_id(struct scanner *sc, int set, size_t id)
{
    size_t n = sc->nids[set];

    if (n > 0 && sc->ids[set][n - 1] == id) {
        return;
    }
    sc->ids[set] = cfw_xrealloc(sc->ids[set], (n + 1) * sizeof(*sc->ids[set]));
    sc->ids[set][n] = id;
    sc->nids[set] = n + 1;
}

/*
 * Adds one rule to one form; true when it has a usable literal there. The alternatives added
 * before a later one proves unusable stay: they only select the rule, which always_set does too.
 */
static bool scanner_add_rule(struct scanner *sc, const struct cfw_literals *lits, bool ok,
                             bool json, size_t id)
{
    bool usable = ok;

    sc->wanted = true;
    note_id(sc, SET_ALL, id);
    for (size_t i = 0; usable && i < lits->n; i++) {
        usable = add_alt(sc, &lits->alt[i], json, lits->caseless, id);
    }
    if (!usable) {
        note_id(sc, SET_ALWAYS, id);
    }
    return usable;
}

unsigned cfw_prefilter_add(struct cfw_prefilter *pf, const char *pattern, unsigned kinds, size_t id)
{
    struct cfw_literals lits;
    bool ok = cfw_pattern_literals(pattern, &lits) == 0;
    unsigned none = 0;

    if (id >= pf->nrules) {
        pf->nrules = id + 1;
    }
    /* text records only make kind=text events */
    if ((kinds & CFW_KIND_TEXT) != 0 && !scanner_add_rule(&pf->text, &lits, ok, false, id)) {
        none |= CFW_PREFILTER_ALL_TEXT;
    }
    /* JSON records: exception and outcome events come only from records the structural checks
     * let through; the other kinds carry the record's own strings */
    if ((kinds & (CFW_KIND_EXCEPTION | CFW_KIND_OUTCOME)) != 0) {
        pf->json.wanted = true;
        pf->json.structs = true;
        note_id(&pf->json, SET_ALL, id);
        note_id(&pf->json, SET_STRUCT, id);
    }
    if ((kinds & (CFW_KIND_TEXT | CFW_KIND_JSON | CFW_KIND_LOG)) != 0 &&
        !scanner_add_rule(&pf->json, &lits, ok, true, id)) {
        none |= CFW_PREFILTER_ALL_JSON;
    }
    cfw_literals_clear(&lits);
    pf->built = false;
    return none;
}

static bool is_alpha_ascii(unsigned char c)
{
    return lower(c) >= 'a' && lower(c) <= 'z';
}

/* The search's view of anchor idx (see struct slot). */
static struct slot slot_of(const struct scanner *sc, size_t idx)
{
    const struct anchor *a = &sc->anchors[idx];
    unsigned char head[8] = {0};
    unsigned char mask[8] = {0};
    unsigned char fold[8] = {0};
    struct slot sl = {.anchor = idx, .off = a->off, .len = a->len};

    for (size_t k = 0; k < a->len && k < 8; k++) {
        unsigned char c = (unsigned char)a->s[k];
        bool folds = a->caseless && is_alpha_ascii(c);

        head[k] = folds ? lower(c) : c;
        mask[k] = 0xff;
        fold[k] = folds ? 0x20 : 0;
    }
    memcpy(&sl.head, head, 8);
    memcpy(&sl.mask, mask, 8);
    memcpy(&sl.fold, fold, 8);
    return sl;
}

static void set_pair(struct scanner *sc, unsigned char a, unsigned char b, size_t idx)
{
    unsigned k = (unsigned)a | ((unsigned)b << 8);
    struct slot *bk;

    sc->bits[k >> 6] |= UINT64_C(1) << (k & 63);
    bk = sc->bucket[a];
    for (size_t i = 0; i < sc->nbucket[a]; i++) {
        if (bk[i].anchor == idx) {
            return;
        }
    }
    sc->bucket[a] = cfw_xrealloc(bk, (sc->nbucket[a] + 1) * sizeof(*bk));
    sc->bucket[a][sc->nbucket[a]++] = slot_of(sc, idx);
}

/*
 * The nibbles allowed at the three positions of a fingerprint, or of a bucket of them (the
 * union): bit v of lo[k] (hi[k]) allows v as the low (high) nibble of the k-th byte.
 */
struct nib {
    uint16_t lo[3];
    uint16_t hi[3];
};

static void nib_byte(struct nib *m, int k, unsigned char c)
{
    m->lo[k] |= (uint16_t)(1u << (c & 15));
    m->hi[k] |= (uint16_t)(1u << (c >> 4));
}

/* An anchor's fingerprint, first byte b as it appears in the record, every case when caseless. */
static struct nib nib_of(const struct anchor *a, unsigned char b)
{
    struct nib m = {{0}, {0}};
    unsigned char c1 = (unsigned char)a->s[a->off + 1];

    nib_byte(&m, 0, b);
    nib_byte(&m, 1, case_of(c1, a->caseless, false));
    nib_byte(&m, 1, case_of(c1, a->caseless, true));
    if (a->off + 2 < a->len) {
        unsigned char c2 = (unsigned char)a->s[a->off + 2];

        nib_byte(&m, 2, case_of(c2, a->caseless, false));
        nib_byte(&m, 2, case_of(c2, a->caseless, true));
    } else {
        m.lo[2] = m.hi[2] = 0xffff; /* a two-byte piece: any third byte */
    }
    return m;
}

static struct nib nib_or(struct nib x, const struct nib *y)
{
    for (int k = 0; k < 3; k++) {
        x.lo[k] |= y->lo[k];
        x.hi[k] |= y->hi[k];
    }
    return x;
}

/*
 * How often a bucket lets a position through, roughly: the product over its three bytes of the
 * weights of the bytes whose two nibbles it allows (0 for an empty bucket).
 */
static double nib_cost(const struct nib *m)
{
    /* sums[h][half][bits]: the weights of the bytes of high nibble h whose low nibble is one of
     * bits (low nibbles 0-7, or 8-15 for half 1) */
    static unsigned sums[16][2][256];
    static bool made;
    double cost = 1;

    if (!made) {
        for (unsigned h = 0; h < 16; h++) {
            for (unsigned half = 0; half < 2; half++) {
                for (unsigned bits = 1; bits < 256; bits++) {
                    unsigned l = (unsigned)__builtin_ctz(bits);

                    sums[h][half][bits] = sums[h][half][bits & (bits - 1)] +
                                          weight((unsigned char)(h << 4 | (half * 8 + l)));
                }
            }
        }
        made = true;
    }
    for (int k = 0; k < 3; k++) {
        unsigned p = 0;

        for (unsigned hm = m->hi[k]; hm != 0; hm &= hm - 1) {
            unsigned h = (unsigned)__builtin_ctz(hm);

            p += sums[h][0][m->lo[k] & 255] + sums[h][1][m->lo[k] >> 8];
        }
        cost *= p;
    }
    return cost;
}

#define NIB_BUCKETS 7u /* the 8th is NUL's */

/* The fingerprints of a form and the bucket of each, with each bucket's union and cost. */
struct nib_plan {
    struct nib *fp;
    unsigned *in;
    size_t n;
    struct nib bucket[NIB_BUCKETS];
    double cost[NIB_BUCKETS];
};

/* The bucket that grows least in cost with fingerprint i in it. */
static unsigned nib_choose(const struct nib_plan *pl, size_t i)
{
    unsigned best = 0;
    double best_growth = 0;

    for (unsigned bk = 0; bk < NIB_BUCKETS; bk++) {
        struct nib m = nib_or(pl->bucket[bk], &pl->fp[i]);
        double growth = nib_cost(&m) - pl->cost[bk];

        if (bk == 0 || growth < best_growth) {
            best = bk;
            best_growth = growth;
        }
    }
    return best;
}

/* Moves fingerprint i to the bucket where the two buckets' costs add up least, if any. */
static void nib_improve(struct nib_plan *pl, size_t i)
{
    unsigned from = pl->in[i];
    unsigned best = from;
    struct nib rest = {{0}, {0}};
    double rest_cost;
    double best_delta = 0;

    for (size_t j = 0; j < pl->n; j++) {
        if (j != i && pl->in[j] == from) {
            rest = nib_or(rest, &pl->fp[j]);
        }
    }
    rest_cost = nib_cost(&rest);
    for (unsigned to = 0; to < NIB_BUCKETS; to++) {
        struct nib m = nib_or(pl->bucket[to], &pl->fp[i]);
        double delta = rest_cost + nib_cost(&m) - pl->cost[from] - pl->cost[to];

        if (to != from && delta < best_delta) {
            best = to;
            best_delta = delta;
        }
    }
    if (best != from) {
        pl->in[i] = best;
        pl->bucket[from] = rest;
        pl->cost[from] = rest_cost;
        pl->bucket[best] = nib_or(pl->bucket[best], &pl->fp[i]);
        pl->cost[best] = nib_cost(&pl->bucket[best]);
    }
}

/* Sets a fingerprint's nibbles in the vector tables, in one bucket. */
static void nib_set(struct scanner *sc, const struct nib *m, unsigned bucket)
{
    uint8_t *lo[3] = {sc->lo0, sc->lo1, sc->lo2};
    uint8_t *hi[3] = {sc->hi0, sc->hi1, sc->hi2};

    for (int k = 0; k < 3; k++) {
        for (unsigned v = 0; v < 16; v++) {
            lo[k][v] |= (uint8_t)((m->lo[k] >> v & 1u) << bucket);
            hi[k][v] |= (uint8_t)((m->hi[k] >> v & 1u) << bucket);
        }
    }
}

/*
 * Fills the nibble tables: fingerprints in 7 buckets, NUL alone in the 8th. A bucket allows
 * every mix of its fingerprints' nibbles, so fingerprints that share nibbles should go together:
 * each goes, by first byte, to the bucket that grows least in cost, then each in turn moves
 * where the sum of costs falls, twice over.
 */
static void nibbles_build(struct scanner *sc)
{
    struct nib_plan pl = {0};
    struct nib nul = {{1, 0xffff, 0xffff}, {1, 0xffff, 0xffff}};

    for (unsigned b = 0; b < 256; b++) {
        for (size_t j = 0; j < sc->nbucket[b]; j++) {
            pl.fp = cfw_xrealloc(pl.fp, (pl.n + 1) * sizeof(*pl.fp));
            pl.in = cfw_xrealloc(pl.in, (pl.n + 1) * sizeof(*pl.in));
            pl.fp[pl.n] = nib_of(&sc->anchors[sc->bucket[b][j].anchor], (unsigned char)b);
            pl.in[pl.n] = nib_choose(&pl, pl.n);
            pl.bucket[pl.in[pl.n]] = nib_or(pl.bucket[pl.in[pl.n]], &pl.fp[pl.n]);
            pl.cost[pl.in[pl.n]] = nib_cost(&pl.bucket[pl.in[pl.n]]);
            pl.n++;
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < pl.n; i++) {
            nib_improve(&pl, i);
        }
    }
    memset(sc->lo0, 0, sizeof(sc->lo0));
    memset(sc->hi0, 0, sizeof(sc->hi0));
    memset(sc->lo1, 0, sizeof(sc->lo1));
    memset(sc->hi1, 0, sizeof(sc->hi1));
    memset(sc->lo2, 0, sizeof(sc->lo2));
    memset(sc->hi2, 0, sizeof(sc->hi2));
    for (size_t i = 0; i < pl.n; i++) {
        nib_set(sc, &pl.fp[i], pl.in[i]);
    }
    nib_set(sc, &nul, NIB_BUCKETS); /* NUL, then every byte */
    free(pl.fp);
    free(pl.in);
}

static void scanner_build(struct scanner *sc)
{
    /* JSON keys, matched in any case (the decoder looks keys up so) */
    static const struct {
        const char *s;
        size_t off;
        enum anchor_type type;
    } structs[] = {
        {"\"outcome\"", 3, A_OUTCOME}, /* "tco" */
        {"\"exceptions\"", 2, A_EXC},  /* "xce" */
        {"\"error\"", 2, A_ERROR},     /* "rro" */
    };

    if (sc->json && sc->wanted) {
        struct anchor a = {.s = "\\u", .len = 2, .type = A_UESC};
        add_anchor(sc, &a);
    }
    if (sc->structs) {
        for (size_t i = 0; i < sizeof(structs) / sizeof(structs[0]); i++) {
            struct anchor a = {.s = structs[i].s,
                               .len = strlen(structs[i].s),
                               .off = structs[i].off,
                               .caseless = true,
                               .type = structs[i].type};
            add_anchor(sc, &a);
        }
    }
    memset(sc->bits, 0, sizeof(sc->bits));
    for (size_t i = 0; i < sc->nanchors; i++) {
        const struct anchor *a = &sc->anchors[i];
        unsigned char c0 = (unsigned char)a->s[a->off];
        unsigned char c1 = (unsigned char)a->s[a->off + 1];

        if (a->shadow) {
            continue;
        }
        set_pair(sc, c0, c1, i);
        if (a->caseless) {
            set_pair(sc, lower(c0), lower(c1), i);
            set_pair(sc, lower(c0), upper(c1), i);
            set_pair(sc, upper(c0), lower(c1), i);
            set_pair(sc, upper(c0), upper(c1), i);
        }
    }
    /* a NUL byte: the decoder turns it into a space, which may complete a literal */
    for (unsigned b = 0; b < 256; b++) {
        unsigned k = b << 8;
        sc->bits[k >> 6] |= UINT64_C(1) << (k & 63);
    }
    nibbles_build(sc);
}

static void sets_build(struct scanner *sc, size_t words)
{
    uint64_t **sets[3] = {&sc->all_set, &sc->always_set, &sc->struct_set};

    sc->words = words;
    for (int k = 0; k < 3; k++) {
        free(*sets[k]);
        *sets[k] = cfw_xcalloc(words > 0 ? words : 1, sizeof(uint64_t));
        for (size_t i = 0; i < sc->nids[k]; i++) {
            (*sets[k])[sc->ids[k][i] >> 6] |= UINT64_C(1) << (sc->ids[k][i] & 63);
        }
    }
}

void cfw_prefilter_build(struct cfw_prefilter *pf)
{
    scanner_build(&pf->text);
    scanner_build(&pf->json);
    sets_build(&pf->text, cfw_prefilter_words(pf));
    sets_build(&pf->json, cfw_prefilter_words(pf));
    pf->built = true;
}

size_t cfw_prefilter_words(const struct cfw_prefilter *pf)
{
    return (pf->nrules + 63) / 64;
}

/* Selects every rule of the form; true (the search can stop). */
static bool select_all(const struct scanner *sc, uint64_t *sel)
{
    memcpy(sel, sc->all_set, sc->words * sizeof(*sel));
    return true;
}

/* Adds a set to the selection; true when it now holds every rule of the form. */
static bool select_add(const struct scanner *sc, uint64_t *sel, const uint64_t *set)
{
    bool full = true;

    for (size_t w = 0; w < sc->words; w++) {
        sel[w] |= set[w];
        full = full && sel[w] == sc->all_set[w];
    }
    return full;
}

/* True when the selection holds every rule of the form. */
static bool select_full(const struct scanner *sc, const uint64_t *sel)
{
    for (size_t w = 0; w < sc->words; w++) {
        if ((sel[w] & sc->all_set[w]) != sc->all_set[w]) {
            return false;
        }
    }
    return true;
}

static bool selected(const uint64_t *sel, size_t id)
{
    return (sel[id >> 6] & (UINT64_C(1) << (id & 63))) != 0;
}

static bool eq_case(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) {
            return false;
        }
    }
    return true;
}

/*
 * Whether s[0..n) holds the piece, ASCII-caselessly when asked. Exact: memchr finds each place
 * of the piece's rarest byte where the piece would fit, then memcmp (glibc's memmem set up a
 * table per call: 800 instructions a call on records of a few hundred bytes).
 */
static bool contains(const char *s, size_t n, const struct piece *pc, bool caseless)
{
    const char *p = pc->s;
    size_t pn = pc->len;

    if (pn > n) {
        return false;
    }
    if (!caseless) {
        const char *q = s + pc->rare;
        const char *end = s + (n - pn) + pc->rare + 1; /* past the last place the byte fits */

        while ((q = memchr(q, p[pc->rare], (size_t)(end - q))) != NULL) {
            if (memcmp(q - pc->rare, p, pn) == 0) {
                return true;
            }
            q++;
        }
        return false;
    }
    for (size_t i = 0; i + pn <= n; i++) {
        if (lower((unsigned char)s[i]) == lower((unsigned char)p[0]) && eq_case(s + i, p, pn)) {
            return true;
        }
    }
    return false;
}

static bool alt_holds(const struct alt *al, size_t anchor_piece, const char *s, size_t n)
{
    for (size_t i = 0; i < al->npieces; i++) {
        if (i != anchor_piece && !contains(s, n, &al->pieces[i], al->caseless)) {
            return false;
        }
    }
    return true;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* After a key: skips `\s*:\s*`; returns the value's start, or NULL when no ':' follows. */
static const char *value_at(const char *p, const char *end)
{
    while (p < end && is_ws(*p)) {
        p++;
    }
    if (p >= end || *p != ':') {
        return NULL;
    }
    p++;
    while (p < end && is_ws(*p)) {
        p++;
    }
    return p;
}

/* True when the value at v (a JSON string or not) is "ok" or "canceled" in any case. */
static bool outcome_quiet(const char *v, const char *end)
{
    const char *q;
    size_t n;

    if (v >= end || *v != '"') {
        return true; /* not a string: the decoder makes no outcome event of it */
    }
    q = v + 1;
    while (q < end && *q != '"' && *q != '\\') {
        q++;
    }
    if (q >= end || *q != '"') {
        return false;
    }
    n = (size_t)(q - v - 1);
    return n == 0 || (n == 2 && eq_case(v + 1, "ok", 2)) ||
           (n == 8 && eq_case(v + 1, "canceled", 8));
}

/*
 * Checks one fingerprint hit at position at of s, whose first `done` bytes are known to be the
 * anchor's: adds the rules the hit selects to sel, and is true when every rule of the form is
 * selected (nothing is left to look for).
 */
static bool anchor_hit(const struct scanner *sc, const struct anchor *a, const char *s, size_t n,
                       size_t at, size_t done, uint64_t *sel)
{
    const char *p = s + at;
    const char *end = s + n;
    const char *q = p + done;
    const char *w = a->s + done;
    size_t left = a->len - done;
    const char *v;
    bool hit = false;

    /* the rest of the anchor: its last byte decides most cases */
    if (left > 0 && (a->caseless ? !eq_case(q, w, left)
                                 : q[left - 1] != w[left - 1] || memcmp(q, w, left) != 0)) {
        return false;
    }
    switch (a->type) {
    case A_PIECE:
        for (;;) {
            const struct alt *al = &sc->alts[a->alt];

            if (!selected(sel, al->rule) && alt_holds(al, a->piece, s, n)) {
                sel[al->rule >> 6] |= UINT64_C(1) << (al->rule & 63);
                hit = true;
            }
            if (a->next == SIZE_MAX) {
                return hit && select_full(sc, sel);
            }
            a = &sc->anchors[a->next];
        }
    case A_UESC:
        return select_all(sc, sel);
    case A_OUTCOME:
        v = value_at(p + a->len, end);
        hit = v != NULL && !outcome_quiet(v, end);
        break;
    case A_EXC:
        v = value_at(p + a->len, end);
        if (v == NULL || v >= end || *v != '[') {
            return false;
        }
        v++;
        while (v < end && is_ws(*v)) {
            v++;
        }
        hit = v < end && *v != ']';
        break;
    case A_ERROR:
        v = value_at(p + a->len, end);
        if (v == NULL || v >= end) {
            return false;
        }
        hit = !((end - v >= 4 && memcmp(v, "null", 4) == 0) ||
                (end - v >= 2 && memcmp(v, "\"\"", 2) == 0));
        break;
    }
    return hit && select_add(sc, sel, sc->struct_set);
}

/* Looks at the pair at position i; true when every rule of the form is selected now. */
/* Inlined into the vector loops: the call was a fifth of the prefilter's instructions. */
static inline __attribute__((always_inline)) bool
scan_at(const struct scanner *sc, const char *text, size_t n, size_t i, uint64_t *sel)
{
    const unsigned char *s = (const unsigned char *)text;
    unsigned k = (unsigned)s[i] | ((unsigned)s[i + 1] << 8);

    if ((sc->bits[k >> 6] & (UINT64_C(1) << (k & 63))) == 0) {
        return false;
    }
    if (s[i] == 0) {
        return select_all(sc, sel);
    }
    for (size_t j = 0; j < sc->nbucket[s[i]]; j++) {
        const struct slot *sl = &sc->bucket[s[i]][j];
        size_t at = i - sl->off;
        size_t done = 0;
        uint64_t head;

        if (i < sl->off || at + sl->len > n) {
            continue;
        }
        /* the anchor's first bytes, in one load where the record has 8 bytes there */
        if (at + 8 <= n) {
            memcpy(&head, text + at, 8);
            if (((head | sl->fold) & sl->mask) != sl->head) {
                continue;
            }
            done = sl->len < 8 ? sl->len : 8;
        }
        if (anchor_hit(sc, &sc->anchors[sl->anchor], text, n, at, done, sel)) {
            return true;
        }
    }
    return false;
}

static bool scan_scalar(const struct scanner *sc, const char *text, size_t n, size_t from,
                        uint64_t *sel)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = from;

    /* four positions a turn, each pair one 16-bit load (the table's index is first | second << 8)
     */
    for (; i + 4 < n; i += 4) {
#pragma GCC unroll 4
        for (size_t j = i; j < i + 4; j++) {
            uint16_t k;

            memcpy(&k, s + j, 2);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
            k = __builtin_bswap16(k);
#endif
            if ((sc->bits[k >> 6] >> (k & 63) & 1) != 0 && scan_at(sc, text, n, j, sel)) {
                return true;
            }
        }
    }
    for (; i + 1 < n; i++) {
        unsigned k = (unsigned)s[i] | ((unsigned)s[i + 1] << 8);

        if ((sc->bits[k >> 6] & (UINT64_C(1) << (k & 63))) != 0 && scan_at(sc, text, n, i, sel)) {
            return true;
        }
    }
    return false;
}

#ifdef PF_SIMD
/*
 * The tables in vector registers, and the constants. Loaded again after the positions a block
 * lets through are looked at: anchor_hit may be called there, and tables kept across that call
 * would be saved and restored on the stack every block.
 */
#define PF_TABLES(VEC, SET1, BCAST)                                                                \
    const VEC lo0 = BCAST(sc->lo0), hi0 = BCAST(sc->hi0);                                          \
    const VEC lo1 = BCAST(sc->lo1), hi1 = BCAST(sc->hi1);                                          \
    const VEC lo2 = BCAST(sc->lo2), hi2 = BCAST(sc->hi2);                                          \
    const VEC low = SET1(0x0f), zero = SET1(0)

/* Looks at the position base + k for each bit k of hits; true out of the function when full. */
#define PF_LOOK(base, hits)                                                                        \
    for (; (hits) != 0; (hits) &= (hits)-1) {                                                      \
        if (scan_at(sc, text, n, (base) + (size_t)__builtin_ctz(hits), sel)) {                     \
            return true;                                                                           \
        }                                                                                          \
    }

/*
 * The vector paths: per block, the bucket bits allowed by each byte's nibbles (pshufb on the
 * tables), ANDed with those of the next two bytes; only the positions left are looked at.
 */
#define PF_BLOCK(W, VEC, LOAD, SHUF, AND, SRL, EQ, MASK, SET1, BCAST)                              \
    while (i + 2 < n) {                                                                            \
        PF_TABLES(VEC, SET1, BCAST);                                                               \
        uint32_t hits;                                                                             \
        size_t at;                                                                                 \
        /* full blocks, then one last block that overlaps the one before (positions already        \
         * looked at are masked off), so that short records need no byte loop */                   \
        do {                                                                                       \
            at = i + (W) + 2 <= n ? i : n - (W)-2;                                                 \
            VEC v0 = LOAD((const VEC *)(s + at));                                                  \
            VEC v1 = LOAD((const VEC *)(s + at + 1));                                              \
            VEC v2 = LOAD((const VEC *)(s + at + 2));                                              \
            VEC m0 = AND(SHUF(lo0, AND(v0, low)), SHUF(hi0, AND(SRL(v0, 4), low)));                \
            VEC m1 = AND(SHUF(lo1, AND(v1, low)), SHUF(hi1, AND(SRL(v1, 4), low)));                \
            VEC m2 = AND(SHUF(lo2, AND(v2, low)), SHUF(hi2, AND(SRL(v2, 4), low)));                \
            hits = ~(uint32_t)MASK(EQ(AND(AND(m0, m1), m2), zero));                                \
            hits &= ((W) == 32 ? ~UINT32_C(0) : UINT32_C(0xffff)) & ~UINT32_C(0) << (i - at);      \
            i = at + (W);                                                                          \
        } while (hits == 0 && i + 2 < n);                                                          \
        PF_LOOK(at, hits);                                                                         \
    }

/*
 * After the blocks, which end at position n - 2 (i there): the last pair, which has no third
 * byte. Inline: calling the byte loop for one position cost 40 instructions a record.
 */
static inline __attribute__((always_inline)) bool
scan_last(const struct scanner *sc, const char *text, size_t n, size_t i, uint64_t *sel)
{
    const unsigned char *s = (const unsigned char *)text;
    unsigned k;

    if (i + 2 != n) {
        return scan_scalar(sc, text, n, i, sel); /* no block: a record shorter than one */
    }
    k = (unsigned)s[i] | ((unsigned)s[i + 1] << 8);
    return (sc->bits[k >> 6] & (UINT64_C(1) << (k & 63))) != 0 && scan_at(sc, text, n, i, sel);
}

/*
 * The blocks from the start of the record, one load each (Teddy's way): the three tables are
 * looked up on the same bytes, and the first and second bytes' results are shifted by two and
 * one positions (SHIFT: [the block before's last bytes, this one's first]), the block before's
 * kept from one to the next. A bit is a fingerprint's last byte here: its start is two bytes
 * before. Leaves in i the first start not yet looked at (the rest go through PF_BLOCK).
 */
#define PF_MAIN(W, VEC, LOAD, SHUF, AND, SRL, EQ, MASK, SET1, BCAST, SHIFT)                        \
    do {                                                                                           \
        VEC prev0 = SET1(0), prev1 = SET1(0); /* no fingerprint starts before the record */        \
        size_t at = 0;                                                                             \
        while (at + (W) <= n) {                                                                    \
            PF_TABLES(VEC, SET1, BCAST);                                                           \
            uint32_t hits;                                                                         \
            size_t base;                                                                           \
            do {                                                                                   \
                VEC v = LOAD((const VEC *)(s + at));                                               \
                VEC l = AND(v, low), h = AND(SRL(v, 4), low);                                      \
                VEC m0 = AND(SHUF(lo0, l), SHUF(hi0, h));                                          \
                VEC m1 = AND(SHUF(lo1, l), SHUF(hi1, h));                                          \
                VEC m2 = AND(SHUF(lo2, l), SHUF(hi2, h));                                          \
                VEC all = AND(AND(SHIFT(m0, prev0, 2), SHIFT(m1, prev1, 1)), m2);                  \
                hits = ~(uint32_t)MASK(EQ(all, zero)) & ((W) == 32 ? ~0u : 0xffffu);               \
                prev0 = m0;                                                                        \
                prev1 = m1;                                                                        \
                base = at - 2; /* the start of the fingerprint ending at bit 0 (wraps at 0) */     \
                at += (W);                                                                         \
            } while (hits == 0 && at + (W) <= n);                                                  \
            PF_LOOK(base, hits);                                                                   \
        }                                                                                          \
        i = at - 2;                                                                                \
    } while (0)

#define SHIFT128(cur, prev, k) _mm_alignr_epi8((cur), (prev), 16 - (k))
/* alignr works on each 16-byte half: the halves before are [prev's high, cur's low] */
#define SHIFT256(cur, prev, k)                                                                     \
    _mm256_alignr_epi8((cur), _mm256_permute2x128_si256((prev), (cur), 0x21), 16 - (k))

#define BCAST128(t) _mm_loadu_si128((const __m128i *)(t))
#define BCAST256(t) _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t)))

__attribute__((target("ssse3"))) static bool scan_ssse3(const struct scanner *sc, const char *text,
                                                        size_t n, uint64_t *sel)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;

    if (n < 16 + 2) {
        return scan_scalar(sc, text, n, 0, sel);
    }
    PF_MAIN(16, __m128i, _mm_loadu_si128, _mm_shuffle_epi8, _mm_and_si128, _mm_srli_epi16,
            _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set1_epi8, BCAST128, SHIFT128);
    PF_BLOCK(16, __m128i, _mm_loadu_si128, _mm_shuffle_epi8, _mm_and_si128, _mm_srli_epi16,
             _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set1_epi8, BCAST128);
    return scan_last(sc, text, n, i, sel);
}

__attribute__((target("avx2"))) static bool scan_avx2(const struct scanner *sc, const char *text,
                                                      size_t n, uint64_t *sel)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;

    if (n < 32 + 2) {
        return scan_ssse3(sc, text, n, sel);
    }
    PF_MAIN(32, __m256i, _mm256_loadu_si256, _mm256_shuffle_epi8, _mm256_and_si256,
            _mm256_srli_epi16, _mm256_cmpeq_epi8, _mm256_movemask_epi8, _mm256_set1_epi8, BCAST256,
            SHIFT256);
    PF_BLOCK(32, __m256i, _mm256_loadu_si256, _mm256_shuffle_epi8, _mm256_and_si256,
             _mm256_srli_epi16, _mm256_cmpeq_epi8, _mm256_movemask_epi8, _mm256_set1_epi8,
             BCAST256);
    return scan_last(sc, text, n, i, sel);
}

enum simd { SIMD_UNKNOWN, SIMD_NONE, SIMD_SSSE3, SIMD_AVX2 };

/* What this CPU has; CFW_PREFILTER_SIMD=none|ssse3 narrows it (tests, and comparing). */
static enum simd simd_level(void)
{
    static enum simd level = SIMD_UNKNOWN;

    if (level == SIMD_UNKNOWN) {
        const char *env = getenv("CFW_PREFILTER_SIMD");

        __builtin_cpu_init();
        level = __builtin_cpu_supports("avx2")    ? SIMD_AVX2
                : __builtin_cpu_supports("ssse3") ? SIMD_SSSE3
                                                  : SIMD_NONE;
        if (env != NULL && strcmp(env, "none") == 0) {
            level = SIMD_NONE;
        } else if (env != NULL && strcmp(env, "ssse3") == 0 && level == SIMD_AVX2) {
            level = SIMD_SSSE3;
        }
    }
    return level;
}
#endif

/* Adds to sel the rules the record selects; true when that is every rule of the form. */
static bool scan(const struct scanner *sc, const char *text, size_t n, uint64_t *sel)
{
    if (n > 0 && text[n - 1] == 0) {
        return select_all(sc, sel);
    }
#ifdef PF_SIMD
    /* by length too: a record shorter than a block goes to the narrower path at once */
    switch (simd_level()) {
    case SIMD_AVX2:
        if (n >= 32 + 2) {
            return scan_avx2(sc, text, n, sel);
        }
        __attribute__((fallthrough)); /* a shorter record: the SSSE3 path or the byte loop */
    case SIMD_SSSE3:
        if (n >= 16 + 2) {
            return scan_ssse3(sc, text, n, sel);
        }
        break;
    default:
        break;
    }
#endif
    return scan_scalar(sc, text, n, 0, sel);
}

bool cfw_prefilter_select(const struct cfw_prefilter *pf, enum cfw_record_kind kind,
                          const char *text, size_t len, uint64_t *sel)
{
    const struct scanner *sc = kind == CFW_REC_JSON ? &pf->json : &pf->text;
    size_t words = cfw_prefilter_words(pf);
    bool any = false;

    if (!pf->built || text == NULL) {
        for (size_t w = 0; w < words; w++) {
            sel[w] = ~UINT64_C(0);
        }
        return true;
    }
    if (words == 1) {
        sel[0] = 0; /* up to 64 rules: no call to memset per record */
    } else {
        memset(sel, 0, words * sizeof(*sel));
    }
    if (!sc->wanted) {
        return false;
    }
    if (!scan(sc, text, len, sel)) {
        select_add(sc, sel, sc->always_set);
    }
    for (size_t w = 0; w < words && !any; w++) {
        any = sel[w] != 0;
    }
    return any;
}
