/* Unit tests for fsutil.c: whole-file reads under a cap and atomic writes with flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfwatchd/fsutil.h"
#include "test_util.h"

static void put(const char *dir, const char *name, const char *text)
{
    struct cfw_err err = {0};

    assert_int_equal(cfw_fs_write_atomic(-1, dir, name, text, strlen(text), 0600, &err), 0);
}

/* Asserts that dir/name holds text (put's twin). */
static void assert_holds(const char *dir, const char *name, const char *text)
{
    struct cfw_err err = {0};
    char *p = cfw_xasprintf("%s/%s", dir, name);
    size_t len;
    char *buf = cfw_fs_read_file(p, 100, &len, &err);

    assert_non_null(buf);
    assert_string_equal(buf, text);
    free(buf);
    free(p);
}

static void test_read_file(void **state)
{
    char dir[64];
    struct cfw_err err = {0};
    size_t len = 99;
    char *p, *buf;

    (void)state;
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "fsutil"), 0);
    put(dir, "a", "hello");
    p = cfw_xasprintf("%s/a", dir);
    buf = cfw_fs_read_file(p, 5, &len, &err);
    assert_non_null(buf);
    assert_int_equal(len, 5);
    assert_string_equal(buf, "hello"); /* NUL-terminated */
    free(buf);
    /* over the cap: refused, EFBIG, the path named */
    assert_null(cfw_fs_read_file(p, 4, &len, &err));
    assert_int_equal(err.code, EFBIG);
    assert_non_null(strstr(err.msg, p));
    free(p);
    /* absent: the errno */
    p = cfw_xasprintf("%s/none", dir);
    assert_null(cfw_fs_read_file(p, 100, &len, &err));
    assert_int_equal(err.code, ENOENT);
    free(p);
    /* a directory or a FIFO: EINVAL, never a blocking open */
    assert_null(cfw_fs_read_file(dir, 100, &len, &err));
    assert_int_equal(err.code, EINVAL);
    p = cfw_xasprintf("%s/fifo", dir);
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_null(cfw_fs_read_file(p, 100, &len, &err));
    assert_int_equal(err.code, EINVAL);
    free(p);
    /* an empty file is read as "" */
    put(dir, "empty", "");
    p = cfw_xasprintf("%s/empty", dir);
    buf = cfw_fs_read_file(p, 100, &len, &err);
    assert_non_null(buf);
    assert_int_equal(len, 0);
    assert_string_equal(buf, "");
    free(buf);
    free(p);
    assert_int_equal(tmpdir_remove(dir), 0);
}

static void test_read_fileat(void **state)
{
    char dir[64];
    struct cfw_err err = {0};
    size_t len;
    char *buf, *link;
    int dfd;

    (void)state;
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "fsutil"), 0);
    put(dir, "a.job", "{}");
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    buf = cfw_fs_read_fileat(dfd, "a.job", 100, &len, &err);
    assert_non_null(buf);
    assert_int_equal(len, 2);
    free(buf);
    /* a symbolic link is not followed */
    link = cfw_xasprintf("%s/b.job", dir);
    assert_int_equal(symlink("a.job", link), 0);
    assert_null(cfw_fs_read_fileat(dfd, "b.job", 100, &len, &err));
    assert_int_equal(err.code, ELOOP);
    free(link);
    close(dfd);
    assert_int_equal(tmpdir_remove(dir), 0);
}

static mode_t mode_of(const char *dir, const char *name)
{
    char *p = cfw_xasprintf("%s/%s", dir, name);
    struct stat st;

    assert_int_equal(stat(p, &st), 0);
    free(p);
    return st.st_mode & 07777;
}

static void test_write_flags(void **state)
{
    char dir[64];
    struct cfw_err err = {0};
    char *p, *buf;
    size_t len;
    mode_t old = umask(077);

    (void)state;
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "fsutil"), 0);
    /* KEEP_MODE: a new file gets exactly the mode, whatever the umask */
    assert_int_equal(cfw_fs_write_atomic_flags(-1, dir, "m", "1", 1, 0644, CFW_FS_KEEP_MODE, &err),
                     0);
    assert_int_equal(mode_of(dir, "m"), 0644);
    /* ...and a file replaced keeps its own */
    p = cfw_xasprintf("%s/m", dir);
    assert_int_equal(chmod(p, 0755), 0);
    assert_int_equal(cfw_fs_write_atomic_flags(-1, dir, "m", "22", 2, 0644, CFW_FS_KEEP_MODE, &err),
                     0);
    assert_int_equal(mode_of(dir, "m"), 0755);
    /* CREATE_ONLY: EEXIST, the file kept as it was, no temporary file left */
    assert_int_equal(cfw_fs_write_atomic_flags(-1, dir, "m", "333", 3, 0644,
                                               CFW_FS_KEEP_MODE | CFW_FS_CREATE_ONLY, &err),
                     -1);
    assert_int_equal(err.code, EEXIST);
    buf = cfw_fs_read_file(p, 100, &len, &err);
    assert_non_null(buf);
    assert_string_equal(buf, "22");
    free(buf);
    free(p);
    assert_int_equal(cfw_fs_write_atomic_flags(-1, dir, "n", "4", 1, 0644,
                                               CFW_FS_KEEP_MODE | CFW_FS_CREATE_ONLY, &err),
                     0);
    assert_int_equal(mode_of(dir, "n"), 0644);
    /* without flags the umask applies, as open(2) does */
    assert_int_equal(cfw_fs_write_atomic(-1, dir, "u", "5", 1, 0644, &err), 0);
    assert_int_equal(mode_of(dir, "u"), 0600);
    umask(old);
    assert_int_equal(tmpdir_remove(dir), 0);
}

/*
 * Files someone left at the temporary names (a hard link to a file of theirs, a stale temporary
 * file) are not written through: the write takes another name and leaves them as they were.
 */
static void test_write_tmp_taken(void **state)
{
    char dir[64];

    (void)state;
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "fsutil"), 0);
    for (unsigned i = 0; i < 20; i++) {
        char *name = cfw_xasprintf(".tmp-t.%ld.%u", (long)getpid(), i);
        put(dir, name, "theirs");
        free(name);
    }
    put(dir, "t", "ours");
    for (unsigned i = 0; i < 20; i++) {
        char *name = cfw_xasprintf(".tmp-t.%ld.%u", (long)getpid(), i);
        assert_holds(dir, name, "theirs");
        free(name);
    }
    assert_holds(dir, "t", "ours");
    assert_int_equal(tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_file),
        cmocka_unit_test(test_read_fileat),
        cmocka_unit_test(test_write_flags),
        cmocka_unit_test(test_write_tmp_taken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
