/* Unit tests for silence.c: matchers (exact, regex anchored, negated, fields), windows, expiry,
 * the JSON round trip and replacement by id, errors naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/silence.h"

#define NOW 1800000000000LL

static struct cfw_incident incident(const char *rule, const char *script, const char *module)
{
    struct cfw_incident inc = {0};

    inc.rule = (char *)rule;
    inc.key = (char *)"k";
    inc.severity = CFW_SEV_ERROR;
    if (script != NULL) {
        cfw_fields_set(&inc.fields, "script", script);
    }
    if (module != NULL) {
        cfw_fields_set(&inc.fields, "module", module);
    }
    return inc;
}

static const char *add(struct cfw_silences *set, const char *json, struct cfw_err *err)
{
    json_t *o = json_loads(json, 0, NULL);
    const char *id;

    assert_non_null(o);
    id = cfw_silences_add(set, o, NOW, err);
    json_decref(o);
    return id;
}

static void test_matchers(void **state)
{
    struct cfw_silences *set = cfw_silences_new();
    struct cfw_err err = {0};
    struct cfw_incident a = incident("py-src-import", "py-api", "src");
    struct cfw_incident b = incident("py-src-import", "py-api-2", "src");
    struct cfw_incident c = incident("worker-hung", "py-api", NULL);
    const char *id;

    (void)state;
    id = add(set,
             "{\"matchers\": [{\"name\": \"script\", \"value\": \"py-api\"},"
             " {\"name\": \"rule\", \"value\": \"py-.*\", \"regex\": true},"
             " {\"name\": \"severity\", \"value\": \"info\", \"negate\": true}],"
             " \"duration\": \"2h\", \"created_by\": \"alice\", \"comment\": \"deploy\"}",
             &err);
    assert_non_null(id);
    assert_int_equal(strlen(id), 32);
    assert_string_equal(cfw_silences_match(set, &a, NOW + 1), id);
    assert_null(cfw_silences_match(set, &b, NOW + 1));                 /* exact, not a prefix */
    assert_null(cfw_silences_match(set, &c, NOW + 1));                 /* the regex is anchored */
    assert_null(cfw_silences_match(set, &a, NOW - 1));                 /* not yet */
    assert_null(cfw_silences_match(set, &a, NOW + 2 * 3600 * 1000LL)); /* over */
    assert_int_equal(cfw_silences_active(set, NOW), 1);
    /* a field the incident lacks is "" */
    id = add(set,
             "{\"matchers\": [{\"name\": \"module\", \"value\": \"\"}], \"ends_at\": "
             "1800000100000, \"created_by\": \"a\", \"comment\": \"b\"}",
             &err);
    assert_non_null(id);
    assert_string_equal(cfw_silences_match(set, &c, NOW), id);
    assert_int_equal(cfw_silences_expire(set, id, NOW + 5), 0);
    assert_null(cfw_silences_match(set, &c, NOW + 6));
    assert_int_equal(cfw_silences_expire(set, id, NOW + 7), -1);
    cfw_fields_clear(&a.fields);
    cfw_fields_clear(&b.fields);
    cfw_fields_clear(&c.fields);
    cfw_silences_free(set);
}

static void test_errors_name_the_field(void **state)
{
    struct cfw_silences *set = cfw_silences_new();
    static const struct {
        const char *json;
        const char *field;
    } bad[] = {
        {"{\"duration\": \"1h\", \"created_by\": \"a\", \"comment\": \"b\"}", "matchers"},
        {"{\"matchers\": [{\"value\": \"x\"}], \"duration\": \"1h\", \"created_by\": \"a\", "
         "\"comment\": \"b\"}",
         "matchers[0].name"},
        {"{\"matchers\": [{\"name\": \"x\", \"value\": \"[\", \"regex\": true}], \"duration\": "
         "\"1h\", \"created_by\": \"a\", \"comment\": \"b\"}",
         "matchers[0].value"},
        {"{\"matchers\": [{\"name\": \"x\", \"value\": \"y\"}], \"created_by\": \"a\", "
         "\"comment\": \"b\"}",
         "ends_at or duration"},
        {"{\"matchers\": [{\"name\": \"x\", \"value\": \"y\"}], \"duration\": \"1h\", "
         "\"comment\": \"b\"}",
         "created_by"},
        {"{\"matchers\": [{\"name\": \"x\", \"value\": \"y\"}], \"duration\": \"-1h\", "
         "\"created_by\": \"a\", \"comment\": \"b\"}",
         "duration"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cfw_err err = {0};
        assert_null(add(set, bad[i].json, &err));
        if (strstr(err.msg, bad[i].field) == NULL) {
            fail_msg("case %zu: '%s' does not name %s", i, err.msg, bad[i].field);
        }
    }
    assert_int_equal(cfw_silences_active(set, NOW), 0);
    cfw_silences_free(set);
}

static void test_round_trip_keeps_ids_and_expiry(void **state)
{
    struct cfw_silences *set = cfw_silences_new();
    struct cfw_silences *back = cfw_silences_new();
    struct cfw_err err = {0};
    struct cfw_incident a = incident("r", "s", NULL);
    char id1[33], id2[33];
    json_t *arr;

    (void)state;
    snprintf(id1, sizeof(id1), "%s",
             add(set,
                 "{\"matchers\": [{\"name\": \"script\", \"value\": \"s\"}], \"duration\": "
                 "\"1h\", \"created_by\": \"a\", \"comment\": \"b\"}",
                 &err));
    snprintf(id2, sizeof(id2), "%s",
             add(set,
                 "{\"matchers\": [{\"name\": \"rule\", \"value\": \"r\"}], \"duration\": "
                 "\"1h\", \"created_by\": \"a\", \"comment\": \"b\"}",
                 &err));
    cfw_silences_expire(set, id2, NOW);
    arr = cfw_silences_json(set, NOW);
    assert_int_equal(cfw_silences_restore(back, arr, NOW), 0);
    json_decref(arr);
    assert_string_equal(cfw_silences_match(back, &a, NOW + 1), id1);
    assert_int_equal(cfw_silences_active(back, NOW + 1), 1);
    /* a newer record of the same silence replaces it (journal replay) */
    cfw_silences_expire(set, id1, NOW + 10);
    arr = json_pack("[o]", cfw_silence_json(set, id1, NOW + 10));
    assert_int_equal(cfw_silences_restore(back, arr, NOW + 10), 0);
    json_decref(arr);
    assert_null(cfw_silences_match(back, &a, NOW + 11));
    /* forgotten a day after their end */
    cfw_silences_gc(back, NOW + 10 + CFW_SILENCE_KEEP_EXPIRED_MS + 1);
    arr = cfw_silences_json(back, NOW);
    assert_int_equal(json_array_size(arr), 0);
    json_decref(arr);
    cfw_fields_clear(&a.fields);
    cfw_silences_free(set);
    cfw_silences_free(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matchers),
        cmocka_unit_test(test_errors_name_the_field),
        cmocka_unit_test(test_round_trip_keeps_ids_and_expiry),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
