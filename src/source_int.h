/*
 * Private to the source module: the object shared by source.c and the kind files
 * (source_file.c, source_exec.c, source_journal.c), the vtable and the helpers that deliver to
 * the caller's callbacks.
 */
#ifndef CFWATCHD_SOURCE_INT_H
#define CFWATCHD_SOURCE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/schema.h"
#include "cfwatchd/source.h"

struct event;

/* What one kind of source implements; every function gets the common object. */
struct source_ops {
    const char *name; /* its type in the configuration */
    enum cfw_source_type type;
    const struct cfw_schema *schema; /* its keys */
    /* Allocates src->impl from src->conf; -1 with err set. */
    int (*init)(struct cfw_source *src, struct cfw_err *err);
    int (*start)(struct cfw_source *src, struct cfw_err *err);
    /* Begins the stop (called from the loop, never from inside this source's own work). */
    void (*stop)(struct cfw_source *src);
    bool (*stopped)(const struct cfw_source *src);
    /* Releases impl and everything it holds without any callback; impl may be half-built. */
    void (*destroy)(struct cfw_source *src);
    json_t *(*save)(const struct cfw_source *src);
    int (*restore)(struct cfw_source *src, const json_t *state);
    /* Adds kind-specific counters (files, lag) to out. */
    void (*stats)(const struct cfw_source *src, struct cfw_source_stats *out);
};

struct cfw_source {
    const struct source_ops *ops;
    struct event_base *base;
    struct cfw_source_conf conf;
    struct cfw_source_cbs cbs;
    enum cfw_input_health state;
    char *reason; /* "" when UP */
    struct cfw_source_stats stats;
    bool problem; /* a problem is being timed towards DOWN */
    struct event *down_ev;
    struct event *stop_ev;
    /* nesting of its event callbacks; freed inside one: released by the outermost leave */
    struct cfw_busy busy;
    bool started;
    bool stopping;
    bool restored;
    void *impl;
};

extern const struct source_ops cfw_source_file_ops;
extern const struct source_ops cfw_source_exec_ops;
extern const struct source_ops cfw_source_journal_ops;
extern const struct cfw_schema cfw_source_file_schema;
extern const struct cfw_schema cfw_source_exec_schema;
extern const struct cfw_schema cfw_source_journal_schema;

/* Readers of the keys several kinds have (schema.h): name, start_at, a format. */
cfw_schema_fn cfw_source_read_name;
cfw_schema_fn cfw_source_read_start_at;
cfw_schema_fn cfw_source_read_format;

/* The rows several kinds share: written once here, listed by each kind in its own order. */
#define CFW_SOURCE_KEY(member) offsetof(struct cfw_source_conf, member)
#define CFW_SOURCE_ROW_NAME                                                                        \
    {                                                                                              \
        .name = "name", .type = CFW_SCHEMA_STR, .offset = CFW_SOURCE_KEY(name),                    \
        .read = cfw_source_read_name,                                                              \
        .help = "the source's name in incidents and state: 1 to 64 of A-Z a-z 0-9 - _ . :"         \
    }
#define CFW_SOURCE_ROW_TYPE                                                                        \
    {                                                                                              \
        .name = "type", .help = "the kind of source (it chose this table)"                         \
    }
#define CFW_SOURCE_ROW_START_AT                                                                    \
    {                                                                                              \
        .name = "start_at", .type = CFW_SCHEMA_BOOL, .offset = CFW_SOURCE_KEY(start_at_beginning), \
        .def = 0, .read = cfw_source_read_start_at,                                                \
        .help = "end (default) or beginning: where the first start reads from"                     \
    }
#define CFW_SOURCE_ROW_FORMAT(key, member)                                                         \
    {                                                                                              \
        .name = (key), .offset = CFW_SOURCE_KEY(member), .read = cfw_source_read_format,           \
        .help = "auto (default), lines, json or wrangler-log"                                      \
    }
#define CFW_SOURCE_ROW_POLL_INTERVAL                                                               \
    {                                                                                              \
        .name = "poll_interval", .type = CFW_SCHEMA_DURATION,                                      \
        .offset = CFW_SOURCE_KEY(poll_interval_ms), .def = CFW_SOURCE_POLL_INTERVAL_DEFAULT_MS,    \
        .min = 10, .help = "how often the source looks again without being woken"                  \
    }
#define CFW_SOURCE_ROW_READ_BUDGET                                                                 \
    {                                                                                              \
        .name = "read_budget", .type = CFW_SCHEMA_SIZE, .offset = CFW_SOURCE_KEY(read_budget),     \
        .def = CFW_SOURCE_READ_BUDGET_DEFAULT, .min = CFW_SOURCE_READ_BUDGET_MIN,                  \
        .max = CFW_SOURCE_READ_BUDGET_MAX, .help = "bytes read per loop turn"                      \
    }
#define CFW_SOURCE_ROW_DOWN_AFTER                                                                  \
    {                                                                                              \
        .name = "down_after", .type = CFW_SCHEMA_DURATION,                                         \
        .offset = CFW_SOURCE_KEY(down_after_ms), .def = CFW_SOURCE_DOWN_AFTER_DEFAULT_MS,          \
        .help = "how long a problem lasts before the source is DOWN"                               \
    }

/* Marks the start of an event callback working on src. */
void cfw_source_enter(struct cfw_source *src);
/* Marks its end; src may have been freed afterwards and must not be touched. */
void cfw_source_leave(struct cfw_source *src);
/* Hands bytes to the data callback; returns false when the source was freed meanwhile. */
bool cfw_source_emit_data(struct cfw_source *src, const char *stream, const char *buf, size_t len);
/* Sends eof for a stream; returns false when the source was freed meanwhile. */
bool cfw_source_emit_eof(struct cfw_source *src, const char *stream);
/* Sets the state and its reason, calling the state callback on a change; false when freed. */
bool cfw_source_set_state(struct cfw_source *src, enum cfw_input_health state, const char *fmt, ...)
    CFW_PRINTF(3, 4);
/*
 * Reports a problem that turns into DOWN when it lasts down_after (DEGRADED until then). A
 * problem reported again keeps its start time and only updates the reason. False when freed.
 */
bool cfw_source_problem(struct cfw_source *src, const char *fmt, ...) CFW_PRINTF(2, 3);
/* Clears a problem reported with cfw_source_problem (state UP); false when freed. */
bool cfw_source_ok(struct cfw_source *src);
/* Arms ev as a zero timeout so it runs on the next loop turn, after other ready events. */
void cfw_source_yield(struct event *ev);
/* Logs at most once per distinct message for this source (keyed by the text). */
void cfw_source_log_once(struct cfw_source *src, char **last, int level, const char *fmt, ...)
    CFW_PRINTF(4, 5);

#endif
