/*
 * Drives the real notifier (router, outbox with fsync, libcurl multi on libevent) against a
 * loopback receiver for bench/notify-bench.py.
 *   notify_bench PORT STATE_DIR latency N      one notification at a time; prints
 *                                               "<n> <submit wall ms>" per notification
 *   notify_bench PORT STATE_DIR throughput N   N notifications at once; prints
 *                                               "elapsed_ms <ms>" after the outbox drained
 */
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfwatchd/common.h"
#include "cfwatchd/log.h"
#include "cfwatchd/notify.h"
#include "cfwatchd/yaml.h"

static void incident(struct cfw_incident *inc, int i, char *key, size_t keylen)
{
    memset(inc, 0, sizeof(*inc));
    snprintf(key, keylen, "py-src-import/bench-%d/src", i);
    inc->key = key;
    inc->rule = (char *)"py-src-import";
    inc->pack = (char *)"python-workers";
    inc->severity = CFW_SEV_CRITICAL;
    inc->title = (char *)"Python Worker imports src";
    inc->hint = (char *)"Import relative to main's directory.";
    inc->sample = (char *)"ModuleNotFoundError: No module named 'src'";
    inc->count = 1;
    inc->first.wall_ms = inc->last.wall_ms = inc->opened_wall_ms = cfw_now_wall_ms();
    inc->state = CFW_INCIDENT_OPEN;
    cfw_fields_setn(&inc->fields, "script", key + 14, strlen(key + 14) - 4);
}

int main(int argc, char **argv)
{
    struct event_base *base;
    struct cfw_diag d = {0};
    struct cfw_doc *doc;
    struct cfw_notifier *n;
    char *yaml;
    int count;
    char key[64];

    if (argc != 5) {
        fprintf(stderr, "usage: notify_bench PORT STATE_DIR latency|throughput N\n");
        return 2;
    }
    count = (int)strtol(argv[4], NULL, 10);
    cfw_log_init(CFW_LOG_WARNING);
    yaml = cfw_xasprintf("sinks:\n"
                         "  - name: bench\n"
                         "    type: webhook\n"
                         "    url: 'http://127.0.0.1:%s/bench'\n"
                         "    secret: bench-secret\n"
                         "    rate_limit: {burst: 0, per: 1s}\n",
                         argv[1]);
    doc = cfw_yaml_load_string("bench.yaml", yaml, strlen(yaml), &d);
    base = event_base_new();
    n = doc != NULL ? cfw_notifier_new(base, cfw_node_get(doc->root, "sinks"), argv[2], &d)
                    : NULL;
    if (n == NULL) {
        cfw_diag_print(&d, stderr);
        return 2;
    }
    if (strcmp(argv[3], "latency") == 0) {
        for (int i = 0; i < count; i++) {
            struct cfw_incident inc;
            incident(&inc, i, key, sizeof(key));
            printf("%d %" PRId64 "\n", i, cfw_now_wall_ms());
            cfw_notifier_submit(n, &inc, CFW_TRANSITION_OPEN);
            cfw_fields_clear(&inc.fields);
            if (cfw_notifier_drain(n, cfw_now_mono_ms() + 10000) != 0) {
                return 1;
            }
            usleep(5000);
        }
    } else {
        int64_t t0 = cfw_now_mono_ms();
        for (int i = 0; i < count; i++) {
            struct cfw_incident inc;
            incident(&inc, i, key, sizeof(key));
            cfw_notifier_submit(n, &inc, CFW_TRANSITION_OPEN);
            cfw_fields_clear(&inc.fields);
        }
        printf("submit_ms %" PRId64 "\n", cfw_now_mono_ms() - t0);
        if (cfw_notifier_drain(n, cfw_now_mono_ms() + 120000) != 0) {
            return 1;
        }
        printf("elapsed_ms %" PRId64 "\n", cfw_now_mono_ms() - t0);
    }
    cfw_notifier_free(n);
    event_base_free(base);
    cfw_doc_free(doc);
    cfw_diag_free(&d);
    free(yaml);
    return 0;
}
