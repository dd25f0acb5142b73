/* Silences: matchers over incidents, a time window, an author and a comment. */
#include "cfwatchd/silence.h"

#define PCRE2_CODE_UNIT_WIDTH 8

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <pcre2.h>

#include "cfwatchd/secrets.h"
#include "cfwatchd/sha256.h"

struct matcher {
    char *name;
    char *value;
    bool regex;
    bool negate;
    pcre2_code *re;
};

struct silence {
    char id[33];
    struct matcher m[CFW_SILENCE_MATCHERS_MAX];
    size_t nm;
    int64_t starts_ms;
    int64_t ends_ms;
    int64_t created_ms;
    char *created_by;
    char *comment;
};

struct cfw_silences {
    struct silence *v;
    size_t n;
};

struct cfw_silences *cfw_silences_new(void)
{
    struct cfw_silences *set = cfw_xcalloc(1, sizeof(*set));

    set->v = cfw_xcalloc(CFW_SILENCES_MAX, sizeof(*set->v));
    return set;
}

static void silence_clear(struct silence *s)
{
    for (size_t i = 0; i < s->nm; i++) {
        free(s->m[i].name);
        free(s->m[i].value);
        pcre2_code_free(s->m[i].re);
    }
    free(s->created_by);
    free(s->comment);
    memset(s, 0, sizeof(*s));
}

void cfw_silences_free(struct cfw_silences *set)
{
    if (set == NULL) {
        return;
    }
    for (size_t i = 0; i < set->n; i++) {
        silence_clear(&set->v[i]);
    }
    free(set->v);
    free(set);
}

/* A string member of at most CFW_SILENCE_TEXT_MAX bytes, or NULL (err set when present but bad). */
static const char *text_member(const json_t *o, const char *key, bool required, const char *where,
                               struct cfw_err *err)
{
    const json_t *v = json_object_get(o, key);

    if (v == NULL && !required) {
        return NULL;
    }
    if (!json_is_string(v) || (required && json_string_length(v) == 0)) {
        cfw_err_setc(err, EINVAL, "%s%s: %s", where, key,
                     required ? "required, a non-empty string" : "must be a string");
        return NULL;
    }
    if (json_string_length(v) > CFW_SILENCE_TEXT_MAX) {
        cfw_err_setc(err, EINVAL, "%s%s: longer than %u bytes", where, key, CFW_SILENCE_TEXT_MAX);
        return NULL;
    }
    return json_string_value(v);
}

static int parse_matcher(const json_t *o, size_t i, struct matcher *m, struct cfw_err *err)
{
    char where[48];
    const char *name, *value;

    snprintf(where, sizeof(where), "matchers[%zu].", i);
    if (!json_is_object(o)) {
        cfw_err_setc(err, EINVAL, "matchers[%zu]: must be an object {name, value}", i);
        return -1;
    }
    if ((name = text_member(o, "name", true, where, err)) == NULL ||
        (value = text_member(o, "value", false, where, err)) == NULL) {
        if (err->msg[0] == '\0') {
            cfw_err_setc(err, EINVAL, "%svalue: required, a string", where);
        }
        return -1;
    }
    m->regex =
        json_is_true(json_object_get(o, "regex")) || json_is_true(json_object_get(o, "isRegex"));
    m->negate =
        json_is_true(json_object_get(o, "negate")) || json_is_false(json_object_get(o, "isEqual"));
    if (m->regex) {
        int code;
        PCRE2_SIZE off;
        char *anchored = cfw_xasprintf("^(?:%s)$", value);

        m->re = pcre2_compile((PCRE2_SPTR)anchored, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off,
                              NULL);
        free(anchored);
        if (m->re == NULL) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(code, msg, sizeof(msg));
            cfw_err_setc(err, EINVAL, "%svalue: not a regular expression: %s", where, (char *)msg);
            return -1;
        }
    }
    m->name = cfw_xstrdup(name);
    m->value = cfw_xstrdup(value);
    return 0;
}

static void new_id(char out[33])
{
    uint8_t b[16];

    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
        uint64_t t = (uint64_t)cfw_now_wall_ms() ^ (uint64_t)cfw_now_mono_ms() << 20;
        memcpy(b, &t, sizeof(t));
        memcpy(b + 8, &t, sizeof(t));
    }
    cfw_hex_encode(b, sizeof(b), out);
    out[32] = '\0';
}

/* A time member in ms since the epoch; absent leaves *out. */
static int time_member(const json_t *o, const char *key, int64_t *out, struct cfw_err *err)
{
    const json_t *v = json_object_get(o, key);

    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        cfw_err_setc(err, EINVAL, "%s: must be a time in milliseconds since the epoch", key);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* Adds a silence; restoring accepts one that has ended already (an expired one kept listed). */
static const char *add(struct cfw_silences *set, const json_t *o, int64_t now_wall_ms,
                       bool restoring, struct cfw_err *err)
{
    struct silence s = {0};
    const json_t *ms = json_object_get(o, "matchers");
    const char *by, *comment, *dur, *id;
    size_t i;
    const json_t *v;

    if (!json_is_object(o)) {
        cfw_err_setc(err, EINVAL, "a silence is a JSON object");
        return NULL;
    }
    if (set->n >= CFW_SILENCES_MAX) {
        cfw_silences_gc(set, now_wall_ms);
        if (set->n >= CFW_SILENCES_MAX) {
            cfw_err_setc(err, ENOSPC, "%u silences already: expire some first", CFW_SILENCES_MAX);
            return NULL;
        }
    }
    if (!json_is_array(ms) || json_array_size(ms) == 0 ||
        json_array_size(ms) > CFW_SILENCE_MATCHERS_MAX) {
        cfw_err_setc(err, EINVAL, "matchers: required, a list of 1 to %u {name, value}",
                     CFW_SILENCE_MATCHERS_MAX);
        return NULL;
    }
    json_array_foreach (ms, i, v) {
        if (parse_matcher(v, i, &s.m[s.nm], err) != 0) {
            silence_clear(&s);
            return NULL;
        }
        s.nm++;
    }
    by = text_member(o, "created_by", true, "", err);
    comment = by != NULL ? text_member(o, "comment", true, "", err) : NULL;
    if (by == NULL || comment == NULL) {
        silence_clear(&s);
        return NULL;
    }
    s.created_by = cfw_secrets_scrub(by);
    s.comment = cfw_secrets_scrub(comment);
    s.starts_ms = now_wall_ms;
    s.created_ms = now_wall_ms;
    s.ends_ms = 0;
    if (time_member(o, "starts_at", &s.starts_ms, err) != 0 ||
        time_member(o, "ends_at", &s.ends_ms, err) != 0 ||
        time_member(o, "created_at", &s.created_ms, err) != 0) {
        silence_clear(&s);
        return NULL;
    }
    dur = json_string_value(json_object_get(o, "duration"));
    if (dur != NULL) {
        int64_t d;
        if (cfw_parse_duration_ms(dur, &d) != 0 || d <= 0) {
            cfw_err_setc(err, EINVAL, "duration: '%.32s' is not a duration (30m, 2h, 1d)", dur);
            silence_clear(&s);
            return NULL;
        }
        s.ends_ms = s.starts_ms + d;
    }
    if (restoring && s.ends_ms > 0 && s.ends_ms <= s.starts_ms) {
        s.starts_ms = s.ends_ms;
    } else if (s.ends_ms <= s.starts_ms) {
        cfw_err_setc(err, EINVAL, "ends_at or duration: required, after starts_at");
        silence_clear(&s);
        return NULL;
    }
    id = json_string_value(json_object_get(o, "id"));
    if (id != NULL && strlen(id) == 32 && strspn(id, "0123456789abcdef") == 32) {
        memcpy(s.id, id, 33);
    } else {
        new_id(s.id);
    }
    set->v[set->n++] = s;
    return set->v[set->n - 1].id;
}

const char *cfw_silences_add(struct cfw_silences *set, const json_t *o, int64_t now_wall_ms,
                             struct cfw_err *err)
{
    return add(set, o, now_wall_ms, false, err);
}

static json_t *one_json(const struct silence *s, int64_t now);

int cfw_silences_update(struct cfw_silences *set, const char *id, const json_t *o,
                        int64_t now_wall_ms, struct cfw_err *err)
{
    struct silence *old = NULL;
    json_t *merged, *dur;
    const char *nid;
    int64_t d;
    size_t i;

    for (i = 0; i < set->n && old == NULL; i++) {
        if (strcmp(set->v[i].id, id) == 0 && set->v[i].ends_ms > now_wall_ms) {
            old = &set->v[i];
        }
    }
    if (old == NULL) {
        cfw_err_setc(err, ENOENT, "no active or pending silence with that id");
        return -1;
    }
    if (!json_is_object(o)) {
        cfw_err_setc(err, EINVAL, "a silence is a JSON object");
        return -1;
    }
    /* what the change does not name stays; a duration counts from now (extend, shorten) */
    merged = one_json(old, now_wall_ms);
    json_object_update(merged, (json_t *)o);
    dur = json_object_get(o, "duration");
    if (dur != NULL) {
        if (!json_is_string(dur) || cfw_parse_duration_ms(json_string_value(dur), &d) != 0 ||
            d <= 0) {
            cfw_err_setc(err, EINVAL, "duration: not a duration (30m, 2h, 1d)");
            json_decref(merged);
            return -1;
        }
        json_object_del(merged, "duration");
        json_object_set_new(merged, "ends_at", json_integer((json_int_t)(now_wall_ms + d)));
    }
    json_object_set_new(merged, "id", json_string(id));
    json_object_set_new(merged, "created_at", json_integer((json_int_t)old->created_ms));
    nid = add(set, merged, now_wall_ms, false, err);
    json_decref(merged);
    if (nid == NULL) {
        return -1;
    }
    /* the new copy (last) takes the old one's place */
    old = &set->v[i - 1];
    silence_clear(old);
    *old = set->v[--set->n];
    memset(&set->v[set->n], 0, sizeof(set->v[set->n]));
    return 0;
}

int cfw_silences_expire(struct cfw_silences *set, const char *id, int64_t now_wall_ms)
{
    for (size_t i = 0; i < set->n; i++) {
        struct silence *s = &set->v[i];
        if (strcmp(s->id, id) == 0 && s->ends_ms > now_wall_ms) {
            s->ends_ms = now_wall_ms;
            if (s->starts_ms > now_wall_ms) {
                s->starts_ms = now_wall_ms;
            }
            return 0;
        }
    }
    return -1;
}

/* The value a matcher looks at: a few incident members by name, else a field ("" when absent). */
static const char *value_of(const struct cfw_incident *inc, const char *name)
{
    const char *v = NULL;

    if (strcmp(name, "rule") == 0) {
        v = inc->rule;
    } else if (strcmp(name, "key") == 0) {
        v = inc->key;
    } else if (strcmp(name, "severity") == 0) {
        v = cfw_severity_name(inc->severity);
    } else if (strcmp(name, "pack") == 0) {
        v = inc->pack;
    } else if (strcmp(name, "title") == 0) {
        v = inc->title;
    } else {
        v = cfw_fields_get(&inc->fields, name);
    }
    return v != NULL ? v : "";
}

static bool matcher_matches(const struct matcher *m, const struct cfw_incident *inc)
{
    const char *v = value_of(inc, m->name);
    bool hit;

    if (m->re != NULL) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(m->re, NULL);
        hit = pcre2_match(m->re, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL) >= 0;
        pcre2_match_data_free(md);
    } else {
        hit = strcmp(v, m->value) == 0;
    }
    return hit != m->negate;
}

static bool active(const struct silence *s, int64_t now)
{
    return s->starts_ms <= now && now < s->ends_ms;
}

const char *cfw_silences_match(const struct cfw_silences *set, const struct cfw_incident *inc,
                               int64_t now_wall_ms)
{
    for (size_t i = 0; set != NULL && i < set->n; i++) {
        const struct silence *s = &set->v[i];
        bool all = active(s, now_wall_ms);

        for (size_t k = 0; all && k < s->nm; k++) {
            all = matcher_matches(&s->m[k], inc);
        }
        if (all) {
            return s->id;
        }
    }
    return NULL;
}

size_t cfw_silences_active(const struct cfw_silences *set, int64_t now_wall_ms)
{
    size_t n = 0;

    for (size_t i = 0; i < set->n; i++) {
        n += active(&set->v[i], now_wall_ms);
    }
    return n;
}

static json_t *one_json(const struct silence *s, int64_t now)
{
    json_t *ms = json_array();
    const char *state = active(s, now) ? "active" : now < s->starts_ms ? "pending" : "expired";

    for (size_t k = 0; k < s->nm; k++) {
        json_array_append_new(ms, json_pack("{s:s, s:s, s:b, s:b}", "name", s->m[k].name, "value",
                                            s->m[k].value, "regex", s->m[k].regex, "negate",
                                            s->m[k].negate));
    }
    return json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:s, s:s}", "id", s->id, "state", state,
                     "matchers", ms, "starts_at", (json_int_t)s->starts_ms, "ends_at",
                     (json_int_t)s->ends_ms, "created_at", (json_int_t)s->created_ms, "created_by",
                     s->created_by, "comment", s->comment);
}

json_t *cfw_silences_json(const struct cfw_silences *set, int64_t now_wall_ms)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < set->n; i++) {
        json_array_append_new(arr, one_json(&set->v[i], now_wall_ms));
    }
    return arr;
}

json_t *cfw_silence_json(const struct cfw_silences *set, const char *id, int64_t now_wall_ms)
{
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->v[i].id, id) == 0) {
            return one_json(&set->v[i], now_wall_ms);
        }
    }
    return NULL;
}

size_t cfw_silences_restore(struct cfw_silences *set, const json_t *arr, int64_t now_wall_ms)
{
    size_t bad = 0, i;
    json_t *o;

    json_array_foreach (arr, i, o) {
        struct cfw_err err = {0};
        const char *id = json_string_value(json_object_get(o, "id"));

        /* a restored silence replaces one of the same id (a journal record after the snapshot) */
        for (size_t k = 0; id != NULL && k < set->n; k++) {
            if (strcmp(set->v[k].id, id) == 0) {
                silence_clear(&set->v[k]);
                set->v[k] = set->v[--set->n];
                memset(&set->v[set->n], 0, sizeof(set->v[set->n]));
                break;
            }
        }
        if (add(set, o, now_wall_ms, true, &err) == NULL) {
            bad++;
        }
    }
    return bad;
}

void cfw_silences_gc(struct cfw_silences *set, int64_t now_wall_ms)
{
    size_t w = 0;

    for (size_t i = 0; i < set->n; i++) {
        if (set->v[i].ends_ms + CFW_SILENCE_KEEP_EXPIRED_MS < now_wall_ms) {
            silence_clear(&set->v[i]);
            continue;
        }
        if (w != i) {
            set->v[w] = set->v[i];
            memset(&set->v[i], 0, sizeof(set->v[i]));
        }
        w++;
    }
    set->n = w;
}
