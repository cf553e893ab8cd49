/* Jobs the system must not wait for forever:
 * - RUNNING past started_at + timeout_ms + supervisor.timeout_grace: the
 *   attempt ends TIMEOUT and the worker is told to kill it (the worker
 *   enforces timeout_ms itself; this is the server's backstop);
 * - ASSIGNED and never acknowledged within supervisor.assign_timeout: the
 *   attempt ends FAILED "not acknowledged" and the worker is suspect
 *   (LOST, destroy requested);
 * - orphaned: ASSIGNED/RUNNING on a worker that is LOST, TERMINATING,
 *   TERMINATED or missing: the attempt ends FAILED "worker lost".
 * Attempts end through hodei_store_attempt_end (epoch-fenced; re-queued with
 * backoff while attempts remain). The worker is never freed here: it is
 * still busy (killing the job) or it is going away.
 *
 * Lock order: the job (SKIP LOCKED), then its worker, like the edge and the
 * scheduler. */
#include <inttypes.h>
#include <stdio.h>

#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/job_state.h"
#include "hodei/store.h"
#include "sup_int.h"

#define SUP_ERROR_TEXT_MAX 128

#define SUP_EXPIRED_SQL_(ONE, LOCK)                                                                \
    "SELECT id::text, coalesce(worker_id::text, ''), epoch, attempt, max_attempts,"                \
    " timeout_ms FROM jobs WHERE state = 'RUNNING' AND timeout_ms > 0"                             \
    " AND started_at < now() - (timeout_ms + $1::bigint) * interval '1 millisecond'" ONE           \
    " ORDER BY started_at LIMIT $2" LOCK
#define SUP_EXPIRED_SQL SUP_EXPIRED_SQL_("", "")
#define SUP_EXPIRED_ONE_SQL SUP_EXPIRED_SQL_(" AND id = $3::uuid", " FOR UPDATE SKIP LOCKED")
enum {
    SUP_EXP_ID = 0,
    SUP_EXP_WORKER,
    SUP_EXP_EPOCH,
    SUP_EXP_ATTEMPT,
    SUP_EXP_MAX_ATTEMPTS,
    SUP_EXP_TIMEOUT_MS
};

/* The assignment is the last write to an ASSIGNED job (a cancel request
 * only moves updated_at later), so updated_at is when it was assigned. */
#define SUP_UNACKED_SQL_(ONE, LOCK)                                                                \
    "SELECT id::text, coalesce(worker_id::text, ''), epoch, cancel_requested,"                     \
    " (extract(epoch FROM now() - updated_at) * 1000)::int8"                                       \
    " FROM jobs WHERE state = 'ASSIGNED'"                                                          \
    " AND updated_at < now() - $1::bigint * interval '1 millisecond'"                              \
    " AND " SUP_SILENT_WHILE_EDGE_UP_SQL("jobs.updated_at") ONE                                    \
        " ORDER BY updated_at LIMIT $2" LOCK
#define SUP_UNACKED_SQL SUP_UNACKED_SQL_("", "")
#define SUP_UNACKED_ONE_SQL SUP_UNACKED_SQL_(" AND id = $3::uuid", " FOR UPDATE SKIP LOCKED")
enum { SUP_UNACK_ID = 0, SUP_UNACK_WORKER, SUP_UNACK_EPOCH, SUP_UNACK_CANCEL, SUP_UNACK_AGE_MS };

#define SUP_ORPHANED_SQL_(ONE, LOCK)                                                               \
    "SELECT j.id::text, coalesce(j.worker_id::text, ''), j.epoch, j.cancel_requested,"             \
    " coalesce(w.state, 'missing')"                                                                \
    " FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id"                                       \
    " WHERE j.state IN ('ASSIGNED', 'RUNNING')"                                                    \
    " AND (w.id IS NULL OR w.state IN ('LOST', 'TERMINATING', 'TERMINATED'))" ONE                  \
    " ORDER BY j.updated_at LIMIT $1" LOCK
#define SUP_ORPHANED_SQL SUP_ORPHANED_SQL_("", "")
#define SUP_ORPHANED_ONE_SQL                                                                       \
    SUP_ORPHANED_SQL_(" AND j.id = $2::uuid", " FOR UPDATE OF j SKIP LOCKED")
enum { SUP_ORPH_ID = 0, SUP_ORPH_WORKER, SUP_ORPH_EPOCH, SUP_ORPH_CANCEL, SUP_ORPH_WSTATE };

hodei_status sup_job_fail(sup *s, const char *job_id, const char *worker_id, int64_t epoch,
                          bool cancel_requested, const char *error, Hodei__V1__JobState *final_out,
                          hodei_err *err)
{
    const hodei_attempt a = {
        .job_id = job_id,
        .worker_id = worker_id,
        .epoch = epoch,
        /* the user asked for a cancel: that is the outcome, not a retry */
        .state = cancel_requested ? HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED
                                  : HODEI__V1__JOB_STATE__JOB_STATE_FAILED,
        .exit_code = SUP_EXIT_CODE_NONE,
        .error = error,
        /* The worker may only have been slow: its success can still arrive
         * and end the job (libs/store late.c) while the retry waits. */
        .retry_wait_min_ms = s->cfg->lost_retry_delay_ms,
    };
    return hodei_store_attempt_end(s->conn, &a, final_out, err); /* the worker is gone */
}

/* JobCancelRequested on the worker's own subject: the edge holding it
 * sends CancelJob{job, epoch}, and the worker kills that attempt. */
static hodei_status sup_cancel_send(sup *s, const char *job_id, const char *worker_id,
                                    int64_t epoch, const char *reason, hodei_err *err)
{
    return hodei_event_job_cancel_requested(HODEI_OUTBOX_WRITE(s->conn), job_id, worker_id, epoch,
                                            reason, err);
}

static hodei_status sup_expired_one(sup *s, const PGresult *res, int row, hodei_err *err)
{
    const char *job_id = hodei_db_get_str(res, row, SUP_EXP_ID);
    const char *worker_id = hodei_db_get_str(res, row, SUP_EXP_WORKER);
    int64_t epoch = hodei_db_get_i64(res, row, SUP_EXP_EPOCH);
    int64_t timeout_ms = hodei_db_get_i64(res, row, SUP_EXP_TIMEOUT_MS);
    Hodei__V1__JobState final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    char error[SUP_ERROR_TEXT_MAX];

    snprintf(error, sizeof error, "timed out after %" PRId64 " ms", timeout_ms);
    const hodei_attempt a = {
        .job_id = job_id,
        .worker_id = worker_id,
        .epoch = epoch,
        .state = HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT,
        .exit_code = SUP_EXIT_CODE_NONE,
        .error = error,
    };
    /* the worker stays BUSY: it is still killing the job */
    hodei_status st = hodei_store_attempt_end(s->conn, &a, &final, err);
    if (st == HODEI_OK)
        st = sup_cancel_send(s, job_id, worker_id, epoch, "timeout", err);
    if (st == HODEI_OK)
        sup_note(s,
                 "job timeout: job=%s worker=%s epoch=%" PRId64 " attempt=%" PRId64 "/%" PRId64
                 " timeout_ms=%" PRId64 " -> %s, kill sent to the worker",
                 job_id, worker_id, epoch, hodei_db_get_i64(res, row, SUP_EXP_ATTEMPT),
                 hodei_db_get_i64(res, row, SUP_EXP_MAX_ATTEMPTS), timeout_ms,
                 hodei_job_state_name(final));
    return st;
}

hodei_status sup_check_job_timeouts(sup *s, int *n_out, hodei_err *err)
{
    char setting[SUP_INT_TEXT_MAX];

    sup_i64_text(s->cfg->timeout_grace_ms, setting);
    return sup_judge_each(s, "timed-out job", SUP_EXPIRED_SQL, SUP_EXPIRED_ONE_SQL, setting,
                          sup_expired_one, n_out, err);
}

static hodei_status sup_unacked_one(sup *s, const PGresult *res, int row, hodei_err *err)
{
    const char *job_id = hodei_db_get_str(res, row, SUP_UNACK_ID);
    const char *worker_id = hodei_db_get_str(res, row, SUP_UNACK_WORKER);
    Hodei__V1__JobState final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    bool lost = false;

    hodei_status st = sup_job_fail(
        s, job_id, worker_id, hodei_db_get_i64(res, row, SUP_UNACK_EPOCH),
        hodei_db_get_str(res, row, SUP_UNACK_CANCEL)[0] == 't', "not acknowledged", &final, err);
    if (st == HODEI_OK && worker_id[0])
        st = sup_worker_lose(s, worker_id, "not acknowledged", &lost, err);
    if (st == HODEI_OK)
        sup_note(s, "assign timeout: job=%s worker=%s age_ms=%" PRId64 " -> %s; worker %s", job_id,
                 worker_id[0] ? worker_id : "none", hodei_db_get_i64(res, row, SUP_UNACK_AGE_MS),
                 hodei_job_state_name(final),
                 lost ? "suspect -> LOST, destroy requested" : "already gone");
    return st;
}

hodei_status sup_check_assign_timeouts(sup *s, int *n_out, hodei_err *err)
{
    char setting[SUP_INT_TEXT_MAX];
    bool ok = false;

    /* An assignment waits on its worker's ack only while an edge is there
     * to carry the RunJob and the ack. */
    *n_out = 0;
    hodei_status st = sup_edges_available(s, s->cfg->assign_timeout_ms, "assign-timeout check",
                                          &s->gate_assign, &ok, err);
    if (st != HODEI_OK || !ok)
        return st;

    sup_i64_text(s->cfg->assign_timeout_ms, setting);
    return sup_judge_each(s, "unacknowledged job", SUP_UNACKED_SQL, SUP_UNACKED_ONE_SQL, setting,
                          sup_unacked_one, n_out, err);
}

static hodei_status sup_orphaned_one(sup *s, const PGresult *res, int row, hodei_err *err)
{
    const char *job_id = hodei_db_get_str(res, row, SUP_ORPH_ID);
    const char *worker_id = hodei_db_get_str(res, row, SUP_ORPH_WORKER);
    Hodei__V1__JobState final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;

    hodei_status st = sup_job_fail(s, job_id, worker_id, hodei_db_get_i64(res, row, SUP_ORPH_EPOCH),
                                   hodei_db_get_str(res, row, SUP_ORPH_CANCEL)[0] == 't',
                                   "worker lost", &final, err);
    if (st == HODEI_OK)
        sup_note(s, "orphaned job: job=%s worker=%s worker_state=%s -> %s", job_id,
                 worker_id[0] ? worker_id : "none", hodei_db_get_str(res, row, SUP_ORPH_WSTATE),
                 hodei_job_state_name(final));
    return st;
}

hodei_status sup_check_orphaned_jobs(sup *s, int *n_out, hodei_err *err)
{
    return sup_judge_each(s, "orphaned job", SUP_ORPHANED_SQL, SUP_ORPHANED_ONE_SQL, NULL,
                          sup_orphaned_one, n_out, err);
}
