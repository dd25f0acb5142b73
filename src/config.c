/* The configuration file: top-level keys, rules and incidents sections. */
#include "cfwatchd/config.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/log.h"
#include "cfwatchd/secrets.h"

static const char *const top_keys[] = {
    "state_dir", "state_save_interval", "listen", "log_level", "sources", "rules",
    "incidents", "sinks", "outbox", "cloudflare", "public_url", "api", NULL,
};
static const char *const rules_keys[] = {"builtin", "files", "custom", "scan", NULL};
static const char *const incidents_keys[] = {"key", "repeat_interval", "resolve_after",
                                             "max_incidents", NULL};

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

static void dup_str(const struct cfw_node *map, const char *key, const char *path, char **out,
                    struct cfw_diag *diag)
{
    const char *v = NULL;

    if (cfw_node_str(map, key, path, &v, diag) == 1) {
        *out = cfw_xstrdup(v);
    }
}

static void parse_rules(struct cfw_config *cfg, const struct cfw_node *rules,
                        struct cfw_diag *diag)
{
    const char *const *packs = cfw_builtin_packs();
    const struct cfw_node *custom;
    const char *scan = NULL;

    if (rules == NULL) {
        return;
    }
    if (cfw_node_check_keys(rules, "rules", rules_keys, diag) != 0 &&
        rules->type != CFW_NODE_MAP) {
        return;
    }
    if (cfw_node_strlist(rules, "builtin", "rules.builtin", &cfg->builtin_packs, diag) == 1) {
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
                             "unknown built-in pack '%s' (built-in packs: %s)",
                             cfg->builtin_packs[i], names.data != NULL ? names.data : "");
                cfw_buf_free(&names);
            }
        }
    }
    cfw_node_strlist(rules, "files", "rules.files", &cfg->rule_files, diag);
    if (cfw_node_str(rules, "scan", "rules", &scan, diag) == 1 &&
        cfw_scan_parse(scan, &cfg->scan) != 0) {
        cfw_diag_add(diag, cfw_node_get(rules, "scan"), "rules.scan",
                     "unknown scan mode '%.64s' (use fast or full)", scan);
    }
    custom = cfw_node_get(rules, "custom");
    if (custom != NULL && custom->type != CFW_NODE_SEQ) {
        cfw_diag_add(diag, custom, "rules.custom", "must be a list of rules");
    } else {
        cfg->custom_rules = custom;
    }
}

static void parse_incidents(struct cfw_config *cfg, const struct cfw_node *inc,
                            struct cfw_diag *diag)
{
    const char *key = NULL;
    uint64_t max = 0;

    if (inc == NULL) {
        return;
    }
    if (cfw_node_check_keys(inc, "incidents", incidents_keys, diag) != 0 &&
        inc->type != CFW_NODE_MAP) {
        return;
    }
    if (cfw_node_str(inc, "key", "incidents.key", &key, diag) == 1) {
        struct cfw_err err = {0};
        if (cfw_template_check(key, &err) != 0) {
            cfw_diag_add(diag, cfw_node_get(inc, "key"), "incidents.key", "%s", err.msg);
        } else {
            cfg->incidents.key_template = key;
        }
    }
    cfw_node_duration(inc, "repeat_interval", "incidents.repeat_interval",
                      &cfg->incidents.repeat_interval_ms, diag);
    cfw_node_duration(inc, "resolve_after", "incidents.resolve_after",
                      &cfg->incidents.resolve_after_ms, diag);
    if (cfw_node_u64(inc, "max_incidents", "incidents.max_incidents", 1, 10000000, &max, diag) ==
        1) {
        cfg->incidents.max_incidents = (size_t)max;
    }
}

struct cfw_config *cfw_config_load(const char *path, struct cfw_diag *diag)
{
    struct cfw_config *cfg;
    const struct cfw_node *root;
    enum cfw_log_level lvl;

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
        if (cfw_node_check_keys(root, "", top_keys, diag) != 0 && root->type != CFW_NODE_MAP) {
            cfw_config_free(cfg);
            return NULL;
        }
        dup_str(root, "state_dir", "state_dir", &cfg->state_dir, diag);
        dup_str(root, "listen", "listen", &cfg->listen, diag);
        dup_str(root, "public_url", "public_url", &cfg->public_url, diag);
        if (cfg->public_url != NULL && strncmp(cfg->public_url, "https://", 8) != 0 &&
            strncmp(cfg->public_url, "http://", 7) != 0) {
            cfw_diag_add(diag, cfw_node_get(root, "public_url"), "public_url",
                         "must be an http:// or https:// URL (where people reach this daemon's "
                         "/incidents, e.g. through a reverse proxy)");
        }
        if (cfw_node_duration(root, "state_save_interval", "state_save_interval",
                              &cfg->state_save_interval_ms, diag) == 1 &&
            cfg->state_save_interval_ms < 100) {
            cfw_diag_add(diag, cfw_node_get(root, "state_save_interval"), "state_save_interval",
                         "must be at least 100ms");
        }
        dup_str(root, "log_level", "log_level", &cfg->log_level, diag);
        if (cfg->log_level != NULL && cfw_log_parse_level(cfg->log_level, &lvl) != 0) {
            cfw_diag_add(diag, cfw_node_get(root, "log_level"), "log_level",
                         "unknown level '%s' (valid: error, warning, notice, info, debug)",
                         cfg->log_level);
        }
        parse_rules(cfg, cfw_node_get(root, "rules"), diag);
        parse_incidents(cfg, cfw_node_get(root, "incidents"), diag);
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
