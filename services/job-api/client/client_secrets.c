/* SecretService: SetSecret, ListSecrets, DeleteSecret; the delivery of a
 * job's secrets for RunJob (secret_json_load) and the check at submit time
 * (secret_refs_check); the background re-seal after a master key rotation.
 *
 * A secret belongs to a namespace; a job uses the secrets of its own
 * namespace by name, and a secret of another namespace as "<ns>/<name>" only
 * when that secret is shared with the job's namespace. Every write is one
 * statement with its audit_log row; every delivery to a job writes one
 * secret.use row per secret and attempt in the statement that reads it.
 * Messages name secrets, never their values. */
#include "client_secrets.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "edge_audit.h"
#include "edge_auth.h"
#include "edge_seal.h"
#include "hodei/buf.h"
#include "hodei/job_spec.h"
#include "hodei/log.h"
#include "hodei/pb.h"
#include "hodei/sqlarr.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/secret.pb-c.h"

#define SVC "/hodei.v1.SecretService/"
#define SECRET_LIST_MAX 10000 /* ListSecrets answers at most this many */
#define SECRET_LIST_MAX_TEXT "10000"
#define SECRET_NO_KEY "secrets.master_key is not set"
#define SECRET_SHARE_MAX HODEI_NS_PER_KEY_MAX /* namespaces one secret is shared with */
#define SECRET_REF_BUF (HODEI_NS_BUF + SECRETS_NAME_MAX + 2)

static hodei_status secret_check_name(const char *name, hodei_err *err)
{
    if (!secrets_name_ok(name))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "name: must be 1 to %d characters of A-Z a-z 0-9 _ . -",
                             SECRETS_NAME_MAX);
    return HODEI_OK;
}

static hodei_status secret_check_key(const edge *e, hodei_err *err)
{
    if (!e->keys.on)
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, SECRET_NO_KEY);
    return HODEI_OK;
}

/* ---------------------------------------------------------------- SetSecret */

static const char set_sql[] =
    "WITH s AS (INSERT INTO secrets (namespace, name, value, nonce, key_id, shared_with)"
    "  VALUES ($1, $2, $3, $4, $5, $6::text[])"
    "  ON CONFLICT (namespace, name) DO UPDATE SET value = EXCLUDED.value,"
    "  nonce = EXCLUDED.nonce, key_id = EXCLUDED.key_id, shared_with = EXCLUDED.shared_with,"
    "  updated_at = now()"
    "  RETURNING namespace, name, (xmax = 0) AS created,"
    "  (extract(epoch FROM updated_at) * 1000000)::bigint AS us),"
    " a AS (" EDGE_AUDIT_INSERT "  SELECT $7, $8, $9, namespace,"
    "  CASE WHEN created THEN 'secret.create' ELSE 'secret.replace' END, 'secret', name,"
    "  jsonb_build_object('shared_with', $6::text[], 'key_id', $5::text) FROM s)"
    " SELECT created, us FROM s";

typedef struct {
    const char *ns;
    const char *name;
    char shared[SECRET_SHARE_MAX * (HODEI_NS_BUF + 3) + 3]; /* array literal */
} secret_target;

static hodei_status secret_store(edge *e, hodei_rpc_call *call, const secret_target *t,
                                 const uint8_t *sealed, size_t len, const uint8_t *nonce,
                                 PGresult **res, hodei_err *err)
{
    PGconn *conn = NULL;
    edge_actor a;
    edge_actor_of(edge_caller(call), &a);
    hodei_status st = edge_db_acquire(e, &conn, err);
    if (st != HODEI_OK)
        return st;
    const char *params[9] = {t->ns,
                             t->name,
                             (const char *)sealed,
                             (const char *)nonce,
                             e->keys.current.id,
                             t->shared,
                             a.actor,
                             a.actor_id,
                             a.peer};
    const int lengths[9] = {0, 0, (int)len, SECRETS_NONCE_LEN, 0, 0, 0, 0, 0};
    const int formats[9] = {0, 0, 1, 1, 0, 0, 0, 0, 0};
    st = hodei_db_exec_bin(conn, set_sql, 9, params, lengths, formats, res, err);
    edge_db_release(e, conn, st);
    return st;
}

/* shared_with: valid namespaces, each once, not the secret's own. */
static hodei_status secret_share_parse(const Hodei__V1__SetSecretRequest *req, secret_target *t,
                                       hodei_err *err)
{
    if (req->n_shared_with > SECRET_SHARE_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "shared_with: at most %d namespaces",
                             SECRET_SHARE_MAX);
    hodei_buf b;
    hodei_buf_init(&b, sizeof t->shared - 1);
    hodei_sqlarr_begin(&b);
    hodei_status st = HODEI_OK;
    for (size_t i = 0; st == HODEI_OK && i < req->n_shared_with; i++) {
        char field[40];
        snprintf(field, sizeof field, "shared_with[%zu]", i % 100);
        st = hodei_ns_check(field, req->shared_with[i], err);
        if (st == HODEI_OK && strcmp(req->shared_with[i], t->ns) == 0)
            st = hodei_err_set(err, HODEI_ERR_INVALID, "%s: is the secret's own namespace", field);
        for (size_t j = 0; st == HODEI_OK && j < i; j++)
            if (strcmp(req->shared_with[i], req->shared_with[j]) == 0)
                st = hodei_err_set(err, HODEI_ERR_INVALID, "%s: named twice", field);
        hodei_sqlarr_str(&b, req->shared_with[i]);
    }
    if (st == HODEI_OK && hodei_sqlarr_end(&b))
        hodei_strlcpy(t->shared, b.data, sizeof t->shared);
    hodei_buf_fini(&b);
    return st;
}

static hodei_status secret_set_check(const edge *e, hodei_rpc_call *call,
                                     const Hodei__V1__SetSecretRequest *req, secret_target *t,
                                     hodei_err *err)
{
    t->name = req->name ? req->name : "";
    hodei_status st = secret_check_name(t->name, err);
    if (st == HODEI_OK)
        st = hodei_identity_pick_namespace(edge_caller(call), "namespace", req->namespace_, &t->ns,
                                           err);
    if (st == HODEI_OK)
        st = secret_share_parse(req, t, err);
    if (st == HODEI_OK)
        st = secrets_value_check(req->value.data, req->value.len, "value", err);
    if (st == HODEI_OK)
        st = secret_check_key(e, err);
    return st;
}

static void secret_set(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__SetSecretRequest *req = (const Hodei__V1__SetSecretRequest *)msg;
    Hodei__V1__SetSecretResponse resp = HODEI__V1__SET_SECRET_RESPONSE__INIT;
    Hodei__V1__Timestamp at;
    uint8_t nonce[SECRETS_NONCE_LEN];
    uint8_t *sealed = NULL;
    PGresult *res = NULL;
    secret_target t = {0};
    char aad[SECRETS_AAD_MAX + 1];
    hodei_err err;
    hodei_status st = secret_set_check(e, call, req, &t, &err);
    if (st != HODEI_OK)
        goto fail;
    sealed = malloc(req->value.len + SECRETS_TAG_LEN);
    if (!sealed) {
        st = hodei_err_set(&err, HODEI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    secrets_aad(e->keys.current.id, t.ns, t.name, aad);
    st = secrets_seal(e->keys.current.key, aad, req->value.data, req->value.len, nonce, sealed,
                      &err);
    if (st == HODEI_OK)
        st = secret_store(e, call, &t, sealed, req->value.len + SECRETS_TAG_LEN, nonce, &res, &err);
    if (st != HODEI_OK)
        goto fail;
    resp.name = req->name;
    resp.created = hodei_db_get_str(res, 0, 0)[0] == 't';
    hodei_pb_time(&at, hodei_db_get_i64(res, 0, 1));
    resp.updated_at = &at;
    HLOG_INFO("secret %s/%s %s", t.ns, t.name, resp.created ? "created" : "replaced");
    hodei_rpc_call_reply(call, &resp.base);
    goto out;
fail:
    hodei_rpc_call_fail_err(call, &err);
out:
    PQclear(res);
    free(sealed);
    if (req->value.data) /* the handler is the request's last reader */
        OPENSSL_cleanse(req->value.data, req->value.len);
}

/* -------------------------------------------------------------- ListSecrets */

enum { L_NAME, L_US, L_SHARED, L_KEY_ID };

static void secret_list_reply(hodei_rpc_call *call, const char *ns, const PGresult *res)
{
    Hodei__V1__ListSecretsResponse resp = HODEI__V1__LIST_SECRETS_RESPONSE__INIT;
    size_t n = (size_t)PQntuples(res);
    hodei_arena arena;
    hodei_arena_init(&arena, 0, EDGE_REPLY_ARENA_MAX);
    Hodei__V1__SecretInfo *infos = hodei_arena_calloc(&arena, n, sizeof *infos);
    Hodei__V1__SecretInfo **ptrs = hodei_arena_calloc(&arena, n, sizeof *ptrs);
    Hodei__V1__Timestamp *times = hodei_arena_calloc(&arena, n, sizeof *times);
    char **share_ptrs = hodei_arena_calloc(&arena, n * SECRET_SHARE_MAX, sizeof *share_ptrs);
    if (!infos || !ptrs || !times || !share_ptrs) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        infos[i] = (Hodei__V1__SecretInfo)HODEI__V1__SECRET_INFO__INIT;
        infos[i].name = (char *)hodei_db_get_str(res, (int)i, L_NAME);
        infos[i].namespace_ = (char *)ns;
        hodei_pb_time(&times[i], hodei_db_get_i64(res, (int)i, L_US));
        infos[i].updated_at = &times[i];
        infos[i].key_id = (char *)hodei_db_get_str(res, (int)i, L_KEY_ID);
        char *shared = hodei_arena_strdup(&arena, hodei_db_get_str(res, (int)i, L_SHARED));
        infos[i].shared_with = &share_ptrs[i * SECRET_SHARE_MAX];
        for (char *save = NULL, *tok = shared ? strtok_r(shared, ",", &save) : NULL;
             tok && infos[i].n_shared_with < SECRET_SHARE_MAX; tok = strtok_r(NULL, ",", &save))
            infos[i].shared_with[infos[i].n_shared_with++] = tok;
        ptrs[i] = &infos[i];
    }
    resp.n_secrets = n;
    resp.secrets = ptrs;
    hodei_rpc_call_reply(call, &resp.base);
out:
    hodei_arena_fini(&arena);
}

static void secret_list(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__ListSecretsRequest *req = (const Hodei__V1__ListSecretsRequest *)msg;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    const char *ns = NULL;
    hodei_err err;
    hodei_status st =
        hodei_identity_pick_namespace(edge_caller(call), "namespace", req->namespace_, &ns, &err);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    const char *params[2] = {SECRET_LIST_MAX_TEXT, ns};
    st = hodei_db_exec(conn,
                       "SELECT name, (extract(epoch FROM updated_at) * 1000000)::bigint,"
                       " array_to_string(shared_with, ','), key_id"
                       " FROM secrets WHERE namespace = $2 ORDER BY name LIMIT $1::int",
                       2, params, &res, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    secret_list_reply(call, ns, res);
    PQclear(res);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

/* ------------------------------------------------------------- DeleteSecret */

static void secret_delete(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__DeleteSecretRequest *req = (const Hodei__V1__DeleteSecretRequest *)msg;
    Hodei__V1__DeleteSecretResponse resp = HODEI__V1__DELETE_SECRET_RESPONSE__INIT;
    const char *name = req->name ? req->name : "";
    const char *ns = NULL;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    edge_actor a;
    hodei_err err;
    edge_actor_of(edge_caller(call), &a);
    hodei_status st = secret_check_name(name, &err);
    if (st == HODEI_OK)
        st = hodei_identity_pick_namespace(edge_caller(call), "namespace", req->namespace_, &ns,
                                           &err);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    const char *params[5] = {ns, name, a.actor, a.actor_id, a.peer};
    st = hodei_db_exec(conn,
                       "WITH d AS (DELETE FROM secrets WHERE namespace = $1 AND name = $2"
                       "  RETURNING namespace, name),"
                       " a AS (" EDGE_AUDIT_INSERT " SELECT $3, $4, $5, namespace,"
                       "  'secret.delete', 'secret', name, '{}' FROM d)"
                       " SELECT count(*) FROM d",
                       5, params, &res, &err);
    edge_db_release(e, conn, st);
    if (st == HODEI_OK && hodei_db_get_i64(res, 0, 0) == 0)
        st = hodei_err_set(&err, HODEI_ERR_NOT_FOUND, "secret %s not found", name);
    PQclear(res);
    if (st != HODEI_OK)
        goto fail;
    HLOG_INFO("secret %s/%s deleted", ns, name);
    hodei_rpc_call_reply(call, &resp.base);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

/* --------------------------------------------------------- submit-time check */

_Static_assert(HODEI_SECRET_REF_NS_BUF == HODEI_NS_BUF, "a reference's namespace is a namespace");
_Static_assert(HODEI_SECRET_REF_NAME_BUF == SECRETS_NAME_MAX + 1, "a reference names a secret");

hodei_status secret_refs_check(edge *e, const char *ns, const Hodei__V1__JobSpec *spec,
                               hodei_err *err)
{
    for (size_t i = 0; spec && i < spec->n_secret_refs; i++) {
        char owner_ns[HODEI_SECRET_REF_NS_BUF], name[HODEI_SECRET_REF_NAME_BUF];
        if (!hodei_secret_ref_parse(spec->secret_refs[i], ns, owner_ns, name))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "spec.secret_refs[%zu]: must be NAME or NAMESPACE/NAME", i);
        if (strcmp(owner_ns, ns) == 0)
            continue; /* its own namespace: looked up when the job runs */
        PGconn *conn = NULL;
        PGresult *res = NULL;
        hodei_status st = edge_db_acquire(e, &conn, err);
        if (st != HODEI_OK)
            return st;
        const char *params[3] = {owner_ns, name, ns};
        st = hodei_db_exec(conn,
                           "SELECT 1 FROM secrets WHERE namespace = $1 AND name = $2"
                           " AND $3 = ANY(shared_with)",
                           3, params, &res, err);
        edge_db_release(e, conn, st);
        bool shared = st == HODEI_OK && PQntuples(res) == 1;
        PQclear(res);
        if (st != HODEI_OK)
            return st;
        if (!shared) /* the same words whether it exists or not */
            return hodei_err_set(err, HODEI_ERR_PERMISSION,
                                 "spec.secret_refs[%zu]: secret %s is not shared with namespace "
                                 "%s; nothing queued",
                                 i, spec->secret_refs[i], ns);
    }
    return HODEI_OK;
}

/* ----------------------------------------------------------------- delivery */

enum { C_REF, C_VALUE_HEX, C_NONCE_HEX, C_KEY_ID, C_NS, C_NAME };

/* The job's secrets, each read and its secret.use row written in one
 * statement (one row per job, attempt and secret, however often RunJob is
 * re-sent). A reference NAME is the job's namespace's; NS/NAME must be
 * shared with it. The actor is the key that queued the job. */
static const char load_sql[] =
    "WITH j AS (SELECT namespace, owner, coalesce(owner_key_id::text, '') AS owner_id"
    "  FROM jobs WHERE id = $1::text::uuid),"
    " r AS (SELECT ref, CASE WHEN strpos(ref, '/') > 0 THEN split_part(ref, '/', 1)"
    "  ELSE j.namespace END AS ns,"
    "  CASE WHEN strpos(ref, '/') > 0 THEN split_part(ref, '/', 2) ELSE ref END AS name"
    "  FROM unnest($2::text[]) AS ref, j),"
    " s AS (SELECT r.ref, s.namespace, s.name, s.value, s.nonce, s.key_id FROM r"
    "  JOIN secrets s ON s.namespace = r.ns AND s.name = r.name, j"
    "  WHERE s.namespace = j.namespace OR j.namespace = ANY(s.shared_with)),"
    " a AS (INSERT INTO audit_log (actor, actor_id, peer, namespace, action, object_type,"
    "  object_id, detail, use_key)"
    "  SELECT j.owner, j.owner_id, 'worker:' || $4::text, j.namespace, 'secret.use', 'secret',"
    "  s.namespace || '/' || s.name,"
    "  jsonb_build_object('job_id', $1::text, 'epoch', $3::text::bigint, 'worker_id', $4::text),"
    "  $1::text || ':' || $3::text || ':' || s.namespace || '/' || s.name FROM s, j"
    "  ON CONFLICT (use_key) WHERE use_key IS NOT NULL DO NOTHING)"
    " SELECT ref, encode(value, 'hex'), encode(nonce, 'hex'), key_id, namespace, name FROM s"
    " ORDER BY ref";

/* The key a value was sealed with. Values from before key ids: the current
 * key, then each older one. */
static hodei_status secret_open_row(const edge *e, const PGresult *res, int row, uint8_t *plain,
                                    size_t *len, hodei_err *err)
{
    const char *hex = hodei_db_get_str(res, row, C_VALUE_HEX);
    const char *nonce_hex = hodei_db_get_str(res, row, C_NONCE_HEX);
    const char *key_id = hodei_db_get_str(res, row, C_KEY_ID);
    const char *ref = hodei_db_get_str(res, row, C_REF);
    uint8_t sealed[SECRETS_SEALED_MAX], nonce[SECRETS_NONCE_LEN];
    char aad[SECRETS_AAD_MAX + 1];
    long sealed_len = hodei_hex_decode(hex, strlen(hex), sealed, sizeof sealed);
    if (sealed_len < 0 ||
        hodei_hex_decode(nonce_hex, strlen(nonce_hex), nonce, sizeof nonce) != SECRETS_NONCE_LEN)
        return hodei_err_set(err, HODEI_ERR_PERMISSION, "secret %s: stored value is malformed",
                             ref);
    secrets_aad(key_id, hodei_db_get_str(res, row, C_NS), hodei_db_get_str(res, row, C_NAME), aad);
    if (key_id[0]) {
        const secrets_key *k = secrets_keyring_find(&e->keys, key_id);
        if (!k)
            return hodei_err_set(err, HODEI_ERR_PERMISSION,
                                 "secret %s: sealed with master key %s, which this edge does "
                                 "not hold (secrets.old_master_keys)",
                                 ref, key_id);
        return secrets_open(k->key, aad, nonce, sealed, (size_t)sealed_len, plain, len, err);
    }
    hodei_status st =
        secrets_open(e->keys.current.key, aad, nonce, sealed, (size_t)sealed_len, plain, len, err);
    for (size_t i = 0; st != HODEI_OK && i < e->keys.n_old; i++)
        st = secrets_open(e->keys.old[i].key, aad, nonce, sealed, (size_t)sealed_len, plain, len,
                          err);
    return st;
}

/* Appends "ref":"value" for one row (value decrypted, then wiped). */
static hodei_status secret_json_add(edge *e, const PGresult *res, int row, hodei_buf *b,
                                    hodei_err *err)
{
    uint8_t plain[SECRETS_VALUE_MAX + 1];
    size_t len = 0;
    hodei_status st = secret_open_row(e, res, row, plain, &len, err);
    if (st != HODEI_OK)
        return st;
    plain[len] = 0;
    bool ok = (b->len == 1 || hodei_buf_putc(b, ',')) &&
              hodei_buf_json_string(b, hodei_db_get_str(res, row, C_REF)) &&
              hodei_buf_putc(b, ':') && hodei_buf_json_string(b, (const char *)plain);
    OPENSSL_cleanse(plain, sizeof plain);
    if (!ok)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "secrets of the job: too large");
    return HODEI_OK;
}

/* Sizes b once for every row, so no realloc leaves a copy of a value behind. */
static bool secret_json_reserve(hodei_buf *b, const PGresult *res)
{
    size_t cap = 4;
    for (int r = 0; r < PQntuples(res); r++)
        cap += strlen(hodei_db_get_str(res, r, C_REF)) + 8 +
               6 * (strlen(hodei_db_get_str(res, r, C_VALUE_HEX)) / 2);
    char *zeros = calloc(1, cap);
    hodei_buf_init(b, cap);
    bool ok = zeros && hodei_buf_append(b, zeros, cap - 1);
    free(zeros);
    hodei_buf_reset(b);
    return ok && hodei_buf_putc(b, '{');
}

static hodei_status secret_json_missing(const PGresult *res, char *const *refs, size_t n,
                                        hodei_err *err)
{
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (int r = 0; !found && r < PQntuples(res); r++)
            found = strcmp(refs[i], hodei_db_get_str(res, r, C_REF)) == 0;
        if (!found && strchr(refs[i], '/'))
            return hodei_err_set(err, HODEI_ERR_NOT_FOUND,
                                 "secret %s not found or not shared with the job's namespace",
                                 refs[i]);
        if (!found)
            return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "secret %s not found", refs[i]);
    }
    return HODEI_OK;
}

static hodei_status secret_rows(edge *e, const secret_use *use, PGresult **res, hodei_err *err)
{
    hodei_buf arr;
    PGconn *conn = NULL;
    char epoch[24];
    hodei_buf_init(&arr, use->n * (SECRET_REF_BUF + 4) + 4);
    hodei_sqlarr_begin(&arr);
    for (size_t i = 0; i < use->n; i++)
        hodei_sqlarr_str(&arr, use->refs[i]);
    hodei_status st = hodei_sqlarr_end(&arr)
                          ? edge_db_acquire(e, &conn, err)
                          : hodei_err_set(err, HODEI_ERR_LIMIT, "spec.secret_refs: too many");
    if (st != HODEI_OK)
        goto out_fini;
    snprintf(epoch, sizeof epoch, "%" PRId64, use->epoch);
    const char *params[4] = {use->job_id, arr.data, epoch, use->worker_id};
    st = hodei_db_exec(conn, load_sql, 4, params, res, err);
    edge_db_release(e, conn, st);
out_fini:
    hodei_buf_fini(&arr);
    return st;
}

hodei_status secret_json_load(edge *e, const secret_use *use, char **json, size_t *len,
                              hodei_err *err)
{
    PGresult *res = NULL;
    hodei_buf b;
    hodei_buf_init(&b, 0);
    *json = NULL;
    *len = 0;
    hodei_status st = secret_check_key(e, err);
    if (st == HODEI_OK)
        st = secret_rows(e, use, &res, err);
    if (st == HODEI_OK)
        st = secret_json_missing(res, use->refs, use->n, err);
    if (st == HODEI_OK && !secret_json_reserve(&b, res))
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    for (int r = 0; st == HODEI_OK && res && r < PQntuples(res); r++)
        st = secret_json_add(e, res, r, &b, err);
    if (st == HODEI_OK && !hodei_buf_putc(&b, '}'))
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "secrets of the job: too large");
    PQclear(res);
    if (st == HODEI_OK) {
        *json = hodei_buf_take(&b, len);
        return HODEI_OK;
    }
    if (b.data)
        OPENSSL_cleanse(b.data, b.cap);
    hodei_buf_fini(&b);
    return st;
}

void secret_json_free(char *json, size_t len)
{
    if (!json)
        return;
    OPENSSL_cleanse(json, len);
    free(json);
}

/* ---------------------------------------------------------------- the edge's own */

hodei_status secret_value_load(edge *e, const char *ref, char **value, hodei_err *err)
{
    char ns[HODEI_SECRET_REF_NS_BUF], name[HODEI_SECRET_REF_NAME_BUF];
    PGconn *conn = NULL;
    PGresult *res = NULL;
    *value = NULL;
    if (!hodei_secret_ref_parse(ref, HODEI_NS_DEFAULT, ns, name))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "secret reference %s: must be NAME or NAMESPACE/NAME", ref);
    hodei_status st = secret_check_key(e, err);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, err);
    if (st != HODEI_OK)
        return st;
    const char *params[2] = {ns, name};
    st = hodei_db_exec(conn,
                       "SELECT namespace || '/' || name, encode(value, 'hex'),"
                       " encode(nonce, 'hex'), key_id, namespace, name FROM secrets"
                       " WHERE namespace = $1 AND name = $2",
                       2, params, &res, err);
    edge_db_release(e, conn, st);
    if (st == HODEI_OK && PQntuples(res) != 1)
        st = hodei_err_set(err, HODEI_ERR_NOT_FOUND, "secret %s/%s not found", ns, name);
    uint8_t plain[SECRETS_VALUE_MAX + 1];
    size_t len = 0;
    if (st == HODEI_OK)
        st = secret_open_row(e, res, 0, plain, &len, err);
    if (st == HODEI_OK) {
        plain[len] = 0;
        if (!(*value = strdup((const char *)plain)))
            st = hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    }
    OPENSSL_cleanse(plain, sizeof plain);
    PQclear(res);
    return st;
}

/* ---------------------------------------------------------------- re-seal */

#define REKEY_BATCH 100
#define REKEY_BATCH_TEXT "100"

enum { K_NS, K_NAME, K_VALUE_HEX, K_NONCE_HEX, K_KEY_ID };

/* Where a run is: the last (namespace, name) it took. */
typedef struct {
    char ns[HODEI_NS_BUF], name[SECRETS_NAME_MAX + 1];
} rekey_cursor;

struct secret_rekey {
    edge *e;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    hodei_metric *moved, *left;
};

/* Opens one row of the re-seal query and seals it again with the current
 * key into the arrays; false (logged) when no key this edge holds opens it. */
static bool rekey_row(edge *e, const PGresult *res, int r, hodei_buf *arr)
{
    const char *ns = hodei_db_get_str(res, r, K_NS), *name = hodei_db_get_str(res, r, K_NAME);
    const char *hex = hodei_db_get_str(res, r, K_VALUE_HEX);
    const char *nonce_hex = hodei_db_get_str(res, r, K_NONCE_HEX);
    const char *key_id = hodei_db_get_str(res, r, K_KEY_ID);
    uint8_t sealed[SECRETS_SEALED_MAX], nonce[SECRETS_NONCE_LEN], plain[SECRETS_VALUE_MAX];
    char aad[SECRETS_AAD_MAX + 1], out_hex[2 * SECRETS_SEALED_MAX + 1], nonce_out[25];
    size_t len = 0;
    hodei_err err;
    long n = hodei_hex_decode(hex, strlen(hex), sealed, sizeof sealed);
    bool ok = n >= 0 && hodei_hex_decode(nonce_hex, strlen(nonce_hex), nonce, sizeof nonce) ==
                            SECRETS_NONCE_LEN;
    hodei_status st = HODEI_ERR_PERMISSION;
    for (size_t k = 0; ok && st != HODEI_OK && k <= e->keys.n_old; k++) {
        const secrets_key *key = k == 0 ? &e->keys.current : &e->keys.old[k - 1];
        if (key_id[0] && strcmp(key->id, key_id) != 0)
            continue;
        secrets_aad(key_id, ns, name, aad);
        st = secrets_open(key->key, aad, nonce, sealed, (size_t)n, plain, &len, &err);
    }
    if (st != HODEI_OK) {
        HLOG_WARN("secret %s/%s: sealed with master key %s, which this edge cannot open;"
                  " not re-sealed",
                  ns, name, key_id[0] ? key_id : "(before key ids)");
        return false;
    }
    secrets_aad(e->keys.current.id, ns, name, aad);
    st = secrets_seal(e->keys.current.key, aad, plain, len, nonce, sealed, &err);
    OPENSSL_cleanse(plain, sizeof plain);
    if (st != HODEI_OK)
        return false;
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len + SECRETS_TAG_LEN; i++) {
        out_hex[2 * i] = digits[sealed[i] >> 4];
        out_hex[2 * i + 1] = digits[sealed[i] & 15];
    }
    out_hex[2 * (len + SECRETS_TAG_LEN)] = '\0';
    for (size_t i = 0; i < SECRETS_NONCE_LEN; i++) {
        nonce_out[2 * i] = digits[nonce[i] >> 4];
        nonce_out[2 * i + 1] = digits[nonce[i] & 15];
    }
    nonce_out[2 * SECRETS_NONCE_LEN] = '\0';
    hodei_sqlarr_str(&arr[0], ns);
    hodei_sqlarr_str(&arr[1], name);
    hodei_sqlarr_str(&arr[2], out_hex);
    hodei_sqlarr_str(&arr[3], nonce_out);
    hodei_sqlarr_str(&arr[4], key_id);
    return true;
}

static const char rekey_select_sql[] =
    "SELECT namespace, name, encode(value, 'hex'), encode(nonce, 'hex'), key_id FROM secrets"
    " WHERE key_id <> $1 AND (namespace, name) > ($2, $3) ORDER BY namespace, name"
    " LIMIT " REKEY_BATCH_TEXT " FOR UPDATE SKIP LOCKED";

/* The new values and their audit rows, in one statement; the old key id
 * must still be the row's (else another edge moved it meanwhile). */
static const char rekey_update_sql[] =
    "WITH u AS (UPDATE secrets s SET value = decode(x.v, 'hex'), nonce = decode(x.n, 'hex'),"
    "  key_id = $6 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])"
    "  AS x(ns, name, v, n, old)"
    "  WHERE s.namespace = x.ns AND s.name = x.name AND s.key_id = x.old"
    "  RETURNING s.namespace, s.name, x.old)"
    " " EDGE_AUDIT_INSERT " SELECT 'system', '', '', namespace, 'secret.rekey', 'secret',"
    " namespace || '/' || name, jsonb_build_object('from', old, 'to', $6::text) FROM u";

/* One batch in one transaction: how many rows it saw (0 = done). */
static hodei_status rekey_batch(edge *e, PGconn *conn, rekey_cursor *cur, int *seen, int *moved,
                                hodei_err *err)
{
    hodei_buf arr[5];
    PGresult *res = NULL;
    *seen = *moved = 0;
    for (int i = 0; i < 5; i++) {
        hodei_buf_init(&arr[i], REKEY_BATCH * (2 * SECRETS_SEALED_MAX + 8) + 16);
        hodei_sqlarr_begin(&arr[i]);
    }
    hodei_status st = hodei_db_begin(conn, err);
    const char *params[3] = {e->keys.current.id, cur->ns, cur->name};
    if (st == HODEI_OK)
        st = hodei_db_exec(conn, rekey_select_sql, 3, params, &res, err);
    for (int r = 0; st == HODEI_OK && r < PQntuples(res); r++) {
        *moved += rekey_row(e, res, r, arr);
        hodei_strlcpy(cur->ns, hodei_db_get_str(res, r, K_NS), sizeof cur->ns);
        hodei_strlcpy(cur->name, hodei_db_get_str(res, r, K_NAME), sizeof cur->name);
    }
    *seen = res ? PQntuples(res) : 0;
    PQclear(res);
    bool built = true;
    for (int i = 0; i < 5; i++)
        built = hodei_sqlarr_end(&arr[i]) && built;
    if (st == HODEI_OK && *moved > 0) {
        const char *up[6] = {arr[0].data, arr[1].data, arr[2].data,
                             arr[3].data, arr[4].data, e->keys.current.id};
        st = built ? hodei_db_exec(conn, rekey_update_sql, 6, up, NULL, err)
                   : hodei_err_set(err, HODEI_ERR_LIMIT, "re-seal batch too large");
    }
    if (st == HODEI_OK)
        st = hodei_db_commit(conn, err);
    else
        hodei_db_rollback(conn);
    for (int i = 0; i < 5; i++) {
        if (arr[i].data)
            OPENSSL_cleanse(arr[i].data, arr[i].cap);
        hodei_buf_fini(&arr[i]);
    }
    return st;
}

hodei_status secret_rekey_run(edge *e, int *moved, int64_t *left, hodei_err *err)
{
    rekey_cursor cur = {"", ""};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    int seen = 0, n = 0;
    *moved = 0;
    *left = 0;
    if (!e->keys.on)
        return HODEI_OK;
    hodei_status st = edge_db_acquire(e, &conn, err);
    if (st != HODEI_OK)
        return st;
    do {
        st = rekey_batch(e, conn, &cur, &seen, &n, err);
        *moved += n;
    } while (st == HODEI_OK && seen == REKEY_BATCH);
    const char *params[1] = {e->keys.current.id};
    if (st == HODEI_OK)
        st = hodei_db_exec(conn, "SELECT count(*) FROM secrets WHERE key_id <> $1", 1, params, &res,
                           err);
    if (st == HODEI_OK)
        *left = hodei_db_get_i64(res, 0, 0);
    PQclear(res);
    edge_db_release(e, conn, st);
    return st;
}

static void *rekey_main(void *arg)
{
    secret_rekey *k = arg;
    int64_t interval = k->e->cfg->secrets_rekey_ms;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        pthread_mutex_unlock(&k->mu);
        int moved = 0;
        int64_t left = 0;
        hodei_err err;
        if (secret_rekey_run(k->e, &moved, &left, &err) != HODEI_OK) {
            HLOG_WARN("secrets: re-seal pass failed: %s", err.msg);
        } else {
            if (moved > 0)
                HLOG_INFO("secrets: re-sealed %d value(s) with master key %s; %" PRId64
                          " left under other keys",
                          moved, k->e->keys.current.id, left);
            hodei_metric_add(k->moved, (uint64_t)moved);
            hodei_metric_set(k->left, left);
        }
        pthread_mutex_lock(&k->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += interval / 1000;
        until.tv_nsec += (interval % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!k->stop && pthread_cond_timedwait(&k->cv, &k->mu, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

hodei_status secret_rekey_start(edge *e, secret_rekey **out, hodei_err *err)
{
    *out = NULL;
    if (!e->keys.on || e->cfg->secrets_rekey_ms == 0)
        return HODEI_OK;
    secret_rekey *k = calloc(1, sizeof *k);
    if (!k)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    k->e = e;
    k->moved = hodei_daemon_counter(e->d, "hodei_secrets_resealed_total",
                                    "Secret values re-sealed with the current master key.");
    k->left = hodei_daemon_gauge(e->d, "hodei_secrets_old_key_values",
                                 "Secret values still sealed with another master key (0: the "
                                 "older keys can be retired).");
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    if (pthread_create(&k->thread, NULL, rekey_main, k) != 0) {
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        free(k);
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "cannot start the re-seal thread");
    }
    *out = k;
    return HODEI_OK;
}

void secret_rekey_stop(secret_rekey *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

hodei_status secret_rpc_register(edge *e, hodei_err *err)
{
    const hodei_rpc_method methods[] = {
        {SVC "SetSecret", HODEI_RPC_UNARY, &hodei__v1__set_secret_request__descriptor, secret_set,
         NULL, NULL, e},
        {SVC "ListSecrets", HODEI_RPC_UNARY, &hodei__v1__list_secrets_request__descriptor,
         secret_list, NULL, NULL, e},
        {SVC "DeleteSecret", HODEI_RPC_UNARY, &hodei__v1__delete_secret_request__descriptor,
         secret_delete, NULL, NULL, e},
    };
    return hodei_rpc_server_add_all(e->server, methods, sizeof methods / sizeof methods[0], err);
}
