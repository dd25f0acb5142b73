/* Unit tests for metrics.c: families grouped as the Prometheus text format wants them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "cfwatchd/incident.h"
#include "cfwatchd/metrics.h"
#include "cfwatchd/outbox.h"

static void test_families_grouped_in_declaration_order(void **state)
{
    struct cfw_metrics *m = cfw_metrics_new();
    struct cfw_metrics_family *up, *bytes;
    const char *text;
    size_t len;

    (void)state;
    up = cfw_metrics_family(m, "x_up", "gauge", "Up or not.");
    bytes = cfw_metrics_family(m, "x_bytes_total", "counter", "Bytes.");
    /* samples added family after family, as inputs add theirs one input at a time */
    cfw_metrics_sample(up, CFW_LABELS("source", "a"), "%s", "1");
    cfw_metrics_u64(bytes, CFW_LABELS("source", "a"), 10);
    cfw_metrics_sample(up, CFW_LABELS("source", "b"), "%s", "0.5");
    cfw_metrics_u64(bytes, CFW_LABELS("source", "b"), 20);
    /* a second declaration returns the first (its type and help are not used) */
    assert_ptr_equal(cfw_metrics_family(m, "x_up", "counter", "Other."), up);
    cfw_metrics_family(m, "x_empty", "gauge", "Declared, no sample.");
    cfw_metrics_add(m, &(struct cfw_metric){"x_one", "counter", "One sample.", UINT64_MAX}, 1);
    text = cfw_metrics_text(m, &len);
    assert_int_equal(len, strlen(text));
    assert_string_equal(text, "# HELP x_up Up or not.\n"
                              "# TYPE x_up gauge\n"
                              "x_up{source=\"a\"} 1\n"
                              "x_up{source=\"b\"} 0.5\n"
                              "# HELP x_bytes_total Bytes.\n"
                              "# TYPE x_bytes_total counter\n"
                              "x_bytes_total{source=\"a\"} 10\n"
                              "x_bytes_total{source=\"b\"} 20\n"
                              "# HELP x_empty Declared, no sample.\n"
                              "# TYPE x_empty gauge\n"
                              "# HELP x_one One sample.\n"
                              "# TYPE x_one counter\n"
                              "x_one 18446744073709551615\n");
    cfw_metrics_free(m);
    cfw_metrics_free(NULL);
}

static void test_labels_escaped(void **state)
{
    struct cfw_metrics *m = cfw_metrics_new();
    struct cfw_metrics_family *f = cfw_metrics_family(m, "y_state", "gauge", "State.");
    size_t len;

    (void)state;
    cfw_metrics_sample(f, CFW_LABELS("source", "a\"b\\c\nd", "state", "open"), "%d", 1);
    assert_string_equal(cfw_metrics_text(m, &len),
                        "# HELP y_state State.\n"
                        "# TYPE y_state gauge\n"
                        "y_state{source=\"a\\\"b\\\\c\\nd\",state=\"open\"} 1\n");
    cfw_metrics_free(m);
}

static void test_empty_page(void **state)
{
    struct cfw_metrics *m = cfw_metrics_new();
    size_t len = 1;

    (void)state;
    assert_string_equal(cfw_metrics_text(m, &len), "");
    assert_int_equal(len, 0);
    cfw_metrics_free(m);
}

/* The modules write their own families through the writer: names, order and values. */
static void test_module_families(void **state)
{
    const struct cfw_incident_opts opts = {0};
    struct cfw_incidents *set = cfw_incidents_new(&opts, NULL, NULL);
    uint64_t transitions[CFW_TRANSITIONS] = {0};
    const struct cfw_outbox_stats st = {.bytes = 7, .refused_full = 2};
    struct cfw_metrics *m = cfw_metrics_new();
    const char *text, *open, *tr, *depth, *refused;
    size_t len;

    (void)state;
    transitions[CFW_TRANSITION_OPEN] = 3;
    cfw_incidents_metrics(set, transitions, m);
    cfw_outbox_metrics(&st, 5, m);
    text = cfw_metrics_text(m, &len);
    open = strstr(text, "# TYPE cfwatchd_incidents_open gauge\ncfwatchd_incidents_open 0\n");
    tr = strstr(text, "cfwatchd_transitions_total{transition=\"open\"} 3\n");
    depth = strstr(text, "# TYPE cfwatchd_outbox_depth gauge\ncfwatchd_outbox_depth 5\n");
    refused = strstr(text, "cfwatchd_outbox_refused_total 2\n");
    assert_non_null(open);
    assert_non_null(tr);
    assert_non_null(depth);
    assert_non_null(refused);
    assert_true(open < tr && tr < depth && depth < refused);
    assert_non_null(strstr(text, "cfwatchd_outbox_spooled_bytes 7\n"));
    cfw_metrics_free(m);
    cfw_incidents_free(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_families_grouped_in_declaration_order),
        cmocka_unit_test(test_labels_escaped),
        cmocka_unit_test(test_empty_page),
        cmocka_unit_test(test_module_families),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
