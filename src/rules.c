/*
 * Rules and the matcher: rules read from YAML, patterns compiled once with PCRE2 (UTF with
 * invalid-UTF tolerance, JIT when the system allows it), conditions, templates, built-in packs.
 */
#include "cfwatchd/rules.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "cfwatchd/log.h"
#include "cfwatchd/prefilter.h"

#define CFW_RULES_MAX 4096u
#define CFW_RULE_ID_MAX 64u
#define CFW_RULES_PATTERN_MAX (64u * 1024u)
#define CFW_RULES_MATCH_LIMIT 1000000u
#define CFW_RULES_DEPTH_LIMIT 100000u
#define CFW_RULES_HEAP_LIMIT_KIB (64u * 1024u)
#define CFW_RULES_JIT_STACK_START (32u * 1024u)
#define CFW_RULES_JIT_STACK_MAX (1024u * 1024u)
#define CFW_RULES_GROUP_MAX (4u * 1024u)   /* bytes of a named group kept as a field */
#define CFW_TEMPLATE_OUT_MAX (64u * 1024u) /* bytes of a rendered template */
#define CFW_RULES_MAX_PACKS 32u

/*
 * Field the matcher itself provides on events of kind=outcome: how many kind=exception events
 * of the same record (same input, lines and time) it has matched before. The decoder emits a
 * record's exceptions before its outcome, so a rule can fire on an outcome only when no
 * exception event told the story already (`when: {record_exceptions: '== 0'}`).
 */
#define RECORD_EXCEPTIONS "record_exceptions"

/* Set to 1 to skip JIT compilation (tests, or ops checking the interpreter path). */
#define CFW_NO_JIT_ENV "CFW_PCRE2_NO_JIT"

/* Generated from conf/rules.d by scripts/embed-packs.cmake. */
struct cfw_builtin_pack {
    const char *name;
    const char *text;
};
extern const struct cfw_builtin_pack cfw_builtin_pack_table[];

enum cond_op {
    COP_EQ,
    COP_GLOB,
    COP_NOT_EQ,
    COP_NOT_GLOB,
    COP_LT,
    COP_LE,
    COP_GT,
    COP_GE,
    COP_NUM_EQ,
    COP_NUM_NE,
    COP_EXISTS,
    COP_MISSING,
};

struct cexpr {
    enum cond_op op;
    const char *arg; /* string or glob (owned by the rule when compiled into one) */
    double num;
};

struct cond {
    char *field;
    struct cexpr *ex; /* any may hold */
    size_t n;
    bool after; /* names a group of the pattern: evaluated once the pattern matched */
};

struct group {
    uint32_t num;
    char *name;
};

struct cfw_rule {
    char *id;
    char *pack;
    char *pattern;
    enum cfw_severity severity;
    char *title;
    char *hint;
    char *key;
    char *description;
    bool cont;
    struct cfw_rule_opts opts;
    struct cond *conds;
    size_t nconds;
    pcre2_code *code;
    bool jit;
    struct group *groups;
    size_t ngroups;
    uint32_t pairs; /* ovector pairs the pattern needs */
    uint64_t matches;
    uint64_t limit_hits;
    bool warned;
    char *where;        /* file:line:col of the pattern */
    unsigned no_literal; /* CFW_PREFILTER_ALL_* from the last prefilter build */
};

/* A copy of a string or of NULL, in a buffer that one record's copy hands to the next. */
struct kept {
    char *s; /* NULL: the copy of NULL */
    char *buf;
    size_t cap;
};

struct cfw_ruleset {
    struct cfw_rule **v;
    size_t n;
    size_t cap;
    bool jit_allowed;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    bool jstack_grown;
    pcre2_match_data *md;
    uint32_t md_pairs;
    /* the record the last event came from, and its kind=exception events so far */
    struct kept rec_input;
    struct kept rec_time;
    uint64_t rec_line;
    uint64_t rec_line_end;
    uint64_t rec_exceptions;
    bool rec_fresh; /* the pipeline started a record: the next event is of a new one */
    enum cfw_scan scan;
    struct cfw_prefilter *pf; /* built on first use after the rules changed */
    /*
     * The rules the prefilter selected for the last record it was asked about (one bit per
     * index in v), and whether matching uses it: from cfw_ruleset_record_start after a
     * selection to cfw_ruleset_record_end. Events matched outside a record see every rule.
     */
    uint64_t *sel;
    bool sel_made;
    bool sel_on;
};

/* ---- severities ---- */

static const char *const severity_names[] = {"info", "warning", "error", "critical"};

/* Returns the lower-case name of a severity. */
const char *cfw_severity_name(enum cfw_severity s)
{
    if ((unsigned)s > CFW_SEV_CRITICAL) {
        return "unknown";
    }
    return severity_names[s];
}

/* Parses critical, error, warning or info. */
int cfw_severity_parse(const char *s, enum cfw_severity *out)
{
    for (unsigned i = 0; i <= CFW_SEV_CRITICAL; i++) {
        if (strcmp(s, severity_names[i]) == 0) {
            *out = (enum cfw_severity)i;
            return 0;
        }
    }
    return -1;
}

/* ---- templates ---- */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* Length of a valid {name} placeholder at t (t[0] == '{'), or 0. */
static size_t placeholder_len(const char *t)
{
    size_t i = 1;

    while (name_char(t[i])) {
        i++;
    }
    return i > 1 && t[i] == '}' ? i + 1 : 0;
}

/*
 * Length of a section marker at t: `{?name}` (open, kept when the field is non-empty), `{!name}`
 * (open, kept when it is empty or missing) or `{/name}` (close); 0 when t is not one. The name
 * is copied to name (size namelen).
 */
static size_t section_len(const char *t, char *kind, char *name, size_t namelen)
{
    size_t n;

    if (t[0] != '{' || (t[1] != '?' && t[1] != '!' && t[1] != '/')) {
        return 0;
    }
    n = placeholder_len(t + 1);
    if (n == 0 || n - 2 >= namelen) {
        return 0;
    }
    *kind = t[1];
    memcpy(name, t + 2, n - 2);
    name[n - 2] = '\0';
    return n + 1;
}

/* Finds the `{/name}` that closes a section opened before from; returns its offset or NULL. */
static const char *section_end(const char *from, const char *name)
{
    char want[260];

    snprintf(want, sizeof(want), "{/%s}", name);
    return strstr(from, want);
}

/* Checks that every brace in a template is a placeholder, a section marker or doubled. */
int cfw_template_check(const char *tmpl, struct cfw_err *err)
{
    for (size_t i = 0; tmpl[i] != '\0'; i++) {
        if (tmpl[i] == '{') {
            size_t n;
            size_t j = i + 1;
            char kind, name[256];

            if (tmpl[i + 1] == '{') {
                i++;
                continue;
            }
            n = section_len(tmpl + i, &kind, name, sizeof(name));
            if (n > 0) {
                if (kind != '/' && section_end(tmpl + i + n, name) == NULL) {
                    cfw_err_set(err, "section {%c%s} at offset %zu has no {/%s}", kind, name, i,
                                name);
                    return -1;
                }
                i += n - 1;
                continue;
            }
            n = placeholder_len(tmpl + i);
            if (n > 0) {
                i += n - 1;
                continue;
            }
            while (name_char(tmpl[j])) {
                j++;
            }
            if (tmpl[j] == '}') {
                cfw_err_set(err, "empty field name '{}' at offset %zu (write {{ for a brace)", i);
            } else if (tmpl[j] == '\0' || tmpl[j] == '{') {
                cfw_err_set(err, "unbalanced '{' at offset %zu (write {{ for a literal brace)", i);
            } else {
                cfw_err_set(err,
                            "invalid field name at offset %zu (use letters, digits, '_', '.' "
                            "and '-'; write {{ for a literal brace)",
                            i);
            }
            return -1;
        }
        if (tmpl[i] == '}') {
            if (tmpl[i + 1] == '}') {
                i++;
                continue;
            }
            cfw_err_set(err, "unbalanced '}' at offset %zu (write }} for a literal brace)", i);
            return -1;
        }
    }
    return 0;
}

/* Cuts a rendered string to CFW_TEMPLATE_OUT_MAX bytes on a UTF-8 boundary. */
static void cap_utf8(struct cfw_buf *b, size_t max)
{
    size_t n;

    if (b->len <= max) {
        return;
    }
    n = cfw_utf8_prefix(b->data, b->len, max - 3);
    b->len = n;
    b->data[n] = '\0';
    cfw_buf_puts(b, "...");
}

/*
 * One pass over the template: a value that itself holds "{x}" is copied as it is. Text that
 * cfw_template_check would refuse is copied literally, so rendering never fails. A section
 * `{?f}...{/f}` is kept only when field f is non-empty, `{!f}...{/f}` only when it is not.
 */
char *cfw_template_render(const char *tmpl, const struct cfw_fields *fields)
{
    struct cfw_buf b;
    char name[256];

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    for (size_t i = 0; tmpl[i] != '\0'; i++) {
        char c = tmpl[i];
        char kind;
        size_t sn;

        if ((c == '{' || c == '}') && tmpl[i + 1] == c) {
            cfw_buf_putc(&b, c);
            i++;
            continue;
        }
        if (c == '{' && (sn = section_len(tmpl + i, &kind, name, sizeof(name))) > 0) {
            const char *v = fields != NULL ? cfw_fields_get(fields, name) : NULL;
            bool set = v != NULL && v[0] != '\0';
            const char *end = kind != '/' ? section_end(tmpl + i + sn, name) : NULL;

            if (kind != '/' && end != NULL && set != (kind == '?')) {
                /* the section is left out: continue after its closing marker */
                i = (size_t)(end - tmpl) + strlen(name) + 3 - 1;
            } else {
                i += sn - 1;
            }
            continue;
        }
        if (c == '{') {
            size_t n = placeholder_len(tmpl + i);

            if (n > 0 && n - 2 < sizeof(name)) {
                const char *v;

                memcpy(name, tmpl + i + 1, n - 2);
                name[n - 2] = '\0';
                v = fields != NULL ? cfw_fields_get(fields, name) : NULL;
                if (v != NULL) {
                    cfw_buf_puts(&b, v);
                }
                i += n - 1;
                continue;
            }
        }
        cfw_buf_putc(&b, c);
    }
    cap_utf8(&b, CFW_TEMPLATE_OUT_MAX);
    return cfw_buf_take(&b);
}

/* ---- conditions ---- */

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[") != NULL;
}

/* A whole number or decimal, nothing else; false for NULL, empty, inf and nan. */
static bool parse_number(const char *s, double *out)
{
    char *end;
    double d;

    if (s == NULL || s[0] == '\0' ||
        !((s[0] >= '0' && s[0] <= '9') || s[0] == '-' || s[0] == '+' || s[0] == '.')) {
        return false;
    }
    errno = 0;
    d = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(d)) {
        return false;
    }
    *out = d;
    return true;
}

/* Parses a condition; out->arg borrows from expr. */
static int cond_parse(const char *expr, struct cexpr *out, struct cfw_err *err)
{
    static const struct {
        const char *op;
        enum cond_op cop;
    } ops[] = {{">=", COP_GE},     {"<=", COP_LE}, {"==", COP_NUM_EQ},
               {"!=", COP_NUM_NE}, {">", COP_GT},  {"<", COP_LT}};
    char num[64];

    if (expr[0] == '\0') {
        cfw_err_set(err, "empty condition (use '{missing}' for an absent field)");
        return -1;
    }
    if (strcmp(expr, "{exists}") == 0 || strcmp(expr, "{missing}") == 0) {
        out->op = expr[1] == 'e' ? COP_EXISTS : COP_MISSING;
        out->arg = NULL;
        return 0;
    }
    if (expr[0] == '{') {
        cfw_err_set(err, "unknown condition '%.64s' (use '{exists}' or '{missing}')", expr);
        return -1;
    }
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        size_t n = strlen(ops[i].op);
        const char *p = expr + n;
        size_t len;

        if (strncmp(expr, ops[i].op, n) != 0) {
            continue;
        }
        while (*p == ' ') {
            p++;
        }
        len = strlen(p);
        while (len > 0 && p[len - 1] == ' ') {
            len--;
        }
        if (len == 0 || len >= sizeof(num)) {
            cfw_err_set(err, "condition '%.64s': expected a number after '%s'", expr, ops[i].op);
            return -1;
        }
        memcpy(num, p, len);
        num[len] = '\0';
        if (!parse_number(num, &out->num)) {
            cfw_err_set(err, "condition '%.64s': '%s' is not a number", expr, num);
            return -1;
        }
        out->op = ops[i].cop;
        out->arg = NULL;
        return 0;
    }
    if (expr[0] == '!') {
        if (expr[1] == '\0') {
            cfw_err_set(err, "condition '!': nothing to negate");
            return -1;
        }
        out->op = has_glob(expr + 1) ? COP_NOT_GLOB : COP_NOT_EQ;
        out->arg = expr + 1;
        return 0;
    }
    out->op = has_glob(expr) ? COP_GLOB : COP_EQ;
    out->arg = expr;
    return 0;
}

/* A missing value fails equality, globs and numbers, and satisfies a negation. */
static bool cexpr_eval(const struct cexpr *c, const char *value)
{
    double v;

    switch (c->op) {
    case COP_EXISTS:
        return value != NULL && value[0] != '\0';
    case COP_MISSING:
        return value == NULL || value[0] == '\0';
    case COP_EQ:
        return value != NULL && strcmp(value, c->arg) == 0;
    case COP_GLOB:
        return value != NULL && cfw_glob_match(c->arg, value);
    case COP_NOT_EQ:
        return value == NULL || strcmp(value, c->arg) != 0;
    case COP_NOT_GLOB:
        return value == NULL || !cfw_glob_match(c->arg, value);
    case COP_LT:
    case COP_LE:
    case COP_GT:
    case COP_GE:
    case COP_NUM_EQ:
    case COP_NUM_NE:
        break;
    }
    if (!parse_number(value, &v)) {
        return false;
    }
    switch (c->op) {
    case COP_LT:
        return v < c->num;
    case COP_LE:
        return v <= c->num;
    case COP_GT:
        return v > c->num;
    case COP_GE:
        return v >= c->num;
    case COP_NUM_EQ:
        return v == c->num;
    case COP_NUM_NE:
        return v != c->num;
    default:
        break;
    }
    return false;
}

/* Evaluates one condition against a value (NULL when the field is missing). */
bool cfw_condition_eval(const char *expr, const char *value)
{
    struct cexpr c;

    if (cond_parse(expr, &c, NULL) != 0) {
        return false;
    }
    return cexpr_eval(&c, value);
}

/* Checks the syntax of one condition. */
int cfw_condition_check(const char *expr, struct cfw_err *err)
{
    struct cexpr c;

    return cond_parse(expr, &c, err);
}

/* ---- rules ---- */

static void rule_free(struct cfw_rule *r)
{
    if (r == NULL) {
        return;
    }
    free(r->id);
    free(r->pack);
    free(r->pattern);
    free(r->title);
    free(r->hint);
    free(r->key);
    free(r->description);
    free(r->where);
    for (size_t i = 0; i < r->nconds; i++) {
        for (size_t j = 0; j < r->conds[i].n; j++) {
            free((char *)r->conds[i].ex[j].arg);
        }
        free(r->conds[i].ex);
        free(r->conds[i].field);
    }
    free(r->conds);
    for (size_t i = 0; i < r->ngroups; i++) {
        free(r->groups[i].name);
    }
    free(r->groups);
    pcre2_code_free(r->code);
    free(r);
}

static bool valid_id(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CFW_RULE_ID_MAX ||
        !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9'))) {
        return false;
    }
    for (size_t i = 1; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

static bool valid_field_name(const char *s)
{
    if (s[0] == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!name_char(*s)) {
            return false;
        }
    }
    return true;
}

/* Compiles the pattern, reads its named groups and JIT-compiles it when allowed. */
static int rule_compile(const struct cfw_ruleset *rs, struct cfw_rule *r, const struct cfw_node *at,
                        const char *path, struct cfw_diag *diag)
{
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    PCRE2_SIZE erroff = 0;
    int errcode = 0;
    uint32_t count = 0;
    uint32_t entsize = 0;
    uint32_t captures = 0;
    PCRE2_SPTR table = NULL;

    if (cc == NULL) {
        cfw_diag_add(diag, at, path, "rule '%s': cannot allocate a PCRE2 compile context", r->id);
        return -1;
    }
    pcre2_set_max_pattern_length(cc, CFW_RULES_PATTERN_MAX);
    r->code = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
                            PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_NEVER_BACKSLASH_C, &errcode,
                            &erroff, cc);
    pcre2_compile_context_free(cc);
    if (r->code == NULL) {
        PCRE2_UCHAR msg[256];

        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0) {
            snprintf((char *)msg, sizeof(msg), "PCRE2 error %d", errcode);
        }
        cfw_diag_add(diag, at, path, "rule '%s': %s at offset %zu", r->id, (const char *)msg,
                     (size_t)erroff);
        return -1;
    }
    /* JIT memory may be refused (MemoryDenyWriteExecute=yes) or JIT unsupported: interpret */
    r->jit = rs->jit_allowed && pcre2_jit_compile(r->code, PCRE2_JIT_COMPLETE) == 0;
    pcre2_pattern_info(r->code, PCRE2_INFO_CAPTURECOUNT, &captures);
    r->pairs = captures + 1;
    pcre2_pattern_info(r->code, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(r->code, PCRE2_INFO_NAMEENTRYSIZE, &entsize);
    pcre2_pattern_info(r->code, PCRE2_INFO_NAMETABLE, &table);
    if (count > 0 && table != NULL) {
        r->groups = cfw_xcalloc(count, sizeof(*r->groups));
        for (uint32_t i = 0; i < count; i++) {
            PCRE2_SPTR e = table + (size_t)i * entsize;

            r->groups[i].num = ((uint32_t)e[0] << 8) | e[1];
            r->groups[i].name = cfw_xstrdup((const char *)e + 2);
        }
        r->ngroups = count;
    }
    return 0;
}

static bool rule_has_group(const struct cfw_rule *r, const char *name)
{
    for (size_t i = 0; i < r->ngroups; i++) {
        if (strcmp(r->groups[i].name, name) == 0) {
            return true;
        }
    }
    return false;
}

static void add_cond_expr(struct cond *c, const struct cexpr *e)
{
    c->ex = cfw_xrealloc(c->ex, (c->n + 1) * sizeof(*c->ex));
    c->ex[c->n] = *e;
    c->ex[c->n].arg = e->arg != NULL ? cfw_xstrdup(e->arg) : NULL;
    c->n++;
}

/* Reads `when`: field -> condition or list of conditions. */
static void parse_when(struct cfw_rule *r, const struct cfw_node *when, const char *path,
                       struct cfw_diag *diag)
{
    char *wpath = cfw_xasprintf("%s.when", path);

    if (when->type != CFW_NODE_MAP) {
        cfw_diag_add(diag, when, wpath, "rule '%s': expected a map of field: condition", r->id);
        free(wpath);
        return;
    }
    r->conds = cfw_xcalloc(when->n == 0 ? 1 : when->n, sizeof(*r->conds));
    for (size_t i = 0; i < when->n; i++) {
        const struct cfw_node *v = when->items[i];
        char *fpath = cfw_xasprintf("%s.%s", wpath, when->keys[i]);
        struct cond *c = &r->conds[r->nconds++];

        c->field = cfw_xstrdup(when->keys[i]);
        if (!valid_field_name(when->keys[i])) {
            cfw_diag_add(diag, when->keynodes[i], fpath,
                         "rule '%s': invalid field name (use letters, digits, '_', '.' and '-')",
                         r->id);
        }
        if (v->type == CFW_NODE_MAP || (v->type == CFW_NODE_SEQ && v->n == 0)) {
            cfw_diag_add(diag, v, fpath, "rule '%s': expected a condition or a list of them",
                         r->id);
        }
        for (size_t j = 0; v->type != CFW_NODE_MAP; j++) {
            const struct cfw_node *e;
            struct cfw_err err = {0};
            struct cexpr ce;

            /* the bound first: items[n] is past the end of the list */
            if (v->type == CFW_NODE_SEQ && j >= v->n) {
                break;
            }
            e = v->type == CFW_NODE_SEQ ? v->items[j] : v;
            if (e->type != CFW_NODE_SCALAR) {
                cfw_diag_add(diag, e, fpath, "rule '%s': expected a condition, got a %s", r->id,
                             e->type == CFW_NODE_MAP ? "map" : "list");
            } else if (cond_parse(e->value, &ce, &err) != 0) {
                cfw_diag_add(diag, e, fpath, "rule '%s': %s", r->id, err.msg);
            } else {
                add_cond_expr(c, &ce);
            }
            if (v->type == CFW_NODE_SCALAR) {
                break;
            }
        }
        free(fpath);
    }
    free(wpath);
}

static void check_template(const struct cfw_rule *r, const struct cfw_node *map, const char *key,
                           const char *path, const char *tmpl, struct cfw_diag *diag)
{
    struct cfw_err err = {0};

    if (tmpl != NULL && cfw_template_check(tmpl, &err) != 0) {
        char *kpath = cfw_xasprintf("%s.%s", path, key);

        cfw_diag_add(diag, cfw_node_get(map, key), kpath, "rule '%s': %s", r->id, err.msg);
        free(kpath);
    }
}

static const char *const rule_keys[] = {
    "id",  "pattern",   "severity",        "title",         "hint",        "when", "continue",
    "key", "threshold", "repeat_interval", "resolve_after", "description", "resolve",
    "resolve_fallback", "success", NULL,
};

static const char *const threshold_keys[] = {"count", "window", NULL};

static void parse_threshold(struct cfw_rule *r, const struct cfw_node *item, const char *path,
                            struct cfw_diag *diag)
{
    const struct cfw_node *t = cfw_node_get(item, "threshold");
    char *tpath;

    if (t == NULL) {
        return;
    }
    tpath = cfw_xasprintf("%s.threshold", path);
    if (t->type != CFW_NODE_MAP) {
        cfw_diag_add(diag, t, tpath, "expected a map with count and window");
        free(tpath);
        return;
    }
    cfw_node_check_keys(t, tpath, threshold_keys, diag);
    if (cfw_node_u64(t, "count", tpath, 1, 1000000, &r->opts.threshold_count, diag) == 0) {
        cfw_diag_add(diag, t, tpath, "missing count (matches needed before an incident opens)");
    }
    if (cfw_node_duration(t, "window", tpath, &r->opts.threshold_window_ms, diag) == 0) {
        cfw_diag_add(diag, t, tpath,
                     "missing window (the time the count must happen in, e.g. 10m)");
    } else if (r->opts.threshold_window_ms <= 0) {
        cfw_diag_add(diag, cfw_node_get(t, "window"), tpath, "window must be longer than 0");
    }
    free(tpath);
}

/* The rule's id: checked, "?" when missing or not a string (an error is reported then). */
static void rule_parse_id(struct cfw_rule *r, const struct cfw_node *item, const char *path,
                          struct cfw_diag *diag)
{
    const char *s = NULL;
    int rc = cfw_node_str(item, "id", path, &s, diag);

    if (rc == 1) {
        r->id = cfw_xstrdup(s);
        if (!valid_id(s)) {
            char *ipath = cfw_xasprintf("%s.id", path);

            cfw_diag_add(diag, cfw_node_get(item, "id"), ipath,
                         "invalid rule id '%.64s' (use a-z, 0-9, '.', '_' and '-', starting "
                         "with a letter or digit, at most %u characters)",
                         s, CFW_RULE_ID_MAX);
            free(ipath);
        }
    } else if (rc == 0) {
        cfw_diag_add(diag, item, path, "missing id"); /* absent or null */
    }
    if (r->id == NULL) {
        r->id = cfw_xstrdup("?");
    }
}

/* An optional string key, copied into *out. */
static void rule_parse_str(const struct cfw_node *item, const char *key, const char *path,
                           char **out, struct cfw_diag *diag)
{
    const char *s = NULL;

    if (cfw_node_str(item, key, path, &s, diag) == 1) {
        *out = cfw_xstrdup(s);
    }
}

/* severity, title, hint, key and description, and the templates among them. */
static void rule_parse_texts(struct cfw_rule *r, const struct cfw_node *item, const char *path,
                             struct cfw_diag *diag)
{
    const char *s = NULL;

    if (cfw_node_str(item, "severity", path, &s, diag) == 1 &&
        cfw_severity_parse(s, &r->severity) != 0) {
        char *spath = cfw_xasprintf("%s.severity", path);

        cfw_diag_add(diag, cfw_node_get(item, "severity"), spath,
                     "invalid severity '%.64s' (use critical, error, warning or info)", s);
        free(spath);
    }
    rule_parse_str(item, "title", path, &r->title, diag);
    rule_parse_str(item, "hint", path, &r->hint, diag);
    rule_parse_str(item, "key", path, &r->key, diag);
    rule_parse_str(item, "description", path, &r->description, diag);
    check_template(r, item, "title", path, r->title, diag);
    check_template(r, item, "hint", path, r->hint, diag);
    check_template(r, item, "key", path, r->key, diag);
    if (r->title == NULL) {
        r->title = cfw_xstrdup(r->id);
    }
    if (r->hint == NULL) {
        r->hint = cfw_xstrdup("");
    }
}

/* continue, the incident timers, resolve and success. */
static void rule_parse_lifecycle(struct cfw_rule *r, const struct cfw_node *item, const char *path,
                                 struct cfw_diag *diag)
{
    const char *s = NULL;

    cfw_node_bool(item, "continue", path, &r->cont, diag);
    cfw_node_duration(item, "repeat_interval", path, &r->opts.repeat_interval_ms, diag);
    cfw_node_duration(item, "resolve_after", path, &r->opts.resolve_after_ms, diag);
    cfw_node_duration(item, "resolve_fallback", path, &r->opts.resolve_fallback_ms, diag);
    if (cfw_node_str(item, "resolve", path, &s, diag) == 1) {
        if (strcmp(s, "quiet") == 0) {
            r->opts.resolve = CFW_RESOLVE_QUIET;
        } else if (strcmp(s, "success") == 0) {
            r->opts.resolve = CFW_RESOLVE_SUCCESS;
        } else {
            char *rpath = cfw_xasprintf("%s.resolve", path);
            cfw_diag_add(diag, cfw_node_get(item, "resolve"), rpath,
                         "invalid resolve '%.64s' (use quiet: after resolve_after without a "
                         "match, or success: on a later successful deploy of the script)",
                         s);
            free(rpath);
        }
    }
    cfw_node_bool(item, "success", path, &r->opts.success, diag);
    if (r->opts.success) {
        /* evidence, not an incident: the rules after it still run on the event */
        r->cont = true;
    }
}

/* The pattern, compiled, and where it was written (for --check-config's notes). */
static void rule_parse_pattern(const struct cfw_ruleset *rs, struct cfw_rule *r,
                               const struct cfw_node *item, const char *path, struct cfw_diag *diag)
{
    const char *s = NULL;
    int rc = cfw_node_str(item, "pattern", path, &s, diag);

    if (rc == 1) {
        char *ppath = cfw_xasprintf("%s.pattern", path);
        const struct cfw_node *pn = cfw_node_get(item, "pattern");

        r->pattern = cfw_xstrdup(s);
        r->where = cfw_xasprintf("%s:%d:%d", pn->file != NULL ? pn->file : "?", pn->line,
                                 pn->col);
        if (s[0] == '\0') {
            cfw_diag_add(diag, cfw_node_get(item, "pattern"), ppath, "rule '%s': empty pattern",
                         r->id);
        } else {
            rule_compile(rs, r, cfw_node_get(item, "pattern"), ppath, diag);
        }
        free(ppath);
    } else if (rc == 0) {
        cfw_diag_add(diag, item, path, "rule '%s': missing pattern", r->id); /* absent or null */
    }
}

/* Reads and compiles one rule; NULL (problems reported) when anything is wrong with it. */
static struct cfw_rule *rule_parse(const struct cfw_ruleset *rs, const struct cfw_node *item,
                                   const char *path, const char *pack, struct cfw_diag *diag)
{
    struct cfw_rule *r;
    size_t before = diag->n;
    const struct cfw_node *when;

    if (item->type != CFW_NODE_MAP) {
        cfw_diag_add(diag, item, path, "expected a rule (a map with id and pattern)");
        return NULL;
    }
    r = cfw_xcalloc(1, sizeof(*r));
    r->severity = CFW_SEV_ERROR;
    r->pack = cfw_xstrdup(pack);
    cfw_node_check_keys(item, path, rule_keys, diag);
    rule_parse_id(r, item, path, diag);
    rule_parse_texts(r, item, path, diag);
    rule_parse_lifecycle(r, item, path, diag);
    parse_threshold(r, item, path, diag);
    rule_parse_pattern(rs, r, item, path, diag);
    when = cfw_node_get(item, "when");
    if (when != NULL) {
        parse_when(r, when, path, diag);
        for (size_t i = 0; i < r->nconds; i++) {
            r->conds[i].after = rule_has_group(r, r->conds[i].field);
        }
    }
    if (diag->n > before) {
        rule_free(r);
        return NULL;
    }
    return r;
}

/* ---- ruleset ---- */

/* Creates an empty ruleset; CFW_PCRE2_NO_JIT=1 in the environment keeps it off JIT. */
struct cfw_ruleset *cfw_ruleset_new(void)
{
    struct cfw_ruleset *rs = cfw_xcalloc(1, sizeof(*rs));
    const char *nojit = getenv(CFW_NO_JIT_ENV);
    uint32_t jit = 0;

    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    rs->jit_allowed = jit == 1 && !(nojit != NULL && strcmp(nojit, "1") == 0);
    rs->mctx = pcre2_match_context_create(NULL);
    if (rs->mctx == NULL) {
        fprintf(stderr, "cfwatchd: out of memory (PCRE2 match context)\n");
        abort();
    }
    pcre2_set_match_limit(rs->mctx, CFW_RULES_MATCH_LIMIT);
    pcre2_set_depth_limit(rs->mctx, CFW_RULES_DEPTH_LIMIT);
    pcre2_set_heap_limit(rs->mctx, CFW_RULES_HEAP_LIMIT_KIB);
    if (rs->jit_allowed) {
        rs->jstack =
            pcre2_jit_stack_create(CFW_RULES_JIT_STACK_START, CFW_RULES_JIT_STACK_START, NULL);
        if (rs->jstack != NULL) {
            pcre2_jit_stack_assign(rs->mctx, NULL, rs->jstack);
        }
    }
    return rs;
}

/* Frees a ruleset and its rules; NULL is fine. */
void cfw_ruleset_free(struct cfw_ruleset *rs)
{
    if (rs == NULL) {
        return;
    }
    for (size_t i = 0; i < rs->n; i++) {
        rule_free(rs->v[i]);
    }
    free(rs->v);
    pcre2_match_data_free(rs->md);
    pcre2_match_context_free(rs->mctx);
    pcre2_jit_stack_free(rs->jstack);
    free(rs->rec_input.buf);
    free(rs->rec_time.buf);
    cfw_prefilter_free(rs->pf);
    free(rs->sel);
    free(rs);
}

static struct cfw_rule *ruleset_find(const struct cfw_ruleset *rs, const char *id, size_t *at)
{
    for (size_t i = 0; i < rs->n; i++) {
        if (strcmp(rs->v[i]->id, id) == 0) {
            if (at != NULL) {
                *at = i;
            }
            return rs->v[i];
        }
    }
    return NULL;
}

/* Adds the valid rules of a YAML list, replacing rules with the same id in place. */
int cfw_ruleset_add_node(struct cfw_ruleset *rs, const struct cfw_node *seq, const char *path,
                         const char *pack, struct cfw_diag *diag)
{
    struct cfw_diag local = {0};
    struct cfw_rule **got;
    const struct cfw_node **idnodes;
    size_t before;
    size_t ngot = 0;
    int problems;

    if (diag == NULL) {
        diag = &local;
    }
    before = diag->n;
    if (seq == NULL || seq->type != CFW_NODE_SEQ) {
        cfw_diag_add(diag, seq, path, "expected a list of rules");
        problems = (int)(diag->n - before);
        cfw_diag_free(&local);
        return problems;
    }
    got = cfw_xcalloc(seq->n + 1, sizeof(*got));
    idnodes = cfw_xcalloc(seq->n + 1, sizeof(*idnodes));
    for (size_t i = 0; i < seq->n; i++) {
        char *ipath = cfw_xasprintf("%s[%zu]", path, i);
        struct cfw_rule *r = rule_parse(rs, seq->items[i], ipath, pack, diag);
        const struct cfw_node *idn = cfw_node_get(seq->items[i], "id");
        bool dup = false;

        /* ids are unique within one file, even when a rule has other problems */
        for (size_t j = 0; idn != NULL && idn->type == CFW_NODE_SCALAR && j < i; j++) {
            if (idnodes[j] != NULL && strcmp(idnodes[j]->value, idn->value) == 0) {
                char *idpath = cfw_xasprintf("%s.id", ipath);

                cfw_diag_add(diag, idn, idpath, "duplicate rule id '%.64s' (first at line %d)",
                             idn->value, idnodes[j]->line);
                free(idpath);
                dup = true;
                break;
            }
        }
        if (idn != NULL && idn->type == CFW_NODE_SCALAR && !dup) {
            idnodes[i] = idn;
        }
        if (r != NULL && !dup) {
            got[ngot++] = r;
        } else {
            rule_free(r);
        }
        free(ipath);
    }
    for (size_t i = 0; i < ngot; i++) {
        size_t at = 0;
        struct cfw_rule *old = ruleset_find(rs, got[i]->id, &at);

        if (old != NULL) {
            rule_free(old);
            rs->v[at] = got[i];
            continue;
        }
        if (rs->n >= CFW_RULES_MAX) {
            cfw_diag_add(diag, seq, path, "too many rules (at most %u)", CFW_RULES_MAX);
            for (size_t j = i; j < ngot; j++) {
                rule_free(got[j]);
            }
            break;
        }
        if (rs->n == rs->cap) {
            rs->cap = rs->cap == 0 ? 32 : rs->cap * 2;
            rs->v = cfw_xrealloc(rs->v, rs->cap * sizeof(*rs->v));
        }
        rs->v[rs->n++] = got[i];
    }
    free(got);
    free(idnodes);
    cfw_prefilter_free(rs->pf);
    rs->pf = NULL;
    cfw_ruleset_record_end(rs); /* a selection names the rules as they were */
    problems = (int)(diag->n - before);
    cfw_diag_free(&local);
    return problems;
}

static const char *const file_keys[] = {"pack", "rules", NULL};

/* Adds the rules of a loaded rules document (a map with `rules:` and an optional `pack:`). */
static int add_doc(struct cfw_ruleset *rs, const struct cfw_doc *doc, const char *pack,
                   bool pack_fixed, struct cfw_diag *diag)
{
    const struct cfw_node *root = doc->root;
    const struct cfw_node *rules;
    const char *name = NULL;
    size_t before = diag->n;

    if (root == NULL || root->type != CFW_NODE_MAP) {
        if (root == NULL) {
            cfw_diag_addf(diag, "%s: empty rules file (expected a map with a 'rules' list)",
                          doc->file);
        } else {
            cfw_diag_add(diag, root, "", "expected a map with a 'rules' list");
        }
        return (int)(diag->n - before);
    }
    cfw_node_check_keys(root, "", file_keys, diag);
    if (cfw_node_str(root, "pack", "", &name, diag) == 1 && !pack_fixed) {
        if (!valid_id(name)) {
            cfw_diag_add(diag, cfw_node_get(root, "pack"), "pack",
                         "invalid pack name '%.64s' (use a-z, 0-9, '.', '_' and '-')", name);
        } else {
            pack = name;
        }
    }
    rules = cfw_node_get(root, "rules");
    if (rules == NULL) {
        cfw_diag_add(diag, root, "", "missing 'rules' list");
    } else if (rules->type == CFW_NODE_SEQ) {
        cfw_ruleset_add_node(rs, rules, "rules", pack, diag);
    } else if (!(rules->type == CFW_NODE_SCALAR && !rules->quoted && rules->value[0] == '\0')) {
        cfw_diag_add(diag, rules, "rules", "expected a list of rules");
    }
    return (int)(diag->n - before);
}

/* Loads a rules file; its pack name is `pack:` or the file name without .yaml. */
int cfw_ruleset_add_file(struct cfw_ruleset *rs, const char *path, struct cfw_diag *diag)
{
    struct cfw_diag local = {0};
    struct cfw_doc *doc;
    const char *base = strrchr(path, '/');
    char *pack;
    size_t len;
    size_t before;
    int problems;

    if (diag == NULL) {
        diag = &local;
    }
    before = diag->n;
    base = base != NULL ? base + 1 : path;
    len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".yaml") == 0) {
        len -= 5;
    } else if (len > 4 && strcmp(base + len - 4, ".yml") == 0) {
        len -= 4;
    }
    pack = cfw_xstrndup(base, len);
    doc = cfw_yaml_load_file(path, diag);
    if (doc != NULL) {
        add_doc(rs, doc, pack, false, diag);
    }
    cfw_doc_free(doc);
    free(pack);
    problems = (int)(diag->n - before);
    cfw_diag_free(&local);
    return problems;
}

/* Returns the YAML text of a built-in pack, or NULL. */
const char *cfw_builtin_pack_text(const char *pack)
{
    for (size_t i = 0; cfw_builtin_pack_table[i].name != NULL; i++) {
        if (strcmp(cfw_builtin_pack_table[i].name, pack) == 0) {
            return cfw_builtin_pack_table[i].text;
        }
    }
    return NULL;
}

/* Returns the names of the built-in packs, NULL-terminated. */
const char *const *cfw_builtin_packs(void)
{
    static const char *names[CFW_RULES_MAX_PACKS + 1];
    size_t n = 0;

    for (size_t i = 0; cfw_builtin_pack_table[i].name != NULL && n < CFW_RULES_MAX_PACKS; i++) {
        names[n++] = cfw_builtin_pack_table[i].name;
    }
    names[n] = NULL;
    return names;
}

/* Adds a built-in pack by name. */
int cfw_ruleset_add_builtin(struct cfw_ruleset *rs, const char *pack, struct cfw_diag *diag)
{
    struct cfw_diag local = {0};
    const char *text = cfw_builtin_pack_text(pack);
    struct cfw_doc *doc;
    char *name;
    size_t before;
    int problems;

    if (diag == NULL) {
        diag = &local;
    }
    before = diag->n;
    if (text == NULL) {
        const char *const *packs = cfw_builtin_packs();
        struct cfw_buf b;

        cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
        for (size_t i = 0; packs[i] != NULL; i++) {
            cfw_buf_printf(&b, "%s%s", i > 0 ? ", " : "", packs[i]);
        }
        cfw_diag_addf(diag, "unknown built-in rule pack '%.64s' (built-in packs: %s)", pack,
                      b.data != NULL ? b.data : "none");
        cfw_buf_free(&b);
    } else {
        name = cfw_xasprintf("<builtin>/%s.yaml", pack);
        doc = cfw_yaml_load_string(name, text, strlen(text), diag);
        if (doc != NULL) {
            add_doc(rs, doc, pack, true, diag);
        }
        cfw_doc_free(doc);
        free(name);
    }
    problems = (int)(diag->n - before);
    cfw_diag_free(&local);
    return problems;
}

/* Returns the number of rules. */
size_t cfw_ruleset_count(const struct cfw_ruleset *rs)
{
    return rs->n;
}

/* Returns the i-th rule in matching order, or NULL. */
const struct cfw_rule *cfw_ruleset_rule(const struct cfw_ruleset *rs, size_t i)
{
    return i < rs->n ? rs->v[i] : NULL;
}

/* Finds a rule by id. */
const struct cfw_rule *cfw_ruleset_find(const struct cfw_ruleset *rs, const char *id)
{
    return ruleset_find(rs, id, NULL);
}

/* Tells whether every rule runs JIT-compiled. */
bool cfw_ruleset_jit(const struct cfw_ruleset *rs)
{
    if (!rs->jit_allowed) {
        return false;
    }
    for (size_t i = 0; i < rs->n; i++) {
        if (!rs->v[i]->jit) {
            return false;
        }
    }
    return true;
}

/* Returns the rule's id. */
const char *cfw_rule_id(const struct cfw_rule *r)
{
    return r->id;
}

/* Returns the pack the rule came from. */
const char *cfw_rule_pack(const struct cfw_rule *r)
{
    return r->pack;
}

/* Returns the rule's severity. */
enum cfw_severity cfw_rule_severity(const struct cfw_rule *r)
{
    return r->severity;
}

/* Returns the title template. */
const char *cfw_rule_title(const struct cfw_rule *r)
{
    return r->title;
}

/* Returns the hint template. */
const char *cfw_rule_hint(const struct cfw_rule *r)
{
    return r->hint;
}

/* Returns the incident key template, or NULL. */
const char *cfw_rule_key(const struct cfw_rule *r)
{
    return r->key;
}

/* Returns the per-rule incident options. */
const struct cfw_rule_opts *cfw_rule_opts(const struct cfw_rule *r)
{
    return &r->opts;
}

/* Returns how often the rule matched. */
uint64_t cfw_rule_matches(const struct cfw_rule *r)
{
    return r->matches;
}

/* Returns how often matching gave up at a PCRE2 limit. */
uint64_t cfw_rule_limit_hits(const struct cfw_rule *r)
{
    return r->limit_hits;
}

/* ---- matching ---- */

static bool kept_eq(const struct kept *k, const char *s)
{
    if (k->s == NULL || s == NULL) {
        return k->s == s;
    }
    return strcmp(k->s, s) == 0;
}

static void keep(struct kept *k, const char *s)
{
    size_t n;

    k->s = NULL;
    if (s == NULL) {
        return;
    }
    n = strlen(s) + 1;
    if (n > k->cap) {
        free(k->buf);
        k->cap = n < 64 ? 64 : n;
        k->buf = cfw_xmalloc(k->cap);
    }
    memcpy(k->buf, s, n);
    k->s = k->buf;
}

/* Notices a new record and returns how many kind=exception events of it came before. */
static uint64_t record_track(struct cfw_ruleset *rs, const struct cfw_event *ev)
{
    const char *time = cfw_fields_get(&ev->fields, "time");

    if (rs->rec_fresh || rs->rec_line != ev->line || rs->rec_line_end != ev->line_end ||
        !kept_eq(&rs->rec_input, ev->input) || !kept_eq(&rs->rec_time, time)) {
        keep(&rs->rec_input, ev->input);
        keep(&rs->rec_time, time);
        rs->rec_line = ev->line;
        rs->rec_line_end = ev->line_end;
        rs->rec_exceptions = 0;
        rs->rec_fresh = false;
    }
    return rs->rec_exceptions;
}

static const char *event_field(const struct cfw_event *ev, const char *name, const char *recexc)
{
    if (recexc != NULL && strcmp(name, RECORD_EXCEPTIONS) == 0) {
        return recexc;
    }
    return cfw_fields_get(&ev->fields, name);
}

/* Evaluates the conditions of one phase: before the pattern (event fields) or after it. */
static bool conds_hold(const struct cfw_rule *r, bool after, const struct cfw_event *ev,
                       const char *recexc, const struct cfw_fields *merged)
{
    for (size_t i = 0; i < r->nconds; i++) {
        const struct cond *c = &r->conds[i];
        const char *v;
        bool ok = false;

        if (c->after != after) {
            continue;
        }
        v = after ? cfw_fields_get(merged, c->field) : event_field(ev, c->field, recexc);
        for (size_t j = 0; j < c->n && !ok; j++) {
            ok = cexpr_eval(&c->ex[j], v);
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

static bool is_limit_error(int rc)
{
    return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
           rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT;
}

/* Runs one pattern: 1 match, 0 no match (or a limit hit, counted), -1 a matching error. */
static int rule_run(struct cfw_ruleset *rs, struct cfw_rule *r, const struct cfw_event *ev)
{
    PCRE2_SPTR subject = (PCRE2_SPTR)(ev->text != NULL ? ev->text : "");
    size_t len = ev->text != NULL ? ev->len : 0;
    int rc;

    if (rs->md == NULL || rs->md_pairs < r->pairs) {
        pcre2_match_data_free(rs->md);
        rs->md = pcre2_match_data_create(r->pairs, NULL);
        if (rs->md == NULL) {
            fprintf(stderr, "cfwatchd: out of memory (PCRE2 match data)\n");
            abort();
        }
        rs->md_pairs = r->pairs;
    }
    rc = pcre2_match(r->code, subject, len, 0, 0, rs->md, rs->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !rs->jstack_grown) {
        pcre2_jit_stack *big =
            pcre2_jit_stack_create(CFW_RULES_JIT_STACK_START, CFW_RULES_JIT_STACK_MAX, NULL);

        rs->jstack_grown = true;
        if (big != NULL) {
            pcre2_jit_stack_free(rs->jstack);
            rs->jstack = big;
            pcre2_jit_stack_assign(rs->mctx, NULL, big);
            rc = pcre2_match(r->code, subject, len, 0, 0, rs->md, rs->mctx);
        }
    }
    if (rc >= 0) {
        return 1;
    }
    if (rc == PCRE2_ERROR_NOMATCH || rc == PCRE2_ERROR_PARTIAL) {
        return 0;
    }
    if (is_limit_error(rc)) {
        r->limit_hits++;
        if (!r->warned) {
            r->warned = true;
            cfw_log_warn("rule=%s gave up matching a %zu-byte event at a PCRE2 limit (counted; "
                         "further hits are not logged)",
                         r->id, len);
        }
        return 0;
    }
    if (!r->warned) {
        PCRE2_UCHAR msg[256];

        r->warned = true;
        if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0) {
            snprintf((char *)msg, sizeof(msg), "PCRE2 error %d", rc);
        }
        cfw_log_warn("rule=%s matching failed: %s", r->id, (const char *)msg);
    }
    return -1;
}

/*
 * Sets a named group as a field with control characters as spaces, as the decoder does for every
 * field taken from log text: a group can span lines or hold escape sequences, and fields end up
 * in titles, keys and one-line outputs (reports, stdout, logs).
 */
static void set_group(struct cfw_fields *out, const char *name, const char *s, size_t n)
{
    size_t k = 0;
    char *v;

    while (k < n && (unsigned char)s[k] >= 0x20 && s[k] != 0x7f) {
        k++;
    }
    cfw_fields_setn(out, name, s, n);
    if (k == n) {
        return; /* nothing to clean (the usual group): no look-up of the copy */
    }
    v = (char *)cfw_fields_get(out, name); /* the set's own copy: cleaned in place */
    for (size_t i = 0; v[i] != '\0'; i++) {
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
            v[i] = ' ';
        }
    }
}

/* Event fields, then the named groups that took part in the match (they win). */
static void merge_fields(const struct cfw_ruleset *rs, const struct cfw_rule *r,
                         const struct cfw_event *ev, struct cfw_fields *out)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(rs->md);
    uint32_t pairs = pcre2_get_ovector_count(rs->md);
    const char *subject = ev->text != NULL ? ev->text : "";

    cfw_fields_copy(out, &ev->fields);
    for (size_t i = 0; i < r->ngroups; i++) {
        uint32_t g = r->groups[i].num;
        size_t start;
        size_t n;

        if (g >= pairs || ov[2 * g] == PCRE2_UNSET || ov[2 * g + 1] < ov[2 * g]) {
            continue;
        }
        start = ov[2 * g];
        n = cfw_utf8_prefix(subject + start, ov[2 * g + 1] - start, CFW_RULES_GROUP_MAX);
        set_group(out, r->groups[i].name, subject + start, n);
    }
}

/* Whether kind is name; kinds differ in their first letter, which answers most events. */
static bool kind_is(const char *kind, const char *name)
{
    return kind != NULL && kind[0] == name[0] && strcmp(kind, name) == 0;
}

/*
 * The index of the first rule from i on that the event is to be tried with: every rule, or
 * with a selection (rs->sel_on), the next selected one (rs->n when there is none).
 */
static size_t next_rule(const struct cfw_ruleset *rs, size_t i)
{
    if (!rs->sel_on) {
        return i;
    }
    while (i < rs->n) {
        uint64_t w = rs->sel[i >> 6] >> (i & 63);

        if (w != 0) {
            return i + (size_t)__builtin_ctzll(w);
        }
        i = (i | 63) + 1;
    }
    return rs->n;
}

/* Runs the rules over an event in order; see rules.h. */
int cfw_ruleset_match(struct cfw_ruleset *rs, const struct cfw_event *ev, cfw_match_cb cb,
                      void *arg)
{
    const char *kind = cfw_fields_get(&ev->fields, "kind");
    uint64_t before = record_track(rs, ev);
    char recbuf[24];
    const char *recexc = NULL;
    int matches = 0;
    bool failed = false;

    if (kind_is(kind, "outcome")) {
        snprintf(recbuf, sizeof(recbuf), "%llu", (unsigned long long)before);
        recexc = recbuf;
    }
    for (size_t i = next_rule(rs, 0); i < rs->n; i = next_rule(rs, i + 1)) {
        struct cfw_rule *r = rs->v[i];
        struct cfw_match m = {.rule = r};
        int rc;

        if (r->code == NULL || !conds_hold(r, false, ev, recexc, NULL)) {
            continue;
        }
        rc = rule_run(rs, r, ev);
        if (rc < 0) {
            failed = true;
        }
        if (rc <= 0) {
            continue;
        }
        merge_fields(rs, r, ev, &m.fields);
        if (!conds_hold(r, true, ev, recexc, &m.fields)) {
            cfw_fields_clear(&m.fields);
            continue;
        }
        r->matches++;
        matches++;
        if (cb != NULL) {
            cb(&m, ev, arg);
        }
        cfw_fields_clear(&m.fields);
        if (!r->cont) {
            break;
        }
    }
    if (kind_is(kind, "exception")) {
        rs->rec_exceptions++;
    }
    return failed ? -1 : matches;
}

/* ---- prefilter ---- */

int cfw_scan_parse(const char *s, enum cfw_scan *out)
{
    if (strcmp(s, "fast") == 0) {
        *out = CFW_SCAN_FAST;
    } else if (strcmp(s, "full") == 0) {
        *out = CFW_SCAN_FULL;
    } else {
        return -1;
    }
    return 0;
}

const char *cfw_scan_name(enum cfw_scan s)
{
    return s == CFW_SCAN_FULL ? "full" : "fast";
}

void cfw_ruleset_set_scan(struct cfw_ruleset *rs, enum cfw_scan scan)
{
    rs->scan = scan;
}

enum cfw_scan cfw_ruleset_scan(const struct cfw_ruleset *rs)
{
    return rs->scan;
}

/*
 * The event kinds a rule can match: those its `when: {kind: ...}` names exactly, else all. A
 * glob, a negation or a test of presence could take any kind.
 */
static unsigned rule_kinds(const struct cfw_rule *r)
{
    unsigned kinds = CFW_KIND_ALL;

    for (size_t i = 0; i < r->nconds; i++) {
        const struct cond *c = &r->conds[i];
        unsigned these = 0;

        if (c->after || strcmp(c->field, "kind") != 0) {
            continue;
        }
        for (size_t j = 0; j < c->n; j++) {
            if (c->ex[j].op != COP_EQ) {
                these = CFW_KIND_ALL;
                break;
            }
            these |= cfw_kind_bit(c->ex[j].arg);
        }
        kinds &= these;
    }
    return kinds;
}

/*
 * Says that the events to come are of a new record. Without it two records that look alike
 * (same input, lines and time: a file read again after truncation, two Logpush batches) would
 * share their count of exceptions, and whether they did would depend on the records between
 * them, which the fast scan does not decode.
 */
void cfw_ruleset_record_start(struct cfw_ruleset *rs)
{
    rs->rec_fresh = true;
    rs->sel_on = rs->sel_made && rs->scan == CFW_SCAN_FAST;
}

void cfw_ruleset_record_end(struct cfw_ruleset *rs)
{
    rs->sel_on = false;
    rs->sel_made = false;
}

/* Builds the prefilter for the rules as they are now. */
void cfw_ruleset_prepare(struct cfw_ruleset *rs)
{
    if (rs->pf != NULL) {
        return;
    }
    rs->pf = cfw_prefilter_new();
    for (size_t i = 0; i < rs->n; i++) {
        struct cfw_rule *r = rs->v[i];

        r->no_literal =
            r->code != NULL ? cfw_prefilter_add(rs->pf, r->pattern, rule_kinds(r), i) : 0;
    }
    cfw_prefilter_build(rs->pf);
    free(rs->sel);
    rs->sel = cfw_xcalloc(cfw_prefilter_words(rs->pf) + 1, sizeof(*rs->sel));
    rs->sel_made = false;
    rs->sel_on = false;
}

bool cfw_ruleset_wants(struct cfw_ruleset *rs, const struct cfw_record *rec)
{
    if (rs->scan == CFW_SCAN_FULL) {
        return true;
    }
    if (rs->pf == NULL) {
        cfw_ruleset_prepare(rs);
    }
    rs->sel_made = true;
    return cfw_prefilter_select(rs->pf, rec->kind, rec->text, rec->len, rs->sel);
}

unsigned cfw_rule_no_literal(const struct cfw_rule *r)
{
    return r->no_literal;
}

const char *cfw_rule_where(const struct cfw_rule *r)
{
    return r->where != NULL ? r->where : "?";
}
