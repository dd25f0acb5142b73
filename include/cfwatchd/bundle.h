/*
 * --check-bundle: predicts, before a deploy, whether a Python Worker's module layout will import.
 *
 * It reads the wrangler configuration (TOML, JSON or JSONC), computes the module set exactly as
 * wrangler uploads it (FORMATS.md §6), tokenizes every uploaded Python file for its imports and
 * reports what will fail: the `src.` prefix import of FORMATS.md §5.2, unresolved and out-of-root
 * imports, missing __init__.py, and the configuration problems of §5.3. It can print or apply a
 * fix and can verify its verdict by importing the laid-out bundle with the system python3.
 */
#ifndef CFWATCHD_BUNDLE_H
#define CFWATCHD_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cfwatchd/common.h"

/* Caps on what is read from the project (named defaults; every one is reported when hit). */
#define CFW_BUNDLE_MAX_FILE_BYTES (4u * 1024u * 1024u)
#define CFW_BUNDLE_MAX_FILES 100000u
#define CFW_BUNDLE_MAX_DEPTH 64
#define CFW_BUNDLE_MAX_CONFIG_BYTES (1024u * 1024u)
#define CFW_BUNDLE_MAX_NESTING 64
#define CFW_BUNDLE_MAX_VERIFY_OUTPUT (64u * 1024u)
#define CFW_BUNDLE_VERIFY_TIMEOUT_MS 20000

enum cfw_bundle_sev {
    CFW_BUNDLE_SEV_INFO = 0,
    CFW_BUNDLE_SEV_WARNING,
    CFW_BUNDLE_SEV_ERROR,
    CFW_BUNDLE_SEV_CRITICAL,
};

/* Returns "info", "warning", "error" or "critical". */
const char *cfw_bundle_sev_name(enum cfw_bundle_sev sev);
/* Parses a severity name; returns -1 on anything else. */
int cfw_bundle_sev_parse(const char *s, enum cfw_bundle_sev *out);

/* ---- Configuration values (TOML and JSONC both parse into this tree) ---- */

enum cfw_bundle_vtype {
    CFW_BUNDLE_V_STRING,
    CFW_BUNDLE_V_INT,
    CFW_BUNDLE_V_FLOAT,
    CFW_BUNDLE_V_BOOL,
    CFW_BUNDLE_V_DATETIME,
    CFW_BUNDLE_V_NULL,
    CFW_BUNDLE_V_ARRAY,
    CFW_BUNDLE_V_TABLE,
};

struct cfw_bundle_value {
    enum cfw_bundle_vtype type;
    int line;
    int col;
    char *str; /* strings; the literal text of numbers and dates */
    int64_t i;
    bool b;
    unsigned flags; /* TOML: how a table or array was defined */
    size_t n;
    size_t cap;
    char **keys;                     /* tables: keys[k] names items[k] */
    struct cfw_bundle_value **items; /* arrays and tables */
};

/* Parses the wrangler.toml subset; NULL with "file:line:col: message" in err on failure. */
struct cfw_bundle_value *cfw_bundle_toml_parse(const char *text, size_t len, const char *file,
                                               struct cfw_err *err);
/* Parses JSON with comments and trailing commas; NULL with "file:line:col: message" on failure. */
struct cfw_bundle_value *cfw_bundle_jsonc_parse(const char *text, size_t len, const char *file,
                                                struct cfw_err *err);
/* Returns the value under key in a table (borrowed), or NULL. */
const struct cfw_bundle_value *cfw_bundle_value_get(const struct cfw_bundle_value *table,
                                                    const char *key);
/* Frees a value tree; accepts NULL and half-built trees. */
void cfw_bundle_value_free(struct cfw_bundle_value *v);

/* ---- The wrangler configuration, resolved for one environment ---- */

struct cfw_bundle_rule {
    char *type;
    char **globs;
    size_t n_globs;
    bool fallthrough;
};

struct cfw_bundle_config {
    char *path;     /* the configuration file, as displayed */
    char *main;     /* as written, relative to the configuration's directory */
    char *base_dir; /* as written, or NULL */
    char *compat_date;
    char **compat_flags;
    size_t n_compat_flags;
    bool no_bundle;
    struct cfw_bundle_rule *rules;
    size_t n_rules;
    char **py_excludes; /* python_modules.exclude (default: every .pyc file) */
    size_t n_py_excludes;
    bool build_upload; /* the removed [build.upload] table is present */
    int main_line, main_col;
    int flags_line, flags_col;
    int upload_line, upload_col;
    char *env_note; /* a warning about --env (no such environment, no env table) or NULL */
};

/*
 * Reads DIR/wrangler.json, DIR/wrangler.jsonc or DIR/wrangler.toml (wrangler's order) and applies
 * [env.NAME] overrides when env is not NULL; 0, or -1 with a readable error.
 */
int cfw_bundle_config_load(const char *dir, const char *env, struct cfw_bundle_config *cfg,
                           struct cfw_err *err);
/* Releases what cfw_bundle_config_load filled; accepts a zeroed or half-filled config. */
void cfw_bundle_config_clear(struct cfw_bundle_config *cfg);

/* Matches a path against a wrangler module-rule glob (glob-to-regexp with globstar). */
bool cfw_bundle_glob_match(const char *glob, const char *path);

/* ---- Python imports ---- */

#define CFW_BUNDLE_IMPORT_LAZY 0x1u      /* inside a def: runs at request time */
#define CFW_BUNDLE_IMPORT_TRY 0x2u       /* inside a try: body (see guarded) */
#define CFW_BUNDLE_IMPORT_TYPECHECK 0x4u /* inside `if TYPE_CHECKING:`: never runs */
#define CFW_BUNDLE_IMPORT_MAINGUARD 0x8u /* inside `if __name__ == "__main__":`: never runs */

struct cfw_bundle_import {
    char *module;   /* dotted name without the leading dots; "" for `from . import x` */
    int level;      /* number of leading dots */
    bool is_from;   /* `from M import names` rather than `import M` */
    bool has_alias; /* `import M as N` */
    bool parenthesized;
    char **names; /* from-imports: the imported names ("*" for a star import) */
    size_t n_names;
    int line, col;     /* where the module name (or the first dot) starts */
    int stmt_line;     /* line of the `import` / `from` keyword */
    size_t stmt_start; /* byte offset of the `import` / `from` keyword */
    size_t mod_start;  /* byte offsets of the dotted name's first component and the dot after it */
    size_t first_dot_end;
    size_t import_kw; /* from-imports: byte offset of the `import` keyword */
    unsigned ctx;     /* CFW_BUNDLE_IMPORT_* */
    bool guarded;     /* an enclosing try: catches ImportError (or broader) */
    int guard_try;    /* guarded: the innermost try: that catches it (a per-file index) */
    int handler_of;   /* inside an except clause of this try: (per-file index), or -1 */
};

struct cfw_bundle_imports {
    struct cfw_bundle_import *v;
    size_t n;
    size_t cap;
};

/* Appends every import statement of a Python source to out; returns 0 (err is unused). */
int cfw_bundle_py_imports(const char *text, size_t len, struct cfw_bundle_imports *out,
                          struct cfw_err *err);
/* Releases the imports; accepts a zeroed set. */
void cfw_bundle_imports_clear(struct cfw_bundle_imports *im);

/* ---- The check ---- */

struct cfw_bundle_module {
    char *name; /* upload name: main's base name, path under the module root, python_modules/... */
    char *path; /* the file on disk, as displayed (DIR-joined) */
    char *type; /* wrangler module type: python, text, data, compiled-wasm, ... */
    bool vendored; /* from python_modules/ */
    bool is_main;
};

struct cfw_bundle_finding {
    const char *rule;
    enum cfw_bundle_sev sev;
    char *file; /* as displayed (DIR-joined) */
    int line;
    int col;
    char *message;
    char *fix;
};

/* One rewrite of a byte range in a Python file, or (path only) an __init__.py to create. */
struct cfw_bundle_edit {
    char *path; /* as displayed */
    size_t start;
    size_t end;
    char *replacement; /* NULL: create path as a new __init__.py */
    char *expect;      /* the text the range held when it was checked */
};

struct cfw_bundle_report {
    char *dir;         /* the project directory as given */
    char *config_path; /* as displayed */
    char *module_root; /* as displayed */
    char *main_module; /* import name of main, e.g. "main" */
    struct cfw_bundle_module *modules;
    size_t n_modules;
    struct cfw_bundle_finding *findings;
    size_t n_findings;
    struct cfw_bundle_edit *edits;
    size_t n_edits;
    char **runtime_modules; /* runtime-only modules that --verify stands in for */
    size_t n_runtime_modules;
    bool predicts_import_failure; /* an import finding at error or above */
    char *deploy_tool;            /* "pywrangler" or "wrangler" (how the project deploys) */
    bool deps_synced;             /* declared dependencies count as vendored */
    char **synced_modules; /* import names pywrangler sync vendors (--verify stands in for them) */
    size_t n_synced_modules;
};

/* What to assume about `pywrangler sync` (--assume): detect it, or force either way. */
enum cfw_bundle_assume {
    CFW_BUNDLE_ASSUME_AUTO,
    CFW_BUNDLE_ASSUME_SYNCED,
    CFW_BUNDLE_ASSUME_UNSYNCED,
};

/* Checks the project in dir (env may be NULL); NULL with err for configuration errors. */
struct cfw_bundle_report *cfw_bundle_check(const char *dir, const char *env, struct cfw_err *err);
/* The same with an explicit --assume. */
struct cfw_bundle_report *cfw_bundle_check_assume(const char *dir, const char *env,
                                                  enum cfw_bundle_assume assume,
                                                  struct cfw_err *err);
/* Frees a report; accepts NULL. */
void cfw_bundle_report_free(struct cfw_bundle_report *r);

enum cfw_bundle_format {
    CFW_BUNDLE_FMT_TEXT,
    CFW_BUNDLE_FMT_JSON,
    CFW_BUNDLE_FMT_GITHUB,
    CFW_BUNDLE_FMT_SARIF,
};

/* Writes the report in a format to out; 0, or -1 when writing failed. */
int cfw_bundle_report_write(const struct cfw_bundle_report *r, enum cfw_bundle_format fmt,
                            bool color, FILE *out);

/* Appends the unified diff of the report's edits to out; -1 with err when a file cannot be read. */
int cfw_bundle_fix_diff(const struct cfw_bundle_report *r, struct cfw_buf *out,
                        struct cfw_err *err);
/* Applies the edits (temp file, fsync, rename); fills out with what it did; -1 with err. */
int cfw_bundle_fix_write(const struct cfw_bundle_report *r, struct cfw_buf *out,
                         struct cfw_err *err);

struct cfw_bundle_verdict {
    bool ran;       /* python3 was found and started */
    bool import_ok; /* `import <main>` exited 0 */
    bool timed_out;
    int exit_status; /* child exit status, or -signal */
    char *python;    /* python3 path */
    char *output;    /* the child's combined stdout/stderr (capped) */
};

/*
 * Lays the bundle out in a fresh temporary directory as uploaded, adds stand-ins for the
 * runtime-only modules and imports main with python3 -I -S; 0 with the verdict, -1 with err when
 * python3 is missing or the layout cannot be written.
 */
int cfw_bundle_verify(const struct cfw_bundle_report *r, int timeout_ms,
                      struct cfw_bundle_verdict *v, struct cfw_err *err);
/* Releases a verdict's strings; accepts a zeroed verdict. */
void cfw_bundle_verdict_clear(struct cfw_bundle_verdict *v);

/* Runs `--check-bundle` with its arguments, writing to out and errout; returns the exit code. */
int cfw_bundle_run(int argc, char **argv, FILE *out, FILE *errout);
/* Entry point for `cfwatchd --check-bundle ARGS...` (argv after the flag); returns the exit code.
 */
int cfw_check_bundle_main(int argc, char **argv);

#endif
