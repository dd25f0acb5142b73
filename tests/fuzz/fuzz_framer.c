/*
 * Fuzz target: the framer. The input is cut at a fuzzer-chosen point into two feeds and framed in
 * the format the first byte picks (auto, lines, json, wrangler-log) with caps the second byte
 * picks (small ones, so that over-long lines, full blocks and too large or too deep JSON values
 * are hit), then finished. Checked: every record's text is NUL-terminated at len and holds no
 * NUL, 1 <= line <= line_end <= lines of the input (LF and CR line ends), the caps hold, JSON
 * records start a value, the record count matches the stats, and (without an idle flush between
 * the feeds) framing in two feeds gives exactly the records of framing in one, and framing
 * without the fast check of JSON objects (jsonline.h) gives exactly the records and counts of
 * framing with it, and with records that point at the bytes fed (opts.unterminated) the same
 * records; and where the framer is at rest at the first line start after the cut, a
 * framer started there (cfw_framer_new_mid, a file scanned in parts) frames the rest alike.
 */
#include <string.h>

#include "cfwatchd/framer.h"
#include "cfwatchd/log.h"
#include "framer_int.h"
#include "fuzz_util.h"

#define INPUT_NAME "fuzz-input"

struct collect {
    const struct cfw_framer_opts *o; /* effective caps */
    uint64_t max_line_no;
    uint64_t line_shift; /* added to the lines traced (a framer started mid-input) */
    uint64_t records;
    struct cfw_buf trace; /* every record serialised, for the comparison */
};

static size_t or_default(size_t v, size_t def)
{
    return v != 0 ? v : def;
}

static void on_record(const struct cfw_record *rec, void *arg)
{
    struct collect *c = arg;
    const struct cfw_framer_opts *o = c->o;
    size_t max_line = or_default(o->max_line, CFW_FRAMER_MAX_LINE_DEFAULT);
    size_t max_record = or_default(o->max_record, CFW_FRAMER_MAX_RECORD_DEFAULT);
    size_t max_lines = or_default(o->max_block_lines, CFW_FRAMER_MAX_BLOCK_LINES_DEFAULT);
    size_t max_json = or_default(o->max_json, CFW_FRAMER_MAX_JSON_DEFAULT);

    c->records++;
    FUZZ_CHECK(rec->text != NULL);
    FUZZ_CHECK(rec->unterminated ? o->unterminated : rec->text[rec->len] == '\0');
    FUZZ_CHECK(memchr(rec->text, '\0', rec->len) == NULL);
    FUZZ_CHECK(rec->line >= 1);
    FUZZ_CHECK(rec->line <= rec->line_end);
    FUZZ_CHECK(rec->line_end <= c->max_line_no);
    FUZZ_CHECK(rec->input != NULL && strcmp(rec->input, INPUT_NAME) == 0);
    FUZZ_CHECK(rec->time == NULL || strlen(rec->time) < 48);
    if (rec->kind == CFW_REC_JSON) {
        FUZZ_CHECK(rec->len > 0 && rec->len <= max_json);
        FUZZ_CHECK(rec->text[0] == '{' || rec->text[0] == '[');
    } else {
        size_t nl = 0;

        FUZZ_CHECK(rec->kind == CFW_REC_TEXT);
        FUZZ_CHECK(rec->len <= (max_record > max_line ? max_record : max_line));
        for (size_t i = 0; i < rec->len; i++) {
            nl += rec->text[i] == '\n';
        }
        FUZZ_CHECK(nl + 1 <= (max_lines > 1 ? max_lines : 1));
        FUZZ_CHECK(nl <= rec->line_end - rec->line);
    }
    cfw_buf_printf(&c->trace, "%d %llu %llu %s %zu:", (int)rec->kind,
                   (unsigned long long)(rec->line + c->line_shift),
                   (unsigned long long)(rec->line_end + c->line_shift),
                   rec->time != NULL ? rec->time : "-", rec->len);
    cfw_buf_append(&c->trace, rec->text, rec->len);
    cfw_buf_putc(&c->trace, '\n');
}

/* Feeds an exact-size copy that is wiped and freed at once: the framer must keep what it needs. */
static void feed_copy(struct cfw_framer *f, const char *data, size_t n)
{
    char *part = cfw_xmalloc(n > 0 ? n : 1);

    memcpy(part, data, n);
    cfw_framer_feed(f, part, n);
    memset(part, 0xA5, n);
    free(part);
}

static void frame(const struct cfw_framer_opts *o, const char *data, size_t n, size_t split,
                  bool flush, bool fast, struct collect *c, struct cfw_framer_stats *st)
{
    struct cfw_framer *f = cfw_framer_new(INPUT_NAME, o, on_record, c);

    cfw_framer_set_fast_json(f, fast);
    feed_copy(f, data, split);
    if (flush) {
        cfw_framer_flush(f);
    }
    feed_copy(f, data + split, n - split);
    cfw_framer_finish(f);
    FUZZ_CHECK(!cfw_framer_pending(f));
    FUZZ_CHECK(cfw_framer_stats(f)->records == c->records);
    FUZZ_CHECK(cfw_framer_stats(f)->bytes == n);
    FUZZ_CHECK(o->format == CFW_FMT_AUTO || cfw_framer_format(f) == o->format);
    *st = *cfw_framer_stats(f);
    cfw_framer_free(f);
}

/*
 * Frames data in two feeds, the first to the first line start at or after split; when the framer
 * is at rest there, a framer started there with cfw_framer_new_mid must make the records and
 * counts that follow.
 */
static void check_mid(const struct cfw_framer_opts *o, const char *data, size_t n, size_t split,
                      uint64_t max_line_no)
{
    struct collect whole = {
        .o = o, .max_line_no = max_line_no, .trace = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};
    struct collect part = whole;
    struct cfw_framer *f = cfw_framer_new(INPUT_NAME, o, on_record, &whole);
    struct cfw_framer_stats at, st;
    struct cfw_framer_mid mid;
    struct cfw_framer *g;
    const char *nl = split < n ? memchr(data + split, '\n', n - split) : NULL;
    size_t start = nl != NULL ? (size_t)(nl - data) + 1 : n;
    size_t trace_at;
    uint64_t records_at;

    part.trace = (struct cfw_buf)CFW_BUF_INIT(CFW_BUF_MAX_BUILT);
    feed_copy(f, data, start);
    if (!cfw_framer_at_rest(f) || !cfw_framer_mid_of(f, &mid)) {
        cfw_framer_free(f);
        cfw_buf_free(&whole.trace);
        cfw_buf_free(&part.trace);
        return;
    }
    at = *cfw_framer_stats(f);
    trace_at = whole.trace.len;
    records_at = whole.records;
    feed_copy(f, data + start, n - start);
    cfw_framer_finish(f);
    st = *cfw_framer_stats(f);
    part.line_shift = at.lines;
    part.records = records_at;
    g = cfw_framer_new_mid(INPUT_NAME, o, on_record, &part, &mid);
    feed_copy(g, data + start, n - start);
    cfw_framer_finish(g);
    FUZZ_CHECK(part.records == whole.records);
    FUZZ_CHECK(part.trace.len == whole.trace.len - trace_at);
    FUZZ_CHECK(part.trace.len == 0 ||
               memcmp(part.trace.data, whole.trace.data + trace_at, part.trace.len) == 0);
    FUZZ_CHECK(cfw_framer_stats(g)->lines == st.lines - at.lines);
    FUZZ_CHECK(cfw_framer_stats(g)->records == st.records - at.records);
    FUZZ_CHECK(cfw_framer_stats(g)->json_errors == st.json_errors - at.json_errors);
    FUZZ_CHECK(cfw_framer_stats(g)->long_lines == st.long_lines - at.long_lines);
    FUZZ_CHECK(cfw_framer_stats(g)->nul_bytes == st.nul_bytes - at.nul_bytes);
    FUZZ_CHECK(cfw_framer_stats(g)->garbage_bytes == st.garbage_bytes - at.garbage_bytes);
    cfw_framer_free(g);
    cfw_framer_free(f);
    cfw_buf_free(&whole.trace);
    cfw_buf_free(&part.trace);
}

FUZZ_INIT_QUIET

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t lines[] = {0, 16, 80, 300};
    static const size_t records[] = {0, 40, 200, 1000};
    static const size_t blocks[] = {0, 1, 3, 8};
    static const size_t jsons[] = {0, 24, 100, 600};
    static const size_t depths[] = {0, 1, 3, 10};
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    uint8_t caps = fuzz_u8(&in);
    uint16_t cut = fuzz_u16(&in);
    struct cfw_framer_opts o = {0};
    struct collect one = {.o = &o, .max_line_no = 1, .trace = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};
    struct collect two = {.o = &o, .max_line_no = 1, .trace = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};
    struct collect slow = {.o = &o, .max_line_no = 1, .trace = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};
    struct cfw_framer_stats st_one, st_two, st_slow;
    bool flush = (mode & 4) != 0;
    size_t split = in.n > 0 ? cut % (in.n + 1) : 0;

    o.format = (enum cfw_input_format)(mode & 3);
    o.max_line = lines[caps & 3];
    o.max_record = records[(caps >> 2) & 3];
    o.max_block_lines = blocks[(caps >> 4) & 3];
    o.max_json = jsons[(caps >> 6) & 3];
    o.max_depth = depths[(mode >> 3) & 3];
    for (size_t i = 0; i < in.n; i++) {
        /* LF ends a line; so may CR, in an input the framer takes as CR-only (an upper bound) */
        one.max_line_no += in.p[i] == '\n' || in.p[i] == '\r';
    }
    two.max_line_no = one.max_line_no;
    slow.max_line_no = one.max_line_no;
    frame(&o, (const char *)in.p, in.n, split, flush, true, &two, &st_two);
    frame(&o, (const char *)in.p, in.n, split, flush, false, &slow, &st_slow);
    FUZZ_CHECK(slow.records == two.records);
    FUZZ_CHECK(slow.trace.len == two.trace.len);
    FUZZ_CHECK(slow.trace.len == 0 || memcmp(slow.trace.data, two.trace.data, slow.trace.len) == 0);
    FUZZ_CHECK(memcmp(&st_slow, &st_two, sizeof(st_slow)) == 0);
    {
        /* records that point at the bytes fed (opts.unterminated): the same bytes and counts */
        struct cfw_framer_opts ou = o;
        struct collect un = {
            .o = &ou, .max_line_no = one.max_line_no, .trace = CFW_BUF_INIT(CFW_BUF_MAX_BUILT)};
        struct cfw_framer_stats st_un;

        ou.unterminated = true;
        frame(&ou, (const char *)in.p, in.n, split, flush, true, &un, &st_un);
        FUZZ_CHECK(un.trace.len == two.trace.len);
        FUZZ_CHECK(un.trace.len == 0 || memcmp(un.trace.data, two.trace.data, un.trace.len) == 0);
        FUZZ_CHECK(memcmp(&st_un, &st_two, sizeof(st_un)) == 0);
        cfw_buf_free(&un.trace);
    }
    if (!flush) {
        frame(&o, (const char *)in.p, in.n, in.n, false, true, &one, &st_one);
        FUZZ_CHECK(one.records == two.records);
        FUZZ_CHECK(one.trace.len == two.trace.len);
        FUZZ_CHECK(one.trace.len == 0 || memcmp(one.trace.data, two.trace.data, one.trace.len) == 0);
        check_mid(&o, (const char *)in.p, in.n, split, one.max_line_no);
    }
    cfw_buf_free(&one.trace);
    cfw_buf_free(&two.trace);
    cfw_buf_free(&slow.trace);
    return 0;
}
