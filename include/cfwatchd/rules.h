/*
 * Rules and the matcher. A rule is a PCRE2 pattern (compiled once, UTF with invalid-UTF
 * tolerance, JIT when the system allows it, interpreter otherwise), conditions on event fields,
 * a severity, and title/hint templates. Named groups become fields of the match.
 *
 * YAML shape of one rule (in a `rules:` list of a rules file, or `rules.custom` of the config):
 *   id: py-src-import               # required, [a-z0-9][a-z0-9._-]*
 *   pattern: 'No module named ''(?<module>src(?:\.[\w.]+)?)'''   # required
 *   severity: critical              # critical | error | warning | info (default error)
 *   title: 'Python Worker {script} imports {module} ...'
 *   hint: '...'                     # cause and fix; {field} placeholders
 *   when: { kind: exception, startup_ms: '> 1000', outcome: [exceededCpu, exceededMemory] }
 *   continue: false                 # let later rules match the same event too
 *   key: '{rule}/{script}/{module}' # incident key template (default: incidents.key)
 *   threshold: { count: 5, window: 10m }  # open only after count matches within window
 *   repeat_interval: 4h             # per-rule overrides of the incidents section
 *   resolve_after: 30m
 *   description: free text
 *
 * Conditions (`when`): each key names a field; the value is a string or a list of strings (any
 * may hold). A string is `> N`, `>= N`, `< N`, `<= N`, `== N`, `!= N` (numeric; a missing or
 * non-numeric field fails), `!glob` (negated), a glob when it has * ? or [, `exists`/`missing`
 * written as `{exists}` / `{missing}`, else exact equality.
 *
 * Templates: `{field}` is replaced by the field's value (empty when missing); `{{` and `}}` are
 * literal braces. Replacement is one pass: a value containing `{x}` is not expanded again.
 * `{?field}text{/field}` keeps text only when field is non-empty, `{!field}text{/field}` only
 * when it is empty or missing (sections of different fields may nest).
 */
#ifndef CFWATCHD_RULES_H
#define CFWATCHD_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/common.h"
#include "cfwatchd/decode.h"
#include "cfwatchd/yaml.h"

enum cfw_severity {
    CFW_SEV_INFO = 0,
    CFW_SEV_WARNING = 1,
    CFW_SEV_ERROR = 2,
    CFW_SEV_CRITICAL = 3,
};

const char *cfw_severity_name(enum cfw_severity s);
int cfw_severity_parse(const char *s, enum cfw_severity *out);

struct cfw_rule;
struct cfw_ruleset;

/* Per-rule options that override the incidents section; 0 means "not set". */
/* How a rule's incidents end (the rule key `resolve`). */
enum cfw_resolve_mode {
    CFW_RESOLVE_QUIET,   /* after resolve_after without a match: runtime errors */
    CFW_RESOLVE_SUCCESS, /* on evidence of a later successful deploy of the same script */
};

/* A `resolve: success` incident with no evidence resolves after this long without a match. */
#define CFW_RESOLVE_FALLBACK_DEFAULT_MS (7LL * 24 * 3600 * 1000)

struct cfw_rule_opts {
    int64_t repeat_interval_ms;
    int64_t resolve_after_ms;
    uint64_t threshold_count;
    int64_t threshold_window_ms;
    enum cfw_resolve_mode resolve;
    int64_t resolve_fallback_ms; /* resolve: success; 0: the default */
    bool success; /* `success: true`: a match is evidence of a successful deploy, no incident */
};

struct cfw_ruleset *cfw_ruleset_new(void);
void cfw_ruleset_free(struct cfw_ruleset *rs);

/*
 * Adds the rules of a YAML sequence node (path is the key path for messages, e.g.
 * "rules.custom"); pack names where they came from ("python-workers", "custom", a file name).
 * A rule whose id exists already replaces it in place. Every problem is added to diag; rules
 * without problems are kept. Returns the number of problems.
 */
int cfw_ruleset_add_node(struct cfw_ruleset *rs, const struct cfw_node *seq, const char *path,
                         const char *pack, struct cfw_diag *diag);
/* Loads a rules file: a YAML map with a `rules:` list (and an optional `pack:` name). */
int cfw_ruleset_add_file(struct cfw_ruleset *rs, const char *path, struct cfw_diag *diag);
/* Adds a built-in pack compiled into the binary; unknown name -> a diag entry. */
int cfw_ruleset_add_builtin(struct cfw_ruleset *rs, const char *pack, struct cfw_diag *diag);
/* Names of the built-in packs (NULL-terminated). */
const char *const *cfw_builtin_packs(void);
/* The YAML source of a built-in pack, or NULL. */
const char *cfw_builtin_pack_text(const char *pack);

size_t cfw_ruleset_count(const struct cfw_ruleset *rs);
const struct cfw_rule *cfw_ruleset_rule(const struct cfw_ruleset *rs, size_t i);
/* Looks a rule up by id. */
const struct cfw_rule *cfw_ruleset_find(const struct cfw_ruleset *rs, const char *id);
/* True when JIT compilation is in use for all rules. */
bool cfw_ruleset_jit(const struct cfw_ruleset *rs);

const char *cfw_rule_id(const struct cfw_rule *r);
const char *cfw_rule_pack(const struct cfw_rule *r);
enum cfw_severity cfw_rule_severity(const struct cfw_rule *r);
const char *cfw_rule_title(const struct cfw_rule *r); /* template; never NULL */
const char *cfw_rule_hint(const struct cfw_rule *r);  /* template; never NULL */
const char *cfw_rule_key(const struct cfw_rule *r);   /* template or NULL */
const struct cfw_rule_opts *cfw_rule_opts(const struct cfw_rule *r);
uint64_t cfw_rule_matches(const struct cfw_rule *r); /* matches counted so far */
/* Match attempts given up at the match, depth, heap or JIT stack limit (counted, no match). */
uint64_t cfw_rule_limit_hits(const struct cfw_rule *r);

/* One match: the rule and the event's fields plus the named groups (owned by the callee). */
struct cfw_match {
    const struct cfw_rule *rule;
    struct cfw_fields fields;
};

typedef void (*cfw_match_cb)(const struct cfw_match *m, const struct cfw_event *ev, void *arg);

/*
 * Runs the rules over an event in order: the first matching rule wins unless it says
 * `continue: true`. Calls cb for each match. Returns the number of matches, or -1 on a PCRE2
 * failure that is not a plain no-match (logged once per rule); a match-limit hit is counted
 * (cfw_rule_limit_hits) and the rule treated as not matching.
 */
int cfw_ruleset_match(struct cfw_ruleset *rs, const struct cfw_event *ev, cfw_match_cb cb,
                      void *arg);

/*
 * Scanning: FAST (the default) decodes only the records the prefilter lets through (see
 * prefilter.h); FULL decodes every record (`--scan full`, `rules.scan: full`). Both give the same
 * incidents; FULL is the reference the fast path is tested against.
 */
enum cfw_scan {
    CFW_SCAN_FAST = 0,
    CFW_SCAN_FULL,
};

/* Parses fast|full; -1 on anything else. */
int cfw_scan_parse(const char *s, enum cfw_scan *out);
const char *cfw_scan_name(enum cfw_scan s);
void cfw_ruleset_set_scan(struct cfw_ruleset *rs, enum cfw_scan scan);
enum cfw_scan cfw_ruleset_scan(const struct cfw_ruleset *rs);
/*
 * The events that follow belong to a new record (the pipeline calls it before decoding one).
 * When cfw_ruleset_wants was asked about this record just before, matching runs only the rules
 * it selected until cfw_ruleset_record_end (the others cannot match the record's events).
 */
void cfw_ruleset_record_start(struct cfw_ruleset *rs);
/* The record's events are done: later events are matched against every rule. */
void cfw_ruleset_record_end(struct cfw_ruleset *rs);
/* Builds the prefilter now (it is otherwise built at the first record after the rules changed). */
void cfw_ruleset_prepare(struct cfw_ruleset *rs);
/* True when some rule may match an event of this record (always true with CFW_SCAN_FULL). */
bool cfw_ruleset_wants(struct cfw_ruleset *rs, const struct cfw_record *rec);
/*
 * After cfw_ruleset_prepare: CFW_PREFILTER_ALL_TEXT and/or CFW_PREFILTER_ALL_JSON when the rule
 * has no literal the prefilter can use for those records (every one is decoded for it).
 */
unsigned cfw_rule_no_literal(const struct cfw_rule *r);
/* file:line:col of the rule's pattern ("?" when unknown). */
const char *cfw_rule_where(const struct cfw_rule *r);

/* Renders a template with fields; returns an allocated string. */
char *cfw_template_render(const char *tmpl, const struct cfw_fields *fields);
/* Checks a template's syntax (unbalanced braces, bad names); returns 0 or -1 with err set. */
int cfw_template_check(const char *tmpl, struct cfw_err *err);

/* Evaluates one condition expression (see above) against a value that may be NULL. */
bool cfw_condition_eval(const char *expr, const char *value);
/* Checks a condition expression's syntax; returns 0 or -1 with err set. */
int cfw_condition_check(const char *expr, struct cfw_err *err);

#endif
