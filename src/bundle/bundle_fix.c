/* --check-bundle --fix: the unified diff of the rewrites, and applying it without half-writes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle_int.h"
#include "cfwatchd/bundle.h"

#define DIFF_CONTEXT 3

static const char init_text[] = "# Makes this directory a regular package "
                                "(added by cfwatchd --check-bundle --fix).\n";

struct line {
    const char *p;
    size_t len; /* without the newline */
    bool nl;    /* ends with a newline */
};

static size_t split_lines(const char *text, size_t len, struct line **out)
{
    size_t n = 0, cap = 64, start = 0;

    *out = cfw_xmalloc(cap * sizeof(**out));
    while (start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (n == cap) {
            cap *= 2;
            *out = cfw_xrealloc(*out, cap * sizeof(**out));
        }
        (*out)[n++] = (struct line){text + start, end - start, nl != NULL};
        start = end + 1;
    }
    return n;
}

static int cmp_edit(const void *a, const void *b)
{
    const struct cfw_bundle_edit *x = *(const struct cfw_bundle_edit *const *)a;
    const struct cfw_bundle_edit *y = *(const struct cfw_bundle_edit *const *)b;
    return x->start < y->start ? -1 : x->start > y->start ? 1 : 0;
}

/*
 * Applies every rewrite edit of path to text; -1 with err when a range no longer holds the
 * text it held when checked (the file changed since).
 */
static int apply_edits(const struct cfw_bundle_report *r, const char *path, const char *text,
                       size_t len, struct cfw_buf *out, size_t *count, struct cfw_err *err)
{
    const struct cfw_bundle_edit **v = cfw_xcalloc(r->n_edits + 1, sizeof(*v));
    size_t n = 0, pos = 0;

    for (size_t k = 0; k < r->n_edits; k++) {
        if (r->edits[k].replacement != NULL && strcmp(r->edits[k].path, path) == 0) {
            v[n++] = &r->edits[k];
        }
    }
    qsort(v, n, sizeof(*v), cmp_edit);
    *count = 0;
    for (size_t k = 0; k < n; k++) {
        const struct cfw_bundle_edit *e = v[k];
        if (e->start < pos) {
            continue; /* overlapping: keep the first */
        }
        if (e->end > len || e->expect == NULL ||
            memcmp(text + e->start, e->expect, e->end - e->start) != 0) {
            cfw_err_set(err, "%s: changed since it was checked; run --check-bundle again", path);
            free(v);
            return -1;
        }
        cfw_buf_append(out, text + pos, e->start - pos);
        cfw_buf_puts(out, e->replacement);
        pos = e->end;
        (*count)++;
    }
    cfw_buf_append(out, text + pos, len - pos);
    free(v);
    return 0;
}

static void put_line(struct cfw_buf *b, char tag, const struct line *l)
{
    cfw_buf_putc(b, tag);
    cfw_buf_append(b, l->p, l->len);
    cfw_buf_putc(b, '\n');
    if (!l->nl) {
        cfw_buf_puts(b, "\\ No newline at end of file\n");
    }
}

/* A unified diff of two texts with the same number of lines (the rewrites never add lines). */
static void diff_same_shape(struct cfw_buf *b, const char *path, const struct line *a,
                            const struct line *c, size_t n)
{
    size_t k = 0;

    cfw_buf_printf(b, "--- a/%s\n+++ b/%s\n", path, path);
    while (k < n) {
        size_t first, last, start, end;
        if (a[k].len == c[k].len && a[k].nl == c[k].nl && memcmp(a[k].p, c[k].p, a[k].len) == 0) {
            k++;
            continue;
        }
        first = last = k;
        /* Extend the hunk while the next change is within twice the context. */
        for (size_t j = k + 1; j < n && j <= last + 2 * DIFF_CONTEXT; j++) {
            if (a[j].len != c[j].len || memcmp(a[j].p, c[j].p, a[j].len) != 0) {
                last = j;
            }
        }
        start = first > DIFF_CONTEXT ? first - DIFF_CONTEXT : 0;
        end = last + DIFF_CONTEXT + 1 < n ? last + DIFF_CONTEXT + 1 : n;
        cfw_buf_printf(b, "@@ -%zu,%zu +%zu,%zu @@\n", start + 1, end - start, start + 1,
                       end - start);
        for (size_t j = start; j < end;) {
            if (a[j].len == c[j].len && memcmp(a[j].p, c[j].p, a[j].len) == 0) {
                put_line(b, ' ', &a[j]);
                j++;
                continue;
            }
            {
                size_t run = j;
                while (run < end &&
                       !(a[run].len == c[run].len && memcmp(a[run].p, c[run].p, a[run].len) == 0)) {
                    run++;
                }
                for (size_t q = j; q < run; q++) {
                    put_line(b, '-', &a[q]);
                }
                for (size_t q = j; q < run; q++) {
                    put_line(b, '+', &c[q]);
                }
                j = run;
            }
        }
        k = end;
    }
}

/* The distinct paths of the rewrite edits, in first-seen order. */
static size_t edit_paths(const struct cfw_bundle_report *r, const char ***out)
{
    size_t n = 0;

    *out = cfw_xcalloc(r->n_edits + 1, sizeof(char *));
    for (size_t k = 0; k < r->n_edits; k++) {
        bool seen = false;
        if (r->edits[k].replacement == NULL) {
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            seen |= strcmp((*out)[j], r->edits[k].path) == 0;
        }
        if (!seen) {
            (*out)[n++] = r->edits[k].path;
        }
    }
    return n;
}

int cfw_bundle_fix_diff(const struct cfw_bundle_report *r, struct cfw_buf *out, struct cfw_err *err)
{
    const char **paths;
    size_t np = edit_paths(r, &paths);

    for (size_t k = 0; k < np; k++) {
        char *text = NULL;
        size_t len = 0, count = 0, na, nc;
        struct cfw_buf nb;
        struct line *a = NULL, *c = NULL;

        cfw_buf_init(&nb, CFW_BUF_MAX_BUILT);
        if ((text = cfw_fs_read_file(paths[k], CFW_BUNDLE_MAX_FILE_BYTES, &len, err)) == NULL) {
            free(paths);
            return -1;
        }
        if (apply_edits(r, paths[k], text, len, &nb, &count, err) != 0) {
            free(text);
            free(paths);
            return -1;
        }
        na = split_lines(text, len, &a);
        nc = split_lines(nb.data ? nb.data : "", nb.len, &c);
        if (na == nc) {
            diff_same_shape(out, paths[k], a, c, na);
        } else {
            /* Not produced by our edits; shown whole rather than wrongly. */
            cfw_buf_printf(out, "--- a/%s\n+++ b/%s\n@@ -1,%zu +1,%zu @@\n", paths[k], paths[k], na,
                           nc);
            for (size_t j = 0; j < na; j++) {
                put_line(out, '-', &a[j]);
            }
            for (size_t j = 0; j < nc; j++) {
                put_line(out, '+', &c[j]);
            }
        }
        free(a);
        free(c);
        cfw_buf_free(&nb);
        free(text);
    }
    free(paths);
    for (size_t k = 0; k < r->n_edits; k++) {
        if (r->edits[k].replacement == NULL) {
            cfw_buf_printf(out, "--- /dev/null\n+++ b/%s\n@@ -0,0 +1 @@\n+%.*s\n", r->edits[k].path,
                           (int)(sizeof(init_text) - 2), init_text);
        }
    }
    return 0;
}

int bundle_mkdirs_for(const char *path, struct cfw_err *err)
{
    char *p = cfw_xstrdup(path);
    char *slash = strrchr(p, '/');

    if (slash == NULL || slash == p) {
        free(p);
        return 0;
    }
    *slash = '\0';
    for (char *q = p + 1; *q; q++) {
        if (*q == '/') {
            *q = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                cfw_err_setc(err, errno, "mkdir %s: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            *q = '/';
        }
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
        cfw_err_setc(err, errno, "mkdir %s: %s", p, strerror(errno));
        free(p);
        return -1;
    }
    free(p);
    return 0;
}

/*
 * Writes data to path through cfw_fs_write_atomic: a temporary file in the target's directory
 * (rename(2) is atomic only within one filesystem), so a reader sees either the old file or the
 * complete new one, never a prefix. The file keeps its permissions (0644 when new); create_only
 * links instead of renaming, so an __init__.py that appeared meanwhile is kept (EEXIST).
 */
static int write_file(const char *path, const char *data, size_t len, bool create_only,
                      struct cfw_err *err)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL   ? cfw_xstrdup(".")
                : slash == path ? cfw_xstrdup("/")
                                : cfw_xstrndup(path, (size_t)(slash - path));
    int rc =
        cfw_fs_write_atomic_flags(-1, dir, slash != NULL ? slash + 1 : path, data, len, 0644,
                                  CFW_FS_KEEP_MODE | (create_only ? CFW_FS_CREATE_ONLY : 0), err);

    free(dir);
    return rc;
}

int cfw_bundle_fix_write(const struct cfw_bundle_report *r, struct cfw_buf *out,
                         struct cfw_err *err)
{
    const char **paths;
    size_t np = edit_paths(r, &paths);
    int rc = 0;

    /* Check every file first, so that a stale one stops the run before anything is written. */
    for (size_t pass = 0; pass < 2 && rc == 0; pass++) {
        for (size_t k = 0; k < np; k++) {
            char *text = NULL;
            size_t len = 0, count = 0;
            struct cfw_buf nb;

            cfw_buf_init(&nb, CFW_BUF_MAX_BUILT);
            if ((text = cfw_fs_read_file(paths[k], CFW_BUNDLE_MAX_FILE_BYTES, &len, err)) == NULL ||
                apply_edits(r, paths[k], text, len, &nb, &count, err) != 0) {
                free(text);
                cfw_buf_free(&nb);
                rc = -1;
                break;
            }
            if (pass == 1) {
                if (write_file(paths[k], nb.data ? nb.data : "", nb.len, false, err) != 0) {
                    free(text);
                    cfw_buf_free(&nb);
                    rc = -1;
                    break;
                }
                cfw_buf_printf(out, "rewrote %s (%zu import%s)\n", paths[k], count,
                               count == 1 ? "" : "s");
            }
            free(text);
            cfw_buf_free(&nb);
        }
    }
    free(paths);
    if (rc != 0) {
        return -1;
    }
    for (size_t k = 0; k < r->n_edits; k++) {
        struct cfw_err e2 = {0};
        if (r->edits[k].replacement != NULL) {
            continue;
        }
        if (write_file(r->edits[k].path, init_text, sizeof(init_text) - 1, true, &e2) != 0) {
            if (e2.code == EEXIST) {
                cfw_buf_printf(out, "kept %s (it exists already)\n", r->edits[k].path);
                continue;
            }
            cfw_err_set(err, "%s", e2.msg);
            return -1;
        }
        cfw_buf_printf(out, "created %s\n", r->edits[k].path);
    }
    return 0;
}
