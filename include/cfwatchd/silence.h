/*
 * Silences, Alertmanager-style: a set of matchers (on the rule, key, severity, pack, title or
 * any incident field), a time window, an author and a comment. An incident that every matcher
 * of an active silence matches is still tracked (counted, listed, resolved) but its
 * notifications are not sent. Silences are persisted with the state and journaled when they
 * change, so a crash neither loses one nor revives an expired one.
 *
 * A matcher is {name, value, regex?, negate?}; a regex matches the whole value (anchored, as in
 * Alertmanager). A field an incident does not have has the value "".
 */
#ifndef CFWATCHD_SILENCE_H
#define CFWATCHD_SILENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cfwatchd/common.h"
#include "cfwatchd/incident.h"

#define CFW_SILENCES_MAX 1000u
#define CFW_SILENCE_MATCHERS_MAX 16u
#define CFW_SILENCE_TEXT_MAX 1024u
/* Expired silences are listed this long after their end, then forgotten. */
#define CFW_SILENCE_KEEP_EXPIRED_MS (24LL * 3600 * 1000)

struct cfw_silences;

struct cfw_silences *cfw_silences_new(void);
void cfw_silences_free(struct cfw_silences *set);

/*
 * Adds a silence from its JSON form: {"matchers": [{"name", "value", "regex"?, "negate"?}],
 * "starts_at"? (ms, default now), "ends_at" (ms) or "duration" ("2h"), "created_by", "comment",
 * "id"? (kept when restoring)}. Returns the silence's id (borrowed), or NULL with err naming the
 * field that is wrong.
 */
const char *cfw_silences_add(struct cfw_silences *set, const json_t *o, int64_t now_wall_ms,
                             struct cfw_err *err);
/*
 * Changes an active or pending silence in place (same id, same created_at): the members of o
 * replace the silence's (matchers as a whole), the others stay; a "duration" counts from now.
 * 0, or -1 with err (ENOENT: no such silence still in force; EINVAL: a bad field).
 */
int cfw_silences_update(struct cfw_silences *set, const char *id, const json_t *o,
                        int64_t now_wall_ms, struct cfw_err *err);
/* Ends a silence now; 0, or -1 when there is no such active silence. */
int cfw_silences_expire(struct cfw_silences *set, const char *id, int64_t now_wall_ms);
/* The id of the first active silence matching the incident, or NULL. */
const char *cfw_silences_match(const struct cfw_silences *set, const struct cfw_incident *inc,
                               int64_t now_wall_ms);
/* Every silence (active, pending, and recently expired) as a JSON array, with its "state". */
json_t *cfw_silences_json(const struct cfw_silences *set, int64_t now_wall_ms);
/* One silence by id as JSON, or NULL. */
json_t *cfw_silence_json(const struct cfw_silences *set, const char *id, int64_t now_wall_ms);
/* Restores silences saved by cfw_silences_json; returns how many did not parse. */
size_t cfw_silences_restore(struct cfw_silences *set, const json_t *arr, int64_t now_wall_ms);
/* Forgets silences that ended more than CFW_SILENCE_KEEP_EXPIRED_MS ago. */
void cfw_silences_gc(struct cfw_silences *set, int64_t now_wall_ms);
/* Active silences now. */
size_t cfw_silences_active(const struct cfw_silences *set, int64_t now_wall_ms);

#endif
