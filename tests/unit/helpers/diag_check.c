/* Test helper for configuration diagnostics: see diag_check.h. */
#include "diag_check.h"

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
