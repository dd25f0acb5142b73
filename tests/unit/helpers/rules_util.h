/*
 * Test helpers for the rules and incident tests: a ruleset built from YAML text, and a match
 * callback that hands every match to a set of incidents at a chosen clock reading.
 */
#ifndef CFW_TEST_RULES_UTIL_H
#define CFW_TEST_RULES_UTIL_H

#include <stdint.h>

#include "cfwatchd/incident.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/yaml.h"

/*
 * A ruleset from YAML text holding a `rules:` list, read as the file name and added under pack;
 * what the load and the rules say goes to diag. The document is freed before it returns.
 */
struct cfw_ruleset *rules_from_yaml(const char *name, const char *yaml, const char *pack,
                                    struct cfw_diag *diag);
/* The same, asserting that everything loads without a message (printed when there is one). */
struct cfw_ruleset *rules_from_yaml_ok(const char *name, const char *yaml, const char *pack);

/* Where observe_cb sends matches: the incidents, and the clock readings they are observed at. */
struct observe_to {
    struct cfw_incidents *set;
    int64_t mono_ms;
    int64_t wall_ms;
};

/* A cfw_ruleset_match callback: observes each match into arg, a struct observe_to. */
void observe_cb(const struct cfw_match *m, const struct cfw_event *ev, void *arg);

#endif
