/* Test helpers for JSON documents: see json_check.h. */
#include "json_check.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

const char *json_str_at(json_t *o, const char *path)
{
    json_t *cur = o;
    const char *p = path;

    while (cur != NULL) {
        size_t n = strcspn(p, ".");
        char key[64];

        snprintf(key, sizeof(key), "%.*s", (int)n, p);
        cur = json_object_get(cur, key);
        if (p[n] == '\0') {
            break;
        }
        p += n + 1;
    }
    return json_string_value(cur);
}

void assert_json_strs(json_t *o, const struct json_want *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *got = json_str_at(o, w[i].path);

        if (got == NULL || strcmp(got, w[i].want) != 0) {
            fail_msg("%s: got %s%s%s, want \"%s\"", w[i].path, got != NULL ? "\"" : "",
                     got != NULL ? got : "nothing", got != NULL ? "\"" : "", w[i].want);
        }
    }
}
