/* Unit tests for the record JSON parser (json.c), with jansson as the oracle where it helps. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cfwatchd/common.h"
#include "cfwatchd/json.h"

static struct cfw_json *J;

static int setup(void **state)
{
    (void)state;
    J = cfw_json_new();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cfw_json_free(J);
    return 0;
}

static const struct cfw_json_node *parse_n(const char *s, size_t n)
{
    return cfw_json_parse(J, s, n);
}

static const struct cfw_json_node *parse(const char *s)
{
    return parse_n(s, strlen(s));
}

/* Both parsers give the same answer on s[0..n); returns whether they accepted it. */
static bool agree_n(const char *s, size_t n)
{
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY, NULL);
    bool mine = parse_n(s, n) != NULL;

    assert_int_equal(v != NULL, mine);
    json_decref(v);
    return mine;
}

static bool agree(const char *s)
{
    return agree_n(s, strlen(s));
}

static int collect(const char *s, size_t n, void *arg)
{
    return cfw_buf_append(arg, s, n);
}

/* The compact dump of s's root, checked against jansson's (and want, when not NULL). */
static void check_dump(const char *s, const char *want)
{
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    struct cfw_buf b;

    cfw_buf_init(&b, 1u << 20);
    assert_non_null(parse(s));
    assert_int_equal(cfw_json_dump(J, cfw_json_root(J), collect, &b), 0);
    assert_string_equal(b.data, theirs);
    if (want != NULL) {
        assert_string_equal(b.data, want);
    }
    cfw_buf_free(&b);
    free(theirs);
    json_decref(v);
}

static void test_rejects(void **state)
{
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "}",
        "[1,]",
        "{,}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "[1 2]",
        "01",
        "-01",
        "1.",
        ".5",
        "-",
        "1e",
        "1e+",
        "+1",
        "tru",
        "True",
        "nul",
        "nulls",
        "{} x",
        "[]]",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\u0000\"",
        "{\"\\u0000\":1}",
        "\"\\ud800\"",
        "\"\\ud800x\"",
        "\"\\ud800\\u0041\"",
        "\"\\udc00\"",
        "\"\\ud83d\\ud83d\"",
        "\"a\tb\"",
        "\"a\nb\"",
        "\"\x01\"",
        "\"\x1f\"",
        "\"\xc0\x80\"",
        "\"\xc1\xbf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "\"\xe2\x82\"",
        "\"\x80\"",
        "\"\xf5\x80\x80\x80\"",
        "\"\xe0\x80\xaf\"",
        "9223372036854775808",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "1e309",
        "-1e309",
        "[1e400]",
        "\xef\xbb\xbf{}",
        "'a'",
        "[NaN]",
        "[Infinity]",
        "\f1",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (agree(bad[i])) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    /* NUL bytes: only the one right after a number or a word is lost, as in jansson */
    assert_false(agree_n("\0", 1));
    assert_false(agree_n(" \0", 2));
    assert_false(agree_n("1 \0", 3));
    assert_false(agree_n("1\0\0", 3));
    assert_false(agree_n("\"a\0\"", 4));
    assert_false(agree_n("[\0]", 3));
    assert_true(agree_n("0\0", 2));
    assert_true(agree_n("[1.5\0,true\0,null\0]", 18));
    assert_true(agree_n("{\"a\":false\0}", 12));
}

static void test_accepts(void **state)
{
    static const char *const good[] = {
        "0",
        "-0",
        "1",
        "-1",
        "0.5",
        "-0.0",
        "1e5",
        "1E+5",
        "1e-5",
        "12.5e+3",
        "1E-400",
        "1e308",
        "9223372036854775807",
        "-9223372036854775808",
        "true",
        "false",
        "null",
        "\"\"",
        "\"\\u00e9\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
        "\"\\ud83d\\ude00\"",
        "\"\\uDBFF\\uDFFF\"",
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"",
        "\"\x7f\"",
        "{}",
        "[]",
        " \t\r\n{ \"a\" : [ 1 , { } , [ ] ] } \n",
        "[[[[]]]]",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!agree(good[i])) {
            fail_msg("rejected: %s", good[i]);
        }
    }
}

static void test_numbers(void **state)
{
    const struct cfw_json_node *n;

    (void)state;
    n = parse("-0");
    assert_int_equal(cfw_json_type(n), CFW_JSON_INTEGER);
    assert_int_equal(cfw_json_int(n), 0);
    n = parse("-0.0");
    assert_int_equal(cfw_json_type(n), CFW_JSON_REAL);
    assert_true(cfw_json_real(n) == 0.0 && signbit(cfw_json_real(n)));
    n = parse("9223372036854775807");
    assert_true(cfw_json_int(n) == INT64_MAX);
    n = parse("-9223372036854775808");
    assert_true(cfw_json_int(n) == INT64_MIN);
    n = parse("1e308");
    assert_true(cfw_json_real(n) == 1e308);
    n = parse("1E-400");
    assert_int_equal(cfw_json_type(n), CFW_JSON_REAL);
    assert_true(cfw_json_real(n) == 0.0);
    n = parse("2.0");
    assert_int_equal(cfw_json_type(n), CFW_JSON_REAL);
    assert_true(cfw_json_is_number(n));
    assert_null(parse("1e309"));
    assert_null(parse("9223372036854775808"));
    check_dump("[1.0,-0.0,0.1,1e308,1E-400,123456789.25,1e22,-5,-0,1.5e-7]",
               "[1.0,-0.0,0.10000000000000001,1e308,0.0,123456789.25,1e22,"
               "-5,0,1.4999999999999999e-7]");
}

static void test_strings(void **state)
{
    const struct cfw_json_node *n;
    const char *s;
    size_t len;

    (void)state;
    n = parse("\"a\\u00e9\\ud83d\\ude00\\n\\\"\\/\\\\b\"");
    s = cfw_json_str(J, n, &len);
    assert_int_equal(len, strlen("a\xc3\xa9\xf0\x9f\x98\x80\n\"/\\b"));
    assert_string_equal(s, "a\xc3\xa9\xf0\x9f\x98\x80\n\"/\\b");
    /* no escapes: the bytes themselves, NUL-terminated */
    n = parse("[\"plain text\",1]");
    assert_string_equal(cfw_json_str(J, cfw_json_at(n, 0), NULL), "plain text");
    assert_null(cfw_json_str(J, cfw_json_at(n, 1), NULL));
    assert_null(cfw_json_str(J, NULL, NULL));
    check_dump("[\"\\u0001\\u001f\\b\\t\\/\\\"\\\\\xc3\xa9\x7f\"]",
               "[\"\\u0001\\u001F\\b\\t/\\\"\\\\\xc3\xa9\x7f\"]");
}

static void test_duplicate_keys(void **state)
{
    const struct cfw_json_node *n;
    struct cfw_json_iter it;

    (void)state;
    n = parse("{\"a\":1,\"b\":2,\"a\":3,\"\\u0062\":{\"x\":4}}");
    assert_int_equal(cfw_json_size(n), 2);
    assert_int_equal(cfw_json_int(cfw_json_get(J, n, "a")), 3);
    assert_int_equal(cfw_json_type(cfw_json_get(J, n, "b")), CFW_JSON_OBJECT);
    cfw_json_iter_init(n, &it);
    assert_true(cfw_json_iter_next(J, &it));
    assert_true(cfw_json_key_is(J, it.key, "a", false));
    assert_int_equal(cfw_json_int(it.value), 3);
    assert_true(cfw_json_iter_next(J, &it));
    assert_true(cfw_json_key_is(J, it.key, "b", false));
    assert_false(cfw_json_iter_next(J, &it));
    check_dump("{\"a\":1,\"b\":2,\"a\":3,\"\\u0062\":{\"x\":4}}", "{\"a\":3,\"b\":{\"x\":4}}");
}

static void test_lookup_nocase(void **state)
{
    const struct cfw_json_node *n;

    (void)state;
    n = parse("{\"Outcome\":\"x\",\"outcome\":\"y\",\"Lo\\u0067s\":[]}");
    assert_string_equal(cfw_json_str(J, cfw_json_get(J, n, "outcome"), NULL), "y");
    assert_string_equal(cfw_json_str(J, cfw_json_get_nocase(J, n, "OUTCOME"), NULL), "x");
    assert_null(cfw_json_get(J, n, "OUTCOME"));
    assert_null(cfw_json_get(J, n, "outcom"));
    assert_true(cfw_json_is(cfw_json_get(J, n, "Logs"), CFW_JSON_ARRAY));
    assert_true(cfw_json_is(cfw_json_get_nocase(J, n, "logs"), CFW_JSON_ARRAY));
    assert_null(cfw_json_get(J, cfw_json_get(J, n, "Logs"), "a"));
    assert_null(cfw_json_get(J, NULL, "a"));
}

static void test_depth(void **state)
{
    size_t n = CFW_JSON_MAX_DEPTH;
    char *s = malloc(2 * n + 2);

    (void)state;
    memset(s, '[', n);
    memset(s + n, ']', n);
    assert_true(agree_n(s, 2 * n));
    /* a scalar inside 2048 arrays is the 2049th value down */
    memmove(s + n, s + n - 1, n);
    s[n - 1] = '1';
    memset(s + n, ']', n - 1);
    assert_true(agree_n(s, 2 * n - 1));
    memset(s, '[', n);
    s[n] = '1';
    memset(s + n + 1, ']', n);
    assert_false(agree_n(s, 2 * n + 1));
    free(s);
}

static void test_empty_and_equal(void **state)
{
    const struct cfw_json_node *n;

    (void)state;
    n = parse("[{},[],\"\",{\"a\":[1,{\"b\":2}],\"c\":1},{\"c\":1,\"a\":[1,{\"b\":2}]},1,1.0]");
    assert_int_equal(cfw_json_size(cfw_json_at(n, 0)), 0);
    assert_int_equal(cfw_json_size(cfw_json_at(n, 1)), 0);
    assert_int_equal(cfw_json_size(cfw_json_at(n, 2)), 0);
    assert_null(cfw_json_at(n, 7));
    assert_true(cfw_json_equal(J, cfw_json_at(n, 3), cfw_json_at(n, 4)));
    assert_false(cfw_json_equal(J, cfw_json_at(n, 0), cfw_json_at(n, 1)));
    assert_false(cfw_json_equal(J, cfw_json_at(n, 5), cfw_json_at(n, 6)));
    assert_false(cfw_json_equal(J, cfw_json_at(n, 5), NULL));
    check_dump("{\"a\":{},\"b\":[],\"c\":\"\"}", "{\"a\":{},\"b\":[],\"c\":\"\"}");
}

/* A large object with keys given again (the hash table grows, some keys are escaped). */
static void test_many_keys(void **state)
{
    struct cfw_buf b;
    json_t *v;
    const struct cfw_json_node *n;
    char key[32];

    (void)state;
    cfw_buf_init(&b, 1u << 20);
    cfw_buf_puts(&b, "{");
    for (int i = 0; i < 3000; i++) {
        /* key i is key i + 1000 and i + 2000, now and then written with an escape */
        if (i % 7 == 0) {
            snprintf(key, sizeof(key), "\"k\\u00%x%d\":%d,", 0x30 + i % 10, i % 1000, i);
        } else {
            snprintf(key, sizeof(key), "\"k%c%d\":%d,", '0' + i % 10, i % 1000, i);
        }
        cfw_buf_puts(&b, key);
    }
    cfw_buf_puts(&b, "\"end\":true}");
    v = json_loads(b.data, 0, NULL);
    n = parse_n(b.data, b.len);
    assert_non_null(v);
    assert_int_equal(cfw_json_size(n), json_object_size(v));
    assert_int_equal(cfw_json_size(n), 1001);
    assert_int_equal(cfw_json_int(cfw_json_get(J, n, "k55")), 2005);
    assert_int_equal(cfw_json_int(cfw_json_get(J, n, "k00")), 2000);
    check_dump(b.data, NULL);
    json_decref(v);
    cfw_buf_free(&b);
}

/* The parser is reused: a large record, then a small one, then a rejected one. */
static void test_reuse(void **state)
{
    struct cfw_buf b;

    (void)state;
    cfw_buf_init(&b, 8u << 20);
    cfw_buf_puts(&b, "[");
    for (int i = 0; i < 100000; i++) {
        cfw_buf_puts(&b, i > 0 ? ",{\"k\":\"v\\n\"}" : "{\"k\":\"v\\n\"}");
    }
    cfw_buf_puts(&b, "]");
    assert_int_equal(cfw_json_size(parse_n(b.data, b.len)), 100000);
    assert_string_equal(
        cfw_json_str(J, cfw_json_get(J, cfw_json_at(cfw_json_root(J), 99999), "k"), NULL), "v\n");
    assert_int_equal(cfw_json_int(parse("7")), 7);
    assert_null(parse("[7"));
    assert_null(cfw_json_root(J));
    cfw_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rejects),        cmocka_unit_test(test_accepts),
        cmocka_unit_test(test_numbers),        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_duplicate_keys), cmocka_unit_test(test_lookup_nocase),
        cmocka_unit_test(test_depth),          cmocka_unit_test(test_empty_and_equal),
        cmocka_unit_test(test_many_keys),      cmocka_unit_test(test_reuse),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
