/* Test helpers for configuration diagnostics: see diag_check.h. */
#include "diag_check.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

bool diag_has(const struct cfw_diag *d, const char *needle)
{
    for (size_t i = 0; i < d->n; i++) {
        if (strstr(d->msgs[i], needle) != NULL) {
            return true;
        }
    }
    return false;
}

void diag_dump(const struct cfw_diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        print_message("diag[%zu]: %s\n", i, d->msgs[i]);
    }
}

void assert_diag_has_all(const struct cfw_diag *d, const char *const *needles)
{
    for (size_t i = 0; needles[i] != NULL; i++) {
        if (!diag_has(d, needles[i])) {
            diag_dump(d);
            fail_msg("no message holds \"%s\"", needles[i]);
        }
    }
}
