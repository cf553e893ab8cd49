/* AES-256-GCM for secret values (see secrets.h). */
#include "edge_seal.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>

#include "hodei/buf.h"

hodei_status secrets_key_parse(const char *hex, uint8_t key[SECRETS_KEY_LEN], hodei_err *err)
{
    if (!hex || strlen(hex) != SECRETS_KEY_HEX_LEN ||
        hodei_hex_decode(hex, SECRETS_KEY_HEX_LEN, key, SECRETS_KEY_LEN) != SECRETS_KEY_LEN) {
        OPENSSL_cleanse(key, SECRETS_KEY_LEN);
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "secrets.master_key: must be %d hex digits (%d bytes)",
                             SECRETS_KEY_HEX_LEN, SECRETS_KEY_LEN);
    }
    return HODEI_OK;
}

bool secrets_name_ok(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > SECRETS_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* Length of the UTF-8 sequence at s (n bytes left), or 0 when invalid. */
static size_t secrets_utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    if (len == 0 || len > n || (len == 2 && c < 0xC2) || (len == 4 && c > 0xF4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (len == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0)))
        return 0; /* overlong, or a surrogate */
    if (len == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] >= 0x90)))
        return 0;
    return len;
}

hodei_status secrets_value_check(const uint8_t *value, size_t len, const char *field,
                                 hodei_err *err)
{
    if (len == 0 || len > SECRETS_VALUE_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be 1 to %d bytes, got %zu", field,
                             SECRETS_VALUE_MAX, len);
    for (size_t i = 0; i < len;) {
        if (value[i] == 0)
            return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must not contain NUL (byte %zu)",
                                 field, i);
        size_t n = secrets_utf8_seq(value + i, len - i);
        if (n == 0)
            return hodei_err_set(err, HODEI_ERR_INVALID, "%s: not valid UTF-8 at byte %zu", field,
                                 i);
        i += n;
    }
    return HODEI_OK;
}

static EVP_CIPHER_CTX *secrets_ctx(const uint8_t key[SECRETS_KEY_LEN],
                                   const uint8_t nonce[SECRETS_NONCE_LEN], const char *name,
                                   bool encrypt)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int ignored = 0;
    if (!ctx)
        return NULL;
    int ok = encrypt ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL)
                     : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL);
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRETS_NONCE_LEN, NULL);
    ok = ok && (encrypt ? EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce)
                        : EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce));
    ok = ok &&
         (encrypt
              ? EVP_EncryptUpdate(ctx, NULL, &ignored, (const uint8_t *)name, (int)strlen(name))
              : EVP_DecryptUpdate(ctx, NULL, &ignored, (const uint8_t *)name, (int)strlen(name)));
    if (!ok) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

hodei_status secrets_seal(const uint8_t key[SECRETS_KEY_LEN], const char *name,
                          const uint8_t *plain, size_t len, uint8_t nonce[SECRETS_NONCE_LEN],
                          uint8_t *out, hodei_err *err)
{
    hodei_status st = hodei_err_set(err, HODEI_ERR_INTERNAL, "secret %s: encryption failed", name);
    int n = 0, fin = 0;
    if (len > SECRETS_VALUE_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "value: at most %d bytes", SECRETS_VALUE_MAX);
    if (RAND_bytes(nonce, SECRETS_NONCE_LEN) != 1)
        return st;
    EVP_CIPHER_CTX *ctx = secrets_ctx(key, nonce, name, true);
    if (!ctx)
        return st;
    if (EVP_EncryptUpdate(ctx, out, &n, plain, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, out + n, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRETS_TAG_LEN, out + len) != 1)
        goto out_free_ctx;
    st = HODEI_OK;
out_free_ctx:
    EVP_CIPHER_CTX_free(ctx);
    return st;
}

hodei_status secrets_open(const uint8_t key[SECRETS_KEY_LEN], const char *name,
                          const uint8_t nonce[SECRETS_NONCE_LEN], const uint8_t *sealed,
                          size_t sealed_len, uint8_t *out, size_t *out_len, hodei_err *err)
{
    hodei_status st =
        hodei_err_set(err, HODEI_ERR_PERMISSION,
                      "secret %s: does not decrypt (wrong master key or altered)", name);
    uint8_t tag[SECRETS_TAG_LEN];
    int n = 0, fin = 0;
    *out_len = 0;
    if (sealed_len < SECRETS_TAG_LEN || sealed_len > SECRETS_SEALED_MAX)
        return st;
    size_t len = sealed_len - SECRETS_TAG_LEN;
    memcpy(tag, sealed + len, SECRETS_TAG_LEN);
    EVP_CIPHER_CTX *ctx = secrets_ctx(key, nonce, name, false);
    if (!ctx)
        return st;
    if (EVP_DecryptUpdate(ctx, out, &n, sealed, (int)len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRETS_TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, out + n, &fin) != 1) {
        OPENSSL_cleanse(out, len);
        goto out_free_ctx;
    }
    *out_len = len;
    st = HODEI_OK;
out_free_ctx:
    EVP_CIPHER_CTX_free(ctx);
    return st;
}

/* ---------------------------------------------------------------- keyring */

#define SECRETS_KEY_ID_LABEL "hodei secrets master key id\n"

static void secrets_key_id(secrets_key *k)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t h[SHA256_DIGEST_LENGTH];
    uint8_t in[sizeof SECRETS_KEY_ID_LABEL - 1 + SECRETS_KEY_LEN];
    memcpy(in, SECRETS_KEY_ID_LABEL, sizeof SECRETS_KEY_ID_LABEL - 1);
    memcpy(in + sizeof SECRETS_KEY_ID_LABEL - 1, k->key, SECRETS_KEY_LEN);
    SHA256(in, sizeof in, h);
    OPENSSL_cleanse(in, sizeof in);
    for (int i = 0; i < SECRETS_KEY_ID_LEN / 2; i++) {
        k->id[2 * i] = digits[h[i] >> 4];
        k->id[2 * i + 1] = digits[h[i] & 15];
    }
    k->id[SECRETS_KEY_ID_LEN] = '\0';
}

static hodei_status secrets_old_parse(secrets_keyring *kr, const char *list, hodei_err *err)
{
    const char *p = list;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char hex[SECRETS_KEY_HEX_LEN + 1];
        if (kr->n_old == SECRETS_OLD_KEYS_MAX)
            return hodei_err_set(err, HODEI_ERR_INVALID, "secrets.old_master_keys: at most %d keys",
                                 SECRETS_OLD_KEYS_MAX);
        if (len != SECRETS_KEY_HEX_LEN)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "secrets.old_master_keys: key %zu is not %d hex digits",
                                 kr->n_old + 1, SECRETS_KEY_HEX_LEN);
        memcpy(hex, p, len);
        hex[len] = '\0';
        secrets_key *k = &kr->old[kr->n_old];
        hodei_status st = secrets_key_parse(hex, k->key, err);
        OPENSSL_cleanse(hex, sizeof hex);
        if (st != HODEI_OK)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "secrets.old_master_keys: key %zu is not %d hex digits",
                                 kr->n_old + 1, SECRETS_KEY_HEX_LEN);
        secrets_key_id(k);
        if (strcmp(k->id, kr->current.id) != 0) /* the current key listed again: harmless */
            kr->n_old++;
        p = comma ? comma + 1 : NULL;
    }
    return HODEI_OK;
}

hodei_status secrets_keyring_init(secrets_keyring *kr, const char *current_hex,
                                  const char *old_list, hodei_err *err)
{
    memset(kr, 0, sizeof *kr);
    if (!current_hex || !current_hex[0]) {
        if (old_list && old_list[0])
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "secrets.old_master_keys: needs secrets.master_key");
        return HODEI_OK;
    }
    hodei_status st = secrets_key_parse(current_hex, kr->current.key, err);
    if (st != HODEI_OK)
        return st;
    secrets_key_id(&kr->current);
    kr->on = true;
    st = secrets_old_parse(kr, old_list, err);
    if (st != HODEI_OK)
        secrets_keyring_wipe(kr);
    return st;
}

const secrets_key *secrets_keyring_find(const secrets_keyring *kr, const char *id)
{
    if (!kr->on)
        return NULL;
    if (strcmp(kr->current.id, id) == 0)
        return &kr->current;
    for (size_t i = 0; i < kr->n_old; i++)
        if (strcmp(kr->old[i].id, id) == 0)
            return &kr->old[i];
    return NULL;
}

void secrets_keyring_wipe(secrets_keyring *kr)
{
    OPENSSL_cleanse(kr, sizeof *kr);
}

void secrets_aad(const char *key_id, const char *ns, const char *name,
                 char out[SECRETS_AAD_MAX + 1])
{
    if (!key_id[0])
        snprintf(out, SECRETS_AAD_MAX + 1, "%s", name);
    else
        snprintf(out, SECRETS_AAD_MAX + 1, "%s/%s", ns, name);
}
