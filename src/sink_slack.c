/*
 * Slack incoming webhooks: a `text` fallback plus Block Kit blocks, within Slack's limits (50
 * blocks, 3000 characters a section, 2000 a field, 150 a header). Oversized text is cut with a
 * marker, never rejected. Success is HTTP 200 with body "ok"; 429 carries Retry-After; 4xx bodies
 * such as invalid_payload or channel_not_found are permanent.
 *
 * Text from logs (titles, hints, scripts, keys, samples) is shown as it is. mrkdwn has no escape
 * for its formatting characters, so log text goes into mrkdwn only inside the sample's code
 * block and in the hint; everywhere else in the blocks it is in plain_text objects, and mrkdwn
 * is kept for our own labels. Every text has & < > as entities (no mention, link or date token
 * can be formed) and, outside code, a zero-width space after a ':' that could open an emoji
 * shortcode. The top-level `text` (notifications, clients without blocks) is always read as
 * mrkdwn: there the formatting characters from logs become look-alikes (* _ ~ ` and their
 * fullwidth forms) and a '>' that starts a line gets a soft hyphen before it, so it cannot open
 * a quote. The hint (a rule's text with fields from the log) is mrkdwn so that its `code` spans
 * render: a pair of backticks on one line is a code span, shown as in the sample's code block;
 * the rest is escaped as the top-level text, except that * _ ~ between two letters or digits
 * stay (Slack formats no part of a word, and python_workers must copy as it is). A span may come
 * from a field; like every code span it can only show text in a fixed-width font.
 */
#include "sink_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MARKER "\xe2\x80\xa6 (truncated)"
#define ELLIPSIS "\xe2\x80\xa6"
/* zero-width space: splits a backtick run or an emoji shortcode, invisibly */
#define ZWSP "\xe2\x80\x8b"
/* soft hyphen: invisible; a '>' after it does not start a quote */
#define SHY "\xc2\xad"
/* Bytes of one digest line (the rest of it is cut with an ellipsis). */
#define DIGEST_LINE_MAX 500u

static const struct cfw_schema_key slack_keys[] = {
    {.name = "url",
     .read = cfw_sink_read_required_url,
     .help = "the incoming webhook URL, a secret (or url_file; one of them is required)"},
    {.name = "url_file", .help = "a file holding url (read with url)"},
    {0},
};

static const struct cfw_schema slack_schema = {slack_keys, NULL};

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

/* Where log text goes, which decides how it is made literal. */
enum esc {
    ESC_PLAIN,  /* a plain_text object */
    ESC_MRKDWN, /* the top-level text, always read as mrkdwn */
    ESC_HINT,   /* the hint's mrkdwn outside its code spans: ESC_MRKDWN, words kept whole */
    ESC_CODE,   /* inside the sample's ``` code block or a hint's `code` span */
};

/*
 * A text built within max bytes from our own words and log text. Pieces (an entity, a
 * character, one of our strings) are never split; when one does not fit, the text goes back to
 * the last point where the marker still fits, the rest is dropped and the marker ends it.
 */
struct text {
    struct cfw_buf b;
    size_t max;  /* bytes the content may take (the suffix is kept apart) */
    size_t safe; /* length to cut back to: the marker fits after it */
    const char *marker;
    enum esc esc;
    bool cut;
    bool in_log;     /* the piece comes from the log */
    bool in_span;    /* inside a hint's `code` span: no cut there (the span would stay open) */
    bool line_blank; /* nothing but blanks since the start of the line */
};

static void text_init(struct text *t, size_t max, const char *suffix, const char *marker,
                      enum esc esc)
{
    memset(t, 0, sizeof(*t));
    cfw_buf_init(&t->b, CFW_BUF_MAX_BUILT); /* t->max caps what is kept, by hand */
    t->max = max - strlen(suffix);
    t->marker = marker;
    t->esc = esc;
    t->line_blank = true;
}

static void put(struct text *t, const char *p, size_t n)
{
    if (t->cut) {
        return;
    }
    if (t->b.len + n > t->max) {
        t->cut = true;
        t->b.len = t->safe;
        if (t->b.data != NULL) {
            t->b.data[t->b.len] = '\0';
        }
        return;
    }
    cfw_buf_append(&t->b, p, n);
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            t->line_blank = true;
        } else if (p[i] != ' ' && p[i] != '\t') {
            t->line_blank = false;
        }
    }
    /* a cut sample must not end with a backtick that the closing fence would join */
    if (t->b.len + strlen(t->marker) <= t->max && !t->in_span &&
        !(t->esc == ESC_CODE && t->in_log && n > 0 && p[n - 1] == '`')) {
        t->safe = t->b.len;
    }
}

/* Our own words, as they are. */
static void put_raw(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

/* A character that can follow the ':' opening an emoji shortcode. */
static bool emoji_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '+' || c == '\'';
}

/*
 * mrkdwn formatting characters (Slack reads the fullwidth forms too) and look-alikes that it
 * does not read: the characters jsx-slack settled on for its <Escape>, plus the fullwidth tilde.
 */
static const struct {
    const char *from;
    const char *to;
} lookalikes[] = {
    {"*", "\xe2\x88\x97"},            /* U+2217 ASTERISK OPERATOR */
    {"_", "\xcb\x8d"},                /* U+02CD MODIFIER LETTER LOW MACRON */
    {"~", "\xe2\x88\xbc"},            /* U+223C TILDE OPERATOR */
    {"`", "\xcb\x8b"},                /* U+02CB MODIFIER LETTER GRAVE ACCENT */
    {"\xef\xbc\x8a", "\xef\xb9\xa1"}, /* U+FF0A FULLWIDTH ASTERISK: U+FE61 SMALL ASTERISK */
    {"\xef\xbc\xbf", "\xe2\xb8\x8f"}, /* U+FF3F FULLWIDTH LOW LINE: U+2E0F PARAGRAPHOS */
    {"\xef\xbd\x80", "\xcb\x8b"},     /* U+FF40 FULLWIDTH GRAVE ACCENT: U+02CB */
    {"\xef\xbd\x9e", "\xe2\x88\xbc"}, /* U+FF5E FULLWIDTH TILDE: U+223C */
};

static const char *lookalike(const char *p, size_t len)
{
    for (size_t i = 0; i < sizeof(lookalikes) / sizeof(lookalikes[0]); i++) {
        if (strlen(lookalikes[i].from) == len && memcmp(lookalikes[i].from, p, len) == 0) {
            return lookalikes[i].to;
        }
    }
    return NULL;
}

/*
 * Log characters that need no substitution: the same text as putting them a character at a time
 * (the pieces that are never split), in one append when that is sure to be so.
 */
static void put_run(struct text *t, const char *p, size_t n)
{
    size_t i = 0;

    if (n == 0) {
        return;
    }
    /* all of them fit with the marker after them, so every point between is a safe cut */
    if (t->b.len + n + strlen(t->marker) <= t->max && !(t->esc == ESC_CODE && p[n - 1] == '`')) {
        put(t, p, n);
        return;
    }
    while (i < n && !t->cut) {
        size_t len = utf8_len((unsigned char)p[i]);

        if (i + len > n) {
            len = n - i;
        }
        put(t, p + i, len);
        i += len;
    }
}

/*
 * The bytes put_log looks at one by one: the ASCII characters some rule below replaces, and
 * every byte of a multi-byte character. The rest is ASCII copied as it is.
 */
static const char LOG_LOOK_AT[] =
    "&<>`:*_~"
    "\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f"
    "\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f"
    "\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf"
    "\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf"
    "\xc0\xc1\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf"
    "\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb\xdc\xdd\xde\xdf"
    "\xe0\xe1\xe2\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xeb\xec\xed\xee\xef"
    "\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc\xfd\xfe\xff";

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The n bytes of log text at s, made literal for where the text goes (see the top of the file). */
static void put_log_n(struct text *t, const char *s, size_t n)
{
    bool mrkdwn = t->esc == ESC_MRKDWN || t->esc == ESC_HINT;
    size_t i = 0;
    size_t run = 0; /* where the characters not put yet begin */

    t->in_log = true;
    while (i < n && !t->cut) {
        unsigned char c;
        size_t len;
        const char *sub = NULL;

        /* ASCII that no rule below touches goes into the run as it is, without a look */
        i += strcspn(s + i, LOG_LOOK_AT);
        if (i >= n) {
            i = n;
            break;
        }
        c = (unsigned char)s[i];
        len = utf8_len(c);
        if (i + len > n) {
            len = n - i;
        }
        if (mrkdwn && (c == '>' || c == 0xef)) {
            /* what this one becomes depends on line_blank: the characters before go in first */
            put_run(t, s + run, i - run);
            run = i;
        }
        if (c == '&') {
            sub = "&amp;";
        } else if (c == '<') {
            sub = "&lt;";
        } else if (c == '>') {
            sub = mrkdwn && t->line_blank ? SHY "&gt;" : "&gt;";
        } else if (t->esc == ESC_CODE) {
            /*
             * A zero-width space after a backtick that another one follows (or that ends the
             * sample, before the closing fence): no run of backticks in the sample can close
             * the code block, however long it is.
             */
            if (c == '`' && (i + 1 == n || s[i + 1] == '`')) {
                sub = "`" ZWSP;
            }
        } else if (c == ':' && i + 1 < n && emoji_name_char((unsigned char)s[i + 1])) {
            sub = ":" ZWSP;
        } else if (mrkdwn) {
            if (t->line_blank && len == 3 && memcmp(s + i, "\xef\xbc\x9e", 3) == 0) {
                sub = SHY "\xef\xbc\x9e"; /* U+FF1E FULLWIDTH GREATER-THAN quotes too */
            } else if (!(t->esc == ESC_HINT && len == 1 && c != '`' && i > 0 && i + 1 < n &&
                         alnum(s[i - 1]) && alnum(s[i + 1]))) {
                sub = lookalike(s + i, len);
            }
        }
        if (sub != NULL) {
            put_run(t, s + run, i - run);
            put(t, sub, strlen(sub));
            run = i + len;
        }
        i += len;
    }
    put_run(t, s + run, i - run);
    t->in_log = false;
}

/* Log text, made literal for where the text goes (see the top of the file). */
static void put_log(struct text *t, const char *s)
{
    put_log_n(t, s, strlen(s));
}

/*
 * A hint in mrkdwn: a backtick with another one after it on the same line (and text between)
 * opens a code span, whose text is put as in the sample's code block; everything else is put as
 * ESC_HINT. A lone backtick or two together become look-alikes, so no ``` fence can open a code
 * block. The text is never cut inside a span.
 */
static void put_hint(struct text *t, const char *s)
{
    size_t n = strlen(s);
    size_t i = 0;

    while (i < n && !t->cut) {
        const char *tick = memchr(s + i, '`', n - i);
        size_t open, close;

        t->esc = ESC_HINT;
        if (tick == NULL) {
            put_log_n(t, s + i, n - i);
            break;
        }
        open = (size_t)(tick - s);
        put_log_n(t, s + i, open - i);
        close = open + 1 + strcspn(s + open + 1, "`\n");
        if (close >= n || s[close] != '`' || close == open + 1) {
            put_log_n(t, s + open, 1); /* the look-alike */
            i = open + 1;
            continue;
        }
        t->in_span = true;
        put_raw(t, "`");
        t->esc = ESC_CODE;
        put_log_n(t, s + open + 1, close - open - 1);
        t->in_span = false;
        put_raw(t, "`");
        i = close + 1;
    }
    t->esc = ESC_HINT;
}

/* The text, with suffix and (when something was dropped) the marker; at most max bytes. */
static char *text_take(struct text *t, const char *suffix)
{
    cfw_buf_puts(&t->b, suffix);
    if (t->cut) {
        cfw_buf_puts(&t->b, t->marker);
    }
    return cfw_buf_take(&t->b);
}

static json_t *plain(char *text, bool emoji)
{
    json_t *o = json_pack("{s:s, s:s, s:b}", "type", "plain_text", "text", text, "emoji", emoji);

    free(text);
    return o;
}

static json_t *section(char *text, bool emoji)
{
    return json_pack("{s:s, s:o}", "type", "section", "text", plain(text, emoji));
}

/* A section of mrkdwn; verbatim: no URL or channel name in it is turned into a link. */
static json_t *section_mrkdwn(char *text)
{
    json_t *o = json_pack("{s:s, s:{s:s, s:s, s:b}}", "type", "section", "text", "type", "mrkdwn",
                          "text", text, "verbatim", 1);

    free(text);
    return o;
}

/* The hint: mrkdwn, so that its `code` spans render (put_hint). */
static json_t *hint_section(const char *hint)
{
    struct text t;

    text_init(&t, CFW_SLACK_SECTION_MAX, "", MARKER, ESC_HINT);
    put_raw(&t, "*Hint:* ");
    put_hint(&t, hint);
    return section_mrkdwn(text_take(&t, ""));
}

/* "Label: value" for a plain_text field or section, "-" for an empty value from the log. */
static char *labelled(const char *label, const char *value, bool ours, size_t max)
{
    struct text t;

    text_init(&t, max, "", MARKER, ESC_PLAIN);
    put_raw(&t, label);
    put_raw(&t, ": ");
    if (ours) {
        put_raw(&t, value);
    } else {
        put_log(&t, value[0] != '\0' ? value : "-");
    }
    return text_take(&t, "");
}

/* A field showing log text. */
static json_t *field(const char *label, const char *value)
{
    return plain(labelled(label, value, false, CFW_SLACK_FIELD_MAX), false);
}

/* A field showing a value of ours (a severity, a count, a time). */
static json_t *field_ours(const char *label, const char *value)
{
    return plain(labelled(label, value[0] != '\0' ? value : "-", true, CFW_SLACK_FIELD_MAX),
                 false);
}

/* A header of ours (prefix, with emoji shortcodes) followed by log text. */
static json_t *header(const char *prefix, const char *log_text)
{
    struct text t;

    text_init(&t, CFW_SLACK_HEADER_MAX, "", ELLIPSIS, ESC_PLAIN);
    put_raw(&t, prefix);
    put_log(&t, log_text);
    return json_pack("{s:s, s:o}", "type", "header", "text", plain(text_take(&t, ""), true));
}

static json_t *context(const struct cfw_sink *s, const struct cfw_incident *inc)
{
    struct text t;

    text_init(&t, CFW_SLACK_FIELD_MAX, "", MARKER, ESC_PLAIN);
    put_raw(&t, "cfwatchd on ");
    put_log(&t, s->host != NULL ? s->host : "?");
    if (inc != NULL) {
        put_raw(&t, " | incident ");
        put_log(&t, inc->key != NULL ? inc->key : "");
    }
    return json_pack("{s:s, s:[o]}", "type", "context", "elements",
                     plain(text_take(&t, ""), false));
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
    json_t *o = json_pack("{s:s, s:o}", "text", fallback, "blocks", blocks);

    free(fallback);
    return o;
}

/* The sample in a code block: the one place log text goes into mrkdwn. */
static json_t *sample_section(const char *sample)
{
    struct text t;
    char *code;
    json_t *o;

    text_init(&t, CFW_SLACK_SECTION_MAX, "```", MARKER, ESC_CODE);
    put_raw(&t, "*Sample*\n```");
    put_log(&t, sample);
    code = text_take(&t, "```");
    /* verbatim: no URL or channel name in the sample is turned into a link */
    o = json_pack("{s:s, s:{s:s, s:s, s:b}}", "type", "section", "text", "type", "mrkdwn", "text",
                  code, "verbatim", 1);
    free(code);
    return o;
}

static const char *title_of(const struct cfw_incident *inc)
{
    return inc->title != NULL ? inc->title : "";
}

/* "script NAME" and then sep, or nothing at all for an incident without a script. */
static void put_script(struct text *t, const struct cfw_incident *inc, const char *sep)
{
    const char *script = cfw_sink_field(inc, "script");

    if (script[0] != '\0') {
        put_raw(t, "script ");
        put_log(t, script);
        put_raw(t, sep);
    }
}

/* "N occurrence" or "N occurrences": the count of inc. */
static void put_count(struct text *t, const struct cfw_incident *inc)
{
    char count[32];

    snprintf(count, sizeof(count), "%" PRIu64 " occurrence%s", inc->count,
             inc->count == 1 ? "" : "s");
    put_raw(t, count);
}

static json_t *build_open(const struct cfw_sink *s, const struct cfw_incident *inc, bool test)
{
    json_t *blocks = json_array();
    json_t *fields = json_array();
    char first[40], last[40], count[32];
    char *prefix = cfw_xasprintf("%s%s %s: ", test ? "[TEST] " : "", sev_emoji(inc->severity),
                                 cfw_sink_severity_label(inc->severity));
    struct text t;

    cfw_sink_time(inc->first.wall_ms, first, sizeof(first));
    cfw_sink_time(inc->last.wall_ms, last, sizeof(last));
    snprintf(count, sizeof(count), "%" PRIu64, inc->count);
    json_array_append_new(blocks, header(prefix, title_of(inc)));
    free(prefix);
    json_array_append_new(fields, field_ours("Severity", cfw_severity_name(inc->severity)));
    if (cfw_sink_field(inc, "script")[0] != '\0') {
        json_array_append_new(fields, field("Script", cfw_sink_field(inc, "script")));
    }
    json_array_append_new(fields, field("Rule", inc->rule != NULL ? inc->rule : ""));
    json_array_append_new(fields, field_ours("Count", count));
    json_array_append_new(fields, field_ours("First seen", first));
    json_array_append_new(fields, field_ours("Last seen", last));
    if (cfw_sink_field(inc, "module")[0] != '\0') {
        json_array_append_new(fields, field("Module", cfw_sink_field(inc, "module")));
    }
    if (cfw_sink_field(inc, "version")[0] != '\0') {
        json_array_append_new(fields, field("Version", cfw_sink_field(inc, "version")));
    }
    json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "fields", fields));
    {
        /* where it was seen: the input and line, the source, the request (a section of its own:
         * Slack takes at most 10 fields in one) */
        json_t *where = json_array();
        static const struct {
            const char *field, *label;
        } req[] = {{"source", "Source"}, {"url", "Request"}, {"ray", "Ray ID"},
                   {"deployment", "Deployment"}};

        if (inc->first.input != NULL && inc->first.input[0] != '\0') {
            char *at = inc->first.line > 0 ? cfw_xasprintf("%s:%llu", inc->first.input,
                                                           (unsigned long long)inc->first.line)
                                           : cfw_xstrdup(inc->first.input);
            json_array_append_new(where, field("Where", at));
            free(at);
        }
        for (size_t k = 0; k < sizeof(req) / sizeof(req[0]); k++) {
            if (cfw_sink_field(inc, req[k].field)[0] != '\0') {
                json_array_append_new(where, field(req[k].label, cfw_sink_field(inc, req[k].field)));
            }
        }
        if (json_array_size(where) > 0) {
            json_array_append_new(blocks,
                                  json_pack("{s:s, s:o}", "type", "section", "fields", where));
        } else {
            json_decref(where);
        }
    }
    if (inc->hint != NULL && inc->hint[0] != '\0') {
        json_array_append_new(blocks, hint_section(inc->hint));
    }
    if (inc->sample != NULL && inc->sample[0] != '\0') {
        json_array_append_new(blocks, sample_section(inc->sample));
    }
    json_array_append_new(blocks, context(s, inc));
    text_init(&t, CFW_SLACK_TEXT_MAX, "", MARKER, ESC_MRKDWN);
    put_raw(&t, test ? "[TEST] [" : "[");
    put_raw(&t, cfw_severity_name(inc->severity));
    put_raw(&t, "] ");
    put_log(&t, title_of(inc));
    put_raw(&t, " (");
    put_script(&t, inc, ", ");
    put_raw(&t, "rule ");
    put_log(&t, inc->rule != NULL ? inc->rule : "");
    put_raw(&t, ")");
    return message(text_take(&t, ""), blocks);
}

/* The resolve or reminder line, for a plain_text section or (esc ESC_MRKDWN) the fallback. */
static char *short_text(const struct cfw_incident *inc, enum cfw_transition tr, const char *dur,
                        size_t max, enum esc esc)
{
    struct text t;

    text_init(&t, max, "", MARKER, esc);
    if (tr == CFW_TRANSITION_ACK) {
        put_raw(&t, ":eyes: Acknowledged by ");
        put_log(&t, inc->acked_by != NULL ? inc->acked_by : "someone");
        put_raw(&t, ": ");
        put_log(&t, title_of(inc));
        put_raw(&t, " (no more reminders; open for ");
    } else if (tr == CFW_TRANSITION_RESOLVE) {
        put_raw(&t, ":white_check_mark: Resolved: ");
        put_log(&t, title_of(inc));
        put_raw(&t, " (");
        put_script(&t, inc, ", ");
        put_count(&t, inc);
        put_raw(&t, ", open for ");
    } else {
        put_raw(&t, ":repeat: Reminder [");
        put_raw(&t, cfw_severity_name(inc->severity));
        put_raw(&t, "]: ");
        put_log(&t, title_of(inc));
        put_raw(&t, " is still happening (");
        put_script(&t, inc, ", ");
        put_count(&t, inc);
        put_raw(&t, " in ");
    }
    put_raw(&t, dur);
    put_raw(&t, ")");
    if (tr == CFW_TRANSITION_RESOLVE && inc->resolved_by != NULL) {
        /* what ended it: a later deploy, a removed source */
        put_raw(&t, "; resolved by ");
        put_log(&t, inc->resolved_by);
    }
    return text_take(&t, "");
}

static json_t *build_short(const struct cfw_sink *s, const struct cfw_incident *inc,
                           enum cfw_transition tr, int64_t now_wall_ms)
{
    json_t *blocks = json_array();
    struct cfw_stamp now;
    char dur[32];

    /* a duration on the boot clock (the incident's stamps), not a difference of wall times */
    cfw_incident_stamp(&now, now_wall_ms);
    cfw_sink_duration(cfw_incident_open_ms(inc, &now), dur, sizeof(dur));
    json_array_append_new(
        blocks, section(short_text(inc, tr, dur, CFW_SLACK_SECTION_MAX, ESC_PLAIN), true));
    json_array_append_new(blocks, context(s, inc));
    return message(short_text(inc, tr, dur, CFW_SLACK_TEXT_MAX, ESC_MRKDWN), blocks);
}

static json_t *build_digest(const struct cfw_sink *s, const struct cfw_notification *n)
{
    json_t *blocks = json_array();
    struct cfw_buf cur;
    uint64_t total = n->n_items + n->n_omitted;
    uint64_t listed = 0;
    char *head = cfw_xasprintf("%" PRIu64 " cfwatchd notifications (rate limited)", total);
    struct text t;
    /* header + sections + "and N more" + context within the block limit */
    size_t max_sections = CFW_SLACK_BLOCKS_MAX - 3;
    size_t sections = 0;

    cfw_buf_init(&cur, CFW_BUF_MAX_BUILT);
    json_array_append_new(blocks, header(head, ""));
    for (size_t i = 0; i < n->n_items && sections < max_sections; i++) {
        const struct cfw_digest_item *it = &n->items[i];
        char *line;
        size_t len;

        text_init(&t, DIGEST_LINE_MAX, "", ELLIPSIS, ESC_PLAIN);
        put_raw(&t, "\xe2\x80\xa2 ");
        put_raw(&t, cfw_transition_name(it->transition));
        put_raw(&t, " [");
        put_raw(&t, cfw_severity_name(it->inc.severity));
        put_raw(&t, "] ");
        put_log(&t, title_of(&it->inc));
        if (cfw_sink_field(&it->inc, "script")[0] != '\0') {
            put_raw(&t, " (");
            put_script(&t, &it->inc, ")");
        }
        line = text_take(&t, "");
        len = strlen(line);
        if (cur.len + len + 1 > CFW_SLACK_SECTION_MAX) {
            json_array_append_new(blocks, section(cfw_buf_take(&cur), false));
            sections++;
            if (sections >= max_sections) {
                free(line);
                break;
            }
        }
        if (cur.len > 0) {
            cfw_buf_putc(&cur, '\n');
        }
        cfw_buf_append(&cur, line, len);
        free(line);
        listed++;
    }
    if (cur.len > 0 && sections < max_sections) {
        json_array_append_new(blocks, section(cfw_buf_take(&cur), false));
    }
    cfw_buf_free(&cur);
    if (listed < total) {
        json_array_append_new(blocks, section(cfw_xasprintf("\xe2\x80\xa6 and %" PRIu64
                                                            " more (see cfwatchd /incidents)",
                                                            total - listed),
                                              false));
    }
    json_array_append_new(blocks, context(s, NULL));
    text_init(&t, CFW_SLACK_TEXT_MAX, "", MARKER, ESC_MRKDWN);
    put_raw(&t, head);
    put_raw(&t, ": first is ");
    put_log(&t, n->n_items > 0 ? title_of(&n->items[0].inc) : "");
    free(head);
    return message(text_take(&t, ""), blocks);
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
    .schema = &slack_schema,
    .burst = 5,
    .per_ms = 1000,
    .in_flight = 1,
    .digest_resolves = true,
    .build = slack_build,
    .prepare = slack_prepare,
    .classify = slack_classify,
};
