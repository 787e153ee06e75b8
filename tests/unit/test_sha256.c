/* Tests for cv_sha256: the FIPS 180-4 examples and RFC 4231's HMAC cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cv_sha256.h"

static void hmac_hex(const char *key, size_t key_size, const char *msg,
                     char hex[CV_SHA256_HEX])
{
    uint8_t mac[CV_SHA256_SIZE];
    cv_hmac_sha256(key, key_size, msg, strlen(msg), mac);
    cv_sha256_to_hex(mac, hex);
}

static void test_fips_examples(void **state)
{
    (void)state;
    char hex[CV_SHA256_HEX];
    cv_sha256_hex("", 0, "", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                             "27ae41e4649b934ca495991b7852b855");
    cv_sha256_hex("a", 1, "bc", 2, hex); /* split across the two parts */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    cv_sha256_hex(two_blocks, strlen(two_blocks), NULL, 0, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039"
                             "a33ce45964ff2167f6ecedd419db06c1");
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    char hex[CV_SHA256_HEX];
    char key[131];
    memset(key, 0x0b, 20);
    hmac_hex(key, 20, "Hi There", hex); /* test case 1 */
    assert_string_equal(hex, "b0344c61d8db38535ca8afceaf0bf12b"
                             "881dc200c9833da726e9376c2e32cff7");
    hmac_hex("Jefe", 4, "what do ya want for nothing?", hex); /* case 2 */
    assert_string_equal(hex, "5bdcc146bf60754e6a042426089575c7"
                             "5a003f089d2739839dec58b964ec3843");
    memset(key, 0xaa, sizeof(key)); /* case 6: a key longer than a block */
    hmac_hex(key, sizeof(key),
             "Test Using Larger Than Block-Size Key - Hash Key First", hex);
    assert_string_equal(hex, "60e431591ee0b67f0d8a26aacbf5b77f"
                             "8e0bc6213728c5140546040f0ee37f54");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_examples),
        cmocka_unit_test(test_hmac_rfc4231),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
