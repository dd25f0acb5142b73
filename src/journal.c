/* The incident journal: fsynced JSON lines, replayed at start, rotated at each snapshot. */
#include "cfwatchd/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfwatchd/fsutil.h"

struct cfw_journal {
    char *dir;
    char *path;
    int fd;
    uint64_t seq;
    uint64_t bytes;
    uint64_t failures;
};

/* Hands one line to fn when it is a record newer than what came before; counts damage. */
static void replay_line(char *line, size_t len, uint64_t after_seq, cfw_journal_record_fn fn,
                        void *arg, struct cfw_journal_replay *out)
{
    json_error_t jerr;
    json_t *rec;
    json_int_t seq;

    if (len == 0) {
        return;
    }
    rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    seq = json_integer_value(json_object_get(rec, "seq"));
    if (!json_is_object(rec) || seq <= 0) {
        out->damaged++;
        json_decref(rec);
        return;
    }
    if ((uint64_t)seq > out->last_seq) {
        out->last_seq = (uint64_t)seq;
        if ((uint64_t)seq > after_seq) {
            fn(rec, (uint64_t)seq, arg);
            out->applied++;
        }
    }
    json_decref(rec);
}

/* Reads one journal file line by line; a missing file is empty. */
static int replay_file(const char *path, uint64_t after_seq, cfw_journal_record_fn fn, void *arg,
                       struct cfw_journal_replay *out, struct cfw_err *err)
{
    struct stat st;
    struct cfw_err oerr = {0};
    char *buf = cfw_xmalloc(CFW_JOURNAL_LINE_MAX + 1);
    size_t have = 0;
    bool skipping = false; /* inside a line longer than the cap */
    int fd = cfw_fs_open_regular(path, &st, &oerr);

    if (fd < 0) {
        free(buf);
        if (oerr.code == ENOENT) {
            return 0;
        }
        cfw_err_setc(err, oerr.code, "%s", oerr.msg);
        return -1;
    }
    out->files++;
    for (;;) {
        ssize_t n = read(fd, buf + have, CFW_JOURNAL_LINE_MAX - have);
        size_t start = 0;

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            cfw_err_setc(err, errno, "cannot read %s: %s", path, strerror(errno));
            close(fd);
            free(buf);
            return -1;
        }
        if (n == 0) {
            break;
        }
        have += (size_t)n;
        for (size_t i = 0; i < have; i++) {
            if (buf[i] != '\n') {
                continue;
            }
            if (!skipping) {
                replay_line(buf + start, i - start, after_seq, fn, arg, out);
            }
            skipping = false;
            start = i + 1;
        }
        memmove(buf, buf + start, have - start);
        have -= start;
        if (have == CFW_JOURNAL_LINE_MAX) {
            /* no line of ours is that long: drop it up to its end */
            if (!skipping) {
                out->damaged++;
            }
            skipping = true;
            have = 0;
        }
    }
    if (have > 0 && !skipping) {
        /* a last line without its newline: a write the crash cut short, never acknowledged */
        out->damaged++;
    }
    close(fd);
    free(buf);
    return 0;
}

int cfw_journal_replay(const char *dir, uint64_t after_seq, bool with_prev,
                       cfw_journal_record_fn fn, void *arg, struct cfw_journal_replay *out,
                       struct cfw_err *err)
{
    char *prev = cfw_xasprintf("%s/%s", dir, CFW_JOURNAL_PREV);
    char *cur = cfw_xasprintf("%s/%s", dir, CFW_JOURNAL_FILE);
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (with_prev && replay_file(prev, after_seq, fn, arg, out, err) != 0) {
        rc = -1;
    }
    if (replay_file(cur, after_seq, fn, arg, out, rc == 0 ? err : &(struct cfw_err){0}) != 0) {
        rc = -1;
    }
    free(prev);
    free(cur);
    return rc;
}

/* Cuts a last line that has no newline, so that the next record starts a line of its own. */
static int cut_torn_tail(int fd, uint64_t *size)
{
    struct stat st;
    char buf[4096];
    off_t end;

    if (fstat(fd, &st) != 0) {
        return -1;
    }
    end = st.st_size;
    while (end > 0) {
        size_t want = end < (off_t)sizeof(buf) ? (size_t)end : sizeof(buf);
        ssize_t n = pread(fd, buf, want, end - (off_t)want);
        if (n != (ssize_t)want) {
            return -1;
        }
        if (end == st.st_size && buf[want - 1] == '\n') {
            break; /* whole */
        }
        {
            char *nl = memrchr(buf, '\n', want);
            if (nl != NULL) {
                end = end - (off_t)want + (nl - buf) + 1;
                break;
            }
        }
        end -= (off_t)want;
    }
    if (end != st.st_size && (ftruncate(fd, end) != 0 || fsync(fd) != 0)) {
        return -1;
    }
    *size = (uint64_t)end;
    return 0;
}

static int open_file(struct cfw_journal *j, struct cfw_err *err)
{
    int fd =
        open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
    struct stat st;

    if (fd < 0) {
        cfw_err_setc(err, errno, "cannot open %s: %s", j->path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cfw_err_setc(err, EINVAL, "%s: not a regular file", j->path);
        close(fd);
        return -1;
    }
    /* O_WRONLY cannot pread: the tail is checked through a second descriptor */
    {
        int rfd = open(j->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (rfd < 0 || cut_torn_tail(rfd, &j->bytes) != 0) {
            cfw_err_setc(err, errno, "cannot check the end of %s: %s", j->path, strerror(errno));
            if (rfd >= 0) {
                close(rfd);
            }
            close(fd);
            return -1;
        }
        close(rfd);
    }
    j->fd = fd;
    return 0;
}

struct cfw_journal *cfw_journal_open(const char *dir, uint64_t next_seq, struct cfw_err *err)
{
    struct cfw_journal *j = cfw_xcalloc(1, sizeof(*j));

    j->dir = cfw_xstrdup(dir);
    j->path = cfw_xasprintf("%s/%s", dir, CFW_JOURNAL_FILE);
    j->fd = -1;
    j->seq = next_seq > 0 ? next_seq - 1 : 0;
    if (open_file(j, err) != 0) {
        cfw_journal_close(j);
        return NULL;
    }
    return j;
}

void cfw_journal_close(struct cfw_journal *j)
{
    if (j == NULL) {
        return;
    }
    if (j->fd >= 0) {
        close(j->fd);
    }
    free(j->dir);
    free(j->path);
    free(j);
}

uint64_t cfw_journal_append(struct cfw_journal *j, json_t *rec, bool sync, struct cfw_err *err)
{
    uint64_t seq = j->seq + 1;
    char *text;
    size_t len, off = 0;

    if (j->fd < 0 && open_file(j, err) != 0) {
        j->failures++;
        return 0;
    }
    json_object_set_new(rec, "seq", json_integer((json_int_t)seq));
    text = json_dumps(rec, JSON_COMPACT);
    if (text == NULL) {
        cfw_err_setc(err, ENOMEM, "journal: cannot encode a record");
        j->failures++;
        return 0;
    }
    len = strlen(text);
    if (len + 1 > CFW_JOURNAL_LINE_MAX) {
        cfw_err_setc(err, EFBIG, "journal: a record of %zu bytes is over the line cap", len);
        free(text);
        j->failures++;
        return 0;
    }
    text[len++] = '\n'; /* over the NUL: the buffer is written by length from here */
    while (off < len) {
        ssize_t n = write(j->fd, text + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            /* a partial line would glue onto the next record: cut it back */
            if (off > 0 && ftruncate(j->fd, (off_t)j->bytes) != 0) {
                e = errno;
            }
            cfw_err_setc(err, e, "cannot append to %s: %s", j->path, strerror(e));
            free(text);
            j->failures++;
            return 0;
        }
        off += (size_t)n;
    }
    free(text);
    j->bytes += len;
    j->seq = seq;
    if (sync && fdatasync(j->fd) != 0) {
        /* the line may or may not be on disk: the record stands, the failure is reported */
        cfw_err_setc(err, errno, "cannot fsync %s: %s", j->path, strerror(errno));
        j->failures++;
        return 0;
    }
    return seq;
}

uint64_t cfw_journal_seq(const struct cfw_journal *j)
{
    return j->seq;
}

uint64_t cfw_journal_bytes(const struct cfw_journal *j)
{
    return j->bytes;
}

uint64_t cfw_journal_failures(const struct cfw_journal *j)
{
    return j->failures;
}

int cfw_journal_rotate(struct cfw_journal *j, struct cfw_err *err)
{
    char *prev = cfw_xasprintf("%s/%s", j->dir, CFW_JOURNAL_PREV);
    int dfd;

    if (rename(j->path, prev) != 0) {
        cfw_err_setc(err, errno, "cannot rename %s to %s: %s", j->path, prev, strerror(errno));
        free(prev);
        return -1;
    }
    free(prev);
    close(j->fd);
    j->fd = -1;
    j->bytes = 0;
    if (open_file(j, err) != 0) {
        return -1;
    }
    dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}
