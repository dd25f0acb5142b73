/* Test helpers: strings looked up in JSON by a dotted path, and tables of expected ones. */
#ifndef CFW_TEST_JSON_CHECK_H
#define CFW_TEST_JSON_CHECK_H

#include <stddef.h>

#include <jansson.h>

/* The string at a dotted path of objects ("payload.custom_details.hint"), or NULL. */
const char *json_str_at(json_t *o, const char *path);

/* A string expected at a dotted path. */
struct json_want {
    const char *path;
    const char *want;
};

/* Asserts each string of the table (fails naming the path). */
void assert_json_strs(json_t *o, const struct json_want *w, size_t n);
/* assert_json_strs() of {path, want} pairs given as arguments. */
#define ASSERT_JSON_STRS(o, ...)                                                                   \
    assert_json_strs((o), (const struct json_want[]){__VA_ARGS__},                                 \
                     sizeof((const struct json_want[]){__VA_ARGS__}) / sizeof(struct json_want))

#endif
