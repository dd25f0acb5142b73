/* --check-bundle --verify: import main from the bundle laid out as uploaded, with python3. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundle_int.h"
#include "cfwatchd/bundle.h"

/*
 * The child's program. It follows the resolution order of docs/check-bundle.md: the standard
 * library first (python3's own sys.path, no site-packages (-S), no user environment (-I)), then
 * the bundle directory, then python_modules/ and the legacy vendor/ directory of the bundle
 * (workerd's python.ts puts both before site-packages), then (as site-packages) the runtime-only
 * modules and the dependencies that pywrangler sync would vendor, served by stand-ins (placeholder
 * classes for every attribute) from the end of sys.meta_path. A bundle module of a runtime
 * module's name therefore wins, as on Workers; a submodule is served only below a stand-in,
 * never below a package of the bundle (`from workers import Response` with a local workers/
 * package fails, as it does on Workers).
 */
static const char bootstrap[] =
    "import sys, types, importlib, importlib.abc, importlib.machinery\n"
    "bundle, main = sys.argv[1], sys.argv[2]\n"
    "runtime = set(n for n in sys.argv[3].split(',') if n)\n"
    "synced = set(n for n in sys.argv[4].split(',') if n)\n"
    "sys.argv = [main]\n"
    "sys.path[:] = [p for p in sys.path if p] + [bundle, bundle + '/python_modules',\n"
    "                                            bundle + '/vendor']\n"
    "class _Meta(type):\n"
    "    def __getattr__(cls, name):\n"
    "        if name.startswith('__'):\n"
    "            raise AttributeError(name)\n"
    "        return _standin(name)\n"
    "class _StandIn(metaclass=_Meta):\n"
    "    def __init__(self, *args, **kwargs):\n"
    "        pass\n"
    "    def __call__(self, *args, **kwargs):\n"
    "        if len(args) == 1 and callable(args[0]) and not kwargs:\n"
    "            return args[0]\n"
    "        return _StandIn()\n"
    "    def __getattr__(self, name):\n"
    "        if name.startswith('__'):\n"
    "            raise AttributeError(name)\n"
    "        return _StandIn()\n"
    "    def __iter__(self):\n"
    "        return iter(())\n"
    "def _standin(name):\n"
    "    return _Meta(name, (_StandIn,), {})\n"
    "class _Module(types.ModuleType):\n"
    "    def __getattr__(self, name):\n"
    "        if name.startswith('__'):\n"
    "            raise AttributeError(name)\n"
    "        value = _standin(name)\n"
    "        setattr(self, name, value)\n"
    "        return value\n"
    "class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):\n"
    "    def __init__(self, names):\n"
    "        self.names = names\n"
    "    def find_spec(self, fullname, path=None, target=None):\n"
    "        top, dot, _ = fullname.partition('.')\n"
    "        if top not in self.names:\n"
    "            return None\n"
    "        if dot and not isinstance(sys.modules.get(top), _Module):\n"
    "            return None\n"
    "        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)\n"
    "    def create_module(self, spec):\n"
    "        return _Module(spec.name)\n"
    "    def exec_module(self, module):\n"
    "        module.__path__ = []\n"
    "sys.meta_path.append(_Finder(runtime))\n"
    "sys.meta_path.append(_Finder(synced))\n"
    "importlib.import_module(main)\n"
    "print('cfwatchd-verify: import %s OK' % main)\n";

void cfw_bundle_verdict_clear(struct cfw_bundle_verdict *v)
{
    if (v == NULL) {
        return;
    }
    free(v->python);
    free(v->output);
    memset(v, 0, sizeof(*v));
}

static char *find_python3(void)
{
    const char *p = getenv("PATH");

    if (p == NULL || p[0] == '\0') {
        return NULL;
    }
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char *cand = len ? cfw_xasprintf("%.*s/python3", (int)len, p) : cfw_xstrdup("./python3");
        if (access(cand, X_OK) == 0) {
            return cand;
        }
        free(cand);
        if (colon == NULL) {
            return NULL;
        }
        p = colon + 1;
    }
}

static int copy_file(const char *from, const char *to, struct cfw_err *err)
{
    int in = open(from, O_RDONLY | O_CLOEXEC), out;
    char buf[65536];
    ssize_t n;

    if (in < 0) {
        cfw_err_setc(err, errno, "%s: %s", from, strerror(errno));
        return -1;
    }
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        cfw_err_setc(err, errno, "%s: %s", to, strerror(errno));
        close(in);
        return -1;
    }
    while ((n = read(in, buf, sizeof(buf))) != 0) {
        size_t off = 0;
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            cfw_err_setc(err, errno, "%s: %s", from, strerror(errno));
            goto fail;
        }
        while (off < (size_t)n) {
            ssize_t w = write(out, buf + off, (size_t)n - off);
            if (w < 0) {
                if (errno == EINTR) {
                    continue;
                }
                cfw_err_setc(err, errno, "%s: %s", to, strerror(errno));
                goto fail;
            }
            off += (size_t)w;
        }
    }
    close(in);
    close(out);
    return 0;
fail:
    close(in);
    close(out);
    return -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D) {
        rmdir(path);
    } else {
        unlink(path);
    }
    return 0;
}

static bool safe_name(const char *name)
{
    const char *p = name;

    if (name[0] == '/' || name[0] == '\0') {
        return false;
    }
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if ((len == 2 && p[0] == '.' && p[1] == '.') || len == 0) {
            return false;
        }
        if (slash == NULL) {
            break;
        }
        p = slash + 1;
    }
    return true;
}

static int lay_out(const struct cfw_bundle_report *r, const char *bundle, struct cfw_err *err)
{
    if (mkdir(bundle, 0755) != 0) {
        cfw_err_setc(err, errno, "mkdir %s: %s", bundle, strerror(errno));
        return -1;
    }
    for (size_t k = 0; k < r->n_modules; k++) {
        char *dst;
        if (!safe_name(r->modules[k].name)) {
            continue;
        }
        dst = cfw_xasprintf("%s/%s", bundle, r->modules[k].name);
        if (bundle_mkdirs_for(dst, err) != 0 || copy_file(r->modules[k].path, dst, err) != 0) {
            free(dst);
            return -1;
        }
        free(dst);
    }
    return 0;
}

/* Runs the child with a deadline, collecting its output up to the cap. */
/* In the forked child: runs the bootstrap with python3 in root, its output on the pipe fd. */
static void exec_child(const char *python, const char *root, const char *bundle,
                       const struct cfw_bundle_report *r, const struct cfw_buf *names,
                       const struct cfw_buf *synced, int fd)
{
    char *home = cfw_xasprintf("HOME=%s", root);
    char *path_env = cfw_xasprintf("PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin");
    char *argv[] = {(char *)"python3",
                    (char *)"-I",
                    (char *)"-S",
                    (char *)"-B",
                    (char *)"-c",
                    (char *)bootstrap,
                    (char *)bundle,
                    (char *)r->main_module,
                    names->data ? names->data : (char *)"",
                    synced->data ? synced->data : (char *)"",
                    NULL};
    char *envp[] = {path_env, home, (char *)"LANG=C.UTF-8", NULL};

    setpgid(0, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (chdir(root) != 0) {
        _exit(126);
    }
    execve(python, argv, envp);
    _exit(127);
}

/* Reads the child's output into outb until it closes the pipe or the deadline passes (then the
 * child's process group is killed); true when the output went over outb's cap. */
static bool read_child(int fd, pid_t pid, int64_t deadline, struct cfw_buf *outb,
                       struct cfw_bundle_verdict *v)
{
    bool truncated = false;

    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - cfw_now_mono_ms();
        char buf[4096];
        ssize_t n;
        int pr;

        if (left <= 0) {
            v->timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            break;
        }
        pr = poll(&pfd, 1, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno != EINTR) {
            break;
        }
        if (pr <= 0) {
            continue;
        }
        n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (cfw_buf_append(outb, buf, (size_t)n) != 0) {
            truncated = true; /* keep draining so the child never blocks on a full pipe */
        }
    }
    return truncated;
}

/* Tracebacks name the temporary directory; show the bundle's own paths instead. */
static void hide_bundle_dir(struct cfw_bundle_verdict *v, const char *bundle)
{
    struct cfw_buf clean;
    size_t bl = strlen(bundle);

    cfw_buf_init(&clean, CFW_BUF_MAX_BUILT);
    for (const char *p = v->output; *p;) {
        const char *hit = strstr(p, bundle);
        if (hit == NULL) {
            cfw_buf_puts(&clean, p);
            break;
        }
        cfw_buf_append(&clean, p, (size_t)(hit - p));
        cfw_buf_puts(&clean, "<bundle>");
        p = hit + bl;
    }
    free(v->output);
    v->output = cfw_buf_take(&clean);
}

static int run_child(const char *python, const char *root, const char *bundle,
                     const struct cfw_bundle_report *r, int timeout_ms,
                     struct cfw_bundle_verdict *v, struct cfw_err *err)
{
    static const char truncated_note[] = "\n[output truncated]\n";
    struct cfw_buf names, synced, outb;
    int fds[2], status = 0;
    pid_t pid;
    int64_t deadline = cfw_now_mono_ms() + timeout_ms;
    bool truncated;

    cfw_buf_init(&names, CFW_BUF_MAX_BUILT);
    cfw_buf_init(&synced, CFW_BUF_MAX_BUILT);
    cfw_buf_init(&outb, CFW_BUNDLE_MAX_VERIFY_OUTPUT);
    for (size_t k = 0; k < r->n_runtime_modules; k++) {
        cfw_buf_printf(&names, "%s%s", k ? "," : "", r->runtime_modules[k]);
    }
    for (size_t k = 0; k < r->n_synced_modules; k++) {
        cfw_buf_printf(&synced, "%s%s", k ? "," : "", r->synced_modules[k]);
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        cfw_err_setc(err, errno, "pipe: %s", strerror(errno));
        cfw_buf_free(&names);
        cfw_buf_free(&synced);
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        cfw_err_setc(err, errno, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        cfw_buf_free(&names);
        cfw_buf_free(&synced);
        return -1;
    }
    if (pid == 0) {
        exec_child(python, root, bundle, r, &names, &synced, fds[1]);
    }
    setpgid(pid, pid);
    close(fds[1]);
    cfw_buf_free(&names);
    cfw_buf_free(&synced);
    truncated = read_child(fds[0], pid, deadline, &outb, v);
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (truncated) {
        outb.max += sizeof(truncated_note) - 1; /* the note goes past the cap */
        cfw_buf_puts(&outb, truncated_note);
    }
    v->ran = true;
    v->output = cfw_buf_take(&outb);
    hide_bundle_dir(v, bundle);
    if (WIFEXITED(status)) {
        v->exit_status = WEXITSTATUS(status);
        v->import_ok = !v->timed_out && v->exit_status == 0;
        if (v->exit_status == 127 || v->exit_status == 126) {
            cfw_err_setc(err, ENOEXEC, "could not run %s", python);
            return -1;
        }
    } else if (WIFSIGNALED(status)) {
        v->exit_status = -WTERMSIG(status);
    }
    return 0;
}

int cfw_bundle_verify(const struct cfw_bundle_report *r, int timeout_ms,
                      struct cfw_bundle_verdict *v, struct cfw_err *err)
{
    const char *tmpdir = getenv("TMPDIR");
    char *root, *bundle;
    int rc;

    memset(v, 0, sizeof(*v));
    v->python = find_python3();
    if (v->python == NULL) {
        cfw_err_setc(err, ENOENT,
                     "python3 not found in PATH: --verify imports the bundle with "
                     "the system python3; install it (apt-get install python3)");
        return -1;
    }
    root = cfw_xasprintf("%s/cfw-verify-XXXXXX", tmpdir && tmpdir[0] ? tmpdir : "/tmp");
    if (mkdtemp(root) == NULL) {
        cfw_err_setc(err, errno, "mkdtemp %s: %s", root, strerror(errno));
        free(root);
        return -1;
    }
    bundle = cfw_xasprintf("%s/bundle", root);
    rc = lay_out(r, bundle, err);
    if (rc == 0) {
        rc = run_child(v->python, root, bundle, r, timeout_ms, v, err);
    }
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(bundle);
    free(root);
    return rc;
}
