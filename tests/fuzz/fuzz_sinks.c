/*
 * Fuzz target: every sink's payload builder (slack, pagerduty, webhook, alertmanager) and the
 * stdout writer (json and text), fed an incident whose key, rule, pack, title, hint, sample and
 * fields come from the fuzzer (NUL-separated parts after three bytes that pick the severity, the
 * notification kind and transition, the digest size and the counts). By default the parts are
 * first made what the pipeline can hand a sink: well-formed UTF-8 (decoder, template renderer),
 * field values without control characters (decoder, matcher), rule ids in [a-z0-9._-] (rules
 * loader); with mode bit 7 the raw bytes go in and only "no crash, and JSON when anything is
 * built" is required.
 * Checked, per receiver (abort() on a violation):
 *   - every payload is valid JSON, and so is the request cfw_sink_prepare makes of it;
 *   - Slack: at most 50 blocks, a section's text at most 3000 characters, at most 10 fields of
 *     at most 2000, a header at most 150, no empty text; no '<' or '>' in any text object (no
 *     mentions, links or date tokens injected from log text); log text reaches mrkdwn only in
 *     the sample's code block (verbatim, opened and closed exactly once) and in the hint
 *     (verbatim, no ``` fence, its `code` spans all closed): every other text object is
 *     plain_text; the top-level text (mrkdwn) holds no formatting character but the
 *     underscores of our own :white_check_mark:;
 *   - PagerDuty, on the request cfw_sink_prepare makes of the event (the event with the routing
 *     key spliced in as its last member): JSON with our routing key, summary at most 1024
 *     characters, dedup_key at most 255, body (routing key included) under 512000 bytes;
 *   - webhook: a digest within max_body (4096 here), its items listed or counted in unlisted;
 *   - Alertmanager: a list of alerts with labels and annotations, and a refresh body that is JSON;
 *   - stdout: JSON lines that parse, text lines one per notification.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cfwatchd/log.h"
#include "cfwatchd/sink.h"
#include "cfwatchd/yaml.h"
#include "fuzz_util.h"

/* Slack counts characters; PagerDuty's limits are documented in characters too. */
#define SLACK_FIELDS_MAX 10u
/* The webhook's max_body below: the smallest allowed, so that small digests reach it. */
#define WEBHOOK_MAX_BODY 4096u
#define PD_ROUTING_KEY "0123456789abcdef0123456789abcdef"

static const char SINKS_YAML[] =
    "sinks:\n"
    "  - {name: slack, type: slack, url: 'https://hooks.slack.com/services/T000/B000/XXXX'}\n"
    "  - {name: pd, type: pagerduty, routing_key: " PD_ROUTING_KEY ","
    " client_url: 'https://ops.example/cfwatchd'}\n"
    "  - {name: hook, type: webhook, url: 'http://127.0.0.1:1/hook', secret: s3cr3t-s3cr3t,"
    " headers: {X-Team: ops}, max_body: 4096}\n"
    "  - {name: am, type: alertmanager, urls: ['http://127.0.0.1:9093'], labels: {team: ops},"
    " runbook_url: 'https://runbooks/x'}\n"
    "  - {name: out-json, type: stdout, format: json}\n"
    "  - {name: out-text, type: stdout}\n";

static struct cfw_sinks *sinks;

static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *parse_checked(const char *body, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb(body, len, 0, &jerr);

    if (j == NULL) {
        fprintf(stderr, "payload is not JSON: %s\n", jerr.text);
    }
    FUZZ_CHECK(j != NULL);
    return j;
}

static void check_text(const json_t *textobj, size_t max)
{
    const char *t = jstr(textobj, "text");
    const char *type = jstr(textobj, "type");

    FUZZ_CHECK(t != NULL && type != NULL);
    FUZZ_CHECK(t[0] != '\0' && fuzz_utf8_chars(t) <= max);
    FUZZ_CHECK(strchr(t, '<') == NULL && strchr(t, '>') == NULL);
    if (strcmp(type, "mrkdwn") == 0 && strncmp(t, "*Hint:* ", 8) == 0) {
        size_t ticks = 0;

        /* the hint: code spans only, each closed (a cut never falls inside one) */
        FUZZ_CHECK(json_is_true(json_object_get(textobj, "verbatim")));
        FUZZ_CHECK(strstr(t, "```") == NULL);
        for (const char *p = strchr(t, '`'); p != NULL; p = strchr(p + 1, '`')) {
            ticks++;
        }
        FUZZ_CHECK(ticks % 2 == 0);
    } else if (strcmp(type, "mrkdwn") == 0) {
        size_t fences = 0;

        FUZZ_CHECK(strncmp(t, "*Sample*\n```", 12) == 0);
        FUZZ_CHECK(json_is_true(json_object_get(textobj, "verbatim")));
        for (const char *p = strstr(t, "```"); p != NULL; p = strstr(p + 3, "```")) {
            fences++;
        }
        FUZZ_CHECK(fences == 2 || fuzz_known("slack-code-fence"));
    } else {
        FUZZ_CHECK(strcmp(type, "plain_text") == 0);
    }
}

/* The top-level text is read as mrkdwn: no formatting character but in our own shortcode. */
static void check_fallback(const char *text)
{
    static const char ours[] = ":white_check_mark:";
    const char *p = text;

    FUZZ_CHECK(strpbrk(text, "*~`<>") == NULL);
    while ((p = strchr(p, '_')) != NULL) {
        const char *start = strstr(text, ours);
        bool in_ours = false;

        for (; start != NULL && start <= p; start = strstr(start + 1, ours)) {
            if (p < start + sizeof(ours) - 1) {
                in_ours = true;
            }
        }
        FUZZ_CHECK(in_ours);
        p++;
    }
}

static void check_slack(const json_t *j)
{
    const json_t *blocks = json_object_get(j, "blocks");
    const char *text = jstr(j, "text");
    size_t i;
    const json_t *b;

    FUZZ_CHECK(text != NULL && fuzz_utf8_chars(text) <= 40000);
    check_fallback(text);
    FUZZ_CHECK(json_is_array(blocks));
    FUZZ_CHECK(json_array_size(blocks) <= CFW_SLACK_BLOCKS_MAX);
    json_array_foreach (blocks, i, b) {
        const char *type = jstr(b, "type");

        FUZZ_CHECK(type != NULL);
        if (strcmp(type, "header") == 0) {
            check_text(json_object_get(b, "text"), CFW_SLACK_HEADER_MAX);
        } else if (strcmp(type, "section") == 0) {
            const json_t *fields = json_object_get(b, "fields");
            const json_t *st = json_object_get(b, "text");
            size_t k;
            const json_t *f;

            FUZZ_CHECK(st != NULL || fields != NULL);
            if (st != NULL) {
                check_text(st, CFW_SLACK_SECTION_MAX);
            }
            FUZZ_CHECK(fields == NULL || json_array_size(fields) <= SLACK_FIELDS_MAX);
            json_array_foreach (fields, k, f) {
                check_text(f, CFW_SLACK_FIELD_MAX);
            }
        } else if (strcmp(type, "context") == 0) {
            size_t k;
            const json_t *e;
            json_array_foreach (json_object_get(b, "elements"), k, e) {
                check_text(e, CFW_SLACK_SECTION_MAX);
            }
        } else {
            FUZZ_CHECK(!"unknown Slack block type");
        }
    }
}

/* The request PagerDuty gets: the built event with the routing key (cfw_sink_prepare). */
static void check_pagerduty(const json_t *j, size_t len)
{
    const char *dedup = jstr(j, "dedup_key");
    const json_t *pl = json_object_get(j, "payload");

    FUZZ_CHECK(len <= CFW_PD_BODY_MAX);
    FUZZ_CHECK(dedup != NULL && dedup[0] != '\0' && fuzz_utf8_chars(dedup) <= CFW_PD_DEDUP_MAX);
    if (strcmp(jstr(j, "event_action"), "trigger") == 0) {
        const char *summary = jstr(pl, "summary");
        FUZZ_CHECK(summary != NULL && fuzz_utf8_chars(summary) <= CFW_PD_SUMMARY_MAX);
        FUZZ_CHECK(jstr(pl, "source") != NULL && jstr(pl, "severity") != NULL);
    } else {
        FUZZ_CHECK(strcmp(jstr(j, "event_action"), "resolve") == 0);
    }
}

/* A digest within max_body, every item either listed or counted. */
static void check_webhook(const json_t *j, size_t len, const struct cfw_notification *n)
{
    if (n->kind == CFW_NOTIFY_DIGEST) {
        FUZZ_CHECK(len <= WEBHOOK_MAX_BODY);
        FUZZ_CHECK(json_array_size(json_object_get(j, "items")) +
                       (size_t)json_integer_value(json_object_get(j, "unlisted")) ==
                   n->n_items);
    }
}

static void check_alertmanager(const json_t *j)
{
    size_t i;
    const json_t *a;

    FUZZ_CHECK(json_is_array(j));
    json_array_foreach (j, i, a) {
        FUZZ_CHECK(json_is_object(json_object_get(a, "labels")));
        FUZZ_CHECK(json_is_object(json_object_get(a, "annotations")));
        FUZZ_CHECK(jstr(a, "startsAt") != NULL);
    }
}

static void check_request(const struct cfw_sink *s, const char *body, size_t len, bool clean)
{
    bool pd = strcmp(cfw_sink_type(s), "pagerduty") == 0;

    for (unsigned e = 0; e < cfw_sink_endpoints(s); e++) {
        struct cfw_sink_request rq = {0};
        struct cfw_err err = {0};

        FUZZ_CHECK(cfw_sink_prepare(s, e, body, len, 1786867647480LL, &rq, &err) == 0);
        FUZZ_CHECK(rq.url != NULL && rq.body != NULL);
        if (pd) {
            /* the routing key spliced in at send time: still JSON, within PagerDuty's limit */
            json_t *j = parse_checked(rq.body, rq.body_len);

            FUZZ_CHECK(rq.body_len <= CFW_PD_BODY_MAX);
            FUZZ_CHECK(jstr(j, "routing_key") != NULL &&
                       strcmp(jstr(j, "routing_key"), PD_ROUTING_KEY) == 0);
            if (clean) {
                check_pagerduty(j, rq.body_len);
            }
            json_decref(j);
        } else if (rq.body_len != len || memcmp(rq.body, body, len) != 0) {
            /* a body sent as built was parsed already (the webhook's and Slack's) */
            json_decref(parse_checked(rq.body, rq.body_len));
        }
        cfw_sink_request_clear(&rq);
    }
}

static void check_local(struct cfw_sink *s, const struct cfw_notification *n, bool clean)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    bool json = strcmp(cfw_sink_name(s), "out-json") == 0;
    size_t lines = 0;

    FUZZ_CHECK(fp != NULL);
    cfw_sink_write(s, n, fp);
    FUZZ_CHECK(fclose(fp) == 0);
    for (size_t i = 0; i < len;) {
        char *nl = memchr(buf + i, '\n', len - i);
        size_t n_line = nl != NULL ? (size_t)(nl - (buf + i)) : len - i;

        FUZZ_CHECK(nl != NULL);
        if (json && clean) {
            json_decref(parse_checked(buf + i, n_line));
        }
        lines++;
        i += n_line + 1;
    }
    if (clean) {
        size_t want = n->kind == CFW_NOTIFY_DIGEST && !json ? n->n_items : 1;
        FUZZ_CHECK(lines == want);
    }
    free(buf);
}

static void run_sink(struct cfw_sink *s, const struct cfw_notification *n,
                     const struct cfw_incident *inc, bool clean)
{
    const char *type = cfw_sink_type(s);
    size_t len = 0;
    char *body;
    json_t *j;

    if (cfw_sink_is_local(s)) {
        check_local(s, n, clean);
        return;
    }
    body = cfw_sink_build(s, n, &len);
    if (!clean && body == NULL) {
        return;
    }
    FUZZ_CHECK(body != NULL);
    FUZZ_CHECK(strlen(body) == len);
    /* PagerDuty's event is parsed by cfw_sink_prepare and checked as the request it makes */
    if (strcmp(type, "pagerduty") != 0) {
        j = parse_checked(body, len);
        if (clean && strcmp(type, "slack") == 0) {
            check_slack(j);
        } else if (strcmp(type, "webhook") == 0) {
            check_webhook(j, len, n);
        } else if (strcmp(type, "alertmanager") == 0) {
            check_alertmanager(j);
        }
        json_decref(j);
    }
    check_request(s, body, len, clean);
    free(body);
    if (strcmp(type, "alertmanager") == 0 && inc->key != NULL) {
        /* the open-alert set: one refresh body with this incident, then resolved away */
        cfw_sink_observe(s, inc, CFW_TRANSITION_OPEN);
        body = cfw_sink_refresh_body(s, &len);
        if (body != NULL) {
            json_decref(parse_checked(body, len));
            free(body);
        }
        cfw_sink_observe(s, inc, CFW_TRANSITION_RESOLVE);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc;

    (void)argc;
    (void)argv;
    cfw_log_init(CFW_LOG_ERR);
    doc = cfw_yaml_load_string("fuzz-sinks", SINKS_YAML, strlen(SINKS_YAML), &diag);
    FUZZ_CHECK(doc != NULL);
    sinks = cfw_sinks_parse(cfw_node_get(doc->root, "sinks"), "sinks", &diag);
    cfw_diag_print(&diag, stderr);
    FUZZ_CHECK(sinks != NULL && diag.n == 0);
    cfw_sinks_set_context(sinks, "fuzz-host", "http://fuzz-host:9187/incidents");
    cfw_doc_free(doc); /* the sinks keep copies of what they need */
    return 0;
}

enum part_kind {
    PART_TEXT,  /* titles, hints, samples, keys: rendered or record text (UTF-8, any line) */
    PART_FIELD, /* field values: the decoder and the matcher turn control characters to spaces */
    PART_ID,    /* rule ids: [a-z0-9._-] (the rules loader refuses anything else) */
};

/* A part of the input; when clean, made to hold what the pipeline can hand a sink. */
static char *take_part(struct fuzz_in *in, bool clean, enum part_kind kind)
{
    size_t n;
    char *s = fuzz_part(in, &n);
    char *fixed;

    if (!clean) {
        return s;
    }
    fixed = fuzz_utf8_fix(s, n);
    free(s);
    for (size_t i = 0; fixed[i] != '\0'; i++) {
        unsigned char c = (unsigned char)fixed[i];
        if (kind == PART_FIELD && (c < 0x20 || c == 0x7f)) {
            fixed[i] = ' ';
        } else if (kind == PART_ID && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                        c == '.' || c == '_' || c == '-')) {
            fixed[i] = '-';
        }
    }
    return fixed;
}

/* Length of the longest prefix of s of at most max bytes that does not split a UTF-8 sequence. */
static size_t cut_utf8(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max) {
        return n;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    return max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    uint8_t digest_n = fuzz_u8(&in);
    uint8_t counts = fuzz_u8(&in);
    bool clean = (mode & 0x80) == 0;
    struct cfw_incident inc = {0};
    struct cfw_notification n = {0};
    struct cfw_digest_item *items = NULL;
    char *short_title = NULL;

    inc.severity = (enum cfw_severity)(mode & 3);
    inc.key = take_part(&in, clean, PART_TEXT);
    inc.rule = take_part(&in, clean, PART_ID);
    inc.pack = take_part(&in, clean, PART_TEXT);
    inc.title = take_part(&in, clean, PART_TEXT);
    inc.hint = take_part(&in, clean, PART_TEXT);
    inc.sample = take_part(&in, clean, PART_TEXT);
    while (in.n > 0 && inc.fields.n < 24) {
        char *k = take_part(&in, clean, PART_ID);
        char *v = take_part(&in, clean, PART_FIELD);
        cfw_fields_set(&inc.fields, k, v);
        free(k);
        free(v);
    }
    inc.count = (uint64_t)1 << (counts & 63);
    inc.state = (mode & 0x40) != 0 ? CFW_INCIDENT_RESOLVED : CFW_INCIDENT_OPEN;
    inc.first.input = "deploy.log";
    inc.first.line = 7;
    inc.first.wall_ms = 1786867647480LL;
    inc.last = inc.first;
    inc.opened_wall_ms = (counts & 64) != 0 ? 0 : 1786867647480LL;
    inc.resolved_wall_ms = inc.state == CFW_INCIDENT_RESOLVED ? 1786867999480LL : 0;
    n.now_wall_ms = (counts & 128) != 0 ? -1 : 1786868000000LL;
    switch ((mode >> 2) & 3) {
    case 0:
    case 1:
        n.kind = CFW_NOTIFY_TRANSITION;
        n.transition = (enum cfw_transition)(((mode >> 4) & 3) % 3);
        n.inc = &inc;
        break;
    case 2:
        n.kind = CFW_NOTIFY_TEST;
        n.transition = CFW_TRANSITION_OPEN;
        n.inc = &inc;
        break;
    default:
        n.kind = CFW_NOTIFY_DIGEST;
        /* up to 63 items, or 100 to 478 (enough to reach Slack's block limit) */
        n.n_items = (digest_n & 0x80) != 0 ? 100 + (size_t)(digest_n & 0x3f) * 6 : digest_n & 0x3f;
        n.n_omitted = (digest_n & 0x40) != 0 ? 1000 : 0;
        items = cfw_xcalloc(n.n_items > 0 ? n.n_items : 1, sizeof(*items));
        /* items after the first show a title cut to 600 bytes: Slack lists at most 500 bytes an
         * item, so its block limit is still reached, and a run stays fast */
        short_title = cfw_xstrndup(inc.title, cut_utf8(inc.title, 600));
        for (size_t i = 0; i < n.n_items; i++) {
            items[i].transition = (enum cfw_transition)(i % 3);
            items[i].wall_ms = 1786867647480LL + (int64_t)i;
            items[i].inc = inc;
            if (i > 0) {
                items[i].inc.title = short_title;
            }
        }
        n.items = items;
        break;
    }
    for (size_t i = 0; i < cfw_sinks_count(sinks); i++) {
        struct cfw_sink *s = cfw_sinks_at(sinks, i);
        const char *type = cfw_sink_type(s);

        bool limited = strcmp(type, "slack") == 0 || strcmp(type, "pagerduty") == 0;

        /* a large digest only matters where there is a limit to reach (and is slow elsewhere);
         * the webhook's max_body is reached by the small ones (up to 63 items) */
        if (n.n_items > 8 && !limited && !(strcmp(type, "webhook") == 0 && n.n_items <= 63)) {
            continue;
        }
        run_sink(s, &n, &inc, clean);
    }
    free(items);
    free(short_title);
    free(inc.key);
    free(inc.rule);
    free(inc.pack);
    free(inc.title);
    free(inc.hint);
    free(inc.sample);
    cfw_fields_clear(&inc.fields);
    return 0;
}
