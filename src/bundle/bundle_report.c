/* --check-bundle: the report as text, JSON, GitHub annotations or SARIF 2.1.0. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bundle_int.h"
#include "cfwatchd/bundle.h"
#include "cfwatchd/report.h"

struct rule_meta {
    const char *id;
    const char *name;
    enum cfw_bundle_sev sev;
    const char *brief;
    const char *help;
};

/* Rule ids are part of the interface (docs/check-bundle.md); add, never rename. */
static const struct rule_meta rules[] = {
    {"src-prefix-import", "SrcPrefixImport", CFW_BUNDLE_SEV_CRITICAL,
     "Import goes through the module root's path (e.g. `from src.x import y`).",
     "wrangler uploads the files under the module root (base_dir, or the directory of main) "
     "with names relative to it, so its path from the project root (`src.`, `src.workers.`) is "
     "never part of a module name and `import src.x` fails at deploy with "
     "ModuleNotFoundError: No module named 'src' (code 10021). Import `from x import y` "
     "instead."},
    {"unresolved-import", "UnresolvedImport", CFW_BUNDLE_SEV_ERROR,
     "Imported module is not uploaded, vendored, standard library or provided by the runtime.",
     "The module is neither uploaded (under the module root), nor vendored in python_modules/, "
     "nor declared in pyproject.toml for pywrangler, nor in the Python standard library, nor a "
     "Workers runtime module (js, pyodide, workers, ...). Add packages to [project] "
     "dependencies in pyproject.toml and deploy with `uv run pywrangler deploy`."},
    {"shadowed-module", "ShadowedModule", CFW_BUNDLE_SEV_ERROR,
     "A module of the upload has the name of a standard-library or runtime module.",
     "The standard library comes before the bundle on the runtime's sys.path, so a local "
     "module of its name is never imported; the runtime's own modules and the SDK come after "
     "it, so a local `workers/` or `js.py` hides them. Rename the local module."},
    {"dependency-not-synced", "DependencyNotSynced", CFW_BUNDLE_SEV_INFO,
     "A declared dependency is not in python_modules/ yet.",
     "pywrangler sync (run by `pywrangler deploy`) vendors [project] dependencies into "
     "python_modules/; with plain `wrangler deploy`, run it first."},
    {"outside-module-root", "OutsideModuleRoot", CFW_BUNDLE_SEV_ERROR,
     "Imported module exists in the project but outside the module root.",
     "Only files under the module root are uploaded. Move the module under it, or vendor it "
     "in python_modules/."},
    {"missing-init", "MissingInit", CFW_BUNDLE_SEV_WARNING,
     "Directory imported as a package has no __init__.py.",
     "Without __init__.py the directory is a namespace package. Those import on Workers, but "
     "lose to a regular package of the same name (e.g. in python_modules/), and some tools "
     "need __init__.py. Add an __init__.py."},
    {"build-upload-config", "BuildUploadConfig", CFW_BUNDLE_SEV_WARNING,
     "The removed [build.upload] table is present.",
     "wrangler v4 removed [build.upload] (\"Unexpected fields found in build field: "
     "\\\"upload\\\"\"); use main, base_dir and rules."},
    {"python-workers-flag-missing", "PythonWorkersFlagMissing", CFW_BUNDLE_SEV_ERROR,
     "The python_workers compatibility flag is missing.",
     "The `python_workers` compatibility flag is required to use Python. Add it to "
     "compatibility_flags."},
    {"requirements-txt", "RequirementsTxt", CFW_BUNDLE_SEV_WARNING,
     "Packages the Worker imports are listed in requirements.txt (or pywrangler meets one).",
     "Specifying Python Packages in requirements.txt is no longer supported, please use "
     "pyproject.toml instead (pywrangler sync vendors them into python_modules/)."},
    {"python-modules-in-root", "PythonModulesInRoot", CFW_BUNDLE_SEV_ERROR,
     "A python_modules directory is inside the module root.",
     "The 'python_modules' directory cannot exist in your module root. Delete it to continue."},
    {"scan-limit", "ScanLimit", CFW_BUNDLE_SEV_INFO,
     "A path was not scanned (size, count or depth cap, or a symlink out of the project).",
     "cfwatchd caps what it reads; the path was skipped and its imports are not checked."},
    {"env-not-found", "EnvNotFound", CFW_BUNDLE_SEV_INFO,
     "--env names an environment the configuration does not define.",
     "The top-level configuration is used, as wrangler does when there is no env table."},
};

#define N_RULES (sizeof(rules) / sizeof(rules[0]))

static size_t rule_index(const char *id)
{
    for (size_t k = 0; k < N_RULES; k++) {
        if (strcmp(rules[k].id, id) == 0) {
            return k;
        }
    }
    return 0;
}

static size_t count_vendored(const struct cfw_bundle_report *r)
{
    size_t n = 0;
    for (size_t k = 0; k < r->n_modules; k++) {
        n += r->modules[k].vendored;
    }
    return n;
}

/* ---- text ---- */

static const char *sev_color(enum cfw_bundle_sev s)
{
    switch (s) {
    case CFW_BUNDLE_SEV_CRITICAL:
        return "\033[1;31m";
    case CFW_BUNDLE_SEV_ERROR:
        return "\033[31m";
    case CFW_BUNDLE_SEV_WARNING:
        return "\033[33m";
    case CFW_BUNDLE_SEV_INFO:
        return "\033[36m";
    }
    return "";
}

static int write_text(const struct cfw_bundle_report *r, bool color, FILE *out)
{
    size_t counts[4] = {0};
    const char *bold = color ? "\033[1m" : "", *reset = color ? "\033[0m" : "";

    fprintf(out,
            "%s%s%s: module root %s/, main module '%s', %zu module%s (%zu vendored), deploys "
            "with %s%s\n",
            bold, r->config_path, reset, r->module_root, r->main_module, r->n_modules,
            r->n_modules == 1 ? "" : "s", count_vendored(r),
            r->deploy_tool ? r->deploy_tool : "wrangler",
            r->deps_synced ? " (declared dependencies count as vendored)" : "");
    for (size_t k = 0; k < r->n_findings; k++) {
        const struct cfw_bundle_finding *f = &r->findings[k];
        counts[f->sev]++;
        fprintf(out, "%s:%d:%d: %s%s%s [%s] %s\n", f->file, f->line, f->col,
                color ? sev_color(f->sev) : "", cfw_bundle_sev_name(f->sev), reset, f->rule,
                f->message);
        if (f->fix != NULL && f->fix[0] != '\0') {
            fprintf(out, "    fix: %s\n", f->fix);
        }
    }
    if (r->n_findings == 0) {
        fprintf(out, "no findings: the bundle imports as laid out\n");
    } else {
        bool first = true;
        fprintf(out, "%zu finding%s:", r->n_findings, r->n_findings == 1 ? "" : "s");
        for (int s = CFW_BUNDLE_SEV_CRITICAL; s >= CFW_BUNDLE_SEV_INFO; s--) {
            if (counts[s] > 0) {
                fprintf(out, "%s %zu %s", first ? "" : ",", counts[s],
                        cfw_bundle_sev_name((enum cfw_bundle_sev)s));
                first = false;
            }
        }
        fprintf(out, "\n");
    }
    return ferror(out) ? -1 : 0;
}

/* ---- JSON ---- */

static json_t *report_json(const struct cfw_bundle_report *r)
{
    json_t *root = json_object(), *mods = json_array(), *fs = json_array();

    json_object_set_new(root, "version", json_integer(1));
    json_object_set_new(root, "module_root", json_string(r->module_root));
    json_object_set_new(root, "deploy", json_string(r->deploy_tool ? r->deploy_tool : "wrangler"));
    json_object_set_new(root, "dependencies_synced", json_boolean(r->deps_synced));
    for (size_t k = 0; k < r->n_modules; k++) {
        json_array_append_new(mods, json_string(r->modules[k].name));
    }
    json_object_set_new(root, "modules", mods);
    for (size_t k = 0; k < r->n_findings; k++) {
        const struct cfw_bundle_finding *f = &r->findings[k];
        json_t *o = json_object();
        json_object_set_new(o, "rule", json_string(f->rule));
        json_object_set_new(o, "severity", json_string(cfw_bundle_sev_name(f->sev)));
        json_object_set_new(o, "file", json_string(f->file));
        json_object_set_new(o, "line", json_integer(f->line));
        json_object_set_new(o, "column", json_integer(f->col));
        json_object_set_new(o, "message", json_string(f->message));
        json_object_set_new(o, "fix", f->fix ? json_string(f->fix) : json_null());
        json_array_append_new(fs, o);
    }
    json_object_set_new(root, "findings", fs);
    return root;
}

char *bundle_report_json(const struct cfw_bundle_report *r, const struct cfw_bundle_verdict *v,
                         bool agrees)
{
    json_t *root = report_json(r);
    char *s, *copy;

    if (v != NULL) {
        json_t *o = json_object();
        json_object_set_new(o, "ran", json_boolean(v->ran));
        json_object_set_new(o, "import_ok", json_boolean(v->import_ok));
        json_object_set_new(o, "timed_out", json_boolean(v->timed_out));
        json_object_set_new(o, "exit_status", json_integer(v->exit_status));
        json_object_set_new(o, "python", v->python ? json_string(v->python) : json_null());
        json_object_set_new(o, "output", json_string(v->output ? v->output : ""));
        json_object_set_new(o, "predicts_import_failure", json_boolean(r->predicts_import_failure));
        json_object_set_new(o, "agrees", json_boolean(agrees));
        json_object_set_new(root, "verify", o);
    }
    s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(root);
    copy = cfw_xstrdup(s ? s : "{}");
    free(s);
    return copy;
}

/* ---- GitHub workflow commands ---- */

static int write_github(const struct cfw_bundle_report *r, FILE *out)
{
    for (size_t k = 0; k < r->n_findings; k++) {
        const struct cfw_bundle_finding *f = &r->findings[k];
        struct cfw_buf b;
        const char *cmd = f->sev >= CFW_BUNDLE_SEV_ERROR     ? "error"
                          : f->sev == CFW_BUNDLE_SEV_WARNING ? "warning"
                                                             : "notice";

        cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
        cfw_buf_printf(&b, "::%s file=", cmd);
        cfw_report_github_escape(&b, f->file, true);
        cfw_buf_printf(&b, ",line=%d,col=%d,title=", f->line, f->col);
        cfw_report_github_escape(&b, f->rule, true);
        cfw_buf_puts(&b, "::");
        cfw_report_github_escape(&b, f->message, false);
        if (f->fix != NULL) {
            cfw_buf_puts(&b, "%0Afix: ");
            cfw_report_github_escape(&b, f->fix, false);
        }
        fprintf(out, "%s\n", b.data);
        cfw_buf_free(&b);
    }
    return ferror(out) ? -1 : 0;
}

/* ---- SARIF 2.1.0 ---- */

static char *uri_encode(const char *path)
{
    struct cfw_buf b;
    bool abs = path[0] == '/';

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    if (abs) {
        cfw_buf_puts(&b, "file://");
    }
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p) != NULL) {
            cfw_buf_putc(&b, (char)*p);
        } else {
            cfw_buf_printf(&b, "%%%02X", *p);
        }
    }
    return cfw_buf_take(&b);
}

static const char *sarif_level(enum cfw_bundle_sev s)
{
    return s >= CFW_BUNDLE_SEV_ERROR ? "error" : s == CFW_BUNDLE_SEV_WARNING ? "warning" : "note";
}

static int write_sarif(const struct cfw_bundle_report *r, FILE *out)
{
    json_t *root = json_object(), *run = json_object(), *driver = json_object();
    json_t *jrules = json_array(), *results = json_array(), *tool = json_object(), *runs;
    char *s;
    int rc;

    for (size_t k = 0; k < N_RULES; k++) {
        json_t *o = json_object(), *props = json_object(), *tags = json_array();
        json_object_set_new(o, "id", json_string(rules[k].id));
        json_object_set_new(o, "name", json_string(rules[k].name));
        json_object_set_new(o, "shortDescription", json_pack("{s:s}", "text", rules[k].brief));
        json_object_set_new(o, "fullDescription", json_pack("{s:s}", "text", rules[k].help));
        json_object_set_new(o, "help", json_pack("{s:s}", "text", rules[k].help));
        json_object_set_new(o, "defaultConfiguration",
                            json_pack("{s:s}", "level", sarif_level(rules[k].sev)));
        json_array_append_new(tags, json_string("cloudflare-workers"));
        json_array_append_new(tags, json_string("python"));
        json_object_set_new(props, "tags", tags);
        json_object_set_new(props, "severity", json_string(cfw_bundle_sev_name(rules[k].sev)));
        json_object_set_new(o, "properties", props);
        json_array_append_new(jrules, o);
    }
    json_object_set_new(driver, "name", json_string("cfwatchd"));
    json_object_set_new(driver, "version", json_string(CFW_VERSION));
    json_object_set_new(driver, "informationUri",
                        json_string("https://developers.cloudflare.com/workers/languages/python/"));
    json_object_set_new(driver, "rules", jrules);
    json_object_set_new(tool, "driver", driver);
    json_object_set_new(run, "tool", tool);
    for (size_t k = 0; k < r->n_findings; k++) {
        const struct cfw_bundle_finding *f = &r->findings[k];
        json_t *res = json_object(), *loc, *art;
        char *uri = uri_encode(f->file);
        char *text =
            f->fix ? cfw_xasprintf("%s\nFix: %s", f->message, f->fix) : cfw_xstrdup(f->message);

        json_object_set_new(res, "ruleId", json_string(f->rule));
        json_object_set_new(res, "ruleIndex", json_integer((json_int_t)rule_index(f->rule)));
        json_object_set_new(res, "level", json_string(sarif_level(f->sev)));
        json_object_set_new(res, "message", json_pack("{s:s}", "text", text));
        art = json_pack("{s:s}", "uri", uri);
        if (f->file[0] != '/') {
            json_object_set_new(art, "uriBaseId", json_string("%SRCROOT%"));
        }
        loc = json_pack("{s:{s:o,s:{s:i,s:i}}}", "physicalLocation", "artifactLocation", art,
                        "region", "startLine", f->line, "startColumn", f->col);
        json_object_set_new(res, "locations", json_pack("[o]", loc));
        json_object_set_new(
            res, "properties",
            json_pack("{s:s,s:s?}", "severity", cfw_bundle_sev_name(f->sev), "fix", f->fix));
        json_array_append_new(results, res);
        free(uri);
        free(text);
    }
    json_object_set_new(run, "results", results);
    runs = json_array();
    json_array_append_new(runs, run);
    json_object_set_new(root, "$schema",
                        json_string("https://json.schemastore.org/sarif-2.1.0.json"));
    json_object_set_new(root, "version", json_string("2.1.0"));
    json_object_set_new(root, "runs", runs);
    s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (s == NULL) {
        return -1;
    }
    rc = fprintf(out, "%s\n", s) < 0 ? -1 : 0;
    free(s);
    return rc;
}

int cfw_bundle_report_write(const struct cfw_bundle_report *r, enum cfw_bundle_format fmt,
                            bool color, FILE *out)
{
    char *s;
    int rc;

    switch (fmt) {
    case CFW_BUNDLE_FMT_TEXT:
        return write_text(r, color, out);
    case CFW_BUNDLE_FMT_JSON:
        s = bundle_report_json(r, NULL, false);
        rc = fprintf(out, "%s\n", s) < 0 ? -1 : 0;
        free(s);
        return rc;
    case CFW_BUNDLE_FMT_GITHUB:
        return write_github(r, out);
    case CFW_BUNDLE_FMT_SARIF:
        return write_sarif(r, out);
    }
    return -1;
}
