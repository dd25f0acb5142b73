/*
 * Unit tests for secrets.c: the derived forms, the composite helpers (basic auth, headers, URLs,
 * environment names), overlapping and nested secrets, the minimum length, the caps, the
 * lifetime over configuration loads and holders (a rejected reload keeps the running secrets),
 * the in-place scrub, the log's catch-all, incidents and deployments made from scrubbed text,
 * and the fast scrub against a brute-force oracle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfwatchd/common.h"
#include "cfwatchd/deploys.h"
#include "cfwatchd/incident.h"
#include "cfwatchd/log.h"
#include "cfwatchd/pipeline.h"
#include "cfwatchd/rules.h"
#include "cfwatchd/secrets.h"
#include "cfwatchd/yaml.h"

static int setup(void **state)
{
    (void)state;
    cfw_secrets_clear();
    return 0;
}

/* Asserts that scrubbing text gives want. */
static void check(const char *text, const char *want)
{
    char *got = cfw_secrets_scrub(text);

    if (strcmp(got, want) != 0) {
        fail_msg("scrub(\"%s\") = \"%s\", want \"%s\"", text != NULL ? text : "(null)", got, want);
    }
    free(got);
}

/* A secret with every kind of byte the forms treat apart: '/', '"', '\', '?', '>' and '~'. */
#define ODD "a/b\"c\\d?>?~"

static void test_derived_forms(void **state)
{
    static const struct {
        const char *form;
        const char *what;
    } forms[] = {
        {ODD, "raw"},
        {"a%2Fb%22c%5Cd%3F%3E%3F~", "percent-encoded, upper case"},
        {"a%2fb%22c%5cd%3f%3e%3f~", "percent-encoded, lower case"},
        {"a/b\\\"c\\\\d?>?~", "quotes and backslashes escaped (JSON, the log)"},
        {"a\\/b\\\"c\\\\d?>?~", "slashes escaped too"},
        {"YS9iImNcZD8+P34=", "base64"},
        {"YS9iImNcZD8+P34", "base64 without padding"},
        {"YS9iImNcZD8-P34=", "base64url"},
        {"YS9iImNcZD8-P34", "base64url without padding"},
    };

    (void)state;
    assert_int_equal(cfw_secret_register(ODD, strlen(ODD)), 0);
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char text[128];
        char *got;
        snprintf(text, sizeof(text), "[%s]", forms[i].form);
        got = cfw_secrets_scrub(text);
        if (strcmp(got, "[***]") != 0) {
            fail_msg("%s form not scrubbed: %s", forms[i].what, got);
        }
        free(got);
        assert_true(cfw_secrets_found(text, strlen(text)));
    }
    /* registering again adds nothing */
    assert_int_equal(cfw_secrets_count(), sizeof(forms) / sizeof(forms[0]));
    cfw_secret_register(ODD, strlen(ODD));
    assert_int_equal(cfw_secrets_count(), sizeof(forms) / sizeof(forms[0]));
    check("a/b\"c and ~ stay", "a/b\"c and ~ stay");
    assert_false(cfw_secrets_found("a/b\"c", 5));
}

static void test_basic_auth(void **state)
{
    (void)state;
    /* alice:pw:x!1 -> YWxpY2U6cHc6eCEx */
    assert_int_equal(cfw_secret_register_basic("alice", "pw:x!1"), 0);
    check("Authorization: Basic YWxpY2U6cHc6eCEx", "Authorization: Basic ***");
    check("alice:pw:x!1@host", "***@host");
    check("user alice, password pw:x!1", "user alice, password ***");
    check("pw%3Ax%211", "***");
}

static void test_header(void **state)
{
    struct cfw_secret_hold *h = cfw_secret_hold_new();

    (void)state;
    assert_int_equal(cfw_secret_hold_add_header(h, "Authorization: Bearer tok-12345"), 0);
    check("got Bearer tok-12345 back", "got *** back");
    check("token tok-12345 alone", "token *** alone");
    check("Bearer is a word", "Bearer is a word");
    /* a Basic value: its decoded pair and password too (u1:p2-secret) */
    assert_int_equal(cfw_secret_hold_add_header(h, "Proxy-Authorization: Basic dTE6cDItc2VjcmV0"),
                     0);
    check("dTE6cDItc2VjcmV0", "***");
    check("u1:p2-secret", "***");
    check("pass p2-secret", "pass ***");
    cfw_secret_hold_free(h);
}

static void test_url(void **state)
{
    struct cfw_secret_hold *h = cfw_secret_hold_new();

    (void)state;
    cfw_secret_hold_add_url(h, "https://hooks.slack.com/services/T000/B000/XyZsecretTOKEN123",
                            true);
    check("POST https://hooks.slack.com/services/T000/B000/XyZsecretTOKEN123 failed",
          "POST *** failed");
    check("path /services/T000/B000/XyZsecretTOKEN123", "path ***");
    check("token XyZsecretTOKEN123.", "token ***.");
    check("host hooks.slack.com", "host hooks.slack.com");
    /* curl decodes user:password and sends base64("am@user:p@ss:w") */
    cfw_secret_hold_add_url(h, "http://am%40user:p%40ss%3Aw@am.example:9093/base?api_key=k3y-value",
                            false);
    check("Authorization: Basic YW1AdXNlcjpwQHNzOnc=", "Authorization: Basic ***");
    check("am@user:p@ss:w", "***");
    check("password p@ss:w", "password ***");
    check("http://am%40user:p%40ss%3Aw@am.example:9093/base", "http://***@am.example:9093/base");
    check("?api_key=k3y-value", "?***");
    check("key k3y-value", "key ***");
    check("am.example:9093/base", "am.example:9093/base");
    /* words in a webhook URL are not tokens: only the URL itself is hidden everywhere */
    cfw_secret_hold_add_url(h, "https://example.com/api/alerts?format=json&key=abc", true);
    check("https://example.com/api/alerts?format=json&key=abc", "***");
    check("/api/alerts alerts json abc", "/api/alerts alerts json abc");
    check("?format=json&key=abc", "?***");
    cfw_secret_hold_free(h);
}

static void test_env_names(void **state)
{
    static const struct {
        const char *name;
        bool secret;
    } names[] = {
        {"CLOUDFLARE_API_TOKEN", true},
        {"CF_API_KEY", true},
        {"GITHUB_TOKEN", true},
        {"DB_PASSWORD", true},
        {"aws_secret_access_key", true},
        {"PD_ROUTING_KEY", true},
        {"SLACK_WEBHOOK_SECRET", true},
        {"PATH", false},
        {"HOME", false},
        {"CREDENTIALS_DIRECTORY", false},
        {"SSH_AUTH_SOCK", false},
        {"SORT_KEY", false},
        {"MONKEY", false},
        {"TOKENIZER_MODE", false},
        {"", false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (cfw_secret_env_name(names[i].name) != names[i].secret) {
            fail_msg("%s: %s, want %s", names[i].name,
                     cfw_secret_env_name(names[i].name) ? "secret" : "not secret",
                     names[i].secret ? "secret" : "not secret");
        }
    }
    assert_int_equal(cfw_secret_hold_add_env(NULL, "PATH", "/usr/bin:/bin"), 0);
    assert_int_equal(cfw_secrets_count(), 0);
    cfw_secret_hold_add_env(NULL, "CLOUDFLARE_API_TOKEN", "cf-env-token-123");
    check("bad token cf-env-token-123", "bad token ***");
}

static void test_overlap_longest_first(void **state)
{
    (void)state;
    /* a secret that contains another is hidden whole, not as "***ghij" */
    cfw_secret_register("abcdef", 6);
    cfw_secret_register("abcdefghij", 10);
    check("x abcdefghij y", "x *** y");
    check("x abcdef y", "x *** y");
    /* overlapping secrets hide everything they cover together */
    cfw_secret_register("ghijklmn", 8);
    check("<abcdefghijklmn>", "<***>");
    check("<efghijklmn>", "<ef***>");
    /* one after the other: each hidden */
    check("abcdefabcdef", "******");
    check("abcdef", "***");
    check("abcde", "abcde");
    check("", "");
}

static void test_short_secrets(void **state)
{
    (void)state;
    /* below the minimum the secret itself is not registered: it would mangle everything */
    assert_int_equal(cfw_secret_register("abc", 3), 0);
    check("abc abcd", "abc abcd");
    /* its longer forms are (base64 "YWJj") */
    check("YWJj", "***");
    cfw_secrets_clear();
    assert_int_equal(cfw_secret_register("", 0), 0);
    assert_int_equal(cfw_secrets_count(), 0);
    /* a short password still hides the pair and its base64 (bob:pw -> Ym9iOnB3) */
    cfw_secret_register_basic("bob", "pw");
    check("Basic Ym9iOnB3 and bob:pw, pw", "Basic *** and ***, pw");
    /* exactly the minimum is registered */
    cfw_secret_register("wxyz", CFW_SECRETS_MIN_LEN);
    check("wxyz", "***");
}

static void test_caps(void **state)
{
    char *big;
    int rc = 0;
    unsigned i;

    (void)state;
    big = malloc(CFW_SECRETS_MAX_LEN + 2);
    assert_non_null(big);
    memset(big, 'q', CFW_SECRETS_MAX_LEN + 1);
    big[CFW_SECRETS_MAX_LEN + 1] = '\0';
    assert_int_equal(cfw_secret_register(big, CFW_SECRETS_MAX_LEN + 1), -1);
    assert_int_equal(cfw_secrets_refused(), 1);
    assert_int_equal(cfw_secrets_count(), 0);
    free(big);
    /* forms up to the cap, then refused and counted; those kept still work */
    for (i = 0; rc == 0 && i < CFW_SECRETS_MAX * 2; i++) {
        char s[32];
        snprintf(s, sizeof(s), "capsecret-%06u", i);
        rc = cfw_secret_register(s, strlen(s));
    }
    assert_int_equal(rc, -1);
    assert_int_equal(cfw_secrets_count(), CFW_SECRETS_MAX);
    assert_true(cfw_secrets_refused() >= 2);
    check("capsecret-000000 capsecret-000001", "*** ***");
    cfw_secrets_clear();
    assert_int_equal(cfw_secrets_count(), 0);
    assert_int_equal(cfw_secrets_refused(), 0);
}

/*
 * A configuration load registers; objects hold. Config A runs; reloads B and C are rejected
 * (A's objects still run and hold their secrets); reload D succeeds and A's objects go.
 */
static void test_reload(void **state)
{
    struct cfw_secret_hold *a;
    struct cfw_secret_hold *b;
    struct cfw_secret_hold *d;

    (void)state;
    cfw_secrets_loading(); /* A */
    cfw_secret_register("token-of-A", 10);
    cfw_secret_register("shared-token", 12);
    cfw_secret_register("parse-only-A", 12);
    a = cfw_secret_hold_new();
    cfw_secret_hold_add(a, "token-of-A", 10);
    cfw_secret_hold_add(a, "shared-token", 12);
    check("token-of-A shared-token parse-only-A", "*** *** ***");

    cfw_secrets_loading(); /* B, rejected: its parse made and freed a holder */
    cfw_secret_register("token-of-B", 10);
    b = cfw_secret_hold_new();
    cfw_secret_hold_add(b, "token-of-B", 10);
    cfw_secret_hold_free(b);
    check("token-of-A shared-token parse-only-A token-of-B", "*** *** *** ***");

    cfw_secrets_loading(); /* C, rejected too */
    /* what A's objects hold stays; what only A's parse registered is gone after two loads */
    check("token-of-A shared-token parse-only-A token-of-B", "*** *** parse-only-A ***");

    cfw_secrets_loading(); /* D, in force: its objects hold, then A's go */
    cfw_secret_register("token-of-D", 10);
    cfw_secret_register("shared-token", 12);
    d = cfw_secret_hold_new();
    cfw_secret_hold_add(d, "token-of-D", 10);
    cfw_secret_hold_add(d, "shared-token", 12);
    cfw_secret_hold_free(a);
    check("token-of-A shared-token token-of-B token-of-D", "token-of-A *** token-of-B ***");

    cfw_secrets_loading(); /* E, rejected: D's secrets stay */
    cfw_secrets_loading();
    cfw_secrets_loading();
    check("shared-token token-of-D", "*** ***");
    cfw_secret_hold_free(d);
    check("shared-token token-of-D", "shared-token token-of-D");
}

static void test_clear_with_live_holders(void **state)
{
    struct cfw_secret_hold *old = cfw_secret_hold_new();

    (void)state;
    cfw_secrets_loading();
    cfw_secret_hold_add(old, "old-secret", 10);
    cfw_secrets_clear();
    check("old-secret", "old-secret");
    cfw_secrets_loading();
    cfw_secrets_loading();
    cfw_secrets_loading();
    {
        struct cfw_secret_hold *h = cfw_secret_hold_new();
        cfw_secret_hold_add(h, "new-secret", 10);
        /* the holder from before the clear releases nothing of the new one */
        cfw_secret_hold_free(old);
        check("new-secret", "***");
        cfw_secret_hold_free(h);
    }
    /* registered by the current load: kept until two more loads have passed */
    check("new-secret", "***");
    cfw_secrets_loading();
    check("new-secret", "***");
    cfw_secrets_loading();
    check("new-secret", "new-secret");
}

static void test_inplace(void **state)
{
    char buf[32];
    size_t n;

    (void)state;
    cfw_secret_register("hunter22", 8);
    /* exactly len bytes, no terminator: nothing is written past them */
    memcpy(buf, "xx hunter22hunter22", 19);
    memset(buf + 19, '#', sizeof(buf) - 19);
    n = cfw_secrets_scrub_inplace(buf, 19);
    assert_int_equal(n, 9);
    assert_memory_equal(buf, "xx ******", 9);
    assert_int_equal(buf[9], '\0');
    assert_int_equal(buf[19], '#');
    /* the secret fills the buffer: the mask is written, the length shrinks */
    memcpy(buf, "hunter22", 8);
    buf[8] = '#';
    n = cfw_secrets_scrub_inplace(buf, 8);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "***", 3);
    assert_int_equal(buf[8], '#');
    /* nothing to do */
    memcpy(buf, "clean", 6);
    assert_int_equal(cfw_secrets_scrub_inplace(buf, 5), 5);
    assert_string_equal(buf, "clean");
    assert_int_equal(cfw_secrets_scrub_inplace(NULL, 0), 0);
    check(NULL, "");
}

/* Reads what cfw_log printed to stderr while fn ran. */
static char *capture_log(void (*fn)(void))
{
    FILE *tmp = tmpfile();
    int saved = dup(2);
    char *out = calloc(1, 65536);
    size_t n;

    assert_non_null(tmp);
    assert_non_null(out);
    fflush(stderr);
    dup2(fileno(tmp), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    n = fread(out, 1, 65535, tmp);
    out[n] = '\0';
    fclose(tmp);
    return out;
}

static void log_some(void)
{
    char *pad = malloc(5000);

    cfw_log_err("API said: Bearer log-secret-77 is invalid");
    /* a line longer than the log's buffer with the secret across the cut */
    memset(pad, 'p', 4080);
    pad[4080] = '\0';
    cfw_log_warn("%s log-secret-77 tail", pad);
    free(pad);
}

static void test_log_lines(void **state)
{
    char *out;

    (void)state;
    unsetenv("JOURNAL_STREAM");
    cfw_log_init(CFW_LOG_DEBUG);
    cfw_secret_register("log-secret-77", 13);
    out = capture_log(log_some);
    assert_null(strstr(out, "log-secret-77"));
    assert_null(strstr(out, "log-secret")); /* not even its start at the cut */
    assert_non_null(strstr(out, "API said: Bearer *** is invalid"));
    assert_non_null(strstr(out, "ppp *** tail"));
    free(out);
}

/* An incident is made from scrubbed copies: its key, title, hint, fields and sample. */
static void test_incident_from_outside_text(void **state)
{
    static const char rules_yaml[] = "rules:\n"
                                     "  - id: boom\n"
                                     "    pattern: 'BOOM (?<what>\\w+) (?<rest>.*)'\n"
                                     "    severity: error\n"
                                     "    key: '{rule}/{what}/{rest}'\n"
                                     "    title: 'boom {rest}'\n"
                                     "    hint: 'see {rest}'\n";
    static const char text[] = "BOOM x token=pipe-secret-42 end\nBOOM y nothing to hide\n";
    struct cfw_diag diag = {0};
    struct cfw_doc *doc = cfw_yaml_load_string("t.yaml", rules_yaml, strlen(rules_yaml), &diag);
    struct cfw_ruleset *rs = cfw_ruleset_new();
    struct cfw_incident_opts io = {0};
    struct cfw_framer_opts fo = {.format = CFW_FMT_LINES};
    struct cfw_incidents *set;
    struct cfw_pipeline *p;
    struct cfw_pipeline_input *in;
    const struct cfw_incident *inc;

    (void)state;
    assert_non_null(doc);
    assert_int_equal(
        cfw_ruleset_add_node(rs, cfw_node_get(doc->root, "rules"), "rules", "t", &diag), 0);
    set = cfw_incidents_new(&io, NULL, NULL);
    p = cfw_pipeline_new(rs, set, NULL);
    cfw_secret_register("pipe-secret-42", 14);
    in = cfw_pipeline_input_new(p, "t.log", NULL, &fo);
    cfw_pipeline_input_feed(in, text, strlen(text));
    cfw_pipeline_input_free(in);
    inc = cfw_incidents_find(set, "boom/x/token=*** end");
    assert_non_null(inc);
    assert_string_equal(inc->title, "boom token=*** end");
    assert_string_equal(inc->hint, "see token=*** end");
    assert_string_equal(cfw_fields_get(&inc->fields, "rest"), "token=*** end");
    assert_non_null(inc->sample);
    assert_null(strstr(inc->sample, "pipe-secret"));
    assert_non_null(strstr(inc->sample, "token=***"));
    /* text without a secret is taken as it is */
    inc = cfw_incidents_find(set, "boom/y/nothing to hide");
    assert_non_null(inc);
    assert_string_equal(inc->title, "boom nothing to hide");
    cfw_pipeline_free(p);
    cfw_incidents_free(set);
    cfw_ruleset_free(rs);
    cfw_doc_free(doc);
    cfw_diag_free(&diag);
}

/* Deployments from the API keep their author and message scrubbed. */
static void test_deployment_text(void **state)
{
    struct cfw_deploys *d = cfw_deploys_new();
    struct cfw_deployment dep = {.id = "dep-1",
                                 .script = "py-api",
                                 .version = "v1",
                                 .author = "ci@example.com",
                                 .source = "wrangler",
                                 .message = "rotate deploy-secret-9 please",
                                 .created_wall_ms = 1000};
    const struct cfw_deployment *got;

    (void)state;
    cfw_secret_register("deploy-secret-9", 15);
    assert_int_equal(cfw_deploys_add(d, &dep), 1);
    got = cfw_deploys_latest(d, "py-api");
    assert_non_null(got);
    assert_string_equal(got->message, "rotate *** please");
    assert_string_equal(got->author, "ci@example.com");
    cfw_deploys_free(d);
}

/* ---- the fast scrub against a brute-force oracle ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t enc64(const char *s, size_t len, bool url, bool pad, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i += 3) {
        uint32_t x = (uint32_t)(unsigned char)s[i] << 16;
        size_t left = len - i;
        if (left > 1) {
            x |= (uint32_t)(unsigned char)s[i + 1] << 8;
        }
        if (left > 2) {
            x |= (unsigned char)s[i + 2];
        }
        for (size_t k = 0; k < 4; k++) {
            char c = b64[x >> (18 - 6 * k) & 63];
            if (k > left) {
                if (pad) {
                    out[o++] = '=';
                }
                continue;
            }
            out[o++] = url && c == '+' ? '-' : url && c == '/' ? '_' : c;
        }
    }
    return o;
}

/* Marks every byte some form covers, then replaces each covered stretch, as documented. */
static char *oracle(const char *text, char forms[][64], size_t nforms)
{
    size_t len = strlen(text);
    bool *cov = calloc(len + 1, 1);
    size_t *start_end = calloc(len + 1, sizeof(size_t));
    char *out = calloc(1, len * 2 + 8);
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        size_t best = 0;
        for (size_t f = 0; f < nforms; f++) {
            size_t fl = strlen(forms[f]);
            if (fl >= CFW_SECRETS_MIN_LEN && fl <= len - i && memcmp(text + i, forms[f], fl) == 0 &&
                fl > best) {
                best = fl;
            }
        }
        start_end[i] = best > 0 ? i + best : 0;
    }
    /* stretches: a match starting inside a stretch extends it; one starting after it is new */
    for (size_t i = 0; i < len;) {
        size_t end;
        if (start_end[i] == 0) {
            out[o++] = text[i++];
            continue;
        }
        end = start_end[i];
        for (size_t k = i; k < end; k++) {
            if (start_end[k] > end) {
                end = start_end[k];
            }
        }
        memcpy(out + o, "***", 3);
        o += 3;
        i = end;
    }
    free(cov);
    free(start_end);
    return out;
}

static void test_oracle(void **state)
{
    char forms[8 * 5][64];
    size_t nforms = 0;
    unsigned seed = 12345;

    (void)state;
    /* secrets over a three-letter alphabet overlap and nest in random text all the time */
    for (int s = 0; s < 8; s++) {
        char sec[16];
        size_t len = 4 + (size_t)(s % 5);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            sec[i] = "abc"[(seed >> 16) % 3];
        }
        sec[len] = '\0';
        cfw_secret_register(sec, len);
        /* its forms: raw (percent-encoding and escaping leave it alone) and base64 x4 */
        snprintf(forms[nforms++], 64, "%s", sec);
        for (int v = 0; v < 4; v++) {
            size_t n = enc64(sec, len, v & 1, v & 2, forms[nforms]);
            forms[nforms++][n] = '\0';
        }
    }
    for (int round = 0; round < 3000; round++) {
        char text[96];
        size_t len = (size_t)(round % 90);
        char *want;
        char *got;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            text[i] = "abcx"[(seed >> 16) % 4];
        }
        text[len] = '\0';
        if (round % 7 == 0 && len > 12) {
            /* a base64 form pasted in, whole or cut */
            const char *f = forms[1 + round % 4];
            size_t fl = strlen(f);
            memcpy(text + 3, f, fl < len - 3 ? fl : len - 3);
        }
        want = oracle(text, forms, nforms);
        got = cfw_secrets_scrub(text);
        if (strcmp(want, got) != 0) {
            fail_msg("text %s: scrub %s, oracle %s", text, got, want);
        }
        assert_int_equal(cfw_secrets_found(text, len), strcmp(text, want) != 0);
        free(want);
        free(got);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_derived_forms, setup),
        cmocka_unit_test_setup(test_basic_auth, setup),
        cmocka_unit_test_setup(test_header, setup),
        cmocka_unit_test_setup(test_url, setup),
        cmocka_unit_test_setup(test_env_names, setup),
        cmocka_unit_test_setup(test_overlap_longest_first, setup),
        cmocka_unit_test_setup(test_short_secrets, setup),
        cmocka_unit_test_setup(test_caps, setup),
        cmocka_unit_test_setup(test_reload, setup),
        cmocka_unit_test_setup(test_clear_with_live_holders, setup),
        cmocka_unit_test_setup(test_inplace, setup),
        cmocka_unit_test_setup(test_log_lines, setup),
        cmocka_unit_test_setup(test_incident_from_outside_text, setup),
        cmocka_unit_test_setup(test_deployment_text, setup),
        cmocka_unit_test_setup(test_oracle, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
