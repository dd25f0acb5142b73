/* Unit tests for sha256.c: FIPS 180-4 examples, RFC 4231 HMAC-SHA256 test cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cfwatchd/sha256.h"

static void hex_of(const void *data, size_t len, char out[CFW_SHA256_HEX_LEN])
{
    uint8_t d[CFW_SHA256_LEN];

    cfw_sha256(data, len, d);
    cfw_hex_encode(d, sizeof(d), out);
}

static void test_fips_examples(void **state)
{
    char hex[CFW_SHA256_HEX_LEN];
    static const char two_block[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

    (void)state;
    hex_of("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hex_of(two_block, strlen(two_block), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    hex_of("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_million_a(void **state)
{
    struct cfw_sha256 c;
    uint8_t d[CFW_SHA256_LEN];
    char hex[CFW_SHA256_HEX_LEN];
    char chunk[1000];

    (void)state;
    memset(chunk, 'a', sizeof(chunk));
    cfw_sha256_init(&c);
    for (int i = 0; i < 1000; i++) {
        cfw_sha256_update(&c, chunk, sizeof(chunk));
    }
    cfw_sha256_final(&c, d);
    cfw_hex_encode(d, sizeof(d), hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_split_updates(void **state)
{
    char msg[300];
    uint8_t whole[CFW_SHA256_LEN];

    (void)state;
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (char)(i * 7 + 3);
    }
    /* every length around the padding boundaries, fed in odd pieces, equals one call */
    for (size_t len = 0; len <= 200; len++) {
        struct cfw_sha256 c;
        uint8_t parts[CFW_SHA256_LEN];
        size_t off = 0;
        size_t step = 1;
        cfw_sha256(msg, len, whole);
        cfw_sha256_init(&c);
        while (off < len) {
            size_t n = step < len - off ? step : len - off;
            cfw_sha256_update(&c, msg + off, n);
            off += n;
            step = step * 3 % 67 + 1;
        }
        cfw_sha256_final(&c, parts);
        assert_memory_equal(whole, parts, CFW_SHA256_LEN);
    }
}

struct hmac_case {
    uint8_t key[131];
    size_t keylen;
    const char *data;
    size_t datalen;
    const char *mac;
};

static void test_rfc4231(void **state)
{
    static struct hmac_case cases[7];
    static char dd[50];
    static char cd[50];
    char hex[CFW_SHA256_HEX_LEN];
    uint8_t tag[CFW_SHA256_LEN];

    (void)state;
    memset(cases, 0, sizeof(cases));
    memset(cases[0].key, 0x0b, 20);
    cases[0].keylen = 20;
    cases[0].data = "Hi There";
    cases[0].mac = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
    memcpy(cases[1].key, "Jefe", 4);
    cases[1].keylen = 4;
    cases[1].data = "what do ya want for nothing?";
    cases[1].mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    memset(cases[2].key, 0xaa, 20);
    cases[2].keylen = 20;
    memset(dd, 0xdd, sizeof(dd));
    cases[2].data = dd;
    cases[2].datalen = 50;
    cases[2].mac = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";
    for (int i = 0; i < 25; i++) {
        cases[3].key[i] = (uint8_t)(i + 1);
    }
    cases[3].keylen = 25;
    memset(cd, 0xcd, sizeof(cd));
    cases[3].data = cd;
    cases[3].datalen = 50;
    cases[3].mac = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";
    memset(cases[4].key, 0x0c, 20);
    cases[4].keylen = 20;
    cases[4].data = "Test With Truncation";
    cases[4].mac = "a3b6167473100ee06e0c796c2955552b"; /* truncated to 128 bits */
    memset(cases[5].key, 0xaa, 131);
    cases[5].keylen = 131;
    cases[5].data = "Test Using Larger Than Block-Size Key - Hash Key First";
    cases[5].mac = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
    memset(cases[6].key, 0xaa, 131);
    cases[6].keylen = 131;
    cases[6].data = "This is a test using a larger than block-size key and a larger than "
                    "block-size data. The key needs to be hashed before being used by the HMAC "
                    "algorithm.";
    cases[6].mac = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
    for (int i = 0; i < 7; i++) {
        size_t dl = cases[i].datalen != 0 ? cases[i].datalen : strlen(cases[i].data);
        size_t ml = strlen(cases[i].mac) / 2;
        cfw_hmac_sha256(cases[i].key, cases[i].keylen, cases[i].data, dl, tag);
        cfw_hex_encode(tag, ml, hex);
        assert_string_equal(hex, cases[i].mac);
    }
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(cfw_ct_equal("abcdef", "abcdef", 6));
    assert_false(cfw_ct_equal("abcdef", "abcdeg", 6));
    assert_false(cfw_ct_equal("xbcdef", "abcdef", 6));
    assert_true(cfw_ct_equal("", "", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_examples), cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_split_updates), cmocka_unit_test(test_rfc4231),
        cmocka_unit_test(test_ct_equal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
