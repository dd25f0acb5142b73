/* Unit tests for rules.c: loading, compile errors, conditions, templates, matching, the pack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "cfwatchd/framer.h"
#include "cfwatchd/rules.h"
#include "diag_check.h"
#include "rules_util.h"
#include "test_util.h"

#define MAX_HITS 16

/* What the match callback saw. */
struct hits {
    size_t n;
    char *ids[MAX_HITS];
    struct cfw_fields fields[MAX_HITS];
};

static void on_match(const struct cfw_match *m, const struct cfw_event *ev, void *arg)
{
    struct hits *h = arg;

    (void)ev;
    assert_true(h->n < MAX_HITS);
    h->ids[h->n] = strdup(cfw_rule_id(m->rule));
    memset(&h->fields[h->n], 0, sizeof(h->fields[h->n]));
    cfw_fields_copy(&h->fields[h->n], &m->fields);
    h->n++;
}

static void hits_clear(struct hits *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->ids[i]);
        cfw_fields_clear(&h->fields[i]);
    }
    h->n = 0;
}

/* An event as the decoder makes it: text, kind and a record position. */
static void ev_init(struct cfw_event *ev, const char *text, const char *kind, uint64_t line)
{
    memset(ev, 0, sizeof(*ev));
    ev->text = text;
    ev->len = strlen(text);
    ev->input = "test.log";
    ev->line = line;
    ev->line_end = line;
    cfw_fields_set(&ev->fields, "kind", kind);
}

static int match_text(struct cfw_ruleset *rs, const char *text, const char *kind, uint64_t line,
                      struct hits *h)
{
    struct cfw_event ev;
    int rc;

    ev_init(&ev, text, kind, line);
    rc = cfw_ruleset_match(rs, &ev, h != NULL ? on_match : NULL, h);
    cfw_fields_clear(&ev.fields);
    return rc;
}

/* Builds a ruleset of the pack "custom" from YAML text holding a `rules:` list. */
static struct cfw_ruleset *rules_from(const char *name, const char *yaml, struct cfw_diag *diag)
{
    return rules_from_yaml(name, yaml, "custom", diag);
}

/* The same without JIT when nojit (the interpreter runs when JIT memory is refused). */
static struct cfw_ruleset *rules_from_jit(const char *name, const char *yaml, bool nojit,
                                          struct cfw_diag *diag)
{
    struct cfw_ruleset *rs;

    if (nojit) {
        setenv("CFW_PCRE2_NO_JIT", "1", 1);
    }
    rs = rules_from(name, yaml, diag);
    unsetenv("CFW_PCRE2_NO_JIT");
    return rs;
}

/* The built-in python-workers pack, which must load without a message. */
static struct cfw_ruleset *builtin_rules(void)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = cfw_ruleset_new();

    assert_int_equal(cfw_ruleset_add_builtin(rs, "python-workers", &diag), 0);
    cfw_diag_free(&diag);
    return rs;
}

/* Asserts that ev matches exactly one rule, id. */
static void assert_one_hit(struct cfw_ruleset *rs, const struct cfw_event *ev, const char *id)
{
    struct hits h = {0};

    assert_int_equal(cfw_ruleset_match(rs, ev, on_match, &h), 1);
    assert_string_equal(h.ids[0], id);
    hits_clear(&h);
}

/* A text and the message its check gives (NULL: valid). */
struct check_case {
    const char *text;
    const char *msg;
};

static void run_check_cases(int (*check)(const char *, struct cfw_err *),
                            const struct check_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct cfw_err err = {0};
        int rc = check(cases[i].text, &err);

        if (cases[i].msg == NULL) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, -1);
            assert_string_equal(err.msg, cases[i].msg);
        }
    }
}

static void test_severity(void **state)
{
    enum cfw_severity s = CFW_SEV_INFO;

    (void)state;
    assert_string_equal(cfw_severity_name(CFW_SEV_CRITICAL), "critical");
    assert_string_equal(cfw_severity_name(CFW_SEV_INFO), "info");
    assert_int_equal(cfw_severity_parse("warning", &s), 0);
    assert_int_equal(s, CFW_SEV_WARNING);
    assert_int_equal(cfw_severity_parse("fatal", &s), -1);
    assert_int_equal(s, CFW_SEV_WARNING);
}

static void test_compile_error(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = rules_from("rules.d/x.yaml",
                                        "rules:\n"
                                        "  - id: ok\n"
                                        "    pattern: 'fine'\n"
                                        "  - id: foo\n"
                                        "    pattern: 'foo(bar'\n",
                                        &diag);

    (void)state;
    diag_dump(&diag);
    assert_int_equal(diag.n, 1);
    assert_string_equal(diag.msgs[0], "rules.d/x.yaml:5:14: rules[1].pattern: rule 'foo': "
                                      "missing closing parenthesis at offset 7");
    /* the good rule is kept */
    assert_int_equal(cfw_ruleset_count(rs), 1);
    assert_non_null(cfw_ruleset_find(rs, "ok"));
    assert_null(cfw_ruleset_find(rs, "foo"));
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_broken_file_all_errors(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = cfw_ruleset_new();
    const char *f = CFW_TEST_DATA "/rules/broken.yaml";

    (void)state;
    assert_int_equal(cfw_ruleset_add_file(rs, f, &diag), 8);
    diag_dump(&diag);
    assert_int_equal(diag.n, 8);
    ASSERT_DIAG_HAS_ALL(
        &diag,
        "broken.yaml:6:14: rules[1].pattern: rule 'bad-regex': missing closing parenthesis at "
        "offset 7",
        "broken.yaml:8:5: rules[2].patern: unknown key 'patern' (valid keys: id, pattern, "
        "severity, title, hint, when, continue, key, threshold, repeat_interval, "
        "resolve_after, description, resolve, resolve_fallback, success)",
        "broken.yaml:12:15: rules[3].severity: invalid severity 'fatal' (use critical, error, "
        "warning or info)",
        "broken.yaml:15:12: rules[4].title: rule 'bad-template': unbalanced '{' at offset 5",
        "broken.yaml:18:24: rules[5].when.startup_ms: rule 'bad-when': condition '> soon': "
        "'soon' is not a number",
        "broken.yaml:19:5: rules[6]: missing id",
        "broken.yaml:20:9: rules[7].id: invalid rule id 'Bad_Id'",
        "broken.yaml:22:9: rules[8].id: duplicate rule id 'good' (first at line 3)");
    assert_int_equal(cfw_ruleset_count(rs), 1);
    assert_string_equal(cfw_rule_pack(cfw_ruleset_rule(rs, 0)), "broken");
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_rules_file(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = cfw_ruleset_new();
    const struct cfw_rule *r;
    const struct cfw_rule_opts *o;

    (void)state;
    assert_int_equal(cfw_ruleset_add_file(rs, CFW_TEST_DATA "/rules/custom.yaml", &diag), 0);
    diag_dump(&diag);
    assert_int_equal(cfw_ruleset_count(rs), 2);
    r = cfw_ruleset_find(rs, "settings-missing");
    assert_non_null(r);
    assert_string_equal(cfw_rule_pack(r), "team-rules");
    assert_int_equal(cfw_rule_severity(r), CFW_SEV_WARNING);
    assert_string_equal(cfw_rule_title(r), "Missing setting {key} in {script}");
    assert_string_equal(cfw_rule_hint(r), "Add {key} to the Worker vars.");
    assert_string_equal(cfw_rule_key(r), "{rule}/{script}/{key}");
    o = cfw_rule_opts(r);
    assert_int_equal(o->threshold_count, 3);
    assert_int_equal(o->threshold_window_ms, 600000);
    assert_int_equal(o->repeat_interval_ms, 3600000);
    assert_int_equal(o->resolve_after_ms, 900000);
    /* defaults */
    r = cfw_ruleset_find(rs, "py-src-import");
    assert_null(cfw_rule_key(r));
    assert_string_equal(cfw_rule_hint(r), "");
    assert_int_equal(cfw_rule_opts(r)->threshold_count, 0);
    assert_int_equal(cfw_ruleset_add_file(rs, CFW_TEST_DATA "/rules/none.yaml", &diag), 1);
    assert_true(diag_has(&diag, "none.yaml: cannot open"));
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_rule_defaults_and_shapes(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = rules_from("r.yaml",
                                        "rules:\n"
                                        "  - id: plain\n"
                                        "    pattern: 'x'\n"
                                        "  - just a string\n"
                                        "  - id: nopattern\n"
                                        "  - id: thr\n"
                                        "    pattern: 'y'\n"
                                        "    threshold: {count: 0}\n"
                                        "    continue: perhaps\n",
                                        &diag);
    const struct cfw_rule *r = cfw_ruleset_find(rs, "plain");

    (void)state;
    diag_dump(&diag);
    assert_non_null(r);
    assert_int_equal(cfw_rule_severity(r), CFW_SEV_ERROR);
    assert_string_equal(cfw_rule_title(r), "plain");
    assert_string_equal(cfw_rule_hint(r), "");
    assert_string_equal(cfw_rule_pack(r), "custom");
    assert_int_equal(diag.n, 5);
    ASSERT_DIAG_HAS_ALL(&diag,
                        "r.yaml:4:5: rules[1]: expected a rule (a map with id and "
                        "pattern)",
                        "r.yaml:5:5: rules[2]: rule 'nopattern': missing pattern",
                        "rules[3].threshold.count: 0 is out of range (use 1 to 1000000)",
                        "rules[3].threshold: missing window",
                        "rules[3].continue: invalid boolean 'perhaps'");
    assert_int_equal(cfw_ruleset_count(rs), 1);
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
    /* null is missing: a rule with `pattern: ~` never loaded silently, `id: ~` is no "?" rule */
    rs = rules_from("n.yaml",
                    "rules:\n"
                    "  - id: nullpat\n"
                    "    pattern: ~\n"
                    "  - id: ~\n"
                    "    pattern: 'z'\n",
                    &diag);
    assert_int_equal(diag.n, 2);
    ASSERT_DIAG_HAS_ALL(&diag, "n.yaml:2:5: rules[0]: rule 'nullpat': missing pattern",
                        "n.yaml:4:5: rules[1]: missing id");
    assert_int_equal(cfw_ruleset_count(rs), 0);
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_rules_file_shapes(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = cfw_ruleset_new();
    char path[] = "/tmp/cfw-rules-XXXXXX";
    int fd = mkstemp(path);
    FILE *fp;

    (void)state;
    assert_true(fd >= 0);
    fp = fdopen(fd, "w");
    fputs("- id: a\n  pattern: b\n", fp);
    fclose(fp);
    assert_int_equal(cfw_ruleset_add_file(rs, path, &diag), 1);
    assert_true(diag_has(&diag, ":1:1: expected a map with a 'rules' list"));
    fp = fopen(path, "w");
    fputs("pack: p\nrulez: []\n", fp);
    fclose(fp);
    assert_int_equal(cfw_ruleset_add_file(rs, path, &diag), 2);
    ASSERT_DIAG_HAS_ALL(&diag, ":2:1: rulez: unknown key 'rulez' (valid keys: pack, rules)",
                        ":1:1: missing 'rules' list");
    unlink(path);
    assert_int_equal(cfw_ruleset_count(rs), 0);
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_named_groups(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = rules_from("g.yaml",
                                        "rules:\n"
                                        "  - id: user\n"
                                        "    pattern: 'user=(?<user>\\w+)(?: opt=(?<opt>\\w+))?'\n",
                                        &diag);
    struct cfw_event ev;
    struct hits h = {0};

    (void)state;
    assert_int_equal(diag.n, 0);
    ev_init(&ev, "login user=alice", "text", 1);
    cfw_fields_set(&ev.fields, "user", "from-event");
    cfw_fields_set(&ev.fields, "opt", "kept");
    cfw_fields_set(&ev.fields, "script", "api");
    assert_int_equal(cfw_ruleset_match(rs, &ev, on_match, &h), 1);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.ids[0], "user");
    /* a named group overrides the event field; one that did not take part leaves it alone */
    assert_string_equal(cfw_fields_get(&h.fields[0], "user"), "alice");
    assert_string_equal(cfw_fields_get(&h.fields[0], "opt"), "kept");
    assert_string_equal(cfw_fields_get(&h.fields[0], "script"), "api");
    assert_string_equal(cfw_fields_get(&h.fields[0], "kind"), "text");
    assert_int_equal(cfw_rule_matches(cfw_ruleset_find(rs, "user")), 1);
    hits_clear(&h);
    cfw_fields_clear(&ev.fields);
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

/* A group's control characters become spaces wherever they are, the first and last byte too. */
static void test_group_control_characters(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"say=plain words", "plain words"},
        {"say=a\tb\x1b"
         "c\x7f"
         "d",
         "a b c d"},
        {"say=\x01"
         "first",
         " first"},
        {"say=last\n", "last "},
        {"say=\r\n", "  "},
    };
    struct cfw_ruleset *rs = rules_from_yaml_ok("c.yaml",
                                                "rules:\n"
                                                "  - id: say\n"
                                                "    pattern: '(?s)say=(?<msg>.+)'\n",
                                                "custom");

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hits h = {0};

        assert_int_equal(match_text(rs, cases[i].text, "text", 1, &h), 1);
        assert_string_equal(cfw_fields_get(&h.fields[0], "msg"), cases[i].want);
        hits_clear(&h);
    }
    cfw_ruleset_free(rs);
}

static void test_conditions_eval(void **state)
{
    static const struct {
        const char *expr;
        const char *value;
        bool want;
    } cases[] = {
        {"exception", "exception", true},
        {"exception", "exceptions", false},
        {"exception", NULL, false},
        {"exceeded*", "exceededCpu", true},
        {"exceeded*", "ok", false},
        {"exceeded*", NULL, false},
        {"exc?ption", "exception", true},
        {"[eo]k", "ok", true},
        {"!ok", "exception", true},
        {"!ok", "ok", false},
        {"!ok", NULL, true},
        {"!exceeded*", "exceededCpu", false},
        {"!exceeded*", "exception", true},
        {"> 1000", "1507", true},
        {"> 1000", "1000", false},
        {"> 1000", "507", false},
        {">1000", "1000.5", true},
        {"> 1000", NULL, false},
        {"> 1000", "", false},
        {"> 1000", "lots", false},
        {"> 1000", "1507ms", false},
        {">= 1000", "1000", true},
        {">= 1000", "999", false},
        {"< 10", "9.99", true},
        {"< 10", "10", false},
        {"<= 10", "10", true},
        {"<= 10", "11", false},
        {"== 10021", "10021", true},
        {"== 10021", "10027", false},
        {"== 0", "0", true},
        {"== 0", NULL, false},
        {"!= 10021", "10027", true},
        {"!= 10021", "10021", false},
        {"!= 10021", NULL, false},
        {"!= 10021", "abc", false},
        {"< -1.5", "-2", true},
        {"{exists}", "x", true},
        {"{exists}", "", false},
        {"{exists}", NULL, false},
        {"{missing}", NULL, true},
        {"{missing}", "", true},
        {"{missing}", "x", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = cfw_condition_eval(cases[i].expr, cases[i].value);

        if (got != cases[i].want) {
            fail_msg("condition '%s' on %s%s%s: got %d", cases[i].expr,
                     cases[i].value != NULL ? "'" : "",
                     cases[i].value != NULL ? cases[i].value : "NULL",
                     cases[i].value != NULL ? "'" : "", got);
        }
    }
}

static void test_conditions_check(void **state)
{
    static const struct check_case cases[] = {
        {"> 1000", NULL},
        {"exception", NULL},
        {"!ok", NULL},
        {"{exists}", NULL},
        {"> soon", "condition '> soon': 'soon' is not a number"},
        {">", "condition '>': expected a number after '>'"},
        {"!= ", "condition '!= ': expected a number after '!='"},
        {"== 1e999", "condition '== 1e999': '1e999' is not a number"},
        {"", "empty condition (use '{missing}' for an absent field)"},
        {"!", "condition '!': nothing to negate"},
        {"{present}", "unknown condition '{present}' (use '{exists}' or '{missing}')"},
    };

    (void)state;
    run_check_cases(cfw_condition_check, cases, sizeof(cases) / sizeof(cases[0]));
    assert_false(cfw_condition_eval("> soon", "5"));
}

static void test_conditions_in_rules(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = rules_from("c.yaml",
                                        "rules:\n"
                                        "  - id: slow\n"
                                        "    pattern: 'took (?<ms>\\d+) ms'\n"
                                        "    when: {ms: '>= 1000', script: ['api-*', 'web'], "
                                        "env: '!staging'}\n"
                                        "  - id: any\n"
                                        "    pattern: 'took'\n",
                                        &diag);
    struct cfw_event ev;

    (void)state;
    assert_int_equal(diag.n, 0);
    ev_init(&ev, "took 1500 ms", "text", 1);
    cfw_fields_set(&ev.fields, "script", "api-eu");
    assert_one_hit(rs, &ev, "slow");
    /* the condition on a named group is checked against the group */
    cfw_fields_set(&ev.fields, "ms", "99999");
    ev.text = "took 999 ms";
    ev.len = strlen(ev.text);
    assert_one_hit(rs, &ev, "any");
    ev.text = "took 1500 ms";
    ev.len = strlen(ev.text);
    cfw_fields_set(&ev.fields, "script", "web");
    assert_one_hit(rs, &ev, "slow");
    cfw_fields_set(&ev.fields, "script", "batch");
    assert_one_hit(rs, &ev, "any");
    cfw_fields_set(&ev.fields, "script", "web");
    cfw_fields_set(&ev.fields, "env", "staging");
    assert_one_hit(rs, &ev, "any");
    cfw_fields_clear(&ev.fields);
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_templates(void **state)
{
    struct cfw_fields f = {0};
    char *s;

    (void)state;
    cfw_fields_set(&f, "script", "api");
    cfw_fields_set(&f, "module", "src");
    cfw_fields_set(&f, "tricky", "{script}");
    s = cfw_template_render("Worker {script} imports {module}", &f);
    assert_string_equal(s, "Worker api imports src");
    free(s);
    s = cfw_template_render("[{missing}] {{literal}} }} {{", &f);
    assert_string_equal(s, "[] {literal} } {");
    free(s);
    /* one pass: a value holding {x} stays literal */
    s = cfw_template_render("value={tricky}", &f);
    assert_string_equal(s, "value={script}");
    free(s);
    s = cfw_template_render("", &f);
    assert_string_equal(s, "");
    free(s);
    s = cfw_template_render("{script}", NULL);
    assert_string_equal(s, "");
    free(s);
    /* text the checker refuses is rendered literally */
    s = cfw_template_render("a { b } {script", &f);
    assert_string_equal(s, "a { b } {script");
    free(s);
    cfw_fields_clear(&f);
}

static void test_template_check(void **state)
{
    static const struct check_case cases[] = {
        {"ok {script} {{x}} }}", NULL},
        {"{a.b-c_d}", NULL},
        {"oops {script", "unbalanced '{' at offset 5 (write {{ for a literal brace)"},
        {"a } b", "unbalanced '}' at offset 2 (write }} for a literal brace)"},
        {"{}", "empty field name '{}' at offset 0 (write {{ for a brace)"},
        {"{a b}", "invalid field name at offset 0 (use letters, digits, '_', '.' and '-'; write "
                  "{{ for a literal brace)"},
        {"{{a}", "unbalanced '}' at offset 3 (write }} for a literal brace)"},
        {"{a{b}}", "unbalanced '{' at offset 0 (write {{ for a literal brace)"},
    };

    (void)state;
    run_check_cases(cfw_template_check, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_template_cap(void **state)
{
    struct cfw_fields f = {0};
    size_t n = 100 * 1024;
    char *big = malloc(n + 1);
    char *s;

    (void)state;
    memset(big, 'x', n);
    big[n] = '\0';
    /* a multi-byte character right at the cut */
    memcpy(big + 64 * 1024 - 5, "\xc3\xa9\xc3\xa9", 4);
    cfw_fields_set(&f, "big", big);
    s = cfw_template_render("{big}", &f);
    assert_true(strlen(s) <= 64 * 1024);
    assert_memory_equal(s + strlen(s) - 3, "...", 3);
    free(s);
    free(big);
    cfw_fields_clear(&f);
}

static const char *const order_yaml = "rules:\n"
                                      "  - id: a\n"
                                      "    pattern: 'foo'\n"
                                      "    continue: true\n"
                                      "  - id: b\n"
                                      "    pattern: 'foo'\n"
                                      "  - id: c\n"
                                      "    pattern: 'foo|bar'\n";

static void test_first_match_and_continue(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = rules_from("o.yaml", order_yaml, &diag);
    struct hits h = {0};

    (void)state;
    assert_int_equal(diag.n, 0);
    assert_int_equal(match_text(rs, "foo", "text", 1, &h), 2);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.ids[0], "a");
    assert_string_equal(h.ids[1], "b");
    hits_clear(&h);
    assert_int_equal(match_text(rs, "bar", "text", 2, &h), 1);
    assert_string_equal(h.ids[0], "c");
    hits_clear(&h);
    assert_int_equal(match_text(rs, "nothing", "text", 3, &h), 0);
    assert_int_equal(h.n, 0);
    assert_int_equal(cfw_rule_matches(cfw_ruleset_find(rs, "a")), 1);
    assert_int_equal(cfw_rule_matches(cfw_ruleset_find(rs, "c")), 1);
    /* a NULL callback still counts */
    assert_int_equal(match_text(rs, "foo", "text", 4, NULL), 2);
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_replace_builtin(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = cfw_ruleset_new();
    struct cfw_doc *doc;
    size_t n, pos = 0;
    const char *custom = "rules:\n"
                         "  - id: py-src-import\n"
                         "    pattern: 'from src\\.'\n"
                         "    severity: warning\n"
                         "    title: 'mine'\n"
                         "  - id: extra\n"
                         "    pattern: 'extra'\n";

    (void)state;
    assert_int_equal(cfw_ruleset_add_builtin(rs, "python-workers", &diag), 0);
    n = cfw_ruleset_count(rs);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(cfw_rule_id(cfw_ruleset_rule(rs, i)), "py-src-import") == 0) {
            pos = i;
        }
    }
    doc = cfw_yaml_load_string("cfwatchd.yaml", custom, strlen(custom), &diag);
    assert_int_equal(
        cfw_ruleset_add_node(rs, cfw_node_get(doc->root, "rules"), "rules.custom", "custom", &diag),
        0);
    cfw_doc_free(doc);
    assert_int_equal(cfw_ruleset_count(rs), n + 1);
    assert_string_equal(cfw_rule_id(cfw_ruleset_rule(rs, pos)), "py-src-import");
    assert_string_equal(cfw_rule_pack(cfw_ruleset_rule(rs, pos)), "custom");
    assert_int_equal(cfw_rule_severity(cfw_ruleset_rule(rs, pos)), CFW_SEV_WARNING);
    assert_string_equal(cfw_rule_title(cfw_ruleset_find(rs, "py-src-import")), "mine");
    assert_string_equal(cfw_rule_id(cfw_ruleset_rule(rs, n)), "extra");
    assert_null(cfw_ruleset_rule(rs, n + 1));
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_builtin_pack(void **state)
{
    static const struct {
        const char *id;
        enum cfw_severity sev;
    } required[] = {
        {"py-src-import", CFW_SEV_CRITICAL},
        {"py-workers-sdk-missing", CFW_SEV_ERROR},
        {"py-module-not-found", CFW_SEV_ERROR},
        {"py-import-error", CFW_SEV_ERROR},
        {"startup-cpu-limit", CFW_SEV_CRITICAL},
        {"startup-memory-limit", CFW_SEV_CRITICAL},
        {"bundle-size-limit", CFW_SEV_CRITICAL},
        {"deploy-validation-failed", CFW_SEV_ERROR},
        {"python-workers-flag-missing", CFW_SEV_ERROR},
        {"pywrangler-install-failed", CFW_SEV_ERROR},
        {"duplicate-module", CFW_SEV_WARNING},
        {"build-upload-ignored", CFW_SEV_WARNING},
        {"runtime-failed-to-start", CFW_SEV_ERROR},
        {"workerd-internal-error", CFW_SEV_ERROR},
        {"worker-hung", CFW_SEV_ERROR},
        {"worker-exceeded-limit", CFW_SEV_ERROR},
        {"worker-exception", CFW_SEV_ERROR},
        {"builds-deploy-failed", CFW_SEV_ERROR},
        {"startup-time-high", CFW_SEV_WARNING},
        {"python-experimental-notice", CFW_SEV_INFO},
        {"deploy-succeeded", CFW_SEV_INFO},
    };
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = cfw_ruleset_new();
    const char *const *packs = cfw_builtin_packs();
    struct cfw_fields empty = {0};

    (void)state;
    assert_string_equal(packs[0], "python-workers");
    assert_null(packs[1]);
    assert_non_null(cfw_builtin_pack_text("python-workers"));
    assert_null(cfw_builtin_pack_text("nope"));
    assert_int_equal(cfw_ruleset_add_builtin(rs, "python-workers", &diag), 0);
    diag_dump(&diag);
    assert_int_equal(diag.n, 0);
    assert_int_equal(cfw_ruleset_count(rs), sizeof(required) / sizeof(required[0]));
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        const struct cfw_rule *r = cfw_ruleset_find(rs, required[i].id);
        struct cfw_err err = {0};
        char *title;

        if (r == NULL) {
            fail_msg("missing rule %s", required[i].id);
        }
        assert_int_equal(cfw_rule_severity(r), required[i].sev);
        assert_string_equal(cfw_rule_pack(r), "python-workers");
        if (cfw_rule_opts(r)->success) {
            continue; /* evidence of a deploy: no incident, no title or hint shown */
        }
        assert_int_equal(cfw_template_check(cfw_rule_title(r), &err), 0);
        assert_int_equal(cfw_template_check(cfw_rule_hint(r), &err), 0);
        assert_true(strlen(cfw_rule_hint(r)) > 40);
        /* no placeholder is left in a rendered title */
        title = cfw_template_render(cfw_rule_title(r), &empty);
        assert_null(strchr(title, '{'));
        free(title);
    }
    /* deploy failures wait for a successful deploy; runtime failures resolve when quiet */
    assert_int_equal(cfw_rule_opts(cfw_ruleset_find(rs, "py-src-import"))->resolve,
                     CFW_RESOLVE_SUCCESS);
    assert_int_equal(cfw_rule_opts(cfw_ruleset_find(rs, "deploy-validation-failed"))->resolve,
                     CFW_RESOLVE_SUCCESS);
    assert_int_equal(cfw_rule_opts(cfw_ruleset_find(rs, "worker-hung"))->resolve,
                     CFW_RESOLVE_QUIET);
    assert_int_equal(cfw_rule_opts(cfw_ruleset_find(rs, "duplicate-module"))->resolve,
                     CFW_RESOLVE_QUIET);
    assert_true(cfw_rule_opts(cfw_ruleset_find(rs, "deploy-succeeded"))->success);
    /* the pack's own YAML is the installed file */
    {
        FILE *fp = fopen(CFW_SOURCE_DIR "/conf/rules.d/python-workers.yaml", "r");
        const char *text = cfw_builtin_pack_text("python-workers");
        size_t len = strlen(text);
        char *buf = malloc(len + 2);

        assert_non_null(fp);
        assert_int_equal(fread(buf, 1, len + 1, fp), len);
        assert_memory_equal(buf, text, len);
        fclose(fp);
        free(buf);
    }
    assert_int_equal(cfw_ruleset_add_builtin(rs, "nope", &diag), 1);
    assert_string_equal(diag.msgs[0],
                        "unknown built-in rule pack 'nope' (built-in packs: python-workers)");
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_template_sections(void **state)
{
    struct cfw_fields f = {0};
    struct cfw_err err = {0};
    char *out;

    (void)state;
    cfw_fields_set(&f, "a", "A");
    cfw_fields_set(&f, "empty", "");
    out = cfw_template_render("x{?a}[{a}{?b}<{b}>{/b}]{/a}{!b}no b{/b}{?empty}E{/empty}.", &f);
    assert_string_equal(out, "x[A]no b.");
    free(out);
    cfw_fields_set(&f, "b", "B");
    out = cfw_template_render("{?a}[{a}{?b}<{b}>{/b}]{/a}{!b}no b{/b}", &f);
    assert_string_equal(out, "[A<B>]");
    free(out);
    /* a value that looks like a section is not expanded */
    cfw_fields_set(&f, "a", "{?b}x{/b}");
    out = cfw_template_render("{a}", &f);
    assert_string_equal(out, "{?b}x{/b}");
    free(out);
    assert_int_equal(cfw_template_check("{?a}x{/a}{!b}y{/b}", &err), 0);
    assert_int_equal(cfw_template_check("{?a}x", &err), -1);
    assert_non_null(strstr(err.msg, "has no {/a}"));
    cfw_fields_clear(&f);
}

static void test_py_src_hint(void **state)
{
    struct cfw_ruleset *rs = builtin_rules();
    const struct cfw_rule *r;
    struct cfw_fields f = {0};
    char *hint;

    (void)state;
    r = cfw_ruleset_find(rs, "py-src-import");
    cfw_fields_set(&f, "import", "from src.core.config.settings import Settings");
    cfw_fields_set(&f, "import_fixed", "from core.config.settings import Settings");
    cfw_fields_set(&f, "file", "/session/metadata/main.py");
    cfw_fields_set(&f, "file_name", "main.py");
    cfw_fields_set(&f, "line", "11");
    hint = cfw_template_render(cfw_rule_hint(r), &f);
    print_message("%s\n", hint);
    ASSERT_HAS_ALL(hint, "relative to the directory of main",
                   "Change `from src.core.config.settings import Settings` "
                   "(main.py line 11) to `from core.config.settings import "
                   "Settings`",
                   "__init__.py");
    free(hint);
    /* no traceback frame: a sentence that still reads, no empty placeholders */
    cfw_fields_clear(&f);
    hint = cfw_template_render(cfw_rule_hint(r), &f);
    assert_null(strstr(hint, "()"));
    assert_null(strstr(hint, "``"));
    assert_non_null(strstr(hint, "Remove the `src.` prefix from the failing import ("
                                 "`from src.core.config.settings import Settings` becomes"));
    free(hint);
    cfw_ruleset_free(rs);
}

/* ---- the built-in pack against real texts (as the framer and decoder hand them over) ---- */

static const char text_01[] =
    "\xe2\x9c\x98 [ERROR] A request to the Cloudflare API "
    "(/accounts/c68856288112af7698f5be52ea94b96e/workers/scripts/deos-sample-project/versions) "
    "failed.\n"
    "\n"
    "  Uncaught Error: PythonError: Traceback (most recent call last):\n"
    "    File \"/lib/python313.zip/_pyodide/_base.py\", line 523, in eval_code\n"
    "      .run(globals, locals)\n"
    "       ~~~^^^^^^^^^^^^^^^^^\n"
    "    File \"<exec>\", line 9, in <module>\n"
    "    File \"/lib/python313.zip/_pyodide/_base.py\", line 666, in pyimport_impl\n"
    "      res = __import__(stem, fromlist=fromlist)\n"
    "    File \"/session/metadata/entry.py\", line 8, in <module>\n"
    "      from workers import Response, WorkerEntrypoint\n"
    "    File \"/lib/python3.13/site-packages/workers/__init__.py\", line 3, in <module>\n"
    "      raise err\n"
    "  ModuleNotFoundError: No module named 'workers'\n"
    "  You need to update to workers-py >= 1.90 or to pass disable_python_external_sdk\n"
    "\n"
    "    at null.<anonymous> (pyodideRuntime-internal:emscriptenSetup:19919:14) in new_error\n"
    "    at null.<anonymous> (pyodide:python-entrypoint-helper:73:17) in handleSrcImport\n"
    "    at null.<anonymous> (pyodide:python-entrypoint-helper:190:17)\n"
    "   [code: 10021]";

static const char text_s01[] =
    "\xe2\x9c\x98 [ERROR] A request to the Cloudflare API "
    "(/accounts/0123456789abcdef0123456789abcdef/workers/scripts/example-py/versions) failed.\n"
    "\n"
    "  Uncaught Error: PythonError: Traceback (most recent call last):\n"
    "    File \"/session/metadata/entry.py\", line 2, in <module>\n"
    "      from src.utils.helpers import greet\n"
    "  ModuleNotFoundError: No module named 'src'\n"
    "  If your main module is inside the 'src' directory then your import statement shouldn't "
    "include a 'src.' prefix\n"
    "\n"
    "    at null.<anonymous> (pyodide:python-entrypoint-helper:73:17) in handleSrcImport\n"
    "   [code: 10021]";

static const char text_04[] =
    "\xe2\x9c\x98 [ERROR] A request to the Cloudflare API "
    "(/accounts/xxxxxxxxxxxxxxxx/workers/scripts/yyyyyyyyy) failed.\n"
    "\n"
    "  You cannot yet deploy Python Workers that depend on packages defined in\n"
    "  requirements.txt. Support for Python packages is coming soon. [code: 10021]";

static const char text_16[] = "\xe2\x9c\x98 [ERROR] A request to the Cloudflare API "
                              "(/accounts/****/workers/scripts/***) failed.\n"
                              "\n"
                              "  Error: Script startup exceeded CPU time limit.\n"
                              "   [code: 10021]";

static const char text_s04[] =
    "\xe2\x9c\x98 [ERROR] A request to the Cloudflare API "
    "(/accounts/0123456789abcdef0123456789abcdef/workers/scripts/example-py/versions) failed.\n"
    "\n"
    "  Uncaught TypeError: Python Worker startup exceeded CPU limit 1412<=1000 with snapshot "
    "none\n"
    "   [code: 10021]";

static const char text_14[] =
    "Traceback (most recent call last):\n"
    "  File \"<string>\", line 1, in <module>\n"
    "    import sys; sys.path = [\"C://...//uv//cache//.tmpzg9ews\"] + sys.path; from "
    "python.get_interpreter_info import\n"
    "      main; main()\n"
    "\n"
    "ModuleNotFoundError: No module named 'python'\n"
    "ERROR  Error running command: uv.EXE venv D:\\...\\.venv-workers\\pyodide-venv --python";

static const char text_23[] =
    "{\"DispatchNamespace\":\"\",\"Entrypoint\":\"\",\"Event\":{\"RayID\":\"87ed87f80cf22d84\","
    "\"Request\":{\"URL\":\"https://test.workers.dev/\",\"Method\":\"GET\"},\"Response\":{"
    "\"Status\":200}},\"EventTimestampMs\":1714878560011,\"EventType\":\"fetch\","
    "\"Exceptions\":[],\"Logs\":[{\"Level\":\"log\",\"Message\":[\"bar\",\"foo\"],"
    "\"TimestampMs\":1714878560016}],\"Outcome\":\"ok\",\"ScriptName\":\"test\"}";

struct pack_case {
    const char *text;
    const char *kind;
    const char *want; /* rule id, or NULL for nothing at warning or above */
    const char *field;
    const char *value;
};

static const struct pack_case pack_cases[] = {
    /* 01: the workers SDK, not the generic API error nor the generic module rule */
    {text_01, "text", "py-workers-sdk-missing", "module", "workers"},
    {"ModuleNotFoundError: No module named 'asgi'", "text", "py-workers-sdk-missing", NULL, NULL},
    /* 05 and S01: the target failure */
    {"File \"/session/metadata/main.py\", line 11, in <module>\n"
     "    from src.core.config.settings import Settings\n"
     "ModuleNotFoundError: No module named 'src'",
     "text", "py-src-import", "module", "src"},
    {text_s01, "text", "py-src-import", "module", "src"},
    {"ModuleNotFoundError: No module named 'src.core'", "text", "py-src-import", "module",
     "src.core"},
    /* S02/S03: a tail or Logpush exception event */
    {"PythonError: Traceback (most recent call last):\n"
     "  File \"/session/metadata/entry.py\", line 9, in fetch\n"
     "    from src.db import q\n"
     "ModuleNotFoundError: No module named 'src'\n",
     "exception", "py-src-import", NULL, NULL},
    /* a traceback printed through console.warn arrives as a log event */
    {"ModuleNotFoundError: No module named 'src'", "log", "py-src-import", NULL, NULL},
    {"ModuleNotFoundError: No module named 'srcutils'", "text", "py-module-not-found", "module",
     "srcutils"},
    /* 14 */
    {text_14, "text", "py-module-not-found", "module", "python"},
    {"ImportError: cannot import name 'Settings' from 'core.config' "
     "(/session/metadata/core/config.py)",
     "text", "py-import-error", "name", "Settings"},
    /* 16, S04: startup CPU wins over the generic API error */
    {text_16, "text", "startup-cpu-limit", NULL, NULL},
    {text_s04, "text", "startup-cpu-limit", NULL, NULL},
    {"  Error: Script startup exceeded memory limits.\n   [code: 10021]", "text",
     "startup-memory-limit", NULL, NULL},
    /* 19, 20 */
    {"Your Worker exceeded the size limit of 3 MiB. Refer to the Workers documentation "
     "(https://developers.cloudflare.com/workers/observability/errors/"
     "#errors-on-worker-upload) for more details. [code: 10027]",
     "text", "bundle-size-limit", NULL, NULL},
    {"multipart: message too large [code: 10021]", "text", "bundle-size-limit", NULL, NULL},
    /* 04 */
    {text_04, "text", "deploy-validation-failed", NULL, NULL},
    {"A request to the Cloudflare API (/accounts/a/workers/scripts/b) failed. Uncaught Error: "
     "boom (Code: 10021)",
     "text", "deploy-validation-failed", NULL, NULL},
    /* 09, 10 */
    {"\xe2\x9c\x98 [ERROR] MiniflareCoreError [ERR_RUNTIME_FAILURE]: The Workers runtime failed "
     "to start. There is likely additional logging output above.",
     "text", "runtime-failed-to-start", NULL, NULL},
    {"workerd/jsg/util.c++:291: error: e = workerd/server/workerd-api.c++:399: failed: expected "
     "featureFlags.getPythonWorkers(); The python_workers compatibility flag is required to use "
     "Python.",
     "text", "python-workers-flag-missing", NULL, NULL},
    {"The `python_workers` compatibility flag is required to use Python.", "text",
     "python-workers-flag-missing", NULL, NULL},
    /* 13 */
    {"workerd/jsg/util.c++:393: error: e = kj/table.c++:49: failed: inserted row already exists "
     "in table",
     "text", "workerd-internal-error", NULL, NULL},
    /* 02 */
    {"ERROR    Installation of packages into the Python Worker failed. Possibly", "text",
     "pywrangler-install-failed", NULL, NULL},
    {"ERROR    Failed to install the requirements defined in your pyproject.toml file. See "
     "above for details.",
     "text", "pywrangler-install-failed", NULL, NULL},
    /* 11 */
    {"\xe2\x96\xb2 [WARNING] Ignoring duplicate module: webtypy-0.1.7.dist-info/top_level.txt "
     "(text)",
     "text", "duplicate-module", "module", "webtypy-0.1.7.dist-info/top_level.txt"},
    {"\xe2\x96\xb2 [WARNING] Processing wrangler.toml configuration:\n\n"
     "    - Unexpected fields found in build field: \"upload\"",
     "text", "build-upload-ignored", NULL, NULL},
    {"\xe2\x96\xb2 [WARNING] Deprecation: \"build.upload.format\":\n"
     "  The format is inferred automatically from the code.",
     "text", "build-upload-ignored", NULL, NULL},
    /* request-time failures */
    {"Error: The Workers runtime canceled this request because it detected that your Worker's "
     "code had hung and would never generate a response.",
     "exception", "worker-hung", NULL, NULL},
    {"Error: Worker exceeded CPU time limit.", "exception", "worker-exceeded-limit", NULL, NULL},
    {"outcome: exceededMemory", "outcome", "worker-exceeded-limit", NULL, NULL},
    {"outcome: exceededWallTime", "outcome", "worker-exceeded-limit", NULL, NULL},
    {"GET https://a.example/ - Exceeded CPU Limit @ 6/9/2026, 12:52:14 am", "text",
     "worker-exceeded-limit", NULL, NULL},
    {"TypeError: Cannot read properties of undefined (reading 'x')\n    at fetch (index.js:3:9)",
     "exception", "worker-exception", NULL, NULL},
    {"outcome: exception", "outcome", "worker-exception", NULL, NULL},
    /* 18 */
    {"Failed: error occurred while running deploy command", "text", "builds-deploy-failed", "step",
     "deploy"},
    {"Failed: error occurred while running build command", "text", "builds-deploy-failed", "step",
     "build"},
    /* startup time */
    {"Worker Startup Time: 1507 ms", "text", "startup-time-high", "startup_ms", "1507"},
    /* notices */
    {"\xe2\x96\xb2 [WARNING] The entrypoint src/entry.py defines a Python worker, support for "
     "Python workers is currently experimental.\n\n",
     "text", "python-experimental-notice", NULL, NULL},
    {"a Python worker, support for Python workers is currently experimental.", "text",
     "python-experimental-notice", NULL, NULL},
    {"Python Workers are in beta. Packages do not run in production.", "text",
     "python-experimental-notice", NULL, NULL},
    /* negatives: 03 (a successful deploy) */
    {"Worker Startup Time: 507 ms", "text", NULL, NULL, NULL},
    {"INFO     Passing command to npx wrangler: npx --yes wrangler deploy", "text", NULL, NULL,
     NULL},
    {"Total Upload: 124.30 KiB / gzip: 33.13 KiB", "text", NULL, NULL, NULL},
    {"env.LINEAR_REJECTION_TRANSITIONS (\"Canceled\")                                  "
     "Environment Variable",
     "text", NULL, NULL, NULL},
    {"Current Version ID: c5efb8da-0591-45e6-96c7-9384f6b7c7bf", "text", NULL, NULL, NULL},
    {"Deploying Python Worker...", "text", NULL, NULL, NULL},
    /* 22: tail pretty output */
    {"GET https://engineering-knowledge-gardener-api-live.avomar.workers.dev/api/sync/REDACTED - "
     "Ok @ 6/9/2026, 12:52:14 am",
     "text", NULL, NULL, NULL},
    {"KnowledgeSyncWorkflow.run - Canceled @ 6/9/2026, 12:51:58 am", "text", NULL, NULL, NULL},
    {"(log) {\"event\":\"notion.request_failed\",\"attempt\":1,\"errorName\":\"TypeError\","
     "\"errorMessage\":\"Illegal invocation: function called with incorrect `this` reference. "
     "See https://developers.cloudflare.com/workers/observability/errors/"
     "#illegal-invocation-errors for details.\"}",
     "text", NULL, NULL, NULL},
    /* 23: Logpush records with outcome ok: the log events, and the record as text */
    {"bar foo", "log", NULL, NULL, NULL},
    {text_23, "text", NULL, NULL, NULL},
    {text_23, "json", NULL, NULL, NULL},
    /* 18: other lines of a failed build */
    {"\xe2\x9c\x98 [ERROR] Missing entry-point to Worker script or to assets directory", "text",
     NULL, NULL, NULL},
    {"npm warn deprecated source-map@0.8.0-beta.0: The work that was done in this beta branch "
     "won't be included in future versions",
     "text", NULL, NULL, NULL},
    /* plain error words in text are not exceptions */
    {"Error: boom", "text", NULL, NULL, NULL},
    {"outcome: ok", "text", NULL, NULL, NULL},
};

static void run_pack_cases(struct cfw_ruleset *rs)
{
    for (size_t i = 0; i < sizeof(pack_cases) / sizeof(pack_cases[0]); i++) {
        const struct pack_case *c = &pack_cases[i];
        struct hits h = {0};
        const char *got = NULL;
        int rc = match_text(rs, c->text, c->kind, 1000 + i, &h);

        assert_true(rc >= 0);
        /* the first match at warning or above is what the report shows */
        for (size_t j = 0; j < h.n && got == NULL; j++) {
            if (cfw_rule_severity(cfw_ruleset_find(rs, h.ids[j])) >= CFW_SEV_WARNING ||
                (c->want != NULL && strcmp(h.ids[j], c->want) == 0)) {
                got = h.ids[j];
            }
        }
        if (c->want == NULL) {
            if (got != NULL) {
                fail_msg("case %zu (%.60s): want nothing, got %s", i, c->text, got);
            }
        } else {
            if (h.n != 1 || strcmp(h.ids[0], c->want) != 0) {
                fail_msg("case %zu (%.60s): want %s, got %s (%zu matches)", i, c->text, c->want,
                         h.n > 0 ? h.ids[0] : "nothing", h.n);
            }
            if (c->field != NULL) {
                const char *v = cfw_fields_get(&h.fields[0], c->field);

                if (v == NULL || strcmp(v, c->value) != 0) {
                    fail_msg("case %zu: field %s = %s, want %s", i, c->field,
                             v != NULL ? v : "(missing)", c->value);
                }
            }
        }
        hits_clear(&h);
    }
}

static void test_pack_cases(void **state)
{
    struct cfw_ruleset *rs = builtin_rules();

    (void)state;
    run_pack_cases(rs);
    cfw_ruleset_free(rs);
}

/* The interpreter (what runs when JIT memory is refused) gives the same answers. */
static void test_pack_cases_no_jit(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs;

    (void)state;
    setenv("CFW_PCRE2_NO_JIT", "1", 1);
    rs = cfw_ruleset_new();
    unsetenv("CFW_PCRE2_NO_JIT");
    assert_int_equal(cfw_ruleset_add_builtin(rs, "python-workers", &diag), 0);
    assert_false(cfw_ruleset_jit(rs));
    run_pack_cases(rs);
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

/* JIT is used whenever this process can JIT-compile a pattern itself. */
static void test_jit_reported(void **state)
{
    struct cfw_ruleset *rs = builtin_rules();
    uint32_t have = 0;
    bool can = false;
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *code;

    (void)state;
    pcre2_config(PCRE2_CONFIG_JIT, &have);
    code = pcre2_compile((PCRE2_SPTR) "a+b", PCRE2_ZERO_TERMINATED, PCRE2_UTF, &errcode, &erroff,
                         NULL);
    assert_non_null(code);
    can = have == 1 && pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    pcre2_code_free(code);
    print_message("JIT possible: %d, in use: %d\n", can, cfw_ruleset_jit(rs));
    assert_int_equal(cfw_ruleset_jit(rs), can);
    cfw_ruleset_free(rs);
}

/* An exception event and the outcome event of the same record: one incident, not two. */
static void test_outcome_after_exception(void **state)
{
    struct cfw_ruleset *rs = builtin_rules();
    struct cfw_event ev;
    struct hits h = {0};

    (void)state;
    ev_init(&ev, "Error: boom", "exception", 7);
    cfw_fields_set(&ev.fields, "time", "2026-01-01T00:00:00.000Z");
    assert_one_hit(rs, &ev, "worker-exception");
    cfw_fields_set(&ev.fields, "kind", "outcome");
    ev.text = "outcome: exception";
    ev.len = strlen(ev.text);
    assert_int_equal(cfw_ruleset_match(rs, &ev, on_match, &h), 0);
    /* the next record (same line in another batch, different time) stands on its own */
    cfw_fields_set(&ev.fields, "time", "2026-01-01T00:00:01.000Z");
    assert_one_hit(rs, &ev, "worker-exception");
    cfw_fields_clear(&ev.fields);
    cfw_ruleset_free(rs);
}

/* An event of a record: input, time (NULL: none) and line, as the decoder makes it. */
static bool outcome_told(struct cfw_ruleset *rs, const char *kind, const char *input,
                         const char *time, uint64_t line)
{
    struct cfw_event ev;
    struct hits h = {0};
    bool told;

    ev_init(&ev, "outcome: exception", kind, line);
    ev.input = input;
    if (time != NULL) {
        cfw_fields_set(&ev.fields, "time", time);
    }
    assert_true(cfw_ruleset_match(rs, &ev, on_match, &h) >= 0);
    told = h.n == 1;
    hits_clear(&h);
    cfw_fields_clear(&ev.fields);
    return told;
}

/*
 * Events belong to one record while input, time and lines stay the same: no time and an empty
 * one differ, inputs and times of any length are told apart (the matcher keeps its copies of
 * them from one record to the next), and so are kinds that share a first letter.
 */
static void test_record_identity(void **state)
{
    struct cfw_ruleset *rs = rules_from_yaml_ok("r.yaml",
                                                "rules:\n"
                                                "  - id: told\n"
                                                "    pattern: 'outcome'\n"
                                                "    when: {kind: [outcome, other], "
                                                "record_exceptions: ['{missing}', '== 0']}\n",
                                                "custom");
    char big[300];

    (void)state;
    memset(big, 'i', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_true(outcome_told(rs, "outcome", "a", NULL, 1));
    assert_false(outcome_told(rs, "exception", "a", NULL, 1));
    assert_false(outcome_told(rs, "outcome", "a", NULL, 1));
    /* "" is not NULL, either way round */
    assert_true(outcome_told(rs, "outcome", "a", "", 1));
    assert_false(outcome_told(rs, "exception", "a", "", 1));
    assert_true(outcome_told(rs, "outcome", "a", NULL, 1));
    assert_true(outcome_told(rs, "outcome", NULL, NULL, 1));
    assert_false(outcome_told(rs, "exception", NULL, NULL, 1));
    assert_true(outcome_told(rs, "outcome", "", NULL, 1));
    /* a long input after a short one, and back */
    assert_false(outcome_told(rs, "exception", big, "2026-01-01T00:00:00Z", 2));
    assert_false(outcome_told(rs, "outcome", big, "2026-01-01T00:00:00Z", 2));
    assert_true(outcome_told(rs, "outcome", big, "2026-01-01T00:00:00.5Z", 2));
    big[100] = '\0';
    assert_true(outcome_told(rs, "outcome", big, "2026-01-01T00:00:00.5Z", 2));
    /* kinds that start like the two the matcher looks for are neither */
    assert_false(outcome_told(rs, "exception", "b", NULL, 3));
    assert_false(outcome_told(rs, "exceptions", "b", NULL, 3));
    assert_false(outcome_told(rs, "outcom", "b", NULL, 3));
    assert_false(outcome_told(rs, "outcome", "b", NULL, 3));
    assert_true(outcome_told(rs, "other", "b", NULL, 3)); /* no record_exceptions but on outcomes */
    assert_true(outcome_told(rs, "outcome", "b", NULL, 4));
    cfw_ruleset_free(rs);
}

/* The rules a record's event is tried with, the ids of those that matched ("-": none). */
static char *matched_in_record(struct cfw_ruleset *rs, const char *text, bool in_record)
{
    struct cfw_record rec = {.kind = CFW_REC_TEXT,
                             .text = text,
                             .len = strlen(text),
                             .input = "t",
                             .line = 1,
                             .line_end = 1};
    struct cfw_buf b = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct hits h = {0};

    if (in_record) {
        cfw_ruleset_wants(rs, &rec);
        cfw_ruleset_record_start(rs);
    }
    assert_true(match_text(rs, text, "text", 1, &h) >= 0);
    cfw_ruleset_record_end(rs);
    for (size_t i = 0; i < h.n; i++) {
        cfw_buf_printf(&b, "%s%s", i > 0 ? "," : "", h.ids[i]);
    }
    hits_clear(&h);
    return b.len > 0 ? cfw_buf_take(&b) : strdup("-");
}

/*
 * With the prefilter's selection the matcher tries only the selected rules, over words of 64
 * rules: it finds the same matches, in the same order, as a full scan and as an event outside
 * a record (every rule).
 */
static void test_selected_rules_across_words(void **state)
{
    static const int picks[][4] = {{0, 1, 2, 3},       {63, 64, 65, 129}, {0, 64, 128, 129},
                                   {62, 63, 127, 128}, {5, 70, 71, 100},  {129, 128, 127, 126}};
    struct cfw_buf y = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    struct cfw_ruleset *fast, *full;

    (void)state;
    cfw_buf_puts(&y, "rules:\n");
    for (int i = 0; i < 130; i++) {
        /* every third rule goes on to the next; one in seven has no literal */
        cfw_buf_printf(&y, "  - id: r%d\n    pattern: '%s%03dq'\n%s", i, i % 7 == 6 ? "k.*" : "kw",
                       i, i % 3 == 0 ? "    continue: true\n" : "");
    }
    fast = rules_from_yaml_ok("w.yaml", y.data, "custom");
    full = rules_from_yaml_ok("w.yaml", y.data, "custom");
    cfw_ruleset_set_scan(fast, CFW_SCAN_FAST);
    cfw_ruleset_set_scan(full, CFW_SCAN_FULL);
    for (size_t c = 0; c < sizeof(picks) / sizeof(picks[0]); c++) {
        char text[128] = "";
        char *a, *b, *d;

        for (int k = 0; k < 4; k++) {
            snprintf(text + strlen(text), sizeof(text) - strlen(text), "kw%03dq ", picks[c][k]);
        }
        a = matched_in_record(fast, text, true);
        b = matched_in_record(full, text, true);
        d = matched_in_record(fast, text, false);
        if (strcmp(a, b) != 0 || strcmp(a, d) != 0) {
            fail_msg("%s: fast %s, full %s, outside a record %s", text, a, b, d);
        }
        free(a);
        free(b);
        free(d);
    }
    cfw_ruleset_free(fast);
    cfw_ruleset_free(full);
    cfw_buf_free(&y);
}

static void test_invalid_utf8_subject(void **state)
{
    static const char bad[] = "\xff\xfe garbage \xc3 ModuleNotFoundError: No module named "
                              "'src' \xed\xa0\x80 tail \x80";
    struct cfw_ruleset *rs = builtin_rules();
    struct hits h = {0};

    (void)state;
    assert_int_equal(match_text(rs, bad, "text", 1, &h), 1);
    assert_string_equal(h.ids[0], "py-src-import");
    hits_clear(&h);
    assert_int_equal(match_text(rs, "\xff\xff\xff", "text", 2, &h), 0);
    cfw_ruleset_free(rs);
}

static void check_limit(bool nojit)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs;
    struct hits h = {0};
    char subject[64];

    rs = rules_from_jit("l.yaml",
                        "rules:\n"
                        "  - id: runaway\n"
                        "    pattern: '^(a+)+$'\n"
                        "  - id: after\n"
                        "    pattern: 'aaa'\n",
                        nojit, &diag);
    assert_int_equal(diag.n, 0);
    memset(subject, 'a', 40);
    subject[40] = 'b';
    subject[41] = '\0';
    /* the runaway rule gives up at the match limit, is counted, and the next rule still runs */
    assert_int_equal(match_text(rs, subject, "text", 1, &h), 1);
    assert_string_equal(h.ids[0], "after");
    assert_int_equal(cfw_rule_limit_hits(cfw_ruleset_find(rs, "runaway")), 1);
    assert_int_equal(cfw_rule_matches(cfw_ruleset_find(rs, "runaway")), 0);
    hits_clear(&h);
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_match_limit(void **state)
{
    (void)state;
    check_limit(false);
    check_limit(true);
}

/*
 * A pattern that backtracks through every repetition of a group needs more than the first
 * 32 KiB JIT stack on a 20000-byte subject (PCRE2_ERROR_JIT_STACKLIMIT): the stack grows to
 * 1 MiB and the match is retried. The interpreter gets there within its limits too.
 */
static void check_deep(bool nojit)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs;
    struct hits h = {0};
    size_t n = 20000;
    char *subject = malloc(n + 1);

    rs = rules_from_jit("j.yaml",
                        "rules:\n"
                        "  - id: deep\n"
                        "    pattern: '^(?:(a)|b)*$'\n",
                        nojit, &diag);
    assert_int_equal(diag.n, 0);
    for (size_t i = 0; i < n; i++) {
        subject[i] = i % 2 == 0 ? 'a' : 'b';
    }
    subject[n] = '\0';
    assert_int_equal(match_text(rs, subject, "text", 1, &h), 1);
    assert_string_equal(h.ids[0], "deep");
    assert_int_equal(cfw_rule_limit_hits(cfw_ruleset_find(rs, "deep")), 0);
    /* and again with the grown stack */
    hits_clear(&h);
    assert_int_equal(match_text(rs, subject, "text", 2, &h), 1);
    hits_clear(&h);
    free(subject);
    cfw_ruleset_free(rs);
    cfw_diag_free(&diag);
}

static void test_jit_stack_growth(void **state)
{
    (void)state;
    check_deep(false);
    check_deep(true);
}

static void test_add_node_shapes(void **state)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = cfw_ruleset_new();
    struct cfw_doc *doc = cfw_yaml_load_string("c.yaml", "custom: {a: 1}\n", 15, &diag);

    (void)state;
    assert_int_equal(cfw_ruleset_add_node(rs, cfw_node_get(doc->root, "custom"), "rules.custom",
                                          "custom", &diag),
                     1);
    assert_string_equal(diag.msgs[0], "c.yaml:1:9: rules.custom: expected a list of rules");
    /* a NULL diag still counts problems */
    assert_int_equal(
        cfw_ruleset_add_node(rs, cfw_node_get(doc->root, "custom"), "rules.custom", "custom", NULL),
        1);
    cfw_doc_free(doc);
    cfw_ruleset_free(rs);
    cfw_ruleset_free(NULL);
    cfw_diag_free(&diag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_severity),
        cmocka_unit_test(test_compile_error),
        cmocka_unit_test(test_broken_file_all_errors),
        cmocka_unit_test(test_rules_file),
        cmocka_unit_test(test_rule_defaults_and_shapes),
        cmocka_unit_test(test_rules_file_shapes),
        cmocka_unit_test(test_named_groups),
        cmocka_unit_test(test_group_control_characters),
        cmocka_unit_test(test_conditions_eval),
        cmocka_unit_test(test_conditions_check),
        cmocka_unit_test(test_conditions_in_rules),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_template_check),
        cmocka_unit_test(test_template_cap),
        cmocka_unit_test(test_first_match_and_continue),
        cmocka_unit_test(test_replace_builtin),
        cmocka_unit_test(test_builtin_pack),
        cmocka_unit_test(test_template_sections),
        cmocka_unit_test(test_py_src_hint),
        cmocka_unit_test(test_pack_cases),
        cmocka_unit_test(test_pack_cases_no_jit),
        cmocka_unit_test(test_jit_reported),
        cmocka_unit_test(test_outcome_after_exception),
        cmocka_unit_test(test_record_identity),
        cmocka_unit_test(test_selected_rules_across_words),
        cmocka_unit_test(test_invalid_utf8_subject),
        cmocka_unit_test(test_match_limit),
        cmocka_unit_test(test_jit_stack_growth),
        cmocka_unit_test(test_add_node_shapes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
