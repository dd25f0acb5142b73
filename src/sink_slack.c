/*
 * Slack incoming webhooks: a `text` fallback plus Block Kit blocks, within Slack's limits (50
 * blocks, 3000 characters a section, 150 a header). Oversized text is cut with a marker, never
 * rejected. Success is HTTP 200 with body "ok"; 429 carries Retry-After; 4xx bodies such as
 * invalid_payload or channel_not_found are permanent.
 */
#include "sink_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MARKER "\xe2\x80\xa6 (truncated)"

static const char *const slack_keys[] = {"url", "url_file", NULL};

static int slack_parse(struct cfw_sink *s, const struct cfw_node *map, const char *path,
                       struct cfw_diag *diag)
{
    int rc = cfw_sink_parse_url(s, map, path, diag);

    if (rc == 0) {
        cfw_diag_add(diag, map, path, "a slack sink needs url or url_file");
        return -1;
    }
    return rc < 0 ? -1 : 0;
}

static size_t utf8_len(unsigned char c)
{
    if (c < 0x80) {
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        return 2;
    }
    if ((c & 0xF0) == 0xE0) {
        return 3;
    }
    if ((c & 0xF8) == 0xF0) {
        return 4;
    }
    return 1;
}

/*
 * Appends s escaped for mrkdwn (& < > as entities; runs of backticks broken up when in_code)
 * while the buffer stays within limit bytes; never splits an entity or a UTF-8 sequence.
 * Returns false when s did not fit whole.
 */
static bool put_escaped(struct cfw_buf *b, const char *s, size_t limit, bool in_code)
{
    size_t i = 0;
    size_t n = strlen(s);

    while (i < n) {
        const char *piece = NULL;
        size_t plen;
        unsigned char c = (unsigned char)s[i];
        size_t adv = 1;

        if (c == '&') {
            piece = "&amp;";
        } else if (c == '<') {
            piece = "&lt;";
        } else if (c == '>') {
            piece = "&gt;";
        } else if (in_code && c == '`' && (i + 1 == n || s[i + 1] == '`')) {
            /*
             * A zero-width space after a backtick that another one follows (or that ends the
             * sample, before the closing fence): no run of backticks in the sample can close
             * the code block, however long it is.
             */
            piece = "`\xe2\x80\x8b";
        }
        if (piece != NULL) {
            plen = strlen(piece);
        } else {
            plen = utf8_len(c);
            if (i + plen > n) {
                plen = n - i;
            }
            adv = plen;
            piece = s + i;
        }
        if (b->len + plen > limit) {
            return false;
        }
        cfw_buf_append(b, piece, plen);
        i += adv;
    }
    return true;
}

/* prefix + escaped content + suffix within max bytes, the content cut with a marker. */
static char *bounded(const char *prefix, const char *content, const char *suffix, size_t max,
                     bool in_code)
{
    struct cfw_buf b = {0};
    size_t room = max - strlen(suffix);

    cfw_buf_puts(&b, prefix);
    if (!put_escaped(&b, content, room, in_code)) {
        /* cut back so the marker fits too */
        size_t target = room - strlen(MARKER);
        cfw_buf_reset(&b);
        cfw_buf_puts(&b, prefix);
        put_escaped(&b, content, target, in_code);
        if (in_code) {
            cfw_buf_puts(&b, suffix);
            cfw_buf_puts(&b, MARKER);
            return cfw_buf_take(&b);
        }
        cfw_buf_puts(&b, MARKER);
    }
    cfw_buf_puts(&b, suffix);
    return cfw_buf_take(&b);
}

static json_t *mrkdwn(char *text)
{
    json_t *o = json_pack("{s:s, s:s}", "type", "mrkdwn", "text", text);

    free(text);
    return o;
}

static json_t *section(char *text)
{
    return json_pack("{s:s, s:o}", "type", "section", "text", mrkdwn(text));
}

static json_t *header(const char *text)
{
    char *t = cfw_sink_truncate(text, CFW_SLACK_HEADER_MAX, "\xe2\x80\xa6");
    json_t *o = json_pack("{s:s, s:{s:s, s:s, s:b}}", "type", "header", "text", "type",
                          "plain_text", "text", t, "emoji", 1);

    free(t);
    return o;
}

static json_t *field(const char *label, const char *value)
{
    char *prefix = cfw_xasprintf("*%s*\n", label);
    char *text = bounded(prefix, value[0] != '\0' ? value : "-", "", CFW_SLACK_FIELD_MAX, false);

    free(prefix);
    return mrkdwn(text);
}

static json_t *context(const struct cfw_sink *s, const struct cfw_incident *inc)
{
    char *raw;
    char *text;

    if (inc != NULL) {
        raw = cfw_xasprintf("cfwatchd on %s | incident %s", s->host != NULL ? s->host : "?",
                            inc->key != NULL ? inc->key : "");
    } else {
        raw = cfw_xasprintf("cfwatchd on %s", s->host != NULL ? s->host : "?");
    }
    text = bounded("", raw, "", CFW_SLACK_FIELD_MAX, false);
    free(raw);
    return json_pack("{s:s, s:[o]}", "type", "context", "elements", mrkdwn(text));
}

static const char *sev_emoji(enum cfw_severity sev)
{
    switch (sev) {
    case CFW_SEV_CRITICAL:
        return ":red_circle:";
    case CFW_SEV_ERROR:
        return ":large_orange_circle:";
    case CFW_SEV_WARNING:
        return ":large_yellow_circle:";
    case CFW_SEV_INFO:
        return ":large_blue_circle:";
    }
    return "";
}

static json_t *message(char *fallback, json_t *blocks)
{
    char *text = bounded("", fallback, "", CFW_SLACK_TEXT_MAX, false);
    json_t *o = json_pack("{s:s, s:o}", "text", text, "blocks", blocks);

    free(text);
    free(fallback);
    return o;
}

static json_t *build_open(const struct cfw_sink *s, const struct cfw_incident *inc, bool test)
{
    json_t *blocks = json_array();
    json_t *fields = json_array();
    char first[40], last[40], count[32];
    char *title =
        cfw_xasprintf("%s%s %s: %s", test ? "[TEST] " : "", sev_emoji(inc->severity),
                      cfw_sink_severity_label(inc->severity), inc->title != NULL ? inc->title : "");
    char *fallback =
        cfw_xasprintf("%s[%s] %s (script %s, rule %s)", test ? "[TEST] " : "",
                      cfw_severity_name(inc->severity), inc->title != NULL ? inc->title : "",
                      cfw_sink_field(inc, "script"), inc->rule ? inc->rule : "");

    cfw_sink_time(inc->first.wall_ms, first, sizeof(first));
    cfw_sink_time(inc->last.wall_ms, last, sizeof(last));
    snprintf(count, sizeof(count), "%" PRIu64, inc->count);
    json_array_append_new(blocks, header(title));
    json_array_append_new(fields, field("Severity", cfw_severity_name(inc->severity)));
    json_array_append_new(fields, field("Script", cfw_sink_field(inc, "script")));
    json_array_append_new(fields, field("Rule", inc->rule != NULL ? inc->rule : ""));
    json_array_append_new(fields, field("Count", count));
    json_array_append_new(fields, field("First seen", first));
    json_array_append_new(fields, field("Last seen", last));
    if (cfw_sink_field(inc, "module")[0] != '\0') {
        json_array_append_new(fields, field("Module", cfw_sink_field(inc, "module")));
    }
    if (cfw_sink_field(inc, "version")[0] != '\0') {
        json_array_append_new(fields, field("Version", cfw_sink_field(inc, "version")));
    }
    json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "fields", fields));
    if (inc->hint != NULL && inc->hint[0] != '\0') {
        json_array_append_new(
            blocks, section(bounded("*Hint*\n", inc->hint, "", CFW_SLACK_SECTION_MAX, false)));
    }
    if (inc->sample != NULL && inc->sample[0] != '\0') {
        json_array_append_new(blocks, section(bounded("*Sample*\n```", inc->sample, "```",
                                                      CFW_SLACK_SECTION_MAX, true)));
    }
    json_array_append_new(blocks, context(s, inc));
    free(title);
    return message(fallback, blocks);
}

static json_t *build_short(const struct cfw_sink *s, const struct cfw_incident *inc,
                           enum cfw_transition t, int64_t now)
{
    json_t *blocks = json_array();
    char dur[32];
    char *text;

    if (t == CFW_TRANSITION_RESOLVE) {
        int64_t end = inc->resolved_wall_ms > 0 ? inc->resolved_wall_ms : now;
        cfw_sink_duration(end - inc->opened_wall_ms, dur, sizeof(dur));
        text = cfw_xasprintf(
            ":white_check_mark: Resolved: %s (script %s, %" PRIu64 " occurrences, open for %s)",
            inc->title != NULL ? inc->title : "", cfw_sink_field(inc, "script"), inc->count, dur);
    } else {
        cfw_sink_duration(now - inc->opened_wall_ms, dur, sizeof(dur));
        text = cfw_xasprintf(":repeat: Reminder [%s]: %s is still happening (script %s, %" PRIu64
                             " occurrences in %s)",
                             cfw_severity_name(inc->severity), inc->title != NULL ? inc->title : "",
                             cfw_sink_field(inc, "script"), inc->count, dur);
    }
    json_array_append_new(blocks, section(bounded("", text, "", CFW_SLACK_SECTION_MAX, false)));
    json_array_append_new(blocks, context(s, inc));
    return message(text, blocks);
}

static json_t *build_digest(const struct cfw_sink *s, const struct cfw_notification *n)
{
    json_t *blocks = json_array();
    struct cfw_buf cur = {0};
    uint64_t total = n->n_items + n->n_omitted;
    uint64_t listed = 0;
    char *head = cfw_xasprintf("%" PRIu64 " cfwatchd notifications (rate limited)", total);
    char *fallback;
    /* header + sections + "and N more" + context within the block limit */
    size_t max_sections = CFW_SLACK_BLOCKS_MAX - 3;
    size_t sections = 0;

    json_array_append_new(blocks, header(head));
    for (size_t i = 0; i < n->n_items && sections < max_sections; i++) {
        const struct cfw_digest_item *it = &n->items[i];
        struct cfw_buf line = {0};
        char *raw = cfw_xasprintf("%s [%s] %s (script %s)", cfw_transition_name(it->transition),
                                  cfw_severity_name(it->inc.severity),
                                  it->inc.title != NULL ? it->inc.title : "",
                                  cfw_sink_field(&it->inc, "script"));
        cfw_buf_puts(&line, "\xe2\x80\xa2 ");
        put_escaped(&line, raw, 500, false);
        free(raw);
        if (cur.len + line.len + 1 > CFW_SLACK_SECTION_MAX) {
            json_array_append_new(blocks, section(cfw_buf_take(&cur)));
            sections++;
            if (sections >= max_sections) {
                cfw_buf_free(&line);
                break;
            }
        }
        if (cur.len > 0) {
            cfw_buf_putc(&cur, '\n');
        }
        cfw_buf_append(&cur, line.data, line.len);
        cfw_buf_free(&line);
        listed++;
    }
    if (cur.len > 0 && sections < max_sections) {
        json_array_append_new(blocks, section(cfw_buf_take(&cur)));
    }
    cfw_buf_free(&cur);
    if (listed < total) {
        json_array_append_new(blocks, section(cfw_xasprintf("\xe2\x80\xa6 and %" PRIu64
                                                            " more (see cfwatchd /incidents)",
                                                            total - listed)));
    }
    json_array_append_new(blocks, context(s, NULL));
    fallback = cfw_xasprintf("%s: first is %s", head,
                             n->n_items > 0 && n->items[0].inc.title ? n->items[0].inc.title : "");
    free(head);
    return message(fallback, blocks);
}

static json_t *slack_build(const struct cfw_sink *s, const struct cfw_notification *n)
{
    if (n->kind == CFW_NOTIFY_DIGEST) {
        return build_digest(s, n);
    }
    if (n->kind == CFW_NOTIFY_TEST) {
        return build_open(s, n->inc, true);
    }
    if (n->transition == CFW_TRANSITION_OPEN) {
        return build_open(s, n->inc, false);
    }
    return build_short(s, n->inc, n->transition, n->now_wall_ms);
}

static int slack_prepare(const struct cfw_sink *s, unsigned endpoint, const char *body, size_t len,
                         int64_t now_ms, struct cfw_sink_request *rq, struct cfw_err *err)
{
    (void)now_ms;
    (void)err;
    cfw_sink_request_base(s, rq, cfw_xstrdup(s->urls[endpoint]), cfw_xstrndup(body, len), len);
    return 0;
}

static void slack_classify(const struct cfw_sink *s, const struct cfw_http_response *resp,
                           struct cfw_sink_verdict *v)
{
    cfw_sink_classify_http(s, resp, v);
    /* Slack answers 200 "ok"; 400/403/404/410 bodies (invalid_payload, ...) are permanent */
    if (resp->status == 404 || resp->status == 410 || resp->status == 403) {
        v->verdict = CFW_OUTBOX_PERMANENT;
    }
}

const struct cfw_sink_ops cfw_sink_slack_ops = {
    .type = "slack",
    .keys = slack_keys,
    .burst = 5,
    .per_ms = 1000,
    .in_flight = 1,
    .digest_resolves = true,
    .parse = slack_parse,
    .build = slack_build,
    .prepare = slack_prepare,
    .classify = slack_classify,
};
