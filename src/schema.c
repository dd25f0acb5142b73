/* Configuration schemas: parsing driven by one table per section; see schema.h. */
#include "cfwatchd/schema.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The member of conf a row describes. */
static void *member(const struct cfw_schema_key *k, void *conf)
{
    return (char *)conf + k->offset;
}

void cfw_schema_defaults(const struct cfw_schema *s, void *conf)
{
    for (const struct cfw_schema_key *k = s->keys; k->name != NULL; k++) {
        switch (k->type) {
        case CFW_SCHEMA_BOOL:
            *(bool *)member(k, conf) = k->def != 0;
            break;
        case CFW_SCHEMA_SIZE:
            *(size_t *)member(k, conf) = (size_t)k->def;
            break;
        case CFW_SCHEMA_UINT:
            *(unsigned *)member(k, conf) = (unsigned)k->def;
            break;
        case CFW_SCHEMA_U64:
            *(uint64_t *)member(k, conf) = (uint64_t)k->def;
            break;
        case CFW_SCHEMA_DURATION:
            *(int64_t *)member(k, conf) = (int64_t)k->def;
            break;
        case CFW_SCHEMA_DOUBLE:
            *(double *)member(k, conf) = k->def;
            break;
        case CFW_SCHEMA_OTHER:
        case CFW_SCHEMA_STR:
        case CFW_SCHEMA_STRLIST:
            break;
        }
    }
}

char *cfw_schema_path(const struct cfw_schema_key *key, const char *path)
{
    if (path[0] == '\0') {
        return cfw_xstrdup(key->name); /* the top level */
    }
    return cfw_xasprintf("%s.%s", path, key->name);
}

/* A duration read, within the row's bounds. */
static int read_duration(const struct cfw_schema_key *k, const struct cfw_node *map,
                         const char *path, void *conf, struct cfw_diag *diag)
{
    int64_t v = 0;
    int rc = cfw_node_duration(map, k->name, path, &v, diag);
    char *kp;

    if (rc != 1) {
        return rc;
    }
    if (v >= (int64_t)k->min && (k->max == 0 || v <= (int64_t)k->max)) {
        *(int64_t *)member(k, conf) = v;
        return 1;
    }
    kp = cfw_schema_path(k, path);
    if (k->bounds != NULL) {
        cfw_diag_add(diag, cfw_node_get(map, k->name), kp, "%s", k->bounds);
    } else {
        cfw_diag_add(diag, cfw_node_get(map, k->name), kp, "must be at least %lldms",
                     (long long)k->min);
    }
    free(kp);
    return -1;
}

int cfw_schema_read_typed(const struct cfw_schema_key *k, const struct cfw_node *map,
                          const char *path, void *conf, struct cfw_diag *diag)
{
    const char *s = NULL;
    uint64_t u = 0;
    int rc = 0;

    switch (k->type) {
    case CFW_SCHEMA_STR:
        if ((rc = cfw_node_str(map, k->name, path, &s, diag)) == 1) {
            *(char **)member(k, conf) = cfw_xstrdup(s);
        }
        break;
    case CFW_SCHEMA_STRLIST:
        rc = cfw_node_strlist(map, k->name, path, (char ***)member(k, conf), diag);
        break;
    case CFW_SCHEMA_BOOL:
        rc = cfw_node_bool(map, k->name, path, (bool *)member(k, conf), diag);
        break;
    case CFW_SCHEMA_SIZE:
    case CFW_SCHEMA_UINT:
    case CFW_SCHEMA_U64:
        rc = cfw_node_u64(map, k->name, path, k->min, k->max, &u, diag);
        if (rc == 1 && k->type == CFW_SCHEMA_SIZE) {
            *(size_t *)member(k, conf) = (size_t)u;
        } else if (rc == 1 && k->type == CFW_SCHEMA_UINT) {
            *(unsigned *)member(k, conf) = (unsigned)u;
        } else if (rc == 1) {
            *(uint64_t *)member(k, conf) = u;
        }
        break;
    case CFW_SCHEMA_DURATION:
        rc = read_duration(k, map, path, conf, diag);
        break;
    case CFW_SCHEMA_OTHER:
    case CFW_SCHEMA_DOUBLE:
        break; /* read with another key, or by the row's reader */
    }
    return rc;
}

int cfw_schema_parse(const struct cfw_schema *s, const struct cfw_node *map, const char *path,
                     void *conf, struct cfw_diag *diag)
{
    size_t before = diag->n;
    size_t n = 0;
    const char **names;
    int problems;

    while (s->keys[n].name != NULL) {
        n++;
    }
    names = cfw_xcalloc(n + 1, sizeof(*names));
    for (size_t i = 0; i < n; i++) {
        names[i] = s->keys[i].name;
    }
    problems = cfw_node_check_keys(map, path, names, diag);
    free(names);
    if (problems != 0 && map->type != CFW_NODE_MAP) {
        return -1;
    }
    for (const struct cfw_schema_key *k = s->keys; k->name != NULL; k++) {
        int rc = k->read != NULL ? k->read(k, map, path, conf, diag)
                                 : cfw_schema_read_typed(k, map, path, conf, diag);

        if (rc == 1 && k->check != NULL) {
            k->check(k, map, path, conf, diag);
        }
    }
    if (s->check != NULL) {
        s->check(map, path, conf, diag);
    }
    return diag->n > before ? -1 : 0;
}

const struct cfw_schema_key *cfw_schema_find(const struct cfw_schema *s, const char *name)
{
    for (const struct cfw_schema_key *k = s->keys; k->name != NULL; k++) {
        if (strcmp(k->name, name) == 0) {
            return k;
        }
    }
    return NULL;
}

const char *cfw_schema_str(const struct cfw_schema *s, const void *conf, const char *name)
{
    const struct cfw_schema_key *k = cfw_schema_find(s, name);

    if (k == NULL || k->type != CFW_SCHEMA_STR) {
        return NULL;
    }
    return *(char *const *)((const char *)conf + k->offset);
}

int cfw_schema_check_items(const struct cfw_schema_key *k, const struct cfw_node *map,
                           const char *path, char *const *list, bool (*ok)(const char *),
                           const char *before, const char *after, struct cfw_diag *diag)
{
    char *kp = cfw_schema_path(k, path);
    int rc = 0;

    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (!ok(list[i])) {
            cfw_diag_add(diag, cfw_node_get(map, k->name), kp, "%s'%s' %s", before, list[i], after);
            rc = -1;
        }
    }
    free(kp);
    return rc;
}
