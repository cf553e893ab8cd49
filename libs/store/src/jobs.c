/* Job transitions shared by the services. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/bus.h"
#include "hodei/db.h"
#include "hodei/job_state.h"
#include "hodei/store.h"
#include "hodei/util.h"

int64_t hodei_retry_backoff_ms(int32_t attempt)
{
    int64_t ms = HODEI_RETRY_BACKOFF_BASE_MS;
    for (int32_t i = 1; i < attempt && ms < HODEI_RETRY_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < HODEI_RETRY_BACKOFF_MAX_MS ? ms : HODEI_RETRY_BACKOFF_MAX_MS;
}

#define JOB_READ_SQL                                                                  \
    "SELECT state, coalesce(worker_id::text, ''), epoch, attempt, max_attempts,"     \
    " cancel_requested, priority, provider FROM jobs WHERE id = $1"

hodei_status hodei_store_job_read(PGconn *conn, const char *job_id, bool lock, hodei_job_view *v,
                                  hodei_err *err)
{
    const char *params[1] = {job_id};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(conn, lock ? JOB_READ_SQL " FOR UPDATE" : JOB_READ_SQL, 1,
                                    params, &res, err);
    if (st != HODEI_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "job %s not found", job_id);
    }
    if (!hodei_job_state_parse(hodei_db_get_str(res, 0, 0), &v->state))
        v->state = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    hodei_strlcpy(v->worker_id, hodei_db_get_str(res, 0, 1), sizeof v->worker_id);
    v->epoch = hodei_db_get_i64(res, 0, 2);
    v->attempt = (int32_t)hodei_db_get_i64(res, 0, 3);
    v->max_attempts = (int32_t)hodei_db_get_i64(res, 0, 4);
    v->cancel_requested = hodei_db_get_str(res, 0, 5)[0] == 't';
    v->priority = (int32_t)hodei_db_get_i64(res, 0, 6);
    hodei_strlcpy(v->provider, hodei_db_get_str(res, 0, 7), sizeof v->provider);
    PQclear(res);
    return HODEI_OK;
}

static hodei_status job_check_owner(const char *job_id, const hodei_job_view *v,
                                    const char *worker_id, int64_t epoch, hodei_err *err)
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
    hodei_job_view v;
    hodei_status st = hodei_store_job_read(conn, job_id, true, &v, err);
    if (st == HODEI_OK)
        st = job_check_owner(job_id, &v, worker_id, epoch, err);
    if (st != HODEI_OK)
        return st;
    if (v.state == HODEI__V1__JOB_STATE__JOB_STATE_RUNNING)
        return HODEI_OK;
    st = hodei_job_transition_check(v.state, HODEI__V1__JOB_STATE__JOB_STATE_RUNNING, err);
    if (st != HODEI_OK)
        return st;
    const char *params[1] = {job_id};
    return hodei_db_exec(conn,
                         "UPDATE jobs SET state = 'RUNNING', started_at = now(),"
                         " updated_at = now() WHERE id = $1",
                         1, params, NULL, err);
}

static hodei_status job_requeue(PGconn *conn, const hodei_attempt_end *end,
                                const hodei_job_view *v, hodei_err *err)
{
    char backoff[32];
    snprintf(backoff, sizeof backoff, "%" PRId64, hodei_retry_backoff_ms(v->attempt));
    const char *params[3] = {end->job_id, backoff, end->error ? end->error : ""};
    hodei_status st = hodei_db_exec(
        conn,
        "UPDATE jobs SET state = 'PENDING', worker_id = NULL, error = nullif($3, ''),"
        " not_before = now() + $2::bigint * interval '1 millisecond', updated_at = now()"
        " WHERE id = $1",
        3, params, NULL, err);
    if (st != HODEI_OK)
        return st;
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobQueued q = HODEI__V1__JOB_QUEUED__INIT;
    q.job_id = (char *)end->job_id;
    q.priority = v->priority;
    q.provider = (char *)v->provider;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_QUEUED;
    ev.job_queued = &q;
    return hodei_outbox_append(conn, &ev, HODEI_SUBJ_JOB_QUEUED, "job", end->job_id, "JobQueued",
                               err);
}

static hodei_status job_finish(PGconn *conn, const hodei_attempt_end *end,
                               Hodei__V1__JobState state, hodei_err *err)
{
    char code[16];
    snprintf(code, sizeof code, "%" PRId32, end->exit_code);
    const char *params[4] = {end->job_id, hodei_job_state_name(state), code,
                             end->error ? end->error : ""};
    hodei_status st = hodei_db_exec(
        conn,
        "UPDATE jobs SET state = $2, exit_code = $3::int, error = nullif($4, ''),"
        " finished_at = now(), updated_at = now() WHERE id = $1",
        4, params, NULL, err);
    if (st != HODEI_OK)
        return st;
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobFinished fin = HODEI__V1__JOB_FINISHED__INIT;
    fin.job_id = (char *)end->job_id;
    fin.state = state;
    fin.exit_code = end->exit_code;
    fin.worker_id = (char *)end->worker_id;
    fin.epoch = end->epoch;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_FINISHED;
    ev.job_finished = &fin;
    return hodei_outbox_append(conn, &ev, HODEI_SUBJ_JOB_FINISHED, "job", end->job_id,
                               "JobFinished", err);
}

static bool end_state_valid(Hodei__V1__JobState s)
{
    return s == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED ||
           s == HODEI__V1__JOB_STATE__JOB_STATE_FAILED ||
           s == HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT ||
           s == HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED;
}

hodei_status hodei_store_attempt_end(PGconn *conn, const hodei_attempt_end *end,
                                     Hodei__V1__JobState *final_out, hodei_err *err)
{
    hodei_job_view v;
    if (!end_state_valid(end->state))
        return hodei_err_set(err, HODEI_ERR_INVALID, "state: an attempt ends SUCCEEDED, FAILED,"
                                                     " TIMEOUT or CANCELLED, not %s",
                             hodei_job_state_name(end->state));
    hodei_status st = hodei_store_job_read(conn, end->job_id, true, &v, err);
    if (st == HODEI_OK)
        st = job_check_owner(end->job_id, &v, end->worker_id, end->epoch, err);
    if (st != HODEI_OK)
        return st;
    bool retry = (end->state == HODEI__V1__JOB_STATE__JOB_STATE_FAILED ||
                  end->state == HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT) &&
                 v.attempt < v.max_attempts && !v.cancel_requested;
    Hodei__V1__JobState next = retry ? HODEI__V1__JOB_STATE__JOB_STATE_PENDING : end->state;
    if ((st = hodei_job_transition_check(v.state, next, err)) != HODEI_OK)
        return st;
    st = retry ? job_requeue(conn, end, &v, err) : job_finish(conn, end, next, err);
    if (st == HODEI_OK && end->free_worker) {
        const char *from[] = {"BUSY", NULL};
        st = hodei_store_worker_transition(conn, end->worker_id, from,
                                           HODEI__V1__WORKER_STATE__WORKER_STATE_READY, err);
        /* A worker that is draining or already gone keeps its state. */
        if (st == HODEI_ERR_PRECONDITION || st == HODEI_ERR_NOT_FOUND)
            st = HODEI_OK;
    }
    if (st == HODEI_OK && final_out)
        *final_out = next;
    return st;
}
