/*
 * Unit tests for input.c: the kinds found by type name, what an entry is checked for, what keeps
 * an input running across a reload, and the life cycle of a file input through the interface.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/input.h"
#include "cfwatchd/metrics.h"
#include "diag_check.h"
#include "test_util.h"

/* How long a file's bytes may take to come (generous: sanitizer builds are slow). */
#define WAIT_MS 10000

static struct cfw_doc *load(const char *text)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = cfw_yaml_load_string("i.yaml", text, strlen(text), &diag);

    assert_non_null(doc);
    assert_int_equal(diag.n, 0);
    return doc;
}

/* The problems cfw_input_check finds in the single entry of text, given what the config has. */
static size_t check(const char *text, unsigned have, struct cfw_diag *diag)
{
    struct cfw_doc *doc = load(text);
    int rc = cfw_input_check(doc->root->items[0], "sources[0]", have, diag);

    for (size_t i = 0; i < diag->n; i++) {
        print_message("%s\n", diag->msgs[i]);
    }
    assert_int_equal(rc, diag->n > 0 ? -1 : 0);
    cfw_doc_free(doc);
    return diag->n;
}

/* Asserts that cfw_input_check finds one problem in the entry of text, saying want. */
static void check_refused(const char *text, unsigned have, const char *want)
{
    struct cfw_diag diag = {0};

    assert_int_equal(check(text, have, &diag), 1);
    ASSERT_DIAG_HAS_ALL(&diag, want);
    cfw_diag_free(&diag);
}

static void test_kinds_by_type(void **state)
{
    const unsigned all = CFW_INPUT_NEEDS_CLOUDFLARE | CFW_INPUT_NEEDS_LISTENER;
    struct cfw_diag diag = {0};

    (void)state;
    assert_int_equal(check("- {name: a, type: file, path: /x}\n", 0, &diag), 0);
    assert_int_equal(check("- {name: a, type: exec, command: [ls]}\n", 0, &diag), 0);
    assert_int_equal(check("- {name: a, type: journal}\n", 0, &diag), 0);
    assert_int_equal(check("- {name: a, type: cloudflare-builds, scripts: [w]}\n", all, &diag), 0);
    assert_int_equal(check("- {name: a, type: cloudflare-tail, scripts: [w]}\n", all, &diag), 0);
    assert_int_equal(check("- {name: a, type: logpush, token: abcdefghijklmnopq}\n", all, &diag),
                     0);
    cfw_diag_free(&diag);
    check_refused("- [a]\n", all, "sources[0]: expected a map with 'name' and 'type'");
    check_refused("- {name: a}\n", all,
                  "sources[0]: a source needs 'type' (one of: file, exec, journal, logpush, "
                  "cloudflare-deployments, cloudflare-observability, cloudflare-builds, "
                  "cloudflare-tail)");
    check_refused("- {name: a, type: fil}\n", all,
                  "sources[0].type: unknown source type 'fil' (valid: file, exec, journal, "
                  "logpush, cloudflare-deployments, cloudflare-observability, "
                  "cloudflare-builds, cloudflare-tail)");
    /* an unknown cloudflare- type too (cloudflare-tail is not the pollers') */
    check_refused("- {name: a, type: cloudflare-nope, scripts: [w]}\n", all,
                  "sources[0].type: unknown source type 'cloudflare-nope' (valid: file, exec, "
                  "journal, logpush, cloudflare-deployments, cloudflare-observability, "
                  "cloudflare-builds, cloudflare-tail)");
}

static void test_what_an_entry_needs(void **state)
{
    (void)state;
    check_refused("- {name: a, type: cloudflare-deployments, scripts: [w]}\n",
                  CFW_INPUT_NEEDS_LISTENER,
                  "sources[0]: a Cloudflare poller needs the cloudflare: section");
    check_refused("- {name: a, type: logpush, token: abcdefghijklmnopq}\n",
                  CFW_INPUT_NEEDS_CLOUDFLARE,
                  "sources[0]: a logpush source needs the HTTP listener");
    /* the keys are the kind's: a key of another kind is unknown */
    check_refused("- {name: a, type: file, path: /x, command: [ls]}\n", 0,
                  "sources[0].command: unknown key 'command' (valid keys: name, "
                  "type, path, start_at, format, poll_interval, read_budget, "
                  "down_after, max_files, expect_files)");
}

static void test_kept_across_a_reload(void **state)
{
    struct cfw_doc *doc = load("- {name: a, type: exec, command: [wrangler, tail, api]}\n"
                               "- {type: exec, name: a, command: [wrangler, tail, api]}\n"
                               "- {name: a, type: exec, command: [wrangler, tail, web]}\n"
                               "- {name: a, type: exec, command: [x], env: {T: '${TOKEN}'}}\n"
                               "- {name: a, type: file, path: /x}\n");
    const struct cfw_node *const *v = (const struct cfw_node *const *)doc->root->items;
    char *a = cfw_input_keep_text(v[0]);
    char *b = cfw_input_keep_text(v[1]);
    char *c = cfw_input_keep_text(v[2]);

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_string_not_equal(a, b); /* the text of the entry as written, keys in their order */
    assert_string_not_equal(a, c);
    assert_null(cfw_input_keep_text(v[3])); /* read from the environment again */
    assert_null(cfw_input_keep_text(v[4])); /* only exec sources are kept */
    free(a);
    free(b);
    free(c);
    cfw_doc_free(doc);
}

struct seen {
    char stream[256];
    char data[64];
    size_t len;
    const char *label;
    int health_calls;
};

static void on_bytes(void *arg, struct cfw_input *in, const struct cfw_input_bytes *b)
{
    struct seen *s = arg;

    (void)in;
    snprintf(s->stream, sizeof(s->stream), "%s", b->stream);
    s->label = b->label;
    if (s->len + b->len < sizeof(s->data)) {
        memcpy(s->data + s->len, b->buf, b->len);
        s->len += b->len;
    }
}

static void on_health(void *arg, struct cfw_input *in, enum cfw_input_health h, const char *why)
{
    (void)in;
    (void)h;
    (void)why;
    ((struct seen *)arg)->health_calls++;
}

static bool got_bytes(void *arg)
{
    return ((struct seen *)arg)->len >= 6;
}

static bool stopped(void *arg)
{
    return cfw_input_stopped(arg);
}

static void test_file_input_life_cycle(void **state)
{
    char dir[256], path[300], text[512];
    struct event_base *base = loop_base_new(false);
    struct event *tick = loop_tick_new(base);
    struct cfw_input_env env = {.base = base};
    struct seen seen = {0};
    struct cfw_input_cbs cbs = {.bytes = on_bytes, .health = on_health, .arg = &seen};
    struct cfw_diag diag = {0};
    struct cfw_metrics *m = cfw_metrics_new();
    struct cfw_doc *doc;
    struct cfw_input *in;
    FILE *fp;
    json_t *saved;
    size_t len;

    (void)state;
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "input"), 0);
    snprintf(path, sizeof(path), "%s/app.log", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("hello\n", fp);
    fclose(fp);
    snprintf(text, sizeof(text), "- {name: f, type: file, path: '%s', start_at: beginning}\n",
             path);
    doc = load(text);
    env.state_dir = dir;
    in = cfw_input_new(doc->root->items[0], "sources[0]", &env, &cbs, &diag);
    assert_non_null(in);
    assert_int_equal(diag.n, 0);
    assert_string_equal(cfw_input_name(in), "f");
    assert_string_equal(cfw_input_type(in), "file");
    assert_null(cfw_input_kept_by(in));
    assert_false(cfw_input_accepts_http(in));
    assert_true(cfw_input_keeps_state(in));
    cfw_input_start(in);
    assert_true(loop_run_until(base, got_bytes, &seen, WAIT_MS));
    assert_string_equal(seen.stream, path);
    assert_string_equal(seen.label, path); /* a file's records are named by its path */
    assert_memory_equal(seen.data, "hello\n", 6);
    assert_int_equal(cfw_input_health(in, NULL), CFW_INPUT_UP);
    assert_string_equal(cfw_input_health_name(CFW_INPUT_DEGRADED), "degraded");
    saved = cfw_input_save(in);
    assert_string_equal(json_string_value(json_object_get(saved, "type")), "file");
    json_decref(saved);
    cfw_inputs_metrics(&in, 1, m);
    ASSERT_HAS_ALL(cfw_metrics_text(m, &len), "cfwatchd_source_up{source=\"f\"} 1\n");
    assert_non_null(
        strstr(cfw_metrics_text(m, &len), "cfwatchd_source_bytes_total{source=\"f\"} 6\n"));
    cfw_input_stop(in);
    assert_true(loop_run_until(base, stopped, in, WAIT_MS));
    cfw_input_drain(in);
    cfw_input_free(in);
    cfw_input_free(NULL);
    cfw_metrics_free(m);
    cfw_doc_free(doc);
    event_free(tick);
    event_base_free(base);
    tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds_by_type),
        cmocka_unit_test(test_what_an_entry_needs),
        cmocka_unit_test(test_kept_across_a_reload),
        cmocka_unit_test(test_file_input_life_cycle),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
