/* Test helpers: look into the messages a configuration parse collected in a struct cfw_diag. */
#ifndef CFW_TEST_DIAG_CHECK_H
#define CFW_TEST_DIAG_CHECK_H

#include <stdbool.h>

#include "cfwatchd/yaml.h"

/* Whether any message in d contains needle. */
bool diag_has(const struct cfw_diag *d, const char *needle);
/* Prints every message of d (cmocka's print_message), numbered. */
void diag_dump(const struct cfw_diag *d);
/* Asserts that each needle of the NULL-ended list is in some message of d (fails naming it). */
void assert_diag_has_all(const struct cfw_diag *d, const char *const *needles);
/* assert_diag_has_all() of the strings given as arguments. */
#define ASSERT_DIAG_HAS_ALL(d, ...)                                                                \
    assert_diag_has_all((d), (const char *const[]){__VA_ARGS__, NULL})

#endif
