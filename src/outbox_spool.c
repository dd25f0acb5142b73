/*
 * The outbox's storage: one JSON file per job under state_dir/outbox (written before its first
 * attempt, removed when delivered), dead letters under state_dir/dead, the reserve file that
 * gives back room on a full disk, the jobs held in memory while their writes fail, the replay
 * of the spool on start and the lock that keeps a second process off it. The scheduling is in
 * outbox.c.
 */
#include "cfwatchd/outbox.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cfwatchd/fsutil.h"
#include "cfwatchd/log.h"
#include "cfwatchd/secrets.h"
#include "outbox_int.h"

#define SPOOL_FILE_MAX (2u * CFW_OUTBOX_BODY_MAX + 64u * 1024u)
/* A repeated write or reserve error is logged at most this often; the rest are counted. */
#define LOG_INTERVAL_MS 60000
/* Attempts of one spool write on a full disk, each after giving back part of the reserve. */
#define WRITE_TRIES 3
/* Jobs named one by one when they are lost at exit; the rest are counted. */
#define LOST_LOG_MAX 20

static struct spool_lock *spool_locks;

/* ---- file names and the encoding ---- */

static void job_filename(const struct cfw_outbox_job *j, char *out, size_t n)
{
    snprintf(out, n, "%020" PRIu64 ".job", j->seq);
}

static void safe_name(const char *s, char *out, size_t n)
{
    size_t o = 0;

    for (; *s != '\0' && o + 1 < n; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        out[o++] = ok ? c : '_';
    }
    out[o] = '\0';
}

static char *job_serialize(const struct cfw_outbox_job *j, const char *dead_reason, int64_t dead_at,
                           size_t *len)
{
    json_t *o = json_object();
    json_t *keys = json_array();
    char *text;

    for (size_t i = 0; i < j->nkeys; i++) {
        json_array_append_new(keys, json_string(j->keys[i]));
    }
    json_object_set_new(o, "v", json_integer(1));
    json_object_set_new(o, "id", json_string(j->id));
    json_object_set_new(o, "seq", json_integer((json_int_t)j->seq));
    json_object_set_new(o, "created_ms", json_integer(j->created.wall_ms));
    if (j->created.boot_ms > 0 && j->created.boot_id[0] != '\0') {
        /* the age is measured on this clock while the machine has not rebooted */
        json_object_set_new(o, "created_boot_ms", json_integer(j->created.boot_ms));
        json_object_set_new(o, "boot_id", json_string(j->created.boot_id));
    }
    json_object_set_new(o, "sink", json_string(j->sink));
    json_object_set_new(o, "endpoint", json_integer(j->endpoint));
    json_object_set_new(o, "kind", json_string(j->kind));
    json_object_set_new(o, "keys", keys);
    json_object_set_new(o, "test", json_boolean(j->test));
    json_object_set_new(o, "body", json_stringn(j->body, j->body_len));
    if (dead_reason != NULL) {
        json_t *d = json_object();
        char at[40];
        cfw_format_time_ms(dead_at, at, sizeof(at));
        json_object_set_new(d, "reason", json_string(dead_reason));
        json_object_set_new(d, "at", json_string(at));
        json_object_set_new(d, "attempts", json_integer(j->attempts));
        json_object_set_new(d, "last_status", json_integer(j->last_status));
        json_object_set_new(o, "dead", d);
    }
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL) {
        return NULL;
    }
    *len = strlen(text);
    return text;
}

char *cfw_outbox_spool_encode(const struct cfw_outbox_job *j, size_t *len)
{
    return job_serialize(j, NULL, 0, len);
}

/* ---- removing and dead letters ---- */

void cfw_outbox_spool_remove(struct cfw_outbox *ob, struct cfw_outbox_job *j)
{
    char name[64];

    job_filename(j, name, sizeof(name));
    /*
     * No fsync of the directory here: if the unlink is lost in a crash, the job is sent again
     * on the next start (at-least-once), which PagerDuty and Alertmanager absorb. A job held in
     * memory is unlinked too: a write whose final directory fsync failed may have left it.
     */
    if (unlinkat(ob->dir_fd, name, 0) != 0 && errno != ENOENT && j->on_disk) {
        cfw_log_warn("outbox: cannot remove %s: %s", name, strerror(errno));
    }
    j->on_disk = false;
}

void cfw_outbox_spool_bury(struct cfw_outbox *ob, const struct cfw_outbox_job *j,
                           const char *reason)
{
    char name[160];
    char sink[64];
    char *text;
    size_t len = 0;
    struct cfw_err err = {0};
    int64_t now = cfw_now_wall_ms();

    safe_name(j->sink, sink, sizeof(sink));
    snprintf(name, sizeof(name), "%013" PRId64 "-%06" PRIu64 "-%s.json", j->created.wall_ms, j->seq,
             sink);
    text = job_serialize(j, reason, now, &len);
    if (text == NULL ||
        cfw_fs_write_atomic(ob->dead_fd, ob->dead_dir, name, text, len, 0600, &err) != 0) {
        cfw_log_err("outbox: sink=%s job=%s dead-lettered after %u attempts (%s); the dead "
                    "letter could not be saved: %s",
                    j->sink, j->id, j->attempts, reason, text == NULL ? "encoding" : err.msg);
    } else {
        cfw_log_err("outbox: sink=%s job=%s kind=%s dead-lettered after %u attempts: %s "
                    "(saved as dead/%s)",
                    j->sink, j->id, j->kind, j->attempts, reason, name);
    }
    free(text);
}

/* ---- the reserve ---- */

/*
 * Returns true when a rate-limited message may be logged now; note gets "" or how many such
 * messages were skipped since the last one (to append to it).
 */
static bool ratelog_ok(struct cfw_ratelog *r, char *note, size_t n)
{
    uint64_t quiet;

    if (!cfw_ratelog_ok(r, cfw_now_mono_ms(), LOG_INTERVAL_MS, 1, &quiet)) {
        return false;
    }
    note[0] = '\0';
    if (quiet > 0) {
        snprintf(note, n, " [%" PRIu64 " similar messages not logged]", quiet);
    }
    return true;
}

static double respool_interval_s(const struct cfw_outbox *ob)
{
    return (double)ob->opts.respool_interval_ms / 1000.0;
}

static bool reserve_wanted(const struct cfw_outbox *ob)
{
    const struct spool_lock *l = ob->lock;

    return l != NULL && (l->current == ob || l->current == NULL) && l->reserve_target > 0 &&
           (l->reserve_fd < 0 || l->reserve_size < l->reserve_target);
}

void cfw_outbox_spool_arm_respool(struct cfw_outbox *ob)
{
    struct timeval tv;

    if (ob->respool_timer == NULL || evtimer_pending(ob->respool_timer, NULL) ||
        (ob->st.unspooled == 0 && !reserve_wanted(ob))) {
        return;
    }
    tv = cfw_ms_timeval(ob->opts.respool_interval_ms);
    evtimer_add(ob->respool_timer, &tv);
}

/*
 * Grows the reserve to its target. Why the check of free space first: the reserve must not
 * take the last room that the state file or the system needs right after a disk-full episode,
 * so it is only grown back when the file system has twice the missing part free. With force,
 * the allocation is made even when the file already has its size (it may be sparse).
 */
static void reserve_grow(struct cfw_outbox *ob, bool force)
{
    struct spool_lock *l = ob->lock;
    struct statvfs sv;
    uint64_t missing;
    int rc;

    if (l == NULL || l->reserve_fd < 0 || (!force && l->reserve_size >= l->reserve_target)) {
        return;
    }
    missing = l->reserve_target > l->reserve_size ? l->reserve_target - l->reserve_size : 0;
    if (missing > 0 && fstatvfs(l->reserve_fd, &sv) == 0 &&
        (uint64_t)sv.f_bavail * sv.f_frsize < 2 * missing) {
        if (!l->reserve_warned) {
            l->reserve_warned = true;
            cfw_log_warn("outbox: %" PRIu64 " bytes free in %s: the reserve %s stays at %" PRIu64
                         " of %" PRIu64 " bytes until twice the missing part is free",
                         (uint64_t)sv.f_bavail * sv.f_frsize, ob->dir, CFW_OUTBOX_RESERVE_FILE,
                         l->reserve_size, l->reserve_target);
        }
        return;
    }
    rc = posix_fallocate(l->reserve_fd, 0, (off_t)l->reserve_target);
    if (rc != 0) {
        /* a partial allocation is given back: the size known is the size held */
        if (ftruncate(l->reserve_fd, (off_t)l->reserve_size) != 0) {
            cfw_log_debug("outbox: cannot trim %s/%s: %s", ob->dir, CFW_OUTBOX_RESERVE_FILE,
                          strerror(errno));
        }
        if (!l->reserve_warned) {
            l->reserve_warned = true;
            cfw_log_warn("outbox: cannot reserve %" PRIu64 " bytes in %s/%s: %s (%s); trying "
                         "again every %.3g s",
                         l->reserve_target, ob->dir, CFW_OUTBOX_RESERVE_FILE, strerror(rc),
                         cfw_fs_errno_name(rc), respool_interval_s(ob));
        }
        return;
    }
    if (l->reserve_drawn || l->reserve_warned) {
        cfw_log_notice("outbox: reserve %s/%s back to %" PRIu64 " bytes", ob->dir,
                       CFW_OUTBOX_RESERVE_FILE, l->reserve_target);
    }
    l->reserve_size = l->reserve_target;
    l->reserve_drawn = false;
    l->reserve_warned = false;
}

void cfw_outbox_spool_reserve_open(struct cfw_outbox *ob)
{
    struct spool_lock *l = ob->lock;
    struct stat st;
    int fd;

    l->reserve_target = ob->reserve_target;
    if (l->reserve_target == 0) {
        if (l->reserve_fd >= 0) {
            close(l->reserve_fd);
            l->reserve_fd = -1;
        }
        l->reserve_size = 0;
        if (unlinkat(ob->dir_fd, CFW_OUTBOX_RESERVE_FILE, 0) == 0) {
            cfw_log_notice("outbox: reserve %s/%s removed (no reserve configured)", ob->dir,
                           CFW_OUTBOX_RESERVE_FILE);
        }
        return;
    }
    if (l->reserve_fd < 0) {
        fd = openat(ob->dir_fd, CFW_OUTBOX_RESERVE_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
                    0600);
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            int e = fd < 0 ? errno : EINVAL;
            if (fd >= 0) {
                close(fd);
            }
            if (!l->reserve_warned) {
                l->reserve_warned = true;
                cfw_log_warn("outbox: cannot open the reserve %s/%s: %s (%s); trying again "
                             "every %.3g s",
                             ob->dir, CFW_OUTBOX_RESERVE_FILE, strerror(e), cfw_fs_errno_name(e),
                             respool_interval_s(ob));
            }
            return;
        }
        l->reserve_fd = fd;
        l->reserve_size = (uint64_t)st.st_size;
    }
    if (l->reserve_size > l->reserve_target &&
        ftruncate(l->reserve_fd, (off_t)l->reserve_target) == 0) {
        l->reserve_size = l->reserve_target;
    }
    reserve_grow(ob, true);
}

/*
 * Gives back what a write of len bytes needs from the reserve, after that write failed for
 * want of space (why). The cut is synced so that a journaling file system frees the blocks
 * at once. Returns false when there is nothing left to give, or no point: when the file system
 * is out of inodes, not blocks, a smaller reserve would not help.
 */
static bool reserve_release(struct cfw_outbox *ob, size_t len, const struct cfw_err *why)
{
    struct spool_lock *l = ob->lock;
    struct statvfs sv;
    uint64_t block = OUTBOX_RESERVE_ALIGN;
    uint64_t need;
    uint64_t left;
    uint64_t given;
    char note[64];

    if (l == NULL || l->reserve_fd < 0 || l->reserve_size == 0) {
        return false;
    }
    if (fstatvfs(l->reserve_fd, &sv) == 0) {
        if (sv.f_files > 0 && sv.f_favail == 0) {
            return false;
        }
        if (sv.f_frsize >= 512 && sv.f_frsize <= 1024u * 1024u) {
            block = sv.f_frsize;
        }
    }
    need = ((uint64_t)len + block - 1) / block * block;
    if (need == 0) {
        need = block;
    }
    left = l->reserve_size > need ? l->reserve_size - need : 0;
    if (ftruncate(l->reserve_fd, (off_t)left) != 0) {
        cfw_log_err("outbox: cannot shrink the reserve %s/%s: %s (%s)", ob->dir,
                    CFW_OUTBOX_RESERVE_FILE, strerror(errno), cfw_fs_errno_name(errno));
        return false;
    }
    fsync(l->reserve_fd);
    given = l->reserve_size - left;
    l->reserve_size = left;
    l->reserve_drawn = true;
    ob->st.reserve_used++;
    if (ratelog_ok(&ob->reserve_log, note, sizeof(note))) {
        cfw_log_warn("outbox: %s; gave %" PRIu64 " bytes of the reserve %s/%s to the spool "
                     "(%" PRIu64 " bytes left)%s",
                     why->msg, given, ob->dir, CFW_OUTBOX_RESERVE_FILE, left, note);
    }
    cfw_outbox_spool_arm_respool(ob);
    return true;
}

/* ---- writing ---- */

/*
 * Writes a job's spool file (text when given, else serialized now). When the file system is
 * full (ENOSPC, EDQUOT), the reserve gives back what the job needs and the write is tried
 * again, at most WRITE_TRIES times in all. *failed tells whether any attempt failed.
 */
static int job_write(struct cfw_outbox *ob, struct cfw_outbox_job *j, const char *text, size_t len,
                     bool *failed, struct cfw_err *err)
{
    char name[64];
    char *own = NULL;
    int rc = -1;

    *failed = false;
    if (text == NULL) {
        own = job_serialize(j, NULL, 0, &len);
        if (own == NULL) {
            cfw_err_set(err, "cannot encode job %s", j->id);
            return -1;
        }
        text = own;
    }
    job_filename(j, name, sizeof(name));
    for (unsigned t = 1;; t++) {
        if (cfw_fs_write_atomic(ob->dir_fd, ob->dir, name, text, len, 0600, err) == 0) {
            rc = 0;
            break;
        }
        *failed = true;
        if ((err->code != ENOSPC && err->code != EDQUOT) || t >= WRITE_TRIES ||
            !reserve_release(ob, len, err)) {
            break;
        }
    }
    if (rc == 0) {
        j->on_disk = true;
    }
    free(own);
    return rc;
}

uint64_t cfw_outbox_spool_respool(struct cfw_outbox *ob, bool all)
{
    size_t written = 0;
    struct cfw_err err = {0};
    bool failed;

    for (struct cfw_outbox_job *j = ob->head; j != NULL && ob->st.unspooled > 0; j = j->next) {
        if (!j->held) {
            continue;
        }
        if (job_write(ob, j, NULL, 0, &failed, &err) == 0) {
            j->held = false;
            ob->st.unspooled--;
            written++;
            continue;
        }
        ob->last_werr = err;
        if (!all) {
            break;
        }
    }
    if (written > 0) {
        cfw_log_notice("outbox: %zu notification(s) held in memory now written to %s (%" PRIu64
                       " still held)",
                       written, ob->dir, ob->st.unspooled);
    }
    return ob->st.unspooled;
}

void cfw_outbox_spool_on_respool(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_outbox *ob = arg;
    char note[64];

    (void)fd;
    (void)what;
    if (ob->st.unspooled > 0 && cfw_outbox_spool_respool(ob, false) > 0 &&
        ratelog_ok(&ob->held_log, note, sizeof(note))) {
        cfw_log_err("outbox: %" PRIu64 " notification(s) still held in memory only (%s); "
                    "retrying every %.3g s; they are lost if cfwatchd is killed first%s",
                    ob->st.unspooled, ob->last_werr.msg, respool_interval_s(ob), note);
    }
    if (ob->st.unspooled == 0 && reserve_wanted(ob)) {
        /* the jobs first, then the reserve: it must not take the room they need */
        if (ob->lock->reserve_fd < 0) {
            cfw_outbox_spool_reserve_open(ob);
        } else {
            reserve_grow(ob, false);
        }
    }
    cfw_outbox_spool_arm_respool(ob);
}

void cfw_outbox_spool_write_new(struct cfw_outbox *ob, struct cfw_outbox_job *j, const char *text,
                                size_t len, struct cfw_err *why)
{
    bool failed = false;

    if (ob->st.unspooled > 0) {
        /* older jobs first: after a restart the oldest notifications are the ones kept */
        cfw_outbox_spool_respool(ob, false);
    }
    if (job_write(ob, j, text, len, &failed, why) != 0) {
        ob->last_werr = *why;
        j->held = !j->test; /* a test notification is never replayed: nothing to keep */
    }
    if (failed) {
        ob->st.write_errors++;
    }
}

void cfw_outbox_spool_log_held(struct cfw_outbox *ob, const struct cfw_outbox_job *j,
                               const struct cfw_err *why)
{
    char note[64];

    if (!ratelog_ok(&ob->held_log, note, sizeof(note))) {
        return;
    }
    if (j->test) {
        cfw_log_err("outbox: sink=%s job=%s not spooled (%s); delivering from memory only%s",
                    j->sink, j->id, why->msg, note);
        return;
    }
    cfw_log_err("outbox: sink=%s job=%s not spooled (%s); delivering from memory only and "
                "retrying the write every %.3g s (%" PRIu64 " held in memory, lost if cfwatchd "
                "is killed before they are written)%s",
                j->sink, j->id, why->msg, respool_interval_s(ob), ob->st.unspooled, note);
}

void cfw_outbox_spool_log_lost(const struct cfw_outbox *ob)
{
    size_t n = 0;

    cfw_log_err("outbox: %" PRIu64 " notification(s) could not be written to %s (%s) and are "
                "lost with this exit",
                ob->st.unspooled, ob->dir, ob->last_werr.msg);
    for (const struct cfw_outbox_job *j = ob->head; j != NULL; j = j->next) {
        char key[160];
        if (!j->held) {
            continue;
        }
        if (n++ >= LOST_LOG_MAX) {
            continue;
        }
        cfw_log_escape(j->nkeys > 0 ? j->keys[0] : "-", j->nkeys > 0 ? strlen(j->keys[0]) : 1, 120,
                       key, sizeof(key));
        cfw_log_err("outbox: lost sink=%s endpoint=%u job=%s kind=%s key=%s", j->sink, j->endpoint,
                    j->id, j->kind, key);
    }
    if (n > LOST_LOG_MAX) {
        cfw_log_err("outbox: and %zu more lost notification(s)", n - LOST_LOG_MAX);
    }
}

/* ---- loading ---- */

/* Reads a spool file (regular, of a sane size) whole into *data, to be freed even on failure. */
static int read_job_file(int dir_fd, const char *name, char **data, size_t *len,
                         struct cfw_err *err)
{
    struct cfw_err rerr = {0};

    *data = cfw_fs_read_fileat(dir_fd, name, SPOOL_FILE_MAX, len, &rerr);
    if (*data == NULL && (rerr.code == EINVAL || rerr.code == EFBIG)) {
        cfw_err_set(err, "not a regular spool file of a sane size");
        return -1;
    }
    if (*data == NULL) {
        cfw_err_set(err, "%s", rerr.msg);
        return -1;
    }
    if (*len == 0) {
        cfw_err_set(err, "not a regular spool file of a sane size");
        return -1;
    }
    return 0;
}

/* The creation stamp recorded in a spool file (created: its wall clock). */
static void job_stamp(const json_t *o, json_int_t created, struct cfw_stamp *stamp)
{
    json_t *boot_ms = json_object_get(o, "created_boot_ms");
    const char *boot_id = json_string_value(json_object_get(o, "boot_id"));

    /*
     * The boot clock and boot id are absent from files written before they were recorded:
     * then the age falls back to the wall clock, as it was measured before.
     */
    memset(stamp, 0, sizeof(*stamp));
    stamp->wall_ms = created;
    if (json_is_integer(boot_ms) && json_integer_value(boot_ms) > 0 && boot_id != NULL &&
        strlen(boot_id) == CFW_BOOT_ID_LEN) {
        stamp->boot_ms = json_integer_value(boot_ms);
        memcpy(stamp->boot_id, boot_id, CFW_BOOT_ID_LEN + 1);
    }
}

/* The job a spool file's JSON describes; NULL with err set when fields are missing. */
static struct cfw_outbox_job *job_decode(struct cfw_outbox *ob, json_t *o, struct cfw_err *err)
{
    json_error_t jerr;
    struct cfw_outbox_job *j;
    json_t *keys;
    const char *sink, *kind, *body;
    size_t body_len;
    json_int_t seq, created, endpoint;
    struct cfw_stamp stamp;
    char *clean;
    size_t clean_len;

    if (json_unpack_ex(o, &jerr, 0, "{s:I, s:I, s:s, s:I, s:s, s:o, s:s%}", "seq", &seq,
                       "created_ms", &created, "sink", &sink, "endpoint", &endpoint, "kind", &kind,
                       "keys", &keys, "body", &body, &body_len) != 0 ||
        seq < 0 || endpoint < 0 || !json_is_array(keys)) {
        cfw_err_set(err, "missing fields");
        return NULL;
    }
    job_stamp(o, created, &stamp);
    /* a payload spooled by an older version may hold a secret a receiver had echoed */
    clean = cfw_xmalloc(body_len + 1);
    memcpy(clean, body, body_len);
    clean[body_len] = '\0';
    clean_len = cfw_secrets_scrub_inplace(clean, body_len);
    j = cfw_outbox_job_make(ob, (uint64_t)seq, &stamp, sink, (unsigned)endpoint, kind, clean,
                            clean_len, json_is_true(json_object_get(o, "test")));
    free(clean);
    for (size_t i = 0; i < json_array_size(keys) && i < CFW_OUTBOX_KEYS_MAX; i++) {
        const char *k = json_string_value(json_array_get(keys, i));
        if (k != NULL) {
            cfw_outbox_job_add_key(j, k);
        }
    }
    return j;
}

/* Reads one spool file back and replays its job (a test notification's file is removed). */
static int load_one(struct cfw_outbox *ob, const char *name, struct cfw_err *err)
{
    char *data = NULL;
    size_t len = 0;
    json_t *o = NULL;
    json_error_t jerr;
    struct cfw_outbox_job *j;
    int rc = -1;

    if (read_job_file(ob->dir_fd, name, &data, &len, err) != 0) {
        goto out;
    }
    o = json_loadb(data, len, 0, &jerr);
    if (o == NULL) {
        cfw_err_set(err, "invalid JSON at byte %d", jerr.position);
        goto out;
    }
    j = job_decode(ob, o, err);
    if (j == NULL) {
        goto out;
    }
    j->on_disk = true;
    j->file_bytes = len;
    if (j->test) {
        /* a test notification belongs to the command that sent it: never replayed */
        cfw_outbox_spool_remove(ob, j);
        cfw_outbox_job_free(j);
    } else {
        if (j->seq >= ob->lock->next_seq) {
            ob->lock->next_seq = j->seq + 1;
        }
        cfw_outbox_replay(ob, j);
    }
    rc = 0;
out:
    free(data);
    json_decref(o);
    return rc;
}

static int load_spool(struct cfw_outbox *ob)
{
    DIR *d;
    struct dirent *de;
    int dfd = dup(ob->dir_fd);

    if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
        if (dfd >= 0) {
            close(dfd);
        }
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        struct cfw_err err = {0};

        if (strncmp(n, CFW_FS_TMP_PREFIX, strlen(CFW_FS_TMP_PREFIX)) == 0) {
            /* a write that never reached its rename: the submit did not complete */
            unlinkat(ob->dir_fd, n, 0);
            continue;
        }
        if (len < 5 || strcmp(n + len - 4, ".job") != 0) {
            continue;
        }
        if (load_one(ob, n, &err) != 0) {
            char dead[320];
            snprintf(dead, sizeof(dead), "corrupt-%s", n);
            cfw_log_err("outbox: spool file %s is unreadable (%s); moved to dead/%s", n, err.msg,
                        dead);
            if (renameat(ob->dir_fd, n, ob->dead_fd, dead) != 0) {
                unlinkat(ob->dir_fd, n, 0);
            }
            ob->st.dead++;
        }
    }
    rewinddir(d);
    closedir(d);
    fsync(ob->dir_fd);
    return 0;
}

int cfw_outbox_spool_load(struct cfw_outbox *ob, struct cfw_err *err)
{
    if (ob->memory_only || load_spool(ob) == 0) {
        return 0;
    }
    cfw_err_setc(err, errno, "cannot read %s: %s", ob->dir, strerror(errno));
    return -1;
}

/* ---- the directories and the lock ---- */

/* Errors that mean the state directory cannot be written (rather than a broken setup). */
static bool read_only_errno(int e)
{
    return e == EROFS || e == EACCES || e == EPERM;
}

/* The spool's identity for the lock registry; a spool held in memory is named by its path. */
static void spool_identity(const struct cfw_outbox *ob, dev_t *dev, ino_t *ino)
{
    *dev = (dev_t)-1;
    *ino = (ino_t)cfw_outbox_fnv1a(0xcbf29ce484222325ULL, ob->dir, strlen(ob->dir));
}

static int lock_spool(struct cfw_outbox *ob, struct cfw_err *err)
{
    struct stat st;
    struct spool_lock *l;
    int fd = -1;

    if (ob->memory_only) {
        spool_identity(ob, &st.st_dev, &st.st_ino);
    } else if (fstat(ob->dir_fd, &st) != 0) {
        cfw_err_setc(err, errno, "cannot stat %s: %s", ob->dir, strerror(errno));
        return -1;
    }
    for (l = spool_locks; l != NULL; l = l->next) {
        if (l->dev == st.st_dev && l->ino == st.st_ino && l->pid == getpid()) {
            l->refs++;
            l->current = ob;
            ob->lock = l;
            return 0;
        }
    }
    if (!ob->memory_only) {
        fd = openat(ob->dir_fd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 && read_only_errno(errno)) {
            /* a read-only state directory: an existing lock file can still be locked */
            fd = openat(ob->dir_fd, ".lock", O_RDONLY | O_CLOEXEC);
        }
    }
    if (fd < 0 && !ob->memory_only) {
        cfw_err_setc(err, errno, "cannot create %s/.lock: %s", ob->dir, strerror(errno));
        return -1;
    }
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        cfw_err_setc(err, errno, "the outbox %s is in use by another cfwatchd", ob->dir);
        close(fd);
        return -1;
    }
    l = cfw_xcalloc(1, sizeof(*l));
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    l->pid = getpid();
    l->fd = fd;
    l->refs = 1;
    l->next_seq = 1;
    l->reserve_fd = -1;
    l->current = ob;
    l->next = spool_locks;
    spool_locks = l;
    ob->lock = l;
    return 0;
}

static void unlock_spool(struct cfw_outbox *ob)
{
    struct spool_lock *l = ob->lock;
    struct spool_lock **pp;

    if (l == NULL) {
        return;
    }
    ob->lock = NULL;
    if (l->current == ob) {
        l->current = NULL;
    }
    if (--l->refs > 0) {
        return;
    }
    if (l->reserve_fd >= 0) {
        /* the file stays: the next start finds its room already taken for the spool */
        close(l->reserve_fd);
    }
    if (l->fd >= 0) {
        close(l->fd);
    }
    for (pp = &spool_locks; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            break;
        }
    }
    free(l);
}

static int open_dir(const char *path, struct cfw_err *err)
{
    int fd;

    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        cfw_err_setc(err, errno, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        cfw_err_setc(err, errno, "cannot open %s: %s", path, strerror(errno));
    }
    return fd;
}

int cfw_outbox_spool_open(struct cfw_outbox *ob, const char *state_dir, struct cfw_err *err)
{
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        cfw_err_setc(err, errno, "cannot create the state directory %s: %s", state_dir,
                     strerror(errno));
        return -1;
    }
    ob->dir = cfw_xasprintf("%s/outbox", state_dir);
    ob->dead_dir = cfw_xasprintf("%s/dead", state_dir);
    if ((ob->dir_fd = open_dir(ob->dir, err)) < 0 ||
        (ob->dead_fd = open_dir(ob->dead_dir, err)) < 0) {
        if (!read_only_errno(err->code)) {
            return -1;
        }
        /* a read-only state directory: run, deliver from memory, retry the writes */
        cfw_log_err("outbox: %s; notifications are delivered from memory only (lost if cfwatchd "
                    "dies) and their writes retried every %.3g s",
                    err->msg, respool_interval_s(ob));
        if (ob->dir_fd >= 0) {
            close(ob->dir_fd);
        }
        ob->dir_fd = ob->dead_fd = -1;
        ob->memory_only = true;
    }
    return lock_spool(ob, err);
}

void cfw_outbox_spool_close(struct cfw_outbox *ob)
{
    unlock_spool(ob);
    if (ob->dir_fd >= 0) {
        close(ob->dir_fd);
    }
    if (ob->dead_fd >= 0) {
        close(ob->dead_fd);
    }
    free(ob->dir);
    free(ob->dead_dir);
}
