/* Logging to stderr: syslog priorities, <N> prefixes when journald reads stderr. */
#ifndef CFWATCHD_LOG_H
#define CFWATCHD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/common.h"

enum cfw_log_level {
    CFW_LOG_ERR = 3,
    CFW_LOG_WARNING = 4,
    CFW_LOG_NOTICE = 5,
    CFW_LOG_INFO = 6,
    CFW_LOG_DEBUG = 7,
};

/* Sets the maximum level printed; detects JOURNAL_STREAM for priority prefixes. */
void cfw_log_init(enum cfw_log_level level);
/* Parses error|warning|notice|info|debug; returns -1 on anything else. */
int cfw_log_parse_level(const char *s, enum cfw_log_level *out);
enum cfw_log_level cfw_log_get_level(void);
/* Logs one line (no trailing newline needed), every registered secret replaced (secrets.h). */
void cfw_log(enum cfw_log_level level, const char *fmt, ...) CFW_PRINTF(2, 3);
void cfw_logv(enum cfw_log_level level, const char *fmt, va_list ap) CFW_PRINTF(2, 0);

#define cfw_log_err(...) cfw_log(CFW_LOG_ERR, __VA_ARGS__)
#define cfw_log_warn(...) cfw_log(CFW_LOG_WARNING, __VA_ARGS__)
#define cfw_log_notice(...) cfw_log(CFW_LOG_NOTICE, __VA_ARGS__)
#define cfw_log_info(...) cfw_log(CFW_LOG_INFO, __VA_ARGS__)
#define cfw_log_debug(...) cfw_log(CFW_LOG_DEBUG, __VA_ARGS__)

/*
 * A message logged at most burst times a window of interval_ms, the others counted (zeroed
 * before first use). A window begins with the first message after the last window ended.
 */
struct cfw_ratelog {
    int64_t start_ms; /* when the current window began */
    unsigned n;       /* messages logged in it */
    uint64_t skipped; /* messages not logged in it */
    bool started;
};

/*
 * Says whether one more message may be logged at now_ms (monotonic), and counts it as logged or
 * skipped. When a new window begins, *skipped gets how many messages the one before skipped
 * (to tell with the next one logged); otherwise 0.
 */
bool cfw_ratelog_ok(struct cfw_ratelog *r, int64_t now_ms, int64_t interval_ms, unsigned burst,
                    uint64_t *skipped);

/*
 * Escapes text taken from outside (log lines, HTTP bodies) for a log line: control bytes and
 * non-UTF-8 as \xNN, at most max bytes of input, "..." appended when cut. Writes into out.
 */
void cfw_log_escape(const char *s, size_t len, size_t max, char *out, size_t outlen);

#endif
