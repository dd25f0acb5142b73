/* Unit tests for report.c: JSON shape, GitHub escaping, text summary without colour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/report.h"
#include "cfwatchd/yaml.h"
#include "rules_util.h"

static const char rules_yaml[] =
    "rules:\n"
    "  - id: src\n"
    "    pattern: 'No module named ''(?<module>[\\w.]+)'''\n"
    "    severity: critical\n"
    "    title: 'module {module}: a, b'\n"
    "    hint: \"line one\\n100% sure\"\n"
    "  - id: note\n"
    "    pattern: 'note'\n"
    "    severity: info\n"
    "    title: 'a note'\n";

/* Renders the report into *out (allocated). */
static void render_to(enum cfw_report_format fmt, struct cfw_incidents *set, char **out)
{
    struct cfw_pipeline_stats st = {.inputs = 1, .lines = 10, .events = 4};
    struct cfw_report_opts opts = {.format = fmt};
    size_t len = 0;
    FILE *fp = open_memstream(out, &len);

    cfw_report_write(fp, &opts, set, &st);
    fclose(fp);
}

static void test_formats(void **state)
{
    struct cfw_ruleset *rs = rules_from_yaml_ok("t.yaml", rules_yaml, "t");
    struct cfw_incidents *set = cfw_incidents_new(NULL, NULL, NULL);
    struct cfw_event ev = {.input = "dir/a,b.log", .line = 12};
    struct observe_to to = {set, 0, 0};
    json_error_t jerr;
    json_t *root, *inc;
    char *out = NULL;

    (void)state;
    ev.text = "ModuleNotFoundError: No module named 'src'\n\x1b[31mred";
    ev.len = strlen(ev.text);
    cfw_ruleset_match(rs, &ev, observe_cb, &to);
    ev.text = "a note";
    ev.len = strlen(ev.text);
    cfw_ruleset_match(rs, &ev, observe_cb, &to);

    render_to(CFW_REPORT_JSON, set, &out);
    root = json_loads(out, 0, &jerr);
    assert_non_null(root);
    assert_int_equal(json_integer_value(json_object_get(root, "version")), 1);
    assert_int_equal(json_array_size(json_object_get(root, "incidents")), 2);
    inc = json_array_get(json_object_get(root, "incidents"), 0);
    assert_string_equal(json_string_value(json_object_get(inc, "rule")), "src");
    assert_string_equal(json_string_value(json_object_get(inc, "severity")), "critical");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(inc, "fields"), "module")), "src");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(inc, "first"), "line")),
                     12);
    assert_int_equal(json_integer_value(json_object_get(inc, "count")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(
                         json_object_get(root, "stats"), "by_severity"), "critical")),
                     1);
    json_decref(root);
    free(out);

    render_to(CFW_REPORT_GITHUB, set, &out);
    /* properties escape , and :, data escapes %, CR and LF; one line per incident */
    assert_non_null(strstr(out, "::error file=dir/a%2Cb.log,line=12,title=module src%3A a%2C b::"));
    assert_non_null(strstr(out, "line one%0A100%25 sure"));
    assert_non_null(strstr(out, "::notice file="));
    assert_null(strchr(strchr(out, '\n') + 1, '\r'));
    free(out);

    render_to(CFW_REPORT_TEXT, set, &out);
    assert_non_null(strstr(out, "CRITICAL\n"));
    assert_non_null(strstr(out, "cfwatchd: 2 incidents (1 critical, 1 info) in 1 input"));
    /* a control character from the log never reaches the terminal */
    assert_null(strchr(out, '\x1b'));
    free(out);

    cfw_incidents_free(set);
    cfw_ruleset_free(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
