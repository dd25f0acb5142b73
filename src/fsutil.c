/* Durable file writes: temporary file, fsync, rename, fsync of the directory. */
#include "cfwatchd/fsutil.h"

#include <errno.h>
#include <fcntl.h>
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

int cfw_fs_open_regular(const char *path, struct stat *st, struct cfw_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

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

int cfw_fs_write_atomic(int dir_fd, const char *dir, const char *name, const void *data, size_t len,
                        int mode, struct cfw_err *err)
{
    char *tmp = cfw_xasprintf(CFW_FS_TMP_PREFIX "%s.%ld", name, (long)getpid());
    int own_fd = -1;
    int fd = -1;
    int rc = -1;
    bool created = false;

    if (dir_fd < 0) {
        own_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (own_fd < 0) {
            cfw_err_setc(err, errno, "cannot open the directory %s: %s (%s)", dir, strerror(errno),
                         cfw_fs_errno_name(errno));
            goto out;
        }
        dir_fd = own_fd;
    }
    fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        set_errno_err(err, errno, "create", dir, tmp);
        goto out;
    }
    created = true;
    if (write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        set_errno_err(err, errno, "write", dir, tmp);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        set_errno_err(err, errno, "write", dir, tmp);
        goto out;
    }
    fd = -1;
    if (renameat(dir_fd, tmp, dir_fd, name) != 0) {
        set_errno_err(err, errno, "rename to", dir, name);
        goto out;
    }
    created = false;
    /* the rename is durable only once the directory entry is */
    if (fsync(dir_fd) != 0) {
        cfw_err_setc(err, errno, "cannot sync the directory %s: %s (%s)", dir, strerror(errno),
                     cfw_fs_errno_name(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
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
