/* --check-bundle: command line, output and exit codes. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundle_int.h"
#include "cfwatchd/bundle.h"

#define EXIT_CLEAN 0
#define EXIT_FINDINGS 1
#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fputs("usage: cfwatchd --check-bundle [DIR] [options]\n"
          "\n"
          "Checks a Python Worker's module layout before it is deployed: reads DIR's\n"
          "wrangler.json, wrangler.jsonc or wrangler.toml (DIR defaults to .), computes the\n"
          "modules exactly as wrangler uploads them and reports the imports that will fail.\n"
          "\n"
          "options:\n"
          "  --env NAME          apply [env.NAME] overrides\n"
          "  --assume STATE      synced: [project] dependencies count as vendored (pywrangler\n"
          "                      deploy); unsynced: only python_modules/ counts (plain\n"
          "                      wrangler deploy); default: detect how the project deploys\n"
          "  --format FORMAT     text (default), json, github or sarif\n"
          "  --fail-on SEVERITY  exit 1 for findings at or above: critical, error, warning\n"
          "                      (default) or info\n"
          "  --fix               print a unified diff that fixes src.-prefixed imports and adds\n"
          "                      missing __init__.py files\n"
          "  --write             with --fix: apply it (temporary file + rename), then check again\n"
          "  --verify            lay the bundle out as uploaded and import main with python3\n"
          "  --timeout SECONDS   time limit for --verify's import (default 20)\n"
          "  --no-color          no ANSI colours in text output (also NO_COLOR)\n"
          "  --help              this text\n"
          "\n"
          "exit codes: 0 nothing at or above --fail-on (with --verify: the import succeeded),\n"
          "            1 findings at or above it (with --verify: the import failed),\n"
          "            2 usage, configuration or input errors (or python3 missing for --verify)\n",
          f);
}

static int parse_format(const char *s, enum cfw_bundle_format *out)
{
    static const struct {
        const char *name;
        enum cfw_bundle_format fmt;
    } map[] = {{"text", CFW_BUNDLE_FMT_TEXT},
               {"json", CFW_BUNDLE_FMT_JSON},
               {"github", CFW_BUNDLE_FMT_GITHUB},
               {"sarif", CFW_BUNDLE_FMT_SARIF}};
    for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
        if (strcmp(map[k].name, s) == 0) {
            *out = map[k].fmt;
            return 0;
        }
    }
    return -1;
}

static int findings_exit(const struct cfw_bundle_report *r, enum cfw_bundle_sev fail_on)
{
    for (size_t k = 0; k < r->n_findings; k++) {
        if (r->findings[k].sev >= fail_on) {
            return EXIT_FINDINGS;
        }
    }
    return EXIT_CLEAN;
}

struct opts {
    const char *dir;
    const char *env;
    enum cfw_bundle_format fmt;
    enum cfw_bundle_sev fail_on;
    bool fix, write, verify, color;
    int timeout_ms;
    enum cfw_bundle_assume assume;
};

/* Applies one option from getopt_long: 0, 1 for --help, or -1 after printing what is wrong. */
static int apply_option(int c, char **av, struct opts *o, FILE *errout)
{
    int rc = 0;

    switch (c) {
    case 'e':
        o->env = optarg;
        break;
    case 'f':
        if (parse_format(optarg, &o->fmt) != 0) {
            fprintf(errout,
                    "cfwatchd --check-bundle: unknown --format '%s' (text, json, "
                    "github or sarif)\n",
                    optarg);
            rc = -1;
        }
        break;
    case 'F':
        if (cfw_bundle_sev_parse(optarg, &o->fail_on) != 0) {
            fprintf(errout,
                    "cfwatchd --check-bundle: unknown --fail-on '%s' (critical, "
                    "error, warning or info)\n",
                    optarg);
            rc = -1;
        }
        break;
    case 'a':
        if (strcmp(optarg, "synced") == 0) {
            o->assume = CFW_BUNDLE_ASSUME_SYNCED;
        } else if (strcmp(optarg, "unsynced") == 0) {
            o->assume = CFW_BUNDLE_ASSUME_UNSYNCED;
        } else {
            fprintf(errout, "cfwatchd --check-bundle: unknown --assume '%s' (synced or unsynced)\n",
                    optarg);
            rc = -1;
        }
        break;
    case 'x':
        o->fix = true;
        break;
    case 'w':
        o->write = true;
        break;
    case 'v':
        o->verify = true;
        break;
    case 'n':
        o->color = false;
        break;
    case 't': {
        uint64_t secs;
        if (cfw_parse_u64(optarg, &secs) != 0 || secs == 0 || secs > 3600) {
            fprintf(errout, "cfwatchd --check-bundle: --timeout needs 1..3600 seconds\n");
            rc = -1;
        } else {
            o->timeout_ms = (int)secs * 1000;
        }
        break;
    }
    case 'h':
        rc = 1;
        break;
    case ':':
        fprintf(errout, "cfwatchd --check-bundle: %s needs an argument\n", av[optind - 1]);
        rc = -1;
        break;
    default:
        fprintf(errout, "cfwatchd --check-bundle: unknown option '%s'\n", av[optind - 1]);
        rc = -1;
        break;
    }
    return rc;
}

static int parse_args(int argc, char **argv, struct opts *o, FILE *errout)
{
    static const struct option longopts[] = {
        {"env", required_argument, NULL, 'e'},
        {"format", required_argument, NULL, 'f'},
        {"fail-on", required_argument, NULL, 'F'},
        {"fix", no_argument, NULL, 'x'},
        {"write", no_argument, NULL, 'w'},
        {"verify", no_argument, NULL, 'v'},
        {"no-color", no_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"assume", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    char **av = cfw_xcalloc((size_t)argc + 2, sizeof(char *));
    int c, rc = 0;

    /* getopt_long wants a program name first and permutes its argv: give it a copy. */
    av[0] = (char *)"cfwatchd --check-bundle";
    for (int k = 0; k < argc; k++) {
        av[k + 1] = argv[k];
    }
    optind = 0;
    opterr = 0;
    while (rc == 0 && (c = getopt_long(argc + 1, av, ":h", longopts, NULL)) != -1) {
        rc = apply_option(c, av, o, errout);
    }
    if (rc == 0 && optind < argc + 1) {
        o->dir = av[optind++];
        if (optind < argc + 1) {
            fprintf(errout, "cfwatchd --check-bundle: one project directory only ('%s' too)\n",
                    av[optind]);
            rc = -1;
        }
    }
    if (rc == 0 && o->write && !o->fix) {
        fprintf(errout, "cfwatchd --check-bundle: --write applies --fix; give both\n");
        rc = -1;
    }
    if (rc == 0 && o->fix && o->verify) {
        fprintf(errout, "cfwatchd --check-bundle: run --verify after --fix --write, not with "
                        "it\n");
        rc = -1;
    }
    free(av);
    return rc;
}

static int do_verify(const struct cfw_bundle_report *r, const struct opts *o, FILE *out,
                     FILE *errout)
{
    struct cfw_bundle_verdict v = {0};
    struct cfw_err err = {0};
    bool agrees;
    int rc;
    FILE *vout = o->fmt == CFW_BUNDLE_FMT_TEXT ? out : errout;

    if (cfw_bundle_verify(r, o->timeout_ms, &v, &err) != 0) {
        fprintf(errout, "cfwatchd --check-bundle --verify: %s\n", err.msg);
        cfw_bundle_verdict_clear(&v);
        return EXIT_USAGE;
    }
    agrees = v.import_ok == !r->predicts_import_failure;
    if (o->fmt == CFW_BUNDLE_FMT_JSON) {
        char *s = bundle_report_json(r, &v, agrees);
        fprintf(out, "%s\n", s);
        free(s);
    } else {
        if (o->fmt != CFW_BUNDLE_FMT_TEXT) {
            cfw_bundle_report_write(r, o->fmt, false, out);
        }
        if (v.import_ok) {
            fprintf(vout,
                    "verify: %s -I -S imported '%s' from the bundle laid out as uploaded: "
                    "OK\n",
                    v.python, r->main_module);
        } else {
            fprintf(vout,
                    "verify: %s -I -S could not import '%s' from the bundle laid out as "
                    "uploaded (%s %d):\n",
                    v.python, r->main_module, v.timed_out ? "timed out, status" : "exit status",
                    v.exit_status);
            for (const char *p = v.output; p && *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                fprintf(vout, "    %.*s\n", (int)len, p);
                p = nl ? nl + 1 : p + len;
            }
        }
        fprintf(vout, "verify: %s the static findings (%s)\n",
                agrees ? "agrees with" : "DISAGREES with",
                r->predicts_import_failure ? "they predict the import fails"
                                           : "they predict the import succeeds");
    }
    rc = v.import_ok ? EXIT_CLEAN : EXIT_FINDINGS;
    cfw_bundle_verdict_clear(&v);
    return rc;
}

int cfw_bundle_run(int argc, char **argv, FILE *out, FILE *errout)
{
    struct opts o = {.dir = ".",
                     .fmt = CFW_BUNDLE_FMT_TEXT,
                     .fail_on = CFW_BUNDLE_SEV_WARNING,
                     .color = true,
                     .timeout_ms = CFW_BUNDLE_VERIFY_TIMEOUT_MS};
    struct cfw_bundle_report *r;
    struct cfw_err err = {0};
    int prc, rc;

    prc = parse_args(argc, argv, &o, errout);
    if (prc > 0) {
        usage(out);
        return EXIT_CLEAN;
    }
    if (prc < 0) {
        usage(errout);
        return EXIT_USAGE;
    }
    if (getenv("NO_COLOR") != NULL || out != stdout || !isatty(fileno(out))) {
        o.color = false;
    }
    r = cfw_bundle_check_assume(o.dir, o.env, o.assume, &err);
    if (r == NULL) {
        fprintf(errout, "cfwatchd --check-bundle: %s\n", err.msg);
        return EXIT_USAGE;
    }
    if (o.verify) {
        if (o.fmt == CFW_BUNDLE_FMT_TEXT) {
            cfw_bundle_report_write(r, o.fmt, o.color, out);
        }
        rc = do_verify(r, &o, out, errout);
        cfw_bundle_report_free(r);
        return rc;
    }
    if (o.fix) {
        struct cfw_buf b;
        cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
        if (!o.write) {
            if (cfw_bundle_fix_diff(r, &b, &err) != 0) {
                fprintf(errout, "cfwatchd --check-bundle --fix: %s\n", err.msg);
                cfw_buf_free(&b);
                cfw_bundle_report_free(r);
                return EXIT_USAGE;
            }
            fputs(b.data ? b.data : "", out);
            fprintf(errout, "cfwatchd --check-bundle --fix: %zu edit%s%s\n", r->n_edits,
                    r->n_edits == 1 ? "" : "s",
                    r->n_edits ? "; apply with --fix --write or `patch -p1`" : "");
            cfw_buf_free(&b);
            rc = findings_exit(r, o.fail_on);
            cfw_bundle_report_free(r);
            return rc;
        }
        if (cfw_bundle_fix_write(r, &b, &err) != 0) {
            fprintf(errout, "cfwatchd --check-bundle --fix --write: %s\n", err.msg);
            cfw_buf_free(&b);
            cfw_bundle_report_free(r);
            return EXIT_USAGE;
        }
        fputs(b.data ? b.data : "", o.fmt == CFW_BUNDLE_FMT_TEXT ? out : errout);
        cfw_buf_free(&b);
        cfw_bundle_report_free(r);
        /* What is left after the fix decides the exit code. */
        r = cfw_bundle_check_assume(o.dir, o.env, o.assume, &err);
        if (r == NULL) {
            fprintf(errout, "cfwatchd --check-bundle: %s\n", err.msg);
            return EXIT_USAGE;
        }
    }
    if (cfw_bundle_report_write(r, o.fmt, o.color, out) != 0) {
        cfw_bundle_report_free(r);
        return EXIT_USAGE;
    }
    rc = findings_exit(r, o.fail_on);
    cfw_bundle_report_free(r);
    return rc;
}

int cfw_check_bundle_main(int argc, char **argv)
{
    int rc = cfw_bundle_run(argc, argv, stdout, stderr);
    fflush(stdout);
    return rc;
}
