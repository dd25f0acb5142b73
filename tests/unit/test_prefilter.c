/*
 * Unit tests for prefilter.c and the fast scan: the literals taken from patterns, which records
 * the prefilter lets through, and the traps of the issue run through the whole pipeline twice
 * (--scan fast and --scan full) with the same incidents expected from both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/incident.h"
#include "cfwatchd/pipeline.h"
#include "cfwatchd/prefilter.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/yaml.h"

/* ---- literal extraction ---- */

/* Renders a literal set as "a & b | c" ("-" for none), caseless sets prefixed with "(?i)". */
static char *render(const char *pattern)
{
    struct cfw_literals l;
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    if (cfw_pattern_literals(pattern, &l) != 0) {
        assert_int_equal(l.n, 0);
        return strdup("-");
    }
    if (l.caseless) {
        cfw_buf_puts(&b, "(?i)");
    }
    for (size_t i = 0; i < l.n; i++) {
        for (size_t j = 0; j < l.alt[i].n; j++) {
            cfw_buf_printf(&b, "%s%s", j > 0 ? " & " : i > 0 ? " | " : "", l.alt[i].v[j]);
        }
    }
    cfw_literals_clear(&l);
    return cfw_buf_take(&b);
}

static void test_literals(void **state)
{
    static const struct {
        const char *pattern;
        const char *want;
    } cases[] = {
        {"No module named 'src'", "No module named 'src'"},
        {"No module named '(?<module>src(?:\\.[\\w.]*)?)'", "No module named ' & src & '"},
        {"abc|def", "abc | def"},
        {"ab?cd", "a & cd"},
        {"ab*c", "a & c"},
        {"ab+c", "ab & c"},
        {"x{0,3}yz", "yz"},
        {"x{2}yz", "x & yz"},
        {"x{,3}yz", "yz"},
        {"a{b}c", "a{b}c"},
        {"(?:ab)?cd", "cd"},
        {"(?:ab)+cd", "ab & cd"},
        {"[abc]def", "def"},
        {"[]x]def", "def"},
        {"[^\\]]de", "de"},
        {"[[:alpha:]]de", "de"},
        {"a.b", "a & b"},
        {"\\x41bc", "bc"},
        {"\\x{41}bc", "bc"},
        {"\\Qa.b\\E+c", "a.b & c"},
        {"\\Qa+b\\E", "a+b"},
        {"\\.c\\+\\+:", ".c++:"},
        {"(?=abc)def", "def"},
        {"(?<!abc)def", "def"},
        {"(?<name>abc)d", "abc & d"},
        {"(?P<name>abc)d", "abc & d"},
        {"(?'name'abc)d", "abc & d"},
        {"ab(?#comment)cd", "ab & cd"},
        {"^abc$", "abc"},
        {"\\Aoutcome: exceeded(?:Cpu|Memory)\\z",
         "outcome: exceeded & Cpu | outcome: exceeded & Memory"},
        {"(?i)Script startup", "(?i)Script startup"},
        {"ab(?i)cd", "(?i)ab & cd"},
        {"(?i:ab)cd", "(?i)ab & cd"},
        {"(?-i)ab", "ab"},
        {"\xe2\x9c\x98 \\[ERROR\\]", "\xe2\x9c\x98 [ERROR]"},
        /* no literal: alternation with an empty side, verbs, extended mode, back references */
        {"a|.*", "-"},
        {"abc|", "-"},
        {"(*ACCEPT)abc", "-"},
        {"(?x)abc", "-"},
        {"(a)\\1", "-"},
        {"\\k<n>", "-"},
        {"(?(1)a|b)", "-"},
        {"(?R)", "-"},
        {"\\A(?!outcome: )|\\Aoutcome: exception\\z", "-"},
        {"\\d+", "-"},
        {"[abc", "-"},
        {"(abc", "-"},
        {"abc)", "-"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = render(cases[i].pattern);

        if (strcmp(got, cases[i].want) != 0) {
            print_message("pattern %s: got '%s', want '%s'\n", cases[i].pattern, got,
                          cases[i].want);
        }
        assert_string_equal(got, cases[i].want);
        free(got);
    }
}

/* Every built-in rule but worker-exception (outcome and exception events only) has a literal. */
static void test_builtin_literals(void **state)
{
    struct cfw_ruleset *rs = cfw_ruleset_new();
    struct cfw_diag diag = {0};

    (void)state;
    assert_int_equal(cfw_ruleset_add_builtin(rs, "python-workers", &diag), 0);
    cfw_ruleset_prepare(rs);
    for (size_t i = 0; i < cfw_ruleset_count(rs); i++) {
        const struct cfw_rule *r = cfw_ruleset_rule(rs, i);

        if (cfw_rule_no_literal(r) != 0) {
            print_message("rule %s has no literal (%u)\n", cfw_rule_id(r), cfw_rule_no_literal(r));
        }
        assert_int_equal(cfw_rule_no_literal(r), 0);
    }
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

/* ---- prefilter decisions ---- */

static struct cfw_ruleset *load(const char *custom, enum cfw_scan scan)
{
    struct cfw_ruleset *rs = cfw_ruleset_new();
    struct cfw_diag diag = {0};

    assert_int_equal(cfw_ruleset_add_builtin(rs, "python-workers", &diag), 0);
    if (custom != NULL) {
        struct cfw_doc *doc = cfw_yaml_load_string("custom.yaml", custom, strlen(custom), &diag);

        assert_non_null(doc);
        assert_int_equal(cfw_ruleset_add_node(rs, doc->root, "rules.custom", "custom", &diag), 0);
        cfw_doc_free(doc);
    }
    cfw_diag_print(&diag, stderr);
    assert_int_equal(diag.n, 0);
    cfw_ruleset_set_scan(rs, scan);
    return rs;
}

static bool wants(struct cfw_ruleset *rs, enum cfw_record_kind kind, const char *text, size_t n)
{
    struct cfw_record rec = {.kind = kind, .text = text, .len = n, .input = "t", .line = 1};

    return cfw_ruleset_wants(rs, &rec);
}

#define WANTS(rs, kind, lit) wants(rs, kind, lit, sizeof(lit) - 1)

static void test_decisions(void **state)
{
#define REC(kind, lit, want)                                                                       \
    {                                                                                              \
        kind, lit, sizeof(lit) - 1, want                                                           \
    }
    static const struct {
        enum cfw_record_kind kind;
        const char *text;
        size_t len;
        bool want;
    } cases[] = {
        REC(CFW_REC_TEXT, "GET https://api.example.workers.dev/ 200 OK", false),
        REC(CFW_REC_TEXT, "", false),
        REC(CFW_REC_TEXT, "ModuleNotFoundError: No module named 'src'", true),
        REC(CFW_REC_TEXT, "x [code: 10027]", true),
        REC(CFW_REC_TEXT, "Worker Startup Time: 12 ms", true),
        /* a NUL byte becomes a space when decoded: always a candidate */
        REC(CFW_REC_TEXT, "No module\0named 'src'", true),
        /* quiet tail and Logpush records */
        REC(CFW_REC_JSON,
            "{\"outcome\":\"ok\",\"exceptions\":[],\"logs\":[{\"message\":[\"hi\"]}]}", false),
        REC(CFW_REC_JSON, "{\"Outcome\" : \"Canceled\", \"Exceptions\" : [ ]}", false),
        REC(CFW_REC_JSON, "{\"$metadata\":{\"error\":null},\"x\":\"\"}", false),
        /* the structural facts: an outcome other than ok/canceled, exceptions, an error */
        REC(CFW_REC_JSON, "{\"outcome\":\"exceededCpu\",\"exceptions\":[]}", true),
        REC(CFW_REC_JSON, "{\"OUTCOME\"\n  :\n  \"exception\"}", true),
        REC(CFW_REC_JSON, "{\"Exceptions\": [\n    {\"name\": \"E\"}]}", true),
        REC(CFW_REC_JSON, "{\"$metadata\":{\"error\":\"Boom\"}}", true),
        /* escapes and NUL bytes */
        REC(CFW_REC_JSON, "{\"logs\":[{\"message\":[\"\\u0041\"]}]}", true),
        REC(CFW_REC_JSON, "{\"logs\":[]}\0", true),
        /* pieces: all of them needed, in any order */
        REC(CFW_REC_JSON, "{\"m\":[\"named\",\"No\",\"module\"]}", true),
        REC(CFW_REC_JSON, "{\"m\":[\"named\",\"No\"]}", false),
    };
#undef REC
    struct cfw_ruleset *rs = load(NULL, CFW_SCAN_FAST);
    struct cfw_ruleset *full = load(NULL, CFW_SCAN_FULL);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (wants(rs, cases[i].kind, cases[i].text, cases[i].len) != cases[i].want) {
            print_message("case %zu: %s\n", i, cases[i].text);
        }
        assert_int_equal(wants(rs, cases[i].kind, cases[i].text, cases[i].len), cases[i].want);
        /* FULL decodes everything */
        assert_true(wants(full, cases[i].kind, cases[i].text, cases[i].len));
    }
    cfw_ruleset_free(rs);
    cfw_ruleset_free(full);
}

/*
 * A literal is found wherever it lies in records of every length: the vector paths work in
 * blocks of 16 or 32 bytes with an overlapping last block and a byte loop for the rest.
 */
static void test_every_position(void **state)
{
    static const char lit[] = "No module named '";
    struct cfw_ruleset *rs = load(NULL, CFW_SCAN_FAST);
    char buf[160];

    (void)state;
    for (size_t n = 0; n < sizeof(buf); n++) {
        memset(buf, 'x', n);
        for (size_t k = 0; k < n; k += 7) {
            buf[k] = (char)('a' + k % 26); /* not all one byte */
        }
        assert_false(wants(rs, CFW_REC_TEXT, buf, n));
        for (size_t at = 0; at + sizeof(lit) - 1 <= n; at++) {
            char saved[sizeof(lit)];

            memcpy(saved, buf + at, sizeof(lit) - 1);
            memcpy(buf + at, lit, sizeof(lit) - 1);
            if (!wants(rs, CFW_REC_TEXT, buf, n)) {
                print_message("missed at %zu of %zu\n", at, n);
            }
            assert_true(wants(rs, CFW_REC_TEXT, buf, n));
            memcpy(buf + at, saved, sizeof(lit) - 1);
        }
        /* a NUL byte anywhere, the last one included */
        for (size_t at = 0; at < n; at++) {
            char c = buf[at];

            buf[at] = '\0';
            assert_true(wants(rs, CFW_REC_TEXT, buf, n));
            buf[at] = c;
        }
    }
    cfw_ruleset_free(rs);
}

/* A custom rule without a literal makes every record of its kinds a candidate. */
static void test_no_literal_rule(void **state)
{
    static const char custom[] = "- id: any-digits\n"
                                 "  pattern: '^\\d{3}$'\n"
                                 "- id: json-only\n"
                                 "  pattern: '.'\n"
                                 "  when: {kind: json}\n";
    struct cfw_ruleset *rs = load(custom, CFW_SCAN_FAST);
    const struct cfw_rule *any;
    const struct cfw_rule *json;

    (void)state;
    cfw_ruleset_prepare(rs);
    any = cfw_ruleset_find(rs, "any-digits");
    json = cfw_ruleset_find(rs, "json-only");
    assert_int_equal(cfw_rule_no_literal(any), CFW_PREFILTER_ALL_TEXT | CFW_PREFILTER_ALL_JSON);
    assert_int_equal(cfw_rule_no_literal(json), CFW_PREFILTER_ALL_JSON);
    assert_string_equal(cfw_rule_where(any), "custom.yaml:2:12");
    assert_true(WANTS(rs, CFW_REC_TEXT, "123"));
    assert_true(WANTS(rs, CFW_REC_JSON, "{}"));
    cfw_ruleset_free(rs);
}

/* ---- the traps, through the whole pipeline, fast and full ---- */

struct run {
    struct cfw_incidents *set;
    struct cfw_pipeline *p;
    struct cfw_ruleset *rs;
};

static void run_input(struct run *r, const char *custom, enum cfw_scan scan, const char *text,
                      size_t n, enum cfw_input_format fmt, bool as_record)
{
    struct cfw_incident_opts io = {0};

    r->rs = load(custom, scan);
    r->set = cfw_incidents_new(&io, NULL, NULL);
    r->p = cfw_pipeline_new(r->rs, r->set, NULL);
    if (as_record) {
        struct cfw_record rec = {
            .kind = CFW_REC_JSON, .text = text, .len = n, .input = "logpush:t", .line = 0};

        cfw_pipeline_record(r->p, &rec, "t");
    } else {
        struct cfw_framer_opts fo = {.format = fmt};
        struct cfw_pipeline_input *in = cfw_pipeline_input_new(r->p, "t.log", NULL, &fo);

        cfw_pipeline_input_feed(in, text, n);
        cfw_pipeline_input_free(in);
    }
}

static void run_free(struct run *r)
{
    cfw_pipeline_free(r->p);
    cfw_incidents_free(r->set);
    cfw_ruleset_free(r->rs);
}

static uint64_t rule_count(const struct cfw_incidents *set, const char *rule)
{
    uint64_t n = 0;

    for (size_t i = 0; i < cfw_incidents_count(set); i++) {
        const struct cfw_incident *inc = cfw_incidents_at(set, i);
        if (strcmp(inc->rule, rule) == 0) {
            n += inc->count;
        }
    }
    return n;
}

/* Runs text both ways, checks the same incidents, and returns the count of rule's matches. */
static uint64_t both(const char *custom, const char *text, size_t n, enum cfw_input_format fmt,
                     bool as_record, const char *rule)
{
    struct run fast;
    struct run full;
    uint64_t got;

    run_input(&fast, custom, CFW_SCAN_FAST, text, n, fmt, as_record);
    run_input(&full, custom, CFW_SCAN_FULL, text, n, fmt, as_record);
    assert_int_equal(cfw_incidents_count(fast.set), cfw_incidents_count(full.set));
    for (size_t i = 0; i < cfw_incidents_count(full.set); i++) {
        const struct cfw_incident *a = cfw_incidents_at(fast.set, i);
        const struct cfw_incident *b = cfw_incidents_at(full.set, i);

        assert_string_equal(a->key, b->key);
        assert_int_equal(a->count, b->count);
        assert_int_equal(a->first.line, b->first.line);
        assert_string_equal(a->sample, b->sample);
    }
    assert_int_equal(cfw_pipeline_stats(fast.p)->records, cfw_pipeline_stats(full.p)->records);
    assert_true(cfw_pipeline_stats(fast.p)->decoded <= cfw_pipeline_stats(full.p)->decoded);
    got = rule_count(fast.set, rule);
    run_free(&fast);
    run_free(&full);
    return got;
}

#define BOTH(text, fmt, rule) both(NULL, text, sizeof(text) - 1, fmt, false, rule)
#define BOTH_RECORD(text, rule) both(NULL, text, sizeof(text) - 1, CFW_FMT_AUTO, true, rule)

static void test_trap_ansi_and_nul(void **state)
{
    (void)state;
    /* an escape sequence inside the literal: the framer strips it before the prefilter looks */
    assert_int_equal(
        BOTH("ModuleNotFoundError: No mod\x1b[1mule named 'src'\n", CFW_FMT_AUTO, "py-src-import"),
        1);
    /* a NUL byte inside the literal becomes a space, which completes it */
    assert_int_equal(
        BOTH("ModuleNotFoundError: No module\0named 'src'\n", CFW_FMT_AUTO, "py-src-import"), 1);
    /* jansson refuses a raw NUL: the record is decoded as text, which holds the literal */
    assert_int_equal(BOTH_RECORD("{\"logs\":[{\"message\":[\"No module named 'src'\"]}],\"x\":"
                                 "\"\0\"}",
                                 "py-src-import"),
                     1);
}

static void test_trap_ci_prefix(void **state)
{
    static const char tb[] =
        "2026-12-01T10:00:00.000Z\tTraceback (most recent call last):\n"
        "2026-12-01T10:00:00.001Z\t  File \"/session/metadata/main.py\", line 3, in <module>\n"
        "2026-12-01T10:00:00.002Z\t    from src.core import x\n"
        "2026-12-01T10:00:00.003Z\tModuleNotFoundError: No module named 'src'\n";

    (void)state;
    assert_int_equal(BOTH(tb, CFW_FMT_AUTO, "py-src-import"), 1);
}

static void test_trap_json_escapes(void **state)
{
    (void)state;
    assert_int_equal(BOTH("{\"outcome\":\"ok\",\"logs\":[{\"level\":\"warn\",\"message\":["
                          "\"Unexpected fields found in build field: \\\"upload\\\"\"]}],"
                          "\"exceptions\":[],\"eventTimestamp\":1}\n",
                          CFW_FMT_JSON, "build-upload-ignored"),
                     1);
    assert_int_equal(BOTH("{\"outcome\":\"ok\",\"logs\":[{\"level\":\"error\",\"message\":["
                          "\"No module named \\u0027src\\u0027\"]}],\"exceptions\":[],"
                          "\"eventTimestamp\":2}\n",
                          CFW_FMT_JSON, "py-src-import"),
                     1);
    /* a message array joined with spaces */
    assert_int_equal(BOTH("{\"outcome\":\"ok\",\"logs\":[{\"level\":\"log\",\"message\":["
                          "\"No module\",\"named 'src'\"]}],\"exceptions\":[],"
                          "\"eventTimestamp\":3}\n",
                          CFW_FMT_JSON, "py-src-import"),
                     1);
    /* name + ": " + message */
    assert_int_equal(BOTH("{\"outcome\":\"exception\",\"logs\":[],\"exceptions\":[{\"name\":"
                          "\"ModuleNotFoundError\",\"message\":\"No module named 'src'\"}],"
                          "\"eventTimestamp\":4}\n",
                          CFW_FMT_JSON, "py-src-import"),
                     1);
    /* \s+ across an escaped newline */
    assert_int_equal(BOTH("{\"outcome\":\"ok\",\"logs\":[{\"level\":\"warn\",\"message\":["
                          "\"support\\nfor Python\\n workers is currently experimental\"]}],"
                          "\"exceptions\":[],\"eventTimestamp\":5}\n",
                          CFW_FMT_JSON, "python-experimental-notice"),
                     1);
}

static void test_trap_field_only(void **state)
{
    (void)state;
    assert_int_equal(BOTH_RECORD("{\"Outcome\":\"exceededCpu\",\"ScriptName\":\"py\","
                                 "\"Exceptions\":[],\"Logs\":[],\"EventTimestampMs\":1}",
                                 "worker-exceeded-limit"),
                     1);
    assert_int_equal(BOTH("{\n    \"outcome\": \"exception\",\n    \"scriptName\": \"py\",\n"
                          "    \"exceptions\": [],\n    \"logs\": [],\n"
                          "    \"eventTimestamp\": 1\n}\n",
                          CFW_FMT_AUTO, "worker-exception"),
                     1);
    assert_int_equal(BOTH("{\"$metadata\":{\"error\":\"Boom\",\"level\":\"error\"},"
                          "\"$workers\":{\"outcome\":\"ok\",\"scriptName\":\"py\"}}\n",
                          CFW_FMT_JSON, "worker-exception"),
                     1);
}

static void test_trap_threshold(void **state)
{
    (void)state;
    assert_int_equal(BOTH("Worker Startup Time: 01500 ms\n", CFW_FMT_AUTO, "startup-time-high"), 1);
    assert_int_equal(BOTH("Worker Startup Time: 999 ms\n", CFW_FMT_AUTO, "startup-time-high"), 0);
}

static void test_trap_custom_no_literal(void **state)
{
    static const char custom[] = "- id: three-digits\n  pattern: '^\\d{3}$'\n";
    static const char text[] = "abc\n123\n4567\n";
    struct run fast;

    (void)state;
    assert_int_equal(both(custom, text, sizeof(text) - 1, CFW_FMT_AUTO, false, "three-digits"), 1);
    run_input(&fast, custom, CFW_SCAN_FAST, text, sizeof(text) - 1, CFW_FMT_AUTO, false);
    assert_int_equal(cfw_pipeline_stats(fast.p)->decoded, 3);
    run_free(&fast);
}

/*
 * Two records that look alike (same input, line and time, as two Logpush batches give): the
 * second one's outcome is not told by the first one's exception, whatever lies between them
 * (the fast scan does not decode the record between; found by fuzz_scan).
 */
static void test_records_do_not_share_exceptions(void **state)
{
    static const char a[] = "{\"outcome\":\"exception\",\"exceptions\":[{\"name\":\"Error\","
                            "\"message\":\"Boom\"}],\"logs\":[]}";
    static const char c[] = "{\"outcome\":\"ok\",\"exceptions\":[],\"logs\":[]}";
    static const char b[] = "{\"outcome\":\"exception\",\"exceptions\":[],\"logs\":[]}";
    const char *recs[] = {a, c, b};

    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        struct run r;
        struct cfw_incident_opts io = {0};

        r.rs = load(NULL, mode == 0 ? CFW_SCAN_FAST : CFW_SCAN_FULL);
        r.set = cfw_incidents_new(&io, NULL, NULL);
        r.p = cfw_pipeline_new(r.rs, r.set, NULL);
        for (size_t i = 0; i < 3; i++) {
            struct cfw_record rec = {.kind = CFW_REC_JSON,
                                     .text = recs[i],
                                     .len = strlen(recs[i]),
                                     .input = "logpush:t",
                                     .line = 3,
                                     .line_end = 3};
            cfw_pipeline_record(r.p, &rec, "t");
        }
        /* a's exception, and b's outcome (a's outcome is told by its exception) */
        assert_int_equal(rule_count(r.set, "worker-exception"), 2);
        run_free(&r);
    }
}

/* The rules selected for a record: those whose literals it holds, and what applies to all. */
static char *selection(const struct cfw_prefilter *pf, enum cfw_record_kind kind, const char *text,
                       size_t n)
{
    uint64_t sel[2] = {0, 0};
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    bool any;

    assert_int_equal(cfw_prefilter_words(pf), 1);
    any = cfw_prefilter_select(pf, kind, text, n, sel);
    assert_int_equal(any, sel[0] != 0);
    for (size_t i = 0; i < 64; i++) {
        if ((sel[0] >> i) & 1) {
            cfw_buf_printf(&b, "%s%zu", b.len > 0 ? "," : "", i);
        }
    }
    return b.len > 0 ? cfw_buf_take(&b) : strdup("-");
}

static void test_select(void **state)
{
#define SEL(kind, lit, want)                                                                       \
    {                                                                                              \
        kind, lit, sizeof(lit) - 1, want                                                           \
    }
    static const struct {
        enum cfw_record_kind kind;
        const char *text;
        size_t len;
        const char *want;
    } cases[] = {
        SEL(CFW_REC_TEXT, "GET / 200", "-"),
        SEL(CFW_REC_TEXT, "x No module named 'src' then Deployed it", "0,3"),
        SEL(CFW_REC_TEXT, "[code: 10027] and No module named 'src'", "0,1"),
        SEL(CFW_REC_TEXT, "Deployed zzz", "3,5"),
        /* a NUL byte: every rule of text records */
        SEL(CFW_REC_TEXT, "Deployed\0x", "0,1,3,5"),
        /* JSON: pieces; a structural fact selects the rules of exception events */
        SEL(CFW_REC_JSON, "{\"m\":[\"named\",\"No\",\"module\",\"'src'\"]}", "0"),
        SEL(CFW_REC_JSON, "{\"exceptions\":[{\"name\":\"E\"}]}", "0,2,5"),
        SEL(CFW_REC_JSON, "{\"exceptions\":[],\"m\":\"Deployed\"}", "3"),
        SEL(CFW_REC_JSON, "{\"exceptions\":[1],\"m\":\"code: 10027\"}", "0,1,2,5"),
        /* a \\u escape: every rule of JSON records */
        SEL(CFW_REC_JSON, "{\"m\":\"\\u0041\"}", "0,1,2,3,5"),
    };
    struct cfw_prefilter *pf = cfw_prefilter_new();

    (void)state;
    assert_int_equal(cfw_prefilter_add(pf, "No module named 'src'", CFW_KIND_ALL, 0), 0);
    assert_int_equal(cfw_prefilter_add(pf, "\\[code: 10027\\]", CFW_KIND_TEXT, 1), 0);
    /* no literal, exception events only: JSON records with exceptions */
    assert_int_equal(cfw_prefilter_add(pf, ".", CFW_KIND_EXCEPTION, 2), 0);
    assert_int_equal(cfw_prefilter_add(pf, "Deployed", CFW_KIND_TEXT | CFW_KIND_JSON, 3), 0);
    /* id 4 is a rule the prefilter is not told about (one with no pattern) */
    assert_int_equal(cfw_prefilter_add(pf, "zzz", CFW_KIND_ALL, 5), 0);
    cfw_prefilter_build(pf);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = selection(pf, cases[i].kind, cases[i].text, cases[i].len);

        if (strcmp(got, cases[i].want) != 0) {
            fail_msg("case %zu: selected %s, want %s", i, got, cases[i].want);
        }
        free(got);
    }
    cfw_prefilter_free(pf);
    /* a rule with no usable literal is selected for every record of its kind */
    pf = cfw_prefilter_new();
    assert_int_equal(cfw_prefilter_add(pf, "Deployed", CFW_KIND_TEXT, 0), 0);
    assert_int_equal(cfw_prefilter_add(pf, ".+", CFW_KIND_TEXT, 1),
                     CFW_PREFILTER_ALL_TEXT | CFW_PREFILTER_ALL_JSON);
    cfw_prefilter_build(pf);
    {
        char *a = selection(pf, CFW_REC_TEXT, "GET /", 5);
        char *b = selection(pf, CFW_REC_TEXT, "Deployed", 8);

        assert_string_equal(a, "1");
        assert_string_equal(b, "0,1");
        free(a);
        free(b);
    }
    cfw_prefilter_free(pf);
#undef SEL
}

/* Most records of an ordinary log are never decoded. */
static void test_skips(void **state)
{
    static const char text[] = "GET /a 200\nGET /b 200\n{\"outcome\":\"ok\",\"exceptions\":[],"
                               "\"logs\":[],\"eventTimestamp\":1}\nNo module named 'src'\n";
    struct run fast;

    (void)state;
    run_input(&fast, NULL, CFW_SCAN_FAST, text, sizeof(text) - 1, CFW_FMT_AUTO, false);
    assert_int_equal(cfw_pipeline_stats(fast.p)->records, 4);
    assert_int_equal(cfw_pipeline_stats(fast.p)->decoded, 1);
    assert_int_equal(rule_count(fast.set, "py-src-import"), 1);
    run_free(&fast);
}

/* ---- the search against a plain one ---- */

static uint64_t rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Whether s[0..n) holds p, ASCII-caselessly when asked: what the prefilter must find. */
static bool plain_contains(const char *s, size_t n, const char *p, bool caseless)
{
    size_t pn = strlen(p);

    for (size_t i = 0; i + pn <= n; i++) {
        size_t j = 0;

        while (j < pn &&
               (caseless ? tolower((unsigned char)s[i + j]) == tolower((unsigned char)p[j])
                         : s[i + j] == p[j])) {
            j++;
        }
        if (j == pn) {
            return true;
        }
    }
    return false;
}

/*
 * Random text records against literals of 2 to 14 bytes, two-literal alternatives and caseless
 * ones (with punctuation), put anywhere (the first and last bytes of the record too), with one
 * byte changed or a letter's case flipped, in records of every length around the vector
 * widths (a quarter of them up to 259 bytes: several AVX2 blocks): the selection is exactly the
 * rules whose literals a plain search finds. Each record is a heap block of its own size, so that a
 * read past its end is caught by ASan.
 */
static void test_search_oracle(void **state)
{
    static const struct {
        const char *pattern;
        const char *lits[2];
        bool caseless;
    } rules[] = {
        {"Qz", {"Qz", NULL}, false},
        {"Wxy", {"Wxy", NULL}, false},
        {"abcdEFGH", {"abcdEFGH", NULL}, false},
        {"unusual_Token9", {"unusual_Token9", NULL}, false},
        {"(?i)modern UPPER", {"modern UPPER", NULL}, true},
        {"AbC.*XyZ", {"AbC", "XyZ"}, false},
        {"(?i)\\(err\\)", {"(err)", NULL}, true},
        {"(?i)Zq", {"Zq", NULL}, true},
    };
    static const char alphabet[] = "QzWxyabcdEFGHunsl_Tok9meRUPAbCXZ()rq ";
    const size_t nrules = sizeof(rules) / sizeof(rules[0]);
    struct cfw_prefilter *pf = cfw_prefilter_new();
    uint64_t x = 0x9e3779b97f4a7c15u;

    (void)state;
    for (size_t r = 0; r < nrules; r++) {
        assert_int_equal(cfw_prefilter_add(pf, rules[r].pattern, CFW_KIND_TEXT, r), 0);
    }
    cfw_prefilter_build(pf);
    for (int iter = 0; iter < 30000; iter++) {
        size_t n = rnd(&x) % (iter % 4 == 0 ? 260 : 100);
        char *rec = malloc(n > 0 ? n : 1);
        uint64_t sel[1] = {0};
        uint64_t want = 0;

        for (size_t i = 0; i < n; i++) {
            rec[i] = alphabet[rnd(&x) % (sizeof(alphabet) - 1)];
        }
        for (int k = (int)(rnd(&x) % 3); k > 0; k--) {
            const char *lit = rules[rnd(&x) % nrules].lits[0];
            size_t ln = strlen(lit);
            size_t at;

            if (ln > n) {
                continue;
            }
            at = rnd(&x) % 4 == 0 ? (rnd(&x) % 2 == 0 ? 0 : n - ln) : rnd(&x) % (n - ln + 1);
            memcpy(rec + at, lit, ln);
            if (rnd(&x) % 3 == 0) {
                size_t j = at + rnd(&x) % ln;

                rec[j] = rnd(&x) % 2 == 0 && isalpha((unsigned char)rec[j])
                             ? (char)(rec[j] ^ 0x20)
                             : alphabet[rnd(&x) % 10];
            }
        }
        for (size_t r = 0; r < nrules; r++) {
            bool all = true;

            for (size_t j = 0; j < 2 && rules[r].lits[j] != NULL; j++) {
                all = all && plain_contains(rec, n, rules[r].lits[j], rules[r].caseless);
            }
            want |= all ? UINT64_C(1) << r : 0;
        }
        assert_int_equal(cfw_prefilter_select(pf, CFW_REC_TEXT, rec, n, sel), want != 0);
        if (sel[0] != want) {
            fail_msg("record %.*s: selected %#llx, want %#llx", (int)n, rec,
                     (unsigned long long)sel[0], (unsigned long long)want);
        }
        free(rec);
    }
    cfw_prefilter_free(pf);
}

/*
 * The JSON keys the structural checks look for, in any case, at the start and the end of
 * records of every length (the 8-byte compare of a key needs bytes the record may not have).
 */
static void test_struct_key_edges(void **state)
{
    static const char *const keys[] = {"\"exceptions\":[1]", "\"ExCePtIoNs\" : [ 1 ]",
                                       "\"OUTCOME\":\"exceededCpu\"", "\"error\":\"x\""};
    static const char *const quiet[] = {"\"exceptions\":[]", "\"Outcome\":\"ok\"", "\"error\":null",
                                        "\"exceptionz\":[1]"};
    struct cfw_prefilter *pf = cfw_prefilter_new();

    (void)state;
    assert_int_equal(cfw_prefilter_add(pf, ".", CFW_KIND_EXCEPTION, 0), 0);
    cfw_prefilter_build(pf);
    for (size_t n = 0; n < 80; n++) {
        for (size_t k = 0; k < 4; k++) {
            for (int end = 0; end < 2; end++) {
                for (int q = 0; q < 2; q++) {
                    const char *s = q == 0 ? keys[k] : quiet[k];
                    size_t sn = strlen(s);
                    size_t len = n + sn;
                    char *rec = malloc(len);
                    uint64_t sel[1] = {0};

                    memset(rec, 'x', len);
                    memcpy(rec + (end == 0 ? 0 : n), s, sn);
                    assert_int_equal(cfw_prefilter_select(pf, CFW_REC_JSON, rec, len, sel), q == 0);
                    free(rec);
                }
            }
        }
    }
    cfw_prefilter_free(pf);
}

static void test_scan_parse(void **state)
{
    enum cfw_scan s = CFW_SCAN_FAST;

    (void)state;
    assert_int_equal(cfw_scan_parse("full", &s), 0);
    assert_int_equal(s, CFW_SCAN_FULL);
    assert_int_equal(cfw_scan_parse("fast", &s), 0);
    assert_int_equal(s, CFW_SCAN_FAST);
    assert_int_equal(cfw_scan_parse("slow", &s), -1);
    assert_string_equal(cfw_scan_name(CFW_SCAN_FULL), "full");
    assert_int_equal(cfw_kind_bit("outcome"), CFW_KIND_OUTCOME);
    assert_int_equal(cfw_kind_bit("nope"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_builtin_literals),
        cmocka_unit_test(test_decisions),
        cmocka_unit_test(test_every_position),
        cmocka_unit_test(test_no_literal_rule),
        cmocka_unit_test(test_trap_ansi_and_nul),
        cmocka_unit_test(test_trap_ci_prefix),
        cmocka_unit_test(test_trap_json_escapes),
        cmocka_unit_test(test_trap_field_only),
        cmocka_unit_test(test_trap_threshold),
        cmocka_unit_test(test_trap_custom_no_literal),
        cmocka_unit_test(test_records_do_not_share_exceptions),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_skips),
        cmocka_unit_test(test_search_oracle),
        cmocka_unit_test(test_struct_key_edges),
        cmocka_unit_test(test_scan_parse),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
