/* Unit tests for schema.c: defaults, typed readers, bounds, readers and checks of a table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/schema.h"
#include "diag_check.h"

struct conf {
    char *name;
    char **tags;
    bool on;
    size_t size;
    unsigned count;
    int64_t wait_ms;
    int64_t max_ms;
    double rate;
    int mode; /* read by its own reader */
};

static int read_mode(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                     void *conf, struct cfw_diag *diag)
{
    const char *s = NULL;
    int rc = cfw_node_str(map, k->name, path, &s, diag);
    char *kp;

    if (rc != 1) {
        return rc;
    }
    if (strcmp(s, "fast") == 0 || strcmp(s, "slow") == 0) {
        ((struct conf *)conf)->mode = s[0] == 'f' ? 1 : 2;
        return 1;
    }
    kp = cfw_schema_path(k, path);
    cfw_diag_add(diag, cfw_node_get(map, k->name), kp, "unknown mode '%s'", s);
    free(kp);
    return -1;
}

static bool tag_ok(const char *s)
{
    return strchr(s, ' ') == NULL;
}

static int check_tags(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                      void *conf, struct cfw_diag *diag)
{
    return cfw_schema_check_items(k, map, path, ((struct conf *)conf)->tags, tag_ok, "",
                                  "has a space", diag);
}

static int check_waits(const struct cfw_node *map, const char *path, void *conf,
                       struct cfw_diag *diag)
{
    const struct conf *c = conf;

    if (c->max_ms < c->wait_ms) {
        cfw_diag_add(diag, map, path, "max must not be less than wait");
        return -1;
    }
    return 0;
}

static const struct cfw_schema_key keys[] = {
    {.name = "name", .type = CFW_SCHEMA_STR, .offset = offsetof(struct conf, name)},
    {.name = "tags",
     .type = CFW_SCHEMA_STRLIST,
     .offset = offsetof(struct conf, tags),
     .check = check_tags},
    {.name = "on", .type = CFW_SCHEMA_BOOL, .offset = offsetof(struct conf, on), .def = 1},
    {.name = "size",
     .type = CFW_SCHEMA_SIZE,
     .offset = offsetof(struct conf, size),
     .def = 4096,
     .min = 512,
     .max = 65536},
    {.name = "count",
     .type = CFW_SCHEMA_UINT,
     .offset = offsetof(struct conf, count),
     .def = 3,
     .min = 1,
     .max = 10},
    {.name = "wait",
     .type = CFW_SCHEMA_DURATION,
     .offset = offsetof(struct conf, wait_ms),
     .def = 1000,
     .min = 10},
    {.name = "max",
     .type = CFW_SCHEMA_DURATION,
     .offset = offsetof(struct conf, max_ms),
     .def = 60000,
     .min = 100,
     .max = 3600000,
     .bounds = "must be between 100ms and 1h"},
    {.name = "rate", .type = CFW_SCHEMA_DOUBLE, .offset = offsetof(struct conf, rate), .def = 0.5},
    {.name = "mode", .offset = offsetof(struct conf, mode), .read = read_mode},
    {.name = "other"},
    {0},
};

static const struct cfw_schema schema = {.keys = keys, .check = check_waits};

static void conf_clear(struct conf *c)
{
    free(c->name);
    cfw_strlist_free(c->tags);
    memset(c, 0, sizeof(*c));
}

/* Parses text (a YAML map) into c after the defaults; the result of cfw_schema_parse. */
static int parse(const char *text, struct conf *c, struct cfw_diag *diag)
{
    struct cfw_doc *doc = cfw_yaml_load_string("s.yaml", text, strlen(text), diag);
    int rc;

    assert_non_null(doc);
    memset(c, 0, sizeof(*c));
    cfw_schema_defaults(&schema, c);
    rc = cfw_schema_parse(&schema, doc->root, "sec", c, diag);
    cfw_doc_free(doc);
    return rc;
}

static void test_defaults_and_values(void **state)
{
    struct cfw_diag diag = {0};
    struct conf c;

    (void)state;
    assert_int_equal(parse("name: x\n", &c, &diag), 0);
    assert_string_equal(c.name, "x");
    assert_null(c.tags);
    assert_true(c.on);
    assert_int_equal(c.size, 4096);
    assert_int_equal(c.count, 3);
    assert_int_equal(c.wait_ms, 1000);
    assert_int_equal(c.max_ms, 60000);
    assert_true(c.rate == 0.5);
    assert_int_equal(c.mode, 0);
    conf_clear(&c);
    assert_int_equal(parse("{name: y, tags: [a, b], on: false, size: 1024, count: 10, wait: 2s, "
                           "max: 1h, mode: slow, other: anything}\n",
                           &c, &diag),
                     0);
    assert_int_equal(diag.n, 0);
    assert_string_equal(c.tags[1], "b");
    assert_null(c.tags[2]);
    assert_false(c.on);
    assert_int_equal(c.size, 1024);
    assert_int_equal(c.count, 10);
    assert_int_equal(c.wait_ms, 2000);
    assert_int_equal(c.max_ms, 3600000);
    assert_int_equal(c.mode, 2);
    assert_string_equal(cfw_schema_str(&schema, &c, "name"), "y");
    assert_null(cfw_schema_str(&schema, &c, "size"));
    assert_null(cfw_schema_find(&schema, "nope"));
    conf_clear(&c);
    cfw_diag_free(&diag);
}

static void test_every_problem_with_its_place(void **state)
{
    struct cfw_diag diag = {0};
    struct conf c;

    (void)state;
    assert_int_equal(parse("name: [x]\n"
                           "tags: [ok, 'a b']\n"
                           "on: maybe\n"
                           "size: 10\n"
                           "count: x\n"
                           "wait: 5ms\n"
                           "max: 2h\n"
                           "mode: medium\n"
                           "colour: red\n",
                           &c, &diag),
                     -1);
    for (size_t i = 0; i < diag.n; i++) {
        print_message("%s\n", diag.msgs[i]);
    }
    assert_int_equal(diag.n, 9);
    /* unknown keys first, with the valid ones in the table's order */
    assert_true(diag_has(&diag, "s.yaml:9:1: sec.colour: unknown key 'colour' (valid keys: name, "
                                "tags, on, size, count, wait, max, rate, mode, other)"));
    assert_true(diag_has(&diag, "s.yaml:1:7: sec.name: expected a string, got a list"));
    assert_true(diag_has(&diag, "s.yaml:2:7: sec.tags: 'a b' has a space"));
    assert_true(diag_has(&diag, "sec.on: invalid boolean 'maybe'"));
    assert_true(diag_has(&diag, "sec.size: 10 is out of range (use 512 to 65536)"));
    assert_true(diag_has(&diag, "sec.count: invalid number 'x'"));
    assert_true(diag_has(&diag, "s.yaml:6:7: sec.wait: must be at least 10ms"));
    assert_true(diag_has(&diag, "s.yaml:7:6: sec.max: must be between 100ms and 1h"));
    assert_true(diag_has(&diag, "sec.mode: unknown mode 'medium'"));
    /* a value out of bounds is not stored: the default stays */
    assert_int_equal(c.size, 4096);
    assert_int_equal(c.wait_ms, 1000);
    assert_int_equal(c.max_ms, 60000);
    conf_clear(&c);
    cfw_diag_free(&diag);
}

static void test_section_check_and_not_a_map(void **state)
{
    struct cfw_diag diag = {0};
    struct conf c;

    (void)state;
    assert_int_equal(parse("{wait: 10s, max: 1s}\n", &c, &diag), -1);
    assert_int_equal(diag.n, 1);
    assert_true(diag_has(&diag, "s.yaml:1:1: sec: max must not be less than wait"));
    conf_clear(&c);
    cfw_diag_free(&diag);
    memset(&diag, 0, sizeof(diag));
    assert_int_equal(parse("[a, b]\n", &c, &diag), -1);
    assert_int_equal(diag.n, 1);
    assert_true(diag_has(&diag, "sec: expected a map with keys name, tags,"));
    conf_clear(&c);
    cfw_diag_free(&diag);
}

/* A row read by its type's reader for another row; a top-level row's path has no dot. */
static void test_read_typed_and_top_level_path(void **state)
{
    const char *text = "{max: 10ms, name: x}\n";
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = cfw_yaml_load_string("s.yaml", text, strlen(text), &diag);
    const struct cfw_schema_key *max = cfw_schema_find(&schema, "max");
    struct conf c = {0};
    char *kp;

    (void)state;
    assert_non_null(doc);
    assert_int_equal(
        cfw_schema_read_typed(cfw_schema_find(&schema, "name"), doc->root, "", &c, &diag), 1);
    assert_string_equal(c.name, "x");
    assert_int_equal(cfw_schema_read_typed(max, doc->root, "", &c, &diag), -1);
    assert_int_equal(diag.n, 1);
    assert_true(diag_has(&diag, "s.yaml:1:7: max: must be between 100ms and 1h"));
    assert_int_equal(
        cfw_schema_read_typed(cfw_schema_find(&schema, "wait"), doc->root, "", &c, &diag), 0);
    kp = cfw_schema_path(max, "");
    assert_string_equal(kp, "max");
    free(kp);
    kp = cfw_schema_path(max, "sec");
    assert_string_equal(kp, "sec.max");
    free(kp);
    conf_clear(&c);
    cfw_doc_free(doc);
    cfw_diag_free(&diag);
}

/* A uint64_t row: its default, a value beyond 32 bits, and its bounds. */
static void test_u64(void **state)
{
    struct big {
        uint64_t bytes;
    };
    static const struct cfw_schema_key big_keys[] = {
        {.name = "bytes",
         .type = CFW_SCHEMA_U64,
         .offset = offsetof(struct big, bytes),
         .def = 67108864,
         .min = 4096,
         .max = UINT64_MAX / 2},
        {0},
    };
    static const struct cfw_schema big_schema = {big_keys, NULL};
    const char *texts[] = {"{}\n", "bytes: 8589934592\n", "bytes: 100\n"};
    const uint64_t want[] = {67108864, 8589934592ULL, 67108864};
    struct cfw_diag diag = {0};

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct cfw_doc *doc = cfw_yaml_load_string("s.yaml", texts[i], strlen(texts[i]), &diag);
        struct big b = {0};

        assert_non_null(doc);
        cfw_schema_defaults(&big_schema, &b);
        assert_int_equal(cfw_schema_parse(&big_schema, doc->root, "sec", &b, &diag),
                         i < 2 ? 0 : -1);
        assert_true(b.bytes == want[i]);
        cfw_doc_free(doc);
    }
    assert_int_equal(diag.n, 1);
    assert_true(diag_has(&diag, "s.yaml:1:8: sec.bytes: 100 is out of range (use 4096 to "
                                "9223372036854775807)"));
    cfw_diag_free(&diag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_every_problem_with_its_place),
        cmocka_unit_test(test_section_check_and_not_a_map),
        cmocka_unit_test(test_read_typed_and_top_level_path),
        cmocka_unit_test(test_u64),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
