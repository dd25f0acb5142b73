/*
 * The pipeline from bytes to incidents, shared by --once and the daemon:
 * input bytes -> framer -> decoder -> matcher -> incidents. One pipeline holds the rules and the
 * incident set; each input stream (a file, stdin, a child's stdout, a Logpush batch) gets its
 * own framer through a cfw_pipeline_input.
 */
#ifndef CFWATCHD_PIPELINE_H
#define CFWATCHD_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/decode.h"
#include "cfwatchd/framer.h"
#include "cfwatchd/incident.h"
#include "cfwatchd/rules.h"

struct cfw_pipeline_stats {
    uint64_t inputs;
    uint64_t bytes;
    uint64_t lines;
    uint64_t records;
    uint64_t decoded; /* records the prefilter let through to the decoder (all with --scan full) */
    uint64_t events;  /* events of the decoded records */
    uint64_t matches;
    uint64_t long_lines;
    uint64_t garbage_bytes;
    uint64_t json_errors;
    uint64_t json_invalid;
    uint64_t nul_bytes;
};

/* A clock, injectable for tests: monotonic and wall-clock milliseconds. */
struct cfw_clock {
    int64_t (*mono_ms)(void *arg);
    int64_t (*wall_ms)(void *arg);
    void *arg;
};

struct cfw_metrics;
struct cfw_pipeline;
struct cfw_pipeline_input;

/*
 * Creates a pipeline over rules (borrowed; the caller keeps it alive or swaps it with
 * cfw_pipeline_set_rules) and incidents (borrowed). clock may be NULL for the system clocks.
 */
struct cfw_pipeline *cfw_pipeline_new(struct cfw_ruleset *rules, struct cfw_incidents *incidents,
                                      const struct cfw_clock *clock);
void cfw_pipeline_free(struct cfw_pipeline *p);
/* Swaps the rule set (reload); inputs keep their framers. */
void cfw_pipeline_set_rules(struct cfw_pipeline *p, struct cfw_ruleset *rules);
const struct cfw_pipeline_stats *cfw_pipeline_stats(const struct cfw_pipeline *p);
/* Adds the pipeline's families to the /metrics page: its counters and each rule's matches. */
void cfw_pipeline_metrics(const struct cfw_pipeline *p, struct cfw_metrics *m);

/*
 * A tap takes what the matcher hands to the incidents instead of them (the workers of
 * `--once -j N` pass it to the process that holds the incidents): each match after secret
 * scrubbing, and each `success: true` match as cfw_incidents_succeed's arguments. Borrowed;
 * NULL sends them to the incidents again.
 */
struct cfw_pipeline_tap {
    void (*observe)(const struct cfw_match *m, const struct cfw_event *ev, void *arg);
    /* a success's line (scrubbed, cut at 200 bytes) and position: cfw_pipeline_evidence */
    void (*succeed)(const char *script, const char *input, const char *line, uint64_t lineno,
                    void *arg);
    void *arg;
};

void cfw_pipeline_set_tap(struct cfw_pipeline *p, const struct cfw_pipeline_tap *tap);
/* What resolves an incident fixed by a success: "<line> (<input>:<lineno>)", to be freed. */
char *cfw_pipeline_evidence(const char *line, const char *input, uint64_t lineno);
int64_t cfw_pipeline_now_mono(const struct cfw_pipeline *p);
int64_t cfw_pipeline_now_wall(const struct cfw_pipeline *p);

/*
 * Opens an input stream named name (shown in incidents as the position's input); source, when
 * not NULL, is set as the `source` field of its events (else the name is).
 */
struct cfw_pipeline_input *cfw_pipeline_input_new(struct cfw_pipeline *p, const char *name,
                                                  const char *source,
                                                  const struct cfw_framer_opts *opts);
/*
 * The same for a part of an input that starts at a line start in its middle (framer.h,
 * cfw_framer_new_mid; mid from cfw_framer_mid_of of a framer that read the start).
 */
struct cfw_pipeline_input *cfw_pipeline_input_new_mid(struct cfw_pipeline *p, const char *name,
                                                      const char *source,
                                                      const struct cfw_framer_opts *opts,
                                                      const struct cfw_framer_mid *mid);
/* cfw_framer_at_rest of the input's framer. */
bool cfw_pipeline_input_at_rest(const struct cfw_pipeline_input *in);
/* Adds a field to every event of this input that does not carry that field itself. */
void cfw_pipeline_input_set_field(struct cfw_pipeline_input *in, const char *key,
                                  const char *value);
void cfw_pipeline_input_feed(struct cfw_pipeline_input *in, const char *buf, size_t len);
/* Emits a held partial block (idle timeout). */
void cfw_pipeline_input_flush(struct cfw_pipeline_input *in);
bool cfw_pipeline_input_pending(const struct cfw_pipeline_input *in);
/* End of the stream: emits everything held and folds the framer's counters into the stats. */
void cfw_pipeline_input_finish(struct cfw_pipeline_input *in);
/* Frees the input (finishing it first if it was not finished). */
void cfw_pipeline_input_free(struct cfw_pipeline_input *in);

/*
 * Asks the prefilter about a record before the caller spends work on it (Logpush parses a
 * candidate once for its redelivery check and hands the tree over in rec->parsed). A record
 * turned down is counted as a record and goes no further; a candidate is then fed with
 * rec->wanted set.
 */
bool cfw_pipeline_wants(struct cfw_pipeline *p, const struct cfw_record *rec);
/* Feeds one already-framed record (e.g. a Logpush NDJSON line) through decode and match. */
void cfw_pipeline_record(struct cfw_pipeline *p, const struct cfw_record *rec,
                         const char *source);
/* The same with fields added to each event that lacks them (may be NULL). */
void cfw_pipeline_record_ctx(struct cfw_pipeline *p, const struct cfw_record *rec,
                             const char *source, const struct cfw_fields *ctx);

/* Matches one event built by the caller against rules (NULL: the pipeline's) into incidents. */
void cfw_pipeline_event(struct cfw_pipeline *p, struct cfw_ruleset *rules,
                        const struct cfw_event *ev);

#endif
