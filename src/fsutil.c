/* Whole-file reads under a cap and durable writes (temporary file, fsync, rename, fsync). */
#include "cfwatchd/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *cfw_fs_errno_name(int e)
{
    const char *name = strerrorname_np(e);

    return name != NULL ? name : "errno";
}

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

/* cfw_fs_open_regular relative to dir_fd, with extra open flags (O_NOFOLLOW). */
static int open_regular_at(int dir_fd, const char *path, int flags, struct stat *st,
                           struct cfw_err *err)
{
    int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | flags);

    if (fd < 0) {
        cfw_err_setc(err, errno, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0) {
        cfw_err_setc(err, errno, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        const char *kind = file_kind(st->st_mode);

        cfw_err_setc(err, EINVAL, "%s: %s%s", path, kind,
                     strcmp(kind, "not a regular file") == 0 ? "" : ", not a regular file");
        close(fd);
        return -1;
    }
    return fd;
}

int cfw_fs_open_regular(const char *path, struct stat *st, struct cfw_err *err)
{
    return open_regular_at(AT_FDCWD, path, 0, st, err);
}

/*
 * Reads fd to its end into a new buffer, at most max bytes. The buffer is sized from hint (the
 * size fstat gave, plus one byte to see the end of the file in one read) and grown while the
 * file grows, up to one byte past the cap, to notice a file that grew past it.
 */
static char *read_capped(int fd, const char *path, size_t hint, size_t max, size_t *len,
                         struct cfw_err *err)
{
    size_t room = hint < 4095 ? 4096 : hint + 1;
    char *buf;

    if (room > max + 1) {
        room = max + 1;
    }
    buf = cfw_xmalloc(room + 1);
    *len = 0;
    for (;;) {
        ssize_t r;

        if (*len == room) {
            if (room == max + 1) {
                break;
            }
            room = room > (max + 1) / 2 ? max + 1 : room * 2;
            buf = cfw_xrealloc(buf, room + 1);
        }
        r = read(fd, buf + *len, room - *len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            cfw_err_setc(err, errno, "%s: cannot read: %s", path, strerror(errno));
            free(buf);
            return NULL;
        }
        if (r == 0) {
            break;
        }
        *len += (size_t)r;
    }
    if (*len > max) {
        cfw_err_setc(err, EFBIG, "%s: larger than %zu bytes", path, max);
        free(buf);
        return NULL;
    }
    buf[*len] = '\0';
    return buf;
}

/* Opens dir_fd/path as cfw_fs_open_regular does (flags added) and reads it whole. */
static char *read_file_at(int dir_fd, const char *path, int flags, size_t max, size_t *len,
                          struct cfw_err *err)
{
    struct stat st;
    char *buf;
    int fd = open_regular_at(dir_fd, path, flags, &st, err);

    *len = 0;
    if (fd < 0) {
        return NULL;
    }
    if ((uint64_t)st.st_size > max) {
        cfw_err_setc(err, EFBIG, "%s: larger than %zu bytes", path, max);
        close(fd);
        return NULL;
    }
    buf = read_capped(fd, path, (size_t)st.st_size, max, len, err);
    close(fd);
    return buf;
}

char *cfw_fs_read_file(const char *path, size_t max, size_t *len, struct cfw_err *err)
{
    return read_file_at(AT_FDCWD, path, 0, max, len, err);
}

char *cfw_fs_read_fileat(int dir_fd, const char *name, size_t max, size_t *len, struct cfw_err *err)
{
    return read_file_at(dir_fd, name, O_NOFOLLOW, max, len, err);
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void set_errno_err(struct cfw_err *err, int e, const char *what, const char *dir,
                          const char *name)
{
    cfw_err_setc(err, e, "cannot %s %s/%s: %s (%s)", what, dir, name, strerror(e),
                 cfw_fs_errno_name(e));
}

/* Writes, syncs and closes the temporary file fd; 0 or -1 with err set. */
static int write_tmp(int fd, const void *data, size_t len, int mode, unsigned flags,
                     const char *dir, const char *tmp, struct cfw_err *err)
{
    int rc = 0;

    if (write_all(fd, data, len) != 0 || ((flags & CFW_FS_KEEP_MODE) && fchmod(fd, mode) != 0) ||
        fsync(fd) != 0) {
        set_errno_err(err, errno, "write", dir, tmp);
        rc = -1;
    }
    if (close(fd) != 0 && rc == 0) {
        set_errno_err(err, errno, "write", dir, tmp);
        rc = -1;
    }
    return rc;
}

/* Puts tmp in place of name: renamed over it, or linked when it must not exist yet. */
static int put_in_place(int dir_fd, const char *dir, const char *tmp, const char *name,
                        unsigned flags, struct cfw_err *err)
{
    if (!(flags & CFW_FS_CREATE_ONLY)) {
        if (renameat(dir_fd, tmp, dir_fd, name) != 0) {
            set_errno_err(err, errno, "rename to", dir, name);
            return -1;
        }
        return 0;
    }
    if (linkat(dir_fd, tmp, dir_fd, name, 0) != 0) {
        set_errno_err(err, errno, "create", dir, name);
        return -1;
    }
    unlinkat(dir_fd, tmp, 0);
    return 0;
}

int cfw_fs_write_atomic(int dir_fd, const char *dir, const char *name, const void *data, size_t len,
                        int mode, struct cfw_err *err)
{
    return cfw_fs_write_atomic_flags(dir_fd, dir, name, data, len, mode, 0, err);
}

/*
 * Creates the temporary file beside name: a new file (O_EXCL), never one found there, so that a
 * file or hard link someone else left at the name is not written through; its name is made
 * again with another number while one exists. Returns the fd and sets *tmp (to free), or -1.
 */
static int create_tmp(int dir_fd, const char *dir, const char *name, int mode, char **tmp,
                      struct cfw_err *err)
{
    static unsigned seq;

    for (unsigned tries = 0;; tries++) {
        int fd;
        *tmp = cfw_xasprintf(CFW_FS_TMP_PREFIX "%s.%ld.%u", name, (long)getpid(), seq++);
        fd = openat(dir_fd, *tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd >= 0) {
            return fd;
        }
        if (errno != EEXIST || tries >= 100) {
            set_errno_err(err, errno, "create", dir, *tmp);
            free(*tmp);
            *tmp = NULL;
            return -1;
        }
        free(*tmp);
    }
}

/*
 * Syncs the directory, so that a rename in it is durable. A file system that cannot sync a
 * directory (EINVAL, ENOTSUP: some FUSE and network file systems) leaves the rename as durable
 * as it makes it: not an error.
 */
static int sync_dir(int dir_fd, const char *dir, struct cfw_err *err)
{
    if (fsync(dir_fd) == 0 || errno == EINVAL || errno == ENOTSUP) {
        return 0;
    }
    cfw_err_setc(err, errno, "cannot sync the directory %s: %s (%s)", dir, strerror(errno),
                 cfw_fs_errno_name(errno));
    return -1;
}

int cfw_fs_write_atomic_flags(int dir_fd, const char *dir, const char *name, const void *data,
                              size_t len, int mode, unsigned flags, struct cfw_err *err)
{
    char *tmp = NULL;
    int own_fd = -1;
    int fd;
    int rc = -1;
    bool created = false;
    struct stat st;

    if (dir_fd < 0) {
        own_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (own_fd < 0) {
            cfw_err_setc(err, errno, "cannot open the directory %s: %s (%s)", dir, strerror(errno),
                         cfw_fs_errno_name(errno));
            goto out;
        }
        dir_fd = own_fd;
    }
    if ((flags & CFW_FS_KEEP_MODE) && !(flags & CFW_FS_CREATE_ONLY) &&
        fstatat(dir_fd, name, &st, 0) == 0) {
        mode = (int)(st.st_mode & 07777);
    }
    fd = create_tmp(dir_fd, dir, name, mode, &tmp, err);
    if (fd < 0) {
        goto out;
    }
    created = true;
    if (write_tmp(fd, data, len, mode, flags, dir, tmp, err) != 0 ||
        put_in_place(dir_fd, dir, tmp, name, flags, err) != 0) {
        goto out;
    }
    created = false;
    /* the rename is durable only once the directory entry is */
    if (sync_dir(dir_fd, dir, err) != 0) {
        goto out;
    }
    rc = 0;
out:
    if (created) {
        unlinkat(dir_fd, tmp, 0);
    }
    if (own_fd >= 0) {
        close(own_fd);
    }
    free(tmp);
    return rc;
}

char *cfw_fs_read_all(int fd, size_t len, size_t *got)
{
    char *buf = cfw_xmalloc(len + 1);

    *got = 0;
    while (*got < len) {
        ssize_t n = read(fd, buf + *got, len - *got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        *got += (size_t)n;
    }
    buf[*got] = '\0';
    return buf;
}
