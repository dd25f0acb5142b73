/*
 * The Logpush receiver (source type `logpush`): POST /logpush/<name> on the daemon's listener
 * accepts Cloudflare Logpush batches of Workers Trace Events (NDJSON, gzip detected by its magic
 * bytes whether or not Content-Encoding says so). Authentication by a shared secret sent as
 * `Authorization: Bearer <token>` or in the header named by `header:` (Logpush turns
 * `header_<Name>=<value>` destination parameters into request headers), compared in constant
 * time, on the request head before any body byte is read (cfw_logpush_check: a request without
 * the token gets 401 and its body is never read). The validation upload ({"content":"tests"})
 * gets 200. Caps: compressed body (a larger Content-Length is refused before the body),
 * decompressed size and ratio (gzip bombs), line length, records per batch. Logpush retries, so
 * records already seen (RayID + EventTimestampMs + ScriptName) are skipped. The request handler
 * only checks, decompresses and queues; the records are matched from the loop afterwards, in
 * budgets, so the answer leaves at once.
 */
#ifndef CFWATCHD_LOGPUSH_H
#define CFWATCHD_LOGPUSH_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

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

struct cfw_logpush_stats {
    uint64_t requests;
    uint64_t unauthorized;
    uint64_t rejected; /* too large, bomb, bad gzip, wrong method */
    uint64_t batches;
    uint64_t validations;
    uint64_t records;
    uint64_t skipped;    /* records the prefilter turned down (never parsed; in records too) */
    uint64_t duplicates; /* redelivered records, among those parsed */
    uint64_t bad_lines; /* over-long or empty-but-not-blank junk */
    uint64_t dropped_records; /* beyond max_records in one batch */
    uint64_t bytes_decompressed;
    uint64_t unspooled; /* batches accepted while the spool could not be written */
};

typedef void (*cfw_logpush_record_cb)(void *arg, const struct cfw_record *rec);
/* Whether a record is worth parsing at all (the prefilter); a record turned down is counted. */
typedef bool (*cfw_logpush_want_cb)(void *arg, const struct cfw_record *rec);

struct cfw_logpush;

/* True when node is a source entry of type logpush. */
int cfw_logpush_is(const struct cfw_node *node);
/* Parses one `sources:` entry of type logpush; 0, or -1 with every problem in diag. */
int cfw_logpush_conf_parse(const struct cfw_node *node, const char *path,
                           struct cfw_logpush_conf *conf, struct cfw_diag *diag);
void cfw_logpush_conf_clear(struct cfw_logpush_conf *conf);

/* Creates a receiver (conf copied, its token registered while it lives); records go to cb. */
struct cfw_logpush *cfw_logpush_new(struct event_base *base, const struct cfw_logpush_conf *conf,
                                    cfw_logpush_record_cb cb, void *arg);
/*
 * Sets the prefilter: each line that looks like a JSON object is offered to want first; only
 * those it takes are parsed, checked for redelivery and handed to cb with the parsed tree.
 * Without it every line is parsed (as the tests of this module do).
 */
void cfw_logpush_set_want(struct cfw_logpush *lp, cfw_logpush_want_cb want);
/*
 * Keeps accepted batches in dir (created 0700): each is written and fsynced before the 200 and
 * removed once matched; batches found there (a crash) are queued for matching now. A batch that
 * cannot be written is matched from memory (logged, counted). 0, or -1 with err set (then
 * batches are held in memory only).
 */
int cfw_logpush_set_spool(struct cfw_logpush *lp, const char *dir, struct cfw_err *err);
/* Matches every batch still queued now (batches were answered 200: Logpush will not resend). */
void cfw_logpush_drain(struct cfw_logpush *lp);
void cfw_logpush_free(struct cfw_logpush *lp);
const char *cfw_logpush_name(const struct cfw_logpush *lp);
struct cfw_listener_req;

/*
 * Checks a request's head for this receiver before its body is read (the listener's check hook
 * for /logpush/<name>): method, token, declared size. 0 to read the body, or -1 when it has
 * answered (405, 401, 413).
 */
int cfw_logpush_check(struct cfw_logpush *lp, struct cfw_listener_req *req);
/* Handles one request whose body has been read (the handler for /logpush/<name>). */
void cfw_logpush_handle(struct cfw_logpush *lp, struct cfw_listener_req *req);
const struct cfw_logpush_stats *cfw_logpush_stats(const struct cfw_logpush *lp);

/*
 * Inflates a gzip body (every member of it, as zcat does; zero padding after the last is
 * tolerated) or a zlib one, with caps on output size and ratio; returns 0 with *out allocated,
 * or -1 with err set (err->code 413 for a cap, 400 for a corrupt or truncated stream or bytes
 * after it that are neither a member nor padding).
 */
int cfw_gunzip(const char *in, size_t inlen, size_t max_out, unsigned max_ratio, char **out,
               size_t *outlen, struct cfw_err *err);

#endif
