/* The configuration file: top-level keys, rules and incidents sections. */
#include "cfwatchd/config.h"

#include <libgen.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/log.h"
#include "cfwatchd/schema.h"
#include "cfwatchd/secrets.h"

struct cfw_config *cfw_config_empty(void)
{
    return cfw_xcalloc(1, sizeof(struct cfw_config));
}

void cfw_config_free(struct cfw_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    free(cfg->path);
    free(cfg->state_dir);
    free(cfg->listen);
    free(cfg->public_url);
    free(cfg->log_level);
    cfw_strlist_free(cfg->builtin_packs);
    cfw_strlist_free(cfg->rule_files);
    cfw_doc_free(cfg->doc);
    free(cfg);
}

/* rules.builtin: each name a built-in pack. */
static int check_builtin(const struct cfw_schema_key *key, const struct cfw_node *rules,
                         const char *path, void *conf, struct cfw_diag *diag)
{
    const struct cfw_config *cfg = conf;
    const char *const *packs = cfw_builtin_packs();
    int rc = 0;

    (void)key;
    (void)path;
    for (size_t i = 0; cfg->builtin_packs[i] != NULL; i++) {
        bool known = false;
        for (size_t k = 0; packs[k] != NULL; k++) {
            known = known || strcmp(packs[k], cfg->builtin_packs[i]) == 0;
        }
        if (!known) {
            struct cfw_buf names;
            cfw_buf_init(&names, CFW_BUF_MAX_BUILT);
            for (size_t k = 0; packs[k] != NULL; k++) {
                cfw_buf_printf(&names, "%s%s", k > 0 ? ", " : "", packs[k]);
            }
            cfw_diag_add(diag, cfw_node_get(rules, "builtin"), "rules.builtin",
                         "unknown built-in pack '%s' (built-in packs: %s)", cfg->builtin_packs[i],
                         names.data != NULL ? names.data : "");
            cfw_buf_free(&names);
            rc = -1;
        }
    }
    return rc;
}

/* rules.scan: fast or full. */
static int read_scan(const struct cfw_schema_key *key, const struct cfw_node *rules,
                     const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_config *cfg = conf;
    const char *scan = NULL;
    int rc = cfw_node_str(rules, key->name, path, &scan, diag);

    if (rc == 1 && cfw_scan_parse(scan, &cfg->scan) != 0) {
        cfw_diag_add(diag, cfw_node_get(rules, "scan"), "rules.scan",
                     "unknown scan mode '%.64s' (use fast or full)", scan);
        return -1;
    }
    return rc;
}

/* rules.custom (checked last): a list of rules, which cfw_config_rules reads. */
static int check_rules(const struct cfw_node *rules, const char *path, void *conf,
                       struct cfw_diag *diag)
{
    struct cfw_config *cfg = conf;
    const struct cfw_node *custom = cfw_node_get(rules, "custom");

    (void)path;
    if (custom != NULL && custom->type != CFW_NODE_SEQ) {
        cfw_diag_add(diag, custom, "rules.custom", "must be a list of rules");
        return -1;
    }
    cfg->custom_rules = custom;
    return 0;
}

#define CONFIG_KEY(m) offsetof(struct cfw_config, m)

static const struct cfw_schema_key rules_keys[] = {
    {.name = "builtin",
     .type = CFW_SCHEMA_STRLIST,
     .offset = CONFIG_KEY(builtin_packs),
     .check = check_builtin,
     .help = "the built-in packs to load (default: every one)"},
    {.name = "files",
     .type = CFW_SCHEMA_STRLIST,
     .offset = CONFIG_KEY(rule_files),
     .help = "extra rule files (relative to the configuration's directory)"},
    {.name = "custom", .help = "rules written here (checked by the section's check)"},
    {.name = "scan", .read = read_scan, .help = "fast or full (default fast)"},
    {0},
};
static const struct cfw_schema rules_schema = {rules_keys, check_rules};

/* incidents.key: a template (kept in the document: key_template points into it). */
static int read_incident_key(const struct cfw_schema_key *key, const struct cfw_node *inc,
                             const char *path, void *conf, struct cfw_diag *diag)
{
    struct cfw_incident_opts *opts = conf;
    const char *v = NULL;
    int rc = cfw_node_str(inc, key->name, path, &v, diag);
    struct cfw_err err = {0};

    if (rc == 1 && cfw_template_check(v, &err) != 0) {
        cfw_diag_add(diag, cfw_node_get(inc, "key"), "incidents.key", "%s", err.msg);
        return -1;
    }
    if (rc == 1) {
        opts->key_template = v;
    }
    return rc;
}

#define INCIDENTS_KEY(m) offsetof(struct cfw_incident_opts, m)

static const struct cfw_schema_key incidents_keys[] = {
    {.name = "key", .read = read_incident_key, .help = "the template of an incident's key"},
    {.name = "repeat_interval",
     .type = CFW_SCHEMA_DURATION,
     .offset = INCIDENTS_KEY(repeat_interval_ms),
     .help = "how often an open incident is told again"},
    {.name = "resolve_after",
     .type = CFW_SCHEMA_DURATION,
     .offset = INCIDENTS_KEY(resolve_after_ms),
     .help = "quiet time after which an incident resolves"},
    {.name = "max_incidents",
     .type = CFW_SCHEMA_SIZE,
     .offset = INCIDENTS_KEY(max_incidents),
     .min = 1,
     .max = 10000000,
     .help = "incidents kept (beyond it the oldest resolved are dropped)"},
    {0},
};
static const struct cfw_schema incidents_schema = {incidents_keys, NULL};

/* The rules and incidents sections, parsed by their schemas when they are there. */
static int read_rules(const struct cfw_schema_key *key, const struct cfw_node *root,
                      const char *path, void *conf, struct cfw_diag *diag)
{
    const struct cfw_node *map = cfw_node_get(root, key->name);

    (void)path;
    return map != NULL ? cfw_schema_parse(&rules_schema, map, key->name, conf, diag) : 0;
}

static int read_incidents(const struct cfw_schema_key *key, const struct cfw_node *root,
                          const char *path, void *conf, struct cfw_diag *diag)
{
    const struct cfw_node *map = cfw_node_get(root, key->name);
    struct cfw_config *cfg = conf;

    (void)path;
    return map != NULL ? cfw_schema_parse(&incidents_schema, map, key->name, &cfg->incidents, diag)
                       : 0;
}

static const struct cfw_schema top_schema;

/* A row read with another key (below: with listen). */
static int read_with_other(const struct cfw_schema_key *key, const struct cfw_node *root,
                           const char *path, void *conf, struct cfw_diag *diag)
{
    (void)key;
    (void)root;
    (void)path;
    (void)conf;
    (void)diag;
    return 0;
}

/*
 * listen, then public_url (an http:// or https:// URL) and state_save_interval, read with it:
 * their problems are reported in the order they always were.
 */
static int read_listen(const struct cfw_schema_key *key, const struct cfw_node *root,
                       const char *path, void *conf, struct cfw_diag *diag)
{
    const struct cfw_config *cfg = conf;
    int rc = cfw_schema_read_typed(key, root, path, conf, diag);

    if (cfw_schema_read_typed(cfw_schema_find(&top_schema, "public_url"), root, path, conf, diag) ==
            1 &&
        strncmp(cfg->public_url, "https://", 8) != 0 &&
        strncmp(cfg->public_url, "http://", 7) != 0) {
        cfw_diag_add(diag, cfw_node_get(root, "public_url"), "public_url",
                     "must be an http:// or https:// URL (where people reach this daemon's "
                     "/incidents, e.g. through a reverse proxy)");
    }
    cfw_schema_read_typed(cfw_schema_find(&top_schema, "state_save_interval"), root, path, conf,
                          diag);
    return rc;
}

static int check_log_level(const struct cfw_schema_key *key, const struct cfw_node *root,
                           const char *path, void *conf, struct cfw_diag *diag)
{
    const struct cfw_config *cfg = conf;
    enum cfw_log_level lvl;

    (void)key;
    (void)path;
    if (cfw_log_parse_level(cfg->log_level, &lvl) != 0) {
        cfw_diag_add(diag, cfw_node_get(root, "log_level"), "log_level",
                     "unknown level '%s' (valid: error, warning, notice, info, debug)",
                     cfg->log_level);
        return -1;
    }
    return 0;
}

/*
 * The top level, in the order its keys were always listed. Rows without a type are sections
 * other modules parse, whose nodes struct cfw_config keeps.
 */
static const struct cfw_schema_key top_keys[] = {
    {.name = "state_dir",
     .type = CFW_SCHEMA_STR,
     .offset = CONFIG_KEY(state_dir),
     .help = "where state, journal and spool live (default " CFW_CONFIG_DEFAULT_STATE_DIR ")"},
    {.name = "state_save_interval",
     .type = CFW_SCHEMA_DURATION,
     .offset = CONFIG_KEY(state_save_interval_ms),
     .min = 100,
     .bounds = "must be at least 100ms",
     .read = read_with_other,
     .help = "how often the state snapshot is written (read with listen)"},
    {.name = "listen",
     .type = CFW_SCHEMA_STR,
     .offset = CONFIG_KEY(listen),
     .read = read_listen,
     .help = "the HTTP listener's address, or off (default " CFW_CONFIG_DEFAULT_LISTEN ")"},
    {.name = "log_level",
     .type = CFW_SCHEMA_STR,
     .offset = CONFIG_KEY(log_level),
     .check = check_log_level,
     .help = "error, warning, notice, info or debug"},
    {.name = "sources", .help = "the inputs (input.c)"},
    {.name = "rules", .read = read_rules, .help = "rule packs, files and custom rules"},
    {.name = "incidents", .read = read_incidents, .help = "how incidents are keyed and kept"},
    {.name = "sinks", .help = "where notifications go (sink.c)"},
    {.name = "outbox", .help = "delivery's spool and retries (outbox.c)"},
    {.name = "cloudflare", .help = "the Cloudflare account (cloudflare.c)"},
    {.name = "public_url",
     .type = CFW_SCHEMA_STR,
     .offset = CONFIG_KEY(public_url),
     .read = read_with_other,
     .help = "where people reach /incidents, an http:// or https:// URL (read with listen)"},
    {.name = "api", .help = "the HTTP API's write token (app.c)"},
    {0},
};
static const struct cfw_schema top_schema = {top_keys, NULL};

struct cfw_config *cfw_config_load(const char *path, struct cfw_diag *diag)
{
    struct cfw_config *cfg;
    const struct cfw_node *root;

    /* the secrets this configuration registers form a new generation (secrets.h) */
    cfw_secrets_loading();
    cfg = cfw_config_empty();
    cfg->path = cfw_xstrdup(path);
    cfg->doc = cfw_yaml_load_file(path, diag);
    if (cfg->doc == NULL) {
        cfw_config_free(cfg);
        return NULL;
    }
    root = cfg->doc->root;
    if (root != NULL) {
        if (cfw_schema_parse(&top_schema, root, "", cfg, diag) != 0 && root->type != CFW_NODE_MAP) {
            cfw_config_free(cfg);
            return NULL;
        }
        cfg->sources = cfw_node_get(root, "sources");
        cfg->sinks = cfw_node_get(root, "sinks");
        cfg->outbox = cfw_node_get(root, "outbox");
        cfg->cloudflare = cfw_node_get(root, "cloudflare");
        cfg->api = cfw_node_get(root, "api");
    }
    return cfg;
}

/* Rule files named in the configuration are relative to the configuration's directory. */
static char *resolve_path(const struct cfw_config *cfg, const char *file)
{
    char *copy, *dir, *out;

    if (file[0] == '/' || cfg->path == NULL) {
        return cfw_xstrdup(file);
    }
    copy = cfw_xstrdup(cfg->path);
    dir = dirname(copy);
    out = cfw_xasprintf("%s/%s", dir, file);
    free(copy);
    return out;
}

struct cfw_ruleset *cfw_config_rules(const struct cfw_config *cfg, char *const *extra_files,
                                     bool no_builtin, struct cfw_diag *diag)
{
    struct cfw_ruleset *rs = cfw_ruleset_new();
    size_t before = diag->n;

    if (!no_builtin) {
        if (cfg->builtin_packs != NULL) {
            for (size_t i = 0; cfg->builtin_packs[i] != NULL; i++) {
                cfw_ruleset_add_builtin(rs, cfg->builtin_packs[i], diag);
            }
        } else {
            const char *const *packs = cfw_builtin_packs();
            for (size_t i = 0; packs[i] != NULL; i++) {
                cfw_ruleset_add_builtin(rs, packs[i], diag);
            }
        }
    }
    for (size_t i = 0; cfg->rule_files != NULL && cfg->rule_files[i] != NULL; i++) {
        char *p = resolve_path(cfg, cfg->rule_files[i]);
        cfw_ruleset_add_file(rs, p, diag);
        free(p);
    }
    if (cfg->custom_rules != NULL) {
        cfw_ruleset_add_node(rs, cfg->custom_rules, "rules.custom", "custom", diag);
    }
    for (size_t i = 0; extra_files != NULL && extra_files[i] != NULL; i++) {
        cfw_ruleset_add_file(rs, extra_files[i], diag);
    }
    if (diag->n > before) {
        cfw_ruleset_free(rs);
        return NULL;
    }
    cfw_ruleset_set_scan(rs, cfg->scan);
    return rs;
}

const char *cfw_config_listen(const struct cfw_config *cfg)
{
    const char *listen = cfg->listen != NULL ? cfg->listen : CFW_CONFIG_DEFAULT_LISTEN;

    return strcmp(listen, "off") == 0 || listen[0] == '\0' ? NULL : listen;
}
