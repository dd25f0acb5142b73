/*
 * Fuzz target: bytes as a YAML configuration. Parsed with cfw_yaml_load_string; the rules found
 * (a top-level `rules:` list as in a rules file, `rules.custom` as in the configuration, or a
 * top-level list) go through the rule compile path (cfw_ruleset_add_node), and the compiled rules
 * are matched against the input's own text with their title and hint rendered; `sinks:` goes
 * through cfw_sinks_parse and each parsed sink builds a payload for a fixed incident (it must be
 * JSON); `sources:` entries through the logpush and source parsers; `outbox:` through the
 * notifier's option parser. A configuration with sections of cfw_config_load's own (and one input
 * in eight) is also loaded as a file (a memfd) by cfw_config_load, which checks every top-level
 * section. Checked: a document or diagnostics (never neither), positions >= 1, diagnostics that
 * are one line each.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <jansson.h>

#include "cfwatchd/config.h"
#include "cfwatchd/log.h"
#include "cfwatchd/logpush.h"
#include "cfwatchd/notify.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/sink.h"
#include "cfwatchd/source.h"
#include "cfwatchd/yaml.h"
#include "fuzz_util.h"

/* Bytes of the input matched against the compiled rules. */
#define MATCH_TEXT_MAX 4096u
/* Nodes visited by the position check (a deep or wide tree is not walked whole). */
#define WALK_MAX 20000u

static int memfd = -1;
static char memfd_path[64];

static void walk(const struct cfw_node *n, size_t *budget)
{
    if (n == NULL || *budget == 0) {
        return;
    }
    (*budget)--;
    FUZZ_CHECK(n->line >= 1 && n->col >= 1);
    if (n->type == CFW_NODE_SCALAR) {
        FUZZ_CHECK(n->value != NULL);
        return;
    }
    FUZZ_CHECK(n->type == CFW_NODE_MAP || n->type == CFW_NODE_SEQ);
    for (size_t i = 0; i < n->n; i++) {
        if (n->type == CFW_NODE_MAP) {
            FUZZ_CHECK(n->keys[i] != NULL);
        }
        walk(n->items[i], budget);
    }
}

static void check_diag(const struct cfw_diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        FUZZ_CHECK(d->msgs[i] != NULL && d->msgs[i][0] != '\0');
    }
}

static void on_match(const struct cfw_match *m, const struct cfw_event *ev, void *arg)
{
    char *title = cfw_template_render(cfw_rule_title(m->rule), &m->fields);
    char *hint = cfw_template_render(cfw_rule_hint(m->rule), &m->fields);

    (void)ev;
    (void)arg;
    FUZZ_CHECK(title != NULL && hint != NULL);
    free(title);
    free(hint);
}

static void match_rules(struct cfw_ruleset *rs, const char *text, size_t len)
{
    struct cfw_event ev = {0};
    char *copy = cfw_xstrndup(text, len < MATCH_TEXT_MAX ? len : MATCH_TEXT_MAX);

    ev.text = copy;
    ev.len = strlen(copy);
    ev.input = "fuzz";
    ev.line = 1;
    ev.line_end = 1;
    cfw_fields_set(&ev.fields, "kind", "text");
    cfw_fields_set(&ev.fields, "script", "fuzz-worker");
    cfw_fields_set(&ev.fields, "startup_ms", "1200");
    cfw_ruleset_match(rs, &ev, on_match, NULL);
    cfw_fields_clear(&ev.fields);
    free(copy);
}

static void rules_section(const struct cfw_node *root, const char *text, size_t len)
{
    struct cfw_ruleset *rs = cfw_ruleset_new();
    struct cfw_diag diag = {0};
    const struct cfw_node *r = root->type == CFW_NODE_MAP ? cfw_node_get(root, "rules") : root;
    const struct cfw_node *custom = r != NULL ? cfw_node_get(r, "custom") : NULL;
    int problems = 0;

    if (r != NULL && r->type == CFW_NODE_SEQ) {
        problems += cfw_ruleset_add_node(rs, r, "rules", "fuzz", &diag);
    }
    if (custom != NULL) {
        problems += cfw_ruleset_add_node(rs, custom, "rules.custom", "custom", &diag);
    }
    FUZZ_CHECK((size_t)problems <= diag.n);
    check_diag(&diag);
    for (size_t i = 0; i < cfw_ruleset_count(rs); i++) {
        const struct cfw_rule *rule = cfw_ruleset_rule(rs, i);

        FUZZ_CHECK(cfw_ruleset_find(rs, cfw_rule_id(rule)) == rule);
        FUZZ_CHECK(cfw_rule_title(rule) != NULL && cfw_rule_hint(rule) != NULL);
    }
    if (cfw_ruleset_count(rs) > 0) {
        match_rules(rs, text, len);
    }
    cfw_diag_free(&diag);
    cfw_ruleset_free(rs);
}

static void sinks_section(const struct cfw_node *root)
{
    const struct cfw_node *seq = cfw_node_get(root, "sinks");
    struct cfw_diag diag = {0};
    struct cfw_sinks *set;
    struct cfw_incident inc = {0};
    struct cfw_notification n = {0};

    if (seq == NULL) {
        return;
    }
    set = cfw_sinks_parse(seq, "sinks", &diag);
    FUZZ_CHECK((set == NULL) == (diag.n > 0));
    check_diag(&diag);
    cfw_diag_free(&diag);
    if (set == NULL) {
        return;
    }
    inc.key = "py-src-import/api/src";
    inc.rule = "py-src-import";
    inc.pack = "python-workers";
    inc.severity = CFW_SEV_CRITICAL;
    inc.title = "Python Worker api imports src";
    inc.hint = "drop the src. prefix";
    inc.sample = "ModuleNotFoundError: No module named 'src'";
    inc.count = 2;
    inc.state = CFW_INCIDENT_OPEN;
    inc.opened_wall_ms = 1786867647480LL;
    cfw_fields_set(&inc.fields, "script", "api");
    n.kind = CFW_NOTIFY_TRANSITION;
    n.transition = CFW_TRANSITION_OPEN;
    n.inc = &inc;
    n.now_wall_ms = inc.opened_wall_ms + 1000;
    cfw_sinks_set_context(set, "fuzz-host", "http://fuzz-host:9187/incidents");
    for (size_t i = 0; i < cfw_sinks_count(set); i++) {
        struct cfw_sink *s = cfw_sinks_at(set, i);
        size_t len = 0;
        char *body;

        FUZZ_CHECK(cfw_sinks_find(set, cfw_sink_name(s)) == s);
        for (size_t e = 0; e < cfw_sink_endpoints(s); e++) {
            FUZZ_CHECK(cfw_sink_display_url(s, e) != NULL);
        }
        if (cfw_sink_is_local(s)) {
            continue;
        }
        body = cfw_sink_build(s, &n, &len);
        FUZZ_CHECK(body != NULL);
        {
            json_t *j = json_loadb(body, len, 0, NULL);
            FUZZ_CHECK(j != NULL);
            json_decref(j);
        }
        free(body);
    }
    cfw_fields_clear(&inc.fields);
    cfw_sinks_free(set);
}

static void other_sections(const struct cfw_node *root)
{
    const struct cfw_node *sources = cfw_node_get(root, "sources");
    const struct cfw_node *outbox = cfw_node_get(root, "outbox");
    struct cfw_diag diag = {0};

    for (size_t i = 0; sources != NULL && sources->type == CFW_NODE_SEQ && i < sources->n; i++) {
        const struct cfw_node *e = sources->items[i];

        if (cfw_logpush_is(e)) {
            struct cfw_logpush_conf lc = {0};
            if (cfw_logpush_conf_parse(e, "sources[0]", &lc, &diag) == 0) {
                FUZZ_CHECK(lc.name != NULL && lc.token != NULL);
            }
            cfw_logpush_conf_clear(&lc);
        } else {
            struct cfw_source_conf sc;
            memset(&sc, 0, sizeof(sc));
            cfw_source_conf_parse(e, "sources[0]", &sc, &diag);
            cfw_source_conf_clear(&sc);
        }
    }
    if (outbox != NULL) {
        struct cfw_notifier_opts no = {0};
        cfw_notifier_parse_opts(outbox, "outbox", &no, &diag);
    }
    check_diag(&diag);
    cfw_diag_free(&diag);
}

/* The bytes as a file (the memfd) through cfw_config_load, which checks every section. */
static void config_file(const uint8_t *data, size_t size)
{
    struct cfw_diag diag = {0};
    struct cfw_config *cfg;

    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size) {
        return;
    }
    cfg = cfw_config_load(memfd_path, &diag);
    FUZZ_CHECK(cfg != NULL || diag.n > 0);
    check_diag(&diag);
    if (cfg != NULL) {
        FUZZ_CHECK(cfg->doc != NULL);
        FUZZ_CHECK(cfg->incidents.key_template == NULL ||
                   cfw_template_check(cfg->incidents.key_template, NULL) == 0);
    }
    cfw_config_free(cfg);
    cfw_diag_free(&diag);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cfw_log_init(CFW_LOG_ERR);
    memfd = memfd_create("cfw-fuzz-config", MFD_CLOEXEC);
    FUZZ_CHECK(memfd >= 0);
    snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
    return 0;
}

/*
 * True when cfw_config_load has more to check in root than the sections checked here: a map with
 * a key of its own (rules, incidents, state_dir, ...). cfw_config_load reads every file into a
 * buffer of the YAML size cap (4 MiB, an mmap under ASan), two thirds of a run, so it is skipped
 * for other documents but one input in eight (its refusals and the pass-through of sources,
 * sinks, outbox and cloudflare stay covered).
 */
static bool wants_config(const struct cfw_doc *doc, size_t size)
{
    static const char *const own[] = {"state_dir", "state_save_interval", "listen", "log_level",
                                      "rules", "incidents", NULL};

    if (size % 8 == 0) {
        return true;
    }
    if (doc == NULL || doc->root == NULL || doc->root->type != CFW_NODE_MAP) {
        return false;
    }
    for (size_t i = 0; own[i] != NULL; i++) {
        if (cfw_node_get(doc->root, own[i]) != NULL) {
            return true;
        }
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfw_diag diag = {0};
    struct cfw_doc *doc;
    size_t budget = WALK_MAX;

    /*
     * Rules are compiled with PCRE2's JIT for one input in four (the JIT and interpreter paths
     * of rules.c both stay covered; a JIT compile of every rule of every input cost a tenth).
     */
    setenv("CFW_PCRE2_NO_JIT", size % 4 == 0 ? "0" : "1", 1);
    doc = cfw_yaml_load_string("fuzz.yaml", (const char *)data, size, &diag);
    FUZZ_CHECK(doc != NULL || diag.n > 0);
    check_diag(&diag);
    if (doc != NULL && doc->root != NULL) {
        walk(doc->root, &budget);
        rules_section(doc->root, (const char *)data, size);
        if (doc->root->type == CFW_NODE_MAP) {
            sinks_section(doc->root);
            other_sections(doc->root);
        }
    }
    if (wants_config(doc, size)) {
        config_file(data, size);
    }
    cfw_doc_free(doc);
    cfw_diag_free(&diag);
    return 0;
}
