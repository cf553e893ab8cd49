/* The edge's secret crypto: AES-256-GCM round trip, refusals, validation. */
#include <criterion/criterion.h>
#include <string.h>

#include "edge_seal.h"

static const char *key_hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void key_of(uint8_t key[SECRETS_KEY_LEN])
{
    hodei_err err;
    cr_assert_eq(secrets_key_parse(key_hex, key, &err), HODEI_OK);
}

Test(secrets, round_trip_and_fresh_nonce)
{
    uint8_t key[SECRETS_KEY_LEN], n1[SECRETS_NONCE_LEN], n2[SECRETS_NONCE_LEN];
    uint8_t c1[64], c2[64], plain[64];
    size_t len = 0;
    hodei_err err;
    const char *v = "hunter2-é";
    key_of(key);
    cr_assert_eq(secrets_seal(key, "db-pass", (const uint8_t *)v, strlen(v), n1, c1, &err),
                 HODEI_OK);
    cr_assert_eq(secrets_seal(key, "db-pass", (const uint8_t *)v, strlen(v), n2, c2, &err),
                 HODEI_OK);
    cr_assert_neq(memcmp(n1, n2, sizeof n1), 0, "each value gets a fresh nonce");
    cr_assert_neq(memcmp(c1, v, strlen(v)), 0, "the ciphertext is not the plaintext");
    cr_assert_eq(
        secrets_open(key, "db-pass", n1, c1, strlen(v) + SECRETS_TAG_LEN, plain, &len, &err),
        HODEI_OK);
    cr_assert_eq(len, strlen(v));
    cr_assert_eq(memcmp(plain, v, len), 0);
}

Test(secrets, wrong_key_name_or_tampered_refused)
{
    uint8_t key[SECRETS_KEY_LEN], other[SECRETS_KEY_LEN], nonce[SECRETS_NONCE_LEN];
    uint8_t sealed[64], plain[64];
    size_t len = 99, n = 6 + SECRETS_TAG_LEN;
    hodei_err err;
    key_of(key);
    memcpy(other, key, sizeof other);
    other[0] ^= 1;
    cr_assert_eq(secrets_seal(key, "a", (const uint8_t *)"s3cret", 6, nonce, sealed, &err),
                 HODEI_OK);
    cr_assert_eq(secrets_open(other, "a", nonce, sealed, n, plain, &len, &err),
                 HODEI_ERR_PERMISSION);
    cr_assert_eq(len, 0);
    cr_assert_null(strstr(err.msg, "s3cret"));
    cr_assert_eq(secrets_open(key, "b", nonce, sealed, n, plain, &len, &err), HODEI_ERR_PERMISSION);
    sealed[2] ^= 0x40;
    cr_assert_eq(secrets_open(key, "a", nonce, sealed, n, plain, &len, &err), HODEI_ERR_PERMISSION);
    sealed[2] ^= 0x40;
    sealed[n - 1] ^= 1;
    cr_assert_eq(secrets_open(key, "a", nonce, sealed, n, plain, &len, &err), HODEI_ERR_PERMISSION);
    sealed[n - 1] ^= 1;
    cr_assert_eq(secrets_open(key, "a", nonce, sealed, 3, plain, &len, &err), HODEI_ERR_PERMISSION);
    cr_assert_eq(secrets_open(key, "a", nonce, sealed, n, plain, &len, &err), HODEI_OK);
}

Test(secrets, key_parse)
{
    uint8_t key[SECRETS_KEY_LEN];
    hodei_err err;
    cr_assert_eq(secrets_key_parse("abcd", key, &err), HODEI_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "secrets.master_key"));
    cr_assert_null(strstr(err.msg, "abcd"));
    char bad[SECRETS_KEY_HEX_LEN + 1];
    memset(bad, 'z', SECRETS_KEY_HEX_LEN);
    bad[SECRETS_KEY_HEX_LEN] = 0;
    cr_assert_eq(secrets_key_parse(bad, key, &err), HODEI_ERR_INVALID);
}

Test(secrets, names_and_values)
{
    hodei_err err;
    char long_name[SECRETS_NAME_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    cr_assert(secrets_name_ok("db-pass"));
    cr_assert(secrets_name_ok("A_b.9"));
    cr_assert_not(secrets_name_ok(""));
    cr_assert_not(secrets_name_ok("a b"));
    cr_assert_not(secrets_name_ok("a/b"));
    cr_assert_not(secrets_name_ok(long_name));
    long_name[SECRETS_NAME_MAX] = 0;
    cr_assert(secrets_name_ok(long_name));
    cr_assert_eq(secrets_value_check((const uint8_t *)"ok é", 5, "value", &err), HODEI_OK);
    cr_assert_eq(secrets_value_check((const uint8_t *)"", 0, "value", &err), HODEI_ERR_INVALID);
    cr_assert_eq(secrets_value_check((const uint8_t *)"a\0b", 3, "value", &err), HODEI_ERR_INVALID);
    cr_assert_eq(secrets_value_check((const uint8_t *)"a\xff", 2, "value", &err),
                 HODEI_ERR_INVALID);
    cr_assert_eq(secrets_value_check((const uint8_t *)"\xc3", 1, "value", &err), HODEI_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, "value"));
    static uint8_t big[SECRETS_VALUE_MAX + 1];
    memset(big, 'x', sizeof big);
    cr_assert_eq(secrets_value_check(big, SECRETS_VALUE_MAX, "value", &err), HODEI_OK);
    cr_assert_eq(secrets_value_check(big, sizeof big, "value", &err), HODEI_ERR_INVALID);
}
