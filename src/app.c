/*
 * The daemon: one event loop owning configuration, rules, incidents, pipeline, sources, the
 * notifier, the HTTP listener and persistent state.
 */
#include "cfwatchd/app.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
#include <systemd/sd-daemon.h>

#include "cfwatchd/cloudflare.h"
#include "cfwatchd/config.h"
#include "cfwatchd/deploys.h"
#include "cfwatchd/fsutil.h"
#include "cfwatchd/http.h"
#include "cfwatchd/incident.h"
#include "cfwatchd/input.h"
#include "cfwatchd/journal.h"
#include "cfwatchd/listener.h"
#include "cfwatchd/metrics.h"
#include "cfwatchd/notify.h"
#include "cfwatchd/pipeline.h"
#include "cfwatchd/sink.h"
#include "cfwatchd/report.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/schema.h"
#include "cfwatchd/secrets.h"
#include "cfwatchd/sha256.h"
#include "cfwatchd/silence.h"
#include "cfwatchd/state.h"

/*
 * The daemon's own rules: incidents about cfwatchd's inputs and state rather than about Workers.
 * Compiled in from conf/internal/cfwatchd-internal.yaml by scripts/embed-packs.cmake, in a table
 * of their own: rules.builtin cannot name them.
 */
struct cfw_builtin_pack {
    const char *name;
    const char *text;
};
extern const struct cfw_builtin_pack cfw_internal_pack_table[];

/* One byte stream (a file, a command's stdout or stderr, a build log) and its framer. */
struct stream {
    struct stream *next;
    const struct cfw_input *owner; /* the input it comes from */
    char *name;
    struct cfw_pipeline_input *input;
    int64_t last_data_mono_ms;
};

struct app {
    struct event_base *base;
    const struct cfw_app_opts *opts;
    struct cfw_config *cfg;
    struct cfw_ruleset *rules;
    struct cfw_doc *internal_doc;
    struct cfw_ruleset *internal;
    struct cfw_incidents *incidents;
    struct cfw_pipeline *pipeline;
    struct cfw_listener *listener;
    struct cfw_notifier *notifier;
    struct cfw_input **inputs; /* the `sources:` entries, in configuration order */
    size_t ninputs;
    struct cfw_input **kept; /* during a reload: inputs that keep running (unchanged exec) */
    size_t nkept;
    struct cfw_http *http;
    struct cfw_cf *cf; /* the API client the Cloudflare inputs share */
    struct cfw_deploys *deploys;
    struct stream *streams;
    char *state_dir;
    json_t *saved_sources; /* positions loaded at start, handed to sources by name */
    /*
     * The journal (see journal.h). Records: "inc" (a transition), "pos" (the commit of a
     * batch: source positions and the incidents it counted, fdatasync'ed before the batch's
     * transitions are announced), "done" (they were spooled), "silence" (a silence as it now
     * is), "start" (a new process: an uncommitted batch before it never happened).
     */
    struct cfw_journal *journal;
    uint64_t snap_seq;     /* the last journal record the state file on disk covers */
    int feeding;           /* > 0 inside a batch (a read being matched, a tick) */
    bool pos_dirty;        /* sources advanced since their positions were last journaled */
    int64_t pos_last_mono; /* when positions were last journaled */
    struct queued {
        char *key;
        enum cfw_transition t;
        uint64_t seq;
    } *queue; /* transitions journaled in this batch, announced at its commit */
    size_t nqueue, capqueue;
    json_t *resend;    /* replay: committed transitions not confirmed spooled (by sequence) */
    bool durable;      /* the journal takes records and the last state save worked */
    bool durable_told; /* the state-not-durable incident matches `durable` */
    char *not_durable; /* why not (for the incident and the log) */
    uint64_t journal_records, journal_failures;
    struct cfw_silences *silences;
    uint64_t silenced; /* notifications not sent because of a silence */
    char *api_token;   /* the HTTP API's write token; NULL: writes refused */
    struct cfw_secret_hold *api_hold;
    struct event *ev_hup, *ev_term, *ev_int, *ev_pipe;
    struct event *ev_tick, *ev_save, *ev_watchdog, *ev_status;
    bool dirty;
    bool stopping;
    int exit_code;
    uint64_t reloads, reload_failures, save_failures, transitions[CFW_TRANSITIONS], state_recoveries;
    int64_t started_wall_ms;
};

static int64_t now_mono(void)
{
    return cfw_now_mono_ms();
}

static void timer_add_ms(struct event *ev, int64_t ms)
{
    struct timeval tv = cfw_ms_timeval(ms);

    event_add(ev, &tv);
}

/* ---- incidents and notifications ---- */

static json_t *inputs_save(const struct app *app);

/* Records that state is not durable (told by the next tick: log line, incident, gauge). */
static void not_durable(struct app *app, const char *why)
{
    if (app->durable || app->not_durable == NULL || strcmp(app->not_durable, why) != 0) {
        free(app->not_durable);
        app->not_durable = cfw_xstrdup(why);
    }
    app->durable = false;
}

/* Appends a record to the journal; the record's sequence, or 0 (no journal, or it failed). */
static uint64_t journal_add(struct app *app, json_t *rec, bool sync)
{
    struct cfw_err err = {0};
    uint64_t seq = 0;

    if (app->journal != NULL) {
        seq = cfw_journal_append(app->journal, rec, sync, &err);
        if (seq == 0) {
            app->journal_failures++;
            not_durable(app, err.msg);
        } else {
            app->journal_records++;
        }
    }
    json_decref(rec);
    return seq;
}

static void add_touched(const struct cfw_incident *inc, void *arg)
{
    struct cfw_stamp *now = ((void **)arg)[0];
    json_t *arr = ((void **)arg)[1];

    json_array_append_new(arr, cfw_state_incident_json(inc, now, now_mono()));
}

/*
 * Announces a transition: the notifier routes and spools it, unless a silence matches. An
 * opening whose open was silenced stays muted (its reminders, acknowledgement and resolve are
 * not sent either: receivers never heard of it); a resolve of an opening that was announced
 * always goes out, so that no PagerDuty alert stays triggered because a silence began.
 */
static void announce(struct app *app, const struct cfw_incident *inc, enum cfw_transition t)
{
    const char *sid = cfw_silences_match(app->silences, inc, cfw_now_wall_ms());

    if (inc->muted || (sid != NULL && t != CFW_TRANSITION_RESOLVE)) {
        app->silenced++;
        cfw_log_info("incident %s key=%s: not sent (silence %s)", cfw_transition_name(t), inc->key,
                     sid != NULL ? sid : "of its open");
        return;
    }
    if (app->notifier != NULL) {
        cfw_notifier_submit(app->notifier, inc, t);
    }
}

/*
 * Commits a batch: one record with where the sources are and the incidents its matches
 * counted, fsynced when sync (always when transitions wait), then the batch's transitions are
 * announced and a "done" record says so. Replay applies a batch's transitions only when its
 * commit is on disk; without it the batch's input is read again (files) and its transitions
 * happen again, never announced twice. A crash between commit and "done" re-sends the batch
 * with the same notification ids.
 */
static void journal_commit(struct app *app, bool sync)
{
    struct cfw_stamp now;
    json_t *touched = json_array();
    void *targ[2] = {&now, touched};
    json_t *done;
    uint64_t seq;

    cfw_incident_stamp(&now, cfw_now_wall_ms());
    cfw_incidents_take_touched(app->incidents, add_touched, targ);
    seq = journal_add(
        app,
        json_pack("{s:s, s:o, s:o}", "t", "pos", "sources", inputs_save(app), "incidents", touched),
        sync || app->nqueue > 0);
    app->pos_dirty = false;
    app->pos_last_mono = now_mono();
    if (app->nqueue == 0) {
        return;
    }
    done = json_array();
    for (size_t i = 0; i < app->nqueue; i++) {
        const struct cfw_incident *inc = cfw_incidents_find(app->incidents, app->queue[i].key);
        if (inc != NULL) {
            announce(app, inc, app->queue[i].t);
        } else {
            cfw_log_err("incident %s vanished before its %s was announced", app->queue[i].key,
                        cfw_transition_name(app->queue[i].t));
        }
        json_array_append_new(done, json_integer((json_int_t)app->queue[i].seq));
        free(app->queue[i].key);
    }
    app->nqueue = 0;
    if (seq != 0) {
        /* unsynced: lost only with the page cache, and then re-sent under the same ids */
        journal_add(app, json_pack("{s:s, s:o}", "t", "done", "of", done), false);
    } else {
        json_decref(done);
    }
}

/* Brackets work that may cause transitions: they are committed and announced at the end. */
static void batch_begin(struct app *app)
{
    app->feeding++;
}

static void batch_end(struct app *app)
{
    if (--app->feeding == 0 && app->nqueue > 0) {
        journal_commit(app, true);
    }
}

/* The incident is about to be told: add its deployment context and whether it is silenced. */
static void on_annotate(struct cfw_incident *inc, enum cfw_transition t, void *arg)
{
    struct app *app = arg;

    cfw_deploys_annotate(app->deploys, inc, t, cfw_now_wall_ms());
    if (t == CFW_TRANSITION_OPEN) {
        /* decided (and journaled) at the open: a silenced opening stays unannounced */
        inc->muted = cfw_silences_match(app->silences, inc, cfw_now_wall_ms()) != NULL;
    }
}

static void on_transition(const struct cfw_incident *inc, enum cfw_transition t, void *arg)
{
    struct app *app = arg;
    char where[512];
    struct cfw_stamp now;
    uint64_t seq = 0;

    app->transitions[t]++;
    app->dirty = true;
    snprintf(where, sizeof(where), "%s:%llu", inc->first.input,
             (unsigned long long)inc->first.line);
    cfw_log(t == CFW_TRANSITION_RESOLVE ? CFW_LOG_NOTICE : CFW_LOG_WARNING,
            "incident %s rule=%s severity=%s key=%s count=%llu first=%s",
            cfw_transition_name(t), inc->rule, cfw_severity_name(inc->severity), inc->key,
            (unsigned long long)inc->count, where);
    if (app->journal != NULL) {
        cfw_incident_stamp(&now, cfw_now_wall_ms());
        seq = journal_add(app,
                          json_pack("{s:s, s:s, s:o}", "t", "inc", "transition",
                                    cfw_transition_name(t), "incident",
                                    cfw_state_incident_json(inc, &now, now_mono())),
                          false);
    }
    if (seq == 0) {
        announce(app, inc, t); /* no journal: told at once, as durable as memory */
        return;
    }
    /* durable before it is told: announced when its batch is committed */
    if (app->nqueue == app->capqueue) {
        app->capqueue = app->capqueue == 0 ? 16 : app->capqueue * 2;
        app->queue = cfw_xrealloc(app->queue, app->capqueue * sizeof(*app->queue));
    }
    app->queue[app->nqueue].key = cfw_xstrdup(inc->key);
    app->queue[app->nqueue].t = t;
    app->queue[app->nqueue].seq = seq;
    app->nqueue++;
    if (app->feeding == 0) {
        journal_commit(app, true);
    }
}

/* Creates the notifier for the configured sinks; the spool under state_dir is replayed. */
static struct cfw_notifier *notifier_start(struct app *app, const struct cfw_config *cfg)
{
    struct cfw_diag diag = {0};
    /*
     * Where a person who got the page can see every incident (PagerDuty client_url,
     * Alertmanager generatorURL): only the configured public_url. The listener's own address
     * (127.0.0.1) means nothing on a phone and would show an internal address.
     */
    struct cfw_notifier *n = cfw_notifier_start(app->base, cfg->sinks, cfg->outbox, app->state_dir,
                                                cfg->public_url, false, &diag);

    for (size_t i = 0; i < diag.n; i++) {
        cfw_log_err("%s", diag.msgs[i]);
    }
    cfw_diag_free(&diag);
    if (n != NULL) {
        /* stateful sinks (Alertmanager re-sends) learn what is still open */
        for (size_t i = 0; i < cfw_incidents_count(app->incidents); i++) {
            const struct cfw_incident *inc = cfw_incidents_at(app->incidents, i);
            if (inc->state == CFW_INCIDENT_OPEN) {
                cfw_notifier_restore(n, inc);
            }
        }
    }
    return n;
}

/* ---- inputs ---- */

/* Brackets the matching of what an input handed over: its transitions are one batch. */
static void feed_begin(struct app *app)
{
    batch_begin(app);
    app->pos_dirty = true;
}

static void feed_end(struct app *app)
{
    batch_end(app);
}

static struct stream *stream_find(struct app *app, const struct cfw_input *owner, const char *name)
{
    for (struct stream *s = app->streams; s != NULL; s = s->next) {
        if (s->owner == owner && strcmp(s->name, name) == 0) {
            return s;
        }
    }
    return NULL;
}

static void stream_close(struct app *app, struct stream *st)
{
    struct stream **pp = &app->streams;

    while (*pp != NULL && *pp != st) {
        pp = &(*pp)->next;
    }
    if (*pp == st) {
        *pp = st->next;
    }
    cfw_pipeline_input_free(st->input);
    free(st->name);
    free(st);
}

/* Opens the framer of a stream on its first bytes. */
static struct stream *stream_open(struct app *app, struct cfw_input *in,
                                  const struct cfw_input_bytes *b)
{
    struct cfw_framer_opts fo = {.format = b->format};
    struct stream *st = cfw_xcalloc(1, sizeof(*st));
    char *label = b->label == NULL ? cfw_xasprintf("%s:%s", cfw_input_name(in), b->stream) : NULL;

    st->owner = in;
    st->name = cfw_xstrdup(b->stream);
    st->input = cfw_pipeline_input_new(app->pipeline, label != NULL ? label : b->label,
                                       cfw_input_name(in), &fo);
    for (size_t i = 0; b->ctx != NULL && i < b->ctx->n; i++) {
        cfw_pipeline_input_set_field(st->input, b->ctx->v[i].key, b->ctx->v[i].value);
    }
    st->next = app->streams;
    app->streams = st;
    free(label);
    return st;
}

/* Feeds bytes of one stream to its framer, creating it on the stream's first bytes. */
static void on_input_bytes(void *arg, struct cfw_input *in, const struct cfw_input_bytes *b)
{
    struct app *app = arg;
    struct stream *st = stream_find(app, in, b->stream);

    if (st == NULL) {
        st = stream_open(app, in, b);
    }
    st->last_data_mono_ms = now_mono();
    feed_begin(app);
    cfw_pipeline_input_feed(st->input, b->buf, b->len);
    feed_end(app);
    app->dirty = true;
}

static void on_input_eof(void *arg, struct cfw_input *in, const char *stream)
{
    struct app *app = arg;
    struct stream *st = stream_find(app, in, stream);

    if (st != NULL) {
        stream_close(app, st);
    }
}

/* Closes the streams of an input (their framers hand over what they hold). */
static void streams_close(struct app *app, const struct cfw_input *in)
{
    struct stream **pp = &app->streams;

    while (*pp != NULL) {
        if ((*pp)->owner == in) {
            stream_close(app, *pp);
        } else {
            pp = &(*pp)->next;
        }
    }
}

static void on_input_record(void *arg, struct cfw_input *in, const struct cfw_fields *ctx,
                            const struct cfw_record *rec)
{
    struct app *app = arg;

    /* an input is named by its source: that is the `source` field of its events */
    feed_begin(app);
    cfw_pipeline_record_ctx(app->pipeline, rec, cfw_input_name(in), ctx);
    feed_end(app);
    if (cfw_input_keeps_state(in)) {
        app->dirty = true; /* its cursors moved with the record */
    }
}

static bool on_input_want(void *arg, struct cfw_input *in, const struct cfw_record *rec)
{
    struct app *app = arg;

    (void)in;
    return cfw_pipeline_wants(app->pipeline, rec);
}

/* An input that stays broken opens `source-down`; its recovery resolves it. */
static void on_input_health(void *arg, struct cfw_input *in, enum cfw_input_health health,
                            const char *reason)
{
    struct app *app = arg;
    const char *name = cfw_input_name(in);

    /* the input logs its own state changes */
    if (health == CFW_INPUT_DOWN) {
        struct cfw_event ev = {.text = "source-down", .len = 11, .input = name, .line = 0};
        struct cfw_fields *f = &ev.fields;

        cfw_fields_set(f, "kind", "source");
        cfw_fields_set(f, "source", name);
        cfw_fields_set(f, "source_type", cfw_input_type(in));
        cfw_fields_set(f, "reason", reason);
        cfw_pipeline_event(app->pipeline, app->internal, &ev);
        cfw_fields_clear(f);
    } else if (health == CFW_INPUT_UP) {
        char *key = cfw_xasprintf("source-down/%s", name);

        cfw_incidents_resolve(app->incidents, key, now_mono(), cfw_now_wall_ms());
        free(key);
    }
}

/* True when an input of that name runs now. */
static bool input_exists(const struct app *app, const char *name)
{
    for (size_t i = 0; i < app->ninputs; i++) {
        if (strcmp(cfw_input_name(app->inputs[i]), name) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * A source-down incident belongs to its source: when the source is gone from the configuration
 * (a reload, or a start with another configuration), nothing will ever recover it, so it is
 * resolved now and says why.
 */
static void sources_reconcile(struct app *app)
{
    char **keys = NULL;
    size_t n = 0;

    for (size_t i = 0; i < cfw_incidents_count(app->incidents); i++) {
        const struct cfw_incident *inc = cfw_incidents_at(app->incidents, i);
        const char *src = cfw_fields_get(&inc->fields, "source");

        if (inc->state == CFW_INCIDENT_OPEN && strcmp(inc->rule, "source-down") == 0 &&
            src != NULL && !input_exists(app, src)) {
            keys = cfw_xrealloc(keys, (n + 1) * sizeof(*keys));
            keys[n++] = cfw_xstrdup(inc->key);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct cfw_incident *inc = cfw_incidents_find(app->incidents, keys[i]);
        char *by = cfw_xasprintf("source %s is no longer in the configuration",
                                 cfw_fields_get(&inc->fields, "source"));

        cfw_log_notice("incident %s: %s; resolved", keys[i], by);
        cfw_incidents_resolve_by(app->incidents, keys[i], by, now_mono(), cfw_now_wall_ms());
        free(by);
        free(keys[i]);
    }
    free(keys);
}

static void on_deployment(void *arg, struct cfw_input *in, const struct cfw_deployment *dep,
                          bool announce)
{
    struct app *app = arg;
    struct cfw_event ev = {.text = "deployment", .len = 10, .input = cfw_input_name(in)};
    struct cfw_fields *f = &ev.fields;

    app->dirty = true;
    cfw_log_info("source=%s deployment=%s script=%s version=%s author=%s", cfw_input_name(in),
                 dep->id, dep->script, dep->version, dep->author);
    {
        /* a deployment that went through fixes the deploy failures of its script before it */
        char *by = cfw_xasprintf("deployment %s (version %s, by %s via %s)", dep->id, dep->version,
                                 dep->author, dep->source);
        cfw_incidents_succeed(app->incidents, dep->script, NULL, by, dep->created_wall_ms,
                              now_mono(), cfw_now_wall_ms());
        free(by);
    }
    if (!announce) {
        return;
    }
    cfw_fields_set(f, "kind", "deployment");
    cfw_fields_set(f, "source", cfw_input_name(in));
    cfw_fields_set(f, "script", dep->script);
    cfw_fields_set(f, "deployment", dep->id);
    cfw_fields_set(f, "deployment_version", dep->version);
    cfw_fields_set(f, "deployment_author", dep->author);
    cfw_fields_set(f, "deployment_source", dep->source);
    cfw_fields_set(f, "deployment_message", dep->message);
    cfw_pipeline_event(app->pipeline, app->internal, &ev);
    cfw_fields_clear(f);
}

/* A Workers Builds build that deploys succeeded: it fixes its script's deploy failures before it.
 */
static void on_build_deployed(void *arg, struct cfw_input *in, const struct cfw_fields *ctx,
                              int64_t created_wall_ms)
{
    struct app *app = arg;
    const char *branch = cfw_fields_get(ctx, "build_branch");
    const char *commit = cfw_fields_get(ctx, "build_commit");
    const char *tag = cfw_fields_get(ctx, "script_tag");
    const char *name = cfw_fields_get(ctx, "script");
    int64_t at = created_wall_ms > 0 ? created_wall_ms : 0;
    char *by =
        cfw_xasprintf("Workers Builds build %s succeeded (branch %s, commit %.12s, source %s)",
                      cfw_fields_get(ctx, "build"), branch != NULL ? branch : "?",
                      commit != NULL ? commit : "?", cfw_input_name(in));
    size_t n;

    /* the failures its builds' logs showed (script_tag), and those naming the Worker */
    n = cfw_incidents_succeed(app->incidents, tag, NULL, by, at, now_mono(), cfw_now_wall_ms());
    if (name != NULL && (tag == NULL || strcmp(name, tag) != 0)) {
        n += cfw_incidents_succeed(app->incidents, name, NULL, by, at, now_mono(),
                                   cfw_now_wall_ms());
    }
    app->dirty = app->dirty || n > 0;
    free(by);
}

static void on_input_changed(void *arg, struct cfw_input *in)
{
    struct app *app = arg;

    (void)in;
    /* the ids of open tails go into the journal soon: a crash leaves none unknown */
    app->pos_dirty = true;
    app->dirty = true;
}

/* True when in is kept running across the reload in progress. */
static bool is_kept(const struct app *app, const struct cfw_input *in)
{
    for (size_t k = 0; k < app->nkept; k++) {
        if (app->kept[k] == in) {
            return true;
        }
    }
    return false;
}

static void inputs_free(struct app *app)
{
    struct stream **pp = &app->streams;

    while (*pp != NULL) {
        if (is_kept(app, (*pp)->owner)) {
            pp = &(*pp)->next; /* its framer keeps what it holds */
        } else {
            stream_close(app, *pp);
        }
    }
    /*
     * What a receiver accepted with a 200 is matched before it goes (reload, stop), while every
     * input is still there: the commit of what that matching opens saves their positions.
     */
    for (size_t i = 0; i < app->ninputs; i++) {
        cfw_input_drain(app->inputs[i]);
    }
    for (size_t i = 0; i < app->ninputs; i++) {
        if (!is_kept(app, app->inputs[i])) {
            cfw_input_free(app->inputs[i]); /* a tail's saved ids are deleted by the next start */
        }
    }
    free(app->inputs);
    app->inputs = NULL;
    app->ninputs = 0;
    cfw_cf_free(app->cf);
    app->cf = NULL;
}

/* The receiver of /logpush/<name>, or NULL. */
static struct cfw_input *receiver_find(struct app *app, const char *path)
{
    const char *name = path + strlen("/logpush/");

    for (size_t i = 0; i < app->ninputs; i++) {
        if (cfw_input_accepts_http(app->inputs[i]) &&
            strcmp(cfw_input_name(app->inputs[i]), name) == 0) {
            return app->inputs[i];
        }
    }
    return NULL;
}

/* Runs on the request head: an unknown source or a refused token is answered unread. */
static int http_logpush_check(struct cfw_listener_req *req, const char *path, void *arg)
{
    struct cfw_input *in = receiver_find(arg, path);

    if (in == NULL) {
        cfw_listener_reply(req, 404, "text/plain; charset=utf-8", "no such logpush source\n", 23);
        return -1;
    }
    return cfw_input_http_check(in, req);
}

static void http_logpush(struct cfw_listener_req *req, const char *path, void *arg)
{
    /* looked up again: a reload may have replaced the receivers while the body arrived */
    struct cfw_input *in = receiver_find(arg, path);

    if (in == NULL) {
        cfw_listener_reply(req, 404, "text/plain; charset=utf-8", "no such logpush source\n", 23);
        return;
    }
    cfw_input_http_handle(in, req);
}

/* The API client the Cloudflare inputs share, made on first use from the `cloudflare:` section. */
static struct cfw_cf *app_cloudflare(void *arg, struct cfw_diag *diag)
{
    struct app *app = arg;
    struct cfw_cf_conf conf;
    struct cfw_err err = {0};

    if (app->cf != NULL) {
        return app->cf;
    }
    if (app->http == NULL) {
        app->http = cfw_http_new(app->base, &err);
        if (app->http == NULL) {
            cfw_diag_addf(diag, "cannot start the HTTP client: %s", err.msg);
            return NULL;
        }
    }
    if (cfw_cf_conf_parse(app->cfg->cloudflare, &conf, diag) != 0 || conf.account_id == NULL) {
        cfw_cf_conf_clear(&conf);
        return NULL;
    }
    app->cf = cfw_cf_new(app->http, &conf);
    cfw_cf_conf_clear(&conf);
    return app->cf;
}

/* The input kept running across the reload in progress that item describes (taken), or NULL. */
static struct cfw_input *kept_take(struct app *app, const struct cfw_node *item)
{
    char *text = cfw_input_keep_text(item);
    struct cfw_input *in = NULL;

    for (size_t k = 0; text != NULL && k < app->nkept; k++) {
        if (app->kept[k] != NULL && strcmp(cfw_input_kept_by(app->kept[k]), text) == 0) {
            in = app->kept[k];
            app->kept[k] = NULL;
            break;
        }
    }
    free(text);
    return in;
}

/* Creates and starts the configured inputs; positions come from saved (by source name). */
static int inputs_start(struct app *app, const struct cfw_node *seq, const json_t *saved)
{
    struct cfw_input_env env = {app->base, app->state_dir, app->deploys, app_cloudflare, app};
    struct cfw_input_cbs cbs = {
        .bytes = on_input_bytes,
        .eof = on_input_eof,
        .record = on_input_record,
        .want = on_input_want,
        .health = on_input_health,
        .deployment = on_deployment,
        .build_deployed = on_build_deployed,
        .changed = on_input_changed,
        .arg = app,
    };
    struct cfw_diag diag = {0};
    int rc = 0;

    if (seq == NULL) {
        return 0;
    }
    app->inputs = cfw_xcalloc(seq->n + 1, sizeof(*app->inputs));
    for (size_t i = 0; i < seq->n; i++) {
        /* an exec source unchanged by a reload keeps running: no gap in wrangler tail */
        struct cfw_input *in = kept_take(app, seq->items[i]);
        char path[32];

        if (in != NULL) {
            app->inputs[app->ninputs++] = in;
            continue;
        }
        snprintf(path, sizeof(path), "sources[%zu]", i);
        in = cfw_input_new(seq->items[i], path, &env, &cbs, &diag);
        if (in == NULL) {
            rc = -1;
            continue;
        }
        cfw_input_restore(in, saved != NULL ? json_object_get(saved, cfw_input_name(in)) : NULL);
        app->inputs[app->ninputs++] = in;
        cfw_input_start(in);
    }
    for (size_t i = 0; i < diag.n; i++) {
        cfw_log_err("%s", diag.msgs[i]);
    }
    cfw_diag_free(&diag);
    return rc;
}

static json_t *inputs_save(const struct app *app)
{
    json_t *o = json_object();

    /* inputs that are not running any more (reload) keep their last saved positions */
    if (app->saved_sources != NULL) {
        json_object_update(o, app->saved_sources);
    }
    for (size_t i = 0; i < app->ninputs; i++) {
        json_t *pos = cfw_input_save(app->inputs[i]);
        if (pos != NULL) {
            json_object_set_new(o, cfw_input_name(app->inputs[i]), pos);
        }
    }
    return o;
}

/* ---- state ---- */

/*
 * Keeps the state file on disk as the previous generation (state.json.1) before a new one
 * replaces it. Anything but a regular file is left alone: the write then fails and says so.
 */
static void state_keep_previous(struct app *app)
{
    char *cur = cfw_xasprintf("%s/%s", app->state_dir, CFW_STATE_FILE);
    char *prev = cfw_xasprintf("%s/%s%s", app->state_dir, CFW_STATE_FILE, CFW_STATE_PREV_SUFFIX);
    struct stat st;

    if (lstat(cur, &st) == 0 && S_ISREG(st.st_mode) && rename(cur, prev) != 0) {
        cfw_log_warn("state: cannot keep %s as %s: %s", cur, prev, strerror(errno));
    }
    free(cur);
    free(prev);
}

static int state_save(struct app *app)
{
    struct cfw_err err = {0};
    json_t *root;
    char *text;
    int rc;
    uint64_t seq;

    /*
     * Positions cover the bytes handed to the framers: emit what they hold first, so that what
     * the saved positions say was read has also been matched. Only a line still without its
     * newline stays held; its bytes are re-read after a crash.
     */
    if (app->feeding > 0) {
        return -1; /* never inside a batch: its transitions are not announced yet */
    }
    feed_begin(app);
    for (struct stream *s = app->streams; s != NULL; s = s->next) {
        cfw_pipeline_input_flush(s->input);
    }
    feed_end(app); /* what the flush opened is committed and announced before the snapshot */
    seq = app->journal != NULL ? cfw_journal_seq(app->journal) : app->snap_seq;
    root =
        json_pack("{s:i, s:I, s:o, s:o, s:o, s:I}", "version", CFW_STATE_VERSION, "saved_wall_ms",
                  (json_int_t)cfw_now_wall_ms(), "sources", inputs_save(app), "incidents",
                  cfw_state_incidents_save(app->incidents, now_mono(), cfw_now_wall_ms()),
                  "deployments", cfw_deploys_save(app->deploys), "journal_seq", (json_int_t)seq);
    json_object_set_new(root, "silences", cfw_silences_json(app->silences, cfw_now_wall_ms()));
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (text == NULL) {
        return -1;
    }
    state_keep_previous(app);
    rc = cfw_fs_write_atomic(-1, app->state_dir, CFW_STATE_FILE, text, strlen(text), 0600, &err);
    free(text);
    if (rc != 0) {
        if (app->save_failures++ == 0) {
            cfw_log_err("state: %s (will retry; counted in cfwatchd_state_save_failures_total)",
                        err.msg);
        }
        not_durable(app, err.msg);
        return -1; /* the journal keeps going; the tick journals the positions */
    }
    app->snap_seq = seq;
    app->dirty = false;
    app->pos_dirty = false;
    cfw_incidents_take_touched(app->incidents, NULL, NULL); /* the snapshot has their counts */
    /* the snapshot covers the journal: start a new one (the old one backs state.json.1) */
    if (app->journal != NULL && cfw_journal_rotate(app->journal, &err) != 0) {
        app->journal_failures++;
        not_durable(app, err.msg);
        return -1;
    }
    if (app->journal != NULL && !app->durable) {
        app->durable = true;
        cfw_log_notice("state: written again to %s; state is durable", app->state_dir);
    }
    return 0;
}

/* Moves a state file that cannot be read out of the way, keeping it for a person to look at. */
static void state_move_aside(const char *path, const char *why)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    char *dst;

    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    dst = cfw_xasprintf("%s.damaged-%s", path, stamp);
    if (rename(path, dst) == 0) {
        cfw_log_err("state: %s; moved it to %s", why, dst);
    } else {
        cfw_log_err("state: %s; cannot move it aside (%s)", why, strerror(errno));
    }
    free(dst);
}

/* Reads one state generation; damaged ones are moved aside. NULL when absent or damaged. */
static json_t *state_read_generation(const char *path, bool *damaged)
{
    struct cfw_err err = {0};
    json_t *root = cfw_state_read(path, CFW_STATE_MAX_BYTES, &err);

    if (root == NULL && err.code != ENOENT) {
        *damaged = true;
        state_move_aside(path, err.msg);
    } else if (root != NULL && (!json_is_object(root) || !json_is_array(json_object_get(root, "incidents")))) {
        *damaged = true;
        json_decref(root);
        root = NULL;
        state_move_aside(path, "not a cfwatchd state file (no incidents list)");
    }
    return root;
}

struct replay_ctx {
    struct app *app;
    struct cfw_stamp now;
    int64_t mono;
    json_t *batch;   /* transitions of the batch being read, applied at its commit */
    size_t incidents, skipped, uncommitted;
};

static void merge_sources(struct app *app, const json_t *sources)
{
    if (!json_is_object(sources)) {
        return;
    }
    if (app->saved_sources == NULL) {
        app->saved_sources = json_object();
    }
    json_object_update(app->saved_sources, (json_t *)sources);
}

static void replay_incident(struct replay_ctx *rc, const json_t *o)
{
    if (cfw_state_incident_restore(rc->app->incidents, o, &rc->now, rc->mono) != 0) {
        rc->skipped++;
    }
}

static void on_journal_record(const json_t *rec, uint64_t seq, void *arg)
{
    struct replay_ctx *rc = arg;
    struct app *app = rc->app;
    const char *t = json_string_value(json_object_get(rec, "t"));
    size_t i;
    json_t *v;
    char num[24];

    if (t == NULL) {
        rc->skipped++;
    } else if (strcmp(t, "inc") == 0) {
        json_array_append((json_t *)rc->batch, (json_t *)rec);
    } else if (strcmp(t, "pos") == 0) {
        /* a commit: its batch's transitions happened and are owed to the receivers */
        json_array_foreach(rc->batch, i, v)
        {
            replay_incident(rc, json_object_get(v, "incident"));
            snprintf(num, sizeof(num), "%" PRIu64,
                     (uint64_t)json_integer_value(json_object_get(v, "seq")));
            json_object_set(app->resend, num, v);
            rc->incidents++;
        }
        json_array_clear(rc->batch);
        json_array_foreach(json_object_get(rec, "incidents"), i, v)
        {
            replay_incident(rc, v);
        }
        merge_sources(app, json_object_get(rec, "sources"));
    } else if (strcmp(t, "silence") == 0) {
        json_t *one = json_pack("[O]", json_object_get(rec, "silence"));
        if (one == NULL || cfw_silences_restore(app->silences, one, cfw_now_wall_ms()) != 0) {
            rc->skipped++;
        }
        json_decref(one);
    } else if (strcmp(t, "start") == 0) {
        /* a new process: what the last one left uncommitted never happened */
        rc->uncommitted += json_array_size(rc->batch);
        json_array_clear(rc->batch);
    } else if (strcmp(t, "done") == 0) {
        json_array_foreach(json_object_get(rec, "of"), i, v)
        {
            snprintf(num, sizeof(num), "%" PRIu64, (uint64_t)json_integer_value(v));
            json_object_del(app->resend, num);
        }
    } else {
        rc->skipped++; /* a kind of record from a newer version */
    }
    (void)seq;
}

/*
 * Opens the journal for appending from sequence next and starts it with a "start" record,
 * which closes a batch a crash left open (a later commit must not adopt its records). False
 * with err set when it cannot be opened.
 */
static bool journal_open(struct app *app, uint64_t next, struct cfw_err *err)
{
    app->journal = cfw_journal_open(app->state_dir, next, err);
    if (app->journal == NULL) {
        return false;
    }
    journal_add(app, json_pack("{s:s, s:I}", "t", "start", "pid", (json_int_t)getpid()), false);
    return true;
}

/*
 * Loads state.json (else the previous generation, state.json.1) and replays the journal on top
 * of it; opens the journal for appending. A damaged file is moved aside and said so; nothing
 * here stops the daemon.
 */
static void state_load(struct app *app)
{
    char *path = cfw_xasprintf("%s/%s", app->state_dir, CFW_STATE_FILE);
    char *prev = cfw_xasprintf("%s%s", path, CFW_STATE_PREV_SUFFIX);
    struct cfw_err err = {0};
    struct cfw_journal_replay jr;
    struct replay_ctx rc = {.app = app};
    bool damaged = false;
    const char *from = path;
    json_t *root = state_read_generation(path, &damaged);
    size_t skipped = 0, restored = 0;

    if (root == NULL) {
        from = prev;
        root = state_read_generation(prev, &damaged);
        if (root != NULL) {
            app->state_recoveries++;
            cfw_log_warn("state: %s is %s; recovering from the previous generation %s and the "
                         "journal",
                         path, damaged ? "damaged" : "missing", prev);
        }
    }
    if (root != NULL) {
        restored = cfw_state_incidents_restore(app->incidents, json_object_get(root, "incidents"),
                                               now_mono(), cfw_now_wall_ms(), &skipped);
        cfw_deploys_restore(app->deploys, json_object_get(root, "deployments"));
        if (json_is_array(json_object_get(root, "silences"))) {
            cfw_silences_restore(app->silences, json_object_get(root, "silences"),
                                 cfw_now_wall_ms());
        }
        merge_sources(app, json_object_get(root, "sources"));
        app->snap_seq = (uint64_t)json_integer_value(json_object_get(root, "journal_seq"));
        cfw_log_info("state: restored %zu incidents from %s%s", restored, from,
                     skipped > 0 ? "; some entries did not parse and were skipped" : "");
        json_decref(root);
    } else if (damaged) {
        app->state_recoveries++;
        cfw_log_err("state: no readable state file; recovering from the journal alone");
    }
    cfw_incident_stamp(&rc.now, cfw_now_wall_ms());
    rc.mono = now_mono();
    rc.batch = json_array();
    app->resend = json_object();
    if (cfw_journal_replay(app->state_dir, app->snap_seq, true, on_journal_record, &rc, &jr,
                           &err) != 0) {
        cfw_log_err("state: journal: %s; replayed what could be read", err.msg);
    }
    rc.uncommitted += json_array_size(rc.batch);
    json_decref(rc.batch);
    if (jr.applied > 0 || jr.damaged > 0) {
        cfw_log_info("state: journal: %zu record(s) replayed (%zu transition(s)), %zu damaged or "
                     "cut line(s) skipped, %zu transition(s) of an uncommitted read dropped (its "
                     "input is read again); %zu open incident(s)",
                     jr.applied, rc.incidents, jr.damaged + rc.skipped, rc.uncommitted,
                     cfw_incidents_open_count(app->incidents));
    }
    if (journal_open(app, (jr.last_seq > app->snap_seq ? jr.last_seq : app->snap_seq) + 1,
                     &err)) {
        app->durable = true;
    } else {
        app->journal_failures++;
        not_durable(app, err.msg);
    }
    app->durable_told = true; /* a failure here is told by the first tick */
    free(path);
    free(prev);
}

/*
 * After a replay: committed transitions whose spooling was not confirmed are submitted again,
 * in order, with the same notification ids, so that receivers drop a duplicate.
 */
static void state_resend(struct app *app)
{
    json_t *list = json_array();
    const char *k;
    json_t *v, *done = json_array();
    size_t i;

    json_object_foreach(app->resend, k, v)
    {
        json_array_append(list, v);
    }
    json_array_foreach(list, i, v)
    {
        const char *key = json_string_value(json_object_get(json_object_get(v, "incident"), "key"));
        const char *tname = json_string_value(json_object_get(v, "transition"));
        const struct cfw_incident *inc = key != NULL ? cfw_incidents_find(app->incidents, key) : NULL;

        for (int t = 0; inc != NULL && tname != NULL && t < CFW_TRANSITIONS; t++) {
            if (strcmp(tname, cfw_transition_name((enum cfw_transition)t)) == 0) {
                cfw_log_notice("state: the %s of incident %s may not have been spooled before the "
                               "stop; submitting it again (same notification id)",
                               tname, key);
                announce(app, inc, (enum cfw_transition)t);
                json_array_append(done, json_object_get(v, "seq"));
            }
        }
    }
    if (json_array_size(done) > 0) {
        journal_add(app, json_pack("{s:s, s:o}", "t", "done", "of", done), false);
    } else {
        json_decref(done);
    }
    json_decref(list);
    json_decref(app->resend);
    app->resend = NULL;
}

/*
 * Tells a change of durability: a loud log line and the state-not-durable incident (opened, or
 * resolved when saves work again). Runs from the tick, never inside another transition.
 */
static void durability_tell(struct app *app)
{
    if (app->durable == app->durable_told || app->stopping) {
        return; /* while stopping, the last save's failure is said by the exit status */
    }
    app->durable_told = app->durable;
    if (!app->durable) {
        struct cfw_event ev = {.text = "state-not-durable", .len = 17, .input = "cfwatchd"};

        cfw_log_err("state: NOT DURABLE: %s; running from memory (gauge cfwatchd_state_durable 0, "
                    "incident state-not-durable)",
                    app->not_durable != NULL ? app->not_durable : "?");
        cfw_fields_set(&ev.fields, "kind", "state");
        cfw_fields_set(&ev.fields, "reason", app->not_durable != NULL ? app->not_durable : "?");
        cfw_fields_set(&ev.fields, "state_dir", app->state_dir);
        cfw_pipeline_event(app->pipeline, app->internal, &ev);
        cfw_fields_clear(&ev.fields);
    } else {
        cfw_incidents_resolve(app->incidents, "state-not-durable", now_mono(), cfw_now_wall_ms());
    }
}

/* The journal could not be opened: tried again each tick; once open, a snapshot covers the gap. */
static void journal_retry(struct app *app)
{
    struct cfw_err err = {0};

    if (app->journal != NULL) {
        return;
    }
    if (journal_open(app, app->snap_seq + 1, &err)) {
        cfw_log_notice("state: the journal %s/%s can be written again", app->state_dir,
                       CFW_JOURNAL_FILE);
        state_save(app);
    }
}

/* ---- HTTP endpoints ---- */

static void http_healthz(struct cfw_listener_req *req, const char *path, void *arg)
{
    struct app *app = arg;

    if (app->stopping) {
        cfw_listener_reply(req, 503, "text/plain; charset=utf-8", "stopping\n", 9);
    } else {
        cfw_listener_reply(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
    }
}

static void reply_json(struct cfw_listener_req *req, int code, json_t *o);

static void http_incidents(struct cfw_listener_req *req, const char *path, void *arg)
{
    struct app *app = arg;
    json_t *list = json_array();

    for (size_t i = 0; i < cfw_incidents_count(app->incidents); i++) {
        const struct cfw_incident *inc = cfw_incidents_at(app->incidents, i);
        if (inc->state != CFW_INCIDENT_PENDING) {
            json_array_append_new(list, cfw_report_incident_json(inc));
        }
    }
    reply_json(req, 200,
               json_pack("{s:i, s:I, s:o}", "version", 1, "open",
                         (json_int_t)cfw_incidents_open_count(app->incidents), "incidents", list));
}

/* ---- the HTTP API: /api/v1/incidents, /api/v1/silences, acknowledgements ---- */

static void reply_json(struct cfw_listener_req *req, int code, json_t *o)
{
    char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

    json_decref(o);
    cfw_listener_reply(req, code, "application/json", text != NULL ? text : "{}",
                       text != NULL ? strlen(text) : 2);
    free(text);
}

static void reply_error(struct cfw_listener_req *req, int code, const char *msg)
{
    reply_json(req, code, json_pack("{s:s}", "error", msg));
}

/* Decodes %XX in place (a key with '/' comes as %2F); -1 on a malformed escape or %00. */
static int percent_decode(char *s)
{
    long n = cfw_percent_decode(s, strlen(s), s, true);

    if (n < 0) {
        return -1;
    }
    s[n] = '\0';
    return 0;
}

/* The value of name in a query string (percent-decoded), or NULL; caller frees. */
static char *query_get(const char *q, const char *name)
{
    size_t n = strlen(name);

    while (q != NULL && *q != '\0') {
        const char *end = strchr(q, '&');
        size_t len = end != NULL ? (size_t)(end - q) : strlen(q);
        if (len > n && strncmp(q, name, n) == 0 && q[n] == '=') {
            char *v = cfw_xstrndup(q + n + 1, len - n - 1);
            for (char *p = v; *p != '\0'; p++) {
                *p = *p == '+' ? ' ' : *p;
            }
            if (percent_decode(v) == 0) {
                return v;
            }
            free(v);
            return NULL;
        }
        q = end != NULL ? end + 1 : NULL;
    }
    return NULL;
}

/*
 * Writes need "Authorization: Bearer <api.token>"; without a configured token the API is
 * read-only. Compared in time that depends only on the lengths.
 */
static bool api_authorized(const struct app *app, struct cfw_listener_req *req)
{
    const char *v = cfw_listener_req_header(req, "Authorization");

    if (app->api_token == NULL) {
        reply_error(req, 403, "the API is read-only: set api.token_file in the configuration to "
                              "allow silences and acknowledgements");
        return false;
    }
    if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0) {
        cfw_listener_req_add_header(req, "WWW-Authenticate", "Bearer realm=\"cfwatchd\"");
        reply_error(req, 401, "Authorization: Bearer <api token> required");
        return false;
    }
    if (!cfw_ct_str_equal(v + 7, app->api_token)) {
        reply_error(req, 401, "wrong API token");
        return false;
    }
    return true;
}

/* The JSON body of a request: an object, or NULL after answering 400. */
static json_t *api_body(struct cfw_listener_req *req, bool optional)
{
    size_t len;
    const char *body = cfw_listener_req_body(req, &len);
    json_error_t jerr;
    json_t *o;

    if ((body == NULL || len == 0) && optional) {
        return json_object();
    }
    o = json_loadb(body != NULL ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "the body must be a JSON object (line %d column %d: %s)",
                 jerr.line, jerr.column, o == NULL ? jerr.text : "not an object");
        json_decref(o);
        reply_error(req, 400, msg);
        return NULL;
    }
    return o;
}

/* An incident as the API shows it: the report's form plus silence and acknowledgement. */
static json_t *api_incident(const struct app *app, const struct cfw_incident *inc, int64_t now)
{
    json_t *o = cfw_report_incident_json(inc);
    const char *sid = cfw_silences_match(app->silences, inc, now);

    json_object_set_new(o, "opening", json_integer((json_int_t)inc->opening));
    json_object_set_new(o, "silenced_by", sid != NULL ? json_string(sid) : json_null());
    json_object_set_new(o, "muted", json_boolean(inc->muted));
    json_object_set_new(o, "acked_by", inc->acked_by != NULL ? json_string(inc->acked_by)
                                                              : json_null());
    json_object_set_new(o, "resolved_by", inc->resolved_by != NULL
                                              ? json_string(inc->resolved_by)
                                              : json_null());
    json_object_set_new(o, "resolve", json_string(inc->on_success ? "success" : "quiet"));
    return o;
}

static bool filter_ok(const char *want, const char *have)
{
    return want == NULL || strcmp(want, have != NULL ? have : "") == 0;
}

/* GET /api/v1/incidents?state=open|resolved|all&rule=&script=&severity= (default: open). */
static void api_incidents_list(struct app *app, struct cfw_listener_req *req)
{
    const char *q = cfw_listener_req_query(req);
    char *state = query_get(q, "state"), *rule = query_get(q, "rule");
    char *script = query_get(q, "script"), *sev = query_get(q, "severity");
    json_t *list = json_array();
    int64_t now = cfw_now_wall_ms();

    if (state != NULL && strcmp(state, "open") != 0 && strcmp(state, "resolved") != 0 &&
        strcmp(state, "all") != 0) {
        reply_error(req, 400, "state: open, resolved or all");
        json_decref(list);
    } else {
        for (size_t i = 0; i < cfw_incidents_count(app->incidents); i++) {
            const struct cfw_incident *inc = cfw_incidents_at(app->incidents, i);
            bool st = inc->state == CFW_INCIDENT_OPEN
                          ? state == NULL || strcmp(state, "resolved") != 0
                          : inc->state == CFW_INCIDENT_RESOLVED && state != NULL &&
                                strcmp(state, "open") != 0;
            if (st && filter_ok(rule, inc->rule) &&
                filter_ok(script, cfw_fields_get(&inc->fields, "script")) &&
                filter_ok(sev, cfw_severity_name(inc->severity))) {
                json_array_append_new(list, api_incident(app, inc, now));
            }
        }
        reply_json(req, 200, json_pack("{s:i, s:I, s:o}", "version", 1, "count",
                                       (json_int_t)json_array_size(list), "incidents", list));
    }
    free(state);
    free(rule);
    free(script);
    free(sev);
}

/* POST /api/v1/incidents/{key}/ack with {"by": "...", "comment"?}: acknowledged, told to sinks. */
static void api_ack(struct app *app, struct cfw_listener_req *req, char *key)
{
    json_t *body = api_body(req, true);
    const char *by;
    char *who;
    int rc;

    if (body == NULL) {
        return;
    }
    by = json_string_value(json_object_get(body, "by"));
    if (by == NULL || by[0] == '\0' || strlen(by) > 200) {
        json_decref(body);
        reply_error(req, 400, "by: required, who acknowledges (at most 200 bytes)");
        return;
    }
    who = cfw_secrets_scrub(by);
    rc = cfw_incidents_ack(app->incidents, key, who, now_mono(), cfw_now_wall_ms());
    if (rc < 0) {
        reply_error(req, 404, "no open incident with that key");
    } else if (rc > 0) {
        reply_json(req, 409, json_pack("{s:s, s:s}", "error", "acknowledged already", "acked_by",
                                       cfw_incidents_find(app->incidents, key)->acked_by));
    } else {
        cfw_log_notice("incident %s acknowledged by %s (API)", key, who);
        reply_json(req, 200, api_incident(app, cfw_incidents_find(app->incidents, key),
                                          cfw_now_wall_ms()));
    }
    free(who);
    json_decref(body);
}

/* Journals a silence as it now is (fsynced: an acknowledged request survives a crash). */
static void journal_silence(struct app *app, const char *id)
{
    json_t *o = cfw_silence_json(app->silences, id, cfw_now_wall_ms());

    app->dirty = true;
    if (o != NULL) {
        journal_add(app, json_pack("{s:s, s:o}", "t", "silence", "silence", o), true);
    }
}

static void api_silences(struct app *app, struct cfw_listener_req *req, const char *rest)
{
    enum cfw_listener_method m = cfw_listener_req_method(req);
    int64_t now = cfw_now_wall_ms();

    cfw_silences_gc(app->silences, now);
    if (rest[0] == '\0' && (m == CFW_LISTENER_GET || m == CFW_LISTENER_HEAD)) {
        reply_json(req, 200, json_pack("{s:i, s:o}", "version", 1, "silences",
                                       cfw_silences_json(app->silences, now)));
    } else if (rest[0] == '\0' && m == CFW_LISTENER_POST) {
        struct cfw_err err = {0};
        json_t *body;
        const char *id;

        if (!api_authorized(app, req) || (body = api_body(req, false)) == NULL) {
            return;
        }
        id = json_string_value(json_object_get(body, "id"));
        if (id != NULL) {
            /* Alertmanager's way: a silence with the id of one in force changes it */
            char *keep = cfw_xstrdup(id);
            int rc = cfw_silences_update(app->silences, keep, body, now, &err);

            json_decref(body);
            if (rc != 0) {
                reply_error(req, err.code == ENOENT ? 404 : 400, err.msg);
            } else {
                journal_silence(app, keep);
                cfw_log_notice("silence %s changed (API)", keep);
                reply_json(req, 200, cfw_silence_json(app->silences, keep, now));
            }
            free(keep);
            return;
        }
        id = cfw_silences_add(app->silences, body, now, &err);
        json_decref(body);
        if (id == NULL) {
            reply_error(req, 400, err.msg);
            return;
        }
        journal_silence(app, id);
        cfw_log_notice("silence %s added (API)", id);
        reply_json(req, 201, cfw_silence_json(app->silences, id, now));
    } else if (rest[0] == '/' && m == CFW_LISTENER_DELETE) {
        if (!api_authorized(app, req)) {
            return;
        }
        if (cfw_silences_expire(app->silences, rest + 1, now) != 0) {
            reply_error(req, 404, "no active silence with that id");
            return;
        }
        journal_silence(app, rest + 1);
        cfw_log_notice("silence %s expired (API)", rest + 1);
        reply_json(req, 200, cfw_silence_json(app->silences, rest + 1, now));
    } else if (rest[0] == '/' && m == CFW_LISTENER_GET) {
        json_t *o = cfw_silence_json(app->silences, rest + 1, now);
        if (o == NULL) {
            reply_error(req, 404, "no silence with that id");
        } else {
            reply_json(req, 200, o);
        }
    } else {
        reply_error(req, 405, "GET or POST /api/v1/silences, GET or DELETE /api/v1/silences/ID");
    }
}

static void http_api(struct cfw_listener_req *req, const char *path, void *arg)
{
    struct app *app = arg;
    const char *rest = path + strlen("/api/v1/");
    enum cfw_listener_method m = cfw_listener_req_method(req);

    if (strcmp(rest, "incidents") == 0 && (m == CFW_LISTENER_GET || m == CFW_LISTENER_HEAD)) {
        api_incidents_list(app, req);
    } else if (strncmp(rest, "silences", 8) == 0 && (rest[8] == '\0' || rest[8] == '/')) {
        api_silences(app, req, rest + 8);
    } else if (strncmp(rest, "incidents/", 10) == 0 && strlen(rest) > 14 &&
               strcmp(rest + strlen(rest) - 4, "/ack") == 0) {
        char *key = cfw_xstrndup(rest + 10, strlen(rest) - 14);

        if (m != CFW_LISTENER_POST) {
            reply_error(req, 405, "POST /api/v1/incidents/KEY/ack");
        } else if (percent_decode(key) != 0) {
            reply_error(req, 400, "the key is not percent-encoded properly");
        } else if (api_authorized(app, req)) {
            api_ack(app, req, key);
        }
        free(key);
    } else {
        reply_error(req, 404, "unknown API path (GET /api/v1/incidents, /api/v1/silences; POST "
                              "/api/v1/silences, /api/v1/incidents/KEY/ack; DELETE "
                              "/api/v1/silences/ID)");
    }
}

/* The daemon's own counters: reloads, state and journal, silences. */
static void app_metrics(const struct app *app, struct cfw_metrics *m)
{
    const struct cfw_metric one[] = {
        {"cfwatchd_reloads_total", "counter", "Successful configuration reloads.", app->reloads},
        {"cfwatchd_reload_failures_total", "counter", "Rejected configuration reloads.",
         app->reload_failures},
        {"cfwatchd_state_save_failures_total", "counter", "Failed state writes.",
         app->save_failures},
        {"cfwatchd_state_durable", "gauge",
         "1 when the journal and the state file are written, 0 when running from memory.",
         app->durable},
        {"cfwatchd_state_recoveries_total", "counter",
         "Starts that found state.json damaged or missing and recovered from the previous "
         "generation or the journal.",
         app->state_recoveries},
        {"cfwatchd_journal_records_total", "counter", "Records appended to the journal.",
         app->journal_records},
        {"cfwatchd_journal_failures_total", "counter",
         "Journal appends, fsyncs or rotations that failed.", app->journal_failures},
        {"cfwatchd_silences_active", "gauge", "Silences in force now.",
         cfw_silences_active(app->silences, cfw_now_wall_ms())},
        {"cfwatchd_notifications_silenced_total", "counter",
         "Transitions not sent because a silence matched (or their open was silenced).",
         app->silenced},
        {"cfwatchd_journal_bytes", "gauge", "Size of the current journal file.",
         app->journal != NULL ? cfw_journal_bytes(app->journal) : 0},
    };

    cfw_metrics_add(m, one, sizeof(one) / sizeof(one[0]));
}

/* GET /metrics: every module's families, through one writer (metrics.h). */
static void http_metrics(struct cfw_listener_req *req, const char *path, void *arg)
{
    struct app *app = arg;
    struct cfw_metrics *m = cfw_metrics_new();
    const char *text;
    size_t len;

    cfw_pipeline_metrics(app->pipeline, m);
    cfw_incidents_metrics(app->incidents, app->transitions, m);
    cfw_inputs_metrics(app->inputs, app->ninputs, m);
    if (app->notifier != NULL) {
        cfw_notifier_metrics(app->notifier, m);
    }
    if (app->listener != NULL) {
        cfw_listener_metrics(app->listener, m);
    }
    app_metrics(app, m);
    text = cfw_metrics_text(m, &len);
    cfw_listener_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    cfw_metrics_free(m);
}

/* ---- timers and signals ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct app *app = arg;
    int64_t mono = now_mono();

    batch_begin(app);
    for (struct stream *s = app->streams; s != NULL; s = s->next) {
        if (cfw_pipeline_input_pending(s->input) &&
            mono - s->last_data_mono_ms >= CFW_APP_IDLE_FLUSH_MS) {
            app->pos_dirty = true;
            cfw_pipeline_input_flush(s->input);
        }
    }
    cfw_incidents_tick(app->incidents, mono, cfw_now_wall_ms());
    batch_end(app);
    journal_retry(app);
    if (app->journal == NULL) {
        /* nothing to journal them in: forgotten, so that they can be evicted at the cap */
        cfw_incidents_take_touched(app->incidents, NULL, NULL);
    }
    durability_tell(app);
    if (app->journal != NULL) {
        if (cfw_journal_bytes(app->journal) > CFW_JOURNAL_COMPACT_BYTES) {
            state_save(app); /* a burst of transitions: compact before the next interval */
        } else if (app->pos_dirty && mono - app->pos_last_mono >= CFW_APP_POS_INTERVAL_MS) {
            journal_commit(app, false);
        }
    }
    timer_add_ms(app->ev_tick, CFW_APP_IDLE_FLUSH_MS);
}

/* How often changed state is written: the command line's, the configuration's, or 30 s. */
static int64_t save_interval(const struct app *app)
{
    if (app->opts->save_interval_ms > 0) {
        return app->opts->save_interval_ms;
    }
    if (app->cfg != NULL && app->cfg->state_save_interval_ms > 0) {
        return app->cfg->state_save_interval_ms;
    }
    return CFW_APP_SAVE_INTERVAL_MS;
}

static void on_save(evutil_socket_t fd, short what, void *arg)
{
    struct app *app = arg;

    if (app->dirty) {
        state_save(app);
    }
    timer_add_ms(app->ev_save, save_interval(app));
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    sd_notify(0, "WATCHDOG=1");
}

static void on_status(evutil_socket_t fd, short what, void *arg)
{
    struct app *app = arg;
    const struct cfw_pipeline_stats *ps = cfw_pipeline_stats(app->pipeline);
    size_t down = 0;

    for (size_t i = 0; i < app->ninputs; i++) {
        down += cfw_input_health(app->inputs[i], NULL) == CFW_INPUT_DOWN;
    }
    sd_notifyf(0, "STATUS=%zu sources (%zu down), %llu events, %llu matches, %zu open incidents",
               app->ninputs, down, (unsigned long long)ps->events, (unsigned long long)ps->matches,
               cfw_incidents_open_count(app->incidents));
    timer_add_ms(app->ev_status, 5000);
}

/* The api: section: {token | token_file}, the bearer token that API writes need. */
/* api.token (or token_file): a secret of at least 16 characters. */
static int read_api_token(const struct cfw_schema_key *key, const struct cfw_node *api,
                          const char *path, void *conf, struct cfw_diag *diag)
{
    char **token = conf;
    int rc = cfw_node_secret(api, key->name, "token_file", path, token, diag);

    if (rc == 1 && strlen(*token) < 16) {
        cfw_diag_add(diag, api, "api", "the token must have at least 16 characters");
        return -1;
    }
    return rc;
}

static const struct cfw_schema_key api_keys[] = {
    {.name = "token",
     .read = read_api_token,
     .help = "the bearer token of the write API (or token_file; at least 16 characters)"},
    {.name = "token_file", .help = "a file holding the token (read with token)"},
    {0},
};
static const struct cfw_schema api_schema = {api_keys, NULL};

static void api_token_parse(const struct cfw_node *api, char **token, struct cfw_diag *diag)
{
    cfw_schema_parse(&api_schema, api, "api", token, diag);
}

/* Takes the API token of cfg (already validated); registers it as a secret. */
static void api_token_load(struct app *app, const struct cfw_config *cfg)
{
    struct cfw_diag diag = {0};
    char *token = NULL;

    free(app->api_token);
    app->api_token = NULL;
    cfw_secret_hold_free(app->api_hold);
    app->api_hold = cfw_secret_hold_new();
    if (cfg->api != NULL) {
        api_token_parse(cfg->api, &token, &diag);
        if (token != NULL && diag.n == 0) {
            cfw_secret_hold_add(app->api_hold, token, strlen(token));
            app->api_token = token;
            token = NULL;
        }
    }
    free(token);
    cfw_diag_free(&diag);
}

int cfw_app_validate(const struct cfw_config *cfg, struct cfw_diag *diag)
{
    size_t before = diag->n;
    unsigned have = 0;

    if (cfg->cloudflare != NULL) {
        have |= CFW_INPUT_NEEDS_CLOUDFLARE;
    }
    if (cfw_config_listen(cfg) != NULL) {
        have |= CFW_INPUT_NEEDS_LISTENER;
    }

    for (size_t i = 0; cfg->sources != NULL && i < cfg->sources->n; i++) {
        char path[32];

        snprintf(path, sizeof(path), "sources[%zu]", i);
        cfw_input_check(cfg->sources->items[i], path, have, diag);
    }
    {
        struct cfw_sinks *sinks = cfw_sinks_parse(cfg->sinks, "sinks", diag);
        struct cfw_notifier_opts no = {0};
        cfw_sinks_free(sinks);
        cfw_notifier_parse_opts(cfg->outbox, "outbox", &no, diag);
    }
    /* a name identifies a source in incidents, state and /logpush/<name>: one each */
    for (size_t i = 0; cfg->sources != NULL && i < cfg->sources->n; i++) {
        const struct cfw_node *a = cfw_node_get(cfg->sources->items[i], "name");
        for (size_t j = 0; a != NULL && a->type == CFW_NODE_SCALAR && j < i; j++) {
            const struct cfw_node *b = cfw_node_get(cfg->sources->items[j], "name");
            if (b != NULL && b->type == CFW_NODE_SCALAR && strcmp(a->value, b->value) == 0) {
                char path[48];
                snprintf(path, sizeof(path), "sources[%zu].name", i);
                cfw_diag_add(diag, a, path, "source name '%s' is used twice (also sources[%zu])",
                             a->value, j);
            }
        }
    }
    if (cfg->cloudflare != NULL) {
        struct cfw_cf_conf cc;
        if (cfw_cf_conf_parse(cfg->cloudflare, &cc, diag) == 0) {
            cfw_cf_conf_clear(&cc);
        }
    }
    if (cfg->sources != NULL && cfg->sources->type != CFW_NODE_SEQ) {
        cfw_diag_add(diag, cfg->sources, "sources", "must be a list of sources");
    }
    if (cfg->api != NULL) {
        char *token = NULL;
        api_token_parse(cfg->api, &token, diag);
        free(token);
    }
    return diag->n > before ? -1 : 0;
}

int cfw_app_load(const char *path, char *const *rule_files, bool no_builtin,
                 enum cfw_app_check check, struct cfw_config **cfgp, struct cfw_ruleset **rsp,
                 struct cfw_diag *diag)
{
    struct cfw_config *cfg = path != NULL ? cfw_config_load(path, diag) : cfw_config_empty();
    struct cfw_ruleset *rs = NULL;

    if (cfg != NULL) {
        rs = cfw_config_rules(cfg, rule_files, no_builtin, diag);
    }
    if (cfg != NULL && check == CFW_APP_CHECK_ALL) {
        /* every error at once, whether the rules loaded or not: one edit fixes them all */
        cfw_app_validate(cfg, diag);
    } else if (cfg != NULL && check == CFW_APP_CHECK_QUIET && path != NULL) {
        /*
         * Parsing every section registers the configured secrets (secrets.h), so that a report
         * or an answer printed is scrubbed of them even when no sink is started. Its errors
         * are --check-config's business: a secret file this user cannot read does not stop a
         * scan.
         */
        struct cfw_diag scratch = {0};
        cfw_app_validate(cfg, &scratch);
        cfw_diag_free(&scratch);
    }
    if (cfg == NULL || rs == NULL || diag->n > 0) {
        cfw_ruleset_free(rs);
        cfw_config_free(cfg);
        return -1;
    }
    *cfgp = cfg;
    *rsp = rs;
    return 0;
}

/* Loads the configuration and rules; -1 with the errors logged. */
static int load(const struct cfw_app_opts *opts, struct cfw_config **cfgp, struct cfw_ruleset **rsp)
{
    struct cfw_diag diag = {0};
    int rc = cfw_app_load(opts->config_path, NULL, false, CFW_APP_CHECK_ALL, cfgp, rsp, &diag);

    if (rc != 0) {
        for (size_t i = 0; i < diag.n; i++) {
            cfw_log_err("%s", diag.msgs[i]);
        }
        cfw_log_err("%zu configuration error%s in %s", diag.n, diag.n == 1 ? "" : "s",
                    opts->config_path);
    }
    cfw_diag_free(&diag);
    return rc;
}

/* Inputs the new configuration has unchanged keep running (inputs_start takes them). */
static void kept_choose(struct app *app, const struct cfw_config *cfg)
{
    const struct cfw_node *seq = cfg->sources;

    app->kept = cfw_xcalloc(app->ninputs + 1, sizeof(*app->kept));
    for (size_t i = 0; i < app->ninputs; i++) {
        const char *mine = cfw_input_kept_by(app->inputs[i]);

        for (size_t k = 0; mine != NULL && seq != NULL && seq->type == CFW_NODE_SEQ && k < seq->n;
             k++) {
            char *text = cfw_input_keep_text(seq->items[k]);
            bool same = text != NULL && strcmp(text, mine) == 0;

            free(text);
            if (same) {
                app->kept[app->nkept++] = app->inputs[i];
                break;
            }
        }
    }
}

static void reload(struct app *app)
{
    struct cfw_config *cfg = NULL;
    struct cfw_ruleset *rs = NULL;
    json_t *positions;

    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)now_mono() * 1000ULL);
    cfw_log_notice("reloading %s", app->opts->config_path);
    if (load(app->opts, &cfg, &rs) != 0) {
        app->reload_failures++;
        cfw_log_err("reload rejected; the running configuration stays in force");
        sd_notify(0, "READY=1");
        return;
    }
    /* inputs restart from where they are: positions carried over by name */
    positions = inputs_save(app);
    kept_choose(app, cfg);
    inputs_free(app);
    json_decref(app->saved_sources);
    app->saved_sources = positions;
    cfw_pipeline_set_rules(app->pipeline, rs);
    cfw_ruleset_free(app->rules);
    app->rules = rs;
    cfw_incidents_set_opts(app->incidents, &cfg->incidents);
    cfw_incidents_apply_rules(app->incidents, rs);
    {
        /* what the old notifier had not delivered stays in the spool, which the new one replays */
        struct cfw_notifier *n = notifier_start(app, cfg);
        if (n != NULL) {
            cfw_notifier_free(app->notifier);
            app->notifier = n;
        } else {
            cfw_log_err("reload: the new sinks could not start; the previous ones stay");
        }
    }
    cfw_config_free(app->cfg);
    app->cfg = cfg;
    api_token_load(app, cfg);
    inputs_start(app, cfg->sources, app->saved_sources);
    for (size_t k = 0; k < app->nkept; k++) {
        if (app->kept[k] != NULL) {
            /* not taken after all: it goes with its streams */
            streams_close(app, app->kept[k]);
            cfw_input_free(app->kept[k]);
        }
    }
    if (app->nkept > 0) {
        cfw_log_notice("reload: %zu unchanged exec source(s) kept running", app->nkept);
    }
    free(app->kept);
    app->kept = NULL;
    app->nkept = 0;
    sources_reconcile(app);
    app->reloads++;
    cfw_log_notice("reloaded: %zu rules, %zu sources", cfw_ruleset_count(rs), app->ninputs);
    sd_notify(0, "READY=1");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct app *app = arg;

    if (sig == SIGHUP) {
        if (app->stopping) {
            cfw_log_notice("signal %d: ignored, stopping", (int)sig); /* no reload mid-stop */
        } else {
            reload(app);
        }
        return;
    }
    cfw_log_notice("signal %d: stopping", (int)sig);
    app->stopping = true;
    sd_notify(0, "STOPPING=1");
    event_base_loopbreak(app->base);
}

/* The HTTP listener and its routes, unless listen is off; -1 when it cannot listen (logged). */
static int listener_start(struct app *app)
{
    const char *listen = cfw_config_listen(app->cfg);
    struct cfw_err err = {0};

    if (listen == NULL) {
        return 0;
    }
    app->listener = cfw_listener_new(app->base, listen, NULL, &err);
    if (app->listener == NULL) {
        cfw_log_err("%s", err.msg);
        return -1;
    }
    cfw_listener_route(app->listener, "/healthz", 0, NULL, http_healthz, app);
    cfw_listener_route(app->listener, "/metrics", 0, NULL, http_metrics, app);
    cfw_listener_route(app->listener, "/incidents", 0, NULL, http_incidents, app);
    /* request bodies there are held to the listener's default cap (64 KiB) */
    cfw_listener_route(app->listener, "/api/v1/", 1, NULL, http_api, app);
    cfw_listener_route(app->listener, "/logpush/", 1, http_logpush_check, http_logpush, app);
    cfw_log_info("listening on %s (port %d)", listen, cfw_listener_port(app->listener));
    return 0;
}

/* Signals (SIGHUP reload, SIGTERM/SIGINT stop), the timers and the systemd watchdog. */
static void events_start(struct app *app)
{
    uint64_t wd_usec = 0;

    app->ev_hup = evsignal_new(app->base, SIGHUP, on_signal, app);
    app->ev_term = evsignal_new(app->base, SIGTERM, on_signal, app);
    app->ev_int = evsignal_new(app->base, SIGINT, on_signal, app);
    event_add(app->ev_hup, NULL);
    event_add(app->ev_term, NULL);
    event_add(app->ev_int, NULL);
    signal(SIGPIPE, SIG_IGN);

    app->ev_tick = evtimer_new(app->base, on_tick, app);
    app->ev_save = evtimer_new(app->base, on_save, app);
    app->ev_status = evtimer_new(app->base, on_status, app);
    timer_add_ms(app->ev_tick, CFW_APP_IDLE_FLUSH_MS);
    timer_add_ms(app->ev_save, save_interval(app));
    timer_add_ms(app->ev_status, 5000);
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
        struct timeval tv = {(time_t)(wd_usec / 2 / 1000000), (suseconds_t)(wd_usec / 2 % 1000000)};
        app->ev_watchdog = event_new(app->base, -1, EV_PERSIST, on_watchdog, app);
        event_add(app->ev_watchdog, &tv);
        cfw_log_info("systemd watchdog: pinging every %llu ms",
                     (unsigned long long)(wd_usec / 2000));
    }
}

static int app_init(struct app *app, const struct cfw_app_opts *opts)
{
    struct cfw_diag diag = {0};

    app->opts = opts;
    app->started_wall_ms = cfw_now_wall_ms();
    if (load(opts, &app->cfg, &app->rules) != 0) {
        return -1;
    }
    if (!opts->log_level_set && app->cfg->log_level != NULL) {
        enum cfw_log_level lvl;
        if (cfw_log_parse_level(app->cfg->log_level, &lvl) == 0) {
            cfw_log_init(lvl);
        }
    }
    app->internal_doc = cfw_yaml_load_string("<internal>", cfw_internal_pack_table[0].text,
                                             strlen(cfw_internal_pack_table[0].text), &diag);
    app->internal = cfw_ruleset_new();
    if (app->internal_doc == NULL ||
        cfw_ruleset_add_node(app->internal, cfw_node_get(app->internal_doc->root, "rules"),
                             "rules", "cfwatchd", &diag) != 0) {
        cfw_log_err("internal rules: %s", diag.n > 0 ? diag.msgs[0] : "?");
        cfw_diag_free(&diag);
        return -1;
    }
    app->state_dir = cfw_xstrdup(app->cfg->state_dir != NULL ? app->cfg->state_dir
                                                             : CFW_CONFIG_DEFAULT_STATE_DIR);
    if (mkdir(app->state_dir, 0700) != 0 && errno != EEXIST) {
        cfw_log_err("state_dir %s: %s", app->state_dir, strerror(errno));
        return -1;
    }
    app->base = event_base_new();
    if (app->base == NULL) {
        cfw_log_err("cannot create the event loop");
        return -1;
    }
    app->incidents = cfw_incidents_new(&app->cfg->incidents, on_transition, app);
    cfw_incidents_set_annotate(app->incidents, on_annotate);
    cfw_incidents_track_touched(app->incidents, true);
    app->pipeline = cfw_pipeline_new(app->rules, app->incidents, NULL);
    app->deploys = cfw_deploys_new();
    app->silences = cfw_silences_new();
    state_load(app);
    api_token_load(app, app->cfg);
    app->notifier = notifier_start(app, app->cfg);
    if (app->notifier == NULL) {
        return -1;
    }
    if (json_object_size(app->resend) > 0) {
        state_resend(app);
    }
    json_decref(app->resend);
    app->resend = NULL;

    if (listener_start(app) != 0) {
        return -1;
    }
    events_start(app);
    inputs_start(app, app->cfg->sources, app->saved_sources);
    sources_reconcile(app);
    /* where reading starts (start_at: end) is durable before READY: a crash re-reads from here */
    if (app->journal != NULL) {
        journal_commit(app, true);
    }
    return 0;
}

static void app_free(struct app *app)
{
    inputs_free(app);
    cfw_notifier_free(app->notifier);
    cfw_http_free(app->http);
    cfw_deploys_free(app->deploys);
    cfw_listener_free(app->listener);
    cfw_pipeline_free(app->pipeline);
    cfw_incidents_free(app->incidents);
    cfw_ruleset_free(app->rules);
    cfw_ruleset_free(app->internal);
    cfw_doc_free(app->internal_doc);
    cfw_config_free(app->cfg);
    json_decref(app->saved_sources);
    json_decref(app->resend);
    for (size_t i = 0; i < app->nqueue; i++) {
        free(app->queue[i].key);
    }
    free(app->queue);
    cfw_journal_close(app->journal);
    free(app->not_durable);
    cfw_silences_free(app->silences);
    free(app->api_token);
    cfw_secret_hold_free(app->api_hold);
    struct event **evs[] = {&app->ev_hup,  &app->ev_term,   &app->ev_int,
                            &app->ev_pipe, &app->ev_tick,   &app->ev_save,
                            &app->ev_watchdog, &app->ev_status};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (*evs[i] != NULL) {
            event_free(*evs[i]);
        }
    }
    if (app->base != NULL) {
        event_base_free(app->base);
    }
    free(app->state_dir);
}

/* Stops the inputs and lets the loop run until they have stopped or a deadline passes. */
static void inputs_stop(struct app *app)
{
    int64_t deadline = now_mono() + CFW_APP_DRAIN_DEADLINE_MS;

    for (size_t i = 0; i < app->ninputs; i++) {
        cfw_input_stop(app->inputs[i]); /* commands ended, WebSockets closed, tails DELETEd */
    }
    while (now_mono() < deadline) {
        bool all = true;
        for (size_t i = 0; i < app->ninputs; i++) {
            all = all && cfw_input_stopped(app->inputs[i]);
        }
        if (all) {
            break;
        }
        event_base_loop(app->base, EVLOOP_ONCE);
    }
}

int cfw_app_run(const struct cfw_app_opts *opts)
{
    struct app app = {0};
    int rc = 0;

    if (app_init(&app, opts) != 0) {
        app_free(&app);
        return 1;
    }
    sd_notify(0, "READY=1");
    cfw_log_notice("started: %zu rules, %zu sources, state in %s", cfw_ruleset_count(app.rules),
                   app.ninputs, app.state_dir);
    event_base_dispatch(app.base);
    inputs_stop(&app);
    /* the resolves and opens of the last moments are spooled by now: give them a chance */
    cfw_incidents_tick(app.incidents, now_mono(), cfw_now_wall_ms());
    if (state_save(&app) != 0) {
        rc = 1;
    }
    if (cfw_notifier_pending(app.notifier) > 0) {
        cfw_log_notice("delivering %zu pending notification(s) before stopping (up to %d s)",
                       cfw_notifier_pending(app.notifier), CFW_APP_DRAIN_DEADLINE_MS / 1000);
        cfw_notifier_drain(app.notifier, now_mono() + CFW_APP_DRAIN_DEADLINE_MS);
    }
    cfw_log_notice("stopped");
    app_free(&app);
    return rc;
}
