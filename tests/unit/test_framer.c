/* Unit tests for framer.c: lines, blocks, JSON streams, MIXED input, wrangler debug logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/common.h"
#include "cfwatchd/framer.h"
#include "framer_int.h"

#define DATA_DIR CFW_TEST_DATA "/framer/"
#define T CFW_REC_TEXT
#define J CFW_REC_JSON

/* ---- collecting records ---- */

struct rec {
    enum cfw_record_kind kind;
    char *text;
    size_t len;
    uint64_t line;
    uint64_t line_end;
    char *time;
};

struct recs {
    struct rec *v;
    size_t n;
    size_t cap;
    struct cfw_framer_stats st;
    enum cfw_input_format fmt;
};

static void collect(const struct cfw_record *r, void *arg)
{
    struct recs *c = arg;
    struct rec *x;

    assert_non_null(r->text);
    assert_int_equal(r->text[r->len], '\0');
    assert_string_equal(r->input, "test");
    assert_true(r->line >= 1 && r->line <= r->line_end);
    if (c->n == c->cap) {
        c->cap = c->cap == 0 ? 16 : c->cap * 2;
        c->v = cfw_xrealloc(c->v, c->cap * sizeof(*c->v));
    }
    x = &c->v[c->n++];
    x->kind = r->kind;
    x->text = cfw_xstrndup(r->text, r->len);
    x->len = r->len;
    x->line = r->line;
    x->line_end = r->line_end;
    x->time = r->time != NULL ? cfw_xstrdup(r->time) : NULL;
}

static void recs_free(struct recs *c)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        free(c->v[i].text);
        free(c->v[i].time);
    }
    free(c->v);
    memset(c, 0, sizeof(*c));
}

static void feed_chunks(struct cfw_framer *f, const char *data, size_t len, size_t chunk)
{
    size_t off = 0;

    if (chunk == 0) {
        chunk = len > 0 ? len : 1;
    }
    while (off < len) {
        size_t k = len - off < chunk ? len - off : chunk;

        cfw_framer_feed(f, data + off, k);
        off += k;
    }
}

static void done(struct recs *c, struct cfw_framer *f)
{
    cfw_framer_finish(f);
    c->st = *cfw_framer_stats(f);
    c->fmt = cfw_framer_format(f);
    cfw_framer_free(f);
}

/* Frames data fed in pieces of chunk bytes (0: all at once), then finishes. */
static void frame(struct recs *c, const struct cfw_framer_opts *o, const char *data, size_t len,
                  size_t chunk)
{
    struct cfw_framer *f;

    memset(c, 0, sizeof(*c));
    f = cfw_framer_new("test", o, collect, c);
    assert_non_null(f);
    feed_chunks(f, data, len, chunk);
    done(c, f);
}

/* Frames data fed as two pieces split at byte k. */
static void frame_split(struct recs *c, const struct cfw_framer_opts *o, const char *data,
                        size_t len, size_t k)
{
    struct cfw_framer *f;

    memset(c, 0, sizeof(*c));
    f = cfw_framer_new("test", o, collect, c);
    cfw_framer_feed(f, data, k);
    cfw_framer_feed(f, data + k, len - k);
    done(c, f);
}

static void frame_str(struct recs *c, enum cfw_input_format fmt, const char *s)
{
    struct cfw_framer_opts o = {.format = fmt};

    frame(c, &o, s, strlen(s), 0);
}

static void assert_time(const char *got, const char *want)
{
    if (want == NULL) {
        assert_null(got);
    } else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
}

static void assert_rec(const struct recs *c, size_t i, enum cfw_record_kind kind, uint64_t line,
                       uint64_t line_end, const char *time, const char *text)
{
    const struct rec *r;

    assert_true(i < c->n);
    r = &c->v[i];
    assert_int_equal(r->kind, kind);
    assert_int_equal(r->line, line);
    assert_int_equal(r->line_end, line_end);
    assert_time(r->time, time);
    assert_string_equal(r->text, text);
}

static void assert_same(const struct recs *a, const struct recs *b)
{
    size_t i;

    assert_int_equal(a->n, b->n);
    for (i = 0; i < a->n; i++) {
        assert_rec(b, i, a->v[i].kind, a->v[i].line, a->v[i].line_end, a->v[i].time, a->v[i].text);
    }
    assert_int_equal(a->st.lines, b->st.lines);
    assert_int_equal(a->st.records, b->st.records);
    assert_int_equal(a->st.json_values, b->st.json_values);
    assert_int_equal(a->st.json_errors, b->st.json_errors);
    assert_int_equal(a->st.garbage_bytes, b->st.garbage_bytes);
    assert_int_equal(a->st.long_lines, b->st.long_lines);
    assert_int_equal(a->st.nul_bytes, b->st.nul_bytes);
}

/* ---- test data ---- */

static char *load(const char *name, size_t *len)
{
    char path[512];
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    char chunk[4096];
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s%s", DATA_DIR, name);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        cfw_buf_append(&b, chunk, n);
    }
    fclose(fp);
    *len = b.len;
    return cfw_buf_take(&b);
}

/* Lines a..b (1-based) of data joined by '\n', each cut after its first TAB when strip_tab. */
static char *file_lines(const char *data, size_t len, uint64_t a, uint64_t b, bool strip_tab)
{
    struct cfw_buf out = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    const char *p = data;
    const char *end = data + len;
    uint64_t no = 1;

    while (p < end && no <= b) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl != NULL ? nl : end;

        if (no >= a) {
            const char *s = p;

            if (strip_tab) {
                const char *tab = memchr(p, '\t', (size_t)(e - p));

                assert_non_null(tab);
                s = tab + 1;
            }
            if (no > a) {
                cfw_buf_putc(&out, '\n');
            }
            cfw_buf_append(&out, s, (size_t)(e - s));
        }
        no++;
        p = e + 1;
    }
    return cfw_buf_take(&out);
}

/* The same bytes with every "\n" turned into "\r\n". */
static char *to_crlf(const char *data, size_t len, size_t *out_len)
{
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    size_t i;

    for (i = 0; i < len; i++) {
        if (data[i] == '\n') {
            cfw_buf_putc(&b, '\r');
        }
        cfw_buf_putc(&b, data[i]);
    }
    *out_len = b.len;
    return cfw_buf_take(&b);
}

/* Every LF made a lone CR (classic Mac line ends). */
static char *to_cr(const char *data, size_t len)
{
    char *out = cfw_xstrndup(data, len);

    for (size_t i = 0; i < len; i++) {
        if (out[i] == '\n') {
            out[i] = '\r';
        }
    }
    return out;
}

/* ---- corpus files ---- */

struct want {
    size_t idx;
    enum cfw_record_kind kind;
    uint64_t line; /* 0 ends the list */
    uint64_t line_end;
    const char *time;
    const char *head; /* the first line when the file's differs (ANSI), else NULL */
    const char *text; /* the whole text, else NULL: lines line..line_end of the file */
};

struct corpus_case {
    const char *file;
    enum cfw_input_format fmt;
    enum cfw_input_format resolved;
    size_t records;
    uint64_t lines;
    uint64_t json_values;
    bool strip_tab; /* the file's lines carry `<time>\t` prefixes */
    struct want w[6];
};

#define F01 "01-deploy-python-no-module-workers-ansi.log"
#define F02 "02-pywrangler-vendor-install-failed.log"
#define F04 "04-deploy-python-requirements-txt-10021-experimental-warning.log"
#define F05 "05-src-import-modulenotfound-excerpt.log"
#define F06 "06-gha-python-experimental-warning-wrapped.log"
#define F09 "09-wrangler-dev-missing-python-workers-flag.log"
#define F14 "14-pywrangler-dev-uv-no-module-named-python.log"
#define F16 "16-js-startup-cpu-10021-largest-deps-warning.log"
#define F18 "18-workers-builds-log-missing-entrypoint.log"
#define F22 "22-tail-pretty-canceled-log-lines.log"
#define F23 "23-logpush-http-ndjson-workers-trace-events.log"
#define FS01 "S01-SYNTHETIC-deploy-src-import-with-note.log"
#define FS02 "S02-SYNTHETIC-tail-json-python-exception.log"
#define FS03 "S03-SYNTHETIC-logpush-python-exception.log"
#define FWLOG "wrangler-2026-08-16_08-07-27_480.log"

#define HEAD01                                                                                     \
    "\xe2\x9c\x98 [ERROR] A request to the Cloudflare API "                                        \
    "(/accounts/c68856288112af7698f5be52ea94b96e/workers/scripts/deos-sample-project/versions) "   \
    "failed."

/* clang-format off */
static const struct corpus_case corpus[] = {
    {F01, CFW_FMT_AUTO, CFW_FMT_LINES, 38, 71, 0, false,
     {
         {0, T, 2, 2, NULL, NULL, " \xe2\x9b\x85\xef\xb8\x8f wrangler 4.123.0"},
         {34, T, 38, 64, NULL, HEAD01, NULL},
         {35, T, 65, 65, NULL, NULL,
          "  To learn more about this error, visit: "
          "https://developers.cloudflare.com/workers/observability/errors/"
          "#validation-errors-10021"},
         {36, T, 68, 68, NULL, NULL,
          "  If you think this is a bug, please open an issue at: "
          "https://github.com/cloudflare/workers-sdk/issues/new/choose"},
         {37, T, 71, 71, NULL, NULL, NULL},
     }},
    {F01, CFW_FMT_LINES, CFW_FMT_LINES, 38, 71, 0, false,
     {{34, T, 38, 64, NULL, HEAD01, NULL}}},
    {F02, CFW_FMT_AUTO, CFW_FMT_LINES, 32, 36, 0, false,
     {{0, T, 1, 1, NULL, NULL, "Applying D1 migrations..."}, {29, T, 34, 34, NULL, NULL, NULL}}},
    {F04, CFW_FMT_AUTO, CFW_FMT_LINES, 13, 20, 0, false,
     {
         {2, T, 3, 3, NULL, NULL, NULL},
         {10, T, 14, 17, NULL, NULL, NULL},
         {11, T, 19, 19, NULL, NULL, "  If you think this is a bug, please open an issue at:"},
         {12, T, 20, 20, NULL, NULL, NULL},
     }},
    {F05, CFW_FMT_AUTO, CFW_FMT_LINES, 1, 3, 0, false, {{0, T, 1, 3, NULL, NULL, NULL}}},
    {F06, CFW_FMT_AUTO, CFW_FMT_LINES, 2, 2, 0, false,
     {
         {0, T, 1, 1, "2025-10-12T13:32:12.3289073Z", NULL,
          "[WARNING] The entrypoint src/main.py defines"},
         {1, T, 2, 2, NULL, NULL, NULL},
     }},
    {F09, CFW_FMT_AUTO, CFW_FMT_LINES, 2, 4, 0, false,
     {{0, T, 1, 1, NULL, NULL, NULL}, {1, T, 4, 4, NULL, NULL, NULL}}},
    {F14, CFW_FMT_AUTO, CFW_FMT_LINES, 8, 16, 0, false,
     {
         {0, T, 1, 1, NULL, NULL, NULL},
         {2, T, 4, 4, NULL, NULL, "[stderr]"},
         {3, T, 5, 12, NULL, NULL, NULL},
         {4, T, 13, 13, NULL, NULL, NULL},
         {7, T, 16, 16, NULL, NULL, "       Output:"},
     }},
    {F16, CFW_FMT_AUTO, CFW_FMT_LINES, 6, 16, 0, false,
     {{4, T, 5, 9, NULL, NULL, NULL}, {5, T, 13, 16, NULL, NULL, NULL}}},
    {F18, CFW_FMT_AUTO, CFW_FMT_LINES, 47, 86, 0, true,
     {
         {0, T, 1, 1, "2025-08-21T01:58:28.392Z", NULL, "Initializing build environment..."},
         {43, T, 51, 79, "2025-08-21T01:59:43.672Z", NULL, NULL},
         {46, T, 86, 86, "2025-08-21T01:59:43.839Z", NULL,
          "Failed: error occurred while running deploy command"},
     }},
    {F22, CFW_FMT_AUTO, CFW_FMT_LINES, 5, 5, 0, false,
     {{1, T, 2, 2, NULL, NULL, NULL}, {4, T, 5, 5, NULL, NULL, NULL}}},
    {F23, CFW_FMT_AUTO, CFW_FMT_LINES, 2, 2, 2, false,
     {{0, J, 1, 1, NULL, NULL, NULL}, {1, J, 2, 2, NULL, NULL, NULL}}},
    {F23, CFW_FMT_JSON, CFW_FMT_JSON, 2, 2, 2, false,
     {{0, J, 1, 1, NULL, NULL, NULL}, {1, J, 2, 2, NULL, NULL, NULL}}},
    {FS01, CFW_FMT_AUTO, CFW_FMT_LINES, 16, 38, 0, false,
     {
         {13, T, 16, 33, NULL, NULL, NULL},
         {14, T, 34, 34, NULL, NULL, NULL},
         {15, T, 37, 37, NULL, NULL, NULL},
     }},
    {FS02, CFW_FMT_AUTO, CFW_FMT_LINES, 1, 30, 1, false, {{0, J, 1, 30, NULL, NULL, NULL}}},
    {FS02, CFW_FMT_JSON, CFW_FMT_JSON, 1, 30, 1, false, {{0, J, 1, 30, NULL, NULL, NULL}}},
    {FS03, CFW_FMT_AUTO, CFW_FMT_LINES, 1, 1, 1, false, {{0, J, 1, 1, NULL, NULL, NULL}}},
    {FS03, CFW_FMT_JSON, CFW_FMT_JSON, 1, 1, 1, false, {{0, J, 1, 1, NULL, NULL, NULL}}},
    {FWLOG, CFW_FMT_AUTO, CFW_FMT_WRANGLER_LOG, 8, 48, 0, false,
     {
         {0, T, 3, 3, "2026-08-16T08:07:27.512Z", NULL, NULL},
         {2, T, 9, 9, "2026-08-16T08:07:27.530Z", NULL, NULL},
         {3, T, 13, 13, "2026-08-16T08:07:28.901Z", NULL, NULL},
         {4, T, 18, 35, "2026-08-16T08:07:29.126Z", NULL, NULL},
         {6, T, 39, 39, "2026-08-16T08:07:29.126Z", NULL, NULL},
         {7, T, 44, 47, "2026-08-16T08:07:29.301Z", NULL, NULL},
     }},
    {FWLOG, CFW_FMT_WRANGLER_LOG, CFW_FMT_WRANGLER_LOG, 8, 48, 0, false,
     {{4, T, 18, 35, "2026-08-16T08:07:29.126Z", NULL, NULL}}},
};
/* clang-format on */

static void check_want(const struct recs *c, const char *data, size_t len, const struct want *w,
                       bool strip_tab)
{
    char *exp;

    if (w->text != NULL) {
        exp = cfw_xstrdup(w->text);
    } else if (w->head != NULL) {
        char *rest = file_lines(data, len, w->line + 1, w->line_end, strip_tab);

        exp = w->line_end > w->line ? cfw_xasprintf("%s\n%s", w->head, rest) : cfw_xstrdup(w->head);
        free(rest);
    } else {
        exp = file_lines(data, len, w->line, w->line_end, strip_tab);
    }
    assert_rec(c, w->idx, w->kind, w->line, w->line_end, w->time, exp);
    free(exp);
}

static void test_corpus(void **state)
{
    size_t i, k;

    (void)state;
    for (i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
        const struct corpus_case *cc = &corpus[i];
        struct cfw_framer_opts o = {.format = cc->fmt};
        static const size_t chunks[] = {1, 7, 4096};
        struct recs c, d;
        size_t len;
        char *data = load(cc->file, &len);

        print_message("corpus %s (%s)\n", cc->file, cfw_input_format_name(cc->fmt));
        frame(&c, &o, data, len, 0);
        assert_int_equal(c.n, cc->records);
        assert_int_equal(c.st.records, cc->records);
        assert_int_equal(c.st.bytes, len);
        assert_int_equal(c.st.lines, cc->lines);
        assert_int_equal(c.st.json_values, cc->json_values);
        assert_int_equal(c.st.long_lines, 0);
        assert_int_equal(c.st.garbage_bytes, 0);
        assert_int_equal(c.st.json_errors, 0);
        assert_int_equal(c.st.nul_bytes, 0);
        assert_int_equal(c.fmt, cc->resolved);
        for (k = 0; k < sizeof(cc->w) / sizeof(cc->w[0]) && cc->w[k].line != 0; k++) {
            check_want(&c, data, len, &cc->w[k], cc->strip_tab);
        }
        /* The same records whatever the read sizes. */
        for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
            frame(&d, &o, data, len, chunks[k]);
            assert_same(&c, &d);
            recs_free(&d);
        }
        recs_free(&c);
        free(data);
    }
}

/* A JSON file framed as one value: every split into two reads gives the same record. */
static void every_offset_one_value(const char *data, size_t len, enum cfw_input_format fmt,
                                   const char *want, uint64_t lines)
{
    struct cfw_framer_opts o = {.format = fmt};
    size_t k;

    for (k = 0; k <= len; k++) {
        struct recs c;

        frame_split(&c, &o, data, len, k);
        assert_int_equal(c.n, 1);
        assert_rec(&c, 0, J, 1, lines, NULL, want);
        assert_int_equal(c.st.json_errors, 0);
        assert_int_equal(c.st.garbage_bytes, 0);
        recs_free(&c);
    }
}

static void test_split_json_every_offset(void **state)
{
    size_t len, clen;
    char *data = load(FS02, &len);
    char *crlf = to_crlf(data, len, &clen);
    char *want = cfw_xstrndup(data, len - 1);
    char *cwant = cfw_xstrndup(crlf, clen - 2);

    (void)state;
    every_offset_one_value(data, len, CFW_FMT_JSON, want, 30);
    every_offset_one_value(data, len, CFW_FMT_AUTO, want, 30);
    /* JSON format keeps the exact bytes; in MIXED the lines are cleaned (CR removed). */
    every_offset_one_value(crlf, clen, CFW_FMT_JSON, cwant, 30);
    every_offset_one_value(crlf, clen, CFW_FMT_AUTO, want, 30);
    free(cwant);
    free(want);
    free(crlf);
    free(data);
}

/* Every split of the file into two reads frames like the LF file read at once. */
enum line_end { LE_LF, LE_CRLF, LE_CR };

static void every_offset_same(const char *file, enum line_end le)
{
    struct cfw_framer_opts o = {.format = CFW_FMT_AUTO};
    struct recs ref;
    size_t len, flen = 0, k;
    char *data = load(file, &len);
    char *fed = le == LE_CRLF ? to_crlf(data, len, &flen)
                : le == LE_CR ? to_cr(data, len)
                              : cfw_xstrndup(data, len);

    if (le != LE_CRLF) {
        flen = len;
    }
    frame(&ref, &o, data, len, 0);
    for (k = 0; k <= flen; k++) {
        struct recs c;

        frame_split(&c, &o, fed, flen, k);
        assert_same(&ref, &c);
        recs_free(&c);
    }
    recs_free(&ref);
    free(fed);
    free(data);
}

static void test_split_text_every_offset(void **state)
{
    (void)state;
    every_offset_same(F01, LE_LF);   /* ANSI sequences and UTF-8 split across reads */
    every_offset_same(F01, LE_CRLF); /* the same with CRLF */
    every_offset_same(F16, LE_CRLF);
    every_offset_same(F18, LE_CRLF); /* prefixes; no newline at the end */
    every_offset_same(FWLOG, LE_CRLF);
    /* CR-only line ends give the same records, wherever a read ends (a CR last in a read) */
    every_offset_same(F01, LE_CR);
    every_offset_same(F18, LE_CR);
    every_offset_same(FWLOG, LE_CR);
}

/* ---- one input framed in parts (cfw_framer_new_mid) ---- */

/*
 * Frames data line by line and, at every line end where the framer is at rest, starts a framer
 * there with cfw_framer_new_mid: what it frames to the end must be the records the whole-input
 * framer made after that point, lines shifted, and the counters the difference. A mixed input
 * (tracebacks, wrangler blocks, one-line and pretty-printed JSON, time prefixes, ANSI) has rest
 * points between its blocks and none inside them.
 */
static void mid_every_rest_point(const char *data, size_t len, size_t *rests)
{
    struct cfw_framer_opts o = {.format = CFW_FMT_AUTO};
    struct cfw_framer_mid mid;
    struct recs ref;
    struct cfw_framer *f;
    size_t off = 0;

    memset(&ref, 0, sizeof(ref));
    f = cfw_framer_new("test", &o, collect, &ref);
    while (off < len) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t end = nl != NULL ? (size_t)(nl - data) + 1 : len;
        struct cfw_framer_stats before;
        struct recs part;
        struct cfw_framer *g;
        size_t had;

        cfw_framer_feed(f, data + off, end - off);
        off = end;
        if (!cfw_framer_at_rest(f) || off == len) {
            continue;
        }
        assert_true(cfw_framer_mid_of(f, &mid));
        (*rests)++;
        /* the rest of the input, framed apart from here, once f has framed it too */
        memset(&part, 0, sizeof(part));
        g = cfw_framer_new_mid("test", &o, collect, &part, &mid);
        feed_chunks(g, data + off, len - off, 4096);
        done(&part, g);
        had = ref.n;
        before = *cfw_framer_stats(f);
        {
            struct recs rest;
            struct cfw_framer *h;

            memset(&rest, 0, sizeof(rest));
            h = cfw_framer_new("test", &o, collect, &rest);
            feed_chunks(h, data, len, 0);
            done(&rest, h);
            assert_int_equal(rest.n - had, part.n);
            for (size_t i = 0; i < part.n; i++) {
                const struct rec *w = &rest.v[had + i];

                assert_rec(&part, i, w->kind, w->line - before.lines, w->line_end - before.lines,
                           w->time, w->text);
            }
            assert_int_equal(rest.st.lines - before.lines, part.st.lines);
            assert_int_equal(rest.st.records - before.records, part.st.records);
            assert_int_equal(rest.st.json_errors - before.json_errors, part.st.json_errors);
            assert_int_equal(rest.st.nul_bytes - before.nul_bytes, part.st.nul_bytes);
            assert_int_equal(rest.st.long_lines - before.long_lines, part.st.long_lines);
            recs_free(&rest);
        }
        recs_free(&part);
    }
    cfw_framer_free(f);
    recs_free(&ref);
}

static void test_mid_rest_points(void **state)
{
    static const char *const files[] = {F01, F02, F05, F06, F14, F16, F18, F22, FS01, FS02};
    static const char mixed[] = "\xef\xbb\xbfTraceback (most recent call last):\n"
                                "  File \"/app/main.py\", line 3, in <module>\n"
                                "ModuleNotFoundError: No module named 'src'\n"
                                "\n"
                                "a plain line\n"
                                "\xef\xbb\xbf"
                                "a byte order mark in the middle\n"
                                "{\"outcome\": \"exception\",\n"
                                "  \"logs\": [\n"
                                "\n"
                                "  ]}\n"
                                "{\"a\": 1}\n"
                                "{\"open\": \n"
                                "2026-08-01T00:00:38.354Z\tnot json\n"
                                "\x1b[31m\xe2\x9c\x98 [ERROR]\x1b[0m Build failed\n"
                                "\n"
                                "  indented detail\n"
                                "after the block\n"
                                "{\"last\": true}\n";
    size_t rests = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        size_t len;
        char *data = load(files[i], &len);

        mid_every_rest_point(data, len, &rests);
        free(data);
    }
    mid_every_rest_point(mixed, sizeof(mixed) - 1, &rests);
    assert_true(rests > 100); /* the points were there to try */
}

/*
 * CR-only input longer than max_line: the same records whatever the reads, and the decision is
 * taken on the first max_line + 1 bytes (a CR there and no LF: CR-only; else LF).
 */
static void test_cr_only_long(void **state)
{
    static const size_t chunks[] = {1, 7, 4096, 65536, 0};
    struct cfw_framer_opts o = {.format = CFW_FMT_AUTO};
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct recs ref;

    (void)state;
    for (int i = 0; i < 6000; i++) {
        cfw_buf_printf(&b, "GET /api/%d 200 OK\r", i);
    }
    frame(&ref, &o, b.data, b.len, 0);
    assert_int_equal(ref.n, 6000);
    assert_int_equal(ref.st.long_lines, 0);
    assert_rec(&ref, 4321, CFW_REC_TEXT, 4322, 4322, NULL, "GET /api/4321 200 OK");
    for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        struct recs c;

        frame(&c, &o, b.data, b.len, chunks[k]);
        assert_same(&ref, &c);
        recs_free(&c);
    }
    recs_free(&ref);
    cfw_buf_reset(&b);
    /* 70 KB before the first LF with a CR early on: CR-only (the LF is then an ordinary byte) */
    cfw_buf_puts(&b, "first\r");
    for (int i = 0; i < 7000; i++) {
        cfw_buf_puts(&b, "0123456789");
    }
    cfw_buf_puts(&b, "\nlast\r");
    for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        struct recs c;

        frame(&c, &o, b.data, b.len, chunks[k]);
        /* "first", the 70 KB line (over-long, skipped), then "last" after the LF */
        assert_int_equal(c.n, 2);
        assert_string_equal(c.v[0].text, "first");
        assert_string_equal(c.v[1].text, "last");
        assert_int_equal(c.st.long_lines, 1);
        assert_int_equal(c.st.lines, 3);
        recs_free(&c);
    }
    /* once CR-only, CRLF is one line end even across reads, and a later LF ends a line */
    {
        static const char in[] = "a\rb\r\nc\nd\re";
        struct recs c;

        o.max_line = 2; /* the window: three bytes, "a\rb", hold a CR and no LF */
        for (size_t k = 0; k <= sizeof(in) - 1; k++) {
            frame_split(&c, &o, in, sizeof(in) - 1, k);
            assert_int_equal(c.n, 5);
            assert_string_equal(c.v[1].text, "b");
            assert_int_equal(c.v[2].line, 3);
            assert_string_equal(c.v[2].text, "c");
            assert_string_equal(c.v[4].text, "e");
            recs_free(&c);
        }
    }
    cfw_buf_free(&b);
}

/* ---- table-driven cases ---- */

/*
 * A record expected at index idx: the whole record (assert_rec) when text is set; else only its
 * line numbers (each when not 0) and a part of its text (when has is set).
 */
struct want_rec {
    size_t idx;
    enum cfw_record_kind kind;
    uint64_t line;
    uint64_t line_end;
    const char *time;
    const char *text;
    const char *has;
};

/* A whole record; the line numbers of one (0: unchecked) and a part of its text (or NULL). */
#define REC(idx, kind, line, line_end, time, text)                                                 \
    {                                                                                              \
        idx, kind, line, line_end, time, text, NULL                                                \
    }
#define PART(idx, line, line_end, has)                                                             \
    {                                                                                              \
        idx, T, line, line_end, NULL, NULL, has                                                    \
    }

/* A statistic (or the resolved format) expected after framing; ST_END ends a list. */
enum stat_id { ST_END, ST_LINES, ST_JSON_VALUES, ST_JSON_ERRORS, ST_GARBAGE, ST_NUL, ST_FMT };

struct want_stat {
    enum stat_id id;
    uint64_t value;
};

/* An input framed at once with the options o, and what must come out. */
struct frame_case {
    struct cfw_framer_opts o;
    const char *in;
    size_t n; /* records */
    struct want_rec r[6];
    struct want_stat st[4];
};

static uint64_t stat_value(const struct recs *c, enum stat_id id)
{
    switch (id) {
    case ST_LINES:
        return c->st.lines;
    case ST_JSON_VALUES:
        return c->st.json_values;
    case ST_JSON_ERRORS:
        return c->st.json_errors;
    case ST_GARBAGE:
        return c->st.garbage_bytes;
    case ST_NUL:
        return c->st.nul_bytes;
    case ST_FMT:
        return (uint64_t)c->fmt;
    case ST_END:
        break;
    }
    fail_msg("unknown statistic %d", (int)id);
    return 0;
}

static void check_want_rec(const struct recs *c, const struct want_rec *w)
{
    if (w->text != NULL) {
        assert_rec(c, w->idx, w->kind, w->line, w->line_end, w->time, w->text);
        return;
    }
    assert_true(w->idx < c->n);
    if (w->line != 0) {
        assert_int_equal(c->v[w->idx].line, w->line);
    }
    if (w->line_end != 0) {
        assert_int_equal(c->v[w->idx].line_end, w->line_end);
    }
    if (w->has != NULL) {
        assert_non_null(strstr(c->v[w->idx].text, w->has));
    }
}

/* The same records and counts from framing with the fast check of objects and without it. */
static void assert_same_without_fast(const struct recs *c, const struct frame_case *fc)
{
    struct recs slow;
    struct cfw_framer *f;

    memset(&slow, 0, sizeof(slow));
    f = cfw_framer_new("test", &fc->o, collect, &slow);
    cfw_framer_set_fast_json(f, false);
    cfw_framer_feed(f, fc->in, strlen(fc->in));
    done(&slow, f);
    assert_int_equal(slow.n, c->n);
    for (size_t k = 0; k < c->n; k++) {
        assert_int_equal(slow.v[k].kind, c->v[k].kind);
        assert_string_equal(slow.v[k].text, c->v[k].text);
        assert_int_equal(slow.v[k].line, c->v[k].line);
        assert_int_equal(slow.v[k].line_end, c->v[k].line_end);
    }
    assert_memory_equal(&slow.st, &c->st, sizeof(slow.st));
    recs_free(&slow);
}

static void run_frame_cases(const struct frame_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct frame_case *fc = &cases[i];
        struct recs c;

        frame(&c, &fc->o, fc->in, strlen(fc->in), 0);
        assert_same_without_fast(&c, fc);
        if (c.n != fc->n) {
            fail_msg("case %zu: %zu records, want %zu", i, c.n, fc->n);
        }
        for (size_t k = 0; k < sizeof(fc->r) / sizeof(fc->r[0]); k++) {
            const struct want_rec *w = &fc->r[k];

            if (w->text != NULL || w->line != 0 || w->line_end != 0 || w->has != NULL) {
                check_want_rec(&c, w);
            }
        }
        for (size_t k = 0; k < sizeof(fc->st) / sizeof(fc->st[0]) && fc->st[k].id != ST_END; k++) {
            assert_int_equal(stat_value(&c, fc->st[k].id), fc->st[k].value);
        }
        recs_free(&c);
    }
}

#define RUN_FRAME_CASES(cases) run_frame_cases((cases), sizeof(cases) / sizeof((cases)[0]))

/* ---- line cleaning ---- */

static void test_strip_ansi(void **state)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"\x1b[31m\xe2\x9c\x98 \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m \x1b[1mA request "
         "failed.\x1b[0m",
         "\xe2\x9c\x98 [ERROR] A request failed."},
        {"visit: \x1b[4mhttps://developers.cloudflare.com\x1b[0m",
         "visit: https://developers.cloudflare.com"},
        {"a\x1b]8;;https://x.test/\x07link\x1b]8;;\x07z", "alinkz"},
        {"a\x1b]0;title\x1b\\z", "az"},
        {"\x1b(Bplain\x1b=", "plain"},
        {"\x1b[?25lhidden\x1b[?25h", "hidden"},
        {"end\x1b", "end"},
        {"x\x1b[12;", "x"},
        {"a\x1b\x01z", "a\x01z"},
        {"no escapes", "no escapes"},
        {"", ""},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *s = cfw_xstrdup(cases[i].in);
        size_t n = cfw_strip_ansi(s, strlen(s));

        assert_int_equal(n, strlen(cases[i].out));
        assert_memory_equal(s, cases[i].out, n);
        free(s);
    }
}

static void test_line_cleaning(void **state)
{
    static const char in[] = "one\r\n"
                             "\r\n"
                             "  \r\n"
                             "two\0three\0\n"
                             "\xff\xfe\xc3 bad \xe2\x9c\n"
                             "13:13:43.817 | from the UI\n"
                             "2025-08-21T01:58:28.392Z\tbuilds\n"
                             "2025-10-12T13:32:12.3289073Z gha\n"
                             "2025-10-12T13:32:12+02:00 offset\n"
                             "12:00 not a prefix\n"
                             "\x1b[33m2025-10-12T13:32:12Z\x1b[0m \x1b[1mcoloured\x1b[0m\r\n";
    struct cfw_framer_opts o = {.format = CFW_FMT_LINES};
    struct recs c;

    (void)state;
    frame(&c, &o, in, sizeof(in) - 1, 0);
    assert_int_equal(c.n, 9);
    assert_rec(&c, 0, T, 1, 1, NULL, "one");
    assert_rec(&c, 1, T, 4, 4, NULL, "two three ");
    assert_rec(&c, 2, T, 5, 5, NULL, "\xff\xfe\xc3 bad \xe2\x9c");
    assert_rec(&c, 3, T, 6, 6, "13:13:43.817", "from the UI");
    assert_rec(&c, 4, T, 7, 7, "2025-08-21T01:58:28.392Z", "builds");
    assert_rec(&c, 5, T, 8, 8, "2025-10-12T13:32:12.3289073Z", "gha");
    assert_rec(&c, 6, T, 9, 9, "2025-10-12T13:32:12+02:00", "offset");
    assert_rec(&c, 7, T, 10, 10, NULL, "12:00 not a prefix");
    assert_rec(&c, 8, T, 11, 11, "2025-10-12T13:32:12Z", "coloured");
    assert_int_equal(c.st.lines, 11);
    assert_int_equal(c.st.nul_bytes, 2);
    recs_free(&c);

    /* A UTF-8 byte order mark at the start of the input is dropped. */
    frame_str(&c, CFW_FMT_AUTO, "\xef\xbb\xbf{\"a\":1}\nnext\n");
    assert_int_equal(c.n, 2);
    assert_rec(&c, 0, J, 1, 1, NULL, "{\"a\":1}");
    assert_rec(&c, 1, T, 2, 2, NULL, "next");
    recs_free(&c);
}

static void test_long_line(void **state)
{
    struct cfw_framer_opts o = {.format = CFW_FMT_LINES, .max_line = 16};
    struct cfw_buf in = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    size_t chunk;
    int i;

    (void)state;
    cfw_buf_puts(&in, "short\n");
    for (i = 0; i < 40; i++) {
        cfw_buf_putc(&in, 'x');
    }
    cfw_buf_puts(&in, "\nnext\n0123456789abcdef\n");
    for (i = 0; i < 20; i++) {
        cfw_buf_putc(&in, 'y');
    }
    for (chunk = 0; chunk <= 5; chunk++) {
        struct recs c;

        frame(&c, &o, in.data, in.len, chunk);
        assert_int_equal(c.n, 3);
        assert_rec(&c, 0, T, 1, 1, NULL, "short");
        assert_rec(&c, 1, T, 3, 3, NULL, "next");
        assert_rec(&c, 2, T, 4, 4, NULL, "0123456789abcdef");
        assert_int_equal(c.st.long_lines, 2);
        assert_int_equal(c.st.lines, 5);
        recs_free(&c);
    }
    cfw_buf_free(&in);
}

/* ---- JSON ---- */

static void test_json_truncated(void **state)
{
    static const struct frame_case cases[] = {
        {{.format = CFW_FMT_JSON},
         "{\"a\":1}\n{\"b\":",
         1,
         {REC(0, J, 1, 1, NULL, "{\"a\":1}")},
         {{ST_JSON_ERRORS, 1}, {ST_GARBAGE, 5}, {ST_LINES, 2}}},
        /* In MIXED the lines of the cut value come out as text, nothing is lost. */
        {{.format = CFW_FMT_AUTO},
         "first\n{\n  \"b\": [1,\n",
         3,
         {REC(0, T, 1, 1, NULL, "first"), REC(1, T, 2, 2, NULL, "{"),
          REC(2, T, 3, 3, NULL, "  \"b\": [1,")},
         {{ST_JSON_ERRORS, 1}, {ST_JSON_VALUES, 0}}},
    };

    (void)state;
    RUN_FRAME_CASES(cases);
}

static void test_json_depth(void **state)
{
    static const char pretty[] = "{\n"
                                 "    \"a\": {\n"
                                 "        \"b\": {\n"
                                 "            \"c\": {\n"
                                 "                \"d\": {\n"
                                 "                    \"e\": 1\n"
                                 "                }\n"
                                 "            }\n"
                                 "        }\n"
                                 "    }\n"
                                 "}\n";
    struct cfw_framer_opts o = {.format = CFW_FMT_JSON, .max_depth = 4};
    struct cfw_buf in = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct recs c;
    int i;

    (void)state;
    frame(&c, &o, "[[[[[1]]]]]\n{\"ok\":true}\n", 24, 0);
    assert_int_equal(c.n, 1);
    assert_rec(&c, 0, J, 2, 2, NULL, "{\"ok\":true}");
    assert_int_equal(c.st.json_errors, 1);
    assert_int_equal(c.st.garbage_bytes, 11);
    recs_free(&c);

    /* A too-deep pretty value is skipped to its end: no record from its inner objects. */
    cfw_buf_puts(&in, pretty);
    cfw_buf_puts(&in, "{\"next\":[1,{\"x\":null}]}\n");
    frame(&c, &o, in.data, in.len, 3);
    assert_int_equal(c.n, 1);
    assert_rec(&c, 0, J, 12, 12, NULL, "{\"next\":[1,{\"x\":null}]}");
    assert_int_equal(c.st.json_errors, 1);
    assert_int_equal(c.st.garbage_bytes, sizeof(pretty) - 2);
    recs_free(&c);

    /* Default cap: 64 levels pass, 65 do not; in MIXED the deep line is text. */
    cfw_buf_reset(&in);
    for (i = 0; i < 64; i++) {
        cfw_buf_putc(&in, '[');
    }
    for (i = 0; i < 64; i++) {
        cfw_buf_putc(&in, ']');
    }
    cfw_buf_puts(&in, "\n{");
    for (i = 0; i < 64; i++) {
        cfw_buf_puts(&in, "\"k\":{");
    }
    for (i = 0; i < 65; i++) {
        cfw_buf_putc(&in, '}');
    }
    cfw_buf_puts(&in, "\n");
    frame_str(&c, CFW_FMT_JSON, in.data);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.v[0].line, 1);
    assert_int_equal(c.st.json_errors, 1);
    recs_free(&c);
    frame_str(&c, CFW_FMT_AUTO, in.data); /* MIXED: a line starting with '[' is text anyway */
    assert_int_equal(c.n, 2);
    assert_int_equal(c.v[0].kind, T);
    assert_int_equal(c.v[1].kind, T);
    assert_int_equal(c.v[1].line, 2);
    assert_int_equal(c.st.json_errors, 1);
    recs_free(&c);
    cfw_buf_free(&in);
}

static void test_json_garbage(void **state)
{
    static const struct frame_case cases[] = {
        {{.format = CFW_FMT_JSON},
         "noise {\"a\":1} more\n{\"b\":2}  \n\n[1,\"x\",true,null,-0.5e+3]\n",
         3,
         {REC(0, J, 1, 1, NULL, "{\"a\":1}"), REC(1, J, 2, 2, NULL, "{\"b\":2}"),
          REC(2, J, 4, 4, NULL, "[1,\"x\",true,null,-0.5e+3]")},
         {{ST_GARBAGE, 9}, {ST_JSON_ERRORS, 0}}},
        /* A malformed value: counted, and the stream resynchronises at a line starting with '{'. */
        {{.format = CFW_FMT_JSON},
         "{\"a\": x}\n  {\"b\":1}\n",
         1,
         {REC(0, J, 2, 2, NULL, "{\"b\":1}")},
         {{ST_JSON_ERRORS, 1}, {ST_GARBAGE, 11}}},
        /* A '{' that breaks a value and starts its line begins the next value. */
        {{.format = CFW_FMT_JSON},
         "{\"a\":1,\n{\"b\":2}\n",
         1,
         {REC(0, J, 2, 2, NULL, "{\"b\":2}")},
         {{ST_JSON_ERRORS, 1}, {ST_GARBAGE, 8}}},
        /* A raw newline inside a string (the value spans lines 1-2), a bad escape, a leading zero.
         */
        {{.format = CFW_FMT_JSON},
         "{\"a\":\"x\ny\"}\n{\"b\":\"\\q\"}\n{\"c\":01}\n{\"d\":\"\\u00e9\\n\"}\n",
         1,
         {REC(0, J, 5, 5, NULL, "{\"d\":\"\\u00e9\\n\"}")},
         {{ST_JSON_ERRORS, 3}}},
    };

    (void)state;
    RUN_FRAME_CASES(cases);
}

static void test_json_too_large(void **state)
{
    struct cfw_framer_opts o = {.format = CFW_FMT_JSON, .max_json = 32};
    struct cfw_buf in = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_buf big = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct recs c;
    size_t chunk;
    int i;

    (void)state;
    cfw_buf_puts(&big, "{\"big\":\"");
    for (i = 0; i < 60; i++) {
        cfw_buf_putc(&big, 'x');
    }
    cfw_buf_puts(&big, "\"}");
    cfw_buf_puts(&in, "{\"small\":1}\n");
    cfw_buf_append(&in, big.data, big.len);
    cfw_buf_puts(&in, "\n{\"exactly32\":\"xxxxxxxxxxxxxxxx\"}\n");
    for (chunk = 0; chunk <= 7; chunk += 7) {
        frame(&c, &o, in.data, in.len, chunk);
        assert_int_equal(c.n, 2);
        assert_rec(&c, 0, J, 1, 1, NULL, "{\"small\":1}");
        assert_rec(&c, 1, J, 3, 3, NULL, "{\"exactly32\":\"xxxxxxxxxxxxxxxx\"}");
        assert_int_equal(c.v[1].len, 32);
        assert_int_equal(c.st.json_errors, 1);
        assert_int_equal(c.st.garbage_bytes, big.len);
        recs_free(&c);
    }

    /* In MIXED a value over max_json is text. */
    cfw_buf_reset(&in);
    cfw_buf_puts(&in, "{\n  \"big\": \"");
    for (i = 0; i < 40; i++) {
        cfw_buf_putc(&in, 'x');
    }
    cfw_buf_puts(&in, "\"\n}\nafter\n");
    o.format = CFW_FMT_AUTO;
    frame(&c, &o, in.data, in.len, 0);
    assert_int_equal(c.n, 4);
    assert_rec(&c, 0, T, 1, 1, NULL, "{");
    assert_int_equal(c.v[1].line, 2);
    assert_rec(&c, 2, T, 3, 3, NULL, "}");
    assert_rec(&c, 3, T, 4, 4, NULL, "after");
    assert_int_equal(c.st.json_errors, 1);
    recs_free(&c);
    cfw_buf_free(&big);
    cfw_buf_free(&in);
}

/* ---- flush, finish, pending ---- */

static void test_flush_and_finish(void **state)
{
    static const char tb[] = "Traceback (most recent call last):\n"
                             "  File \"/session/metadata/main.py\", line 11, in <module>\n"
                             "    from src.core.config.settings import Settings\n"
                             "ModuleNotFoundError: No module named 'src'\n"
                             "partial";
    struct recs c;
    struct cfw_framer *f;

    (void)state;
    memset(&c, 0, sizeof(c));
    f = cfw_framer_new("test", NULL, collect, &c);
    assert_false(cfw_framer_pending(f));
    assert_int_equal(cfw_framer_format(f), CFW_FMT_AUTO);
    cfw_framer_feed(f, tb, sizeof(tb) - 1);
    assert_int_equal(c.n, 0); /* the traceback waits for note lines */
    assert_true(cfw_framer_pending(f));
    cfw_framer_flush(f);
    assert_int_equal(c.n, 1);
    assert_rec(&c, 0, T, 1, 4, NULL,
               "Traceback (most recent call last):\n"
               "  File \"/session/metadata/main.py\", line 11, in <module>\n"
               "    from src.core.config.settings import Settings\n"
               "ModuleNotFoundError: No module named 'src'");
    assert_true(cfw_framer_pending(f)); /* the partial line is kept */
    cfw_framer_flush(f);
    assert_int_equal(c.n, 1);
    cfw_framer_finish(f);
    assert_int_equal(c.n, 2);
    assert_rec(&c, 1, T, 5, 5, NULL, "partial");
    assert_false(cfw_framer_pending(f));
    assert_int_equal(cfw_framer_stats(f)->lines, 5);
    cfw_framer_finish(f);
    assert_int_equal(c.n, 2);
    cfw_framer_free(f);
    recs_free(&c);

    /* A last line without a newline is emitted by finish. */
    memset(&c, 0, sizeof(c));
    f = cfw_framer_new("test", NULL, collect, &c);
    cfw_framer_feed(f, "a\nb", 3);
    assert_int_equal(c.n, 1);
    assert_true(cfw_framer_pending(f));
    cfw_framer_finish(f);
    assert_int_equal(c.n, 2);
    assert_rec(&c, 1, T, 2, 2, NULL, "b");
    cfw_framer_free(f);
    recs_free(&c);

    /* A JSON value in progress is pending but not flushed. */
    memset(&c, 0, sizeof(c));
    f = cfw_framer_new("test", &(struct cfw_framer_opts){.format = CFW_FMT_JSON}, collect, &c);
    cfw_framer_feed(f, "{\"a\":\n", 6);
    assert_true(cfw_framer_pending(f));
    cfw_framer_flush(f);
    assert_int_equal(c.n, 0);
    cfw_framer_feed(f, "1}", 2);
    assert_false(cfw_framer_pending(f));
    cfw_framer_finish(f);
    assert_int_equal(c.n, 1);
    assert_rec(&c, 0, J, 1, 2, NULL, "{\"a\":\n1}");
    cfw_framer_free(f);
    recs_free(&c);
    cfw_framer_free(NULL);
}

/* ---- MIXED ---- */

static void test_mixed(void **state)
{
    static const struct frame_case cases[] = {
        /* A held block comes out before the JSON value that follows it. */
        {{.format = CFW_FMT_AUTO},
         "Traceback (most recent call last):\n"
         "  File \"a.py\", line 1, in <module>\n"
         "KeyError: 'x'\n"
         "{\"a\":1}\n"
         "after\n",
         3,
         {REC(0, T, 1, 3, NULL,
              "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\n"
              "KeyError: 'x'"),
          REC(1, J, 4, 4, NULL, "{\"a\":1}"), REC(2, T, 5, 5, NULL, "after")},
         {{ST_END, 0}}},
        /* Lines that start with '{' but are not JSON stay text. */
        {{.format = CFW_FMT_AUTO},
         "{not json} here\n{\"a\": 1} trailing\n{}\nplain\n",
         4,
         {REC(0, T, 1, 1, NULL, "{not json} here"), REC(1, T, 2, 2, NULL, "{\"a\": 1} trailing"),
          REC(2, J, 3, 3, NULL, "{}"), REC(3, T, 4, 4, NULL, "plain")},
         {{ST_JSON_ERRORS, 2}}},
        /* A cut value followed by a whole one: the cut lines are text, the next value is found. */
        {{.format = CFW_FMT_AUTO},
         "{\n  \"a\": 1,\n{\n  \"b\": 2\n}\n",
         3,
         {REC(0, T, 1, 1, NULL, "{"), REC(1, T, 2, 2, NULL, "  \"a\": 1,"),
          REC(2, J, 3, 5, NULL, "{\n  \"b\": 2\n}")},
         {{ST_JSON_ERRORS, 1}}},
        /* A pretty value copied from a GitHub Actions log: prefixes removed, first time kept. */
        {{.format = CFW_FMT_AUTO},
         "2025-10-12T13:32:12.1000000Z {\n"
         "2025-10-12T13:32:12.1000001Z     \"outcome\": \"ok\"\n"
         "2025-10-12T13:32:12.1000002Z }\n",
         1,
         {REC(0, J, 1, 3, "2025-10-12T13:32:12.1000000Z", "{\n    \"outcome\": \"ok\"\n}")},
         {{ST_END, 0}}},
        /*
         * One-line objects, decided by the fast check (jsonline.h) or, where it is not sure, by
         * the tokenizer: the same records either way. Trailing spaces, a time prefix, colours
         * removed (the framer's own copy of the line), an escape, a number the grammar refuses,
         * two values on one line, nesting.
         */
        {{.format = CFW_FMT_AUTO},
         "{\"a\":[1,{\"b\":null}],\"c\":\"x\"}   \n"
         "2025-10-12T13:32:12Z {\"t\":true}\n"
         "\x1b[1m{\"ansi\":-1.5e3}\x1b[0m  \n"
         "{\"esc\":\"a\\\"b\"}\n"
         "{\"n\":01}\n"
         "{\"a\":1} {\"b\":2}\n",
         6,
         {REC(0, J, 1, 1, NULL, "{\"a\":[1,{\"b\":null}],\"c\":\"x\"}"),
          REC(1, J, 2, 2, "2025-10-12T13:32:12Z", "{\"t\":true}"),
          REC(2, J, 3, 3, NULL, "{\"ansi\":-1.5e3}"), REC(3, J, 4, 4, NULL, "{\"esc\":\"a\\\"b\"}"),
          REC(4, T, 5, 5, NULL, "{\"n\":01}"), REC(5, T, 6, 6, NULL, "{\"a\":1} {\"b\":2}")},
         {{ST_JSON_ERRORS, 2}}},
        /*
         * Objects over many lines, the same records with the fast check or without it: a line
         * inside that starts with a digit (the framer looks for a time prefix there), CRLF
         * line ends, text after the closing brace.
         */
        {{.format = CFW_FMT_AUTO},
         "{\n  \"a\": [\n1,\n    2\n  ]\n}\n"
         "{\r\n  \"b\": 1\r\n}\r\n"
         "{\n  \"c\": 1\n} tail\n",
         5,
         {REC(0, J, 1, 6, NULL, "{\n  \"a\": [\n1,\n    2\n  ]\n}"),
          REC(1, J, 7, 9, NULL, "{\n  \"b\": 1\n}"), REC(2, T, 10, 10, NULL, "{"),
          REC(3, T, 11, 11, NULL, "  \"c\": 1"), REC(4, T, 12, 12, NULL, "} tail")},
         {{ST_JSON_ERRORS, 1}}},
        /* LINES never looks for JSON. */
        {{.format = CFW_FMT_LINES},
         "{\"a\":1}\n",
         1,
         {REC(0, T, 1, 1, NULL, "{\"a\":1}")},
         {{ST_END, 0}}},
    };
    static const char in[] = "start\n"
                             "{\n"
                             "    \"outcome\": \"exception\",\n"
                             "    \"logs\": []\n"
                             "}\n"
                             "end\n";
    struct recs c;
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(in); k++) {
        frame_split(&c, NULL, in, sizeof(in) - 1, k);
        assert_int_equal(c.n, 3);
        assert_rec(&c, 0, T, 1, 1, NULL, "start");
        assert_rec(&c, 1, J, 2, 5, NULL, "{\n    \"outcome\": \"exception\",\n    \"logs\": []\n}");
        assert_rec(&c, 2, T, 6, 6, NULL, "end");
        assert_int_equal(c.st.json_values, 1);
        assert_int_equal(c.fmt, CFW_FMT_LINES);
        recs_free(&c);
    }

    RUN_FRAME_CASES(cases);
}

/* ---- block assembly ---- */

static void test_wrangler_blocks(void **state)
{
    static const struct frame_case cases[] = {
        {{.format = CFW_FMT_LINES},
         "\xe2\x9c\x98 [ERROR] multipart: message too large [code: 10021]\n"
         "  indented after\n",
         2,
         {REC(0, T, 1, 1, NULL, "\xe2\x9c\x98 [ERROR] multipart: message too large [code: 10021]"),
          REC(1, T, 2, 2, NULL, "  indented after")},
         {{ST_END, 0}}},
        {{.format = CFW_FMT_LINES},
         "X [ERROR] windows glyph\n  detail\nnext\n  [ERROR] bare\n\n  x [code: 7]\n",
         3,
         {REC(0, T, 1, 2, NULL, "X [ERROR] windows glyph\n  detail"), REC(1, T, 3, 3, NULL, "next"),
          REC(2, T, 4, 6, NULL, "  [ERROR] bare\n\n  x [code: 7]")},
         {{ST_END, 0}}},
        /* A new marker ends the open message. */
        {{.format = CFW_FMT_LINES},
         "\xe2\x96\xb2 [WARNING] w\n  more\n\n\xe2\x9c\x98 [ERROR] e\n\n  detail [code: 1]\n"
         "  after\n",
         3,
         {REC(0, T, 1, 2, NULL, "\xe2\x96\xb2 [WARNING] w\n  more"),
          REC(1, T, 4, 6, NULL, "\xe2\x9c\x98 [ERROR] e\n\n  detail [code: 1]"),
          REC(2, T, 7, 7, NULL, "  after")},
         {{ST_END, 0}}},
        /* Caps: a block reaching max_block_lines or max_record is emitted as it is. */
        {{.format = CFW_FMT_LINES, .max_block_lines = 3},
         "\xe2\x9c\x98 [ERROR] head\n  a\n  b\n  c\n",
         2,
         {REC(0, T, 1, 3, NULL, "\xe2\x9c\x98 [ERROR] head\n  a\n  b"),
          REC(1, T, 4, 4, NULL, "  c")},
         {{ST_END, 0}}},
        {{.format = CFW_FMT_LINES, .max_record = 20},
         "\xe2\x9c\x98 [ERROR] head\n  aaaaaaaaaaaaaaa\n",
         2,
         {REC(0, T, 1, 1, NULL, "\xe2\x9c\x98 [ERROR] head"),
          REC(1, T, 2, 2, NULL, "  aaaaaaaaaaaaaaa")},
         {{ST_END, 0}}},
    };

    (void)state;
    RUN_FRAME_CASES(cases);
}

static void test_traceback_blocks(void **state)
{
    static const struct frame_case cases[] = {
        /* Up to three note lines after the exception. */
        {{.format = CFW_FMT_LINES},
         "Traceback (most recent call last):\n"
         "  File \"/session/metadata/entry.py\", line 2, in <module>\n"
         "    from src.x import y\n"
         "ModuleNotFoundError: No module named 'src'\n"
         "note one\nnote two\nnote three\nnote four\n",
         2,
         {PART(0, 1, 7, NULL), REC(1, T, 8, 8, NULL, "note four")},
         {{ST_END, 0}}},
        /* Chained tracebacks are one record. */
        {{.format = CFW_FMT_LINES},
         "Traceback (most recent call last):\n"
         "  File \"a.py\", line 1, in <module>\n"
         "KeyError: 'k'\n"
         "\n"
         "During handling of the above exception, another exception occurred:\n"
         "\n"
         "Traceback (most recent call last):\n"
         "  File \"a.py\", line 3, in <module>\n"
         "ValueError: v\n"
         "\n"
         "next line\n",
         2,
         {PART(0, 0, 9, "During handling"), REC(1, T, 11, 11, NULL, "next line")},
         {{ST_END, 0}}},
        /* A flattened one-line traceback is one record; the next line is not taken. */
        {{.format = CFW_FMT_LINES},
         "Error: Uncaught Error: PythonError: Traceback (most recent call last): File "
         "\"/session/metadata/main.py\", line 3, in <module> from src.x import y "
         "ModuleNotFoundError: No module named 'src' (Code: 10021)\n"
         "  File \"x\"\n"
         "next\n",
         3,
         {PART(0, 0, 1, NULL)},
         {{ST_END, 0}}},
        /* An indented traceback outside a wrangler message; a note; a deeper line ends it. */
        {{.format = CFW_FMT_LINES},
         "  Uncaught Error: PythonError: Traceback (most recent call last):\n"
         "    File \"/session/metadata/entry.py\", line 8, in <module>\n"
         "      from workers import Response\n"
         "  ModuleNotFoundError: No module named 'workers'\n"
         "  You need to update to workers-py >= 1.90 or to pass disable_python_external_sdk\n"
         "\n"
         "    at null.<anonymous> (x)\n",
         2,
         {PART(0, 0, 5, NULL), REC(1, T, 7, 7, NULL, "    at null.<anonymous> (x)")},
         {{ST_END, 0}}},
        /* A line that cannot belong to a traceback ends it without being taken. */
        {{.format = CFW_FMT_LINES},
         "Traceback (most recent call last):\n"
         "  File \"a.py\", line 1, in <module>\n"
         "plain text here\n"
         "  File \"b.py\", line 2, in f\n"
         "    g()\n"
         "pyodide.ffi.JsException: TypeError: boom\n"
         "WARNING  next record\n",
         4,
         {REC(0, T, 1, 2, NULL,
              "Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>"),
          REC(1, T, 3, 3, NULL, "plain text here"),
          REC(2, T, 4, 6, NULL,
              "  File \"b.py\", line 2, in f\n    g()\npyodide.ffi.JsException: TypeError: boom"),
          REC(3, T, 7, 7, NULL, "WARNING  next record")},
         {{ST_END, 0}}},
    };

    (void)state;
    RUN_FRAME_CASES(cases);
}

/* ---- wrangler debug log ---- */

static void test_wrangler_log(void **state)
{
    static const struct frame_case cases[] = {
        /* Entries without blank lines between them, a line outside any entry, CRLF. */
        {{.format = CFW_FMT_AUTO},
         "--- 2026-08-16T08:07:29.126Z debug\r\n"
         "Writing logs to \"x.log\"\r\n"
         "---\r\n"
         "stray line\r\n"
         "--- 2026-08-16T08:07:31.502Z error\r\n"
         "\xe2\x9c\x98 [ERROR] Build failed\r\n"
         "\r\n"
         "  detail\r\n"
         "---\r\n"
         "--- 2026-08-16T08:07:31.600Z log\r\n"
         "unterminated entry",
         4,
         {REC(0, T, 2, 2, "2026-08-16T08:07:29.126Z", "Writing logs to \"x.log\""),
          REC(1, T, 4, 4, NULL, "stray line"),
          REC(2, T, 6, 8, "2026-08-16T08:07:31.502Z",
              "\xe2\x9c\x98 [ERROR] Build failed\n\n  detail"),
          REC(3, T, 11, 11, "2026-08-16T08:07:31.600Z", "unterminated entry")},
         {{ST_FMT, CFW_FMT_WRANGLER_LOG}}},
        /* Not a wrangler log: AUTO picks MIXED when the first non-blank line is something else. */
        {{.format = CFW_FMT_AUTO},
         "\n\n--- not a header\n--- 2026-08-16T08:07:29.126Z debug\n",
         2,
         {{0}}, /* no record checked */
         {{ST_FMT, CFW_FMT_LINES}}},
    };

    (void)state;
    RUN_FRAME_CASES(cases);
}

static void test_formats(void **state)
{
    static const char *const names[] = {"auto", "lines", "json", "wrangler-log"};
    enum cfw_input_format f;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(cfw_input_format_parse(names[i], &f), 0);
        assert_string_equal(cfw_input_format_name(f), names[i]);
    }
    assert_int_equal(cfw_input_format_parse("JSON", &f), -1);
    assert_int_equal(cfw_input_format_parse("", &f), -1);
    assert_int_equal(cfw_input_format_parse(NULL, &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_strip_ansi),
        cmocka_unit_test(test_line_cleaning),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_wrangler_blocks),
        cmocka_unit_test(test_traceback_blocks),
        cmocka_unit_test(test_json_truncated),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_json_garbage),
        cmocka_unit_test(test_json_too_large),
        cmocka_unit_test(test_flush_and_finish),
        cmocka_unit_test(test_mixed),
        cmocka_unit_test(test_wrangler_log),
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_mid_rest_points),
        cmocka_unit_test(test_split_json_every_offset),
        cmocka_unit_test(test_split_text_every_offset),
        cmocka_unit_test(test_cr_only_long),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
