/* Destroying workers: WorkerDestroyRequested, and the walk of a worker row
 * to TERMINATED through the state machine (libs/domain), whatever state it
 * is found in:
 *   READY, BUSY  -> DRAINING -> TERMINATING   (an attempt still on it ends
 *   DRAINING     -> TERMINATING                FAILED "worker destroyed":
 *                                              re-queued if attempts remain)
 *   CREATING, CONNECTING -> TERMINATING       (unused tokens revoked)
 *   LOST, TERMINATING stay; then, once the provider destroyed it,
 *   TERMINATING, LOST -> TERMINATED.
 * A worker made on another host (provider.h, "Scope") goes as far as
 * TERMINATING here; its own host's provisioner destroys it and records
 * TERMINATED (reconcile.c). */
#include <string.h>

#include "hodei/log.h"
#include "hodei/store.h"
#include "hodei/util.h"
#include "hodei/worker_state.h"
#include "prov.h"

#define DESTROY_STATE_MAX 16
#define DESTROY_JOBS_MAX 64 /* attempts ended per destroyed worker */
#define DESTROY_REASON "worker destroyed"

typedef struct {
    char state[DESTROY_STATE_MAX];
    char provider[PROV_NAME_MAX];
    char ref[PROV_REF_MAX];
    char scope[PROV_SCOPE_MAX]; /* "" = none recorded */
    bool exists;
} destroy_row;

static hodei_status destroy_lock(PGconn *conn, const char *worker_id, destroy_row *row,
                                 hodei_err *err)
{
    const char *params[1] = {worker_id};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(conn,
                                    "SELECT state, provider, coalesce(provider_ref, ''),"
                                    " coalesce(provider_scope, '') FROM workers WHERE id = $1"
                                    " FOR UPDATE",
                                    1, params, &res, err);
    if (st != HODEI_OK)
        return st;
    row->exists = PQntuples(res) > 0;
    if (row->exists) {
        hodei_strlcpy(row->state, hodei_db_get_str(res, 0, 0), sizeof row->state);
        hodei_strlcpy(row->provider, hodei_db_get_str(res, 0, 1), sizeof row->provider);
        hodei_strlcpy(row->ref, hodei_db_get_str(res, 0, 2), sizeof row->ref);
        hodei_strlcpy(row->scope, hodei_db_get_str(res, 0, 3), sizeof row->scope);
    }
    PQclear(res);
    return HODEI_OK;
}

/* Locks the worker's live attempts before the worker itself: the order every
 * attempt end takes (a result on the edge locks its job, then its worker),
 * so a destroy and a result never wait for each other in a cycle. */
static hodei_status destroy_lock_jobs(PGconn *conn, const char *worker_id, hodei_err *err)
{
    const char *params[1] = {worker_id};
    return hodei_db_exec(conn,
                         "SELECT 1 FROM jobs WHERE worker_id = $1::uuid"
                         " AND state IN ('ASSIGNED','RUNNING') FOR UPDATE",
                         1, params, NULL, err);
}

/* Ends the attempts still running on the worker (its process is going). */
static hodei_status destroy_end_attempts(PGconn *conn, const char *worker_id, hodei_err *err)
{
    const char *params[1] = {worker_id};
    PGresult *res = NULL;
    hodei_status st =
        hodei_db_exec(conn,
                      "SELECT id::text, epoch FROM jobs WHERE worker_id = $1"
                      " AND state IN ('ASSIGNED','RUNNING') LIMIT " HODEI_STR(DESTROY_JOBS_MAX),
                      1, params, &res, err);
    for (int i = 0; st == HODEI_OK && i < PQntuples(res) && i < DESTROY_JOBS_MAX; i++) {
        hodei_attempt_end end = {
            .job_id = hodei_db_get_str(res, i, 0),
            .worker_id = worker_id,
            .epoch = hodei_db_get_i64(res, i, 1),
            .state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED,
            .exit_code = -1,
            .error = DESTROY_REASON,
            .free_worker = false,
        };
        st = hodei_store_attempt_end(conn, &end, NULL, err);
        if (st == HODEI_OK)
            HLOG_WARN("job %s: attempt ended FAILED: its worker %s is destroyed", end.job_id,
                      worker_id);
    }
    PQclear(res);
    return st;
}

static hodei_status destroy_step(PGconn *conn, const char *worker_id, const char *from,
                                 Hodei__V1__WorkerState to, hodei_err *err)
{
    const char *const states[] = {from, NULL};
    return hodei_store_worker_transition(conn, worker_id, states, to, err);
}

hodei_status prov_worker_to_terminating(PGconn *conn, const char *worker_id, char *was_out,
                                        size_t was_len, hodei_err *err)
{
    destroy_row row = {0};
    hodei_status st = destroy_lock_jobs(conn, worker_id, err);
    if (st == HODEI_OK)
        st = destroy_lock(conn, worker_id, &row, err);
    if (st != HODEI_OK)
        return st;
    if (was_out)
        hodei_strlcpy(was_out, row.exists ? row.state : "", was_len);
    const char *s = row.state;
    if (!row.exists || strcmp(s, "TERMINATING") == 0 || strcmp(s, "TERMINATED") == 0 ||
        strcmp(s, "LOST") == 0)
        return HODEI_OK;
    if (strcmp(s, "CREATING") == 0 || strcmp(s, "CONNECTING") == 0) {
        st = prov_token_revoke(conn, worker_id, err);
        return st == HODEI_OK ? destroy_step(conn, worker_id, s,
                                             HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING, err)
                              : st;
    }
    st = destroy_end_attempts(conn, worker_id, err);
    if (st == HODEI_OK && strcmp(s, "DRAINING") != 0)
        st = destroy_step(conn, worker_id, s, HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING, err);
    if (st == HODEI_OK)
        st = destroy_step(conn, worker_id, "DRAINING",
                          HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING, err);
    return st;
}

hodei_status prov_worker_to_terminated(PGconn *conn, const char *worker_id, hodei_err *err)
{
    static const char *const from[] = {"TERMINATING", "LOST", NULL};
    hodei_status st = hodei_store_worker_transition(
        conn, worker_id, from, HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATED, err);
    /* already TERMINATED, or no row: nothing to do */
    if (st == HODEI_ERR_NOT_FOUND)
        return HODEI_OK;
    if (st == HODEI_ERR_PRECONDITION) {
        destroy_row row = {0};
        hodei_status rst = destroy_lock(conn, worker_id, &row, err);
        if (rst != HODEI_OK)
            return rst;
        if (strcmp(row.state, "TERMINATED") == 0)
            return HODEI_OK;
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, "worker %s is %s, not TERMINATING",
                             worker_id, row.state);
    }
    return st;
}

/* ---------------------------------------------------------------- the event */

typedef struct {
    const char *worker_id;
    destroy_row row;
} destroy_ctx;

static hodei_status destroy_begin_tx(PGconn *conn, void *ctx, hodei_err *err)
{
    destroy_ctx *c = ctx;
    hodei_status st = destroy_lock(conn, c->worker_id, &c->row, err);
    if (st == HODEI_OK && c->row.exists)
        st = prov_worker_to_terminating(conn, c->worker_id, NULL, 0, err);
    return st;
}

static hodei_status destroy_end_tx(PGconn *conn, void *ctx, hodei_err *err)
{
    destroy_ctx *c = ctx;
    return prov_worker_to_terminated(conn, c->worker_id, err);
}

hodei_status prov_destroy_requested(prov *p, PGconn *conn, const char *worker_id,
                                    const char *provider_hint, hodei_err *err)
{
    destroy_ctx c = {.worker_id = worker_id};
    prov_driver *drv = NULL;
    hodei_status st = prov_tx(conn, destroy_begin_tx, &c, err);
    if (st != HODEI_OK)
        return st;
    const char *provider = c.row.exists ? c.row.provider : provider_hint;
    st = prov_registry_get(p->reg, conn, provider, &drv, err);
    if (st == HODEI_OK && prov_scope_elsewhere(drv, c.row.scope)) {
        /* Another host's worker: its own provisioner's reconcile destroys it
         * and records TERMINATED (reconcile.c, "leftovers"). */
        HLOG_INFO("worker %s (provider %s) runs where a provisioner of scope %s sees it: left"
                  " %s for that one to destroy",
                  worker_id, provider, c.row.scope,
                  strcmp(c.row.state, "LOST") == 0 ? "LOST" : "TERMINATING");
        return HODEI_OK;
    }
    if (st == HODEI_OK) {
        if ((st = drv->ops->destroy_worker(drv, worker_id, c.row.ref, err)) != HODEI_OK)
            return st;
    } else if (st == HODEI_ERR_NOT_FOUND || st == HODEI_ERR_UNAVAILABLE) {
        HLOG_WARN("worker %s: %s; marking it TERMINATED", worker_id, err->msg);
    } else {
        return st;
    }
    if ((st = prov_tx(conn, destroy_end_tx, &c, err)) != HODEI_OK)
        return st;
    HLOG_INFO("worker %s destroyed (provider %s, was %s): TERMINATED", worker_id, provider,
              c.row.exists ? c.row.state : "not in the registry");
    hodei_metric_add(hodei_metric_with(p->m.destroyed, provider), 1);
    return HODEI_OK;
}
