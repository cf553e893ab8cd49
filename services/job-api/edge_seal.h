/* Secret values at rest: AES-256-GCM under the edge's master key
 * (secrets.master_key), a random 12-byte nonce per value, the secret's name
 * as additional authenticated data (a ciphertext moved to another name does
 * not open). Pure functions: no database, no logging; no message ever holds
 * a value. */
#ifndef HODEI_JOB_API_SECRETS_H
#define HODEI_JOB_API_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/limits.h"
#include "hodei/status.h"

#define SECRETS_KEY_LEN 32
#define SECRETS_KEY_HEX_LEN (2 * SECRETS_KEY_LEN)
#define SECRETS_NONCE_LEN 12
#define SECRETS_TAG_LEN 16
#define SECRETS_NAME_MAX HODEI_SECRET_NAME_MAX   /* as JobSpec.secret_refs allows */
#define SECRETS_VALUE_MAX HODEI_SECRET_VALUE_MAX /* bytes of one plain value */
#define SECRETS_SEALED_MAX (SECRETS_VALUE_MAX + SECRETS_TAG_LEN)
#define SECRETS_KEY_ID_LEN 16  /* hex digits naming a master key */
#define SECRETS_OLD_KEYS_MAX 4 /* retiring master keys an edge can still open */
#define SECRETS_AAD_MAX (64 + 1 + SECRETS_NAME_MAX) /* "<namespace>/<name>" */

/* A master key and its id: the first 8 bytes, in hex, of SHA-256 over a
 * fixed label and the key, so the id names the key without revealing it and
 * every edge computes the same id from the same key. */
typedef struct {
    uint8_t key[SECRETS_KEY_LEN];
    char id[SECRETS_KEY_ID_LEN + 1];
} secrets_key;

/* The keys an edge holds: the current one seals every new value; old ones
 * only open values sealed before a rotation, until the background re-seal
 * has moved them all to the current key. */
typedef struct {
    bool on; /* a current key is set */
    secrets_key current;
    size_t n_old;
    secrets_key old[SECRETS_OLD_KEYS_MAX];
} secrets_keyring;

/* current_hex: secrets.master_key ("" = secrets off); old_list:
 * secrets.old_master_keys, comma-separated (may be empty). Errors name the
 * setting, never the text. */
hodei_status secrets_keyring_init(secrets_keyring *kr, const char *current_hex,
                                  const char *old_list, hodei_err *err);
/* The key with that id (current or old), or NULL. */
const secrets_key *secrets_keyring_find(const secrets_keyring *kr, const char *id);
void secrets_keyring_wipe(secrets_keyring *kr);
/* The authenticated data of a value: "<namespace>/<name>" for values with a
 * key id, the bare name for values sealed before key ids (key_id ""). */
void secrets_aad(const char *key_id, const char *ns, const char *name,
                 char out[SECRETS_AAD_MAX + 1]);

/* hex must be exactly 64 hex digits; on success key holds the 32 bytes.
 * The error names the setting, never the text. */
hodei_status secrets_key_parse(const char *hex, uint8_t key[SECRETS_KEY_LEN], hodei_err *err);

/* 1..SECRETS_NAME_MAX of [A-Za-z0-9_.-]. */
bool secrets_name_ok(const char *name);

/* 1..SECRETS_VALUE_MAX bytes of valid UTF-8 without NUL; field names the
 * value in the error ("value"). */
hodei_status secrets_value_check(const uint8_t *value, size_t len, const char *field,
                                 hodei_err *err);

/* Encrypts plain (len <= SECRETS_VALUE_MAX) into out (len + SECRETS_TAG_LEN
 * bytes: ciphertext then tag) with a fresh random nonce. */
hodei_status secrets_seal(const uint8_t key[SECRETS_KEY_LEN], const char *name,
                          const uint8_t *plain, size_t len, uint8_t nonce[SECRETS_NONCE_LEN],
                          uint8_t *out, hodei_err *err);

/* Decrypts sealed (ciphertext then tag) into out (sealed_len - TAG bytes,
 * *out_len set). A wrong key, name or nonce, or any changed byte: HODEI_ERR_PERMISSION
 * and out is wiped. */
hodei_status secrets_open(const uint8_t key[SECRETS_KEY_LEN], const char *name,
                          const uint8_t nonce[SECRETS_NONCE_LEN], const uint8_t *sealed,
                          size_t sealed_len, uint8_t *out, size_t *out_len, hodei_err *err);

#endif
