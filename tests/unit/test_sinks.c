/*
 * Unit tests for the sinks: configuration (keys, secrets, redaction), payload builders and
 * their limits (Slack blocks/sections, PagerDuty summary and dedup_key), the webhook HMAC
 * recomputed, Alertmanager labels and endsAt, and the classification of receiver answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfwatchd/sha256.h"
#include "cfwatchd/sink.h"
#include "cfwatchd/yaml.h"
#include "diag_check.h"
#include "json_check.h"
#include "test_util.h"

#define SLACK_URL "https://hooks.slack.com/services/T000/B000/XyZsecretTOKEN123"
#define PD_KEY "R0UTINGKEY0123456789abcdef012345"
#define WH_SECRET "whsec-very-secret-value"

static struct cfw_doc *doc;

static struct cfw_sinks *parse(const char *yaml, struct cfw_diag *diag)
{
    const struct cfw_node *seq;

    cfw_doc_free(doc);
    doc = cfw_yaml_load_string("test.yaml", yaml, strlen(yaml), diag);
    if (doc == NULL) {
        return NULL;
    }
    seq = cfw_node_get(doc->root, "sinks");
    return cfw_sinks_parse(seq, "sinks", diag);
}

static bool diag_leaks(const struct cfw_diag *d, const char *secret)
{
    return diag_has(d, secret);
}

static void incident(struct cfw_incident *inc)
{
    memset(inc, 0, sizeof(*inc));
    inc->key = (char *)"py-src-import/api/src";
    inc->rule = (char *)"py-src-import";
    inc->pack = (char *)"python-workers";
    inc->severity = CFW_SEV_CRITICAL;
    inc->title = (char *)"Python Worker api imports src";
    inc->hint = (char *)"Import relative to main's directory: from core import x";
    inc->sample = (char *)"ModuleNotFoundError: No module named 'src'";
    inc->count = 12;
    inc->first.input = (char *)"deploys";
    inc->first.line = 3;
    inc->first.wall_ms = 1700000000000;
    inc->last.wall_ms = 1700000060000;
    inc->opened_wall_ms = 1700000000000;
    inc->state = CFW_INCIDENT_OPEN;
    cfw_fields_set(&inc->fields, "script", "api");
    cfw_fields_set(&inc->fields, "module", "src");
}

static struct cfw_notification note(const struct cfw_incident *inc, enum cfw_transition t)
{
    struct cfw_notification n;

    memset(&n, 0, sizeof(n));
    n.kind = CFW_NOTIFY_TRANSITION;
    n.transition = t;
    n.inc = inc;
    n.now_wall_ms = 1700000100000;
    return n;
}

/* A digest of n_items openings of inc (into items, which it fills) with omitted more. */
static struct cfw_notification digest(struct cfw_digest_item *items, size_t n_items,
                                      const struct cfw_incident *inc, size_t omitted,
                                      int64_t now_wall_ms)
{
    struct cfw_notification n;

    memset(&n, 0, sizeof(n));
    memset(items, 0, n_items * sizeof(*items));
    for (size_t k = 0; k < n_items; k++) {
        items[k].transition = CFW_TRANSITION_OPEN;
        items[k].inc = *inc;
    }
    n.kind = CFW_NOTIFY_DIGEST;
    n.items = items;
    n.n_items = n_items;
    n.n_omitted = omitted;
    n.now_wall_ms = now_wall_ms;
    return n;
}

static json_t *build(struct cfw_sink *s, const struct cfw_notification *n)
{
    size_t len = 0;
    char *body = cfw_sink_build(s, n, &len);
    json_t *o;

    assert_non_null(body);
    o = json_loadb(body, len, 0, NULL);
    assert_non_null(o);
    free(body);
    return o;
}

static int teardown_doc(void **state)
{
    (void)state;
    cfw_doc_free(doc);
    doc = NULL;
    return 0;
}

static void test_config_all_types(void **state)
{
    struct cfw_diag d = {0};
    struct cfw_sinks *set;
    struct cfw_sink *s;

    (void)state;
    set = parse("sinks:\n"
                "  - {name: ops-slack, type: slack, url: '" SLACK_URL "', min_severity: warning,"
                "     send: [open, resolve], rate_limit: {burst: 2, per: 2s}, timeout: 5s}\n"
                "  - {name: oncall, type: pagerduty, routing_key: " PD_KEY ", region: eu}\n"
                "  - {name: hook, type: webhook, url: 'https://example.com/hook?token=abcdef',"
                "     secret: " WH_SECRET ", headers: {X-Team: ops}}\n"
                "  - name: am\n"
                "    type: alertmanager\n"
                "    urls: ['http://127.0.0.1:9093/', 'http://am2:9093']\n"
                "    labels: {team: ops}\n"
                "    resend_interval: 30s\n"
                "  - {name: out, type: stdout, format: json}\n",
                &d);
    cfw_diag_print(&d, stderr);
    assert_non_null(set);
    assert_int_equal(cfw_sinks_count(set), 5);
    s = cfw_sinks_find(set, "ops-slack");
    assert_string_equal(cfw_sink_type(s), "slack");
    assert_int_equal(cfw_sink_endpoints(s), 1);
    assert_string_equal(cfw_sink_display_url(s, 0),
                        "https://hooks.slack.com/services/T000/B000/***");
    assert_int_equal(cfw_sink_route(s)->min_severity, CFW_SEV_WARNING);
    assert_true(cfw_sink_route(s)->send_open);
    assert_false(cfw_sink_route(s)->send_reminder);
    assert_int_equal(cfw_sink_route(s)->burst, 2);
    assert_int_equal(cfw_sink_route(s)->per_ms, 2000);
    s = cfw_sinks_find(set, "oncall");
    assert_string_equal(cfw_sink_display_url(s, 0), CFW_PD_URL_EU);
    assert_false(cfw_sink_route(s)->digest_resolves);
    s = cfw_sinks_find(set, "hook");
    assert_string_equal(cfw_sink_display_url(s, 0), "https://example.com/***?***");
    s = cfw_sinks_find(set, "am");
    assert_int_equal(cfw_sink_endpoints(s), 2);
    assert_string_equal(cfw_sink_display_url(s, 0), "http://127.0.0.1:9093");
    assert_int_equal(cfw_sink_refresh_interval(s), 30000);
    s = cfw_sinks_find(set, "out");
    assert_true(cfw_sink_is_local(s));
    assert_int_equal(cfw_sink_endpoints(s), 0);
    cfw_sinks_free(set);
    cfw_diag_free(&d);
}

static void test_config_errors(void **state)
{
    struct cfw_diag d = {0};

    (void)state;
    assert_null(parse("sinks:\n"
                      "  - {name: a, type: slack, url: '" SLACK_URL "', colour: red}\n"
                      "  - {name: b, type: pager}\n"
                      "  - {name: c, type: slack}\n"
                      "  - {name: d, type: pagerduty, routing_key: x, region: mars}\n"
                      "  - {name: e, type: webhook, url: 'ftp://x/" WH_SECRET "'}\n"
                      "  - {name: e, type: stdout}\n"
                      "  - {name: e, type: stdout}\n"
                      "  - {name: f, type: stdout, min_severity: loud, send: [open, panic]}\n"
                      "  - {name: g, type: alertmanager, urls: [], labels: {9bad: x}}\n"
                      "  - {name: h, type: webhook, url: 'http://h/x', max_body: 100}\n"
                      "  - {name: i, type: pagerduty, routing_key: 'R0UT \"SeCrEtPaRt'}\n",
                      &d));
    ASSERT_DIAG_HAS_ALL(&d, "unknown key 'colour'", "valid keys: name, type, min_severity",
                        "url, url_file", "unknown sink type 'pager'", "needs url or url_file",
                        "unknown region 'mars'", "must start with http:// or https://",
                        "duplicate sink name 'e'", "unknown severity 'loud'",
                        "unknown transition 'panic'", "needs urls", "invalid label name '9bad'",
                        "sinks[9].max_body: 100 is out of range (use 4096 to 268435456)",
                        "routing_key must be 1 to 256 characters of printable ASCII");
    assert_false(diag_leaks(&d, WH_SECRET));
    assert_false(diag_leaks(&d, "XyZsecretTOKEN123"));
    assert_false(diag_leaks(&d, "SeCrEtPaRt"));
    cfw_diag_free(&d);
}

static void test_secret_files(void **state)
{
    struct cfw_diag d = {0};
    char dir[64];
    char file[128];
    char *yaml;
    FILE *fp;
    struct cfw_sinks *set;

    (void)state;
    assert_int_equal(tmpdir_make(dir, sizeof(dir), "sinks"), 0);
    snprintf(file, sizeof(file), "%s/slack_url", dir);
    fp = fopen(file, "w");
    fputs(SLACK_URL "\n", fp);
    fclose(fp);
    chmod(file, 0644);
    yaml = cfw_xasprintf("sinks:\n  - {name: s, type: slack, url_file: %s}\n", file);
    /* readable by others: refused, and the error does not show the secret */
    assert_null(parse(yaml, &d));
    assert_true(d.n > 0);
    assert_false(diag_leaks(&d, "XyZsecretTOKEN123"));
    cfw_diag_free(&d);
    chmod(file, 0600);
    set = parse(yaml, &d);
    assert_non_null(set);
    assert_string_equal(cfw_sink_display_url(cfw_sinks_at(set, 0), 0),
                        "https://hooks.slack.com/services/T000/B000/***");
    cfw_sinks_free(set);
    free(yaml);
    /* ${ENV} */
    setenv("CFW_TEST_PD_KEY", PD_KEY, 1);
    set = parse("sinks:\n  - {name: p, type: pagerduty, routing_key: '${CFW_TEST_PD_KEY}'}\n", &d);
    assert_non_null(set);
    cfw_sinks_free(set);
    cfw_diag_free(&d);
    assert_int_equal(tmpdir_remove(dir), 0);
}

static void test_url_redact(void **state)
{
    static const struct {
        const char *url;
        bool keep_path;
        const char *want;
    } cases[] = {
        {SLACK_URL, false, "https://hooks.slack.com/services/T000/B000/***"},
        {"https://discord.com/api/webhooks/123/tok/", false,
         "https://discord.com/api/webhooks/123/***/"},
        {"https://user:pw@am.example:9093/base?x=1", true, "https://***@am.example:9093/base?***"},
        {"http://h:1", false, "http://h:1"},
        {"no-scheme", false, "***"},
    };
    char out[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfw_url_redact(cases[i].url, cases[i].keep_path, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
}

static struct cfw_sinks *all_sinks(void)
{
    struct cfw_diag d = {0};
    struct cfw_sinks *set =
        parse("sinks:\n"
              "  - {name: slack, type: slack, url: '" SLACK_URL "'}\n"
              "  - {name: pd, type: pagerduty, routing_key: " PD_KEY ", client_url: "
              "'https://ops.example/cfwatchd'}\n"
              "  - {name: hook, type: webhook, url: 'http://127.0.0.1:1/hook', secret: " WH_SECRET
              ", headers: {Authorization: 'Bearer tokentoken'}}\n"
              "  - {name: am, type: alertmanager, urls: ['http://127.0.0.1:9093'], labels: "
              "{team: ops}, runbook_url: 'https://runbooks/x'}\n",
              &d);

    cfw_diag_print(&d, stderr);
    cfw_diag_free(&d);
    assert_non_null(set);
    cfw_sinks_set_context(set, "ops-host-1", "http://ops-host-1:9187/incidents");
    return set;
}

static void test_slack_open(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_incident inc;
    struct cfw_notification n;
    json_t *o, *blocks, *b;
    size_t i;
    char *dump;

    (void)state;
    incident(&inc);
    n = note(&inc, CFW_TRANSITION_OPEN);
    o = build(cfw_sinks_find(set, "slack"), &n);
    assert_non_null(strstr(json_str_at(o, "text"), "Python Worker api imports src"));
    blocks = json_object_get(o, "blocks");
    assert_string_equal(json_str_at(json_array_get(blocks, 0), "type"), "header");
    assert_non_null(strstr(json_str_at(json_array_get(blocks, 0), "text.text"), "CRITICAL"));
    dump = json_dumps(blocks, 0);
    /* severity, title, script, rule, count, first and last seen, hint, sample */
    ASSERT_HAS_ALL(dump, "Severity: critical", "Script: api", "Rule: py-src-import", "Count: 12",
                   "First seen: 2023-11-14T22:13:20.000Z", "Last seen: 2023-11-14T22:14:20.000Z",
                   "*Hint:* Import relative", "```ModuleNotFoundError: No module named 'src'```",
                   "ops-host-1");
    free(dump);
    json_array_foreach (blocks, i, b) {
        assert_non_null(json_str_at(b, "type"));
    }
    json_decref(o);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

static void test_slack_limits(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_incident inc;
    struct cfw_notification n;
    json_t *o, *blocks, *b;
    size_t i;
    char *sample = cfw_xmalloc(40001);
    char *title = str_repeat('T', 500);
    char *hint = str_repeat('<', 9000);
    bool marker = false;

    (void)state;
    incident(&inc);
    /* entities expand and ``` would close the code block: both must stay within limits */
    for (size_t k = 0; k < 40000; k++) {
        sample[k] = "a<&>`\xc3\xa9"[k % 7];
    }
    sample[40000] = '\0';
    inc.sample = sample;
    inc.title = title;
    inc.hint = hint;
    n = note(&inc, CFW_TRANSITION_OPEN);
    o = build(cfw_sinks_find(set, "slack"), &n);
    blocks = json_object_get(o, "blocks");
    assert_true(json_array_size(blocks) <= CFW_SLACK_BLOCKS_MAX);
    assert_true(strlen(json_str_at(o, "text")) <= CFW_SLACK_TEXT_MAX);
    assert_true(strlen(json_str_at(json_array_get(blocks, 0), "text.text")) <=
                CFW_SLACK_HEADER_MAX);
    json_array_foreach (blocks, i, b) {
        const char *t = json_str_at(b, "text.text");
        if (t != NULL && strcmp(json_str_at(b, "type"), "section") == 0) {
            assert_true(strlen(t) <= CFW_SLACK_SECTION_MAX);
            assert_null(strstr(t, "&am…"));
            if (strstr(t, "(truncated)") != NULL) {
                marker = true;
            }
            /* still valid UTF-8: jansson refused nothing, and the code block is closed */
            if (strncmp(t, "*Sample*", 8) == 0) {
                assert_non_null(strstr(t, "```\xe2\x80\xa6 (truncated)"));
            }
        }
    }
    assert_true(marker);
    json_decref(o);
    free(sample);
    free(title);
    free(hint);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

static void test_slack_digest_and_short(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_incident inc;
    struct cfw_notification n;
    struct cfw_digest_item *items = cfw_xcalloc(500, sizeof(*items));
    json_t *o, *blocks, *b;
    size_t i;
    const char *rem, *res;

    (void)state;
    incident(&inc);
    n = digest(items, 500, &inc, 77, 0);
    o = build(cfw_sinks_find(set, "slack"), &n);
    blocks = json_object_get(o, "blocks");
    assert_true(json_array_size(blocks) <= CFW_SLACK_BLOCKS_MAX);
    assert_non_null(strstr(json_str_at(json_array_get(blocks, 0), "text.text"), "577 cfwatchd"));
    json_array_foreach (blocks, i, b) {
        const char *t = json_str_at(b, "text.text");
        if (t != NULL) {
            assert_true(strlen(t) <= CFW_SLACK_SECTION_MAX);
        }
    }
    assert_non_null(strstr(
        json_str_at(json_array_get(blocks, json_array_size(blocks) - 2), "text.text"), "more"));
    json_decref(o);
    free(items);
    /* reminders and resolves are short and distinct */
    n = note(&inc, CFW_TRANSITION_REMINDER);
    o = build(cfw_sinks_find(set, "slack"), &n);
    rem = json_str_at(o, "text");
    assert_non_null(strstr(rem, "Reminder"));
    assert_true(json_array_size(json_object_get(o, "blocks")) <= 2);
    n = note(&inc, CFW_TRANSITION_RESOLVE);
    {
        json_t *r = build(cfw_sinks_find(set, "slack"), &n);
        res = json_str_at(r, "text");
        assert_non_null(strstr(res, "Resolved"));
        assert_string_not_equal(rem, res);
        json_decref(r);
    }
    json_decref(o);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

/* Every text object of a Slack message, in order: header, sections, fields, context. */
static void slack_texts(json_t *msg, json_t **out, size_t *n, size_t max)
{
    json_t *blocks = json_object_get(msg, "blocks");
    json_t *b, *x;
    size_t i, k;

    *n = 0;
    json_array_foreach (blocks, i, b) {
        if (json_object_get(b, "text") != NULL && *n < max) {
            out[(*n)++] = json_object_get(b, "text");
        }
        json_array_foreach (json_object_get(b, "fields"), k, x) {
            if (*n < max) {
                out[(*n)++] = x;
            }
        }
        json_array_foreach (json_object_get(b, "elements"), k, x) {
            if (*n < max) {
                out[(*n)++] = x;
            }
        }
    }
}

/* Checks one Slack message: log text only in plain_text (or the sample's code block). */
static void assert_slack_literal(json_t *msg, const char *marked)
{
    json_t *texts[64];
    size_t n;
    const char *fallback = json_str_at(msg, "text");

    slack_texts(msg, texts, &n, 64);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        const char *type = json_str_at(texts[i], "type");
        const char *t = json_str_at(texts[i], "text");

        assert_non_null(t);
        if (strcmp(type, "mrkdwn") == 0) {
            /* the mrkdwn texts holding log text: the sample in its code block, and the hint */
            assert_true(strncmp(t, "*Sample*\n```", 12) == 0 || strncmp(t, "*Hint:* ", 8) == 0);
            assert_true(json_is_true(json_object_get(texts[i], "verbatim")));
            assert_null(strstr(t, marked));
        } else {
            assert_string_equal(type, "plain_text");
        }
        /* no raw < or > anywhere: mentions, links and date tokens cannot form */
        assert_null(strchr(t, '<'));
        assert_null(strchr(t, '>'));
        /* an emoji shortcode from the log is broken by a zero-width space */
        assert_null(strstr(t, ":skull:"));
    }
    /* the fallback is mrkdwn: no formatting character from the log is left in it */
    assert_null(strstr(fallback, marked));
    assert_null(strpbrk(fallback, "*~`<>"));
    assert_null(strstr(fallback, ":skull:"));
}

#define ZW "\xe2\x80\x8b" /* zero-width space */

static void test_slack_markup_is_literal(void **state)
{
    static const char marked[] = "*bold* _it_ ~st~ `co`";
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *slack;
    struct cfw_incident inc;
    struct cfw_notification n;
    struct cfw_digest_item item;
    json_t *o;
    char *dump;
    const char *fallback;

    (void)state;
    slack = cfw_sinks_find(set, "slack");
    incident(&inc);
    /* U+FF0A FULLWIDTH ASTERISK is bold too */
    inc.title = (char *)"a *bold* _it_ ~st~ `co` :skull: <!here>\n> quoted \xef\xbc\x8a"
                        "x\xef\xbc\x8a";
    inc.hint = (char *)"see *bold* _it_ ~st~ `co` :skull: <@U024BE7LH>";
    inc.key = (char *)"k/*bold* _it_ ~st~ `co` :skull:";
    cfw_fields_set(&inc.fields, "script", "*bold* _it_ ~st~ `co`");
    cfw_fields_set(&inc.fields, "version", ":skull: &amp; <#C1>");

    n = note(&inc, CFW_TRANSITION_OPEN);
    o = build(slack, &n);
    assert_slack_literal(o, marked);
    dump = json_dumps(json_object_get(o, "blocks"), 0);
    /* the blocks show the log text exactly (entities aside) */
    assert_non_null(strstr(dump, "\"Script: *bold* _it_ ~st~ `co`\""));
    /* the hint is mrkdwn: its `code` span renders, the rest is literal (look-alikes) */
    assert_non_null(strstr(dump,
                           "*Hint:* see \xe2\x88\x97"
                           "bold\xe2\x88\x97 \xcb\x8dit\xcb\x8d "
                           "\xe2\x88\xbcst\xe2\x88\xbc `co` :" ZW "skull: &lt;@U024BE7LH&gt;"));
    ASSERT_HAS_ALL(dump, "Version: :" ZW "skull: &amp;amp; &lt;#C1&gt;",
                   "a *bold* _it_ ~st~ `co` :" ZW "skull: &lt;!here&gt;",
                   "incident k/*bold* _it_ ~st~ `co` :" ZW "skull:");
    /* our own shortcode in the header still renders */
    assert_non_null(strstr(dump, ":red_circle: CRITICAL: "));
    free(dump);
    /* the fallback: look-alikes, a '>' starting a line cannot quote */
    fallback = json_str_at(o, "text");
    ASSERT_HAS_ALL(fallback,
                   "a \xe2\x88\x97"
                   "bold\xe2\x88\x97 \xcb\x8dit\xcb\x8d "
                   "\xe2\x88\xbcst\xe2\x88\xbc \xcb\x8b"
                   "co\xcb\x8b",
                   "\n\xc2\xad&gt; quoted \xef\xb9\xa1x\xef\xb9\xa1");
    assert_null(strchr(fallback, '_'));
    json_decref(o);

    n = note(&inc, CFW_TRANSITION_RESOLVE);
    o = build(slack, &n);
    assert_slack_literal(o, marked);
    assert_string_equal(json_str_at(json_array_get(json_object_get(o, "blocks"), 0), "text.type"),
                        "plain_text");
    json_decref(o);
    n = note(&inc, CFW_TRANSITION_REMINDER);
    o = build(slack, &n);
    assert_slack_literal(o, marked);
    json_decref(o);
    n = digest(&item, 1, &inc, 0, 0);
    o = build(slack, &n);
    assert_slack_literal(o, marked);
    json_decref(o);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

/* The text of the first block of type "section" whose text starts with prefix. */
static const char *section_text(json_t *msg, const char *prefix)
{
    json_t *b;
    size_t i;

    json_array_foreach (json_object_get(msg, "blocks"), i, b) {
        const char *t = json_str_at(b, "text.text");

        if (t != NULL && strncmp(t, prefix, strlen(prefix)) == 0) {
            return t;
        }
    }
    return NULL;
}

/* The hint's mrkdwn text for an incident with that hint. */
static char *slack_hint(struct cfw_sink *slack, const char *hint)
{
    struct cfw_incident inc;
    struct cfw_notification n;
    json_t *o, *b;
    const char *t;
    char *out;
    size_t i;

    incident(&inc);
    inc.hint = (char *)hint;
    n = note(&inc, CFW_TRANSITION_OPEN);
    o = build(slack, &n);
    t = section_text(o, "*Hint:* ");
    assert_non_null(t);
    json_array_foreach (json_object_get(o, "blocks"), i, b) {
        if (json_str_at(b, "text.text") == t) {
            assert_string_equal(json_str_at(b, "text.type"), "mrkdwn");
            assert_true(json_is_true(json_object_get(json_object_get(b, "text"), "verbatim")));
        }
    }
    out = cfw_xstrdup(t);
    json_decref(o);
    cfw_fields_clear(&inc.fields);
    return out;
}

#define LA_STAR "\xe2\x88\x97" /* the look-alikes of the fallback text */
#define LA_UNDER "\xcb\x8d"
#define LA_TICK "\xcb\x8b"

/*
 * The hint is mrkdwn so that `code` shows as code (it was plain_text, where the backticks
 * showed as they are); everything else stays literal, and no ``` fence can open a block.
 */
static void test_slack_hint_mrkdwn(void **state)
{
    static const struct {
        const char *hint;
        const char *want;
    } cases[] = {
        /* code spans render; in them, only & < > become entities */
        {"Change `from src.core import x` to `from core import x`.",
         "*Hint:* Change `from src.core import x` to `from core import x`."},
        {"Run `a && b <c> :skull: *x* _y_`",
         "*Hint:* Run `a &amp;&amp; b &lt;c&gt; :skull: *x* _y_`"},
        /* outside: entities, emoji broken, emphasis of whole words as look-alikes */
        {"see *bold* _it_ & <!here> :skull:",
         "*Hint:* see " LA_STAR "bold" LA_STAR " " LA_UNDER "it" LA_UNDER " &amp; &lt;!here&gt; "
         ":" ZW "skull:"},
        /* inside a word, * _ ~ stay: python_workers copies as it is; __init__ does not */
        {"add python_workers and keep __init__.py",
         "*Hint:* add python_workers and keep " LA_UNDER LA_UNDER "init" LA_UNDER LA_UNDER ".py"},
        /* no code block: a fence, an empty span and a lone backtick are look-alikes */
        {"```rm -rf /```", "*Hint:* " LA_TICK LA_TICK "`rm -rf /`" LA_TICK LA_TICK},
        {"a `` b", "*Hint:* a " LA_TICK LA_TICK " b"},
        {"one ` only", "*Hint:* one " LA_TICK " only"},
        /* a span does not cross a line; a '>' starting a line cannot quote */
        {"x `a\nb` y\n> z", "*Hint:* x " LA_TICK "a\nb" LA_TICK " y\n\xc2\xad&gt; z"},
    };
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *slack = cfw_sinks_find(set, "slack");
    struct cfw_buf long_hint = CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    char *got;
    size_t ticks = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        got = slack_hint(slack, cases[i].hint);
        if (strcmp(got, cases[i].want) != 0) {
            fail_msg("hint %zu: got '%s', want '%s'", i, got, cases[i].want);
        }
        free(got);
    }
    /* cut to the section limit: never inside a span, so the backticks stay paired */
    cfw_buf_puts(&long_hint, "Start.");
    while (long_hint.len < 2 * CFW_SLACK_SECTION_MAX) {
        cfw_buf_puts(&long_hint, " word `some code & more code here`");
    }
    got = slack_hint(slack, long_hint.data);
    assert_true(strlen(got) <= CFW_SLACK_SECTION_MAX);
    assert_non_null(strstr(got, "(truncated)"));
    for (const char *p = got; *p != '\0'; p++) {
        ticks += *p == '`';
    }
    assert_int_equal(ticks % 2, 0);
    /* the last span is whole */
    {
        const char *last = NULL;

        for (const char *p = strstr(got, "`some"); p != NULL; p = strstr(p + 1, "`some")) {
            last = p;
        }
        assert_non_null(last);
        assert_int_equal(strncmp(last, "`some code &amp; more code here`", 32), 0);
    }
    free(got);
    cfw_buf_free(&long_hint);
    cfw_sinks_free(set);
}

/* "1 occurrence", "2 occurrences": resolve and reminder, blocks and fallback. */
static void test_slack_occurrence_singular(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *slack = cfw_sinks_find(set, "slack");
    struct cfw_incident inc;
    struct cfw_notification n;
    json_t *o;
    char *dump;

    (void)state;
    incident(&inc);
    inc.count = 1;
    n = note(&inc, CFW_TRANSITION_RESOLVE);
    o = build(slack, &n);
    assert_non_null(strstr(json_str_at(o, "text"), "(script api, 1 occurrence, open for "));
    dump = json_dumps(json_object_get(o, "blocks"), 0);
    assert_non_null(strstr(dump, "1 occurrence, open for "));
    assert_null(strstr(dump, "occurrences"));
    free(dump);
    json_decref(o);
    n = note(&inc, CFW_TRANSITION_REMINDER);
    o = build(slack, &n);
    assert_non_null(strstr(json_str_at(o, "text"), "(script api, 1 occurrence in "));
    json_decref(o);
    inc.count = 2;
    o = build(slack, &n);
    assert_non_null(strstr(json_str_at(o, "text"), "(script api, 2 occurrences in "));
    json_decref(o);
    inc.count = 0;
    o = build(slack, &n);
    assert_non_null(strstr(json_str_at(o, "text"), "(script api, 0 occurrences in "));
    json_decref(o);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

/*
 * An incident without a script (a deploy log that names none) shows no "Script: -" field and
 * no "(script , rule ...)": the script part is left out wherever it would be.
 */
/* Slack and PagerDuty say where: the input and line, the source, the request and its Ray ID. */
static void test_alerts_say_where(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_incident inc;
    struct cfw_notification n;
    json_t *o;
    char *dump;

    (void)state;
    memset(&inc, 0, sizeof(inc));
    incident(&inc);
    inc.first.input = (char *)"/var/log/ci/deploy.log";
    inc.first.line = 41;
    cfw_fields_set(&inc.fields, "source", "ci");
    cfw_fields_set(&inc.fields, "url", "https://api.example.com/v1/x");
    cfw_fields_set(&inc.fields, "ray", "8f2a1b3c4d5e6f70");
    n = note(&inc, CFW_TRANSITION_OPEN);
    o = build(cfw_sinks_find(set, "slack"), &n);
    dump = json_dumps(o, 0);
    if (strstr(dump, "Where: /var/log/ci/deploy.log:" ZW "41") == NULL ||
        strstr(dump, "Source: ci") == NULL || strstr(dump, "Ray ID: 8f2a1b3c4d5e6f70") == NULL) {
        fail_msg("%s", dump);
    }
    free(dump);
    json_decref(o);
    o = build(cfw_sinks_find(set, "pd"), &n);
    dump = json_dumps(o, 0);
    ASSERT_HAS_ALL(dump, "\"where\": \"/var/log/ci/deploy.log:41\"",
                   "\"ray\": \"8f2a1b3c4d5e6f70\"");
    free(dump);
    json_decref(o);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

static void test_slack_without_script(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *slack = cfw_sinks_find(set, "slack");
    struct cfw_incident inc;
    struct cfw_notification n;
    struct cfw_digest_item item;
    json_t *o;
    char *dump;

    (void)state;
    memset(&inc, 0, sizeof(inc));
    incident(&inc);
    cfw_fields_clear(&inc.fields);
    cfw_fields_set(&inc.fields, "module", "src");
    n = note(&inc, CFW_TRANSITION_OPEN);
    o = build(slack, &n);
    dump = json_dumps(o, 0);
    assert_null(strstr(dump, "Script"));
    assert_null(strstr(dump, "script"));
    assert_non_null(strstr(dump, "Rule: py-src-import"));
    free(dump);
    assert_non_null(
        strstr(json_str_at(o, "text"), "Python Worker api imports src (rule py-src-import)"));
    json_decref(o);

    n = note(&inc, CFW_TRANSITION_RESOLVE);
    o = build(slack, &n);
    assert_non_null(strstr(json_str_at(o, "text"), "imports src (12 occurrences, open for "));
    assert_non_null(
        strstr(json_str_at(json_array_get(json_object_get(o, "blocks"), 0), "text.text"),
               "imports src (12 occurrences, open for "));
    json_decref(o);
    n = note(&inc, CFW_TRANSITION_REMINDER);
    o = build(slack, &n);
    assert_non_null(strstr(json_str_at(o, "text"), "is still happening (12 occurrences in "));
    json_decref(o);

    n = digest(&item, 1, &inc, 0, 0);
    o = build(slack, &n);
    dump = json_dumps(o, 0);
    assert_null(strstr(dump, "script"));
    assert_non_null(strstr(dump, "] Python Worker api imports src\""));
    free(dump);
    json_decref(o);
    /* with a script, the digest line names it */
    cfw_fields_set(&item.inc.fields, "script", "api");
    o = build(slack, &n);
    dump = json_dumps(o, 0);
    assert_non_null(strstr(dump, "] Python Worker api imports src (script api)\""));
    free(dump);
    json_decref(o);
    cfw_fields_clear(&item.inc.fields);
    cfw_sinks_free(set);
}

/* The "open for" of a resolve message, from its fallback text. */
static void open_for(struct cfw_sink *slack, const struct cfw_incident *inc, enum cfw_transition t,
                     const char *want)
{
    struct cfw_notification n = note(inc, t);
    json_t *o = build(slack, &n);
    const char *text = json_str_at(o, "text");

    if (strstr(text, want) == NULL) {
        fail_msg("%s not in %s", want, text);
    }
    json_decref(o);
}

static void test_slack_duration_uses_stamps(void **state)
{
    static const char id[] = "0f6c3d53-8c4e-4d4e-9d64-3c3e0b0e2a11";
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *slack = cfw_sinks_find(set, "slack");
    struct cfw_incident inc;

    (void)state;
    incident(&inc);
    /* no stamps (an incident from an older state file): the wall-clock times */
    inc.state = CFW_INCIDENT_RESOLVED;
    inc.resolved_wall_ms = inc.opened_wall_ms + 300000;
    open_for(slack, &inc, CFW_TRANSITION_RESOLVE, "open for 5m0s)");
    /* stamps within one boot: the boot clock, whatever the wall clock did in between */
    inc.opened_at.wall_ms = inc.opened_wall_ms;
    inc.opened_at.boot_ms = 5000;
    memcpy(inc.opened_at.boot_id, id, sizeof(id));
    inc.resolved_at = inc.opened_at;
    inc.resolved_at.boot_ms = 13000;
    inc.resolved_at.wall_ms = inc.resolved_wall_ms = inc.opened_wall_ms - 3600 * 1000 + 8000;
    open_for(slack, &inc, CFW_TRANSITION_RESOLVE, "open for 8s)");
    /* across a reboot: the wall clock again, never negative */
    inc.resolved_at.boot_id[0] = '1';
    open_for(slack, &inc, CFW_TRANSITION_RESOLVE, "open for 0s)");
    inc.resolved_at.wall_ms = inc.resolved_wall_ms = inc.opened_wall_ms + 90000;
    open_for(slack, &inc, CFW_TRANSITION_RESOLVE, "open for 1m30s)");
    /* a reminder measures up to now: opened 65 s ago on this boot's clock, wall clock behind */
    if (cfw_boot_id()[0] != '\0') {
        memset(&inc.resolved_at, 0, sizeof(inc.resolved_at));
        inc.resolved_wall_ms = 0;
        inc.state = CFW_INCIDENT_OPEN;
        cfw_stamp_now(&inc.opened_at);
        inc.opened_at.boot_ms -= 65000;
        inc.opened_at.wall_ms = inc.opened_wall_ms = 1700000100000 + 3600 * 1000;
        open_for(slack, &inc, CFW_TRANSITION_REMINDER, "occurrences in 1m");
    }
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

static void test_pagerduty(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *pd = cfw_sinks_find(set, "pd");
    struct cfw_incident inc;
    struct cfw_notification n;
    json_t *o, *sent;
    char *body;
    size_t len;
    struct cfw_sink_request rq;
    struct cfw_err err = {0};
    char k1[CFW_PD_DEDUP_MAX + 1], k2[CFW_PD_DEDUP_MAX + 1];
    char *longkey = str_repeat('k', 1000);
    char *longtitle = str_repeat('x', 3000);

    (void)state;
    incident(&inc);
    inc.title = longtitle;
    n = note(&inc, CFW_TRANSITION_OPEN);
    body = cfw_sink_build(pd, &n, &len);
    /* the spooled body never holds the routing key */
    assert_null(strstr(body, PD_KEY));
    o = json_loadb(body, len, 0, NULL);
    ASSERT_JSON_STRS(o, {"event_action", "trigger"},
                     {"dedup_key", "cfwatchd:py-src-import/api/src"});
    assert_true(strlen(json_str_at(o, "payload.summary")) <= CFW_PD_SUMMARY_MAX);
    ASSERT_JSON_STRS(o, {"payload.severity", "critical"}, {"payload.source", "ops-host-1"},
                     {"payload.component", "api"}, {"payload.class", "py-src-import"},
                     {"payload.custom_details.hint", inc.hint},
                     {"payload.custom_details.fields.module", "src"}, {"client", "cfwatchd"},
                     {"client_url", "https://ops.example/cfwatchd"});
    json_decref(o);
    assert_int_equal(cfw_sink_prepare(pd, 0, body, len, 0, &rq, &err), 0);
    assert_string_equal(rq.url, CFW_PD_URL_US);
    sent = json_loadb(rq.body, rq.body_len, 0, NULL);
    assert_string_equal(json_str_at(sent, "routing_key"), PD_KEY);
    json_decref(sent);
    cfw_sink_request_clear(&rq);
    free(body);
    /* resolve: same dedup_key */
    n = note(&inc, CFW_TRANSITION_RESOLVE);
    o = build(pd, &n);
    ASSERT_JSON_STRS(o, {"event_action", "resolve"},
                     {"dedup_key", "cfwatchd:py-src-import/api/src"});
    json_decref(o);
    /* stable and capped for long keys */
    cfw_sink_dedup_key(longkey, k1, sizeof(k1));
    cfw_sink_dedup_key(longkey, k2, sizeof(k2));
    assert_string_equal(k1, k2);
    assert_true(strlen(k1) <= CFW_PD_DEDUP_MAX);
    assert_non_null(strstr(k1, "sha256:"));
    free(longkey);
    free(longtitle);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

/* The request PagerDuty gets is its event with the routing key as the last member. */
static void test_pagerduty_request(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *pd = cfw_sinks_find(set, "pd");
    struct cfw_incident inc;
    struct cfw_notification n;
    struct cfw_sink_request rq;
    struct cfw_err err = {0};
    static const char *const not_objects[] = {"", "  ", "{", "}", "[1]", "\"{}\"", "{} x", "x{}"};
    json_t *o;
    char *body;
    char *want;
    size_t len;

    (void)state;
    incident(&inc);
    inc.title = (char *)"Module \"src\" not found\n\ttab \x01 \xc3\xa9";
    n = note(&inc, CFW_TRANSITION_OPEN);
    body = cfw_sink_build(pd, &n, &len);
    /* the same bytes as setting the key on the parsed event */
    o = json_loadb(body, len, 0, NULL);
    json_object_set_new(o, "routing_key", json_string(PD_KEY));
    want = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    assert_int_equal(cfw_sink_prepare(pd, 0, body, len, 0, &rq, &err), 0);
    assert_int_equal(rq.body_len, strlen(want));
    assert_memory_equal(rq.body, want, rq.body_len);
    cfw_sink_request_clear(&rq);
    free(want);
    free(body);
    /* surrounding whitespace goes; an empty object gets the key alone */
    assert_int_equal(cfw_sink_prepare(pd, 0, " \n{ \t}\r\n", 8, 0, &rq, &err), 0);
    assert_int_equal(rq.body_len, strlen("{\"routing_key\":\"" PD_KEY "\"}"));
    assert_memory_equal(rq.body, "{\"routing_key\":\"" PD_KEY "\"}", rq.body_len);
    cfw_sink_request_clear(&rq);
    /* a spooled body that is not an object is refused, and the error holds no key */
    for (size_t i = 0; i < sizeof(not_objects) / sizeof(not_objects[0]); i++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(
            cfw_sink_prepare(pd, 0, not_objects[i], strlen(not_objects[i]), 0, &rq, &err), -1);
        assert_string_equal(err.msg, "spooled PagerDuty event is not a JSON object");
    }
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

/* PagerDuty's custom_details of a built body. */
static json_t *pd_details(json_t *o)
{
    return json_object_get(json_object_get(o, "payload"), "custom_details");
}

/* A digest of long titles stays under PagerDuty's body limit: the rest of it is counted. */
static void test_pagerduty_digest_within_body_limit(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *pd = cfw_sinks_find(set, "pd");
    struct cfw_incident inc;
    struct cfw_notification n = {0};
    struct cfw_digest_item *items = cfw_xcalloc(CFW_ROUTER_DIGEST_MAX, sizeof(*items));
    char *title = str_repeat('t', 2000);
    struct cfw_sink_request rq;
    struct cfw_err err = {0};
    json_t *o, *listed;
    char *body;
    size_t len;

    (void)state;
    incident(&inc);
    inc.title = title;
    /* 500 items of 2 KB: twice the limit */
    n = digest(items, CFW_ROUTER_DIGEST_MAX, &inc, 12, 1700000100000);
    body = cfw_sink_build(pd, &n, &len);
    assert_true(len <= CFW_PD_BODY_MAX - 1024);
    o = json_loadb(body, len, 0, NULL);
    assert_non_null(o);
    listed = json_object_get(pd_details(o), "items");
    assert_true(json_array_size(listed) > 200 && json_array_size(listed) < 250);
    assert_int_equal(json_array_size(listed) +
                         (size_t)json_integer_value(json_object_get(pd_details(o), "unlisted")),
                     CFW_ROUTER_DIGEST_MAX);
    assert_string_equal(json_str_at(json_array_get(listed, 0), "title"), title);
    assert_non_null(strstr(json_str_at(o, "payload.summary"), "512 cfwatchd notifications"));
    json_decref(o);
    /* and so is the request, with the routing key added */
    assert_int_equal(cfw_sink_prepare(pd, 0, body, len, 0, &rq, &err), 0);
    assert_true(rq.body_len <= CFW_PD_BODY_MAX);
    cfw_sink_request_clear(&rq);
    free(body);
    /* a digest that fits lists every item */
    n.n_items = 20;
    o = build(pd, &n);
    assert_int_equal(json_array_size(json_object_get(pd_details(o), "items")), 20);
    assert_int_equal(json_integer_value(json_object_get(pd_details(o), "unlisted")), 0);
    json_decref(o);
    free(items);
    free(title);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

/* A trigger over PagerDuty's body limit drops its sample and fields, and says so. */
static void test_pagerduty_trigger_drops_details_over_limit(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *pd = cfw_sinks_find(set, "pd");
    struct cfw_incident inc;
    struct cfw_notification n;
    char *value = str_repeat('v', 6000);
    json_t *o, *cd;
    char *body;
    size_t len;

    (void)state;
    incident(&inc);
    for (int i = 0; i < 100; i++) { /* 600 KB of fields (more than the pipeline makes) */
        char key[16];
        snprintf(key, sizeof(key), "f%d", i);
        cfw_fields_set(&inc.fields, key, value);
    }
    n = note(&inc, CFW_TRANSITION_OPEN);
    body = cfw_sink_build(pd, &n, &len);
    assert_true(len <= CFW_PD_BODY_MAX - 1024);
    o = json_loadb(body, len, 0, NULL);
    assert_non_null(o);
    cd = pd_details(o);
    assert_true(json_is_true(json_object_get(cd, "truncated")));
    assert_int_equal(json_object_size(json_object_get(cd, "fields")), 0);
    ASSERT_JSON_STRS(cd, {"sample", "(dropped: over the PagerDuty size limit)"},
                     {"incident_key", "py-src-import/api/src"});
    assert_string_equal(json_str_at(o, "payload.component"), "api");
    json_decref(o);
    free(body);
    /* within the limit: nothing dropped */
    cfw_fields_clear(&inc.fields);
    incident(&inc);
    o = build(pd, &n);
    assert_null(json_object_get(pd_details(o), "truncated"));
    assert_string_equal(json_str_at(pd_details(o), "sample"), inc.sample);
    json_decref(o);
    free(value);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

/* A webhook digest lists its items within max_body (1 MiB by default) and counts the rest. */
static void test_webhook_digest_within_max_body(void **state)
{
    struct cfw_diag d = {0};
    struct cfw_sinks *set = all_sinks();
    struct cfw_sinks *small = parse("sinks:\n"
                                    "  - {name: hook, type: webhook, url: 'http://127.0.0.1:1/h', "
                                    "max_body: 65536}\n",
                                    &d);
    struct cfw_sink *hooks[2] = {cfw_sinks_find(set, "hook"), cfw_sinks_at(small, 0)};
    const size_t max[2] = {CFW_WEBHOOK_BODY_DEFAULT, 65536};
    const size_t want[2][2] = {{200, 260}, {10, 16}}; /* items listed, at least and at most */
    struct cfw_incident inc;
    struct cfw_notification n = {0};
    struct cfw_digest_item *items = cfw_xcalloc(CFW_ROUTER_DIGEST_MAX, sizeof(*items));
    char *sample = str_repeat('s', CFW_INCIDENT_SAMPLE_MAX);

    (void)state;
    assert_non_null(small);
    incident(&inc);
    inc.sample = sample;
    /* 500 incidents of 4 KiB samples: about 2.3 MB */
    n = digest(items, CFW_ROUTER_DIGEST_MAX, &inc, 7, 1700000100000);
    for (size_t k = 0; k < CFW_ROUTER_DIGEST_MAX; k++) {
        items[k].wall_ms = 1700000000000 + (int64_t)k;
    }
    for (size_t h = 0; h < 2; h++) {
        size_t len;
        char *body = cfw_sink_build(hooks[h], &n, &len);
        json_t *o = json_loadb(body, len, 0, NULL);
        json_t *listed = json_object_get(o, "items");

        assert_non_null(o);
        assert_true(len <= max[h]);
        assert_true(json_array_size(listed) >= want[h][0] && json_array_size(listed) <= want[h][1]);
        assert_int_equal(json_array_size(listed) +
                             (size_t)json_integer_value(json_object_get(o, "unlisted")),
                         CFW_ROUTER_DIGEST_MAX);
        assert_int_equal(json_integer_value(json_object_get(o, "omitted")), 7);
        /* the items listed are the first ones, whole */
        assert_string_equal(json_str_at(json_array_get(listed, 0), "incident.sample"), sample);
        assert_string_equal(json_str_at(json_array_get(listed, 1), "time"),
                            "2023-11-14T22:13:20.001Z");
        json_decref(o);
        free(body);
    }
    /* a digest that fits lists every item */
    n.n_items = 3;
    {
        json_t *o = build(hooks[1], &n);
        assert_int_equal(json_array_size(json_object_get(o, "items")), 3);
        assert_int_equal(json_integer_value(json_object_get(o, "unlisted")), 0);
        json_decref(o);
    }
    free(items);
    free(sample);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(small);
    cfw_sinks_free(set);
    cfw_diag_free(&d);
}

static void test_webhook_signature(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *wh = cfw_sinks_find(set, "hook");
    struct cfw_incident inc;
    struct cfw_notification n;
    json_t *o;
    char *body;
    size_t len;
    struct cfw_sink_request rq;
    struct cfw_err err = {0};
    const char *ts = NULL, *sig = NULL, *auth = NULL;
    struct cfw_hmac_sha256 h;
    uint8_t tag[CFW_SHA256_LEN];
    char hex[CFW_SHA256_HEX_LEN];

    (void)state;
    incident(&inc);
    n = note(&inc, CFW_TRANSITION_OPEN);
    body = cfw_sink_build(wh, &n, &len);
    assert_null(strstr(body, WH_SECRET));
    o = json_loadb(body, len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(o, "version")), 1);
    ASSERT_JSON_STRS(o, {"event", "open"}, {"incident.key", inc.key}, {"incident.hint", inc.hint},
                     {"incident.sample", inc.sample}, {"incident.fields.script", "api"},
                     {"incident.first_seen", "2023-11-14T22:13:20.000Z"},
                     {"source.host", "ops-host-1"});
    assert_int_equal(strlen(json_str_at(o, "id")), 32);
    json_decref(o);
    assert_int_equal(cfw_sink_prepare(wh, 0, body, len, 1700000123456, &rq, &err), 0);
    for (size_t i = 0; rq.headers[i] != NULL; i++) {
        if (strncmp(rq.headers[i], CFW_WEBHOOK_TS_HEADER ": ", strlen(CFW_WEBHOOK_TS_HEADER) + 2) ==
            0) {
            ts = rq.headers[i] + strlen(CFW_WEBHOOK_TS_HEADER) + 2;
        }
        if (strncmp(rq.headers[i],
                    CFW_WEBHOOK_SIG_HEADER ": v1=", strlen(CFW_WEBHOOK_SIG_HEADER) + 5) == 0) {
            sig = rq.headers[i] + strlen(CFW_WEBHOOK_SIG_HEADER) + 5;
        }
        if (strncmp(rq.headers[i], "Authorization: ", 15) == 0) {
            auth = rq.headers[i] + 15;
        }
    }
    assert_string_equal(ts, "1700000123");
    assert_string_equal(auth, "Bearer tokentoken");
    /* recompute as a receiver would: HMAC-SHA256(secret, ts + "." + body) */
    cfw_hmac_sha256_init(&h, WH_SECRET, strlen(WH_SECRET));
    cfw_hmac_sha256_update(&h, "1700000123.", 11);
    cfw_hmac_sha256_update(&h, rq.body, rq.body_len);
    cfw_hmac_sha256_final(&h, tag);
    cfw_hex_encode(tag, sizeof(tag), hex);
    assert_string_equal(sig, hex);
    assert_memory_equal(rq.body, body, len);
    cfw_sink_request_clear(&rq);
    free(body);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

static void test_alertmanager(void **state)
{
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink *am = cfw_sinks_find(set, "am");
    struct cfw_incident inc;
    struct cfw_notification n;
    json_t *arr, *a;
    char *body, *refresh;
    size_t len;
    struct cfw_sink_request rq;
    struct cfw_err err = {0};

    (void)state;
    incident(&inc);
    n = note(&inc, CFW_TRANSITION_OPEN);
    cfw_sink_observe(am, &inc, CFW_TRANSITION_OPEN);
    body = cfw_sink_build(am, &n, &len);
    arr = json_loadb(body, len, 0, NULL);
    a = json_array_get(arr, 0);
    ASSERT_JSON_STRS(a, {"labels.alertname", "py-src-import"}, {"labels.script", "api"},
                     {"labels.severity", "critical"}, {"labels.module", "src"},
                     {"labels.team", "ops"}, {"annotations.summary", inc.title});
    assert_non_null(strstr(json_str_at(a, "annotations.description"), inc.hint));
    ASSERT_JSON_STRS(a, {"annotations.runbook_url", "https://runbooks/x"},
                     {"startsAt", "2023-11-14T22:13:20.000Z"});
    assert_null(json_object_get(a, "endsAt"));
    json_decref(arr);
    /* endsAt is set at send time: now + 4 re-send intervals */
    assert_int_equal(cfw_sink_prepare(am, 0, body, len, 1700000000000, &rq, &err), 0);
    assert_string_equal(rq.url, "http://127.0.0.1:9093/api/v2/alerts");
    arr = json_loadb(rq.body, rq.body_len, 0, NULL);
    assert_string_equal(json_str_at(json_array_get(arr, 0), "endsAt"), "2023-11-14T22:17:20.000Z");
    json_decref(arr);
    cfw_sink_request_clear(&rq);
    free(body);
    refresh = cfw_sink_refresh_body(am, &len);
    assert_non_null(refresh);
    assert_non_null(strstr(refresh, "py-src-import"));
    free(refresh);
    /* resolve: endsAt is the resolve time and the alert leaves the re-send set */
    inc.resolved_wall_ms = 1700000300000;
    n = note(&inc, CFW_TRANSITION_RESOLVE);
    cfw_sink_observe(am, &inc, CFW_TRANSITION_RESOLVE);
    arr = build(am, &n);
    assert_string_equal(json_str_at(json_array_get(arr, 0), "endsAt"), "2023-11-14T22:18:20.000Z");
    json_decref(arr);
    assert_null(cfw_sink_refresh_body(am, &len));
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

/*
 * Two cfwatchd hosts with the same configuration send the same incident as one alert: the
 * labels carry nothing of the sender (its host is an annotation), and ends_after sets how long
 * Alertmanager keeps an alert no instance sends again.
 */
static void test_alertmanager_across_instances(void **state)
{
    static const char *const yaml = "sinks:\n"
                                    "  - name: am\n"
                                    "    type: alertmanager\n"
                                    "    urls: ['http://127.0.0.1:9093']\n"
                                    "    resend_interval: 10s\n"
                                    "    ends_after: 45s\n";
    struct cfw_diag d = {0};
    struct cfw_sinks *one = parse(yaml, &d);
    struct cfw_sinks *two;
    struct cfw_incident inc;
    struct cfw_notification n;
    struct cfw_sink_request rq;
    struct cfw_err err = {0};
    json_t *a1, *a2;
    char *body;
    size_t len;

    (void)state;
    assert_non_null(one);
    two = parse(yaml, &d);
    assert_non_null(two);
    cfw_sinks_set_context(one, "host-a", NULL);
    cfw_sinks_set_context(two, "host-b", NULL);
    incident(&inc);
    n = note(&inc, CFW_TRANSITION_OPEN);
    a1 = build(cfw_sinks_find(one, "am"), &n);
    a2 = build(cfw_sinks_find(two, "am"), &n);
    assert_true(json_equal(json_object_get(json_array_get(a1, 0), "labels"),
                           json_object_get(json_array_get(a2, 0), "labels")));
    assert_string_equal(json_str_at(json_array_get(a1, 0), "annotations.cfwatchd_host"), "host-a");
    assert_string_equal(json_str_at(json_array_get(a2, 0), "annotations.cfwatchd_host"), "host-b");
    json_decref(a1);
    json_decref(a2);
    /* endsAt = send time + ends_after */
    body = cfw_sink_build(cfw_sinks_find(one, "am"), &n, &len);
    assert_int_equal(
        cfw_sink_prepare(cfw_sinks_find(one, "am"), 0, body, len, 1700000000000, &rq, &err), 0);
    a1 = json_loadb(rq.body, rq.body_len, 0, NULL);
    assert_string_equal(json_str_at(json_array_get(a1, 0), "endsAt"), "2023-11-14T22:14:05.000Z");
    json_decref(a1);
    cfw_sink_request_clear(&rq);
    free(body);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(one);
    cfw_sinks_free(two);
    /* an alert must outlive the next re-send with one to spare */
    assert_null(parse("sinks:\n"
                      "  - {name: am, type: alertmanager, urls: ['http://a:9093'],"
                      "     resend_interval: 10s, ends_after: 15s}\n",
                      &d));
    assert_true(diag_has(&d, "ends_after must be at least twice resend_interval (20000 ms)"));
    cfw_diag_free(&d);
}

static void answer(struct cfw_sink *s, long status, const char *body, int64_t retry_after,
                   struct cfw_sink_verdict *v)
{
    struct cfw_http_response r;

    memset(&r, 0, sizeof(r));
    r.status = status;
    r.body = body;
    r.body_len = strlen(body);
    r.retry_after_ms = retry_after;
    r.error = status == 0 ? "Failed to connect to hooks.slack.com port 443" : "";
    r.content_type = "";
    cfw_sink_classify(s, &r, v);
}

static void test_classify(void **state)
{
    enum { ANY = -2 }; /* a verdict or retry_after_ms not checked */
    static const struct {
        const char *sink;
        long status;
        const char *body;
        int64_t retry_after;
        int verdict;
        int64_t want_retry_after; /* ANY, or at least this when min_retry_after */
        bool min_retry_after;
        const char *reason;       /* the whole reason, or NULL */
        const char *reason_has;   /* in the reason, or NULL */
        const char *reason_lacks; /* not in the reason, or NULL */
    } cases[] = {
        {"slack", 200, "ok", -1, CFW_OUTBOX_DONE, ANY, false, NULL, NULL, NULL},
        {"slack", 400, "invalid_payload", -1, CFW_OUTBOX_PERMANENT, ANY, false,
         "HTTP 400: invalid_payload", NULL, NULL},
        {"slack", 404, "channel_not_found", -1, CFW_OUTBOX_PERMANENT, ANY, false, NULL, NULL, NULL},
        {"slack", 429, "{\"ok\":false,\"error\":\"rate_limited\"}", 2000, CFW_OUTBOX_RETRY, 2000,
         false, NULL, NULL, NULL},
        {"slack", 500, "rollup_error", -1, CFW_OUTBOX_RETRY, ANY, false, NULL, NULL, NULL},
        {"slack", 0, "", -1, CFW_OUTBOX_RETRY, ANY, false, NULL, "transport", NULL},
        /* Discord-style JSON retry_after in float seconds */
        {"hook", 429, "{\"message\":\"You are being rate limited.\",\"retry_after\":1.25}", -1,
         CFW_OUTBOX_RETRY, 1250, false, NULL, NULL, NULL},
        {"hook", 204, "", -1, CFW_OUTBOX_DONE, ANY, false, NULL, NULL, NULL},
        {"pd", 202, "{\"status\":\"success\"}", -1, CFW_OUTBOX_DONE, ANY, false, NULL, NULL, NULL},
        {"pd", 400, "{\"status\":\"invalid event\",\"message\":\"Event object is invalid\"}", -1,
         CFW_OUTBOX_PERMANENT, ANY, false, NULL, NULL, NULL},
        {"pd", 429, "", -1, CFW_OUTBOX_RETRY, 30000, true, NULL, NULL, NULL},
        /* a receiver echoing the secret back does not put it into our reasons */
        {"pd", 400, "bad key " PD_KEY, -1, ANY, ANY, false, NULL, "bad key ***", PD_KEY},
        {"slack", 403, "no " SLACK_URL " here", -1, ANY, ANY, false, NULL, NULL,
         "XyZsecretTOKEN123"},
    };
    struct cfw_sinks *set = all_sinks();
    struct cfw_sink_verdict v;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        answer(cfw_sinks_find(set, cases[i].sink), cases[i].status, cases[i].body,
               cases[i].retry_after, &v);
        if (cases[i].verdict != ANY) {
            assert_int_equal(v.verdict, cases[i].verdict);
        }
        if (cases[i].min_retry_after) {
            assert_true(v.retry_after_ms >= cases[i].want_retry_after);
        } else if (cases[i].want_retry_after != ANY) {
            assert_int_equal(v.retry_after_ms, cases[i].want_retry_after);
        }
        if (cases[i].reason != NULL) {
            assert_string_equal(v.reason, cases[i].reason);
        }
        if (cases[i].reason_lacks != NULL) {
            assert_null(strstr(v.reason, cases[i].reason_lacks));
        }
        if (cases[i].reason_has != NULL) {
            assert_non_null(strstr(v.reason, cases[i].reason_has));
        }
    }
    cfw_sinks_free(set);
}

static void test_scrub(void **state)
{
    struct cfw_sinks *set = all_sinks();
    char *s;

    (void)state;
    s = cfw_sink_scrub(cfw_sinks_find(set, "slack"),
                       "posting to " SLACK_URL " failed; token XyZsecretTOKEN123");
    assert_string_equal(s, "posting to *** failed; token ***");
    free(s);
    s = cfw_sink_scrub(cfw_sinks_find(set, "hook"), "sig with " WH_SECRET " and tokentoken");
    assert_string_equal(s, "sig with *** and ***");
    free(s);
    cfw_sinks_free(set);
}

static void test_stdout(void **state)
{
    struct cfw_diag d = {0};
    struct cfw_sinks *set = parse("sinks:\n  - {name: t, type: stdout}\n"
                                  "  - {name: j, type: stdout, format: json}\n",
                                  &d);
    struct cfw_incident inc;
    struct cfw_notification n;
    FILE *fp = tmpfile();
    char buf[4096];
    size_t got;
    json_t *o;
    char *nl;

    (void)state;
    assert_non_null(set);
    incident(&inc);
    n = note(&inc, CFW_TRANSITION_OPEN);
    cfw_sink_write(cfw_sinks_find(set, "t"), &n, fp);
    cfw_sink_write(cfw_sinks_find(set, "j"), &n, fp);
    rewind(fp);
    got = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[got] = '\0';
    fclose(fp);
    assert_non_null(strstr(buf,
                           "cfwatchd: open [critical] Python Worker api imports src "
                           "(rule=py-src-import script=api count=12 key=py-src-import/api/src)\n"));
    nl = strchr(buf, '\n');
    o = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(o);
    ASSERT_JSON_STRS(o, {"event", "open"}, {"incident.rule", "py-src-import"});
    json_decref(o);
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
    cfw_diag_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_all_types),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_url_redact),
        cmocka_unit_test(test_slack_open),
        cmocka_unit_test(test_slack_limits),
        cmocka_unit_test(test_slack_digest_and_short),
        cmocka_unit_test(test_slack_markup_is_literal),
        cmocka_unit_test(test_slack_duration_uses_stamps),
        cmocka_unit_test(test_slack_hint_mrkdwn),
        cmocka_unit_test(test_slack_occurrence_singular),
        cmocka_unit_test(test_slack_without_script),
        cmocka_unit_test(test_alerts_say_where),
        cmocka_unit_test(test_pagerduty),
        cmocka_unit_test(test_pagerduty_request),
        cmocka_unit_test(test_pagerduty_digest_within_body_limit),
        cmocka_unit_test(test_pagerduty_trigger_drops_details_over_limit),
        cmocka_unit_test(test_webhook_digest_within_max_body),
        cmocka_unit_test(test_webhook_signature),
        cmocka_unit_test(test_alertmanager),
        cmocka_unit_test(test_alertmanager_across_instances),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_stdout),
    };

    return cmocka_run_group_tests(tests, NULL, teardown_doc);
}
