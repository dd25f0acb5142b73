/* The records of a `--once -j N` worker: written by its pipeline tap, replayed in order. */
#include "cfwatchd/scanjob.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/pipeline.h"

#define NULL_STR UINT32_MAX

/* A record being written: a failed append (the buffer's cap) makes it bad, and it is dropped. */
struct out {
    struct cfw_buf *b;
    bool bad;
};

static void put(struct out *o, const void *p, size_t n)
{
    if (!o->bad && cfw_buf_append(o->b, p, n) != 0) {
        o->bad = true;
    }
}

static void put_u32(struct out *o, uint32_t v)
{
    put(o, &v, sizeof(v));
}

static void put_u64(struct out *o, uint64_t v)
{
    put(o, &v, sizeof(v));
}

static void put_strn(struct out *o, const char *s, size_t len)
{
    if (s == NULL) {
        put_u32(o, NULL_STR);
        return;
    }
    /* a record is capped well below 4 GiB by the framer: a longer one is cut, not wrapped */
    if (len >= NULL_STR) {
        len = NULL_STR - 1;
    }
    put_u32(o, (uint32_t)len);
    put(o, s, len);
    put(o, "", 1); /* a terminator: the replay reads a string where it lies */
}

static void put_str(struct out *o, const char *s)
{
    put_strn(o, s, s != NULL ? strlen(s) : 0);
}

static void put_fields(struct out *o, const struct cfw_fields *f)
{
    put_u32(o, (uint32_t)f->n);
    for (size_t i = 0; i < f->n; i++) {
        put_str(o, f->v[i].key);
        put_str(o, f->v[i].value);
    }
}

/* Starts a record of kind in b; its length is filled in by end_record. */
static struct out begin_record(struct cfw_buf *b, char kind, size_t *start)
{
    struct out o = {b, false};

    *start = b->len;
    put(&o, &kind, 1);
    put_u32(&o, 0);
    return o;
}

/* Ends the record begun at start: its length filled in, or the record dropped when bad. */
static int end_record(struct out *o, size_t start)
{
    uint32_t len;

    if (o->bad) {
        o->b->len = start;
        if (o->b->data != NULL) {
            o->b->data[start] = '\0';
        }
        return -1;
    }
    len = (uint32_t)(o->b->len - start - 1 - sizeof(uint32_t));
    memcpy(o->b->data + start + 1, &len, sizeof(len));
    return 0;
}

int cfw_scanjob_put_observe(struct cfw_buf *b, const struct cfw_ruleset *rs,
                            const struct cfw_match *m, const struct cfw_event *ev)
{
    size_t n = cfw_ruleset_count(rs);
    size_t i, start;
    struct out o;

    for (i = 0; i < n && cfw_ruleset_rule(rs, i) != m->rule; i++) {
    }
    if (i == n) {
        return -1;
    }
    o = begin_record(b, 'O', &start);
    put_u32(&o, (uint32_t)i);
    put_fields(&o, &m->fields);
    put_strn(&o, ev->text, ev->len);
    put_fields(&o, &ev->fields);
    put_str(&o, ev->input);
    put_u64(&o, ev->line);
    put_u64(&o, ev->line_end);
    return end_record(&o, start);
}

int cfw_scanjob_put_succeed(struct cfw_buf *b, const char *script, const char *input,
                            const char *line, uint64_t lineno)
{
    size_t start;
    struct out o = begin_record(b, 'S', &start);

    put_str(&o, script);
    put_str(&o, input);
    put_str(&o, line);
    put_u64(&o, lineno);
    return end_record(&o, start);
}

/* A reader over one record; any read past its end sets bad and yields zeroes. */
struct reader {
    const char *p;
    size_t left;
    bool bad;
};

static bool get(struct reader *r, void *out, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        memset(out, 0, n);
        return false;
    }
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return true;
}

static uint32_t get_u32(struct reader *r)
{
    uint32_t v;

    get(r, &v, sizeof(v));
    return v;
}

static uint64_t get_u64(struct reader *r)
{
    uint64_t v;

    get(r, &v, sizeof(v));
    return v;
}

/*
 * A string where it lies in the record, NUL-terminated there (NULL for NULL, or a short read or
 * a missing terminator, which set bad); its length in lenp.
 */
static const char *get_view(struct reader *r, size_t *lenp)
{
    uint32_t len = get_u32(r);
    const char *s = r->p;

    if (lenp != NULL) {
        *lenp = 0;
    }
    if (r->bad || len == NULL_STR) {
        return NULL;
    }
    if (r->left <= len || s[len] != '\0') {
        r->bad = true;
        return NULL;
    }
    r->p += (size_t)len + 1;
    r->left -= (size_t)len + 1;
    if (lenp != NULL) {
        *lenp = len;
    }
    return s;
}

/* A string as a new NUL-terminated copy (NULL for NULL or a short read); its length in lenp. */
static char *get_str(struct reader *r, size_t *lenp)
{
    size_t len;
    const char *v = get_view(r, &len);
    char *s;

    if (v == NULL) {
        return NULL;
    }
    /* a copy of the bytes, not a string copy: an event's text may hold a NUL */
    s = cfw_xmalloc(len + 1);
    memcpy(s, v, len + 1);
    if (lenp != NULL) {
        *lenp = len;
    }
    return s;
}

static void get_fields(struct reader *r, struct cfw_fields *f)
{
    uint32_t n = get_u32(r);

    for (uint32_t i = 0; i < n && !r->bad; i++) {
        const char *k = get_view(r, NULL);
        const char *v = get_view(r, NULL);

        if (k != NULL && v != NULL) {
            cfw_fields_set(f, k, v);
        }
    }
}

/* Whether a record of the first line lineno is the part's own; then lineno in the input. */
static bool shifted(const struct cfw_scanjob_shift *sh, uint64_t *lineno)
{
    if (sh == NULL) {
        return true;
    }
    if (*lineno <= sh->skip) {
        return false;
    }
    *lineno += sh->base;
    return true;
}

static int replay_observe(struct reader *r, struct cfw_ruleset *rs, struct cfw_incidents *set,
                          const struct cfw_scanjob_shift *sh, struct cfw_err *err)
{
    uint32_t idx = get_u32(r);
    struct cfw_match m = {0};
    struct cfw_event ev = {0};
    char *text, *input;
    int rc = 0;

    get_fields(r, &m.fields);
    text = get_str(r, &ev.len);
    get_fields(r, &ev.fields);
    input = get_str(r, NULL);
    ev.line = get_u64(r);
    ev.line_end = get_u64(r);
    ev.text = text != NULL ? text : "";
    ev.input = input;
    if (r->bad) {
        cfw_err_set(err, "a worker's match record is cut short");
        rc = -1;
    } else if (idx >= cfw_ruleset_count(rs)) {
        cfw_err_set(err, "a worker's match names rule %u of %zu", idx, cfw_ruleset_count(rs));
        rc = -1;
    } else if (shifted(sh, &ev.line)) {
        ev.line_end += sh != NULL ? sh->base : 0;
        m.rule = cfw_ruleset_rule(rs, idx);
        cfw_incidents_observe(set, &m, &ev, cfw_now_mono_ms(), cfw_now_wall_ms());
    }
    cfw_fields_clear(&m.fields);
    cfw_fields_clear(&ev.fields);
    free(text);
    free(input);
    return rc;
}

static int replay_succeed(struct reader *r, struct cfw_incidents *set,
                          const struct cfw_scanjob_shift *sh, struct cfw_err *err)
{
    const char *script = get_view(r, NULL);
    const char *input = get_view(r, NULL);
    const char *line = get_view(r, NULL);
    uint64_t lineno = get_u64(r);

    if (r->bad || line == NULL) {
        cfw_err_set(err, "a worker's success record is cut short");
        return -1;
    }
    /* most successes fix nothing: then no evidence is made (cfw_incidents_succeed would
     * resolve none) */
    if (shifted(sh, &lineno) && cfw_incidents_fixable(set, script, input)) {
        char *evidence = cfw_pipeline_evidence(line, input, lineno);

        cfw_incidents_succeed(set, script, input, evidence, 0, cfw_now_mono_ms(),
                              cfw_now_wall_ms());
        free(evidence);
    }
    return 0;
}

size_t cfw_scanjob_whole(const char *data, size_t len, size_t *need)
{
    size_t off = 0;

    *need = 0;
    while (len - off >= 1 + sizeof(uint32_t)) {
        uint32_t rlen;

        memcpy(&rlen, data + off + 1, sizeof(rlen));
        if (len - off - 1 - sizeof(rlen) < rlen) {
            *need = 1 + sizeof(rlen) + (size_t)rlen;
            break;
        }
        off += 1 + sizeof(rlen) + rlen;
    }
    if (off == 0 && *need == 0) {
        *need = 1 + sizeof(uint32_t);
    }
    return off;
}

int cfw_scanjob_replay(const char *data, size_t len, struct cfw_ruleset *rs,
                       struct cfw_incidents *set, const struct cfw_scanjob_shift *sh,
                       struct cfw_err *err)
{
    struct reader all = {data, len, false};

    while (all.left > 0) {
        char kind;
        uint32_t rlen;
        struct reader r;
        int rc;

        get(&all, &kind, 1);
        rlen = get_u32(&all);
        if (all.bad || all.left < rlen) {
            cfw_err_set(err, "a worker's record is cut short");
            return -1;
        }
        r = (struct reader){all.p, rlen, false};
        all.p += rlen;
        all.left -= rlen;
        if (kind == 'O') {
            rc = replay_observe(&r, rs, set, sh, err);
        } else if (kind == 'S') {
            rc = replay_succeed(&r, set, sh, err);
        } else {
            cfw_err_set(err, "a worker's record has an unknown kind 0x%02x", (unsigned char)kind);
            rc = -1;
        }
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}
