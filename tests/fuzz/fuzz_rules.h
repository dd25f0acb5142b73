/*
 * Rules for the fuzz targets that run the pipeline (header-only, like fuzz_util.h): the
 * built-in packs and a target's own rules, loaded once in LLVMFuzzerInitialize.
 */
#ifndef CFW_FUZZ_RULES_H
#define CFW_FUZZ_RULES_H

#include <stdbool.h>
#include <string.h>

#include "cfwatchd/rules.h"
#include "cfwatchd/yaml.h"
#include "fuzz_util.h"

/*
 * A rule set of the built-in packs and the rules of yaml (a sequence, named name in messages),
 * the target's rules first when custom_first (they then win over the packs), scanned as scan.
 * Any problem aborts: a target's fixed rules must load.
 */
static inline struct cfw_ruleset *fuzz_rules_load(const char *name, const char *yaml,
                                                  bool custom_first, enum cfw_scan scan)
{
    const char *const *packs = cfw_builtin_packs();
    struct cfw_diag diag = {0};
    struct cfw_ruleset *rs = cfw_ruleset_new();
    struct cfw_doc *doc = cfw_yaml_load_string(name, yaml, strlen(yaml), &diag);

    FUZZ_CHECK(doc != NULL && doc->root != NULL);
    if (custom_first) {
        cfw_ruleset_add_node(rs, doc->root, "rules", "fuzz", &diag);
    }
    for (size_t i = 0; packs[i] != NULL; i++) {
        cfw_ruleset_add_builtin(rs, packs[i], &diag);
    }
    if (!custom_first) {
        cfw_ruleset_add_node(rs, doc->root, "rules", "fuzz", &diag);
    }
    cfw_diag_print(&diag, stderr);
    FUZZ_CHECK(diag.n == 0);
    cfw_doc_free(doc);
    cfw_ruleset_set_scan(rs, scan);
    return rs;
}

#endif
