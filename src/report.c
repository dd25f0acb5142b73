/* The --once report: text (grouped by severity), JSON, or GitHub Actions annotations. */
#include "cfwatchd/report.h"
#include "cfwatchd/jsondump.h"

#include <stdlib.h>
#include <string.h>

int cfw_report_format_parse(const char *s, enum cfw_report_format *out)
{
    if (strcmp(s, "text") == 0) {
        *out = CFW_REPORT_TEXT;
    } else if (strcmp(s, "json") == 0) {
        *out = CFW_REPORT_JSON;
    } else if (strcmp(s, "github") == 0) {
        *out = CFW_REPORT_GITHUB;
    } else {
        return -1;
    }
    return 0;
}

static bool announced(const struct cfw_incident *inc)
{
    return inc->state != CFW_INCIDENT_PENDING;
}

json_t *cfw_report_incident_json(const struct cfw_incident *inc)
{
    json_t *fields = json_object();
    json_t *o;

    for (size_t i = 0; i < inc->fields.n; i++) {
        json_object_set_new(fields, inc->fields.v[i].key, json_string(inc->fields.v[i].value));
    }
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:{s:s, s:I}, s:{s:s, s:I}, s:s}",
                  "key", inc->key, "rule", inc->rule, "severity", cfw_severity_name(inc->severity),
                  "state", inc->state == CFW_INCIDENT_OPEN ? "open" : "resolved", "title",
                  inc->title, "hint", inc->hint, "count", (json_int_t)inc->count, "fields", fields,
                  "first", "input", inc->first.input, "line", (json_int_t)inc->first.line, "last",
                  "input", inc->last.input, "line", (json_int_t)inc->last.line, "sample",
                  inc->sample);
    if (o != NULL && inc->occurrences > inc->count) {
        /* fixed in the input and failed again: count is this opening, occurrences all of them */
        json_object_set_new(o, "occurrences", json_integer((json_int_t)inc->occurrences));
        json_object_set_new(o, "opening", json_integer((json_int_t)inc->opening));
    }
    if (o != NULL && inc->resolved_by != NULL) {
        json_object_set_new(o, "resolved_by", json_string(inc->resolved_by));
    }
    return o;
}

static json_t *stats_json(const struct cfw_incidents *set, const struct cfw_pipeline_stats *st)
{
    json_t *by_sev = json_object();
    size_t announced_n = 0;

    for (int s = CFW_SEV_CRITICAL; s >= CFW_SEV_INFO; s--) {
        json_object_set_new(by_sev, cfw_severity_name((enum cfw_severity)s), json_integer(0));
    }
    for (size_t i = 0; i < cfw_incidents_count(set); i++) {
        const struct cfw_incident *inc = cfw_incidents_at(set, i);
        const char *name = cfw_severity_name(inc->severity);
        if (!announced(inc)) {
            continue;
        }
        announced_n++;
        json_object_set_new(by_sev, name,
                            json_integer(json_integer_value(json_object_get(by_sev, name)) + 1));
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
                     "inputs", (json_int_t)st->inputs, "bytes", (json_int_t)st->bytes, "lines",
                     (json_int_t)st->lines, "records", (json_int_t)st->records,
                     "records_decoded", (json_int_t)st->decoded, "events",
                     (json_int_t)st->events, "matches", (json_int_t)st->matches, "incidents",
                     (json_int_t)announced_n, "long_lines_skipped", (json_int_t)st->long_lines,
                     "garbage_bytes_skipped", (json_int_t)st->garbage_bytes, "json_errors",
                     (json_int_t)(st->json_errors + st->json_invalid), "nul_bytes",
                     (json_int_t)st->nul_bytes, "by_severity", by_sev);
}

static int write_json(FILE *fp, const struct cfw_incidents *set,
                      const struct cfw_pipeline_stats *st)
{
    json_t *list = json_array();
    json_t *root;
    struct cfw_buf b;
    int rc;

    for (size_t i = 0; i < cfw_incidents_count(set); i++) {
        const struct cfw_incident *inc = cfw_incidents_at(set, i);
        if (announced(inc)) {
            json_array_append_new(list, cfw_report_incident_json(inc));
        }
    }
    root = json_pack("{s:i, s:o, s:o}", "version", 1, "incidents", list, "stats",
                     stats_json(set, st));
    /* the same bytes as json_dumpf(root, fp, CFW_JSONDUMP_FLAGS) and a newline, in one write */
    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    rc = cfw_jsondump_append(&b, root);
    if (rc != CFW_JSONDUMP_FULL && cfw_buf_putc(&b, '\n') == 0) {
        if (fwrite(b.data, 1, b.len, fp) != b.len) {
            rc = -1;
        }
    } else {
        /* a report over the cap (none seen): jansson writes it piece by piece */
        rc = json_dumpf(root, fp, CFW_JSONDUMP_FLAGS);
        fputc('\n', fp);
    }
    cfw_buf_free(&b);
    json_decref(root);
    return rc;
}

void cfw_report_github_escape(struct cfw_buf *b, const char *s, bool prop)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '%':
            cfw_buf_puts(b, "%25");
            break;
        case '\r':
            cfw_buf_puts(b, "%0D");
            break;
        case '\n':
            cfw_buf_puts(b, "%0A");
            break;
        case ':':
            cfw_buf_puts(b, prop ? "%3A" : ":");
            break;
        case ',':
            cfw_buf_puts(b, prop ? "%2C" : ",");
            break;
        default:
            cfw_buf_putc(b, *s);
        }
    }
}

/* One incident as a GitHub workflow command (an annotation). */
static void write_github_one(FILE *fp, const struct cfw_incident *inc)
{
    int s = (int)inc->severity;
    const char *level = s >= CFW_SEV_ERROR ? "error" : s == CFW_SEV_WARNING ? "warning" : "notice";
    struct cfw_buf b;
    char *full =
        cfw_xasprintf("[%s] %s (seen %llu time%s)%s%s", inc->rule, inc->title,
                      (unsigned long long)inc->occurrences, inc->occurrences == 1 ? "" : "s",
                      inc->hint[0] != '\0' ? "\n" : "", inc->hint);

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    cfw_buf_printf(&b, "::%s ", level);
    if (strcmp(inc->first.input, CFW_REPORT_STDIN) != 0) {
        cfw_buf_puts(&b, "file=");
        cfw_report_github_escape(&b, inc->first.input, true);
        cfw_buf_printf(&b, ",line=%llu,", (unsigned long long)inc->first.line);
    } /* else no file in the repository to point at: an annotation of the run itself */
    cfw_buf_puts(&b, "title=");
    cfw_report_github_escape(&b, inc->title, true);
    cfw_buf_puts(&b, "::");
    cfw_report_github_escape(&b, full, false);
    fprintf(fp, "%s\n", b.data);
    cfw_buf_free(&b);
    free(full);
}

static int write_github(FILE *fp, const struct cfw_report_opts *opts,
                        const struct cfw_incidents *set)
{
    for (int s = CFW_SEV_CRITICAL; s >= (int)opts->min_severity; s--) {
        for (size_t i = 0; i < cfw_incidents_count(set); i++) {
            const struct cfw_incident *inc = cfw_incidents_at(set, i);
            if (!announced(inc) || (int)inc->severity != s) {
                continue;
            }
            write_github_one(fp, inc);
        }
    }
    return 0;
}

/*
 * Prints text line by line, the first line after first and the others after indent, lines
 * longer than wrap (0: no wrapping) broken at a space, control bytes replaced (the text comes
 * from logs: it never drives the terminal).
 */
/* A byte of outside text as the text report shows it: a control byte (but tab) as '?'. */
static int shown(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f ? '?' : c;
}

/* Outside text on one line of the text report (an evidence line, an input's name). */
static void print_clean(FILE *fp, const char *s)
{
    for (; *s != '\0'; s++) {
        fputc(shown((unsigned char)*s), fp);
    }
}

static void print_indented(FILE *fp, const char *first, const char *indent, const char *text,
                           size_t wrap, size_t max_lines)
{
    size_t lines = 0;
    const char *p = text;

    while (*p != '\0' && lines < max_lines) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
        bool broken = false;

        if (wrap > 0 && len > wrap) {
            size_t cut = wrap;
            while (cut > wrap / 2 && p[cut] != ' ') {
                cut--;
            }
            if (p[cut] == ' ') {
                len = cut;
                broken = true;
            }
        }
        fprintf(fp, "%s", lines == 0 ? first : indent);
        for (size_t i = 0; i < len; i++) {
            fputc(shown((unsigned char)p[i]), fp);
        }
        fputc('\n', fp);
        lines++;
        p += len;
        if (*p == '\n' || broken) {
            p++;
        }
    }
    if (*p != '\0') {
        fprintf(fp, "%s...\n", indent);
    }
}

static int write_text(FILE *fp, const struct cfw_report_opts *opts,
                      const struct cfw_incidents *set, const struct cfw_pipeline_stats *st)
{
    static const char *const colors[] = {"\033[36m", "\033[33m", "\033[31m", "\033[1;31m"};
    const char *reset = opts->color ? "\033[0m" : "";
    size_t per_sev[4] = {0};
    size_t total = 0;

    for (int s = CFW_SEV_CRITICAL; s >= CFW_SEV_INFO; s--) {
        bool header = false;
        for (size_t i = 0; i < cfw_incidents_count(set); i++) {
            const struct cfw_incident *inc = cfw_incidents_at(set, i);
            char upper[16];
            const char *name;
            size_t k;
            if (!announced(inc) || (int)inc->severity != s) {
                continue;
            }
            per_sev[s]++;
            total++;
            if (s < (int)opts->min_severity) {
                continue;
            }
            name = cfw_severity_name(inc->severity);
            for (k = 0; name[k] != '\0' && k + 1 < sizeof(upper); k++) {
                upper[k] = (char)(name[k] - ('a' - 'A'));
            }
            upper[k] = '\0';
            if (!header) {
                fprintf(fp, "%s%s%s\n", opts->color ? colors[s] : "", upper, reset);
                header = true;
            }
            fprintf(fp, "  %s%s%s  [%s]\n", opts->color ? "\033[1m" : "", inc->title, reset,
                    inc->rule);
            fputs("    at ", fp);
            print_clean(fp, inc->first.input);
            fprintf(fp, ":%llu", (unsigned long long)inc->first.line);
            if (inc->occurrences > 1) {
                fprintf(fp, ", seen %llu times, last at ", (unsigned long long)inc->occurrences);
                print_clean(fp, inc->last.input);
                fprintf(fp, ":%llu", (unsigned long long)inc->last.line);
            }
            fputc('\n', fp);
            if (inc->occurrences > inc->count) {
                fprintf(fp, "    failed again after a fix: %llu time%s since ",
                        (unsigned long long)inc->count, inc->count == 1 ? "" : "s");
                print_clean(fp, inc->first.input);
                fprintf(fp, ":%llu\n", (unsigned long long)inc->first.line);
            }
            if (inc->state == CFW_INCIDENT_RESOLVED && inc->resolved_by != NULL) {
                /* a later successful deploy in the same input: fixed, shown, not failing; the
                 * evidence quotes the line, control bytes and all */
                fputs("    resolved: fixed by ", fp);
                print_clean(fp, inc->resolved_by);
                fputc('\n', fp);
            }
            if (inc->hint[0] != '\0') {
                print_indented(fp, "    fix: ", "         ", inc->hint, 90, 30);
            }
            print_indented(fp, "    | ", "    | ", inc->sample, 0, 12);
            fputc('\n', fp);
        }
    }
    fprintf(fp, "cfwatchd: %zu incident%s", total, total == 1 ? "" : "s");
    if (total > 0) {
        const char *sep = " (";
        for (int s = CFW_SEV_CRITICAL; s >= CFW_SEV_INFO; s--) {
            if (per_sev[s] > 0) {
                fprintf(fp, "%s%zu %s", sep, per_sev[s], cfw_severity_name((enum cfw_severity)s));
                sep = ", ";
            }
        }
        fputc(')', fp);
    }
    fprintf(fp, " in %llu input%s, %llu lines, %llu events", (unsigned long long)st->inputs,
            st->inputs == 1 ? "" : "s", (unsigned long long)st->lines,
            (unsigned long long)st->events);
    if (st->long_lines > 0 || st->garbage_bytes > 0 || st->json_errors > 0) {
        fprintf(fp, "; skipped %llu over-long lines, %llu garbage bytes, %llu bad JSON values",
                (unsigned long long)st->long_lines, (unsigned long long)st->garbage_bytes,
                (unsigned long long)st->json_errors);
    }
    fputc('\n', fp);
    return 0;
}

int cfw_report_write(FILE *fp, const struct cfw_report_opts *opts,
                     const struct cfw_incidents *set, const struct cfw_pipeline_stats *stats)
{
    switch (opts->format) {
    case CFW_REPORT_JSON:
        return write_json(fp, set, stats);
    case CFW_REPORT_GITHUB:
        return write_github(fp, opts, set);
    case CFW_REPORT_TEXT:
        return write_text(fp, opts, set, stats);
    }
    return -1;
}
