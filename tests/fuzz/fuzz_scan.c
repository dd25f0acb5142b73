/*
 * Fuzz target, differential: the same bytes through two pipelines that differ only in the scan
 * mode, FAST (the prefilter drops records no rule can match before decoding) and FULL (every
 * record decoded), with the built-in packs and rules written to stress the prefilter: literals
 * with digits and exponents, caseless literals with k and s, \Q..\E, a JSON-escapable byte,
 * spaces matched by \s+, a log-only rule, an exception-only rule, and a rule without a literal
 * for one kind. Checked: both give the same incidents (key, rule, count, first and last
 * position, sample, fields) and the same number of matches.
 *
 * The first byte picks the input format, the feed size and the way in: through a framer (as
 * --once and file sources do) or line by line as already-framed records of one kind (as the
 * Logpush receiver and the API pollers do, NUL bytes and all).
 */
#include <stdio.h>
#include <string.h>

#include "cfwatchd/incident.h"
#include "cfwatchd/log.h"
#include "cfwatchd/pipeline.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/yaml.h"
#include "fuzz_rules.h"
#include "fuzz_util.h"

static const char SCAN_RULES[] =
    "- id: scan-digits\n"
    "  pattern: 'code (?<n>\\d+) at 0\\.5e3 ok'\n"
    "- id: scan-caseless\n"
    "  pattern: '(?i)kelvin sky'\n"
    "- id: scan-quoted\n"
    "  pattern: '\\Qa+b/c\\E \"x\"'\n"
    "- id: scan-spaces\n"
    "  pattern: 'alpha\\s+beta\\s*:\\s*gamma'\n"
    "- id: scan-log-only\n"
    "  pattern: 'needle <&> haystack'\n"
    "  when: {kind: log}\n"
    "- id: scan-exception-only\n"
    "  pattern: 'Boom'\n"
    "  when: {kind: [exception]}\n"
    "- id: scan-no-literal-json\n"
    "  pattern: '^\\[\\d+,'\n"
    "  when: {kind: json}\n"
    "- id: scan-threshold\n"
    "  pattern: 'took (?<ms>\\d+) ms'\n"
    "  when: {ms: '> 100'}\n"
    "- id: scan-unicode\n"
    "  pattern: 'caf\xc3\xa9 \xe2\x9c\x98'\n";

static struct cfw_ruleset *fast_rules;
static struct cfw_ruleset *full_rules;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cfw_log_init(CFW_LOG_ERR);
    fast_rules = fuzz_rules_load("scan-rules", SCAN_RULES, false, CFW_SCAN_FAST);
    full_rules = fuzz_rules_load("scan-rules", SCAN_RULES, false, CFW_SCAN_FULL);
    return 0;
}

static bool str_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void report_diff(const struct cfw_incident *a, const struct cfw_incident *b)
{
    fprintf(stderr, "fast: %s count %llu line %llu\nfull: %s count %llu line %llu\n",
            a != NULL ? a->key : "-", a != NULL ? (unsigned long long)a->count : 0,
            a != NULL ? (unsigned long long)a->first.line : 0, b != NULL ? b->key : "-",
            b != NULL ? (unsigned long long)b->count : 0,
            b != NULL ? (unsigned long long)b->first.line : 0);
}

static void compare(const struct cfw_incidents *fast, const struct cfw_incidents *full)
{
    size_t n = cfw_incidents_count(full);

    if (cfw_incidents_count(fast) != n) {
        for (size_t i = 0; i < n || i < cfw_incidents_count(fast); i++) {
            report_diff(i < cfw_incidents_count(fast) ? cfw_incidents_at(fast, i) : NULL,
                        i < n ? cfw_incidents_at(full, i) : NULL);
        }
    }
    FUZZ_CHECK(cfw_incidents_count(fast) == n);
    for (size_t i = 0; i < n; i++) {
        const struct cfw_incident *a = cfw_incidents_at(fast, i);
        const struct cfw_incident *b = cfw_incidents_at(full, i);

        if (!str_same(a->key, b->key) || a->count != b->count) {
            report_diff(a, b);
        }
        FUZZ_CHECK(str_same(a->key, b->key));
        FUZZ_CHECK(str_same(a->rule, b->rule));
        FUZZ_CHECK(a->count == b->count);
        FUZZ_CHECK(a->state == b->state);
        FUZZ_CHECK(str_same(a->first.input, b->first.input));
        FUZZ_CHECK(a->first.line == b->first.line && a->last.line == b->last.line);
        FUZZ_CHECK(str_same(a->sample, b->sample));
        FUZZ_CHECK(str_same(a->title, b->title));
        FUZZ_CHECK(a->fields.n == b->fields.n);
        for (size_t k = 0; k < a->fields.n; k++) {
            FUZZ_CHECK(str_same(a->fields.v[k].key, b->fields.v[k].key));
            FUZZ_CHECK(str_same(a->fields.v[k].value, b->fields.v[k].value));
        }
    }
}

/* One way through: a framer over chunks, or each line as a record of one kind. */
static void run(struct cfw_pipeline *p, const uint8_t *data, size_t size, uint8_t mode)
{
    static const size_t chunks[] = {1, 7, 64, 4096, 1u << 20, 3, 512, 33};
    size_t chunk = chunks[(mode >> 2) & 7];

    if ((mode & 32) == 0) {
        struct cfw_framer_opts fopts = {.format = (enum cfw_input_format)(mode & 3)};
        struct cfw_pipeline_input *in = cfw_pipeline_input_new(p, "scan.log", NULL, &fopts);

        for (size_t off = 0; off < size; off += chunk) {
            size_t n = size - off < chunk ? size - off : chunk;

            cfw_pipeline_input_feed(in, (const char *)data + off, n);
        }
        cfw_pipeline_input_free(in);
        return;
    }
    for (size_t off = 0, line = 1; off < size; line++) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t n = nl != NULL ? (size_t)(nl - data) - off : size - off;
        char *text = cfw_xmalloc(n + 1);
        struct cfw_record rec = {
            .kind = (mode & 64) != 0 ? CFW_REC_JSON : CFW_REC_TEXT,
            .text = text,
            .len = n, /* NUL bytes included */
            .input = "logpush:scan",
            .line = line,
            .line_end = line,
        };

        memcpy(text, data + off, n);
        text[n] = '\0';
        cfw_pipeline_record(p, &rec, "scan");
        free(text);
        off += n + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    struct fuzz_clock clk = {.mono = 1000, .wall = 1786867647480LL};
    struct cfw_clock clock = {fuzz_clock_mono, fuzz_clock_wall, &clk};
    struct cfw_incident_opts iopts = {.key_template = "{rule}/{script}/{module}/{n}/{ms}"};
    struct cfw_incidents *fast_set = cfw_incidents_new(&iopts, NULL, NULL);
    struct cfw_incidents *full_set = cfw_incidents_new(&iopts, NULL, NULL);
    struct cfw_pipeline *fast = cfw_pipeline_new(fast_rules, fast_set, &clock);
    struct cfw_pipeline *full = cfw_pipeline_new(full_rules, full_set, &clock);

    run(fast, in.p, in.n, mode);
    run(full, in.p, in.n, mode);
    compare(fast_set, full_set);
    FUZZ_CHECK(cfw_pipeline_stats(fast)->matches == cfw_pipeline_stats(full)->matches);
    FUZZ_CHECK(cfw_pipeline_stats(fast)->records == cfw_pipeline_stats(full)->records);
    FUZZ_CHECK(cfw_pipeline_stats(fast)->decoded <= cfw_pipeline_stats(full)->decoded);
    cfw_pipeline_free(fast);
    cfw_pipeline_free(full);
    cfw_incidents_free(fast_set);
    cfw_incidents_free(full_set);
    return 0;
}
