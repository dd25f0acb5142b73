/*
 * Unit tests for the file source (source_file.c) and the common source code (source.c): real
 * files in a temporary directory, a real event_base driven with EVLOOP_ONCE, real rotations
 * (rename, copytruncate, truncation, deletion) and a writer thread appending numbered lines at
 * >= 5,000 lines/s while the file is rotated, checked for exactly-once delivery.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "cfwatchd/common.h"
#include "cfwatchd/source.h"
#include "cfwatchd/yaml.h"
#include "diag_check.h"
#include "gzip_util.h"
#include "source_harness.h"

/* ---- helpers ---- */

static int setup(void **state)
{
    return src_env_setup(state, "srcfile", true);
}

static char *pth(const struct src_env *c, const char *name)
{
    return cfw_xasprintf("%s/%s", c->dir, name);
}

static void write_file(const char *path, const char *text, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    size_t n = strlen(text);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void append_file(const char *path, const char *text)
{
    write_file(path, text, O_APPEND);
}

/* Starts conf as the configuration of a file source named name, watching path. */
static void file_conf(struct cfw_source_conf *conf, const char *name, const char *path)
{
    cfw_source_conf_init(conf, CFW_SOURCE_FILE);
    conf->name = cfw_xstrdup(name);
    conf->path = cfw_xstrdup(path);
}

/* A new source of conf (cleared) recording into r; never NULL. */
static struct cfw_source *conf_source(struct src_env *c, struct cfw_source_conf *conf,
                                      struct rec *r)
{
    struct cfw_source_cbs cbs = rec_cbs(r);
    struct cfw_err err = {0};
    struct cfw_source *src = cfw_source_new(c->base, conf, &cbs, &err);

    cfw_source_conf_clear(conf);
    assert_non_null(src);
    return src;
}

static struct cfw_source *file_source(struct src_env *c, const char *path, bool beginning,
                                      struct rec *r)
{
    struct cfw_source_conf conf;

    file_conf(&conf, "logs", path);
    conf.start_at_beginning = beginning;
    return conf_source(c, &conf, r);
}

static void start(struct cfw_source *src)
{
    struct cfw_err err = {0};
    assert_int_equal(cfw_source_start(src, &err), 0);
}

/* Writes text to a new file at path, starts a source reading it from the beginning, waits for text.
 */
static struct cfw_source *read_new_file(struct src_env *c, const char *path, const char *text,
                                        struct rec *r)
{
    struct cfw_source *src;

    write_file(path, text, 0);
    src = file_source(c, path, true, r);
    start(src);
    assert_true(rec_wait_bytes(c->base, r, strlen(text), REC_WAIT_MS));
    return src;
}

/* Waits until r counted n bytes, then runs the loop ms more (for what must not come). */
static void wait_then_run(struct src_env *c, struct rec *r, uint64_t n, int64_t ms)
{
    assert_true(rec_wait_bytes(c->base, r, n, REC_WAIT_MS));
    loop_run_for(c->base, ms);
}

/* Frees src, what r recorded and the strings of the NULL-ended list after r. */
static void finish(struct cfw_source *src, struct rec *r, ...) __attribute__((sentinel));

static void finish(struct cfw_source *src, struct rec *r, ...)
{
    va_list ap;
    char *s;

    cfw_source_free(src);
    rec_clear(r);
    va_start(ap, r);
    while ((s = va_arg(ap, char *)) != NULL) {
        free(s);
    }
    va_end(ap);
}

/* ---- basic reading ---- */

static void test_beginning_then_append(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    struct cfw_source *src;
    struct cfw_source_stats st;

    src = read_new_file(c, p, "one\ntwo\n", &r);
    append_file(p, "three\n");
    wait_then_run(c, &r, 14, 100);
    assert_int_equal(r.nsegs, 1);
    assert_string_equal(r.segs[0].stream, p);
    assert_string_equal(rec_seg_text(&r.segs[0]), "one\ntwo\nthree\n");
    assert_false(r.segs[0].ended);
    cfw_source_get_stats(src, &st);
    assert_int_equal(st.bytes, 14);
    assert_int_equal(st.files, 1);
    assert_int_equal(st.lag_bytes, 0);
    assert_int_equal(cfw_source_get_state(src, NULL), CFW_INPUT_UP);
    assert_int_equal(r.nstates, 0);
    finish(src, &r, p, NULL);
}

static void test_start_at_end(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    struct cfw_source *src;

    write_file(p, "old line\n", 0);
    src = file_source(c, p, false, &r);
    start(src);
    loop_run_for(c->base, 50);
    assert_int_equal(r.bytes, 0);
    append_file(p, "new\n");
    wait_then_run(c, &r, 4, 50);
    assert_int_equal(r.nsegs, 1);
    assert_string_equal(rec_seg_text(&r.segs[0]), "new\n");
    finish(src, &r, p, NULL);
}

static void test_glob_picks_up_new_file(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *a = pth(c, "a.log");
    char *b = pth(c, "b.log");
    char *t = pth(c, "c.txt");
    char *pattern = pth(c, "*.log");
    struct cfw_source *src;

    write_file(a, "existing\n", 0);
    src = file_source(c, pattern, false, &r);
    start(src);
    loop_run_for(c->base, 50);
    write_file(t, "not matched\n", 0);
    write_file(b, "b1\nb2\n", 0); /* appeared later: read from the beginning */
    assert_true(rec_wait_bytes(c->base, &r, 6, REC_WAIT_MS));
    append_file(a, "a2\n");
    wait_then_run(c, &r, 9, 100);
    assert_int_equal(r.nsegs, 2);
    assert_string_equal(r.segs[0].stream, b);
    assert_string_equal(rec_seg_text(&r.segs[0]), "b1\nb2\n");
    assert_string_equal(r.segs[1].stream, a);
    assert_string_equal(rec_seg_text(&r.segs[1]), "a2\n");
    finish(src, &r, a, b, t, pattern, NULL);
}

/* ---- rotation ---- */

static void rename_rotation(struct src_env *c, bool glob)
{
    struct rec r = {0};
    char *p = pth(c, "a.log");
    char *p1 = pth(c, "a.log.1");
    char *pattern = pth(c, glob ? "a.log*" : "a.log");
    struct cfw_source *src;
    struct cfw_source_stats st;

    write_file(p, "1\n2\n", 0);
    src = file_source(c, pattern, true, &r);
    start(src);
    assert_true(rec_wait_bytes(c->base, &r, 4, REC_WAIT_MS));
    /* Without letting the loop run: more data in the old file, rename, a new file. */
    append_file(p, "3\n");
    assert_int_equal(rename(p, p1), 0);
    write_file(p, "4\n", 0);
    assert_true(rec_wait_bytes(c->base, &r, 8, REC_WAIT_MS));
    append_file(p, "5\n");
    wait_then_run(c, &r, 10, 300);
    assert_int_equal(r.nsegs, 2);
    assert_string_equal(r.segs[0].stream, p);
    assert_string_equal(rec_seg_text(&r.segs[0]), "1\n2\n3\n");
    assert_true(r.segs[0].ended);
    assert_string_equal(r.segs[1].stream, p);
    assert_string_equal(rec_seg_text(&r.segs[1]), "4\n5\n");
    assert_false(r.segs[1].ended);
    assert_int_equal(r.bytes, 10);
    cfw_source_get_stats(src, &st);
    assert_int_equal(st.rotations, 1);
    /* A glob that matches the rotated name keeps tracking it (no re-read); else it is let go. */
    assert_int_equal(st.files, glob ? 2 : 1);
    if (glob) {
        /* Late bytes in the rotated file come as a stream of its new name. */
        append_file(p1, "late\n");
        assert_true(rec_wait_bytes(c->base, &r, 15, REC_WAIT_MS));
        assert_int_equal(r.nsegs, 3);
        assert_string_equal(r.segs[2].stream, p1);
        assert_string_equal(rec_seg_text(&r.segs[2]), "late\n");
    }
    finish(src, &r, p, p1, pattern, NULL);
}

static void test_rename_rotation_drains_old_file(void **state)
{
    rename_rotation(*state, false);
}

static void test_rename_rotation_glob_no_reread(void **state)
{
    rename_rotation(*state, true);
}

/*
 * Reads first from a new file; then the file is truncated in place and second written, either
 * as a truncate and an append or (regrow) as one O_TRUNC write: two segments, one truncation.
 */
static void truncated_then(struct src_env *c, const char *first, const char *second, bool regrow)
{
    struct rec r = {0};
    char *p = pth(c, "a.log");
    struct cfw_source *src;
    struct cfw_source_stats st;

    src = read_new_file(c, p, first, &r);
    if (regrow) {
        write_file(p, second, O_TRUNC); /* same inode, size > old offset */
    } else {
        /* copytruncate: the copy is not watched; the original is truncated in place. */
        assert_int_equal(truncate(p, 0), 0);
        append_file(p, second);
    }
    wait_then_run(c, &r, strlen(first) + strlen(second), 100);
    assert_int_equal(r.nsegs, 2);
    assert_string_equal(rec_seg_text(&r.segs[0]), first);
    assert_true(r.segs[0].ended);
    assert_string_equal(rec_seg_text(&r.segs[1]), second);
    cfw_source_get_stats(src, &st);
    assert_int_equal(st.truncations, 1);
    finish(src, &r, p, NULL);
}

static void test_copytruncate(void **state)
{
    truncated_then(*state, "first 1\nfirst 2\n", "second\n", false);
}

/* Truncated and grown past the old offset before the reader looks: the fingerprint tells. */
static void test_truncate_regrown_detected_by_fingerprint(void **state)
{
    truncated_then(*state, "short 1\nshort 2\n", "a much longer second generation of the log\n",
                   true);
}

static void test_delete_drains_then_lets_go(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    struct cfw_source *src;
    struct cfw_source_stats st;
    const char *reason = NULL;

    src = read_new_file(c, p, "1\n", &r);
    append_file(p, "2\n");
    assert_int_equal(unlink(p), 0);
    wait_then_run(c, &r, 4, 100);
    assert_int_equal(r.nsegs, 1);
    assert_string_equal(rec_seg_text(&r.segs[0]), "1\n2\n");
    assert_true(r.segs[0].ended);
    cfw_source_get_stats(src, &st);
    assert_int_equal(st.files, 0);
    assert_int_equal(cfw_source_get_state(src, &reason), CFW_INPUT_DEGRADED);
    ASSERT_HAS_ALL(reason, "no file matches");
    /* A new file under the name is read from the beginning; the source is UP again. */
    write_file(p, "3\n", 0);
    assert_true(rec_wait_bytes(c->base, &r, 6, REC_WAIT_MS));
    assert_int_equal(r.nsegs, 2);
    assert_string_equal(rec_seg_text(&r.segs[1]), "3\n");
    assert_int_equal(cfw_source_get_state(src, NULL), CFW_INPUT_UP);
    finish(src, &r, p, NULL);
}

static bool files_zero(void *arg)
{
    struct cfw_source_stats st;

    cfw_source_get_stats(arg, &st);
    return st.files == 0;
}

/*
 * A rename seen only after the renamed file was drained and let go. The kernel may hand
 * IN_MOVED_FROM to a read before it queues the matching IN_MOVED_TO (seen under valgrind: a
 * scan in between found the name empty, drained the file and let it go); the late MOVED_TO
 * must not make the file look like one rotated away before it was read. Made deterministic
 * with a second link: the file leaves the name (and is let go) while the loop runs, then,
 * with the loop idle, comes back under the name and is renamed away, so that the MOVED_FROM /
 * MOVED_TO pair for it is processed after it was let go. Every byte exactly once: the line
 * appended after the rename is read, the two read before are not read again.
 */
static void test_rename_seen_after_the_file_was_let_go(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    char *p1 = pth(c, "a.log.1");
    char *hold = pth(c, "hold");
    struct cfw_source *src;
    struct cfw_source_stats st;
    char *text;
    size_t nseg = 0;
    size_t nended = 0;

    src = read_new_file(c, p, "1\n2\n", &r);
    assert_int_equal(link(p, hold), 0);
    assert_int_equal(unlink(p), 0);
    assert_true(loop_run_until(c->base, files_zero, src, REC_WAIT_MS));
    /* The loop does not run: back under the name, renamed away, then more bytes. */
    assert_int_equal(link(hold, p), 0);
    assert_int_equal(rename(p, p1), 0);
    assert_int_equal(unlink(hold), 0);
    append_file(p1, "3\n");
    wait_then_run(c, &r, 6, 300);
    assert_int_equal(r.bytes, 6);
    assert_string_equal(rec_text(&r), "1\n2\n3\n");
    text = rec_stream_text(&r, p1, &nseg, &nended);
    assert_string_equal(text, "3\n");
    assert_int_equal(nended, 1);
    free(text);
    cfw_source_get_stats(src, &st);
    assert_int_equal(st.files, 0);
    finish(src, &r, p, p1, hold, NULL);
}

/*
 * The other side of the same record: a file let go, then renamed under the name it was let go
 * from with different content (rewritten in place) is not what was read; it is read whole.
 */
static void test_rename_after_let_go_rewritten_read_whole(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    char *p1 = pth(c, "a.log.1");
    char *hold = pth(c, "hold");
    struct cfw_source *src;

    src = read_new_file(c, p, "1\n2\n", &r);
    assert_int_equal(link(p, hold), 0);
    assert_int_equal(unlink(p), 0);
    assert_true(loop_run_until(c->base, files_zero, src, REC_WAIT_MS));
    write_file(hold, "x\ny\nz\n", O_TRUNC); /* same inode, other bytes */
    assert_int_equal(link(hold, p), 0);
    assert_int_equal(rename(p, p1), 0);
    assert_int_equal(unlink(hold), 0);
    wait_then_run(c, &r, 10, 300);
    assert_int_equal(r.bytes, 10);
    assert_string_equal(rec_text(&r), "1\n2\nx\ny\nz\n");
    finish(src, &r, p, p1, hold, NULL);
}

/*
 * A file drained and let go that comes back under the watched name (moved away and back with
 * a scan in between) goes on where it was: what was read is not read again.
 */
static void test_file_back_under_the_name_not_reread(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    char *hold = pth(c, "hold");
    struct cfw_source *src;

    src = read_new_file(c, p, "1\n2\n", &r);
    assert_int_equal(rename(p, hold), 0);
    assert_true(loop_run_until(c->base, files_zero, src, REC_WAIT_MS));
    append_file(hold, "3\n");
    assert_int_equal(rename(hold, p), 0);
    assert_true(rec_wait_bytes(c->base, &r, 6, REC_WAIT_MS));
    append_file(p, "4\n");
    wait_then_run(c, &r, 8, 300);
    assert_int_equal(r.bytes, 8);
    assert_string_equal(rec_text(&r), "1\n2\n3\n4\n");
    finish(src, &r, p, hold, NULL);
}

/* ---- state: save and restore ---- */

static struct cfw_source *restored_source(struct src_env *c, const char *path, struct rec *r,
                                          const json_t *saved)
{
    struct cfw_source *src = file_source(c, path, false, r);
    assert_int_equal(cfw_source_restore(src, saved), 0);
    start(src);
    return src;
}

/* restored_source() that frees saved. */
static struct cfw_source *restored_source_take(struct src_env *c, const char *path, struct rec *r,
                                               json_t *saved)
{
    struct cfw_source *src = restored_source(c, path, r, saved);

    json_decref(saved);
    return src;
}

/* Saves src's state through its text form, then frees src and what r recorded. */
static json_t *save_and_free(struct cfw_source *src, struct rec *r)
{
    json_t *saved = source_save_roundtrip(src);

    cfw_source_free(src);
    rec_clear(r);
    return saved;
}

static void test_restore_resumes_exactly(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    char *p1 = pth(c, "a.log.1");
    struct cfw_source *src;
    json_t *saved;
    json_t *files;

    src = read_new_file(c, p, "1\n2\n", &r);
    saved = source_save_roundtrip(src);
    files = json_object_get(saved, "files");
    assert_int_equal(json_array_size(files), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(files, 0), "offset")), 4);
    assert_string_equal(json_string_value(json_object_get(saved, "type")), "file");
    cfw_source_free(src);
    rec_clear(&r);

    /* Down: more lines written. Restart: exactly those, even though start_at is end. */
    append_file(p, "3\n");
    src = restored_source_take(c, p, &r, saved);
    wait_then_run(c, &r, 2, 100);
    assert_int_equal(r.nsegs, 1);
    assert_string_equal(rec_seg_text(&r.segs[0]), "3\n");
    saved = save_and_free(src, &r);

    /* Down again: the rest of the old file, a rotation by rename, a new file. */
    append_file(p, "4\n");
    assert_int_equal(rename(p, p1), 0);
    write_file(p, "5\n", 0);
    src = restored_source_take(c, p, &r, saved);
    wait_then_run(c, &r, 4, 100);
    assert_int_equal(r.nsegs, 2);
    assert_string_equal(r.segs[0].stream, p);
    assert_string_equal(rec_seg_text(&r.segs[0]), "4\n");
    assert_true(r.segs[0].ended);
    assert_string_equal(r.segs[1].stream, p);
    assert_string_equal(rec_seg_text(&r.segs[1]), "5\n");

    /* Saved while the old file is still known: unchanged files give nothing on restart. */
    saved = save_and_free(src, &r);
    src = restored_source_take(c, p, &r, saved);
    loop_run_for(c->base, 200);
    assert_int_equal(r.bytes, 0);
    finish(src, &r, p, p1, NULL);
}

static void test_restore_detects_replaced_content(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    struct cfw_source *src;
    struct cfw_source_stats st;
    json_t *saved;
    const char *longer = "completely different and longer content\n";

    src = read_new_file(c, p, "first line\n", &r);
    saved = save_and_free(src, &r);

    /* Same device and inode, size past the old offset, different bytes before it (what inode
     * reuse and a copytruncate while down look like): read from 0. */
    write_file(p, longer, O_TRUNC);
    src = restored_source(c, p, &r, saved);
    wait_then_run(c, &r, strlen(longer), 100);
    assert_int_equal(r.nsegs, 1);
    assert_string_equal(rec_seg_text(&r.segs[0]), longer);
    cfw_source_get_stats(src, &st);
    assert_int_equal(st.truncations, 1);
    cfw_source_free(src);
    rec_clear(&r);

    /* Shorter than the saved offset: also from 0. */
    write_file(p, "tiny\n", O_TRUNC);
    src = restored_source_take(c, p, &r, saved);
    assert_true(rec_wait_bytes(c->base, &r, 5, REC_WAIT_MS));
    assert_string_equal(rec_seg_text(&r.segs[0]), "tiny\n");
    finish(src, &r, p, NULL);
}

static void test_restore_rejects_bad_state(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    struct cfw_source *src;
    json_t *bad = json_pack("{s:s}", "type", "journal");
    json_t *junk = json_pack("{s:s,s:[{s:s}]}", "type", "file", "files", "path", "x");

    write_file(p, "old\n", 0);
    src = file_source(c, p, false, &r);
    assert_int_equal(cfw_source_restore(src, bad), -1);
    assert_int_equal(cfw_source_restore(src, json_null()), -1);
    /* Nothing usable in it: the source starts as on a first start (start_at: end). */
    assert_int_equal(cfw_source_restore(src, junk), -1);
    start(src);
    loop_run_for(c->base, 50);
    append_file(p, "new\n");
    wait_then_run(c, &r, 4, 50);
    assert_int_equal(r.nsegs, 1);
    assert_string_equal(rec_seg_text(&r.segs[0]), "new\n");
    cfw_source_free(src);
    json_decref(bad);
    json_decref(junk);
    rec_clear(&r);
    free(p);
}

/* A file that appeared while the daemon was down is read from the beginning. */
static void test_restore_reads_files_new_since(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    char *pattern = pth(c, "*.log");
    struct cfw_source *src;
    json_t *saved;

    src = file_source(c, pattern, false, &r);
    start(src);
    loop_run_for(c->base, 50);
    saved = source_save_roundtrip(src);
    assert_int_equal(json_array_size(json_object_get(saved, "files")), 0);
    cfw_source_free(src);
    write_file(p, "written while down\n", 0);
    src = restored_source_take(c, pattern, &r, saved);
    assert_true(rec_wait_bytes(c->base, &r, 19, REC_WAIT_MS));
    assert_string_equal(rec_seg_text(&r.segs[0]), "written while down\n");
    finish(src, &r, p, pattern, NULL);
}

/* ---- budget, health, life cycle ---- */

static void test_budget_does_not_starve_timers(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "big.log");
    struct cfw_source_conf conf;
    struct cfw_source *src;
    struct loop_ticker t = {0};
    const size_t total = 8u * 1024u * 1024u;
    char *line = cfw_xmalloc(1024);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    assert_true(fd >= 0);
    memset(line, 'x', 1023);
    line[1023] = '\n';
    for (size_t i = 0; i < total / 1024; i++) {
        assert_int_equal(write(fd, line, 1024), 1024);
    }
    close(fd);
    free(line);
    file_conf(&conf, "big", p);
    conf.start_at_beginning = true;
    conf.read_budget = 64 * 1024;
    src = conf_source(c, &conf, &r);
    loop_ticker_start(c->base, &t);
    r.ticks = &t.n;
    start(src);
    assert_true(rec_wait_bytes(c->base, &r, total, REC_WAIT_MS));
    /* 8 MiB in 64 KiB turns: the zero timer ran between the turns (128 of them). */
    print_message("ticks during the read: %llu\n",
                  (unsigned long long)(r.last_tick - r.first_tick));
    assert_true(r.last_tick - r.first_tick >= 100);
    loop_ticker_stop(&t);
    finish(src, &r, p, NULL);
}

/* A glob that matches nothing yet (an empty CI log directory) is waiting, not blind. */
static void test_empty_glob_is_waiting_unless_files_are_expected(void **state)
{
    struct src_env *c = *state;

    for (int expect = 0; expect <= 1; expect++) {
        struct rec r = {0};
        char *glob = pth(c, expect ? "ci-b/*.log" : "ci-a/*.log");
        char *dir = pth(c, expect ? "ci-b" : "ci-a");
        char *file = pth(c, expect ? "ci-b/job1.log" : "ci-a/job1.log");
        struct cfw_source_conf conf;
        struct cfw_source *src;
        const char *reason = NULL;

        assert_int_equal(mkdir(dir, 0700), 0);
        file_conf(&conf, "ci", glob);
        conf.down_after_ms = 100;
        conf.poll_interval_ms = 50;
        conf.expect_files = expect;
        src = conf_source(c, &conf, &r);
        start(src);
        loop_run_for(c->base, 400);
        if (expect) {
            assert_int_equal(cfw_source_get_state(src, &reason), CFW_INPUT_DOWN);
            ASSERT_HAS_ALL(reason, "no file matches");
        } else {
            assert_int_equal(cfw_source_get_state(src, &reason), CFW_INPUT_UP);
            assert_int_equal(r.nstates, 0);
        }
        write_file(file, "hello\n", 0);
        assert_true(rec_wait_bytes(c->base, &r, 6, REC_WAIT_MS));
        assert_int_equal(cfw_source_get_state(src, NULL), CFW_INPUT_UP);
        cfw_source_free(src);
        rec_clear(&r);
        free(glob);
        free(dir);
        free(file);
    }
}

static void test_missing_file_goes_down_then_up(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "late.log");
    struct cfw_source_conf conf;
    struct cfw_source *src;
    int64_t t0;

    file_conf(&conf, "late", p);
    conf.down_after_ms = 300;
    conf.poll_interval_ms = 50;
    src = conf_source(c, &conf, &r);
    t0 = cfw_now_mono_ms();
    start(src);
    assert_int_equal(r.nstates, 1);
    assert_int_equal(r.states[0], CFW_INPUT_DEGRADED);
    ASSERT_HAS_ALL(r.reasons[0], "no file matches");
    assert_true(rec_wait_state(c->base, &r, CFW_INPUT_DOWN, 5000));
    print_message("down after %lldms\n", (long long)(cfw_now_mono_ms() - t0));
    assert_true(cfw_now_mono_ms() - t0 >= 300);
    assert_int_equal(r.nstates, 2);
    ASSERT_HAS_ALL(r.reasons[1], "late.log");
    /* The file appears: read from the beginning, state back to UP. */
    write_file(p, "hello\n", 0);
    assert_true(rec_wait_bytes(c->base, &r, 6, REC_WAIT_MS));
    assert_string_equal(rec_seg_text(&r.segs[0]), "hello\n");
    assert_int_equal(r.nstates, 3);
    assert_int_equal(r.states[2], CFW_INPUT_UP);
    assert_string_equal(r.reasons[2], "");
    finish(src, &r, p, NULL);
}

/*
 * Permission denied: run in a child process as an unprivileged user (root reads everything),
 * reporting the outcome through the exit status.
 */
static int permission_child(const char *dir)
{
    struct event_base *base;
    struct rec r = {0};
    struct cfw_source_conf conf;
    struct cfw_source_cbs cbs = rec_cbs(&r);
    struct cfw_source *src;
    char *p = cfw_xasprintf("%s/secret.log", dir);
    int fd;

    if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0)) {
        return 10;
    }
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, "secret\n", 7) != 7) {
        return 11;
    }
    close(fd);
    if (chmod(p, 0) < 0) {
        return 12;
    }
    base = loop_base_new(true);
    file_conf(&conf, "secret", p);
    conf.start_at_beginning = true;
    conf.down_after_ms = 100;
    conf.poll_interval_ms = 50;
    src = cfw_source_new(base, &conf, &cbs, NULL);
    cfw_source_conf_clear(&conf);
    if (src == NULL || cfw_source_start(src, NULL) < 0) {
        return 13;
    }
    source_wait_state(base, src, CFW_INPUT_DOWN, 5000);
    if (r.nstates < 2 || r.states[0] != CFW_INPUT_DEGRADED || r.states[1] != CFW_INPUT_DOWN) {
        return 14;
    }
    if (strstr(r.reasons[1], "Permission denied") == NULL) {
        return 15;
    }
    if (chmod(p, 0644) < 0) {
        return 16;
    }
    rec_wait_bytes(base, &r, 7, 5000);
    if (r.bytes != 7 || cfw_source_get_state(src, NULL) != CFW_INPUT_UP) {
        return 17;
    }
    cfw_source_free(src);
    event_base_free(base);
    rec_clear(&r);
    free(p);
    return 0;
}

static void test_permission_denied_goes_down(void **state)
{
    struct src_env *c = *state;
    pid_t pid;
    int status = 0;

    assert_int_equal(chmod(c->dir, 0777), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(permission_child(c->dir));
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_stop_ends_streams(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    struct cfw_source *src;
    json_t *saved;

    src = read_new_file(c, p, "1\n", &r);
    assert_false(cfw_source_stopped(src));
    cfw_source_stop(src);
    loop_run_for(c->base, 50);
    assert_true(cfw_source_stopped(src));
    assert_true(r.segs[0].ended);
    append_file(p, "2\n");
    loop_run_for(c->base, 100);
    assert_int_equal(r.bytes, 2);
    saved = cfw_source_save(src);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(saved, "files"), 0), "offset")),
                     2);
    json_decref(saved);
    finish(src, &r, p, NULL);
}

static void test_free_from_data_callback(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "a.log");
    struct cfw_source *src;

    write_file(p, "1\n2\n", 0);
    src = file_source(c, p, true, &r);
    r.free_on_data = &src;
    start(src);
    loop_run_for(c->base, 100);
    assert_null(src);
    assert_int_equal(r.nsegs, 1);
    rec_clear(&r);
    free(p);
}

/* ---- gzip files (a pattern ending in .gz) ---- */

static void write_bytes(const char *path, const void *p, size_t n, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

/* Appends one gzip member of text to out (level 6). */
static void gz_member(struct cfw_buf *out, const char *text)
{
    gzip_member_append(out, text, strlen(text), 6);
}

/*
 * Two members, one over several read budgets: the stream is their text. A restart with the
 * file unchanged reads nothing; a member appended while down is all a restart delivers.
 */
static void test_gzip_pattern_decompresses(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *p = pth(c, "batch.log.gz");
    char *pattern = pth(c, "*.log.gz");
    struct cfw_buf text = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_buf gz = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_source *src;
    json_t *saved;
    json_t *files;

    for (unsigned i = 0; i < 40000; i++) {
        cfw_buf_printf(&text, "GET /api/%u 200 OK in %u ms\n", i * 7919u % 100000u, i % 97u);
    }
    gz_member(&gz, text.data);
    gz_member(&gz, "second member\n");
    cfw_buf_puts(&text, "second member\n");
    assert_true(text.len > 3 * 262144);
    write_bytes(p, gz.data, gz.len, 0);
    src = file_source(c, pattern, true, &r);
    start(src);
    wait_then_run(c, &r, text.len, 100);
    assert_int_equal(r.bytes, text.len);
    assert_int_equal(r.nsegs, 1);
    assert_string_equal(r.segs[0].stream, p);
    assert_string_equal(rec_seg_text(&r.segs[0]), text.data);
    assert_int_equal(cfw_source_get_state(src, NULL), CFW_INPUT_UP);
    saved = source_save_roundtrip(src);
    files = json_object_get(saved, "files");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(files, 0), "offset")),
                     (json_int_t)gz.len);
    cfw_source_free(src);
    rec_clear(&r);

    /* Restart, unchanged: nothing again. */
    src = restored_source_take(c, pattern, &r, saved);
    loop_run_for(c->base, 200);
    assert_int_equal(r.bytes, 0);
    saved = save_and_free(src, &r);

    /* A member appended while down: inflated again up to the offset, then only it is new. */
    gz.len = 0;
    gz_member(&gz, "third member\n");
    write_bytes(p, gz.data, gz.len, O_APPEND);
    src = restored_source_take(c, pattern, &r, saved);
    wait_then_run(c, &r, 13, 100);
    assert_string_equal(rec_text(&r), "third member\n");
    cfw_source_free(src);
    rec_clear(&r);
    cfw_buf_free(&text);
    cfw_buf_free(&gz);
    free(p);
    free(pattern);
}

/*
 * Corrupt data after a good member: the member's text is delivered, the rest skipped, the
 * source stays up. A .gz file that is not gzip is read as it is; so is a gzip file matched by
 * a pattern that does not end in .gz (a rotated copy of lines already read).
 */
static void test_gzip_corrupt_plain_and_other_patterns(void **state)
{
    struct src_env *c = *state;
    struct rec r = {0};
    char *a = pth(c, "a.log.gz");
    char *b = pth(c, "b.log.gz");
    char *pattern = pth(c, "*.gz");
    char *other = pth(c, "a.log*");
    struct cfw_buf gz = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_source *src;
    char *text;
    size_t nseg = 0, nended = 0;

    gz_member(&gz, "good line\n");
    cfw_buf_append(&gz, "\0\0\0", 3);
    cfw_buf_puts(&gz, "junk after the padding");
    write_bytes(a, gz.data, gz.len, 0);
    write_file(b, "plain text, not gzip\n", 0);
    src = file_source(c, pattern, true, &r);
    start(src);
    wait_then_run(c, &r, 10 + 21, 200);
    assert_int_equal(r.bytes, 10 + 21);
    text = rec_stream_text(&r, a, &nseg, &nended);
    assert_string_equal(text, "good line\n");
    free(text);
    text = rec_stream_text(&r, b, &nseg, &nended);
    assert_string_equal(text, "plain text, not gzip\n");
    free(text);
    assert_int_equal(cfw_source_get_state(src, NULL), CFW_INPUT_UP);
    cfw_source_free(src);
    rec_clear(&r);

    src = file_source(c, other, true, &r);
    start(src);
    wait_then_run(c, &r, gz.len, 100);
    assert_int_equal(r.bytes, gz.len);
    cfw_source_free(src);
    rec_clear(&r);
    cfw_buf_free(&gz);
    free(a);
    free(b);
    free(pattern);
    free(other);
}

/* ---- high rate with rotations: exactly once ---- */

enum rot_mode {
    ROT_RENAME,
    ROT_COPYTRUNCATE_COOP, /* the rotation waits for the reader to catch up (no race window) */
    ROT_COPYTRUNCATE_RACE, /* the rotation does not wait */
};

#define HR_TOTAL 30000u
#define HR_ROTATE_EVERY 5000u
#define HR_LINES_PER_MS 10u

struct hr {
    char path[128];
    enum rot_mode mode;
    atomic_uint received; /* lines the reader parsed */
    atomic_bool done;
    unsigned copies;
    double rate; /* lines/s, measured outside the cooperative waits */
    int error;
    /* reader side (main thread) */
    unsigned char *seen;
    struct cfw_buf partial[16];
    char *pstream[16];
    size_t nstreams;
    unsigned bad_lines;
    unsigned torn;
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static int copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ssize_t n;

    if (in < 0 || out < 0) {
        return -1;
    }
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        if (write(out, buf, (size_t)n) != n) {
            return -1;
        }
    }
    close(in);
    close(out);
    return 0;
}

static void *writer_main(void *arg)
{
    struct hr *h = arg;
    int fd = open(h->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int64_t active_ms = 0;
    int64_t t = cfw_now_mono_ms();

    if (fd < 0) {
        h->error = 1;
        atomic_store(&h->done, true);
        return NULL;
    }
    for (unsigned i = 0; i < HR_TOTAL; i++) {
        char line[16];
        int n = snprintf(line, sizeof(line), "%08u\n", i);
        if (write(fd, line, (size_t)n) != n) {
            h->error = 2;
            break;
        }
        if ((i + 1) % HR_LINES_PER_MS == 0) {
            sleep_ms(1);
        }
        if ((i + 1) % HR_ROTATE_EVERY != 0 || i + 1 == HR_TOTAL) {
            continue;
        }
        h->copies++;
        {
            char *to = cfw_xasprintf("%s.%u", h->path, h->copies);
            if (h->mode == ROT_RENAME) {
                int nfd;
                if (rename(h->path, to) < 0) {
                    h->error = 3;
                }
                nfd = open(h->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                close(fd);
                fd = nfd;
            } else {
                if (h->mode == ROT_COPYTRUNCATE_COOP) {
                    int64_t deadline = cfw_now_mono_ms() + 60000;
                    active_ms += cfw_now_mono_ms() - t;
                    while (atomic_load(&h->received) < i + 1 && cfw_now_mono_ms() < deadline) {
                        sleep_ms(1);
                    }
                    t = cfw_now_mono_ms();
                }
                if (copy_file(h->path, to) < 0 || truncate(h->path, 0) < 0) {
                    h->error = 4;
                }
            }
            free(to);
        }
    }
    active_ms += cfw_now_mono_ms() - t;
    h->rate = active_ms > 0 ? (double)HR_TOTAL * 1000.0 / (double)active_ms : 0;
    close(fd);
    atomic_store(&h->done, true);
    return NULL;
}

static void hr_line(struct hr *h, const char *s, size_t n)
{
    uint64_t v = 0;
    char tmp[16];

    if (n != 8) {
        h->bad_lines++;
        return;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (cfw_parse_u64(tmp, &v) < 0 || v >= HR_TOTAL) {
        h->bad_lines++;
        return;
    }
    if (h->seen[v] < 255) {
        h->seen[v]++;
    }
    atomic_fetch_add(&h->received, 1);
}

static struct cfw_buf *hr_partial(struct hr *h, const char *stream)
{
    for (size_t i = 0; i < h->nstreams; i++) {
        if (strcmp(h->pstream[i], stream) == 0) {
            return &h->partial[i];
        }
    }
    assert_true(h->nstreams < 16);
    h->pstream[h->nstreams] = cfw_xstrdup(stream);
    cfw_buf_init(&h->partial[h->nstreams], CFW_BUF_MAX_BUILT);
    return &h->partial[h->nstreams++];
}

static void hr_data(void *arg, struct cfw_source *src, const char *stream, const char *buf,
                    size_t len)
{
    struct hr *h = arg;
    struct cfw_buf *b = hr_partial(h, stream);
    size_t start = 0;

    (void)src;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n') {
            continue;
        }
        if (b->len > 0) {
            assert_int_equal(cfw_buf_append(b, buf + start, i - start), 0);
            hr_line(h, b->data, b->len);
            cfw_buf_reset(b);
        } else {
            hr_line(h, buf + start, i - start);
        }
        start = i + 1;
    }
    if (start < len) {
        assert_int_equal(cfw_buf_append(b, buf + start, len - start), 0);
    }
}

static void hr_eof(void *arg, struct cfw_source *src, const char *stream)
{
    struct hr *h = arg;
    struct cfw_buf *b = hr_partial(h, stream);

    (void)src;
    if (b->len > 0) {
        h->torn++;
        cfw_buf_reset(b);
    }
}

struct hr_wait {
    struct hr *h;
    bool all;
};

static bool hr_finished(void *arg)
{
    struct hr_wait *w = arg;
    struct hr *h = w->h;

    if (!atomic_load(&h->done)) {
        return false;
    }
    if (w->all) {
        return atomic_load(&h->received) >= HR_TOTAL;
    }
    return h->seen[HR_TOTAL - 1] > 0;
}

/* Marks the numbers found in the rotated copies. */
static void read_copies(const struct hr *h, unsigned char *in_copy)
{
    for (unsigned k = 1; k <= h->copies; k++) {
        char *p = cfw_xasprintf("%s.%u", h->path, k);
        FILE *fp = fopen(p, "r");
        char line[64];
        assert_non_null(fp);
        while (fgets(line, sizeof(line), fp) != NULL) {
            uint64_t v;
            line[strcspn(line, "\n")] = '\0';
            if (cfw_parse_u64(line, &v) == 0 && v < HR_TOTAL) {
                in_copy[v] = 1;
            }
        }
        fclose(fp);
        free(p);
    }
}

static void high_rate(struct src_env *c, enum rot_mode mode, bool glob)
{
    struct hr *h = cfw_xcalloc(1, sizeof(*h));
    struct cfw_source_conf conf;
    struct cfw_source_cbs cbs = {.data = hr_data, .eof = hr_eof, .arg = h};
    struct cfw_source *src;
    pthread_t th;
    struct hr_wait w = {h, mode != ROT_COPYTRUNCATE_RACE};
    unsigned missing = 0;
    unsigned dup = 0;

    snprintf(h->path, sizeof(h->path), "%s/app.log", c->dir);
    h->mode = mode;
    h->seen = cfw_xcalloc(HR_TOTAL, 1);
    write_file(h->path, "", 0);
    cfw_source_conf_init(&conf, CFW_SOURCE_FILE);
    conf.name = cfw_xstrdup("hr");
    conf.path = glob ? cfw_xasprintf("%s*", h->path) : cfw_xstrdup(h->path);
    src = cfw_source_new(c->base, &conf, &cbs, NULL);
    cfw_source_conf_clear(&conf);
    assert_non_null(src);
    start(src);
    assert_int_equal(pthread_create(&th, NULL, writer_main, h), 0);
    assert_true(loop_run_until(c->base, hr_finished, &w, 120000));
    assert_int_equal(pthread_join(th, NULL), 0);
    loop_run_for(c->base, 300); /* anything read twice would show up now */
    assert_int_equal(h->error, 0);
    for (unsigned i = 0; i < HR_TOTAL; i++) {
        if (h->seen[i] == 0) {
            missing++;
        } else if (h->seen[i] > 1) {
            dup++;
        }
    }
    print_message("writer: %u lines at %.0f lines/s, %u rotations; reader: %u missing, %u "
                  "duplicated, %u torn, %u bad\n",
                  HR_TOTAL, h->rate, h->copies, missing, dup, h->torn, h->bad_lines);
    assert_int_equal(h->copies, HR_TOTAL / HR_ROTATE_EVERY - 1);
    assert_int_equal(dup, 0);
    assert_int_equal(h->torn, 0);
    assert_int_equal(h->bad_lines, 0);
    if (mode != ROT_COPYTRUNCATE_RACE) {
        assert_int_equal(missing, 0);
    } else {
        /*
         * Without cooperation, what copytruncate loses is what the reader had not read when
         * the file was truncated. Those lines are in the copy (the writer thread copies and
         * truncates with no write in between), so: every line not delivered is in a copy,
         * and every line delivered was delivered once.
         */
        unsigned char *in_copy = cfw_xcalloc(HR_TOTAL, 1);
        read_copies(h, in_copy);
        for (unsigned i = 0; i < HR_TOTAL; i++) {
            if (h->seen[i] == 0 && !in_copy[i]) {
                fail_msg("line %u was neither delivered nor in a rotated copy", i);
            }
        }
        free(in_copy);
    }
    cfw_source_free(src);
    for (size_t i = 0; i < h->nstreams; i++) {
        cfw_buf_free(&h->partial[i]);
        free(h->pstream[i]);
    }
    free(h->seen);
    free(h);
}

static void test_high_rate_rename(void **state)
{
    high_rate(*state, ROT_RENAME, false);
}

static void test_high_rate_rename_glob(void **state)
{
    high_rate(*state, ROT_RENAME, true);
}

static void test_high_rate_copytruncate(void **state)
{
    high_rate(*state, ROT_COPYTRUNCATE_COOP, false);
}

static void test_high_rate_copytruncate_race(void **state)
{
    high_rate(*state, ROT_COPYTRUNCATE_RACE, false);
}

/* ---- configuration ---- */

/* Parses text (a file named test.yaml) as the entry at path. */
static int parse(const char *text, const char *path, struct cfw_source_conf *conf,
                 struct cfw_diag *diag)
{
    return source_conf_parse_text("test.yaml", text, path, conf, diag);
}

static void test_conf_file(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_source_conf conf;

    (void)state;
    assert_int_equal(parse("name: deploys\n"
                           "type: file\n"
                           "path: /var/log/ci/wrangler-*.log\n"
                           "start_at: beginning\n"
                           "format: wrangler-log\n"
                           "poll_interval: 250ms\n"
                           "read_budget: 65536\n"
                           "down_after: 2m\n"
                           "max_files: 10\n",
                           "sources[0]", &conf, &diag),
                     0);
    assert_int_equal(diag.n, 0);
    assert_string_equal(conf.name, "deploys");
    assert_int_equal(conf.type, CFW_SOURCE_FILE);
    assert_string_equal(conf.path, "/var/log/ci/wrangler-*.log");
    assert_true(conf.start_at_beginning);
    assert_int_equal(conf.format, CFW_FMT_WRANGLER_LOG);
    assert_int_equal(conf.poll_interval_ms, 250);
    assert_int_equal(conf.read_budget, 65536);
    assert_int_equal(conf.down_after_ms, 120000);
    assert_int_equal(conf.max_files, 10);
    cfw_source_conf_clear(&conf);

    /* Defaults. */
    assert_int_equal(parse("name: x\ntype: file\npath: /tmp/x.log\n", "sources[0]", &conf, &diag),
                     0);
    assert_false(conf.start_at_beginning);
    assert_int_equal(conf.format, CFW_FMT_AUTO);
    assert_int_equal(conf.read_budget, CFW_SOURCE_READ_BUDGET_DEFAULT);
    assert_int_equal(conf.poll_interval_ms, CFW_SOURCE_POLL_INTERVAL_DEFAULT_MS);
    assert_int_equal(conf.down_after_ms, CFW_SOURCE_DOWN_AFTER_DEFAULT_MS);
    cfw_source_conf_clear(&conf);
    cfw_diag_free(&diag);
}

static void test_conf_errors_all_reported(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_source_conf conf;

    (void)state;
    assert_int_equal(parse("name: 'bad name'\n"
                           "type: file\n"
                           "start_at: middle\n"
                           "format: xml\n"
                           "colour: blue\n"
                           "read_budget: 1\n",
                           "sources[1]", &conf, &diag),
                     -1);
    ASSERT_DIAG_HAS_ALL(&diag, "unknown key", "colour", "not a valid name", "needs 'path'",
                        "expected end or beginning", "unknown format 'xml'", "sources[1]",
                        "test.yaml:");
    assert_true(diag.n >= 6);
    assert_null(conf.name);
    cfw_diag_free(&diag);

    diag = (struct cfw_diag){0};
    assert_int_equal(parse("name: x\ntype: logfile\n", "sources[0]", &conf, &diag), -1);
    ASSERT_DIAG_HAS_ALL(&diag, "unknown source type 'logfile'");
    cfw_diag_free(&diag);
}

#define FILE_TEST(f) cmocka_unit_test_setup_teardown(f, setup, src_env_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FILE_TEST(test_beginning_then_append),
        FILE_TEST(test_start_at_end),
        FILE_TEST(test_glob_picks_up_new_file),
        FILE_TEST(test_rename_rotation_drains_old_file),
        FILE_TEST(test_rename_rotation_glob_no_reread),
        FILE_TEST(test_copytruncate),
        FILE_TEST(test_truncate_regrown_detected_by_fingerprint),
        FILE_TEST(test_delete_drains_then_lets_go),
        FILE_TEST(test_rename_seen_after_the_file_was_let_go),
        FILE_TEST(test_rename_after_let_go_rewritten_read_whole),
        FILE_TEST(test_file_back_under_the_name_not_reread),
        FILE_TEST(test_restore_resumes_exactly),
        FILE_TEST(test_restore_detects_replaced_content),
        FILE_TEST(test_restore_rejects_bad_state),
        FILE_TEST(test_restore_reads_files_new_since),
        FILE_TEST(test_budget_does_not_starve_timers),
        FILE_TEST(test_missing_file_goes_down_then_up),
        FILE_TEST(test_empty_glob_is_waiting_unless_files_are_expected),
        FILE_TEST(test_permission_denied_goes_down),
        FILE_TEST(test_stop_ends_streams),
        FILE_TEST(test_free_from_data_callback),
        FILE_TEST(test_gzip_pattern_decompresses),
        FILE_TEST(test_gzip_corrupt_plain_and_other_patterns),
        FILE_TEST(test_high_rate_rename),
        FILE_TEST(test_high_rate_rename_glob),
        FILE_TEST(test_high_rate_copytruncate),
        FILE_TEST(test_high_rate_copytruncate_race),
        cmocka_unit_test(test_conf_file),
        cmocka_unit_test(test_conf_errors_all_reported),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
