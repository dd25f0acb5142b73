/*
 * The configuration file: top-level keys, the `rules` and `incidents` sections, and the nodes of
 * the sections other modules parse themselves (sources, sinks, cloudflare). All errors are
 * collected in a cfw_diag with file:line:column and the key path.
 */
#ifndef CFWATCHD_CONFIG_H
#define CFWATCHD_CONFIG_H

#include <stdbool.h>

#include "cfwatchd/incident.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/yaml.h"

#define CFW_CONFIG_DEFAULT_PATH "/etc/cfwatchd/cfwatchd.yaml"
#define CFW_CONFIG_DEFAULT_STATE_DIR "/var/lib/cfwatchd"
#define CFW_CONFIG_DEFAULT_LISTEN "127.0.0.1:9187"

struct cfw_config {
    char *path;           /* NULL when running without a file */
    struct cfw_doc *doc;  /* owns every node below */
    char *state_dir;      /* NULL: not set */
    int64_t state_save_interval_ms; /* 0: not set (CFW_APP_SAVE_INTERVAL_MS) */
    char *listen;         /* NULL: not set; "" or "off": no listener */
    char *public_url;     /* where people reach the daemon (links in alerts); NULL: no links */
    char *log_level;      /* NULL: not set */
    char **builtin_packs; /* NULL: the default (every built-in pack) */
    char **rule_files;    /* rules.files: extra rule files (relative to the config's directory) */
    const struct cfw_node *custom_rules; /* rules.custom */
    enum cfw_scan scan;                  /* rules.scan (default fast) */
    struct cfw_incident_opts incidents;  /* key_template points into doc */
    const struct cfw_node *sources;
    const struct cfw_node *sinks;
    const struct cfw_node *outbox;
    const struct cfw_node *cloudflare;
    const struct cfw_node *api; /* the HTTP API's write token (app.c) */
};

/*
 * Loads and checks path. Returns NULL only when the file cannot be read or parsed; other errors
 * are added to diag and the configuration is still returned, so that the rules can be checked
 * too: the caller fails when diag grew.
 */
struct cfw_config *cfw_config_load(const char *path, struct cfw_diag *diag);
/* An empty configuration (for --once without -c). */
struct cfw_config *cfw_config_empty(void);
void cfw_config_free(struct cfw_config *cfg);
/* The address the HTTP listener takes (listen, or its default); NULL when listen is off or "". */
const char *cfw_config_listen(const struct cfw_config *cfg);

/*
 * Builds the rule set: the built-in packs (unless no_builtin), rules.files, rules.custom, then
 * extra_files (--rules, NULL-terminated or NULL). Returns NULL when any error was found.
 */
struct cfw_ruleset *cfw_config_rules(const struct cfw_config *cfg, char *const *extra_files,
                                     bool no_builtin, struct cfw_diag *diag);

#endif
