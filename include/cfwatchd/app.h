/*
 * The daemon: one event loop owning the configuration, rules, incidents, pipeline, sources,
 * notifier, HTTP listener and persistent state; systemd notify/watchdog; SIGHUP reload;
 * SIGTERM/SIGINT shutdown that saves state and drains the outbox until a deadline.
 */
#ifndef CFWATCHD_APP_H
#define CFWATCHD_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "cfwatchd/log.h"

#define CFW_APP_SAVE_INTERVAL_MS (30 * 1000)
#define CFW_APP_TICK_MS 1000
#define CFW_APP_IDLE_FLUSH_MS 500
#define CFW_APP_DRAIN_DEADLINE_MS (10 * 1000)
/* How often advancing source positions are journaled when no transition records them. */
#define CFW_APP_POS_INTERVAL_MS 1000

struct cfw_app_opts {
    const char *config_path;
    enum cfw_log_level log_level;
    bool log_level_set; /* from the command line: wins over the configuration's */
    int64_t save_interval_ms; /* 0: CFW_APP_SAVE_INTERVAL_MS */
};

struct cfw_config;
struct cfw_diag;

/* Checks the sections the daemon parses (sources, logpush receivers); 0 or -1, errors in diag. */
int cfw_app_validate(const struct cfw_config *cfg, struct cfw_diag *diag);

struct cfw_ruleset;

/* How cfw_app_load checks the sections beyond the rules (cfw_app_validate). */
enum cfw_app_check {
    CFW_APP_CHECK_ALL,   /* their errors are errors (--check-config, the daemon) */
    CFW_APP_CHECK_QUIET, /* parsed for the secrets they name; their errors ignored */
};

/*
 * Loads the configuration at path (NULL: an empty one) and its rules, with rule_files
 * (NULL-terminated, may be NULL) and without the builtin packs when no_builtin. -1 with every
 * error in diag (nothing returned); else 0 with both in *cfgp and *rsp.
 */
int cfw_app_load(const char *path, char *const *rule_files, bool no_builtin,
                 enum cfw_app_check check, struct cfw_config **cfgp, struct cfw_ruleset **rsp,
                 struct cfw_diag *diag);

/* Runs the daemon until SIGTERM/SIGINT; returns the process exit code. */
int cfw_app_run(const struct cfw_app_opts *opts);

#endif
