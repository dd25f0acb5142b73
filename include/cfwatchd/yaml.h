/*
 * A YAML document as a tree of nodes that remember file:line:column, plus the diagnostics
 * collector and typed getters every configuration section uses. Each module parses its own
 * section from this tree, so a schema lives beside the code that uses it.
 */
#ifndef CFWATCHD_YAML_H
#define CFWATCHD_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cfwatchd/common.h"

enum cfw_node_type {
    CFW_NODE_SCALAR,
    CFW_NODE_MAP,
    CFW_NODE_SEQ,
};

struct cfw_node {
    enum cfw_node_type type;
    const char *file; /* borrowed from the document */
    int line;         /* 1-based */
    int col;          /* 1-based */
    char *value;      /* scalar text (never NULL for scalars) */
    bool quoted;      /* scalar was single- or double-quoted */
    size_t n;         /* map: number of pairs; seq: number of items */
    char **keys;      /* map keys */
    struct cfw_node **keynodes; /* map key nodes (positions) */
    struct cfw_node **items;    /* map values or seq items */
};

struct cfw_doc {
    char *file;
    struct cfw_node *root; /* NULL for an empty document */
};

/* Collected configuration errors: "file:line:col: path: message", all reported at once. */
struct cfw_diag {
    char **msgs;
    size_t n;
    size_t cap;
};

void cfw_diag_add(struct cfw_diag *d, const struct cfw_node *at, const char *path, const char *fmt,
                  ...) CFW_PRINTF(4, 5);
/* Adds a message that has no node (e.g. a file that cannot be opened). */
void cfw_diag_addf(struct cfw_diag *d, const char *fmt, ...) CFW_PRINTF(2, 3);
void cfw_diag_print(const struct cfw_diag *d, FILE *fp);
void cfw_diag_free(struct cfw_diag *d);

/* Parses a YAML file (anchors and aliases refused, one document, size capped at 4 MiB). */
struct cfw_doc *cfw_yaml_load_file(const char *path, struct cfw_diag *diag);
/* Parses YAML text; name is used in positions. */
struct cfw_doc *cfw_yaml_load_string(const char *name, const char *text, size_t len,
                                     struct cfw_diag *diag);
void cfw_doc_free(struct cfw_doc *doc);

/* Looks up a key in a map node; NULL when absent or node is not a map. */
const struct cfw_node *cfw_node_get(const struct cfw_node *map, const char *key);
/*
 * Reports every key of map not in valid (NULL-terminated) as "unknown key 'x' (valid keys: ...)".
 * Also reports a node that is not a map. Returns the number of problems.
 */
int cfw_node_check_keys(const struct cfw_node *map, const char *path, const char *const *valid,
                        struct cfw_diag *diag);
/*
 * Typed getters: 0 when absent (out untouched), 1 when set, -1 on a type error (reported).
 * path is the key path of map (messages then name path.key); a path that already ends in
 * ".key" is used as it is.
 */
int cfw_node_str(const struct cfw_node *map, const char *key, const char *path, const char **out,
                 struct cfw_diag *diag);
/*
 * A string the map must have: a copy of it, or NULL, with missing reported at map (path) when
 * the key is absent or null (a type error is reported as by cfw_node_str).
 */
char *cfw_node_required_str(const struct cfw_node *map, const char *key, const char *path,
                            const char *missing, struct cfw_diag *diag);
int cfw_node_bool(const struct cfw_node *map, const char *key, const char *path, bool *out,
                  struct cfw_diag *diag);
int cfw_node_u64(const struct cfw_node *map, const char *key, const char *path, uint64_t min,
                 uint64_t max, uint64_t *out, struct cfw_diag *diag);
int cfw_node_duration(const struct cfw_node *map, const char *key, const char *path,
                      int64_t *out_ms, struct cfw_diag *diag);
/* A list of strings (a single scalar counts as a list of one); *out is a NULL-terminated array. */
int cfw_node_strlist(const struct cfw_node *map, const char *key, const char *path, char ***out,
                     struct cfw_diag *diag);
void cfw_strlist_free(char **list);
/* Copies a NULL-terminated string list (NULL gives NULL). */
char **cfw_strlist_dup(char *const *list);

/*
 * Reads a secret: the value of key, where "${NAME}" takes the environment variable NAME, or
 * the contents of the file named by key_file (trailing newline removed). A secret file readable
 * by group or others is refused. A relative path is looked up in $CREDENTIALS_DIRECTORY (where
 * systemd's LoadCredential= puts it), then in the directory of the file the key is written in;
 * when neither has it, the error lists the paths tried. Errors never contain the secret itself.
 * A secret taken from a file or the environment is registered with the secret registry
 * (secrets.h); a literal value is registered by the caller, which knows whether it is a
 * credential. Returns 0 absent, 1 set, -1 error.
 */
int cfw_node_secret(const struct cfw_node *map, const char *key, const char *key_file,
                    const char *path, char **out, struct cfw_diag *diag);

#endif
