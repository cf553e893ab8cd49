/* WorkerAgentService.Register and UnregisterWorker, and the session token
 * check WorkerStream uses. Tokens are stored only as SHA-256 hashes; every
 * authentication failure answers UNAUTHENTICATED with one message that does
 * not say which check failed, and changes nothing. */
#include "worker_register.h"

#include <math.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "edge_auth.h"
#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/log.h"
#include "hodei/sqlarr.h"
#include "hodei/store.h"
#include "hodei/util.h"
#include "hodei/worker_msg.h"
#include "hodei/worker_state.h"
#include "worker_attempts.h"

#define REG_LABELS_SQL_MAX (64 * 1024) /* one labels array literal */
#define REG_NUM_MAX 32
#define REG_REFUSED "registration refused: invalid or unusable token"
#define SESSION_REFUSED "invalid worker session"
#define UNREGISTER_WHY "worker unregistered"

void worker_token_hash_hex(const char *token, char out[WORKER_HASH_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    static const char hex[] = "0123456789abcdef";
    if (EVP_Digest(token, strlen(token), md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
        md_len = 0; /* cannot happen with a working libcrypto; hashes nothing real */
    memset(out, '0', WORKER_HASH_HEX_LEN);
    for (unsigned int i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[WORKER_HASH_HEX_LEN] = '\0';
}

static hodei_status reg_new_session_token(char out[2 * WORKER_SESSION_TOKEN_BYTES + 1],
                                          hodei_err *err)
{
    unsigned char raw[WORKER_SESSION_TOKEN_BYTES];
    static const char hex[] = "0123456789abcdef";
    if (RAND_bytes(raw, sizeof raw) != 1)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "cannot make a session token (RAND_bytes)");
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * WORKER_SESSION_TOKEN_BYTES] = '\0';
    return HODEI_OK;
}

hodei_status worker_session_auth(edge *e, const char *worker_id, const char *token, hodei_err *err)
{
    char hash[WORKER_HASH_HEX_LEN + 1];
    worker_token_hash_hex(token, hash);
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_status st = edge_db_acquire(e, &conn, err);
    if (st != HODEI_OK)
        return st;
    const char *params[2] = {worker_id, hash};
    st = hodei_db_exec(conn,
                       "SELECT 1 FROM workers WHERE id = $1::uuid"
                       " AND session_token_hash = decode($2, 'hex')"
                       " AND state NOT IN ('TERMINATING', 'TERMINATED')",
                       2, params, &res, err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        return st;
    int rows = PQntuples(res);
    PQclear(res);
    return rows == 1 ? HODEI_OK : hodei_err_set(err, HODEI_ERR_UNAUTHENTICATED, SESSION_REFUSED);
}

/* ------------------------------------------------------------------ Register */

static hodei_status reg_consume_token(PGconn *conn, const Hodei__V1__RegisterRequest *r,
                                      hodei_err *err)
{
    char hash[WORKER_HASH_HEX_LEN + 1];
    worker_token_hash_hex(r->token, hash);
    const char *params[2] = {hash, r->worker_id};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(conn,
                                    "UPDATE bootstrap_tokens SET used_at = now()"
                                    " WHERE token_hash = decode($1, 'hex') AND worker_id = $2::uuid"
                                    "   AND used_at IS NULL AND revoked_at IS NULL"
                                    "   AND expires_at > now()",
                                    2, params, &res, err);
    if (st != HODEI_OK)
        return st;
    bool used = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return used ? HODEI_OK : hodei_err_set(err, HODEI_ERR_UNAUTHENTICATED, REG_REFUSED);
}

/* CREATING -> CONNECTING -> READY (the state machine has no shortcut). */
static hodei_status reg_worker_ready(PGconn *conn, const char *worker_id, hodei_err *err)
{
    hodei_status st =
        hodei_store_worker_transition(conn, worker_id, HODEI_WSET_CREATING,
                                      HODEI__V1__WORKER_STATE__WORKER_STATE_CONNECTING, err);
    if (st != HODEI_OK && st != HODEI_ERR_PRECONDITION)
        return st;
    st = hodei_store_worker_transition(conn, worker_id, HODEI_WSET_CONNECTING,
                                       HODEI__V1__WORKER_STATE__WORKER_STATE_READY, err);
    if (st == HODEI_ERR_PRECONDITION) {
        char why[HODEI_ERR_MSG_MAX];
        hodei_strlcpy(why, err->msg, sizeof why);
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, "%s; it cannot register", why);
    }
    return st;
}

static bool reg_labels(const Hodei__V1__RegisterRequest *r, hodei_buf *keys, hodei_buf *vals)
{
    hodei_sqlarr_begin(keys);
    hodei_sqlarr_begin(vals);
    for (size_t i = 0; i < r->n_labels; i++) {
        hodei_sqlarr_str(keys, r->labels[i]->key ? r->labels[i]->key : "");
        hodei_sqlarr_str(vals, r->labels[i]->value ? r->labels[i]->value : "");
    }
    bool ok = hodei_sqlarr_end(keys);
    return hodei_sqlarr_end(vals) && ok;
}

static hodei_status reg_update_worker(PGconn *conn, const Hodei__V1__RegisterRequest *r,
                                      const char *session_hash, hodei_err *err)
{
    const Hodei__V1__ResourceRequirements none = HODEI__V1__RESOURCE_REQUIREMENTS__INIT;
    const Hodei__V1__ResourceRequirements *c = r->capacity ? r->capacity : &none;
    char cpu[REG_NUM_MAX], mem[REG_NUM_MAX], disk[REG_NUM_MAX], gpu[REG_NUM_MAX];
    snprintf(cpu, sizeof cpu, "%lld", (long long)llround(c->cpu_cores * 1000.0));
    snprintf(mem, sizeof mem, "%lld", (long long)c->memory_bytes);
    snprintf(disk, sizeof disk, "%lld", (long long)c->storage_bytes);
    snprintf(gpu, sizeof gpu, "%d", (int)c->gpu_count);
    hodei_buf keys, vals;
    hodei_buf_init(&keys, REG_LABELS_SQL_MAX);
    hodei_buf_init(&vals, REG_LABELS_SQL_MAX);
    hodei_status st = HODEI_OK;
    if (!reg_labels(r, &keys, &vals)) {
        st = hodei_err_set(err, HODEI_ERR_INVALID, "labels: too large");
        goto out;
    }
    const char *params[11] = {r->worker_id,
                              r->hostname,
                              r->agent_version ? r->agent_version : "",
                              keys.data,
                              vals.data,
                              cpu,
                              mem,
                              disk,
                              gpu,
                              c->architecture ? c->architecture : "",
                              session_hash};
    st = hodei_db_exec(
        conn,
        "UPDATE workers SET hostname = $2, agent_version = $3,"
        " labels = jsonb_object($4::text[], $5::text[]),"
        " cpu_millis = CASE WHEN $6::int > 0 THEN $6::int ELSE cpu_millis END,"
        " memory_bytes = CASE WHEN $7::bigint > 0 THEN $7::bigint ELSE memory_bytes END,"
        " storage_bytes = CASE WHEN $8::bigint > 0 THEN $8::bigint ELSE storage_bytes END,"
        " gpu_count = CASE WHEN $9::int > 0 THEN $9::int ELSE gpu_count END,"
        " architecture = CASE WHEN $10 <> '' THEN $10 ELSE architecture END,"
        " session_token_hash = decode($11, 'hex'), last_heartbeat_at = now(), updated_at = now()"
        " WHERE id = $1::uuid",
        11, params, NULL, err);
out:
    hodei_buf_fini(&keys);
    hodei_buf_fini(&vals);
    return st;
}

static hodei_status reg_tx(PGconn *conn, const Hodei__V1__RegisterRequest *r,
                           const char *session_hash, hodei_err *err)
{
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    if ((st = reg_consume_token(conn, r, err)) != HODEI_OK)
        goto rollback;
    if ((st = reg_worker_ready(conn, r->worker_id, err)) != HODEI_OK)
        goto rollback;
    if ((st = reg_update_worker(conn, r, session_hash, err)) != HODEI_OK)
        goto rollback;
    return hodei_db_commit(conn, err);
rollback:
    hodei_db_rollback(conn);
    return st;
}

hodei_status worker_cert_check(edge *e, hodei_rpc_call *call, const char *worker_id, hodei_err *err)
{
    if (edge_auth_worker_cert_ok(e->auth, call, worker_id))
        return HODEI_OK;
    return hodei_err_set(err, HODEI_ERR_UNAUTHENTICATED,
                         "the client certificate does not name worker %s", worker_id);
}

static void worker_register(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__RegisterRequest *r = (const Hodei__V1__RegisterRequest *)msg;
    hodei_err err;
    char session[2 * WORKER_SESSION_TOKEN_BYTES + 1];
    char hash[WORKER_HASH_HEX_LEN + 1];
    PGconn *conn = NULL;
    hodei_status st = hodei_worker_check_register(r, &err);
    if (st == HODEI_OK)
        st = worker_cert_check(e, call, r->worker_id, &err);
    if (st == HODEI_OK)
        st = reg_new_session_token(session, &err);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    worker_token_hash_hex(session, hash);
    int tries = 0;
    do
        st = reg_tx(conn, r, hash, &err);
    while (hodei_db_conflict_retry(st, &tries));
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    HLOG_INFO("worker %s registered (host=%s agent=%s)", r->worker_id, r->hostname,
              r->agent_version ? r->agent_version : "");
    Hodei__V1__RegisterResponse resp = HODEI__V1__REGISTER_RESPONSE__INIT;
    resp.worker_id = r->worker_id;
    resp.session_token = session;
    resp.heartbeat_interval_ms = e->cfg->worker_heartbeat_ms;
    hodei_rpc_call_reply(call, &resp.base);
    return;
fail:
    if (st == HODEI_ERR_UNAUTHENTICATED)
        HLOG_WARN("worker registration refused (worker_id=%s)",
                  hodei_id_valid(r->worker_id ? r->worker_id : "") ? r->worker_id : "?");
    hodei_rpc_call_fail_err(call, &err);
}

/* ---------------------------------------------------------- UnregisterWorker */

static hodei_status unreg_lock(PGconn *conn, const Hodei__V1__UnregisterWorkerRequest *r,
                               hodei_err *err)
{
    char hash[WORKER_HASH_HEX_LEN + 1];
    worker_token_hash_hex(r->session_token, hash);
    const char *params[2] = {r->worker_id, hash};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(conn,
                                    "SELECT 1 FROM workers WHERE id = $1::uuid"
                                    " AND session_token_hash = decode($2, 'hex') FOR UPDATE",
                                    2, params, &res, err);
    if (st != HODEI_OK)
        return st;
    if (PQntuples(res) != 1)
        st = hodei_err_set(err, HODEI_ERR_UNAUTHENTICATED, SESSION_REFUSED);
    PQclear(res);
    return st;
}

/* READY/BUSY -> DRAINING -> TERMINATING (+ destroy request); LOST ->
 * TERMINATING. A worker already going away keeps its state. */
static hodei_status unreg_worker(PGconn *conn, const char *worker_id, hodei_err *err)
{
    hodei_status st =
        hodei_store_worker_transition(conn, worker_id, HODEI_WSET_READY | HODEI_WSET_BUSY,
                                      HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING, err);
    if (st != HODEI_OK && st != HODEI_ERR_PRECONDITION)
        return st;
    st = hodei_store_worker_retire(conn, worker_id, HODEI_WSET_DRAINING | HODEI_WSET_LOST,
                                   HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING,
                                   UNREGISTER_WHY, err);
    return st == HODEI_ERR_PRECONDITION ? HODEI_OK : st;
}

static hodei_status unreg_tx(PGconn *conn, const Hodei__V1__UnregisterWorkerRequest *r,
                             worker_job_end *ends, size_t *n_ends, hodei_err *err)
{
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    if ((st = unreg_lock(conn, r, err)) != HODEI_OK)
        goto rollback;
    if ((st = worker_attempts_end_all(conn, r->worker_id, UNREGISTER_WHY, ends, n_ends, err)) !=
        HODEI_OK)
        goto rollback;
    if ((st = unreg_worker(conn, r->worker_id, err)) != HODEI_OK)
        goto rollback;
    return hodei_db_commit(conn, err);
rollback:
    hodei_db_rollback(conn);
    return st;
}

static void worker_unregister(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__UnregisterWorkerRequest *r = (const Hodei__V1__UnregisterWorkerRequest *)msg;
    hodei_err err;
    worker_job_end ends[WORKER_SESSION_JOBS_MAX];
    size_t n_ends = 0;
    PGconn *conn = NULL;
    hodei_status st = hodei_worker_check_id("worker_id", r->worker_id, &err);
    if (st == HODEI_OK)
        st = hodei_worker_check_token("session_token", r->session_token, &err);
    if (st == HODEI_OK)
        st = worker_cert_check(e, call, r->worker_id, &err);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    int tries = 0;
    do
        st = unreg_tx(conn, r, ends, &n_ends, &err);
    while (hodei_db_conflict_retry(st, &tries));
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    worker_attempts_publish_ends(worker_hub_pub(e->workers), ends, n_ends);
    worker_hub_close_worker(e->workers, r->worker_id, HODEI_GRPC_OK, UNREGISTER_WHY);
    HLOG_INFO("worker %s unregistered", r->worker_id);
    Hodei__V1__UnregisterWorkerResponse resp = HODEI__V1__UNREGISTER_WORKER_RESPONSE__INIT;
    hodei_rpc_call_reply(call, &resp.base);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

/* ------------------------------------------------------------- method table */

#define SVC "/hodei.v1.WorkerAgentService/"

void worker_register_method(edge *e, hodei_rpc_method *out)
{
    *out = (hodei_rpc_method){SVC "Register",
                              HODEI_RPC_UNARY,
                              &hodei__v1__register_request__descriptor,
                              worker_register,
                              NULL,
                              NULL,
                              e};
}

void worker_unregister_method(edge *e, hodei_rpc_method *out)
{
    *out = (hodei_rpc_method){SVC "UnregisterWorker",
                              HODEI_RPC_UNARY,
                              &hodei__v1__unregister_worker_request__descriptor,
                              worker_unregister,
                              NULL,
                              NULL,
                              e};
}
