/*
 * Deployments per script, as the Cloudflare deployments poller sees them, and what they say
 * about an incident: the deployment it appeared after ("first seen 3 min after deployment X"),
 * the deployment that brought a resolved incident back ("regression in deployment Y"), and the
 * deployment after which its matches stopped ("fixed by deployment Z").
 */
#ifndef CFWATCHD_DEPLOYS_H
#define CFWATCHD_DEPLOYS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cfwatchd/incident.h"

#define CFW_DEPLOYS_PER_SCRIPT 64

struct cfw_deployment {
    char *id;
    char *script;
    char *version; /* the version serving the largest share */
    char *author;
    char *source;  /* wrangler, dash, api, workersci ... */
    char *message;
    int64_t created_wall_ms;
};

struct cfw_deploys;

struct cfw_deploys *cfw_deploys_new(void);
void cfw_deploys_free(struct cfw_deploys *d);

/*
 * Records a deployment (copied); returns 1 when it is new, 0 when it was known (same id).
 * Each script keeps its CFW_DEPLOYS_PER_SCRIPT most recent deployments.
 */
int cfw_deploys_add(struct cfw_deploys *d, const struct cfw_deployment *dep);
/* The newest deployment of script created at or before wall_ms, or NULL. */
const struct cfw_deployment *cfw_deploys_before(const struct cfw_deploys *d, const char *script,
                                                int64_t wall_ms);
/* The oldest deployment of script created after after_ms and at or before until_ms, or NULL. */
const struct cfw_deployment *cfw_deploys_between(const struct cfw_deploys *d, const char *script,
                                                 int64_t after_ms, int64_t until_ms);
/* The newest deployment known for script, or NULL. */
const struct cfw_deployment *cfw_deploys_latest(const struct cfw_deploys *d, const char *script);

/*
 * Annotates an incident about to be announced with deployment context, as fields:
 * deployment, deployment_version, deployment_author, deployment_message, deployment_note (one
 * readable sentence). For an open: the deployment it appeared after, or, when it had been
 * resolved before (prev_resolved_wall_ms), "regression in deployment Y" for a deployment since
 * then. For a resolve: "fixed by deployment Z" when a deployment landed after the last match.
 * Nothing is added when the script has no known deployments.
 */
void cfw_deploys_annotate(const struct cfw_deploys *d, struct cfw_incident *inc,
                          enum cfw_transition t, int64_t now_wall_ms);

/* Persisted form (a JSON object keyed by script) and its restore. */
json_t *cfw_deploys_save(const struct cfw_deploys *d);
void cfw_deploys_restore(struct cfw_deploys *d, const json_t *o);

#endif
