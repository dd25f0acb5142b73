/*
 * stdout: one line per notification, as text or as JSON (the webhook schema), so the daemon
 * can run without any receiver. Written at submit time; no outbox involved.
 */
#include "sink_impl.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/log.h"

struct out_priv {
    bool json;
};

static void out_free(struct cfw_sink *s)
{
    free(s->priv);
    s->priv = NULL;
}

static int out_parse(struct cfw_sink *s, const struct cfw_node *map, const char *path,
                     struct cfw_diag *diag)
{
    (void)map;
    (void)path;
    (void)diag;
    s->priv = cfw_xcalloc(1, sizeof(struct out_priv));
    return 0;
}

static int read_format(const struct cfw_schema_key *k, const struct cfw_node *map, const char *path,
                       void *conf, struct cfw_diag *diag)
{
    struct out_priv *p = ((struct cfw_sink *)conf)->priv;
    const char *fmt = NULL;
    int rc = cfw_node_str(map, k->name, path, &fmt, diag);

    if (rc != 1 || strcmp(fmt, "text") == 0) {
        return rc;
    }
    if (strcmp(fmt, "json") == 0) {
        p->json = true;
        return 1;
    }
    cfw_diag_add(diag, cfw_node_get(map, k->name), path,
                 "unknown format '%.20s' (valid: text, json)", fmt);
    return -1;
}

static const struct cfw_schema_key out_keys[] = {
    {.name = "format", .read = read_format, .help = "text (default) or json"},
    {0},
};

static const struct cfw_schema out_schema = {out_keys, NULL};

static void text_line(const struct cfw_incident *inc, const char *event, FILE *fp)
{
    char title[512];
    char key[512];
    const char *t = inc->title != NULL ? inc->title : "";
    const char *k = inc->key != NULL ? inc->key : "";

    cfw_log_escape(t, strlen(t), 300, title, sizeof(title));
    cfw_log_escape(k, strlen(k), 300, key, sizeof(key));
    fprintf(fp, "cfwatchd: %s [%s] %s (rule=%s script=%s count=%" PRIu64 " key=%s)\n", event,
            cfw_severity_name(inc->severity), title, inc->rule != NULL ? inc->rule : "",
            cfw_sink_field(inc, "script"), inc->count, key);
}

static void out_write(const struct cfw_sink *s, const struct cfw_notification *n, FILE *fp)
{
    const struct out_priv *p = s->priv;

    if (p->json) {
        json_t *o = json_object();
        char *text;
        char ts[40];
        cfw_sink_time(n->now_wall_ms, ts, sizeof(ts));
        json_object_set_new(o, "event", json_string(cfw_sink_event_name(n)));
        json_object_set_new(o, "time", json_string(ts));
        if (n->kind == CFW_NOTIFY_DIGEST) {
            json_t *items = json_array();
            for (size_t i = 0; i < n->n_items; i++) {
                json_array_append_new(items, json_pack("{s:s, s:o}", "event",
                                                       cfw_transition_name(n->items[i].transition),
                                                       "incident",
                                                       cfw_sink_incident_json(&n->items[i].inc)));
            }
            json_object_set_new(o, "items", items);
        } else {
            json_object_set_new(o, "incident", cfw_sink_incident_json(n->inc));
        }
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (text != NULL) {
            fprintf(fp, "%s\n", text);
            free(text);
        }
    } else if (n->kind == CFW_NOTIFY_DIGEST) {
        for (size_t i = 0; i < n->n_items; i++) {
            text_line(&n->items[i].inc, cfw_transition_name(n->items[i].transition), fp);
        }
    } else {
        text_line(n->inc, cfw_sink_event_name(n), fp);
    }
    fflush(fp);
}

const struct cfw_sink_ops cfw_sink_stdout_ops = {
    .type = "stdout",
    .schema = &out_schema,
    .burst = 0,
    .per_ms = 1000,
    .in_flight = 1,
    .digest_resolves = true,
    .local = true,
    .parse = out_parse,
    .write = out_write,
    .free_priv = out_free,
};
