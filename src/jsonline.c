/* The fast check of a one-line JSON object (jsonline.h). */
#include "jsonline.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define JL_SIMD 1 /* AVX2 masks, chosen at run time */
#endif

/* What 64 bytes hold, a bit per byte (bit i: byte i). */
struct masks {
    uint64_t quote; /* '"' */
    uint64_t bad;   /* '\\' or a byte below 0x20: the tokenizer's business */
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
        } else if (c == '\\' || c < 0x20) {
            m->bad |= bit;
        } else if (c == ' ') {
            m->space |= bit;
        } else if (is_punct(c)) {
            m->punct |= bit;
        }
    }
}

#ifdef JL_SIMD
__attribute__((target("avx2"))) static uint32_t eq32(__m256i v, char c)
{
    return (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(c)));
}

__attribute__((target("avx2"))) static void masks_avx2(const unsigned char *p, struct masks *m)
{
    uint32_t q[2], b[2], s[2], u[2];

    for (int h = 0; h < 2; h++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32 * h));
        __m256i lo = _mm256_set1_epi8(0x1f);
        /* '{' and '[' differ in bit 0x20 only, as do '}' and ']' */
        __m256i folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));

        q[h] = eq32(v, '"');
        b[h] = eq32(v, '\\') |
               (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(v, lo), lo));
        s[h] = eq32(v, ' ');
        u[h] = eq32(folded, '{') | eq32(folded, '}') | eq32(v, ':') | eq32(v, ',');
    }
    m->quote = q[0] | (uint64_t)q[1] << 32;
    m->bad = b[0] | (uint64_t)b[1] << 32;
    m->space = s[0] | (uint64_t)s[1] << 32;
    m->punct = u[0] | (uint64_t)u[1] << 32;
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

/* The masks of 64 bytes: the vector path where the processor has it and simd is set. */
static void (*masks_for(bool simd))(const unsigned char *, struct masks *)
{
#ifdef JL_SIMD
    if (simd && have_avx2()) {
        return masks_avx2;
    }
#endif
    (void)simd;
    return masks_scalar;
}

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

/* A JSON number, the whole of p[0, n): -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;

    i += i < n && p[i] == '-';
    if (i < n && p[i] == '0') {
        i++;
    } else if (i < n && is_digit(p[i])) {
        while (i < n && is_digit(p[i])) {
            i++;
        }
    } else {
        return false;
    }
    if (i < n && p[i] == '.') {
        if (++i >= n || !is_digit(p[i])) {
            return false;
        }
        while (i < n && is_digit(p[i])) {
            i++;
        }
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        i += i < n && (p[i] == '+' || p[i] == '-');
        if (i >= n || !is_digit(p[i])) {
            return false;
        }
        while (i < n && is_digit(p[i])) {
            i++;
        }
    }
    return i == n;
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
    [' '] = C_SPACE,  ['"'] = C_QUOTE,    [':'] = C_COLON,  [','] = C_COMMA,
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
    size_t j = i;

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
    return number_ok(p, n);
}

static bool spaces_only(const unsigned char *p, size_t i, size_t n)
{
    while (i < n && p[i] == ' ') {
        i++;
    }
    return i == n;
}

/* trans[st][byte_cls[c]] for every byte c: one lookup a token. */
static unsigned char trans_byte[S_N][256];

static void trans_byte_init(void)
{
    static bool done;

    if (!done) {
        for (unsigned st = 0; st < S_N; st++) {
            for (unsigned c = 0; c < 256; c++) {
                trans_byte[st][c] = byte_cls[c] == C_SPACE ? A_ERR : trans[st][byte_cls[c]];
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
static size_t run_tokens(const unsigned char *p, size_t n, size_t base, uint64_t tokens,
                         unsigned *stp, size_t *depthp, uint64_t *backp, size_t max_depth)
{
    const unsigned char *pb = p + base;
    unsigned st = *stp;
    size_t depth = *depthp;
    uint64_t back = *backp;

    while (tokens != 0) {
        unsigned k = (unsigned)__builtin_ctzll(tokens);
        unsigned a = trans_byte[st][pb[k]];
        unsigned after;

        tokens &= tokens - 1;
        if (__builtin_expect(a < S_N, 1)) {
            st = a;
            continue;
        }
        after = st == S_VAL_O ? S_AFTER_O : S_AFTER_A; /* where a value takes us */
        switch (a) {
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
            st = a == A_PUSH_O ? S_OBJ_FIRST : S_ARR_FIRST;
            break;
        case A_CLOSE:
            if (--depth == 0) {
                return spaces_only(p, base + k + 1, n) ? base + k + 1 : SIZE_MAX;
            }
            st = (back >> depth) & 1u ? S_AFTER_O : S_AFTER_A;
            break;
        default:
            return SIZE_MAX;
        }
    }
    *stp = st;
    *depthp = depth;
    *backp = back;
    return 0;
}

size_t cfw_jsonline_end_with(const char *s, size_t n, size_t max_depth, bool simd)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned st = S_OBJ_FIRST; /* the opening brace is entered here */
    size_t depth = 1;
    uint64_t back = 0;
    uint64_t in_str = 0;      /* all ones while a string goes on into the next block */
    uint64_t prev_scalar = 0; /* 1: the last byte of the block before belongs to a scalar */
    unsigned char tail[64];
    void (*masks)(const unsigned char *, struct masks *) = masks_for(simd);

    if (n == 0 || p[0] != '{' || max_depth == 0) {
        return 0;
    }
    if (max_depth > CFW_JSONLINE_MAX_DEPTH) {
        max_depth = CFW_JSONLINE_MAX_DEPTH;
    }
    trans_byte_init();
    for (size_t base = 0; base < n; base += 64) {
        const unsigned char *b = p + base;
        struct masks m;
        uint64_t str, scalar, tokens;
        size_t end;

        if (n - base < 64) {
            memset(tail, ' ', sizeof(tail)); /* spaces: no token, and inside a string no end */
            memcpy(tail, b, n - base);
            b = tail;
        }
        masks(b, &m);
        if (m.bad != 0) {
            return 0;
        }
        str = prefix_xor(m.quote) ^ in_str; /* from an opening quote to before its closing one */
        in_str = (uint64_t)0 - (str >> 63);
        scalar = ~str & ~m.quote & ~m.space & ~m.punct;
        tokens = (m.quote & str) | (m.punct & ~str) | (scalar & ~(scalar << 1 | prev_scalar));
        prev_scalar = scalar >> 63;
        if (base == 0) {
            tokens &= ~UINT64_C(1); /* the opening brace */
        }
        end = run_tokens(p, n, base, tokens, &st, &depth, &back, max_depth);
        if (end != 0) {
            return end == SIZE_MAX ? 0 : end;
        }
    }
    return 0; /* the object goes on past the line (or a string does) */
}

size_t cfw_jsonline_end(const char *s, size_t n, size_t max_depth)
{
    return cfw_jsonline_end_with(s, n, max_depth, true);
}
