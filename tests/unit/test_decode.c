/* Unit tests for decode.c: JSON shapes, text records, text-derived fields, hostile input. */
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
#include "cfwatchd/decode.h"
#include "cfwatchd/framer.h"
#include "decode_int.h"
#include "test_util.h"

/* ---- helpers ---- */

struct got_event {
    char *text;
    size_t len;
    struct cfw_fields fields;
    char *input;
    uint64_t line;
    uint64_t line_end;
};

struct got {
    struct got_event *ev;
    size_t n;
    size_t cap;
};

/* An independent UTF-8 check: every event text and field value must pass it. */
static bool valid_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        uint32_t cp;
        size_t k;

        if (p[i] < 0x80) {
            if (p[i] == 0) {
                return false;
            }
            i++;
            continue;
        }
        if ((p[i] & 0xE0) == 0xC0) {
            k = 2;
            cp = p[i] & 0x1F;
        } else if ((p[i] & 0xF0) == 0xE0) {
            k = 3;
            cp = p[i] & 0x0F;
        } else if ((p[i] & 0xF8) == 0xF0) {
            k = 4;
            cp = p[i] & 0x07;
        } else {
            return false;
        }
        if (i + k > n) {
            return false;
        }
        for (size_t j = 1; j < k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += k;
    }
    return true;
}

static void collect(const struct cfw_event *ev, void *arg)
{
    struct got *g = arg;
    struct got_event *e;

    assert_non_null(ev->text);
    assert_int_equal(ev->text[ev->len], '\0');
    assert_int_equal(strlen(ev->text), ev->len);
    assert_true(valid_utf8(ev->text, ev->len));
    for (size_t i = 0; i < ev->fields.n; i++) {
        const char *v = ev->fields.v[i].value;

        assert_true(v[0] != '\0');
        assert_true(strlen(v) <= 1024);
        assert_true(valid_utf8(v, strlen(v)));
        for (const char *c = v; *c != '\0'; c++) {
            assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
        }
    }
    if (g->n == g->cap) {
        g->cap = g->cap == 0 ? 8 : g->cap * 2;
        g->ev = realloc(g->ev, g->cap * sizeof(*g->ev));
        assert_non_null(g->ev);
    }
    e = &g->ev[g->n++];
    memset(e, 0, sizeof(*e));
    e->text = cfw_xstrndup(ev->text, ev->len);
    e->len = ev->len;
    cfw_fields_copy(&e->fields, &ev->fields);
    e->input = ev->input != NULL ? cfw_xstrdup(ev->input) : NULL;
    e->line = ev->line;
    e->line_end = ev->line_end;
}

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->ev[i].text);
        free(g->ev[i].input);
        cfw_fields_clear(&g->ev[i].fields);
    }
    free(g->ev);
    memset(g, 0, sizeof(*g));
}

static size_t decode_kind(enum cfw_record_kind kind, const char *text, size_t len, struct got *g,
                          struct cfw_decode_stats *st)
{
    struct cfw_record rec = {
        .kind = kind, .text = text, .len = len, .input = "test.log", .line = 10, .line_end = 12};
    size_t n = cfw_decode_record(&rec, collect, g, st);

    assert_int_equal(n, g->n);
    return n;
}

static size_t decode_json(const char *text, struct got *g, struct cfw_decode_stats *st)
{
    return decode_kind(CFW_REC_JSON, text, strlen(text), g, st);
}

static size_t decode_text(const char *text, struct got *g)
{
    return decode_kind(CFW_REC_TEXT, text, strlen(text), g, NULL);
}

static const char *F(const struct got *g, size_t i, const char *key)
{
    assert_true(i < g->n);
    return cfw_fields_get(&g->ev[i].fields, key);
}

#define assert_field(g, i, key, want) assert_string_equal_or_null(F(g, i, key), want)

/* A field expected in an event: its value, or NULL for none. */
struct field_want {
    const char *key;
    const char *want;
};

static void assert_fields(const struct got *g, size_t i, const struct field_want *w, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        const char *got = F(g, i, w[k].key);

        if ((got == NULL) != (w[k].want == NULL) || (got != NULL && strcmp(got, w[k].want) != 0)) {
            fail_msg("event %zu, field %s: got %s%s%s, want %s%s%s", i, w[k].key,
                     got != NULL ? "\"" : "", got != NULL ? got : "none", got != NULL ? "\"" : "",
                     w[k].want != NULL ? "\"" : "", w[k].want != NULL ? w[k].want : "none",
                     w[k].want != NULL ? "\"" : "");
        }
    }
}

/* assert_fields() of {key, want} pairs given as arguments. */
#define ASSERT_FIELDS(g, i, ...)                                                                   \
    assert_fields((g), (i), (const struct field_want[]){__VA_ARGS__},                              \
                  sizeof((const struct field_want[]){__VA_ARGS__}) / sizeof(struct field_want))

static void assert_string_equal_or_null(const char *got, const char *want)
{
    if (want == NULL) {
        if (got != NULL) {
            fail_msg("unexpected value \"%s\"", got);
        }
        return;
    }
    if (got == NULL) {
        fail_msg("missing value, want \"%s\"", want);
    }
    assert_string_equal(got, want);
}

/* Asserts that event i is of kind with text. */
static void assert_event(const struct got *g, size_t i, const char *kind, const char *text)
{
    assert_field(g, i, "kind", kind);
    assert_string_equal(g->ev[i].text, text);
}

static char *read_data(const char *name)
{
    char path[1024];
    FILE *fp;
    char *buf;
    long n;

    snprintf(path, sizeof(path), "%s/decode/%s", CFW_TEST_DATA, name);
    fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    buf = cfw_xmalloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* Removes ANSI CSI sequences (ESC [ ... final byte), as the framer does. */
static void strip_csi(char *s)
{
    char *w = s;

    for (const char *r = s; *r != '\0';) {
        if (r[0] == '\x1b' && r[1] == '[') {
            r += 2;
            while (*r != '\0' && !((unsigned char)*r >= 0x40 && (unsigned char)*r <= 0x7e)) {
                r++;
            }
            if (*r != '\0') {
                r++;
            }
            continue;
        }
        *w++ = *r++;
    }
    *w = '\0';
}

/*
 * Cuts the record the framer makes from a corpus file: the lines from the first one containing
 * start through the first following one containing end (end NULL: that line alone), joined by
 * '\n', ANSI sequences removed.
 */
static char *cut(const char *file, const char *start, const char *end)
{
    char *all = read_data(file);
    char *s;
    char *e;
    char *out;

    strip_csi(all);
    s = strstr(all, start);
    assert_non_null(s);
    while (s > all && s[-1] != '\n') {
        s--;
    }
    e = end != NULL ? strstr(s, end) : s;
    assert_non_null(e);
    e = strchr(e, '\n');
    if (e == NULL) {
        e = all + strlen(all);
    }
    out = cfw_xstrndup(s, (size_t)(e - s));
    free(all);
    return out;
}

/* Decodes a text record cut from a corpus file; expects one event. */
static void decode_cut(const char *file, const char *start, const char *end, struct got *g)
{
    char *rec = cut(file, start, end);

    assert_int_equal(decode_text(rec, g), 1);
    assert_field(g, 0, "kind", "text");
    assert_string_equal(g->ev[0].text, rec);
    free(rec);
}

/* ---- corpus records ---- */

static void test_corpus_01(void **state)
{
    struct got g = {0};

    (void)state;
    decode_cut("01-deploy-python-no-module-workers-ansi.log", "[ERROR]", "[code: 10021]", &g);
    ASSERT_FIELDS(&g, 0, {"script", "deos-sample-project"}, {"module", "workers"},
                  {"code", "10021"}, {"file", "/session/metadata/entry.py"}, {"line", "8"},
                  {"import", "from workers import Response, WorkerEntrypoint"},
                  {"exception", "ModuleNotFoundError"}, {"message", "No module named 'workers'"},
                  {"source", "test.log"}, {"name", NULL}, {"startup_ms", NULL});
    assert_string_equal(g.ev[0].input, "test.log");
    assert_int_equal(g.ev[0].line, 10);
    assert_int_equal(g.ev[0].line_end, 12);
    got_free(&g);
}

static void test_corpus_05(void **state)
{
    struct got g = {0};

    (void)state;
    decode_cut("05-src-import-modulenotfound-excerpt.log", "File \"", "ModuleNotFoundError", &g);
    ASSERT_FIELDS(&g, 0, {"module", "src"}, {"file", "/session/metadata/main.py"}, {"line", "11"},
                  {"import", "from src.core.config.settings import Settings"},
                  {"exception", "ModuleNotFoundError"}, {"message", "No module named 'src'"},
                  {"script", NULL}, {"code", NULL});
    got_free(&g);
}

static void test_corpus_s01(void **state)
{
    struct got g = {0};

    (void)state;
    decode_cut("S01-SYNTHETIC-deploy-src-import-with-note.log", "[ERROR]", "[code: 10021]", &g);
    ASSERT_FIELDS(&g, 0, {"script", "example-py"}, {"module", "src"}, {"code", "10021"},
                  {"file", "/session/metadata/entry.py"}, {"line", "2"},
                  {"import", "from src.utils.helpers import greet"},
                  {"exception", "ModuleNotFoundError"});
    got_free(&g);

    decode_cut("S01-SYNTHETIC-deploy-src-import-with-note.log", "Total Upload:", NULL, &g);
    ASSERT_FIELDS(&g, 0, {"upload_kib", "1.20"}, {"gzip_kib", "0.60"});
    got_free(&g);
}

static void test_corpus_s02_tail(void **state)
{
    struct got g = {0};
    struct cfw_decode_stats st = {0};
    char *json = read_data("S02-SYNTHETIC-tail-json-python-exception.log");

    (void)state;
    assert_int_equal(decode_json(json, &g, &st), 2);
    assert_int_equal(st.json_records, 1);
    assert_int_equal(st.tail_events, 1);
    assert_int_equal(st.logpush_events, 0);
    assert_int_equal(st.events, 2);
    assert_field(&g, 0, "kind", "exception");
    assert_event(&g, 1, "outcome", "outcome: exception");
    assert_true(strncmp(g.ev[0].text, "PythonError: Traceback (most recent call last):\n", 48) ==
                0);
    for (size_t i = 0; i < 2; i++) {
        ASSERT_FIELDS(&g, i, {"script", "example-py"},
                      {"version", "00000000-0000-4000-8000-000000000000"}, {"outcome", "exception"},
                      {"url", "https://example-py.example.workers.dev/"},
                      {"time", "2025-10-09T08:53:20.100Z"}, {"source", "test.log"}, {"ray", NULL});
    }
    ASSERT_FIELDS(&g, 0, {"module", "src"}, {"file", "/session/metadata/entry.py"}, {"line", "9"},
                  {"import", "from src.db import q"}, {"exception", "ModuleNotFoundError"},
                  {"message", "No module named 'src'"});
    assert_field(&g, 1, "module", NULL);
    free(json);
    got_free(&g);
}

static void test_corpus_s03_logpush(void **state)
{
    struct got g = {0};
    struct cfw_decode_stats st = {0};
    char *json = read_data("S03-SYNTHETIC-logpush-python-exception.log");

    (void)state;
    assert_int_equal(decode_json(json, &g, &st), 2);
    assert_int_equal(st.logpush_events, 1);
    assert_int_equal(st.tail_events, 0);
    ASSERT_FIELDS(&g, 0, {"kind", "exception"}, {"script", "example-py"}, {"module", "src"},
                  {"version", "00000000-0000-4000-8000-000000000000"}, {"ray", "8f0000000000abcd"},
                  {"url", "https://example-py.example.workers.dev/"},
                  {"file", "/session/metadata/entry.py"}, {"line", "9"},
                  {"import", "from src.db import q"}, {"time", "2025-10-09T08:53:20.100Z"});
    ASSERT_FIELDS(&g, 1, {"kind", "outcome"}, {"ray", "8f0000000000abcd"});
    free(json);
    got_free(&g);
}

static void test_corpus_s04(void **state)
{
    struct got g = {0};

    (void)state;
    decode_cut("S04-SYNTHETIC-deploy-python-startup-cpu-limit.log", "[ERROR]", "[code: 10021]", &g);
    ASSERT_FIELDS(&g, 0, {"script", "example-py"}, {"code", "10021"}, {"startup_ms", "1412"},
                  {"module", NULL}, {"file", NULL});
    got_free(&g);
}

static void test_corpus_codes(void **state)
{
    struct got g = {0};

    (void)state;
    decode_cut("16-js-startup-cpu-10021-largest-deps-warning.log", "[ERROR]", "[code: 10021]", &g);
    ASSERT_FIELDS(&g, 0, {"code", "10021"}, {"script", "***"});
    got_free(&g);
    decode_cut("16-js-startup-cpu-10021-largest-deps-warning.log", "Total Upload:", NULL, &g);
    ASSERT_FIELDS(&g, 0, {"upload_kib", "3448.15"}, {"gzip_kib", "766.17"});
    got_free(&g);

    decode_cut("19-size-limit-10027-fragments.log", "[code: 10027]", NULL, &g);
    assert_field(&g, 0, "code", "10027");
    got_free(&g);

    decode_cut("20-multipart-too-large-10021-fragments.log", "multipart", NULL, &g);
    ASSERT_FIELDS(&g, 0, {"code", "10021"}, {"upload_kib", NULL});
    got_free(&g);
    decode_cut("20-multipart-too-large-10021-fragments.log", "Total Upload:", NULL, &g);
    ASSERT_FIELDS(&g, 0, {"upload_kib", "90620.87"}, {"gzip_kib", "23610.36"}, {"code", NULL});
    got_free(&g);

    decode_cut("04-deploy-python-requirements-txt-10021-experimental-warning.log", "[ERROR]",
               "[code: 10021]", &g);
    ASSERT_FIELDS(&g, 0, {"script", "yyyyyyyyy"}, {"code", "10021"});
    got_free(&g);

    decode_cut("03-pywrangler-deploy-success-vendored.log", "Worker Startup Time:", NULL, &g);
    assert_field(&g, 0, "startup_ms", "507");
    got_free(&g);

    decode_cut("14-pywrangler-dev-uv-no-module-named-python.log", "Traceback",
               "ModuleNotFoundError", &g);
    ASSERT_FIELDS(&g, 0, {"module", "python"}, {"exception", "ModuleNotFoundError"});
    assert_field(&g, 0, "file", NULL); /* the frame is <string>, not user code */
    got_free(&g);
}

static void test_corpus_23_logpush_ok(void **state)
{
    struct got g = {0};
    struct cfw_decode_stats st = {0};
    char *rec = cut("23-logpush-http-ndjson-workers-trace-events.log", "87ed87f80cf22d84", NULL);

    (void)state;
    assert_int_equal(decode_json(rec, &g, &st), 1);
    assert_int_equal(st.logpush_events, 1);
    assert_event(&g, 0, "log", "bar foo");
    ASSERT_FIELDS(&g, 0, {"level", "log"}, {"outcome", "ok"}, {"script", "test"},
                  {"version", "1e7519b3-08e2-441d-ae10-7c8c6d3b7e17"}, {"ray", "87ed87f80cf22d84"},
                  {"url", "https://test.workers.dev/"}, {"time", "2024-05-05T03:09:20.011Z"});
    free(rec);
    got_free(&g);
}

/* ---- JSON shapes ---- */

static void test_tail_exceptions_logs(void **state)
{
    struct got g = {0};
    struct cfw_decode_stats st = {0};
    const char *json =
        "{\"outcome\":\"exceededCpu\",\"scriptName\":\"w1\",\"scriptVersion\":{\"id\":\"v-1\"},"
        "\"eventTimestamp\":1714878560011,"
        "\"event\":{\"request\":{\"url\":\"https://w1.example/x\",\"method\":\"GET\"}},"
        "\"exceptions\":["
        "{\"name\":\"TypeError\",\"message\":\"x is not a function\",\"timestamp\":1,"
        "\"stack\":\"TypeError: x is not a function\\n    at fetch (index.js:3:5)\"},"
        "{\"name\":\"Error\",\"message\":\"Worker exceeded CPU time limit.\",\"timestamp\":2}],"
        "\"logs\":["
        "{\"message\":[\"hello\",\"world\"],\"level\":\"log\",\"timestamp\":3},"
        "{\"message\":[\"n=\",42,{\"k\":[1,2]},null,true,1.5],\"level\":\"warn\",\"timestamp\":4},"
        "{\"message\":[\"ModuleNotFoundError: No module named 'src.core'\"],\"level\":\"error\"}]}";

    (void)state;
    assert_int_equal(decode_json(json, &g, &st), 6);
    assert_int_equal(st.tail_events, 1);
    assert_int_equal(st.events, 6);
    for (size_t i = 0; i < 6; i++) {
        ASSERT_FIELDS(&g, i, {"script", "w1"}, {"version", "v-1"}, {"outcome", "exceededCpu"},
                      {"url", "https://w1.example/x"}, {"time", "2024-05-05T03:09:20.011Z"},
                      {"source", "test.log"});
    }
    assert_event(&g, 0, "exception",
                 "TypeError: x is not a function\nTypeError: x is not a function\n"
                 "    at fetch (index.js:3:5)");
    ASSERT_FIELDS(&g, 0, {"exception", "TypeError"}, {"message", "x is not a function"},
                  {"level", NULL});
    assert_event(&g, 1, "exception", "Error: Worker exceeded CPU time limit.");
    /* the text has no `<Name>Error:` line; the JSON name is the fallback */
    ASSERT_FIELDS(&g, 1, {"exception", "Error"}, {"message", "Worker exceeded CPU time limit."});
    assert_event(&g, 2, "log", "hello world");
    ASSERT_FIELDS(&g, 2, {"level", "log"}, {"exception", NULL});
    assert_event(&g, 3, "log", "n= 42 {\"k\":[1,2]} null true 1.5");
    assert_field(&g, 3, "level", "warn");
    ASSERT_FIELDS(&g, 4, {"level", "error"}, {"module", "src.core"},
                  {"exception", "ModuleNotFoundError"});
    assert_event(&g, 5, "outcome", "outcome: exceededCpu");
    assert_field(&g, 5, "level", NULL);
    got_free(&g);
}

static void test_tail_outcomes(void **state)
{
    struct got g = {0};
    struct cfw_decode_stats st = {0};

    (void)state;
    /* outcome exception without exceptions still yields its outcome event */
    assert_int_equal(
        decode_json("{\"outcome\":\"exception\",\"scriptName\":\"a\",\"exceptions\":[],"
                    "\"logs\":[],\"eventTimestamp\":1000}",
                    &g, &st),
        1);
    assert_event(&g, 0, "outcome", "outcome: exception");
    ASSERT_FIELDS(&g, 0, {"script", "a"}, {"time", "1970-01-01T00:00:01.000Z"});
    got_free(&g);

    assert_int_equal(decode_json("{\"outcome\":\"ok\",\"exceptions\":[],\"logs\":[]}", &g, &st), 0);
    assert_int_equal(decode_json("{\"outcome\":\"canceled\",\"logs\":[]}", &g, &st), 0);
    assert_int_equal(st.tail_events, 3);
    assert_int_equal(st.events, 1);
    got_free(&g);

    /* a record time from the framer is kept when the JSON has none */
    {
        struct cfw_record rec = {.kind = CFW_REC_JSON,
                                 .text = "{\"outcome\":\"scriptNotFound\"}",
                                 .len = strlen("{\"outcome\":\"scriptNotFound\"}"),
                                 .input = "in",
                                 .time = "13:13:43.817"};

        assert_int_equal(cfw_decode_record(&rec, collect, &g, NULL), 1);
        ASSERT_FIELDS(&g, 0, {"time", "13:13:43.817"}, {"outcome", "scriptNotFound"},
                      {"source", "in"});
        got_free(&g);
    }
}

static void test_logpush_lowercase(void **state)
{
    struct got g = {0};
    struct cfw_decode_stats st = {0};
    const char *json =
        "{\"outcome\":\"exception\",\"scriptname\":\"lp\",\"scriptversion\":{\"id\":\"v9\"},"
        "\"eventtimestampms\":1714878560011,"
        "\"event\":{\"rayid\":\"ray1\",\"request\":{\"url\":\"https://lp.example/\"}},"
        "\"exceptions\":[{\"name\":\"PythonError\",\"message\":\"Traceback (most recent call "
        "last):\\n  File \\\"/session/metadata/main.py\\\", line 4, in on_fetch\\n    import "
        "src.app\\nModuleNotFoundError: No module named 'src'\",\"timestampms\":1}],"
        "\"logs\":[{\"level\":\"error\",\"message\":[\"boom\"],\"timestampms\":2}]}";

    (void)state;
    assert_int_equal(decode_json(json, &g, &st), 3);
    assert_int_equal(st.logpush_events, 1);
    assert_int_equal(st.tail_events, 0);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_FIELDS(&g, i, {"script", "lp"}, {"version", "v9"}, {"ray", "ray1"},
                      {"url", "https://lp.example/"}, {"outcome", "exception"},
                      {"time", "2024-05-05T03:09:20.011Z"});
    }
    ASSERT_FIELDS(&g, 0, {"kind", "exception"}, {"module", "src"},
                  {"file", "/session/metadata/main.py"}, {"line", "4"},
                  {"import", "import src.app"});
    ASSERT_FIELDS(&g, 1, {"kind", "log"}, {"level", "error"});
    assert_string_equal(g.ev[1].text, "boom");
    assert_field(&g, 2, "kind", "outcome");
    got_free(&g);

    /* mixed case, as in Cloudflare's truncation example */
    assert_int_equal(decode_json("{\"Outcome\":\"ok\",\"ScriptName\":\"m\",\"Exceptions\":"
                                 "[{\"name\":\"Error\",\"message\":\"x\"}],\"Logs\":[]}",
                                 &g, &st),
                     1);
    assert_int_equal(st.logpush_events, 2);
    assert_string_equal(g.ev[0].text, "Error: x");
    assert_field(&g, 0, "script", "m");
    got_free(&g);
}

static void test_observability(void **state)
{
    struct got g = {0};
    struct cfw_decode_stats st = {0};
    const char *json =
        "{\"timestamp\":1714878560011,\"dataset\":\"cloudflare-workers\",\"source\":{},"
        "\"$metadata\":{\"id\":\"m1\",\"service\":\"svc\",\"level\":\"error\","
        "\"message\":\"GET /api\",\"error\":\"ModuleNotFoundError: No module named 'src'\","
        "\"requestId\":\"req-1\",\"type\":\"cf-worker-event\"},"
        "\"$workers\":{\"scriptName\":\"obs-py\",\"outcome\":\"exception\","
        "\"scriptVersion\":{\"id\":\"v-obs\"},\"requestId\":\"req-1\","
        "\"event\":{\"request\":{\"url\":\"https://obs.example/api\"}}}}";

    (void)state;
    assert_int_equal(decode_json(json, &g, &st), 3);
    assert_int_equal(st.observability_events, 1);
    for (size_t i = 0; i < 3; i++) {
        ASSERT_FIELDS(&g, i, {"script", "obs-py"}, {"version", "v-obs"}, {"outcome", "exception"},
                      {"url", "https://obs.example/api"}, {"request_id", "req-1"},
                      {"time", "2024-05-05T03:09:20.011Z"});
    }
    assert_event(&g, 0, "exception", "ModuleNotFoundError: No module named 'src'");
    ASSERT_FIELDS(&g, 0, {"module", "src"}, {"level", "error"});
    assert_event(&g, 1, "log", "GET /api");
    assert_field(&g, 2, "kind", "outcome");
    got_free(&g);

    /* only $metadata: the service names the script; a non-string message is compact JSON */
    assert_int_equal(decode_json("{\"$metadata\":{\"service\":\"svc\",\"level\":\"info\","
                                 "\"message\":{\"a\":1}}}",
                                 &g, &st),
                     1);
    ASSERT_FIELDS(&g, 0, {"script", "svc"}, {"kind", "log"}, {"level", "info"});
    assert_string_equal(g.ev[0].text, "{\"a\":1}");
    assert_field(&g, 0, "time", NULL);
    got_free(&g);

    /* same error and message: one event */
    assert_int_equal(decode_json("{\"$metadata\":{\"message\":\"e\",\"error\":\"e\"}}", &g, &st),
                     1);
    assert_field(&g, 0, "kind", "exception");
    got_free(&g);
    assert_int_equal(st.observability_events, 3);
}

static void test_validation_unknown_invalid(void **state)
{
    struct got g = {0};
    struct cfw_decode_stats st = {0};

    (void)state;
    assert_int_equal(decode_json("{\"content\":\"tests\"}", &g, &st), 0);
    assert_int_equal(decode_json("{\"content\": \"test\"}\n", &g, &st), 0);
    assert_int_equal(st.json_records, 2);
    assert_int_equal(st.json_invalid, 0);
    assert_int_equal(st.events, 0);

    assert_int_equal(decode_json("{\"content\":\"x\",\"more\":1}", &g, &st), 1);
    assert_event(&g, 0, "json", "{\"content\":\"x\",\"more\":1}");
    got_free(&g);

    assert_int_equal(decode_json("{\"foo\": [1, 2], \"msg\": \"ValueError: bad\"}", &g, &st), 1);
    assert_event(&g, 0, "json", "{\"foo\": [1, 2], \"msg\": \"ValueError: bad\"}");
    got_free(&g);
    assert_int_equal(decode_json("[1,2,3]", &g, &st), 1);
    assert_field(&g, 0, "kind", "json");
    got_free(&g);
    assert_int_equal(decode_json("\"just a string\"", &g, &st), 1);
    assert_field(&g, 0, "kind", "json");
    got_free(&g);
    /* a key that looks like a tail event but has the wrong type is not one */
    assert_int_equal(decode_json("{\"logs\":\"nope\"}", &g, &st), 1);
    assert_field(&g, 0, "kind", "json");
    got_free(&g);
    assert_int_equal(st.tail_events, 0);

    /* invalid JSON is passed on as text and counted */
    assert_int_equal(decode_json("{\"outcome\": \"exception\", [code: 10021]", &g, &st), 1);
    ASSERT_FIELDS(&g, 0, {"kind", "text"}, {"code", "10021"});
    assert_string_equal(g.ev[0].text, "{\"outcome\": \"exception\", [code: 10021]");
    got_free(&g);
    assert_int_equal(decode_json("{\"a\":1} trailing", &g, &st), 1);
    assert_field(&g, 0, "kind", "text");
    got_free(&g);
    assert_int_equal(decode_json("{\"a\":\"\\u0000\"}", &g, &st), 1);
    assert_field(&g, 0, "kind", "text");
    got_free(&g);
    assert_int_equal(st.json_invalid, 3);
    assert_int_equal(st.json_records, 10);
}

static void test_builds_line(void **state)
{
    struct got g = {0};
    struct cfw_decode_stats st = {0};

    (void)state;
    assert_int_equal(
        decode_json("[1755741508.948, \"Failed: error occurred while running deploy command\"]", &g,
                    &st),
        1);
    assert_event(&g, 0, "text", "Failed: error occurred while running deploy command");
    assert_field(&g, 0, "time", "2025-08-21T01:58:28.948Z");
    got_free(&g);
    assert_int_equal(decode_json("[1755741508948, \"  [code: 10021]\"]", &g, &st), 1);
    ASSERT_FIELDS(&g, 0, {"time", "2025-08-21T01:58:28.948Z"}, {"code", "10021"});
    got_free(&g);
    assert_int_equal(decode_json("[\"x\", 1]", &g, &st), 1);
    assert_field(&g, 0, "kind", "json");
    got_free(&g);
}

/* ---- text-derived fields ---- */

static void test_flattened_traceback(void **state)
{
    struct got g = {0};

    (void)state;
    decode_text("Uncaught Error: PythonError: Traceback (most recent call last): File "
                "\"/lib/python313.zip/_pyodide/_base.py\", line 523, in eval_code "
                ".run(globals, locals) ~~~^^^^^^^^^^^^^^^^^ File \"/session/metadata/main.py\", "
                "line 3, in <module> from src.x import y ModuleNotFoundError: No module named "
                "'src' (Code: 10021)",
                &g);
    ASSERT_FIELDS(&g, 0, {"file", "/session/metadata/main.py"}, {"line", "3"},
                  {"import", "from src.x import y"}, {"module", "src"}, {"code", "10021"},
                  {"exception", "ModuleNotFoundError"}, {"message", "No module named 'src'"});
    got_free(&g);

    /* the user frame has no source line: no import */
    decode_text("Traceback (most recent call last): File \"/session/metadata/entry.py\", line 7, "
                "in <module> ImportError: cannot import name 'Foo' from 'bar' [code: 10021]",
                &g);
    ASSERT_FIELDS(&g, 0, {"file", "/session/metadata/entry.py"}, {"line", "7"}, {"import", NULL},
                  {"exception", "ImportError"}, {"message", "cannot import name 'Foo' from 'bar'"},
                  {"name", "Foo"});
    got_free(&g);

    /* a later library frame on the line: the user frame's source ends where it starts */
    decode_text("Traceback (most recent call last): File \"/session/metadata/a.py\", line 1, in "
                "<module> import lib File \"/lib/python3.13/site-packages/lib/__init__.py\", line "
                "2, in <module> KeyError: 'k'",
                &g);
    ASSERT_FIELDS(&g, 0, {"file", "/session/metadata/a.py"}, {"import", "import lib"},
                  {"exception", "KeyError"}, {"message", "'k'"});
    got_free(&g);
}

static void test_import_error_name(void **state)
{
    struct got g = {0};

    (void)state;
    decode_text("Traceback (most recent call last):\n"
                "  File \"/session/metadata/entry.py\", line 5, in <module>\n"
                "    from helpers import Greeter\n"
                "ImportError: cannot import name 'Greeter' from 'helpers' "
                "(/session/metadata/helpers.py)",
                &g);
    assert_field(&g, 0, "exception", "ImportError");
    assert_field(&g, 0, "message",
                 "cannot import name 'Greeter' from 'helpers' (/session/metadata/helpers.py)");
    ASSERT_FIELDS(&g, 0, {"name", "Greeter"}, {"module", NULL},
                  {"file", "/session/metadata/entry.py"}, {"line", "5"},
                  {"import", "from helpers import Greeter"});
    got_free(&g);
}

struct extract_case {
    const char *text;
    const char *key;
    const char *want; /* NULL: the field must be absent */
};

static void test_extract_table(void **state)
{
    static const struct extract_case cases[] = {
        /* script */
        {"X [ERROR] A request to the Cloudflare API (/accounts/abc/workers/scripts/my-w) failed.",
         "script", "my-w"},
        {"A request to the Cloudflare API (/accounts/a/workers/scripts/w2/versions) failed",
         "script", "w2"},
        {"A request to the Cloudflare API (/accounts/a/workers/scripts/) failed", "script", NULL},
        {"GET /accounts/a/workers/scripts/w3 - not a wrangler header", "script", NULL},
        /* code */
        {"oops [code: 10021]", "code", "10021"},
        {"oops (Code: 10068)", "code", "10068"},
        {"oops [code: ]", "code", NULL},
        {"oops [code: 10021", "code", NULL},
        {"error code: 10021", "code", NULL},
        {"[code: 1234567890123456789012345678901234567890]", "code", NULL},
        /* exception line */
        {"  ValueError: bad value", "exception", "ValueError"},
        {"  ValueError: bad value", "message", "bad value"},
        {"Error: Script startup exceeded CPU time limit.", "exception", NULL},
        {"Uncaught TypeError: nope", "exception", NULL},
        {"pkg.mod.CustomException: x", "exception", "pkg.mod.CustomException"},
        {"SystemExit: 1", "exception", "SystemExit"},
        {"KeyboardInterrupt: ", "exception", "KeyboardInterrupt"},
        {"DeprecationWarning: old", "exception", "DeprecationWarning"},
        {"ValueError:no space", "exception", NULL},
        {"1Error: x", "exception", NULL},
        {"first\nKeyError: 'a'\nnote\nOSError: disk\ntrailer", "exception", "OSError"},
        {"first\nKeyError: 'a'\nnote\nOSError: disk\ntrailer", "message", "disk"},
        {"Uncaught Error: PythonError: Traceback (most recent call last):\n"
         "  File \"/session/metadata/x.py\", line 1, in <module>\n"
         "    import nope\n"
         "ModuleNotFoundError: No module named 'nope'",
         "exception", "ModuleNotFoundError"},
        {"PythonError: Traceback (most recent call last):", "exception", "PythonError"},
        /* module and name */
        {"ModuleNotFoundError: No module named 'src.core.config'", "module", "src.core.config"},
        {"No module named \"dq\"", "module", "dq"},
        {"No module named ''", "module", NULL},
        {"No module named 'unterminated\n'", "module", NULL},
        {"No module named 'a'\nNo module named 'b'", "module", "b"},
        {"ImportError: cannot import name 'X' from 'y'", "name", "X"},
        {"ImportError: cannot import name 'X' from 'y'", "module", NULL},
        /* startup and upload */
        {"Worker Startup Time: 507 ms", "startup_ms", "507"},
        {"Worker Startup Time: ms", "startup_ms", NULL},
        {"Worker Startup Time: 99999999999999999999999 ms", "startup_ms", NULL},
        {"Python Worker startup exceeded CPU limit 1412<=1000 with snapshot none", "startup_ms",
         "1412"},
        {"startup exceeded CPU limit 1412", "startup_ms", NULL},
        {"Total Upload: 29.85 KiB / gzip: 7.29 KiB", "upload_kib", "29.85"},
        {"Total Upload: 29.85 KiB / gzip: 7.29 KiB", "gzip_kib", "7.29"},
        {"Total Upload: 12 KiB", "upload_kib", "12"},
        {"Total Upload: 12 KiB", "gzip_kib", NULL},
        {"Total Upload: 1.2.3 KiB / gzip: 1 KiB", "upload_kib", NULL},
        {"Total Upload: . KiB", "upload_kib", NULL},
        /* frames */
        {"  File \"/session/metadata/\", line 3, in x", "file", NULL},
        {"  File \"/session/metadata/a.py\", line x, in y", "file", NULL},
        {"  File \"/session/metadata/a.py\", line 99999999999999999999999, in y", "line", NULL},
        {"  File \"/session/metadata/a.py\", line 4, in y\n    import b\n", "import", "import b"},
        {"  File \"/session/metadata/a.py\", line 4, in y", "file", "/session/metadata/a.py"},
        {"  File \"/session/metadata/a.py\", line 4, in y", "import", NULL},
    };
    struct cfw_fields f = {0};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got;

        cfw_extract_fields(cases[i].text, strlen(cases[i].text), &f);
        got = cfw_fields_get(&f, cases[i].key);
        if (cases[i].want == NULL && got != NULL) {
            fail_msg("case %zu: %s=\"%s\", want absent", i, cases[i].key, got);
        }
        if (cases[i].want != NULL && (got == NULL || strcmp(got, cases[i].want) != 0)) {
            fail_msg("case %zu: %s=\"%s\", want \"%s\"", i, cases[i].key,
                     got != NULL ? got : "(absent)", cases[i].want);
        }
        cfw_fields_clear(&f);
    }
}

static void test_frame_selection(void **state)
{
    struct cfw_fields f = {0};
    /* the last user frame before the exception line; a frame after it does not count */
    static const char chained[] =
        "Traceback (most recent call last):\n"
        "  File \"/session/metadata/entry.py\", line 2, in <module>\n"
        "    from app import run\n"
        "  File \"/session/metadata/app.py\", line 10, in <module>\n"
        "    from src.db import q\n"
        "  File \"/lib/python3.13/importlib/__init__.py\", line 88, in import_module\n"
        "    return _bootstrap._gcd_import(name[level:], package, level)\n"
        "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        "ModuleNotFoundError: No module named 'src'\n"
        "  File \"/session/metadata/later.py\", line 99, in after\n";
    static const char next_is_frame[] = "  File \"/session/metadata/a.py\", line 1, in <module>\n"
                                        "  File \"/lib/b.py\", line 2, in <module>\n"
                                        "NameError: name 'x' is not defined";
    static const char next_is_carets[] = "  File \"/session/metadata/a.py\", line 1, in <module>\n"
                                         "    ~~~^^^\n"
                                         "NameError: x";
    static const char next_is_exception[] =
        "  File \"/session/metadata/a.py\", line 1, in <module>\n"
        "SyntaxError: invalid syntax";

    (void)state;
    cfw_extract_fields(chained, strlen(chained), &f);
    assert_string_equal(cfw_fields_get(&f, "file"), "/session/metadata/app.py");
    assert_string_equal(cfw_fields_get(&f, "line"), "10");
    assert_string_equal(cfw_fields_get(&f, "import"), "from src.db import q");
    assert_string_equal(cfw_fields_get(&f, "exception"), "ModuleNotFoundError");
    cfw_fields_clear(&f);

    cfw_extract_fields(next_is_frame, strlen(next_is_frame), &f);
    assert_string_equal(cfw_fields_get(&f, "file"), "/session/metadata/a.py");
    assert_null(cfw_fields_get(&f, "import"));
    cfw_fields_clear(&f);
    cfw_extract_fields(next_is_carets, strlen(next_is_carets), &f);
    assert_null(cfw_fields_get(&f, "import"));
    cfw_fields_clear(&f);
    cfw_extract_fields(next_is_exception, strlen(next_is_exception), &f);
    assert_string_equal(cfw_fields_get(&f, "line"), "1");
    assert_null(cfw_fields_get(&f, "import"));
    assert_string_equal(cfw_fields_get(&f, "exception"), "SyntaxError");
    cfw_fields_clear(&f);

    /* no frame before the exception line: none taken from after it */
    {
        static const char t[] = "ValueError: x\n  File \"/session/metadata/a.py\", line 1, in y\n";

        cfw_extract_fields(t, strlen(t), &f);
    }
    assert_null(cfw_fields_get(&f, "file"));
    cfw_fields_clear(&f);
}

/* The framer and the decoder read a traceback with one grammar (pytb.h): where the framer
 * ends the block, the decoder finds the exception line. */
struct framed {
    size_t n;
    char *text[8];
};

static void on_framed(const struct cfw_record *rec, void *arg)
{
    struct framed *fr = arg;

    if (fr->n < 8) {
        fr->text[fr->n++] = cfw_xstrndup(rec->text, rec->len);
    }
}

static void test_traceback_grammar_shared(void **state)
{
#define TB "Traceback (most recent call last):\n" \
           "  File \"/session/metadata/entry.py\", line 5, in on_fetch\n"
    static const char *const cases[][4] = {
        /* input, the traceback record's last line, exception, message */
        {TB "    return next(it)\nStopIteration\n\nGET /x 200\n", "StopIteration", "StopIteration",
         NULL},
        {TB "    raise Boom(\"disk full\")\nBoom: disk full\n\nGET /x 200\n", "Boom: disk full",
         "Boom", "disk full"},
        {TB "    await js.fetch(u)\n    ~~~~~~~~^^^\npyodide.ffi.JsException: TypeError: bad\n",
         "pyodide.ffi.JsException: TypeError: bad", "pyodide.ffi.JsException", "TypeError: bad"},
        /* a note after the exception line belongs to the block and is not the exception */
        {TB "    import yaml\nModuleNotFoundError: No module named 'yaml'\nNote: vendor it\n",
         "Note: vendor it", "ModuleNotFoundError", "No module named 'yaml'"},
    };
#undef TB

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct framed fr = {0};
        struct cfw_framer *f = cfw_framer_new("t", NULL, on_framed, &fr);
        struct cfw_fields fields = {0};
        const char *last;

        cfw_framer_feed(f, cases[i][0], strlen(cases[i][0]));
        cfw_framer_finish(f);
        cfw_framer_free(f);
        assert_true(fr.n >= 1);
        last = strrchr(fr.text[0], '\n') != NULL ? strrchr(fr.text[0], '\n') + 1 : fr.text[0];
        assert_string_equal(last, cases[i][1]);
        cfw_extract_fields(fr.text[0], strlen(fr.text[0]), &fields);
        assert_string_equal_or_null(cfw_fields_get(&fields, "exception"), cases[i][2]);
        assert_string_equal_or_null(cfw_fields_get(&fields, "message"), cases[i][3]);
        cfw_fields_clear(&fields);
        for (size_t k = 0; k < fr.n; k++) {
            free(fr.text[k]);
        }
    }
}

static void test_existing_fields_kept(void **state)
{
    struct cfw_fields f = {0};
    static const char text[] =
        "A request to the Cloudflare API (/accounts/a/workers/scripts/from-text) failed.\n"
        "  ModuleNotFoundError: No module named 'src'\n   [code: 10021]";

    (void)state;
    cfw_fields_set(&f, "script", "from-json");
    cfw_fields_set(&f, "code", "");
    cfw_fields_set(&f, "module", "kept");
    cfw_extract_fields(text, strlen(text), &f);
    assert_string_equal(cfw_fields_get(&f, "script"), "from-json");
    assert_string_equal(cfw_fields_get(&f, "code"), "10021"); /* empty counts as absent */
    assert_string_equal(cfw_fields_get(&f, "module"), "kept");
    assert_string_equal(cfw_fields_get(&f, "exception"), "ModuleNotFoundError");
    cfw_fields_clear(&f);

    cfw_extract_fields(NULL, 5, &f);
    cfw_extract_fields(text, 0, &f);
    assert_int_equal(f.n, 0);
    cfw_fields_clear(&f);
}

/* ---- hostile input ---- */

/* Hostile JSON values: numbers, missing keys and wrong types (st counts across the calls). */
static void hostile_json_values(struct got *g, struct cfw_decode_stats *st)
{
    /* numbers beyond any sane time: no time field */
    assert_int_equal(decode_json("{\"outcome\":\"exception\",\"eventTimestamp\":1e300}", g, st), 1);
    assert_field(g, 0, "time", NULL);
    got_free(g);
    assert_int_equal(decode_json("{\"outcome\":\"x\",\"eventTimestamp\":-5}", g, st), 1);
    assert_field(g, 0, "time", NULL);
    got_free(g);
    /* an integer jansson cannot hold: invalid JSON, decoded as text */
    assert_int_equal(
        decode_json("{\"outcome\":\"x\",\"eventTimestamp\":99999999999999999999999999}", g, st), 1);
    assert_field(g, 0, "kind", "text");
    got_free(g);
    assert_int_equal(st->json_invalid, 1);

    /* missing keys and wrong types everywhere */
    assert_int_equal(decode_json("{\"outcome\":5,\"scriptName\":7,\"scriptVersion\":\"v\","
                                 "\"event\":[1],\"exceptions\":[{},5,\"s\",null,{\"name\":3},"
                                 "{\"message\":null}],\"logs\":[{},{\"level\":3},7,[]]}",
                                 g, st),
                     0);
    assert_int_equal(st->tail_events, 3);
    assert_int_equal(decode_json("{\"outcome\":\"exception\",\"exceptions\":{\"name\":\"E\"},"
                                 "\"logs\":\"x\",\"event\":{\"request\":\"u\"}}",
                                 g, st),
                     1);
    ASSERT_FIELDS(g, 0, {"kind", "outcome"}, {"url", NULL});
    got_free(g);

    /* non-string messages and names */
    assert_int_equal(decode_json("{\"exceptions\":[{\"message\":{\"deep\":[1,{\"x\":null}]}},"
                                 "{\"name\":\"E\",\"message\":123}],"
                                 "\"logs\":[{\"message\":7},{\"message\":{\"a\":\"b\"}},"
                                 "{\"message\":[]},{\"message\":[[[]]]}]}",
                                 g, st),
                     6);
    assert_string_equal(g->ev[0].text, "{\"deep\":[1,{\"x\":null}]}");
    assert_string_equal(g->ev[1].text, "E: 123");
    ASSERT_FIELDS(g, 1, {"exception", "E"}, {"message", NULL});
    assert_string_equal(g->ev[2].text, "7");
    assert_string_equal(g->ev[3].text, "{\"a\":\"b\"}");
    assert_string_equal(g->ev[4].text, "");
    assert_string_equal(g->ev[5].text, "[[]]");
    got_free(g);
}

/* A log event whose Message is an array nested depth deep. */
static void nested_message(struct cfw_buf *b, size_t depth)
{
    cfw_buf_reset(b);
    cfw_buf_puts(b, "{\"Outcome\":\"ok\",\"Logs\":[{\"Level\":\"log\",\"Message\":[");
    buf_put_repeat(b, "[", depth);
    buf_put_repeat(b, "]", depth);
    cfw_buf_puts(b, "]}]}");
}

/* Hostile JSON nesting: arrays in Message within and beyond the depth cap, brackets in strings. */
static void hostile_json_depth(struct got *g, struct cfw_decode_stats *st, struct cfw_buf *b)
{
    /* deep arrays in Message: within the depth cap they are dumped, beyond it the record is text */
    nested_message(b, 50);
    assert_int_equal(decode_json(b->data, g, st), 1);
    assert_field(g, 0, "kind", "log");
    assert_int_equal(g->ev[0].len, 100);
    got_free(g);
    nested_message(b, 5000);
    *st = (struct cfw_decode_stats){0};
    assert_int_equal(decode_json(b->data, g, st), 1);
    assert_field(g, 0, "kind", "text");
    assert_int_equal(st->json_invalid, 1);
    got_free(g);
    /* brackets inside strings do not count as depth */
    cfw_buf_reset(b);
    cfw_buf_puts(b, "{\"logs\":[{\"message\":[\"");
    buf_put_repeat(b, "[{\\\"", 500);
    cfw_buf_puts(b, "\"]}]}");
    assert_int_equal(decode_json(b->data, g, st), 1);
    assert_field(g, 0, "kind", "log");
    assert_int_equal(g->ev[0].len, 1500);
    got_free(g);
}

/* Hostile JSON sizes: a long message, too many events, a record over the size cap. */
static void hostile_json_caps(struct got *g, struct cfw_decode_stats *st, struct cfw_buf *b)
{
    /* a long message is capped at a character boundary (numbers grow when dumped: 0.1 is
     * 0.10000000000000001) */
    cfw_buf_reset(b);
    cfw_buf_puts(b, "{\"logs\":[{\"message\":[");
    buf_put_repeat(b, "0.1,", 30000);
    cfw_buf_puts(b, "\"");
    buf_put_repeat(b, "\xe2\x82\xac", 200000);
    cfw_buf_puts(b, "\"]}]}");
    assert_int_equal(decode_json(b->data, g, st), 1);
    assert_field(g, 0, "kind", "log");
    assert_true(g->ev[0].len <= 1024 * 1024);
    assert_true(g->ev[0].len > 1024 * 1024 - 3);
    assert_true(strncmp(g->ev[0].text, "0.10000000000000001 0.1", 23) == 0);
    got_free(g);

    /* too many events from one record are capped */
    cfw_buf_reset(b);
    cfw_buf_puts(b, "{\"outcome\":\"exception\",\"logs\":[");
    for (int i = 0; i < 3000; i++) {
        cfw_buf_printf(b, "%s{\"level\":\"log\",\"message\":[\"line %d\"]}", i > 0 ? "," : "", i);
    }
    cfw_buf_puts(b, "]}");
    *st = (struct cfw_decode_stats){0};
    assert_int_equal(decode_json(b->data, g, st), 1000);
    assert_int_equal(st->events, 1000);
    assert_string_equal(g->ev[999].text, "line 999");
    got_free(g);

    /* a JSON record beyond the size cap is text */
    cfw_buf_reset(b);
    cfw_buf_puts(b, "{\"content\":\"");
    buf_put_repeat(b, "a", 1100 * 1024);
    cfw_buf_puts(b, "\"}");
    *st = (struct cfw_decode_stats){0};
    assert_int_equal(decode_json(b->data, g, st), 1);
    assert_field(g, 0, "kind", "text");
    assert_int_equal(st->json_invalid, 1);
    assert_true(g->ev[0].len <= 1024 * 1024);
    got_free(g);
}

static void test_hostile_json(void **state)
{
    struct got g = {0};
    struct cfw_decode_stats st = {0};
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    (void)state;
    hostile_json_values(&g, &st);
    hostile_json_depth(&g, &st, &b);
    hostile_json_caps(&g, &st, &b);
    cfw_buf_free(&b);
}

/* Hostile text: invalid UTF-8, a NUL, control characters and binary junk in many sizes. */
static void hostile_text_bytes(struct got *g)
{
    uint32_t seed = 12345;
    char *junk;
    static const char bad[] = "ModuleNotFoundError: No module named '\xff\xfe'\n"
                              "  File \"/session/metadata/\xc3\x28.py\", line 3, in x\n"
                              "    from \xed\xa0\x80 import y\n"
                              "\xf4\x90\x80\x80 [code: 10021] \xc0\xaf";

    /* invalid UTF-8: the text and every field come out valid */
    assert_int_equal(decode_text(bad, g), 1);
    ASSERT_FIELDS(g, 0, {"code", "10021"}, {"module", "\xef\xbf\xbd\xef\xbf\xbd"});
    assert_true(strstr(g->ev[0].text, "\xef\xbf\xbd") != NULL);
    got_free(g);
    assert_int_equal(decode_kind(CFW_REC_JSON, bad, strlen(bad), g, NULL), 1);
    assert_field(g, 0, "kind", "text");
    got_free(g);

    /* a NUL inside a record becomes a space */
    assert_int_equal(decode_kind(CFW_REC_TEXT, "a\0b [code: 1]", 13, g, NULL), 1);
    assert_string_equal(g->ev[0].text, "a b [code: 1]");
    assert_field(g, 0, "code", "1");
    got_free(g);

    /* control characters do not reach field values */
    assert_int_equal(
        decode_json("{\"outcome\":\"exc\\u0001\\u001b[31m\",\"scriptName\":\"a\\tb\"}", g, NULL),
        1);
    ASSERT_FIELDS(g, 0, {"outcome", "exc  [31m"}, {"script", "a b"});
    got_free(g);

    /* binary junk without NUL bytes, in many sizes */
    junk = cfw_xmalloc(70001);
    for (size_t round = 0; round < 40; round++) {
        size_t n = round * round * 40 + round;

        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            junk[i] = (char)(1 + (seed >> 16) % 255);
        }
        junk[n] = '\0';
        decode_kind(CFW_REC_TEXT, junk, n, g, NULL);
        got_free(g);
        decode_kind(CFW_REC_JSON, junk, n, g, NULL);
        got_free(g);
    }
    free(junk);
}

/* Fragments of every pattern, cut at every length: valid fields, and all of them when whole. */
static void hostile_text_fragments(void)
{
    static const char full[] =
        "A request to the Cloudflare API (/accounts/a/workers/scripts/w/versions) failed.\n"
        "Traceback (most recent call last): File \"/session/metadata/m.py\", line 3, in "
        "<module> "
        "from src.x import y ModuleNotFoundError: No module named 'src' (Code: 10021)\n"
        "ImportError: cannot import name 'N' from 'm'\nWorker Startup Time: 5 ms\n"
        "startup exceeded CPU limit 9<=1\nTotal Upload: 1.5 KiB / gzip: 0.5 KiB [code: 7]";
    struct cfw_fields f = {0};

    for (size_t n = 0; n <= sizeof(full) - 1; n++) {
        char *copy = cfw_xstrndup(full, n); /* exact size: ASan catches reads past n */

        cfw_extract_fields(copy, n, &f);
        for (size_t i = 0; i < f.n; i++) {
            assert_true(valid_utf8(f.v[i].value, strlen(f.v[i].value)));
        }
        cfw_fields_clear(&f);
        free(copy);
    }
    cfw_extract_fields(full, sizeof(full) - 1, &f);
    assert_string_equal(cfw_fields_get(&f, "script"), "w");
    assert_string_equal(cfw_fields_get(&f, "code"), "10021");
    assert_string_equal(cfw_fields_get(&f, "import"), "from src.x import y");
    assert_string_equal(cfw_fields_get(&f, "name"), "N");
    assert_string_equal(cfw_fields_get(&f, "startup_ms"), "5");
    assert_string_equal(cfw_fields_get(&f, "upload_kib"), "1.5");
    assert_string_equal(cfw_fields_get(&f, "gzip_kib"), "0.5");
    assert_string_equal(cfw_fields_get(&f, "exception"), "ImportError");
    cfw_fields_clear(&f);
}

/* Hostile text sizes: huge lines, repeated pattern prefixes, long paths, a record over the cap. */
static void hostile_text_caps(struct got *g, struct cfw_buf *b)
{
    static const char *const prefixes[] = {"No module named '",
                                           "cannot import name \"",
                                           "File \"/session/metadata/",
                                           "File \"",
                                           "A request to the Cloudflare API (",
                                           "[code: ",
                                           "Worker Startup Time: 1",
                                           "startup exceeded CPU limit 2",
                                           "Total Upload: 3",
                                           "Traceback (most recent call last):",
                                           "x.yError: ",
                                           "aError"};

    /* huge lines: the exception name and module cap */
    buf_put_repeat(b, "A", 5000);
    cfw_buf_puts(b, "Error: x\nNo module named '");
    buf_put_repeat(b, "m", 5000);
    cfw_buf_puts(b, "'\n");
    assert_int_equal(decode_text(b->data, g), 1);
    assert_int_equal(strlen(F(g, 0, "exception")), 1024);
    assert_field(g, 0, "module", NULL);
    got_free(g);

    /* one long line of repeated pattern prefixes (linear scanning keeps this quick) */
    for (size_t k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
        cfw_buf_reset(b);
        while (b->len < 1000 * 1000) {
            cfw_buf_puts(b, prefixes[k]);
        }
        assert_int_equal(decode_text(b->data, g), 1);
        got_free(g);
    }

    /* a frame path beyond its cap is not taken */
    cfw_buf_reset(b);
    cfw_buf_puts(b, "File \"/session/metadata/");
    buf_put_repeat(b, "p", 600);
    cfw_buf_puts(b, ".py\", line 3, in x\nNameError: y");
    assert_int_equal(decode_text(b->data, g), 1);
    ASSERT_FIELDS(g, 0, {"file", NULL}, {"exception", "NameError"});
    got_free(g);

    /* a text record beyond the event text cap is cut, still valid */
    cfw_buf_reset(b);
    buf_put_repeat(b, "\xc3\xa9", 700 * 1024);
    assert_int_equal(decode_text(b->data, g), 1);
    assert_true(g->ev[0].len <= 1024 * 1024);
    got_free(g);
}

static void test_hostile_text(void **state)
{
    struct got g = {0};
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    (void)state;
    hostile_text_bytes(&g);
    hostile_text_fragments();
    hostile_text_caps(&g, &b);
    cfw_buf_free(&b);
}

/*
 * The scanners skipped for a text without their marker bytes (':', '"', a quote, '<') find the
 * same fields as when every scanner runs, among them forms that hold only one of the markers.
 */
static void test_extract_gates(void **state)
{
    static const struct extract_case cases[] = {
        {"  File \"/session/metadata/a.py\", line 4, in y\n    import b", "import", "import b"},
        {"  File \"/session/metadata/a.py\", line 4, in y\n    next(it)\nStopIteration",
         "exception", "StopIteration"},
        {"No module named 'x'", "module", "x"},
        {"cannot import name \"Y\"", "name", "Y"},
        {"startup exceeded CPU limit 12<=10", "startup_ms", "12"},
        {"Worker Startup Time: 295 ms", "startup_ms", "295"},
        {"Worker Startup Time 295 ms", "startup_ms", NULL},
        {"Deployed tenant-router triggers (0.77 sec)", "startup_ms", NULL},
        {"A request to the Cloudflare API (/accounts/a/workers/scripts/w) failed", "script", "w"},
        {"oops [code 10021]", "code", NULL},
        {"Traceback (most recent call last): File \"/session/metadata/m.py\", line 2, in "
         "<module> import x ModuleNotFoundError: No module named 'x'",
         "import", "import x"},
        {"ValueError: v\0 after a NUL: [code: 7]", "code", "7"},
        {"", "kind", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cfw_fields on = {0};
        struct cfw_fields off = {0};
        size_t len = strlen(cases[i].text);

        if (i == sizeof(cases) / sizeof(cases[0]) - 2) {
            len += strlen(cases[i].text + len + 1) + 1; /* the bytes after the NUL too */
        }
        cfw_extract_fields(cases[i].text, len, &on);
        cfw_decode_set_gates(false);
        cfw_extract_fields(cases[i].text, len, &off);
        cfw_decode_set_gates(true);
        assert_int_equal(on.n, off.n);
        for (size_t k = 0; k < on.n; k++) {
            assert_string_equal(on.v[k].key, off.v[k].key);
            assert_string_equal(on.v[k].value, off.v[k].value);
        }
        assert_string_equal_or_null(cfw_fields_get(&on, cases[i].key), cases[i].want);
        cfw_fields_clear(&on);
        cfw_fields_clear(&off);
    }
}

/* A callback that adds to its event's fields, as the pipeline does with an input's fields. */
static void add_then_collect(const struct cfw_event *ev, void *arg)
{
    cfw_fields_set_default((struct cfw_fields *)&ev->fields, "env", "added");
    collect(ev, arg);
}

/* A callback that decodes a record of its own before it looks at its event. */
static void nested_then_collect(const struct cfw_event *ev, void *arg)
{
    struct got inner = {0};
    struct cfw_record rec = {.kind = CFW_REC_TEXT,
                             .text = "Total Upload: 3 KiB",
                             .len = strlen("Total Upload: 3 KiB"),
                             .input = "inner.log"};

    assert_int_equal(cfw_decode_record(&rec, add_then_collect, &inner, NULL), 1);
    assert_field(&inner, 0, "upload_kib", "3");
    assert_field(&inner, 0, "source", "inner.log");
    assert_field(&inner, 0, "startup_ms", NULL);
    assert_field(&inner, 0, "env", "added");
    got_free(&inner);
    collect(ev, arg);
}

/* The field sets kept from one record and event to the next hold nothing of the last ones. */
static void test_sets_reused(void **state)
{
    struct got g = {0};
    struct cfw_record rec = {.kind = CFW_REC_TEXT, .input = "a.log", .time = "t1"};
    static const char wst[] = "Worker Startup Time: 295 ms";
    static const char plain[] = "Deployed tenant-router triggers (0.77 sec)";

    (void)state;
    rec.text = wst;
    rec.len = strlen(wst);
    assert_int_equal(cfw_decode_record(&rec, add_then_collect, &g, NULL), 1);
    rec.text = plain;
    rec.len = strlen(plain);
    rec.input = "b.log";
    rec.time = NULL;
    assert_int_equal(cfw_decode_record(&rec, collect, &g, NULL), 1);
    ASSERT_FIELDS(&g, 0, {"kind", "text"}, {"source", "a.log"}, {"time", "t1"},
                  {"startup_ms", "295"}, {"env", "added"});
    ASSERT_FIELDS(&g, 1, {"kind", "text"}, {"source", "b.log"}, {"time", NULL},
                  {"startup_ms", NULL}, {"env", NULL});
    assert_int_equal(g.ev[1].fields.n, 2);
    assert_string_equal(g.ev[1].fields.v[0].key, "kind");
    assert_string_equal(g.ev[1].fields.v[1].key, "source");

    /* a record decoded from inside a callback: sets of its own, the outer event's unchanged */
    rec.text = wst;
    rec.len = strlen(wst);
    assert_int_equal(cfw_decode_record(&rec, nested_then_collect, &g, NULL), 1);
    ASSERT_FIELDS(&g, 2, {"kind", "text"}, {"source", "b.log"}, {"startup_ms", "295"},
                  {"upload_kib", NULL}, {"env", NULL});
    got_free(&g);

    /* events of one record: each its own kind and level on the record's shared context */
    assert_int_equal(decode_json("{\"outcome\":\"exception\",\"scriptName\":\"w\","
                                 "\"logs\":[{\"level\":\"log\",\"message\":[\"one\"]},"
                                 "{\"level\":\"warn\",\"message\":[\"two\"]}]}",
                                 &g, NULL),
                     3);
    ASSERT_FIELDS(&g, 0, {"kind", "log"}, {"level", "log"}, {"script", "w"});
    ASSERT_FIELDS(&g, 1, {"kind", "log"}, {"level", "warn"}, {"script", "w"});
    ASSERT_FIELDS(&g, 2, {"kind", "outcome"}, {"level", NULL}, {"script", "w"});
    got_free(&g);
    /* a record of the same input after them: none of their context, nor their time */
    assert_int_equal(decode_json("{\"eventTimestamp\":1755331647480,\"outcome\":\"ok\","
                                 "\"scriptName\":\"w\",\"logs\":[{\"level\":\"log\","
                                 "\"message\":[\"one\"]}]}",
                                 &g, NULL),
                     1);
    ASSERT_FIELDS(&g, 0, {"source", "test.log"}, {"script", "w"}, {"outcome", "ok"});
    assert_non_null(F(&g, 0, "time"));
    got_free(&g);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(decode_text(i == 0 ? "Worker Startup Time: 7 ms" : "Startup 8", &g), 1);
        ASSERT_FIELDS(&g, 0, {"source", "test.log"}, {"script", NULL}, {"outcome", NULL},
                      {"time", NULL}, {"startup_ms", i == 0 ? "7" : NULL});
        assert_int_equal(g.ev[0].fields.n, i == 0 ? 3 : 2);
        got_free(&g);
    }
}

static void test_null_callback_and_stats(void **state)
{
    struct cfw_record rec = {.kind = CFW_REC_JSON,
                             .text = "{\"outcome\":\"exception\"}",
                             .len = strlen("{\"outcome\":\"exception\"}")};
    struct cfw_record empty = {.kind = CFW_REC_TEXT, .text = "", .len = 0};

    (void)state;
    assert_int_equal(cfw_decode_record(&rec, NULL, NULL, NULL), 1);
    assert_int_equal(cfw_decode_record(NULL, NULL, NULL, NULL), 0);
    assert_int_equal(cfw_decode_record(&empty, NULL, NULL, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_01),
        cmocka_unit_test(test_corpus_05),
        cmocka_unit_test(test_corpus_s01),
        cmocka_unit_test(test_corpus_s02_tail),
        cmocka_unit_test(test_corpus_s03_logpush),
        cmocka_unit_test(test_corpus_s04),
        cmocka_unit_test(test_corpus_codes),
        cmocka_unit_test(test_corpus_23_logpush_ok),
        cmocka_unit_test(test_tail_exceptions_logs),
        cmocka_unit_test(test_tail_outcomes),
        cmocka_unit_test(test_logpush_lowercase),
        cmocka_unit_test(test_observability),
        cmocka_unit_test(test_validation_unknown_invalid),
        cmocka_unit_test(test_builds_line),
        cmocka_unit_test(test_flattened_traceback),
        cmocka_unit_test(test_import_error_name),
        cmocka_unit_test(test_extract_table),
        cmocka_unit_test(test_frame_selection),
        cmocka_unit_test(test_traceback_grammar_shared),
        cmocka_unit_test(test_existing_fields_kept),
        cmocka_unit_test(test_hostile_json),
        cmocka_unit_test(test_hostile_text),
        cmocka_unit_test(test_null_callback_and_stats),
        cmocka_unit_test(test_extract_gates),
        cmocka_unit_test(test_sets_reused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
