/* KeyService and AuditService: see client_keys.h. */
#include "client_keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "edge_audit.h"
#include "edge_auth.h"
#include "hodei/log.h"
#include "hodei/page_token.h"
#include "hodei/pb.h"
#include "hodei/store_keys.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/audit.pb-c.h"
#include "hodei/v1/keys.pb-c.h"

#define KEYS "/hodei.v1.KeyService/"
#define KEYS_PAGE_DEFAULT 100
#define KEYS_PAGE_MAX 1000
#define KEYS_LIST_TEXT_MAX 4096 /* scopes or namespaces of one key, comma-joined */

static int64_t pb_us(const Hodei__V1__Timestamp *t)
{
    if (!t || (t->seconds == 0 && t->nanos == 0))
        return 0;
    return t->seconds * 1000000 + t->nanos / 1000;
}

/* ------------------------------------------------------------- key messages */

/* An ApiKey and the memory behind it. Strings point into a PGresult or the
 * identity it came from. */
typedef struct {
    Hodei__V1__ApiKey key;
    Hodei__V1__Timestamp created, expires, revoked;
    char *scope_ptrs[HODEI_SCOPE_COUNT];
    char *ns_ptrs[HODEI_NS_PER_KEY_MAX];
    char scope_text[KEYS_LIST_TEXT_MAX], ns_text[KEYS_LIST_TEXT_MAX];
} key_msg;

static size_t split_list(char *text, char **out, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(text, ",", &save); t && n < max;
         t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    return n;
}

static void key_msg_times(key_msg *m, int64_t created, int64_t expires, int64_t revoked)
{
    if (created) {
        hodei_pb_time(&m->created, created);
        m->key.created_at = &m->created;
    }
    if (expires) {
        hodei_pb_time(&m->expires, expires);
        m->key.expires_at = &m->expires;
    }
    if (revoked) {
        hodei_pb_time(&m->revoked, revoked);
        m->key.revoked_at = &m->revoked;
    }
}

enum {
    K_ID,
    K_NAME,
    K_OWNER,
    K_SCOPES,
    K_NAMESPACES,
    K_CREATED,
    K_EXPIRES,
    K_REVOKED,
    K_CERT,
    K_CREATED_BY
};

#define KEY_ROW_COLUMNS                                                                            \
    "id::text, name, owner, array_to_string(scopes, ','), array_to_string(namespaces, ','),"       \
    " (extract(epoch FROM created_at) * 1000000)::bigint,"                                         \
    " coalesce((extract(epoch FROM expires_at) * 1000000)::bigint, 0),"                            \
    " coalesce((extract(epoch FROM revoked_at) * 1000000)::bigint, 0),"                            \
    " coalesce(cert_san, ''), created_by"

static void key_msg_from_row(key_msg *m, const PGresult *res, int row)
{
    *m = (key_msg){.key = HODEI__V1__API_KEY__INIT};
    m->key.id = (char *)hodei_db_get_str(res, row, K_ID);
    m->key.name = (char *)hodei_db_get_str(res, row, K_NAME);
    m->key.owner = (char *)hodei_db_get_str(res, row, K_OWNER);
    m->key.cert_name = (char *)hodei_db_get_str(res, row, K_CERT);
    m->key.created_by = (char *)hodei_db_get_str(res, row, K_CREATED_BY);
    hodei_strlcpy(m->scope_text, hodei_db_get_str(res, row, K_SCOPES), sizeof m->scope_text);
    hodei_strlcpy(m->ns_text, hodei_db_get_str(res, row, K_NAMESPACES), sizeof m->ns_text);
    m->key.n_scopes = split_list(m->scope_text, m->scope_ptrs, HODEI_SCOPE_COUNT);
    m->key.scopes = m->scope_ptrs;
    m->key.n_namespaces = split_list(m->ns_text, m->ns_ptrs, HODEI_NS_PER_KEY_MAX);
    m->key.namespaces = m->ns_ptrs;
    key_msg_times(m, hodei_db_get_i64(res, row, K_CREATED), hodei_db_get_i64(res, row, K_EXPIRES),
                  hodei_db_get_i64(res, row, K_REVOKED));
}

static void key_msg_from_identity(key_msg *m, const hodei_identity *id)
{
    *m = (key_msg){.key = HODEI__V1__API_KEY__INIT};
    m->key.id = (char *)id->key_id;
    m->key.name = (char *)id->name;
    m->key.owner = (char *)id->owner;
    m->key.cert_name = (char *)(id->kind == HODEI_PRINCIPAL_CERT ? id->subject : "");
    for (int i = 0; i < HODEI_SCOPE_COUNT; i++)
        if (id->scopes & hodei_scope_at(i))
            m->scope_ptrs[m->key.n_scopes++] = (char *)hodei_scope_name(hodei_scope_at(i));
    m->key.scopes = m->scope_ptrs;
    for (size_t i = 0; i < id->n_namespaces; i++)
        m->ns_ptrs[i] = (char *)id->namespaces[i];
    m->key.n_namespaces = id->n_namespaces;
    m->key.namespaces = m->ns_ptrs;
    key_msg_times(m, 0, id->expires_at_us, 0);
}

static hodei_status key_read(PGconn *conn, const char *id, PGresult **res, hodei_err *err)
{
    const char *params[1] = {id};
    return hodei_db_exec(conn, "SELECT " KEY_ROW_COLUMNS " FROM api_keys WHERE id = $1::uuid", 1,
                         params, res, err);
}

/* ---------------------------------------------------------------- CreateKey */

static hodei_status create_spec(const Hodei__V1__CreateKeyRequest *req, hodei_key_spec *k,
                                hodei_err *err)
{
    *k = (hodei_key_spec){.name = req->name ? req->name : "",
                          .owner = req->owner ? req->owner : "",
                          .namespaces = (const char *const *)req->namespaces,
                          .n_namespaces = req->n_namespaces,
                          .expires_at_us = pb_us(req->expires_at),
                          .cert_name = req->cert_name ? req->cert_name : ""};
    for (size_t i = 0; i < req->n_scopes; i++) {
        uint32_t bit;
        if (!hodei_scope_parse(req->scopes[i], &bit))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "scopes[%zu]: unknown scope; one of jobs:submit, jobs:read, "
                                 "jobs:cancel, logs:read, templates:write, secrets:write, admin",
                                 i);
        k->scopes |= bit;
    }
    if (req->expires_at && req->expires_at->nanos < 0)
        return hodei_err_set(err, HODEI_ERR_INVALID, "expires_at: nanos must not be negative");
    return HODEI_OK;
}

static hodei_status create_tx(PGconn *conn, const hodei_key_spec *k, const hodei_identity *by,
                              char key[HODEI_APIKEY_BUF], PGresult **res, hodei_err *err)
{
    char id[HODEI_ID_BUF];
    edge_actor a;
    edge_actor_of(by, &a);
    hodei_store_actor sa = {.actor = a.actor, .actor_id = a.actor_id, .peer = a.peer};
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    if ((st = hodei_store_key_create(conn, k, false, &sa, key, id, err)) == HODEI_OK &&
        (st = key_read(conn, id, res, err)) == HODEI_OK &&
        (st = hodei_db_commit(conn, err)) != HODEI_OK) {
        PQclear(*res);
        *res = NULL;
    }
    if (st != HODEI_OK)
        hodei_db_rollback(conn);
    return st;
}

static void keys_create(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__CreateKeyRequest *req = (const Hodei__V1__CreateKeyRequest *)msg;
    hodei_key_spec k;
    hodei_err err;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    char key[HODEI_APIKEY_BUF] = "";
    hodei_status st = create_spec(req, &k, &err);
    if (st == HODEI_OK)
        st = hodei_key_spec_check(&k, hodei_wall_us(), &err);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    st = create_tx(conn, &k, edge_caller(call), key, &res, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    key_msg m;
    key_msg_from_row(&m, res, 0);
    Hodei__V1__CreateKeyResponse resp = HODEI__V1__CREATE_KEY_RESPONSE__INIT;
    resp.key = &m.key;
    resp.secret = key;
    HLOG_INFO("API key %s (%s) created by %s", m.key.name, m.key.id, edge_caller(call)->name);
    hodei_rpc_call_reply(call, &resp.base);
    PQclear(res);
    OPENSSL_cleanse(key, sizeof key);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

/* ----------------------------------------------------------------- ListKeys */

static hodei_status list_token(const char *tok, char *us, size_t us_len, char *id, hodei_err *err)
{
    int64_t v;
    if (!hodei_page_token_decode(tok, &v, id))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "page_token: not a token this server returned");
    snprintf(us, us_len, "%" PRId64, v);
    return HODEI_OK;
}

static void keys_list_reply(hodei_rpc_call *call, const PGresult *res, int page)
{
    int rows = PQntuples(res), n = rows > page ? page : rows;
    hodei_arena arena;
    hodei_arena_init(&arena, 0, EDGE_REPLY_ARENA_MAX);
    key_msg *ms = hodei_arena_calloc(&arena, (size_t)n, sizeof *ms);
    Hodei__V1__ApiKey **ptrs = hodei_arena_calloc(&arena, (size_t)n, sizeof *ptrs);
    char token[HODEI_PAGE_TOKEN_BUF] = "";
    if (!ms || !ptrs) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        key_msg_from_row(&ms[i], res, i);
        ptrs[i] = &ms[i].key;
    }
    if (rows > page && n > 0)
        hodei_page_token_encode(hodei_db_get_i64(res, n - 1, K_CREATED),
                                hodei_db_get_str(res, n - 1, K_ID), token);
    Hodei__V1__ListKeysResponse resp = HODEI__V1__LIST_KEYS_RESPONSE__INIT;
    resp.n_keys = (size_t)n;
    resp.keys = ptrs;
    resp.next_page_token = token;
    hodei_rpc_call_reply(call, &resp.base);
out:
    hodei_arena_fini(&arena);
}

static void keys_list(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__ListKeysRequest *req = (const Hodei__V1__ListKeysRequest *)msg;
    char us[24] = "", id[HODEI_ID_BUF] = "", limit[16];
    hodei_err err;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_status st = HODEI_OK;
    if (req->page_size < 0 || req->page_size > KEYS_PAGE_MAX)
        st = hodei_err_set(&err, HODEI_ERR_INVALID, "page_size: must be between 0 and %d, got %d",
                           KEYS_PAGE_MAX, req->page_size);
    if (st == HODEI_OK && req->page_token && req->page_token[0])
        st = list_token(req->page_token, us, sizeof us, id, &err);
    int page = req->page_size ? req->page_size : KEYS_PAGE_DEFAULT;
    snprintf(limit, sizeof limit, "%d", page + 1);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    const char *params[4] = {req->include_revoked ? "t" : "f", us[0] ? us : NULL, id[0] ? id : NULL,
                             limit};
    st = hodei_db_exec(conn,
                       "SELECT " KEY_ROW_COLUMNS " FROM api_keys"
                       " WHERE ($1::bool OR revoked_at IS NULL)"
                       "   AND ($2::bigint IS NULL OR (created_at, id) >"
                       "        ('epoch'::timestamptz + $2::bigint * interval '1 microsecond',"
                       "         $3::uuid))"
                       " ORDER BY created_at, id LIMIT $4::int",
                       4, params, &res, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    keys_list_reply(call, res, page);
    PQclear(res);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

/* ---------------------------------------------------------------- RevokeKey */

static const char revoke_sql[] =
    "WITH k AS (UPDATE api_keys SET revoked_at = now()"
    "  WHERE revoked_at IS NULL AND (id = $1::uuid OR ($1 IS NULL AND name = $2))"
    "  RETURNING id, name, owner)"
    ", a AS (" EDGE_AUDIT_INSERT " SELECT $3, $4, $5, '', 'key.revoke', 'key', id::text,"
    "  jsonb_build_object('name', name, 'owner', owner) FROM k)"
    " SELECT id::text FROM k";

static hodei_status revoke_check(const Hodei__V1__RevokeKeyRequest *req, hodei_err *err)
{
    bool by_id = req->id && req->id[0], by_name = req->name && req->name[0];
    if (by_id == by_name)
        return hodei_err_set(err, HODEI_ERR_INVALID, "id or name: give exactly one");
    if (by_id)
        return hodei_id_check("id", req->id, "a key id", err);
    return hodei_key_name_check("name", req->name, err);
}

/* Why nothing was revoked: no such key, or it already was. */
static hodei_status revoke_none(PGconn *conn, const Hodei__V1__RevokeKeyRequest *req,
                                hodei_err *err)
{
    PGresult *res = NULL;
    const char *params[1] = {req->id && req->id[0] ? req->id : NULL};
    hodei_status st = HODEI_OK;
    if (params[0])
        st =
            hodei_db_exec(conn, "SELECT 1 FROM api_keys WHERE id = $1::uuid", 1, params, &res, err);
    if (st != HODEI_OK)
        return st;
    bool exists = res && PQntuples(res) > 0;
    PQclear(res);
    if (exists)
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, "key %s is already revoked", req->id);
    return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "no active key %s",
                         params[0] ? req->id : req->name);
}

static void keys_revoke(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__RevokeKeyRequest *req = (const Hodei__V1__RevokeKeyRequest *)msg;
    edge_actor a;
    hodei_err err;
    PGconn *conn = NULL;
    PGresult *res = NULL, *row = NULL;
    edge_actor_of(edge_caller(call), &a);
    hodei_status st = revoke_check(req, &err);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    const char *params[5] = {req->id && req->id[0] ? req->id : NULL, req->name, a.actor, a.actor_id,
                             a.peer};
    st = hodei_db_exec(conn, revoke_sql, 5, params, &res, &err);
    if (st == HODEI_OK && PQntuples(res) == 0)
        st = revoke_none(conn, req, &err);
    if (st == HODEI_OK)
        st = key_read(conn, hodei_db_get_str(res, 0, 0), &row, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    edge_auth_forget(e->auth, hodei_db_get_str(res, 0, 0));
    key_msg m;
    key_msg_from_row(&m, row, 0);
    Hodei__V1__RevokeKeyResponse resp = HODEI__V1__REVOKE_KEY_RESPONSE__INIT;
    resp.key = &m.key;
    HLOG_INFO("API key %s (%s) revoked by %s", m.key.name, m.key.id, a.actor);
    hodei_rpc_call_reply(call, &resp.base);
    PQclear(res);
    PQclear(row);
    return;
fail:
    PQclear(res);
    hodei_rpc_call_fail_err(call, &err);
}

/* ------------------------------------------------------------------- WhoAmI */

static void keys_whoami(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    (void)msg;
    (void)ctx;
    const hodei_identity *id = edge_caller(call);
    key_msg m;
    key_msg_from_identity(&m, id);
    Hodei__V1__WhoAmIResponse resp = HODEI__V1__WHO_AM_IRESPONSE__INIT;
    resp.key = &m.key;
    resp.peer = (char *)id->peer;
    hodei_rpc_call_reply(call, &resp.base);
}

hodei_status keys_rpc_register(edge *e, hodei_err *err)
{
    const hodei_rpc_method methods[] = {
        {KEYS "CreateKey", HODEI_RPC_UNARY, &hodei__v1__create_key_request__descriptor, keys_create,
         NULL, NULL, e},
        {KEYS "ListKeys", HODEI_RPC_UNARY, &hodei__v1__list_keys_request__descriptor, keys_list,
         NULL, NULL, e},
        {KEYS "RevokeKey", HODEI_RPC_UNARY, &hodei__v1__revoke_key_request__descriptor, keys_revoke,
         NULL, NULL, e},
        {KEYS "WhoAmI", HODEI_RPC_UNARY, &hodei__v1__who_am_irequest__descriptor, keys_whoami, NULL,
         NULL, e},
    };
    return hodei_rpc_server_add_all(e->server, methods, sizeof methods / sizeof methods[0], err);
}

/* --------------------------------------------------------------- QueryAudit */

#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX 1000
#define AUDIT_FILTER_MAX 256

enum { A_ID, A_AT, A_ACTOR, A_ACTOR_ID, A_ACTION, A_TYPE, A_OBJECT, A_NS, A_DETAIL, A_PEER };

static const char audit_sql[] =
    "SELECT id, (extract(epoch FROM at) * 1000000)::bigint, actor, actor_id, action, object_type,"
    " object_id, namespace, detail::text, peer FROM audit_log"
    " WHERE ($1::text IS NULL OR actor = $1 OR actor_id = $1)"
    "   AND ($2::text IS NULL OR action = $2)"
    "   AND ($3::text IS NULL OR starts_with(action, $3))"
    "   AND ($4::bigint IS NULL OR at >= 'epoch'::timestamptz + $4::bigint * interval '1 us')"
    "   AND ($5::bigint IS NULL OR at < 'epoch'::timestamptz + $5::bigint * interval '1 us')"
    "   AND ($6::text IS NULL OR namespace = $6)"
    "   AND ($7::text IS NULL OR object_id = $7)"
    "   AND ($8::bigint IS NULL OR id < $8)"
    " ORDER BY id DESC LIMIT $9::int";

typedef struct {
    char action[AUDIT_FILTER_MAX + 1], prefix[AUDIT_FILTER_MAX + 1];
    char since[24], until[24], before[24], limit[16];
    int page;
} audit_query;

static const char *nz(const char *s)
{
    return s && s[0] ? s : NULL;
}

static hodei_status audit_text(const char *field, const char *s, hodei_err *err)
{
    if (s && (strlen(s) > AUDIT_FILTER_MAX || !hodei_utf8_valid(s, strlen(s))))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: at most %d bytes of UTF-8", field,
                             AUDIT_FILTER_MAX);
    return HODEI_OK;
}

static hodei_status audit_parse(const Hodei__V1__QueryAuditRequest *req, audit_query *q,
                                hodei_err *err)
{
    memset(q, 0, sizeof *q);
    hodei_status st = audit_text("actor", req->actor, err);
    if (st == HODEI_OK)
        st = audit_text("action", req->action, err);
    if (st == HODEI_OK)
        st = audit_text("object_id", req->object_id, err);
    if (st == HODEI_OK && nz(req->namespace_))
        st = hodei_ns_check("namespace", req->namespace_, err);
    if (st == HODEI_OK && (req->page_size < 0 || req->page_size > AUDIT_PAGE_MAX))
        st = hodei_err_set(err, HODEI_ERR_INVALID, "page_size: must be between 0 and %d, got %d",
                           AUDIT_PAGE_MAX, req->page_size);
    int64_t before = 0;
    if (st == HODEI_OK && nz(req->page_token) &&
        !hodei_parse_i64(req->page_token, 1, INT64_MAX, &before))
        st = hodei_err_set(err, HODEI_ERR_INVALID, "page_token: not a token this server returned");
    if (st != HODEI_OK)
        return st;
    size_t alen = req->action ? strlen(req->action) : 0;
    if (alen > 0 && req->action[alen - 1] == '*')
        snprintf(q->prefix, sizeof q->prefix, "%.*s", (int)(alen - 1), req->action);
    else if (alen > 0)
        hodei_strlcpy(q->action, req->action, sizeof q->action);
    if (pb_us(req->since))
        snprintf(q->since, sizeof q->since, "%" PRId64, pb_us(req->since));
    if (pb_us(req->until))
        snprintf(q->until, sizeof q->until, "%" PRId64, pb_us(req->until));
    if (before)
        snprintf(q->before, sizeof q->before, "%" PRId64, before);
    q->page = req->page_size ? req->page_size : AUDIT_PAGE_DEFAULT;
    snprintf(q->limit, sizeof q->limit, "%d", q->page + 1);
    return HODEI_OK;
}

static void audit_reply(hodei_rpc_call *call, const PGresult *res, int page)
{
    int rows = PQntuples(res), n = rows > page ? page : rows;
    hodei_arena arena;
    hodei_arena_init(&arena, 0, EDGE_REPLY_ARENA_MAX);
    Hodei__V1__AuditEntry *es = hodei_arena_calloc(&arena, (size_t)n, sizeof *es);
    Hodei__V1__AuditEntry **ptrs = hodei_arena_calloc(&arena, (size_t)n, sizeof *ptrs);
    Hodei__V1__Timestamp *ts = hodei_arena_calloc(&arena, (size_t)n, sizeof *ts);
    char token[24] = "";
    if (!es || !ptrs || !ts) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        Hodei__V1__AuditEntry *a = &es[i];
        *a = (Hodei__V1__AuditEntry)HODEI__V1__AUDIT_ENTRY__INIT;
        a->id = hodei_db_get_i64(res, i, A_ID);
        hodei_pb_time(&ts[i], hodei_db_get_i64(res, i, A_AT));
        a->at = &ts[i];
        a->actor = (char *)hodei_db_get_str(res, i, A_ACTOR);
        a->actor_key_id = (char *)hodei_db_get_str(res, i, A_ACTOR_ID);
        a->action = (char *)hodei_db_get_str(res, i, A_ACTION);
        a->object_type = (char *)hodei_db_get_str(res, i, A_TYPE);
        a->object_id = (char *)hodei_db_get_str(res, i, A_OBJECT);
        a->namespace_ = (char *)hodei_db_get_str(res, i, A_NS);
        a->detail_json = (char *)hodei_db_get_str(res, i, A_DETAIL);
        a->peer = (char *)hodei_db_get_str(res, i, A_PEER);
        ptrs[i] = a;
    }
    if (rows > page && n > 0)
        snprintf(token, sizeof token, "%" PRId64, es[n - 1].id);
    Hodei__V1__QueryAuditResponse resp = HODEI__V1__QUERY_AUDIT_RESPONSE__INIT;
    resp.n_entries = (size_t)n;
    resp.entries = ptrs;
    resp.next_page_token = token;
    hodei_rpc_call_reply(call, &resp.base);
out:
    hodei_arena_fini(&arena);
}

static void audit_query_rpc(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__QueryAuditRequest *req = (const Hodei__V1__QueryAuditRequest *)msg;
    audit_query q;
    hodei_err err;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_status st = audit_parse(req, &q, &err);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    const char *params[9] = {nz(req->actor),     nz(q.action), nz(q.prefix),
                             nz(q.since),        nz(q.until),  nz(req->namespace_),
                             nz(req->object_id), nz(q.before), q.limit};
    st = hodei_db_exec(conn, audit_sql, 9, params, &res, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    audit_reply(call, res, q.page);
    PQclear(res);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

hodei_status audit_rpc_register(edge *e, hodei_err *err)
{
    const hodei_rpc_method m = {"/hodei.v1.AuditService/QueryAudit",
                                HODEI_RPC_UNARY,
                                &hodei__v1__query_audit_request__descriptor,
                                audit_query_rpc,
                                NULL,
                                NULL,
                                e};
    return hodei_rpc_server_add(e->server, &m, err);
}
