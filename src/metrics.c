/* The /metrics writer: families collected, then written grouped; see metrics.h. */
#include "cfwatchd/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cfw_metrics_family {
    char *name;
    char *type;
    char *help;
    struct cfw_buf samples; /* "name{labels} value\n" lines */
};

struct cfw_metrics {
    struct cfw_metrics_family **v;
    size_t n;
    struct cfw_buf text;
};

struct cfw_metrics *cfw_metrics_new(void)
{
    struct cfw_metrics *m = cfw_xcalloc(1, sizeof(*m));

    cfw_buf_init(&m->text, CFW_BUF_MAX_BUILT);
    return m;
}

void cfw_metrics_free(struct cfw_metrics *m)
{
    if (m == NULL) {
        return;
    }
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i]->name);
        free(m->v[i]->type);
        free(m->v[i]->help);
        cfw_buf_free(&m->v[i]->samples);
        free(m->v[i]);
    }
    free(m->v);
    cfw_buf_free(&m->text);
    free(m);
}

struct cfw_metrics_family *cfw_metrics_family(struct cfw_metrics *m, const char *name,
                                              const char *type, const char *help)
{
    struct cfw_metrics_family *f;

    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i]->name, name) == 0) {
            return m->v[i];
        }
    }
    f = cfw_xcalloc(1, sizeof(*f));
    f->name = cfw_xstrdup(name);
    f->type = cfw_xstrdup(type);
    f->help = cfw_xstrdup(help);
    cfw_buf_init(&f->samples, CFW_BUF_MAX_BUILT);
    m->v = cfw_xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
    m->v[m->n++] = f;
    return f;
}

/* Prometheus label values: backslash, quote and newline escaped. */
static void label_value(struct cfw_buf *b, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"') {
            cfw_buf_putc(b, '\\');
            cfw_buf_putc(b, *v);
        } else if (*v == '\n') {
            cfw_buf_puts(b, "\\n");
        } else {
            cfw_buf_putc(b, *v);
        }
    }
}

void cfw_metrics_sample(struct cfw_metrics_family *f, const char *const *labels, const char *fmt,
                        ...)
{
    struct cfw_buf *b = &f->samples;
    char value[64];
    va_list ap;

    cfw_buf_puts(b, f->name);
    for (size_t i = 0; labels != NULL && labels[i] != NULL && labels[i + 1] != NULL; i += 2) {
        cfw_buf_printf(b, "%s%s=\"", i == 0 ? "{" : ",", labels[i]);
        label_value(b, labels[i + 1]);
        cfw_buf_putc(b, '"');
    }
    if (labels != NULL && labels[0] != NULL) {
        cfw_buf_putc(b, '}');
    }
    va_start(ap, fmt);
    vsnprintf(value, sizeof(value), fmt, ap);
    va_end(ap);
    cfw_buf_printf(b, " %s\n", value);
}

void cfw_metrics_u64(struct cfw_metrics_family *f, const char *const *labels, uint64_t value)
{
    cfw_metrics_sample(f, labels, "%llu", (unsigned long long)value);
}

void cfw_metrics_add(struct cfw_metrics *m, const struct cfw_metric *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cfw_metrics_u64(cfw_metrics_family(m, v[i].name, v[i].type, v[i].help), NULL, v[i].value);
    }
}

const char *cfw_metrics_text(struct cfw_metrics *m, size_t *len)
{
    cfw_buf_reset(&m->text);
    for (size_t i = 0; i < m->n; i++) {
        const struct cfw_metrics_family *f = m->v[i];

        cfw_buf_printf(&m->text, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                       f->type);
        if (f->samples.len > 0) {
            cfw_buf_append(&m->text, f->samples.data, f->samples.len);
        }
    }
    *len = m->text.len;
    return m->text.data != NULL ? m->text.data : "";
}
