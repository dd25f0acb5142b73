/*
 * Configuration schemas: one table per section, the master copy of its keys (tmux's
 * options-table.c, Fluent Bit's config maps). A row gives a key's name, the type and place of
 * its value in the section's struct, its default, its bounds and a line of help, and parsing
 * is driven by the table: keys that are not in it are reported with the list of valid ones (in
 * the table's order), then every row is read in order with its type's reader, whose type and
 * bound errors name file:line:column and the key path ("sources[2].read_budget").
 *
 * A key that needs more than its type (an enumeration, a required value, a list whose items are
 * checked, a secret) names its own reader, or a check of the value its type's reader stored; a
 * section names a check of how its keys relate. A value out of its bounds is reported and not
 * stored (the default stays).
 */
#ifndef CFWATCHD_SCHEMA_H
#define CFWATCHD_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfwatchd/yaml.h"

enum cfw_schema_type {
    CFW_SCHEMA_OTHER = 0, /* stored by the row's reader alone (none: read with another key) */
    CFW_SCHEMA_STR,       /* char *, a copy */
    CFW_SCHEMA_STRLIST,   /* char **: a string or a list of strings, NULL-terminated */
    CFW_SCHEMA_BOOL,      /* bool */
    CFW_SCHEMA_SIZE,      /* size_t within min..max */
    CFW_SCHEMA_UINT,      /* unsigned within min..max */
    CFW_SCHEMA_U64,       /* uint64_t within min..max */
    CFW_SCHEMA_DURATION,  /* int64_t milliseconds ("500ms", "30s", "5m"), min..max (max 0: none) */
    CFW_SCHEMA_DOUBLE,    /* double (read by the row's reader) */
};

struct cfw_schema_key;

/*
 * A row's reader (reads the key of map into conf, the section's struct; 1 read, 0 absent, -1
 * reported) or check (of the value read, once it is stored; 0, or -1 reported). path is the
 * section's key path; the key's is path.<name>.
 */
typedef int cfw_schema_fn(const struct cfw_schema_key *key, const struct cfw_node *map,
                          const char *path, void *conf, struct cfw_diag *diag);

struct cfw_schema_key {
    const char *name;
    enum cfw_schema_type type;
    size_t offset; /* of the value in the section's struct */
    double def;    /* BOOL, SIZE, UINT, U64, DURATION (ms), DOUBLE: the default (a whole number is
                      exact) */
    uint64_t min;  /* SIZE, UINT, U64, DURATION: the bounds (DURATION: max 0 is none) */
    uint64_t max;
    const char *bounds; /* DURATION out of bounds: the message (NULL: "must be at least <min>ms") */
    cfw_schema_fn *read;  /* reads the key instead of its type's reader (NULL: the type's) */
    cfw_schema_fn *check; /* checks the value read (NULL: none) */
    const char *help;
};

struct cfw_schema {
    const struct cfw_schema_key *keys; /* ended by a row without a name */
    /* How the keys relate, after every key was read (NULL: no check); 0, or -1 reported. */
    int (*check)(const struct cfw_node *map, const char *path, void *conf, struct cfw_diag *diag);
};

/* Sets the default of every row that has one (BOOL, SIZE, UINT, U64, DURATION, DOUBLE) in conf. */
void cfw_schema_defaults(const struct cfw_schema *s, void *conf);
/*
 * Reads map into conf as the table says (defaults are not set: see cfw_schema_defaults).
 * Reports every problem to diag; 0, or -1 when there was one. A map that is not a map is
 * reported as such and nothing else is read.
 */
int cfw_schema_parse(const struct cfw_schema *s, const struct cfw_node *map, const char *path,
                     void *conf, struct cfw_diag *diag);
/*
 * Reads one row by its type's reader (not the row's own), for a row read with another key:
 * 1 read, 0 absent, -1 reported.
 */
int cfw_schema_read_typed(const struct cfw_schema_key *k, const struct cfw_node *map,
                          const char *path, void *conf, struct cfw_diag *diag);
/* The row of a key, or NULL. */
const struct cfw_schema_key *cfw_schema_find(const struct cfw_schema *s, const char *name);
/* The value of a key whose value is a string (CFW_SCHEMA_STR) in conf (NULL when unset). */
const char *cfw_schema_str(const struct cfw_schema *s, const void *conf, const char *name);
/* The key path of a row: "<path>.<name>", or "<name>" when path is "" (to free). */
char *cfw_schema_path(const struct cfw_schema_key *key, const char *path);
/*
 * For a row's check: reports each item of a list it stored that ok refuses, as
 * "<before>'<item>' <after>" at the key; 0, or -1 when one was refused.
 */
int cfw_schema_check_items(const struct cfw_schema_key *key, const struct cfw_node *map,
                           const char *path, char *const *list, bool (*ok)(const char *),
                           const char *before, const char *after, struct cfw_diag *diag);

#endif
