/*
 * Unit tests for gzip.c, the streaming decoder: members, padding, corrupt, truncated and empty
 * inputs, and the same output however the input is split (a member boundary at every offset).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/gzip.h"
#include "gzip_util.h"

/* What the decoder handed over: all of it, and how many calls. */
struct sink {
    struct cfw_buf b;
    size_t calls;
    size_t stop_after; /* return -1 once this many bytes arrived (0: never) */
};

static int collect(void *arg, const char *buf, size_t len, struct cfw_err *err)
{
    struct sink *s = arg;

    assert_true(len > 0);
    s->calls++;
    assert_int_equal(cfw_buf_append(&s->b, buf, len), 0);
    if (s->stop_after > 0 && s->b.len >= s->stop_after) {
        cfw_err_set(err, "enough after %zu bytes", s->b.len);
        return -1;
    }
    return 0;
}

/* Log-like text: n lines, some repeated (compressible), some varied. */
static char *lines(size_t n, size_t *len)
{
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    for (size_t i = 0; i < n; i++) {
        if (i % 7 == 3) {
            cfw_buf_printf(&b, "ModuleNotFoundError: No module named 'src' (%zu)\n", i);
        } else {
            cfw_buf_printf(&b, "GET /api/%zu 200 OK in %zu ms\n", i * 7919 % 1000, i % 13);
        }
    }
    *len = b.len;
    return cfw_buf_take(&b);
}

/* Decodes in, split at the given offsets (sorted, each < len); returns feed/finish's result. */
static int decode_split(const void *in, size_t len, const size_t *cuts, size_t ncuts,
                        struct sink *s, struct cfw_err *err)
{
    struct cfw_err e = {0};
    struct cfw_gzip *gz = cfw_gzip_new(collect, s, &e);
    size_t at = 0;
    int rc = 0;

    assert_non_null(gz);
    for (size_t k = 0; k <= ncuts && rc == 0; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        rc = cfw_gzip_feed(gz, (const char *)in + at, end - at, &e);
        at = end;
    }
    if (rc == 0) {
        rc = cfw_gzip_finish(gz, &e);
        if (rc == 0) {
            assert_int_equal(cfw_gzip_total_in(gz), len);
        }
    }
    assert_int_equal(cfw_gzip_total_out(gz), s->b.len);
    if (err != NULL) {
        *err = e;
    }
    cfw_gzip_free(gz);
    return rc;
}

static int decode(const void *in, size_t len, struct sink *s, struct cfw_err *err)
{
    return decode_split(in, len, NULL, 0, s, err);
}

/* Asserts that in, split at cuts, decodes to want; the sink's calls go to *calls when set. */
static void assert_decodes_to(const void *in, size_t len, const size_t *cuts, size_t ncuts,
                              const char *want, size_t wantlen, size_t *calls)
{
    struct sink s = {.b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};

    assert_int_equal(decode_split(in, len, cuts, ncuts, &s, NULL), 0);
    assert_int_equal(s.b.len, wantlen);
    assert_memory_equal(s.b.data, want, wantlen);
    if (calls != NULL) {
        *calls = s.calls;
    }
    cfw_buf_free(&s.b);
}

/* Asserts that decoding in fails with code and a message holding needle; err gets the error. */
static void assert_decode_fails(const void *in, size_t len, int code, const char *needle,
                                struct sink *s, struct cfw_err *err)
{
    assert_int_equal(decode(in, len, s, err), -1);
    assert_int_equal(err->code, code);
    assert_non_null(strstr(err->msg, needle));
}

/* Two members of log-like text (n1 and n2 lines) and the offset where the second begins. */
struct two_members {
    char *t1, *t2;
    size_t len1, len2;
    struct cfw_buf gz;
    size_t boundary;
};

static void two_members_make(struct two_members *m, size_t n1, size_t n2)
{
    memset(m, 0, sizeof(*m));
    cfw_buf_init(&m->gz, CFW_BUF_MAX_BUILT);
    m->t1 = lines(n1, &m->len1);
    m->t2 = lines(n2, &m->len2);
    gzip_member_append(&m->gz, m->t1, m->len1, 6);
    m->boundary = m->gz.len;
    gzip_member_append(&m->gz, m->t2, m->len2, 6);
}

static void two_members_free(struct two_members *m)
{
    free(m->t1);
    free(m->t2);
    cfw_buf_free(&m->gz);
}

static void test_magic(void **state)
{
    (void)state;
    assert_true(cfw_gzip_magic("\x1f\x8b\x08", 3));
    assert_true(cfw_gzip_magic("\x1f\x8b", 2));
    assert_false(cfw_gzip_magic("\x1f", 1));
    assert_false(cfw_gzip_magic("", 0));
    assert_false(cfw_gzip_magic("\x8b\x1f", 2));
    assert_false(cfw_gzip_magic("{\"a\"", 4));
}

static void test_one_member(void **state)
{
    size_t len;
    char *text = lines(5000, &len);
    struct cfw_buf gz = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);

    (void)state;
    gzip_member_append(&gz, text, len, 6);
    assert_decodes_to(gz.data, gz.len, NULL, 0, text, len, NULL);
    free(text);
    cfw_buf_free(&gz);
}

/* Output far over the decoder's buffer from a small input (a long run of one line). */
static void test_large_output(void **state)
{
    size_t len = 5u * 1024u * 1024u;
    char *text = malloc(len);
    struct cfw_buf gz = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    size_t calls = 0;

    (void)state;
    for (size_t i = 0; i < len; i++) {
        text[i] = i % 64 == 63 ? '\n' : 'x';
    }
    gzip_member_append(&gz, text, len, 9);
    assert_true(gz.len < len / 100);
    assert_decodes_to(gz.data, gz.len, NULL, 0, text, len, &calls);
    assert_true(calls > 1);
    free(text);
    cfw_buf_free(&gz);
}

/* Three members (one of them empty) fed in two pieces split at every offset, and byte by byte. */
static void test_members_split_everywhere(void **state)
{
    const char *a = "first member: GET / 200\n";
    const char *c = "third member: ModuleNotFoundError: No module named 'src'\n";
    struct cfw_buf gz = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    char want[256];
    size_t wantlen;

    (void)state;
    gzip_member_append(&gz, a, strlen(a), 6);
    gzip_member_append(&gz, "", 0, 6);
    gzip_member_append(&gz, c, strlen(c), 1);
    wantlen = (size_t)snprintf(want, sizeof(want), "%s%s", a, c);
    for (size_t cut = 0; cut <= gz.len; cut++) {
        assert_decodes_to(gz.data, gz.len, &cut, 1, want, wantlen, NULL);
    }
    {
        struct sink s = {.b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};
        struct cfw_err err = {0};
        struct cfw_gzip *dec = cfw_gzip_new(collect, &s, &err);
        for (size_t i = 0; i < gz.len; i++) {
            assert_int_equal(cfw_gzip_feed(dec, gz.data + i, 1, &err), 0);
        }
        assert_int_equal(cfw_gzip_finish(dec, &err), 0);
        assert_int_equal(cfw_gzip_members(dec), 3);
        assert_int_equal(s.b.len, wantlen);
        assert_memory_equal(s.b.data, want, wantlen);
        cfw_gzip_free(dec);
        cfw_buf_free(&s.b);
    }
    cfw_buf_free(&gz);
}

/* Many members of real size, with two cuts at every pair of nearby offsets around a boundary. */
static void test_member_boundary_every_offset(void **state)
{
    struct two_members m;
    char *want;

    (void)state;
    two_members_make(&m, 300, 400);
    want = cfw_xasprintf("%s%s", m.t1, m.t2);
    for (size_t c1 = m.boundary - 40; c1 <= m.boundary + 40; c1++) {
        for (size_t c2 = c1; c2 <= c1 + 24 && c2 <= m.gz.len; c2 += 3) {
            size_t cuts[2] = {c1, c2};

            assert_decodes_to(m.gz.data, m.gz.len, cuts, 2, want, m.len1 + m.len2, NULL);
        }
    }
    free(want);
    two_members_free(&m);
}

static void test_zero_padding(void **state)
{
    const char *a = "padded\n";
    struct cfw_buf gz = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    static const char zeros[1024];
    struct sink s = {.b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};
    size_t mid;

    (void)state;
    gzip_member_append(&gz, a, strlen(a), 6);
    mid = gz.len + 3;
    cfw_buf_append(&gz, zeros, sizeof(zeros));
    assert_int_equal(decode(gz.data, gz.len, &s, NULL), 0);
    assert_int_equal(s.b.len, strlen(a));
    cfw_buf_free(&s.b);
    /* split inside the padding */
    assert_int_equal(decode_split(gz.data, gz.len, &mid, 1, &s, NULL), 0);
    assert_int_equal(s.b.len, strlen(a));
    cfw_buf_free(&s.b);
    cfw_buf_free(&gz);
}

static void test_trailing_garbage(void **state)
{
    const char *a = "before the garbage\n";
    struct cfw_buf gz = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_err err = {0};
    struct sink s = {.b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};
    size_t end;

    (void)state;
    gzip_member_append(&gz, a, strlen(a), 6);
    end = gz.len;
    cfw_buf_puts(&gz, "garbage");
    assert_decode_fails(gz.data, gz.len, CFW_GZIP_E_TRAILING,
                        "trailing garbage after gzip member 1", &s, &err);
    {
        char at[64];
        snprintf(at, sizeof(at), "at byte %zu", end);
        assert_non_null(strstr(err.msg, at));
    }
    /* what came before the garbage was delivered */
    assert_int_equal(s.b.len, strlen(a));
    assert_memory_equal(s.b.data, a, strlen(a));
    cfw_buf_free(&s.b);
    /* zero padding, then garbage */
    gz.len = end;
    cfw_buf_append(&gz, "\0\0\0x", 4);
    assert_decode_fails(gz.data, gz.len, CFW_GZIP_E_TRAILING, "zero padding", &s, &err);
    cfw_buf_free(&s.b);
    cfw_buf_free(&gz);
}

/* A damaged second member: the first member's output is kept, the error gives the offset. */
static void test_corrupt(void **state)
{
    struct two_members m;
    struct cfw_err err = {0};
    struct sink s = {.b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};
    unsigned long long at;
    const char *p;

    (void)state;
    two_members_make(&m, 200, 3000);
    /* a byte in the middle of the second member's deflate data, inverted */
    m.gz.data[m.boundary + (m.gz.len - m.boundary) / 2] ^= 0xff;
    assert_decode_fails(m.gz.data, m.gz.len, CFW_GZIP_E_CORRUPT, "corrupt gzip data at byte ", &s,
                        &err);
    assert_non_null(strstr(err.msg, "(member 2: "));
    p = strstr(err.msg, "at byte ") + strlen("at byte ");
    at = strtoull(p, NULL, 10);
    assert_true(at > m.boundary && at <= m.gz.len);
    assert_true(s.b.len >= m.len1);
    assert_memory_equal(s.b.data, m.t1, m.len1);
    /* the same error again on any later call */
    {
        struct cfw_err again = {0};
        struct cfw_gzip *dec = cfw_gzip_new(collect, &s, &again);
        assert_int_equal(cfw_gzip_feed(dec, m.gz.data, m.gz.len, &again), -1);
        assert_int_equal(cfw_gzip_feed(dec, "x", 1, &again), -1);
        assert_string_equal(again.msg, err.msg);
        assert_int_equal(cfw_gzip_finish(dec, &again), -1);
        assert_string_equal(again.msg, err.msg);
        cfw_gzip_free(dec);
    }
    cfw_buf_free(&s.b);
    two_members_free(&m);
}

static void test_bad_checksum_and_header(void **state)
{
    const char *a = "checked\n";
    struct cfw_buf gz = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_err err = {0};
    struct sink s = {.b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};

    (void)state;
    gzip_member_append(&gz, a, strlen(a), 6);
    gz.data[gz.len - 6] ^= 0x01; /* CRC-32 of the trailer */
    assert_decode_fails(gz.data, gz.len, CFW_GZIP_E_CORRUPT, "incorrect data check", &s, &err);
    cfw_buf_free(&s.b);
    gz.data[gz.len - 6] ^= 0x01;
    gz.data[gz.len - 2] ^= 0x01; /* ISIZE */
    assert_decode_fails(gz.data, gz.len, CFW_GZIP_E_CORRUPT, "incorrect length check", &s, &err);
    cfw_buf_free(&s.b);
    /* a second member whose magic is right but whose method byte is not deflate */
    gz.data[gz.len - 2] ^= 0x01;
    cfw_buf_append(&gz, "\x1f\x8b\x07\x00", 4);
    assert_decode_fails(gz.data, gz.len, CFW_GZIP_E_CORRUPT, "(member 2: ", &s, &err);
    assert_int_equal(s.b.len, strlen(a));
    cfw_buf_free(&s.b);
    /* not gzip at all */
    assert_decode_fails("plain text\n", 11, CFW_GZIP_E_CORRUPT, "not gzip data", &s, &err);
    cfw_buf_free(&s.b);
    cfw_buf_free(&gz);
}

/* Cut at every length: a prefix of the output, and "truncated" only when inside a member. */
static void test_truncated_everywhere(void **state)
{
    struct two_members m;

    (void)state;
    two_members_make(&m, 150, 150);
    for (size_t cut = 1; cut < m.gz.len; cut++) {
        struct cfw_err err = {0};
        struct sink s = {.b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};

        if (cut == m.boundary) {
            assert_int_equal(decode(m.gz.data, cut, &s, &err), 0);
            assert_int_equal(s.b.len, m.len1);
        } else {
            char want[96];

            snprintf(want, sizeof(want), "truncated gzip member (member %d begins at byte %zu",
                     cut < m.boundary ? 1 : 2, cut < m.boundary ? (size_t)0 : m.boundary);
            assert_decode_fails(m.gz.data, cut, CFW_GZIP_E_TRUNCATED, want, &s, &err);
            assert_true(s.b.len <= m.len1 + m.len2);
            assert_memory_equal(s.b.data, m.t1, s.b.len < m.len1 ? s.b.len : m.len1);
        }
        cfw_buf_free(&s.b);
    }
    two_members_free(&m);
}

static void test_empty(void **state)
{
    struct cfw_buf gz = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_err err = {0};
    struct sink s = {.b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};
    struct cfw_gzip *dec;

    (void)state;
    /* no input at all: nothing to say */
    dec = cfw_gzip_new(collect, &s, &err);
    assert_int_equal(cfw_gzip_feed(dec, "", 0, &err), 0);
    assert_int_equal(cfw_gzip_finish(dec, &err), 0);
    assert_int_equal(cfw_gzip_members(dec), 0);
    assert_int_equal(cfw_gzip_total_out(dec), 0);
    cfw_gzip_free(dec);
    cfw_gzip_free(NULL);
    /* one empty member */
    gzip_member_append(&gz, "", 0, 6);
    assert_int_equal(decode(gz.data, gz.len, &s, &err), 0);
    assert_int_equal(s.b.len, 0);
    assert_int_equal(s.calls, 0);
    cfw_buf_free(&gz);
}

static void test_callback_stops(void **state)
{
    size_t len;
    char *text = lines(20000, &len);
    struct cfw_buf gz = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_err err = {0};
    struct sink s = {.b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT), .stop_after = 1};

    (void)state;
    gzip_member_append(&gz, text, len, 6);
    assert_int_equal(decode(gz.data, gz.len, &s, &err), -1);
    assert_int_equal(err.code, CFW_GZIP_E_STOPPED);
    assert_non_null(strstr(err.msg, "enough after "));
    assert_int_equal(s.calls, 1);
    assert_true(s.b.len < len);
    cfw_buf_free(&s.b);
    free(text);
    cfw_buf_free(&gz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magic),
        cmocka_unit_test(test_one_member),
        cmocka_unit_test(test_large_output),
        cmocka_unit_test(test_members_split_everywhere),
        cmocka_unit_test(test_member_boundary_every_offset),
        cmocka_unit_test(test_zero_padding),
        cmocka_unit_test(test_trailing_garbage),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_bad_checksum_and_header),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_callback_stops),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
