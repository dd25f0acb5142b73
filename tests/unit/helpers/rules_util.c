/* Test helper for rulesets: see rules_util.h. */
#include "rules_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

struct cfw_ruleset *rules_from_yaml(const char *name, const char *yaml, const char *pack,
                                    struct cfw_diag *diag)
{
    struct cfw_doc *doc = cfw_yaml_load_string(name, yaml, strlen(yaml), diag);
    struct cfw_ruleset *rs = cfw_ruleset_new();

    assert_non_null(doc);
    cfw_ruleset_add_node(rs, cfw_node_get(doc->root, "rules"), "rules", pack, diag);
    cfw_doc_free(doc);
    return rs;
}

struct cfw_ruleset *rules_from_yaml_ok(const char *name, const char *yaml, const char *pack)
{
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = rules_from_yaml(name, yaml, pack, &diag);

    if (diag.n > 0) {
        cfw_diag_print(&diag, stderr);
    }
    assert_int_equal(diag.n, 0);
    cfw_diag_free(&diag);
    return rs;
}

void observe_cb(const struct cfw_match *m, const struct cfw_event *ev, void *arg)
{
    const struct observe_to *to = arg;

    cfw_incidents_observe(to->set, m, ev, to->mono_ms, to->wall_ms);
}
