/* Test helper for the source tests: see source_harness.h. */
#include "source_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- recorder ---- */

/* The open (not yet ended) segment of a stream, or NULL. */
static struct rec_seg *rec_open_seg(struct rec *r, const char *stream)
{
    for (size_t i = r->nsegs; i > 0; i--) {
        if (!r->segs[i - 1].ended && strcmp(r->segs[i - 1].stream, stream) == 0) {
            return &r->segs[i - 1];
        }
    }
    return NULL;
}

static void rec_on_data(void *arg, struct cfw_source *src, const char *stream, const char *buf,
                        size_t len)
{
    struct rec *r = arg;

    (void)src;
    if (r->only_stream != NULL) {
        assert_string_equal(stream, r->only_stream);
    }
    if (!r->count_only) {
        struct rec_seg *s = rec_open_seg(r, stream);
        if (s == NULL) {
            assert_true(r->nsegs < REC_MAX_SEGS);
            s = &r->segs[r->nsegs++];
            s->stream = cfw_xstrdup(stream);
            cfw_buf_init(&s->data, REC_DATA_MAX);
        }
        if (r->all.max == 0) {
            cfw_buf_init(&r->all, REC_DATA_MAX); /* r started from {0}, or was cleared */
        }
        assert_int_equal(cfw_buf_append(&s->data, buf, len), 0);
        assert_int_equal(cfw_buf_append(&r->all, buf, len), 0);
    }
    r->bytes += len;
    if (r->ticks != NULL) {
        if (r->ndata == 0) {
            r->first_tick = *r->ticks;
        }
        r->last_tick = *r->ticks;
    }
    r->ndata++;
    if (r->free_on_data != NULL) {
        cfw_source_free(*r->free_on_data);
        *r->free_on_data = NULL;
        r->free_on_data = NULL;
    }
}

static void rec_on_eof(void *arg, struct cfw_source *src, const char *stream)
{
    struct rec *r = arg;
    struct rec_seg *s;

    (void)src;
    if (r->only_stream != NULL) {
        assert_string_equal(stream, r->only_stream);
    }
    r->eofs++;
    s = rec_open_seg(r, stream);
    if (s != NULL) {
        s->ended = true;
    } else {
        r->stray_eofs++;
    }
}

static void rec_on_state(void *arg, struct cfw_source *src, enum cfw_input_health state,
                         const char *reason)
{
    struct rec *r = arg;

    (void)src;
    assert_true(r->nstates < REC_MAX_STATES);
    r->states[r->nstates] = state;
    r->reasons[r->nstates] = cfw_xstrdup(reason);
    r->nstates++;
}

struct cfw_source_cbs rec_cbs(struct rec *r)
{
    struct cfw_source_cbs c = {
        .data = rec_on_data, .eof = rec_on_eof, .state = rec_on_state, .arg = r};
    return c;
}

void rec_clear(struct rec *r)
{
    struct rec keep = {
        .count_only = r->count_only,
        .only_stream = r->only_stream,
        .free_on_data = r->free_on_data,
        .ticks = r->ticks,
    };

    for (size_t i = 0; i < r->nsegs; i++) {
        free(r->segs[i].stream);
        cfw_buf_free(&r->segs[i].data);
    }
    cfw_buf_free(&r->all);
    for (size_t i = 0; i < r->nstates; i++) {
        free(r->reasons[i]);
    }
    *r = keep;
}

const char *rec_seg_text(const struct rec_seg *s)
{
    return s->data.data != NULL ? s->data.data : "";
}

const char *rec_text(const struct rec *r)
{
    return r->all.data != NULL ? r->all.data : "";
}

char *rec_stream_text(const struct rec *r, const char *stream, size_t *nseg, size_t *nended)
{
    struct cfw_buf b;

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    *nseg = 0;
    *nended = 0;
    for (size_t i = 0; i < r->nsegs; i++) {
        if (strcmp(r->segs[i].stream, stream) == 0) {
            cfw_buf_puts(&b, rec_seg_text(&r->segs[i]));
            (*nseg)++;
            *nended += r->segs[i].ended ? 1 : 0;
        }
    }
    return cfw_buf_take(&b);
}

struct rec_want {
    const struct rec *r;
    uint64_t bytes;
    enum cfw_input_health state;
};

static bool rec_has_bytes(void *arg)
{
    const struct rec_want *w = arg;

    return w->r->bytes >= w->bytes;
}

static bool rec_has_state(void *arg)
{
    const struct rec_want *w = arg;

    return w->r->nstates > 0 && w->r->states[w->r->nstates - 1] == w->state;
}

bool rec_wait_bytes(struct event_base *base, struct rec *r, uint64_t n, int64_t timeout_ms)
{
    struct rec_want w = {.r = r, .bytes = n};

    return loop_run_until(base, rec_has_bytes, &w, timeout_ms);
}

bool rec_wait_state(struct event_base *base, struct rec *r, enum cfw_input_health st,
                    int64_t timeout_ms)
{
    struct rec_want w = {.r = r, .state = st};

    return loop_run_until(base, rec_has_state, &w, timeout_ms);
}

/* ---- lists ---- */

char **strv_of(const char *first, ...)
{
    va_list ap;
    char **v = cfw_xcalloc(16, sizeof(*v));
    size_t n = 0;
    const char *s = first;

    va_start(ap, first);
    while (s != NULL && n < 15) {
        v[n++] = cfw_xstrdup(s);
        s = va_arg(ap, const char *);
    }
    va_end(ap);
    return v;
}

json_t *source_save_roundtrip(struct cfw_source *src)
{
    json_t *saved = cfw_source_save(src);
    char *text = json_dumps(saved, JSON_COMPACT);
    json_error_t jerr;
    json_t *back;

    assert_non_null(text);
    back = json_loads(text, 0, &jerr);
    assert_non_null(back);
    json_decref(saved);
    free(text);
    return back;
}

/* ---- environment ---- */

int src_env_init(struct src_env *e, const char *name, bool precise)
{
    e->dir[0] = '\0';
    if (name != NULL && tmpdir_make(e->dir, sizeof(e->dir), name) < 0) {
        return -1;
    }
    e->base = loop_base_new(precise);
    e->tick = loop_tick_new(e->base);
    return 0;
}

void src_env_clear(struct src_env *e)
{
    event_free(e->tick);
    event_base_free(e->base);
    if (e->dir[0] != '\0') {
        tmpdir_remove(e->dir);
    }
}

int src_env_setup(void **state, const char *name, bool precise)
{
    struct src_env *e = cfw_xcalloc(1, sizeof(*e));

    if (src_env_init(e, name, precise) < 0) {
        free(e);
        return -1;
    }
    *state = e;
    return 0;
}

int src_env_teardown(void **state)
{
    struct src_env *e = *state;

    src_env_clear(e);
    free(e);
    return 0;
}

/* ---- configuration ---- */

int source_conf_parse_text(const char *file, const char *text, const char *path,
                           struct cfw_source_conf *conf, struct cfw_diag *diag)
{
    struct cfw_doc *doc = cfw_yaml_load_string(file, text, strlen(text), diag);
    int rc;

    assert_non_null(doc);
    rc = cfw_source_conf_parse(doc->root, path, conf, diag);
    if (rc < 0) {
        for (size_t i = 0; i < diag->n; i++) {
            print_message("%s\n", diag->msgs[i]);
        }
    }
    cfw_doc_free(doc);
    return rc;
}

/* ---- the source's own state ---- */

struct state_wait {
    struct cfw_source *src;
    enum cfw_input_health st;
};

static bool source_in_state(void *arg)
{
    const struct state_wait *w = arg;

    return cfw_source_get_state(w->src, NULL) == w->st;
}

bool source_wait_state(struct event_base *base, struct cfw_source *src, enum cfw_input_health st,
                       int64_t timeout_ms)
{
    struct state_wait w = {src, st};

    return loop_run_until(base, source_in_state, &w, timeout_ms);
}
