/* cfwatchd: command line, lifecycle, signals. The only file with main(). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "cfwatchd/app.h"
#include "cfwatchd/bundle.h"
#include "cfwatchd/cli.h"
#include "cfwatchd/config.h"
#include "cfwatchd/framer.h"
#include "cfwatchd/gzip.h"
#include "cfwatchd/incident.h"
#include "cfwatchd/log.h"
#include "cfwatchd/notify.h"
#include "cfwatchd/pipeline.h"
#include "cfwatchd/prefilter.h"
#include "cfwatchd/report.h"
#include "cfwatchd/sink.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/scanjob.h"
#include "cfwatchd/scanpart.h"
#include "cfwatchd/secrets.h"

#define READ_CHUNK (64u * 1024u)
/* the progress line of --once: shown on a terminal after this long, redrawn this often */
#define PROGRESS_AFTER_MS 2000
#define PROGRESS_EVERY_MS 250
/* --once -j: more workers than this is a typo, not a machine */
#define JOBS_MAX 256
/*
 * --once -j: the cap of a worker's message, the records of one input. Only the input bounds it
 * (a record per match, each up to the framer's max_json), so this is a ceiling, not a budget: an
 * input whose records pass it is given back (the worker exits WORKER_GAVE_BACK without sending
 * them) and scanned by the main process, when it is a regular file; stdin or a pipe cannot be
 * read again, so its matches are left out (said; exit status 2). CFW_JOB_MSG_MAX (bytes) lowers
 * the cap, for the tests.
 */
#define JOB_MSG_MAX ((size_t)1 << 30)
#define WORKER_GAVE_BACK 4
/*
 * --once -j: a worker writes its records to a spill file of its own (unlinked, made by the main
 * process before the fork) a chunk at a time, and the main process replays them from there a
 * chunk at a time: the memory of neither grows with the matches of a large input. Without the
 * file (it could not be made) the records travel on the pipe, in memory.
 */
#define SPILL_CHUNK ((size_t)1 << 20)
static size_t job_msg_max = JOB_MSG_MAX;
/*
 * --once -j: a regular file of at least two parts of this size is scanned in parts, up to one
 * per worker (scanpart.h), when its lines end in LF and it is not gzip or JSON-only.
 * CFW_PART_MIN (bytes) lowers it, for the tests.
 */
#define PART_MIN ((uint64_t)16 << 20)

enum mode { MODE_DAEMON, MODE_ONCE, MODE_CHECK_CONFIG, MODE_TEST_ALERT };

struct options {
    enum mode mode;
    const char *config;
    enum cfw_report_format format;
    enum cfw_severity fail_on;
    bool fail_never;
    char **rule_files;
    size_t nrule_files;
    bool no_builtin;
    enum cfw_input_format input_format;
    bool notify;
    int64_t notify_timeout_ms;
    const char *state_dir;
    bool no_color;
    const char *test_alert;
    enum cfw_log_level log_level;
    bool log_level_set;
    enum cfw_scan scan;
    bool scan_set;
    long jobs; /* --once -j: worker processes; 0: one per online CPU */
    char **inputs;
    size_t ninputs;
};

enum {
    OPT_ONCE = 256,
    OPT_FORMAT,
    OPT_FAIL_ON,
    OPT_RULES,
    OPT_NO_BUILTIN,
    OPT_INPUT_FORMAT,
    OPT_NOTIFY,
    OPT_NOTIFY_TIMEOUT,
    OPT_STATE_DIR,
    OPT_NO_COLOR,
    OPT_CHECK_CONFIG,
    OPT_TEST_ALERT,
    OPT_LOG_LEVEL,
    OPT_SCAN,
    OPT_VERSION,
};

static const struct option long_opts[] = {
    {"once", no_argument, NULL, OPT_ONCE},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"fail-on", required_argument, NULL, OPT_FAIL_ON},
    {"rules", required_argument, NULL, OPT_RULES},
    {"no-builtin", no_argument, NULL, OPT_NO_BUILTIN},
    {"input-format", required_argument, NULL, OPT_INPUT_FORMAT},
    {"config", required_argument, NULL, 'c'},
    {"notify", no_argument, NULL, OPT_NOTIFY},
    {"notify-timeout", required_argument, NULL, OPT_NOTIFY_TIMEOUT},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"no-color", no_argument, NULL, OPT_NO_COLOR},
    {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
    {"test-alert", required_argument, NULL, OPT_TEST_ALERT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"scan", required_argument, NULL, OPT_SCAN},
    {"jobs", required_argument, NULL, 'j'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "usage: cfwatchd [-c FILE] [--log-level LEVEL]      run the daemon (foreground)\n"
        "       cfwatchd --once [options] [FILE|DIR|-]...    scan logs, print incidents\n"
        "       cfwatchd --check-config [-c FILE]           validate the configuration\n"
        "       cfwatchd --test-alert SINK [-c FILE]        send a test notification\n"
        "       cfwatchd --check-bundle [DIR] [options]     check a Python Worker before deploy\n"
        "       cfwatchd incidents | silence add|edit|list|expire | ack KEY  on call, through the\n"
        "                                                   daemon's API (see cfwatchd(8))\n"
        "       cfwatchd --version | --help\n"
        "\n"
        "Watches Cloudflare Python Workers deploy and runtime logs (wrangler output, CI logs,\n"
        "wrangler tail JSON, Logpush, Workers Builds) for failures such as\n"
        "\"ModuleNotFoundError: No module named 'src'\", folds repeats into incidents with a\n"
        "cause and a fix, and alerts.\n"
        "\n"
        "Options:\n"
        "  -c, --config FILE      configuration file (daemon default %s;\n"
        "                         --once uses none unless given)\n"
        "  --once                 scan FILEs ('-' or none: standard input) and exit:\n"
        "                         0 nothing at or above --fail-on, 1 incidents, 2 errors.\n"
        "                         gzip input is decompressed (every member); a DIR is\n"
        "                         every file under it, sorted by path, dotfiles skipped\n"
        "  --format FMT           report format: text (default), json, github\n"
        "  --fail-on SEVERITY     exit 1 threshold: critical, error, warning (default),\n"
        "                         info, or none (a deploy failure that a later successful\n"
        "                         deploy in the same scan fixed is reported, not counted)\n"
        "  --rules FILE           add a rules file (repeatable)\n"
        "  --no-builtin           leave the built-in python-workers rule pack out\n"
        "  --input-format FMT     auto (default), lines, json, wrangler-log\n"
        "  --scan MODE            fast (default): decode only the records that hold a\n"
        "                         rule's literal; full: decode every record (the slow\n"
        "                         reference; same incidents)\n"
        "  -j, --jobs N           scan up to N input files at once in worker processes\n"
        "                         (default: the number of CPUs), a file of 32 MiB or more\n"
        "                         in parts; the report is the same as a scan of the files\n"
        "                         one after the other, each in one piece (-j 1)\n"
        "  --notify               with --once: also deliver incidents through the sinks\n"
        "                         configured in -c FILE; exit 2 if one is not delivered\n"
        "  --notify-timeout DUR   how long --notify and --test-alert wait for receivers\n"
        "                         (default 60s; e.g. 30s, 2m)\n"
        "  --state-dir DIR        with --once --notify: keep the outbox spool in DIR, so that\n"
        "                         a later run delivers what this one could not (default: a\n"
        "                         private temporary directory, removed when empty)\n"
        "  --no-color             no colour in the text report (also NO_COLOR=1;\n"
        "                         colour is only used on a terminal)\n"
        "  --check-config         validate the configuration, print a summary, exit 0 or 2\n"
        "  --test-alert SINK      send one clearly marked test notification through SINK\n"
        "  --check-bundle [DIR]   check a Python Worker project (see --check-bundle --help)\n"
        "  --log-level LEVEL      error, warning, notice (default), info, debug\n"
        "  --version              print the version\n"
        "  -h, --help             print this help\n",
        CFW_CONFIG_DEFAULT_PATH);
}

static int parse_severity_opt(const char *s, struct options *o)
{
    if (strcmp(s, "none") == 0) {
        o->fail_never = true;
        return 0;
    }
    return cfw_severity_parse(s, &o->fail_on);
}

/* --jobs: a number from 1 to JOBS_MAX. */
static int parse_jobs(const char *arg, struct options *o)
{
    char *end = NULL;

    errno = 0;
    o->jobs = strtol(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || o->jobs < 1 || o->jobs > JOBS_MAX) {
        fprintf(stderr, "cfwatchd: --jobs: '%s' is not a number from 1 to %d\n", arg, JOBS_MAX);
        return -1;
    }
    return 0;
}

/* --log-level: error, warning, notice, info or debug. */
static int parse_log_level(const char *arg, struct options *o)
{
    o->log_level_set = true;
    if (cfw_log_parse_level(arg, &o->log_level) != 0) {
        fprintf(stderr,
                "cfwatchd: --log-level: unknown level '%s' (error, warning, notice, info, "
                "debug)\n",
                arg);
        return -1;
    }
    return 0;
}

static int args_check(int argc, char **argv, struct options *o);

/* The defaults of the options (rule_files has room for every argument). */
static void options_init(struct options *o, int argc)
{
    o->mode = MODE_DAEMON;
    o->fail_on = CFW_SEV_WARNING;
    o->notify_timeout_ms = 60 * 1000;
    o->log_level = CFW_LOG_NOTICE;
    o->rule_files = cfw_xcalloc((size_t)argc + 1, sizeof(char *));
}

static int parse_args(int argc, char **argv, struct options *o)
{
    int c;

    options_init(o, argc);
    while ((c = getopt_long(argc, argv, "c:hj:", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_ONCE:
            o->mode = MODE_ONCE;
            break;
        case OPT_FORMAT:
            if (cfw_report_format_parse(optarg, &o->format) != 0) {
                fprintf(stderr, "cfwatchd: --format: unknown format '%s' (text, json, github)\n",
                        optarg);
                return -1;
            }
            break;
        case OPT_FAIL_ON:
            if (parse_severity_opt(optarg, o) != 0) {
                fprintf(stderr,
                        "cfwatchd: --fail-on: unknown severity '%s' (critical, error, warning, "
                        "info, none)\n",
                        optarg);
                return -1;
            }
            break;
        case OPT_RULES:
            o->rule_files[o->nrule_files++] = optarg;
            break;
        case OPT_NO_BUILTIN:
            o->no_builtin = true;
            break;
        case OPT_INPUT_FORMAT:
            if (cfw_input_format_parse(optarg, &o->input_format) != 0) {
                fprintf(stderr,
                        "cfwatchd: --input-format: unknown format '%s' (auto, lines, json, "
                        "wrangler-log)\n",
                        optarg);
                return -1;
            }
            break;
        case 'c':
            o->config = optarg;
            break;
        case OPT_NOTIFY:
            o->notify = true;
            break;
        case OPT_STATE_DIR:
            o->state_dir = optarg;
            break;
        case OPT_NOTIFY_TIMEOUT:
            if (cfw_parse_duration_ms(optarg, &o->notify_timeout_ms) != 0 ||
                o->notify_timeout_ms <= 0) {
                fprintf(stderr, "cfwatchd: --notify-timeout: '%s' is not a duration (e.g. 30s)\n",
                        optarg);
                return -1;
            }
            break;
        case OPT_NO_COLOR:
            o->no_color = true;
            break;
        case OPT_CHECK_CONFIG:
            o->mode = MODE_CHECK_CONFIG;
            break;
        case OPT_TEST_ALERT:
            o->mode = MODE_TEST_ALERT;
            o->test_alert = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (parse_log_level(optarg, o) != 0) {
                return -1;
            }
            break;
        case OPT_SCAN:
            o->scan_set = true;
            if (cfw_scan_parse(optarg, &o->scan) != 0) {
                fprintf(stderr, "cfwatchd: --scan: unknown mode '%s' (fast, full)\n", optarg);
                return -1;
            }
            break;
        case 'j':
            if (parse_jobs(optarg, o) != 0) {
                return -1;
            }
            break;
        case OPT_VERSION:
            printf("cfwatchd %s\n", CFW_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "Try 'cfwatchd --help'.\n");
            return -1;
        }
    }
    return args_check(argc, argv, o);
}

/* The inputs (after the options) and which options go together. */
static int args_check(int argc, char **argv, struct options *o)
{
    o->inputs = argv + optind;
    o->ninputs = (size_t)(argc - optind);
    if (o->mode != MODE_ONCE && o->ninputs > 0) {
        fprintf(stderr, "cfwatchd: unexpected argument '%s' (input files go with --once)\n",
                o->inputs[0]);
        return -1;
    }
    if (o->notify && o->mode != MODE_ONCE) {
        fprintf(stderr, "cfwatchd: --notify goes with --once\n");
        return -1;
    }
    if (o->jobs > 0 && o->mode != MODE_ONCE) {
        fprintf(stderr, "cfwatchd: --jobs goes with --once\n");
        return -1;
    }
    return 0;
}

/* Loads the configuration (or an empty one) and the rules; prints every error. */
static int load_config(const struct options *o, const char *path, struct cfw_config **cfgp,
                       struct cfw_ruleset **rsp)
{
    struct cfw_diag diag = {0};
    enum cfw_app_check check =
        o->mode == MODE_CHECK_CONFIG ? CFW_APP_CHECK_ALL : CFW_APP_CHECK_QUIET;

    if (cfw_app_load(path, o->rule_files, o->no_builtin, check, cfgp, rsp, &diag) != 0) {
        cfw_diag_print(&diag, stderr);
        fprintf(stderr, "cfwatchd: %zu configuration error%s\n", diag.n, diag.n == 1 ? "" : "s");
        cfw_diag_free(&diag);
        return -1;
    }
    cfw_diag_free(&diag);
    if (o->scan_set) {
        cfw_ruleset_set_scan(*rsp, o->scan);
    }
    return 0;
}

/* The inputs of a --once run, in scan order: paths, "-" for standard input. */
struct input {
    char *path;
    uint64_t size; /* bytes on disk when known, for the progress line */
};

struct inputs {
    struct input *v;
    size_t n;
    size_t cap;
};

static void inputs_add(struct inputs *l, const char *path, uint64_t size)
{
    if (l->n == l->cap) {
        l->cap = l->cap != 0 ? l->cap * 2 : 16;
        l->v = cfw_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n].path = cfw_xstrdup(path);
    l->v[l->n].size = size;
    l->n++;
}

static void inputs_free(struct inputs *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
    }
    free(l->v);
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(((const struct input *)a)->path, ((const struct input *)b)->path);
}

/*
 * Adds the files under dir: regular files and symbolic links to regular files, in every
 * subdirectory; names starting with '.' (hidden files, .git) are left out, and so are links to
 * directories (no loops), FIFOs, sockets and devices. Returns -1 after printing why a directory
 * could not be read (what could be read is kept).
 */
static int walk_dir(const char *dir, struct inputs *l)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t dlen = strlen(dir);
    const char *sep = dlen > 0 && dir[dlen - 1] == '/' ? "" : "/";
    int rc = 0;

    if (d == NULL) {
        fprintf(stderr, "cfwatchd: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (;;) {
        struct stat lst, st;
        char *path;

        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                fprintf(stderr, "cfwatchd: %s: %s\n", dir, strerror(errno));
                rc = -1;
            }
            break;
        }
        if (de->d_name[0] == '.') {
            continue;
        }
        path = cfw_xasprintf("%s%s%s", dir, sep, de->d_name);
        if (lstat(path, &lst) != 0) {
            fprintf(stderr, "cfwatchd: %s: %s\n", path, strerror(errno));
            rc = -1;
        } else if (S_ISDIR(lst.st_mode)) {
            if (walk_dir(path, l) != 0) {
                rc = -1;
            }
        } else if (S_ISREG(lst.st_mode)) {
            inputs_add(l, path, (uint64_t)lst.st_size);
        } else if (S_ISLNK(lst.st_mode) && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            inputs_add(l, path, (uint64_t)st.st_size);
        }
        free(path);
    }
    closedir(d);
    return rc;
}

/*
 * Expands the command line into inputs: a directory gives every file under it (walk_dir),
 * sorted by path; anything else is kept as given and opened when its turn comes. Returns -1
 * after printing an error (an unreadable or empty directory); the other inputs are kept.
 */
static int expand_inputs(char **args, size_t nargs, struct inputs *l)
{
    int rc = 0;

    if (nargs == 0) {
        inputs_add(l, "-", 0);
    }
    for (size_t i = 0; i < nargs; i++) {
        struct stat st;
        size_t first = l->n;
        bool known = strcmp(args[i], "-") != 0 && stat(args[i], &st) == 0;

        if (!known || !S_ISDIR(st.st_mode)) {
            inputs_add(l, args[i], known && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
            continue;
        }
        if (walk_dir(args[i], l) != 0) {
            rc = -1;
        } else if (l->n == first) {
            fprintf(stderr,
                    "cfwatchd: %s: a directory with no file to scan (hidden files and "
                    "special files are skipped)\n",
                    args[i]);
            rc = -1;
        }
        if (l->n - first > 1) {
            qsort(l->v + first, l->n - first, sizeof(*l->v), cmp_path);
        }
    }
    return rc;
}

/* A progress line on standard error while a long scan runs, when that is a terminal. */
struct progress {
    bool tty;
    bool shown;
    int64_t start_ms;
    int64_t last_ms;
    size_t index; /* the input being read, 0-based */
    size_t count;
    bool has_stdin;
    uint64_t done;  /* bytes read so far, all inputs */
    uint64_t total; /* bytes on disk of all inputs (0 when stdin is one of them) */
};

static void human_bytes(uint64_t n, char *out, size_t outlen)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    size_t u = 0;

    while (v >= 1000.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000.0;
        u++;
    }
    if (u == 0) {
        snprintf(out, outlen, "%llu B", (unsigned long long)n);
    } else {
        snprintf(out, outlen, "%.1f %s", v, units[u]);
    }
}

static void progress_clear(struct progress *pg)
{
    if (pg->shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        pg->shown = false;
    }
}

/* Counts n more bytes read; redraws the line when due. */
static void progress_add(struct progress *pg, size_t n)
{
    char done[32], total[32], rate[32];
    int64_t now, ms;

    pg->done += n;
    if (!pg->tty) {
        return;
    }
    now = cfw_now_mono_ms();
    ms = now - pg->start_ms;
    if (ms < PROGRESS_AFTER_MS || now - pg->last_ms < PROGRESS_EVERY_MS) {
        return;
    }
    pg->last_ms = now;
    human_bytes(pg->done, done, sizeof(done));
    human_bytes((uint64_t)((double)pg->done * 1000.0 / (double)ms), rate, sizeof(rate));
    if (pg->has_stdin || pg->total == 0) {
        fprintf(stderr, "\rcfwatchd: scanning %zu/%zu inputs, %s read, %s/s\033[K", pg->index + 1,
                pg->count, done, rate);
    } else {
        human_bytes(pg->total, total, sizeof(total));
        fprintf(stderr, "\rcfwatchd: scanning %zu/%zu files, %s of %s, %s/s\033[K", pg->index + 1,
                pg->count, done, total, rate);
    }
    fflush(stderr);
    pg->shown = true;
}

/* What a scan shares across its inputs. */
struct scan {
    struct cfw_pipeline *p;
    enum cfw_input_format fmt;
    struct progress pg;
    char *buf;
};

static int feed_pipeline(void *arg, const char *buf, size_t len, struct cfw_err *err)
{
    (void)err;
    cfw_pipeline_input_feed(arg, buf, len);
    return 0;
}

/*
 * Reads one input to its end through the pipeline; returns 0, or -1 after printing why. An
 * input that begins with the gzip magic bytes is decompressed as it is read (every member);
 * what came before a corrupt or truncated point is still fed, so it is reported.
 */
static int scan_input(struct scan *sc, const char *path)
{
    struct cfw_framer_opts fopts = {.format = sc->fmt};
    struct cfw_pipeline_input *in;
    struct cfw_gzip *gz = NULL;
    struct cfw_err err = {0};
    const char *name = path;
    bool decided = false;
    size_t held = 0;
    struct stat st;
    int fd;
    int rc = 0;

    if (strcmp(path, "-") == 0) {
        fd = STDIN_FILENO;
        name = CFW_REPORT_STDIN;
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            progress_clear(&sc->pg);
            fprintf(stderr, "cfwatchd: %s: %s\n", path, strerror(errno));
            return -1;
        }
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
            progress_clear(&sc->pg);
            fprintf(stderr, "cfwatchd: %s: is a directory\n", path);
            close(fd);
            return -1;
        }
    }
    in = cfw_pipeline_input_new(sc->p, name, NULL, &fopts);
    for (;;) {
        ssize_t n = read(fd, sc->buf + held, READ_CHUNK - held);
        size_t len;

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            progress_clear(&sc->pg);
            fprintf(stderr, "cfwatchd: %s: read error: %s (what was read is reported)\n", name,
                    strerror(errno));
            rc = -1;
            break;
        }
        progress_add(&sc->pg, (size_t)n);
        len = (size_t)n;
        if (!decided) {
            /* the first two bytes say whether it is gzip (a pipe may give them one at a time) */
            held += (size_t)n;
            if (n > 0 && held < 2) {
                continue;
            }
            decided = true;
            len = held;
            held = 0;
            if (cfw_gzip_magic(sc->buf, len)) {
                gz = cfw_gzip_new(feed_pipeline, in, &err);
                if (gz == NULL) {
                    rc = -1;
                    break;
                }
            }
        }
        if (len > 0 && gz != NULL && cfw_gzip_feed(gz, sc->buf, len, &err) != 0) {
            rc = -1;
            break;
        }
        if (len > 0 && gz == NULL) {
            cfw_pipeline_input_feed(in, sc->buf, len);
        }
        if (n == 0) {
            if (gz != NULL && cfw_gzip_finish(gz, &err) != 0) {
                rc = -1;
            }
            break;
        }
    }
    if (rc != 0 && err.msg[0] != '\0') {
        progress_clear(&sc->pg);
        fprintf(stderr, "cfwatchd: %s: %s; what came before it is reported\n", name, err.msg);
    }
    cfw_gzip_free(gz);
    cfw_pipeline_input_free(in);
    if (fd != STDIN_FILENO) {
        close(fd);
    }
    return rc;
}

/* total += after - before, field by field: one input's share of a pipeline's counters. */
static void stats_add_delta(struct cfw_pipeline_stats *total,
                            const struct cfw_pipeline_stats *after,
                            const struct cfw_pipeline_stats *before)
{
    total->inputs += after->inputs - before->inputs;
    total->bytes += after->bytes - before->bytes;
    total->lines += after->lines - before->lines;
    total->records += after->records - before->records;
    total->decoded += after->decoded - before->decoded;
    total->events += after->events - before->events;
    total->matches += after->matches - before->matches;
    total->long_lines += after->long_lines - before->long_lines;
    total->garbage_bytes += after->garbage_bytes - before->garbage_bytes;
    total->json_errors += after->json_errors - before->json_errors;
    /* a cumulative count in one pipeline: the shares of the workers add up to it */
    total->json_invalid += after->json_invalid - before->json_invalid;
    total->nul_bytes += after->nul_bytes - before->nul_bytes;
}

/*
 * --once -j N: N forked workers take the inputs in turn (the next index from a counter they
 * share) and scan each through a pipeline of their own whose tap records, instead of counting
 * incidents, what the matcher found (scanjob.h). For each input a worker sends one message on
 * its pipe: a job_head and the records. The parent replays the inputs' records into its one
 * incident set strictly in input order, as soon as every earlier input is in, so the report is
 * the one a serial scan makes: same incidents, counts, first and last positions, samples,
 * successes that resolve earlier failures. Processes, not threads: the framer, decoder,
 * prefilter and matcher keep per-pipeline and per-ruleset state (PCRE2 match data, the
 * exception count of a record) that a forked copy owns outright, with no lock and no change
 * to them.
 */
struct job_head {
    uint64_t index;
    int64_t rc; /* scan_input's; a part's: cfw_part_scan's */
    struct cfw_pipeline_stats stats;
    struct cfw_part_result part; /* a part's end (scanpart.h) */
    uint64_t len;                /* bytes of records that follow */
    uint64_t spill_off;          /* or, when spilled, where they are in the worker's file */
    uint64_t spill_len;
};

struct job_result {
    bool done;
    bool here; /* scanned by the main process, straight into the incidents: nothing to replay */
    int64_t rc;
    struct cfw_pipeline_stats stats;
    struct cfw_part_result part;
    char *data;
    size_t len;
    int spill; /* the records are in this file at spill_off (-1: in data) */
    uint64_t spill_off;
    uint64_t spill_len;
};

/* What a worker is given: an input, or a part of one (a large file split, scanpart.h). */
struct job {
    size_t input;
    unsigned part, parts; /* parts 1: the whole input */
    struct cfw_part pt;
    int fd; /* a split file's, opened once for all its parts (-1: none) */
};

struct jobs {
    struct job *v;
    size_t n;
};

struct worker_tap {
    struct cfw_buf buf;
    const struct cfw_ruleset *rs;
    bool full; /* a record did not fit under JOB_MSG_MAX: the input goes back to the parent */
    /* the parent's pipeline, forked with it: kept (not freed, not lost) until the worker exits */
    struct cfw_pipeline *parents;
    int spill;          /* the worker's spill file, or -1 */
    uint64_t spill_off; /* its end */
    uint64_t job_start; /* where the current job's records start in it */
    size_t cap;         /* of one job's records, spilled or not */
};

/* Writes all of buf to fd, at offset off (pwrite), or where fd stands when off is negative. */
static int write_all(int fd, const void *buf, size_t n, int64_t off)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w = off < 0 ? write(fd, p, n) : pwrite(fd, p, n, (off_t)off);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += off < 0 ? 0 : w;
    }
    return 0;
}

/*
 * A worker's spill file: made in $TMPDIR (else /tmp) and unlinked at once, so that it goes
 * with the last descriptor; -1 when it cannot be made (the records then travel in memory).
 */
static int spill_open(void)
{
    const char *dir = getenv("TMPDIR");
    char path[PATH_MAX];
    int fd;

    if (snprintf(path, sizeof(path), "%s/cfwatchd-spill-XXXXXX",
                 dir != NULL && dir[0] != '\0' ? dir : "/tmp") >= (int)sizeof(path)) {
        return -1;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) {
        unlink(path);
    }
    return fd;
}

/* Moves the records held to the spill file (all of them, or once a chunk is full). */
static void tap_spill(struct worker_tap *w, bool all)
{
    if (w->spill < 0 || w->buf.len == 0 || (!all && w->buf.len < SPILL_CHUNK)) {
        return;
    }
    if (w->spill_off - w->job_start + w->buf.len > w->cap ||
        write_all(w->spill, w->buf.data, w->buf.len, (int64_t)w->spill_off) != 0) {
        w->full = true; /* over the cap, or the disk is full: given back, as over the cap */
    } else {
        w->spill_off += w->buf.len;
    }
    cfw_buf_reset(&w->buf);
}

static void tap_observe(const struct cfw_match *m, const struct cfw_event *ev, void *arg)
{
    struct worker_tap *w = arg;

    /* the worker's rules are the parent's (a forked copy): a rule is always found */
    if (cfw_scanjob_put_observe(&w->buf, w->rs, m, ev) != 0) {
        w->full = true;
    }
    tap_spill(w, false);
}

static void tap_succeed(const char *script, const char *input, const char *line, uint64_t lineno,
                        void *arg)
{
    struct worker_tap *w = arg;

    if (cfw_scanjob_put_succeed(&w->buf, script, input, line, lineno) != 0) {
        w->full = true;
    }
    tap_spill(w, false);
}

/* Whether path can be read again from its start (a regular file); stdin and pipes cannot. */
static bool rescannable(const char *path)
{
    struct stat st;

    return strcmp(path, "-") != 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Ends a worker with status, what it holds freed (memcheck counts the leaks of an exit). */
static _Noreturn void worker_end(struct worker_tap *wt, struct cfw_pipeline *p, int status)
{
    cfw_buf_free(&wt->buf);
    cfw_pipeline_free(p);
    /* _exit: the parent's stdio buffers, atexit handlers and leak check are the parent's */
    _exit(status);
}

static void part_progress(size_t n, void *arg)
{
    progress_add(arg, n);
}

/*
 * Scans part pt of the file open on fd (named path) through sc->p: cfw_part_scan's result.
 * Errors are not printed: the main process scans again what a worker's part could not give,
 * and says what fails then.
 */
static int scan_part(struct scan *sc, struct cfw_ruleset *rs, const char *path, int fd,
                     const struct cfw_part *pt, struct cfw_part_result *res)
{
    struct cfw_framer_opts fopts = {.format = sc->fmt};
    struct cfw_err err = {0};

    return cfw_part_scan(sc->p, rs, fd, path, &fopts, pt, res, sc->pg.tty ? part_progress : NULL,
                         &sc->pg, &err);
}

/* A worker: scans jobs until none is left, one message per job on fd; never returns. */
static _Noreturn void job_worker(struct scan *sc, const struct inputs *l, const struct jobs *jl,
                                 atomic_size_t *next, struct cfw_ruleset *rs, int fd, int spill)
{
    struct worker_tap wt = {.buf = CFW_BUF_INIT(job_msg_max),
                            .rs = rs,
                            .parents = sc->p,
                            .spill = spill,
                            .cap = job_msg_max};
    struct cfw_pipeline_tap tap = {tap_observe, tap_succeed, &wt};
    struct cfw_pipeline *p = cfw_pipeline_new(rs, NULL, NULL);

    cfw_pipeline_set_tap(p, &tap);
    sc->p = p;
    sc->pg.tty = false; /* the parent draws the progress line */
    for (;;) {
        size_t i = atomic_fetch_add(next, 1);
        struct cfw_pipeline_stats before = *cfw_pipeline_stats(p);
        struct job_head h = {.index = i};
        const struct job *j;

        if (i >= jl->n) {
            break;
        }
        j = &jl->v[i];
        h.rc = j->parts > 1 ? scan_part(sc, rs, l->v[j->input].path, j->fd, &j->pt, &h.part)
                            : scan_input(sc, l->v[j->input].path);
        tap_spill(&wt, true);
        if (wt.full && rescannable(l->v[j->input].path)) {
            /* nothing sent for input i: the parent scans it itself, in its turn */
            fprintf(stderr,
                    "cfwatchd: %s: its matches passed what a scan worker sends (%zu bytes): it "
                    "is scanned by the main process\n",
                    l->v[j->input].path, job_msg_max);
            worker_end(&wt, p, WORKER_GAVE_BACK);
        }
        if (wt.full) {
            /* read once and gone (stdin, a pipe): its matches cannot be sent, say so */
            fprintf(stderr,
                    "cfwatchd: %s: its matches passed what a scan worker sends (%zu bytes) and "
                    "it cannot be read again: they are left out (scan it without -j)\n",
                    l->v[j->input].path, job_msg_max);
            h.rc = -1;
            cfw_buf_reset(&wt.buf);
            wt.spill_off = wt.job_start;
            wt.full = false;
        }
        stats_add_delta(&h.stats, cfw_pipeline_stats(p), &before);
        h.spill_off = wt.job_start;
        h.spill_len = wt.spill_off - wt.job_start;
        wt.job_start = wt.spill_off;
        h.len = wt.buf.len;
        if (write_all(fd, &h, sizeof(h), -1) != 0 ||
            (wt.buf.len > 0 && write_all(fd, wt.buf.data, wt.buf.len, -1) != 0)) {
            _exit(3);
        }
        cfw_buf_reset(&wt.buf);
    }
    worker_end(&wt, p, 0);
}

/*
 * Takes every whole message out of in into res (records spilled to the file spill stay there);
 * -1 after printing why on a bad message.
 */
static int take_messages(struct cfw_buf *in, int spill, struct job_result *res, size_t n)
{
    size_t off = 0;
    int rc = 0;

    while (in->len - off >= sizeof(struct job_head)) {
        struct job_head h;
        struct job_result *r;

        memcpy(&h, in->data + off, sizeof(h));
        if (h.index >= n || res[h.index].done || h.len > SIZE_MAX - sizeof(h)) {
            fprintf(stderr, "cfwatchd: a scan worker sent a message for no input it was given\n");
            rc = -1;
            off = in->len;
            break;
        }
        if (in->len - off - sizeof(h) < h.len) {
            break;
        }
        r = &res[h.index];
        r->done = true;
        r->rc = h.rc;
        r->stats = h.stats;
        r->part = h.part;
        r->spill = h.spill_len > 0 ? spill : -1;
        r->spill_off = h.spill_off;
        r->spill_len = h.spill_len;
        r->len = (size_t)h.len;
        r->data = cfw_xmalloc(r->len + 1);
        memcpy(r->data, in->data + off + sizeof(h), r->len);
        off += sizeof(h) + r->len;
    }
    if (off > 0) {
        memmove(in->data, in->data + off, in->len - off);
        in->len -= off;
    }
    return rc;
}

/* Reports how a worker ended when that was not a clean exit; returns true if it was not. */
static bool worker_failed(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return true;
        }
    }
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "cfwatchd: a scan worker was killed by signal %d\n", WTERMSIG(st));
        return true;
    }
    if (WEXITSTATUS(st) == WORKER_GAVE_BACK) {
        return false; /* it said which input it gave back */
    }
    if (WEXITSTATUS(st) != 0) {
        fprintf(stderr, "cfwatchd: a scan worker exited with status %d\n", WEXITSTATUS(st));
        return true;
    }
    return false;
}

/*
 * Replays a worker's records for a job: from memory, or from its spill file a chunk of whole
 * records at a time (one record may be larger than a chunk: the buffer grows to hold it).
 */
static int replay_result(const struct job_result *r, struct cfw_ruleset *rs,
                         struct cfw_incidents *set, const struct cfw_scanjob_shift *sh,
                         struct cfw_err *err)
{
    uint64_t off = r->spill_off, left = r->spill_len;
    size_t cap = SPILL_CHUNK, have = 0;
    char *buf;
    int rc = 0;

    if (r->spill < 0) {
        return cfw_scanjob_replay(r->data, r->len, rs, set, sh, err);
    }
    buf = cfw_xmalloc(cap);
    while (rc == 0 && (left > 0 || have > 0)) {
        size_t want = cap - have < left ? cap - have : (size_t)left;
        ssize_t got = want > 0 ? pread(r->spill, buf + have, want, (off_t)off) : 0;
        size_t need, whole;

        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0 || (got == 0 && left > 0)) {
            cfw_err_set(err, "a worker's spill file could not be read back: %s",
                        got < 0 ? strerror(errno) : "it is shorter than said");
            rc = -1;
            break;
        }
        have += (size_t)got;
        off += (uint64_t)got;
        left -= (uint64_t)got;
        whole = cfw_scanjob_whole(buf, have, &need);
        if (whole == 0) {
            if (left == 0) {
                cfw_err_set(err, "a worker's record is cut short");
                rc = -1;
            } else if (need > cap) {
                cap = need;
                buf = cfw_xrealloc(buf, cap);
            }
            continue;
        }
        rc = cfw_scanjob_replay(buf, whole, rs, set, sh, err);
        memmove(buf, buf + whole, have - whole);
        have -= whole;
    }
    free(buf);
    return rc;
}

/*
 * Folds input i into set and its counters into total: a worker's records when it sent them,
 * else (its worker died, or none could start) the input scanned here, through the main
 * pipeline, in its turn all the same. Returns true on an input error.
 */
static bool fold_input(struct scan *sc, const struct inputs *l, size_t i, struct job_result *r,
                       struct cfw_ruleset *rs, struct cfw_incidents *set,
                       struct cfw_pipeline_stats *total)
{
    struct cfw_pipeline_stats before;
    struct cfw_err err = {0};
    bool input_error = false;

    if (!r->done) {
        before = *cfw_pipeline_stats(sc->p);
        input_error = scan_input(sc, l->v[i].path) != 0;
        stats_add_delta(total, cfw_pipeline_stats(sc->p), &before);
    } else {
        if (replay_result(r, rs, set, NULL, &err) != 0) {
            progress_clear(&sc->pg);
            fprintf(stderr, "cfwatchd: %s: %s\n", l->v[i].path, err.msg);
            input_error = true;
        }
        stats_add_delta(total, &r->stats, &(struct cfw_pipeline_stats){0});
        input_error |= r->rc != 0;
        progress_add(&sc->pg, (size_t)l->v[i].size);
    }
    sc->pg.index = i + 1 < l->n ? i + 1 : i;
    free(r->data);
    r->data = NULL;
    return input_error;
}

/*
 * Where the folding of a file's parts stands (scanpart.h). A part's framer frames the file as a
 * scan in one piece does from where the parts before it stopped: its records up to `covered`
 * were framed by one of them, and are left out.
 */
struct split {
    uint64_t base;                   /* lines of the file before the part */
    uint64_t covered;                /* lines of the file the parts folded so far framed */
    struct cfw_pipeline_stats stats; /* their counters, as folded into the total */
    bool taken_over;                 /* the file was scanned here: the parts are done with */
};

/*
 * A part that did not come (its worker died or gave it back, or a read failed): the file is
 * scanned here in one piece, through a pipeline of its own whose records past those the parts
 * folded so far are replayed, and its counters replace theirs. Returns true on an input error.
 */
static bool scan_rest(struct scan *sc, const char *path, int fd, struct split *sp,
                      struct cfw_ruleset *rs, struct cfw_incidents *set,
                      struct cfw_pipeline_stats *total)
{
    struct worker_tap wt = {
        .buf = CFW_BUF_INIT(JOB_MSG_MAX), .rs = rs, .spill = spill_open(), .cap = JOB_MSG_MAX};
    struct cfw_pipeline_tap tap = {tap_observe, tap_succeed, &wt};
    struct cfw_part pt = {.from = 0, .to = UINT64_MAX, .limit = UINT64_MAX};
    struct cfw_scanjob_shift sh = {sp->covered, 0};
    struct job_result held;
    int rc;
    struct cfw_pipeline *main_p = sc->p;
    struct cfw_part_result res;
    struct cfw_err err = {0};
    bool input_error = false;

    sc->p = cfw_pipeline_new(rs, NULL, NULL);
    cfw_pipeline_set_tap(sc->p, &tap);
    rc = scan_part(sc, rs, path, fd, &pt, &res);
    tap_spill(&wt, true); /* all of it in the file, or all of it in memory */
    if (rc != 0 || wt.full) {
        progress_clear(&sc->pg);
        fprintf(stderr, "cfwatchd: %s: %s; what came before it is reported\n", path,
                wt.full ? "its matches are too many to hold" : "read error");
        input_error = true;
    }
    held = (struct job_result){.data = wt.buf.data,
                               .len = wt.buf.len,
                               .spill = wt.spill_off > 0 ? wt.spill : -1,
                               .spill_len = wt.spill_off};
    if (replay_result(&held, rs, set, &sh, &err) != 0) {
        progress_clear(&sc->pg);
        fprintf(stderr, "cfwatchd: %s: %s\n", path, err.msg);
        input_error = true;
    }
    stats_add_delta(total, cfw_pipeline_stats(sc->p), &sp->stats);
    cfw_pipeline_free(sc->p);
    sc->p = main_p;
    cfw_buf_free(&wt.buf);
    if (wt.spill >= 0) {
        close(wt.spill);
    }
    sp->taken_over = true;
    return input_error;
}

/*
 * Folds part j of a file: its records replayed in their place in the file, its counters less
 * those of the next part's lines it framed itself (the file's parts count as one input); a part
 * that did not come, the file scanned here. Returns true on an input error.
 */
static bool fold_part(struct scan *sc, const struct inputs *l, const struct job *j,
                      struct job_result *r, struct cfw_ruleset *rs, struct cfw_incidents *set,
                      struct cfw_pipeline_stats *total, struct split *sp)
{
    const char *path = l->v[j->input].path;
    struct cfw_pipeline_stats part = {0};
    struct cfw_scanjob_shift sh;
    struct cfw_err err = {0};
    bool input_error = false;

    if (j->part == 0) {
        *sp = (struct split){0};
    }
    if (sp->taken_over) {
        /* scanned here already */
    } else if (r->here && r->rc != 0) {
        /* the main process's own part went straight into the incidents, up to the error */
        progress_clear(&sc->pg);
        fprintf(stderr, "cfwatchd: %s: read error; what came before it is reported\n", path);
        stats_add_delta(total, &r->stats, &(struct cfw_pipeline_stats){0});
        sp->taken_over = true;
        input_error = true;
    } else if (!r->done || r->rc != 0) {
        cfw_log_info("%s: part %u of %u %s: the file is scanned again, in one piece", path,
                     j->part + 1, j->parts, !r->done ? "was not scanned" : "could not be read");
        input_error = scan_rest(sc, path, j->fd, sp, rs, set, total);
    } else {
        sh = (struct cfw_scanjob_shift){sp->covered > sp->base ? sp->covered - sp->base : 0,
                                        sp->base};
        if (replay_result(r, rs, set, &sh, &err) != 0) {
            progress_clear(&sc->pg);
            fprintf(stderr, "cfwatchd: %s: %s\n", path, err.msg);
            input_error = true;
        }
        stats_add_delta(&part, &r->stats, &r->part.shadow);
        part.inputs = j->part == 0 ? 1 : 0;
        stats_add_delta(total, &part, &(struct cfw_pipeline_stats){0});
        stats_add_delta(&sp->stats, &part, &(struct cfw_pipeline_stats){0});
        if (sp->base + r->stats.lines > sp->covered) {
            sp->covered = sp->base + r->stats.lines;
        }
        sp->base += r->stats.lines - r->part.shadow.lines;
        if (r->part.rest) {
            cfw_log_info("%s: part %u of %u did not meet the next before the part after it: it "
                         "framed the rest of the file",
                         path, j->part + 1, j->parts);
            sp->taken_over = true;
        }
    }
    if (!r->here) {
        progress_add(&sc->pg, (size_t)((j->pt.to != UINT64_MAX ? j->pt.to : l->v[j->input].size) -
                                       j->pt.from));
    }
    sc->pg.index = j->input + 1 < l->n ? j->input + 1 : j->input;
    free(r->data);
    r->data = NULL;
    return input_error;
}

/* Folds job k: a whole input (fold_input) or a part of one (fold_part). */
static bool fold_job(struct scan *sc, const struct inputs *l, const struct jobs *jl, size_t k,
                     struct job_result *r, struct cfw_ruleset *rs, struct cfw_incidents *set,
                     struct cfw_pipeline_stats *total, struct split *sp)
{
    const struct job *j = &jl->v[k];

    if (j->parts > 1) {
        return fold_part(sc, l, j, r, rs, set, total, sp);
    }
    return fold_input(sc, l, j->input, r, rs, set, total);
}

/*
 * Reads what the workers that poll found ready sent into their buffers (in) and takes the
 * whole messages into res; a worker's end closes its descriptor. True when a message was bad.
 */
static bool jobs_read(struct scan *sc, struct pollfd *pfd, struct cfw_buf *in, const int *spill,
                      size_t nworkers, struct job_result *res, size_t n, size_t *open_fds)
{
    bool bad = false;

    for (size_t w = 0; w < nworkers; w++) {
        ssize_t got;

        if (pfd[w].fd < 0 || pfd[w].revents == 0) {
            continue;
        }
        got = read(pfd[w].fd, sc->buf, READ_CHUNK);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            close(pfd[w].fd);
            pfd[w].fd = -1;
            (*open_fds)--;
            continue;
        }
        /* the cap holds a message not yet whole and one read: more is a worker gone wrong */
        if (cfw_buf_append(&in[w], sc->buf, (size_t)got) != 0) {
            fprintf(stderr, "cfwatchd: a scan worker sent a message over its cap\n");
            close(pfd[w].fd);
            pfd[w].fd = -1;
            (*open_fds)--;
            bad = true;
            continue;
        }
        if (take_messages(&in[w], spill[w], res, n) != 0) {
            bad = true;
        }
    }
    return bad;
}

/*
 * The first part of a split file that comes first: scanned by the main process while the workers
 * scan the rest, straight into the incidents (it is folded first), with nothing to send or
 * replay.
 */
static void scan_here(struct scan *sc, const struct inputs *l, const struct job *j,
                      struct cfw_ruleset *rs, struct job_result *r)
{
    struct cfw_pipeline_stats before = *cfw_pipeline_stats(sc->p);

    r->rc = scan_part(sc, rs, l->v[j->input].path, j->fd, &j->pt, &r->part);
    stats_add_delta(&r->stats, cfw_pipeline_stats(sc->p), &before);
    r->done = true;
    r->here = true;
}

/*
 * Scans l with nworkers processes, this one among them when the first job is the first part of a
 * split file, into set, adding the counters to total; returns true when an input could not be
 * read whole or a worker failed (what it left is scanned here).
 */
static bool scan_jobs(struct scan *sc, const struct inputs *l, const struct jobs *jl,
                      size_t nworkers, struct cfw_ruleset *rs, struct cfw_incidents *set,
                      struct cfw_pipeline_stats *total)
{
    struct job_result *res = cfw_xcalloc(jl->n, sizeof(*res));
    struct pollfd *pfd = cfw_xcalloc(nworkers, sizeof(*pfd));
    struct cfw_buf *in = cfw_xcalloc(nworkers, sizeof(*in));
    pid_t *pids = cfw_xcalloc(nworkers, sizeof(*pids));
    int *spill = cfw_xcalloc(nworkers, sizeof(*spill));
    bool here = jl->v[0].parts > 1;
    size_t nforks = nworkers - (here ? 1 : 0);
    atomic_size_t *next;
    struct split sp = {0};
    size_t replayed = 0;
    size_t open_fds = 0;
    bool input_error = false;
    const char *env = getenv("CFW_JOB_MSG_MAX");
    unsigned long long cap = env != NULL ? strtoull(env, NULL, 10) : 0;

    if (cap > 0 && cap < JOB_MSG_MAX) {
        job_msg_max = (size_t)cap;
    }
    for (size_t k = 0; k < jl->n; k++) {
        res[k].spill = -1; /* records in memory until a message says otherwise */
    }
    for (size_t w = 0; w < nworkers; w++) {
        /* a worker's message not yet whole and the read that follows it */
        cfw_buf_init(&in[w], sizeof(struct job_head) + job_msg_max + READ_CHUNK);
        /* no pipe (yet): poll skips it, the end closes nothing (fd 0 is stdin, maybe the input) */
        pfd[w].fd = -1;
        spill[w] = -1;
    }
    next = mmap(NULL, sizeof(*next), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (next == MAP_FAILED) {
        fprintf(stderr, "cfwatchd: --jobs: %s\n", strerror(errno));
        input_error = true;
        goto out;
    }
    atomic_init(next, here ? 1 : 0);
    /* the workers' rules are compiled once, here, not once per worker */
    cfw_ruleset_prepare(rs);
    fflush(NULL);
    for (size_t w = 0; w < nforks; w++) {
        int fds[2];

        if (pipe2(fds, O_CLOEXEC) != 0) {
            fprintf(stderr, "cfwatchd: --jobs: pipe: %s\n", strerror(errno));
            break;
        }
        spill[w] = spill_open();
        pids[w] = fork();
        if (pids[w] == 0) {
            int mine = spill[w];

            for (size_t k = 0; k < w; k++) {
                close(pfd[k].fd);
            }
            close(fds[0]);
            /* the parent's bookkeeping is not the worker's (nor a leak in its exit) */
            free(res);
            free(pfd);
            free(in);
            free(pids);
            free(spill);
            job_worker(sc, l, jl, next, rs, fds[1], mine);
        }
        close(fds[1]);
        if (pids[w] < 0) {
            fprintf(stderr, "cfwatchd: --jobs: fork: %s\n", strerror(errno));
            close(fds[0]);
            break;
        }
        pfd[w].fd = fds[0];
        pfd[w].events = POLLIN;
        open_fds++;
    }
    if (here) {
        scan_here(sc, l, &jl->v[0], rs, &res[0]);
    }
    while (open_fds > 0) {
        if (poll(pfd, nforks, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "cfwatchd: --jobs: poll: %s\n", strerror(errno));
            break;
        }
        if (jobs_read(sc, pfd, in, spill, nforks, res, jl->n, &open_fds)) {
            input_error = true;
        }
        /* replay in input order whatever is in */
        for (; replayed < jl->n && res[replayed].done; replayed++) {
            input_error |= fold_job(sc, l, jl, replayed, &res[replayed], rs, set, total, &sp);
        }
    }
    for (size_t w = 0; w < nworkers; w++) {
        if (pfd[w].fd >= 0) {
            close(pfd[w].fd);
        }
        if (pids[w] > 0 && worker_failed(pids[w])) {
            input_error = true;
        }
        cfw_buf_free(&in[w]);
    }
    munmap(next, sizeof(*next));
out:
    /* what no worker sent is scanned here, still in input order */
    for (; replayed < jl->n; replayed++) {
        input_error |= fold_job(sc, l, jl, replayed, &res[replayed], rs, set, total, &sp);
    }
    for (size_t w = 0; w < nworkers; w++) {
        if (spill[w] >= 0) {
            close(spill[w]);
        }
    }
    free(res);
    free(pfd);
    free(in);
    free(pids);
    free(spill);
    return input_error;
}

/* The smallest part of a file scanned in parts: PART_MIN, or CFW_PART_MIN for the tests. */
static uint64_t part_min(void)
{
    const char *env = getenv("CFW_PART_MIN");
    unsigned long long v = env != NULL ? strtoull(env, NULL, 10) : 0;

    return v > 0 ? (uint64_t)v : PART_MIN;
}

/*
 * How many parts input i is scanned in with nworkers workers (1: whole), with its mid and, for
 * more than one, the descriptor its parts read (one open file: a file renamed or replaced
 * meanwhile is still read whole and alike by every part).
 */
static unsigned parts_of(const struct input *in, size_t nworkers, enum cfw_input_format fmt,
                         struct cfw_framer_mid *mid, int *fdp)
{
    struct cfw_framer_opts fopts = {.format = fmt};
    uint64_t min = part_min();
    uint64_t n = in->size / min;
    struct stat st;
    int fd;

    *fdp = -1;
    if (nworkers < 2 || n < 2 || strcmp(in->path, "-") == 0) {
        return 1;
    }
    fd = open(in->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 1; /* said when it is scanned */
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !cfw_part_splittable(fd, &fopts, mid)) {
        close(fd);
        return 1;
    }
    *fdp = fd;
    return (unsigned)(n < nworkers ? n : nworkers);
}

/* The jobs for l: an input each, a large file in parts (scanpart.h). */
static void jobs_plan(const struct inputs *l, size_t nworkers, enum cfw_input_format fmt,
                      struct jobs *jl)
{
    size_t cap = l->n;

    jl->v = cfw_xcalloc(cap, sizeof(*jl->v));
    jl->n = 0;
    for (size_t i = 0; i < l->n; i++) {
        struct cfw_framer_mid mid = {0};
        int fd;
        unsigned parts = parts_of(&l->v[i], nworkers, fmt, &mid, &fd);
        uint64_t size = l->v[i].size;

        if (parts > 1) {
            cfw_log_info("%s: scanned in %u parts", l->v[i].path, parts);
        }
        if (jl->n + parts > cap) {
            cap = (jl->n + parts) * 2;
            jl->v = cfw_xrealloc(jl->v, cap * sizeof(*jl->v));
        }
        for (unsigned k = 0; k < parts; k++) {
            struct job *j = &jl->v[jl->n++];

            *j = (struct job){.input = i, .part = k, .parts = parts, .fd = fd};
            j->pt.from = size / parts * k;
            j->pt.to = k + 1 < parts ? size / parts * (k + 1) : UINT64_MAX;
            j->pt.limit = k + 2 < parts ? size / parts * (k + 2) : UINT64_MAX;
            j->pt.mid = mid;
        }
    }
}

/* How many workers -j asks for: the number given, else one per online CPU. */
static size_t jobs_wanted(const struct options *o)
{
    long n = o->jobs;

    if (n <= 0) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
    }
    return n > 0 ? (size_t)n : 1;
}

/*
 * Scans every input into set (serially through p, or with workers under -j); the counters go
 * to total. Returns true when one of them could not be read whole.
 */
static bool scan_all(struct cfw_pipeline *p, struct cfw_ruleset *rs, struct cfw_incidents *set,
                     const struct options *o, struct cfw_pipeline_stats *total)
{
    struct scan sc = {.p = p, .fmt = o->input_format};
    struct inputs l = {0};
    struct jobs jl = {0};
    bool input_error = expand_inputs(o->inputs, o->ninputs, &l) != 0;
    size_t nworkers = jobs_wanted(o);

    sc.buf = cfw_xmalloc(READ_CHUNK);
    sc.pg.tty = isatty(STDERR_FILENO) == 1;
    sc.pg.start_ms = cfw_now_mono_ms();
    sc.pg.count = l.n;
    for (size_t i = 0; i < l.n; i++) {
        sc.pg.has_stdin |= strcmp(l.v[i].path, "-") == 0;
        sc.pg.total += l.v[i].size;
    }
    jobs_plan(&l, nworkers, o->input_format, &jl);
    if (nworkers > jl.n) {
        nworkers = jl.n;
    }
    if (nworkers > 1) {
        input_error |= scan_jobs(&sc, &l, &jl, nworkers, rs, set, total);
    } else {
        for (size_t i = 0; i < l.n; i++) {
            sc.pg.index = i;
            if (scan_input(&sc, l.v[i].path) != 0) {
                input_error = true;
            }
        }
        *total = *cfw_pipeline_stats(p);
    }
    progress_clear(&sc.pg);
    free(sc.buf);
    for (size_t k = 0; k < jl.n; k++) {
        if (jl.v[k].part == 0 && jl.v[k].fd >= 0) {
            close(jl.v[k].fd);
        }
    }
    free(jl.v);
    inputs_free(&l);
    return input_error;
}

/* What --once --notify and --test-alert need: an event loop and the configured sinks. */
struct delivery {
    struct event_base *base;
    struct cfw_notifier *notifier;
    char *tmpdir; /* a private state directory made for this run, or NULL */
};

static void on_once_transition(const struct cfw_incident *inc, enum cfw_transition t, void *arg)
{
    struct delivery *d = arg;

    cfw_notifier_submit(d->notifier, inc, t);
}

/*
 * dir is where the spool lives; NULL makes a private temporary one, so that a one-off run never
 * competes with a running daemon for its state directory (nor leaves root-owned files in it).
 */
static int delivery_start(struct delivery *d, const struct cfw_config *cfg, const char *dir)
{
    struct cfw_diag diag = {0};

    if (dir == NULL) {
        char tmpl[] = "/tmp/cfwatchd-once-XXXXXX";
        if (mkdtemp(tmpl) == NULL) {
            fprintf(stderr, "cfwatchd: cannot create a state directory: %s\n", strerror(errno));
            return -1;
        }
        d->tmpdir = cfw_xstrdup(tmpl);
        dir = d->tmpdir;
    } else if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "cfwatchd: state_dir %s: %s\n", dir, strerror(errno));
        return -1;
    }
    d->base = event_base_new();
    if (d->base == NULL) {
        fprintf(stderr, "cfwatchd: cannot create the event loop\n");
        return -1;
    }
    /*
     * A private spool is removed at exit: no reserve for a full disk. No public_url: it links
     * a page to the daemon's /incidents, which holds none of this scan's incidents.
     */
    d->notifier =
        cfw_notifier_start(d->base, cfg->sinks, cfg->outbox, dir, NULL, d->tmpdir != NULL, &diag);
    if (d->notifier == NULL) {
        cfw_diag_print(&diag, stderr);
        cfw_diag_free(&diag);
        return -1;
    }
    cfw_diag_free(&diag);
    return 0;
}

/* Frees the loop and notifier; a private state directory is removed only when it is empty. */
static void delivery_free(struct delivery *d)
{
    cfw_notifier_free(d->notifier);
    if (d->base != NULL) {
        event_base_free(d->base);
    }
    if (d->tmpdir != NULL) {
        char *outbox = cfw_xasprintf("%s/outbox", d->tmpdir);
        char *dead = cfw_xasprintf("%s/dead", d->tmpdir);
        char *lock = cfw_xasprintf("%s/.lock", outbox);
        unlink(lock);
        free(lock);
        if ((rmdir(outbox) == 0 || errno == ENOENT) && (rmdir(dead) == 0 || errno == ENOENT)) {
            rmdir(d->tmpdir);
        } else {
            fprintf(stderr, "cfwatchd: undelivered notifications are kept in %s\n", d->tmpdir);
        }
        free(outbox);
        free(dead);
        free(d->tmpdir);
    }
}

static bool want_color(const struct options *o)
{
    const char *nc = getenv("NO_COLOR");

    if (o->no_color || o->format != CFW_REPORT_TEXT || (nc != NULL && nc[0] != '\0')) {
        return false;
    }
    return isatty(STDOUT_FILENO) == 1;
}

static int run_once(const struct options *o)
{
    struct cfw_config *cfg = NULL;
    struct cfw_ruleset *rs = NULL;
    struct cfw_incidents *set;
    struct cfw_pipeline *p;
    struct cfw_report_opts ropts = {.format = o->format};
    struct cfw_pipeline_stats stats = {0};
    bool input_error = false;
    bool failing = false;
    int rc;

    struct delivery d = {0};
    bool undelivered = false;

    if (load_config(o, o->config, &cfg, &rs) != 0) {
        return 2;
    }
    if (o->notify && (o->config == NULL || cfg->sinks == NULL)) {
        fprintf(stderr, "cfwatchd: --notify needs -c FILE with a sinks: section\n");
        cfw_ruleset_free(rs);
        cfw_config_free(cfg);
        return 2;
    }
    if (o->notify && delivery_start(&d, cfg, o->state_dir) != 0) {
        delivery_free(&d);
        cfw_ruleset_free(rs);
        cfw_config_free(cfg);
        return 2;
    }
    set = cfw_incidents_new(&cfg->incidents, o->notify ? on_once_transition : NULL, &d);
    p = cfw_pipeline_new(rs, set, NULL);
    input_error = scan_all(p, rs, set, o, &stats);
    ropts.color = want_color(o);
    ropts.min_severity = CFW_SEV_INFO;
    cfw_report_write(stdout, &ropts, set, &stats);
    fflush(stdout);
    for (size_t i = 0; i < cfw_incidents_count(set); i++) {
        const struct cfw_incident *inc = cfw_incidents_at(set, i);
        /* an incident a later successful deploy in the scan fixed does not fail it */
        if (inc->state != CFW_INCIDENT_PENDING && inc->resolved_by == NULL && !o->fail_never &&
            inc->severity >= o->fail_on) {
            failing = true;
        }
    }
    if (o->notify) {
        if (cfw_notifier_drain(d.notifier, cfw_now_mono_ms() + o->notify_timeout_ms) != 0) {
            fprintf(stderr, "cfwatchd: --notify: %zu notification(s) not delivered\n",
                    cfw_notifier_pending(d.notifier));
            undelivered = true;
        }
        delivery_free(&d);
    }
    rc = input_error || undelivered ? 2 : failing ? 1 : 0;
    cfw_pipeline_free(p);
    cfw_incidents_free(set);
    cfw_ruleset_free(rs);
    cfw_config_free(cfg);
    return rc;
}

static int run_check_config(const struct options *o)
{
    const char *path = o->config != NULL ? o->config : CFW_CONFIG_DEFAULT_PATH;
    struct cfw_config *cfg = NULL;
    struct cfw_ruleset *rs = NULL;
    const char **packs;
    size_t *counts;
    size_t npacks = 0;
    size_t nrules;

    if (load_config(o, path, &cfg, &rs) != 0) {
        return 2;
    }
    nrules = cfw_ruleset_count(rs);
    packs = cfw_xcalloc(nrules + 1, sizeof(*packs));
    counts = cfw_xcalloc(nrules + 1, sizeof(*counts));
    for (size_t i = 0; i < nrules; i++) {
        const char *pack = cfw_rule_pack(cfw_ruleset_rule(rs, i));
        size_t k;
        for (k = 0; k < npacks && strcmp(packs[k], pack) != 0; k++) {
        }
        if (k == npacks) {
            packs[npacks++] = pack;
        }
        counts[k]++;
    }
    printf("%s: configuration OK\n", path);
    printf("  rules: %zu (", nrules);
    for (size_t k = 0; k < npacks; k++) {
        printf("%s%s: %zu", k > 0 ? ", " : "", packs[k], counts[k]);
    }
    printf(")%s, scan %s\n", cfw_ruleset_jit(rs) ? ", PCRE2 JIT" : ", PCRE2 interpreter",
           cfw_scan_name(cfw_ruleset_scan(rs)));
    cfw_ruleset_prepare(rs);
    for (size_t i = 0; i < nrules; i++) {
        const struct cfw_rule *r = cfw_ruleset_rule(rs, i);
        unsigned none = cfw_rule_no_literal(r);

        if (none != 0) {
            printf("  note: %s: rule '%s' has no literal for the prefilter: every %s record is "
                   "decoded for it (slow; add a fixed string to its pattern, or `when: {kind: "
                   "...}`)\n",
                   cfw_rule_where(r), cfw_rule_id(r),
                   none == (CFW_PREFILTER_ALL_TEXT | CFW_PREFILTER_ALL_JSON) ? "text and JSON"
                   : none == CFW_PREFILTER_ALL_TEXT                            ? "text"
                                                                               : "JSON");
        }
    }
    printf("  incidents: key %s\n", cfg->incidents.key_template != NULL
                                        ? cfg->incidents.key_template
                                        : CFW_INCIDENT_KEY_DEFAULT);
    printf("  sources: %zu\n", cfg->sources != NULL ? cfg->sources->n : 0);
    for (size_t i = 0; cfg->sources != NULL && i < cfg->sources->n; i++) {
        const struct cfw_node *name = cfw_node_get(cfg->sources->items[i], "name");
        const struct cfw_node *type = cfw_node_get(cfg->sources->items[i], "type");
        printf("    %s (%s)\n", name != NULL ? name->value : "?", type != NULL ? type->value : "?");
    }
    {
        struct cfw_diag diag = {0};
        struct cfw_sinks *sinks = cfw_sinks_parse(cfg->sinks, "sinks", &diag);
        printf("  sinks: %zu\n", sinks != NULL ? cfw_sinks_count(sinks) : 0);
        for (size_t i = 0; sinks != NULL && i < cfw_sinks_count(sinks); i++) {
            const struct cfw_sink *sk = cfw_sinks_at(sinks, i);
            printf("    %s (%s)", cfw_sink_name(sk), cfw_sink_type(sk));
            for (size_t e = 0; e < cfw_sink_endpoints(sk); e++) {
                printf(" %s", cfw_sink_display_url(sk, e));
            }
            putchar('\n');
        }
        cfw_sinks_free(sinks);
        cfw_diag_free(&diag);
    }
    free(packs);
    free(counts);
    cfw_ruleset_free(rs);
    cfw_config_free(cfg);
    return 0;
}

static int run_test_alert(const struct options *o)
{
    const char *path = o->config != NULL ? o->config : CFW_CONFIG_DEFAULT_PATH;
    struct cfw_config *cfg = NULL;
    struct cfw_ruleset *rs = NULL;
    struct cfw_test_result res = {0};
    struct delivery d = {0};
    int rc = 2;

    if (load_config(o, path, &cfg, &rs) != 0) {
        return 2;
    }
    if (delivery_start(&d, cfg, NULL) == 0) {
        int sent = cfw_notifier_test_alert(d.notifier, o->test_alert,
                                           cfw_now_mono_ms() + o->notify_timeout_ms, &res);
        /* the receiver's answer is outside text: printed without a registered secret */
        cfw_secrets_scrub_inplace(res.answer, strnlen(res.answer, sizeof(res.answer)));
        if (sent == 0) {
            printf("%s: test notification delivered (HTTP %ld, %u attempt%s)\n%s\n",
                   o->test_alert, res.status, res.attempts, res.attempts == 1 ? "" : "s",
                   res.answer);
            rc = 0;
        } else {
            printf("%s: test notification NOT delivered (HTTP %ld, %u attempt%s)\n%s\n",
                   o->test_alert, res.status, res.attempts, res.attempts == 1 ? "" : "s",
                   res.answer);
        }
    }
    delivery_free(&d);
    cfw_ruleset_free(rs);
    cfw_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    int rc;

    /* the on-call commands talk to the running daemon: options of their own */
    if (argc > 1 && cfw_cli_is_command(argv[1])) {
        return cfw_cli_main(argc - 1, argv + 1);
    }
    /* --check-bundle has options of its own: everything after it is its command line */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check-bundle") == 0) {
            return cfw_check_bundle_main(argc - i - 1, argv + i + 1);
        }
    }
    if (parse_args(argc, argv, &o) != 0) {
        free(o.rule_files);
        return 2;
    }
    cfw_log_init(o.log_level);
    switch (o.mode) {
    case MODE_ONCE:
        rc = run_once(&o);
        break;
    case MODE_CHECK_CONFIG:
        rc = run_check_config(&o);
        break;
    case MODE_TEST_ALERT:
        rc = run_test_alert(&o);
        break;
    case MODE_DAEMON: {
        /*
         * A fixed mmap threshold: glibc otherwise raises it to the size of the largest mmapped
         * block freed (a Logpush batch, a state snapshot), after which blocks that size come
         * from the heap and stay resident; the daemon's RSS then steps up by megabytes at a
         * random moment and stays there. Measured on the SIGHUP storm of test_faults_reload:
         * a 4.4 MiB step in 3 runs of 4 without it, none in 5 with it, 4 MiB less RSS at start.
         */
#ifdef M_MMAP_THRESHOLD
        mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
        struct cfw_app_opts ao = {
            .config_path = o.config != NULL ? o.config : CFW_CONFIG_DEFAULT_PATH,
            .log_level = o.log_level,
            .log_level_set = o.log_level_set,
        };
        rc = cfw_app_run(&ao);
        break;
    }
    default:
        rc = 2;
        break;
    }
    free(o.rule_files);
    /* the registered secrets are wiped, not left in freed memory */
    cfw_secrets_clear();
    return rc;
}
