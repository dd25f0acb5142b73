/*
 * Persistent state: one JSON file in the state directory, written atomically (temp file, fsync,
 * rename, fsync of the directory), holding file positions, cursors and incidents. Monotonic
 * times do not survive a restart, so incidents are stored with stamps (wall clock, boot clock and
 * boot id) and converted back relative to the new monotonic clock on load: by the boot clock
 * within one boot, so that a wall-clock jump while cfwatchd was down does not age them, else by
 * the wall clock. Files without stamps (older versions) load with the wall-clock times alone.
 */
#ifndef CFWATCHD_STATE_H
#define CFWATCHD_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cfwatchd/common.h"
#include "cfwatchd/incident.h"

#define CFW_STATE_FILE "state.json"
/* The previous generation: state.json.1, kept by every save. */
#define CFW_STATE_PREV_SUFFIX ".1"
#define CFW_STATE_MAX_BYTES (256u * 1024u * 1024u)
#define CFW_STATE_VERSION 1

/* Reads and parses a JSON file of at most max bytes. NULL with err->code ENOENT when absent. */
json_t *cfw_state_read(const char *path, size_t max, struct cfw_err *err);

/* The incidents that matter after a restart (open and recently resolved) as a JSON array. */
json_t *cfw_state_incidents_save(const struct cfw_incidents *set, int64_t mono_ms,
                                 int64_t wall_ms);

/* One incident as the state file and the journal hold it; now is the current stamp. */
json_t *cfw_state_incident_json(const struct cfw_incident *inc, const struct cfw_stamp *now,
                                int64_t mono_ms);
/* Restores (or replaces, by key) one incident from cfw_state_incident_json; 0 or -1. */
int cfw_state_incident_restore(struct cfw_incidents *set, const json_t *o,
                               const struct cfw_stamp *now, int64_t mono_ms);

/*
 * Restores incidents saved by cfw_state_incidents_save (nothing is announced). Entries that do
 * not parse are skipped and counted in *skipped. Returns the number restored.
 */
size_t cfw_state_incidents_restore(struct cfw_incidents *set, const json_t *arr, int64_t mono_ms,
                                   int64_t wall_ms, size_t *skipped);

#endif
