/*
 * Sources, the common part: configuration of one `sources:` entry, the life cycle shared by
 * every kind, callback delivery with deferred free, and the health state (UP / DEGRADED /
 * DOWN) that the caller turns into `source-down` incidents.
 */
#include "cfwatchd/source.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cfwatchd/log.h"
#include "cfwatchd/metrics.h"
#include "cfwatchd/secrets.h"
#include "input_impl.h"
#include "source_int.h"

/* The kinds, each with its keys (schema.h) and implementation. */
static const struct source_ops *const kinds[] = {
    &cfw_source_file_ops,
    &cfw_source_exec_ops,
    &cfw_source_journal_ops,
};

static const struct source_ops *kind_of(enum cfw_source_type type)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (kinds[i]->type == type) {
            return kinds[i];
        }
    }
    return NULL;
}

int cfw_source_type_parse(const char *s, enum cfw_source_type *out)
{
    for (size_t i = 0; s != NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(s, kinds[i]->name) == 0) {
            *out = kinds[i]->type;
            return 0;
        }
    }
    return -1;
}

const char *cfw_source_type_name(enum cfw_source_type type)
{
    const struct source_ops *kind = kind_of(type);

    return kind != NULL ? kind->name : "?";
}

void cfw_source_conf_init(struct cfw_source_conf *conf, enum cfw_source_type type)
{
    memset(conf, 0, sizeof(*conf));
    /* the kinds share the struct: a member no key of this kind sets has its default too */
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        cfw_schema_defaults(kinds[i]->schema, conf);
    }
    conf->type = type;
}

void cfw_source_conf_clear(struct cfw_source_conf *conf)
{
    if (conf == NULL) {
        return;
    }
    free(conf->name);
    free(conf->path);
    cfw_strlist_free(conf->command);
    cfw_fields_clear(&conf->env);
    free(conf->cwd);
    free(conf->directory);
    cfw_strlist_free(conf->matches);
    memset(conf, 0, sizeof(*conf));
}

static void conf_copy(struct cfw_source_conf *dst, const struct cfw_source_conf *src)
{
    *dst = *src;
    dst->name = src->name != NULL ? cfw_xstrdup(src->name) : NULL;
    dst->path = src->path != NULL ? cfw_xstrdup(src->path) : NULL;
    dst->command = cfw_strlist_dup(src->command);
    memset(&dst->env, 0, sizeof(dst->env));
    cfw_fields_copy(&dst->env, &src->env);
    dst->cwd = src->cwd != NULL ? cfw_xstrdup(src->cwd) : NULL;
    dst->directory = src->directory != NULL ? cfw_xstrdup(src->directory) : NULL;
    dst->matches = cfw_strlist_dup(src->matches);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CFW_SOURCE_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':')) {
            return false;
        }
    }
    return true;
}

int cfw_source_read_name(const struct cfw_schema_key *k, const struct cfw_node *map,
                         const char *path, void *conf, struct cfw_diag *diag)
{
    const char *name = NULL;
    int rc = cfw_node_str(map, k->name, path, &name, diag);
    char *kp;

    if (rc < 0) {
        return -1;
    }
    if (rc == 0) {
        cfw_diag_add(diag, map, path, "a source needs 'name'");
        return -1;
    }
    if (!name_ok(name)) {
        kp = cfw_schema_path(k, path);
        cfw_diag_add(diag, cfw_node_get(map, k->name), kp,
                     "'%s' is not a valid name (1 to %d of A-Z a-z 0-9 - _ . :)", name,
                     CFW_SOURCE_NAME_MAX);
        free(kp);
        return -1;
    }
    ((struct cfw_source_conf *)conf)->name = cfw_xstrdup(name);
    return 1;
}

int cfw_source_read_format(const struct cfw_schema_key *k, const struct cfw_node *map,
                           const char *path, void *conf, struct cfw_diag *diag)
{
    enum cfw_input_format *out = (enum cfw_input_format *)((char *)conf + k->offset);
    const char *s = NULL;
    int rc = cfw_node_str(map, k->name, path, &s, diag);
    char *kp;

    if (rc > 0 && cfw_input_format_parse(s, out) < 0) {
        kp = cfw_schema_path(k, path);
        cfw_diag_add(diag, cfw_node_get(map, k->name), kp,
                     "unknown format '%s' (valid: auto, lines, json, wrangler-log)", s);
        free(kp);
        return -1;
    }
    return rc;
}

int cfw_source_read_start_at(const struct cfw_schema_key *k, const struct cfw_node *map,
                             const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_source_conf *c = conf;
    const char *s = NULL;
    int rc = cfw_node_str(map, k->name, path, &s, diag);
    char *kp;

    if (rc <= 0) {
        return rc;
    }
    if (strcmp(s, "end") == 0) {
        c->start_at_beginning = false;
    } else if (strcmp(s, "beginning") == 0) {
        c->start_at_beginning = true;
    } else {
        kp = cfw_schema_path(k, path);
        cfw_diag_add(diag, cfw_node_get(map, k->name), kp, "expected end or beginning, got '%s'",
                     s);
        free(kp);
        return -1;
    }
    return 1;
}

/* Parses an entry of a known kind into conf (which owns nothing yet); -1 clears it. */
static int parse_kind(const struct source_ops *kind, const struct cfw_node *node, const char *path,
                      struct cfw_source_conf *conf, struct cfw_diag *diag)
{
    cfw_source_conf_init(conf, kind->type);
    if (cfw_schema_parse(kind->schema, node, path, conf, diag) != 0) {
        cfw_source_conf_clear(conf);
        return -1;
    }
    return 0;
}

int cfw_source_conf_parse(const struct cfw_node *node, const char *path,
                          struct cfw_source_conf *conf, struct cfw_diag *diag)
{
    const char *type;
    enum cfw_source_type t = CFW_SOURCE_FILE;

    memset(conf, 0, sizeof(*conf));
    type = cfw_input_type_of(node, path, diag);
    if (type == NULL) {
        return -1;
    }
    if (cfw_source_type_parse(type, &t) < 0) {
        cfw_input_unknown_type(node, path, type, diag);
        return -1;
    }
    return parse_kind(kind_of(t), node, path, conf, diag);
}

/* Life cycle. */

static void destroy(struct cfw_source *src)
{
    if (src->ops != NULL && src->impl != NULL) {
        src->ops->destroy(src);
    }
    if (src->down_ev != NULL) {
        event_free(src->down_ev);
    }
    if (src->stop_ev != NULL) {
        event_free(src->stop_ev);
    }
    free(src->reason);
    cfw_source_conf_clear(&src->conf);
    free(src);
}

static void on_down(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_source *src = arg;

    (void)fd;
    (void)what;
    cfw_source_enter(src);
    if (src->problem && src->state != CFW_INPUT_DOWN) {
        char *reason = cfw_xstrdup(src->reason != NULL ? src->reason : "");
        cfw_source_set_state(src, CFW_INPUT_DOWN, "%s", reason);
        free(reason);
    }
    cfw_source_leave(src);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_source *src = arg;

    (void)fd;
    (void)what;
    cfw_source_enter(src);
    src->ops->stop(src);
    cfw_source_leave(src);
}

struct cfw_source *cfw_source_new(struct event_base *base, const struct cfw_source_conf *conf,
                                  const struct cfw_source_cbs *cbs, struct cfw_err *err)
{
    struct cfw_source *src;
    const struct source_ops *ops = kind_of(conf->type);

    if (ops == NULL) {
        cfw_err_set(err, "unknown source type %d", (int)conf->type);
        return NULL;
    }
    if (conf->name == NULL || conf->name[0] == '\0') {
        cfw_err_set(err, "a source needs a name");
        return NULL;
    }
    src = cfw_xcalloc(1, sizeof(*src));
    src->ops = ops;
    src->base = base;
    conf_copy(&src->conf, conf);
    if (src->conf.read_budget < CFW_SOURCE_READ_BUDGET_MIN) {
        src->conf.read_budget = CFW_SOURCE_READ_BUDGET_MIN;
    }
    if (src->conf.poll_interval_ms <= 0) {
        src->conf.poll_interval_ms = CFW_SOURCE_POLL_INTERVAL_DEFAULT_MS;
    }
    if (cbs != NULL) {
        src->cbs = *cbs;
    }
    src->state = CFW_INPUT_UP;
    src->reason = cfw_xstrdup("");
    src->down_ev = evtimer_new(base, on_down, src);
    src->stop_ev = evtimer_new(base, on_stop, src);
    if (src->down_ev == NULL || src->stop_ev == NULL) {
        cfw_err_set(err, "source %s: cannot create events", conf->name);
        destroy(src);
        return NULL;
    }
    if (ops->init(src, err) < 0) {
        destroy(src);
        return NULL;
    }
    return src;
}

int cfw_source_start(struct cfw_source *src, struct cfw_err *err)
{
    int rc;

    if (src->started) {
        cfw_err_set(err, "source %s: already started", src->conf.name);
        return -1;
    }
    src->started = true;
    cfw_source_enter(src);
    rc = src->ops->start(src, err);
    cfw_source_leave(src);
    return rc;
}

void cfw_source_stop(struct cfw_source *src)
{
    if (src == NULL || src->stopping || src->busy.doomed) {
        return;
    }
    src->stopping = true;
    if (src->problem) {
        src->problem = false;
        event_del(src->down_ev);
    }
    cfw_source_yield(src->stop_ev);
}

bool cfw_source_stopped(const struct cfw_source *src)
{
    if (!src->started) {
        return true;
    }
    if (!src->stopping || event_pending(src->stop_ev, EV_TIMEOUT, NULL)) {
        return false;
    }
    return src->ops->stopped(src);
}

void cfw_source_free(struct cfw_source *src)
{
    if (src == NULL) {
        return;
    }
    if (cfw_busy_defer_free(&src->busy)) {
        /* Called from one of this source's callbacks: release it when the callback is done. */
        return;
    }
    destroy(src);
}

json_t *cfw_source_save(const struct cfw_source *src)
{
    return src->ops->save(src);
}

int cfw_source_restore(struct cfw_source *src, const json_t *state)
{
    const char *type;

    if (src->started) {
        cfw_log_warn("source=%s state not restored: the source is already running", src->conf.name);
        return -1;
    }
    if (!json_is_object(state)) {
        cfw_log_warn("source=%s saved state is not an object; starting afresh", src->conf.name);
        return -1;
    }
    type = json_string_value(json_object_get(state, "type"));
    if (type == NULL || strcmp(type, cfw_source_type_name(src->conf.type)) != 0) {
        cfw_log_warn("source=%s saved state is for a %s source; starting afresh", src->conf.name,
                     type != NULL ? type : "?");
        return -1;
    }
    if (src->ops->restore(src, state) < 0) {
        return -1;
    }
    src->restored = true;
    return 0;
}

const char *cfw_source_get_name(const struct cfw_source *src)
{
    return src->conf.name;
}

enum cfw_source_type cfw_source_get_type(const struct cfw_source *src)
{
    return src->conf.type;
}

enum cfw_input_health cfw_source_get_state(const struct cfw_source *src, const char **reason)
{
    if (reason != NULL) {
        *reason = src->reason != NULL ? src->reason : "";
    }
    return src->state;
}

enum cfw_input_format cfw_source_get_format(const struct cfw_source *src, const char *stream)
{
    if (src->conf.type == CFW_SOURCE_EXEC) {
        if (stream != NULL && strcmp(stream, "stderr") == 0) {
            return src->conf.stderr_format;
        }
        return src->conf.stdout_format;
    }
    return src->conf.format;
}

void cfw_source_get_stats(const struct cfw_source *src, struct cfw_source_stats *out)
{
    *out = src->stats;
    if (src->ops->stats != NULL && src->impl != NULL) {
        src->ops->stats(src, out);
    }
}

/* Helpers for the kinds. */

void cfw_source_enter(struct cfw_source *src)
{
    cfw_busy_enter(&src->busy);
}

void cfw_source_leave(struct cfw_source *src)
{
    if (!cfw_busy_leave(&src->busy)) {
        destroy(src);
    }
}

bool cfw_source_emit_data(struct cfw_source *src, const char *stream, const char *buf, size_t len)
{
    if (src->busy.doomed) {
        return false;
    }
    src->stats.bytes += len;
    if (src->cbs.data != NULL && len > 0) {
        cfw_busy_enter(&src->busy);
        src->cbs.data(src->cbs.arg, src, stream, buf, len);
        (void)cfw_busy_leave(&src->busy); /* released by the outer leave */
    }
    return !src->busy.doomed;
}

bool cfw_source_emit_eof(struct cfw_source *src, const char *stream)
{
    if (src->busy.doomed) {
        return false;
    }
    if (src->cbs.eof != NULL) {
        cfw_busy_enter(&src->busy);
        src->cbs.eof(src->cbs.arg, src, stream);
        (void)cfw_busy_leave(&src->busy); /* released by the outer leave */
    }
    return !src->busy.doomed;
}

static bool set_state_text(struct cfw_source *src, enum cfw_input_health state, char *text)
{
    bool changed = state != src->state;

    free(src->reason);
    src->reason = text;
    if (!changed) {
        return !src->busy.doomed;
    }
    src->state = state;
    if (state == CFW_INPUT_UP) {
        cfw_log_notice("source=%s state=up", src->conf.name);
    } else if (state == CFW_INPUT_DEGRADED) {
        cfw_log_notice("source=%s state=degraded reason=\"%s\"", src->conf.name, text);
    } else {
        cfw_log_warn("source=%s state=%s reason=\"%s\"", src->conf.name,
                     cfw_input_health_name(state), text);
    }
    if (src->cbs.state != NULL && !src->busy.doomed) {
        cfw_busy_enter(&src->busy);
        src->cbs.state(src->cbs.arg, src, state, src->reason);
        (void)cfw_busy_leave(&src->busy); /* released by the outer leave */
    }
    return !src->busy.doomed;
}

bool cfw_source_set_state(struct cfw_source *src, enum cfw_input_health state, const char *fmt, ...)
{
    char tmp[CFW_ERR_MAX];
    va_list ap;

    if (src->busy.doomed) {
        return false;
    }
    tmp[0] = '\0';
    if (state != CFW_INPUT_UP) {
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof(tmp), fmt, ap);
        va_end(ap);
        /* a reason becomes a source-down incident: no registered secret in it */
        cfw_secrets_scrub_inplace(tmp, strlen(tmp));
    }
    return set_state_text(src, state, cfw_xstrdup(tmp));
}

bool cfw_source_problem(struct cfw_source *src, const char *fmt, ...)
{
    char tmp[CFW_ERR_MAX];
    va_list ap;

    if (src->busy.doomed) {
        return false;
    }
    if (src->stopping) {
        return true;
    }
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    cfw_secrets_scrub_inplace(tmp, strlen(tmp));
    if (src->problem) {
        if (strcmp(tmp, src->reason) != 0) {
            free(src->reason);
            src->reason = cfw_xstrdup(tmp);
        }
        return true;
    }
    src->problem = true;
    if (src->conf.down_after_ms <= 0) {
        return set_state_text(src, CFW_INPUT_DOWN, cfw_xstrdup(tmp));
    }
    {
        struct timeval tv = cfw_ms_timeval(src->conf.down_after_ms);
        event_base_update_cache_time(src->base);
        event_add(src->down_ev, &tv);
    }
    return set_state_text(src, CFW_INPUT_DEGRADED, cfw_xstrdup(tmp));
}

bool cfw_source_ok(struct cfw_source *src)
{
    if (src->busy.doomed) {
        return false;
    }
    if (!src->problem) {
        return true;
    }
    src->problem = false;
    event_del(src->down_ev);
    return set_state_text(src, CFW_INPUT_UP, cfw_xstrdup(""));
}

void cfw_source_yield(struct event *ev)
{
    struct timeval zero = {0, 0};

    if (!event_pending(ev, EV_TIMEOUT, NULL)) {
        event_add(ev, &zero);
    }
}

void cfw_source_log_once(struct cfw_source *src, char **last, int level, const char *fmt, ...)
{
    char tmp[CFW_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (*last != NULL && strcmp(*last, tmp) == 0) {
        return;
    }
    free(*last);
    *last = cfw_xstrdup(tmp);
    cfw_log((enum cfw_log_level)level, "source=%s %s", src->conf.name, tmp);
}

/* ---- the input kinds file, exec and journal (input.h) ---- */

static void input_conf_clear(void *conf)
{
    cfw_source_conf_clear(conf);
}

static void input_data(void *arg, struct cfw_source *src, const char *stream, const char *buf,
                       size_t len)
{
    struct cfw_input_bytes b = {
        .stream = stream,
        /* files are named by path; a command's streams by source and stream */
        .label = src->conf.type == CFW_SOURCE_FILE ? stream : NULL,
        .format = cfw_source_get_format(src, stream),
        .buf = buf,
        .len = len,
    };

    cfw_input_emit_bytes(arg, &b);
}

static void input_eof(void *arg, struct cfw_source *src, const char *stream)
{
    (void)src;
    cfw_input_emit_eof(arg, stream);
}

static void input_state(void *arg, struct cfw_source *src, enum cfw_input_health state,
                        const char *reason)
{
    (void)src; /* the source logs its own state changes */
    cfw_input_set_health(arg, state, reason);
}

static int input_create(struct cfw_input *in, const void *conf, const struct cfw_input_env *env,
                        struct cfw_err *err)
{
    struct cfw_source_cbs cbs = {input_data, input_eof, input_state, in};

    in->priv = cfw_source_new(env->base, conf, &cbs, err);
    return in->priv != NULL ? 0 : -1;
}

static int input_start(struct cfw_input *in, struct cfw_err *err)
{
    return cfw_source_start(in->priv, err);
}

static void input_stop(struct cfw_input *in)
{
    cfw_source_stop(in->priv);
}

static bool input_stopped(const struct cfw_input *in)
{
    return cfw_source_stopped(in->priv);
}

static json_t *input_save(const struct cfw_input *in)
{
    return cfw_source_save(in->priv);
}

static void input_restore(struct cfw_input *in, const json_t *state)
{
    cfw_source_restore(in->priv, state); /* a mismatch is logged: the source starts afresh */
}

static struct cfw_metrics_family *bytes_family(struct cfw_metrics *m)
{
    return cfw_metrics_family(m, "cfwatchd_source_bytes_total", "counter",
                              "Bytes delivered per source.");
}

static struct cfw_metrics_family *lag_family(struct cfw_metrics *m)
{
    return cfw_metrics_family(m, "cfwatchd_source_lag_bytes", "gauge",
                              "Bytes in watched files not read yet.");
}

static void input_families(struct cfw_metrics *m)
{
    bytes_family(m);
    lag_family(m);
}

static void input_metrics(const struct cfw_input *in, struct cfw_metrics *m)
{
    struct cfw_source_stats st;

    cfw_source_get_stats(in->priv, &st);
    cfw_metrics_u64(bytes_family(m), CFW_LABELS("source", in->name), st.bytes);
    cfw_metrics_u64(lag_family(m), CFW_LABELS("source", in->name), st.lag_bytes);
}

static void input_destroy(struct cfw_input *in)
{
    cfw_source_free(in->priv);
}

static int file_parse(const struct cfw_node *node, const char *path, void *conf,
                      struct cfw_diag *diag)
{
    return parse_kind(&cfw_source_file_ops, node, path, conf, diag);
}

static int exec_parse(const struct cfw_node *node, const char *path, void *conf,
                      struct cfw_diag *diag)
{
    return parse_kind(&cfw_source_exec_ops, node, path, conf, diag);
}

static int journal_parse(const struct cfw_node *node, const char *path, void *conf,
                         struct cfw_diag *diag)
{
    return parse_kind(&cfw_source_journal_ops, node, path, conf, diag);
}

/* The three kinds differ in their keys and their parser; the rest is the source's life cycle. */
#define SOURCE_INPUT_OPS(type_name, flag_bits, schema_, parse_fn)                                  \
    {                                                                                              \
        .type = (type_name), .flags = (flag_bits), .schema = (schema_),                            \
        .conf_size = sizeof(struct cfw_source_conf), .parse = (parse_fn),                          \
        .conf_clear = input_conf_clear, .create = input_create, .start = input_start,              \
        .stop = input_stop, .stopped = input_stopped, .save = input_save,                          \
        .restore = input_restore, .families = input_families, .metrics = input_metrics,            \
        .destroy = input_destroy,                                                                  \
    }

const struct cfw_input_ops cfw_input_file_ops =
    SOURCE_INPUT_OPS("file", 0, &cfw_source_file_schema, file_parse);
/* an unchanged exec source keeps running across a reload: no gap in what its command prints */
const struct cfw_input_ops cfw_input_exec_ops =
    SOURCE_INPUT_OPS("exec", CFW_INPUT_KEPT_ON_RELOAD, &cfw_source_exec_schema, exec_parse);
const struct cfw_input_ops cfw_input_journal_ops =
    SOURCE_INPUT_OPS("journal", 0, &cfw_source_journal_schema, journal_parse);
