/* Persistent state: JSON file reads and incident (de)serialisation (writes: fsutil.h). */
#include "cfwatchd/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfwatchd/fsutil.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/secrets.h"

json_t *cfw_state_read(const char *path, size_t max, struct cfw_err *err)
{
    json_error_t jerr;
    json_t *root;
    size_t got;
    char *buf = cfw_fs_read_file(path, max, &got, err);

    if (buf == NULL && err != NULL && err->code == EFBIG) {
        cfw_err_setc(err, EINVAL, "%s: not a regular file of at most %zu bytes", path, max);
        return NULL;
    }
    if (buf == NULL) {
        return NULL;
    }
    root = json_loadb(buf, got, JSON_REJECT_DUPLICATES, &jerr);
    free(buf);
    if (root == NULL) {
        cfw_err_setc(err, EINVAL, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    }
    return root;
}

static const char *state_name(enum cfw_incident_state s)
{
    return s == CFW_INCIDENT_OPEN ? "open" : s == CFW_INCIDENT_RESOLVED ? "resolved" : "pending";
}

static json_t *position_json(const struct cfw_position *p)
{
    return json_pack("{s:s, s:I, s:I}", "input", p->input != NULL ? p->input : "", "line",
                     (json_int_t)p->line, "wall_ms", (json_int_t)p->wall_ms);
}

static json_t *stamp_json(const struct cfw_stamp *st)
{
    return json_pack("{s:I, s:I, s:s}", "wall_ms", (json_int_t)st->wall_ms, "boot_ms",
                     (json_int_t)st->boot_ms, "boot_id", st->boot_id);
}

/* The moment age_ms before now, as a stamp (the boot part dropped if it would not be valid). */
static json_t *stamp_ago_json(const struct cfw_stamp *now, int64_t age_ms)
{
    struct cfw_stamp st = *now;

    st.wall_ms -= age_ms;
    st.boot_ms -= age_ms;
    if (now->boot_ms <= 0 || st.boot_ms <= 0) {
        st.boot_ms = 0;
        st.boot_id[0] = '\0';
    }
    return stamp_json(&st);
}

json_t *cfw_state_incident_json(const struct cfw_incident *inc, const struct cfw_stamp *now,
                                int64_t mono_ms)
{
    int64_t wall_ms = now->wall_ms;
    json_t *fields = json_object();
    json_t *o;

    for (size_t k = 0; k < inc->fields.n; k++) {
        json_object_set_new(fields, inc->fields.v[k].key, json_string(inc->fields.v[k].value));
    }
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:I, s:o, s:o, s:s, s:I, s:I, "
                  "s:I, s:I, s:I, s:I, s:I}",
                  "key", inc->key, "rule", inc->rule, "pack", inc->pack != NULL ? inc->pack : "",
                  "severity", cfw_severity_name(inc->severity), "title", inc->title, "hint",
                  inc->hint, "fields", fields, "sample", inc->sample, "count",
                  (json_int_t)inc->count, "first", position_json(&inc->first), "last",
                  position_json(&inc->last), "state", state_name(inc->state), "opened_wall_ms",
                  (json_int_t)inc->opened_wall_ms, "resolved_wall_ms",
                  (json_int_t)inc->resolved_wall_ms, "last_seen_wall_ms",
                  (json_int_t)(wall_ms - (mono_ms - inc->last_seen_mono_ms)),
                  "last_notified_wall_ms",
                  (json_int_t)(wall_ms - (mono_ms - inc->last_notified_mono_ms)),
                  "count_at_notify", (json_int_t)inc->count_at_notify, "repeat_interval_ms",
                  (json_int_t)inc->repeat_interval_ms, "resolve_after_ms",
                  (json_int_t)inc->resolve_after_ms);
    if (o == NULL) {
        return NULL;
    }
    /* boot-clock moments: durations and ages that a wall-clock jump does not move */
    json_object_set_new(o, "opened_at", stamp_json(&inc->opened_at));
    json_object_set_new(o, "resolved_at", stamp_json(&inc->resolved_at));
    json_object_set_new(o, "last_seen_at", stamp_ago_json(now, mono_ms - inc->last_seen_mono_ms));
    json_object_set_new(o, "last_notified_at",
                        stamp_ago_json(now, mono_ms - inc->last_notified_mono_ms));
    /* what names its notifications (cfw_sink_notification_id) */
    json_object_set_new(o, "opening", json_integer((json_int_t)inc->opening));
    json_object_set_new(o, "occurrences", json_integer((json_int_t)inc->occurrences));
    json_object_set_new(o, "reminders", json_integer((json_int_t)inc->reminders));
    /* how it ends, and what ended it */
    json_object_set_new(o, "resolve", json_string(inc->on_success ? "success" : "quiet"));
    json_object_set_new(o, "resolve_fallback_ms", json_integer((json_int_t)inc->resolve_fallback_ms));
    if (inc->resolved_by != NULL) {
        json_object_set_new(o, "resolved_by", json_string(inc->resolved_by));
    }
    if (inc->acked_by != NULL) {
        json_object_set_new(o, "acked_by", json_string(inc->acked_by));
        json_object_set_new(o, "acked_wall_ms", json_integer((json_int_t)inc->acked_wall_ms));
    }
    if (inc->muted) {
        json_object_set_new(o, "muted", json_true());
    }
    return o;
}

json_t *cfw_state_incidents_save(const struct cfw_incidents *set, int64_t mono_ms,
                                 int64_t wall_ms)
{
    json_t *arr = json_array();
    struct cfw_stamp now;

    cfw_incident_stamp(&now, wall_ms);
    for (size_t i = 0; i < cfw_incidents_count(set); i++) {
        const struct cfw_incident *inc = cfw_incidents_at(set, i);

        if (inc->state == CFW_INCIDENT_PENDING) {
            continue; /* below threshold: nothing was announced, nothing is owed */
        }
        json_array_append_new(arr, cfw_state_incident_json(inc, &now, mono_ms));
    }
    return arr;
}

static int position_from(const json_t *o, struct cfw_position *p)
{
    const char *input = NULL;
    json_int_t line = 0, wall = 0;

    if (json_unpack((json_t *)o, "{s:s, s:I, s:I}", "input", &input, "line", &line, "wall_ms",
                    &wall) != 0 ||
        line < 0) {
        return -1;
    }
    p->input = cfw_xstrdup(input);
    p->line = (uint64_t)line;
    p->wall_ms = wall;
    return 0;
}

/*
 * Reads the stamp o[key] into st. A missing or malformed one (a state file from an older
 * version) leaves only the wall time wall_ms, so that ages fall back to the wall clock.
 */
static void stamp_from(const json_t *o, const char *key, int64_t wall_ms, struct cfw_stamp *st)
{
    json_int_t wall = 0, boot = 0;
    const char *id = NULL;

    memset(st, 0, sizeof(*st));
    st->wall_ms = wall_ms;
    if (json_unpack((json_t *)json_object_get(o, key), "{s:I, s:I, s:s}", "wall_ms", &wall,
                    "boot_ms", &boot, "boot_id", &id) != 0) {
        return;
    }
    if (wall != 0) {
        st->wall_ms = wall;
    }
    if (boot > 0 && strlen(id) == CFW_BOOT_ID_LEN) {
        st->boot_ms = boot;
        memcpy(st->boot_id, id, CFW_BOOT_ID_LEN + 1);
    }
}

/* A moment in the past converted to the current monotonic clock, never in the future. */
static int64_t to_mono(const json_t *o, const char *key, int64_t then_wall,
                       const struct cfw_stamp *now, int64_t mono_ms)
{
    struct cfw_stamp then;

    stamp_from(o, key, then_wall, &then);
    return mono_ms - cfw_stamp_elapsed_ms(&then, now);
}

int cfw_state_incident_restore(struct cfw_incidents *set, const json_t *o,
                               const struct cfw_stamp *now, int64_t mono_ms)
{
    struct cfw_incident inc = {0};
    const char *key, *rule, *pack, *sev, *title, *hint, *sample, *state;
    json_t *fields, *first, *last, *v;
    json_int_t count, opened, resolved, seen, notified, at_notify, repeat, resolve_after;
    json_int_t opening = 0, reminders = 0;
    const char *k;
    enum cfw_severity severity;

    if (json_unpack((json_t *)o,
                    "{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:I, s:o, s:o, s:s, s:I, "
                    "s:I, s:I, s:I, s:I, s:I, s:I, s?I, s?I}",
                    "key", &key, "rule", &rule, "pack", &pack, "severity", &sev, "title", &title,
                    "hint", &hint, "fields", &fields, "sample", &sample, "count", &count, "first",
                    &first, "last", &last, "state", &state, "opened_wall_ms", &opened,
                    "resolved_wall_ms", &resolved, "last_seen_wall_ms", &seen,
                    "last_notified_wall_ms", &notified, "count_at_notify", &at_notify,
                    "repeat_interval_ms", &repeat, "resolve_after_ms", &resolve_after, "opening",
                    &opening, "reminders", &reminders) != 0 ||
        cfw_severity_parse(sev, &severity) != 0 || !json_is_object(fields) || count < 0 ||
        opening < 0 || reminders < 0 ||
        (strcmp(state, "open") != 0 && strcmp(state, "resolved") != 0)) {
        return -1;
    }
    if (position_from(first, &inc.first) != 0 || position_from(last, &inc.last) != 0) {
        free(inc.first.input);
        return -1;
    }
    /* a state file from before the secret registry may hold a secret quoted from outside */
    inc.key = cfw_secrets_scrub(key);
    inc.rule = cfw_xstrdup(rule);
    inc.pack = cfw_xstrdup(pack);
    inc.severity = severity;
    inc.title = cfw_secrets_scrub(title);
    inc.hint = cfw_secrets_scrub(hint);
    inc.sample = cfw_xstrndup(sample, strnlen(sample, CFW_INCIDENT_SAMPLE_MAX));
    cfw_secrets_scrub_inplace(inc.sample, strlen(inc.sample));
    json_object_foreach(fields, k, v)
    {
        if (json_is_string(v)) {
            char *clean = cfw_secrets_scrub(json_string_value(v));
            cfw_fields_set(&inc.fields, k, clean);
            free(clean);
        }
    }
    inc.count = (uint64_t)count;
    /* older state files had no total: the current opening's count is the best known */
    v = json_object_get(o, "occurrences");
    inc.occurrences = json_is_integer(v) && json_integer_value(v) >= count
                          ? (uint64_t)json_integer_value(v)
                          : inc.count;
    inc.state = strcmp(state, "open") == 0 ? CFW_INCIDENT_OPEN : CFW_INCIDENT_RESOLVED;
    inc.opened_wall_ms = opened;
    inc.resolved_wall_ms = resolved;
    stamp_from(o, "opened_at", opened, &inc.opened_at);
    if (inc.state == CFW_INCIDENT_RESOLVED) {
        stamp_from(o, "resolved_at", resolved, &inc.resolved_at);
    }
    inc.last_seen_mono_ms = to_mono(o, "last_seen_at", seen, now, mono_ms);
    inc.last_notified_mono_ms = to_mono(o, "last_notified_at", notified, now, mono_ms);
    inc.count_at_notify = (uint64_t)at_notify;
    inc.repeat_interval_ms = repeat;
    inc.resolve_after_ms = resolve_after;
    inc.opening = (uint64_t)opening;
    inc.reminders = (uint64_t)reminders;
    inc.on_success = json_is_string(json_object_get(o, "resolve")) &&
                     strcmp(json_string_value(json_object_get(o, "resolve")), "success") == 0;
    inc.resolve_fallback_ms = json_integer_value(json_object_get(o, "resolve_fallback_ms"));
    if (inc.resolve_fallback_ms == 0) {
        inc.resolve_fallback_ms = CFW_RESOLVE_FALLBACK_DEFAULT_MS;
    }
    if (json_is_string(json_object_get(o, "acked_by"))) {
        inc.acked_by = cfw_secrets_scrub(json_string_value(json_object_get(o, "acked_by")));
        inc.acked_wall_ms = json_integer_value(json_object_get(o, "acked_wall_ms"));
    }
    inc.muted = json_is_true(json_object_get(o, "muted"));
    if (json_is_string(json_object_get(o, "resolved_by"))) {
        inc.resolved_by = cfw_secrets_scrub(json_string_value(json_object_get(o, "resolved_by")));
    }
    cfw_incidents_restore(set, &inc);
    return 0;
}

size_t cfw_state_incidents_restore(struct cfw_incidents *set, const json_t *arr, int64_t mono_ms,
                                   int64_t wall_ms, size_t *skipped)
{
    size_t restored = 0;
    size_t i;
    json_t *o;
    struct cfw_stamp now;

    *skipped = 0;
    if (!json_is_array(arr)) {
        return 0;
    }
    cfw_incident_stamp(&now, wall_ms);
    json_array_foreach(arr, i, o)
    {
        if (cfw_state_incident_restore(set, o, &now, mono_ms) != 0) {
            (*skipped)++;
        } else {
            restored++;
        }
    }
    return restored;
}
