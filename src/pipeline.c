/* The pipeline from bytes to incidents: framer -> decoder -> matcher -> incidents. */
#include "cfwatchd/pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "cfwatchd/metrics.h"
#include "cfwatchd/secrets.h"

struct cfw_pipeline {
    struct cfw_ruleset *rules;
    struct cfw_incidents *incidents;
    const struct cfw_pipeline_tap *tap;
    struct cfw_clock clock;
    struct cfw_pipeline_stats stats;
    struct cfw_decode_stats dstats;
    char *text; /* an unterminated candidate's text, terminated for the decoder */
    size_t text_cap;
};

struct cfw_pipeline_input {
    struct cfw_pipeline *p;
    struct cfw_framer *framer;
    char *source;
    struct cfw_fields fields; /* added to every event that lacks them */
    bool finished;
};

/* What one record's events need to reach the matcher. */
struct record_ctx {
    struct cfw_pipeline *p;
    const char *source;
    const struct cfw_fields *fields;
};

static int64_t sys_mono(void *arg)
{
    (void)arg;
    return cfw_now_mono_ms();
}

static int64_t sys_wall(void *arg)
{
    (void)arg;
    return cfw_now_wall_ms();
}

struct cfw_pipeline *cfw_pipeline_new(struct cfw_ruleset *rules, struct cfw_incidents *incidents,
                                      const struct cfw_clock *clock)
{
    struct cfw_pipeline *p = cfw_xcalloc(1, sizeof(*p));

    p->rules = rules;
    p->incidents = incidents;
    if (clock != NULL) {
        p->clock = *clock;
    } else {
        p->clock.mono_ms = sys_mono;
        p->clock.wall_ms = sys_wall;
    }
    return p;
}

void cfw_pipeline_free(struct cfw_pipeline *p)
{
    if (p != NULL) {
        free(p->text);
    }
    free(p);
}

void cfw_pipeline_set_rules(struct cfw_pipeline *p, struct cfw_ruleset *rules)
{
    p->rules = rules;
}

const struct cfw_pipeline_stats *cfw_pipeline_stats(const struct cfw_pipeline *p)
{
    return &p->stats;
}

void cfw_pipeline_metrics(const struct cfw_pipeline *p, struct cfw_metrics *m)
{
    const struct cfw_pipeline_stats *ps = &p->stats;
    const struct cfw_metric one[] = {
        {"cfwatchd_bytes_total", "counter", "Bytes read from all sources.", ps->bytes},
        {"cfwatchd_records_total", "counter", "Records framed.", ps->records},
        {"cfwatchd_records_decoded_total", "counter",
         "Records the prefilter let through to the decoder (all with rules.scan: full).",
         ps->decoded},
        {"cfwatchd_events_total", "counter", "Events of the decoded records.", ps->events},
        {"cfwatchd_matches_total", "counter", "Rule matches.", ps->matches},
        {"cfwatchd_lines_total", "counter", "Lines framed (finished streams).", ps->lines},
    };
    struct cfw_metrics_family *f;

    cfw_metrics_add(m, one, sizeof(one) / sizeof(one[0]));
    f = cfw_metrics_family(m, "cfwatchd_rule_matches_total", "counter", "Matches per rule.");
    for (size_t i = 0; i < cfw_ruleset_count(p->rules); i++) {
        const struct cfw_rule *r = cfw_ruleset_rule(p->rules, i);

        cfw_metrics_u64(f, CFW_LABELS("rule", cfw_rule_id(r)), cfw_rule_matches(r));
    }
}

void cfw_pipeline_set_tap(struct cfw_pipeline *p, const struct cfw_pipeline_tap *tap)
{
    p->tap = tap;
}

/* Where a match goes: the tap when there is one, else the incidents. */
static void observe(struct cfw_pipeline *p, const struct cfw_match *m, const struct cfw_event *ev)
{
    if (p->tap != NULL) {
        p->tap->observe(m, ev, p->tap->arg);
    } else {
        cfw_incidents_observe(p->incidents, m, ev, cfw_pipeline_now_mono(p),
                              cfw_pipeline_now_wall(p));
    }
}

int64_t cfw_pipeline_now_mono(const struct cfw_pipeline *p)
{
    return p->clock.mono_ms(p->clock.arg);
}

int64_t cfw_pipeline_now_wall(const struct cfw_pipeline *p)
{
    return p->clock.wall_ms(p->clock.arg);
}

static bool fields_hold_secret(const struct cfw_fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->v[i].value != NULL && cfw_secrets_found(f->v[i].value, strlen(f->v[i].value))) {
            return true;
        }
    }
    return false;
}

static void fields_scrubbed(struct cfw_fields *dst, const struct cfw_fields *src)
{
    for (size_t i = 0; i < src->n; i++) {
        char *v = cfw_secrets_scrub(src->v[i].value);
        cfw_fields_set(dst, src->v[i].key, v);
        free(v);
    }
}

/*
 * A match of a `success: true` rule: evidence that a deploy worked, which resolves the open
 * `resolve: success` incidents of its script ("fixed by <the line> at <input>:<line>").
 */
static void on_success(struct cfw_pipeline *p, const struct cfw_match *m,
                       const struct cfw_event *ev)
{
    const char *script = cfw_fields_get(&m->fields, "script");
    size_t len = ev->len;
    const char *nl;
    char *line, *evidence;

    if (script == NULL) {
        script = cfw_fields_get(&ev->fields, "script");
    }
    if (p->tap == NULL && !cfw_incidents_fixable(p->incidents, script, ev->input)) {
        return; /* (a --once -j worker cannot tell: the main process decides) */
    }
    nl = memchr(ev->text, '\n', ev->len);
    if (nl != NULL) {
        len = (size_t)(nl - ev->text);
    }
    if (len > 200) {
        len = 200;
    }
    line = cfw_xstrndup(ev->text, len);
    cfw_secrets_scrub_inplace(line, strlen(line));
    if (p->tap != NULL) {
        p->tap->succeed(script, ev->input, line, ev->line, p->tap->arg);
    } else {
        evidence = cfw_pipeline_evidence(line, ev->input, ev->line);
        cfw_incidents_succeed(p->incidents, script, ev->input, evidence, 0,
                              cfw_pipeline_now_mono(p), cfw_pipeline_now_wall(p));
        free(evidence);
    }
    free(line);
}

char *cfw_pipeline_evidence(const char *line, const char *input, uint64_t lineno)
{
    return cfw_xasprintf("%s (%s:%llu)", line, input != NULL ? input : "-",
                         (unsigned long long)lineno);
}

static void on_match(const struct cfw_match *m, const struct cfw_event *ev, void *arg)
{
    struct cfw_pipeline *p = arg;
    struct cfw_match cm = {.rule = m->rule};
    struct cfw_event clean;
    char *text;

    p->stats.matches++;
    if (cfw_rule_opts(m->rule)->success) {
        on_success(p, m, ev);
        return;
    }
    if (cfw_secrets_count() == 0 ||
        (!cfw_secrets_found(ev->text, ev->len) && !fields_hold_secret(&ev->fields) &&
         !fields_hold_secret(&m->fields))) {
        observe(p, m, ev);
        return;
    }
    /*
     * Everything an incident holds (key, title, hint, fields, sample) is made from the event
     * and the match: when outside text carries a registered secret (a log line, an exec
     * command's stderr, an API's error quoted in a source-down reason), the incident is made
     * from scrubbed copies, so the secret reaches neither /incidents, the state, the spool nor
     * a payload. Only matched events are looked at: the cost is not paid per record.
     */
    clean = *ev;
    text = cfw_xmalloc(ev->len + 1);
    memcpy(text, ev->text, ev->len);
    text[ev->len] = '\0';
    clean.len = cfw_secrets_scrub_inplace(text, ev->len);
    clean.text = text;
    memset(&clean.fields, 0, sizeof(clean.fields));
    fields_scrubbed(&clean.fields, &ev->fields);
    fields_scrubbed(&cm.fields, &m->fields);
    observe(p, &cm, &clean);
    cfw_fields_clear(&clean.fields);
    cfw_fields_clear(&cm.fields);
    free(text);
}

static void on_event(const struct cfw_event *ev, void *arg)
{
    struct record_ctx *ctx = arg;
    struct cfw_pipeline *p = ctx->p;

    p->stats.events++;
    for (size_t i = 0; ctx->fields != NULL && i < ctx->fields->n; i++) {
        cfw_fields_set_default((struct cfw_fields *)&ev->fields, ctx->fields->v[i].key,
                               ctx->fields->v[i].value);
    }
    if (ctx->source != NULL) {
        /* the decoder names the input; a configured source name is what operators filter on.
         * The event is ours for the duration of this callback. */
        cfw_fields_set((struct cfw_fields *)&ev->fields, "source", ctx->source);
    }
    cfw_ruleset_match(p->rules, ev, on_match, p);
}

void cfw_pipeline_event(struct cfw_pipeline *p, struct cfw_ruleset *rules,
                        const struct cfw_event *ev)
{
    p->stats.events++;
    cfw_ruleset_match(rules != NULL ? rules : p->rules, ev, on_match, p);
}

void cfw_pipeline_record_ctx(struct cfw_pipeline *p, const struct cfw_record *rec,
                             const char *source, const struct cfw_fields *fields)
{
    struct record_ctx ctx = {p, source, fields};
    struct cfw_record own;

    p->stats.records++;
    /* asked again when a caller's prefilter let it through: the answer selects the rules */
    if (!cfw_ruleset_wants(p->rules, rec)) {
        cfw_ruleset_record_end(p->rules); /* no selection: a caller's "wanted" gets every rule */
        if (!rec->wanted) {
            return;
        }
    }
    p->stats.decoded++;
    if (rec->unterminated) {
        /* the framer's record points at the bytes fed: the decoder reads a string */
        if (rec->len + 1 > p->text_cap) {
            p->text_cap = rec->len + 1 > 2 * p->text_cap ? rec->len + 1 : 2 * p->text_cap;
            p->text = cfw_xrealloc(p->text, p->text_cap);
        }
        memcpy(p->text, rec->text, rec->len);
        p->text[rec->len] = '\0';
        own = *rec;
        own.text = p->text;
        own.unterminated = false;
        rec = &own;
    }
    cfw_ruleset_record_start(p->rules);
    cfw_decode_record(rec, on_event, &ctx, &p->dstats);
    cfw_ruleset_record_end(p->rules);
}

bool cfw_pipeline_wants(struct cfw_pipeline *p, const struct cfw_record *rec)
{
    if (cfw_ruleset_wants(p->rules, rec)) {
        return true;
    }
    p->stats.records++;
    return false;
}

void cfw_pipeline_record(struct cfw_pipeline *p, const struct cfw_record *rec, const char *source)
{
    cfw_pipeline_record_ctx(p, rec, source, NULL);
}

static void on_record(const struct cfw_record *rec, void *arg)
{
    struct cfw_pipeline_input *in = arg;

    cfw_pipeline_record_ctx(in->p, rec, in->source, in->fields.n > 0 ? &in->fields : NULL);
}

void cfw_pipeline_input_set_field(struct cfw_pipeline_input *in, const char *key,
                                  const char *value)
{
    cfw_fields_set(&in->fields, key, value);
}

struct cfw_pipeline_input *cfw_pipeline_input_new(struct cfw_pipeline *p, const char *name,
                                                  const char *source,
                                                  const struct cfw_framer_opts *opts)
{
    return cfw_pipeline_input_new_mid(p, name, source, opts, NULL);
}

struct cfw_pipeline_input *cfw_pipeline_input_new_mid(struct cfw_pipeline *p, const char *name,
                                                      const char *source,
                                                      const struct cfw_framer_opts *opts,
                                                      const struct cfw_framer_mid *mid)
{
    struct cfw_pipeline_input *in = cfw_xcalloc(1, sizeof(*in));
    struct cfw_framer_opts fo = {0};

    if (opts != NULL) {
        fo = *opts;
    }
    fo.unterminated = true; /* only candidates are copied, to be decoded */
    in->p = p;
    in->source = source != NULL ? cfw_xstrdup(source) : NULL;
    in->framer = mid != NULL ? cfw_framer_new_mid(name, &fo, on_record, in, mid)
                             : cfw_framer_new(name, &fo, on_record, in);
    p->stats.inputs++;
    return in;
}

bool cfw_pipeline_input_at_rest(const struct cfw_pipeline_input *in)
{
    return cfw_framer_at_rest(in->framer);
}

void cfw_pipeline_input_feed(struct cfw_pipeline_input *in, const char *buf, size_t len)
{
    in->p->stats.bytes += len;
    cfw_framer_feed(in->framer, buf, len);
}

void cfw_pipeline_input_flush(struct cfw_pipeline_input *in)
{
    cfw_framer_flush(in->framer);
}

bool cfw_pipeline_input_pending(const struct cfw_pipeline_input *in)
{
    return cfw_framer_pending(in->framer);
}

void cfw_pipeline_input_finish(struct cfw_pipeline_input *in)
{
    const struct cfw_framer_stats *fs;
    struct cfw_pipeline_stats *s = &in->p->stats;

    if (in->finished) {
        return;
    }
    in->finished = true;
    cfw_framer_finish(in->framer);
    fs = cfw_framer_stats(in->framer);
    s->lines += fs->lines;
    s->long_lines += fs->long_lines;
    s->garbage_bytes += fs->garbage_bytes;
    s->json_errors += fs->json_errors;
    s->nul_bytes += fs->nul_bytes;
    s->json_invalid = in->p->dstats.json_invalid;
}

void cfw_pipeline_input_free(struct cfw_pipeline_input *in)
{
    if (in == NULL) {
        return;
    }
    if (in->framer != NULL) {
        cfw_pipeline_input_finish(in);
        cfw_framer_free(in->framer);
    }
    free(in->source);
    cfw_fields_clear(&in->fields);
    free(in);
}
