/* Unit tests for --check-bundle: config readers, globs, the import tokenizer, the check. */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "cfwatchd/bundle.h"
#include "test_util.h"

#define FIXTURES CFW_TEST_DATA "/bundles"

/* ---- helpers ---- */

static struct cfw_bundle_value *toml(const char *text, struct cfw_err *err)
{
    return cfw_bundle_toml_parse(text, strlen(text), "wrangler.toml", err);
}

static const struct cfw_bundle_value *path_get(const struct cfw_bundle_value *v, const char *path)
{
    char *copy = strdup(path), *p = copy;

    while (v != NULL && p != NULL) {
        char *dot = strchr(p, '.');
        if (dot != NULL) {
            *dot = '\0';
        }
        v = cfw_bundle_value_get(v, p);
        p = dot ? dot + 1 : NULL;
    }
    free(copy);
    return v;
}

static const char *sget(const struct cfw_bundle_value *root, const char *path)
{
    const struct cfw_bundle_value *v = path_get(root, path);
    assert_non_null(v);
    assert_non_null(v->str);
    return v->str;
}

static void write_file(const char *path, const char *text)
{
    FILE *f;
    char *dir = strdup(path), *slash = strrchr(dir, '/');

    if (slash != NULL) {
        *slash = '\0';
        for (char *q = dir + 1; *q; q++) {
            if (*q == '/') {
                *q = '\0';
                mkdir(dir, 0755);
                *q = '/';
            }
        }
        mkdir(dir, 0755);
    }
    free(dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

static char *g_copy_to;
static size_t g_copy_from_len;

static int copy_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    char dst[4096];

    (void)ftw;
    snprintf(dst, sizeof(dst), "%s%s", g_copy_to, p + g_copy_from_len);
    if (flag == FTW_D) {
        mkdir(dst, 0755);
    } else if (flag == FTW_F) {
        FILE *in = fopen(p, "rb"), *out = fopen(dst, "wb");
        char buf[8192];
        size_t n;
        assert_non_null(in);
        assert_non_null(out);
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
            fwrite(buf, 1, n, out);
        }
        fclose(in);
        fclose(out);
        chmod(dst, st->st_mode & 0777);
    }
    return 0;
}

/* Copies a fixture into a fresh temporary directory (returned, caller frees and removes). */
static char *copy_fixture(const char *name)
{
    char *tmp = malloc(64);
    char src[1024];

    assert_int_equal(tmpdir_make(tmp, 64, "bundle-test"), 0);
    snprintf(src, sizeof(src), "%s/%s", FIXTURES, name);
    g_copy_to = tmp;
    g_copy_from_len = strlen(src);
    assert_int_equal(nftw(src, copy_cb, 16, FTW_PHYS), 0);
    return tmp;
}

static char *run_capture(int *rc, char **err_text, int argc, ...)
{
    char *argv[32];
    va_list ap;
    FILE *out = tmpfile(), *err = tmpfile();
    long n;
    char *text;

    va_start(ap, argc);
    for (int k = 0; k < argc; k++) {
        argv[k] = va_arg(ap, char *);
    }
    va_end(ap);
    argv[argc] = NULL;
    *rc = cfw_bundle_run(argc, argv, out, err);
    fflush(out);
    n = ftell(out);
    text = calloc(1, (size_t)n + 1);
    rewind(out);
    assert_int_equal(fread(text, 1, (size_t)n, out), (size_t)n);
    fclose(out);
    if (err_text != NULL) {
        fflush(err);
        n = ftell(err);
        *err_text = calloc(1, (size_t)n + 1);
        rewind(err);
        assert_int_equal(fread(*err_text, 1, (size_t)n, err), (size_t)n);
    }
    fclose(err);
    return text;
}

/* ---- TOML ---- */

static void test_toml_wrangler_subset(void **state)
{
    (void)state;
    struct cfw_err err = {0};
    const char *text = "# a real-looking wrangler.toml\n"
                       "name = \"api\" # trailing comment\n"
                       "main = 'src/main.py'\n"
                       "\"quoted key\" = \"tab\\there \\u00e9 \\U0001F600\"\n"
                       "compatibility_date = 2024-09-23\n"
                       "compatibility_flags = [\n"
                       "  \"python_workers\", # needed\n"
                       "  'nodejs_compat',\n"
                       "]\n"
                       "python_modules.exclude = [\"**/*.pyc\"]\n"
                       "limits = { cpu_ms = 50, nested.deep = true }\n"
                       "hex = 0xff\n"
                       "big = 1_000_000\n"
                       "neg = -17\n"
                       "pi = 3.14\n"
                       "exp = 1e6\n"
                       "when = 1979-05-27 07:32:00Z\n"
                       "ml = \"\"\"\n"
                       "one \\\n"
                       "    two\"\"\"\n"
                       "lit = '''\n"
                       "C:\\path\\''' \n"
                       "[vars]\n"
                       "GREETING = \"hi\"\n"
                       "[env.staging]\n"
                       "main = \"src/staging.py\"\n"
                       "[env.staging.vars]\n"
                       "GREETING = \"yo\"\n"
                       "[[rules]]\n"
                       "type = \"Text\"\n"
                       "globs = [\"**/*.tmpl\"]\n"
                       "fallthrough = true\n"
                       "[[rules]]\n"
                       "type = \"Data\"\n"
                       "globs = [\"**/*.dat\"]\n"
                       "[build.upload]\n"
                       "format = \"modules\"\n";
    struct cfw_bundle_value *v = toml(text, &err);
    const struct cfw_bundle_value *a;

    if (v == NULL) {
        fail_msg("%s", err.msg);
    }
    assert_string_equal(sget(v, "name"), "api");
    assert_string_equal(sget(v, "main"), "src/main.py");
    assert_string_equal(cfw_bundle_value_get(v, "quoted key")->str,
                        "tab\there \xc3\xa9 \xf0\x9f\x98\x80");
    assert_int_equal(path_get(v, "compatibility_date")->type, CFW_BUNDLE_V_DATETIME);
    a = path_get(v, "compatibility_flags");
    assert_int_equal(a->type, CFW_BUNDLE_V_ARRAY);
    assert_int_equal(a->n, 2);
    assert_string_equal(a->items[1]->str, "nodejs_compat");
    assert_string_equal(path_get(v, "python_modules.exclude")->items[0]->str, "**/*.pyc");
    assert_int_equal(path_get(v, "limits.cpu_ms")->i, 50);
    assert_true(path_get(v, "limits.nested.deep")->b);
    assert_int_equal(path_get(v, "hex")->i, 255);
    assert_int_equal(path_get(v, "big")->i, 1000000);
    assert_int_equal(path_get(v, "neg")->i, -17);
    assert_int_equal(path_get(v, "pi")->type, CFW_BUNDLE_V_FLOAT);
    assert_int_equal(path_get(v, "exp")->type, CFW_BUNDLE_V_FLOAT);
    assert_string_equal(sget(v, "when"), "1979-05-27 07:32:00Z");
    assert_string_equal(sget(v, "ml"), "one two");
    assert_string_equal(sget(v, "lit"), "C:\\path\\");
    assert_string_equal(sget(v, "env.staging.main"), "src/staging.py");
    assert_string_equal(sget(v, "env.staging.vars.GREETING"), "yo");
    a = path_get(v, "rules");
    assert_int_equal(a->n, 2);
    assert_string_equal(sget(a->items[1], "type"), "Data");
    assert_true(path_get(a->items[0], "fallthrough")->b);
    assert_int_equal(path_get(v, "build.upload")->line, 36);
    cfw_bundle_value_free(v);
}

static void expect_toml_error(const char *text, const char *want)
{
    struct cfw_err err = {0};
    struct cfw_bundle_value *v = toml(text, &err);

    if (v != NULL) {
        cfw_bundle_value_free(v);
        fail_msg("parsed, wanted error '%s'", want);
    }
    if (strstr(err.msg, want) == NULL) {
        fail_msg("error '%s' lacks '%s'", err.msg, want);
    }
}

static void test_toml_errors(void **state)
{
    (void)state;
    expect_toml_error("name = \"x\"\nmain = src/main.py\n",
                      "wrangler.toml:2:8: expected a value, found 'src/main.py'");
    expect_toml_error("a = 1\na = 2\n", "wrangler.toml:2:1: duplicate key 'a' (first defined at "
                                        "line 1)");
    expect_toml_error("[t]\n[t]\n", "wrangler.toml:2:1: table [t] is defined twice");
    expect_toml_error("a = \"open\n", "wrangler.toml:1:10: newline inside a single-line string");
    expect_toml_error("a = \"\\q\"\n", "wrangler.toml:1:6: unknown escape sequence \\'q'");
    expect_toml_error("a 1\n", "wrangler.toml:1:3: expected '=' after a key, found '1'");
    expect_toml_error("a = 1 b = 2\n", "wrangler.toml:1:7: expected the end of the line after a "
                                       "value, found 'b'");
    expect_toml_error("t = { a = 1 }\nt.b = 2\n", "cannot add keys to 't'");
    expect_toml_error("a = [1, 2\n", "expected ',' or ']' in an array, found end of file");
    expect_toml_error("a = 0x\n", "malformed number '0x'");
    expect_toml_error("a = 012\n", "malformed number '012'");
    expect_toml_error("x = [1]\n[[x]]\n", "cannot define [[x]]");
    expect_toml_error("a = \"\"\"never closed\n", "wrangler.toml:1:5: unterminated string");
}

/* ---- JSONC ---- */

static void test_jsonc(void **state)
{
    (void)state;
    struct cfw_err err = {0};
    const char *text = "// leading comment\n"
                       "{\n"
                       "  \"main\": \"src/entry.py\", /* block */\n"
                       "  \"s\": \"a // not a comment \\/* \\u00e9\\ud83d\\ude00\",\n"
                       "  \"flags\": [\"python_workers\",],\n"
                       "  \"n\": -12, \"f\": 1.5e3, \"t\": true, \"z\": null,\n"
                       "  \"dup\": 1, \"dup\": 2,\n"
                       "}\n";
    struct cfw_bundle_value *v = cfw_bundle_jsonc_parse(text, strlen(text), "w.jsonc", &err);

    if (v == NULL) {
        fail_msg("%s", err.msg);
    }
    assert_string_equal(sget(v, "main"), "src/entry.py");
    assert_string_equal(sget(v, "s"), "a // not a comment /* \xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(path_get(v, "flags")->n, 1);
    assert_int_equal(path_get(v, "n")->i, -12);
    assert_int_equal(path_get(v, "f")->type, CFW_BUNDLE_V_FLOAT);
    assert_int_equal(path_get(v, "z")->type, CFW_BUNDLE_V_NULL);
    assert_int_equal(path_get(v, "dup")->i, 2);
    assert_int_equal(path_get(v, "main")->line, 3);
    assert_int_equal(path_get(v, "main")->col, 11);
    cfw_bundle_value_free(v);

    v = cfw_bundle_jsonc_parse("{\"a\": 1 \"b\": 2}", 15, "w.jsonc", &err);
    assert_null(v);
    assert_string_equal(err.msg, "w.jsonc:1:9: expected ',' or '}', found '\"'");
    v = cfw_bundle_jsonc_parse("{} /* open", 10, "w.jsonc", &err);
    assert_null(v);
    assert_string_equal(err.msg, "w.jsonc:1:4: unterminated /* comment");
    v = cfw_bundle_jsonc_parse("{}\n}", 4, "w.jsonc", &err);
    assert_null(v);
    assert_string_equal(err.msg, "w.jsonc:2:1: unexpected '}' after the top-level value");
}

/* ---- globs ---- */

static void test_globs(void **state)
{
    (void)state;
    assert_true(cfw_bundle_glob_match("**/*.py", "a.py"));
    assert_true(cfw_bundle_glob_match("**/*.py", "x/y/a.py"));
    assert_false(cfw_bundle_glob_match("**/*.py", "a.pyc"));
    assert_false(cfw_bundle_glob_match("**/*.py", "a.py/b"));
    assert_true(cfw_bundle_glob_match("*.py", "a.py"));
    assert_false(cfw_bundle_glob_match("*.py", "x/a.py"));
    assert_true(cfw_bundle_glob_match("python_modules/**", "python_modules/a/b.so"));
    assert_true(cfw_bundle_glob_match("**/*.wasm?module", "m/x.wasm?module"));
    assert_false(cfw_bundle_glob_match("**/*.wasm?module", "m/x.wasmXmodule"));
    assert_true(cfw_bundle_glob_match("src/**/*.txt", "src/a.txt"));
    assert_true(cfw_bundle_glob_match("src/**/*.txt", "src/q/r/a.txt"));
    assert_false(cfw_bundle_glob_match("src/**/*.txt", "lib/a.txt"));
    assert_true(cfw_bundle_glob_match("a**b", "axxb"));
    assert_false(cfw_bundle_glob_match("a**b", "ax/xb"));
}

/* ---- Python imports ---- */

struct want {
    const char *module;
    int level;
    int line;
    int col;
    unsigned ctx;
    bool guarded;
    const char *names; /* comma-joined */
};

static void check_imports(const char *src, const struct want *w, size_t n)
{
    struct cfw_bundle_imports im = {0};

    assert_int_equal(cfw_bundle_py_imports(src, strlen(src), &im, NULL), 0);
    if (im.n != n) {
        for (size_t k = 0; k < im.n; k++) {
            print_message("got %s (line %d)\n", im.v[k].module, im.v[k].line);
        }
        fail_msg("got %zu imports, want %zu", im.n, n);
    }
    for (size_t k = 0; k < n; k++) {
        char names[256] = "";
        for (size_t j = 0; j < im.v[k].n_names; j++) {
            strncat(names, j ? "," : "", sizeof(names) - strlen(names) - 1);
            strncat(names, im.v[k].names[j], sizeof(names) - strlen(names) - 1);
        }
        assert_string_equal(im.v[k].module, w[k].module);
        assert_int_equal(im.v[k].level, w[k].level);
        assert_int_equal(im.v[k].line, w[k].line);
        assert_int_equal(im.v[k].col, w[k].col);
        assert_int_equal(im.v[k].ctx, w[k].ctx);
        assert_int_equal(im.v[k].guarded, w[k].guarded);
        assert_string_equal(names, w[k].names ? w[k].names : "");
    }
    cfw_bundle_imports_clear(&im);
}

static void test_py_import_forms(void **state)
{
    (void)state;
    const char *src = "import a.b as c, d\n"
                      "from a.b import (x,\n"
                      "    y as z,  # comment with import fake\n"
                      ")\n"
                      "from . import sib\n"
                      "from ..up import thing\n"
                      "from a \\\n"
                      "    import cont\n"
                      "import p; import q\n"
                      "from m import *\n"
                      "raise E from e\n"
                      "x = yield_from = 1\n";
    static const struct want w[] = {
        {"a.b", 0, 1, 8, 0, false, NULL},   {"d", 0, 1, 18, 0, false, NULL},
        {"a.b", 0, 2, 6, 0, false, "x,y"},  {"", 1, 5, 6, 0, false, "sib"},
        {"up", 2, 6, 6, 0, false, "thing"}, {"a", 0, 7, 6, 0, false, "cont"},
        {"p", 0, 9, 8, 0, false, NULL},     {"q", 0, 9, 18, 0, false, NULL},
        {"m", 0, 10, 6, 0, false, "*"},
    };
    check_imports(src, w, sizeof(w) / sizeof(w[0]));
}

static void test_py_strings_are_skipped(void **state)
{
    (void)state;
    const char *src = "s = 'import nope1'\n"
                      "t = \"\"\"\n"
                      "import nope2\n"
                      "from nope3 import x\n"
                      "\"\"\"\n"
                      "r = r'\\' import nope4'\n"
                      "b = rb\"\\\"\" ; import yes1\n"
                      "f = f\"{d['import nope5']} {x:>{w}} {{import nope6}}\"\n"
                      "g = f'''{\n"
                      "  a}''' ; import yes2\n"
                      "u = U'ok'  # import nope7\n"
                      "import yes3\n";
    static const struct want w[] = {
        {"yes1", 0, 7, 21, 0, false, NULL},
        {"yes2", 0, 10, 18, 0, false, NULL},
        {"yes3", 0, 12, 8, 0, false, NULL},
    };
    check_imports(src, w, sizeof(w) / sizeof(w[0]));
}

static void test_py_import_contexts(void **state)
{
    (void)state;
    const char *src = "from typing import TYPE_CHECKING\n"        /* 1 */
                      "try:\n"                                    /* 2 */
                      "    import fast\n"                         /* 3 */
                      "except ImportError:\n"                     /* 4 */
                      "    import slow\n"                         /* 5 */
                      "try:\n"                                    /* 6 */
                      "    import risky\n"                        /* 7 */
                      "except KeyError:\n"                        /* 8 */
                      "    pass\n"                                /* 9 */
                      "try:\n"                                    /* 10 */
                      "    import fin\n"                          /* 11 */
                      "finally:\n"                                /* 12 */
                      "    pass\n"                                /* 13 */
                      "try: import oneline\n"                     /* 14 */
                      "except: pass\n"                            /* 15 */
                      "if TYPE_CHECKING:\n"                       /* 16 */
                      "    import tc\n"                           /* 17 */
                      "else:\n"                                   /* 18 */
                      "    import notc\n"                         /* 19 */
                      "class K:\n"                                /* 20 */
                      "    import inclass\n"                      /* 21 */
                      "    def m(self):\n"                        /* 22 */
                      "        try:\n"                            /* 23 */
                      "            import both\n"                 /* 24 */
                      "        except (ValueError, Exception):\n" /* 25 */
                      "            pass\n"                        /* 26 */
                      "async def h(): import inline_lazy\n"       /* 27 */
                      "def f(\n"                                  /* 28 */
                      "    a: int = 1,\n"                         /* 29 */
                      ") -> dict[str, int]:\n"                    /* 30 */
                      "    import lazy\n"                         /* 31 */
                      "\n"                                        /* 32 */
                      "    # comment at another indent\n"         /* 33 */
                      "    import lazy2\n"                        /* 34 */
                      "import toplevel\n";                        /* 35 */
    static const struct want w[] = {
        {"typing", 0, 1, 6, 0, false, "TYPE_CHECKING"},
        {"fast", 0, 3, 12, CFW_BUNDLE_IMPORT_TRY, true, NULL},
        {"slow", 0, 5, 12, 0, false, NULL},
        {"risky", 0, 7, 12, CFW_BUNDLE_IMPORT_TRY, false, NULL},
        {"fin", 0, 11, 12, CFW_BUNDLE_IMPORT_TRY, false, NULL},
        {"oneline", 0, 14, 13, CFW_BUNDLE_IMPORT_TRY, true, NULL},
        {"tc", 0, 17, 12, CFW_BUNDLE_IMPORT_TYPECHECK, false, NULL},
        {"notc", 0, 19, 12, 0, false, NULL},
        {"inclass", 0, 21, 12, 0, false, NULL},
        {"both", 0, 24, 20, CFW_BUNDLE_IMPORT_LAZY | CFW_BUNDLE_IMPORT_TRY, true, NULL},
        {"inline_lazy", 0, 27, 23, CFW_BUNDLE_IMPORT_LAZY, false, NULL},
        {"lazy", 0, 31, 12, CFW_BUNDLE_IMPORT_LAZY, false, NULL},
        {"lazy2", 0, 34, 12, CFW_BUNDLE_IMPORT_LAZY, false, NULL},
        {"toplevel", 0, 35, 8, 0, false, NULL},
    };
    check_imports(src, w, sizeof(w) / sizeof(w[0]));
}

/* `if __name__ == "__main__":` never runs; a guarded import knows its try: and the except
 * clauses' imports know whose alternatives they are. */
static void test_py_main_guard_and_alternatives(void **state)
{
    (void)state;
    const char *src = "try:\n"                                /* 1 */
                      "    from .api import app\n"            /* 2 */
                      "except ImportError:\n"                 /* 3 */
                      "    from api import app\n"             /* 4 */
                      "try:\n"                                /* 5 */
                      "    import ujson\n"                    /* 6 */
                      "except ImportError: import json\n"     /* 7 */
                      "import after\n"                        /* 8 */
                      "if __name__ == \"__main__\":\n"        /* 9 */
                      "    import uvicorn\n"                  /* 10 */
                      "if '__main__' == __name__: import a\n" /* 11 */
                      "if __name__ == \"other\":\n"           /* 12 */
                      "    import b\n";                       /* 13 */
    static const struct want w[] = {
        {"api", 1, 2, 10, CFW_BUNDLE_IMPORT_TRY, true, "app"},
        {"api", 0, 4, 10, 0, false, "app"},
        {"ujson", 0, 6, 12, CFW_BUNDLE_IMPORT_TRY, true, NULL},
        {"json", 0, 7, 28, 0, false, NULL},
        {"after", 0, 8, 8, 0, false, NULL},
        {"uvicorn", 0, 10, 12, CFW_BUNDLE_IMPORT_MAINGUARD, false, NULL},
        {"a", 0, 11, 35, CFW_BUNDLE_IMPORT_MAINGUARD, false, NULL},
        {"b", 0, 13, 12, 0, false, NULL},
    };
    struct cfw_bundle_imports im = {0};

    check_imports(src, w, sizeof(w) / sizeof(w[0]));
    assert_int_equal(cfw_bundle_py_imports(src, strlen(src), &im, NULL), 0);
    assert_int_equal(im.v[0].guard_try, 0);
    assert_int_equal(im.v[1].handler_of, 0);
    assert_int_equal(im.v[2].guard_try, 1);
    assert_int_equal(im.v[3].handler_of, 1);
    assert_int_equal(im.v[4].handler_of, -1);
    assert_int_equal(im.v[4].guard_try, -1);
    cfw_bundle_imports_clear(&im);
}

static void test_py_tabs_and_crlf(void **state)
{
    (void)state;
    const char *src = "def f():\r\n\timport inner\r\nimport outer\r\n";
    static const struct want w[] = {
        {"inner", 0, 2, 9, CFW_BUNDLE_IMPORT_LAZY, false, NULL},
        {"outer", 0, 3, 8, 0, false, NULL},
    };
    check_imports(src, w, sizeof(w) / sizeof(w[0]));
}

/* ---- configuration ---- */

static void test_config_env_and_defaults(void **state)
{
    (void)state;
    struct cfw_bundle_config cfg;
    struct cfw_err err = {0};

    assert_int_equal(cfw_bundle_config_load(FIXTURES "/jsonc", NULL, &cfg, &err), 0);
    assert_string_equal(cfg.main, "src/entry.py");
    assert_int_equal(cfg.n_py_excludes, 1);
    assert_string_equal(cfg.py_excludes[0], "**/*.pyc");
    assert_int_equal(cfg.n_compat_flags, 1);
    cfw_bundle_config_clear(&cfg);
    assert_int_equal(cfw_bundle_config_load(FIXTURES "/jsonc", "staging", &cfg, &err), 0);
    assert_string_equal(cfg.main, "src/staging.py");
    assert_string_equal(cfg.compat_date, "2025-10-01");
    cfw_bundle_config_clear(&cfg);
    assert_int_equal(cfw_bundle_config_load(FIXTURES "/jsonc", "prod", &cfg, &err), -1);
    assert_non_null(strstr(err.msg, "No environment found in configuration with name \"prod\""));
    assert_int_equal(cfw_bundle_config_load(FIXTURES "/build-upload", "x", &cfg, &err), 0);
    assert_true(cfg.build_upload);
    assert_int_equal(cfg.upload_line, 7);
    assert_non_null(cfg.env_note);
    cfw_bundle_config_clear(&cfg);
    assert_int_equal(cfw_bundle_config_load(FIXTURES "/flat-root", NULL, &cfg, &err), 0);
    assert_int_equal(cfg.n_rules, 1);
    assert_true(cfg.rules[0].fallthrough);
    assert_int_equal(cfg.n_py_excludes, 2);
    cfw_bundle_config_clear(&cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
    char dir[64];
    char path[256];
    struct cfw_bundle_config cfg;
    struct cfw_err err = {0};

    assert_int_equal(tmpdir_make(dir, sizeof(dir), "bundle-cfg"), 0);
    assert_int_equal(cfw_bundle_config_load(dir, NULL, &cfg, &err), -1);
    assert_non_null(strstr(err.msg, "no wrangler.json, wrangler.jsonc or wrangler.toml"));
    snprintf(path, sizeof(path), "%s/wrangler.toml", dir);
    write_file(path, "main = 1\n");
    assert_int_equal(cfw_bundle_config_load(dir, NULL, &cfg, &err), -1);
    assert_non_null(strstr(err.msg, "wrangler.toml:1:8: \"main\" must be a string, found integer"));
    write_file(path, "compatibility_flags = \"python_workers\"\n");
    assert_int_equal(cfw_bundle_config_load(dir, NULL, &cfg, &err), -1);
    assert_non_null(strstr(err.msg, "must be an array of strings"));
    /* wrangler.json wins over wrangler.toml */
    snprintf(path, sizeof(path), "%s/wrangler.json", dir);
    write_file(path, "{\"main\": \"x.py\"}");
    assert_int_equal(cfw_bundle_config_load(dir, NULL, &cfg, &err), 0);
    assert_string_equal(cfg.main, "x.py");
    assert_non_null(strstr(cfg.path, "wrangler.json"));
    cfw_bundle_config_clear(&cfg);
    assert_int_equal(tmpdir_remove(dir), 0);
}

/* ---- the check on every fixture ---- */

static void check_fixture(const char *name, const char *env, json_t *exp)
{
    char dir[1024];
    struct cfw_err err = {0};
    struct cfw_bundle_report *r;
    json_t *mods = json_object_get(exp, "modules"), *fs = json_object_get(exp, "findings");
    size_t idx, dl;
    json_t *item;

    snprintf(dir, sizeof(dir), "%s/%s", FIXTURES, name);
    dl = strlen(dir) + 1;
    r = cfw_bundle_check(dir, env, &err);
    if (r == NULL) {
        fail_msg("%s: %s", name, err.msg);
    }
    if (r->n_modules != json_array_size(mods)) {
        for (size_t k = 0; k < r->n_modules; k++) {
            print_message("  module %s\n", r->modules[k].name);
        }
        fail_msg("%s: %zu modules, want %zu", name, r->n_modules, json_array_size(mods));
    }
    json_array_foreach (mods, idx, item) {
        bool found = false;
        for (size_t k = 0; k < r->n_modules; k++) {
            found |= strcmp(r->modules[k].name, json_string_value(item)) == 0;
        }
        if (!found) {
            fail_msg("%s: module %s missing", name, json_string_value(item));
        }
    }
    assert_string_equal(r->modules[0].name, json_string_value(json_array_get(mods, 0)));
    if (r->n_findings != json_array_size(fs)) {
        for (size_t k = 0; k < r->n_findings; k++) {
            print_message("  %s %s:%d %s\n", r->findings[k].rule, r->findings[k].file,
                          r->findings[k].line, r->findings[k].message);
        }
        fail_msg("%s: %zu findings, want %zu", name, r->n_findings, json_array_size(fs));
    }
    json_array_foreach (fs, idx, item) {
        bool found = false;
        for (size_t k = 0; k < r->n_findings; k++) {
            const struct cfw_bundle_finding *f = &r->findings[k];
            found |= strcmp(f->rule, json_string_value(json_object_get(item, "rule"))) == 0 &&
                     strcmp(cfw_bundle_sev_name(f->sev),
                            json_string_value(json_object_get(item, "severity"))) == 0 &&
                     strlen(f->file) > dl &&
                     strcmp(f->file + dl, json_string_value(json_object_get(item, "file"))) == 0 &&
                     f->line == json_integer_value(json_object_get(item, "line"));
        }
        if (!found) {
            fail_msg("%s: no %s %s at %s:%lld", name,
                     json_string_value(json_object_get(item, "severity")),
                     json_string_value(json_object_get(item, "rule")),
                     json_string_value(json_object_get(item, "file")),
                     (long long)json_integer_value(json_object_get(item, "line")));
        }
    }
    assert_int_equal(r->predicts_import_failure,
                     json_is_true(json_object_get(exp, "import_fails")));
    cfw_bundle_report_free(r);
}

static void test_fixtures(void **state)
{
    (void)state;
    static const char *const names[] = {"src-import-failure",
                                        "src-import-fixed",
                                        "base-dir",
                                        "vendored",
                                        "jsonc",
                                        "build-upload",
                                        "relative-imports",
                                        "try-and-functions",
                                        "requirements-txt",
                                        "missing-flag",
                                        "python-modules-in-root",
                                        "outside-root",
                                        "external-sdk",
                                        "flat-root"};

    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        char path[1024];
        json_error_t jerr;
        json_t *exp, *env;

        snprintf(path, sizeof(path), "%s/%s/expected.json", FIXTURES, names[k]);
        exp = json_load_file(path, 0, &jerr);
        if (exp == NULL) {
            fail_msg("%s: %s", path, jerr.text);
        }
        check_fixture(names[k], NULL, exp);
        env = json_object_get(exp, "env");
        if (env != NULL) {
            check_fixture(names[k], json_string_value(json_object_get(env, "name")), env);
        }
        json_decref(exp);
    }
}

/* ---- --fix, --fix --write, --verify ---- */

static void test_fix_write_verify(void **state)
{
    (void)state;
    char *dir = copy_fixture("src-import-failure");
    struct cfw_err err = {0};
    struct cfw_bundle_report *r = cfw_bundle_check(dir, NULL, &err);
    struct cfw_buf diff = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_buf done = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_bundle_verdict v = {0};
    char path[1024], *text;

    assert_non_null(r);
    assert_true(r->predicts_import_failure);
    assert_int_equal(cfw_bundle_fix_diff(r, &diff, &err), 0);
    assert_non_null(strstr(diff.data, "-from src.core.config.settings import Settings\n"
                                      "+from core.config.settings import Settings\n"));
    assert_non_null(strstr(diff.data, "@@ -8,7 +8,7 @@\n"));
    assert_non_null(strstr(diff.data, "--- /dev/null\n"));
    assert_non_null(strstr(diff.data, "src/core/config/__init__.py\n@@ -0,0 +1 @@\n+#"));

    if (cfw_bundle_verify(r, 20000, &v, &err) == 0) {
        assert_false(v.import_ok);
        assert_non_null(strstr(v.output, "ModuleNotFoundError: No module named 'src'"));
        assert_non_null(strstr(v.output, "<bundle>/main.py\", line 11"));
    } else {
        print_message("python3 unavailable (%s): verify not exercised\n", err.msg);
    }
    cfw_bundle_verdict_clear(&v);

    assert_int_equal(cfw_bundle_fix_write(r, &done, &err), 0);
    assert_non_null(strstr(done.data, "rewrote "));
    assert_non_null(strstr(done.data, "created "));
    snprintf(path, sizeof(path), "%s/src/main.py", dir);
    text = read_all(path);
    assert_non_null(strstr(text, "\nfrom core.config.settings import Settings\n"));
    free(text);
    cfw_bundle_report_free(r);
    cfw_buf_free(&diff);
    cfw_buf_free(&done);

    r = cfw_bundle_check(dir, NULL, &err);
    assert_non_null(r);
    assert_int_equal(r->n_findings, 0);
    assert_int_equal(r->n_modules, 4);
    if (cfw_bundle_verify(r, 20000, &v, &err) == 0) {
        if (!v.import_ok) {
            fail_msg("import failed after --fix --write:\n%s", v.output);
        }
    }
    cfw_bundle_verdict_clear(&v);
    cfw_bundle_report_free(r);
    assert_int_equal(tmpdir_remove(dir), 0);
    free(dir);
}

static void test_fix_refuses_stale_file(void **state)
{
    (void)state;
    char *dir = copy_fixture("src-import-failure");
    struct cfw_err err = {0};
    struct cfw_bundle_report *r = cfw_bundle_check(dir, NULL, &err);
    struct cfw_buf done = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    char path[1024], *before, *after;

    assert_non_null(r);
    snprintf(path, sizeof(path), "%s/src/main.py", dir);
    write_file(path, "import os\n\n\n\n\n\n\n\n\n\nfrom core.config.settings import Settings\n");
    before = read_all(path);
    assert_int_equal(cfw_bundle_fix_write(r, &done, &err), -1);
    assert_non_null(strstr(err.msg, "changed since it was checked"));
    after = read_all(path);
    assert_string_equal(before, after);
    snprintf(path, sizeof(path), "%s/src/core/config/__init__.py", dir);
    assert_int_equal(access(path, F_OK), -1);
    free(before);
    free(after);
    cfw_buf_free(&done);
    cfw_bundle_report_free(r);
    assert_int_equal(tmpdir_remove(dir), 0);
    free(dir);
}

static void test_verify_without_python(void **state)
{
    (void)state;
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    char *out, *errt;
    int rc;
    struct cfw_err err = {0};
    struct cfw_bundle_report *r = cfw_bundle_check(FIXTURES "/src-import-fixed", NULL, &err);
    struct cfw_bundle_verdict v = {0};

    assert_non_null(r);
    setenv("PATH", "/nonexistent-cfw-dir", 1);
    assert_int_equal(cfw_bundle_verify(r, 1000, &v, &err), -1);
    assert_int_equal(err.code, ENOENT);
    assert_non_null(strstr(err.msg, "python3 not found"));
    out = run_capture(&rc, &errt, 2, FIXTURES "/src-import-fixed", "--verify");
    assert_int_equal(rc, 2);
    assert_non_null(strstr(errt, "python3 not found"));
    if (old != NULL) {
        setenv("PATH", old, 1);
    }
    free(old);
    free(out);
    free(errt);
    cfw_bundle_verdict_clear(&v);
    cfw_bundle_report_free(r);
}

static void test_fix_import_forms(void **state)
{
    (void)state;
    char dir[64];
    char path[512];
    struct cfw_err err = {0};
    struct cfw_bundle_report *r;
    struct cfw_buf diff = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_buf done = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    size_t fixes = 0, manual = 0;

    assert_int_equal(tmpdir_make(dir, sizeof(dir), "bundle-forms"), 0);
    snprintf(path, sizeof(path), "%s/wrangler.toml", dir);
    write_file(path, "main = \"app/main.py\"\ncompatibility_flags = [\"python_workers\"]\n");
    snprintf(path, sizeof(path), "%s/app/main.py", dir);
    write_file(path, "from app import utils\n"
                     "import app.utils as u\n"
                     "import app.utils\n"
                     "from app.pkg.mod import f\n"
                     "\n"
                     "X = utils.A + u.A + app.utils.A + f()\n");
    snprintf(path, sizeof(path), "%s/app/utils.py", dir);
    write_file(path, "A = 1\n");
    snprintf(path, sizeof(path), "%s/app/pkg/mod.py", dir);
    write_file(path, "def f():\n    return 1\n");
    r = cfw_bundle_check(dir, NULL, &err);
    assert_non_null(r);
    for (size_t k = 0; k < r->n_findings; k++) {
        if (strcmp(r->findings[k].rule, "src-prefix-import") == 0) {
            assert_int_equal(r->findings[k].sev, CFW_BUNDLE_SEV_CRITICAL);
            if (strstr(r->findings[k].fix, "refer to it as") != NULL) {
                manual++;
            } else {
                fixes++;
            }
        }
    }
    assert_int_equal(fixes, 3);
    assert_int_equal(manual, 1);
    assert_int_equal(cfw_bundle_fix_diff(r, &diff, &err), 0);
    assert_non_null(strstr(diff.data, "-from app import utils\n-import app.utils as u\n"));
    assert_non_null(strstr(diff.data, "+import utils\n+import utils as u\n"));
    assert_non_null(strstr(diff.data, "+from pkg.mod import f\n"));
    assert_non_null(strstr(diff.data, "+++ b/"));
    assert_non_null(strstr(diff.data, "app/pkg/__init__.py\n"));
    assert_int_equal(cfw_bundle_fix_write(r, &done, &err), 0);
    cfw_bundle_report_free(r);
    r = cfw_bundle_check(dir, NULL, &err);
    assert_non_null(r);
    /* Only the manual one is left. */
    assert_int_equal(r->n_findings, 1);
    assert_string_equal(r->findings[0].rule, "src-prefix-import");
    assert_int_equal(r->findings[0].line, 3);
    cfw_bundle_report_free(r);
    cfw_buf_free(&diff);
    cfw_buf_free(&done);
    assert_int_equal(tmpdir_remove(dir), 0);
}

/* ---- the command line and the formats ---- */

static void test_cli_usage_and_exit_codes(void **state)
{
    (void)state;
    int rc;
    char *out, *errt;

    out = run_capture(&rc, NULL, 1, "--help");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "usage: cfwatchd --check-bundle"));
    free(out);
    out = run_capture(&rc, &errt, 1, "--bogus");
    assert_int_equal(rc, 2);
    assert_non_null(strstr(errt, "unknown option '--bogus'"));
    free(out);
    free(errt);
    out = run_capture(&rc, &errt, 3, FIXTURES "/jsonc", "--format", "xml");
    assert_int_equal(rc, 2);
    free(out);
    free(errt);
    out = run_capture(&rc, &errt, 2, FIXTURES "/jsonc", "--write");
    assert_int_equal(rc, 2);
    free(out);
    free(errt);
    out = run_capture(&rc, &errt, 1, "/nonexistent-cfw-project");
    assert_int_equal(rc, 2);
    assert_non_null(strstr(errt, "no wrangler.json, wrangler.jsonc or wrangler.toml"));
    free(out);
    free(errt);
    /* exit codes follow --fail-on */
    out = run_capture(&rc, NULL, 1, FIXTURES "/src-import-fixed");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "no findings"));
    free(out);
    out = run_capture(&rc, NULL, 1, FIXTURES "/build-upload");
    assert_int_equal(rc, 1);
    free(out);
    out = run_capture(&rc, NULL, 3, FIXTURES "/build-upload", "--fail-on", "error");
    assert_int_equal(rc, 0);
    free(out);
    out = run_capture(&rc, NULL, 3, "--fail-on=critical", FIXTURES "/src-import-failure",
                      "--no-color");
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "critical [src-prefix-import]"));
    assert_null(strstr(out, "\033["));
    free(out);
    out = run_capture(&rc, NULL, 5, FIXTURES "/jsonc", "--env", "staging", "--format", "json");
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "\"src-prefix-import\""));
    free(out);
}

static void test_formats(void **state)
{
    (void)state;
    int rc;
    char *out;
    json_t *j, *runs, *results, *rules, *res;
    json_error_t jerr;
    size_t idx;
    json_t *item;
    bool seen_src = false;

    out = run_capture(&rc, NULL, 3, FIXTURES "/src-import-failure", "--format", "json");
    assert_int_equal(rc, 1);
    j = json_loads(out, 0, &jerr);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    assert_true(json_is_string(json_object_get(j, "module_root")));
    assert_int_equal(json_array_size(json_object_get(j, "modules")), 3);
    json_array_foreach (json_object_get(j, "findings"), idx, item) {
        const char *keys[] = {"rule", "severity", "file", "line", "column", "message", "fix"};
        assert_int_equal(json_object_size(item), 7);
        for (size_t k = 0; k < 7; k++) {
            assert_non_null(json_object_get(item, keys[k]));
        }
    }
    json_decref(j);
    free(out);

    out = run_capture(&rc, NULL, 3, FIXTURES "/src-import-failure", "--format", "github");
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "::error file="));
    assert_non_null(strstr(out, "/src/main.py,line=11,col=6,title=src-prefix-import::import of "
                                "'src.core.config.settings'"));
    assert_non_null(strstr(out, "%0Afix: from core.config.settings import Settings\n"));
    assert_non_null(strstr(out, "::notice file=")); /* missing-init is info */
    free(out);

    out = run_capture(&rc, NULL, 3, FIXTURES "/src-import-failure", "--format", "sarif");
    assert_int_equal(rc, 1);
    j = json_loads(out, 0, &jerr);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "version")), "2.1.0");
    runs = json_object_get(j, "runs");
    assert_int_equal(json_array_size(runs), 1);
    rules = json_object_get(
        json_object_get(json_object_get(json_array_get(runs, 0), "tool"), "driver"), "rules");
    assert_true(json_array_size(rules) >= 8);
    results = json_object_get(json_array_get(runs, 0), "results");
    assert_int_equal(json_array_size(results), 2);
    json_array_foreach (results, idx, res) {
        size_t ri = (size_t)json_integer_value(json_object_get(res, "ruleIndex"));
        json_t *loc = json_object_get(json_array_get(json_object_get(res, "locations"), 0),
                                      "physicalLocation");
        assert_string_equal(json_string_value(json_object_get(json_array_get(rules, ri), "id")),
                            json_string_value(json_object_get(res, "ruleId")));
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(loc, "region"), "startLine")), 11);
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(loc, "region"), "startColumn")), 6);
        if (strcmp(json_string_value(json_object_get(res, "ruleId")), "src-prefix-import") == 0) {
            seen_src = true;
            assert_string_equal(json_string_value(json_object_get(res, "level")), "error");
        }
    }
    assert_true(seen_src);
    json_decref(j);
    free(out);
}

/* ---- caps and symlinks ---- */

static void test_caps_and_symlinks(void **state)
{
    (void)state;
    char dir[64];
    char path[512], target[512];
    struct cfw_err err = {0};
    struct cfw_bundle_report *r;
    FILE *f;
    bool big = false, link_out = false, link_in = false;

    assert_int_equal(tmpdir_make(dir, sizeof(dir), "bundle-caps"), 0);
    snprintf(path, sizeof(path), "%s/wrangler.toml", dir);
    write_file(path, "main = \"src/entry.py\"\ncompatibility_flags = [\"python_workers\"]\n");
    snprintf(path, sizeof(path), "%s/src/entry.py", dir);
    write_file(path, "import helper\n");
    snprintf(path, sizeof(path), "%s/lib/helper.py", dir);
    write_file(path, "X = 1\n");
    snprintf(path, sizeof(path), "%s/src/helper.py", dir);
    snprintf(target, sizeof(target), "%s/lib/helper.py", dir);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof(path), "%s/src/passwd.txt", dir);
    assert_int_equal(symlink("/etc/passwd", path), 0);
    snprintf(path, sizeof(path), "%s/src/huge.py", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    for (size_t k = 0; k < CFW_BUNDLE_MAX_FILE_BYTES / 16 + 2; k++) {
        fputs("x = 12345678901\n", f);
    }
    fclose(f);
    r = cfw_bundle_check(dir, NULL, &err);
    assert_non_null(r);
    for (size_t k = 0; k < r->n_findings; k++) {
        const struct cfw_bundle_finding *fi = &r->findings[k];
        if (strcmp(fi->rule, "scan-limit") == 0 && strstr(fi->file, "huge.py")) {
            big = true;
        }
        if (strcmp(fi->rule, "scan-limit") == 0 && strstr(fi->file, "passwd.txt")) {
            link_out = true;
        }
        assert_true(fi->sev == CFW_BUNDLE_SEV_INFO);
    }
    for (size_t k = 0; k < r->n_modules; k++) {
        link_in |= strcmp(r->modules[k].name, "helper.py") == 0;
        assert_string_not_equal(r->modules[k].name, "passwd.txt");
    }
    assert_true(big);
    assert_true(link_out);
    assert_true(link_in);
    assert_false(r->predicts_import_failure);
    cfw_bundle_report_free(r);
    assert_int_equal(tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toml_wrangler_subset),
        cmocka_unit_test(test_toml_errors),
        cmocka_unit_test(test_jsonc),
        cmocka_unit_test(test_globs),
        cmocka_unit_test(test_py_import_forms),
        cmocka_unit_test(test_py_strings_are_skipped),
        cmocka_unit_test(test_py_import_contexts),
        cmocka_unit_test(test_py_main_guard_and_alternatives),
        cmocka_unit_test(test_py_tabs_and_crlf),
        cmocka_unit_test(test_config_env_and_defaults),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_fix_write_verify),
        cmocka_unit_test(test_fix_refuses_stale_file),
        cmocka_unit_test(test_fix_import_forms),
        cmocka_unit_test(test_verify_without_python),
        cmocka_unit_test(test_cli_usage_and_exit_codes),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_caps_and_symlinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
