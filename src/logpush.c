/* The Logpush receiver: authenticated, capped, gzip-aware, deduplicating, deferred matching. */
#include "cfwatchd/logpush.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <zlib.h>

#include "cfwatchd/fsutil.h"
#include "cfwatchd/json.h"
#include "cfwatchd/listener.h"
#include "cfwatchd/log.h"
#include "cfwatchd/metrics.h"
#include "cfwatchd/secrets.h"
#include "cfwatchd/sha256.h"
#include "input_impl.h"

/* A batch waiting to be matched. */
struct batch {
    struct batch *next;
    char *data;
    size_t len;
    size_t pos;
    uint64_t line;
    uint64_t records;
    char *file; /* its spool file, removed once matched; NULL when held in memory only */
};

/*
 * Recently seen records, as 64-bit hashes in two generations of open-addressing tables: when the
 * current one is half full it becomes the previous one, so memory stays bounded and the last
 * `dedup` to 2 * `dedup` records are always remembered.
 */
struct seen {
    uint64_t *cur, *prev;
    size_t slots; /* per generation, a power of two */
    size_t used;
    size_t cap;
};

struct logpush_stats {
    uint64_t requests;
    uint64_t unauthorized;
    uint64_t rejected; /* too large, bomb, bad gzip, wrong method */
    uint64_t batches;
    uint64_t validations;
    uint64_t records;
    uint64_t skipped;         /* records the prefilter turned down (never parsed; in records too) */
    uint64_t duplicates;      /* redelivered records, among those parsed */
    uint64_t bad_lines;       /* over-long or empty-but-not-blank junk */
    uint64_t dropped_records; /* beyond max_records in one batch */
    uint64_t bytes_decompressed;
    uint64_t unspooled; /* batches accepted while the spool could not be written */
};

struct cfw_logpush {
    struct cfw_logpush_conf conf;
    struct cfw_secret_hold *hold; /* the token, registered while the receiver lives */
    struct event_base *base;
    struct event *ev_work;
    struct cfw_input *in; /* records go to its record callback, through its prefilter */
    struct batch *head, *tail;
    size_t queued_bytes;
    struct seen seen;
    struct cfw_json *json; /* the parse of the record being matched (the decoder reads it) */
    struct logpush_stats stats;
    /* the spool: a batch answered 200 is on disk first, so that a crash does not lose it */
    char *spool_base; /* <state_dir>/logpush */
    char *spool_dir;
    int spool_fd;
    uint64_t spool_seq;
};

int cfw_logpush_is(const struct cfw_node *node)
{
    const struct cfw_node *t = cfw_node_get(node, "type");

    return t != NULL && t->type == CFW_NODE_SCALAR && strcmp(t->value, "logpush") == 0;
}

void cfw_logpush_conf_clear(struct cfw_logpush_conf *conf)
{
    free(conf->name);
    if (conf->token != NULL) {
        explicit_bzero(conf->token, strlen(conf->token));
        free(conf->token);
    }
    free(conf->header);
    memset(conf, 0, sizeof(*conf));
}

static int read_name(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                     void *conf, struct cfw_diag *diag)
{
    const char *s = NULL;
    int rc = cfw_node_str(map, k->name, path, &s, diag);
    char *kp;

    if (rc == 0) {
        /* absent, or present but null (`name: ~`): both leave the source without a URL */
        cfw_diag_add(diag, map, path, "a logpush source needs a name (its URL is /logpush/NAME)");
        return -1;
    }
    if (rc < 0) {
        return -1;
    }
    ((struct cfw_logpush_conf *)conf)->name = cfw_xstrdup(s);
    if (s[0] == '\0' || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._-") != strlen(s)) {
        kp = cfw_schema_path(k, path);
        cfw_diag_add(diag, cfw_node_get(map, k->name), kp,
                     "'%s' cannot be a URL path segment (letters, digits, . _ - only)", s);
        free(kp);
        return -1;
    }
    return 1;
}

static int read_token(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                      void *conf, struct cfw_diag *diag)
{
    char **token = &((struct cfw_logpush_conf *)conf)->token;

    switch (cfw_node_secret(map, k->name, "token_file", path, token, diag)) {
    case 0:
        cfw_diag_add(diag, map, path,
                     "a logpush source needs token or token_file (requests are authenticated)");
        return -1;
    case 1:
        cfw_secret_register(*token, strlen(*token));
        if (strlen(*token) < 16) {
            cfw_diag_add(diag, map, path, "the logpush token is shorter than 16 characters");
            return -1;
        }
        return 1;
    default:
        return -1;
    }
}

#define LOGPUSH_KEY(member) offsetof(struct cfw_logpush_conf, member)

static const struct cfw_schema_key logpush_keys[] = {
    {.name = "name",
     .type = CFW_SCHEMA_STR,
     .offset = LOGPUSH_KEY(name),
     .read = read_name,
     .help = "the source's name, and its URL: /logpush/NAME (required)"},
    {.name = "type", .help = "logpush"},
    {.name = "token",
     .type = CFW_SCHEMA_STR,
     .offset = LOGPUSH_KEY(token),
     .read = read_token,
     .help = "the shared secret requests must carry (or token_file; at least 16 characters)"},
    {.name = "token_file", .help = "a file holding the token (read with token)"},
    {.name = "header",
     .type = CFW_SCHEMA_STR,
     .offset = LOGPUSH_KEY(header),
     .help = "the header carrying the token (default: Authorization: Bearer)"},
    {.name = "max_body",
     .type = CFW_SCHEMA_SIZE,
     .offset = LOGPUSH_KEY(max_body),
     .def = CFW_LOGPUSH_MAX_BODY_DEFAULT,
     .min = 1024,
     .max = 1024ULL * 1024 * 1024,
     .help = "bytes of a request body as sent (compressed)"},
    {.name = "max_decompressed",
     .type = CFW_SCHEMA_SIZE,
     .offset = LOGPUSH_KEY(max_decompressed),
     .def = CFW_LOGPUSH_MAX_DECOMPRESSED_DEFAULT,
     .min = 1024,
     .max = 4ULL * 1024 * 1024 * 1024,
     .help = "bytes of a batch once decompressed"},
    {.name = "max_ratio",
     .type = CFW_SCHEMA_UINT,
     .offset = LOGPUSH_KEY(max_ratio),
     .def = CFW_LOGPUSH_MAX_RATIO_DEFAULT,
     .min = 2,
     .max = 100000,
     .help = "decompressed bytes per compressed byte (gzip bombs)"},
    {.name = "max_line",
     .type = CFW_SCHEMA_SIZE,
     .offset = LOGPUSH_KEY(max_line),
     .def = CFW_LOGPUSH_MAX_LINE_DEFAULT,
     .min = 256,
     .max = 64ULL * 1024 * 1024,
     .help = "bytes of one record; longer lines are skipped and counted"},
    {.name = "max_records",
     .type = CFW_SCHEMA_SIZE,
     .offset = LOGPUSH_KEY(max_records),
     .def = CFW_LOGPUSH_MAX_RECORDS_DEFAULT,
     .min = 1,
     .max = 100000000,
     .help = "records matched per batch; the rest are dropped and counted"},
    {.name = "dedup",
     .type = CFW_SCHEMA_SIZE,
     .offset = LOGPUSH_KEY(dedup),
     .def = CFW_LOGPUSH_DEDUP_DEFAULT,
     .min = 16,
     .max = 10000000,
     .help = "records remembered to skip redeliveries"},
    {0},
};

static const struct cfw_schema logpush_schema = {.keys = logpush_keys};

int cfw_logpush_conf_parse(const struct cfw_node *node, const char *path,
                           struct cfw_logpush_conf *conf, struct cfw_diag *diag)
{
    memset(conf, 0, sizeof(*conf));
    cfw_schema_defaults(&logpush_schema, conf);
    if (cfw_schema_parse(&logpush_schema, node, path, conf, diag) != 0) {
        cfw_logpush_conf_clear(conf);
        return -1;
    }
    return 0;
}

static bool all_zero(const Bytef *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

int cfw_gunzip(const char *in, size_t inlen, size_t max_out, unsigned max_ratio, char **out,
               size_t *outlen, struct cfw_err *err)
{
    z_stream zs;
    struct cfw_buf b = CFW_BUF_INIT(max_out);
    char chunk[64 * 1024];
    int zrc = Z_OK;

    memset(&zs, 0, sizeof(zs));
    /* 15 + 32: zlib or gzip, detected from the header */
    if (inflateInit2(&zs, 15 + 32) != Z_OK) {
        cfw_err_setc(err, 500, "cannot initialise zlib");
        return -1;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)inlen;
    for (;;) {
        size_t produced;

        if (zrc == Z_STREAM_END) {
            /*
             * RFC 1952 2.2: a gzip file is a series of members (what `cat a.gz b.gz` or a
             * parallel compressor writes), and zcat reads them all. Zero padding after the last
             * one is tolerated; anything else is a damaged body, refused so that it is sent
             * again rather than half read.
             */
            if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
                if (inflateReset(&zs) != Z_OK) {
                    cfw_err_setc(err, 500, "cannot reset zlib");
                    goto fail;
                }
                zrc = Z_OK;
                continue;
            }
            if (!all_zero(zs.next_in, zs.avail_in)) {
                cfw_err_setc(err, 400, "corrupt gzip body (%u bytes after the last member)",
                             (unsigned)zs.avail_in);
                goto fail;
            }
            break;
        }
        zs.next_out = (Bytef *)chunk;
        zs.avail_out = sizeof(chunk);
        zrc = inflate(&zs, Z_NO_FLUSH);
        if (zrc != Z_OK && zrc != Z_STREAM_END) {
            cfw_err_setc(err, 400, "corrupt gzip body (%s)", zs.msg != NULL ? zs.msg : "zlib");
            goto fail;
        }
        produced = sizeof(chunk) - zs.avail_out;
        if (cfw_buf_append(&b, chunk, produced) != 0) {
            cfw_err_setc(err, 413, "decompressed body over %zu bytes", max_out);
            goto fail;
        }
        if (max_ratio > 0 && b.len > 65536 && b.len / (inlen > 0 ? inlen : 1) > max_ratio) {
            cfw_err_setc(err, 413, "compression ratio over %u (a gzip bomb?)", max_ratio);
            goto fail;
        }
        if (zrc == Z_OK && zs.avail_in == 0 && produced == 0) {
            cfw_err_setc(err, 400, "truncated gzip body");
            goto fail;
        }
    }
    inflateEnd(&zs);
    *outlen = b.len;
    *out = cfw_buf_take(&b);
    return 0;
fail:
    inflateEnd(&zs);
    cfw_buf_free(&b);
    return -1;
}

/* ---- recently seen records ---- */

static uint64_t hash_bytes(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static bool table_has(const uint64_t *t, size_t slots, uint64_t h)
{
    for (size_t i = h & (slots - 1);; i = (i + 1) & (slots - 1)) {
        if (t[i] == 0) {
            return false;
        }
        if (t[i] == h) {
            return true;
        }
    }
}

/* Returns true when h was seen already; remembers it otherwise. */
static bool seen_check(struct seen *s, uint64_t h)
{
    size_t i;

    h |= 1; /* 0 marks an empty slot */
    if (table_has(s->cur, s->slots, h) || (s->prev != NULL && table_has(s->prev, s->slots, h))) {
        return true;
    }
    if (s->used >= s->cap) {
        free(s->prev);
        s->prev = s->cur;
        s->cur = cfw_xcalloc(s->slots, sizeof(uint64_t));
        s->used = 0;
    }
    for (i = h & (s->slots - 1); s->cur[i] != 0; i = (i + 1) & (s->slots - 1)) {
    }
    s->cur[i] = h;
    s->used++;
    return false;
}

/* A line that can be a JSON object: '{' first and '}' last (blanks around were trimmed). */
static bool object_shaped(const char *line, size_t len)
{
    while (len > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    return len >= 2 && line[0] == '{' && line[len - 1] == '}';
}

/* The identity of a trace event: RayID + EventTimestampMs + ScriptName (0 when absent). */
static uint64_t record_identity(struct cfw_json *j, const struct cfw_json_node *root)
{
    const struct cfw_json_node *ray = NULL, *ts = NULL, *script = NULL;
    struct cfw_json_iter it;
    uint64_t h = 1469598103934665603ULL;
    char num[32];
    const char *s;
    size_t len;

    cfw_json_iter_init(root, &it);
    while (cfw_json_iter_next(j, &it)) {
        if (cfw_json_key_is(j, it.key, "EventTimestampMs", true)) {
            ts = it.value;
        } else if (cfw_json_key_is(j, it.key, "ScriptName", true)) {
            script = it.value;
        } else if (cfw_json_key_is(j, it.key, "Event", true) &&
                   cfw_json_is(it.value, CFW_JSON_OBJECT)) {
            struct cfw_json_iter in;

            cfw_json_iter_init(it.value, &in);
            while (cfw_json_iter_next(j, &in)) {
                if (cfw_json_key_is(j, in.key, "RayID", true)) {
                    ray = in.value;
                }
            }
        }
    }
    if (!cfw_json_is(ray, CFW_JSON_STRING) || !cfw_json_is(ts, CFW_JSON_INTEGER)) {
        return 0;
    }
    s = cfw_json_str(j, ray, &len);
    h = hash_bytes(h, s, len);
    snprintf(num, sizeof(num), "|%lld|", (long long)cfw_json_int(ts));
    h = hash_bytes(h, num, strlen(num));
    s = cfw_json_str(j, script, &len);
    if (s != NULL) {
        h = hash_bytes(h, s, len);
    }
    return h;
}

/* ---- matching from the loop ---- */

static void batch_free(struct batch *b)
{
    free(b->data);
    free(b->file);
    free(b);
}

static void enqueue(struct cfw_logpush *lp, struct batch *b)
{
    if (lp->tail != NULL) {
        lp->tail->next = b;
    } else {
        lp->head = b;
    }
    lp->tail = b;
    lp->queued_bytes += b->len;
}

/*
 * Writes a batch to the spool (fsynced) as it came, gzip or not (a gzip body is the smaller:
 * one fsync of a megabyte, not of the 45 it inflates to); false when it stays in memory only
 * (logged, counted).
 */
static bool spool_write(struct cfw_logpush *lp, struct batch *b, const char *raw, size_t raw_len)
{
    struct cfw_err err = {0};
    char name[40];

    if (lp->spool_fd < 0) {
        return false;
    }
    snprintf(name, sizeof(name), "%016" PRIx64 ".ndjson", lp->spool_seq++);
    if (cfw_fs_write_atomic(lp->spool_fd, lp->spool_dir, name, raw, raw_len, 0600, &err) != 0) {
        if (lp->stats.unspooled++ % 1000 == 0) {
            cfw_log_err("source=%s: Logpush batch not spooled (%s); matched from memory only, "
                        "lost if cfwatchd dies first (%" PRIu64 " so far)",
                        lp->conf.name, err.msg, lp->stats.unspooled);
        }
        return false;
    }
    b->file = cfw_xstrdup(name);
    return true;
}

/* A matched batch leaves the spool. */
static void spool_remove(struct cfw_logpush *lp, const struct batch *b)
{
    if (b->file != NULL && lp->spool_fd >= 0 && unlinkat(lp->spool_fd, b->file, 0) != 0 &&
        errno != ENOENT) {
        cfw_log_warn("source=%s: cannot remove %s/%s: %s (it is matched again at the next start)",
                     lp->conf.name, lp->spool_dir, b->file, strerror(errno));
    }
}

/*
 * The next slice of matching runs from a zero timeout, not event_active: an active event would
 * run again in the same pass of the loop, so a large batch would keep sockets and timers
 * (the listener, /healthz, the watchdog) waiting until all of it was matched.
 */
static void schedule_work(struct cfw_logpush *lp)
{
    struct timeval zero = {0, 0};

    if (!evtimer_pending(lp->ev_work, NULL)) {
        evtimer_add(lp->ev_work, &zero);
    }
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
    struct cfw_logpush *lp = arg;
    unsigned budget = CFW_LOGPUSH_BUDGET_RECORDS;
    int64_t until = cfw_now_mono_ms() + CFW_LOGPUSH_BUDGET_MS;
    char input[96];

    snprintf(input, sizeof(input), "logpush:%s", lp->conf.name);
    while (lp->head != NULL && budget > 0) {
        struct batch *b = lp->head;
        while (b->pos < b->len && budget > 0) {
            char *start = b->data + b->pos;
            char *nl = memchr(start, '\n', b->len - b->pos);
            size_t len = nl != NULL ? (size_t)(nl - start) : b->len - b->pos;
            struct cfw_record rec = {.kind = CFW_REC_JSON, .input = input};
            const struct cfw_json_node *root;
            uint64_t id;

            b->pos += len + (nl != NULL ? 1 : 0);
            b->line++;
            while (len > 0 && (start[len - 1] == '\r' || start[len - 1] == ' ')) {
                len--;
            }
            if (len == 0) {
                continue;
            }
            if (len > lp->conf.max_line) {
                lp->stats.bad_lines++;
                continue;
            }
            budget--;
            if (budget % 64 == 0 && cfw_now_mono_ms() >= until) {
                /* a slice also ends on time, so that a slow machine keeps /healthz quick */
                budget = 0;
            }
            /* a line that is not a JSON object is junk: skipped and counted, not matched */
            if (!object_shaped(start, len)) {
                lp->stats.bad_lines++;
                continue;
            }
            start[len] = '\0';
            rec.text = start;
            rec.len = len;
            rec.line = b->line;
            rec.line_end = b->line;
            if (b->records >= lp->conf.max_records) {
                lp->stats.dropped_records++;
                continue;
            }
            /*
             * The prefilter first: a record no rule can match is counted and left unparsed (so
             * neither checked for redelivery: it cannot change an incident). A candidate is
             * parsed once, for its identity and for the decoder.
             */
            if (!cfw_input_wants(lp->in, &rec)) {
                b->records++;
                lp->stats.records++;
                lp->stats.skipped++;
                continue;
            }
            root = cfw_json_parse(lp->json, start, len);
            if (!cfw_json_is(root, CFW_JSON_OBJECT)) {
                lp->stats.bad_lines++;
                continue;
            }
            id = record_identity(lp->json, root);
            b->records++;
            if (id != 0 && seen_check(&lp->seen, id)) {
                lp->stats.duplicates++;
            } else {
                lp->stats.records++;
                rec.parsed = lp->json;
                rec.wanted = cfw_input_filters(lp->in);
                cfw_input_emit_record(lp->in, NULL, &rec);
            }
        }
        if (b->pos >= b->len) {
            lp->head = b->next;
            if (lp->head == NULL) {
                lp->tail = NULL;
            }
            lp->queued_bytes -= b->len;
            spool_remove(lp, b);
            batch_free(b);
        }
    }
    if (lp->head != NULL) {
        schedule_work(lp);
    }
}

/* ---- the request handler ---- */

static bool authorized(const struct cfw_logpush *lp, const struct cfw_listener_req *req)
{
    const char *v;

    if (lp->conf.header != NULL) {
        v = cfw_listener_req_header(req, lp->conf.header);
        return v != NULL && cfw_ct_str_equal(v, lp->conf.token);
    }
    v = cfw_listener_req_header(req, "Authorization");
    if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0) {
        return false;
    }
    v += 7;
    while (*v == ' ') {
        v++;
    }
    return cfw_ct_str_equal(v, lp->conf.token);
}

static void reply_text(struct cfw_listener_req *req, int code, const char *msg)
{
    cfw_listener_reply(req, code, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* Method and token; -1 once answered (405 or 401). */
static int gate(struct cfw_logpush *lp, struct cfw_listener_req *req)
{
    if (cfw_listener_req_method(req) != CFW_LISTENER_POST) {
        lp->stats.rejected++;
        cfw_listener_req_add_header(req, "Allow", "POST");
        reply_text(req, 405, "POST only\n");
        return -1;
    }
    if (!authorized(lp, req)) {
        lp->stats.unauthorized++;
        if (lp->stats.unauthorized == 1 || lp->stats.unauthorized % 1000 == 0) {
            cfw_log_warn("source=%s: %llu unauthorized Logpush request(s)", lp->conf.name,
                         (unsigned long long)lp->stats.unauthorized);
        }
        cfw_listener_req_add_header(req, "WWW-Authenticate", "Bearer realm=\"cfwatchd\"");
        reply_text(req, 401, "unauthorized\n");
        return -1;
    }
    return 0;
}

/* The Logpush destination check uploads {"content":"tests"} (some say "test"). */
static bool is_validation(const char *body, size_t len)
{
    while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r' || body[len - 1] == ' ')) {
        len--;
    }
    return len < 128 && len > 12 && memmem(body, len, "\"content\"", 9) != NULL &&
           memchr(body, '\n', len) == NULL && body[0] == '{';
}

/*
 * Checks a request's head before its body is read (the listener's check hook for
 * /logpush/<name>): method, token, declared size. 0 to read the body, or -1 when it has
 * answered (405, 401, 413).
 */
static int logpush_check(struct cfw_input *in, struct cfw_listener_req *req)
{
    struct cfw_logpush *lp = in->priv;
    int64_t declared = cfw_listener_req_content_length(req);

    lp->stats.requests++;
    if (gate(lp, req) != 0) {
        return -1;
    }
    if (declared >= 0 && (uint64_t)declared > lp->conf.max_body) {
        lp->stats.rejected++;
        reply_text(req, 413, "body too large\n");
        return -1;
    }
    /* a chunked body is held to the same cap by the listener while it is decoded */
    cfw_listener_req_set_max_body(req, lp->conf.max_body);
    return 0;
}

/* Handles one request whose body has been read (the handler for /logpush/<name>). */
static void logpush_handle(struct cfw_input *in, struct cfw_listener_req *req)
{
    struct cfw_logpush *lp = in->priv;
    struct cfw_err err = {0};
    struct batch *b;
    char *body, *data = NULL;
    size_t len, datalen = 0;

    /* checked again: a reload may have replaced the receiver since logpush_check ran */
    if (gate(lp, req) != 0) {
        return;
    }
    body = cfw_listener_req_take_body(req, &len);
    if (len > lp->conf.max_body) {
        free(body);
        lp->stats.rejected++;
        reply_text(req, 413, "body too large\n");
        return;
    }
    if (len >= 2 && (unsigned char)body[0] == 0x1f && (unsigned char)body[1] == 0x8b) {
        if (cfw_gunzip(body, len, lp->conf.max_decompressed, lp->conf.max_ratio, &data,
                       &datalen, &err) != 0) {
            free(body);
            lp->stats.rejected++;
            cfw_log_warn("source=%s: Logpush batch rejected: %s", lp->conf.name, err.msg);
            reply_text(req, err.code == 413 ? 413 : 400, err.code == 413 ? "too large\n"
                                                                         : "bad gzip\n");
            return;
        }
    } else {
        data = body;
        datalen = len;
    }
    lp->stats.bytes_decompressed += datalen;
    if (is_validation(data, datalen)) {
        lp->stats.validations++;
        if (data != body) {
            free(body);
        }
        free(data);
        reply_text(req, 200, "ok\n");
        return;
    }
    if (lp->queued_bytes + datalen > CFW_LOGPUSH_MAX_QUEUED_DEFAULT) {
        /* Logpush retries: asking for that is better than dropping what it sent */
        if (data != body) {
            free(body);
        }
        free(data);
        lp->stats.rejected++;
        reply_text(req, 503, "busy, retry later\n");
        return;
    }
    b = cfw_xcalloc(1, sizeof(*b));
    /* durable before the 200: Logpush does not send a batch again once it was answered 200 */
    spool_write(lp, b, body, data != body ? len : datalen);
    if (data != body) {
        free(body);
    }
    /* one spare byte so that the last line can be NUL-terminated in place */
    b->data = cfw_xrealloc(data, datalen + 1);
    b->len = datalen;
    enqueue(lp, b);
    lp->stats.batches++;
    reply_text(req, 200, "ok\n");
    schedule_work(lp);
}

/* Creates a receiver (conf copied, its token registered while it lives). */
static int logpush_create(struct cfw_input *in, const void *cp, const struct cfw_input_env *env,
                          struct cfw_err *err)
{
    const struct cfw_logpush_conf *conf = cp;
    struct cfw_logpush *lp = cfw_xcalloc(1, sizeof(*lp));
    size_t slots = 64;

    (void)err;
    lp->conf = *conf;
    lp->conf.name = cfw_xstrdup(conf->name);
    lp->conf.token = cfw_xstrdup(conf->token);
    lp->conf.header = conf->header != NULL ? cfw_xstrdup(conf->header) : NULL;
    lp->hold = cfw_secret_hold_new();
    cfw_secret_hold_add(lp->hold, lp->conf.token, strlen(lp->conf.token));
    lp->base = env->base;
    lp->in = in;
    lp->ev_work = evtimer_new(env->base, on_work, lp);
    lp->spool_fd = -1;
    lp->spool_base = cfw_xasprintf("%s/logpush", env->state_dir);
    while (slots < conf->dedup * 2) {
        slots *= 2;
    }
    lp->seen.slots = slots;
    lp->seen.cap = conf->dedup;
    lp->seen.cur = cfw_xcalloc(slots, sizeof(uint64_t));
    lp->json = cfw_json_new();
    in->priv = lp;
    return 0;
}

/* Matches every batch still queued now (batches were answered 200: Logpush will not resend). */
static void logpush_drain(struct cfw_input *in)
{
    struct cfw_logpush *lp = in->priv;

    while (lp->head != NULL) {
        on_work(-1, EV_TIMEOUT, lp);
    }
    evtimer_del(lp->ev_work);
}

static void logpush_destroy(struct cfw_input *in)
{
    struct cfw_logpush *lp = in->priv;

    if (lp == NULL) {
        return;
    }
    while (lp->head != NULL) {
        struct batch *b = lp->head;
        lp->head = b->next;
        batch_free(b);
    }
    if (lp->ev_work != NULL) {
        event_free(lp->ev_work);
    }
    if (lp->spool_fd >= 0) {
        close(lp->spool_fd);
    }
    free(lp->spool_base);
    free(lp->spool_dir);
    free(lp->seen.cur);
    free(lp->seen.prev);
    cfw_json_free(lp->json);
    cfw_logpush_conf_clear(&lp->conf);
    cfw_secret_hold_free(lp->hold);
    free(lp);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads one spooled batch back into the queue; false when it cannot be read (left in place). */
static bool spool_load_one(struct cfw_logpush *lp, const char *name)
{
    struct cfw_err rerr = {0};
    struct batch *b;
    size_t got = 0;
    /* a regular file (not followed through a link) of at most max_body bytes; the caller logs */
    char *text = cfw_fs_read_fileat(lp->spool_fd, name, lp->conf.max_body, &got, &rerr);

    if (text == NULL) {
        return false;
    }
    b = cfw_xcalloc(1, sizeof(*b));
    b->data = text;
    b->len = got;
    if (got >= 2 && (unsigned char)b->data[0] == 0x1f && (unsigned char)b->data[1] == 0x8b) {
        /* spooled as it came: inflated again, under the same caps as when it was accepted */
        struct cfw_err err = {0};
        char *data = NULL;
        size_t datalen = 0;

        if (cfw_gunzip(b->data, got, lp->conf.max_decompressed, lp->conf.max_ratio, &data,
                       &datalen, &err) != 0) {
            cfw_log_err("source=%s: spooled batch %s: %s", lp->conf.name, name, err.msg);
            batch_free(b);
            return false;
        }
        free(b->data);
        b->data = cfw_xrealloc(data, datalen + 1);
        b->len = datalen;
    }
    b->file = cfw_xstrdup(name);
    enqueue(lp, b);
    return true;
}

/*
 * Keeps accepted batches in dir (created 0700): each is written and fsynced before the 200 and
 * removed once matched; batches found there (a crash) are queued for matching now. A batch that
 * cannot be written is matched from memory (logged, counted). 0, or -1 with err set (then
 * batches are held in memory only).
 */
static int set_spool(struct cfw_logpush *lp, const char *dir, struct cfw_err *err)
{
    char **names = NULL;
    size_t n = 0, cap = 0, loaded = 0;
    struct dirent *de;
    DIR *d;

    lp->spool_dir = cfw_xstrdup(dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cfw_err_setc(err, errno, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    lp->spool_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lp->spool_fd < 0 || (d = fdopendir(dup(lp->spool_fd))) == NULL) {
        cfw_err_setc(err, errno, "cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        char *end;

        if (strncmp(de->d_name, CFW_FS_TMP_PREFIX, strlen(CFW_FS_TMP_PREFIX)) == 0) {
            unlinkat(lp->spool_fd, de->d_name, 0); /* a write the crash cut: never answered 200 */
            continue;
        }
        seq = strtoull(de->d_name, &end, 16);
        if (end != de->d_name + 16 || strcmp(end, ".ndjson") != 0) {
            continue;
        }
        if (seq >= lp->spool_seq) {
            lp->spool_seq = seq + 1;
        }
        if (n == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            names = cfw_xrealloc(names, cap * sizeof(*names));
        }
        names[n++] = cfw_xstrdup(de->d_name);
    }
    closedir(d);
    if (n > 1) {
        qsort(names, n, sizeof(*names), name_cmp);
    }
    for (size_t i = 0; i < n; i++) {
        if (spool_load_one(lp, names[i])) {
            loaded++;
        } else {
            cfw_log_err("source=%s: spooled batch %s/%s cannot be read; left in place",
                        lp->conf.name, dir, names[i]);
        }
        free(names[i]);
    }
    free(names);
    if (loaded > 0) {
        cfw_log_notice("source=%s: matching %zu Logpush batch(es) accepted before the last stop "
                       "(from %s)",
                       lp->conf.name, loaded, dir);
        schedule_work(lp);
    }
    return 0;
}

/*
 * Spools the receiver's accepted batches under state_dir/logpush/<name> (characters other than
 * letters, digits, '.', '_' and '-' become '_').
 */
static int logpush_start(struct cfw_input *in, struct cfw_err *unused)
{
    struct cfw_logpush *lp = in->priv;
    struct cfw_err err = {0};
    char *dir = cfw_xasprintf("%s/_%s", lp->spool_base, lp->conf.name);

    (void)unused;
    for (char *p = dir + strlen(lp->spool_base) + 2; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-')) {
            *p = '_';
        }
    }
    if ((mkdir(lp->spool_base, 0700) != 0 && errno != EEXIST) || set_spool(lp, dir, &err) != 0) {
        cfw_log_err("source=%s: %s; accepted Logpush batches are held in memory only",
                    lp->conf.name, err.msg[0] != '\0' ? err.msg : strerror(errno));
    }
    free(dir);
    return 0;
}

static void logpush_metrics(const struct cfw_input *in, struct cfw_metrics *m)
{
    static const struct {
        const char *name;
        const char *help;
        size_t off;
    } lp[] = {
        {"cfwatchd_logpush_records_total", "Logpush records accepted.",
         offsetof(struct logpush_stats, records)},
        {"cfwatchd_logpush_skipped_total",
         "Logpush records no rule can match (accepted, not parsed).",
         offsetof(struct logpush_stats, skipped)},
        {"cfwatchd_logpush_duplicates_total",
         "Logpush records skipped as redeliveries (of those parsed).",
         offsetof(struct logpush_stats, duplicates)},
        {"cfwatchd_logpush_unauthorized_total", "Logpush requests refused for their credentials.",
         offsetof(struct logpush_stats, unauthorized)},
        {"cfwatchd_logpush_rejected_total",
         "Logpush requests refused (size, gzip bomb, bad gzip, method).",
         offsetof(struct logpush_stats, rejected)},
        {"cfwatchd_logpush_bad_lines_total", "Logpush lines skipped (too long, not JSON).",
         offsetof(struct logpush_stats, bad_lines)},
        {"cfwatchd_logpush_batches_total", "Logpush batches accepted.",
         offsetof(struct logpush_stats, batches)},
    };
    const char *stats = (const char *)&((const struct cfw_logpush *)in->priv)->stats;

    for (size_t k = 0; k < sizeof(lp) / sizeof(lp[0]); k++) {
        uint64_t v;

        memcpy(&v, stats + lp[k].off, sizeof(v));
        cfw_metrics_u64(cfw_metrics_family(m, lp[k].name, "counter", lp[k].help),
                        CFW_LABELS("source", in->name), v);
    }
}

static void logpush_conf_clear(void *conf)
{
    cfw_logpush_conf_clear(conf);
}

static int logpush_parse(const struct cfw_node *node, const char *path, void *conf,
                         struct cfw_diag *diag)
{
    return cfw_logpush_conf_parse(node, path, conf, diag);
}

const struct cfw_input_ops cfw_input_logpush_ops = {
    .type = "logpush",
    .flags = CFW_INPUT_NEEDS_LISTENER,
    .schema = &logpush_schema,
    .conf_size = sizeof(struct cfw_logpush_conf),
    .parse = logpush_parse,
    .conf_clear = logpush_conf_clear,
    .create = logpush_create,
    .start = logpush_start,
    .drain = logpush_drain,
    .metrics = logpush_metrics,
    .http_check = logpush_check,
    .http_handle = logpush_handle,
    .destroy = logpush_destroy,
};
