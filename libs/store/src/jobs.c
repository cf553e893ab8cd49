/* Reading a job's scheduling state, and RunJobAck's transition (the end of
 * an attempt: attempt.c). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/job_state.h"
#include "hodei/util.h"
#include "store_int.h"

int64_t hodei_retry_backoff_ms(int32_t attempt)
{
    int64_t ms = HODEI_RETRY_BACKOFF_BASE_MS;
    for (int32_t i = 1; i < attempt && ms < HODEI_RETRY_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < HODEI_RETRY_BACKOFF_MAX_MS ? ms : HODEI_RETRY_BACKOFF_MAX_MS;
}

#define JOB_READ_SQL                                                                               \
    "SELECT j.state, coalesce(j.worker_id::text, ''), j.epoch, j.attempt, j.max_attempts,"         \
    " j.cancel_requested, j.priority, j.provider,"                                                 \
    " coalesce((SELECT w.provider FROM workers w WHERE w.id = j.worker_id), '')"                   \
    " FROM jobs j WHERE j.id = $1"

enum {
    JOB_READ_STATE,
    JOB_READ_WORKER,
    JOB_READ_EPOCH,
    JOB_READ_ATTEMPT,
    JOB_READ_MAX_ATTEMPTS,
    JOB_READ_CANCEL_REQUESTED,
    JOB_READ_PRIORITY,
    JOB_READ_PROVIDER,
    JOB_READ_WORKER_PROVIDER
};

hodei_status hodei_store_job_read(PGconn *conn, const char *job_id, bool lock, hodei_job_view *v,
                                  hodei_err *err)
{
    const char *params[1] = {job_id};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(conn, lock ? JOB_READ_SQL " FOR UPDATE OF j" : JOB_READ_SQL, 1,
                                    params, &res, err);
    if (st != HODEI_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "job %s not found", job_id);
    }
    if (!hodei_job_state_parse(hodei_db_get_str(res, 0, JOB_READ_STATE), &v->state))
        v->state = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    hodei_strlcpy(v->worker_id, hodei_db_get_str(res, 0, JOB_READ_WORKER), sizeof v->worker_id);
    v->epoch = hodei_db_get_i64(res, 0, JOB_READ_EPOCH);
    v->attempt = (int32_t)hodei_db_get_i64(res, 0, JOB_READ_ATTEMPT);
    v->max_attempts = (int32_t)hodei_db_get_i64(res, 0, JOB_READ_MAX_ATTEMPTS);
    v->cancel_requested = hodei_db_get_str(res, 0, JOB_READ_CANCEL_REQUESTED)[0] == 't';
    v->priority = (int32_t)hodei_db_get_i64(res, 0, JOB_READ_PRIORITY);
    hodei_strlcpy(v->provider, hodei_db_get_str(res, 0, JOB_READ_PROVIDER), sizeof v->provider);
    hodei_strlcpy(v->worker_provider, hodei_db_get_str(res, 0, JOB_READ_WORKER_PROVIDER),
                  sizeof v->worker_provider);
    PQclear(res);
    return HODEI_OK;
}

hodei_status store_check_owner(const char *job_id, const hodei_job_view *v, const char *worker_id,
                               int64_t epoch, hodei_err *err)
{
    if (strcmp(v->worker_id, worker_id) != 0 || v->epoch != epoch)
        return hodei_err_set(err, HODEI_ERR_PRECONDITION,
                             "stale attempt: job %s is at epoch %" PRId64
                             " on worker %s, not epoch %" PRId64 " on %s",
                             job_id, v->epoch, v->worker_id[0] ? v->worker_id : "(none)", epoch,
                             worker_id);
    return HODEI_OK;
}

hodei_status hodei_store_job_started(PGconn *conn, const char *job_id, const char *worker_id,
                                     int64_t epoch, hodei_err *err)
{
    char epoch_text[24];
    snprintf(epoch_text, sizeof epoch_text, "%" PRId64, epoch);
    const char *params[3] = {job_id, worker_id, epoch_text};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(conn,
                                    "UPDATE jobs SET state = 'RUNNING', started_at = now(),"
                                    " updated_at = now() WHERE id = $1 AND state = 'ASSIGNED'"
                                    " AND worker_id = $2::uuid AND epoch = $3::bigint",
                                    3, params, &res, err);
    if (st != HODEI_OK)
        return st;
    bool started = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    if (started)
        return HODEI_OK;
    /* Not ASSIGNED to this worker at this epoch: say why. */
    hodei_job_view v;
    st = hodei_store_job_read(conn, job_id, false, &v, err);
    if (st == HODEI_OK)
        st = store_check_owner(job_id, &v, worker_id, epoch, err);
    if (st != HODEI_OK || v.state == HODEI__V1__JOB_STATE__JOB_STATE_RUNNING)
        return st;
    st = hodei_job_transition_check(v.state, HODEI__V1__JOB_STATE__JOB_STATE_RUNNING, err);
    if (st != HODEI_OK)
        return st;
    return hodei_err_set(err, HODEI_ERR_PRECONDITION, "job %s changed while starting", job_id);
}
