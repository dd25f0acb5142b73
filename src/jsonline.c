/* The fast check of a JSON object at the start of a line (jsonline.h). */
#include "jsonline.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/json.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define JL_SIMD 1 /* AVX2 masks, chosen at run time */
#endif

/* What 64 bytes hold, a bit per byte (bit i: byte i). */
struct masks {
    uint64_t quote; /* '"' */
    uint64_t bs;    /* '\\' */
    uint64_t ctl;   /* a byte below 0x20 but '\n' */
    uint64_t nl;    /* '\n' */
    uint64_t space; /* ' ' */
    uint64_t punct; /* { } [ ] : , */
};

static bool is_digit(unsigned c)
{
    return c - '0' < 10u;
}

static bool is_punct(unsigned c)
{
    return c == '{' || c == '}' || c == '[' || c == ']' || c == ':' || c == ',';
}

static void masks_scalar(const unsigned char *p, struct masks *m)
{
    memset(m, 0, sizeof(*m));
    for (unsigned i = 0; i < 64; i++) {
        uint64_t bit = UINT64_C(1) << i;
        unsigned c = p[i];

        if (c == '"') {
            m->quote |= bit;
        } else if (c == '\\') {
            m->bs |= bit;
        } else if (c == '\n') {
            m->nl |= bit;
        } else if (c < 0x20) {
            m->ctl |= bit;
        } else if (c == ' ') {
            m->space |= bit;
        } else if (is_punct(c)) {
            m->punct |= bit;
        }
    }
}

#ifdef JL_SIMD
__attribute__((target("avx2"))) static inline uint32_t eq32(__m256i v, char c)
{
    return (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(c)));
}

__attribute__((target("avx2"))) static inline void masks_avx2(const unsigned char *p,
                                                              struct masks *m)
{
    uint32_t r[2][6];

    for (int h = 0; h < 2; h++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * h));
        __m256i lo = _mm256_set1_epi8(0x1f);
        /* '{' and '[' differ in bit 0x20 only, as do '}' and ']' */
        __m256i folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));

        r[h][0] = eq32(v, '"');
        r[h][1] = eq32(v, '\\');
        r[h][3] = eq32(v, '\n');
        r[h][2] = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(v, lo), lo)) &
                  ~r[h][3];
        r[h][4] = eq32(v, ' ');
        r[h][5] = eq32(folded, '{') | eq32(folded, '}') | eq32(v, ':') | eq32(v, ',');
    }
    m->quote = r[0][0] | (uint64_t)r[1][0] << 32;
    m->bs = r[0][1] | (uint64_t)r[1][1] << 32;
    m->ctl = r[0][2] | (uint64_t)r[1][2] << 32;
    m->nl = r[0][3] | (uint64_t)r[1][3] << 32;
    m->space = r[0][4] | (uint64_t)r[1][4] << 32;
    m->punct = r[0][5] | (uint64_t)r[1][5] << 32;
}

static bool have_avx2(void)
{
    static int avx2 = -1;

    if (avx2 < 0) {
        __builtin_cpu_init();
        avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return avx2 == 1;
}
#endif

/* Bit i of the result: the XOR of bits 0..i of x (inside a string, from its opening quote). */
static uint64_t prefix_xor(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

/* Byte classes of the grammar (C_SCALAR: anything else, which only a scalar may hold). */
enum cls {
    C_SCALAR,
    C_QUOTE,
    C_COLON,
    C_COMMA,
    C_LBRACE,
    C_LBRACKET,
    C_RBRACE,
    C_RBRACKET,
    C_SPACE, /* ends a scalar; never a token */
    C_N
};

static const unsigned char byte_cls[256] = {
    [' '] = C_SPACE,  ['\n'] = C_SPACE,   ['"'] = C_QUOTE,  [':'] = C_COLON,    [','] = C_COMMA,
    ['{'] = C_LBRACE, ['['] = C_LBRACKET, ['}'] = C_RBRACE, [']'] = C_RBRACKET,
};

/*
 * The grammar between tokens, in a container (the object on the line is entered before the
 * loop). A state knows the kind of its container, so that a closing bracket needs no check
 * against a stack: the stack keeps only where to go back to.
 */
enum st {
    S_OBJ_FIRST, /* after '{' */
    S_KEY,       /* after ',' in an object */
    S_COLON,     /* after a key */
    S_VAL_O,     /* after ':' */
    S_AFTER_O,   /* after a member's value */
    S_ARR_FIRST, /* after '[' */
    S_VAL_A,     /* after ',' in an array */
    S_AFTER_A,   /* after an element */
    S_N,
    /* actions */
    A_ERR = S_N,
    A_SCALAR, /* a number or literal, then after it */
    A_PUSH_O,
    A_PUSH_A,
    A_CLOSE,
};

static const unsigned char trans[S_N][C_N] = {
    /* C_SPACE: 0, never looked up */
    [S_OBJ_FIRST] = {A_ERR, S_COLON, A_ERR, A_ERR, A_ERR, A_ERR, A_CLOSE, A_ERR},
    [S_KEY] = {A_ERR, S_COLON, A_ERR, A_ERR, A_ERR, A_ERR, A_ERR, A_ERR},
    [S_COLON] = {A_ERR, A_ERR, S_VAL_O, A_ERR, A_ERR, A_ERR, A_ERR, A_ERR},
    [S_VAL_O] = {A_SCALAR, S_AFTER_O, A_ERR, A_ERR, A_PUSH_O, A_PUSH_A, A_ERR, A_ERR},
    [S_AFTER_O] = {A_ERR, A_ERR, A_ERR, S_KEY, A_ERR, A_ERR, A_CLOSE, A_ERR},
    [S_ARR_FIRST] = {A_SCALAR, S_AFTER_A, A_ERR, A_ERR, A_PUSH_O, A_PUSH_A, A_ERR, A_CLOSE},
    [S_VAL_A] = {A_SCALAR, S_AFTER_A, A_ERR, A_ERR, A_PUSH_O, A_PUSH_A, A_ERR, A_ERR},
    [S_AFTER_A] = {A_ERR, A_ERR, A_ERR, S_VAL_A, A_ERR, A_ERR, A_ERR, A_CLOSE},
};

/* The scalar token at p[i], to the next space, punctuation or quote (or n). */
static bool scalar_ok(const unsigned char *p, size_t i, size_t n)
{
    size_t j = i + 1;

    /* most are integers: [1-9][0-9]* up to a byte that ends a scalar */
    if ((unsigned)p[i] - '1' < 9u) {
        while (j < n && is_digit(p[j])) {
            j++;
        }
        if (j == n || byte_cls[p[j]] != C_SCALAR) {
            return true;
        }
    }
    j = i;
    while (j < n && byte_cls[p[j]] == C_SCALAR) {
        j++;
    }
    p += i;
    n = j - i;
    if (p[0] == 't' || p[0] == 'n') {
        return n == 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "null", 4) == 0);
    }
    if (p[0] == 'f') {
        return n == 5 && memcmp(p, "false", 5) == 0;
    }
    return cfw_json_number_len((const char *)p, n, NULL) == n; /* the whole of the run */
}

/*
 * trans[st][byte_cls[c]] for every state and byte c, times 256: the row of the next state (or
 * an action times 256), so that a token costs one lookup and no arithmetic.
 */
static uint16_t trans_row[S_N * 256];

static void trans_row_init(void)
{
    static bool done;

    if (!done) {
        for (unsigned st = 0; st < S_N; st++) {
            for (unsigned c = 0; c < 256; c++) {
                unsigned a = byte_cls[c] == C_SPACE ? A_ERR : trans[st][byte_cls[c]];

                trans_row[st * 256 + c] = (uint16_t)(a * 256);
            }
        }
        done = true;
    }
}

/*
 * The grammar over one block's tokens (bit i of tokens: a token at p[base + i]); the state lives
 * in *stp, *depthp and *backp (bit d: closing level d + 1 leads to S_AFTER_O, else S_AFTER_A).
 * Returns the object's length when it closed here, 0 to go on, SIZE_MAX when not surely JSON.
 */
static inline __attribute__((always_inline)) size_t run_tokens(const unsigned char *p, size_t n,
                                                               size_t base, uint64_t tokens,
                                                               unsigned *stp, size_t *depthp,
                                                               uint64_t *backp, size_t max_depth)
{
    const unsigned char *pb = p + base;
    unsigned row = *stp * 256;
    size_t depth = *depthp;
    uint64_t back = *backp;

    while (tokens != 0) {
        unsigned k = (unsigned)__builtin_ctzll(tokens);
        unsigned a = trans_row[row + pb[k]];
        unsigned st;
        unsigned after;

        tokens &= tokens - 1;
        if (__builtin_expect(a < S_N * 256, 1)) {
            row = a;
            continue;
        }
        st = row / 256;
        after = st == S_VAL_O ? S_AFTER_O : S_AFTER_A; /* where a value takes us */
        switch (a / 256) {
        case A_SCALAR:
            if (!scalar_ok(p, base + k, n)) {
                return SIZE_MAX;
            }
            st = after;
            break;
        case A_PUSH_O:
        case A_PUSH_A:
            if (depth >= max_depth) {
                return SIZE_MAX;
            }
            back = (back & ~(UINT64_C(1) << depth)) | (uint64_t)(after == S_AFTER_O) << depth;
            depth++;
            st = a / 256 == A_PUSH_O ? S_OBJ_FIRST : S_ARR_FIRST;
            break;
        case A_CLOSE:
            if (--depth == 0) {
                return base + k + 1;
            }
            st = (back >> depth) & 1u ? S_AFTER_O : S_AFTER_A;
            break;
        default:
            return SIZE_MAX;
        }
        row = st * 256;
    }
    *stp = row / 256;
    *depthp = depth;
    *backp = back;
    return 0;
}

/* Below bit k (k <= 64). */
static uint64_t below(unsigned k)
{
    return k >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << k) - 1;
}

/* The scan's state between blocks. */
struct scan {
    const unsigned char *p;
    size_t n;
    size_t max_line; /* 0: p[0, n) is one line */
    size_t line0;    /* where the current line starts */
    size_t lines;    /* newlines inside the object */
    unsigned st;     /* the grammar's state (the opening brace entered) */
    size_t depth;
    uint64_t back;
    uint64_t in_str;  /* all ones while a string goes on into the next block */
    uint64_t prev_sc; /* 1: the last byte of the block before belongs to a scalar */
};

/*
 * Newlines inside the object (bits of nl, block at base): each ends a line the framer must be
 * able to take as it is, no longer than max_line, and the next line must not start with a
 * digit (the framer would look for a time prefix there).
 */
static bool lines_ok(struct scan *sc, size_t base, uint64_t nl)
{
    while (nl != 0) {
        size_t q = base + (size_t)__builtin_ctzll(nl);

        nl &= nl - 1;
        if (q - sc->line0 > sc->max_line || (q + 1 < sc->n && is_digit(sc->p[q + 1]))) {
            return false;
        }
        sc->line0 = q + 1;
        sc->lines++;
    }
    return true;
}

/* After the closing brace at end: the rest of its line is spaces; fills out. */
static bool finish(struct scan *sc, size_t end, struct cfw_jsonline *out)
{
    size_t i = end;

    while (i < sc->n && sc->p[i] == ' ') {
        i++;
    }
    if (sc->max_line == 0) {
        if (i != sc->n) {
            return false;
        }
        out->next = sc->n;
    } else {
        if (i == sc->n || sc->p[i] != '\n' || i - sc->line0 > sc->max_line) {
            return false; /* more on the line, or its end not here */
        }
        out->next = i + 1;
    }
    out->len = end;
    out->lines = sc->lines + 1;
    return true;
}

/* One block at base: 1 when the object closed (out filled), 0 to go on, -1 when not sure. */
static inline __attribute__((always_inline)) int scan_block(struct scan *sc, size_t base,
                                                            const struct masks *m, size_t max_depth,
                                                            struct cfw_jsonline *out)
{
    uint64_t str = prefix_xor(m->quote) ^ sc->in_str; /* from an opening quote to its end */
    uint64_t space = m->space | m->nl;
    uint64_t scalar = ~str & ~m->quote & ~space & ~m->punct;
    uint64_t tokens =
        (m->quote & str) | (m->punct & ~str) | (scalar & ~(scalar << 1 | sc->prev_sc));
    /* bytes left to the tokenizer: an escape, a control byte, a newline in a string or line */
    uint64_t bad = m->bs | m->ctl | (sc->max_line == 0 ? m->nl : m->nl & str);
    uint64_t ok = bad != 0 ? below((unsigned)__builtin_ctzll(bad)) : ~UINT64_C(0);
    size_t end;

    sc->in_str = (uint64_t)0 - (str >> 63);
    sc->prev_sc = scalar >> 63;
    if (base == 0) {
        tokens &= ~UINT64_C(1); /* the opening brace */
    }
    end = run_tokens(sc->p, sc->n, base, tokens & ok, &sc->st, &sc->depth, &sc->back, max_depth);
    if (end == SIZE_MAX) {
        return -1;
    }
    if (end == 0) {
        return bad == 0 && lines_ok(sc, base, m->nl) ? 0 : -1;
    }
    /* closed at end: only what comes before it in this block counts */
    return end - base <= 64 && (bad & below((unsigned)(end - base))) == 0 &&
                   lines_ok(sc, base, m->nl & below((unsigned)(end - base))) && finish(sc, end, out)
               ? 1
               : -1;
}

/*
 * The blocks of sc from the first; inlined into one function per mask builder, so that the
 * vector one's constants are set up once per call, not once per block.
 */
static inline __attribute__((always_inline)) bool scan_blocks(struct scan *sc, size_t max_depth,
                                                              bool avx2, struct cfw_jsonline *out)
{
    unsigned char tail[64];

    for (size_t base = 0; base < sc->n; base += 64) {
        const unsigned char *b = sc->p + base;
        struct masks m;
        int r;

        if (sc->n - base < 64) {
            memset(tail, ' ', sizeof(tail)); /* spaces: no token, and inside a string no end */
            memcpy(tail, b, sc->n - base);
            b = tail;
        }
#ifdef JL_SIMD
        if (avx2) {
            masks_avx2(b, &m);
        } else {
            masks_scalar(b, &m);
        }
#else
        (void)avx2;
        masks_scalar(b, &m);
#endif
        r = scan_block(sc, base, &m, max_depth, out);
        if (r != 0) {
            return r > 0;
        }
    }
    return false; /* the object goes on past what is here */
}

static bool scan_plain(struct scan *sc, size_t max_depth, struct cfw_jsonline *out)
{
    return scan_blocks(sc, max_depth, false, out);
}

#ifdef JL_SIMD
__attribute__((target("avx2"))) static bool scan_avx2(struct scan *sc, size_t max_depth,
                                                      struct cfw_jsonline *out)
{
    return scan_blocks(sc, max_depth, true, out);
}
#endif

bool cfw_jsonline_scan_with(const char *s, size_t n, size_t max_depth, size_t max_line, bool simd,
                            struct cfw_jsonline *out)
{
    struct scan sc = {
        .p = (const unsigned char *)s, .n = n, .max_line = max_line, .st = S_OBJ_FIRST, .depth = 1};

    if (n == 0 || s[0] != '{' || max_depth == 0) {
        return false;
    }
    if (max_depth > CFW_JSONLINE_MAX_DEPTH) {
        max_depth = CFW_JSONLINE_MAX_DEPTH;
    }
    trans_row_init();
#ifdef JL_SIMD
    if (simd && have_avx2()) {
        return scan_avx2(&sc, max_depth, out);
    }
#endif
    (void)simd;
    return scan_plain(&sc, max_depth, out);
}

bool cfw_jsonline_scan(const char *s, size_t n, size_t max_depth, size_t max_line,
                       struct cfw_jsonline *out)
{
    return cfw_jsonline_scan_with(s, n, max_depth, max_line, true, out);
}
