/* JobResult (worker_results.h): recorded with its artifact records in one
 * transaction, acknowledged, and the job's log ended when the job is. */
#include "worker_results.h"

#include <inttypes.h>
#include <string.h>

#include "hodei/assign.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/store.h"
#include "hodei/time.h"
#include "worker_acks.h"
#include "worker_logs.h"
#include "worker_records.h"
#include "worker_run.h"

static hodei_status results_acquire(worker_session *s, PGconn **conn, hodei_err *err)
{
    return edge_db_acquire(worker_hub_edge(s->hub), conn, err);
}

static void results_release(worker_session *s, PGconn *conn, hodei_status st)
{
    edge_db_release(worker_hub_edge(s->hub), conn, st);
}

/* ------------------------------------------------------ JobResult, hand-off */

/* The result's transaction. With worker.handoff, the worker freed by it
 * takes its next pending job in the same transaction (libs/store,
 * hodei_handoff_result), so a busy queue does not wait for a scheduling
 * pass and the relay before each job; *next gets that job's run row. A
 * result implies the ack: when the RunJobAck was lost (the edge that got
 * it died before recording it), the job is still ASSIGNED to this worker at
 * this epoch, and the end counts it as started. Anything else (stale,
 * already ended) is for the store to judge. The result's artifact records
 * (res) are written in the same transaction. */
static hodei_status result_tx(PGconn *conn, const hodei_attempt *a, const Hodei__V1__JobResult *res,
                              bool handoff, Hodei__V1__JobState *final, PGresult **next,
                              hodei_err *err)
{
    hodei_handoff h = {0};
    *next = NULL;
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    if (handoff)
        st = hodei_handoff_result(conn, a, &h, err);
    else
        st = hodei_store_attempt_result(conn, a, &h.final, err);
    if (st == HODEI_OK)
        st = worker_records_insert(conn, res, err);
    if (st == HODEI_OK)
        st = hodei_db_commit(conn, err);
    else
        hodei_db_rollback(conn);
    if (st != HODEI_OK) {
        PQclear(h.run);
        return st;
    }
    *final = h.final;
    *next = h.run;
    return HODEI_OK;
}

/* A refused result may be a repeat of one already recorded (the worker
 * re-sends until acked): the job ended at this worker's epoch. */
static bool result_already_recorded(PGconn *conn, const hodei_attempt *end,
                                    Hodei__V1__JobState *final)
{
    hodei_job_view v;
    hodei_err err;
    if (hodei_store_job_read(conn, end->job_id, false, &v, &err) != HODEI_OK)
        return false;
    *final = v.state;
    return hodei_job_state_terminal(v.state) && strcmp(v.worker_id, end->worker_id) == 0 &&
           v.epoch == end->epoch;
}

/* A result that ended nothing (stale, or the supervisor ended the attempt
 * first) still means the worker is done with that job: free it, or it would
 * stay BUSY for good while it keeps beating. */
static hodei_status result_release_worker(PGconn *conn, const hodei_attempt *end)
{
    hodei_err err;
    bool released = false;
    hodei_status st = hodei_db_begin(conn, &err);
    if (st == HODEI_OK)
        st = hodei_store_worker_release(conn, end->worker_id, end->job_id, &released, &err);
    if (st == HODEI_OK)
        st = hodei_db_commit(conn, &err);
    else
        hodei_db_rollback(conn);
    if (st != HODEI_OK)
        HLOG_WARN("worker %s: not freed after result of job %s: %s", end->worker_id, end->job_id,
                  err.msg);
    else if (released)
        HLOG_INFO("worker %s: free again after its result of job %s", end->worker_id, end->job_id);
    return st;
}

static void result_ack(worker_session *s, const Hodei__V1__JobResult *r, bool accepted,
                       const char *reason)
{
    Hodei__V1__JobResultAck a = HODEI__V1__JOB_RESULT_ACK__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    a.job_id = r->job_id;
    a.epoch = r->epoch;
    a.accepted = accepted;
    a.reason = (char *)reason;
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_RESULT_ACK;
    m.result_ack = &a;
    worker_session_send(s, &m);
}

void worker_results_on_result(worker_session *s, const Hodei__V1__JobResult *r)
{
    char worker_id[HODEI_ID_BUF];
    worker_session_worker_id(s, worker_id);
    const hodei_attempt end = {.job_id = r->job_id,
                               .worker_id = worker_id,
                               .epoch = r->epoch,
                               .state = r->state,
                               .exit_code = r->exit_code,
                               .error = r->error ? r->error : ""};
    /* An ack still waiting to be written is implied by this result. */
    worker_acks_drop(worker_hub_edge(s->hub)->acks, worker_id, r->job_id, r->epoch);
    Hodei__V1__JobState final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    PGconn *conn = NULL;
    PGresult *next = NULL; /* the job handed to this worker, sent after the ack */
    hodei_err err;
    bool accepted = false;
    hodei_status st = results_acquire(s, &conn, &err);
    if (st == HODEI_OK) {
        st = result_tx(conn, &end, r, worker_hub_edge(s->hub)->cfg->worker_handoff, &final, &next,
                       &err);
        accepted = st == HODEI_OK ||
                   (st == HODEI_ERR_PRECONDITION && result_already_recorded(conn, &end, &final));
        /* Refused, or a repeat: the worker is done with that job either way
         * (on the same connection). */
        hodei_status rel = HODEI_OK;
        if (st == HODEI_ERR_PRECONDITION || st == HODEI_ERR_NOT_FOUND || st == HODEI_ERR_INVALID)
            rel = result_release_worker(conn, &end);
        results_release(s, conn, hodei_db_status_broken(rel) ? rel : st);
    }
    if (!accepted && st != HODEI_ERR_PRECONDITION && st != HODEI_ERR_NOT_FOUND &&
        st != HODEI_ERR_INVALID) {
        HLOG_WARN("worker %s: result of job %s not recorded: %s", worker_id, r->job_id, err.msg);
        worker_session_end(s, HODEI_GRPC_UNAVAILABLE, WORKER_DB_TROUBLE);
        return;
    }
    worker_session_forget(s, r->job_id);
    result_ack(s, r, accepted, accepted ? "" : err.msg);
    if (st == HODEI_OK)
        edge_metrics_result(&worker_hub_edge(s->hub)->m, r, final);
    if (!accepted)
        HLOG_INFO("worker %s: result of job %s epoch %" PRId64 " refused: %s", worker_id, r->job_id,
                  r->epoch, err.msg);
    if (accepted)
        worker_logs_drops(s, r->job_id, r->epoch);
    if (accepted && hodei_job_state_terminal(final) &&
        log_pub_end(worker_hub_pub(s->hub), r->job_id, r->epoch, final, &err) != HODEI_OK)
        HLOG_WARN("job %s: end-of-log marker not published: %s", r->job_id, err.msg);
    if (next) {
        edge *e = worker_hub_edge(s->hub);
        hodei_metric_add(e->m.handoffs, 1);
        if (!PQgetisnull(next, 0, HODEI_RUN_COL_DUE_AGE_US))
            hodei_metric_observe_micro(e->m.queue_wait_seconds,
                                       hodei_db_get_i64(next, 0, HODEI_RUN_COL_DUE_AGE_US));
        worker_run_send(s, next, 0);
    }
    PQclear(next);
}
