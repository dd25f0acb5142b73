/*
 * Prefilter: decides, from a framed record's bytes alone, whether any rule could match one of
 * the events the decoder would make of it. Records that cannot match are counted and dropped
 * before decoding; candidates are decoded and matched, in order, by the rules whose literals
 * they hold (cfw_prefilter_select): the others could not match them.
 *
 * Exactness: the prefilter may let through records no rule matches (decoding sorts them out),
 * but never drops one a rule would match. What it looks for, computed when the rules load:
 *   - per rule, alternatives of literals, all of one of which every match contains
 *     (cfw_pattern_literals): an alternation gives a set, optional parts are dropped, (?i)
 *     makes them ASCII-caseless with k/s and non-ASCII bytes left out (Unicode folds K and S
 *     to U+212A and U+017F); anything the extractor does not understand gives no literal;
 *   - text records: the literal itself (split at U+FFFD, which sanitising may introduce);
 *   - JSON records: the literal split into pieces at the bytes a JSON encoder may escape, at
 *     whitespace and `:` (the decoder joins message arrays with spaces and writes
 *     `name: message`), at JSON punctuation and digits (numbers are re-encoded); every piece of
 *     two bytes or more must be in the record. A record holding a `\u` escape, a NUL byte, a
 *     non-empty `exceptions` array, an `error` that is not null or "" (Workers Observability)
 *     or an `outcome` other than ok/canceled (any key case) is always a candidate: those are the
 *     records whose events are not copies of their own text;
 *   - a rule restricted by `when: {kind: ...}` to exception and outcome events needs no literal
 *     for JSON records, and none at all for text records (which only make kind=text events);
 *   - a rule with no usable literal makes every record of the kinds it applies to a candidate.
 * The search: per anchor piece (one piece of each alternative, the one with the rarest
 * fingerprint), a three-byte fingerprint looked for with nibble tables in AVX2 or SSSE3 where
 * the processor has them (CFW_PREFILTER_SIMD=none|ssse3 narrows the choice), then a 64 Kbit
 * table of its first two bytes, then a compare and a check of the alternative's other pieces.
 */
#ifndef CFWATCHD_PREFILTER_H
#define CFWATCHD_PREFILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "cfwatchd/framer.h"

/* Event kinds, as bits (see decode.h). */
#define CFW_KIND_TEXT 1u
#define CFW_KIND_JSON 2u
#define CFW_KIND_EXCEPTION 4u
#define CFW_KIND_LOG 8u
#define CFW_KIND_OUTCOME 16u
#define CFW_KIND_ALL 31u

/* The bit of an event kind name, 0 for an unknown name. */
unsigned cfw_kind_bit(const char *kind);

#define CFW_LITERALS_MAX 32u     /* alternatives kept; more give "no literal" */
#define CFW_LITERALS_AND_MAX 16u /* literals of one alternative; more are dropped (safe) */
#define CFW_LITERAL_MAX 256u     /* bytes of one literal; a longer run is cut in two */

/* Literals that are all in every subject an alternative of the pattern matches. */
struct cfw_literal_alt {
    size_t n;
    char *v[CFW_LITERALS_AND_MAX];
    size_t len[CFW_LITERALS_AND_MAX];
};

/* A subject the pattern matches holds every literal of at least one alternative. */
struct cfw_literals {
    size_t n;
    bool caseless; /* the pattern has (?i) somewhere: compare ASCII-caselessly */
    struct cfw_literal_alt *alt;
};

/*
 * Extracts the required literals of a PCRE2 pattern compiled as the rules compile it (UTF, no
 * other options). Returns 0 with out filled, or -1 with out empty when none is known.
 */
int cfw_pattern_literals(const char *pattern, struct cfw_literals *out);
void cfw_literals_clear(struct cfw_literals *l);

/* What cfw_prefilter_add reports: the record kinds for which the rule has no usable literal. */
#define CFW_PREFILTER_ALL_TEXT 1u /* every text record is a candidate for it */
#define CFW_PREFILTER_ALL_JSON 2u /* every JSON record is a candidate for it */

struct cfw_prefilter;

struct cfw_prefilter *cfw_prefilter_new(void);
void cfw_prefilter_free(struct cfw_prefilter *pf);
/*
 * Adds one rule's pattern for the event kinds it can match (CFW_KIND_* bits); id names the rule
 * in selections (its index in the rule set: ids are small and dense).
 */
unsigned cfw_prefilter_add(struct cfw_prefilter *pf, const char *pattern, unsigned kinds,
                           size_t id);
/* Builds the search tables; call once after the last add. */
void cfw_prefilter_build(struct cfw_prefilter *pf);
/* The number of 64-bit words of a rule selection (bit id%64 of word id/64 is rule id). */
size_t cfw_prefilter_words(const struct cfw_prefilter *pf);
/*
 * The rules that may match an event of this record: sets in sel (cfw_prefilter_words words,
 * overwritten) the bit of every rule whose literals the record holds, of every rule with no
 * usable literal for its kind, and, where a structural fact or a `\u` escape or NUL byte makes
 * the record a candidate as a whole, the rules that fact concerns (all of them for `\u` and
 * NUL). A rule left out cannot match any event of the record, so matching may skip it.
 * True when any rule is selected: the record is a candidate.
 */
bool cfw_prefilter_select(const struct cfw_prefilter *pf, enum cfw_record_kind kind,
                          const char *text, size_t len, uint64_t *sel);

#endif
