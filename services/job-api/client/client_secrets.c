/* SecretService: SetSecret, ListSecrets, DeleteSecret; and secret_json_load
 * for RunJob. Every write is one statement with its audit_log row (actor
 * "api", object = the name). Messages name secrets, never their values. */
#include "client_secrets.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "edge_seal.h"
#include "hodei/buf.h"
#include "hodei/log.h"
#include "hodei/pb.h"
#include "hodei/sqlarr.h"
#include "hodei/v1/secret.pb-c.h"

#define SVC "/hodei.v1.SecretService/"
#define SECRET_LIST_MAX 10000 /* ListSecrets answers at most this many */
#define SECRET_LIST_MAX_TEXT "10000"
#define SECRET_NO_KEY "secrets.master_key is not set"

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
    if (!e->secrets_on)
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, SECRET_NO_KEY);
    return HODEI_OK;
}

/* ---------------------------------------------------------------- SetSecret */

static const char set_sql[] =
    "WITH s AS (INSERT INTO secrets (name, value, nonce) VALUES ($1, $2, $3)"
    "  ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, nonce = EXCLUDED.nonce,"
    "  updated_at = now()"
    "  RETURNING name, (xmax = 0) AS created,"
    "  (extract(epoch FROM updated_at) * 1000000)::bigint AS us),"
    " a AS (INSERT INTO audit_log (actor, action, object_type, object_id)"
    "  SELECT 'api', CASE WHEN created THEN 'secret.create' ELSE 'secret.replace' END,"
    "  'secret', name FROM s)"
    " SELECT created, us FROM s";

static hodei_status secret_store(edge *e, const char *name, const uint8_t *sealed, size_t len,
                                 const uint8_t *nonce, PGresult **res, hodei_err *err)
{
    PGconn *conn = NULL;
    hodei_status st = edge_db_acquire(e, &conn, err);
    if (st != HODEI_OK)
        return st;
    const char *params[3] = {name, (const char *)sealed, (const char *)nonce};
    const int lengths[3] = {0, (int)len, SECRETS_NONCE_LEN};
    const int formats[3] = {0, 1, 1};
    st = hodei_db_exec_bin(conn, set_sql, 3, params, lengths, formats, res, err);
    edge_db_release(e, conn, st);
    return st;
}

static hodei_status secret_set_check(const edge *e, const Hodei__V1__SetSecretRequest *req,
                                     hodei_err *err)
{
    const char *name = req->name ? req->name : "";
    hodei_status st = secret_check_name(name, err);
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
    hodei_err err;
    hodei_status st = secret_set_check(e, req, &err);
    if (st != HODEI_OK)
        goto fail;
    sealed = malloc(req->value.len + SECRETS_TAG_LEN);
    if (!sealed) {
        st = hodei_err_set(&err, HODEI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    st = secrets_seal(e->secrets_key, req->name, req->value.data, req->value.len, nonce, sealed,
                      &err);
    if (st == HODEI_OK)
        st =
            secret_store(e, req->name, sealed, req->value.len + SECRETS_TAG_LEN, nonce, &res, &err);
    if (st != HODEI_OK)
        goto fail;
    resp.name = req->name;
    resp.created = hodei_db_get_str(res, 0, 0)[0] == 't';
    hodei_pb_time(&at, hodei_db_get_i64(res, 0, 1));
    resp.updated_at = &at;
    HLOG_INFO("secret %s %s", req->name, resp.created ? "created" : "replaced");
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

static void secret_list_reply(hodei_rpc_call *call, const PGresult *res)
{
    Hodei__V1__ListSecretsResponse resp = HODEI__V1__LIST_SECRETS_RESPONSE__INIT;
    size_t n = (size_t)PQntuples(res);
    Hodei__V1__SecretInfo *infos = calloc(n ? n : 1, sizeof *infos);
    Hodei__V1__SecretInfo **ptrs = calloc(n ? n : 1, sizeof *ptrs);
    Hodei__V1__Timestamp *times = calloc(n ? n : 1, sizeof *times);
    if (!infos || !ptrs || !times) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        infos[i] = (Hodei__V1__SecretInfo)HODEI__V1__SECRET_INFO__INIT;
        infos[i].name = (char *)hodei_db_get_str(res, (int)i, 0);
        hodei_pb_time(&times[i], hodei_db_get_i64(res, (int)i, 1));
        infos[i].updated_at = &times[i];
        ptrs[i] = &infos[i];
    }
    resp.n_secrets = n;
    resp.secrets = ptrs;
    hodei_rpc_call_reply(call, &resp.base);
out:
    free(infos);
    free(ptrs);
    free(times);
}

static void secret_list(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    (void)msg;
    edge *e = ctx;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_err err;
    hodei_status st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    const char *params[1] = {SECRET_LIST_MAX_TEXT};
    st = hodei_db_exec(conn,
                       "SELECT name, (extract(epoch FROM updated_at) * 1000000)::bigint"
                       " FROM secrets ORDER BY name LIMIT $1::int",
                       1, params, &res, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    secret_list_reply(call, res);
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
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_err err;
    hodei_status st = secret_check_name(name, &err);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    const char *params[1] = {name};
    st = hodei_db_exec(conn,
                       "WITH d AS (DELETE FROM secrets WHERE name = $1 RETURNING name),"
                       " a AS (INSERT INTO audit_log (actor, action, object_type, object_id)"
                       "  SELECT 'api', 'secret.delete', 'secret', name FROM d)"
                       " SELECT count(*) FROM d",
                       1, params, &res, &err);
    edge_db_release(e, conn, st);
    if (st == HODEI_OK && hodei_db_get_i64(res, 0, 0) == 0)
        st = hodei_err_set(&err, HODEI_ERR_NOT_FOUND, "secret %s not found", name);
    PQclear(res);
    if (st != HODEI_OK)
        goto fail;
    HLOG_INFO("secret %s deleted", name);
    hodei_rpc_call_reply(call, &resp.base);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

/* ----------------------------------------------------------------- delivery */

enum { C_NAME, C_VALUE_HEX, C_NONCE_HEX };

/* Appends "name":"value" for one row (value decrypted, then wiped). */
static hodei_status secret_json_add(edge *e, const PGresult *res, int row, hodei_buf *b,
                                    hodei_err *err)
{
    const char *name = hodei_db_get_str(res, row, C_NAME);
    const char *hex = hodei_db_get_str(res, row, C_VALUE_HEX);
    uint8_t sealed[SECRETS_SEALED_MAX], nonce[SECRETS_NONCE_LEN], plain[SECRETS_VALUE_MAX + 1];
    size_t len = 0;
    long sealed_len = hodei_hex_decode(hex, strlen(hex), sealed, sizeof sealed);
    if (sealed_len < 0 || hodei_hex_decode(hodei_db_get_str(res, row, C_NONCE_HEX),
                                           strlen(hodei_db_get_str(res, row, C_NONCE_HEX)), nonce,
                                           sizeof nonce) != SECRETS_NONCE_LEN)
        return hodei_err_set(err, HODEI_ERR_PERMISSION, "secret %s: stored value is malformed",
                             name);
    hodei_status st =
        secrets_open(e->secrets_key, name, nonce, sealed, (size_t)sealed_len, plain, &len, err);
    if (st != HODEI_OK)
        return st;
    plain[len] = 0;
    bool ok = (b->len == 1 || hodei_buf_putc(b, ',')) && hodei_buf_json_string(b, name) &&
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
        cap += strlen(hodei_db_get_str(res, r, C_NAME)) + 8 +
               6 * (strlen(hodei_db_get_str(res, r, C_VALUE_HEX)) / 2);
    char *zeros = calloc(1, cap);
    hodei_buf_init(b, cap);
    bool ok = zeros && hodei_buf_append(b, zeros, cap - 1);
    free(zeros);
    hodei_buf_reset(b);
    return ok && hodei_buf_putc(b, '{');
}

static hodei_status secret_json_missing(const PGresult *res, char *const *names, size_t n,
                                        hodei_err *err)
{
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (int r = 0; !found && r < PQntuples(res); r++)
            found = strcmp(names[i], hodei_db_get_str(res, r, C_NAME)) == 0;
        if (!found)
            return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "secret %s not found", names[i]);
    }
    return HODEI_OK;
}

static hodei_status secret_rows(edge *e, char *const *names, size_t n, PGresult **res,
                                hodei_err *err)
{
    hodei_buf arr;
    PGconn *conn = NULL;
    hodei_buf_init(&arr, (size_t)n * (SECRETS_NAME_MAX + 4) + 4);
    hodei_sqlarr_begin(&arr);
    for (size_t i = 0; i < n; i++)
        hodei_sqlarr_str(&arr, names[i]);
    hodei_status st = hodei_sqlarr_end(&arr)
                          ? edge_db_acquire(e, &conn, err)
                          : hodei_err_set(err, HODEI_ERR_LIMIT, "spec.secret_refs: too many");
    if (st != HODEI_OK)
        goto out_fini;
    const char *params[1] = {arr.data};
    st = hodei_db_exec(conn,
                       "SELECT name, encode(value, 'hex'), encode(nonce, 'hex') FROM secrets"
                       " WHERE name = ANY($1::text[]) ORDER BY name",
                       1, params, res, err);
    edge_db_release(e, conn, st);
out_fini:
    hodei_buf_fini(&arr);
    return st;
}

hodei_status secret_json_load(edge *e, char *const *names, size_t n, char **json, size_t *len,
                              hodei_err *err)
{
    PGresult *res = NULL;
    hodei_buf b;
    hodei_buf_init(&b, 0);
    *json = NULL;
    *len = 0;
    hodei_status st = secret_check_key(e, err);
    if (st == HODEI_OK)
        st = secret_rows(e, names, n, &res, err);
    if (st == HODEI_OK)
        st = secret_json_missing(res, names, n, err);
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
