/*
 * The journal source: sd_journal (the local journal, or the files of one directory) filtered by
 * matches. Its inotify fd sits in the event loop; on wake-up sd_journal_process is called and
 * entries are read in budgets, each delivered as its MESSAGE followed by one '\n' on the stream
 * "journal". The cursor of the last delivered entry is what cfw_source_save remembers.
 */
#include "cfwatchd/source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <systemd/sd-journal.h>

#include "cfwatchd/log.h"
#include "source_int.h"

#define STREAM "journal"
#define CURSOR_MAX 1024u
#define ENTRIES_PER_TURN 10000u

struct journal_src {
    struct cfw_source *src;
    sd_journal *j;
    struct event *fd_ev;
    struct event *poll_ev;
    struct event *work_ev;
    char *cursor;         /* the last entry delivered (or the start position) */
    bool head;            /* no cursor: read from the first entry */
    bool pending_current; /* the current entry is not delivered yet (after seek_cursor) */
    bool streaming;
    bool closed;
    struct cfw_buf out;
    char *last_log;
};

static void close_journal(struct journal_src *js)
{
    if (js->fd_ev != NULL) {
        event_free(js->fd_ev);
        js->fd_ev = NULL;
    }
    if (js->j != NULL) {
        sd_journal_close(js->j);
        js->j = NULL;
    }
}

static void set_cursor(struct journal_src *js)
{
    char *c = NULL;

    if (sd_journal_get_cursor(js->j, &c) >= 0 && c != NULL) {
        free(js->cursor);
        js->cursor = cfw_xstrdup(c);
        js->head = false;
    }
    free(c);
}

static void on_fd(evutil_socket_t fd, short what, void *arg);

/*
 * Positions the journal: after the saved cursor (skipping the entry it names, when it still
 * exists), else at the first entry (start_at: beginning, or an empty journal at the last save),
 * else at the last entry so that only new entries are read.
 */
static int position(struct journal_src *js)
{
    struct cfw_source *src = js->src;
    int r;

    if (js->cursor != NULL) {
        r = sd_journal_seek_cursor(js->j, js->cursor);
        if (r < 0) {
            return r;
        }
        r = sd_journal_next(js->j);
        if (r > 0 && sd_journal_test_cursor(js->j, js->cursor) <= 0) {
            /* The saved entry is gone (vacuumed): the one we landed on is new to us. */
            cfw_log_notice("source=%s saved journal cursor not found; resuming at the next entry",
                           src->conf.name);
            js->pending_current = true;
        }
        return r < 0 ? r : 0;
    }
    if (js->head || src->conf.start_at_beginning) {
        js->head = true;
        return sd_journal_seek_head(js->j);
    }
    r = sd_journal_seek_tail(js->j);
    if (r < 0) {
        return r;
    }
    r = sd_journal_previous(js->j);
    if (r < 0) {
        return r;
    }
    if (r == 0) {
        /* Empty: everything that comes is new. */
        js->head = true;
        return sd_journal_seek_head(js->j);
    }
    set_cursor(js);
    return 0;
}

static bool open_journal(struct journal_src *js)
{
    struct cfw_source *src = js->src;
    const struct cfw_source_conf *c = &src->conf;
    int r;
    int fd;

    if (c->directory != NULL) {
        r = sd_journal_open_directory(&js->j, c->directory, 0);
    } else {
        r = sd_journal_open(&js->j, SD_JOURNAL_LOCAL_ONLY);
    }
    if (r < 0) {
        js->j = NULL;
        cfw_source_log_once(src, &js->last_log, CFW_LOG_WARNING, "cannot open the journal%s%s: %s",
                            c->directory != NULL ? " in " : "",
                            c->directory != NULL ? c->directory : "", strerror(-r));
        return cfw_source_problem(src, "cannot open the journal%s%s: %s",
                                  c->directory != NULL ? " in " : "",
                                  c->directory != NULL ? c->directory : "", strerror(-r));
    }
    sd_journal_set_data_threshold(js->j, c->max_entry);
    for (size_t i = 0; c->matches != NULL && c->matches[i] != NULL; i++) {
        if (strcmp(c->matches[i], "+") == 0) {
            r = sd_journal_add_disjunction(js->j);
        } else {
            r = sd_journal_add_match(js->j, c->matches[i], 0);
        }
        if (r < 0) {
            char *m = cfw_xstrdup(c->matches[i]);
            close_journal(js);
            cfw_source_log_once(src, &js->last_log, CFW_LOG_ERR, "bad journal match '%s': %s", m,
                                strerror(-r));
            cfw_source_problem(src, "bad journal match '%s': %s", m, strerror(-r));
            free(m);
            return !src->busy.doomed;
        }
    }
    /* Recommended right after opening, so the inotify watches exist before the first read. */
    fd = sd_journal_get_fd(js->j);
    if (fd >= 0) {
        js->fd_ev = event_new(src->base, fd, EV_READ | EV_PERSIST, on_fd, js);
        if (js->fd_ev != NULL) {
            event_add(js->fd_ev, NULL);
        }
    } else {
        cfw_log_warn("source=%s journal gives no fd (%s); polling every %lldms", c->name,
                     strerror(-fd), (long long)c->poll_interval_ms);
    }
    r = position(js);
    if (r < 0) {
        close_journal(js);
        return cfw_source_problem(src, "cannot position in the journal: %s", strerror(-r));
    }
    free(js->last_log);
    js->last_log = NULL;
    return cfw_source_ok(src);
}

static bool flush_out(struct journal_src *js)
{
    bool alive = true;

    if (js->out.len > 0) {
        js->streaming = true;
        alive = cfw_source_emit_data(js->src, STREAM, js->out.data, js->out.len);
        cfw_buf_reset(&js->out);
    }
    return alive;
}

/* Reads entries up to the budget; false when the source was freed or is stopping. */
static bool work(struct journal_src *js)
{
    struct cfw_source *src = js->src;
    size_t budget = src->conf.read_budget;
    size_t bytes = 0;
    unsigned entries = 0;
    bool more = false;
    int r = 0;

    if (js->j == NULL) {
        return true;
    }
    for (;;) {
        const void *d = NULL;
        size_t l = 0;

        if (bytes >= budget || entries >= ENTRIES_PER_TURN) {
            more = true;
            break;
        }
        if (js->pending_current) {
            js->pending_current = false;
            r = 1;
        } else {
            r = sd_journal_next(js->j);
        }
        if (r <= 0) {
            break;
        }
        entries++;
        src->stats.records++;
        r = sd_journal_get_data(js->j, "MESSAGE", &d, &l);
        if (r >= 0 && l >= 8) {
            const char *msg = (const char *)d + 8; /* "MESSAGE=" */
            size_t n = l - 8;
            if (n > src->conf.max_entry) {
                n = src->conf.max_entry;
            }
            while (n > 0 && msg[n - 1] == '\n') {
                n--;
            }
            if (js->out.len + n + 1 > CFW_SOURCE_CHUNK_SIZE && js->out.len > 0) {
                if (!flush_out(js) || src->stopping) {
                    return false;
                }
            }
            cfw_buf_append(&js->out, msg, n);
            cfw_buf_putc(&js->out, '\n');
            bytes += n + 1;
        }
        r = 0;
        set_cursor(js);
    }
    if (!flush_out(js) || src->stopping) {
        return false;
    }
    if (r < 0) {
        cfw_source_log_once(src, &js->last_log, CFW_LOG_WARNING, "reading the journal: %s",
                            strerror(-r));
        if (!cfw_source_problem(src, "reading the journal: %s", strerror(-r))) {
            return false;
        }
    } else if (src->problem) {
        if (!cfw_source_ok(src)) {
            return false;
        }
    }
    if (more) {
        cfw_source_yield(js->work_ev);
    }
    return true;
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
    struct journal_src *js = arg;
    struct cfw_source *src = js->src;

    (void)fd;
    (void)what;
    cfw_source_enter(src);
    if (!src->stopping && !js->closed) {
        work(js);
    }
    cfw_source_leave(src);
}

static void on_fd(evutil_socket_t fd, short what, void *arg)
{
    struct journal_src *js = arg;
    struct cfw_source *src = js->src;
    int r;

    (void)fd;
    (void)what;
    if (js->j == NULL) {
        return;
    }
    r = sd_journal_process(js->j);
    if (r < 0) {
        cfw_source_enter(src);
        cfw_source_problem(src, "journal error: %s", strerror(-r));
        cfw_source_leave(src);
        return;
    }
    cfw_source_yield(js->work_ev);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct journal_src *js = arg;
    struct cfw_source *src = js->src;

    (void)fd;
    (void)what;
    if (src->stopping || js->closed) {
        return;
    }
    cfw_source_enter(src);
    if (js->j == NULL) {
        open_journal(js);
    } else {
        sd_journal_process(js->j);
    }
    if (!src->busy.doomed && js->j != NULL) {
        cfw_source_yield(js->work_ev);
    }
    cfw_source_leave(src);
}

static void journal_destroy(struct cfw_source *src)
{
    struct journal_src *js = src->impl;

    if (js == NULL) {
        return;
    }
    close_journal(js);
    if (js->poll_ev != NULL) {
        event_free(js->poll_ev);
    }
    if (js->work_ev != NULL) {
        event_free(js->work_ev);
    }
    free(js->cursor);
    free(js->last_log);
    cfw_buf_free(&js->out);
    free(js);
    src->impl = NULL;
}

static int journal_init(struct cfw_source *src, struct cfw_err *err)
{
    struct journal_src *js = cfw_xcalloc(1, sizeof(*js));

    src->impl = js;
    js->src = src;
    if (src->conf.max_entry == 0) {
        src->conf.max_entry = CFW_SOURCE_MAX_ENTRY_DEFAULT;
    }
    /* a chunk, or one entry of at most max_entry and its '\n' */
    cfw_buf_init(&js->out, CFW_SOURCE_CHUNK_SIZE + src->conf.max_entry + 1);
    js->poll_ev = event_new(src->base, -1, EV_PERSIST, on_poll, js);
    js->work_ev = evtimer_new(src->base, on_work, js);
    if (js->poll_ev == NULL || js->work_ev == NULL) {
        cfw_err_set(err, "source %s: cannot create events", src->conf.name);
        return -1;
    }
    return 0;
}

static int journal_start(struct cfw_source *src, struct cfw_err *err)
{
    struct journal_src *js = src->impl;
    struct timeval tv = cfw_ms_timeval(src->conf.poll_interval_ms);

    if (event_add(js->poll_ev, &tv) < 0) {
        cfw_err_set(err, "source %s: cannot arm the poll timer", src->conf.name);
        return -1;
    }
    if (open_journal(js) && js->j != NULL) {
        cfw_source_yield(js->work_ev);
    }
    return 0;
}

static void journal_stop(struct cfw_source *src)
{
    struct journal_src *js = src->impl;

    event_del(js->poll_ev);
    event_del(js->work_ev);
    close_journal(js);
    js->closed = true;
    if (js->streaming) {
        js->streaming = false;
        cfw_source_emit_eof(src, STREAM);
    }
}

static bool journal_stopped(const struct cfw_source *src)
{
    const struct journal_src *js = src->impl;
    return js->closed;
}

static json_t *journal_save(const struct cfw_source *src)
{
    const struct journal_src *js = src->impl;
    json_t *o = json_object();

    json_object_set_new(o, "type", json_string("journal"));
    if (js->cursor != NULL) {
        json_object_set_new(o, "cursor", json_string(js->cursor));
    } else if (js->head) {
        json_object_set_new(o, "head", json_true());
    }
    return o;
}

static int journal_restore(struct cfw_source *src, const json_t *state)
{
    struct journal_src *js = src->impl;
    const char *cursor = json_string_value(json_object_get(state, "cursor"));

    if (cursor != NULL) {
        if (cursor[0] == '\0' || strlen(cursor) > CURSOR_MAX) {
            cfw_log_warn("source=%s saved journal cursor is not valid; starting afresh",
                         src->conf.name);
            return -1;
        }
        free(js->cursor);
        js->cursor = cfw_xstrdup(cursor);
        js->head = false;
        return 0;
    }
    if (json_is_true(json_object_get(state, "head"))) {
        js->head = true;
        return 0;
    }
    /* Nothing was known at the last save: start as on a first start. */
    return -1;
}

/* ---- configuration ---- */

/* A journal field name as sd_journal_add_match accepts it: [A-Z0-9_]+, not starting with a digit.
 */
static bool journal_field_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return true;
}

static bool match_ok(const char *m)
{
    const char *eq = strchr(m, '=');

    return strcmp(m, "+") == 0 || (eq != NULL && journal_field_ok(m, (size_t)(eq - m)));
}

static int check_matches(const struct cfw_schema_key *k, const struct cfw_node *map,
                         const char *path, void *conf, struct cfw_diag *diag)
{
    return cfw_schema_check_items(k, map, path, ((struct cfw_source_conf *)conf)->matches, match_ok,
                                  "", "is not FIELD=value (FIELD: A-Z, 0-9, _) or '+'", diag);
}

static const struct cfw_schema_key journal_keys[] = {
    CFW_SOURCE_ROW_NAME,
    CFW_SOURCE_ROW_TYPE,
    {.name = "directory",
     .type = CFW_SCHEMA_STR,
     .offset = CFW_SOURCE_KEY(directory),
     .help = "the journal files of one directory (default: the local journal)"},
    {.name = "matches",
     .type = CFW_SCHEMA_STRLIST,
     .offset = CFW_SOURCE_KEY(matches),
     .check = check_matches,
     .help = "FIELD=value matches; '+' between alternatives"},
    CFW_SOURCE_ROW_START_AT,
    CFW_SOURCE_ROW_FORMAT("format", format),
    CFW_SOURCE_ROW_POLL_INTERVAL,
    CFW_SOURCE_ROW_READ_BUDGET,
    CFW_SOURCE_ROW_DOWN_AFTER,
    {.name = "max_entry",
     .type = CFW_SCHEMA_SIZE,
     .offset = CFW_SOURCE_KEY(max_entry),
     .def = CFW_SOURCE_MAX_ENTRY_DEFAULT,
     .min = 256,
     .max = CFW_SOURCE_MAX_ENTRY_MAX,
     .help = "bytes of MESSAGE kept per entry"},
    {0},
};

const struct cfw_schema cfw_source_journal_schema = {.keys = journal_keys};

const struct source_ops cfw_source_journal_ops = {
    .name = "journal",
    .type = CFW_SOURCE_JOURNAL,
    .schema = &cfw_source_journal_schema,
    .init = journal_init,
    .start = journal_start,
    .stop = journal_stop,
    .stopped = journal_stopped,
    .destroy = journal_destroy,
    .save = journal_save,
    .restore = journal_restore,
    .stats = NULL,
};
