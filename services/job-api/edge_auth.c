/* The door check and its cache (edge_auth.h). The cache is set-associative:
 * 256 buckets of 4 entries, picked by the first bytes of the key's SHA-256
 * (uniform already), each entry an answer from the database with the time
 * it was read; a full bucket gives up its oldest entry. One mutex guards it
 * (a probe is a few memcmps); lookups run outside it. */
#include "edge_auth.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define AUTH_BUCKETS 256
#define AUTH_WAYS 4
#define AUTH_CERT_SALT "hodei-cert-name\n" /* cert names hash apart from keys */

typedef enum { AUTH_FOUND = 0, AUTH_UNKNOWN, AUTH_REVOKED } auth_verdict;

typedef struct {
    bool used;
    uint8_t hash[HODEI_APIKEY_HASH_LEN];
    int64_t loaded_ms; /* monotonic */
    auth_verdict verdict;
    hodei_identity id; /* FOUND and REVOKED: the key (peer left empty) */
} auth_entry;

struct edge_auth {
    edge_auth_opts o;
    pthread_mutex_t mu;
    auth_entry slots[AUTH_BUCKETS * AUTH_WAYS];
};

hodei_status edge_auth_create(const edge_auth_opts *opts, edge_auth **out, hodei_err *err)
{
    if (!opts->db || opts->cache_ttl_ms < 0 || opts->cache_ttl_ms > EDGE_AUTH_CACHE_TTL_MAX_MS)
        return hodei_err_set(err, HODEI_ERR_INVALID, "auth.cache_ttl: must be between 0 and %d ms",
                             EDGE_AUTH_CACHE_TTL_MAX_MS);
    edge_auth *a = calloc(1, sizeof *a);
    if (!a)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "auth: out of memory");
    a->o = *opts;
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return HODEI_OK;
}

void edge_auth_destroy(edge_auth *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* ------------------------------------------------------------------ cache */

static auth_entry *cache_bucket(edge_auth *a, const uint8_t hash[HODEI_APIKEY_HASH_LEN])
{
    unsigned b = ((unsigned)hash[0] | (unsigned)hash[1] << 8) % AUTH_BUCKETS;
    return &a->slots[b * AUTH_WAYS];
}

/* A fresh entry for hash copied into *out; false when none. */
static bool cache_get(edge_auth *a, const uint8_t hash[HODEI_APIKEY_HASH_LEN], auth_entry *out)
{
    if (a->o.cache_ttl_ms == 0)
        return false;
    int64_t now = hodei_mono_ms();
    bool hit = false;
    pthread_mutex_lock(&a->mu);
    auth_entry *b = cache_bucket(a, hash);
    for (int w = 0; w < AUTH_WAYS && !hit; w++) {
        if (b[w].used && memcmp(b[w].hash, hash, HODEI_APIKEY_HASH_LEN) == 0 &&
            now - b[w].loaded_ms < a->o.cache_ttl_ms) {
            *out = b[w];
            hit = true;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return hit;
}

static void cache_put(edge_auth *a, const auth_entry *e)
{
    if (a->o.cache_ttl_ms == 0)
        return;
    pthread_mutex_lock(&a->mu);
    auth_entry *b = cache_bucket(a, e->hash);
    auth_entry *slot = &b[0];
    for (int w = 0; w < AUTH_WAYS; w++) {
        if (!b[w].used || memcmp(b[w].hash, e->hash, HODEI_APIKEY_HASH_LEN) == 0) {
            slot = &b[w];
            break;
        }
        if (b[w].loaded_ms < slot->loaded_ms)
            slot = &b[w];
    }
    *slot = *e;
    slot->used = true;
    pthread_mutex_unlock(&a->mu);
}

void edge_auth_forget(edge_auth *a, const char *key_id)
{
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < sizeof a->slots / sizeof a->slots[0]; i++)
        if (a->slots[i].used && strcmp(a->slots[i].id.key_id, key_id) == 0)
            a->slots[i].used = false;
    pthread_mutex_unlock(&a->mu);
}

/* ----------------------------------------------------------------- lookup */

enum { C_ID, C_NAME, C_OWNER, C_SCOPES, C_NAMESPACES, C_EXPIRES, C_REVOKED };

#define KEY_COLUMNS                                                                                \
    "SELECT id::text, name, owner, array_to_string(scopes, ','),"                                  \
    " array_to_string(namespaces, ','),"                                                           \
    " coalesce((extract(epoch FROM expires_at) * 1000000)::bigint, 0), revoked_at IS NOT NULL"     \
    " FROM api_keys"

/* scopes and namespaces travel as comma lists: neither may hold a comma. */
static void entry_fill(auth_entry *e, const PGresult *res)
{
    hodei_identity *id = &e->id;
    hodei_strlcpy(id->key_id, hodei_db_get_str(res, 0, C_ID), sizeof id->key_id);
    hodei_strlcpy(id->name, hodei_db_get_str(res, 0, C_NAME), sizeof id->name);
    hodei_strlcpy(id->owner, hodei_db_get_str(res, 0, C_OWNER), sizeof id->owner);
    id->expires_at_us = hodei_db_get_i64(res, 0, C_EXPIRES);
    char list[HODEI_NS_PER_KEY_MAX * HODEI_NS_BUF + 512];
    hodei_strlcpy(list, hodei_db_get_str(res, 0, C_SCOPES), sizeof list);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        uint32_t bit;
        if (hodei_scope_parse(t, &bit)) /* a scope this release does not know grants nothing */
            id->scopes |= bit;
    }
    hodei_strlcpy(list, hodei_db_get_str(res, 0, C_NAMESPACES), sizeof list);
    for (char *save = NULL, *t = strtok_r(list, ",", &save);
         t && id->n_namespaces < HODEI_NS_PER_KEY_MAX; t = strtok_r(NULL, ",", &save))
        hodei_strlcpy(id->namespaces[id->n_namespaces++], t, HODEI_NS_BUF);
    e->verdict = hodei_db_get_str(res, 0, C_REVOKED)[0] == 't' ? AUTH_REVOKED : AUTH_FOUND;
}

static hodei_status auth_load(edge_auth *a, const uint8_t hash[HODEI_APIKEY_HASH_LEN],
                              const char *cert_name, auth_entry *e, hodei_err *err)
{
    char hex[2 * HODEI_APIKEY_HASH_LEN + 1];
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < HODEI_APIKEY_HASH_LEN; i++) {
        hex[2 * i] = digits[hash[i] >> 4];
        hex[2 * i + 1] = digits[hash[i] & 15];
    }
    hex[sizeof hex - 1] = '\0';
    memset(e, 0, sizeof *e);
    memcpy(e->hash, hash, HODEI_APIKEY_HASH_LEN);
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_status st = hodei_db_acquire(a->o.db, a->o.db_wait_ms, &conn, err);
    if (st != HODEI_OK)
        return st;
    const char *params[1] = {cert_name ? cert_name : hex};
    st = hodei_db_exec(conn,
                       cert_name ? KEY_COLUMNS " WHERE cert_san = $1 AND revoked_at IS NULL"
                                 : KEY_COLUMNS " WHERE key_hash = decode($1, 'hex')",
                       1, params, &res, err);
    hodei_db_release(a->o.db, conn, hodei_db_status_broken(st));
    if (st != HODEI_OK)
        return st;
    e->verdict = AUTH_UNKNOWN;
    if (PQntuples(res) == 1)
        entry_fill(e, res);
    if (cert_name && e->verdict == AUTH_FOUND) {
        e->id.kind = HODEI_PRINCIPAL_CERT;
        hodei_strlcpy(e->id.subject, cert_name, sizeof e->id.subject);
    } else {
        e->id.kind = HODEI_PRINCIPAL_KEY;
    }
    PQclear(res);
    e->loaded_ms = hodei_mono_ms();
    return HODEI_OK;
}

/* ------------------------------------------------------------------ check */

/* The key's entry, from the cache or the database. */
static hodei_grpc_code auth_entry_get(edge_auth *a, const char *authorization,
                                      const char *cert_name, auth_entry *e, char *msg,
                                      size_t msg_len)
{
    uint8_t hash[HODEI_APIKEY_HASH_LEN];
    const char *token = NULL;
    size_t len = 0;
    if (authorization) {
        if (!hodei_auth_bearer(authorization, &token, &len)) {
            snprintf(msg, msg_len, "authorization: expected \"Bearer <API key>\"");
            return HODEI_GRPC_UNAUTHENTICATED;
        }
        if (!hodei_apikey_well_formed(token, len)) {
            snprintf(msg, msg_len, "API key not recognised");
            return HODEI_GRPC_UNAUTHENTICATED;
        }
        hodei_apikey_hash(token, len, hash);
        cert_name = NULL;
    } else if (cert_name && cert_name[0]) {
        char salted[sizeof AUTH_CERT_SALT + HODEI_CERT_SAN_BUF];
        int n = snprintf(salted, sizeof salted, "%s%s", AUTH_CERT_SALT, cert_name);
        hodei_apikey_hash(salted, (size_t)n < sizeof salted ? (size_t)n : sizeof salted - 1, hash);
    } else {
        snprintf(msg, msg_len,
                 "no API key: send \"authorization: Bearer <key>\" (hodei --api-key, or "
                 "HODEI_API_KEY)");
        return HODEI_GRPC_UNAUTHENTICATED;
    }
    if (cache_get(a, hash, e))
        return HODEI_GRPC_OK;
    hodei_err err;
    if (auth_load(a, hash, cert_name, e, &err) != HODEI_OK) {
        HLOG_WARN("API key lookup failed: %s", err.msg);
        snprintf(msg, msg_len, "cannot check the API key now (database unavailable); retry");
        return HODEI_GRPC_UNAVAILABLE;
    }
    cache_put(a, e);
    return HODEI_GRPC_OK;
}

static hodei_grpc_code auth_verdict_check(const auth_entry *e, bool by_cert, char *msg,
                                          size_t msg_len)
{
    if (e->verdict == AUTH_UNKNOWN) {
        snprintf(msg, msg_len,
                 by_cert ? "client certificate is not mapped to an API key"
                         : "API key not recognised");
        return HODEI_GRPC_UNAUTHENTICATED;
    }
    if (e->verdict == AUTH_REVOKED) {
        snprintf(msg, msg_len, "API key %s was revoked", e->id.name);
        return HODEI_GRPC_UNAUTHENTICATED;
    }
    if (e->id.expires_at_us > 0 && hodei_wall_us() >= e->id.expires_at_us) {
        snprintf(msg, msg_len, "API key %s has expired", e->id.name);
        return HODEI_GRPC_UNAUTHENTICATED;
    }
    return HODEI_GRPC_OK;
}

hodei_grpc_code edge_auth_check(edge_auth *a, const char *path, const char *authorization,
                                const char *cert_name, const char *peer, hodei_identity *id,
                                char *msg, size_t msg_len)
{
    memset(id, 0, sizeof *id);
    msg[0] = '\0';
    const hodei_auth_rule *rule = hodei_auth_rule_find(path, strlen(path));
    if (!rule) {
        snprintf(msg, msg_len, "no access rule for %s", path);
        return HODEI_GRPC_PERMISSION_DENIED;
    }
    if (rule->kind == HODEI_AUTH_WORKER || rule->kind == HODEI_AUTH_PUBLIC) {
        hodei_strlcpy(id->peer, peer ? peer : "", sizeof id->peer);
        return HODEI_GRPC_OK;
    }
    auth_entry e;
    hodei_grpc_code code = auth_entry_get(a, authorization, cert_name, &e, msg, msg_len);
    if (code == HODEI_GRPC_OK)
        code = auth_verdict_check(&e, !authorization, msg, msg_len);
    if (code != HODEI_GRPC_OK)
        return code;
    *id = e.id;
    hodei_strlcpy(id->peer, peer ? peer : "", sizeof id->peer);
    if (rule->kind == HODEI_AUTH_SCOPE && !hodei_identity_has_scope(id, rule->scope)) {
        snprintf(msg, msg_len, "API key %s lacks scope %s (needed by %s)", id->name,
                 hodei_scope_name(rule->scope), path);
        return HODEI_GRPC_PERMISSION_DENIED;
    }
    return HODEI_GRPC_OK;
}

hodei_grpc_code edge_auth_authorize(hodei_rpc_call *call, const char *path, void *ctx,
                                    void **principal, char *msg, size_t msg_len)
{
    edge_auth *a = ctx;
    hodei_identity *id = malloc(sizeof *id);
    if (!id) {
        snprintf(msg, msg_len, "out of memory");
        return HODEI_GRPC_RESOURCE_EXHAUSTED;
    }
    hodei_grpc_code code = edge_auth_check(a, path, hodei_rpc_call_metadata(call, "authorization"),
                                           hodei_rpc_call_peer_identity(call),
                                           hodei_rpc_call_peer_address(call), id, msg, msg_len);
    if (code != HODEI_GRPC_OK) {
        HLOG_INFO("refused %s from %s: %s %s", path, hodei_rpc_call_peer_address(call),
                  hodei_grpc_code_str(code), msg);
        free(id);
        return code;
    }
    *principal = id;
    return HODEI_GRPC_OK;
}

const hodei_identity *edge_caller(hodei_rpc_call *call)
{
    static const hodei_identity nobody; /* a server without the hook (tests of libs/rpc) */
    const hodei_identity *id = hodei_rpc_call_principal(call);
    return id ? id : &nobody;
}

bool edge_auth_worker_cert_ok(edge_auth *a, hodei_rpc_call *call, const char *worker_id)
{
    if (!a->o.worker_cert_check)
        return true;
    return worker_id && worker_id[0] && hodei_rpc_call_peer_has_identity(call, worker_id);
}
