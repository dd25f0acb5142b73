/*
 * Test helper for the source tests (test_source_*.c): a recorder of what a cfw_source hands its
 * callbacks (bytes per stream segment, eofs, state changes) and waits for what it recorded,
 * NULL-ended string lists, the save/restore round trip through text, the environment a test
 * runs in (src_env: temporary directory, loop, tick; with cmocka setup and teardown) and source
 * entries parsed from text; the event loop and temporary directory helpers of test_util.h come
 * with it. Assertions are cmocka's.
 */
#ifndef CFW_TEST_SOURCE_HARNESS_H
#define CFW_TEST_SOURCE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "cfwatchd/common.h"
#include "cfwatchd/source.h"
#include "test_util.h"

#define REC_MAX_SEGS 256
#define REC_MAX_STATES 64
/* The cap of the bytes kept (per segment, and in all): far more than any test sends. */
#define REC_DATA_MAX ((size_t)64 << 20)
/* The usual deadline for data to arrive (generous: sanitizer builds are slow). */
#define REC_WAIT_MS 10000

/* One stream as seen by the caller: its name, its bytes, and whether eof came. */
struct rec_seg {
    char *stream;
    struct cfw_buf data;
    bool ended;
};

/*
 * What a source delivered through the callbacks of rec_cbs(). Start from {0} (with options set
 * as needed); rec_clear() frees what came and keeps the options.
 */
struct rec {
    /* options */
    bool count_only;                  /* count bytes and calls only, keep no data (floods) */
    const char *only_stream;          /* set: data or eof on any other stream fails the test */
    struct cfw_source **free_on_data; /* set: the next data call frees *it and sets it NULL */
    const uint64_t *ticks;            /* set: sampled into first_tick/last_tick on data calls */
    /* what came */
    struct rec_seg segs[REC_MAX_SEGS]; /* a stream name gets a new segment after its eof */
    size_t nsegs;
    struct cfw_buf all; /* every byte kept, in arrival order across streams */
    uint64_t bytes;     /* counted even with count_only */
    size_t ndata;       /* data calls */
    size_t eofs;
    size_t stray_eofs; /* eofs for a stream with no open segment */
    enum cfw_input_health states[REC_MAX_STATES];
    char *reasons[REC_MAX_STATES];
    size_t nstates;
    uint64_t first_tick;
    uint64_t last_tick;
};

/* Callbacks that record into r. */
struct cfw_source_cbs rec_cbs(struct rec *r);
/* Frees what r recorded and zeroes it, keeping the options. */
void rec_clear(struct rec *r);
/* The bytes of one segment as a string ("" when none came). */
const char *rec_seg_text(const struct rec_seg *s);
/* Every byte kept, as a string ("" when none came). */
const char *rec_text(const struct rec *r);
/* All bytes of one stream name across its segments (free it), how many segments and ended. */
char *rec_stream_text(const struct rec *r, const char *stream, size_t *nseg, size_t *nended);
/* Runs the loop until r counted at least n bytes; false when timeout_ms passed first. */
bool rec_wait_bytes(struct event_base *base, struct rec *r, uint64_t n, int64_t timeout_ms);
/* Runs the loop until the last state r recorded is st; false when timeout_ms passed first. */
bool rec_wait_state(struct event_base *base, struct rec *r, enum cfw_input_health st,
                    int64_t timeout_ms);

/* Runs the loop until src's state is st; false when timeout_ms passed first. */
bool source_wait_state(struct event_base *base, struct cfw_source *src, enum cfw_input_health st,
                       int64_t timeout_ms);

/* A NULL-ended list of copies of the arguments up to the first NULL (15 at most; free each). */
char **strv_of(const char *first, ...) __attribute__((sentinel));

/* Saves the source's state and passes it through its text form, as the state file does. */
json_t *source_save_roundtrip(struct cfw_source *src);

/* What a source test runs in: a temporary directory (when named), an event loop and its tick. */
struct src_env {
    char dir[64]; /* "" when made without a directory */
    struct event_base *base;
    struct event *tick;
};

/*
 * Fills e: the directory /tmp/cfw-<name>-XXXXXX (none when name is NULL), a loop (precise timers
 * or not) and its 10 ms tick; 0, or -1 when the directory cannot be made.
 */
int src_env_init(struct src_env *e, const char *name, bool precise);
/* Frees what src_env_init() made and removes the directory with all below it. */
void src_env_clear(struct src_env *e);
/* A cmocka setup's body: *state becomes a new src_env_init()ed environment; 0 or -1. */
int src_env_setup(void **state, const char *name, bool precise);
/* cmocka teardown of src_env_setup(): clears and frees *state. */
int src_env_teardown(void **state);

/*
 * Loads text (one source entry, its file named file) and parses it as the entry at path with
 * cfw_source_conf_parse(); prints what diag holds when that fails; returns what it returned.
 */
int source_conf_parse_text(const char *file, const char *text, const char *path,
                           struct cfw_source_conf *conf, struct cfw_diag *diag);

#endif
