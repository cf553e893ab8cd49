/* Worker transitions shared by the services. */
#include <string.h>

#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/store.h"
#include "hodei/util.h"

enum { LOCK_STATE, LOCK_PROVIDER };

static hodei_status worker_lock(PGconn *conn, const char *worker_id, Hodei__V1__WorkerState *state,
                                char *provider, size_t provider_len, hodei_err *err)
{
    const char *params[1] = {worker_id};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(
        conn, "SELECT state, provider FROM workers WHERE id = $1 FOR UPDATE", 1, params, &res, err);
    if (st != HODEI_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "worker %s not found", worker_id);
    }
    if (!hodei_worker_state_parse(hodei_db_get_str(res, 0, LOCK_STATE), state))
        *state = HODEI__V1__WORKER_STATE__WORKER_STATE_UNSPECIFIED;
    hodei_strlcpy(provider, hodei_db_get_str(res, 0, LOCK_PROVIDER), provider_len);
    PQclear(res);
    return HODEI_OK;
}

/* The transition; *provider gets the worker's (HODEI_STORE_PROVIDER_MAX + 1
 * bytes). */
static hodei_status worker_move(PGconn *conn, const char *worker_id, hodei_worker_state_set from,
                                Hodei__V1__WorkerState to, char *provider, hodei_err *err)
{
    Hodei__V1__WorkerState cur;
    hodei_status st =
        worker_lock(conn, worker_id, &cur, provider, HODEI_STORE_PROVIDER_MAX + 1, err);
    if (st != HODEI_OK)
        return st;
    if (!hodei_worker_state_in(cur, from))
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, "worker %s is %s", worker_id,
                             hodei_worker_state_name(cur));
    if ((st = hodei_worker_transition_check(cur, to, err)) != HODEI_OK)
        return st;
    bool ready = to == HODEI__V1__WORKER_STATE__WORKER_STATE_READY;
    const char *params[3] = {worker_id, hodei_worker_state_name(to), ready ? "t" : "f"};
    st = hodei_db_exec(conn,
                       "UPDATE workers SET state = $2, updated_at = now(),"
                       " current_job_id = CASE WHEN $3::bool THEN NULL ELSE current_job_id END,"
                       " idle_since = CASE WHEN $3::bool THEN now() ELSE NULL END"
                       " WHERE id = $1",
                       3, params, NULL, err);
    if (st == HODEI_OK && ready)
        st = hodei_event_worker_ready(HODEI_OUTBOX_WRITE(conn), worker_id, provider, err);
    return st;
}

hodei_status hodei_store_worker_transition(PGconn *conn, const char *worker_id,
                                           hodei_worker_state_set from, Hodei__V1__WorkerState to,
                                           hodei_err *err)
{
    char provider[HODEI_STORE_PROVIDER_MAX + 1];
    return worker_move(conn, worker_id, from, to, provider, err);
}

hodei_status hodei_store_worker_retire(PGconn *conn, const char *worker_id,
                                       hodei_worker_state_set from, Hodei__V1__WorkerState to,
                                       const char *reason, hodei_err *err)
{
    char provider[HODEI_STORE_PROVIDER_MAX + 1];
    hodei_status st = worker_move(conn, worker_id, from, to, provider, err);
    if (st == HODEI_OK)
        st = hodei_event_worker_destroy_requested(HODEI_OUTBOX_WRITE(conn), worker_id, provider,
                                                  reason, err);
    return st;
}

hodei_status hodei_store_worker_release(PGconn *conn, const char *worker_id, const char *job_id,
                                        bool *released, hodei_err *err)
{
    const char *params[2] = {worker_id, job_id};
    PGresult *res = NULL;
    if (released)
        *released = false;
    hodei_status st = hodei_db_exec(conn,
                                    "SELECT 1 FROM workers WHERE id = $1::uuid AND state = 'BUSY'"
                                    " AND (current_job_id IS NULL OR current_job_id = $2::uuid)"
                                    " FOR UPDATE",
                                    2, params, &res, err);
    if (st != HODEI_OK)
        return st;
    bool busy_with_it = PQntuples(res) == 1;
    PQclear(res);
    if (!busy_with_it)
        return HODEI_OK;
    st = hodei_store_worker_transition(conn, worker_id, HODEI_WSET_BUSY,
                                       HODEI__V1__WORKER_STATE__WORKER_STATE_READY, err);
    if (st == HODEI_OK && released)
        *released = true;
    return st;
}
