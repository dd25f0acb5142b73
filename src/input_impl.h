/*
 * Internal to the inputs: the function table every kind fills, the shared input object, and
 * the helpers a kind calls to hand over what it read.
 */
#ifndef CFWATCHD_INPUT_IMPL_H
#define CFWATCHD_INPUT_IMPL_H

#include "cfwatchd/input.h"
#include "cfwatchd/schema.h"

/* An input of this kind survives a reload unchanged (cfw_input_keep_text). */
#define CFW_INPUT_KEPT_ON_RELOAD 0x100u

struct cfw_input_ops {
    const char *type;
    unsigned flags;                  /* CFW_INPUT_NEEDS_*, CFW_INPUT_KEPT_ON_RELOAD */
    const struct cfw_schema *schema; /* its keys; "name" is the input's name */
    size_t conf_size;                /* the struct the schema fills */
    /* Parses an entry into conf (zeroed); 0, or -1 with diag (conf then cleared). */
    int (*parse)(const struct cfw_node *node, const char *path, void *conf, struct cfw_diag *diag);
    void (*conf_clear)(void *conf);
    /* Makes in->priv from conf (copied); -1 with err set. */
    int (*create)(struct cfw_input *in, const void *conf, const struct cfw_input_env *env,
                  struct cfw_err *err);
    int (*start)(struct cfw_input *in, struct cfw_err *err);
    void (*stop)(struct cfw_input *in);          /* NULL: nothing to stop */
    bool (*stopped)(const struct cfw_input *in); /* NULL: stopped at once */
    json_t *(*save)(const struct cfw_input *in); /* NULL: keeps no state */
    void (*restore)(struct cfw_input *in, const json_t *state);
    void (*drain)(struct cfw_input *in); /* NULL: holds nothing back */
    /* Families declared whether or not an input of the kind runs (NULL: none). */
    void (*families)(struct cfw_metrics *m);
    /* Adds the input's samples (NULL: only cfwatchd_source_up). */
    void (*metrics)(const struct cfw_input *in, struct cfw_metrics *m);
    /* Receivers of HTTP requests (NULL for other kinds); see cfw_input_http_check. */
    int (*http_check)(struct cfw_input *in, struct cfw_listener_req *req);
    void (*http_handle)(struct cfw_input *in, struct cfw_listener_req *req);
    /* Releases priv without any callback; priv may be half-built or NULL. */
    void (*destroy)(struct cfw_input *in);
};

struct cfw_input {
    const struct cfw_input_ops *ops;
    char *name;
    char *keep; /* cfw_input_keep_text of its entry, or NULL */
    struct cfw_input_cbs cbs;
    enum cfw_input_health health;
    char *reason;      /* "" when UP */
    struct cfw_cf *cf; /* the API client, for kinds with CFW_INPUT_NEEDS_CLOUDFLARE */
    void *priv;
};

extern const struct cfw_input_ops cfw_input_file_ops;
extern const struct cfw_input_ops cfw_input_exec_ops;
extern const struct cfw_input_ops cfw_input_journal_ops;
extern const struct cfw_input_ops cfw_input_logpush_ops;
extern const struct cfw_input_ops cfw_input_cf_deployments_ops;
extern const struct cfw_input_ops cfw_input_cf_observability_ops;
extern const struct cfw_input_ops cfw_input_cf_builds_ops;
extern const struct cfw_input_ops cfw_input_cf_tail_ops;

/*
 * The type of a `sources:` entry: NULL after reporting an entry that is not a map, has no type
 * or a type that is not a string.
 */
const char *cfw_input_type_of(const struct cfw_node *node, const char *path, struct cfw_diag *diag);
/* Reports an entry's type that names no kind of source. */
void cfw_input_unknown_type(const struct cfw_node *node, const char *path, const char *type,
                            struct cfw_diag *diag);
/*
 * Reads a name that must be there (a schema reader, CFW_SCHEMA_STR): "a source needs a name"
 * when the key is absent.
 */
cfw_schema_fn cfw_input_read_required_name;

/* Hands bytes of a stream to the caller. */
void cfw_input_emit_bytes(struct cfw_input *in, const struct cfw_input_bytes *b);
/* Ends a stream that delivered bytes. */
void cfw_input_emit_eof(struct cfw_input *in, const char *stream);
/* Hands a record to decode to the caller (ctx may be NULL). */
void cfw_input_emit_record(struct cfw_input *in, const struct cfw_fields *ctx,
                           const struct cfw_record *rec);
/* True when the caller filters records before they are parsed (cfw_input_cbs.want). */
bool cfw_input_filters(const struct cfw_input *in);
/* Asks the caller's prefilter whether a record is worth parsing. */
bool cfw_input_wants(struct cfw_input *in, const struct cfw_record *rec);
/* Records a health change and tells the caller (the kind has logged it). */
void cfw_input_set_health(struct cfw_input *in, enum cfw_input_health health, const char *reason);
/*
 * Logs "source=<name> state=up" or "state=down reason=..." (the API inputs' form) and records
 * the change as cfw_input_set_health does.
 */
void cfw_input_tell_up(struct cfw_input *in, bool up, const char *reason);
/* Tells the caller of a deployment seen for the first time (cfw_input_cbs.deployment). */
void cfw_input_emit_deployment(struct cfw_input *in, const struct cfw_deployment *dep,
                               bool announce);
/* Tells the caller of a build that deployed (cfw_input_cbs.build_deployed). */
void cfw_input_emit_build_deployed(struct cfw_input *in, const struct cfw_fields *ctx,
                                   int64_t created_wall_ms);
/* Tells the caller that what cfw_input_save returns changed. */
void cfw_input_emit_changed(struct cfw_input *in);

#endif
