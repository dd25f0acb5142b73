/*
 * JSON records: a one-pass parser of one JSON text in the caller's buffer into an array of
 * nodes, for the record decoder (jansson stays for configuration, sinks and API clients).
 *
 * Contract: cfw_json_parse accepts and rejects exactly what jansson 2.14's
 * json_loadb(text, len, JSON_DECODE_ANY, NULL) does, and the document reads as jansson's tree
 * would (tests/fuzz/fuzz_json.c checks it against jansson):
 *   - any value at the top, whitespace (space, tab, CR, LF) around it, nothing after it; a
 *     NUL byte right after a number or true/false/null is skipped (jansson's reader loses a
 *     NUL it puts back), anywhere else it is an error;
 *   - valid UTF-8 only (no overlong forms, surrogates or code points above U+10FFFF); in
 *     strings no control bytes, only the JSON escapes, no \u0000, surrogate escapes only as a
 *     high-low pair;
 *   - a number with '.', 'e' or 'E' is a real, else an integer; an integer outside int64 and
 *     a real that overflows a double are errors (a real that underflows is not);
 *   - at most CFW_JSON_MAX_DEPTH nested values, scalars counted;
 *   - a repeated object key: the first position, the last value; sizes count keys once.
 * Nodes and strings belong to the parser and are valid until its next parse. Strings and
 * numbers refer to the text (which must outlive the nodes); a string's escapes are decoded
 * when its value is asked for. No allocation per value: the node array and the string arena
 * grow and are reused from one record to the next.
 */
#ifndef CFWATCHD_JSON_H
#define CFWATCHD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CFW_JSON_MAX_DEPTH 2048u /* jansson's JSON_PARSER_MAX_DEPTH */

enum cfw_json_type {
    CFW_JSON_NULL,
    CFW_JSON_TRUE,
    CFW_JSON_FALSE,
    CFW_JSON_INTEGER,
    CFW_JSON_REAL,
    CFW_JSON_STRING,
    CFW_JSON_ARRAY,
    CFW_JSON_OBJECT,
};

struct cfw_json;      /* a parser and the document of its last parse */
struct cfw_json_node; /* one value of a document */

/* The members of an object or the elements of an array, in order (keys once each). */
struct cfw_json_iter {
    const struct cfw_json_node *key;   /* NULL for an array */
    const struct cfw_json_node *value; /* the member's (last) value or the element */
    const struct cfw_json_node *next;  /* private */
    const struct cfw_json_node *end;   /* private */
    bool object;                       /* private */
};

/* A parser with no document. */
struct cfw_json *cfw_json_new(void);

/* Frees a parser and its document; accepts NULL. */
void cfw_json_free(struct cfw_json *j);

/* Parses text[0..len) (see the contract above); returns the root, or NULL when invalid. */
const struct cfw_json_node *cfw_json_parse(struct cfw_json *j, const char *text, size_t len);

/* The root of the last successful parse, or NULL. */
const struct cfw_json_node *cfw_json_root(const struct cfw_json *j);

/* The deepest nesting of arrays and objects in the last document (0 for a scalar or none). */
size_t cfw_json_depth(const struct cfw_json *j);

/* True when n is not NULL and of type t. */
bool cfw_json_is(const struct cfw_json_node *n, enum cfw_json_type t);

/* True when n is an integer or a real. */
bool cfw_json_is_number(const struct cfw_json_node *n);

/* The type of n (not NULL). */
enum cfw_json_type cfw_json_type(const struct cfw_json_node *n);

/* An integer's value (0 for any other node). */
int64_t cfw_json_int(const struct cfw_json_node *n);

/* A real's value (0.0 for any other node). */
double cfw_json_real(const struct cfw_json_node *n);

/*
 * A string's value, decoded and NUL-terminated (it holds no NUL), with its length in *len
 * when len is not NULL; NULL for any other node. Valid until the parser's next parse.
 */
const char *cfw_json_str(struct cfw_json *j, const struct cfw_json_node *n, size_t *len);

/* Elements of an array, distinct keys of an object, 0 for anything else. */
size_t cfw_json_size(const struct cfw_json_node *n);

/* Element i of an array, or NULL. */
const struct cfw_json_node *cfw_json_at(const struct cfw_json_node *arr, size_t i);

/* The value of an object's member key, or NULL (also when obj is not an object). */
const struct cfw_json_node *cfw_json_get(struct cfw_json *j, const struct cfw_json_node *obj,
                                         const char *key);

/* The value of the first member whose key equals key without regard to ASCII case, or NULL. */
const struct cfw_json_node *cfw_json_get_nocase(struct cfw_json *j, const struct cfw_json_node *obj,
                                                const char *key);

/* True when a member's key (from an iterator) is s, without regard to case with nocase. */
bool cfw_json_key_is(struct cfw_json *j, const struct cfw_json_node *key, const char *s,
                     bool nocase);

/* Starts an iteration over a container (an empty one for anything else). */
void cfw_json_iter_init(const struct cfw_json_node *n, struct cfw_json_iter *it);

/* Steps to the next member or element; false at the end. */
bool cfw_json_iter_next(struct cfw_json *j, struct cfw_json_iter *it);

/* Writes n as jansson's JSON_COMPACT | JSON_ENCODE_ANY dump; -1 when out returns non-zero. */
int cfw_json_dump(struct cfw_json *j, const struct cfw_json_node *n,
                  int (*out)(const char *s, size_t n, void *arg), void *arg);

/*
 * The length of the JSON number at p[0, n): the longest prefix of the form
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, 0 when none starts there; *real (when not NULL):
 * it has a fraction or an exponent. The framer's fast check (jsonline.c) shares it.
 */
size_t cfw_json_number_len(const char *p, size_t n, bool *real);

/* True when a and b are equal as jansson's json_equal has it (NULL equals nothing). */
bool cfw_json_equal(struct cfw_json *j, const struct cfw_json_node *a,
                    const struct cfw_json_node *b);

#endif
