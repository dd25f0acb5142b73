/*
 * Unit tests for journal.c: real files in a temporary directory. Appends and replays, the
 * sequence filter, torn and damaged lines, over-long lines, rotation and the previous file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfwatchd/common.h"
#include "cfwatchd/journal.h"
#include "test_util.h"

struct seen {
    uint64_t seqs[64];
    int vals[64];
    size_t n;
};

static void collect(const json_t *rec, uint64_t seq, void *arg)
{
    struct seen *s = arg;

    if (s->n < 64) {
        s->seqs[s->n] = seq;
        s->vals[s->n] = (int)json_integer_value(json_object_get(rec, "v"));
        s->n++;
    }
}

#define DIR_SIZE 64

static int setup(void **state)
{
    char *dir = cfw_xmalloc(DIR_SIZE);

    assert_int_equal(tmpdir_make(dir, DIR_SIZE, "journal"), 0);
    *state = dir;
    return 0;
}

static int teardown(void **state)
{
    char *dir = *state;

    assert_int_equal(tmpdir_remove(dir), 0);
    free(dir);
    return 0;
}

/* Opens the journal in dir, its next record numbered next; never NULL. */
static struct cfw_journal *journal_open(const char *dir, uint64_t next)
{
    struct cfw_err err = {0};
    struct cfw_journal *j = cfw_journal_open(dir, next, &err);

    assert_non_null(j);
    return j;
}

static uint64_t add(struct cfw_journal *j, int v, bool sync)
{
    struct cfw_err err = {0};
    json_t *rec = json_pack("{s:i}", "v", v);
    uint64_t seq = cfw_journal_append(j, rec, sync, &err);

    json_decref(rec); /* the record stays the caller's */
    assert_true(seq > 0);
    return seq;
}

static void append_raw(const char *dir, const char *name, const char *text)
{
    char *path = cfw_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "a");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

static void replay(const char *dir, uint64_t after, struct seen *s, struct cfw_journal_replay *r)
{
    struct cfw_err err = {0};

    memset(s, 0, sizeof(*s));
    assert_int_equal(cfw_journal_replay(dir, after, true, collect, s, r, &err), 0);
}

static void test_append_and_replay(void **state)
{
    const char *dir = *state;
    struct cfw_journal *j = journal_open(dir, 1);
    struct cfw_journal_replay r;
    struct seen s;

    assert_int_equal(add(j, 10, true), 1);
    assert_int_equal(add(j, 11, false), 2);
    assert_int_equal(add(j, 12, true), 3);
    assert_int_equal(cfw_journal_seq(j), 3);
    cfw_journal_close(j);

    replay(dir, 0, &s, &r);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.vals[0], 10);
    assert_int_equal(s.vals[2], 12);
    assert_int_equal(r.last_seq, 3);
    assert_int_equal(r.damaged, 0);
    /* what the snapshot covers is not handed over again */
    replay(dir, 2, &s, &r);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.seqs[0], 3);
    assert_int_equal(r.last_seq, 3);
}

static void test_missing_journal_is_empty(void **state)
{
    struct cfw_journal_replay r;
    struct seen s;

    replay(*state, 0, &s, &r);
    assert_int_equal(s.n, 0);
    assert_int_equal(r.files, 0);
    assert_int_equal(r.last_seq, 0);
}

static void test_torn_tail_is_cut_and_skipped(void **state)
{
    const char *dir = *state;
    struct cfw_journal *j = journal_open(dir, 1);
    struct cfw_journal_replay r;
    struct seen s;
    struct stat st;
    char *path = cfw_xasprintf("%s/%s", dir, CFW_JOURNAL_FILE);

    add(j, 1, true);
    cfw_journal_close(j);
    append_raw(dir, CFW_JOURNAL_FILE, "{\"v\":2,\"seq\":2"); /* a write cut by a power cut */
    replay(dir, 0, &s, &r);
    assert_int_equal(s.n, 1);
    assert_int_equal(r.damaged, 1);
    /* opening cuts the torn line, so the next record starts a line of its own */
    j = journal_open(dir, r.last_seq + 1);
    assert_int_equal(add(j, 3, true), 2);
    cfw_journal_close(j);
    replay(dir, 0, &s, &r);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.vals[1], 3);
    assert_int_equal(r.damaged, 0);
    assert_int_equal(stat(path, &st), 0);
    free(path);
}

static void test_damaged_lines_are_skipped(void **state)
{
    const char *dir = *state;
    struct cfw_journal_replay r;
    struct seen s;

    append_raw(dir, CFW_JOURNAL_FILE,
               "{\"seq\":1,\"v\":1}\n"
               "garbage \x01\xff\n"
               "{\"v\":9}\n" /* no sequence */
               "[1,2]\n"     /* not an object */
               "{\"seq\":3,\"v\":3}\n"
               "{\"seq\":2,\"v\":2}\n" /* behind: a record replayed once only */
               "\n"
               "{\"seq\":4,\"v\":4}\n");
    replay(dir, 0, &s, &r);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.vals[0], 1);
    assert_int_equal(s.vals[1], 3);
    assert_int_equal(s.vals[2], 4);
    assert_int_equal(r.damaged, 3);
    assert_int_equal(r.last_seq, 4);
}

static void test_overlong_line_is_skipped(void **state)
{
    const char *dir = *state;
    struct cfw_journal_replay r;
    struct seen s;
    char *big = str_repeat('x', CFW_JOURNAL_LINE_MAX + 100);

    append_raw(dir, CFW_JOURNAL_FILE, "{\"seq\":1,\"v\":1}\n");
    append_raw(dir, CFW_JOURNAL_FILE, big);
    append_raw(dir, CFW_JOURNAL_FILE, "\n{\"seq\":2,\"v\":2}\n");
    free(big);
    replay(dir, 0, &s, &r);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.vals[1], 2);
    assert_int_equal(r.damaged, 1);
}

static void test_rotate_keeps_previous(void **state)
{
    const char *dir = *state;
    struct cfw_err err = {0};
    struct cfw_journal *j = journal_open(dir, 1);
    struct cfw_journal_replay r;
    struct seen s;

    add(j, 1, true);
    add(j, 2, true);
    /* a snapshot covering 2 is written, then the journal rotates */
    assert_int_equal(cfw_journal_rotate(j, &err), 0);
    assert_int_equal(cfw_journal_bytes(j), 0);
    assert_int_equal(add(j, 3, true), 3);
    add(j, 4, true);
    cfw_journal_close(j);
    /* from the newest snapshot: only journal */
    replay(dir, 2, &s, &r);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.vals[0], 3);
    assert_int_equal(r.files, 2);
    /* from the previous generation (snapshot at 0): journal.1 then journal */
    replay(dir, 0, &s, &r);
    assert_int_equal(s.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(s.vals[i], (int)i + 1);
    }
    /* a second rotation replaces journal.1 */
    j = journal_open(dir, 5);
    assert_int_equal(cfw_journal_rotate(j, &err), 0);
    cfw_journal_close(j);
    replay(dir, 0, &s, &r);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.vals[0], 3);
}

static void test_journal_that_is_a_directory(void **state)
{
    const char *dir = *state;
    struct cfw_err err = {0};
    char *path = cfw_xasprintf("%s/%s", dir, CFW_JOURNAL_FILE);
    struct cfw_journal_replay r;
    struct seen s;

    assert_int_equal(mkdir(path, 0700), 0);
    assert_null(cfw_journal_open(dir, 1, &err));
    ASSERT_HAS_ALL(err.msg, CFW_JOURNAL_FILE);
    memset(&s, 0, sizeof(s));
    assert_int_equal(cfw_journal_replay(dir, 0, true, collect, &s, &r, &err), -1);
    ASSERT_HAS_ALL(err.msg, "not a regular file");
    free(path);
}

#define JOURNAL_TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        JOURNAL_TEST(test_append_and_replay),
        JOURNAL_TEST(test_missing_journal_is_empty),
        JOURNAL_TEST(test_torn_tail_is_cut_and_skipped),
        JOURNAL_TEST(test_damaged_lines_are_skipped),
        JOURNAL_TEST(test_overlong_line_is_skipped),
        JOURNAL_TEST(test_rotate_keeps_previous),
        JOURNAL_TEST(test_journal_that_is_a_directory),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
