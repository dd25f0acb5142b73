/* JSON records: a one-pass parser into an array of nodes that refer to the text (see json.h). */
#include "cfwatchd/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfwatchd/common.h"

#define NODE_ESC 1u      /* a string with escapes */
#define NODE_SHADOWED 2u /* a key given earlier in its object: iterations skip it */

#define ARENA_CHUNK (64u * 1024u)    /* bytes of one chunk of decoded strings */
#define RETAIN_NODES (64u * 1024u)   /* a larger node array is given back at the next parse */
#define RETAIN_BYTES (1024u * 1024u) /* a larger scratch buffer or key table, the same */

struct cfw_json_node {
    uint8_t type;  /* enum cfw_json_type */
    uint8_t flags; /* NODE_* */
    size_t off;    /* strings: the first byte after the quote; numbers: their first byte */
    size_t len;    /* bytes of text (strings: between the quotes) */
    size_t skip;   /* nodes of this subtree, itself included: its next sibling is this + skip */
    union {
        int64_t i;
        double d;
        size_t count; /* containers: elements, or distinct keys */
        size_t val;   /* keys: the index of the member's value (the last one given) */
    } u;
};

struct chunk {
    struct chunk *next;
    size_t cap;
    size_t used;
    char data[];
};

struct scratch {
    char *p;
    size_t cap;
};

struct cfw_json {
    const char *text;
    size_t len;
    struct cfw_json_node *nodes;
    size_t n;
    size_t cap;
    size_t depth; /* the deepest nesting of containers in the document */
    bool ok;
    struct chunk *arena;  /* decoded strings handed out since the last parse */
    struct scratch sc[2]; /* keys decoded for a compare, numbers for strtod, strings to dump */
    size_t *table;        /* open addressing over an object's keys (index + 1; 0 is empty) */
    size_t table_cap;
    size_t stack[CFW_JSON_MAX_DEPTH]; /* the open containers */
};

/* ---- memory ---- */

struct cfw_json *cfw_json_new(void)
{
    return cfw_xcalloc(1, sizeof(struct cfw_json));
}

static void arena_reset(struct cfw_json *j, bool all)
{
    struct chunk *keep = NULL;

    while (j->arena != NULL) {
        struct chunk *c = j->arena;

        j->arena = c->next;
        if (!all && keep == NULL && c->cap == ARENA_CHUNK) {
            keep = c;
        } else {
            free(c);
        }
    }
    if (keep != NULL) {
        keep->next = NULL;
        keep->used = 0;
        j->arena = keep;
    }
}

static char *arena_alloc(struct cfw_json *j, size_t n)
{
    struct chunk *c = j->arena;

    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;

        c = cfw_xmalloc(sizeof(*c) + cap);
        c->cap = cap;
        c->used = 0;
        c->next = j->arena;
        j->arena = c;
    }
    c->used += n;
    return c->data + c->used - n;
}

static char *scratch_get(struct scratch *s, size_t n)
{
    if (s->cap < n) {
        size_t cap = s->cap == 0 ? 256 : s->cap;

        while (cap < n) {
            cap *= 2;
        }
        s->p = cfw_xrealloc(s->p, cap);
        s->cap = cap;
    }
    return s->p;
}

static void scratch_trim(struct scratch *s)
{
    if (s->cap > RETAIN_BYTES) {
        free(s->p);
        s->p = NULL;
        s->cap = 0;
    }
}

void cfw_json_free(struct cfw_json *j)
{
    if (j == NULL) {
        return;
    }
    arena_reset(j, true);
    free(j->nodes);
    free(j->sc[0].p);
    free(j->sc[1].p);
    free(j->table);
    free(j);
}

/* Gives back what one large record made the parser hold, and forgets the last document. */
static void parser_reset(struct cfw_json *j)
{
    j->ok = false;
    j->n = 0;
    j->depth = 0;
    if (j->cap > RETAIN_NODES) {
        free(j->nodes);
        j->nodes = NULL;
        j->cap = 0;
    }
    if (j->table_cap * sizeof(size_t) > RETAIN_BYTES) {
        free(j->table);
        j->table = NULL;
        j->table_cap = 0;
    }
    scratch_trim(&j->sc[0]);
    scratch_trim(&j->sc[1]);
    arena_reset(j, false);
}

static size_t node_new(struct cfw_json *j, enum cfw_json_type type, size_t off)
{
    struct cfw_json_node *nd;

    if (j->n == j->cap) {
        j->cap = j->cap == 0 ? 256 : j->cap * 2;
        j->nodes = cfw_xrealloc(j->nodes, j->cap * sizeof(*j->nodes));
    }
    nd = &j->nodes[j->n];
    nd->type = (uint8_t)type;
    nd->flags = 0;
    nd->off = off;
    nd->len = 0;
    nd->skip = 1;
    nd->u.count = 0;
    return j->n++;
}

/* ---- strings ---- */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The value of the four hex digits at p[0..4), -1 when one is not (n: bytes there). */
static int32_t hex4(const unsigned char *p, size_t n)
{
    int32_t v = 0;

    if (n < 4) {
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        int h = cfw_hex_value(p[i]);

        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

/* Checks the escape at p[0] == '\\'; returns its length, 0 when jansson rejects it. */
static size_t escape_check(const unsigned char *p, size_t n)
{
    int32_t cp;
    int32_t lo;

    if (n < 2) {
        return 0;
    }
    if (strchr("\"\\/bfnrt", p[1]) != NULL && p[1] != '\0') {
        return 2;
    }
    if (p[1] != 'u' || (cp = hex4(p + 2, n - 2)) < 0) {
        return 0;
    }
    if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) {
        return 0; /* \u0000 (no JSON_ALLOW_NUL) or a lone low surrogate */
    }
    if (cp < 0xD800 || cp > 0xDBFF) {
        return 6;
    }
    if (n < 8 || p[6] != '\\' || p[7] != 'u') {
        return 0;
    }
    lo = hex4(p + 8, n - 8);
    return lo >= 0xDC00 && lo <= 0xDFFF ? 12 : 0;
}

/* Decodes the checked string body s[0..n) into out (room for n bytes); returns its length. */
static size_t unescape(const char *s, size_t n, char *out)
{
    static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    size_t i = 0;

    while (i < n) {
        const char *bs = memchr(s + i, '\\', n - i);
        size_t run = bs != NULL ? (size_t)(bs - (s + i)) : n - i;
        uint32_t cp;

        memcpy(out + o, s + i, run);
        o += run;
        i += run;
        if (i >= n) {
            break;
        }
        if (p[i + 1] != 'u') {
            out[o++] = strchr(simple, p[i + 1])[1];
            i += 2;
            continue;
        }
        cp = (uint32_t)hex4(p + i + 2, 4);
        i += 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            cp = ((cp - 0xD800) << 10) + ((uint32_t)hex4(p + i + 2, 4) - 0xDC00) + 0x10000;
            i += 6;
        }
        o += cfw_utf8_put(cp, out + o);
    }
    return o;
}

/* A string's bytes: in the text when it has no escapes, else decoded into scratch s. */
static const char *str_bytes(struct cfw_json *j, const struct cfw_json_node *n, int s, size_t *len)
{
    char *out;

    if (!(n->flags & NODE_ESC)) {
        *len = n->len;
        return j->text + n->off;
    }
    out = scratch_get(&j->sc[s], n->len + 1);
    *len = unescape(j->text + n->off, n->len, out);
    out[*len] = '\0';
    return out;
}

const char *cfw_json_str(struct cfw_json *j, const struct cfw_json_node *n, size_t *len)
{
    char *out;
    size_t l;

    if (!cfw_json_is(n, CFW_JSON_STRING)) {
        return NULL;
    }
    out = arena_alloc(j, n->len + 1);
    if (n->flags & NODE_ESC) {
        l = unescape(j->text + n->off, n->len, out);
    } else {
        memcpy(out, j->text + n->off, n->len);
        l = n->len;
    }
    out[l] = '\0';
    if (len != NULL) {
        *len = l;
    }
    return out;
}

/* ---- the parser ---- */

static size_t skip_ws(const char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
        i++;
    }
    return i;
}

/* Non-zero when one of the 8 bytes of w is '"', '\\', a control byte or a byte >= 0x80. */
static uint64_t special8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t q = w ^ (ones * '"');
    uint64_t b = w ^ (ones * '\\');

    /* the usual "has a zero byte" and "has a byte below n" tests: exact as to presence */
    return (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w) & (ones * 0x80);
}

/* The string at text[*pos] == '"' into a new node; -1 when jansson rejects it. */
static int scan_string(struct cfw_json *j, size_t *pos)
{
    const unsigned char *p = (const unsigned char *)j->text;
    size_t n = j->len;
    size_t i = *pos + 1;
    uint8_t flags = 0;
    size_t idx;

    for (;;) {
        size_t k;
        uint64_t w;

        /* plain bytes, eight at a time, then one at a time */
        while (n - i >= 8 && (memcpy(&w, p + i, 8), special8(w) == 0)) {
            i += 8;
        }
        while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\') {
            i++;
        }
        if (i >= n || p[i] < 0x20) {
            return -1;
        }
        if (p[i] == '"') {
            break;
        }
        if (p[i] == '\\') {
            k = escape_check(p + i, n - i);
            flags = NODE_ESC;
        } else {
            /* the same checks as jansson's utf8_check_full: no overlong forms, surrogates or
             * code points above U+10FFFF */
            k = cfw_utf8_len(p + i, n - i);
        }
        if (k == 0) {
            return -1;
        }
        i += k;
    }
    idx = node_new(j, CFW_JSON_STRING, *pos + 1);
    j->nodes[idx].len = i - (*pos + 1);
    j->nodes[idx].flags = flags;
    *pos = i + 1;
    return 0;
}

/* An integer's value as strtoll has it; false when it is outside int64 (ERANGE). */
static bool int_value(const char *s, size_t n, int64_t *out)
{
    bool neg = n > 0 && s[0] == '-';
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    uint64_t v = 0;

    for (size_t i = neg ? 1 : 0; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');

        if (v > (limit - d) / 10u) {
            return false;
        }
        v = v * 10u + d;
    }
    if (neg) {
        *out = v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v;
    } else {
        *out = (int64_t)v;
    }
    return true;
}

/*
 * A real's value as strtod has it; false when it overflows (jansson's jsonp_strtod). strtod reads
 * '.' as the decimal point because cfwatchd never calls setlocale (jansson swaps in the locale's
 * point; a setlocale here would need the same).
 */
static bool real_value(struct cfw_json *j, const char *s, size_t n, double *out)
{
    char *copy = scratch_get(&j->sc[0], n + 1);

    memcpy(copy, s, n);
    copy[n] = '\0';
    errno = 0;
    *out = strtod(copy, NULL);
    return !((*out == HUGE_VAL || *out == -HUGE_VAL) && errno == ERANGE);
}

static size_t skip_digits(const char *p, size_t n, size_t i)
{
    while (i < n && is_digit((unsigned char)p[i])) {
        i++;
    }
    return i;
}

size_t cfw_json_number_len(const char *p, size_t n, bool *real)
{
    size_t i = 0;
    bool frac = false;

    if (i < n && p[i] == '-') {
        i++;
    }
    if (i < n && p[i] == '0') {
        i++;
    } else if (i < n && is_digit((unsigned char)p[i])) {
        i = skip_digits(p, n, i);
    } else {
        return 0;
    }
    if (i < n && p[i] == '.') {
        if (++i >= n || !is_digit((unsigned char)p[i])) {
            return 0;
        }
        i = skip_digits(p, n, i);
        frac = true;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        if (++i < n && (p[i] == '+' || p[i] == '-')) {
            i++;
        }
        if (i >= n || !is_digit((unsigned char)p[i])) {
            return 0;
        }
        i = skip_digits(p, n, i);
        frac = true;
    }
    if (real != NULL) {
        *real = frac;
    }
    return i;
}

/*
 * The number at text[*pos] into a new node; -1 when jansson rejects it. A digit right after a
 * leading 0 ("01") ends the number at the 0, and the parse then fails on the digit.
 */
static int scan_number(struct cfw_json *j, size_t *pos)
{
    bool real = false;
    size_t len = cfw_json_number_len(j->text + *pos, j->len - *pos, &real);
    struct cfw_json_node *nd;
    size_t idx;

    if (len == 0) {
        return -1;
    }
    idx = node_new(j, real ? CFW_JSON_REAL : CFW_JSON_INTEGER, *pos);
    nd = &j->nodes[idx];
    nd->len = len;
    if (real ? !real_value(j, j->text + *pos, len, &nd->u.d)
             : !int_value(j->text + *pos, len, &nd->u.i)) {
        return -1;
    }
    *pos += len;
    return 0;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A number, string or literal at text[*pos] into a new node; -1 when jansson rejects it. */
static int scan_scalar(struct cfw_json *j, size_t *pos)
{
    const char *p = j->text + *pos;
    size_t i = 0;
    size_t room = j->len - *pos;

    if (p[0] == '"') {
        return scan_string(j, pos);
    }
    if (p[0] == '-' || is_digit((unsigned char)p[0])) {
        if (scan_number(j, pos) != 0) {
            return -1;
        }
    } else {
        /* jansson reads a run of letters, then compares it */
        while (i < room && is_alpha(p[i])) {
            i++;
        }
        if (i == 4 && memcmp(p, "true", 4) == 0) {
            node_new(j, CFW_JSON_TRUE, *pos);
        } else if (i == 5 && memcmp(p, "false", 5) == 0) {
            node_new(j, CFW_JSON_FALSE, *pos);
        } else if (i == 4 && memcmp(p, "null", 4) == 0) {
            node_new(j, CFW_JSON_NULL, *pos);
        } else {
            return -1;
        }
        *pos += i;
    }
    /* jansson puts back the byte after a number or a word, and loses it when it is a NUL */
    if (*pos < j->len && j->text[*pos] == '\0') {
        (*pos)++;
    }
    return 0;
}

/* An object's key at text[*pos] (whitespace before it) into a new node, then its ':'. */
static int scan_key(struct cfw_json *j, size_t *pos, size_t obj)
{
    size_t key = j->n;

    *pos = skip_ws(j->text, j->len, *pos);
    if (*pos >= j->len || j->text[*pos] != '"' || scan_string(j, pos) != 0) {
        return -1;
    }
    j->nodes[key].u.val = key + 1;
    j->nodes[obj].u.count++;
    *pos = skip_ws(j->text, j->len, *pos);
    if (*pos >= j->len || j->text[*pos] != ':') {
        return -1;
    }
    (*pos)++;
    return 0;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    }
    return h;
}

static bool keys_same(struct cfw_json *j, const struct cfw_json_node *a,
                      const struct cfw_json_node *b)
{
    const char *x;
    const char *y;
    size_t xl;
    size_t yl;

    if (!((a->flags | b->flags) & NODE_ESC)) {
        return a->len == b->len && memcmp(j->text + a->off, j->text + b->off, a->len) == 0;
    }
    x = str_bytes(j, a, 0, &xl);
    y = str_bytes(j, b, 1, &yl);
    return xl == yl && memcmp(x, y, xl) == 0;
}

/*
 * Marks the keys of an object given a second time (jansson keeps a key where it came first,
 * with the value it got last) and counts the distinct ones: one hash table pass.
 */
static void object_dedup(struct cfw_json *j, size_t obj)
{
    struct cfw_json_node *o = &j->nodes[obj];
    size_t size = 16;
    size_t shadowed = 0;

    while (size < o->u.count * 2) {
        size *= 2;
    }
    if (j->table_cap < size) {
        j->table = cfw_xrealloc(j->table, size * sizeof(size_t));
        j->table_cap = size;
    }
    memset(j->table, 0, size * sizeof(size_t));
    for (size_t k = obj + 1; k < obj + o->skip; k = k + 1 + j->nodes[k + 1].skip) {
        size_t len;
        const char *s = str_bytes(j, &j->nodes[k], 0, &len);
        size_t slot = (size_t)hash_bytes(s, len) & (size - 1);

        while (j->table[slot] != 0 && !keys_same(j, &j->nodes[j->table[slot] - 1], &j->nodes[k])) {
            slot = (slot + 1) & (size - 1);
        }
        if (j->table[slot] == 0) {
            j->table[slot] = k + 1;
        } else {
            j->nodes[k].flags |= NODE_SHADOWED;
            j->nodes[j->table[slot] - 1].u.val = k + 1;
            shadowed++;
        }
    }
    o->u.count -= shadowed;
}

static void container_close(struct cfw_json *j, size_t idx)
{
    struct cfw_json_node *c = &j->nodes[idx];

    c->skip = j->n - idx;
    if (c->type == CFW_JSON_OBJECT && c->u.count > 1) {
        object_dedup(j, idx);
    }
}

/*
 * Starts a value at text[*pos]: a scalar or an empty container is done (0), a container
 * with something in it is opened (1, its first key read); -1 on an error.
 */
static int value_start(struct cfw_json *j, size_t *pos, size_t *depth)
{
    size_t idx;
    char close;

    *pos = skip_ws(j->text, j->len, *pos);
    /* jansson counts every value's depth, scalars too */
    if (*pos >= j->len || *depth >= CFW_JSON_MAX_DEPTH) {
        return -1;
    }
    if (*depth > 0 && j->nodes[j->stack[*depth - 1]].type == CFW_JSON_ARRAY) {
        j->nodes[j->stack[*depth - 1]].u.count++;
    }
    if (j->text[*pos] != '[' && j->text[*pos] != '{') {
        return scan_scalar(j, pos);
    }
    close = j->text[*pos] == '[' ? ']' : '}';
    if (*depth + 1 > j->depth) {
        j->depth = *depth + 1;
    }
    idx = node_new(j, close == ']' ? CFW_JSON_ARRAY : CFW_JSON_OBJECT, *pos);
    *pos = skip_ws(j->text, j->len, *pos + 1);
    if (*pos < j->len && j->text[*pos] == close) {
        (*pos)++;
        container_close(j, idx);
        return 0;
    }
    j->stack[(*depth)++] = idx;
    if (close == '}' && scan_key(j, pos, idx) != 0) {
        return -1;
    }
    return 1;
}

/* After a value: closes containers; 1 when a value is to follow, 0 at the end, -1 on error. */
static int value_end(struct cfw_json *j, size_t *pos, size_t *depth)
{
    for (;;) {
        size_t top;
        bool object;

        *pos = skip_ws(j->text, j->len, *pos);
        if (*depth == 0) {
            return *pos == j->len ? 0 : -1;
        }
        if (*pos >= j->len) {
            return -1;
        }
        top = j->stack[*depth - 1];
        object = j->nodes[top].type == CFW_JSON_OBJECT;
        if (j->text[*pos] == ',') {
            (*pos)++;
            return object && scan_key(j, pos, top) != 0 ? -1 : 1;
        }
        if (j->text[*pos] != (object ? '}' : ']')) {
            return -1;
        }
        (*pos)++;
        container_close(j, top);
        (*depth)--;
    }
}

const struct cfw_json_node *cfw_json_parse(struct cfw_json *j, const char *text, size_t len)
{
    size_t pos = 0;
    size_t depth = 0;
    int r;

    parser_reset(j);
    j->text = text;
    j->len = len;
    do {
        r = value_start(j, &pos, &depth);
        if (r == 0) {
            r = value_end(j, &pos, &depth);
        }
    } while (r > 0);
    if (r < 0) {
        j->n = 0;
        return NULL;
    }
    j->ok = true;
    return &j->nodes[0];
}

const struct cfw_json_node *cfw_json_root(const struct cfw_json *j)
{
    return j->ok ? &j->nodes[0] : NULL;
}

size_t cfw_json_depth(const struct cfw_json *j)
{
    return j->ok ? j->depth : 0;
}

/* ---- reading ---- */

bool cfw_json_is(const struct cfw_json_node *n, enum cfw_json_type t)
{
    return n != NULL && n->type == t;
}

bool cfw_json_is_number(const struct cfw_json_node *n)
{
    return n != NULL && (n->type == CFW_JSON_INTEGER || n->type == CFW_JSON_REAL);
}

enum cfw_json_type cfw_json_type(const struct cfw_json_node *n)
{
    return (enum cfw_json_type)n->type;
}

int64_t cfw_json_int(const struct cfw_json_node *n)
{
    return cfw_json_is(n, CFW_JSON_INTEGER) ? n->u.i : 0;
}

double cfw_json_real(const struct cfw_json_node *n)
{
    return cfw_json_is(n, CFW_JSON_REAL) ? n->u.d : 0.0;
}

size_t cfw_json_size(const struct cfw_json_node *n)
{
    return cfw_json_is(n, CFW_JSON_ARRAY) || cfw_json_is(n, CFW_JSON_OBJECT) ? n->u.count : 0;
}

const struct cfw_json_node *cfw_json_at(const struct cfw_json_node *arr, size_t i)
{
    const struct cfw_json_node *c;

    if (!cfw_json_is(arr, CFW_JSON_ARRAY) || i >= arr->u.count) {
        return NULL;
    }
    for (c = arr + 1; i > 0; i--) {
        c += c->skip;
    }
    return c;
}

/* A key node against s[0..n): key bytes decoded into scratch 1 when they hold escapes. */
static bool key_matches(struct cfw_json *j, const struct cfw_json_node *key, const char *s,
                        size_t n, bool nocase)
{
    size_t len;
    const char *k = str_bytes(j, key, 1, &len);

    if (len != n) {
        return false;
    }
    return nocase ? strncasecmp(k, s, n) == 0 : memcmp(k, s, n) == 0;
}

bool cfw_json_key_is(struct cfw_json *j, const struct cfw_json_node *key, const char *s,
                     bool nocase)
{
    return cfw_json_is(key, CFW_JSON_STRING) && key_matches(j, key, s, strlen(s), nocase);
}

static const struct cfw_json_node *get_n(struct cfw_json *j, const struct cfw_json_node *obj,
                                         const char *s, size_t n, bool nocase)
{
    const struct cfw_json_node *end;

    if (!cfw_json_is(obj, CFW_JSON_OBJECT)) {
        return NULL;
    }
    end = obj + obj->skip;
    /* a key given again is skipped: where it came first, it has the last value */
    for (const struct cfw_json_node *k = obj + 1; k < end; k = k + 1 + k[1].skip) {
        if (!(k->flags & NODE_SHADOWED) && key_matches(j, k, s, n, nocase)) {
            return &j->nodes[k->u.val];
        }
    }
    return NULL;
}

const struct cfw_json_node *cfw_json_get(struct cfw_json *j, const struct cfw_json_node *obj,
                                         const char *key)
{
    return get_n(j, obj, key, strlen(key), false);
}

const struct cfw_json_node *cfw_json_get_nocase(struct cfw_json *j, const struct cfw_json_node *obj,
                                                const char *key)
{
    return get_n(j, obj, key, strlen(key), true);
}

void cfw_json_iter_init(const struct cfw_json_node *n, struct cfw_json_iter *it)
{
    memset(it, 0, sizeof(*it));
    if (cfw_json_is(n, CFW_JSON_ARRAY) || cfw_json_is(n, CFW_JSON_OBJECT)) {
        it->next = n + 1;
        it->end = n + n->skip;
        it->object = n->type == CFW_JSON_OBJECT;
    }
}

bool cfw_json_iter_next(struct cfw_json *j, struct cfw_json_iter *it)
{
    while (it->next < it->end) {
        const struct cfw_json_node *c = it->next;

        if (!it->object) {
            it->value = c;
            it->next = c + c->skip;
            return true;
        }
        it->next = c + 1 + c[1].skip;
        if (!(c->flags & NODE_SHADOWED)) {
            it->key = c;
            it->value = &j->nodes[c->u.val];
            return true;
        }
    }
    return false;
}

/* ---- writing and comparing ---- */

typedef int (*dump_fn)(const char *s, size_t n, void *arg);

/* A string as jansson's dump_string writes it without JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH. */
static int dump_string(const char *s, size_t n, dump_fn out, void *arg)
{
    size_t run = 0;

    if (out("\"", 1, arg) != 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char seq[8];
        const char *e = seq;

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        if (i > run && out(s + run, i - run, arg) != 0) {
            return -1;
        }
        run = i + 1;
        switch (c) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            snprintf(seq, sizeof(seq), "\\u%04X", (unsigned)c);
            break;
        }
        if (out(e, strlen(e), arg) != 0) {
            return -1;
        }
    }
    if (n > run && out(s + run, n - run, arg) != 0) {
        return -1;
    }
    return out("\"", 1, arg);
}

/* A real as jansson's jsonp_dtostr writes it: %.17g, ".0" when it looks like an integer. */
static int dump_real(double d, dump_fn out, void *arg)
{
    char buf[64];
    int r = snprintf(buf, sizeof(buf) - 3, "%.17g", d);
    size_t len;
    char *e;

    if (r < 0 || (size_t)r >= sizeof(buf) - 3) {
        return -1;
    }
    len = (size_t)r;
    if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    e = strchr(buf, 'e');
    if (e != NULL) {
        /* no '+' and no leading zeros in the exponent */
        char *start = e + 1;
        char *end = start + 1;

        if (*start == '-') {
            start++;
        }
        while (*end == '0') {
            end++;
        }
        if (end != start) {
            memmove(start, end, len - (size_t)(end - buf) + 1);
            len -= (size_t)(end - start);
        }
    }
    return out(buf, len, arg);
}

static int dump_node(struct cfw_json *j, const struct cfw_json_node *n, dump_fn out, void *arg)
{
    static const char *const words[] = {"null", "true", "false"};
    struct cfw_json_iter it;
    char buf[32];
    const char *s;
    size_t len;
    bool first = true;

    switch (n->type) {
    case CFW_JSON_NULL:
    case CFW_JSON_TRUE:
    case CFW_JSON_FALSE:
        return out(words[n->type], strlen(words[n->type]), arg);
    case CFW_JSON_INTEGER:
        snprintf(buf, sizeof(buf), "%lld", (long long)n->u.i);
        return out(buf, strlen(buf), arg);
    case CFW_JSON_REAL:
        return dump_real(n->u.d, out, arg);
    case CFW_JSON_STRING:
        s = str_bytes(j, n, 0, &len);
        return dump_string(s, len, out, arg);
    default:
        break;
    }
    if (out(n->type == CFW_JSON_ARRAY ? "[" : "{", 1, arg) != 0) {
        return -1;
    }
    cfw_json_iter_init(n, &it);
    while (cfw_json_iter_next(j, &it)) {
        if (!first && out(",", 1, arg) != 0) {
            return -1;
        }
        first = false;
        if (it.key != NULL) {
            s = str_bytes(j, it.key, 0, &len);
            if (dump_string(s, len, out, arg) != 0 || out(":", 1, arg) != 0) {
                return -1;
            }
        }
        if (dump_node(j, it.value, out, arg) != 0) {
            return -1;
        }
    }
    return out(n->type == CFW_JSON_ARRAY ? "]" : "}", 1, arg);
}

int cfw_json_dump(struct cfw_json *j, const struct cfw_json_node *n, dump_fn out, void *arg)
{
    return n != NULL ? dump_node(j, n, out, arg) : -1;
}

static bool objects_equal(struct cfw_json *j, const struct cfw_json_node *a,
                          const struct cfw_json_node *b)
{
    struct cfw_json_iter ia;
    struct cfw_json_iter ib;

    if (a->u.count != b->u.count) {
        return false;
    }
    cfw_json_iter_init(a, &ia);
    cfw_json_iter_init(b, &ib);
    while (cfw_json_iter_next(j, &ia)) {
        const struct cfw_json_node *bv = NULL;
        size_t len;
        const char *k = str_bytes(j, ia.key, 0, &len);

        /* the same order is the usual case: the member at the same place first */
        if (cfw_json_iter_next(j, &ib) && key_matches(j, ib.key, k, len, false)) {
            bv = ib.value;
        } else {
            bv = get_n(j, b, k, len, false);
        }
        if (!cfw_json_equal(j, ia.value, bv)) {
            return false;
        }
    }
    return true;
}

bool cfw_json_equal(struct cfw_json *j, const struct cfw_json_node *a,
                    const struct cfw_json_node *b)
{
    const char *x;
    const char *y;
    size_t xl;
    size_t yl;

    if (a == NULL || b == NULL || a->type != b->type) {
        return false;
    }
    if (a == b) {
        return true;
    }
    switch (a->type) {
    case CFW_JSON_INTEGER:
        return a->u.i == b->u.i;
    case CFW_JSON_REAL:
        return a->u.d == b->u.d;
    case CFW_JSON_STRING:
        x = str_bytes(j, a, 0, &xl);
        y = str_bytes(j, b, 1, &yl);
        return xl == yl && memcmp(x, y, xl) == 0;
    case CFW_JSON_ARRAY:
        if (a->u.count != b->u.count) {
            return false;
        }
        for (size_t i = 0, n = a->u.count; i < n; i++) {
            a = i == 0 ? a + 1 : a + a->skip;
            b = i == 0 ? b + 1 : b + b->skip;
            if (!cfw_json_equal(j, a, b)) {
                return false;
            }
        }
        return true;
    case CFW_JSON_OBJECT:
        return objects_equal(j, a, b);
    default:
        return true;
    }
}
