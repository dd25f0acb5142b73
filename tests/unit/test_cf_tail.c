/*
 * Unit tests for cf_tail.c's configuration: defaults, every filter into the POST body as
 * wrangler sends it, the forms of `header`, and errors that name file:line:column and key path.
 * The source's I/O is tested on loopback by tests/integration/test_cloudflare_tail.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/cf_tail.h"
#include "diag_check.h"

static int parse(const char *text, struct cfw_tail_conf *conf, struct cfw_diag *diag)
{
    struct cfw_doc *doc = cfw_yaml_load_string("c.yaml", text, strlen(text), diag);
    int rc;

    assert_non_null(doc);
    assert_true(cfw_tail_is(doc->root->items[0]));
    rc = cfw_tail_conf_parse(doc->root->items[0], "sources[0]", conf, diag);
    cfw_doc_free(doc);
    return rc;
}

/* Asserts that conf's filters, as the POST body holds them, are want. */
static void assert_filters(const struct cfw_tail_conf *conf, const char *want)
{
    json_t *f = cfw_tail_filters(conf);
    char *text = json_dumps(f, JSON_COMPACT);

    assert_string_equal(text, want);
    free(text);
    json_decref(f);
}

static void test_defaults(void **state)
{
    struct cfw_tail_conf conf;
    struct cfw_diag diag = {0};

    (void)state;
    assert_int_equal(
        parse("- {name: live, type: cloudflare-tail, scripts: py-api}\n", &conf, &diag), 0);
    assert_string_equal(conf.name, "live");
    assert_string_equal(conf.scripts[0], "py-api");
    assert_null(conf.scripts[1]);
    assert_int_equal(conf.ping_interval_ms, 10000);
    assert_int_equal(conf.down_after_failures, 3);
    assert_filters(&conf, "{\"filters\":[]}");
    cfw_tail_conf_clear(&conf);
    cfw_diag_free(&diag);
}

static void test_filters_as_wrangler_sends_them(void **state)
{
    struct cfw_tail_conf conf;
    struct cfw_diag diag = {0};

    (void)state;
    assert_int_equal(parse("- name: live\n"
                           "  type: cloudflare-tail\n"
                           "  scripts: [py-api, 'py-*']\n"
                           "  outcome: [exceededCpu, error, ok]\n"
                           "  sampling_rate: '0.25'\n"
                           "  method: [GET]\n"
                           "  header: {key: X-Foo, query: bar}\n"
                           "  client_ip: [self, 203.0.113.7, '2001:db8::1']\n"
                           "  query: Traceback\n"
                           "  script_version: v-1\n",
                           &conf, &diag),
                     0);
    assert_filters(
        &conf,
        "{\"filters\":[{\"sampling_rate\":0.25},"
        "{\"outcome\":[\"exceededCpu\",\"exception\",\"exceededMemory\",\"unknown\",\"ok\"]},"
        "{\"method\":[\"GET\"]},{\"header\":{\"key\":\"X-Foo\",\"query\":\"bar\"}},"
        "{\"client_ip\":[\"self\",\"203.0.113.7\",\"2001:db8::1\"]},"
        "{\"query\":\"Traceback\"},{\"scriptVersion\":\"v-1\"}]}");
    cfw_tail_conf_clear(&conf);
    /* header as wrangler's --header takes it: "Name" or "Name: value" */
    assert_int_equal(parse("- {name: a, type: cloudflare-tail, scripts: x, header: 'X-Team: py'}\n",
                           &conf, &diag),
                     0);
    assert_string_equal(conf.header_key, "X-Team");
    assert_string_equal(conf.header_query, "py");
    cfw_tail_conf_clear(&conf);
    assert_int_equal(
        parse("- {name: a, type: cloudflare-tail, scripts: x, header: X-Team}\n", &conf, &diag), 0);
    assert_string_equal(conf.header_key, "X-Team");
    assert_null(conf.header_query);
    cfw_tail_conf_clear(&conf);
    /* a null header is no header filter, not a header named "~" */
    assert_int_equal(
        parse("- {name: a, type: cloudflare-tail, scripts: x, header: ~}\n", &conf, &diag), 0);
    assert_null(conf.header_key);
    assert_null(conf.header_query);
    cfw_tail_conf_clear(&conf);
    assert_int_equal(diag.n, 0);
    cfw_diag_free(&diag);
}

static void test_errors_name_place_and_key(void **state)
{
    struct cfw_tail_conf conf;
    struct cfw_diag diag = {0};

    (void)state;
    assert_int_equal(parse("- name: live\n"
                           "  type: cloudflare-tail\n"
                           "  scripts: ['py api', 'ok-1']\n"
                           "  outcome: [boom]\n"
                           "  sampling_rate: '1.5'\n"
                           "  method: [get]\n"
                           "  client_ip: [nowhere]\n"
                           "  ping_interval: 10ms\n"
                           "  reconnect_delay_max: 10ms\n"
                           "  scripts_refresh: 1s\n"
                           "  header: {query: x}\n"
                           "  max_message: 12\n"
                           "  colour: red\n",
                           &conf, &diag),
                     -1);
    ASSERT_DIAG_HAS_ALL(
        &diag, "c.yaml:3:", "sources[0].scripts: 'py api' is not a Worker name or glob",
        "sources[0].outcome: unknown outcome 'boom'",
        "sources[0].sampling_rate: '1.5' is not a rate in (0, 1]",
        "sources[0].method: 'get' is not an HTTP method",
        "sources[0].client_ip: 'nowhere' is not an IP address",
        "sources[0].ping_interval: must be between 100ms and 5m",
        "sources[0].reconnect_delay_max: must not be below",
        "sources[0].scripts_refresh: must be at least 10s",
        "sources[0].header: a header name is required", "max_message", "unknown key 'colour'");
    assert_null(conf.name);
    cfw_diag_free(&diag);
    /* scripts is required */
    memset(&diag, 0, sizeof(diag));
    assert_int_equal(parse("- {name: live, type: cloudflare-tail}\n", &conf, &diag), -1);
    ASSERT_DIAG_HAS_ALL(&diag, "scripts is required");
    cfw_diag_free(&diag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_filters_as_wrangler_sends_them),
        cmocka_unit_test(test_errors_name_place_and_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
