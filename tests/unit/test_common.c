/* Unit tests for common.c: capped buffers, fields, number and duration parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/common.h"

static void test_buf_cap(void **state)
{
    struct cfw_buf b = {.max = 8};

    (void)state;
    assert_int_equal(cfw_buf_puts(&b, "12345"), 0);
    assert_int_equal(cfw_buf_puts(&b, "6789"), -1);
    assert_string_equal(b.data, "12345");
    assert_int_equal(cfw_buf_puts(&b, "678"), 0);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(cfw_buf_putc(&b, 'x'), -1);
    cfw_buf_free(&b);
}

static void test_fields(void **state)
{
    struct cfw_fields f = {0};
    struct cfw_fields g = {0};

    (void)state;
    cfw_fields_set(&f, "script", "a");
    cfw_fields_set(&f, "script", "b");
    cfw_fields_set_default(&f, "script", "c");
    cfw_fields_set_default(&f, "module", "src");
    assert_string_equal(cfw_fields_get(&f, "script"), "b");
    assert_string_equal(cfw_fields_get(&f, "module"), "src");
    assert_null(cfw_fields_get(&f, "missing"));
    cfw_fields_copy(&g, &f);
    assert_int_equal(g.n, 2);
    cfw_fields_clear(&f);
    cfw_fields_clear(&g);
}

/* Values kept in the set's blocks: grown, shrunk, set from themselves, past many blocks. */
static void test_fields_blocks(void **state)
{
    struct cfw_fields f = {0};
    struct cfw_fields g = {0};
    char big[3000];
    char key[16];
    const char *kept;

    (void)state;
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cfw_fields_set(&f, "msg", "short");
    kept = cfw_fields_get(&f, "msg");
    cfw_fields_set(&f, "other", "o");
    assert_ptr_equal(cfw_fields_get(&f, "msg"), kept); /* another key does not move it */
    cfw_fields_set(&f, "msg", big);                    /* grows past its room */
    assert_string_equal(cfw_fields_get(&f, "msg"), big);
    cfw_fields_set(&f, "msg", "tiny"); /* shrinks in place */
    assert_string_equal(cfw_fields_get(&f, "msg"), "tiny");
    cfw_fields_set(&f, "msg", cfw_fields_get(&f, "msg") + 2); /* from its own bytes */
    assert_string_equal(cfw_fields_get(&f, "msg"), "ny");
    cfw_fields_setn(&f, "msg", "abcdef", 3);
    assert_string_equal(cfw_fields_get(&f, "msg"), "abc");
    for (int i = 0; i < 200; i++) { /* a key set again and again, growing */
        big[i + 1] = '\0';
        cfw_fields_set(&f, "grow", big);
        big[i + 1] = 'x';
        assert_int_equal(strlen(cfw_fields_get(&f, "grow")), (size_t)i + 1);
    }
    for (int i = 0; i < 100; i++) { /* many keys, many blocks */
        snprintf(key, sizeof(key), "k%d", i);
        cfw_fields_set(&f, key, key);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_string_equal(cfw_fields_get(&f, key), key);
    }
    assert_string_equal(cfw_fields_get(&f, "other"), "o");
    cfw_fields_copy(&g, &f); /* one block of the copy's size and some room, then more */
    assert_int_equal(g.n, f.n);
    cfw_fields_set(&g, "after", "copy");
    cfw_fields_set(&g, "msg", big);
    assert_string_equal(cfw_fields_get(&g, "k99"), "k99");
    assert_string_equal(cfw_fields_get(&g, "after"), "copy");
    assert_string_equal(cfw_fields_get(&f, "msg"), "abc");
    cfw_fields_clear(&f);
    cfw_fields_clear(&g);
    cfw_fields_clear(&g); /* cleared twice: nothing left to free */
}

/* Lookups that share a prefix, a first byte or a length, and the empty key. */
static void test_fields_lookup(void **state)
{
    struct cfw_fields f = {0};

    (void)state;
    cfw_fields_set(&f, "source", "s");
    cfw_fields_set(&f, "script", "sc");
    cfw_fields_set(&f, "scripts", "scs");
    cfw_fields_set(&f, "startup_ms", "295");
    assert_null(cfw_fields_get(&f, "scrip"));
    assert_null(cfw_fields_get(&f, "scriptsx"));
    assert_null(cfw_fields_get(&f, "s"));
    assert_null(cfw_fields_get(&f, ""));
    assert_string_equal(cfw_fields_get(&f, "script"), "sc");
    assert_string_equal(cfw_fields_get(&f, "scripts"), "scs");
    assert_string_equal(cfw_fields_get(&f, "source"), "s");
    assert_string_equal(cfw_fields_get(&f, "startup_ms"), "295");
    cfw_fields_set(&f, "", "empty key");
    assert_string_equal(cfw_fields_get(&f, ""), "empty key");
    assert_int_equal(f.n, 5);
    cfw_fields_clear(&f);
}

/* add and append put fields at the end in order, without looking their keys up. */
static void test_fields_add_append(void **state)
{
    struct cfw_fields f = {0};
    struct cfw_fields g = {0};
    char big[600];

    (void)state;
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cfw_fields_add(&f, "kind", "text", 4);
    cfw_fields_add(&f, "cut", "abcdef", 3);
    cfw_fields_add(&f, "nul", "ab\0cd", 5); /* up to the NUL, as setn */
    assert_int_equal(f.n, 3);
    assert_string_equal(f.v[0].key, "kind");
    assert_string_equal(cfw_fields_get(&f, "cut"), "abc");
    assert_string_equal(cfw_fields_get(&f, "nul"), "ab");
    cfw_fields_set(&g, "source", "in");
    cfw_fields_set(&g, "time", "t");
    cfw_fields_set(&g, "big", big);
    cfw_fields_set(&g, "time", "u"); /* shrunk in place: the copy stops at its NUL */
    cfw_fields_append(&f, &g);
    assert_int_equal(f.n, 6);
    assert_string_equal(f.v[3].key, "source");
    assert_string_equal(f.v[4].key, "time");
    assert_string_equal(f.v[4].value, "u");
    assert_string_equal(f.v[5].value, big);
    cfw_fields_set(&f, "time", "longer than before"); /* an appended value grows like any */
    assert_string_equal(cfw_fields_get(&f, "time"), "longer than before");
    assert_string_equal(cfw_fields_get(&g, "time"), "u");
    cfw_fields_append(&f, &(struct cfw_fields){0});
    assert_int_equal(f.n, 6);
    cfw_fields_clear(&f);
    cfw_fields_clear(&g);
}

/* reset empties a set as clear does and keeps one block for the next fields. */
static void test_fields_reset(void **state)
{
    struct cfw_fields f = {0};
    char key[16];
    char big[20000];

    (void)state;
    cfw_fields_reset(NULL);
    cfw_fields_reset(&f); /* never used: nothing to keep */
    assert_int_equal(f.n, 0);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 50; i++) { /* several blocks */
            snprintf(key, sizeof(key), "k%d", i);
            cfw_fields_set(&f, key, key);
        }
        assert_int_equal(f.n, 50);
        cfw_fields_reset(&f);
        assert_int_equal(f.n, 0);
        assert_null(cfw_fields_get(&f, "k0"));
        assert_non_null(f.v);
    }
    cfw_fields_set(&f, "a", "1");
    assert_string_equal(cfw_fields_get(&f, "a"), "1");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cfw_fields_set(&f, "big", big); /* a block too large to keep: reset frees all */
    cfw_fields_reset(&f);
    assert_int_equal(f.n, 0);
    assert_null(f.v);
    cfw_fields_set(&f, "b", "2");
    assert_string_equal(cfw_fields_get(&f, "b"), "2");
    cfw_fields_clear(&f);
}

static void test_parse(void **state)
{
    uint64_t v;
    int64_t ms;

    (void)state;
    assert_int_equal(cfw_parse_u64("10021", &v), 0);
    assert_int_equal(v, 10021);
    assert_int_equal(cfw_parse_u64("-1", &v), -1);
    assert_int_equal(cfw_parse_u64("99999999999999999999", &v), -1);
    assert_int_equal(cfw_parse_duration_ms("30m", &ms), 0);
    assert_int_equal(ms, 30 * 60 * 1000);
    assert_int_equal(cfw_parse_duration_ms("1h30m", &ms), 0);
    assert_int_equal(ms, 90 * 60 * 1000);
    assert_int_equal(cfw_parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(cfw_parse_duration_ms("15", &ms), 0);
    assert_int_equal(ms, 15000);
    assert_int_equal(cfw_parse_duration_ms("5x", &ms), -1);
    assert_int_equal(cfw_parse_duration_ms("", &ms), -1);
}

static void test_stamp(void **state)
{
    struct cfw_stamp a, b;

    (void)state;
    cfw_stamp_now(&a);
    assert_int_equal(strlen(a.boot_id), CFW_BOOT_ID_LEN);
    assert_true(a.boot_ms > 0);
    b = a;
    /* within one boot the boot clock decides, whatever the wall clock did */
    b.wall_ms = a.wall_ms + 3600 * 1000;
    b.boot_ms = a.boot_ms + 1500;
    assert_int_equal(cfw_stamp_elapsed_ms(&a, &b), 1500);
    b.wall_ms = a.wall_ms - 3600 * 1000;
    assert_int_equal(cfw_stamp_elapsed_ms(&a, &b), 1500);
    /* another boot (or an unknown one): the wall clock, never negative */
    b.boot_id[0] = b.boot_id[0] == 'x' ? 'y' : 'x';
    assert_int_equal(cfw_stamp_elapsed_ms(&a, &b), 0);
    b.wall_ms = a.wall_ms + 7000;
    assert_int_equal(cfw_stamp_elapsed_ms(&a, &b), 7000);
    b = a;
    b.boot_ms = 0;
    b.wall_ms = a.wall_ms + 42;
    assert_int_equal(cfw_stamp_elapsed_ms(&a, &b), 42);
}

static void test_buf_init(void **state)
{
    struct cfw_buf b;

    (void)state;
    cfw_buf_init(&b, 4);
    assert_int_equal(cfw_buf_puts(&b, "abcd"), 0);
    assert_int_equal(cfw_buf_putc(&b, 'e'), -1); /* over the cap: unchanged */
    assert_string_equal(b.data, "abcd");
    cfw_buf_free(&b);
    assert_int_equal(b.max, 4); /* the cap outlives a free: the buffer can be filled again */
    assert_int_equal(cfw_buf_printf(&b, "%d", 12345), -1);
    assert_int_equal(cfw_buf_printf(&b, "%d", 1234), 0);
    assert_string_equal(b.data, "1234");
    cfw_buf_free(&b);
}

/* CFW_BUF_INIT sets the cap; reset, take and free keep it, so a buffer used again is capped. */
static void test_buf_cap_kept(void **state)
{
    struct cfw_buf b = CFW_BUF_INIT(6);
    char *p;

    (void)state;
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 6);
    assert_int_equal(cfw_buf_puts(&b, "abcdef"), 0);
    assert_int_equal(cfw_buf_append(&b, "g", 1), -1);
    assert_int_equal(cfw_buf_printf(&b, "%s", "g"), -1);
    assert_string_equal(b.data, "abcdef");
    cfw_buf_reset(&b);
    assert_int_equal(b.max, 6);
    assert_int_equal(cfw_buf_puts(&b, "1234567"), -1);
    assert_int_equal(b.len, 0);
    assert_int_equal(cfw_buf_puts(&b, "123456"), 0);
    p = cfw_buf_take(&b);
    assert_string_equal(p, "123456");
    free(p);
    assert_null(b.data);
    assert_int_equal(b.max, 6);
    assert_int_equal(cfw_buf_puts(&b, "abcdefg"), -1);
    assert_null(b.data);
    assert_int_equal(cfw_buf_puts(&b, "xy"), 0);
    assert_string_equal(b.data, "xy");
    cfw_buf_free(&b);
    assert_int_equal(b.max, 6);
    assert_int_equal(cfw_buf_putc(&b, 'z'), 0);
    assert_int_equal(cfw_buf_puts(&b, "zzzzzz"), -1);
    assert_string_equal(b.data, "z");
    cfw_buf_free(&b);
    p = cfw_buf_take(&b); /* an empty buffer hands over an empty string */
    assert_string_equal(p, "");
    free(p);
    assert_int_equal(b.max, 6);
}

#ifdef NDEBUG
/* A buffer that never got a cap refuses to grow (a build with assertions stops instead). */
static void test_buf_zeroed(void **state)
{
    struct cfw_buf b = {0};

    (void)state;
    assert_int_equal(cfw_buf_putc(&b, 'a'), -1);
    assert_int_equal(cfw_buf_append(&b, "", 0), -1);
    assert_int_equal(cfw_buf_printf(&b, "%d", 1), -1);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}
#endif

static void test_ms_timeval(void **state)
{
    struct timeval tv;

    (void)state;
    tv = cfw_ms_timeval(0);
    assert_int_equal(tv.tv_sec, 0);
    assert_int_equal(tv.tv_usec, 0);
    tv = cfw_ms_timeval(1);
    assert_int_equal(tv.tv_sec, 0);
    assert_int_equal(tv.tv_usec, 1000);
    tv = cfw_ms_timeval(61999);
    assert_int_equal(tv.tv_sec, 61);
    assert_int_equal(tv.tv_usec, 999000);
    tv = cfw_ms_timeval(-5); /* a deadline already passed: now */
    assert_int_equal(tv.tv_sec, 0);
    assert_int_equal(tv.tv_usec, 0);
}

/* Each encoding length, at its edges, read back by cfw_utf8_len. */
static void test_utf8_put(void **state)
{
    static const struct {
        uint32_t cp;
        const char *utf8;
    } cases[] = {
        {0x41, "A"},
        {0x7F, "\x7f"},
        {0x80, "\xc2\x80"},
        {0x20AC, "\xe2\x82\xac"},
        {0xFFFF, "\xef\xbf\xbf"},
        {0x1F600, "\xf0\x9f\x98\x80"},
        {0x10FFFF, "\xf4\x8f\xbf\xbf"},
    };
    char out[4];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = cfw_utf8_put(cases[i].cp, out);

        assert_int_equal(n, strlen(cases[i].utf8));
        assert_memory_equal(out, cases[i].utf8, n);
        assert_int_equal(cfw_utf8_len((const unsigned char *)out, n), n);
    }
}

static void test_utf8_prefix(void **state)
{
    const char *s = "a\xc3\xa9\xe2\x82\xac!"; /* a, e-acute (2 bytes), euro (3 bytes), ! */

    (void)state;
    assert_int_equal(cfw_utf8_prefix(s, 7, 7), 7); /* fits whole */
    assert_int_equal(cfw_utf8_prefix(s, 7, 100), 7);
    assert_int_equal(cfw_utf8_prefix(s, 7, 6), 6); /* cut before '!' */
    assert_int_equal(cfw_utf8_prefix(s, 7, 5), 3); /* inside the euro sign: before it */
    assert_int_equal(cfw_utf8_prefix(s, 7, 4), 3);
    assert_int_equal(cfw_utf8_prefix(s, 7, 3), 3);
    assert_int_equal(cfw_utf8_prefix(s, 7, 2), 1); /* inside e-acute */
    assert_int_equal(cfw_utf8_prefix(s, 7, 1), 1);
    assert_int_equal(cfw_utf8_prefix(s, 7, 0), 0);
    assert_int_equal(cfw_utf8_prefix("\x80\x80\x80", 3, 2), 0); /* continuation bytes only */
    assert_int_equal(cfw_utf8_prefix(NULL, 0, 5), 0);           /* nothing to read */
}

static void test_busy(void **state)
{
    struct cfw_busy b = {0};

    (void)state;
    assert_false(cfw_busy_defer_free(&b)); /* not in a callback: destroy now */
    cfw_busy_enter(&b);
    cfw_busy_enter(&b); /* a callback inside a callback */
    assert_true(cfw_busy_leave(&b));
    cfw_busy_enter(&b);
    assert_true(cfw_busy_defer_free(&b)); /* freed from the inner callback: wait */
    assert_true(cfw_busy_leave(&b));      /* the outer one still runs */
    assert_false(cfw_busy_leave(&b));     /* the outermost leave destroys it */
}

static void test_find(void **state)
{
    static const char h[] = "ab abc abcd";

    (void)state;
    assert_ptr_equal(cfw_find(h, sizeof(h) - 1, "abc", 3), h + 3);
    assert_ptr_equal(cfw_find(h, sizeof(h) - 1, "abcd", 4), h + 7);
    assert_ptr_equal(cfw_find(h, sizeof(h) - 1, "d", 1), h + 10);
    assert_null(cfw_find(h, sizeof(h) - 1, "abcde", 5));
    assert_null(cfw_find(h, 9, "abcd", 4)); /* the needle would end past the haystack */
    assert_null(cfw_find(h, 2, "abc", 3));
    assert_ptr_equal(cfw_find(h, sizeof(h) - 1, "", 0), h);
    assert_null(cfw_find(h, 0, "a", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_cap),       cmocka_unit_test(test_buf_init),
        cmocka_unit_test(test_ms_timeval),    cmocka_unit_test(test_utf8_put),
        cmocka_unit_test(test_utf8_prefix),   cmocka_unit_test(test_busy),
        cmocka_unit_test(test_fields),        cmocka_unit_test(test_fields_blocks),
        cmocka_unit_test(test_parse),         cmocka_unit_test(test_stamp),
        cmocka_unit_test(test_find),          cmocka_unit_test(test_buf_cap_kept),
        cmocka_unit_test(test_fields_lookup), cmocka_unit_test(test_fields_add_append),
        cmocka_unit_test(test_fields_reset),
#ifdef NDEBUG
        cmocka_unit_test(test_buf_zeroed),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
