/*
 * Fuzz target: the decoder. The first byte picks the record kind (text or json) and whether the
 * record carries a time; the rest is the record (NUL-terminated at len, as the framer hands it
 * over). Checked for every event: its text is well-formed UTF-8 without NUL, terminated at len;
 * every field key and value is well-formed UTF-8 without control characters and within the
 * decoder's field cap; kind is one of the documented kinds; the event count matches. The
 * text-derived field extractor also runs on the raw bytes and must leave well-formed fields,
 * the same with every scanner run as with the scanners skipped whose marker bytes are absent.
 */
#include <string.h>

#include "cfwatchd/decode.h"
#include "cfwatchd/log.h"
#include "decode_int.h"
#include "fuzz_util.h"

/* The decoder's cap on one field value (CFW_DECODE_MAX_FIELD in src/decode.c). */
#define FIELD_MAX 1024u

static void check_fields(const struct cfw_fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        const char *k = f->v[i].key;
        const char *v = f->v[i].value;
        size_t vn = strlen(v);

        FUZZ_CHECK(fuzz_utf8_clean(k, strlen(k)));
        FUZZ_CHECK(fuzz_utf8_clean(v, vn));
        FUZZ_CHECK(vn <= FIELD_MAX);
        for (size_t j = 0; j < vn; j++) {
            FUZZ_CHECK((unsigned char)v[j] >= 0x20 && v[j] != 0x7f);
        }
        for (size_t j = 0; j < i; j++) {
            FUZZ_CHECK(strcmp(f->v[j].key, k) != 0);
        }
    }
}

/* The same fields in the same order. */
static bool fields_equal(const struct cfw_fields *a, const struct cfw_fields *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->v[i].key, b->v[i].key) != 0 || strcmp(a->v[i].value, b->v[i].value) != 0) {
            return false;
        }
    }
    return true;
}

static void on_event(const struct cfw_event *ev, void *arg)
{
    static const char *const kinds[] = {"text", "json", "exception", "log", "outcome"};
    const char *kind = cfw_fields_get(&ev->fields, "kind");
    size_t *count = arg;
    bool known = false;

    (*count)++;
    FUZZ_CHECK(ev->text != NULL);
    FUZZ_CHECK(ev->text[ev->len] == '\0');
    FUZZ_CHECK(fuzz_utf8_clean(ev->text, ev->len));
    FUZZ_CHECK(ev->line <= ev->line_end);
    FUZZ_CHECK(kind != NULL);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        known = known || strcmp(kind, kinds[i]) == 0;
    }
    FUZZ_CHECK(known);
    check_fields(&ev->fields);
}

FUZZ_INIT_QUIET

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_u8(&in);
    struct cfw_record rec = {0};
    struct cfw_decode_stats stats = {0};
    struct cfw_fields extracted = {0};
    struct cfw_fields all = {0};
    char *text = cfw_xmalloc(in.n + 1);
    size_t count = 0;
    size_t n;

    memcpy(text, in.p, in.n);
    text[in.n] = '\0';
    rec.kind = (mode & 1) != 0 ? CFW_REC_JSON : CFW_REC_TEXT;
    rec.text = text;
    rec.len = in.n;
    rec.input = (mode & 2) != 0 ? "logpush:\xff\x01name" : "fuzz-input";
    rec.line = 3;
    rec.line_end = 3 + (mode >> 4);
    rec.time = (mode & 4) != 0 ? "2026-08-16T08:07:27.480Z" : NULL;
    n = cfw_decode_record(&rec, on_event, &count, &stats);
    FUZZ_CHECK(n == count);
    FUZZ_CHECK(stats.events == count);
    FUZZ_CHECK(rec.kind == CFW_REC_JSON || stats.json_records == 0);

    /* the extractor alone, on the raw bytes (it must cope with anything) */
    if ((mode & 8) != 0) {
        cfw_fields_set(&extracted, "script", "");
        cfw_fields_set(&all, "script", "");
    }
    cfw_extract_fields(text, in.n, &extracted);
    check_fields(&extracted);
    cfw_decode_set_gates(false);
    cfw_extract_fields(text, in.n, &all);
    cfw_decode_set_gates(true);
    FUZZ_CHECK(fields_equal(&extracted, &all));
    cfw_fields_clear(&extracted);
    cfw_fields_clear(&all);
    free(text);
    return 0;
}
