/* The --once report: text (grouped by severity), JSON, or GitHub Actions annotations. */
#ifndef CFWATCHD_REPORT_H
#define CFWATCHD_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "cfwatchd/incident.h"
#include "cfwatchd/pipeline.h"

enum cfw_report_format {
    CFW_REPORT_TEXT,
    CFW_REPORT_JSON,
    CFW_REPORT_GITHUB,
};

int cfw_report_format_parse(const char *s, enum cfw_report_format *out);

/* The input name of standard input: GitHub annotations of it name no file. */
#define CFW_REPORT_STDIN "<stdin>"

struct cfw_report_opts {
    enum cfw_report_format format;
    bool color;                     /* ANSI colour in text format */
    enum cfw_severity min_severity; /* incidents below it are left out of text/github */
};

/* Writes the report of every announced incident (open or resolved) and the stats. */
int cfw_report_write(FILE *fp, const struct cfw_report_opts *opts,
                     const struct cfw_incidents *set, const struct cfw_pipeline_stats *stats);

/* One incident as the JSON object of the report (new reference). */
json_t *cfw_report_incident_json(const struct cfw_incident *inc);

/*
 * Appends s to b escaped as GitHub workflow-command data (%, CR, LF) or, with prop, as a
 * property value (also : and ,). Shared with --check-bundle's github format.
 */
void cfw_report_github_escape(struct cfw_buf *b, const char *s, bool prop);

#endif
