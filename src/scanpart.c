/* One large file scanned in parts at once: see scanpart.h. */
#include "cfwatchd/scanpart.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfwatchd/gzip.h"

#define PART_CHUNK (64u * 1024u)
/* how much of a file's start is framed to learn its mode (its first line decides it) */
#define PART_HEAD (64u * 1024u)

struct reader {
    int fd;
    uint64_t pos;
    char *buf;
    void (*progress)(size_t n, void *arg);
    void *arg;
    struct cfw_err *err;
};

/* Reads up to n bytes at r->pos into r->buf: the count (0 at the end), -1 with err set. */
static ssize_t read_at(struct reader *r, size_t n)
{
    for (;;) {
        ssize_t got = pread(r->fd, r->buf, n, (off_t)r->pos);

        if (got >= 0) {
            return got;
        }
        if (errno != EINTR) {
            cfw_err_set(r->err, "read error: %s", strerror(errno));
            return -1;
        }
    }
}

/* Moves r->pos to the first line start at or after it (the end when there is none). */
static int to_line_start(struct reader *r)
{
    if (r->pos == 0) {
        return 0;
    }
    r->pos--; /* a line starts at pos when the byte before it ends one */
    for (;;) {
        ssize_t got = read_at(r, PART_CHUNK);
        const char *nl;

        if (got <= 0) {
            return (int)got;
        }
        nl = memchr(r->buf, '\n', (size_t)got);
        if (nl != NULL) {
            r->pos += (uint64_t)(nl - r->buf) + 1;
            return 0;
        }
        r->pos += (uint64_t)got;
    }
}

/* Feeds in the bytes from r->pos up to end (or the file's end); 0, or -1 on a read error. */
static int feed_to(struct reader *r, struct cfw_pipeline_input *in, uint64_t end)
{
    while (r->pos < end) {
        uint64_t left = end - r->pos;
        ssize_t got = read_at(r, left < PART_CHUNK ? (size_t)left : PART_CHUNK);

        if (got <= 0) {
            return (int)got;
        }
        cfw_pipeline_input_feed(in, r->buf, (size_t)got);
        if (r->progress != NULL) {
            r->progress((size_t)got, r->arg);
        }
        r->pos += (uint64_t)got;
    }
    return 0;
}

bool cfw_part_splittable(int fd, const struct cfw_framer_opts *fopts, struct cfw_framer_mid *mid)
{
    struct cfw_err err = {0};
    struct reader r = {.fd = fd, .buf = cfw_xmalloc(PART_HEAD), .err = &err};
    struct cfw_framer *f = cfw_framer_new("", fopts, NULL, NULL);
    ssize_t got = read_at(&r, PART_HEAD);
    bool ok = got > 2 && !cfw_gzip_magic(r.buf, (size_t)got);

    if (ok) {
        cfw_framer_feed(f, r.buf, (size_t)got);
        ok = cfw_framer_mid_of(f, mid);
    }
    cfw_framer_free(f);
    free(r.buf);
    return ok;
}

static void shadow_observe(const struct cfw_match *m, const struct cfw_event *ev, void *arg)
{
    (void)m;
    (void)ev;
    (void)arg;
}

static void shadow_succeed(const char *script, const char *input, const char *line, uint64_t lineno,
                           void *arg)
{
    (void)script;
    (void)input;
    (void)line;
    (void)lineno;
    (void)arg;
}

/*
 * in is not at rest at r->pos, the next part's start: frames on a line at a time, through in
 * and through a shadow input started at the next part's start, until both are at rest (or the
 * file ends) before limit. Returns 0 with res->shadow filled, 1 when they did not meet, -1 on
 * an error.
 */
static int meet(struct reader *r, struct cfw_pipeline_input *in, struct cfw_ruleset *rs,
                const char *name, const struct cfw_framer_opts *fopts, const struct cfw_part *pt,
                struct cfw_part_result *res)
{
    static const struct cfw_pipeline_tap none = {shadow_observe, shadow_succeed, NULL};
    struct cfw_pipeline *sp = cfw_pipeline_new(rs, NULL, NULL);
    struct cfw_pipeline_input *sin;
    int rc = 1;

    cfw_pipeline_set_tap(sp, &none);
    sin = cfw_pipeline_input_new_mid(sp, name, NULL, fopts, &pt->mid);
    while (r->pos < pt->limit) {
        ssize_t got = read_at(r, PART_CHUNK);
        const char *p = r->buf;

        if (got <= 0) {
            rc = (int)got; /* the end: both finish there, which is where they meet */
            break;
        }
        while (p < r->buf + got) {
            const char *nl = memchr(p, '\n', (size_t)(r->buf + got - p));
            size_t n = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(r->buf + got - p);

            if (r->pos + (uint64_t)(p - r->buf) >= pt->limit) {
                break; /* the part after next begins: too far */
            }
            cfw_pipeline_input_feed(in, p, n);
            cfw_pipeline_input_feed(sin, p, n);
            p += n;
            if (nl != NULL && cfw_pipeline_input_at_rest(in) && cfw_pipeline_input_at_rest(sin)) {
                rc = 0;
                break;
            }
        }
        if (rc == 0 || p < r->buf + got) {
            r->pos += (uint64_t)(p - r->buf);
            break;
        }
        r->pos += (uint64_t)got;
    }
    cfw_pipeline_input_free(sin); /* finished: its counters are whole */
    res->shadow = *cfw_pipeline_stats(sp);
    cfw_pipeline_free(sp);
    return rc;
}

int cfw_part_scan(struct cfw_pipeline *p, struct cfw_ruleset *rs, int fd, const char *name,
                  const struct cfw_framer_opts *fopts, const struct cfw_part *pt,
                  struct cfw_part_result *res, void (*progress)(size_t n, void *arg), void *arg,
                  struct cfw_err *err)
{
    struct reader r = {fd, pt->from, cfw_xmalloc(PART_CHUNK), progress, arg, err};
    struct reader next = r;
    struct cfw_pipeline_input *in = NULL;
    int rc;

    memset(res, 0, sizeof(*res));
    rc = to_line_start(&r);
    if (rc == 0 && pt->to != UINT64_MAX) {
        next.pos = pt->to;
        rc = to_line_start(&next);
    } else {
        next.pos = UINT64_MAX;
    }
    if (rc == 0) {
        in = cfw_pipeline_input_new_mid(p, name, NULL, fopts, r.pos > 0 ? &pt->mid : NULL);
        rc = feed_to(&r, in, next.pos);
    }
    if (rc == 0 && next.pos != UINT64_MAX && !cfw_pipeline_input_at_rest(in)) {
        rc = meet(&r, in, rs, name, fopts, pt, res);
    }
    if (rc < 0) {
        memset(&res->shadow, 0, sizeof(res->shadow)); /* no meeting */
    } else if (rc == 1) {
        /* no meeting before the part after next: this part frames the rest of the file alone */
        memset(&res->shadow, 0, sizeof(res->shadow));
        res->rest = true;
        rc = feed_to(&r, in, UINT64_MAX);
    }
    res->stop = r.pos;
    cfw_pipeline_input_free(in);
    free(r.buf);
    return rc;
}
