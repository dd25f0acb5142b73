/*
 * Inputs, the common part: the kinds found by type name, the life cycle dispatched through
 * each kind's table, health, and the helpers through which a kind hands over what it read.
 */
#include "input_impl.h"

#include <stdlib.h>
#include <string.h>

#include "cfwatchd/log.h"
#include "cfwatchd/metrics.h"

static const struct cfw_input_ops *const all_ops[] = {
    &cfw_input_file_ops,      &cfw_input_exec_ops,           &cfw_input_journal_ops,
    &cfw_input_logpush_ops,   &cfw_input_cf_deployments_ops, &cfw_input_cf_observability_ops,
    &cfw_input_cf_builds_ops, &cfw_input_cf_tail_ops,        NULL,
};

/* ---- kinds ---- */

/* "file, exec, ...": every type name, in the table's order (to free). */
static char *type_names(void)
{
    struct cfw_buf b;

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    for (size_t i = 0; all_ops[i] != NULL; i++) {
        cfw_buf_printf(&b, "%s%s", i > 0 ? ", " : "", all_ops[i]->type);
    }
    return cfw_buf_take(&b);
}

const char *cfw_input_type_of(const struct cfw_node *node, const char *path, struct cfw_diag *diag)
{
    const char *type = NULL;
    int rc;

    if (node == NULL || node->type != CFW_NODE_MAP) {
        cfw_diag_add(diag, node, path, "expected a map with 'name' and 'type'");
        return NULL;
    }
    rc = cfw_node_str(node, "type", path, &type, diag);
    if (rc == 0) {
        char *types = type_names();
        cfw_diag_add(diag, node, path, "a source needs 'type' (one of: %s)", types);
        free(types);
    }
    return rc > 0 ? type : NULL;
}

void cfw_input_unknown_type(const struct cfw_node *node, const char *path, const char *type,
                            struct cfw_diag *diag)
{
    char *kp = cfw_xasprintf("%s.type", path);
    char *types = type_names();

    cfw_diag_add(diag, cfw_node_get(node, "type"), kp, "unknown source type '%s' (valid: %s)",
                 type, types);
    free(types);
    free(kp);
}

int cfw_input_read_required_name(const struct cfw_schema_key *k, const struct cfw_node *map,
                                 const char *path, void *conf, struct cfw_diag *diag)
{
    char *name = cfw_node_required_str(map, k->name, path, "a source needs a name", diag);

    *(char **)((char *)conf + k->offset) = name;
    return name != NULL ? 1 : 0;
}

/* The kind of type, without reporting anything; NULL when none has that name. */
static const struct cfw_input_ops *find_ops(const char *type)
{
    for (size_t i = 0; all_ops[i] != NULL; i++) {
        if (strcmp(all_ops[i]->type, type) == 0) {
            return all_ops[i];
        }
    }
    return NULL;
}

/* The kind of an entry; NULL after reporting what is wrong with its type. */
static const struct cfw_input_ops *kind_of(const struct cfw_node *node, const char *path,
                                           struct cfw_diag *diag)
{
    const char *type = cfw_input_type_of(node, path, diag);
    const struct cfw_input_ops *ops;

    if (type == NULL) {
        return NULL;
    }
    ops = find_ops(type);
    if (ops == NULL) {
        cfw_input_unknown_type(node, path, type, diag);
    }
    return ops;
}

/* Parses an entry into a new configuration of its kind; NULL with diag. */
static void *conf_parse(const struct cfw_input_ops *ops, const struct cfw_node *node,
                        const char *path, struct cfw_diag *diag)
{
    void *conf = cfw_xcalloc(1, ops->conf_size);

    if (ops->parse(node, path, conf, diag) != 0) {
        free(conf);
        return NULL;
    }
    return conf;
}

static void conf_free(const struct cfw_input_ops *ops, void *conf)
{
    if (conf != NULL) {
        ops->conf_clear(conf);
        free(conf);
    }
}

int cfw_input_check(const struct cfw_node *node, const char *path, unsigned have,
                    struct cfw_diag *diag)
{
    size_t before = diag->n;
    const struct cfw_input_ops *ops = kind_of(node, path, diag);

    if (ops == NULL) {
        return -1;
    }
    conf_free(ops, conf_parse(ops, node, path, diag));
    if ((ops->flags & CFW_INPUT_NEEDS_CLOUDFLARE) && !(have & CFW_INPUT_NEEDS_CLOUDFLARE)) {
        cfw_diag_add(diag, node, path,
                     "a Cloudflare poller needs the cloudflare: section (account_id, "
                     "api_token_file)");
    }
    if ((ops->flags & CFW_INPUT_NEEDS_LISTENER) && !(have & CFW_INPUT_NEEDS_LISTENER)) {
        cfw_diag_add(diag, node, path, "a logpush source needs the HTTP listener (listen is off)");
    }
    return diag->n > before ? -1 : 0;
}

/* A canonical text of a configuration node (lengths prefixed: no two nodes share one). */
static void node_text(const struct cfw_node *n, struct cfw_buf *b)
{
    if (n == NULL) {
        cfw_buf_putc(b, '~');
        return;
    }
    switch (n->type) {
    case CFW_NODE_SCALAR:
        cfw_buf_printf(b, "%zu:%s", strlen(n->value), n->value);
        break;
    case CFW_NODE_MAP:
        cfw_buf_putc(b, '{');
        for (size_t i = 0; i < n->n; i++) {
            cfw_buf_printf(b, "%zu:%s=", strlen(n->keys[i]), n->keys[i]);
            node_text(n->items[i], b);
            cfw_buf_putc(b, ',');
        }
        cfw_buf_putc(b, '}');
        break;
    case CFW_NODE_SEQ:
        cfw_buf_putc(b, '[');
        for (size_t i = 0; i < n->n; i++) {
            node_text(n->items[i], b);
            cfw_buf_putc(b, ',');
        }
        cfw_buf_putc(b, ']');
        break;
    }
}

char *cfw_input_keep_text(const struct cfw_node *node)
{
    const struct cfw_node *t = cfw_node_get(node, "type");
    const struct cfw_input_ops *ops;
    struct cfw_buf b;

    if (t == NULL || t->type != CFW_NODE_SCALAR || (ops = find_ops(t->value)) == NULL ||
        !(ops->flags & CFW_INPUT_KEPT_ON_RELOAD)) {
        return NULL;
    }
    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    node_text(node, &b);
    if (b.data == NULL || strstr(b.data, "_file=") != NULL || strstr(b.data, "${") != NULL) {
        cfw_buf_free(&b);
        return NULL;
    }
    return cfw_buf_take(&b);
}

/* ---- life cycle ---- */

struct cfw_input *cfw_input_new(const struct cfw_node *node, const char *path,
                                const struct cfw_input_env *env, const struct cfw_input_cbs *cbs,
                                struct cfw_diag *diag)
{
    const struct cfw_input_ops *ops = kind_of(node, path, diag);
    struct cfw_err err = {0};
    struct cfw_input *in;
    struct cfw_cf *cf = NULL;
    void *conf;

    if (ops == NULL || (conf = conf_parse(ops, node, path, diag)) == NULL) {
        return NULL;
    }
    if ((ops->flags & CFW_INPUT_NEEDS_CLOUDFLARE) &&
        (cf = env->cloudflare(env->arg, diag)) == NULL) {
        conf_free(ops, conf);
        return NULL;
    }
    in = cfw_xcalloc(1, sizeof(*in));
    in->ops = ops;
    in->name = cfw_xstrdup(cfw_schema_str(ops->schema, conf, "name"));
    in->keep = cfw_input_keep_text(node);
    in->cbs = *cbs;
    in->health = CFW_INPUT_UP;
    in->reason = cfw_xstrdup("");
    in->cf = cf;
    if (ops->create(in, conf, env, &err) != 0) {
        cfw_log_err("source=%s: %s", in->name, err.msg);
        cfw_input_free(in);
        in = NULL;
    }
    conf_free(ops, conf);
    return in;
}

void cfw_input_restore(struct cfw_input *in, const json_t *state)
{
    if (in->ops->restore != NULL && state != NULL) {
        in->ops->restore(in, state);
    }
}

void cfw_input_start(struct cfw_input *in)
{
    struct cfw_err err = {0};

    if (in->ops->start(in, &err) != 0) {
        cfw_log_warn("source=%s: %s", in->name, err.msg);
    }
}

void cfw_input_stop(struct cfw_input *in)
{
    if (in->ops->stop != NULL) {
        in->ops->stop(in);
    }
}

bool cfw_input_stopped(const struct cfw_input *in)
{
    return in->ops->stopped == NULL || in->ops->stopped(in);
}

json_t *cfw_input_save(const struct cfw_input *in)
{
    return in->ops->save != NULL ? in->ops->save(in) : NULL;
}

bool cfw_input_keeps_state(const struct cfw_input *in)
{
    return in->ops->save != NULL;
}

void cfw_input_drain(struct cfw_input *in)
{
    if (in->ops->drain != NULL) {
        in->ops->drain(in);
    }
}

void cfw_input_free(struct cfw_input *in)
{
    if (in == NULL) {
        return;
    }
    in->ops->destroy(in);
    free(in->name);
    free(in->keep);
    free(in->reason);
    free(in);
}

const char *cfw_input_name(const struct cfw_input *in)
{
    return in->name;
}

const char *cfw_input_type(const struct cfw_input *in)
{
    return in->ops->type;
}

const char *cfw_input_health_name(enum cfw_input_health health)
{
    switch (health) {
    case CFW_INPUT_UP:
        return "up";
    case CFW_INPUT_DEGRADED:
        return "degraded";
    case CFW_INPUT_DOWN:
        return "down";
    }
    return "?";
}

enum cfw_input_health cfw_input_health(const struct cfw_input *in, const char **reason)
{
    if (reason != NULL) {
        *reason = in->reason;
    }
    return in->health;
}

const char *cfw_input_kept_by(const struct cfw_input *in)
{
    return in->keep;
}

bool cfw_input_accepts_http(const struct cfw_input *in)
{
    return in->ops->http_handle != NULL;
}

int cfw_input_http_check(struct cfw_input *in, struct cfw_listener_req *req)
{
    return in->ops->http_check != NULL ? in->ops->http_check(in, req) : 0;
}

void cfw_input_http_handle(struct cfw_input *in, struct cfw_listener_req *req)
{
    in->ops->http_handle(in, req);
}

void cfw_inputs_metrics(struct cfw_input *const *v, size_t n, struct cfw_metrics *m)
{
    struct cfw_metrics_family *up = cfw_metrics_family(
        m, "cfwatchd_source_up", "gauge", "Source state (1 up, 0.5 degraded, 0 down).");

    for (size_t i = 0; all_ops[i] != NULL; i++) {
        if (all_ops[i]->families != NULL) {
            all_ops[i]->families(m);
        }
    }
    for (size_t i = 0; i < n; i++) {
        static const char *const value[] = {"1", "0.5", "0"};

        cfw_metrics_sample(up, CFW_LABELS("source", v[i]->name), "%s", value[v[i]->health]);
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i]->ops->metrics != NULL) {
            v[i]->ops->metrics(v[i], m);
        }
    }
}

/* ---- what the kinds hand over ---- */

void cfw_input_emit_bytes(struct cfw_input *in, const struct cfw_input_bytes *b)
{
    if (in->cbs.bytes != NULL && b->len > 0) {
        in->cbs.bytes(in->cbs.arg, in, b);
    }
}

void cfw_input_emit_eof(struct cfw_input *in, const char *stream)
{
    if (in->cbs.eof != NULL) {
        in->cbs.eof(in->cbs.arg, in, stream);
    }
}

void cfw_input_emit_record(struct cfw_input *in, const struct cfw_fields *ctx,
                           const struct cfw_record *rec)
{
    if (in->cbs.record != NULL) {
        in->cbs.record(in->cbs.arg, in, ctx, rec);
    }
}

bool cfw_input_filters(const struct cfw_input *in)
{
    return in->cbs.want != NULL;
}

bool cfw_input_wants(struct cfw_input *in, const struct cfw_record *rec)
{
    return in->cbs.want == NULL || in->cbs.want(in->cbs.arg, in, rec);
}

void cfw_input_set_health(struct cfw_input *in, enum cfw_input_health health, const char *reason)
{
    in->health = health;
    free(in->reason);
    in->reason = cfw_xstrdup(health == CFW_INPUT_UP ? "" : reason);
    if (in->cbs.health != NULL) {
        in->cbs.health(in->cbs.arg, in, health, reason);
    }
}

void cfw_input_tell_up(struct cfw_input *in, bool up, const char *reason)
{
    cfw_log(up ? CFW_LOG_NOTICE : CFW_LOG_WARNING, "source=%s state=%s%s%s", in->name,
            up ? "up" : "down", up ? "" : " reason=", reason);
    cfw_input_set_health(in, up ? CFW_INPUT_UP : CFW_INPUT_DOWN, reason);
}

void cfw_input_emit_deployment(struct cfw_input *in, const struct cfw_deployment *dep,
                               bool announce)
{
    if (in->cbs.deployment != NULL) {
        in->cbs.deployment(in->cbs.arg, in, dep, announce);
    }
}

void cfw_input_emit_build_deployed(struct cfw_input *in, const struct cfw_fields *ctx,
                                   int64_t created_wall_ms)
{
    if (in->cbs.build_deployed != NULL) {
        in->cbs.build_deployed(in->cbs.arg, in, ctx, created_wall_ms);
    }
}

void cfw_input_emit_changed(struct cfw_input *in)
{
    if (in->cbs.changed != NULL) {
        in->cbs.changed(in->cbs.arg, in);
    }
}
