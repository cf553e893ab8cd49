/* Ending attempts for the edge's own reasons (worker_attempts.h). */
#include "worker_attempts.h"

#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/store.h"
#include "hodei/util.h"

#define ATTEMPTS_EXIT_NONE (-1) /* exit code of an attempt that never exited */

/* A worker's live attempts, as read here: SELECT id::text, epoch. */
enum { ATTEMPTS_LIVE_ID, ATTEMPTS_LIVE_EPOCH };

/* --------------------------------------------------------- ending attempts */

hodei_status worker_attempts_fail(edge *e, log_pub *pub, const char *job_id, const char *worker_id,
                                  int64_t epoch, const char *why, hodei_err *err)
{
    const hodei_attempt a = {.job_id = job_id,
                             .worker_id = worker_id,
                             .epoch = epoch,
                             .state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED,
                             .exit_code = ATTEMPTS_EXIT_NONE,
                             .error = why};
    Hodei__V1__JobState final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    PGconn *conn = NULL;
    hodei_status st = edge_db_acquire(e, &conn, err);
    if (st != HODEI_OK)
        return st;
    int tries = 0;
    do {
        if ((st = hodei_db_begin(conn, err)) == HODEI_OK &&
            (st = hodei_store_attempt_end_free(conn, &a, &final, err)) == HODEI_OK)
            st = hodei_db_commit(conn, err);
        else
            hodei_db_rollback(conn);
    } while (hodei_db_conflict_retry(st, &tries));
    edge_db_release(e, conn, st);
    if (st == HODEI_ERR_PRECONDITION || st == HODEI_ERR_NOT_FOUND)
        return HODEI_OK; /* moved on meanwhile (its result came, or it was re-assigned) */
    if (st == HODEI_OK && hodei_job_state_terminal(final))
        st = log_pub_end(pub, job_id, epoch, final, false, err);
    return st;
}

hodei_status worker_attempts_end_all(PGconn *conn, const char *worker_id, const char *why,
                                     worker_job_end *ends, size_t *n_ends, hodei_err *err)
{
    const char *params[1] = {worker_id};
    PGresult *res = NULL;
    *n_ends = 0;
    hodei_status st = hodei_db_exec(conn,
                                    "SELECT id::text, epoch FROM jobs WHERE worker_id = $1::uuid"
                                    " AND state IN ('ASSIGNED', 'RUNNING')",
                                    1, params, &res, err);
    if (st != HODEI_OK)
        return st;
    for (int i = 0; i < PQntuples(res) && st == HODEI_OK; i++) {
        const hodei_attempt end = {.job_id = hodei_db_get_str(res, i, ATTEMPTS_LIVE_ID),
                                   .worker_id = worker_id,
                                   .epoch = hodei_db_get_i64(res, i, ATTEMPTS_LIVE_EPOCH),
                                   .state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED,
                                   .exit_code = ATTEMPTS_EXIT_NONE,
                                   .error = why};
        Hodei__V1__JobState final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
        /* the worker is going away: it stays as it is */
        st = hodei_store_attempt_end(conn, &end, &final, err);
        if (st == HODEI_ERR_PRECONDITION) {
            st = HODEI_OK;
            continue;
        }
        if (st == HODEI_OK && *n_ends < WORKER_SESSION_JOBS_MAX) {
            worker_job_end *x = &ends[(*n_ends)++];
            hodei_strlcpy(x->ref.job_id, end.job_id, sizeof x->ref.job_id);
            x->ref.epoch = end.epoch;
            x->state = final;
        }
    }
    PQclear(res);
    return st;
}

void worker_attempts_publish_ends(log_pub *pub, const worker_job_end *ends, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hodei_err err;
        if (hodei_job_state_terminal(ends[i].state) &&
            log_pub_end(pub, ends[i].ref.job_id, ends[i].ref.epoch, ends[i].state, false, &err) !=
                HODEI_OK)
            HLOG_WARN("job %s: end-of-log marker not published: %s", ends[i].ref.job_id, err.msg);
    }
}
