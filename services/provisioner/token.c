/* One-time bootstrap tokens: 32 random bytes (OpenSSL RAND_bytes) handed to
 * the worker as 64 lower-case hex characters; PostgreSQL keeps only the
 * SHA-256 of that text, bound to the worker id and provider, with an expiry.
 * The edge's Register consumes it with
 *   ... WHERE token_hash = sha256(<token text>) AND worker_id = ... AND
 *       used_at IS NULL AND revoked_at IS NULL AND expires_at > now().
 * The token itself never reaches a log line, an error or the database. */
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "prov.h"

#define TOKEN_HASH_BYTES 32

static const char token_hexdigits[] = "0123456789abcdef";

static void token_hex(const unsigned char *raw, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = token_hexdigits[raw[i] >> 4];
        out[2 * i + 1] = token_hexdigits[raw[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static hodei_status token_random(char hex_out[PROV_TOKEN_HEX_BUF], hodei_err *err)
{
    unsigned char raw[PROV_TOKEN_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "token: RAND_bytes failed");
    token_hex(raw, sizeof raw, hex_out);
    OPENSSL_cleanse(raw, sizeof raw);
    return HODEI_OK;
}

/* hash_hex_out gets the SHA-256 of the token text, hex (as bytea input). */
static hodei_status token_hash(const char *hex, char hash_hex_out[2 * TOKEN_HASH_BYTES + 1],
                               hodei_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest(hex, strlen(hex), md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != TOKEN_HASH_BYTES)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "token: SHA-256 failed");
    token_hex(md, md_len, hash_hex_out);
    return HODEI_OK;
}

hodei_status prov_token_revoke(PGconn *conn, const char *worker_id, hodei_err *err)
{
    const char *params[1] = {worker_id};
    return hodei_db_exec(conn,
                         "UPDATE bootstrap_tokens SET revoked_at = now() WHERE worker_id = $1"
                         " AND used_at IS NULL AND revoked_at IS NULL",
                         1, params, NULL, err);
}

hodei_status prov_token_mint(PGconn *conn, const char *worker_id, const char *provider,
                             int64_t ttl_ms, char hex_out[PROV_TOKEN_HEX_BUF], hodei_err *err)
{
    char hash[2 * TOKEN_HASH_BYTES + 1], ttl[PROV_INT_TEXT_MAX];
    hodei_status st = prov_token_revoke(conn, worker_id, err);
    if (st == HODEI_OK)
        st = token_random(hex_out, err);
    if (st == HODEI_OK)
        st = token_hash(hex_out, hash, err);
    if (st != HODEI_OK)
        goto out;
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    const char *params[4] = {hash, worker_id, provider, ttl};
    st = hodei_db_exec(conn,
                       "INSERT INTO bootstrap_tokens (token_hash, worker_id, provider, expires_at)"
                       " VALUES (decode($1, 'hex'), $2::uuid, $3,"
                       " now() + $4::bigint * interval '1 millisecond')",
                       4, params, NULL, err);
out:
    if (st != HODEI_OK)
        OPENSSL_cleanse(hex_out, PROV_TOKEN_HEX_BUF);
    return st;
}
