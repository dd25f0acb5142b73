/* Unit tests for yaml.c: node positions, diagnostics, typed getters and secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfwatchd/yaml.h"
#include "diag_check.h"
#include "test_util.h"

static struct cfw_doc *load(const char *text, struct cfw_diag *diag)
{
    return cfw_yaml_load_string("t.yaml", text, strlen(text), diag);
}

/* Asserts the line and column of node n. */
static void assert_pos(const struct cfw_node *n, int line, int col)
{
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

static void test_positions(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = cfw_yaml_load_file(CFW_TEST_DATA "/yaml/positions.yaml", &diag);
    const struct cfw_node *root, *inc, *list, *flow, *b;

    (void)state;
    diag_dump(&diag);
    assert_non_null(doc);
    assert_int_equal(diag.n, 0);
    root = doc->root;
    assert_int_equal(root->type, CFW_NODE_MAP);
    assert_int_equal(root->n, 3);
    assert_string_equal(root->keys[0], "name");
    assert_pos(root->keynodes[0], 2, 1);
    assert_pos(root->items[0], 2, 7);
    assert_string_equal(root->items[0]->value, "watcher");
    assert_false(root->items[0]->quoted);
    inc = cfw_node_get(root, "incidents");
    assert_non_null(inc);
    assert_pos(cfw_node_get(inc, "resolve_after"), 4, 18);
    assert_true(cfw_node_get(inc, "quoted")->quoted);
    assert_string_equal(cfw_node_get(inc, "quoted")->file, CFW_TEST_DATA "/yaml/positions.yaml");
    list = cfw_node_get(root, "list");
    assert_int_equal(list->type, CFW_NODE_SEQ);
    assert_int_equal(list->n, 2);
    assert_pos(list->items[0], 7, 5);
    flow = list->items[1];
    assert_int_equal(flow->type, CFW_NODE_MAP);
    assert_pos(flow, 8, 5);
    b = cfw_node_get(flow, "b");
    assert_int_equal(b->type, CFW_NODE_SEQ);
    assert_pos(b->items[1], 8, 19);
    assert_null(cfw_node_get(root, "missing"));
    assert_null(cfw_node_get(list, "a"));
    cfw_doc_free(doc);
    cfw_diag_free(&diag);
}

static void test_empty_and_missing(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc;

    (void)state;
    doc = load("# only a comment\n", &diag);
    assert_non_null(doc);
    assert_null(doc->root);
    cfw_doc_free(doc);
    doc = load("", &diag);
    assert_non_null(doc);
    assert_null(doc->root);
    cfw_doc_free(doc);
    assert_int_equal(diag.n, 0);
    doc = cfw_yaml_load_file(CFW_TEST_DATA "/yaml/does-not-exist.yaml", &diag);
    assert_null(doc);
    assert_int_equal(diag.n, 1);
    assert_true(diag_has(&diag, "does-not-exist.yaml: cannot open: No such file"));
    cfw_diag_free(&diag);
}

static void test_unknown_keys(void **state)
{
    static const char *const valid[] = {"name", "size", NULL};
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = load("section:\n  name: a\n  colour: b\n  sise: 3\n", &diag);
    const struct cfw_node *sec = cfw_node_get(doc->root, "section");

    (void)state;
    assert_int_equal(cfw_node_check_keys(sec, "section", valid, &diag), 2);
    diag_dump(&diag);
    assert_int_equal(diag.n, 2);
    assert_string_equal(diag.msgs[0], "t.yaml:3:3: section.colour: unknown key 'colour' (valid "
                                      "keys: name, size)");
    assert_string_equal(diag.msgs[1],
                        "t.yaml:4:3: section.sise: unknown key 'sise' (valid keys: name, size)");
    /* not a map */
    assert_int_equal(cfw_node_check_keys(cfw_node_get(sec, "name"), "section.name", valid, &diag),
                     1);
    assert_true(diag_has(&diag, "t.yaml:2:9: section.name: expected a map with keys name, size, "
                                "got a string"));
    /* absent and empty sections have no unknown keys */
    assert_int_equal(cfw_node_check_keys(NULL, "x", valid, &diag), 0);
    cfw_doc_free(doc);
    cfw_diag_free(&diag);
}

static void test_all_errors_collected(void **state)
{
    static const char *const valid[] = {"resolve_after", "enabled", NULL};
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = cfw_yaml_load_file(CFW_TEST_DATA "/yaml/three-problems.yaml", &diag);
    const struct cfw_node *inc = cfw_node_get(doc->root, "incidents");
    int64_t ms = 7;
    bool on = true;

    (void)state;
    cfw_node_check_keys(inc, "incidents", valid, &diag);
    assert_int_equal(cfw_node_duration(inc, "resolve_after", "incidents", &ms, &diag), -1);
    assert_int_equal(cfw_node_bool(inc, "enabled", "incidents", &on, &diag), -1);
    diag_dump(&diag);
    assert_int_equal(diag.n, 3);
    assert_int_equal(ms, 7);
    assert_true(on);
    ASSERT_DIAG_HAS_ALL(&diag,
                        "three-problems.yaml:3:3: incidents.colour: unknown key 'colour' "
                        "(valid keys: resolve_after, enabled)",
                        "three-problems.yaml:2:18: incidents.resolve_after: invalid "
                        "duration 'ten minutes' (use e.g. 30s, 5m, 4h)",
                        "three-problems.yaml:4:12: incidents.enabled: invalid boolean "
                        "'maybe' (use true or false)");
    cfw_doc_free(doc);
    cfw_diag_free(&diag);
}

static void test_anchors_refused(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = load("base: &b {x: 1}\nother: *b\n", &diag);

    (void)state;
    diag_dump(&diag);
    /* the tree is complete, so later checks still run; the problems are collected */
    assert_non_null(doc);
    assert_int_equal(diag.n, 2);
    assert_string_equal(diag.msgs[0],
                        "t.yaml:1:7: base: anchors and aliases are not supported (anchor '&b')");
    assert_string_equal(diag.msgs[1],
                        "t.yaml:2:8: other: anchors and aliases are not supported (alias '*b')");
    cfw_doc_free(doc);
    cfw_diag_free(&diag);
}

static void test_duplicate_keys(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = load("a: 1\nsub:\n  k: x\n  k: y\na: 2\n", &diag);
    const char *v = NULL;

    (void)state;
    diag_dump(&diag);
    assert_non_null(doc);
    assert_int_equal(diag.n, 2);
    assert_string_equal(diag.msgs[0], "t.yaml:4:3: sub.k: duplicate key 'k' (first at line 3)");
    assert_string_equal(diag.msgs[1], "t.yaml:5:1: a: duplicate key 'a' (first at line 1)");
    assert_int_equal(cfw_node_str(doc->root, "a", "", &v, NULL), 1);
    assert_string_equal(v, "1");
    cfw_doc_free(doc);
    cfw_diag_free(&diag);
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 2);

    for (int i = 0; i < depth; i++) {
        s[i] = '[';
        s[depth + i] = ']';
    }
    s[2 * depth] = '\n';
    s[2 * depth + 1] = '\0';
    return s;
}

static void test_depth_cap(void **state)
{
    struct cfw_diag diag = {0};
    char *ok = nested(64);
    char *deep = nested(65);
    struct cfw_doc *doc;

    (void)state;
    doc = load(ok, &diag);
    assert_non_null(doc);
    assert_int_equal(diag.n, 0);
    cfw_doc_free(doc);
    doc = load(deep, &diag);
    assert_null(doc);
    assert_int_equal(diag.n, 1);
    assert_string_equal(diag.msgs[0], "t.yaml:1:65: nesting deeper than 64 levels");
    free(ok);
    free(deep);
    cfw_diag_free(&diag);
}

static void test_multiple_documents(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = load("a: 1\n---\nb: 2\n", &diag);

    (void)state;
    assert_null(doc);
    assert_int_equal(diag.n, 1);
    assert_true(diag_has(&diag, "t.yaml:2:1: multiple YAML documents are not supported"));
    cfw_diag_free(&diag);
}

static void test_syntax_error(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = load("a: [1, 2\nb: 3\n", &diag);

    (void)state;
    diag_dump(&diag);
    assert_null(doc);
    assert_int_equal(diag.n, 1);
    /* libyaml's own problem text, its position and its context */
    assert_true(diag_has(&diag, "t.yaml:2:2: did not find expected ',' or ']' (while parsing a "
                                "flow sequence at line 1 column 4)"));
    cfw_diag_free(&diag);
    doc = load("a: \"bad \\q escape\"\n", &diag);
    assert_null(doc);
    ASSERT_DIAG_HAS_ALL(&diag, "t.yaml:1:", "found unknown escape character");
    cfw_diag_free(&diag);
}

static void test_size_cap(void **state)
{
    struct cfw_diag diag = {0};
    size_t n = 4u * 1024u * 1024u + 1u;
    char *big = malloc(n);
    struct cfw_doc *doc;
    char path[] = "/tmp/cfw-yaml-XXXXXX";
    int fd;

    (void)state;
    memset(big, '#', n);
    doc = cfw_yaml_load_string("big.yaml", big, n, &diag);
    assert_null(doc);
    assert_string_equal(diag.msgs[0], "big.yaml: file is larger than 4194304 bytes");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, big, n), (ssize_t)n);
    close(fd);
    doc = cfw_yaml_load_file(path, &diag);
    assert_null(doc);
    assert_int_equal(diag.n, 2);
    assert_non_null(strstr(diag.msgs[1], "file is larger than 4194304 bytes"));
    unlink(path);
    free(big);
    cfw_diag_free(&diag);
}

static void test_getters(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = load("s: hello\nm: {x: 1}\nb: yes\nn: 42\nbig: 4000\nneg: -1\n"
                               "nul: ~\nempty:\nq: 'null'\n",
                               &diag);
    const struct cfw_node *r = doc->root;
    const char *s = "untouched";
    bool b = false;
    uint64_t u = 9;

    (void)state;
    assert_int_equal(cfw_node_str(r, "s", "", &s, &diag), 1);
    assert_string_equal(s, "hello");
    s = "untouched";
    assert_int_equal(cfw_node_str(r, "absent", "", &s, &diag), 0);
    assert_string_equal(s, "untouched");
    assert_int_equal(cfw_node_str(r, "nul", "", &s, &diag), 0);
    assert_int_equal(cfw_node_str(r, "empty", "", &s, &diag), 0);
    assert_int_equal(cfw_node_str(r, "q", "", &s, &diag), 1);
    assert_string_equal(s, "null");
    assert_int_equal(diag.n, 0);
    assert_int_equal(cfw_node_str(r, "m", "top", &s, &diag), -1);
    assert_string_equal(diag.msgs[0], "t.yaml:2:4: top.m: expected a string, got a map");
    assert_int_equal(cfw_node_bool(r, "b", "", &b, &diag), 1);
    assert_true(b);
    assert_int_equal(cfw_node_u64(r, "n", "", 1, 100, &u, &diag), 1);
    assert_int_equal(u, 42);
    assert_int_equal(cfw_node_u64(r, "big", "", 1, 100, &u, &diag), -1);
    assert_int_equal(u, 42);
    assert_string_equal(diag.msgs[1], "t.yaml:5:6: big: 4000 is out of range (use 1 to 100)");
    assert_int_equal(cfw_node_u64(r, "neg", "", 0, 100, &u, &diag), -1);
    assert_string_equal(diag.msgs[2],
                        "t.yaml:6:6: neg: invalid number '-1' (use a whole number from 0 to 100)");
    /* the path is the map's; a path that already names the key is used as it is */
    assert_int_equal(cfw_node_u64(r, "big", "top.big", 1, 100, &u, &diag), -1);
    assert_string_equal(diag.msgs[3], "t.yaml:5:6: top.big: 4000 is out of range (use 1 to 100)");
    assert_int_equal(cfw_node_u64(r, "big", "top.xbig", 1, 100, &u, &diag), -1);
    assert_string_equal(diag.msgs[4],
                        "t.yaml:5:6: top.xbig.big: 4000 is out of range (use 1 to 100)");
    /* a required string: absent and null (`name: ~`) are both missing, never a silent NULL */
    {
        char *got = cfw_node_required_str(r, "s", "top", "needs s", &diag);

        assert_string_equal(got, "hello");
        free(got);
    }
    assert_null(cfw_node_required_str(r, "absent", "top", "needs absent", &diag));
    assert_string_equal(diag.msgs[5], "t.yaml:1:1: top: needs absent");
    assert_null(cfw_node_required_str(r, "nul", "top", "needs nul", &diag));
    assert_string_equal(diag.msgs[6], "t.yaml:1:1: top: needs nul");
    assert_null(cfw_node_required_str(r, "m", "top", "needs m", &diag));
    assert_string_equal(diag.msgs[7], "t.yaml:2:4: top.m: expected a string, got a map");
    assert_int_equal(diag.n, 8);
    cfw_doc_free(doc);
    cfw_diag_free(&diag);
}

static void test_durations(void **state)
{
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"30s", 30000}, {"5m", 300000}, {"4h", 14400000},
                {"250ms", 250}, {"90", 90000},  {"1h30m", 5400000}};
    struct cfw_diag diag = {0};
    char text[64];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct cfw_doc *doc;
        int64_t ms = 0;

        snprintf(text, sizeof(text), "d: %s\n", good[i].text);
        doc = load(text, &diag);
        assert_int_equal(cfw_node_duration(doc->root, "d", "", &ms, &diag), 1);
        assert_int_equal(ms, good[i].ms);
        cfw_doc_free(doc);
    }
    assert_int_equal(diag.n, 0);
    {
        struct cfw_doc *doc = load("incidents:\n    resolve_after: ten minutes\n", &diag);
        int64_t ms = 0;

        assert_int_equal(cfw_node_duration(cfw_node_get(doc->root, "incidents"), "resolve_after",
                                           "incidents", &ms, &diag),
                         -1);
        assert_string_equal(diag.msgs[0], "t.yaml:2:20: incidents.resolve_after: invalid "
                                          "duration 'ten minutes' (use e.g. 30s, 5m, 4h)");
        cfw_doc_free(doc);
    }
    cfw_diag_free(&diag);
}

static void test_strlist(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = load("one: solo\nmany: [a, 'b c', d]\nbad: [a, {x: 1}, [y]]\n"
                               "map: {k: v}\nnone: []\n",
                               &diag);
    char **list = NULL;

    (void)state;
    assert_int_equal(cfw_node_strlist(doc->root, "one", "", &list, &diag), 1);
    assert_string_equal(list[0], "solo");
    assert_null(list[1]);
    cfw_strlist_free(list);
    assert_int_equal(cfw_node_strlist(doc->root, "many", "", &list, &diag), 1);
    assert_string_equal(list[1], "b c");
    assert_string_equal(list[2], "d");
    assert_null(list[3]);
    cfw_strlist_free(list);
    assert_int_equal(cfw_node_strlist(doc->root, "none", "", &list, &diag), 1);
    assert_null(list[0]);
    cfw_strlist_free(list);
    list = NULL;
    assert_int_equal(cfw_node_strlist(doc->root, "absent", "", &list, &diag), 0);
    assert_null(list);
    assert_int_equal(diag.n, 0);
    assert_int_equal(cfw_node_strlist(doc->root, "bad", "top", &list, &diag), -1);
    assert_null(list);
    assert_int_equal(diag.n, 2);
    assert_string_equal(diag.msgs[0], "t.yaml:3:10: top.bad[1]: expected a string, got a map");
    assert_string_equal(diag.msgs[1], "t.yaml:3:18: top.bad[2]: expected a string, got a list");
    assert_int_equal(cfw_node_strlist(doc->root, "map", "", &list, &diag), -1);
    assert_true(diag_has(&diag, "map: expected a string or a list of strings, got a map"));
    cfw_strlist_free(NULL);
    cfw_doc_free(doc);
    cfw_diag_free(&diag);
}

static void test_diag_format(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_node n = {.file = "f.yaml", .line = 3, .col = 7};
    char *out = NULL;
    size_t len = 0;
    FILE *fp;

    (void)state;
    cfw_diag_add(&diag, &n, "a.b", "bad %s", "thing");
    cfw_diag_add(&diag, NULL, "a.b", "no node");
    cfw_diag_add(&diag, &n, NULL, "no path");
    cfw_diag_addf(&diag, "%s: plain", "file");
    cfw_diag_add(&diag, &n, "x", "control\x1b[31mchars\nhere");
    assert_string_equal(diag.msgs[0], "f.yaml:3:7: a.b: bad thing");
    assert_string_equal(diag.msgs[1], "a.b: no node");
    assert_string_equal(diag.msgs[2], "f.yaml:3:7: no path");
    assert_string_equal(diag.msgs[3], "file: plain");
    assert_string_equal(diag.msgs[4], "f.yaml:3:7: x: control?[31mchars?here");
    fp = open_memstream(&out, &len);
    cfw_diag_print(&diag, fp);
    fclose(fp);
    assert_non_null(strstr(out, "f.yaml:3:7: a.b: bad thing\na.b: no node\n"));
    free(out);
    cfw_diag_free(&diag);
    cfw_diag_free(&diag);
    cfw_diag_free(NULL);
}

static void test_diag_cap(void **state)
{
    struct cfw_diag diag = {0};

    (void)state;
    for (int i = 0; i < 2000; i++) {
        cfw_diag_addf(&diag, "problem %d", i);
    }
    assert_int_equal(diag.n, 501);
    assert_string_equal(diag.msgs[500], "too many problems; the rest are not shown");
    cfw_diag_free(&diag);
}

/* ---- secrets ---- */

static char tmpdir[64];

static int secrets_setup(void **state)
{
    (void)state;
    return tmpdir_make(tmpdir, sizeof(tmpdir), "secret");
}

static int secrets_teardown(void **state)
{
    (void)state;
    return tmpdir_remove(tmpdir);
}

static char *write_file(const char *name, const char *content, size_t len, mode_t mode)
{
    char *path = NULL;
    int fd;

    assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void assert_no_secret(const struct cfw_diag *d, const char *secret)
{
    for (size_t i = 0; i < d->n; i++) {
        assert_null(strstr(d->msgs[i], secret));
    }
}

/* Loads yaml as the file name and reads sink.token(_file). */
static int secret_at(const char *name, const char *yaml, char **out, struct cfw_diag *diag)
{
    struct cfw_doc *doc = cfw_yaml_load_string(name, yaml, strlen(yaml), diag);
    int rc;

    assert_non_null(doc);
    rc = cfw_node_secret(doc->root, "token", "token_file", "sink", out, diag);
    cfw_doc_free(doc);
    return rc;
}

static int secret_from(const char *yaml, char **out, struct cfw_diag *diag)
{
    return secret_at("t.yaml", yaml, out, diag);
}

/* secret_from() of "token_file: <path>". */
static int secret_from_file(const char *path, char **out, struct cfw_diag *diag)
{
    char *yaml = NULL;
    int rc;

    assert_true(asprintf(&yaml, "token_file: %s\n", path) > 0);
    rc = secret_from(yaml, out, diag);
    free(yaml);
    return rc;
}

/* Asserts that message i of d is the text that fmt makes. */
static void assert_msg(const struct cfw_diag *d, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void assert_msg(const struct cfw_diag *d, size_t i, const char *fmt, ...)
{
    va_list ap;
    char *want = NULL;

    va_start(ap, fmt);
    assert_true(vasprintf(&want, fmt, ap) > 0);
    va_end(ap);
    assert_true(i < d->n);
    assert_string_equal(d->msgs[i], want);
    free(want);
}

static void test_secret_env(void **state)
{
    struct cfw_diag diag = {0};
    char *out = NULL;

    (void)state;
    setenv("CFW_TEST_TOKEN", "s3cr3t-env", 1);
    unsetenv("CFW_TEST_UNSET");
    assert_int_equal(secret_from("token: ${CFW_TEST_TOKEN}\n", &out, &diag), 1);
    assert_string_equal(out, "s3cr3t-env");
    free(out);
    out = NULL;
    /* only the whole value is expanded */
    assert_int_equal(secret_from("token: x${CFW_TEST_TOKEN}\n", &out, &diag), 1);
    assert_string_equal(out, "x${CFW_TEST_TOKEN}");
    free(out);
    out = NULL;
    assert_int_equal(secret_from("token: ${CFW_TEST_UNSET}\n", &out, &diag), -1);
    assert_null(out);
    assert_string_equal(diag.msgs[0],
                        "t.yaml:1:8: sink.token: environment variable CFW_TEST_UNSET is not set");
    assert_int_equal(secret_from("other: 1\n", &out, &diag), 0);
    assert_int_equal(diag.n, 1);
    assert_no_secret(&diag, "s3cr3t-env");
    unsetenv("CFW_TEST_TOKEN");
    cfw_diag_free(&diag);
}

static void test_secret_file(void **state)
{
    struct cfw_diag diag = {0};
    char *good = write_file("good", "s3cr3t-file\n", 12, 0600);
    char *loose = write_file("loose", "s3cr3t-loose\n", 13, 0644);
    char *yaml = NULL;
    char *out = NULL;

    (void)state;
    assert_int_equal(secret_from_file(good, &out, &diag), 1);
    assert_string_equal(out, "s3cr3t-file");
    free(out);
    out = NULL;
    assert_int_equal(diag.n, 0);

    assert_int_equal(secret_from_file(loose, &out, &diag), -1);
    assert_null(out);
    assert_msg(&diag, 0,
               "t.yaml:1:13: sink.token_file: secret file %s is readable by group/others (mode "
               "0644); chmod 600 it",
               loose);

    assert_int_equal(secret_from("token_file: /nonexistent/cfw-secret\n", &out, &diag), -1);
    assert_string_equal(diag.msgs[1], "t.yaml:1:13: sink.token_file: cannot open secret file "
                                      "/nonexistent/cfw-secret: No such file or directory");

    assert_true(asprintf(&yaml, "token: x\ntoken_file: %s\n", good) > 0);
    assert_int_equal(secret_from(yaml, &out, &diag), -1);
    assert_string_equal(diag.msgs[2],
                        "t.yaml:2:13: sink.token_file: set either token or token_file, not both");
    free(yaml);
    /* a FIFO (no writer: opening it must not block) and a directory are refused by name */
    {
        char *fifo = NULL;

        assert_true(asprintf(&fifo, "%s/fifo", tmpdir) > 0);
        assert_int_equal(mkfifo(fifo, 0600), 0);
        assert_int_equal(secret_from_file(fifo, &out, &diag), -1);
        assert_msg(&diag, 3,
                   "t.yaml:1:13: sink.token_file: secret file %s: a FIFO, not a regular file",
                   fifo);
        assert_int_equal(secret_from_file(tmpdir, &out, &diag), -1);
        assert_non_null(strstr(diag.msgs[4], "a directory, not a regular file"));
        unlink(fifo);
        free(fifo);
    }
    assert_no_secret(&diag, "s3cr3t");
    free(good);
    free(loose);
    cfw_diag_free(&diag);
}

static void test_secret_file_caps(void **state)
{
    struct cfw_diag diag = {0};
    size_t n = 64u * 1024u + 1u;
    char *content = malloc(n);
    char *big, *empty, *nul, *crlf;
    char *out = NULL;

    (void)state;
    memset(content, 'k', n);
    big = write_file("big", content, n, 0600);
    empty = write_file("empty", "\n", 1, 0400);
    nul = write_file("nul", "ab\0cd", 5, 0600);
    crlf = write_file("crlf", "tok\r\n", 5, 0600);
    assert_int_equal(secret_from_file(big, &out, &diag), -1);
    assert_int_equal(secret_from_file(empty, &out, &diag), -1);
    assert_int_equal(secret_from_file(nul, &out, &diag), -1);
    assert_int_equal(secret_from_file(crlf, &out, &diag), 1);
    assert_string_equal(out, "tok");
    free(out);
    diag_dump(&diag);
    assert_int_equal(diag.n, 3);
    ASSERT_DIAG_HAS_ALL(&diag, "/big is larger than 65536 bytes", "/empty is empty",
                        "/nul contains a NUL byte");
    assert_no_secret(&diag, "kkkk");
    free(big);
    free(empty);
    free(nul);
    free(crlf);
    free(content);
    cfw_diag_free(&diag);
}

static void test_secret_credentials_dir(void **state)
{
    struct cfw_diag diag = {0};
    char *cred = write_file("pd_key", "routing-key-123\n", 16, 0400);
    char *out = NULL;

    (void)state;
    setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
    assert_int_equal(secret_from("token_file: pd_key\n", &out, &diag), 1);
    assert_string_equal(out, "routing-key-123");
    free(out);
    out = NULL;
    /* in neither place: the error lists both paths and names LoadCredential= */
    assert_int_equal(secret_from("token_file: no-such-cred\n", &out, &diag), -1);
    diag_dump(&diag);
    ASSERT_DIAG_HAS_ALL(&diag,
                        "t.yaml:1:13: sink.token_file: secret file no-such-cred not found "
                        "(tried ",
                        "/no-such-cred, ./no-such-cred); under systemd, "
                        "LoadCredential=no-such-cred:/path/to/file puts it in "
                        "$CREDENTIALS_DIRECTORY");
    unsetenv("CREDENTIALS_DIRECTORY");
    assert_no_secret(&diag, "routing-key");
    free(cred);
    cfw_diag_free(&diag);
}

/* Loads yaml as if it were the file cfgdir/cfwatchd.yaml and reads sink.token(_file). */
static int secret_in(const char *cfgdir, const char *yaml, char **out, struct cfw_diag *diag)
{
    char *name = NULL;
    int rc;

    assert_true(asprintf(&name, "%s/cfwatchd.yaml", cfgdir) > 0);
    rc = secret_at(name, yaml, out, diag);
    free(name);
    return rc;
}

/* Asserts that secret_in() reads the secret want. */
static void assert_secret_in(const char *cfgdir, const char *yaml, const char *want,
                             struct cfw_diag *diag)
{
    char *out = NULL;

    assert_int_equal(secret_in(cfgdir, yaml, &out, diag), 1);
    assert_string_equal(out, want);
    free(out);
}

/* The files of the lookup-order tests: in tmpdir, its creds/ and etc/ (named in creds, cfgdir). */
static void lookup_files(char *creds, char *cfgdir, size_t size)
{
    snprintf(creds, size, "%s/creds", tmpdir);
    snprintf(cfgdir, size, "%s/etc", tmpdir);
    assert_int_equal(mkdir(creds, 0700), 0);
    assert_int_equal(mkdir(cfgdir, 0755), 0);
    free(write_file("creds/both", "from-creds\n", 11, 0400));
    free(write_file("etc/both", "from-etc\n", 9, 0600));
    free(write_file("etc/only-etc", "etc-only\n", 9, 0600));
    free(write_file("creds/loose", "loose-creds\n", 12, 0644));
    free(write_file("etc/loose", "tight-etc\n", 10, 0600));
    free(write_file("etc/empty", "\n", 1, 0600));
    free(write_file("cwd-only", "cwd-secret\n", 11, 0600));
}

/* With $CREDENTIALS_DIRECTORY set: messages 0 to 2 of diag. */
static void lookup_with_credentials(const char *creds, const char *cfgdir, struct cfw_diag *diag)
{
    char *out = NULL;

    setenv("CREDENTIALS_DIRECTORY", creds, 1);
    assert_secret_in(cfgdir, "token_file: both\n", "from-creds", diag);
    assert_secret_in(cfgdir, "token_file: only-etc\n", "etc-only", diag);
    assert_int_equal(diag->n, 0);

    /* the credentials directory's file is refused; the one beside the config is not tried */
    assert_int_equal(secret_in(cfgdir, "token_file: loose\n", &out, diag), -1);
    assert_null(out);
    assert_msg(diag, 0,
               "%s/cfwatchd.yaml:1:13: sink.token_file: secret file %s/loose is readable by "
               "group/others (mode 0644); chmod 600 it",
               cfgdir, creds);
    /* found in the second place: a problem names the file and the paths tried */
    assert_int_equal(secret_in(cfgdir, "token_file: empty\n", &out, diag), -1);
    assert_msg(diag, 1,
               "%s/cfwatchd.yaml:1:13: sink.token_file: secret file %s/empty is empty (tried "
               "%s/empty, %s/empty)",
               cfgdir, cfgdir, creds, cfgdir);
    /* in neither: both paths, in order, and LoadCredential= */
    assert_int_equal(secret_in(cfgdir, "token_file: nowhere\n", &out, diag), -1);
    assert_msg(diag, 2,
               "%s/cfwatchd.yaml:1:13: sink.token_file: secret file nowhere not found (tried "
               "%s/nowhere, %s/nowhere); under systemd, LoadCredential=nowhere:/path/to/file puts "
               "it in $CREDENTIALS_DIRECTORY",
               cfgdir, creds, cfgdir);
}

/* With $CREDENTIALS_DIRECTORY unset (or empty): message 3 of diag. */
static void lookup_without_credentials(const char *cfgdir, struct cfw_diag *diag)
{
    char *out = NULL;

    /* unset (or empty): only the configuration's directory, and the message says so */
    setenv("CREDENTIALS_DIRECTORY", "", 1);
    assert_secret_in(cfgdir, "token_file: both\n", "from-etc", diag);
    unsetenv("CREDENTIALS_DIRECTORY");
    assert_secret_in(cfgdir, "token_file: loose\n", "tight-etc", diag);
    assert_int_equal(diag->n, 3);
    assert_int_equal(secret_in(cfgdir, "token_file: nowhere\n", &out, diag), -1);
    assert_msg(diag, 3,
               "%s/cfwatchd.yaml:1:13: sink.token_file: secret file nowhere not found (tried "
               "%s/nowhere); $CREDENTIALS_DIRECTORY is not set: under systemd, "
               "LoadCredential=nowhere:/path/to/file puts it there (by hand, set "
               "CREDENTIALS_DIRECTORY to the directory that holds it)",
               cfgdir, cfgdir);
}

/*
 * A relative *_file name: $CREDENTIALS_DIRECTORY first, then the configuration's directory,
 * never the current directory; the first that exists is the one checked.
 */
static void test_secret_lookup_order(void **state)
{
    struct cfw_diag diag = {0};
    char creds[128], cfgdir[128], cwd[4096], *out = NULL;
    char *p;

    (void)state;
    lookup_files(creds, cfgdir, sizeof(creds));
    lookup_with_credentials(creds, cfgdir, &diag);
    lookup_without_credentials(cfgdir, &diag);

    /* the current directory is not searched: only the configuration's directory is */
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(tmpdir), 0);
    assert_int_equal(secret_in(cfgdir, "token_file: cwd-only\n", &out, &diag), -1);
    assert_null(out);
    assert_true(diag_has(&diag, "secret file cwd-only not found"));
    /* a configuration named without a directory is in the current one */
    assert_int_equal(secret_from("token_file: cwd-only\n", &out, &diag), 1);
    assert_string_equal(out, "cwd-secret");
    free(out);
    /* an absolute path is used as it is, wherever the configuration is */
    assert_true(asprintf(&p, "token_file: %s/etc/only-etc\n", tmpdir) > 0);
    assert_secret_in("/nonexistent", p, "etc-only", &diag);
    free(p);
    assert_int_equal(chdir(cwd), 0);
    diag_dump(&diag);
    assert_int_equal(diag.n, 5);
    assert_no_secret(&diag, "from-");
    assert_no_secret(&diag, "tight-etc");
    cfw_diag_free(&diag);
}

/* A test run in a fresh temporary directory, tmpdir. */
#define SECRETS(test) cmocka_unit_test_setup_teardown(test, secrets_setup, secrets_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_empty_and_missing),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_all_errors_collected),
        cmocka_unit_test(test_anchors_refused),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_depth_cap),
        cmocka_unit_test(test_multiple_documents),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_strlist),
        cmocka_unit_test(test_diag_format),
        cmocka_unit_test(test_diag_cap),
        SECRETS(test_secret_env),
        SECRETS(test_secret_file),
        SECRETS(test_secret_file_caps),
        SECRETS(test_secret_credentials_dir),
        SECRETS(test_secret_lookup_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
