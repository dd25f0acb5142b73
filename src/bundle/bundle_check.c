/* --check-bundle: the module set as wrangler uploads it, import resolution and the findings. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle_int.h"
#include "cfwatchd/bundle.h"

/*
 * Modules the Workers Python runtime provides without an upload (FORMATS.md §5.2, §6):
 *   js, pyodide_js      Pyodide's bridges to the JavaScript globals and to the pyodide JS API;
 *   pyodide, _pyodide   Pyodide's own package (pyodide.ffi, pyodide.http, ...) and its internals;
 *   _pyodide_core       the C extension behind pyodide.ffi;
 *   workers, asgi       the Cloudflare SDK and its ASGI shim: built in until the external SDK
 *                       (compatibility_date >= 2026-04-21 or enable_python_external_sdk) makes
 *                       them vendored packages (workers-runtime-sdk via pywrangler sync).
 */
const char *const bundle_runtime_modules[] = {"_pyodide", "_pyodide_core", "asgi",    "js",
                                              "pyodide",  "pyodide_js",    "workers", NULL};

#define EXTERNAL_SDK_DATE "2026-04-21"

bool bundle_is_runtime_module(const char *name, bool external_sdk)
{
    for (size_t k = 0; bundle_runtime_modules[k] != NULL; k++) {
        if (strcmp(bundle_runtime_modules[k], name) == 0) {
            return !(external_sdk && (strcmp(name, "workers") == 0 || strcmp(name, "asgi") == 0));
        }
    }
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

bool bundle_is_stdlib(const char *name)
{
    return bsearch(&name, cfw_py_stdlib_modules, cfw_py_stdlib_count, sizeof(char *), cmp_str) !=
           NULL;
}

const char *cfw_bundle_sev_name(enum cfw_bundle_sev sev)
{
    switch (sev) {
    case CFW_BUNDLE_SEV_INFO:
        return "info";
    case CFW_BUNDLE_SEV_WARNING:
        return "warning";
    case CFW_BUNDLE_SEV_ERROR:
        return "error";
    case CFW_BUNDLE_SEV_CRITICAL:
        return "critical";
    }
    return "info";
}

int cfw_bundle_sev_parse(const char *s, enum cfw_bundle_sev *out)
{
    for (int k = CFW_BUNDLE_SEV_INFO; k <= CFW_BUNDLE_SEV_CRITICAL; k++) {
        if (strcmp(s, cfw_bundle_sev_name((enum cfw_bundle_sev)k)) == 0) {
            *out = (enum cfw_bundle_sev)k;
            return 0;
        }
    }
    return -1;
}

/* ---- paths ---- */

/* Lexically normalises an absolute path ("." and ".." resolved, no trailing slash). */
static char *norm_abs(const char *path)
{
    size_t n = strlen(path);
    char *out = cfw_xmalloc(n + 2);
    size_t o = 0;
    const char *p = path;

    out[o++] = '/';
    while (*p != '\0') {
        const char *seg;
        size_t sl;
        while (*p == '/') {
            p++;
        }
        seg = p;
        while (*p != '\0' && *p != '/') {
            p++;
        }
        sl = (size_t)(p - seg);
        if (sl == 0 || (sl == 1 && seg[0] == '.')) {
            continue;
        }
        if (sl == 2 && seg[0] == '.' && seg[1] == '.') {
            while (o > 1 && out[o - 1] != '/') {
                o--;
            }
            if (o > 1) {
                o--;
            }
            continue;
        }
        if (o > 1) {
            out[o++] = '/';
        }
        memcpy(out + o, seg, sl);
        o += sl;
    }
    out[o] = '\0';
    return out;
}

static char *resolve(const char *base_abs, const char *rel)
{
    char *joined, *r;

    if (rel[0] == '/') {
        return norm_abs(rel);
    }
    joined = cfw_xasprintf("%s/%s", base_abs, rel);
    r = norm_abs(joined);
    free(joined);
    return r;
}

/* Path of to relative to from (both normalised absolute); "" when equal. */
static char *rel_path(const char *from, const char *to)
{
    size_t common = 0, k = 0;
    struct cfw_buf b;

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    if (strcmp(from, "/") == 0) {
        return cfw_xstrdup(to + 1);
    }
    /* Longest common prefix on a '/' boundary. */
    while (from[k] != '\0' && from[k] == to[k]) {
        k++;
        if ((from[k] == '\0' || from[k] == '/') && (to[k] == '\0' || to[k] == '/')) {
            common = k;
        }
    }
    for (const char *p = from + common; *p != '\0'; p++) {
        if (*p == '/') {
            cfw_buf_puts(&b, b.len ? "/.." : "..");
        }
    }
    if (to[common] == '/') {
        if (b.len) {
            cfw_buf_puts(&b, to + common);
        } else {
            cfw_buf_puts(&b, to + common + 1);
        }
    }
    return cfw_buf_take(&b);
}

static bool is_under(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (strcmp(root, "/") == 0) {
        return true;
    }
    return strncmp(root, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- the run's state ---- */

struct eff_rule {
    const char *type;
    const char *const *globs;
    size_t n_globs;
};

struct pyfile {
    const char *name; /* bundle name */
    size_t mod;       /* index into r->modules */
    struct cfw_bundle_imports im;
    size_t *res;    /* per import: index into the resolution table */
    bool deploy;    /* imported while main is imported (unguarded, module level) */
    bool reachable; /* imported from main at all */
};

enum rkind { RK_OK, RK_SRC, RK_OUTSIDE, RK_UNRESOLVED, RK_SHADOW, RK_DECLARED };

struct resolution {
    enum rkind kind;
    char *why;     /* message detail */
    char *outside; /* display path of the out-of-root file */
    char **loads;  /* bundle files executed by the import */
    size_t n_loads;
    char **ns_dirs; /* bundle directories imported as namespace packages */
    size_t n_ns_dirs;
    bool sdk;           /* workers/asgi under the external SDK */
    size_t strip;       /* RK_SRC: how many leading parts are the path to the module root */
    bool ns_loses;      /* a namespace directory of the bundle loses to a package elsewhere */
    bool legacy_vendor; /* RK_DECLARED: found in the bundle's vendor/ directory */
};

struct run {
    const char *dir;
    struct cfw_bundle_config cfg;
    struct cfw_bundle_report *r;
    char *project_abs;
    char *project_real;
    char *root_abs;
    char *root_rel;  /* module root relative to the project ("" when equal) */
    char *root_name; /* base name of the module root */
    char *main_abs;
    char *main_rel_root; /* main relative to the module root */
    char *config_abs;
    char *hidden_abs; /* <project>/.wrangler */
    bool external_sdk;
    struct bundle_deps deps;
    bool synced; /* declared dependencies count as vendored (pywrangler, or --assume synced) */
    enum cfw_bundle_assume assume;
    char **root_parts; /* the module root's path from the project root, split at '/' */
    size_t n_root_parts;
    char **declared_done; /* declared-dependency names already reported */
    size_t n_declared_done;
    struct eff_rule *rules;
    size_t n_rules;
    size_t n_files;
    bool files_capped;
    char **bnames; /* sorted non-vendored upload names */
    size_t n_bnames;
    char **vnames; /* sorted vendored names, relative to python_modules/ */
    size_t n_vnames;
    struct pyfile *py;
    size_t n_py;
    struct resolution *res;
    size_t n_res;
    struct outside_hit {
        char *top;
        char *hit;
    } * outside; /* find_outside's answers, by top-level name */
    size_t n_outside;
    char **init_done; /* directories already reported by missing-init */
    size_t n_init_done;
    size_t cap_modules, cap_findings, cap_edits;
};

static char *display(struct run *x, const char *abs)
{
    char *rel = rel_path(x->project_abs, abs);
    char *d = bundle_join(x->dir, rel);
    free(rel);
    return d;
}

static struct cfw_bundle_finding *add_finding(struct run *x, const char *rule,
                                              enum cfw_bundle_sev sev, const char *file, int line,
                                              int col)
{
    struct cfw_bundle_report *r = x->r;
    struct cfw_bundle_finding *f;

    if (r->n_findings == x->cap_findings) {
        x->cap_findings = x->cap_findings ? x->cap_findings * 2 : 16;
        r->findings = cfw_xrealloc(r->findings, x->cap_findings * sizeof(*r->findings));
    }
    f = &r->findings[r->n_findings++];
    memset(f, 0, sizeof(*f));
    f->rule = rule;
    f->sev = sev;
    f->file = cfw_xstrdup(file);
    f->line = line > 0 ? line : 1;
    f->col = col > 0 ? col : 1;
    return f;
}

static void add_edit(struct run *x, const char *path, size_t start, size_t end,
                     const char *replacement, const char *text)
{
    struct cfw_bundle_report *r = x->r;

    if (r->n_edits == x->cap_edits) {
        x->cap_edits = x->cap_edits ? x->cap_edits * 2 : 8;
        r->edits = cfw_xrealloc(r->edits, x->cap_edits * sizeof(*r->edits));
    }
    r->edits[r->n_edits++] = (struct cfw_bundle_edit){
        cfw_xstrdup(path), start, end, replacement ? cfw_xstrdup(replacement) : NULL,
        text ? cfw_xstrndup(text + start, end - start) : NULL};
}

static void add_module(struct run *x, const char *name, const char *abs, const char *type,
                       bool vendored, bool is_main)
{
    struct cfw_bundle_report *r = x->r;

    if (r->n_modules == x->cap_modules) {
        x->cap_modules = x->cap_modules ? x->cap_modules * 2 : 64;
        r->modules = cfw_xrealloc(r->modules, x->cap_modules * sizeof(*r->modules));
    }
    r->modules[r->n_modules++] = (struct cfw_bundle_module){cfw_xstrdup(name), display(x, abs),
                                                            cfw_xstrdup(type), vendored, is_main};
}

/* ---- module rules (wrangler's parseRules: user rules, the Python rule, the defaults) ---- */

static const char *const default_text[] = {"**/*.txt", "**/*.html", "**/*.sql"};
static const char *const default_data[] = {"**/*.bin"};
static const char *const default_wasm[] = {"**/*.wasm", "**/*.wasm?module"};
static const char *const python_globs[] = {"**/*.py"};

static const char *module_type(const char *rule_type)
{
    static const char *const map[][2] = {
        {"ESModule", "esm"},
        {"CommonJS", "commonjs"},
        {"CompiledWasm", "compiled-wasm"},
        {"Text", "text"},
        {"Data", "buffer"},
        {"PythonModule", "python"},
        {"PythonRequirement", "python-requirement"},
    };
    for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
        if (strcmp(map[k][0], rule_type) == 0) {
            return map[k][1];
        }
    }
    return rule_type;
}

static void build_rules(struct run *x)
{
    struct cfw_bundle_config *cfg = &x->cfg;
    size_t n = 0, cap = cfg->n_rules + 4;
    struct eff_rule *all = cfw_xcalloc(cap, sizeof(*all));
    bool have_py = false;
    const char **done = cfw_xcalloc(cap, sizeof(char *));
    size_t n_done = 0;

    for (size_t k = 0; k < cfg->n_rules; k++) {
        all[n++] = (struct eff_rule){cfg->rules[k].type, (const char *const *)cfg->rules[k].globs,
                                     cfg->rules[k].n_globs};
        have_py |= strcmp(cfg->rules[k].type, "PythonModule") == 0;
    }
    if (!have_py) {
        all[n++] = (struct eff_rule){"PythonModule", python_globs, 1};
    }
    all[n++] = (struct eff_rule){"Text", default_text, 3};
    all[n++] = (struct eff_rule){"Data", default_data, 1};
    all[n++] = (struct eff_rule){"CompiledWasm", default_wasm, 2};
    /* A later rule of a type already completed (no fallthrough) is dropped. */
    x->rules = cfw_xcalloc(n, sizeof(*x->rules));
    for (size_t k = 0; k < n; k++) {
        bool drop = false, fall = false;
        for (size_t d = 0; d < n_done; d++) {
            drop |= strcmp(done[d], all[k].type) == 0;
        }
        if (drop) {
            continue;
        }
        x->rules[x->n_rules++] = all[k];
        if (k < cfg->n_rules) {
            fall = cfg->rules[k].fallthrough;
        }
        if (!fall) {
            done[n_done++] = all[k].type;
        }
    }
    free(done);
    free(all);
}

/* ---- walking the tree (wrangler's getFiles) ---- */

typedef void (*file_cb)(struct run *x, const char *abs, const char *rel);

static void limit_finding(struct run *x, const char *abs, const char *what)
{
    char *d = display(x, abs);
    struct cfw_bundle_finding *f = add_finding(x, "scan-limit", CFW_BUNDLE_SEV_INFO, d, 1, 1);
    f->message = cfw_xasprintf("%s: %s", d, what);
    f->fix = cfw_xstrdup("cfwatchd --check-bundle did not look at this path; wrangler may "
                         "still upload it");
    free(d);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void walk(struct run *x, const char *abs_dir, const char *rel, int depth, file_cb cb,
                 const char *skip_file)
{
    DIR *d = opendir(abs_dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;

    if (d == NULL) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            names = cfw_xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = cfw_xstrdup(de->d_name);
    }
    closedir(d);
    if (n > 0) {
        qsort(names, n, sizeof(*names), cmp_cstr);
    }
    for (size_t k = 0; k < n; k++) {
        char *abs = cfw_xasprintf("%s/%s", abs_dir, names[k]);
        char *r = rel[0] ? cfw_xasprintf("%s/%s", rel, names[k]) : cfw_xstrdup(names[k]);
        struct stat st;

        if (lstat(abs, &st) != 0) {
            goto next;
        }
        if (S_ISLNK(st.st_mode)) {
            char real[PATH_MAX];
            /* wrangler reads symlinked files and does not descend into symlinked directories. */
            if (realpath(abs, real) == NULL || stat(real, &st) != 0) {
                goto next;
            }
            if (!is_under(x->project_real, real)) {
                limit_finding(x, abs,
                              "symbolic link to a target outside the project, not "
                              "followed");
                goto next;
            }
            if (!S_ISREG(st.st_mode)) {
                goto next;
            }
        } else if (S_ISDIR(st.st_mode)) {
            if (strcmp(abs, x->hidden_abs) == 0) {
                goto next;
            }
            if (depth + 1 > CFW_BUNDLE_MAX_DEPTH) {
                limit_finding(x, abs, "directory nested deeper than the depth cap, not scanned");
                goto next;
            }
            walk(x, abs, r, depth + 1, cb, skip_file);
            goto next;
        }
        if (skip_file != NULL && strcmp(abs, skip_file) == 0) {
            goto next;
        }
        if (x->n_files >= CFW_BUNDLE_MAX_FILES) {
            if (!x->files_capped) {
                x->files_capped = true;
                limit_finding(x, abs,
                              "more files than the file-count cap; the rest is not "
                              "scanned");
            }
            goto next;
        }
        x->n_files++;
        cb(x, abs, r);
    next:
        free(abs);
        free(r);
    }
    for (size_t k = 0; k < n; k++) {
        free(names[k]);
    }
    free(names);
}

static void root_file(struct run *x, const char *abs, const char *rel)
{
    if (strcmp(rel, x->main_rel_root) == 0) {
        return; /* main is uploaded under its base name */
    }
    for (size_t k = 0; k < x->n_rules; k++) {
        for (size_t g = 0; g < x->rules[k].n_globs; g++) {
            if (cfw_bundle_glob_match(x->rules[k].globs[g], rel)) {
                add_module(x, rel, abs, module_type(x->rules[k].type), false, false);
                return;
            }
        }
    }
}

static void vendor_file(struct run *x, const char *abs, const char *rel)
{
    char *name;

    for (size_t k = 0; k < x->cfg.n_py_excludes; k++) {
        if (cfw_bundle_glob_match(x->cfg.py_excludes[k], rel)) {
            return;
        }
    }
    name = cfw_xasprintf("python_modules/%s", rel);
    add_module(x, name, abs, "buffer", true, false);
    free(name);
}

/* ---- name lookups over the uploaded files ---- */

static bool names_has(char **names, size_t n, const char *name)
{
    return n > 0 && bsearch(&name, names, n, sizeof(char *), cmp_cstr) != NULL;
}

/* Whether any uploaded name lies under dir/ (the directory exists in the bundle). */
static bool names_has_dir(char **names, size_t n, const char *dir)
{
    char *prefix = cfw_xasprintf("%s/", dir);
    size_t lo = 0, hi = n;
    bool r;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(names[mid], prefix) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    r = lo < n && starts_with(names[lo], prefix);
    free(prefix);
    return r;
}

/* Vendored extension modules: name.so or name.<tag>.so directly in the directory. */
static bool names_has_ext(char **names, size_t n, const char *dir, const char *mod)
{
    char *prefix = dir[0] ? cfw_xasprintf("%s/%s.", dir, mod) : cfw_xasprintf("%s.", mod);
    size_t lo = 0, hi = n, pl = strlen(prefix);
    bool r = false;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(names[mid], prefix) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (; lo < n && strncmp(names[lo], prefix, pl) == 0; lo++) {
        if (strchr(names[lo] + pl, '/') == NULL && ends_with(names[lo], ".so")) {
            r = true;
            break;
        }
    }
    free(prefix);
    return r;
}

enum found { F_NONE, F_PKG, F_MOD, F_NS };

/* Looks up one module part in a directory of the bundle (dir "" is the root). */
static enum found probe(char **names, size_t n, const char *dir, const char *part, bool ext)
{
    char *base = dir[0] ? cfw_xasprintf("%s/%s", dir, part) : cfw_xstrdup(part);
    char *init = cfw_xasprintf("%s/__init__.py", base);
    char *mod = cfw_xasprintf("%s.py", base);
    enum found f = F_NONE;

    if (names_has(names, n, init)) {
        f = F_PKG;
    } else if (names_has(names, n, mod) || (ext && names_has_ext(names, n, dir, part))) {
        f = F_MOD;
    } else if (names_has_dir(names, n, base)) {
        f = F_NS;
    }
    free(base);
    free(init);
    free(mod);
    return f;
}

static void res_push(char ***v, size_t *n, const char *s)
{
    for (size_t k = 0; k < *n; k++) {
        if (strcmp((*v)[k], s) == 0) {
            return;
        }
    }
    *v = cfw_xrealloc(*v, (*n + 1) * sizeof(char *));
    (*v)[(*n)++] = cfw_xstrdup(s);
}

/* Records what importing the bundle path (no extension) of a found kind runs: its __init__.py,
 * its .py file, or the namespace directory itself. */
static void record_found(struct resolution *rs, const char *path, enum found kind)
{
    if (kind == F_PKG) {
        char *init = cfw_xasprintf("%s/__init__.py", path);
        res_push(&rs->loads, &rs->n_loads, init);
        free(init);
    } else if (kind == F_MOD) {
        char *mod = cfw_xasprintf("%s.py", path);
        res_push(&rs->loads, &rs->n_loads, mod);
        free(mod);
    } else if (kind == F_NS) {
        res_push(&rs->ns_dirs, &rs->n_ns_dirs, path);
    }
}

static size_t split_dots(const char *s, char ***parts)
{
    size_t n = 0;
    const char *p = s;

    *parts = NULL;
    if (s[0] == '\0') {
        return 0;
    }
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        *parts = cfw_xrealloc(*parts, (n + 1) * sizeof(char *));
        (*parts)[n++] = cfw_xstrndup(p, len);
        if (dot == NULL) {
            return n;
        }
        p = dot + 1;
    }
}

static void free_parts(char **parts, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(parts[k]);
    }
    free(parts);
}

static void resolution_clear(struct resolution *rs)
{
    free(rs->why);
    free(rs->outside);
    free_parts(rs->loads, rs->n_loads);
    free_parts(rs->ns_dirs, rs->n_ns_dirs);
}

static char *join_dots(char **parts, size_t n)
{
    struct cfw_buf b;
    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    for (size_t k = 0; k < n; k++) {
        cfw_buf_printf(&b, "%s%s", k ? "." : "", parts[k]);
    }
    return cfw_buf_take(&b);
}

/*
 * Descends parts[from..n) inside the bundle starting at directory dir (a package, "" = root);
 * records loaded files and namespace directories; returns the final kind or F_NONE with why.
 */
static enum found descend(struct run *x, struct resolution *rs, const char *dir, enum found kind,
                          char **parts, size_t from, size_t n, const char *full)
{
    struct cfw_buf path;

    cfw_buf_init(&path, CFW_BUF_MAX_BUILT);
    cfw_buf_puts(&path, dir);
    for (size_t k = from; k < n; k++) {
        enum found f;
        char *sofar;
        if (kind == F_MOD) {
            sofar = join_dots(parts, k);
            rs->why =
                cfw_xasprintf("No module named '%s': '%s' is a module, not a package", full, sofar);
            free(sofar);
            cfw_buf_free(&path);
            return F_NONE;
        }
        f = probe(x->bnames, x->n_bnames, path.data ? path.data : "", parts[k], false);
        if (path.len) {
            cfw_buf_putc(&path, '/');
        }
        cfw_buf_puts(&path, parts[k]);
        if (f == F_NONE) {
            sofar = join_dots(parts, k + 1);
            rs->why = cfw_xasprintf("No module named '%s'", sofar);
            free(sofar);
            cfw_buf_free(&path);
            return F_NONE;
        }
        record_found(rs, path.data, f);
        kind = f;
    }
    cfw_buf_free(&path);
    return kind;
}

/*
 * Resolves `from <module> import names` / `import <module>` for bundle-local packages: the
 * package directory pkgdir of kind; from-names that are submodules are loaded too.
 */
static void from_names(struct run *x, struct resolution *rs, const char *pkgdir, enum found kind,
                       const struct cfw_bundle_import *im, const char *modname)
{
    if (!im->is_from || kind == F_MOD) {
        return;
    }
    for (size_t k = 0; k < im->n_names; k++) {
        enum found f;
        char *base;
        if (strcmp(im->names[k], "*") == 0) {
            continue;
        }
        f = probe(x->bnames, x->n_bnames, pkgdir, im->names[k], false);
        base = pkgdir[0] ? cfw_xasprintf("%s/%s", pkgdir, im->names[k]) : cfw_xstrdup(im->names[k]);
        if (f != F_NONE) {
            record_found(rs, base, f);
        } else if (kind == F_NS && rs->kind == RK_OK) {
            rs->kind = RK_UNRESOLVED;
            rs->why =
                cfw_xasprintf("cannot import name '%s' from '%s' (unknown location): "
                              "'%s' is a directory without __init__.py and has no module "
                              "'%s'",
                              im->names[k], modname[0] ? modname : ".", modname, im->names[k]);
        }
        free(base);
    }
}

static char *find_outside_uncached(struct run *x, const char *top);

/* Where a top-level name is found outside the module root, as a display path, or NULL. */
static char *find_outside(struct run *x, const char *top)
{
    char *hit;

    for (size_t k = 0; k < x->n_outside; k++) {
        if (strcmp(x->outside[k].top, top) == 0) {
            return x->outside[k].hit ? cfw_xstrdup(x->outside[k].hit) : NULL;
        }
    }
    hit = find_outside_uncached(x, top);
    x->outside = cfw_xrealloc(x->outside, (x->n_outside + 1) * sizeof(*x->outside));
    x->outside[x->n_outside].top = cfw_xstrdup(top);
    x->outside[x->n_outside++].hit = hit ? cfw_xstrdup(hit) : NULL;
    return hit;
}

static char *find_outside_uncached(struct run *x, const char *top)
{
    char *dir;

    if (strcmp(x->project_abs, x->root_abs) == 0) {
        return NULL;
    }
    dir = cfw_xstrdup(x->project_abs);
    /* The project root and every directory between it and the module root. */
    for (;;) {
        char *py = cfw_xasprintf("%s/%s.py", dir, top);
        char *pkg = cfw_xasprintf("%s/%s", dir, top);
        struct stat st;
        char *hit = NULL;

        if (stat(py, &st) == 0 && S_ISREG(st.st_mode)) {
            hit = display(x, py);
        } else if (stat(pkg, &st) == 0 && S_ISDIR(st.st_mode) && strcmp(pkg, x->root_abs) != 0) {
            hit = display(x, pkg);
        }
        free(py);
        free(pkg);
        if (hit != NULL) {
            free(dir);
            return hit;
        }
        if (!is_under(dir, x->root_abs) || strcmp(dir, x->root_abs) == 0) {
            break;
        }
        {
            /* next directory towards the module root */
            const char *rest = x->root_abs + strlen(dir) + (strcmp(dir, "/") == 0 ? 0 : 1);
            const char *slash = strchr(rest, '/');
            char *next = slash ? cfw_xstrndup(x->root_abs, (size_t)(slash - x->root_abs))
                               : cfw_xstrdup(x->root_abs);
            free(dir);
            dir = next;
            if (strcmp(dir, x->root_abs) == 0) {
                break;
            }
        }
    }
    free(dir);
    return NULL;
}

/* Package parts of a bundle file: "a/b/c.py" -> [a, b]; "a/b/__init__.py" -> [a, b]. */
static size_t package_of(const char *name, char ***parts)
{
    char *copy = cfw_xstrdup(name), *slash;
    size_t n;

    slash = strrchr(copy, '/');
    if (slash == NULL) {
        free(copy);
        *parts = NULL;
        return 0;
    }
    *slash = '\0';
    for (char *p = copy; *p; p++) {
        if (*p == '/') {
            *p = '.';
        }
    }
    n = split_dots(copy, parts);
    free(copy);
    return n;
}

/* Whether name is one of the runtime's or the SDK's modules, whatever the SDK flags say. */
static bool is_runtime_name(const char *name)
{
    for (size_t k = 0; bundle_runtime_modules[k] != NULL; k++) {
        if (strcmp(bundle_runtime_modules[k], name) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * Whether an import of a bundle module named like a runtime module wants the runtime's: always
 * for Pyodide's own modules; for the SDK's `workers` and `asgi` (a project's own asgi.py is
 * common) only when it imports one of the SDK's names (cloudflare/workers-py,
 * packages/runtime-sdk/src/workers/__init__.py and asgi.py).
 */
static bool wants_runtime(const char *top, const struct cfw_bundle_import *im)
{
    static const char *const sdk_names[] = {"Blob",
                                            "Context",
                                            "DurableObject",
                                            "FormData",
                                            "File",
                                            "Request",
                                            "Response",
                                            "WorkerEntrypoint",
                                            "WorkflowEntrypoint",
                                            "fetch",
                                            "handler",
                                            "import_from_javascript",
                                            "python_from_rpc",
                                            "python_to_rpc",
                                            "wait_until",
                                            "env"};

    if (strcmp(top, "workers") != 0 && strcmp(top, "asgi") != 0) {
        return true;
    }
    if (!im->is_from || strchr(im->module, '.') != NULL) {
        return false;
    }
    for (size_t k = 0; k < im->n_names; k++) {
        for (size_t j = 0; j < sizeof(sdk_names) / sizeof(sdk_names[0]); j++) {
            if (strcmp(im->names[k], sdk_names[j]) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* Whether `from . import names` / the module parts[from..n) resolve in the bundle root. */
static bool resolves_in_root(struct run *x, char **parts, size_t from, size_t n,
                             const struct cfw_bundle_import *im)
{
    struct cfw_buf dir;
    bool ok = true;

    cfw_buf_init(&dir, CFW_BUF_MAX_BUILT);
    for (size_t k = from; k < n && ok; k++) {
        enum found f = probe(x->bnames, x->n_bnames, dir.data ? dir.data : "", parts[k], false);
        ok = f != F_NONE && !(f == F_MOD && k + 1 < n);
        cfw_buf_printf(&dir, "%s%s", dir.len ? "/" : "", parts[k]);
    }
    if (ok && from == n) {
        /* `from src import a, b`: every name must be a module of the root. */
        ok = im->is_from && im->n_names > 0;
        for (size_t k = 0; k < im->n_names && ok; k++) {
            ok = strcmp(im->names[k], "*") != 0 &&
                 probe(x->bnames, x->n_bnames, "", im->names[k], false) != F_NONE;
        }
    }
    cfw_buf_free(&dir);
    return ok;
}

/*
 * How many leading parts of an absolute import are the module root's path from the project
 * root (`src.`, `src.workers.`, `app.src.`, or a tail of it such as `workers.` for
 * src/workers/) such that the rest resolves in the upload; 0 when none. The longest wins. The
 * bare root name (`src.` for src/) counts even when the rest does not resolve.
 */
static size_t root_prefix(struct run *x, char **parts, size_t n, const struct cfw_bundle_import *im)
{
    for (size_t start = 0; start < x->n_root_parts; start++) {
        size_t len = x->n_root_parts - start;
        bool match = len <= n;
        for (size_t k = 0; k < len && match; k++) {
            match = strcmp(parts[k], x->root_parts[start + k]) == 0;
        }
        if (match && resolves_in_root(x, parts, len, n, im)) {
            return len;
        }
    }
    if (x->root_rel[0] != '\0' && strcmp(parts[0], x->root_name) == 0) {
        return 1;
    }
    return 0;
}

/*
 * The packages containing the file are already imported: a relative import descends from its
 * base package parts[0..keep) to the module parts[keep..n), then to the from-names.
 */
static void descend_relative(struct run *x, struct resolution *rs, char **parts, size_t keep,
                             size_t n, const struct cfw_bundle_import *im)
{
    struct cfw_buf d;
    char *full = join_dots(parts, n), *pkgdir, *init;
    enum found kind;

    cfw_buf_init(&d, CFW_BUF_MAX_BUILT);
    for (size_t k = 0; k < keep; k++) {
        cfw_buf_printf(&d, "%s%s", k ? "/" : "", parts[k]);
    }
    pkgdir = cfw_buf_take(&d);
    init = cfw_xasprintf("%s/__init__.py", pkgdir);
    kind = names_has(x->bnames, x->n_bnames, init) ? F_PKG : F_NS;
    free(init);
    kind = descend(x, rs, pkgdir, kind, parts, keep, n, full);
    if (kind == F_NONE) {
        rs->kind = RK_UNRESOLVED;
    } else {
        char *dir = cfw_xstrdup(pkgdir);
        for (size_t k = keep; k < n; k++) {
            char *nd = cfw_xasprintf("%s/%s", dir, parts[k]);
            free(dir);
            dir = nd;
        }
        from_names(x, rs, dir, kind, im, full);
        free(dir);
    }
    free(full);
    free(pkgdir);
}

/* `from .a import b`, `from .. import c`: resolved from the package of the importing file. */
static void resolve_relative(struct run *x, const struct pyfile *pf,
                             const struct cfw_bundle_import *im, struct resolution *rs)
{
    char **pkg = NULL, **mparts = NULL, **parts;
    size_t np = package_of(pf->name, &pkg), nm = split_dots(im->module, &mparts), keep, n = 0;

    if (np == 0) {
        rs->kind = RK_UNRESOLVED;
        rs->why = cfw_xasprintf("attempted relative import with no known parent package: "
                                "%s is uploaded as the top-level module '%.*s'",
                                pf->name, (int)strlen(pf->name) - 3, pf->name);
        free_parts(mparts, nm);
        return;
    }
    if ((size_t)im->level > np) {
        rs->kind = RK_UNRESOLVED;
        rs->why = cfw_xstrdup("attempted relative import beyond top-level package");
        free_parts(pkg, np);
        free_parts(mparts, nm);
        return;
    }
    keep = np - (size_t)(im->level - 1);
    parts = cfw_xcalloc(keep + nm + 1, sizeof(char *));
    for (size_t k = 0; k < keep; k++) {
        parts[n++] = cfw_xstrdup(pkg[k]);
    }
    for (size_t k = 0; k < nm; k++) {
        parts[n++] = cfw_xstrdup(mparts[k]);
    }
    free_parts(pkg, np);
    free_parts(mparts, nm);
    descend_relative(x, rs, parts, keep, n, im);
    free_parts(parts, n);
}

/* An absolute import of a bundle package, module or namespace directory: what it loads, down to
 * the from-names. */
static void resolve_in_bundle(struct run *x, struct resolution *rs, char **parts, size_t n,
                              enum found fb, const struct cfw_bundle_import *im)
{
    char *full = join_dots(parts, n);
    enum found kind;

    record_found(rs, parts[0], fb);
    kind = descend(x, rs, parts[0], fb, parts, 1, n, full);
    if (kind == F_NONE) {
        rs->kind = RK_UNRESOLVED;
    } else {
        struct cfw_buf d;
        cfw_buf_init(&d, CFW_BUF_MAX_BUILT);
        for (size_t k = 0; k < n; k++) {
            cfw_buf_printf(&d, "%s%s", k ? "/" : "", parts[k]);
        }
        from_names(x, rs, d.data, kind, im, full);
        cfw_buf_free(&d);
    }
    free(full);
}

static void resolve_import(struct run *x, const struct pyfile *pf,
                           const struct cfw_bundle_import *im, struct resolution *rs);

/* `import src.app` when src/ is (the end of) the module root's path: the import fails as it
 * stands, and what it needs once the prefix is gone is kept (for missing-init). */
static void resolve_src_prefix(struct run *x, const struct pyfile *pf,
                               const struct cfw_bundle_import *im, struct resolution *rs,
                               size_t strip, size_t n, const char *top)
{
    struct cfw_bundle_import stripped = *im;
    struct resolution sub;
    const char *rest = im->module;

    rs->kind = RK_SRC;
    rs->strip = strip;
    rs->why = cfw_xasprintf("No module named '%s'", top);
    if (n <= strip) {
        return;
    }
    for (size_t k = 0; k < strip; k++) {
        rest = strchr(rest, '.') + 1;
    }
    stripped.module = (char *)rest;
    resolve_import(x, pf, &stripped, &sub);
    rs->ns_dirs = sub.ns_dirs;
    rs->n_ns_dirs = sub.n_ns_dirs;
    sub.ns_dirs = NULL;
    sub.n_ns_dirs = 0;
    resolution_clear(&sub);
}

/* An absolute import that nothing provides: why, in the words of its most likely cause. */
static void resolve_missing(struct run *x, struct resolution *rs, const char *top)
{
    rs->kind = RK_UNRESOLVED;
    if (strcmp(top, "workers") == 0 || strcmp(top, "asgi") == 0) {
        rs->sdk = true;
        rs->why = cfw_xasprintf("No module named '%s': from compatibility_date %s on (or "
                                "with enable_python_external_sdk) the Python Workers SDK is "
                                "no longer built into the runtime and must be vendored",
                                top, EXTERNAL_SDK_DATE);
    } else if (bundle_names_has(x->deps.declared, x->deps.n_declared, top)) {
        rs->why = cfw_xasprintf("No module named '%s': it is declared in pyproject.toml but "
                                "not vendored in python_modules/, and plain `wrangler "
                                "deploy` does not vendor it",
                                top);
    } else if ((rs->outside = find_outside(x, top)) != NULL) {
        rs->kind = RK_OUTSIDE;
        rs->why = cfw_xasprintf("No module named '%s': %s exists in the project but "
                                "outside the module root %s/, so it is not uploaded",
                                top, rs->outside, x->r->module_root);
    } else {
        rs->why = cfw_xasprintf("No module named '%s': it is not uploaded, not vendored "
                                "in python_modules/, not declared in pyproject.toml, "
                                "not in the Python standard library and not a Workers "
                                "runtime module",
                                top);
    }
}

/* An absolute import, tried in the resolution order of docs/check-bundle.md. */
static void resolve_absolute(struct run *x, const struct pyfile *pf,
                             const struct cfw_bundle_import *im, struct resolution *rs)
{
    char **parts = NULL;
    size_t n = split_dots(im->module, &parts), strip;
    const char *top;
    enum found fb, fv;
    bool std, rt, sdk_name, declared;

    if (n == 0) {
        return;
    }
    top = parts[0];
    fb = probe(x->bnames, x->n_bnames, "", top, false);
    fv = probe(x->vnames, x->n_vnames, "", top, true);
    std = bundle_is_stdlib(top);
    rt = bundle_is_runtime_module(top, x->external_sdk);
    sdk_name = is_runtime_name(top) && wants_runtime(top, im);
    declared = x->synced && bundle_names_has(x->deps.declared, x->deps.n_declared, top);
    if ((std || sdk_name) && (fb == F_PKG || fb == F_MOD)) {
        /* Resolution order (docs/check-bundle.md): the standard library and the runtime's
         * modules sit where a bundle module of the same name cannot replace them reliably. */
        rs->kind = RK_SHADOW;
        rs->why = cfw_xasprintf(
            "%s %s in the upload has the name of %s '%s'",
            fb == F_MOD ? "the module" : "the package", fb == F_MOD ? "file" : "directory",
            std ? "the Python standard library module" : "the Workers runtime module", top);
    } else if (std || (rt && fb != F_PKG && fb != F_MOD)) {
        /* standard library or runtime: submodules are not checked */
    } else if (fb == F_PKG || fb == F_MOD ||
               (fb == F_NS && fv != F_PKG && fv != F_MOD && !declared)) {
        resolve_in_bundle(x, rs, parts, n, fb, im);
    } else if (fv != F_NONE) {
        /* vendored: submodules are not checked */
        if (fb == F_NS) {
            rs->ns_loses = true;
            res_push(&rs->ns_dirs, &rs->n_ns_dirs, top);
        }
    } else if (probe(x->bnames, x->n_bnames, "vendor", top, true) != F_NONE) {
        /* workerd's legacy /session/metadata/vendor (python.ts, LEGACY_VENDOR_PATH). */
        rs->kind = RK_DECLARED;
        rs->legacy_vendor = true;
    } else if (declared) {
        rs->kind = RK_DECLARED;
        if (fb == F_NS) {
            rs->ns_loses = true;
            res_push(&rs->ns_dirs, &rs->n_ns_dirs, top);
        }
    } else if ((strip = root_prefix(x, parts, n, im)) > 0) {
        resolve_src_prefix(x, pf, im, rs, strip, n, top);
    } else {
        resolve_missing(x, rs, top);
    }
    free_parts(parts, n);
}

static void resolve_import(struct run *x, const struct pyfile *pf,
                           const struct cfw_bundle_import *im, struct resolution *rs)
{
    memset(rs, 0, sizeof(*rs));
    rs->kind = RK_OK;
    if (im->level > 0) {
        resolve_relative(x, pf, im, rs);
    } else {
        resolve_absolute(x, pf, im, rs);
    }
}

/* ---- reading and resolving every Python file ---- */

static int cmp_pyfile(const void *a, const void *b)
{
    return strcmp(((const struct pyfile *)a)->name, ((const struct pyfile *)b)->name);
}

static struct pyfile *find_py(struct run *x, const char *name)
{
    struct pyfile key = {.name = name};
    return bsearch(&key, x->py, x->n_py, sizeof(*x->py), cmp_pyfile);
}

static bool skip_analysis(struct run *x, const struct cfw_bundle_module *m)
{
    /* Third-party trees that happen to sit in the module root are not the project's code. */
    static const char *const dirs[] = {"python_modules/", "node_modules/", ".venv",
                                       "venv/",           ".git/",         "site-packages/"};
    (void)x;
    if (m->vendored || !ends_with(m->name, ".py")) {
        return true;
    }
    for (size_t k = 0; k < sizeof(dirs) / sizeof(dirs[0]); k++) {
        if (starts_with(m->name, dirs[k]) || strstr(m->name, "/site-packages/") != NULL) {
            return true;
        }
    }
    return false;
}

static void read_python(struct run *x)
{
    struct cfw_bundle_report *r = x->r;

    x->py = cfw_xcalloc(r->n_modules + 1, sizeof(*x->py));
    for (size_t k = 0; k < r->n_modules; k++) {
        struct pyfile *pf;
        char *text = NULL;
        size_t len = 0;
        struct cfw_err err = {0};

        if (skip_analysis(x, &r->modules[k])) {
            continue;
        }
        if ((text = cfw_fs_read_file(r->modules[k].path, CFW_BUNDLE_MAX_FILE_BYTES, &len, &err)) ==
            NULL) {
            struct cfw_bundle_finding *f =
                add_finding(x, "scan-limit", CFW_BUNDLE_SEV_INFO, r->modules[k].path, 1, 1);
            f->message =
                cfw_xasprintf("%s: not analysed: %s", r->modules[k].path,
                              err.code == EFBIG ? "larger than the per-file cap" : err.msg);
            f->fix = cfw_xstrdup("its imports were not checked");
            continue;
        }
        pf = &x->py[x->n_py++];
        pf->name = r->modules[k].name;
        pf->mod = k;
        cfw_bundle_py_imports(text, len, &pf->im, NULL);
        free(text);
    }
    qsort(x->py, x->n_py, sizeof(*x->py), cmp_pyfile);
}

static void resolve_all(struct run *x)
{
    size_t total = 0;

    for (size_t k = 0; k < x->n_py; k++) {
        total += x->py[k].im.n;
    }
    x->res = cfw_xcalloc(total + 1, sizeof(*x->res));
    for (size_t k = 0; k < x->n_py; k++) {
        struct pyfile *pf = &x->py[k];
        pf->res = cfw_xcalloc(pf->im.n + 1, sizeof(size_t));
        for (size_t i = 0; i < pf->im.n; i++) {
            resolve_import(x, pf, &pf->im.v[i], &x->res[x->n_res]);
            pf->res[i] = x->n_res++;
        }
    }
}

/* Marks files imported from main: deploy = on the unguarded module-level path. */
static void reach(struct run *x, bool deploy)
{
    struct pyfile **queue = cfw_xcalloc(x->n_py + 1, sizeof(*queue));
    size_t head = 0, tail = 0;
    struct pyfile *m = find_py(x, x->r->modules[0].name);

    if (m == NULL) {
        free(queue);
        return;
    }
    if (deploy) {
        m->deploy = true;
    } else {
        m->reachable = true;
    }
    queue[tail++] = m;
    while (head < tail) {
        struct pyfile *pf = queue[head++];
        for (size_t i = 0; i < pf->im.n; i++) {
            const struct cfw_bundle_import *im = &pf->im.v[i];
            const struct resolution *rs = &x->res[pf->res[i]];
            if (deploy && (im->ctx != 0 || im->guarded)) {
                continue;
            }
            if (rs->kind != RK_OK) {
                continue;
            }
            for (size_t l = 0; l < rs->n_loads; l++) {
                struct pyfile *t = find_py(x, rs->loads[l]);
                bool *flag;
                if (t == NULL) {
                    continue;
                }
                flag = deploy ? &t->deploy : &t->reachable;
                if (!*flag) {
                    *flag = true;
                    queue[tail++] = t;
                }
            }
        }
    }
    free(queue);
}

/* ---- findings ---- */

static const char *root_disp(struct run *x)
{
    return x->r->module_root;
}

/* The physical line of text containing offset, with an edit applied when given. */
static char *line_with_edit(const char *text, size_t len, size_t at_off, size_t start, size_t end,
                            const char *rep)
{
    size_t ls = at_off, le = at_off;
    struct cfw_buf b;

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    while (ls > 0 && text[ls - 1] != '\n') {
        ls--;
    }
    while (le < len && text[le] != '\n') {
        le++;
    }
    while (ls < le && (text[ls] == ' ' || text[ls] == '\t')) {
        ls++;
    }
    if (start >= ls && end <= le && start <= end) {
        cfw_buf_append(&b, text + ls, start - ls);
        cfw_buf_puts(&b, rep);
        cfw_buf_append(&b, text + end, le - end);
    } else {
        cfw_buf_append(&b, text + ls, le - ls);
    }
    while (b.len > 0 && (b.data[b.len - 1] == '\r' || b.data[b.len - 1] == ' ')) {
        b.data[--b.len] = '\0';
    }
    return cfw_buf_take(&b);
}

static bool has_newline(const char *text, size_t start, size_t end)
{
    return memchr(text + start, '\n', end - start) != NULL;
}

/*
 * Whether every alternative of a guarded import fails too: the except clauses of the try: that
 * guards it import something, and none of that resolves. With no import in the except clauses
 * (an optional dependency) or one that resolves, the guard does its job.
 */
static bool every_branch_fails(const struct run *x, const struct pyfile *pf,
                               const struct cfw_bundle_import *im)
{
    bool any = false;

    for (size_t k = 0; k < pf->im.n; k++) {
        if (pf->im.v[k].handler_of != im->guard_try || im->guard_try < 0) {
            continue;
        }
        any = true;
        if (x->res[pf->res[k]].kind == RK_OK || x->res[pf->res[k]].kind == RK_DECLARED) {
            return false;
        }
    }
    return any;
}

static enum cfw_bundle_sev lowered(const struct run *x, const struct pyfile *pf,
                                   const struct cfw_bundle_import *im, enum cfw_bundle_sev base,
                                   const char **why)
{
    if (im->ctx & CFW_BUNDLE_IMPORT_TYPECHECK) {
        *why = " (inside `if TYPE_CHECKING:`, so it never runs)";
        return CFW_BUNDLE_SEV_INFO;
    }
    if (im->ctx & CFW_BUNDLE_IMPORT_MAINGUARD) {
        *why = " (inside `if __name__ == \"__main__\":`, which never runs in a Worker)";
        return CFW_BUNDLE_SEV_INFO;
    }
    if (im->guarded && !every_branch_fails(x, pf, im)) {
        *why = " (inside a try: block whose except clause catches ImportError and has a "
               "working alternative or none is needed)";
        return CFW_BUNDLE_SEV_INFO;
    }
    if (!pf->reachable) {
        *why = " (this module is not imported from main; it fails only if something imports "
               "it)";
        return CFW_BUNDLE_SEV_INFO;
    }
    if (im->ctx & CFW_BUNDLE_IMPORT_LAZY) {
        *why = " (inside a function: it fails at request time, not at deploy)";
        return base > CFW_BUNDLE_SEV_WARNING ? CFW_BUNDLE_SEV_WARNING : base;
    }
    if (im->guarded) {
        *why = " (inside a try: block whose except clause catches ImportError, but its "
               "alternative fails too)";
        return base > CFW_BUNDLE_SEV_WARNING ? CFW_BUNDLE_SEV_WARNING : base;
    }
    if (!pf->deploy) {
        *why = " (this module is imported only lazily or under try:, so it fails at request "
               "time, not at deploy)";
        return base > CFW_BUNDLE_SEV_WARNING ? CFW_BUNDLE_SEV_WARNING : base;
    }
    *why = "";
    return base;
}

/* Byte offset just after the strip-th '.' of the dotted name at text[at], or 0. */
static size_t after_parts(const char *text, size_t len, size_t at, size_t strip)
{
    size_t p = at;

    for (size_t k = 0; k < strip; k++) {
        while (p < len && (text[p] == '_' || (text[p] >= 'a' && text[p] <= 'z') ||
                           (text[p] >= 'A' && text[p] <= 'Z') ||
                           (text[p] >= '0' && text[p] <= '9') || (unsigned char)text[p] >= 0x80)) {
            p++;
        }
        while (p < len && (text[p] == ' ' || text[p] == '\t')) {
            p++;
        }
        if (p >= len || text[p] != '.') {
            return 0;
        }
        p++;
        while (p < len && (text[p] == ' ' || text[p] == '\t')) {
            p++;
        }
    }
    return p;
}

static void src_prefix_finding(struct run *x, struct pyfile *pf, const struct cfw_bundle_import *im,
                               const char *text, size_t len, const struct resolution *rs)
{
    const struct cfw_bundle_module *m = &x->r->modules[pf->mod];
    const char *why;
    enum cfw_bundle_sev sev = lowered(x, pf, im, CFW_BUNDLE_SEV_CRITICAL, &why);
    struct cfw_bundle_finding *f =
        add_finding(x, "src-prefix-import", sev, m->path, im->line, im->col);
    size_t es = 0, ee = 0, strip = rs->strip ? rs->strip : 1;
    bool can = false;
    const char *rest = im->module;
    char *prefix;

    for (size_t k = 0; k < strip && rest != NULL; k++) {
        rest = strchr(rest, '.');
        rest = rest != NULL ? rest + 1 : NULL;
    }
    prefix = rest != NULL ? cfw_xstrndup(im->module, (size_t)(rest - 1 - im->module))
                          : cfw_xstrdup(im->module);
    f->message = cfw_xasprintf(
        "import of '%s' goes through '%s', the path from the project root to the module root "
        "%s/, but wrangler uploads the module root's files without that prefix: "
        "ModuleNotFoundError: %s at deploy%s",
        im->module, prefix, root_disp(x), rs->why, why);
    if (len == 0 || im->mod_start > len || im->import_kw > len) {
        /* the text could not be read again: no rewrite */
    } else if (rest != NULL && (im->is_from || im->has_alias) &&
               (ee = after_parts(text, len, im->mod_start, strip)) > im->mod_start &&
               !has_newline(text, im->mod_start, ee)) {
        es = im->mod_start;
        can = true;
    } else if (rest == NULL && im->is_from && !im->parenthesized &&
               im->import_kw > im->stmt_start &&
               !has_newline(text, im->stmt_start, im->import_kw)) {
        es = im->stmt_start;
        ee = im->import_kw;
        can = true;
    }
    if (can) {
        char *line = line_with_edit(text, len, im->mod_start, es, ee, "");
        f->fix = cfw_xasprintf("%s", line);
        free(line);
        add_edit(x, m->path, es, ee, "", text);
    } else if (rest != NULL) {
        f->fix = cfw_xasprintf("import %s (and refer to it as %s instead of %s)", rest, rest,
                               im->module);
    } else {
        f->fix = cfw_xasprintf("remove `import %s`: the module root's files are top-level "
                               "modules, import them directly",
                               im->module);
    }
    free(prefix);
}

static void missing_init_finding(struct run *x, struct pyfile *pf,
                                 const struct cfw_bundle_import *im, const struct resolution *rs)
{
    const struct cfw_bundle_module *m = &x->r->modules[pf->mod];
    struct cfw_buf dirs, fix;
    size_t count = 0;
    const char *why = "";
    enum cfw_bundle_sev sev;
    struct cfw_bundle_finding *f;
    char *label = NULL;

    cfw_buf_init(&dirs, CFW_BUF_MAX_BUILT);
    cfw_buf_init(&fix, CFW_BUF_MAX_BUILT);
    for (size_t k = 0; k < rs->n_ns_dirs; k++) {
        char *rel, *disp_dir, *init;
        if (names_has(x->init_done, x->n_init_done, rs->ns_dirs[k])) {
            continue;
        }
        x->init_done = cfw_xrealloc(x->init_done, (x->n_init_done + 1) * sizeof(char *));
        x->init_done[x->n_init_done++] = cfw_xstrdup(rs->ns_dirs[k]);
        qsort(x->init_done, x->n_init_done, sizeof(char *), cmp_cstr);
        rel = x->root_rel[0] ? cfw_xasprintf("%s/%s", x->root_rel, rs->ns_dirs[k])
                             : cfw_xstrdup(rs->ns_dirs[k]);
        disp_dir = bundle_join(x->dir, rel);
        init = cfw_xasprintf("%s/__init__.py", disp_dir);
        cfw_buf_printf(&dirs, "%s%s/", count ? ", " : "", disp_dir);
        cfw_buf_printf(&fix, "%s%s", count ? ", " : "", init);
        add_edit(x, init, 0, 0, NULL, NULL);
        count++;
        free(rel);
        free(disp_dir);
        free(init);
    }
    if (count == 0) {
        cfw_buf_free(&dirs);
        cfw_buf_free(&fix);
        return;
    }
    label = im->level > 0 ? cfw_xasprintf("%.*s%s", im->level, "..........", im->module)
                          : cfw_xstrdup(im->module);
    if (rs->ns_loses) {
        sev = lowered(x, pf, im, CFW_BUNDLE_SEV_WARNING, &why);
        f = add_finding(x, "missing-init", sev, m->path, im->line, im->col);
        f->message = cfw_xasprintf("import of '%s': %s has no __init__.py, so it is only a "
                                   "namespace package and loses to the package of the same "
                                   "name in python_modules/ (or vendored by pywrangler sync)%s",
                                   label, dirs.data, why);
    } else {
        f = add_finding(x, "missing-init", CFW_BUNDLE_SEV_INFO, m->path, im->line, im->col);
        f->message = cfw_xasprintf("import of '%s' uses %s as a namespace package (no "
                                   "__init__.py): it imports on Workers, whose module "
                                   "filesystem lists directories; tools that need "
                                   "__init__.py (mypy, pytest, setuptools) may not find it",
                                   label, dirs.data);
    }
    f->fix = cfw_xasprintf("create %s", fix.data);
    free(label);
    cfw_buf_free(&dirs);
    cfw_buf_free(&fix);
}

/* The top-level name of a dotted module name ("a" for "a.b.c"); newly allocated. */
static char *top_of(const char *module)
{
    return cfw_xstrndup(module, strcspn(module, "."));
}

static void declared_finding(struct run *x, struct pyfile *pf, const struct cfw_bundle_import *im,
                             bool legacy_vendor)
{
    const struct cfw_bundle_module *m = &x->r->modules[pf->mod];
    char *top = top_of(im->module);
    struct cfw_bundle_finding *f =
        add_finding(x, "dependency-not-synced", CFW_BUNDLE_SEV_INFO, m->path, im->line, im->col);

    x->declared_done = cfw_xrealloc(x->declared_done, (x->n_declared_done + 1) * sizeof(char *));
    x->declared_done[x->n_declared_done++] = top;
    qsort(x->declared_done, x->n_declared_done, sizeof(char *), cmp_cstr);
    if (legacy_vendor) {
        f->message = cfw_xasprintf("import of '%s': '%s' is found in the bundle's vendor/ "
                                   "directory, which workerd puts on sys.path only as its "
                                   "legacy vendor path",
                                   im->module, top);
        f->fix = cfw_xstrdup("declare the package in pyproject.toml and let pywrangler sync "
                             "vendor it into python_modules/");
        return;
    }
    f->message = cfw_xasprintf(
        "import of '%s': '%s' is not in python_modules/ yet; %s, and pywrangler sync (run by "
        "`pywrangler deploy`) vendors it",
        im->module, top,
        strcmp(top, "workers") == 0 || strcmp(top, "asgi") == 0
            ? "it is workers-runtime-sdk, which pywrangler always adds"
        : x->deps.lock != NULL
            ? "pyproject.toml declares it, or a package it declares needs it (per the lock file)"
            : "pyproject.toml declares it (or a package it declares is known to need it)");
    f->fix = cfw_xstrdup(x->assume == CFW_BUNDLE_ASSUME_SYNCED
                             ? "none needed (--assume synced)"
                             : "none needed when deploying with `uv run pywrangler deploy`; "
                               "with plain `wrangler deploy`, run `uv run pywrangler sync` "
                               "first (or check with --assume unsynced)");
}

static void shadow_finding(struct run *x, struct pyfile *pf, const struct cfw_bundle_import *im,
                           const struct resolution *rs)
{
    const struct cfw_bundle_module *m = &x->r->modules[pf->mod];
    char *top = top_of(im->module);
    enum found fb = probe(x->bnames, x->n_bnames, "", top, false);
    bool std = bundle_is_stdlib(top);
    char *local = fb == F_MOD ? cfw_xasprintf("%s.py", top) : cfw_xasprintf("%s/", top);
    char *rel = x->root_rel[0] ? cfw_xasprintf("%s/%s", x->root_rel, local) : cfw_xstrdup(local);
    char *disp = bundle_join(x->dir, rel);
    const char *why;
    struct cfw_bundle_finding *f =
        add_finding(x, "shadowed-module", lowered(x, pf, im, CFW_BUNDLE_SEV_ERROR, &why), m->path,
                    im->line, im->col);

    if (std) {
        f->message = cfw_xasprintf(
            "import of '%s': %s (%s). The runtime puts the standard library before the bundle "
            "on sys.path, so this import gets the standard library's '%s' and %s is never "
            "imported%s",
            im->module, rs->why, disp, top, disp, why);
    } else {
        f->message = cfw_xasprintf(
            "import of '%s': %s (%s). The runtime's '%s' comes after the bundle on sys.path "
            "(site-packages, or python_modules/ for the external SDK), so %s hides it and "
            "the names it lacks fail with ImportError at deploy%s",
            im->module, rs->why, disp, top, disp, why);
    }
    f->fix = cfw_xasprintf("rename %s (e.g. to %s_local%s) and import it under the new name", disp,
                           top, fb == F_MOD ? ".py" : "/");
    free(top);
    free(local);
    free(rel);
    free(disp);
}

/* The fix of an unresolved-import finding; newly allocated. */
static char *unresolved_fix(struct run *x, const struct pyfile *pf,
                            const struct cfw_bundle_import *im, const struct resolution *rs)
{
    char *top = top_of(im->module), *fix;

    if (rs->sdk) {
        fix = cfw_xstrdup("add workers-runtime-sdk (workers-py >= 1.9) to pyproject.toml and run "
                          "`uv run pywrangler sync`, or add the disable_python_external_sdk "
                          "compatibility flag");
    } else if (im->level == 1 && strchr(pf->name, '/') == NULL && im->module[0] != '\0') {
        fix = cfw_xasprintf("use an absolute import: `from %s import ...` (the module root's "
                            "files are top-level modules)",
                            im->module);
    } else if (im->level == 0 && bundle_names_has(x->deps.declared, x->deps.n_declared, top)) {
        fix = cfw_xstrdup("deploy with `uv run pywrangler deploy`, which vendors [project] "
                          "dependencies into python_modules/ first, or run `uv run pywrangler "
                          "sync` before `wrangler deploy`");
    } else if (im->level > 0 || probe(x->bnames, x->n_bnames, "", top, false) != F_NONE) {
        fix = cfw_xasprintf("fix the import path: modules are named by their path under the "
                            "module root %s/",
                            root_disp(x));
    } else {
        fix = cfw_xasprintf("if '%s' is a package from PyPI, add its distribution to [project] "
                            "dependencies in pyproject.toml and deploy with `uv run pywrangler "
                            "deploy` (it vendors them into python_modules/)",
                            top);
    }
    free(top);
    return fix;
}

static void import_findings(struct run *x)
{
    for (size_t k = 0; k < x->n_py; k++) {
        struct pyfile *pf = &x->py[k];
        const struct cfw_bundle_module *m = &x->r->modules[pf->mod];
        char *text = NULL;
        size_t len = 0;

        for (size_t i = 0; i < pf->im.n; i++) {
            if (x->res[pf->res[i]].kind == RK_SRC) {
                if ((text = cfw_fs_read_file(m->path, CFW_BUNDLE_MAX_FILE_BYTES, &len, NULL)) ==
                    NULL) {
                    text = NULL;
                }
                break;
            }
        }
        for (size_t i = 0; i < pf->im.n; i++) {
            const struct cfw_bundle_import *im = &pf->im.v[i];
            const struct resolution *rs = &x->res[pf->res[i]];
            const char *why;
            struct cfw_bundle_finding *f;
            char *label = im->level > 0
                              ? cfw_xasprintf("%.*s%s", im->level, "..........", im->module)
                              : cfw_xstrdup(im->module);

            switch (rs->kind) {
            case RK_OK:
                break;
            case RK_DECLARED: {
                char *top = top_of(im->module);
                if (!names_has(x->declared_done, x->n_declared_done, top)) {
                    declared_finding(x, pf, im, rs->legacy_vendor);
                }
                free(top);
                break;
            }
            case RK_SHADOW:
                shadow_finding(x, pf, im, rs);
                break;
            case RK_SRC:
                src_prefix_finding(x, pf, im, text != NULL ? text : "", text != NULL ? len : 0, rs);
                break;
            case RK_OUTSIDE:
                f = add_finding(x, "outside-module-root",
                                lowered(x, pf, im, CFW_BUNDLE_SEV_ERROR, &why), m->path, im->line,
                                im->col);
                f->message = cfw_xasprintf("import of '%s': %s%s", label, rs->why, why);
                f->fix = cfw_xasprintf("move %s under %s/ (wrangler uploads only the module "
                                       "root), or vendor it as a package in python_modules/",
                                       rs->outside, root_disp(x));
                break;
            case RK_UNRESOLVED:
                f = add_finding(x, "unresolved-import",
                                lowered(x, pf, im, CFW_BUNDLE_SEV_ERROR, &why), m->path, im->line,
                                im->col);
                f->message = cfw_xasprintf("import of '%s': %s%s", label, rs->why, why);
                f->fix = unresolved_fix(x, pf, im, rs);
                break;
            }
            if (rs->n_ns_dirs > 0 && rs->kind != RK_UNRESOLVED) {
                missing_init_finding(x, pf, im, rs);
            }
            free(label);
        }
        free(text);
    }
}

static bool has_flag(const struct cfw_bundle_config *cfg, const char *flag)
{
    for (size_t k = 0; k < cfg->n_compat_flags; k++) {
        if (strcmp(cfg->compat_flags[k], flag) == 0) {
            return true;
        }
    }
    return false;
}

/* The first top-level name the Worker imports that requirements.txt lists and pyproject.toml
 * does not declare (index into deps.required), or -1. */
static long required_import(struct run *x)
{
    for (size_t k = 0; k < x->n_py; k++) {
        for (size_t i = 0; i < x->py[k].im.n; i++) {
            const struct cfw_bundle_import *im = &x->py[k].im.v[i];
            char *top = top_of(im->module);
            for (size_t r = 0; r < x->deps.n_required && im->level == 0; r++) {
                if (strcmp(x->deps.required[r], top) == 0 &&
                    !bundle_names_has(x->deps.declared, x->deps.n_declared, top) &&
                    probe(x->bnames, x->n_bnames, "", top, false) == F_NONE) {
                    free(top);
                    return (long)r;
                }
            }
            free(top);
        }
    }
    return -1;
}

/*
 * requirements.txt: pywrangler sync stops while it exists (so it always matters to a pywrangler
 * project); for plain wrangler it matters only when the Worker imports something it lists that
 * pyproject.toml does not declare (otherwise it belongs to something else in the repository).
 */
static void requirements_finding(struct run *x, const char *path)
{
    long r = required_import(x);
    char *d;
    struct cfw_bundle_finding *f;

    if (!x->deps.pywrangler && r < 0) {
        return;
    }
    d = display(x, path);
    f = add_finding(x, "requirements-txt", CFW_BUNDLE_SEV_WARNING, d,
                    r >= 0 ? x->deps.required_line[r] : 1, 1);
    if (r >= 0) {
        f->message = cfw_xasprintf(
            "the Worker imports '%s', which requirements.txt lists and pyproject.toml does not "
            "declare: Specifying Python Packages in requirements.txt is no longer supported, "
            "please use pyproject.toml instead.",
            x->deps.required[r]);
    } else {
        f->message = cfw_xstrdup("pywrangler sync stops while requirements.txt exists: "
                                 "Specifying Python Packages in requirements.txt is no longer "
                                 "supported, please use pyproject.toml instead.");
    }
    f->fix = cfw_xstrdup("move the packages to [project] dependencies in pyproject.toml, "
                         "run `uv run pywrangler sync` and delete requirements.txt");
    free(d);
}

static void config_findings(struct run *x)
{
    struct cfw_bundle_config *cfg = &x->cfg;
    struct cfw_bundle_finding *f;
    struct stat st;
    char *p;

    if (!has_flag(cfg, "python_workers")) {
        bool have = cfg->flags_line > 0;
        f = add_finding(x, "python-workers-flag-missing", CFW_BUNDLE_SEV_ERROR, cfg->path,
                        have ? cfg->flags_line : cfg->main_line,
                        have ? cfg->flags_col : cfg->main_col);
        f->message = cfw_xstrdup("The `python_workers` compatibility flag is required to use "
                                 "Python.");
        f->fix = cfw_xstrdup(ends_with(cfg->path, ".toml")
                                 ? "compatibility_flags = [\"python_workers\"]"
                                 : "\"compatibility_flags\": [\"python_workers\"]");
    }
    if (cfg->build_upload) {
        f = add_finding(x, "build-upload-config", CFW_BUNDLE_SEV_WARNING, cfg->path,
                        cfg->upload_line, cfg->upload_col);
        f->message = cfw_xstrdup("Unexpected fields found in build field: \"upload\" — "
                                 "[build.upload] was removed in wrangler v4 and is ignored");
        f->fix = cfw_xstrdup("delete the [build.upload] table: main, base_dir and rules "
                             "replace build.upload.main, build.upload.dir and "
                             "build.upload.rules");
    }
    p = cfw_xasprintf("%s/requirements.txt", x->project_abs);
    if (x->deps.have_requirements) {
        requirements_finding(x, p);
    }
    free(p);
    p = cfw_xasprintf("%s/cf-requirements.txt", x->project_abs);
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
        char *d = display(x, p);
        f = add_finding(x, "requirements-txt", CFW_BUNDLE_SEV_WARNING, d, 1, 1);
        f->message = cfw_xstrdup("Found a `cf-requirements.txt` file. cf-requirements.txt is no "
                                 "longer used, instead put your dependencies in pyproject.toml "
                                 "and use pywrangler.");
        f->fix = cfw_xstrdup("move the packages to [project] dependencies in pyproject.toml, "
                             "run `uv run pywrangler sync` and delete cf-requirements.txt");
        free(d);
    }
    free(p);
    p = cfw_xasprintf("%s/python_modules", x->root_abs);
    if (strcmp(x->root_abs, x->project_abs) != 0 && stat(p, &st) == 0) {
        char *d = display(x, p);
        f = add_finding(x, "python-modules-in-root", CFW_BUNDLE_SEV_ERROR, d, 1, 1);
        f->message = cfw_xstrdup("The 'python_modules' directory cannot exist in your module "
                                 "root. Delete it to continue.");
        f->fix = cfw_xasprintf("delete %s (pywrangler sync vendors packages into "
                               "python_modules/ at the project root)",
                               d);
        free(d);
    }
    free(p);
}

/* ---- the whole check ---- */

static int cmp_module(const void *a, const void *b)
{
    const struct cfw_bundle_module *x = a, *y = b;
    if (x->is_main != y->is_main) {
        return x->is_main ? -1 : 1;
    }
    return strcmp(x->name, y->name);
}

static int cmp_finding(const void *a, const void *b)
{
    const struct cfw_bundle_finding *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c != 0) {
        return c;
    }
    if (x->line != y->line) {
        return x->line < y->line ? -1 : 1;
    }
    if (x->col != y->col) {
        return x->col < y->col ? -1 : 1;
    }
    return strcmp(x->rule, y->rule);
}

static void run_free(struct run *x)
{
    cfw_bundle_config_clear(&x->cfg);
    free(x->project_abs);
    free(x->project_real);
    free(x->root_abs);
    free(x->root_rel);
    free(x->root_name);
    free(x->main_abs);
    free(x->main_rel_root);
    free(x->config_abs);
    free(x->hidden_abs);
    free(x->rules);
    for (size_t k = 0; k < x->n_bnames; k++) {
        free(x->bnames[k]);
    }
    free(x->bnames);
    for (size_t k = 0; k < x->n_vnames; k++) {
        free(x->vnames[k]);
    }
    free(x->vnames);
    for (size_t k = 0; k < x->n_py; k++) {
        cfw_bundle_imports_clear(&x->py[k].im);
        free(x->py[k].res);
    }
    free(x->py);
    for (size_t k = 0; k < x->n_res; k++) {
        resolution_clear(&x->res[k]);
    }
    free(x->res);
    for (size_t k = 0; k < x->n_outside; k++) {
        free(x->outside[k].top);
        free(x->outside[k].hit);
    }
    free(x->outside);
    free_parts(x->init_done, x->n_init_done);
    free_parts(x->declared_done, x->n_declared_done);
    free_parts(x->root_parts, x->n_root_parts);
    bundle_deps_clear(&x->deps);
}

static int setup_paths(struct run *x, struct cfw_err *err)
{
    char cwd[PATH_MAX], real[PATH_MAX];
    struct cfw_bundle_config *cfg = &x->cfg;
    struct stat st;

    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        cfw_err_set(err, "getcwd: %s", strerror(errno));
        return -1;
    }
    x->project_abs = resolve(cwd, x->dir);
    x->project_real = cfw_xstrdup(realpath(x->project_abs, real) ? real : x->project_abs);
    x->config_abs = resolve(cwd, cfg->path);
    x->hidden_abs = cfw_xasprintf("%s/.wrangler", x->project_abs);
    if (cfg->main == NULL) {
        cfw_err_set(err,
                    "%s: no \"main\" entry point: set main = \"src/entry.py\" (the Python "
                    "Worker's entry module)",
                    cfg->path);
        return -1;
    }
    if (!ends_with(cfg->main, ".py")) {
        cfw_err_set(err,
                    "%s:%d:%d: main = \"%s\" is not a Python module: --check-bundle "
                    "checks Python Workers",
                    cfg->path, cfg->main_line, cfg->main_col, cfg->main);
        return -1;
    }
    x->main_abs = resolve(x->project_abs, cfg->main);
    if (stat(x->main_abs, &st) != 0 || !S_ISREG(st.st_mode)) {
        char *d = display(x, x->main_abs);
        cfw_err_set(err, "%s:%d:%d: main = \"%s\": %s does not exist", cfg->path, cfg->main_line,
                    cfg->main_col, cfg->main, d);
        free(d);
        return -1;
    }
    if (cfg->base_dir != NULL) {
        x->root_abs = resolve(x->project_abs, cfg->base_dir);
    } else {
        char *slash;
        x->root_abs = cfw_xstrdup(x->main_abs);
        slash = strrchr(x->root_abs, '/');
        if (slash == x->root_abs) {
            slash[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
    if (stat(x->root_abs, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cfw_err_set(err, "%s: the module root %s is not a directory", cfg->path, x->root_abs);
        return -1;
    }
    x->root_rel = rel_path(x->project_abs, x->root_abs);
    x->root_name = cfw_xstrdup(base_name(x->root_abs));
    if (x->root_rel[0] != '\0' && strncmp(x->root_rel, "..", 2) != 0) {
        char *dotted = cfw_xstrdup(x->root_rel);
        for (char *q = dotted; *q; q++) {
            *q = *q == '/' ? '.' : *q;
        }
        x->n_root_parts = split_dots(dotted, &x->root_parts);
        free(dotted);
    }
    bundle_deps_load(x->project_abs, &x->deps);
    x->synced = x->assume == CFW_BUNDLE_ASSUME_SYNCED ||
                (x->assume == CFW_BUNDLE_ASSUME_AUTO && x->deps.pywrangler);
    x->main_rel_root = rel_path(x->root_abs, x->main_abs);
    x->external_sdk =
        (cfg->compat_date != NULL && strcmp(cfg->compat_date, EXTERNAL_SDK_DATE) >= 0 &&
         strlen(cfg->compat_date) >= 10) ||
        has_flag(cfg, "enable_python_external_sdk");
    if (has_flag(cfg, "disable_python_external_sdk")) {
        x->external_sdk = false;
    }
    return 0;
}

static void collect_names(struct run *x)
{
    struct cfw_bundle_report *r = x->r;

    x->bnames = cfw_xcalloc(r->n_modules + 1, sizeof(char *));
    x->vnames = cfw_xcalloc(r->n_modules + 1, sizeof(char *));
    for (size_t k = 0; k < r->n_modules; k++) {
        /* Everything uploaded as python_modules/... is on the runtime's sys.path, vendored or
         * not (a python_modules/ inside the module root is uploaded by the *.py rule). */
        if (starts_with(r->modules[k].name, "python_modules/")) {
            x->vnames[x->n_vnames++] = cfw_xstrdup(r->modules[k].name + strlen("python_modules/"));
        }
        if (!r->modules[k].vendored) {
            x->bnames[x->n_bnames++] = cfw_xstrdup(r->modules[k].name);
        }
    }
    qsort(x->bnames, x->n_bnames, sizeof(char *), cmp_cstr);
    qsort(x->vnames, x->n_vnames, sizeof(char *), cmp_cstr);
}

struct cfw_bundle_report *cfw_bundle_check(const char *dir, const char *env, struct cfw_err *err)
{
    return cfw_bundle_check_assume(dir, env, CFW_BUNDLE_ASSUME_AUTO, err);
}

struct cfw_bundle_report *cfw_bundle_check_assume(const char *dir, const char *env,
                                                  enum cfw_bundle_assume assume,
                                                  struct cfw_err *err)
{
    struct run x = {.dir = dir, .assume = assume};
    struct cfw_bundle_report *r;
    struct stat st;
    char *vdir;

    if (cfw_bundle_config_load(dir, env, &x.cfg, err) != 0) {
        return NULL;
    }
    if (setup_paths(&x, err) != 0) {
        run_free(&x);
        return NULL;
    }
    r = cfw_xcalloc(1, sizeof(*r));
    x.r = r;
    r->dir = cfw_xstrdup(dir);
    r->config_path = cfw_xstrdup(x.cfg.path);
    r->module_root = display(&x, x.root_abs);
    {
        char *b = cfw_xstrdup(base_name(x.main_abs));
        b[strlen(b) - 3] = '\0';
        r->main_module = b;
    }
    build_rules(&x);
    add_module(&x, base_name(x.main_abs), x.main_abs, "python", false, true);
    walk(&x, x.root_abs, "", 0, root_file, x.config_abs);
    vdir = cfw_xasprintf("%s/python_modules", x.project_abs);
    if (stat(vdir, &st) == 0 && S_ISDIR(st.st_mode)) {
        walk(&x, vdir, "", 0, vendor_file, x.main_abs);
    }
    free(vdir);
    qsort(r->modules, r->n_modules, sizeof(*r->modules), cmp_module);
    /* A python_modules/ at the project root that is also the module root is matched twice
     * (by the *.py rule and as vendored): one upload name, one module. */
    {
        size_t o = 0;
        for (size_t k = 0; k < r->n_modules; k++) {
            if (o > 0 && strcmp(r->modules[o - 1].name, r->modules[k].name) == 0) {
                free(r->modules[k].name);
                free(r->modules[k].path);
                free(r->modules[k].type);
                continue;
            }
            r->modules[o++] = r->modules[k];
        }
        r->n_modules = o;
    }
    for (size_t k = 0; bundle_runtime_modules[k] != NULL; k++) {
        if (bundle_is_runtime_module(bundle_runtime_modules[k], x.external_sdk)) {
            r->runtime_modules =
                cfw_xrealloc(r->runtime_modules, (r->n_runtime_modules + 1) * sizeof(char *));
            r->runtime_modules[r->n_runtime_modules++] = cfw_xstrdup(bundle_runtime_modules[k]);
        }
    }
    r->deploy_tool = cfw_xstrdup(x.deps.pywrangler ? "pywrangler" : "wrangler");
    r->deps_synced = x.synced;
    if (x.synced) {
        for (size_t k = 0; k < x.deps.n_declared; k++) {
            r->synced_modules =
                cfw_xrealloc(r->synced_modules, (r->n_synced_modules + 1) * sizeof(char *));
            r->synced_modules[r->n_synced_modules++] = cfw_xstrdup(x.deps.declared[k]);
        }
    }
    if (x.deps.note != NULL) {
        char *file = bundle_join(dir, x.deps.note_file);
        struct cfw_bundle_finding *f =
            add_finding(&x, "scan-limit", CFW_BUNDLE_SEV_INFO, file, 1, 1);
        f->message = cfw_xasprintf("%s not read: %s", file, x.deps.note);
        f->fix = cfw_xstrdup("what it declares was not taken into account");
        free(file);
    }
    collect_names(&x);
    read_python(&x);
    resolve_all(&x);
    reach(&x, true);
    reach(&x, false);
    config_findings(&x);
    import_findings(&x);
    if (x.cfg.env_note != NULL) {
        struct cfw_bundle_finding *f =
            add_finding(&x, "env-not-found", CFW_BUNDLE_SEV_INFO, x.cfg.path, 1, 1);
        f->message = cfw_xstrdup(x.cfg.env_note);
        f->fix = cfw_xasprintf("add an [env.%s] section, or drop --env", env);
    }
    if (r->n_findings > 0) {
        qsort(r->findings, r->n_findings, sizeof(*r->findings), cmp_finding);
    }
    for (size_t k = 0; k < r->n_findings; k++) {
        const struct cfw_bundle_finding *f = &r->findings[k];
        if (f->sev >= CFW_BUNDLE_SEV_ERROR && (strcmp(f->rule, "src-prefix-import") == 0 ||
                                               strcmp(f->rule, "unresolved-import") == 0 ||
                                               strcmp(f->rule, "outside-module-root") == 0 ||
                                               strcmp(f->rule, "shadowed-module") == 0)) {
            r->predicts_import_failure = true;
        }
    }
    run_free(&x);
    return r;
}

void cfw_bundle_report_free(struct cfw_bundle_report *r)
{
    if (r == NULL) {
        return;
    }
    free(r->dir);
    free(r->config_path);
    free(r->module_root);
    free(r->main_module);
    for (size_t k = 0; k < r->n_modules; k++) {
        free(r->modules[k].name);
        free(r->modules[k].path);
        free(r->modules[k].type);
    }
    free(r->modules);
    for (size_t k = 0; k < r->n_findings; k++) {
        free(r->findings[k].file);
        free(r->findings[k].message);
        free(r->findings[k].fix);
    }
    free(r->findings);
    for (size_t k = 0; k < r->n_edits; k++) {
        free(r->edits[k].path);
        free(r->edits[k].replacement);
        free(r->edits[k].expect);
    }
    free(r->edits);
    free_parts(r->runtime_modules, r->n_runtime_modules);
    free_parts(r->synced_modules, r->n_synced_modules);
    free(r->deploy_tool);
    free(r);
}
