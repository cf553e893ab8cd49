/* hodei_store_key_create: see hodei/store_keys.h. */
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/sqlarr.h"
#include "hodei/store_keys.h"
#include "hodei/time.h"

#define KEYS_ARRAY_MAX 4096

static const char revoke_sql[] =
    "WITH r AS (UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL"
    "  RETURNING id)"
    " INSERT INTO audit_log (actor, actor_id, peer, namespace, action, object_type, object_id,"
    "  detail)"
    " SELECT $2, $3, $4, '', 'key.revoke', 'key', id::text,"
    "  jsonb_build_object('name', $1::text, 'replaced', true) FROM r";

static const char insert_sql[] =
    "WITH k AS (INSERT INTO api_keys (id, name, key_hash, scopes, owner, namespaces, expires_at,"
    "  cert_san, created_by)"
    "  VALUES ($1::uuid, $2, decode($3, 'hex'), $4::text[], $5, $6::text[],"
    "   CASE WHEN $7::bigint = 0 THEN NULL"
    "    ELSE 'epoch'::timestamptz + $7::bigint * interval '1 microsecond' END,"
    "   nullif($8, ''), $9)"
    "  RETURNING id)"
    " INSERT INTO audit_log (actor, actor_id, peer, namespace, action, object_type, object_id,"
    "  detail)"
    " SELECT $9, $10, $11, '', 'key.create', 'key', id::text,"
    "  jsonb_build_object('name', $2::text, 'owner', $5::text, 'scopes', $4::text[],"
    "   'namespaces', $6::text[], 'cert_name', $8::text, 'expires_at_us', $7::bigint)"
    " FROM k";

static void keys_arrays(const hodei_key_spec *k, hodei_buf *scopes, hodei_buf *nss)
{
    hodei_buf_init(scopes, KEYS_ARRAY_MAX);
    hodei_buf_init(nss, KEYS_ARRAY_MAX);
    hodei_sqlarr_begin(scopes);
    for (int i = 0; i < HODEI_SCOPE_COUNT; i++)
        if (k->scopes & hodei_scope_at(i))
            hodei_sqlarr_str(scopes, hodei_scope_name(hodei_scope_at(i)));
    hodei_sqlarr_end(scopes);
    hodei_sqlarr_begin(nss);
    if (k->n_namespaces == 0)
        hodei_sqlarr_str(nss, HODEI_NS_DEFAULT);
    for (size_t i = 0; i < k->n_namespaces; i++)
        hodei_sqlarr_str(nss, k->namespaces[i]);
    hodei_sqlarr_end(nss);
}

static void hash_hex(const char *key, char out[2 * HODEI_APIKEY_HASH_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t h[HODEI_APIKEY_HASH_LEN];
    hodei_apikey_hash(key, strlen(key), h);
    for (int i = 0; i < HODEI_APIKEY_HASH_LEN; i++) {
        out[2 * i] = digits[h[i] >> 4];
        out[2 * i + 1] = digits[h[i] & 15];
    }
    out[2 * HODEI_APIKEY_HASH_LEN] = '\0';
}

hodei_status hodei_store_key_create(PGconn *conn, const hodei_key_spec *k, bool replace,
                                    const hodei_store_actor *by, char key_out[HODEI_APIKEY_BUF],
                                    char id_out[HODEI_ID_BUF], hodei_err *err)
{
    hodei_status st = hodei_key_spec_check(k, hodei_wall_us(), err);
    if (st != HODEI_OK)
        return st;
    if (!hodei_apikey_new(key_out))
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "cannot make a key: RAND_bytes failed");
    if (replace) {
        const char *rp[4] = {k->name, by->actor, by->actor_id, by->peer};
        if ((st = hodei_db_exec(conn, revoke_sql, 4, rp, NULL, err)) != HODEI_OK)
            goto out_wipe;
    }
    hodei_buf scopes, nss;
    keys_arrays(k, &scopes, &nss);
    char hex[2 * HODEI_APIKEY_HASH_LEN + 1], expires[24];
    hash_hex(key_out, hex);
    snprintf(expires, sizeof expires, "%" PRId64, k->expires_at_us);
    hodei_id_new(id_out);
    const char *params[11] = {id_out,
                              k->name,
                              hex,
                              scopes.data,
                              k->owner ? k->owner : "",
                              nss.data,
                              expires,
                              k->cert_name ? k->cert_name : "",
                              by->actor,
                              by->actor_id,
                              by->peer};
    st = hodei_db_exec(conn, insert_sql, 11, params, NULL, err);
    hodei_buf_fini(&scopes);
    hodei_buf_fini(&nss);
    if (st == HODEI_ERR_EXISTS)
        st = hodei_err_set(err, HODEI_ERR_EXISTS,
                           "an active key is already named %s%s%s (revoke it first)", k->name,
                           k->cert_name && k->cert_name[0] ? " or mapped to certificate " : "",
                           k->cert_name && k->cert_name[0] ? k->cert_name : "");
out_wipe:
    if (st != HODEI_OK)
        OPENSSL_cleanse(key_out, HODEI_APIKEY_BUF);
    return st;
}
