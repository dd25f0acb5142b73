/*
 * Fuzz target: rule conditions and `{field}` templates. The input is NUL-separated parts: an
 * expression (used as a condition and as a template), a value, then key/value pairs that become
 * the fields. Checked: check/eval agree (a condition that fails its check never holds; exact,
 * negated, exists/missing and numeric conditions mean what rules.h says); rendering never
 * fails, stays within its cap and is well-formed UTF-8 for well-formed input; `{k}` renders to
 * exactly the value of k (one pass: a value holding `{x}` is not expanded again); `{?k}body{/k}`
 * and `{!k}body{/k}` keep the body exactly when k is set, resp. empty or missing; text without
 * braces renders to itself.
 */
#include <string.h>

#include "cfwatchd/log.h"
#include "cfwatchd/rules.h"
#include "fuzz_util.h"

/* A rendered template's cap (CFW_TEMPLATE_OUT_MAX in src/rules.c). */
#define OUT_MAX (64u * 1024u)

static bool name_ok(const char *k)
{
    size_t n = strlen(k);

    if (n == 0 || n >= 256) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* True when s starts with one of the numeric operators. */
static bool numeric(const char *s)
{
    return strncmp(s, ">=", 2) == 0 || strncmp(s, "<=", 2) == 0 || strncmp(s, "==", 2) == 0 ||
           strncmp(s, "!=", 2) == 0 || s[0] == '>' || s[0] == '<';
}

static void conditions(const char *expr, const char *value)
{
    struct cfw_err err = {0};
    int rc = cfw_condition_check(expr, &err);
    bool with = cfw_condition_eval(expr, value);
    bool without = cfw_condition_eval(expr, NULL);

    FUZZ_CHECK(rc == 0 || rc == -1);
    FUZZ_CHECK(rc == 0 || err.msg[0] != '\0');
    if (rc != 0) {
        FUZZ_CHECK(!with && !without);
        return;
    }
    FUZZ_CHECK(cfw_condition_eval(expr, "") == cfw_condition_eval(expr, ""));
    if (strcmp(expr, "{exists}") == 0) {
        FUZZ_CHECK(with == (value[0] != '\0') && !without);
    } else if (strcmp(expr, "{missing}") == 0) {
        FUZZ_CHECK(with == (value[0] == '\0') && without);
    } else if (numeric(expr)) {
        FUZZ_CHECK(!without);
    } else if (expr[0] == '!') {
        const char *arg = expr + 1;
        bool glob = strpbrk(arg, "*?[") != NULL;
        FUZZ_CHECK(with == (glob ? !cfw_glob_match(arg, value) : strcmp(arg, value) != 0));
        FUZZ_CHECK(without);
    } else {
        bool glob = strpbrk(expr, "*?[") != NULL;
        FUZZ_CHECK(with == (glob ? cfw_glob_match(expr, value) : strcmp(expr, value) == 0));
        FUZZ_CHECK(!without);
    }
}

static char *render_checked(const char *tmpl, const struct cfw_fields *f, bool clean)
{
    char *out = cfw_template_render(tmpl, f);
    size_t n;

    FUZZ_CHECK(out != NULL);
    n = strlen(out);
    FUZZ_CHECK(n <= OUT_MAX);
    FUZZ_CHECK(!clean || fuzz_utf8_clean(out, n));
    return out;
}

static void templates(const char *tmpl, const char *value, const struct cfw_fields *f, bool clean)
{
    struct cfw_err err = {0};
    int rc = cfw_template_check(tmpl, &err);
    char *out;

    FUZZ_CHECK(rc == 0 || err.msg[0] != '\0');
    out = render_checked(tmpl, f, clean);
    if (strpbrk(tmpl, "{}") == NULL && strlen(tmpl) <= OUT_MAX) {
        FUZZ_CHECK(strcmp(out, tmpl) == 0);
    }
    free(out);
    free(render_checked(tmpl, NULL, clean));

    /* every field key as a placeholder and as both kinds of section around the value */
    for (size_t i = 0; i < f->n; i++) {
        const char *k = f->v[i].key;
        const char *v = cfw_fields_get(f, k);
        char *t;

        if (!name_ok(k)) {
            continue;
        }
        t = cfw_xasprintf("{%s}", k);
        FUZZ_CHECK(cfw_template_check(t, NULL) == 0);
        out = render_checked(t, f, clean);
        FUZZ_CHECK(strlen(v) > OUT_MAX || strcmp(out, v) == 0);
        free(out);
        free(t);
        if (strpbrk(value, "{}") != NULL) {
            continue;
        }
        for (int neg = 0; neg < 2; neg++) {
            bool keep = (v[0] != '\0') != (neg == 1);
            t = cfw_xasprintf("{%c%s}%s{/%s}", neg ? '!' : '?', k, value, k);
            FUZZ_CHECK(cfw_template_check(t, NULL) == 0);
            out = render_checked(t, f, clean);
            FUZZ_CHECK(strcmp(out, keep ? value : "") == 0);
            free(out);
            free(t);
        }
    }
}

FUZZ_INIT_QUIET

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    struct cfw_fields f = {0};
    size_t elen, vlen;
    char *expr = fuzz_part(&in, &elen);
    char *value = fuzz_part(&in, &vlen);
    bool clean;

    /* mode bit 0: make everything well-formed UTF-8 (as the decoder hands fields over) */
    if ((mode & 1) != 0) {
        char *e = fuzz_utf8_fix(expr, elen);
        char *v = fuzz_utf8_fix(value, vlen);
        free(expr);
        free(value);
        expr = e;
        value = v;
    }
    while (in.n > 0 && f.n < 16) {
        size_t kl, vl;
        char *k = fuzz_part(&in, &kl);
        char *v = fuzz_part(&in, &vl);

        if ((mode & 1) != 0) {
            char *v2 = fuzz_utf8_fix(v, vl);
            free(v);
            v = v2;
        }
        cfw_fields_set(&f, k, v);
        free(k);
        free(v);
    }
    clean = fuzz_utf8_clean(expr, strlen(expr)) && fuzz_utf8_clean(value, strlen(value));
    for (size_t i = 0; clean && i < f.n; i++) {
        clean = fuzz_utf8_clean(f.v[i].value, strlen(f.v[i].value));
    }
    conditions(expr, value);
    templates(expr, value, &f, clean);
    cfw_fields_clear(&f);
    free(expr);
    free(value);
    return 0;
}
