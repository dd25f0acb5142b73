/*
 * --check-bundle: what the project declares (pyproject.toml, requirements.txt) and how it
 * deploys (pywrangler or plain wrangler), as import names.
 *
 * Facts this follows (cloudflare/workers-py, packages/cli/src/pywrangler):
 *   resolve.py  `pywrangler sync` vendors [project].dependencies only (no dependency groups),
 *               and always adds workers-runtime-sdk (the `workers` and `asgi` modules);
 *   sync.py     a requirements.txt at the project root makes `pywrangler sync` exit 1;
 *   utils.py    pywrangler's resolved set is pylock.toml (PEP 751) at the project root.
 * A committed pylock.toml, or else uv.lock, gives the transitive dependencies exactly; without
 * either, a small table of what well-known distributions pull in stands in.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bundle_int.h"

/* Distributions whose import name is not their normalised name (PEP 503 form, lower case). */
static const char *const renamed[][3] = {
    {"attrs", "attr", "attrs"},
    {"beautifulsoup4", "bs4", NULL},
    {"django-cors-headers", "corsheaders", NULL},
    {"djangorestframework", "rest_framework", NULL},
    {"google-auth", "google", NULL},
    {"opencv-python", "cv2", NULL},
    {"pillow", "PIL", NULL},
    {"protobuf", "google", NULL},
    {"psycopg2-binary", "psycopg2", NULL},
    {"pycryptodome", "Crypto", NULL},
    {"pycryptodomex", "Cryptodome", NULL},
    {"pyjwt", "jwt", NULL},
    {"pyopenssl", "OpenSSL", NULL},
    {"python-dateutil", "dateutil", NULL},
    {"python-dotenv", "dotenv", NULL},
    {"python-jose", "jose", NULL},
    {"python-multipart", "multipart", "python_multipart"},
    {"pyyaml", "yaml", NULL},
    {"scikit-learn", "sklearn", NULL},
    {"setuptools", "setuptools", "pkg_resources"},
    {"workers-runtime-sdk", "workers", "asgi"},
};

/*
 * Import names that well-known distributions pull in (their own requirements, which pywrangler
 * sync vendors too). Not a resolver: a project that imports another transitive dependency
 * declares it, or checks with python_modules/ synced.
 */
static const char *const pulls[][8] = {
    {"fastapi", "starlette", "pydantic", "pydantic_core", "anyio", "typing_extensions",
     "annotated_types", NULL},
    {"starlette", "anyio", "typing_extensions", NULL},
    {"django", "asgiref", "sqlparse", NULL},
    {"django_cf", "django", "asgiref", "sqlparse", NULL},
    {"mcp", "starlette", "pydantic", "anyio", "httpx", "sse_starlette", "uvicorn", NULL},
    {"langchain_core", "pydantic", "jsonpatch", "langsmith", "yaml", "tenacity", NULL},
    {"httpx", "httpcore", "anyio", "certifi", "idna", "sniffio", "h11", NULL},
    {"requests", "urllib3", "certifi", "idna", "charset_normalizer", NULL},
    {"jinja2", "markupsafe", NULL},
};

static void push(char ***v, size_t *n, const char *s)
{
    for (size_t k = 0; k < *n; k++) {
        if (strcmp((*v)[k], s) == 0) {
            return;
        }
    }
    *v = cfw_xrealloc(*v, (*n + 1) * sizeof(char *));
    (*v)[(*n)++] = cfw_xstrdup(s);
}

char *bundle_dist_normalise(const char *req)
{
    struct cfw_buf b;
    const char *p = req;

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    for (; isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.'; p++) {
        if (*p == '-' || *p == '_' || *p == '.') {
            if (b.len > 0 && b.data[b.len - 1] != '-') {
                cfw_buf_putc(&b, '-');
            }
        } else {
            cfw_buf_putc(&b, (char)tolower((unsigned char)*p));
        }
    }
    while (b.len > 0 && b.data[b.len - 1] == '-') {
        b.data[--b.len] = '\0';
    }
    return b.len ? cfw_buf_take(&b) : (cfw_buf_free(&b), NULL);
}

/*
 * Adds the import names of one requirement string ("Django>=5", "pwdlib[argon2]", ...), and
 * with transitive those of the packages it is known to pull in.
 */
static void add_requirement(const char *req, bool transitive, char ***v, size_t *n)
{
    char *dist = bundle_dist_normalise(req);

    if (dist == NULL) {
        return;
    }
    for (size_t k = 0; k < sizeof(renamed) / sizeof(renamed[0]); k++) {
        if (strcmp(renamed[k][0], dist) == 0) {
            push(v, n, renamed[k][1]);
            if (renamed[k][2] != NULL) {
                push(v, n, renamed[k][2]);
            }
            free(dist);
            return;
        }
    }
    for (char *q = dist; *q; q++) {
        if (*q == '-') {
            *q = '_';
        }
    }
    push(v, n, dist);
    for (size_t k = 0; transitive && k < sizeof(pulls) / sizeof(pulls[0]); k++) {
        if (strcmp(pulls[k][0], dist) == 0) {
            for (size_t j = 1; j < 8 && pulls[k][j] != NULL; j++) {
                push(v, n, pulls[k][j]);
            }
        }
    }
    free(dist);
}

static bool mentions(const char *path, const char *word)
{
    char *text = NULL;
    size_t len = 0;
    bool r;

    if ((text = cfw_fs_read_file(path, CFW_BUNDLE_MAX_CONFIG_BYTES, &len, NULL)) == NULL) {
        return false;
    }
    r = strstr(text, word) != NULL;
    free(text);
    return r;
}

/* Whether any string of a dependency array names the distribution dist. */
static bool array_lists(const struct cfw_bundle_value *a, const char *dist)
{
    if (a == NULL || a->type != CFW_BUNDLE_V_ARRAY) {
        return false;
    }
    for (size_t k = 0; k < a->n; k++) {
        char *d = a->items[k]->type == CFW_BUNDLE_V_STRING ? bundle_dist_normalise(a->items[k]->str)
                                                           : NULL;
        bool hit = d != NULL && strcmp(d, dist) == 0;
        free(d);
        if (hit) {
            return true;
        }
    }
    return false;
}

static bool table_lists(const struct cfw_bundle_value *t, const char *dist)
{
    if (t == NULL || t->type != CFW_BUNDLE_V_TABLE) {
        return false;
    }
    for (size_t k = 0; k < t->n; k++) {
        if (array_lists(t->items[k], dist)) {
            return true;
        }
    }
    return false;
}

/* A string value's text, or "" for anything else. */
static const char *str_of(const struct cfw_bundle_value *v)
{
    return v != NULL && v->type == CFW_BUNDLE_V_STRING ? v->str : "";
}

/* Parses DIR/name as TOML (at most the per-file cap); NULL when absent or unreadable. */
static struct cfw_bundle_value *read_toml(const char *project_abs, const char *name,
                                          struct bundle_deps *d)
{
    char *path = cfw_xasprintf("%s/%s", project_abs, name);
    char *text = NULL;
    size_t len = 0;
    struct cfw_err err = {0};
    struct cfw_bundle_value *root = NULL;
    struct stat st;

    if (stat(path, &st) == 0 &&
        (text = cfw_fs_read_file(path, CFW_BUNDLE_MAX_FILE_BYTES, &len, &err)) != NULL) {
        root = cfw_bundle_toml_parse(text, len, name, &err);
    }
    if (root == NULL && err.msg[0] != '\0' && d->note == NULL) {
        d->note = cfw_xstrdup(err.msg);
        d->note_file = name;
    }
    free(text);
    free(path);
    return root;
}

/* pylock.toml (PEP 751, written by `pywrangler sync`): every [[packages]] entry is installed. */
static bool read_pylock(const char *project_abs, struct bundle_deps *d)
{
    struct cfw_bundle_value *root = read_toml(project_abs, "pylock.toml", d);
    const struct cfw_bundle_value *pkgs = cfw_bundle_value_get(root, "packages");

    if (pkgs == NULL || pkgs->type != CFW_BUNDLE_V_ARRAY) {
        cfw_bundle_value_free(root);
        return false;
    }
    for (size_t k = 0; k < pkgs->n; k++) {
        add_requirement(str_of(cfw_bundle_value_get(pkgs->items[k], "name")), false, &d->declared,
                        &d->n_declared);
    }
    cfw_bundle_value_free(root);
    return true;
}

/* The uv.lock [[package]] entry of a normalised distribution name, or NULL. */
static const struct cfw_bundle_value *uv_package(const struct cfw_bundle_value *pkgs,
                                                 const char *dist)
{
    for (size_t k = 0; k < pkgs->n; k++) {
        char *n = bundle_dist_normalise(str_of(cfw_bundle_value_get(pkgs->items[k], "name")));
        bool hit = n != NULL && strcmp(n, dist) == 0;
        free(n);
        if (hit) {
            return pkgs->items[k];
        }
    }
    return NULL;
}

/*
 * Queues the distributions of a uv.lock dependency array ({ name, extra = [...] } tables) and,
 * for requested extras, their optional dependencies; seen holds the "dist[extra]" pairs already
 * followed (extras that name their own package are common).
 */
static void uv_queue(const struct cfw_bundle_value *deps, const struct cfw_bundle_value *pkgs,
                     char ***queue, size_t *n, char ***seen, size_t *n_seen)
{
    if (deps == NULL || deps->type != CFW_BUNDLE_V_ARRAY) {
        return;
    }
    for (size_t k = 0; k < deps->n; k++) {
        const struct cfw_bundle_value *extra = cfw_bundle_value_get(deps->items[k], "extra");
        char *dist = bundle_dist_normalise(str_of(cfw_bundle_value_get(deps->items[k], "name")));
        if (dist == NULL) {
            continue;
        }
        push(queue, n, dist);
        for (size_t e = 0; extra != NULL && extra->type == CFW_BUNDLE_V_ARRAY && e < extra->n;
             e++) {
            char *key = cfw_xasprintf("%s[%s]", dist, str_of(extra->items[e]));
            if (!bundle_names_has(*seen, *n_seen, key)) {
                const struct cfw_bundle_value *opt =
                    cfw_bundle_value_get(uv_package(pkgs, dist), "optional-dependencies");
                push(seen, n_seen, key);
                uv_queue(cfw_bundle_value_get(opt, str_of(extra->items[e])), pkgs, queue, n, seen,
                         n_seen);
            }
            free(key);
        }
        free(dist);
    }
}

/*
 * uv.lock: what the project's own package (source = { virtual/editable = "." }) needs at run
 * time, followed through every package's dependencies; dev dependency groups are left out, as
 * pywrangler leaves them out.
 */
static bool read_uv_lock(const char *project_abs, struct bundle_deps *d)
{
    struct cfw_bundle_value *root = read_toml(project_abs, "uv.lock", d);
    const struct cfw_bundle_value *pkgs = cfw_bundle_value_get(root, "package");
    char **queue = NULL, **seen = NULL;
    size_t n = 0, n_seen = 0;
    bool found = false;

    if (pkgs == NULL || pkgs->type != CFW_BUNDLE_V_ARRAY) {
        cfw_bundle_value_free(root);
        return false;
    }
    for (size_t k = 0; k < pkgs->n; k++) {
        const struct cfw_bundle_value *src = cfw_bundle_value_get(pkgs->items[k], "source");
        if (strcmp(str_of(cfw_bundle_value_get(src, "virtual")), ".") == 0 ||
            strcmp(str_of(cfw_bundle_value_get(src, "editable")), ".") == 0) {
            uv_queue(cfw_bundle_value_get(pkgs->items[k], "dependencies"), pkgs, &queue, &n, &seen,
                     &n_seen);
            found = true;
        }
    }
    /* The queue grows while it is walked: each package's dependencies join it once. */
    for (size_t k = 0; k < n && k < CFW_BUNDLE_MAX_FILES; k++) {
        const struct cfw_bundle_value *pkg = uv_package(pkgs, queue[k]);
        uv_queue(cfw_bundle_value_get(pkg, "dependencies"), pkgs, &queue, &n, &seen, &n_seen);
    }
    for (size_t k = 0; k < n_seen; k++) {
        free(seen[k]);
    }
    free(seen);
    for (size_t k = 0; k < n; k++) {
        add_requirement(queue[k], false, &d->declared, &d->n_declared);
        free(queue[k]);
    }
    free(queue);
    cfw_bundle_value_free(root);
    return found;
}

static void read_pyproject(const char *project_abs, struct bundle_deps *d)
{
    char *path = cfw_xasprintf("%s/pyproject.toml", project_abs);
    struct cfw_bundle_value *root;
    const struct cfw_bundle_value *project, *deps, *uv;
    struct stat st;

    d->have_pyproject = stat(path, &st) == 0;
    free(path);
    if (!d->have_pyproject || (root = read_toml(project_abs, "pyproject.toml", d)) == NULL) {
        return;
    }
    project = cfw_bundle_value_get(root, "project");
    deps = cfw_bundle_value_get(project, "dependencies");
    d->uv_project = project != NULL;
    if (deps != NULL && deps->type == CFW_BUNDLE_V_ARRAY) {
        for (size_t k = 0; k < deps->n; k++) {
            if (deps->items[k]->type == CFW_BUNDLE_V_STRING) {
                add_requirement(deps->items[k]->str, d->lock == NULL, &d->declared, &d->n_declared);
            }
        }
    }
    uv = cfw_bundle_value_get(cfw_bundle_value_get(root, "tool"), "uv");
    d->lists_workers_py =
        array_lists(deps, "workers-py") ||
        table_lists(cfw_bundle_value_get(project, "optional-dependencies"), "workers-py") ||
        table_lists(cfw_bundle_value_get(root, "dependency-groups"), "workers-py") ||
        array_lists(cfw_bundle_value_get(uv, "dev-dependencies"), "workers-py");
    cfw_bundle_value_free(root);
}

static void read_requirements(const char *project_abs, struct bundle_deps *d)
{
    char *path = cfw_xasprintf("%s/requirements.txt", project_abs);
    char *text = NULL;
    size_t len = 0;
    int line = 1;

    if ((text = cfw_fs_read_file(path, CFW_BUNDLE_MAX_CONFIG_BYTES, &len, NULL)) == NULL) {
        free(path);
        return;
    }
    free(path);
    d->have_requirements = true;
    for (char *p = text; p < text + len; line++) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t before = d->n_required;
        if (nl != NULL) {
            *nl = '\0';
        }
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p != '#' && *p != '-') {
            add_requirement(p, false, &d->required, &d->n_required);
        }
        if (d->n_required > before) {
            d->required_line = cfw_xrealloc(d->required_line, d->n_required * sizeof(int));
            for (size_t k = before; k < d->n_required; k++) {
                d->required_line[k] = line;
            }
        }
        p = nl != NULL ? nl + 1 : text + len;
    }
    free(text);
}

void bundle_deps_load(const char *project_abs, struct bundle_deps *d)
{
    static const char *const scripts[] = {"package.json", "Makefile", "justfile"};
    char *p;
    struct stat st;

    memset(d, 0, sizeof(*d));
    if (read_pylock(project_abs, d)) {
        d->lock = "pylock.toml";
    } else if (read_uv_lock(project_abs, d)) {
        d->lock = "uv.lock";
    }
    read_pyproject(project_abs, d);
    read_requirements(project_abs, d);
    for (size_t k = 0; k < sizeof(scripts) / sizeof(scripts[0]) && !d->script_pywrangler; k++) {
        p = cfw_xasprintf("%s/%s", project_abs, scripts[k]);
        d->script_pywrangler = mentions(p, "pywrangler");
        free(p);
    }
    p = cfw_xasprintf("%s/python_modules/.synced", project_abs);
    d->synced_marker = stat(p, &st) == 0;
    free(p);
    d->pywrangler =
        d->uv_project || d->lists_workers_py || d->script_pywrangler || d->synced_marker;
    if (d->pywrangler) {
        add_requirement("workers-runtime-sdk", false, &d->declared, &d->n_declared);
    }
}

bool bundle_names_has(char *const *names, size_t n, const char *name)
{
    for (size_t k = 0; k < n; k++) {
        if (strcmp(names[k], name) == 0) {
            return true;
        }
    }
    return false;
}

void bundle_deps_clear(struct bundle_deps *d)
{
    for (size_t k = 0; k < d->n_declared; k++) {
        free(d->declared[k]);
    }
    free(d->declared);
    for (size_t k = 0; k < d->n_required; k++) {
        free(d->required[k]);
    }
    free(d->required);
    free(d->required_line);
    free(d->note);
    memset(d, 0, sizeof(*d));
}
