/*
 * The Logpush receiver (source type `logpush`): POST /logpush/<name> on the daemon's listener
 * accepts Cloudflare Logpush batches of Workers Trace Events (NDJSON, gzip detected by its magic
 * bytes whether or not Content-Encoding says so). Authentication by a shared secret sent as
 * `Authorization: Bearer <token>` or in the header named by `header:` (Logpush turns
 * `header_<Name>=<value>` destination parameters into request headers), compared in constant
 * time, on the request head before any body byte is read (the check hook: a request without
 * the token gets 401 and its body is never read). The validation upload ({"content":"tests"})
 * gets 200. Caps: compressed body (a larger Content-Length is refused before the body),
 * decompressed size and ratio (gzip bombs), line length, records per batch. Logpush retries, so
 * records already seen (RayID + EventTimestampMs + ScriptName) are skipped. The request handler
 * only checks, decompresses and queues; the records are matched from the loop afterwards, in
 * budgets, so the answer leaves at once. Accepted batches are spooled under
 * <state_dir>/logpush/ before the 200, and matched again after a crash.
 *
 * The daemon runs a receiver as the input kind `logpush` (input.h): its request hooks are
 * cfw_input_http_check and cfw_input_http_handle, its records go through the input's prefilter
 * (cfw_input_cbs.want) and record callback.
 */
#ifndef CFWATCHD_LOGPUSH_H
#define CFWATCHD_LOGPUSH_H

#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/framer.h"
#include "cfwatchd/yaml.h"

#define CFW_LOGPUSH_MAX_BODY_DEFAULT (16u * 1024u * 1024u)
#define CFW_LOGPUSH_MAX_DECOMPRESSED_DEFAULT (256u * 1024u * 1024u)
#define CFW_LOGPUSH_MAX_RATIO_DEFAULT 200u
#define CFW_LOGPUSH_MAX_LINE_DEFAULT (1024u * 1024u)
#define CFW_LOGPUSH_MAX_RECORDS_DEFAULT 1000000u
#define CFW_LOGPUSH_MAX_QUEUED_DEFAULT (512u * 1024u * 1024u)
#define CFW_LOGPUSH_DEDUP_DEFAULT 200000u
#define CFW_LOGPUSH_BUDGET_RECORDS 2000u
#define CFW_LOGPUSH_BUDGET_MS 10u

struct cfw_logpush_conf {
    char *name;
    char *token;  /* the shared secret (never logged) */
    char *header; /* NULL: Authorization: Bearer */
    size_t max_body;
    size_t max_decompressed;
    unsigned max_ratio;
    size_t max_line;
    size_t max_records;
    size_t dedup;
};

/* True when node is a source entry of type logpush. */
int cfw_logpush_is(const struct cfw_node *node);
/* Parses one `sources:` entry of type logpush; 0, or -1 with every problem in diag. */
int cfw_logpush_conf_parse(const struct cfw_node *node, const char *path,
                           struct cfw_logpush_conf *conf, struct cfw_diag *diag);
void cfw_logpush_conf_clear(struct cfw_logpush_conf *conf);

/*
 * Inflates a gzip body (every member of it, as zcat does; zero padding after the last is
 * tolerated) or a zlib one, with caps on output size and ratio; returns 0 with *out allocated,
 * or -1 with err set (err->code 413 for a cap, 400 for a corrupt or truncated stream or bytes
 * after it that are neither a member nor padding).
 */
int cfw_gunzip(const char *in, size_t inlen, size_t max_out, unsigned max_ratio, char **out,
               size_t *outlen, struct cfw_err *err);

#endif
