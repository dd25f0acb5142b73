/*
 * Fuzz target: the readers of --check-bundle. The first byte picks the TOML reader (wrangler.toml
 * subset), the JSONC reader (wrangler.json/jsonc) or the Python import tokenizer, or all three;
 * the rest is the file, handed over in an exact-size buffer (no terminating NUL to lean on).
 * Checked: a reader returns a tree or a "file:line:col: message" error, never neither; trees are
 * well-formed (typed values with their text, tables whose keys all resolve with
 * cfw_bundle_value_get, lines and columns >= 1, nesting within the cap); every import found lies
 * inside the text: its statement starts with `import` or `from`, its offsets are ordered and in
 * range, lines and columns are >= 1, the names of from-imports are non-empty; an import is
 * guarded exactly when it names the try: that guards it, and that try: is around it.
 */
#include <string.h>

#include "cfwatchd/bundle.h"
#include "cfwatchd/log.h"
#include "fuzz_util.h"

#define FILE_NAME "wrangler.fuzz"

static void walk(const struct cfw_bundle_value *v, int depth)
{
    FUZZ_CHECK(v != NULL);
    FUZZ_CHECK(depth <= CFW_BUNDLE_MAX_NESTING + 2);
    FUZZ_CHECK(v->line >= 1 && v->col >= 1);
    FUZZ_CHECK(v->n <= v->cap || v->n == 0);
    switch (v->type) {
    case CFW_BUNDLE_V_STRING:
    case CFW_BUNDLE_V_INT:
    case CFW_BUNDLE_V_FLOAT:
    case CFW_BUNDLE_V_DATETIME:
        FUZZ_CHECK(v->str != NULL);
        break;
    case CFW_BUNDLE_V_BOOL:
    case CFW_BUNDLE_V_NULL:
        break;
    case CFW_BUNDLE_V_ARRAY:
        for (size_t i = 0; i < v->n; i++) {
            walk(v->items[i], depth + 1);
        }
        break;
    case CFW_BUNDLE_V_TABLE:
        for (size_t i = 0; i < v->n; i++) {
            FUZZ_CHECK(v->keys[i] != NULL);
            FUZZ_CHECK(cfw_bundle_value_get(v, v->keys[i]) != NULL);
            walk(v->items[i], depth + 1);
        }
        break;
    default:
        FUZZ_CHECK(!"unknown value type");
    }
}

static void config_reader(const char *text, size_t len, bool toml)
{
    struct cfw_err err = {0};
    struct cfw_bundle_value *v = toml ? cfw_bundle_toml_parse(text, len, FILE_NAME, &err)
                                      : cfw_bundle_jsonc_parse(text, len, FILE_NAME, &err);

    if (v == NULL) {
        FUZZ_CHECK(strncmp(err.msg, FILE_NAME ":", strlen(FILE_NAME ":")) == 0);
        return;
    }
    FUZZ_CHECK(!toml || v->type == CFW_BUNDLE_V_TABLE);
    walk(v, 0);
    cfw_bundle_value_free(v);
}

static bool word_at(const char *text, size_t len, size_t off, const char *w)
{
    size_t n = strlen(w);

    return off <= len && len - off >= n && memcmp(text + off, w, n) == 0;
}

static void python_reader(const char *text, size_t len)
{
    struct cfw_bundle_imports im = {0};
    struct cfw_err err = {0};

    FUZZ_CHECK(cfw_bundle_py_imports(text, len, &im, &err) == 0);
    for (size_t i = 0; i < im.n; i++) {
        const struct cfw_bundle_import *m = &im.v[i];

        FUZZ_CHECK(m->module != NULL);
        FUZZ_CHECK(m->level >= 0);
        FUZZ_CHECK(m->line >= 1 && m->col >= 1 && m->stmt_line >= 1);
        FUZZ_CHECK(m->stmt_line <= m->line);
        FUZZ_CHECK(m->stmt_start < len);
        FUZZ_CHECK(word_at(text, len, m->stmt_start, m->is_from ? "from" : "import"));
        FUZZ_CHECK(m->mod_start <= len && m->first_dot_end <= len);
        FUZZ_CHECK(m->stmt_start < m->mod_start || (m->module[0] == '\0' && m->level == 0));
        FUZZ_CHECK(m->guarded == (m->guard_try >= 0));
        FUZZ_CHECK(m->handler_of >= -1 && m->guard_try >= -1);
        FUZZ_CHECK(!m->guarded || (m->ctx & CFW_BUNDLE_IMPORT_TRY));
        if (m->is_from) {
            FUZZ_CHECK(m->import_kw < len && word_at(text, len, m->import_kw, "import"));
            FUZZ_CHECK(m->import_kw > m->stmt_start);
            for (size_t k = 0; k < m->n_names; k++) {
                FUZZ_CHECK(m->names[k] != NULL && m->names[k][0] != '\0');
            }
        } else {
            FUZZ_CHECK(m->level == 0 && m->module[0] != '\0');
        }
    }
    cfw_bundle_imports_clear(&im);
}

FUZZ_INIT_QUIET

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    char *text = cfw_xmalloc(in.n > 0 ? in.n : 1);

    memcpy(text, in.p, in.n);
    switch (mode & 3) {
    case 0:
        config_reader(text, in.n, true);
        break;
    case 1:
        config_reader(text, in.n, false);
        break;
    case 2:
        python_reader(text, in.n);
        break;
    default:
        config_reader(text, in.n, true);
        config_reader(text, in.n, false);
        python_reader(text, in.n);
        break;
    }
    free(text);
    return 0;
}
