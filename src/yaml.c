/*
 * YAML loader (libyaml event API) building a tree of nodes that remember file:line:column,
 * the diagnostics collector, and the typed getters configuration sections use.
 */
#include "cfwatchd/yaml.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "cfwatchd/fsutil.h"
#include "cfwatchd/secrets.h"

#define CFW_YAML_MAX_SIZE (4u * 1024u * 1024u)
#define CFW_YAML_MAX_DEPTH 64
#define CFW_DIAG_MAX 500
#define CFW_SECRET_MAX (64u * 1024u)
#define SHOW_MAX 64 /* bytes of a configuration value quoted in a message */

/* ---- diagnostics ---- */

static char *vformat(const char *fmt, va_list ap) CFW_PRINTF(1, 0);

static char *vformat(const char *fmt, va_list ap)
{
    va_list ap2;
    char *p;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        return cfw_xstrdup("?");
    }
    p = cfw_xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

/* Messages are single lines: control bytes (from values quoted in them) become '?'. */
static void diag_push(struct cfw_diag *d, char *msg)
{
    /* they are printed and logged: a registered secret quoted in one is replaced */
    cfw_secrets_scrub_inplace(msg, strlen(msg));
    for (char *s = msg; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            *s = '?';
        }
    }
    if (d->n > CFW_DIAG_MAX) {
        free(msg);
        return;
    }
    if (d->n == CFW_DIAG_MAX) {
        free(msg);
        msg = cfw_xstrdup("too many problems; the rest are not shown");
    }
    if (d->n == d->cap) {
        d->cap = d->cap == 0 ? 8 : d->cap * 2;
        d->msgs = cfw_xrealloc(d->msgs, d->cap * sizeof(*d->msgs));
    }
    d->msgs[d->n++] = msg;
}

/* Adds "file:line:col: path: message" for a node (or "path: message" without one). */
void cfw_diag_add(struct cfw_diag *d, const struct cfw_node *at, const char *path, const char *fmt,
                  ...)
{
    va_list ap;
    char *msg;
    char *line;
    bool has_path = path != NULL && path[0] != '\0';

    if (d == NULL) {
        return;
    }
    va_start(ap, fmt);
    msg = vformat(fmt, ap);
    va_end(ap);
    if (at != NULL) {
        line = cfw_xasprintf("%s:%d:%d: %s%s%s", at->file != NULL ? at->file : "?", at->line,
                             at->col, has_path ? path : "", has_path ? ": " : "", msg);
    } else {
        line = cfw_xasprintf("%s%s%s", has_path ? path : "", has_path ? ": " : "", msg);
    }
    free(msg);
    diag_push(d, line);
}

/* Adds a message that has no node. */
void cfw_diag_addf(struct cfw_diag *d, const char *fmt, ...)
{
    va_list ap;

    if (d == NULL) {
        return;
    }
    va_start(ap, fmt);
    diag_push(d, vformat(fmt, ap));
    va_end(ap);
}

/* Prints every collected message, one per line. */
void cfw_diag_print(const struct cfw_diag *d, FILE *fp)
{
    for (size_t i = 0; i < d->n; i++) {
        fprintf(fp, "%s\n", d->msgs[i]);
    }
}

/* Frees the messages; the collector can be used again. */
void cfw_diag_free(struct cfw_diag *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->n; i++) {
        free(d->msgs[i]);
    }
    free(d->msgs);
    d->msgs = NULL;
    d->n = 0;
    d->cap = 0;
}

/* Copies at most SHOW_MAX bytes of v into buf (cut on a UTF-8 boundary, "..." appended). */
static const char *shown(const char *v, char *buf, size_t buflen)
{
    size_t n = strlen(v);

    if (n <= SHOW_MAX && n < buflen) {
        memcpy(buf, v, n + 1);
        return buf;
    }
    n = cfw_utf8_prefix(v, n, SHOW_MAX < buflen - 4 ? SHOW_MAX : buflen - 4);
    memcpy(buf, v, n);
    memcpy(buf + n, "...", 4);
    return buf;
}

static char *join_path(const char *path, const char *key)
{
    if (path == NULL || path[0] == '\0') {
        return cfw_xstrdup(key);
    }
    return cfw_xasprintf("%s.%s", path, key);
}

/*
 * The key path of map[key] for messages. Callers pass the map's path; a path that already
 * ends with the key (some callers pass the value's own path) is taken as it is.
 */
static char *key_path(const char *path, const char *key)
{
    size_t pl = path != NULL ? strlen(path) : 0;
    size_t kl = strlen(key);

    if (pl >= kl && strcmp(path + pl - kl, key) == 0 && (pl == kl || path[pl - kl - 1] == '.')) {
        return cfw_xstrdup(path);
    }
    return join_path(path, key);
}

/* ---- nodes ---- */

static void node_free(struct cfw_node *n)
{
    if (n == NULL) {
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys != NULL) {
            free(n->keys[i]);
        }
        if (n->keynodes != NULL) {
            node_free(n->keynodes[i]);
        }
        node_free(n->items[i]);
    }
    free(n->keys);
    free(n->keynodes);
    free(n->items);
    free(n->value);
    free(n);
}

/* Frees a document and all its nodes; NULL is fine. */
void cfw_doc_free(struct cfw_doc *doc)
{
    if (doc == NULL) {
        return;
    }
    node_free(doc->root);
    free(doc->file);
    free(doc);
}

static struct cfw_node *node_new(enum cfw_node_type type, const char *file, yaml_mark_t mark)
{
    struct cfw_node *n = cfw_xcalloc(1, sizeof(*n));

    n->type = type;
    n->file = file;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    return n;
}

/* Appends to a map (key != NULL) or a sequence. */
static void node_append(struct cfw_node *n, char *key, struct cfw_node *keynode,
                        struct cfw_node *item, size_t *cap)
{
    if (n->n == *cap) {
        *cap = *cap == 0 ? 4 : *cap * 2;
        n->items = cfw_xrealloc(n->items, *cap * sizeof(*n->items));
        if (n->type == CFW_NODE_MAP) {
            n->keys = cfw_xrealloc(n->keys, *cap * sizeof(*n->keys));
            n->keynodes = cfw_xrealloc(n->keynodes, *cap * sizeof(*n->keynodes));
        }
    }
    if (n->type == CFW_NODE_MAP) {
        n->keys[n->n] = key;
        n->keynodes[n->n] = keynode;
    }
    n->items[n->n++] = item;
}

/* A plain scalar that YAML reads as null: empty, ~ or null. */
static bool node_is_null(const struct cfw_node *n)
{
    if (n == NULL) {
        return true;
    }
    if (n->type != CFW_NODE_SCALAR || n->quoted) {
        return false;
    }
    return n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
           strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0;
}

static const char *node_kind(const struct cfw_node *n)
{
    switch (n->type) {
    case CFW_NODE_MAP:
        return "a map";
    case CFW_NODE_SEQ:
        return "a list";
    case CFW_NODE_SCALAR:
        break;
    }
    return "a string";
}

/* ---- parser ---- */

struct parser {
    yaml_parser_t yp;
    const char *file;
    struct cfw_diag *diag;
    bool failed; /* libyaml gave up or a cap was hit: no tree */
};

static void report_yaml_error(struct parser *p)
{
    const yaml_parser_t *yp = &p->yp;
    const char *problem = yp->problem != NULL ? yp->problem : "invalid YAML";

    p->failed = true;
    if (yp->error == YAML_MEMORY_ERROR) {
        cfw_diag_addf(p->diag, "%s: out of memory while parsing YAML", p->file);
        return;
    }
    if (yp->error == YAML_READER_ERROR) {
        cfw_diag_addf(p->diag, "%s: %s at byte offset %zu", p->file, problem, yp->problem_offset);
        return;
    }
    if (yp->context != NULL) {
        cfw_diag_addf(p->diag, "%s:%zu:%zu: %s (%s at line %zu column %zu)", p->file,
                      yp->problem_mark.line + 1, yp->problem_mark.column + 1, problem, yp->context,
                      yp->context_mark.line + 1, yp->context_mark.column + 1);
    } else {
        cfw_diag_addf(p->diag, "%s:%zu:%zu: %s", p->file, yp->problem_mark.line + 1,
                      yp->problem_mark.column + 1, problem);
    }
}

static int next_event(struct parser *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->yp, ev)) {
        report_yaml_error(p);
        return -1;
    }
    return 0;
}

static void refuse_anchor(struct parser *p, const struct cfw_node *at, const char *path,
                          const yaml_char_t *anchor)
{
    char buf[SHOW_MAX + 4];

    if (anchor != NULL) {
        cfw_diag_add(p->diag, at, path, "anchors and aliases are not supported (anchor '&%s')",
                     shown((const char *)anchor, buf, sizeof(buf)));
    }
}

static struct cfw_node *parse_node(struct parser *p, yaml_event_t *ev, const char *path, int depth);

static struct cfw_node *parse_map(struct parser *p, yaml_event_t *start, const char *path,
                                  int depth)
{
    struct cfw_node *n = node_new(CFW_NODE_MAP, p->file, start->start_mark);
    size_t cap = 0;
    char buf[SHOW_MAX + 4];

    refuse_anchor(p, n, path, start->data.mapping_start.anchor);
    for (;;) {
        yaml_event_t kev;
        yaml_event_t vev;
        struct cfw_node *key;
        struct cfw_node *val;
        char *child;
        bool dup = false;

        if (next_event(p, &kev) != 0) {
            goto fail;
        }
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        key = parse_node(p, &kev, path, depth + 1);
        yaml_event_delete(&kev);
        if (key == NULL) {
            goto fail;
        }
        child = join_path(path, key->type == CFW_NODE_SCALAR ? key->value : "?");
        if (next_event(p, &vev) != 0) {
            free(child);
            node_free(key);
            goto fail;
        }
        val = parse_node(p, &vev, child, depth + 1);
        yaml_event_delete(&vev);
        free(child);
        if (val == NULL) {
            node_free(key);
            goto fail;
        }
        if (key->type != CFW_NODE_SCALAR) {
            cfw_diag_add(p->diag, key, path, "map keys must be strings, not %s", node_kind(key));
            node_free(key);
            node_free(val);
            continue;
        }
        for (size_t i = 0; i < n->n; i++) {
            if (strcmp(n->keys[i], key->value) == 0) {
                child = join_path(path, key->value);
                cfw_diag_add(p->diag, key, child, "duplicate key '%s' (first at line %d)",
                             shown(key->value, buf, sizeof(buf)), n->keynodes[i]->line);
                free(child);
                dup = true;
                break;
            }
        }
        if (dup) {
            node_free(key);
            node_free(val);
            continue;
        }
        node_append(n, cfw_xstrdup(key->value), key, val, &cap);
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

static struct cfw_node *parse_seq(struct parser *p, yaml_event_t *start, const char *path,
                                  int depth)
{
    struct cfw_node *n = node_new(CFW_NODE_SEQ, p->file, start->start_mark);
    size_t cap = 0;

    refuse_anchor(p, n, path, start->data.sequence_start.anchor);
    for (;;) {
        yaml_event_t iev;
        struct cfw_node *item;
        char *child;

        if (next_event(p, &iev) != 0) {
            goto fail;
        }
        if (iev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&iev);
            break;
        }
        child = cfw_xasprintf("%s[%zu]", path != NULL ? path : "", n->n);
        item = parse_node(p, &iev, child, depth + 1);
        yaml_event_delete(&iev);
        free(child);
        if (item == NULL) {
            goto fail;
        }
        node_append(n, NULL, NULL, item, &cap);
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

/* Builds the node that starts with ev; NULL only when parsing cannot go on. */
static struct cfw_node *parse_node(struct parser *p, yaml_event_t *ev, const char *path, int depth)
{
    struct cfw_node *n;
    char buf[SHOW_MAX + 4];

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        n = node_new(CFW_NODE_SCALAR, p->file, ev->start_mark);
        n->value = cfw_xstrndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
        n->quoted = ev->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    ev->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        if (memchr(ev->data.scalar.value, '\0', ev->data.scalar.length) != NULL) {
            cfw_diag_add(p->diag, n, path, "value contains a NUL character");
        }
        refuse_anchor(p, n, path, ev->data.scalar.anchor);
        return n;
    case YAML_ALIAS_EVENT:
        n = node_new(CFW_NODE_SCALAR, p->file, ev->start_mark);
        n->value = cfw_xstrdup("");
        cfw_diag_add(p->diag, n, path, "anchors and aliases are not supported (alias '*%s')",
                     shown((const char *)ev->data.alias.anchor, buf, sizeof(buf)));
        return n;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        if (depth > CFW_YAML_MAX_DEPTH) {
            cfw_diag_addf(p->diag, "%s:%zu:%zu: nesting deeper than %d levels", p->file,
                          ev->start_mark.line + 1, ev->start_mark.column + 1, CFW_YAML_MAX_DEPTH);
            p->failed = true;
            return NULL;
        }
        if (ev->type == YAML_MAPPING_START_EVENT) {
            return parse_map(p, ev, path, depth);
        }
        return parse_seq(p, ev, path, depth);
    default:
        break;
    }
    cfw_diag_addf(p->diag, "%s:%zu:%zu: unexpected YAML event", p->file, ev->start_mark.line + 1,
                  ev->start_mark.column + 1);
    p->failed = true;
    return NULL;
}

/* Walks the stream: exactly one document (or none); everything else is refused. */
static struct cfw_node *parse_stream(struct parser *p, bool *ok)
{
    yaml_event_t ev;
    struct cfw_node *root = NULL;

    *ok = false;
    if (next_event(p, &ev) != 0) {
        return NULL;
    }
    yaml_event_delete(&ev); /* STREAM_START */
    if (next_event(p, &ev) != 0) {
        return NULL;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        *ok = true;
        return NULL;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    if (next_event(p, &ev) != 0) {
        return NULL;
    }
    if (ev.type != YAML_DOCUMENT_END_EVENT) {
        root = parse_node(p, &ev, "", 1);
        yaml_event_delete(&ev);
        if (root == NULL) {
            return NULL;
        }
        if (next_event(p, &ev) != 0) {
            node_free(root);
            return NULL;
        }
    }
    yaml_event_delete(&ev); /* DOCUMENT_END */
    if (next_event(p, &ev) != 0) {
        node_free(root);
        return NULL;
    }
    if (ev.type == YAML_DOCUMENT_START_EVENT) {
        cfw_diag_addf(p->diag,
                      "%s:%zu:%zu: multiple YAML documents are not supported (put everything in "
                      "one document)",
                      p->file, ev.start_mark.line + 1, ev.start_mark.column + 1);
        yaml_event_delete(&ev);
        node_free(root);
        p->failed = true;
        return NULL;
    }
    yaml_event_delete(&ev);
    if (node_is_null(root)) {
        node_free(root);
        root = NULL;
    }
    *ok = true;
    return root;
}

/*
 * Problems that leave a complete tree (duplicate keys, anchors, NUL in a value) are reported
 * and the document is still returned, so later checks report their problems too; the caller
 * fails when diag holds anything. NULL means there is no tree at all.
 */
struct cfw_doc *cfw_yaml_load_string(const char *name, const char *text, size_t len,
                                     struct cfw_diag *diag)
{
    struct parser p = {.diag = diag};
    struct cfw_doc *doc;
    bool ok;

    if (len > CFW_YAML_MAX_SIZE) {
        cfw_diag_addf(diag, "%s: file is larger than %u bytes", name, CFW_YAML_MAX_SIZE);
        return NULL;
    }
    doc = cfw_xcalloc(1, sizeof(*doc));
    doc->file = cfw_xstrdup(name);
    p.file = doc->file;
    if (!yaml_parser_initialize(&p.yp)) {
        cfw_diag_addf(diag, "%s: cannot initialise the YAML parser", name);
        cfw_doc_free(doc);
        return NULL;
    }
    yaml_parser_set_input_string(&p.yp, (const unsigned char *)text, len);
    doc->root = parse_stream(&p, &ok);
    yaml_parser_delete(&p.yp);
    if (!ok || p.failed) {
        cfw_doc_free(doc);
        return NULL;
    }
    return doc;
}

/* Reads a YAML file (a regular file of at most 4 MiB) and parses it. */
struct cfw_doc *cfw_yaml_load_file(const char *path, struct cfw_diag *diag)
{
    struct cfw_doc *doc;
    struct cfw_err err = {0};
    size_t len;
    char *buf = cfw_fs_read_file(path, CFW_YAML_MAX_SIZE, &len, &err);

    if (buf == NULL && err.code == EFBIG) {
        cfw_diag_addf(diag, "%s: file is larger than %u bytes", path, CFW_YAML_MAX_SIZE);
        return NULL;
    }
    if (buf == NULL) {
        cfw_diag_addf(diag, "%s", err.msg);
        return NULL;
    }
    doc = cfw_yaml_load_string(path, buf, len, diag);
    free(buf);
    return doc;
}

/* ---- getters ---- */

/* Looks up a key in a map node. */
const struct cfw_node *cfw_node_get(const struct cfw_node *map, const char *key)
{
    if (map == NULL || map->type != CFW_NODE_MAP) {
        return NULL;
    }
    for (size_t i = 0; i < map->n; i++) {
        if (strcmp(map->keys[i], key) == 0) {
            return map->items[i];
        }
    }
    return NULL;
}

static char *valid_list(const char *const *valid)
{
    struct cfw_buf b;

    cfw_buf_init(&b, CFW_BUF_MAX_BUILT);
    for (size_t i = 0; valid[i] != NULL; i++) {
        if (i > 0) {
            cfw_buf_puts(&b, ", ");
        }
        cfw_buf_puts(&b, valid[i]);
    }
    return cfw_buf_take(&b);
}

/* Reports keys of a map that are not in valid, listing the valid ones. */
int cfw_node_check_keys(const struct cfw_node *map, const char *path, const char *const *valid,
                        struct cfw_diag *diag)
{
    int problems = 0;
    char *list;
    char buf[SHOW_MAX + 4];

    if (map == NULL || node_is_null(map)) {
        return 0;
    }
    list = valid_list(valid);
    if (map->type != CFW_NODE_MAP) {
        cfw_diag_add(diag, map, path, "expected a map with keys %s, got %s", list, node_kind(map));
        free(list);
        return 1;
    }
    for (size_t i = 0; i < map->n; i++) {
        bool known = false;

        for (size_t j = 0; valid[j] != NULL; j++) {
            if (strcmp(map->keys[i], valid[j]) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            char *child = join_path(path, map->keys[i]);

            cfw_diag_add(diag, map->keynodes[i], child, "unknown key '%s' (valid keys: %s)",
                         shown(map->keys[i], buf, sizeof(buf)), list);
            free(child);
            problems++;
        }
    }
    free(list);
    return problems;
}

/* Finds key's scalar value: 0 absent or null, 1 found, -1 not a scalar (reported). */
static int get_scalar(const struct cfw_node *map, const char *key, const char *path,
                      const char *want, const struct cfw_node **out, struct cfw_diag *diag)
{
    const struct cfw_node *n = cfw_node_get(map, key);
    char *child;

    if (n == NULL || node_is_null(n)) {
        return 0;
    }
    if (n->type != CFW_NODE_SCALAR) {
        child = key_path(path, key);
        cfw_diag_add(diag, n, child, "expected %s, got %s", want, node_kind(n));
        free(child);
        return -1;
    }
    *out = n;
    return 1;
}

/* Reads a string value. */
int cfw_node_str(const struct cfw_node *map, const char *key, const char *path, const char **out,
                 struct cfw_diag *diag)
{
    const struct cfw_node *n = NULL;
    int rc = get_scalar(map, key, path, "a string", &n, diag);

    if (rc == 1) {
        *out = n->value;
    }
    return rc;
}

char *cfw_node_required_str(const struct cfw_node *map, const char *key, const char *path,
                            const char *missing, struct cfw_diag *diag)
{
    const char *s = NULL;
    int rc = cfw_node_str(map, key, path, &s, diag);

    if (rc == 1) {
        return cfw_xstrdup(s);
    }
    /* absent or null (`name: ~`): missing alike; a wrong type was reported already */
    if (rc == 0) {
        cfw_diag_add(diag, map, path, "%s", missing);
    }
    return NULL;
}

/* Reads true/false (also yes/no, on/off). */
int cfw_node_bool(const struct cfw_node *map, const char *key, const char *path, bool *out,
                  struct cfw_diag *diag)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    const struct cfw_node *n = NULL;
    int rc = get_scalar(map, key, path, "true or false", &n, diag);
    char buf[SHOW_MAX + 4];
    char *child;

    if (rc != 1) {
        return rc;
    }
    for (size_t i = 0; yes[i] != NULL; i++) {
        if (strcasecmp(n->value, yes[i]) == 0) {
            *out = true;
            return 1;
        }
        if (strcasecmp(n->value, no[i]) == 0) {
            *out = false;
            return 1;
        }
    }
    child = key_path(path, key);
    cfw_diag_add(diag, n, child, "invalid boolean '%s' (use true or false)",
                 shown(n->value, buf, sizeof(buf)));
    free(child);
    return -1;
}

/* Reads a whole number within min..max. */
int cfw_node_u64(const struct cfw_node *map, const char *key, const char *path, uint64_t min,
                 uint64_t max, uint64_t *out, struct cfw_diag *diag)
{
    const struct cfw_node *n = NULL;
    int rc = get_scalar(map, key, path, "a number", &n, diag);
    char buf[SHOW_MAX + 4];
    uint64_t v;
    char *child;

    if (rc != 1) {
        return rc;
    }
    child = key_path(path, key);
    if (cfw_parse_u64(n->value, &v) != 0) {
        cfw_diag_add(diag, n, child, "invalid number '%s' (use a whole number from %llu to %llu)",
                     shown(n->value, buf, sizeof(buf)), (unsigned long long)min,
                     (unsigned long long)max);
        free(child);
        return -1;
    }
    if (v < min || v > max) {
        cfw_diag_add(diag, n, child, "%llu is out of range (use %llu to %llu)",
                     (unsigned long long)v, (unsigned long long)min, (unsigned long long)max);
        free(child);
        return -1;
    }
    free(child);
    *out = v;
    return 1;
}

/* Reads a duration such as 30s, 5m or 4h into milliseconds. */
int cfw_node_duration(const struct cfw_node *map, const char *key, const char *path,
                      int64_t *out_ms, struct cfw_diag *diag)
{
    const struct cfw_node *n = NULL;
    int rc = get_scalar(map, key, path, "a duration", &n, diag);
    char buf[SHOW_MAX + 4];
    int64_t ms;
    char *child;

    if (rc != 1) {
        return rc;
    }
    if (cfw_parse_duration_ms(n->value, &ms) != 0) {
        child = key_path(path, key);
        cfw_diag_add(diag, n, child, "invalid duration '%s' (use e.g. 30s, 5m, 4h)",
                     shown(n->value, buf, sizeof(buf)));
        free(child);
        return -1;
    }
    *out_ms = ms;
    return 1;
}

/* Reads a string or a list of strings into a NULL-terminated array. */
int cfw_node_strlist(const struct cfw_node *map, const char *key, const char *path, char ***out,
                     struct cfw_diag *diag)
{
    const struct cfw_node *n = cfw_node_get(map, key);
    char **list;
    char *child;
    int rc = 1;

    if (n == NULL || node_is_null(n)) {
        return 0;
    }
    if (n->type == CFW_NODE_SCALAR) {
        list = cfw_xcalloc(2, sizeof(*list));
        list[0] = cfw_xstrdup(n->value);
        *out = list;
        return 1;
    }
    child = key_path(path, key);
    if (n->type != CFW_NODE_SEQ) {
        cfw_diag_add(diag, n, child, "expected a string or a list of strings, got %s",
                     node_kind(n));
        free(child);
        return -1;
    }
    list = cfw_xcalloc(n->n + 1, sizeof(*list));
    for (size_t i = 0; i < n->n; i++) {
        const struct cfw_node *it = n->items[i];

        if (it->type != CFW_NODE_SCALAR) {
            char *ipath = cfw_xasprintf("%s[%zu]", child, i);

            cfw_diag_add(diag, it, ipath, "expected a string, got %s", node_kind(it));
            free(ipath);
            rc = -1;
            continue;
        }
        list[i] = cfw_xstrdup(it->value);
    }
    free(child);
    if (rc != 1) {
        for (size_t i = 0; i < n->n; i++) {
            free(list[i]);
        }
        free(list);
        return rc;
    }
    *out = list;
    return 1;
}

/* Frees a list from cfw_node_strlist; NULL is fine. */
char **cfw_strlist_dup(char *const *list)
{
    size_t n = 0;
    char **out;

    if (list == NULL) {
        return NULL;
    }
    while (list[n] != NULL) {
        n++;
    }
    out = cfw_xcalloc(n + 1, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        out[i] = cfw_xstrdup(list[i]);
    }
    return out;
}

void cfw_strlist_free(char **list)
{
    if (list == NULL) {
        return;
    }
    for (size_t i = 0; list[i] != NULL; i++) {
        free(list[i]);
    }
    free(list);
}

/* ---- secrets ---- */

/* "${NAME}" with NAME a valid environment variable name: returns the name length, else 0. */
static size_t env_ref(const char *v)
{
    size_t n = strlen(v);

    if (n < 4 || v[0] != '$' || v[1] != '{' || v[n - 1] != '}') {
        return 0;
    }
    for (size_t i = 2; i < n - 1; i++) {
        char c = v[i];
        bool ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (i > 2 && c >= '0' && c <= '9');

        if (!ok) {
            return 0;
        }
    }
    return n - 3;
}

static void secret_wipe(char *s, size_t n)
{
    if (s != NULL) {
        explicit_bzero(s, n);
        free(s);
    }
}

/*
 * Reads a secret file: a regular file, not readable or writable by group or others, at most
 * CFW_SECRET_MAX bytes, no NUL bytes; trailing CR/LF removed. Messages name the file (never its
 * contents), followed by note (the other paths tried for a relative name, or "").
 */
static int read_secret_file(const char *file, const char *note, const struct cfw_node *at,
                            const char *path, char **out, struct cfw_diag *diag)
{
    struct cfw_err err = {0};
    struct stat st;
    char *buf;
    size_t len = 0;
    int fd;

    fd = cfw_fs_open_regular(file, &st, &err);
    if (fd < 0 && err.code == EINVAL) {
        /* a FIFO, a directory... */
        cfw_diag_add(diag, at, path, "secret file %s%s", err.msg, note);
        return -1;
    }
    if (fd < 0) {
        cfw_diag_add(diag, at, path, "cannot open secret file %s: %s%s", file, strerror(err.code),
                     note);
        return -1;
    }
    if ((st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
        cfw_diag_add(diag, at, path,
                     "secret file %s is readable by group/others (mode %04o); chmod 600 it%s", file,
                     (unsigned)(st.st_mode & 07777), note);
        close(fd);
        return -1;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        cfw_diag_add(diag, at, path,
                     "secret file %s is writable by group/others (mode %04o); chmod 600 it%s", file,
                     (unsigned)(st.st_mode & 07777), note);
        close(fd);
        return -1;
    }
    if (st.st_size > (off_t)CFW_SECRET_MAX) {
        cfw_diag_add(diag, at, path, "secret file %s is larger than %u bytes%s", file,
                     CFW_SECRET_MAX, note);
        close(fd);
        return -1;
    }
    buf = cfw_xmalloc(CFW_SECRET_MAX + 2);
    while (len <= CFW_SECRET_MAX) {
        ssize_t r = read(fd, buf + len, CFW_SECRET_MAX + 1 - len);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            cfw_diag_add(diag, at, path, "cannot read secret file %s: %s%s", file, strerror(errno),
                         note);
            close(fd);
            secret_wipe(buf, CFW_SECRET_MAX + 2);
            return -1;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    if (len > CFW_SECRET_MAX) {
        cfw_diag_add(diag, at, path, "secret file %s is larger than %u bytes%s", file,
                     CFW_SECRET_MAX, note);
        secret_wipe(buf, CFW_SECRET_MAX + 2);
        return -1;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len) != NULL) {
        cfw_diag_add(diag, at, path, "secret file %s contains a NUL byte%s", file, note);
        secret_wipe(buf, CFW_SECRET_MAX + 2);
        return -1;
    }
    if (len == 0) {
        cfw_diag_add(diag, at, path, "secret file %s is empty%s", file, note);
        secret_wipe(buf, CFW_SECRET_MAX + 2);
        return -1;
    }
    *out = cfw_xstrndup(buf, len);
    secret_wipe(buf, CFW_SECRET_MAX + 2);
    return 0;
}

static int secret_from_value(const struct cfw_node *n, const char *path, char **out,
                             struct cfw_diag *diag)
{
    size_t namelen = env_ref(n->value);
    char name[256];
    const char *v;

    if (namelen == 0) {
        if (n->value[0] == '\0') {
            cfw_diag_add(diag, n, path, "the secret is empty");
            return -1;
        }
        *out = cfw_xstrdup(n->value);
        return 1;
    }
    if (namelen >= sizeof(name)) {
        cfw_diag_add(diag, n, path, "environment variable name is too long");
        return -1;
    }
    memcpy(name, n->value + 2, namelen);
    name[namelen] = '\0';
    v = getenv(name);
    if (v == NULL) {
        cfw_diag_add(diag, n, path, "environment variable %s is not set", name);
        return -1;
    }
    if (v[0] == '\0') {
        cfw_diag_add(diag, n, path, "environment variable %s is empty", name);
        return -1;
    }
    *out = cfw_xstrdup(v);
    /* the caller registers what it keeps; one taken from the environment is a secret anyway */
    cfw_secret_register(*out, strlen(*out));
    return 1;
}

/* dir/name, where dir is the directory part of file ("." when it has none). */
static char *path_beside(const char *file, const char *name)
{
    const char *slash = file != NULL ? strrchr(file, '/') : NULL;

    if (slash == NULL) {
        return cfw_xasprintf("./%s", name);
    }
    if (slash == file) {
        return cfw_xasprintf("/%s", name);
    }
    return cfw_xasprintf("%.*s/%s", (int)(slash - file), file, name);
}

/*
 * Why this order: under systemd, LoadCredential=NAME:/path copies the secret to
 * $CREDENTIALS_DIRECTORY/NAME, so that is where the service finds it. The configuration
 * file's directory comes next, as for rules.files, so the same configuration also works run by
 * hand (cfwatchd --check-config -c /etc/cfwatchd/cfwatchd.yaml) from any directory. The current
 * directory is never searched unless it holds the configuration. The first candidate that
 * exists is used, and its problems are reported: a loose or empty file in the credentials
 * directory is an error, not a reason to read another file. Only "does not exist" moves on.
 */
static int secret_from_file(const struct cfw_node *n, const char *path, char **out,
                            struct cfw_diag *diag)
{
    const char *file = n->value;
    const char *creds = getenv("CREDENTIALS_DIRECTORY");
    bool have_creds = creds != NULL && creds[0] != '\0';
    char *cand[2] = {NULL, NULL};
    size_t ncand = 0;
    struct cfw_buf tried;
    char *note = NULL;
    int rc = -1;

    cfw_buf_init(&tried, CFW_BUF_MAX_BUILT);
    if (file[0] == '\0') {
        cfw_diag_add(diag, n, path, "empty file name");
        return -1;
    }
    if (file[0] == '/') {
        rc = read_secret_file(file, "", n, path, out, diag);
        goto out;
    }
    if (have_creds) {
        cand[ncand++] = cfw_xasprintf("%s/%s", creds, file);
    }
    cand[ncand] = path_beside(n->file, file);
    if (ncand > 0 && strcmp(cand[0], cand[ncand]) == 0) {
        free(cand[ncand]);
        cand[ncand] = NULL;
    } else {
        ncand++;
    }
    for (size_t i = 0; i < ncand; i++) {
        cfw_buf_printf(&tried, "%s%s", i > 0 ? ", " : "", cand[i]);
        if (access(cand[i], F_OK) != 0 && (errno == ENOENT || errno == ENOTDIR)) {
            continue;
        }
        note = i > 0 ? cfw_xasprintf(" (tried %s)", tried.data) : cfw_xstrdup("");
        rc = read_secret_file(cand[i], note, n, path, out, diag);
        goto out;
    }
    /* LoadCredential= IDs cannot hold a '/' */
    if (have_creds) {
        cfw_diag_add(diag, n, path,
                     "secret file %s not found (tried %s); under systemd, "
                     "LoadCredential=%s:/path/to/file puts it in $CREDENTIALS_DIRECTORY",
                     file, tried.data, strchr(file, '/') == NULL ? file : "NAME");
    } else {
        cfw_diag_add(diag, n, path,
                     "secret file %s not found (tried %s); $CREDENTIALS_DIRECTORY is not set: "
                     "under systemd, LoadCredential=%s:/path/to/file puts it there (by hand, "
                     "set CREDENTIALS_DIRECTORY to the directory that holds it)",
                     file, tried.data, strchr(file, '/') == NULL ? file : "NAME");
    }
out:
    free(cand[0]);
    free(cand[1]);
    free(note);
    cfw_buf_free(&tried);
    if (rc == 0) {
        cfw_secret_register(*out, strlen(*out));
    }
    return rc == 0 ? 1 : -1;
}

/* Reads a secret from key (a value or "${ENV}") or from the file named by key_file. */
int cfw_node_secret(const struct cfw_node *map, const char *key, const char *key_file,
                    const char *path, char **out, struct cfw_diag *diag)
{
    const struct cfw_node *vn = NULL;
    const struct cfw_node *fn = NULL;
    int rv = get_scalar(map, key, path, "a string", &vn, diag);
    int rf = key_file != NULL ? get_scalar(map, key_file, path, "a file name", &fn, diag) : 0;
    char *child;
    int rc;

    if (rv < 0 || rf < 0) {
        return -1;
    }
    if (rv == 1 && rf == 1) {
        child = key_path(path, key_file);
        cfw_diag_add(diag, fn, child, "set either %s or %s, not both", key, key_file);
        free(child);
        return -1;
    }
    if (rv == 1) {
        child = key_path(path, key);
        rc = secret_from_value(vn, child, out, diag);
    } else if (rf == 1) {
        child = key_path(path, key_file);
        rc = secret_from_file(fn, child, out, diag);
    } else {
        return 0;
    }
    free(child);
    return rc;
}
