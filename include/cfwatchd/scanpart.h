/*
 * One large file scanned in parts at once (`--once -j N`), with the report of a scan of the
 * whole file in one piece.
 *
 * A part starts at the first line start at or after its nominal offset, with a framer made for
 * the middle of an input (framer.h, cfw_framer_new_mid), which frames what a framer that read
 * the file from its start frames from any line end where that one is at rest. So a part ends
 * where its own framer, past the next part's start, is at rest at a line end where a framer
 * started at the next part's start (a shadow, framed here too) is at rest as well: from there on
 * the two frame alike, and the next part's records before that point, which this part framed,
 * are left out (cfw_scanjob_shift). Usually that is the next part's start itself, or a few lines
 * after it (the end of a traceback or a pretty-printed JSON value). The shadow's counters are
 * what the next part counted over those lines, to be taken off. Where the two have not met
 * before the part after next begins (a JSON value or block longer than a part), the part frames
 * the rest of the file alone, and the parts after it are left out.
 */
#ifndef CFWATCHD_SCANPART_H
#define CFWATCHD_SCANPART_H

#include <stdbool.h>
#include <stdint.h>

#include "cfwatchd/common.h"
#include "cfwatchd/framer.h"
#include "cfwatchd/pipeline.h"
#include "cfwatchd/rules.h"

struct cfw_part {
    uint64_t from;  /* nominal start: the part starts at the first line start at or after it */
    uint64_t to;    /* the next part's nominal start; UINT64_MAX: the last part, to the end */
    uint64_t limit; /* how far the parts may go on before they meet: the part after next's start */
    struct cfw_framer_mid mid; /* of the file's start, for a part that does not start there */
};

struct cfw_part_result {
    uint64_t stop;                    /* where this part's framer stopped, at rest */
    struct cfw_pipeline_stats shadow; /* the next part's counters up to stop (lines: its lines
                                       * left out); zero when the parts met at its start */
    bool rest;                        /* the part framed the rest of the file */
};

/*
 * Whether the file open on fd can be scanned in parts, with fopts: its start framed, the mode
 * is decided and its lines end in LF (not JSON-only, wrangler-log or CR-only input; not gzip).
 */
bool cfw_part_splittable(int fd, const struct cfw_framer_opts *fopts, struct cfw_framer_mid *mid);

/*
 * Scans part pt of the file open on fd (named name) through p, whose rules are rs; progress,
 * when not NULL, is told of the bytes read. Returns 0 with *res filled, or -1 on a read error
 * with err set (what was read went through p).
 */
int cfw_part_scan(struct cfw_pipeline *p, struct cfw_ruleset *rs, int fd, const char *name,
                  const struct cfw_framer_opts *fopts, const struct cfw_part *pt,
                  struct cfw_part_result *res, void (*progress)(size_t n, void *arg), void *arg,
                  struct cfw_err *err);

#endif
