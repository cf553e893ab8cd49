/* The rows of the provisioning saga (table sagas, type 'provision',
 * correlation_key = worker id), and small database helpers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/id.h"
#include "hodei/log.h"
#include "hodei/util.h"
#include "saga_int.h"

#define SAGA_ACTIVE "state IN ('RUNNING','COMPENSATING')"
#define SAGA_FENCE "id = $1 AND lease_owner = $2 AND " SAGA_ACTIVE

/* ---------------------------------------------------------------- helpers */

/* Both report the database for /readyz: down when no connection could be
 * had or one broke, up after a statement went through. */
hodei_status prov_conn(prov *p, PGconn **conn, hodei_err *err)
{
    hodei_status st = hodei_db_acquire(p->db, PROV_DB_WAIT_MS, conn, err);
    if (st != HODEI_OK && hodei_db_status_broken(st))
        hodei_daemon_report(p->d, "database", false, err->msg);
    return st;
}

void prov_release(prov *p, PGconn *conn, hodei_status st)
{
    if (!conn)
        return;
    if (st == HODEI_OK)
        hodei_daemon_report(p->d, "database", true, NULL);
    else if (hodei_db_status_broken(st))
        hodei_daemon_report(p->d, "database", false, PQerrorMessage(conn));
    hodei_db_release(p->db, conn, hodei_db_status_broken(st));
}

static hodei_status prov_tx_once(PGconn *conn, prov_tx_fn fn, void *ctx, hodei_err *err)
{
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    if ((st = fn(conn, ctx, err)) == HODEI_OK && (st = hodei_db_commit(conn, err)) == HODEI_OK)
        return HODEI_OK;
    hodei_db_rollback(conn);
    return st;
}

/* A transaction that lost a deadlock is run again (fn must start from
 * scratch each time), never taken for a refusal. */
hodei_status prov_tx(PGconn *conn, prov_tx_fn fn, void *ctx, hodei_err *err)
{
    hodei_status st;
    int tries = 0;
    do
        st = prov_tx_once(conn, fn, ctx, err);
    while (hodei_db_conflict_retry(st, &tries));
    return st;
}

static void saga_ms_text(int64_t ms, char out[PROV_INT_TEXT_MAX])
{
    snprintf(out, PROV_INT_TEXT_MAX, "%" PRId64, ms);
}

/* An UPDATE that must hit exactly the saga row we lease. */
static hodei_status saga_db_fenced(PGconn *conn, const char *sql, int n, const char *const *params,
                                   const prov_saga *s, hodei_err *err)
{
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(conn, sql, n, params, &res, err);
    if (st == HODEI_OK && strcmp(PQcmdTuples(res), "1") != 0)
        st = hodei_err_set(err, HODEI_ERR_PRECONDITION, "saga %s (worker %s): lease lost", s->id,
                           s->worker_id);
    PQclear(res);
    return st;
}

/* ---------------------------------------------------------------- insert */

hodei_status prov_saga_insert(prov *p, PGconn *conn, const char *worker_id, bool *created_out,
                              hodei_err *err)
{
    char id[HODEI_ID_BUF], lease[PROV_INT_TEXT_MAX], ttl[PROV_INT_TEXT_MAX];
    hodei_id_new(id);
    saga_ms_text(p->cfg->saga_lease_ms, lease);
    saga_ms_text(p->cfg->token_ttl_ms, ttl);
    const char *params[5] = {id, worker_id, p->instance, lease, ttl};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(
        conn,
        "INSERT INTO sagas (id, type, state, step, data, correlation_key, lease_owner,"
        " lease_expires_at, deadline_at)"
        " SELECT $1::uuid, 'provision', 'RUNNING', '" SAGA_STEP_TOKEN "',"
        " jsonb_build_object('worker_id', w.id::text, 'provider', w.provider), w.id::text, $3,"
        " now() + $4::bigint * interval '1 millisecond',"
        " now() + $5::bigint * interval '1 millisecond'"
        " FROM workers w WHERE w.id = $2::uuid AND w.state = 'CREATING'"
        " AND NOT EXISTS (SELECT 1 FROM sagas s WHERE s.type = 'provision'"
        " AND s.correlation_key = $2::text)"
        " ON CONFLICT DO NOTHING",
        5, params, &res, err);
    if (st == HODEI_OK)
        *created_out = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return st;
}

/* ---------------------------------------------------------------- claim */

#define SAGA_CLAIM_SQL                                                                             \
    "WITH c AS (SELECT id, coalesce(lease_owner, '') AS prev FROM sagas"                           \
    " WHERE type = 'provision' AND " SAGA_ACTIVE                                                   \
    " AND (lease_owner = $1 OR lease_expires_at IS NULL OR lease_expires_at < now())"              \
    " ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED)"                                        \
    " UPDATE sagas s SET lease_owner = $1,"                                                        \
    " lease_expires_at = now() + $2::bigint * interval '1 millisecond'"                            \
    " FROM c WHERE s.id = c.id"                                                                    \
    " RETURNING s.id::text, s.state, s.step, coalesce(s.data->>'worker_id', ''),"                  \
    " coalesce(s.data->>'provider', ''), coalesce(s.data->>'provider_ref', ''),"                   \
    " coalesce(s.deadline_at <= now(), false), c.prev, coalesce(s.error, '')"

enum {
    CLAIM_ID,
    CLAIM_STATE,
    CLAIM_STEP,
    CLAIM_WORKER,
    CLAIM_PROVIDER,
    CLAIM_REF,
    CLAIM_PAST_DEADLINE,
    CLAIM_PREV_OWNER,
    CLAIM_ERROR
};

static void saga_fill(prov_saga *s, const PGresult *res, int row)
{
    memset(s, 0, sizeof *s);
    hodei_strlcpy(s->id, hodei_db_get_str(res, row, CLAIM_ID), sizeof s->id);
    s->compensating = strcmp(hodei_db_get_str(res, row, CLAIM_STATE), "COMPENSATING") == 0;
    hodei_strlcpy(s->step, hodei_db_get_str(res, row, CLAIM_STEP), sizeof s->step);
    hodei_strlcpy(s->worker_id, hodei_db_get_str(res, row, CLAIM_WORKER), sizeof s->worker_id);
    hodei_strlcpy(s->provider, hodei_db_get_str(res, row, CLAIM_PROVIDER), sizeof s->provider);
    hodei_strlcpy(s->ref, hodei_db_get_str(res, row, CLAIM_REF), sizeof s->ref);
    s->past_deadline = hodei_db_get_str(res, row, CLAIM_PAST_DEADLINE)[0] == 't';
    hodei_strlcpy(s->prev_owner, hodei_db_get_str(res, row, CLAIM_PREV_OWNER),
                  sizeof s->prev_owner);
    hodei_strlcpy(s->error, hodei_db_get_str(res, row, CLAIM_ERROR), sizeof s->error);
}

hodei_status saga_db_claim(prov *p, PGconn *conn, prov_saga *out, int cap, int *n_out,
                           hodei_err *err)
{
    char lease[PROV_INT_TEXT_MAX], limit[PROV_INT_TEXT_MAX];
    saga_ms_text(p->cfg->saga_lease_ms, lease);
    saga_ms_text(cap, limit);
    const char *params[3] = {p->instance, lease, limit};
    PGresult *res = NULL;
    *n_out = 0;
    hodei_status st = hodei_db_exec(conn, SAGA_CLAIM_SQL, 3, params, &res, err);
    if (st != HODEI_OK)
        return st;
    int n = PQntuples(res);
    for (int i = 0; i < n && i < cap; i++) {
        saga_fill(&out[i], res, i);
        if (strcmp(out[i].prev_owner, p->instance) != 0)
            HLOG_INFO("saga %s (worker %s): taken over at step %s from %s", out[i].id,
                      out[i].worker_id, out[i].step,
                      out[i].prev_owner[0] ? out[i].prev_owner : "(none)");
        (*n_out)++;
    }
    PQclear(res);
    return HODEI_OK;
}

/* ---------------------------------------------------------------- updates */

hodei_status saga_db_step(prov *p, PGconn *conn, const prov_saga *s, const char *step,
                          int64_t deadline_ms, const char *ref, hodei_err *err)
{
    char deadline[PROV_INT_TEXT_MAX];
    saga_ms_text(deadline_ms, deadline);
    const char *params[5] = {s->id, p->instance, step, deadline, ref};
    return saga_db_fenced(
        conn,
        "UPDATE sagas SET step = $3, updated_at = now(),"
        " deadline_at = CASE WHEN $4::bigint > 0"
        " THEN now() + $4::bigint * interval '1 millisecond' ELSE deadline_at END,"
        " data = CASE WHEN $5::text IS NULL THEN data"
        " ELSE data || jsonb_build_object('provider_ref', $5::text) END"
        " WHERE " SAGA_FENCE,
        5, params, s, err);
}

hodei_status saga_db_compensating(prov *p, PGconn *conn, const prov_saga *s, const char *error,
                                  hodei_err *err)
{
    const char *params[3] = {s->id, p->instance, error};
    return saga_db_fenced(conn,
                          "UPDATE sagas SET state = 'COMPENSATING', step = '" SAGA_STEP_DESTROY
                          "', error = $3, attempt = attempt + 1, updated_at = now()"
                          " WHERE " SAGA_FENCE,
                          3, params, s, err);
}

hodei_status saga_db_finish(prov *p, PGconn *conn, const prov_saga *s, const char *state,
                            hodei_err *err)
{
    const char *params[3] = {s->id, p->instance, state};
    return saga_db_fenced(conn,
                          "UPDATE sagas SET state = $3, step = '" SAGA_STEP_DONE "',"
                          " finished_at = now(), updated_at = now(), lease_owner = NULL,"
                          " lease_expires_at = NULL WHERE " SAGA_FENCE,
                          3, params, s, err);
}

void saga_db_release_leases(prov *p)
{
    PGconn *conn = NULL;
    hodei_err err = {0};
    hodei_status st = prov_conn(p, &conn, &err);
    const char *params[1] = {p->instance};
    if (st == HODEI_OK)
        st = hodei_db_exec(conn,
                           "UPDATE sagas SET lease_expires_at = now() WHERE lease_owner = $1"
                           " AND type = 'provision' AND " SAGA_ACTIVE,
                           1, params, NULL, &err);
    if (st != HODEI_OK)
        HLOG_WARN("handing saga leases back: %s (they expire by themselves)", err.msg);
    prov_release(p, conn, st);
}
