/*
 * The work of one `--once -j N` worker as bytes: what its pipeline handed to the incidents
 * (cfw_pipeline_tap) for one input, in order, to be replayed into the one incident set of the
 * report. Workers are forked copies of the process that replays, so a rule travels as its
 * index in the same rule set and numbers in host byte order.
 *
 * A record is a kind byte, a u32 length and that many bytes: 'O' a match (rule index, the
 * match's fields, the event's text, fields, input, first and last line), 'S' a `success: true`
 * match (script, input, the line and its number). A string is a u32 length (UINT32_MAX: NULL),
 * its bytes and a NUL. A worker that scans a part of a file (framer.h, cfw_framer_new_mid) counts
 * its lines from the part's start; the replay puts them in place (cfw_scanjob_shift).
 */
#ifndef CFWATCHD_SCANJOB_H
#define CFWATCHD_SCANJOB_H

#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/common.h"
#include "cfwatchd/incident.h"
#include "cfwatchd/rules.h"

/*
 * Appends a match of a rule of rs: 0, or -1 when the rule is not in rs or the record does not
 * fit under b's cap (then nothing of it is in b).
 */
int cfw_scanjob_put_observe(struct cfw_buf *b, const struct cfw_ruleset *rs,
                            const struct cfw_match *m, const struct cfw_event *ev);
/*
 * Appends a `success: true` match: cfw_incidents_succeed's arguments (script, input: or NULL).
 * 0, or -1 when it does not fit under b's cap (then nothing of it is in b).
 */
int cfw_scanjob_put_succeed(struct cfw_buf *b, const char *script, const char *input,
                            const char *line, uint64_t lineno);
/*
 * A part's records in its file: those whose first line is at most skip were framed by the
 * part before (up to where their framers agreed) and are left out; the others' lines are
 * moved by base, the lines of the file before the part.
 */
struct cfw_scanjob_shift {
    uint64_t skip;
    uint64_t base;
};
/*
 * How many bytes at the start of data are whole records (read in pieces from a file, records
 * are replayed a run of whole ones at a time). When that is 0, *need says how many bytes the
 * first record takes (or its header, when not even that is there).
 */
size_t cfw_scanjob_whole(const char *data, size_t len, size_t *need);
/*
 * Replays the records of data into set at the system clocks, read per record, as the pipeline
 * does when it holds the incidents (sh: NULL for a whole input). Returns 0, or -1 with err set
 * when the data is cut short or names a rule rs does not have (nothing after that point is
 * replayed).
 */
int cfw_scanjob_replay(const char *data, size_t len, struct cfw_ruleset *rs,
                       struct cfw_incidents *set, const struct cfw_scanjob_shift *sh,
                       struct cfw_err *err);

#endif
