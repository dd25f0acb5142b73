/* --check-bundle: helpers shared by src/bundle/bundle_*.c (not part of the public API). */
#ifndef CFWATCHD_BUNDLE_INT_H
#define CFWATCHD_BUNDLE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "cfwatchd/bundle.h"
#include "cfwatchd/common.h"
#include "cfwatchd/fsutil.h"

/* The Python standard library's top-level module names (generated, sorted, NULL-terminated). */
extern const char *const cfw_py_stdlib_modules[];
extern const size_t cfw_py_stdlib_count;
/* Returns whether name is importable without upload: standard library or runtime-only module. */
bool bundle_is_stdlib(const char *name);

/* Joins a directory as given and a relative path for display ("." and "" are dropped). */
char *bundle_join(const char *dir, const char *rel);
/* Creates every missing directory of path's parent (mkdir -p of dirname). */
int bundle_mkdirs_for(const char *path, struct cfw_err *err);
/* Whether a top-level module is provided by the Workers runtime (with the external SDK flag). */
bool bundle_is_runtime_module(const char *name, bool external_sdk);
/* The JSON report (with a "verify" object when v is not NULL); newly allocated. */
char *bundle_report_json(const struct cfw_bundle_report *r, const struct cfw_bundle_verdict *v,
                         bool agrees);
/* What the project declares and how it deploys (bundle_deps.c). */
struct bundle_deps {
    bool have_pyproject;
    bool uv_project;        /* pyproject.toml has a [project] table */
    bool lists_workers_py;  /* workers-py (pywrangler) is in one of its dependency lists */
    bool script_pywrangler; /* package.json, Makefile or justfile runs pywrangler */
    bool synced_marker;     /* python_modules/.synced exists */
    bool pywrangler;        /* any of the above: the project deploys with pywrangler */
    char **declared;        /* import names that `pywrangler sync` vendors */
    size_t n_declared;
    bool have_requirements;
    char **required; /* import names listed in requirements.txt */
    int *required_line;
    size_t n_required;
    const char *lock;      /* "pylock.toml" or "uv.lock" when it gave the transitive dependencies */
    char *note;            /* pyproject.toml or a lock file could not be read: why */
    const char *note_file; /* which one (its name in the project directory) */
};
void bundle_deps_load(const char *project_abs, struct bundle_deps *d);
void bundle_deps_clear(struct bundle_deps *d);
/* A requirement's distribution name in PEP 503 form ("Django_CF>=1" -> "django-cf"), or NULL. */
char *bundle_dist_normalise(const char *req);
bool bundle_names_has(char *const *names, size_t n, const char *name);

/* The runtime-only module names (NULL-terminated). */
extern const char *const bundle_runtime_modules[];

#endif
