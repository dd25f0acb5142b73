/*
 * The file source: a path or a glob, read in budgets per loop turn. inotify wakes the loop, a
 * periodic scan (glob + stat) is the safety net. Files are tracked by identity (device +
 * inode), not by name, so a rotated file that still matches the glob is not read twice.
 *
 * Per file we remember the offset of the bytes delivered and the last (up to)
 * CFW_SOURCE_FINGERPRINT_MAX bytes before it. Before each read the file is checked: a size
 * below the offset or different bytes before the offset mean it was truncated or replaced in
 * place (copytruncate, inode reuse), and it is read again from 0.
 *
 * A pattern whose last component ends in ".gz" (such as logpush-*.log.gz) reads gzip files
 * decompressed (gzip.h: every member, zero padding), for Logpush or rotated archives copied in
 * whole. The offset, the window and the saved position stay in bytes of the file; a file
 * resumed at an offset above 0 is inflated again from 0 with the output up to the offset
 * dropped, and only once it has grown (a finished archive read to its end costs nothing on a
 * restart). A member still being written is waited for, like a partial line; corrupt data is
 * logged and the file is not read further until it changes. Why only such a pattern: a glob
 * like app.log* also matches the app.log.2.gz that logrotate compresses from lines already
 * read, and decompressing those would report them twice.
 */
#include "cfwatchd/source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "cfwatchd/gzip.h"
#include "cfwatchd/log.h"
#include "source_int.h"

#define FP_MAX CFW_SOURCE_FINGERPRINT_MAX
#define DIR_SEARCH_MAX 100000u
#define INOTIFY_BUF 16384
#define MOVES_MAX 64
#define RETIRED_MAX 64

struct wfile {
    char *path;   /* where the file was last seen */
    char *stream; /* the stream name: the path when its stream began */
    int fd;
    dev_t dev;
    ino_t ino;
    uint64_t offset;           /* bytes delivered */
    uint64_t size;             /* size at the last check (lag) */
    unsigned char win[FP_MAX]; /* the last winlen bytes before offset */
    size_t winlen;
    struct cfw_gzip *gz; /* decoder of a gzip file, or NULL */
    uint64_t gz_in;      /* bytes of the file fed to gz */
    bool gz_checked;     /* the first bytes were looked at (gzip sources only) */
    bool gz_failed;      /* corrupt gzip data: not read until the file changes */
    int wd;         /* per-file inotify watch or -1 */
    bool streaming; /* data delivered since the stream began: eof is owed */
    bool dirty;     /* may have unread bytes */
    bool draining;  /* renamed or gone: read to EOF, then end the stream */
    bool gone;      /* no longer matched: let go after the drain */
    bool seen;      /* scan mark */
    bool dead;      /* to be removed after the pass */
    char *last_log;
};

/*
 * A file let go after its drain while it still existed under another name. Its rename may be
 * seen only afterwards (the kernel can hand IN_MOVED_FROM to a read before it queues the
 * matching IN_MOVED_TO, and a scan in between drains and lets the file go): the record keeps
 * what was delivered, so that late rename is not taken for a file never read.
 */
struct retired {
    dev_t dev;
    ino_t ino;
    uint64_t offset;
    uint64_t fp;
    size_t fplen;
};

/* A position restored from saved state, matched to a file on the first scan. */
struct saved {
    char *path;   /* the stream name when saved */
    char *now_at; /* where the file was when saved, when that differs */
    dev_t dev;
    ino_t ino;
    uint64_t offset;
    uint64_t fp;
    size_t fplen;
};

struct file_src {
    struct cfw_source *src;
    struct wfile **files;
    size_t nfiles;
    size_t cap;
    size_t rr; /* round-robin start */
    struct saved *saved;
    size_t nsaved;
    int ifd;
    int dir_wd;
    bool dir_mode; /* the directory part of the pattern is literal: one directory watch */
    bool glob;     /* the pattern has glob characters */
    char *dir;     /* directory part of the pattern */
    char *base;    /* last component of the pattern */
    bool gzip;     /* the pattern names .gz files: gzip files are decompressed */
    struct wfile *gz_cur; /* the file whose decoder is running */
    bool gz_drop;         /* its output is dropped (inflated again up to a resumed offset) */
    bool gz_abort;        /* the source was freed or stopped from the data callback */
    bool need_scan;
    /*
     * Renames seen by the directory watch: a file that left a watched name (IN_MOVED_FROM) for
     * another name (IN_MOVED_TO, same cookie). When two rotations happen before the daemon
     * looks, the middle file was never opened under the watched name; the next scan finds it at
     * its new name through this list and reads it whole.
     */
    uint32_t move_cookie[MOVES_MAX];
    size_t nmove_cookies;
    char *moved_to[MOVES_MAX];
    size_t nmoved;
    struct retired retired[RETIRED_MAX]; /* oldest first */
    size_t nretired;
    bool closed; /* stopped: every file closed */
    struct event *inotify_ev;
    struct event *poll_ev;
    struct event *work_ev;
    char *buf;
    char *last_log;
    bool warned_max;
};

/* Outcome of reading one file. */
enum rd {
    RD_EOF,
    RD_BUDGET,
    RD_ERROR,
    RD_ABORT, /* the source was freed or asked to stop */
    RD_OK,    /* read_at: bytes were read */
};

static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

static const char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

static char *dirname_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        return cfw_xstrdup(".");
    }
    if (slash == path) {
        return cfw_xstrdup("/");
    }
    return cfw_xstrndup(path, (size_t)(slash - path));
}

static void wfile_free(struct file_src *fs, struct wfile *wf)
{
    if (wf == NULL) {
        return;
    }
    if (wf->wd >= 0 && fs->ifd >= 0) {
        inotify_rm_watch(fs->ifd, wf->wd);
    }
    if (wf->fd >= 0) {
        close(wf->fd);
    }
    cfw_gzip_free(wf->gz);
    free(wf->path);
    free(wf->stream);
    free(wf->last_log);
    free(wf);
}

static struct wfile *find_identity(struct file_src *fs, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < fs->nfiles; i++) {
        struct wfile *wf = fs->files[i];
        if (!wf->dead && wf->dev == dev && wf->ino == ino) {
            return wf;
        }
    }
    return NULL;
}

/* Remembers the last bytes delivered, for the truncation check and the saved fingerprint. */
static void window_push(struct wfile *wf, const char *p, size_t n)
{
    if (n >= FP_MAX) {
        memcpy(wf->win, p + n - FP_MAX, FP_MAX);
        wf->winlen = FP_MAX;
        return;
    }
    if (wf->winlen + n > FP_MAX) {
        size_t drop = wf->winlen + n - FP_MAX;
        memmove(wf->win, wf->win + drop, wf->winlen - drop);
        wf->winlen -= drop;
    }
    memcpy(wf->win + wf->winlen, p, n);
    wf->winlen += n;
}

/* Reads the window before offset from the file itself; 0 or -1 when it cannot be read whole. */
static int window_load(int fd, uint64_t offset, unsigned char *out, size_t *outlen)
{
    size_t want = offset < FP_MAX ? (size_t)offset : FP_MAX;
    size_t got = 0;

    while (got < want) {
        ssize_t n = pread(fd, out + got, want - got, (off_t)(offset - want + got));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        got += (size_t)n;
    }
    *outlen = want;
    return 0;
}

static void retired_drop(struct file_src *fs, size_t i)
{
    memmove(&fs->retired[i], &fs->retired[i + 1], (fs->nretired - i - 1) * sizeof(fs->retired[0]));
    fs->nretired--;
}

/* Remembers a drained file that is let go while it still has a name (not deleted). */
static void retire(struct file_src *fs, const struct wfile *wf)
{
    struct stat st;

    if (wf->fd < 0 || fstat(wf->fd, &st) < 0 || st.st_nlink == 0) {
        return;
    }
    for (size_t i = 0; i < fs->nretired; i++) {
        if (fs->retired[i].dev == wf->dev && fs->retired[i].ino == wf->ino) {
            retired_drop(fs, i);
            break;
        }
    }
    if (fs->nretired == RETIRED_MAX) {
        retired_drop(fs, 0);
    }
    fs->retired[fs->nretired++] = (struct retired){
        .dev = wf->dev,
        .ino = wf->ino,
        .offset = wf->offset,
        .fp = fnv1a64(wf->win, wf->winlen),
        .fplen = wf->winlen,
    };
}

/*
 * Takes the record of a file let go earlier with this identity. True when the open file still
 * holds the bytes delivered then (same size or more, same bytes before the offset): its offset
 * and window are set to resume. False, with offset 0, for an unknown or different file.
 */
static bool retired_take(struct file_src *fs, int fd, const struct stat *st, uint64_t *offset,
                         unsigned char *win, size_t *winlen)
{
    *offset = 0;
    *winlen = 0;
    for (size_t i = 0; i < fs->nretired; i++) {
        struct retired rt = fs->retired[i];
        if (rt.dev != st->st_dev || rt.ino != st->st_ino) {
            continue;
        }
        retired_drop(fs, i);
        if ((uint64_t)st->st_size < rt.offset || window_load(fd, rt.offset, win, winlen) < 0 ||
            *winlen != rt.fplen || fnv1a64(win, *winlen) != rt.fp) {
            *winlen = 0;
            return false;
        }
        *offset = rt.offset;
        return true;
    }
    return false;
}

static void add_file_watch(struct file_src *fs, struct wfile *wf)
{
    if (fs->ifd < 0 || fs->dir_mode || wf->wd >= 0) {
        return;
    }
    wf->wd =
        inotify_add_watch(fs->ifd, wf->path, IN_MODIFY | IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF);
}

static struct wfile *track(struct file_src *fs, const char *path, const char *stream, int fd,
                           const struct stat *st, uint64_t offset)
{
    struct wfile *wf;

    if (fs->nfiles == fs->cap) {
        fs->cap = fs->cap != 0 ? fs->cap * 2 : 8;
        fs->files = cfw_xrealloc(fs->files, fs->cap * sizeof(*fs->files));
    }
    wf = cfw_xcalloc(1, sizeof(*wf));
    wf->path = cfw_xstrdup(path);
    wf->stream = cfw_xstrdup(stream);
    wf->fd = fd;
    wf->dev = st->st_dev;
    wf->ino = st->st_ino;
    wf->offset = offset;
    wf->size = (uint64_t)st->st_size;
    wf->wd = -1;
    wf->dirty = true;
    wf->seen = true;
    fs->files[fs->nfiles++] = wf;
    add_file_watch(fs, wf);
    return wf;
}

static int open_file(const char *path, struct stat *st)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        int e = S_ISREG(st->st_mode) ? errno : EINVAL;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* The paths matching the pattern now, plus the first problem met (NULL when none). */
struct matches {
    char **paths;
    size_t n;
    char *problem;
};

/* glob(3) gives its error callback no argument; the daemon has one thread. */
static char *glob_problem;

static int glob_err(const char *epath, int eerrno)
{
    if (glob_problem == NULL && eerrno != ENOENT && eerrno != ENOTDIR) {
        glob_problem = cfw_xasprintf("%s: %s", epath, strerror(eerrno));
    }
    return 0;
}

static void matches_free(struct matches *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->paths[i]);
    }
    free(m->paths);
    free(m->problem);
    memset(m, 0, sizeof(*m));
}

static void collect(struct file_src *fs, struct matches *m)
{
    const char *pattern = fs->src->conf.path;

    memset(m, 0, sizeof(*m));
    if (!fs->glob) {
        struct stat st;
        if (stat(pattern, &st) == 0) {
            if (S_ISREG(st.st_mode)) {
                m->paths = cfw_xcalloc(1, sizeof(*m->paths));
                m->paths[0] = cfw_xstrdup(pattern);
                m->n = 1;
            } else {
                m->problem = cfw_xasprintf("%s: not a regular file", pattern);
            }
        } else if (errno != ENOENT && errno != ENOTDIR) {
            m->problem = cfw_xasprintf("%s: %s", pattern, strerror(errno));
        }
        return;
    }
    {
        glob_t g;
        int rc;
        glob_problem = NULL;
        memset(&g, 0, sizeof(g));
        rc = glob(pattern, 0, glob_err, &g);
        m->problem = glob_problem;
        glob_problem = NULL;
        if (rc == 0) {
            m->paths = cfw_xcalloc(g.gl_pathc + 1, sizeof(*m->paths));
            for (size_t i = 0; i < g.gl_pathc; i++) {
                m->paths[m->n++] = cfw_xstrdup(g.gl_pathv[i]);
            }
        } else if (rc != GLOB_NOMATCH && m->problem == NULL) {
            m->problem = cfw_xasprintf("%s: cannot expand the pattern", pattern);
        }
        globfree(&g);
    }
}

static bool in_matches(const struct matches *m, const char *path)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->paths[i], path) == 0) {
            return true;
        }
    }
    return false;
}

/* Looks for a file with this identity in dir (a file rotated while the daemon was down). */
static char *search_dir(const char *dir, dev_t dev, ino_t ino)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char *found = NULL;
    unsigned n = 0;

    if (d == NULL) {
        return NULL;
    }
    while ((de = readdir(d)) != NULL && n++ < DIR_SEARCH_MAX) {
        struct stat st;
        if (de->d_ino != ino) {
            continue;
        }
        if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 && st.st_dev == dev && st.st_ino == ino &&
            S_ISREG(st.st_mode)) {
            found = strcmp(dir, "/") == 0 ? cfw_xasprintf("/%s", de->d_name)
                                          : cfw_xasprintf("%s/%s", dir, de->d_name);
            break;
        }
    }
    closedir(d);
    return found;
}

/*
 * Picks up the positions restored from saved state. Each is looked for by identity among the
 * files matching now, then in the directory it was in (renamed by a rotation while we were
 * down). A file found with the same bytes before the offset resumes there; with different
 * bytes (copytruncate or inode reuse) it is read again from 0 if it still matches.
 */
static void resume_saved(struct file_src *fs, const struct matches *m)
{
    struct cfw_source *src = fs->src;

    for (size_t i = 0; i < fs->nsaved; i++) {
        struct saved *sv = &fs->saved[i];
        char *found = NULL;
        struct stat st;
        int fd;

        for (size_t j = 0; j < m->n && found == NULL; j++) {
            if (stat(m->paths[j], &st) == 0 && st.st_dev == sv->dev && st.st_ino == sv->ino) {
                found = cfw_xstrdup(m->paths[j]);
            }
        }
        for (int k = 0; k < 2 && found == NULL; k++) {
            const char *where = k == 0 ? sv->path : sv->now_at;
            char *dir;
            if (where == NULL) {
                continue;
            }
            dir = dirname_of(where);
            found = search_dir(dir, sv->dev, sv->ino);
            free(dir);
        }
        if (found == NULL) {
            cfw_log_info("source=%s file=%s is gone since the last run; its unread rest is lost",
                         src->conf.name, sv->path);
            continue;
        }
        fd = open_file(found, &st);
        if (fd < 0 || st.st_dev != sv->dev || st.st_ino != sv->ino ||
            find_identity(fs, st.st_dev, st.st_ino) != NULL) {
            if (fd >= 0) {
                close(fd);
            }
            free(found);
            continue;
        }
        {
            unsigned char win[FP_MAX];
            size_t winlen = 0;
            bool same = (uint64_t)st.st_size >= sv->offset &&
                        window_load(fd, sv->offset, win, &winlen) == 0 && winlen == sv->fplen &&
                        fnv1a64(win, winlen) == sv->fp;
            bool matched = in_matches(m, found);
            struct wfile *wf;

            if (!same) {
                cfw_log_notice("source=%s file=%s was truncated or replaced since the last run "
                               "(offset %llu, size %llu); reading it from the beginning",
                               src->conf.name, found, (unsigned long long)sv->offset,
                               (unsigned long long)st.st_size);
                src->stats.truncations++;
                if (!matched) {
                    close(fd);
                    free(found);
                    continue;
                }
                track(fs, found, found, fd, &st, 0);
                free(found);
                continue;
            }
            wf = track(fs, found, sv->path, fd, &st, sv->offset);
            memcpy(wf->win, win, winlen);
            wf->winlen = winlen;
            if (strcmp(found, sv->path) != 0) {
                /* Rotated while we were down: finish it before a new file under its old name. */
                cfw_log_info("source=%s file=%s was renamed to %s since the last run; draining it",
                             src->conf.name, sv->path, found);
                wf->draining = true;
                wf->gone = !matched;
            }
            free(found);
        }
    }
    for (size_t i = 0; i < fs->nsaved; i++) {
        free(fs->saved[i].path);
        free(fs->saved[i].now_at);
    }
    free(fs->saved);
    fs->saved = NULL;
    fs->nsaved = 0;
}

/*
 * A tracked file is seen at path p. Renamed and still matching: the position is kept and the
 * stream under its old name ends once it is drained (a new file under the old name waits).
 */
static void seen_at(struct wfile *wf, const char *p)
{
    wf->seen = true;
    wf->gone = false;
    if (strcmp(wf->path, p) != 0) {
        free(wf->path);
        wf->path = cfw_xstrdup(p);
        wf->dirty = true;
    }
    if (strcmp(wf->stream, wf->path) == 0) {
        wf->draining = false;
    } else if (wf->streaming) {
        wf->draining = true;
    } else {
        free(wf->stream);
        wf->stream = cfw_xstrdup(wf->path);
        wf->draining = false;
    }
}

/*
 * Files renamed away from a watched name before they were ever opened (two rotations between
 * two looks): tracked at their new name from offset 0 and drained, then let go like any file
 * that no longer matches. A name that still matches the pattern is the scan's business.
 */
static void rescue_moved(struct file_src *fs, const struct matches *m)
{
    for (size_t i = 0; i < fs->nmoved; i++) {
        const char *p = fs->moved_to[i];
        struct stat st;
        struct wfile *wf;
        int fd;

        if (!in_matches(m, p) && fs->nfiles < fs->src->conf.max_files && stat(p, &st) == 0 &&
            S_ISREG(st.st_mode) && find_identity(fs, st.st_dev, st.st_ino) == NULL &&
            (fd = open_file(p, &st)) >= 0) {
            if (find_identity(fs, st.st_dev, st.st_ino) != NULL) {
                close(fd);
            } else {
                unsigned char win[FP_MAX];
                size_t winlen = 0;
                uint64_t offset = 0;
                bool known = retired_take(fs, fd, &st, &offset, win, &winlen);
                wf = track(fs, p, p, fd, &st, offset);
                memcpy(wf->win, win, winlen);
                wf->winlen = winlen;
                wf->seen = false;
                if (known) {
                    /* Read and let go before its rename was seen: only what follows is new. */
                    cfw_log_info("source=%s file=%s renamed after it was drained; reading on "
                                 "from offset %llu",
                                 fs->src->conf.name, p, (unsigned long long)offset);
                } else {
                    cfw_log_info("source=%s file=%s rotated away before it was read; reading it "
                                 "whole",
                                 fs->src->conf.name, p);
                }
            }
        }
        free(fs->moved_to[i]);
        fs->moved_to[i] = NULL;
    }
    fs->nmoved = 0;
}

/* Remembers renames out of a watched name, pairing IN_MOVED_FROM and IN_MOVED_TO by cookie. */
static void note_move(struct file_src *fs, const struct inotify_event *ev)
{
    if ((ev->mask & IN_MOVED_FROM) && fnmatch(fs->base, ev->name, FNM_PERIOD) == 0) {
        if (fs->nmove_cookies == MOVES_MAX) {
            memmove(&fs->move_cookie[0], &fs->move_cookie[1],
                    (MOVES_MAX - 1) * sizeof(fs->move_cookie[0]));
            fs->nmove_cookies--;
        }
        fs->move_cookie[fs->nmove_cookies++] = ev->cookie;
        return;
    }
    if (!(ev->mask & IN_MOVED_TO)) {
        return;
    }
    for (size_t i = 0; i < fs->nmove_cookies; i++) {
        if (fs->move_cookie[i] != ev->cookie) {
            continue;
        }
        memmove(&fs->move_cookie[i], &fs->move_cookie[i + 1],
                (fs->nmove_cookies - i - 1) * sizeof(fs->move_cookie[0]));
        fs->nmove_cookies--;
        if (fs->nmoved < MOVES_MAX) {
            fs->moved_to[fs->nmoved++] = cfw_xasprintf("%s/%s", fs->dir, ev->name);
        }
        return;
    }
}

/*
 * Takes one path the pattern matched: a file already tracked (seen under this name), a new one
 * (opened and tracked, read from where it should be), or one refused (over max_files, cannot
 * be opened: *problem says why when it is the first). False when the path is not a regular file
 * (it does not count as a match).
 */
static bool scan_path(struct file_src *fs, const char *p, bool initial, char **problem)
{
    struct cfw_source *src = fs->src;
    struct stat st;
    struct wfile *wf;
    int fd;
    uint64_t offset = 0;

    if (stat(p, &st) < 0) {
        if (errno != ENOENT && *problem == NULL) {
            *problem = cfw_xasprintf("%s: %s", p, strerror(errno));
        }
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        return false;
    }
    wf = find_identity(fs, st.st_dev, st.st_ino);
    if (wf != NULL) {
        seen_at(wf, p);
        return true;
    }
    if (fs->nfiles >= src->conf.max_files) {
        if (!fs->warned_max) {
            cfw_log_warn("source=%s more than %zu files match %s; the rest are ignored",
                         src->conf.name, src->conf.max_files, src->conf.path);
            fs->warned_max = true;
        }
        return true;
    }
    fd = open_file(p, &st);
    if (fd < 0) {
        if (*problem == NULL && errno != ENOENT) {
            *problem = cfw_xasprintf("%s: %s", p, strerror(errno));
        }
        return true;
    }
    wf = find_identity(fs, st.st_dev, st.st_ino);
    if (wf != NULL) {
        /* Replaced between stat and open by a file we already track. */
        seen_at(wf, p);
        close(fd);
        return true;
    }
    if (!initial) {
        /* A file let go that comes back under a matching name: only what follows is new. */
        unsigned char win[FP_MAX];
        size_t winlen = 0;
        if (retired_take(fs, fd, &st, &offset, win, &winlen)) {
            wf = track(fs, p, p, fd, &st, offset);
            memcpy(wf->win, win, winlen);
            wf->winlen = winlen;
            cfw_log_info("source=%s file=%s is back after it was drained; reading on from "
                         "offset %llu",
                         src->conf.name, p, (unsigned long long)offset);
            return true;
        }
    }
    if (initial && !src->restored && !src->conf.start_at_beginning) {
        offset = (uint64_t)st.st_size;
    }
    wf = track(fs, p, p, fd, &st, offset);
    if (offset > 0 && window_load(fd, offset, wf->win, &wf->winlen) < 0) {
        wf->offset = 0;
        wf->winlen = 0;
    }
    if (!initial) {
        cfw_log_info("source=%s file=%s new file, reading from the beginning", src->conf.name, p);
    }
    return true;
}

/* Tells the health a scan found (problem: the first one met, or NULL); false when freed. */
static bool scan_report(struct file_src *fs, size_t matched, const char *problem)
{
    struct cfw_source *src = fs->src;

    if (problem != NULL) {
        cfw_source_log_once(src, &fs->last_log, CFW_LOG_WARNING, "%s", problem);
        return cfw_source_problem(src, "%s", problem);
    }
    if (matched == 0 && fs->nfiles == 0 && fs->glob && !src->conf.expect_files) {
        /* an empty CI log directory is normal: nothing to watch yet is not blindness */
        cfw_source_log_once(src, &fs->last_log, CFW_LOG_INFO,
                            "no file matches %s yet; waiting for files (expect_files: true makes "
                            "this a problem)",
                            src->conf.path);
        return cfw_source_ok(src);
    }
    if (matched == 0 && fs->nfiles == 0) {
        cfw_source_log_once(src, &fs->last_log, CFW_LOG_INFO, "no file matches %s", src->conf.path);
        return cfw_source_problem(src, "no file matches %s", src->conf.path);
    }
    if (matched > 0) {
        free(fs->last_log);
        fs->last_log = NULL;
        return cfw_source_ok(src);
    }
    /* Nothing matches but a file is still being drained (a rotation in progress): the scan
     * that follows the drain decides. */
    return true;
}

/*
 * Matches the pattern against the tracked files. Why by identity: after a rename rotation the
 * same name points to a new file (a new identity: a new file, read from 0, once the old one is
 * drained) while the old identity either still matches under another name (kept, no re-read)
 * or no longer matches (drained to EOF, then let go).
 */
static bool scan(struct file_src *fs, bool initial)
{
    struct matches m;
    size_t matched = 0;
    char *problem = NULL;
    bool alive;

    if (fs->ifd >= 0 && fs->dir_mode && fs->dir_wd < 0) {
        fs->dir_wd = inotify_add_watch(fs->ifd, fs->dir,
                                       IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                           IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF |
                                           IN_MOVE_SELF | IN_ONLYDIR);
    }
    collect(fs, &m);
    if (initial && fs->nsaved > 0) {
        resume_saved(fs, &m);
    }
    for (size_t i = 0; i < fs->nfiles; i++) {
        fs->files[i]->seen = false;
    }
    rescue_moved(fs, &m);
    for (size_t i = 0; i < m.n; i++) {
        matched += scan_path(fs, m.paths[i], initial, &problem);
    }
    for (size_t i = 0; i < fs->nfiles; i++) {
        struct wfile *wf = fs->files[i];
        if (!wf->seen && !wf->gone) {
            wf->gone = true;
            wf->draining = true;
            wf->dirty = true;
        }
    }
    if (m.problem != NULL && problem == NULL) {
        problem = m.problem;
        m.problem = NULL;
    }
    matches_free(&m);
    alive = scan_report(fs, matched, problem);
    free(problem);
    return alive;
}

/* Forgets a file's decoder: it is read again from 0. */
static void gz_reset(struct wfile *wf)
{
    cfw_gzip_free(wf->gz);
    wf->gz = NULL;
    wf->gz_in = 0;
    wf->gz_checked = false;
    wf->gz_failed = false;
}

static int gz_emit(void *arg, const char *buf, size_t len, struct cfw_err *err)
{
    struct file_src *fs = arg;
    struct wfile *wf = fs->gz_cur;

    if (fs->gz_drop) {
        return 0;
    }
    wf->streaming = true;
    if (!cfw_source_emit_data(fs->src, wf->stream, buf, len) || fs->src->stopping) {
        fs->gz_abort = true;
        cfw_err_set(err, "stopped");
        return -1;
    }
    return 0;
}

/*
 * Looks at the first bytes of a file of a gzip source: false while they are too few to tell,
 * else true, with a decoder when they are the gzip magic (otherwise the bytes are read as they
 * are).
 */
static bool gz_probe(struct file_src *fs, struct wfile *wf)
{
    unsigned char magic[2];
    struct cfw_err err = {0};
    ssize_t n;

    do {
        n = pread(wf->fd, magic, sizeof(magic), 0);
    } while (n < 0 && errno == EINTR);
    if (n >= 0 && n < (ssize_t)sizeof(magic)) {
        return false;
    }
    wf->gz_checked = true;
    if (n < 0 || !cfw_gzip_magic(magic, sizeof(magic))) {
        return true; /* a read error is the plain reader's to report */
    }
    wf->gz = cfw_gzip_new(gz_emit, fs, &err);
    if (wf->gz == NULL) {
        cfw_source_log_once(fs->src, &wf->last_log, CFW_LOG_WARNING, "file=%s %s", wf->path,
                            err.msg);
        wf->gz_failed = true;
    }
    wf->gz_in = 0;
    return true;
}

/*
 * Reads a gzip file: bytes from gz_in on go through the decoder, whose output goes to the
 * stream; below the offset (a resumed position) the output is dropped. The offset and the
 * window advance in bytes of the file, as for any file.
 */
/*
 * Reads up to want bytes at off into fs->buf: their count in *n and RD_OK, or RD_BUDGET (want
 * is 0), RD_EOF or RD_ERROR (logged once).
 */
static enum rd read_at(struct file_src *fs, struct wfile *wf, size_t want, uint64_t off,
                       ssize_t *n)
{
    if (want == 0) {
        return RD_BUDGET;
    }
    for (;;) {
        *n = pread(wf->fd, fs->buf, want, (off_t)off);
        if (*n >= 0 || (errno != EINTR && errno != EAGAIN)) {
            break;
        }
    }
    if (*n < 0) {
        cfw_source_log_once(fs->src, &wf->last_log, CFW_LOG_WARNING, "file=%s read error: %s",
                            wf->path, strerror(errno));
        return RD_ERROR;
    }
    return *n == 0 ? RD_EOF : RD_OK;
}

static enum rd read_gzip(struct file_src *fs, struct wfile *wf, size_t *budget)
{
    struct cfw_source *src = fs->src;

    if (wf->gz_failed || (wf->gz_in < wf->offset && wf->size <= wf->offset)) {
        return RD_EOF; /* broken, or read to its end before a restart and not grown since */
    }
    for (;;) {
        size_t want = *budget < CFW_SOURCE_CHUNK_SIZE ? *budget : CFW_SOURCE_CHUNK_SIZE;
        bool drop = wf->gz_in < wf->offset;
        struct cfw_err err = {0};
        ssize_t n;
        int rc;

        enum rd r;

        if (drop && wf->offset - wf->gz_in < want) {
            want = (size_t)(wf->offset - wf->gz_in);
        }
        if ((r = read_at(fs, wf, want, wf->gz_in, &n)) != RD_OK) {
            return r;
        }
        fs->gz_cur = wf;
        fs->gz_drop = drop;
        fs->gz_abort = false;
        rc = cfw_gzip_feed(wf->gz, fs->buf, (size_t)n, &err);
        fs->gz_cur = NULL;
        if (fs->gz_abort) {
            return RD_ABORT;
        }
        wf->gz_in += (uint64_t)n;
        *budget -= (size_t)n;
        if (!drop) {
            wf->offset = wf->gz_in;
            if (wf->offset > wf->size) {
                wf->size = wf->offset;
            }
            window_push(wf, fs->buf, (size_t)n);
        }
        if (rc != 0) {
            /*
             * What came before the corrupt point was delivered. The offset moves past the
             * bytes read, so that the file is read again (from 0) only when it changes.
             */
            cfw_source_log_once(src, &wf->last_log, CFW_LOG_WARNING,
                                "file=%s %s; the rest of the file is skipped until it changes",
                                wf->path, err.msg);
            wf->gz_failed = true;
            return RD_ERROR;
        }
        if (src->stopping) {
            return RD_ABORT;
        }
    }
}

/* Checks the file before reading: truncated or rewritten in place means reading from 0. */
static bool check_truncation(struct file_src *fs, struct wfile *wf)
{
    struct cfw_source *src = fs->src;
    struct stat st;
    bool truncated = false;

    if (fstat(wf->fd, &st) < 0) {
        return true;
    }
    wf->size = (uint64_t)st.st_size;
    if ((uint64_t)st.st_size < wf->offset) {
        truncated = true;
    } else if (wf->offset > 0 && wf->winlen > 0) {
        unsigned char now[FP_MAX];
        size_t nowlen = 0;
        if (window_load(wf->fd, wf->offset, now, &nowlen) < 0 || nowlen != wf->winlen ||
            memcmp(now, wf->win, nowlen) != 0) {
            truncated = true;
        }
    }
    if (!truncated) {
        return true;
    }
    cfw_log_notice("source=%s file=%s truncated (offset %llu, size %llu); reading from 0",
                   src->conf.name, wf->path, (unsigned long long)wf->offset,
                   (unsigned long long)st.st_size);
    src->stats.truncations++;
    wf->offset = 0;
    wf->winlen = 0;
    gz_reset(wf);
    if (wf->streaming) {
        wf->streaming = false;
        return cfw_source_emit_eof(src, wf->stream);
    }
    return true;
}

static enum rd read_file(struct file_src *fs, struct wfile *wf, size_t *budget)
{
    struct cfw_source *src = fs->src;

    if (!check_truncation(fs, wf)) {
        return RD_ABORT;
    }
    if (fs->gzip && !wf->gz_checked && !gz_probe(fs, wf)) {
        return RD_EOF; /* too short to tell yet */
    }
    if (wf->gz != NULL || wf->gz_failed) {
        return read_gzip(fs, wf, budget);
    }
    for (;;) {
        size_t want = *budget < CFW_SOURCE_CHUNK_SIZE ? *budget : CFW_SOURCE_CHUNK_SIZE;
        ssize_t n;
        enum rd r = read_at(fs, wf, want, wf->offset, &n);

        if (r != RD_OK) {
            return r;
        }
        wf->offset += (uint64_t)n;
        if (wf->offset > wf->size) {
            wf->size = wf->offset;
        }
        window_push(wf, fs->buf, (size_t)n);
        *budget -= (size_t)n;
        wf->streaming = true;
        if (!cfw_source_emit_data(src, wf->stream, fs->buf, (size_t)n) || src->stopping) {
            return RD_ABORT;
        }
    }
}

/* Whether another file is still draining a stream of the same name (then this one waits). */
static bool name_busy(const struct file_src *fs, const struct wfile *wf)
{
    for (size_t i = 0; i < fs->nfiles; i++) {
        const struct wfile *o = fs->files[i];
        if (o != wf && !o->dead && o->draining && strcmp(o->stream, wf->stream) == 0) {
            return true;
        }
    }
    return false;
}

static void reap_dead(struct file_src *fs)
{
    size_t j = 0;

    for (size_t i = 0; i < fs->nfiles; i++) {
        if (fs->files[i]->dead) {
            wfile_free(fs, fs->files[i]);
            fs->need_scan = true;
        } else {
            fs->files[j++] = fs->files[i];
        }
    }
    fs->nfiles = j;
}

/* One turn of work: a scan when one is due, then reads across files up to the budget. */
static bool work(struct file_src *fs)
{
    struct cfw_source *src = fs->src;
    size_t budget = src->conf.read_budget;
    size_t n;
    bool more = false;

    if (fs->need_scan) {
        fs->need_scan = false;
        if (!scan(fs, false) || src->stopping) {
            return false;
        }
    }
    n = fs->nfiles;
    for (size_t k = 0; k < n; k++) {
        struct wfile *wf = fs->files[(fs->rr + k) % n];
        enum rd r;

        if (!wf->dirty || wf->dead) {
            continue;
        }
        if (budget == 0) {
            more = true;
            break;
        }
        if (name_busy(fs, wf)) {
            more = true;
            continue;
        }
        r = read_file(fs, wf, &budget);
        if (r == RD_ABORT) {
            return false;
        }
        if (r == RD_BUDGET) {
            more = true;
            continue;
        }
        wf->dirty = false;
        if (r == RD_ERROR && !wf->draining) {
            continue;
        }
        if (wf->draining) {
            wf->draining = false;
            src->stats.rotations++;
            if (wf->streaming) {
                wf->streaming = false;
                if (!cfw_source_emit_eof(src, wf->stream) || src->stopping) {
                    return false;
                }
            }
            if (wf->gone) {
                cfw_log_info("source=%s file=%s drained and closed", src->conf.name, wf->path);
                retire(fs, wf);
                wf->dead = true;
            } else {
                free(wf->stream);
                wf->stream = cfw_xstrdup(wf->path);
            }
            more = true; /* a file waiting for this stream name can go now */
        }
    }
    fs->rr++;
    reap_dead(fs);
    if (more || fs->need_scan) {
        cfw_source_yield(fs->work_ev);
    }
    return true;
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
    struct file_src *fs = arg;
    struct cfw_source *src = fs->src;

    (void)fd;
    (void)what;
    cfw_source_enter(src);
    if (!src->stopping && !fs->closed) {
        work(fs);
    }
    cfw_source_leave(src);
}

static void mark_all_dirty(struct file_src *fs)
{
    for (size_t i = 0; i < fs->nfiles; i++) {
        fs->files[i]->dirty = true;
    }
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct file_src *fs = arg;

    (void)fd;
    (void)what;
    fs->need_scan = true;
    mark_all_dirty(fs);
    cfw_source_yield(fs->work_ev);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    struct file_src *fs = arg;
    char buf[INOTIFY_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));

    (void)what;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                fs->need_scan = true;
                mark_all_dirty(fs);
                continue;
            }
            if (ev->wd == fs->dir_wd && fs->dir_wd >= 0) {
                if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                    if (!(ev->mask & IN_IGNORED)) {
                        inotify_rm_watch(fs->ifd, fs->dir_wd);
                    }
                    fs->dir_wd = -1;
                    fs->need_scan = true;
                    mark_all_dirty(fs);
                    continue;
                }
                if (ev->len == 0) {
                    continue;
                }
                if (ev->mask & (IN_MODIFY | IN_CLOSE_WRITE)) {
                    for (size_t i = 0; i < fs->nfiles; i++) {
                        if (strcmp(basename_of(fs->files[i]->path), ev->name) == 0) {
                            fs->files[i]->dirty = true;
                        }
                    }
                }
                if (ev->mask & (IN_MOVED_FROM | IN_MOVED_TO)) {
                    note_move(fs, ev);
                }
                if (ev->mask & (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB)) {
                    fs->need_scan = true;
                    mark_all_dirty(fs);
                }
                continue;
            }
            for (size_t i = 0; i < fs->nfiles; i++) {
                struct wfile *wf = fs->files[i];
                if (wf->wd == ev->wd) {
                    wf->dirty = true;
                    if (ev->mask & IN_IGNORED) {
                        wf->wd = -1;
                    }
                }
            }
            if (ev->mask & (IN_ATTRIB | IN_MOVE_SELF | IN_DELETE_SELF | IN_IGNORED)) {
                fs->need_scan = true;
            }
        }
    }
    cfw_source_yield(fs->work_ev);
}

static void file_destroy(struct cfw_source *src)
{
    struct file_src *fs = src->impl;

    if (fs == NULL) {
        return;
    }
    for (size_t i = 0; i < fs->nmoved; i++) {
        free(fs->moved_to[i]);
    }
    if (fs->inotify_ev != NULL) {
        event_free(fs->inotify_ev);
    }
    if (fs->poll_ev != NULL) {
        event_free(fs->poll_ev);
    }
    if (fs->work_ev != NULL) {
        event_free(fs->work_ev);
    }
    for (size_t i = 0; i < fs->nfiles; i++) {
        wfile_free(fs, fs->files[i]);
    }
    free(fs->files);
    for (size_t i = 0; i < fs->nsaved; i++) {
        free(fs->saved[i].path);
        free(fs->saved[i].now_at);
    }
    free(fs->saved);
    if (fs->ifd >= 0) {
        close(fs->ifd);
    }
    free(fs->dir);
    free(fs->base);
    free(fs->buf);
    free(fs->last_log);
    free(fs);
    src->impl = NULL;
}

static int file_init(struct cfw_source *src, struct cfw_err *err)
{
    struct file_src *fs;
    char *dir;

    if (src->conf.path == NULL || src->conf.path[0] == '\0') {
        cfw_err_set(err, "source %s: a file source needs a path", src->conf.name);
        return -1;
    }
    fs = cfw_xcalloc(1, sizeof(*fs));
    src->impl = fs;
    fs->src = src;
    fs->ifd = -1;
    fs->dir_wd = -1;
    fs->glob = has_glob(src->conf.path);
    dir = dirname_of(src->conf.path);
    fs->dir = dir;
    fs->base = cfw_xstrdup(basename_of(src->conf.path));
    fs->gzip = strlen(fs->base) > 3 && strcmp(fs->base + strlen(fs->base) - 3, ".gz") == 0;
    fs->dir_mode = !has_glob(dir);
    fs->buf = cfw_xmalloc(CFW_SOURCE_CHUNK_SIZE);
    fs->work_ev = evtimer_new(src->base, on_work, fs);
    fs->poll_ev = event_new(src->base, -1, EV_PERSIST, on_poll, fs);
    if (fs->work_ev == NULL || fs->poll_ev == NULL) {
        cfw_err_set(err, "source %s: cannot create events", src->conf.name);
        return -1;
    }
    return 0;
}

static int file_start(struct cfw_source *src, struct cfw_err *err)
{
    struct file_src *fs = src->impl;
    struct timeval tv = cfw_ms_timeval(src->conf.poll_interval_ms);

    fs->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fs->ifd < 0) {
        cfw_log_warn("source=%s inotify unavailable (%s); polling every %lldms", src->conf.name,
                     strerror(errno), (long long)src->conf.poll_interval_ms);
    } else {
        fs->inotify_ev = event_new(src->base, fs->ifd, EV_READ | EV_PERSIST, on_inotify, fs);
        if (fs->inotify_ev == NULL || event_add(fs->inotify_ev, NULL) < 0) {
            cfw_err_set(err, "source %s: cannot watch with inotify", src->conf.name);
            return -1;
        }
    }
    if (event_add(fs->poll_ev, &tv) < 0) {
        cfw_err_set(err, "source %s: cannot arm the poll timer", src->conf.name);
        return -1;
    }
    if (!scan(fs, true)) {
        return 0;
    }
    cfw_source_yield(fs->work_ev);
    return 0;
}

static void file_stop(struct cfw_source *src)
{
    struct file_src *fs = src->impl;

    if (fs->inotify_ev != NULL) {
        event_del(fs->inotify_ev);
    }
    event_del(fs->poll_ev);
    event_del(fs->work_ev);
    for (size_t i = 0; i < fs->nfiles; i++) {
        struct wfile *wf = fs->files[i];
        if (wf->wd >= 0 && fs->ifd >= 0) {
            inotify_rm_watch(fs->ifd, wf->wd);
        }
        wf->wd = -1;
        if (wf->fd >= 0) {
            close(wf->fd);
            wf->fd = -1;
        }
    }
    fs->closed = true;
    for (size_t i = 0; i < fs->nfiles; i++) {
        struct wfile *wf = fs->files[i];
        if (wf->streaming) {
            wf->streaming = false;
            if (!cfw_source_emit_eof(src, wf->stream)) {
                return;
            }
        }
    }
}

static bool file_stopped(const struct cfw_source *src)
{
    const struct file_src *fs = src->impl;
    return fs->closed;
}

static char *u64_text(uint64_t v)
{
    return cfw_xasprintf("%llu", (unsigned long long)v);
}

/* One file position as the saved state holds it. */
static json_t *saved_json(const struct saved *sv)
{
    json_t *f = json_object();
    char *dev = u64_text((uint64_t)sv->dev);
    char *ino = u64_text((uint64_t)sv->ino);
    char *fp = cfw_xasprintf("fnv1a64:%016llx", (unsigned long long)sv->fp);

    json_object_set_new(f, "path", json_string(sv->path));
    if (sv->now_at != NULL) {
        json_object_set_new(f, "now_at", json_string(sv->now_at));
    }
    json_object_set_new(f, "dev", json_string(dev));
    json_object_set_new(f, "ino", json_string(ino));
    json_object_set_new(f, "offset", json_integer((json_int_t)sv->offset));
    json_object_set_new(f, "fingerprint", json_string(fp));
    json_object_set_new(f, "fingerprint_len", json_integer((json_int_t)sv->fplen));
    free(dev);
    free(ino);
    free(fp);
    return f;
}

static json_t *file_save(const struct cfw_source *src)
{
    const struct file_src *fs = src->impl;
    json_t *files = json_array();
    json_t *o = json_object();

    json_object_set_new(o, "type", json_string("file"));
    for (size_t i = 0; i < fs->nfiles; i++) {
        const struct wfile *wf = fs->files[i];
        struct saved sv;

        if (wf->dead) {
            continue;
        }
        sv = (struct saved){
            .path = wf->stream,
            .now_at = strcmp(wf->stream, wf->path) != 0 ? wf->path : NULL,
            .dev = wf->dev,
            .ino = wf->ino,
            .offset = wf->offset,
            .fp = fnv1a64(wf->win, wf->winlen),
            .fplen = wf->winlen,
        };
        json_array_append_new(files, saved_json(&sv));
    }
    /* Positions restored but not matched to a file yet (saved before start) are kept. */
    for (size_t i = 0; i < fs->nsaved; i++) {
        json_array_append_new(files, saved_json(&fs->saved[i]));
    }
    json_object_set_new(o, "files", files);
    return o;
}

static int parse_u64_json(const json_t *v, uint64_t *out)
{
    if (json_is_string(v)) {
        return cfw_parse_u64(json_string_value(v), out);
    }
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    return -1;
}

static int file_restore(struct cfw_source *src, const json_t *state)
{
    struct file_src *fs = src->impl;
    const json_t *files = json_object_get(state, "files");
    size_t i;
    const json_t *f;
    size_t bad = 0;

    if (!json_is_array(files)) {
        cfw_log_warn("source=%s saved state has no 'files' list; starting afresh", src->conf.name);
        return -1;
    }
    fs->saved = cfw_xcalloc(json_array_size(files) + 1, sizeof(*fs->saved));
    json_array_foreach (files, i, f) {
        const char *path = json_string_value(json_object_get(f, "path"));
        const char *now_at = json_string_value(json_object_get(f, "now_at"));
        const char *fp = json_string_value(json_object_get(f, "fingerprint"));
        uint64_t dev, ino, offset, fplen, h;
        char *end = NULL;

        if (path == NULL || fp == NULL || strncmp(fp, "fnv1a64:", 8) != 0 ||
            parse_u64_json(json_object_get(f, "dev"), &dev) < 0 ||
            parse_u64_json(json_object_get(f, "ino"), &ino) < 0 ||
            parse_u64_json(json_object_get(f, "offset"), &offset) < 0 ||
            parse_u64_json(json_object_get(f, "fingerprint_len"), &fplen) < 0 ||
            fplen != (offset < FP_MAX ? offset : FP_MAX) || strlen(fp + 8) != 16) {
            bad++;
            continue;
        }
        errno = 0;
        h = strtoull(fp + 8, &end, 16);
        if (errno != 0 || end == NULL || *end != '\0') {
            bad++;
            continue;
        }
        fs->saved[fs->nsaved].path = cfw_xstrdup(path);
        fs->saved[fs->nsaved].now_at = now_at != NULL ? cfw_xstrdup(now_at) : NULL;
        fs->saved[fs->nsaved].dev = (dev_t)dev;
        fs->saved[fs->nsaved].ino = (ino_t)ino;
        fs->saved[fs->nsaved].offset = offset;
        fs->saved[fs->nsaved].fp = h;
        fs->saved[fs->nsaved].fplen = (size_t)fplen;
        fs->nsaved++;
    }
    if (bad > 0) {
        cfw_log_warn("source=%s %zu saved file positions did not parse and were skipped",
                     src->conf.name, bad);
        if (fs->nsaved == 0) {
            /* Nothing usable: start as on a first start (start_at applies). */
            free(fs->saved);
            fs->saved = NULL;
            return -1;
        }
    }
    return 0;
}

static void file_stats(const struct cfw_source *src, struct cfw_source_stats *out)
{
    const struct file_src *fs = src->impl;
    uint64_t lag = 0;

    for (size_t i = 0; i < fs->nfiles; i++) {
        const struct wfile *wf = fs->files[i];
        if (wf->size > wf->offset) {
            lag += wf->size - wf->offset;
        }
    }
    out->files = fs->nfiles;
    out->lag_bytes = lag;
}

/* ---- configuration ---- */

static int read_path(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                     void *conf, struct cfw_diag *diag)
{
    const char *s = NULL;
    int rc = cfw_node_str(map, k->name, path, &s, diag);

    if (rc < 0) {
        return -1;
    }
    if (rc == 0 || s[0] == '\0') {
        cfw_diag_add(diag, map, path, "a file source needs 'path' (a path or a glob)");
        return -1;
    }
    ((struct cfw_source_conf *)conf)->path = cfw_xstrdup(s);
    return 1;
}

static const struct cfw_schema_key file_keys[] = {
    CFW_SOURCE_ROW_NAME,
    CFW_SOURCE_ROW_TYPE,
    {.name = "path",
     .type = CFW_SCHEMA_STR,
     .offset = CFW_SOURCE_KEY(path),
     .read = read_path,
     .help = "a path or a glob (required)"},
    CFW_SOURCE_ROW_START_AT,
    CFW_SOURCE_ROW_FORMAT("format", format),
    CFW_SOURCE_ROW_POLL_INTERVAL,
    CFW_SOURCE_ROW_READ_BUDGET,
    CFW_SOURCE_ROW_DOWN_AFTER,
    {.name = "max_files",
     .type = CFW_SCHEMA_SIZE,
     .offset = CFW_SOURCE_KEY(max_files),
     .def = CFW_SOURCE_MAX_FILES_DEFAULT,
     .min = 1,
     .max = 65536,
     .help = "files tracked at once"},
    {.name = "expect_files",
     .type = CFW_SCHEMA_BOOL,
     .offset = CFW_SOURCE_KEY(expect_files),
     .def = 0,
     .help = "a glob matching nothing is a problem (default: waiting for files)"},
    {0},
};

const struct cfw_schema cfw_source_file_schema = {.keys = file_keys};

const struct source_ops cfw_source_file_ops = {
    .name = "file",
    .type = CFW_SOURCE_FILE,
    .schema = &cfw_source_file_schema,
    .init = file_init,
    .start = file_start,
    .stop = file_stop,
    .stopped = file_stopped,
    .destroy = file_destroy,
    .save = file_save,
    .restore = file_restore,
    .stats = file_stats,
};
