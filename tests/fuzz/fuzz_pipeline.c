/*
 * Fuzz target: bytes through the whole --once path: framer, decoder, the built-in rule packs (and
 * two fuzz rules: one that continues, one with a threshold and section templates), incidents on
 * an injected clock (reminders and resolves fire), then the report in all three formats into a
 * memory stream. The first bytes pick the input format, small framer caps, the feed size, a
 * source name, the incident key template and the incident cap. Checked: every incident is
 * well-formed (UTF-8 title, hint and sample within caps); the JSON report parses (jansson) and
 * lists as many incidents as its stats count; every line of the GitHub report is one workflow
 * command ("::"), so log text cannot start another; the text report without colour holds no
 * control bytes but newline and tab (log text cannot drive the terminal).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cfwatchd/incident.h"
#include "cfwatchd/log.h"
#include "cfwatchd/pipeline.h"
#include "cfwatchd/report.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/yaml.h"
#include "fuzz_rules.h"
#include "fuzz_util.h"

static const char FUZZ_RULES[] =
    "- id: fuzz-any-error\n"
    "  pattern: '(?<errname>[A-Z][A-Za-z]*(?:Error|Exception))'\n"
    "  severity: info\n"
    "  continue: true\n"
    "  key: '{rule}/{errname}'\n"
    "  title: '{?errname}{errname} in {script}{/errname}{!script} (no script){/script}'\n"
    "  hint: 'seen {{literally}} {errname} {?module}module {module}{/module}'\n"
    "- id: fuzz-threshold\n"
    "  pattern: '(?i)warn(?:ing)?:?\\s*(?<what>\\S{1,40})'\n"
    "  severity: warning\n"
    "  continue: true\n"
    "  threshold: {count: 2, window: 1m}\n"
    "  repeat_interval: 2s\n"
    "  resolve_after: 3s\n"
    "  title: 'warning {what}'\n";

static struct cfw_ruleset *rules;

static void check_text(const char *s, size_t max)
{
    FUZZ_CHECK(s != NULL);
    FUZZ_CHECK(fuzz_utf8_clean(s, strlen(s)));
    FUZZ_CHECK(strlen(s) <= max);
}

static void on_transition(const struct cfw_incident *inc, enum cfw_transition t, void *arg)
{
    uint64_t *transitions = arg;

    (*transitions)++;
    FUZZ_CHECK(cfw_transition_name(t) != NULL);
    FUZZ_CHECK(inc->key != NULL && inc->rule != NULL);
    check_text(inc->key, 64u * 1024u);
    check_text(inc->title, 64u * 1024u);
    check_text(inc->hint, 64u * 1024u);
    check_text(inc->sample, CFW_INCIDENT_SAMPLE_MAX);
    FUZZ_CHECK(inc->count >= 1);
    FUZZ_CHECK(t != CFW_TRANSITION_RESOLVE || inc->state == CFW_INCIDENT_RESOLVED);
    FUZZ_CHECK(t == CFW_TRANSITION_RESOLVE || inc->state == CFW_INCIDENT_OPEN);
}

static char *report(const struct cfw_incidents *set, const struct cfw_pipeline_stats *st,
                    enum cfw_report_format fmt, bool color, size_t *len)
{
    struct cfw_report_opts o = {.format = fmt, .color = color, .min_severity = CFW_SEV_INFO};
    char *buf = NULL;
    FILE *fp = open_memstream(&buf, len);

    FUZZ_CHECK(fp != NULL);
    FUZZ_CHECK(cfw_report_write(fp, &o, set, st) == 0);
    FUZZ_CHECK(fclose(fp) == 0);
    return buf;
}

static void check_reports(const struct cfw_incidents *set, const struct cfw_pipeline_stats *st,
                          bool color)
{
    json_error_t jerr;
    json_t *root, *list, *count;
    size_t len;
    char *out;

    out = report(set, st, CFW_REPORT_JSON, false, &len);
    root = json_loadb(out, len, 0, &jerr);
    if (root == NULL) {
        fprintf(stderr, "JSON report does not parse: %s (line %d)\n", jerr.text, jerr.line);
    }
    FUZZ_CHECK(root != NULL);
    list = json_object_get(root, "incidents");
    count = json_object_get(json_object_get(root, "stats"), "incidents");
    FUZZ_CHECK(json_is_array(list) && json_is_integer(count));
    FUZZ_CHECK(json_array_size(list) == (size_t)json_integer_value(count));
    json_decref(root);
    free(out);

    out = report(set, st, CFW_REPORT_GITHUB, false, &len);
    for (size_t i = 0; i < len; i++) {
        FUZZ_CHECK(i + 1 < len && out[i] == ':' && out[i + 1] == ':');
        while (i < len && out[i] != '\n') {
            FUZZ_CHECK(out[i] != '\r');
            i++;
        }
    }
    free(out);

    out = report(set, st, CFW_REPORT_TEXT, color, &len);
    for (size_t i = 0; !color && i < len; i++) {
        unsigned char c = (unsigned char)out[i];
        FUZZ_CHECK(c >= 0x20 || c == '\n' || c == '\t');
        FUZZ_CHECK(c != 0x7f);
    }
    free(out);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cfw_log_init(CFW_LOG_ERR);
    rules = fuzz_rules_load("fuzz-rules", FUZZ_RULES, true, CFW_SCAN_FAST);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t chunks[] = {1, 7, 64, 4096, 1u << 20, 3, 512, 33};
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    uint8_t knobs = fuzz_u8(&in);
    struct fuzz_clock clk = {.mono = 1000, .wall = 1786867647480LL};
    struct cfw_clock clock = {fuzz_clock_mono, fuzz_clock_wall, &clk};
    struct cfw_incident_opts iopts = {0};
    struct cfw_framer_opts fopts = {0};
    struct cfw_incidents *set;
    struct cfw_pipeline *p;
    struct cfw_pipeline_input *input;
    uint64_t transitions = 0;
    size_t chunk = chunks[knobs & 7];

    fopts.format = (enum cfw_input_format)(mode & 3);
    if ((mode & 4) != 0) {
        fopts.max_line = 200;
        fopts.max_record = 600;
        fopts.max_block_lines = 6;
        fopts.max_json = 800;
        fopts.max_depth = 6;
    }
    iopts.key_template = (knobs & 8) != 0 ? "{rule}/{script}/{module}/{file}" : NULL;
    iopts.max_incidents = (knobs & 16) != 0 ? 3 : 0;
    iopts.repeat_interval_ms = (knobs & 32) != 0 ? 1500 : 0;
    iopts.resolve_after_ms = (knobs & 32) != 0 ? 4000 : 0;
    set = cfw_incidents_new(&iopts, on_transition, &transitions);
    p = cfw_pipeline_new(rules, set, &clock);
    input = cfw_pipeline_input_new(p, (mode & 8) != 0 ? "deploy.log" : "<stdin>",
                                   (mode & 16) != 0 ? "deploys" : NULL, &fopts);
    for (size_t off = 0; off < in.n; off += chunk) {
        size_t n = in.n - off < chunk ? in.n - off : chunk;

        cfw_pipeline_input_feed(input, (const char *)in.p + off, n);
        clk.mono += 700;
        clk.wall += 700;
        cfw_incidents_tick(set, clk.mono, clk.wall);
        if ((mode & 32) != 0 && cfw_pipeline_input_pending(input)) {
            cfw_pipeline_input_flush(input);
        }
    }
    cfw_pipeline_input_finish(input);
    if ((knobs & 64) != 0) {
        /* the reports of the open incidents too (half the inputs: they cost most of a run) */
        check_reports(set, cfw_pipeline_stats(p), (mode & 64) != 0);
    }
    /* later: reminders and resolves, then the report of what is left */
    clk.mono += 5000;
    clk.wall += 5000;
    cfw_incidents_tick(set, clk.mono, clk.wall);
    clk.mono += 5LL * 3600 * 1000;
    clk.wall += 5LL * 3600 * 1000;
    cfw_incidents_tick(set, clk.mono, clk.wall);
    check_reports(set, cfw_pipeline_stats(p), (mode & 128) != 0);
    FUZZ_CHECK(cfw_incidents_open_count(set) <= cfw_incidents_count(set));
    cfw_pipeline_input_free(input);
    cfw_pipeline_free(p);
    cfw_incidents_free(set);
    return 0;
}
