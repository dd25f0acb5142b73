/*
 * The exec source: runs a command (argv, no shell) in its own session and process group, reads
 * its stdout and stderr as two non-blocking pipes in budgets, restarts it with a doubling
 * backoff, and stops it with SIGTERM to the group, then SIGKILL after a grace period.
 *
 * Children are watched with a pidfd (Linux >= 5.3) and, where that is not available, with a
 * SIGCHLD signal event plus a periodic check. Only our own pid is ever waited for, so other
 * children of the daemon are not disturbed.
 */
#include "cfwatchd/source.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "cfwatchd/log.h"
#include "cfwatchd/secrets.h"
#include "source_int.h"

#define CHECK_INTERVAL_MS 250
/* What a failed run's stderr adds to its reason: the last lines within the last bytes. */
#define CFW_EXEC_STDERR_TAIL 1024
#define CFW_EXEC_STDERR_LINES 3
#define FORCE_CLOSE_MS 1000

extern char **environ;

struct exec_src;

struct pstream {
    struct exec_src *es;
    const char *name; /* "stdout" or "stderr" */
    int fd;
    struct event *ev;
    bool streaming; /* data delivered since the stream began: eof is owed */
};

struct exec_src {
    struct cfw_source *src;
    char **envp;
    struct cfw_secret_hold *hold; /* credentials in envp, registered while the source lives */
    pid_t pid; /* the running command (group leader), 0 when none */
    int pidfd;
    struct event *pid_ev;
    struct event *chld_ev;
    struct event *check_ev;
    struct event *restart_ev;
    struct event *stable_ev;
    struct event *kill_ev;
    struct pstream out;
    struct pstream err;
    int64_t started_ms;
    int64_t backoff_ms;
    unsigned failures; /* consecutive runs that ended before stable_after */
    bool stable;
    char *buf;
    /* the last bytes the current run wrote to stderr: why it failed, in its own words */
    char tail[CFW_EXEC_STDERR_TAIL];
    size_t tail_len;
};

static void arm(struct event *ev, int64_t ms)
{
    struct timeval tv = cfw_ms_timeval(ms);

    /* The loop's cached time may be old (e.g. when called outside a callback). */
    event_base_update_cache_time(event_get_base(ev));
    event_add(ev, &tv);
}

static char **build_env(const struct cfw_fields *env)
{
    size_t n = 0;
    size_t k = 0;
    char **out;

    while (environ != NULL && environ[n] != NULL) {
        n++;
    }
    out = cfw_xcalloc(n + env->n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        bool replaced = false;
        if (eq == NULL) {
            continue;
        }
        for (size_t j = 0; j < env->n; j++) {
            size_t kl = strlen(env->v[j].key);
            if (kl == (size_t)(eq - environ[i]) && strncmp(environ[i], env->v[j].key, kl) == 0) {
                replaced = true;
                break;
            }
        }
        if (!replaced) {
            out[k++] = cfw_xstrdup(environ[i]);
        }
    }
    for (size_t j = 0; j < env->n; j++) {
        out[k++] = cfw_xasprintf("%s=%s", env->v[j].key, env->v[j].value);
    }
    return out;
}

static void close_stream_quiet(struct pstream *ps)
{
    if (ps->ev != NULL) {
        event_free(ps->ev);
        ps->ev = NULL;
    }
    if (ps->fd >= 0) {
        close(ps->fd);
        ps->fd = -1;
    }
}

/* Closes a pipe and ends its stream; false when the source was freed meanwhile. */
static bool close_stream(struct pstream *ps)
{
    struct cfw_source *src = ps->es->src;

    close_stream_quiet(ps);
    if (ps->streaming) {
        ps->streaming = false;
        return cfw_source_emit_eof(src, ps->name);
    }
    return true;
}

/* Keeps the last CFW_EXEC_STDERR_TAIL bytes of the run's stderr. */
static void tail_keep(struct exec_src *es, const char *p, size_t n)
{
    if (n >= sizeof(es->tail)) {
        memcpy(es->tail, p + n - sizeof(es->tail), sizeof(es->tail));
        es->tail_len = sizeof(es->tail);
        return;
    }
    if (es->tail_len + n > sizeof(es->tail)) {
        size_t drop = es->tail_len + n - sizeof(es->tail);
        memmove(es->tail, es->tail + drop, es->tail_len - drop);
        es->tail_len -= drop;
    }
    memcpy(es->tail + es->tail_len, p, n);
    es->tail_len += n;
}

/*
 * The last (up to) CFW_EXEC_STDERR_LINES non-blank lines of the run's stderr, joined by " | ",
 * control bytes and ANSI colours dropped, registered secrets replaced: "" when it wrote none.
 */
static void tail_lines(const struct exec_src *es, char *out, size_t outlen)
{
    char clean[CFW_EXEC_STDERR_TAIL + 1];
    const char *lines[CFW_EXEC_STDERR_LINES];
    size_t nl = 0, w = 0;
    char *scrubbed, *p;

    for (size_t i = 0; i < es->tail_len; i++) {
        unsigned char c = (unsigned char)es->tail[i];
        if (c == 0x1b) {
            /* an ANSI sequence: ESC [ parameters, then a final byte in @..~ */
            if (i + 1 < es->tail_len && es->tail[i + 1] == '[') {
                i += 2;
                while (i < es->tail_len &&
                       !((unsigned char)es->tail[i] >= 0x40 && (unsigned char)es->tail[i] <= 0x7e)) {
                    i++;
                }
            }
            continue;
        }
        clean[w++] = c == '\n' ? '\n' : c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    clean[w] = '\0';
    scrubbed = cfw_secrets_scrub(clean);
    /* the last lines, from the end */
    for (p = scrubbed + strlen(scrubbed); p > scrubbed && nl < CFW_EXEC_STDERR_LINES;) {
        char *end = p;
        while (p > scrubbed && p[-1] != '\n') {
            p--;
        }
        *end = '\0';
        {
            const char *q = p;
            while (*q == ' ') {
                q++;
            }
            if (*q != '\0') {
                lines[nl++] = q;
            }
        }
        if (p > scrubbed) {
            p--; /* over the newline */
        }
    }
    out[0] = '\0';
    for (size_t i = nl; i-- > 0;) {
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "%s%s", used > 0 ? " | " : "", lines[i]);
    }
    free(scrubbed);
}

/* Reads up to the budget; false when the source was freed meanwhile. */
static bool read_stream(struct pstream *ps, bool *eof)
{
    struct exec_src *es = ps->es;
    struct cfw_source *src = es->src;
    size_t budget = src->conf.read_budget;

    *eof = false;
    while (budget > 0 && ps->fd >= 0) {
        size_t want = budget < CFW_SOURCE_CHUNK_SIZE ? budget : CFW_SOURCE_CHUNK_SIZE;
        ssize_t n = read(ps->fd, es->buf, want);
        if (n > 0) {
            budget -= (size_t)n;
            ps->streaming = true;
            if (ps == &es->err) {
                tail_keep(es, es->buf, (size_t)n);
            }
            if (!cfw_source_emit_data(src, ps->name, es->buf, (size_t)n)) {
                return false;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        *eof = true;
        break;
    }
    return true;
}

/* Reads what is left now and closes the stream (a straggler may still hold the pipe). */
static bool drain_and_close(struct pstream *ps)
{
    bool eof;

    if (ps->fd < 0) {
        return true;
    }
    if (!read_stream(ps, &eof)) {
        return false;
    }
    return close_stream(ps);
}

static bool all_closed(const struct exec_src *es)
{
    return es->pid == 0 && es->out.fd < 0 && es->err.fd < 0;
}

static void maybe_done(struct exec_src *es)
{
    if (es->src->stopping && all_closed(es)) {
        event_del(es->kill_ev);
    }
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    struct pstream *ps = arg;
    struct exec_src *es = ps->es;
    struct cfw_source *src = es->src;
    bool eof = false;

    (void)fd;
    (void)what;
    cfw_source_enter(src);
    if (read_stream(ps, &eof) && (!eof || close_stream(ps))) {
        maybe_done(es);
    }
    cfw_source_leave(src);
}

static void describe_status(int status, char *out, size_t outlen)
{
    if (WIFEXITED(status)) {
        snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(out, outlen, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    } else {
        snprintf(out, outlen, "ended (status 0x%x)", (unsigned)status);
    }
}

static void stop_watching_child(struct exec_src *es)
{
    if (es->pid_ev != NULL) {
        event_free(es->pid_ev);
        es->pid_ev = NULL;
    }
    if (es->pidfd >= 0) {
        close(es->pidfd);
        es->pidfd = -1;
    }
    if (es->check_ev != NULL) {
        event_del(es->check_ev);
    }
}

/*
 * A run ended (or could not start): count it, arm the restart with the current backoff and
 * report the state. Why "quick" failures only: a run that lasted stable_after has already reset
 * the count and the backoff, so a command that fails after a long healthy run restarts fast.
 */
static bool run_ended(struct exec_src *es, const char *what)
{
    struct cfw_source *src = es->src;
    const struct cfw_source_conf *c = &src->conf;
    int64_t delay;
    char tail[CFW_EXEC_STDERR_TAIL + 16];
    char said[CFW_EXEC_STDERR_TAIL + 32];

    /* its own words go with the status: in the log and in the source-down reason */
    tail_lines(es, tail, sizeof(tail));
    snprintf(said, sizeof(said), "%s%s", tail[0] != '\0' ? "; stderr: " : "", tail);
    event_del(es->stable_ev);
    src->stats.failures++;
    if (es->stable) {
        es->failures = 0;
        es->backoff_ms = c->restart_delay_ms;
    }
    es->stable = false;
    es->failures++;
    delay = es->backoff_ms;
    es->backoff_ms =
        es->backoff_ms > c->restart_delay_max_ms / 2 ? c->restart_delay_max_ms : es->backoff_ms * 2;
    arm(es->restart_ev, delay);
    cfw_log_warn("source=%s command=%s %s; restarting in %lldms (failure %u in a row)%s", c->name,
                 c->command[0], what, (long long)delay, es->failures, said);
    if (es->failures >= c->down_after_failures) {
        return cfw_source_set_state(src, CFW_INPUT_DOWN,
                                    "command %s failed %u times in a row (last: %s)%s",
                                    c->command[0], es->failures, what, said);
    }
    return cfw_source_set_state(src, CFW_INPUT_DEGRADED, "command %s %s; restarting in %lldms%s",
                                c->command[0], what, (long long)delay, said);
}

/* Checks whether the command has exited and reaps it; false when the source was freed. */
static bool check_child(struct exec_src *es)
{
    struct cfw_source *src = es->src;
    siginfo_t si;
    int status = 0;
    char what[128];

    if (es->pid <= 0) {
        return true;
    }
    memset(&si, 0, sizeof(si));
    if (waitid(P_PID, (id_t)es->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
        if (errno == EINTR) {
            return true;
        }
        /* ECHILD: reaped by someone else; nothing to wait for. */
        snprintf(what, sizeof(what), "was reaped elsewhere");
    } else if (si.si_pid == 0) {
        return true;
    } else {
        /*
         * The leader has exited but is not reaped yet, so its pid still names our process group:
         * whatever it left running in the group is signalled now, safely (after the reap the id
         * could be reused). On stop that is SIGKILL, otherwise SIGTERM.
         */
        kill(-es->pid, src->stopping ? SIGKILL : SIGTERM);
        while (waitpid(es->pid, &status, 0) < 0 && errno == EINTR) {
        }
        describe_status(status, what, sizeof(what));
    }
    cfw_log_info("source=%s pid=%d %s", src->conf.name, (int)es->pid, what);
    es->pid = 0;
    stop_watching_child(es);
    if (src->stopping) {
        maybe_done(es);
        return true;
    }
    return run_ended(es, what);
}

static void on_child(evutil_socket_t fd, short what, void *arg)
{
    struct exec_src *es = arg;
    struct cfw_source *src = es->src;

    (void)fd;
    (void)what;
    cfw_source_enter(src);
    check_child(es);
    cfw_source_leave(src);
}

static bool spawn(struct exec_src *es)
{
    struct cfw_source *src = es->src;
    const struct cfw_source_conf *c = &src->conf;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t mask;
    sigset_t def;
    int outp[2] = {-1, -1};
    int errp[2] = {-1, -1};
    pid_t pid = 0;
    int rc;
    char what[CFW_ERR_MAX];

    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
        snprintf(what, sizeof(what), "could not start: pipe: %s", strerror(errno));
        for (int i = 0; i < 2; i++) {
            if (outp[i] >= 0) {
                close(outp[i]);
            }
        }
        return run_ended(es, what);
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    if (c->cwd != NULL) {
        posix_spawn_file_actions_addchdir_np(&fa, c->cwd);
    }
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&attr);
    sigemptyset(&mask);
    sigfillset(&def);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    rc = posix_spawnp(&pid, c->command[0], &fa, &attr, c->command, es->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(outp[1]);
    close(errp[1]);
    if (rc != 0) {
        close(outp[0]);
        close(errp[0]);
        snprintf(what, sizeof(what), "could not start: %s", strerror(rc));
        return run_ended(es, what);
    }
    es->pid = pid;
    es->started_ms = cfw_now_mono_ms();
    es->tail_len = 0;
    src->stats.starts++;
    cfw_log_info("source=%s command=%s started pid=%d", c->name, c->command[0], (int)pid);
    es->out.fd = outp[0];
    es->err.fd = errp[0];
    for (int i = 0; i < 2; i++) {
        struct pstream *ps = i == 0 ? &es->out : &es->err;
        fcntl(ps->fd, F_SETFL, fcntl(ps->fd, F_GETFL) | O_NONBLOCK);
        ps->ev = event_new(src->base, ps->fd, EV_READ | EV_PERSIST, on_pipe, ps);
        if (ps->ev != NULL) {
            event_add(ps->ev, NULL);
        }
    }
    es->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (es->pidfd >= 0) {
        es->pid_ev = event_new(src->base, es->pidfd, EV_READ | EV_PERSIST, on_child, es);
        if (es->pid_ev == NULL || event_add(es->pid_ev, NULL) < 0) {
            stop_watching_child(es);
        }
    }
    if (es->pid_ev == NULL) {
        /* No pidfd: SIGCHLD wakes us, and a periodic check covers a missed signal. */
        if (es->chld_ev == NULL) {
            es->chld_ev = evsignal_new(src->base, SIGCHLD, on_child, es);
            if (es->chld_ev != NULL) {
                event_add(es->chld_ev, NULL);
            }
        }
        arm(es->check_ev, CHECK_INTERVAL_MS);
    }
    arm(es->stable_ev, c->stable_after_ms);
    return true;
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    struct exec_src *es = arg;
    struct cfw_source *src = es->src;

    (void)fd;
    (void)what;
    cfw_source_enter(src);
    if (!src->stopping && es->pid == 0 && drain_and_close(&es->out) && drain_and_close(&es->err)) {
        spawn(es);
    }
    cfw_source_leave(src);
}

static void on_stable(evutil_socket_t fd, short what, void *arg)
{
    struct exec_src *es = arg;
    struct cfw_source *src = es->src;

    (void)fd;
    (void)what;
    cfw_source_enter(src);
    es->stable = true;
    es->failures = 0;
    es->backoff_ms = src->conf.restart_delay_ms;
    cfw_source_set_state(src, CFW_INPUT_UP, "running");
    cfw_source_leave(src);
}

static void on_check(evutil_socket_t fd, short what, void *arg)
{
    struct exec_src *es = arg;
    struct cfw_source *src = es->src;

    (void)fd;
    (void)what;
    cfw_source_enter(src);
    if (check_child(es) && es->pid > 0 && es->pid_ev == NULL) {
        arm(es->check_ev, CHECK_INTERVAL_MS);
    }
    cfw_source_leave(src);
}

/* Stop, second step: SIGKILL to the group; later, pipes held by escaped processes are closed. */
static void on_kill(evutil_socket_t fd, short what, void *arg)
{
    struct exec_src *es = arg;
    struct cfw_source *src = es->src;

    (void)fd;
    (void)what;
    cfw_source_enter(src);
    if (es->pid > 0) {
        cfw_log_warn("source=%s pid=%d still running %lldms after SIGTERM; sending SIGKILL",
                     src->conf.name, (int)es->pid, (long long)src->conf.stop_grace_ms);
        kill(-es->pid, SIGKILL);
        arm(es->kill_ev, FORCE_CLOSE_MS);
    } else if (drain_and_close(&es->out) && drain_and_close(&es->err)) {
        maybe_done(es);
    }
    cfw_source_leave(src);
}

static void exec_destroy(struct cfw_source *src)
{
    struct exec_src *es = src->impl;

    if (es == NULL) {
        return;
    }
    if (es->pid > 0) {
        kill(-es->pid, SIGKILL);
        while (waitpid(es->pid, NULL, 0) < 0 && errno == EINTR) {
        }
        es->pid = 0;
    }
    stop_watching_child(es);
    close_stream_quiet(&es->out);
    close_stream_quiet(&es->err);
    if (es->chld_ev != NULL) {
        event_free(es->chld_ev);
    }
    if (es->check_ev != NULL) {
        event_free(es->check_ev);
    }
    if (es->restart_ev != NULL) {
        event_free(es->restart_ev);
    }
    if (es->stable_ev != NULL) {
        event_free(es->stable_ev);
    }
    if (es->kill_ev != NULL) {
        event_free(es->kill_ev);
    }
    if (es->envp != NULL) {
        for (size_t i = 0; es->envp[i] != NULL; i++) {
            free(es->envp[i]);
        }
        free(es->envp);
    }
    cfw_secret_hold_free(es->hold);
    free(es->buf);
    free(es);
    src->impl = NULL;
}

static int exec_init(struct cfw_source *src, struct cfw_err *err)
{
    struct exec_src *es;

    if (src->conf.command == NULL || src->conf.command[0] == NULL ||
        src->conf.command[0][0] == '\0') {
        cfw_err_set(err, "source %s: an exec source needs a command", src->conf.name);
        return -1;
    }
    if (src->conf.restart_delay_ms <= 0) {
        src->conf.restart_delay_ms = CFW_SOURCE_RESTART_DELAY_DEFAULT_MS;
    }
    if (src->conf.restart_delay_max_ms < src->conf.restart_delay_ms) {
        src->conf.restart_delay_max_ms = src->conf.restart_delay_ms;
    }
    if (src->conf.down_after_failures == 0) {
        src->conf.down_after_failures = 1;
    }
    es = cfw_xcalloc(1, sizeof(*es));
    src->impl = es;
    es->src = src;
    es->pidfd = -1;
    es->out = (struct pstream){.es = es, .name = "stdout", .fd = -1};
    es->err = (struct pstream){.es = es, .name = "stderr", .fd = -1};
    es->backoff_ms = src->conf.restart_delay_ms;
    es->buf = cfw_xmalloc(CFW_SOURCE_CHUNK_SIZE);
    es->envp = build_env(&src->conf.env);
    /*
     * The command gets the configured env: and cfwatchd's own environment; the credentials
     * among them (CLOUDFLARE_API_TOKEN for wrangler) are what its output may repeat.
     */
    es->hold = cfw_secret_hold_new();
    for (size_t i = 0; es->envp[i] != NULL; i++) {
        char *eq = strchr(es->envp[i], '=');
        if (eq != NULL) {
            *eq = '\0';
            cfw_secret_hold_add_env(es->hold, es->envp[i], eq + 1);
            *eq = '=';
        }
    }
    es->restart_ev = evtimer_new(src->base, on_restart, es);
    es->stable_ev = evtimer_new(src->base, on_stable, es);
    es->kill_ev = evtimer_new(src->base, on_kill, es);
    es->check_ev = evtimer_new(src->base, on_check, es);
    if (es->restart_ev == NULL || es->stable_ev == NULL || es->kill_ev == NULL ||
        es->check_ev == NULL) {
        cfw_err_set(err, "source %s: cannot create events", src->conf.name);
        return -1;
    }
    return 0;
}

static int exec_start(struct cfw_source *src, struct cfw_err *err)
{
    (void)err;
    spawn(src->impl);
    return 0;
}

static void exec_stop(struct cfw_source *src)
{
    struct exec_src *es = src->impl;

    event_del(es->restart_ev);
    event_del(es->stable_ev);
    if (es->pid > 0) {
        cfw_log_info("source=%s stopping pid=%d (SIGTERM to its process group)", src->conf.name,
                     (int)es->pid);
        kill(-es->pid, SIGTERM);
        arm(es->kill_ev, src->conf.stop_grace_ms);
        return;
    }
    /* Nothing running: pipes still open belong to processes that left the group. */
    if (drain_and_close(&es->out) && drain_and_close(&es->err)) {
        maybe_done(es);
    }
}

static bool exec_stopped(const struct cfw_source *src)
{
    return all_closed(src->impl);
}

static json_t *exec_save(const struct cfw_source *src)
{
    json_t *o = json_object();

    (void)src;
    json_object_set_new(o, "type", json_string("exec"));
    return o;
}

static int exec_restore(struct cfw_source *src, const json_t *state)
{
    (void)src;
    (void)state;
    return 0;
}

/* ---- configuration ---- */

static bool env_name_ok(const char *s)
{
    if (s[0] == '\0' || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return false;
        }
    }
    return true;
}

static int read_command(const struct cfw_schema_key *k, const struct cfw_node *map,
                        const char *path, void *conf, struct cfw_diag *diag)
{
    const struct cfw_node *cmd = cfw_node_get(map, k->name);
    char *kp = cfw_schema_path(k, path);
    char **argv = NULL;
    int rc = -1;

    if (cmd == NULL) {
        cfw_diag_add(diag, map, path, "an exec source needs 'command' (a list: argv, no shell)");
    } else if (cmd->type != CFW_NODE_SEQ) {
        cfw_diag_add(diag, cmd, kp, "expected a list of strings (argv; no shell is used)");
    } else if (cfw_node_strlist(map, k->name, path, &argv, diag) < 0) {
        /* reported */
    } else if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0') {
        cfw_diag_add(diag, cmd, kp, "the command must not be empty");
    } else {
        rc = 1;
    }
    if (argv != NULL) {
        ((struct cfw_source_conf *)conf)->command = argv;
    }
    free(kp);
    return rc;
}

static int read_env(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                    void *conf, struct cfw_diag *diag)
{
    const struct cfw_node *env = cfw_node_get(map, k->name);
    char *kp;
    int rc = 1;

    if (env == NULL) {
        return 0;
    }
    kp = cfw_schema_path(k, path);
    if (env->type != CFW_NODE_MAP) {
        cfw_diag_add(diag, env, kp, "expected a map of NAME: value");
        free(kp);
        return -1;
    }
    for (size_t i = 0; i < env->n; i++) {
        const struct cfw_node *v = env->items[i];
        if (!env_name_ok(env->keys[i])) {
            cfw_diag_add(diag, env->keynodes[i], kp, "invalid environment variable name '%s'",
                         env->keys[i]);
            rc = -1;
        } else if (v->type != CFW_NODE_SCALAR) {
            cfw_diag_add(diag, v, kp, "the value of %s must be a string", env->keys[i]);
            rc = -1;
        } else {
            cfw_fields_set(&((struct cfw_source_conf *)conf)->env, env->keys[i], v->value);
            /* CLOUDFLARE_API_TOKEN and the like: scrubbed from what the command prints */
            cfw_secret_hold_add_env(NULL, env->keys[i], v->value);
        }
    }
    free(kp);
    return rc;
}

static int check_delays(const struct cfw_node *map, const char *path, void *conf,
                        struct cfw_diag *diag)
{
    const struct cfw_source_conf *c = conf;

    if (c->restart_delay_max_ms < c->restart_delay_ms) {
        cfw_diag_add(diag, map, path, "restart_delay_max must not be less than restart_delay");
        return -1;
    }
    return 0;
}

static const struct cfw_schema_key exec_keys[] = {
    CFW_SOURCE_ROW_NAME,
    CFW_SOURCE_ROW_TYPE,
    {.name = "command",
     .type = CFW_SCHEMA_STRLIST,
     .offset = CFW_SOURCE_KEY(command),
     .read = read_command,
     .help = "argv as a list (required; no shell is used)"},
    {.name = "env",
     .offset = CFW_SOURCE_KEY(env),
     .read = read_env,
     .help = "NAME: value added to (or replacing in) the daemon's environment"},
    {.name = "cwd",
     .type = CFW_SCHEMA_STR,
     .offset = CFW_SOURCE_KEY(cwd),
     .help = "the working directory (default: the daemon's)"},
    CFW_SOURCE_ROW_FORMAT("stdout_format", stdout_format),
    CFW_SOURCE_ROW_FORMAT("stderr_format", stderr_format),
    CFW_SOURCE_ROW_READ_BUDGET,
    {.name = "restart_delay",
     .type = CFW_SCHEMA_DURATION,
     .offset = CFW_SOURCE_KEY(restart_delay_ms),
     .def = CFW_SOURCE_RESTART_DELAY_DEFAULT_MS,
     .min = 10,
     .help = "the first restart delay, doubled after each quick failure"},
    {.name = "restart_delay_max",
     .type = CFW_SCHEMA_DURATION,
     .offset = CFW_SOURCE_KEY(restart_delay_max_ms),
     .def = CFW_SOURCE_RESTART_DELAY_MAX_DEFAULT_MS,
     .min = 10,
     .help = "the cap of the doubling"},
    {.name = "stable_after",
     .type = CFW_SCHEMA_DURATION,
     .offset = CFW_SOURCE_KEY(stable_after_ms),
     .def = CFW_SOURCE_STABLE_AFTER_DEFAULT_MS,
     .min = 10,
     .help = "a run this long resets the delay and the failure count"},
    {.name = "stop_grace",
     .type = CFW_SCHEMA_DURATION,
     .offset = CFW_SOURCE_KEY(stop_grace_ms),
     .def = CFW_SOURCE_STOP_GRACE_DEFAULT_MS,
     .help = "SIGTERM to SIGKILL"},
    {.name = "down_after_failures",
     .type = CFW_SCHEMA_UINT,
     .offset = CFW_SOURCE_KEY(down_after_failures),
     .def = CFW_SOURCE_DOWN_AFTER_FAILURES_DEFAULT,
     .min = 1,
     .max = 1000,
     .help = "consecutive quick failures before the source is DOWN"},
    {0},
};

const struct cfw_schema cfw_source_exec_schema = {.keys = exec_keys, .check = check_delays};

const struct source_ops cfw_source_exec_ops = {
    .name = "exec",
    .type = CFW_SOURCE_EXEC,
    .schema = &cfw_source_exec_schema,
    .init = exec_init,
    .start = exec_start,
    .stop = exec_stop,
    .stopped = exec_stopped,
    .destroy = exec_destroy,
    .save = exec_save,
    .restore = exec_restore,
    .stats = NULL,
};
