/* Deployments per script and the deployment context of incidents. */
#include "cfwatchd/deploys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/secrets.h"

/* One script's deployments, oldest first, at most CFW_DEPLOYS_PER_SCRIPT. */
struct script_deploys {
    struct script_deploys *next;
    char *script;
    struct cfw_deployment v[CFW_DEPLOYS_PER_SCRIPT];
    size_t n;
};

struct cfw_deploys {
    struct script_deploys *head;
};

struct cfw_deploys *cfw_deploys_new(void)
{
    return cfw_xcalloc(1, sizeof(struct cfw_deploys));
}

static void dep_clear(struct cfw_deployment *d)
{
    free(d->id);
    free(d->script);
    free(d->version);
    free(d->author);
    free(d->source);
    free(d->message);
    memset(d, 0, sizeof(*d));
}

void cfw_deploys_free(struct cfw_deploys *d)
{
    if (d == NULL) {
        return;
    }
    while (d->head != NULL) {
        struct script_deploys *s = d->head;
        d->head = s->next;
        for (size_t i = 0; i < s->n; i++) {
            dep_clear(&s->v[i]);
        }
        free(s->script);
        free(s);
    }
    free(d);
}

static struct script_deploys *find(const struct cfw_deploys *d, const char *script)
{
    for (struct script_deploys *s = d->head; s != NULL; s = s->next) {
        if (strcmp(s->script, script) == 0) {
            return s;
        }
    }
    return NULL;
}

/* A deployment's text comes from the API (author, message): kept scrubbed of secrets. */
static char *dup_or_empty(const char *s)
{
    return cfw_secrets_scrub(s != NULL ? s : "");
}

int cfw_deploys_add(struct cfw_deploys *d, const struct cfw_deployment *dep)
{
    struct script_deploys *s;
    size_t pos;

    if (dep->id == NULL || dep->script == NULL) {
        return 0;
    }
    s = find(d, dep->script);
    if (s == NULL) {
        s = cfw_xcalloc(1, sizeof(*s));
        s->script = cfw_xstrdup(dep->script);
        s->next = d->head;
        d->head = s;
    }
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].id, dep->id) == 0) {
            return 0;
        }
    }
    if (s->n == CFW_DEPLOYS_PER_SCRIPT) {
        dep_clear(&s->v[0]);
        memmove(&s->v[0], &s->v[1], (s->n - 1) * sizeof(s->v[0]));
        s->n--;
        memset(&s->v[s->n], 0, sizeof(s->v[0]));
    }
    /* keep creation order even when the API lists newest first */
    for (pos = s->n; pos > 0 && s->v[pos - 1].created_wall_ms > dep->created_wall_ms; pos--) {
    }
    memmove(&s->v[pos + 1], &s->v[pos], (s->n - pos) * sizeof(s->v[0]));
    s->v[pos].id = cfw_xstrdup(dep->id);
    s->v[pos].script = cfw_xstrdup(dep->script);
    s->v[pos].version = dup_or_empty(dep->version);
    s->v[pos].author = dup_or_empty(dep->author);
    s->v[pos].source = dup_or_empty(dep->source);
    s->v[pos].message = dup_or_empty(dep->message);
    s->v[pos].created_wall_ms = dep->created_wall_ms;
    s->n++;
    return 1;
}

const struct cfw_deployment *cfw_deploys_before(const struct cfw_deploys *d, const char *script,
                                                int64_t wall_ms)
{
    struct script_deploys *s = script != NULL ? find(d, script) : NULL;

    for (size_t i = s != NULL ? s->n : 0; i > 0; i--) {
        if (s->v[i - 1].created_wall_ms <= wall_ms) {
            return &s->v[i - 1];
        }
    }
    return NULL;
}

const struct cfw_deployment *cfw_deploys_between(const struct cfw_deploys *d, const char *script,
                                                 int64_t after_ms, int64_t until_ms)
{
    struct script_deploys *s = script != NULL ? find(d, script) : NULL;

    for (size_t i = 0; s != NULL && i < s->n; i++) {
        if (s->v[i].created_wall_ms > after_ms && s->v[i].created_wall_ms <= until_ms) {
            return &s->v[i];
        }
    }
    return NULL;
}

const struct cfw_deployment *cfw_deploys_latest(const struct cfw_deploys *d, const char *script)
{
    struct script_deploys *s = script != NULL ? find(d, script) : NULL;

    return s != NULL && s->n > 0 ? &s->v[s->n - 1] : NULL;
}

/* "3 min", "2 h", "45 s": how long after a deployment something happened. */
static void span(int64_t ms, char *out, size_t len)
{
    int64_t s = ms / 1000;

    if (s < 0) {
        s = 0;
    }
    if (s < 120) {
        snprintf(out, len, "%lld s", (long long)s);
    } else if (s < 2 * 3600) {
        snprintf(out, len, "%lld min", (long long)(s / 60));
    } else if (s < 2 * 86400) {
        snprintf(out, len, "%lld h", (long long)(s / 3600));
    } else {
        snprintf(out, len, "%lld days", (long long)(s / 86400));
    }
}

static char *describe(const struct cfw_deployment *dep)
{
    return cfw_xasprintf("%s (version %s%s%s%s%s)", dep->id,
                         dep->version[0] != '\0' ? dep->version : "?",
                         dep->author[0] != '\0' ? ", by " : "", dep->author,
                         dep->message[0] != '\0' ? ": " : "", dep->message);
}

static void set_dep_fields(struct cfw_incident *inc, const struct cfw_deployment *dep,
                           const char *note)
{
    cfw_fields_set(&inc->fields, "deployment", dep->id);
    cfw_fields_set(&inc->fields, "deployment_version", dep->version);
    cfw_fields_set(&inc->fields, "deployment_author", dep->author);
    cfw_fields_set(&inc->fields, "deployment_message", dep->message);
    cfw_fields_set(&inc->fields, "deployment_note", note);
}

void cfw_deploys_annotate(const struct cfw_deploys *d, struct cfw_incident *inc,
                          enum cfw_transition t, int64_t now_wall_ms)
{
    const char *script = cfw_fields_get(&inc->fields, "script");
    const struct cfw_deployment *dep;
    char when[32];
    char *what, *note;

    if (script == NULL || script[0] == '\0') {
        return;
    }
    if (t == CFW_TRANSITION_RESOLVE) {
        dep = cfw_deploys_between(d, script, inc->last.wall_ms, now_wall_ms);
        if (dep == NULL) {
            return;
        }
        what = describe(dep);
        note = cfw_xasprintf("fixed by deployment %s", what);
    } else if (t == CFW_TRANSITION_OPEN && inc->prev_resolved_wall_ms > 0 &&
               (dep = cfw_deploys_between(d, script, inc->prev_resolved_wall_ms,
                                          inc->first.wall_ms)) != NULL) {
        what = describe(dep);
        note = cfw_xasprintf("regression in deployment %s", what);
    } else if (t == CFW_TRANSITION_OPEN &&
               (dep = cfw_deploys_before(d, script, inc->first.wall_ms)) != NULL) {
        what = describe(dep);
        span(inc->first.wall_ms - dep->created_wall_ms, when, sizeof(when));
        note = cfw_xasprintf("first seen %s after deployment %s", when, what);
    } else {
        return;
    }
    set_dep_fields(inc, dep, note);
    free(what);
    free(note);
}

json_t *cfw_deploys_save(const struct cfw_deploys *d)
{
    json_t *o = json_object();

    for (struct script_deploys *s = d->head; s != NULL; s = s->next) {
        json_t *arr = json_array();
        for (size_t i = 0; i < s->n; i++) {
            const struct cfw_deployment *x = &s->v[i];
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", x->id,
                                                 "version", x->version, "author", x->author,
                                                 "source", x->source, "message", x->message,
                                                 "created_wall_ms",
                                                 (json_int_t)x->created_wall_ms));
        }
        json_object_set_new(o, s->script, arr);
    }
    return o;
}

void cfw_deploys_restore(struct cfw_deploys *d, const json_t *o)
{
    const char *script;
    json_t *arr;

    if (!json_is_object(o)) {
        return;
    }
    json_object_foreach((json_t *)o, script, arr)
    {
        size_t i;
        json_t *x;
        json_array_foreach(arr, i, x)
        {
            struct cfw_deployment dep = {0};
            json_int_t created = 0;
            if (json_unpack(x, "{s:s, s:s, s:s, s:s, s:s, s:I}", "id", &dep.id, "version",
                            &dep.version, "author", &dep.author, "source", &dep.source,
                            "message", &dep.message, "created_wall_ms", &created) != 0) {
                continue;
            }
            dep.script = (char *)script;
            dep.created_wall_ms = created;
            cfw_deploys_add(d, &dep);
        }
    }
}
