/*
 * Fuzz target: the record JSON parser (src/json.c) against jansson, its oracle. The input is
 * one JSON text as it is. Checked: both accept it or both reject it (jansson's
 * json_loadb(..., JSON_DECODE_ANY, ...)); when accepted, the same tree (types, integer and
 * real values, strings, sizes, members in iteration order with their values), every key found
 * by cfw_json_get and by cfw_json_get_nocase as jansson's own lookups find it, the same
 * compact dump bytes (JSON_COMPACT | JSON_ENCODE_ANY), and json_equal's answer on each pair
 * of elements or members of the root, and the depth as brackets counted outside strings give
 * it (what the decoder's depth cap used to count before parsing).
 */
#include <jansson.h>
#include <math.h>
#include <strings.h>

#include "cfwatchd/json.h"
#include "fuzz_util.h"

static struct cfw_json *parser;

FUZZ_INIT_QUIET

static bool same_node(const json_t *v, const struct cfw_json_node *n);

/* jansson's nocase lookup as decode.c's jget had it: the first key in iteration order. */
static const char *jansson_nocase(json_t *obj, const char *key)
{
    const char *k;
    json_t *v;

    json_object_foreach (obj, k, v) {
        if (strcasecmp(k, key) == 0) {
            return k;
        }
    }
    return NULL;
}

static bool same_object(json_t *v, const struct cfw_json_node *n)
{
    struct cfw_json_iter it;
    const char *k;
    json_t *jv;

    cfw_json_iter_init(n, &it);
    json_object_foreach (v, k, jv) {
        size_t len;
        const char *mine;

        FUZZ_CHECK(cfw_json_iter_next(parser, &it));
        mine = cfw_json_str(parser, it.key, &len);
        FUZZ_CHECK(len == json_object_iter_key_len(json_object_key_to_iter(k)));
        FUZZ_CHECK(memcmp(mine, k, len) == 0);
        FUZZ_CHECK(cfw_json_key_is(parser, it.key, k, false));
        FUZZ_CHECK(cfw_json_get(parser, n, k) == it.value);
        FUZZ_CHECK(cfw_json_get(parser, n, jansson_nocase(v, k)) ==
                   cfw_json_get_nocase(parser, n, k));
        if (!same_node(jv, it.value)) {
            return false;
        }
    }
    FUZZ_CHECK(!cfw_json_iter_next(parser, &it));
    return true;
}

static bool same_node(const json_t *v, const struct cfw_json_node *n)
{
    static const enum cfw_json_type types[] = {
        [JSON_OBJECT] = CFW_JSON_OBJECT, [JSON_ARRAY] = CFW_JSON_ARRAY,
        [JSON_STRING] = CFW_JSON_STRING, [JSON_INTEGER] = CFW_JSON_INTEGER,
        [JSON_REAL] = CFW_JSON_REAL,     [JSON_TRUE] = CFW_JSON_TRUE,
        [JSON_FALSE] = CFW_JSON_FALSE,   [JSON_NULL] = CFW_JSON_NULL,
    };
    size_t len;
    const char *s;

    if (v == NULL || n == NULL) {
        return v == NULL && n == NULL;
    }
    FUZZ_CHECK(types[json_typeof(v)] == cfw_json_type(n));
    FUZZ_CHECK(json_is_array(v) || json_is_object(v)
                   ? json_array_size(v) + json_object_size(v) == cfw_json_size(n)
                   : cfw_json_size(n) == 0);
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        FUZZ_CHECK(json_integer_value(v) == cfw_json_int(n));
        break;
    case JSON_REAL:
        FUZZ_CHECK(memcmp(&(double){json_real_value(v)}, &(double){cfw_json_real(n)},
                          sizeof(double)) == 0);
        break;
    case JSON_STRING:
        s = cfw_json_str(parser, n, &len);
        FUZZ_CHECK(len == json_string_length(v) && memcmp(s, json_string_value(v), len) == 0);
        FUZZ_CHECK(strlen(s) == len);
        break;
    case JSON_ARRAY:
        for (size_t i = 0; i < json_array_size(v); i++) {
            FUZZ_CHECK(same_node(json_array_get(v, i), cfw_json_at(n, i)));
        }
        FUZZ_CHECK(cfw_json_at(n, json_array_size(v)) == NULL);
        break;
    case JSON_OBJECT:
        FUZZ_CHECK(same_object((json_t *)v, n));
        break;
    default:
        break;
    }
    return true;
}

static int collect(const char *s, size_t n, void *arg)
{
    return cfw_buf_append(arg, s, n);
}

static void same_dump(json_t *v, const struct cfw_json_node *n)
{
    char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    struct cfw_buf mine;

    cfw_buf_init(&mine, SIZE_MAX / 4);
    FUZZ_CHECK(theirs != NULL);
    FUZZ_CHECK(cfw_json_dump(parser, n, collect, &mine) == 0);
    FUZZ_CHECK(mine.len == strlen(theirs));
    FUZZ_CHECK(mine.len == 0 || memcmp(mine.data, theirs, mine.len) == 0);
    free(theirs);
    cfw_buf_free(&mine);
}

/* json_equal on the pairs of the root's first elements or members (values of one tree). */
static void same_equal(json_t *v, const struct cfw_json_node *n)
{
    json_t *jv[8];
    const struct cfw_json_node *nv[8];
    size_t count = 0;
    struct cfw_json_iter it;

    cfw_json_iter_init(n, &it);
    while (count < 8 && cfw_json_iter_next(parser, &it)) {
        nv[count] = it.value;
        jv[count] = json_is_array(v) ? json_array_get(v, count)
                                     : json_object_get(v, cfw_json_str(parser, it.key, NULL));
        count++;
    }
    for (size_t a = 0; a < count; a++) {
        for (size_t b = 0; b < count; b++) {
            if (json_equal(jv[a], jv[b]) != (int)cfw_json_equal(parser, nv[a], nv[b])) {
                fprintf(stderr, "equal %zu %zu: %d\n", a, b, json_equal(jv[a], jv[b]));
            }
            FUZZ_CHECK(json_equal(jv[a], jv[b]) == (int)cfw_json_equal(parser, nv[a], nv[b]));
        }
    }
}

/* The nesting of brackets outside strings: for a valid text, its depth of containers. */
static size_t bracket_depth(const uint8_t *s, size_t n)
{
    size_t depth = 0;
    size_t max = 0;
    bool in_str = false;
    bool esc = false;

    for (size_t i = 0; i < n; i++) {
        if (in_str) {
            if (esc) {
                esc = false;
            } else if (s[i] == '\\') {
                esc = true;
            } else if (s[i] == '"') {
                in_str = false;
            }
        } else if (s[i] == '"') {
            in_str = true;
        } else if (s[i] == '{' || s[i] == '[') {
            max = ++depth > max ? depth : max;
        } else if ((s[i] == '}' || s[i] == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t err;
    json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, &err);
    const struct cfw_json_node *n;

    if (parser == NULL) {
        parser = cfw_json_new();
    }
    n = cfw_json_parse(parser, (const char *)data, size);
    if (v == NULL || n == NULL) {
        if ((v == NULL) != (n == NULL)) {
            fprintf(stderr, "jansson %s, cfw_json %s (jansson: %s)\n",
                    v != NULL ? "accepts" : "rejects", n != NULL ? "accepts" : "rejects",
                    v != NULL ? "-" : err.text);
        }
        FUZZ_CHECK((v == NULL) == (n == NULL));
        json_decref(v);
        return 0;
    }
    FUZZ_CHECK(cfw_json_root(parser) == n);
    FUZZ_CHECK(cfw_json_depth(parser) == bracket_depth(data, size));
    FUZZ_CHECK(same_node(v, n));
    same_dump(v, n);
    same_equal(v, n);
    json_decref(v);
    return 0;
}
