/*
 * The /metrics page: a writer that collects families (Prometheus text format 0.0.4) from every
 * module that has something to count, and writes each family as the format wants it: its HELP
 * and TYPE lines, then all its samples together, whatever order they were added in. Families
 * come out in the order they were first declared; a family declared without samples is written
 * with its HELP and TYPE lines only.
 *
 * Each module adds its own families (cfw_pipeline_metrics, cfw_incidents_metrics,
 * cfw_inputs_metrics, cfw_notifier_metrics with cfw_outbox_metrics, cfw_listener_metrics); the
 * daemon's GET /metrics calls them in the page's order.
 *
 *   struct cfw_metrics *m = cfw_metrics_new();
 *   struct cfw_metrics_family *f = cfw_metrics_family(m, "cfwatchd_source_up", "gauge", "...");
 *   cfw_metrics_sample(f, CFW_LABELS("source", name), "%s", "1");
 *   text = cfw_metrics_text(m, &len);
 */
#ifndef CFWATCHD_METRICS_H
#define CFWATCHD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/common.h"

struct cfw_metrics;
struct cfw_metrics_family;

/* Labels of a sample: name, value, name, value, ..., NULL (values are escaped when written). */
#define CFW_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Creates an empty page. */
struct cfw_metrics *cfw_metrics_new(void);
/* Frees a page (NULL accepted). */
void cfw_metrics_free(struct cfw_metrics *m);
/*
 * The family called name, declared with type (counter, gauge) and help on its first call;
 * later calls with the same name return it (their type and help are not used).
 */
struct cfw_metrics_family *cfw_metrics_family(struct cfw_metrics *m, const char *name,
                                              const char *type, const char *help);
/* Adds a sample to a family: labels (CFW_LABELS, or NULL for none) and the value as text. */
void cfw_metrics_sample(struct cfw_metrics_family *f, const char *const *labels, const char *fmt,
                        ...) CFW_PRINTF(3, 4);
/* Adds a sample whose value is a count. */
void cfw_metrics_u64(struct cfw_metrics_family *f, const char *const *labels, uint64_t value);
/* A family of one sample without labels. */
struct cfw_metric {
    const char *name;
    const char *type;
    const char *help;
    uint64_t value;
};

/* Declares n families of one sample without labels and adds their samples. */
void cfw_metrics_add(struct cfw_metrics *m, const struct cfw_metric *v, size_t n);
/* Returns the page as text (owned by m, valid until the next change); *len its length. */
const char *cfw_metrics_text(struct cfw_metrics *m, size_t *len);

#endif
