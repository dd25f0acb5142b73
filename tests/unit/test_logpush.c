/* Unit tests for logpush.c: bounded gunzip (bombs, corrupt and truncated streams), config. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/logpush.h"
#include "gzip_util.h"
#include "test_util.h"

/* in as one gzip member at level 9 (free it). */
static char *gzip_bytes(const char *in, size_t len, size_t *outlen)
{
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    gzip_member_append(&b, in, len, 9);
    *outlen = b.len;
    return cfw_buf_take(&b);
}

/* Asserts that cfw_gunzip() refuses in with the error code given and hands out nothing. */
static void gunzip_refused(const char *in, size_t inlen, size_t max_out, unsigned max_ratio,
                           int code)
{
    struct cfw_err err = {0};
    char *out = NULL;
    size_t olen;

    assert_int_equal(cfw_gunzip(in, inlen, max_out, max_ratio, &out, &olen, &err), -1);
    assert_int_equal(err.code, code);
    assert_null(out);
}

static void test_gunzip_ok(void **state)
{
    const char *text = "{\"content\":\"tests\"}\n";
    struct cfw_err err = {0};
    size_t glen, olen;
    char *gz = gzip_bytes(text, strlen(text), &glen);
    char *out = NULL;

    (void)state;
    assert_int_equal(cfw_gunzip(gz, glen, 1024, 100, &out, &olen, &err), 0);
    assert_int_equal(olen, strlen(text));
    assert_memory_equal(out, text, olen);
    free(out);
    free(gz);
}

static void test_gunzip_bomb(void **state)
{
    size_t n = 64u * 1024u * 1024u;
    char *zeros = calloc(1, n);
    struct cfw_err err = {0};
    size_t glen, olen;
    char *gz = gzip_bytes(zeros, n, &glen);
    char *out = NULL;

    (void)state;
    /* 64 MiB of zeros compress ~1000:1: refused by the ratio long before the size cap */
    assert_int_equal(cfw_gunzip(gz, glen, 256u * 1024u * 1024u, 200, &out, &olen, &err), -1);
    assert_int_equal(err.code, 413);
    ASSERT_HAS_ALL(err.msg, "ratio");
    assert_null(out);
    /* and by the size cap when the ratio is allowed */
    gunzip_refused(gz, glen, 1024u * 1024u, 0, 413);
    free(gz);
    free(zeros);
}

static void test_gunzip_corrupt(void **state)
{
    const char *text = "line one\nline two\nline three\n";
    size_t glen;
    char *gz = gzip_bytes(text, strlen(text), &glen);

    (void)state;
    /* truncated */
    gunzip_refused(gz, glen / 2, 1024, 100, 400);
    /* flipped bytes in the deflate stream */
    gz[12] ^= 0x5a;
    gz[13] ^= 0xa5;
    gunzip_refused(gz, glen, 1024, 100, 400);
    free(gz);
}

/* Several gzip members (RFC 1952 2.2) are all read; padding after them too; garbage is not. */
static void test_gunzip_members(void **state)
{
    const char *parts[] = {"{\"a\":1}\n", "{\"b\":2}\n", "{\"c\":3}\n"};
    char body[1024];
    size_t blen = 0;
    struct cfw_err err = {0};
    size_t olen;
    size_t last = 0;
    char *out = NULL;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        size_t glen;
        char *gz = gzip_bytes(parts[i], strlen(parts[i]), &glen);

        assert_true(blen + glen < sizeof(body) - 16);
        memcpy(body + blen, gz, glen);
        last = blen;
        blen += glen;
        free(gz);
    }
    assert_int_equal(cfw_gunzip(body, blen, 1024, 100, &out, &olen, &err), 0);
    assert_int_equal(olen, 24);
    assert_memory_equal(out, "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n", 24);
    free(out);
    /* zero padding after the last member */
    memset(body + blen, 0, 8);
    assert_int_equal(cfw_gunzip(body, blen + 8, 1024, 100, &out, &olen, &err), 0);
    assert_int_equal(olen, 24);
    free(out);
    /* garbage after it: refused, not half read */
    memcpy(body + blen, "garbage!", 8);
    gunzip_refused(body, blen + 8, 1024, 100, 400);
    /* the last member cut short */
    gunzip_refused(body, last + 12, 1024, 100, 400);
    /* the caps count every member */
    gunzip_refused(body, blen, 20, 0, 413);
}

static void test_conf(void **state)
{
    static const char good[] = "- name: workers\n  type: logpush\n  token: '0123456789abcdef0'\n"
                               "  header: X-Logpush-Secret\n  max_records: 10\n";
    static const char bad[] = "- name: 'a/b'\n  type: logpush\n  token: short\n  bogus: 1\n";
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = cfw_yaml_load_string("c.yaml", good, strlen(good), &diag);
    struct cfw_logpush_conf conf;

    (void)state;
    assert_non_null(doc);
    assert_true(cfw_logpush_is(doc->root->items[0]));
    assert_int_equal(cfw_logpush_conf_parse(doc->root->items[0], "sources[0]", &conf, &diag), 0);
    assert_string_equal(conf.name, "workers");
    assert_string_equal(conf.header, "X-Logpush-Secret");
    assert_int_equal(conf.max_records, 10);
    assert_int_equal(conf.max_body, CFW_LOGPUSH_MAX_BODY_DEFAULT);
    cfw_logpush_conf_clear(&conf);
    cfw_doc_free(doc);

    doc = cfw_yaml_load_string("c.yaml", bad, strlen(bad), &diag);
    assert_int_equal(cfw_logpush_conf_parse(doc->root->items[0], "sources[0]", &conf, &diag), -1);
    /* unknown key, bad name, short token: all reported, none of them showing the token */
    assert_int_equal(diag.n, 3);
    for (size_t i = 0; i < diag.n; i++) {
        assert_null(strstr(diag.msgs[i], "short'"));
        assert_non_null(strstr(diag.msgs[i], "c.yaml:"));
    }
    cfw_diag_free(&diag);
    cfw_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gunzip_ok),
        cmocka_unit_test(test_gunzip_bomb),
        cmocka_unit_test(test_gunzip_corrupt),
        cmocka_unit_test(test_gunzip_members),
        cmocka_unit_test(test_conf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
