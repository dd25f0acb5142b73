/*
 * Unit tests for report.c: JSON shape, GitHub escaping, text summary without colour; and for
 * jsondump.c, its JSON writer, against jansson's own dump.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/jsondump.h"
#include "cfwatchd/report.h"
#include "cfwatchd/yaml.h"
#include "rules_util.h"

static const char rules_yaml[] =
    "rules:\n"
    "  - id: src\n"
    "    pattern: 'No module named ''(?<module>[\\w.]+)'''\n"
    "    severity: critical\n"
    "    title: 'module {module}: a, b'\n"
    "    hint: \"line one\\n100% sure\"\n"
    "  - id: note\n"
    "    pattern: 'note'\n"
    "    severity: info\n"
    "    title: 'a note'\n";

/* Renders the report into *out (allocated). */
static void render_to(enum cfw_report_format fmt, struct cfw_incidents *set, char **out)
{
    struct cfw_pipeline_stats st = {.inputs = 1, .lines = 10, .events = 4};
    struct cfw_report_opts opts = {.format = fmt};
    size_t len = 0;
    FILE *fp = open_memstream(out, &len);

    cfw_report_write(fp, &opts, set, &st);
    fclose(fp);
}

static void test_formats(void **state)
{
    struct cfw_ruleset *rs = rules_from_yaml_ok("t.yaml", rules_yaml, "t");
    struct cfw_incidents *set = cfw_incidents_new(NULL, NULL, NULL);
    struct cfw_event ev = {.input = "dir/a,b.log", .line = 12};
    struct observe_to to = {set, 0, 0};
    json_error_t jerr;
    json_t *root, *inc;
    char *out = NULL;

    (void)state;
    ev.text = "ModuleNotFoundError: No module named 'src'\n\x1b[31mred";
    ev.len = strlen(ev.text);
    cfw_ruleset_match(rs, &ev, observe_cb, &to);
    ev.text = "a note";
    ev.len = strlen(ev.text);
    cfw_ruleset_match(rs, &ev, observe_cb, &to);

    render_to(CFW_REPORT_JSON, set, &out);
    root = json_loads(out, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "version")), 1);
    assert_int_equal(json_array_size(json_object_get(root, "incidents")), 2);
    inc = json_array_get(json_object_get(root, "incidents"), 0);
    assert_string_equal(json_string_value(json_object_get(inc, "rule")), "src");
    assert_string_equal(json_string_value(json_object_get(inc, "severity")), "critical");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(inc, "fields"), "module")), "src");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(inc, "first"), "line")),
                     12);
    assert_int_equal(json_integer_value(json_object_get(inc, "count")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(
                         json_object_get(root, "stats"), "by_severity"), "critical")),
                     1);
    json_decref(root);
    free(out);

    render_to(CFW_REPORT_GITHUB, set, &out);
    /* properties escape , and :, data escapes %, CR and LF; one line per incident */
    assert_non_null(strstr(out, "::error file=dir/a%2Cb.log,line=12,title=module src%3A a%2C b::"));
    assert_non_null(strstr(out, "line one%0A100%25 sure"));
    assert_non_null(strstr(out, "::notice file="));
    assert_null(strchr(strchr(out, '\n') + 1, '\r'));
    free(out);

    render_to(CFW_REPORT_TEXT, set, &out);
    assert_non_null(strstr(out, "CRITICAL\n"));
    assert_non_null(strstr(out, "cfwatchd: 2 incidents (1 critical, 1 info) in 1 input"));
    /* a control character from the log never reaches the terminal */
    assert_null(strchr(out, '\x1b'));
    free(out);

    cfw_incidents_free(set);
    cfw_ruleset_free(rs);
}

/* Outside text in the text report's own lines (input names, the evidence of a fix). */
static void test_text_control_bytes(void **state)
{
    struct cfw_ruleset *rs = rules_from_yaml_ok("t.yaml", rules_yaml, "t");
    struct cfw_incidents *set = cfw_incidents_new(NULL, NULL, NULL);
    struct cfw_event ev = {.input = "dir/a\x01"
                                    "b.log",
                           .line = 3};
    struct observe_to to = {set, 0, 0};
    char *out = NULL;

    (void)state;
    ev.text = "No module named 'src'";
    ev.len = strlen(ev.text);
    cfw_ruleset_match(rs, &ev, observe_cb, &to);
    assert_int_equal(cfw_incidents_count(set), 1);
    assert_int_equal(cfw_incidents_resolve_by(set, cfw_incidents_at(set, 0)->key,
                                              "Deployed x\x1f (1\x7f sec) (dir/a\x01"
                                              "b.log:9)",
                                              1, 1),
                     0);
    render_to(CFW_REPORT_TEXT, set, &out);
    assert_non_null(strstr(out, "    at dir/a?b.log:3\n"));
    assert_non_null(strstr(out, "    resolved: fixed by Deployed x? (1? sec) (dir/a?b.log:9)\n"));
    for (const char *p = out; *p != '\0'; p++) {
        assert_true((unsigned char)*p >= 0x20 || *p == '\n' || *p == '\t');
        assert_true(*p != 0x7f);
    }
    free(out);
    cfw_incidents_free(set);
    cfw_ruleset_free(rs);
}

/* A small deterministic generator (xorshift64*), so a failure can be replayed. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

/* Appends code point cp as UTF-8. */
static void put_utf8(struct cfw_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    cfw_buf_append(b, u, n);
}

/* A random code point of the given UTF-8 length, edges and surrogates' neighbours included. */
static uint32_t rnd_code_point(int len)
{
    static const uint32_t edges[] = {0x80,   0x7FF,  0x800,   0xD7FF,   0xE000,
                                     0xFFFD, 0xFFFF, 0x10000, 0x10FFFF, 0x1F600};
    uint32_t cp;

    if (rnd_below(4) == 0) {
        return edges[rnd_below(sizeof(edges) / sizeof(edges[0]))];
    }
    switch (len) {
    case 2:
        return 0x80 + (uint32_t)rnd_below(0x800 - 0x80);
    case 3:
        do {
            cp = 0x800 + (uint32_t)rnd_below(0x10000 - 0x800);
        } while (cp >= 0xD800 && cp <= 0xDFFF);
        return cp;
    default:
        return 0x10000 + (uint32_t)rnd_below(0x110000 - 0x10000);
    }
}

/* A random valid UTF-8 string into b (emptied first); with_nul: NUL bytes may occur. */
static void rnd_text(struct cfw_buf *b, bool with_nul)
{
    static const char specials[] = "\"\\/\x7f\b\f\n\r\t";
    size_t n = rnd_below(4) == 0 ? 0 : rnd_below(rnd_below(8) == 0 ? 200 : 12);

    cfw_buf_reset(b);
    for (size_t i = 0; i < n; i++) {
        switch (rnd_below(8)) {
        case 0:
            cfw_buf_putc(b, (char)(with_nul ? rnd_below(0x20) : 1 + rnd_below(0x1f)));
            break;
        case 1:
            cfw_buf_putc(b, specials[rnd_below(sizeof(specials) - 1)]);
            break;
        case 2:
            put_utf8(b, rnd_code_point(2));
            break;
        case 3:
            put_utf8(b, rnd_code_point(3));
            break;
        case 4:
            put_utf8(b, rnd_code_point(4));
            break;
        default:
            cfw_buf_putc(b, (char)(0x20 + rnd_below(0x5f)));
        }
    }
}

static json_t *rnd_scalar(struct cfw_buf *text)
{
    static const json_int_t ints[] = {0, -1, 1, INT64_MAX, INT64_MIN, INT64_MIN + 1, 1000000007};

    switch (rnd_below(8)) {
    case 0:
        return json_null();
    case 1:
        return json_true();
    case 2:
        return json_false();
    case 3:
        return json_integer(ints[rnd_below(sizeof(ints) / sizeof(ints[0]))]);
    case 4:
        return json_integer((json_int_t)(rnd() >> rnd_below(64)) * (rnd_below(2) ? -1 : 1));
    case 5:
        return json_real((double)(int64_t)rnd() / (double)(1 + rnd_below(1000)));
    default:
        rnd_text(text, true);
        return json_stringn(text->data != NULL ? text->data : "", text->len);
    }
}

/* A random tree at most depth levels deep. */
static json_t *rnd_tree(struct cfw_buf *text, int depth)
{
    size_t n = rnd_below(3) == 0 ? 0 : rnd_below(6);
    json_t *c;

    if (depth == 0 || rnd_below(3) == 0) {
        return rnd_scalar(text);
    }
    c = rnd_below(2) == 0 ? json_array() : json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *v = rnd_tree(text, depth - 1);
        if (json_is_array(c)) {
            json_array_append_new(c, v);
        } else {
            rnd_text(text, true);
            json_object_setn_new(c, text->data != NULL ? text->data : "", text->len, v);
        }
    }
    return c;
}

static int to_buf(const char *p, size_t n, void *b)
{
    return cfw_buf_append(b, p, n);
}

/* cfw_jsondump_append gives what jansson's dump callback is given, and the same result. */
static void assert_dumps_like_jansson(const json_t *json)
{
    struct cfw_buf want = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_buf got = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    int want_rc = json_dump_callback(json, to_buf, &want, CFW_JSONDUMP_FLAGS);
    int got_rc = cfw_jsondump_append(&got, json);

    assert_int_equal(got_rc, want_rc);
    assert_int_equal(got.len, want.len);
    if (want.len > 0) {
        assert_memory_equal(got.data, want.data, want.len);
    }
    cfw_buf_free(&want);
    cfw_buf_free(&got);
}

static void test_jsondump_random(void **state)
{
    struct cfw_buf text = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_buf got = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    (void)state;
    for (int i = 0; i < 5000; i++) {
        json_t *tree = rnd_tree(&text, 1 + i % 6);
        char *want = json_dumps(tree, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);

        cfw_buf_reset(&got);
        if (want == NULL) {
            /* a scalar at the top: refused by both, nothing written */
            assert_false(json_is_array(tree) || json_is_object(tree));
            assert_int_equal(cfw_jsondump_append(&got, tree), -1);
            assert_int_equal(got.len, 0);
        } else {
            assert_int_equal(cfw_jsondump_append(&got, tree), 0);
            assert_int_equal(got.len, strlen(want));
            assert_memory_equal(got.data, want, got.len);
        }
        free(want);
        json_decref(tree);
    }
    cfw_buf_free(&text);
    cfw_buf_free(&got);
}

static void test_jsondump_fixed(void **state)
{
    json_t *o = json_pack("{s:[], s:{}, s:[{}, []], s:s, s:I}", "a", "b", "c", "d",
                          "\xc3\xa9/\x7f\xf0\x9f\x98\x80\x01", "e", (json_int_t)INT64_MIN);
    struct cfw_buf got = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    (void)state;
    assert_int_equal(cfw_jsondump_append(&got, o), 0);
    assert_string_equal(got.data, "{\n"
                                  "  \"a\": [],\n"
                                  "  \"b\": {},\n"
                                  "  \"c\": [\n"
                                  "    {},\n"
                                  "    []\n"
                                  "  ],\n"
                                  "  \"d\": \"\\u00E9/\x7f\\uD83D\\uDE00\\u0001\",\n"
                                  "  \"e\": -9223372036854775808\n"
                                  "}");
    assert_dumps_like_jansson(o);

    /* a plain run longer than the writer's chunk, and one escape after it */
    cfw_buf_reset(&got);
    for (int i = 0; i < 10000; i++) {
        cfw_buf_putc(&got, (char)('a' + i % 26));
    }
    cfw_buf_puts(&got, "\n");
    json_object_set_new(o, "long", json_string(got.data));
    assert_dumps_like_jansson(o);
    cfw_buf_free(&got);
    json_decref(o);
}

/*
 * Random bytes, most of them non-ASCII (continuation bytes, overlong, surrogate and
 * out-of-range forms, sequences cut short), as string values and keys.
 */
static void assert_bytes_dump_like_jansson(void)
{
    static const unsigned char firsts[] = {0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
                                           0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};

    for (int i = 0; i < 20000; i++) {
        char s[8];
        size_t n = rnd_below(sizeof(s));
        json_t *a = json_array();
        json_t *o = json_object();

        for (size_t k = 0; k < n; k++) {
            switch (rnd_below(4)) {
            case 0:
                s[k] = (char)firsts[rnd_below(sizeof(firsts))];
                break;
            case 1:
                s[k] = (char)(0x80 + rnd_below(0x40));
                break;
            case 2:
                s[k] = (char)rnd_below(0x80);
                break;
            default:
                s[k] = (char)rnd_below(0x100);
            }
        }
        json_array_append_new(a, json_stringn_nocheck(s, n));
        json_array_append_new(a, json_null());
        assert_dumps_like_jansson(a);
        s[n] = '\0';
        json_object_set_new_nocheck(o, s, json_integer(1));
        json_object_set_new(o, "next", json_true());
        assert_dumps_like_jansson(o);
        json_decref(a);
        json_decref(o);
    }
}

/* What jansson does where it fails: invalid UTF-8 (from the _nocheck setters), a cycle. */
static void test_jsondump_failures(void **state)
{
    json_t *a = json_array();
    json_t *o = json_object();
    struct cfw_buf small = CFW_BUF_INIT(8);

    (void)state;
    json_array_append_new(a, json_string("ok \xc3\xa9"));
    json_array_append_new(a, json_string_nocheck("run\"x\xe9y"));
    assert_dumps_like_jansson(a); /* fails after "ok \u00E9", before the run "x */
    json_array_remove(a, 1);
    json_array_append_new(a, json_string_nocheck("\xed\xa0\x80")); /* a surrogate */
    assert_dumps_like_jansson(a);
    json_array_remove(a, 1);
    json_array_append_new(a, json_string_nocheck("\xf0\x9f\x98")); /* cut short */
    assert_dumps_like_jansson(a);
    json_array_remove(a, 1);
    json_array_append_new(a, json_string_nocheck("\xc0\x80")); /* overlong */
    assert_dumps_like_jansson(a);
    json_array_remove(a, 1);
    assert_bytes_dump_like_jansson();

    /* a bad key is cut short and the dump goes on */
    json_object_set_new_nocheck(o, "k\\\xff", json_integer(1));
    json_object_set_new(o, "next", json_true());
    assert_dumps_like_jansson(o);

    /* a container that holds itself, one level down */
    json_object_set(o, "loop", a);
    json_array_append(a, o);
    assert_dumps_like_jansson(a);
    assert_int_equal(cfw_jsondump_append(&small, json_null()), -1);
    assert_int_equal(small.len, 0);
    json_array_clear(a);

    /* the cap reached */
    json_array_append_new(a, json_string("longer than eight bytes"));
    assert_int_equal(cfw_jsondump_append(&small, a), CFW_JSONDUMP_FULL);
    assert_true(small.len <= 8);
    cfw_buf_free(&small);
    json_decref(o);
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),           cmocka_unit_test(test_text_control_bytes),
        cmocka_unit_test(test_jsondump_fixed),    cmocka_unit_test(test_jsondump_random),
        cmocka_unit_test(test_jsondump_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
