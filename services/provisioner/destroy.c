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

#define DESTROY_JOBS_MAX 64 /* attempts ended per destroyed worker */
#define DESTROY_REASON "worker destroyed"

typedef struct {
    Hodei__V1__WorkerState state; /* UNSPECIFIED when there is no row */
    char provider[PROV_NAME_MAX];
    char ref[PROV_REF_MAX];
    char scope[PROV_SCOPE_MAX]; /* "" = none recorded */
    bool exists;
} destroy_row;

enum { LOCK_STATE, LOCK_PROVIDER, LOCK_REF, LOCK_SCOPE };

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
    row->state = HODEI__V1__WORKER_STATE__WORKER_STATE_UNSPECIFIED;
    if (row->exists) {
        hodei_worker_state_parse(hodei_db_get_str(res, 0, LOCK_STATE), &row->state);
        hodei_strlcpy(row->provider, hodei_db_get_str(res, 0, LOCK_PROVIDER), sizeof row->provider);
        hodei_strlcpy(row->ref, hodei_db_get_str(res, 0, LOCK_REF), sizeof row->ref);
        hodei_strlcpy(row->scope, hodei_db_get_str(res, 0, LOCK_SCOPE), sizeof row->scope);
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

enum { LIVE_JOB, LIVE_EPOCH };

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
        hodei_attempt end = {
            .job_id = hodei_db_get_str(res, i, LIVE_JOB),
            .worker_id = worker_id,
            .epoch = hodei_db_get_i64(res, i, LIVE_EPOCH),
            .state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED,
            .exit_code = -1,
            .error = DESTROY_REASON,
        };
        st = hodei_store_attempt_end(conn, &end, NULL, err); /* the worker is going */
        if (st == HODEI_OK)
            HLOG_WARN("job %s: attempt ended FAILED: its worker %s is destroyed", end.job_id,
                      worker_id);
    }
    PQclear(res);
    return st;
}

static hodei_status destroy_step(PGconn *conn, const char *worker_id, Hodei__V1__WorkerState from,
                                 Hodei__V1__WorkerState to, hodei_err *err)
{
    return hodei_store_worker_transition(conn, worker_id, HODEI_WSET(from), to, err);
}

hodei_status prov_worker_to_terminating(PGconn *conn, const char *worker_id, hodei_err *err)
{
    destroy_row row = {0};
    hodei_status st = destroy_lock_jobs(conn, worker_id, err);
    if (st == HODEI_OK)
        st = destroy_lock(conn, worker_id, &row, err);
    if (st != HODEI_OK)
        return st;
    Hodei__V1__WorkerState s = row.state;
    if (!row.exists ||
        hodei_worker_state_in(s, HODEI_WSET_TERMINATING | HODEI_WSET_TERMINATED | HODEI_WSET_LOST))
        return HODEI_OK;
    if (hodei_worker_state_in(s, HODEI_WSET_CREATING | HODEI_WSET_CONNECTING)) {
        st = prov_token_revoke(conn, worker_id, err);
        return st == HODEI_OK ? destroy_step(conn, worker_id, s,
                                             HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING, err)
                              : st;
    }
    st = destroy_end_attempts(conn, worker_id, err);
    if (st == HODEI_OK && s != HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING)
        st = destroy_step(conn, worker_id, s, HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING, err);
    if (st == HODEI_OK)
        st = destroy_step(conn, worker_id, HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING,
                          HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING, err);
    return st;
}

hodei_status prov_worker_to_terminated(PGconn *conn, const char *worker_id, hodei_err *err)
{
    hodei_status st =
        hodei_store_worker_transition(conn, worker_id, HODEI_WSET_TERMINATING | HODEI_WSET_LOST,
                                      HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATED, err);
    /* already TERMINATED, or no row: nothing to do */
    if (st == HODEI_ERR_NOT_FOUND)
        return HODEI_OK;
    if (st == HODEI_ERR_PRECONDITION) {
        destroy_row row = {0};
        hodei_status rst = destroy_lock(conn, worker_id, &row, err);
        if (rst != HODEI_OK)
            return rst;
        if (row.state == HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATED)
            return HODEI_OK;
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, "worker %s is %s, not TERMINATING",
                             worker_id, hodei_worker_state_name(row.state));
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
        st = prov_worker_to_terminating(conn, c->worker_id, err);
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
                  hodei_worker_state_name(c.row.state == HODEI__V1__WORKER_STATE__WORKER_STATE_LOST
                                              ? HODEI__V1__WORKER_STATE__WORKER_STATE_LOST
                                              : HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING));
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
              c.row.exists ? hodei_worker_state_name(c.row.state) : "not in the registry");
    hodei_metric_add(hodei_metric_with(p->m.destroyed, provider), 1);
    return HODEI_OK;
}
