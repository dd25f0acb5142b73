/* Test helper: looks into the messages a configuration parse collected in a struct cfw_diag. */
#ifndef CFW_TEST_DIAG_CHECK_H
#define CFW_TEST_DIAG_CHECK_H

#include <stdbool.h>

#include "cfwatchd/yaml.h"

/* Whether any message in d contains needle. */
bool diag_has(const struct cfw_diag *d, const char *needle);

#endif
