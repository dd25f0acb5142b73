/*
 * Whole files read under a cap, and durable file writes: write a temporary file in the target
 * directory, fsync it, rename it over the target, fsync the directory. A crash at any point
 * leaves either the old file or the new one, never a torn one.
 */
#ifndef CFWATCHD_FSUTIL_H
#define CFWATCHD_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "cfwatchd/common.h"

/*
 * Temporary files are named ".tmp-<name>.<pid>.<n>", always created new (O_EXCL): a reader skips
 * (or removes) this prefix.
 */
#define CFW_FS_TMP_PREFIX ".tmp-"

/*
 * Writes len bytes of data to dir/name durably with the given mode. dir_fd is the open
 * directory, or -1 to open dir by path; dir names the directory in messages. Returns 0, or -1
 * with err set (err->code is the errno; the message names the path and the errno) and no
 * temporary file left behind. After -1 the target may still have been replaced when only the
 * final directory fsync failed (a file system that cannot sync directories, EINVAL or ENOTSUP,
 * is not a failure).
 */
int cfw_fs_write_atomic(int dir_fd, const char *dir, const char *name, const void *data, size_t len,
                        int mode, struct cfw_err *err);

/* Flags of cfw_fs_write_atomic_flags. */
#define CFW_FS_KEEP_MODE                                                                           \
    0x1u /* exactly mode (no umask), or the permissions of the file replaced                       \
          */
#define CFW_FS_CREATE_ONLY 0x2u /* linked in place, not renamed: EEXIST when name exists (kept) */

/* cfw_fs_write_atomic with flags (CFW_FS_KEEP_MODE, CFW_FS_CREATE_ONLY). */
int cfw_fs_write_atomic_flags(int dir_fd, const char *dir, const char *name, const void *data,
                              size_t len, int mode, unsigned flags, struct cfw_err *err);

/* The symbolic name of an errno value ("ENOSPC"), or "errno" when it has none. */
const char *cfw_fs_errno_name(int e);

/*
 * Opens a file that must be a regular one for reading, without blocking on what is not (a FIFO
 * with no writer would hang open(2); a device may act on being opened: O_NONBLOCK, then fstat).
 * Returns the descriptor with *st filled, or -1 with err set: err->code is the errno, or EINVAL
 * for "is a FIFO / a directory / a device / a socket, not a regular file". The message names
 * the path.
 */
int cfw_fs_open_regular(const char *path, struct stat *st, struct cfw_err *err);

/*
 * Reads a whole regular file of at most max bytes (max < SIZE_MAX / 2) into a new buffer, NUL
 * appended after the *len bytes read. The file is opened as cfw_fs_open_regular does (a FIFO or a
 * device is refused, not opened for good); a file larger than max, by its size or by what could
 * be read, is refused. Returns the buffer, or NULL with err set: err->code is the errno, EINVAL
 * for what is not a regular file, or EFBIG for a file over the cap. The message names the path.
 */
char *cfw_fs_read_file(const char *path, size_t max, size_t *len, struct cfw_err *err);
/* The same for name in the directory dir_fd, without following a symbolic link at name. */
char *cfw_fs_read_fileat(int dir_fd, const char *name, size_t max, size_t *len,
                         struct cfw_err *err);

/*
 * Reads up to len bytes from fd into a new buffer (len + 1 bytes, the last one a NUL after what
 * was read), retrying after EINTR; stops early at the end of the file or an error. Returns the
 * buffer with the count in *got.
 */
char *cfw_fs_read_all(int fd, size_t len, size_t *got);

#endif
