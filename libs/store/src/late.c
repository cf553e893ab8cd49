/* A success that arrives after its worker was taken for lost
 * (hodei_store_attempt_late_success in hodei/store.h).
 *
 * The supervisor ends the attempts of a worker whose heartbeats stopped
 * ("worker lost") and re-queues them with a back-off; a worker that was
 * only slow (its edge stalled, the machine overloaded) may still finish the
 * job and report it. Until the job is handed to another worker, that
 * success is the job's outcome: recording it ends the job once instead of
 * running it a second time. The guard is the epoch: the job must still be
 * PENDING at the epoch the result names, with no worker, and the reporting
 * worker must be the lost one that held it (current_job_id is kept when a
 * worker is retired). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/store.h"
#include "store_int.h"

/* $1 job, $2 worker, $3 epoch, $4 exit code, $5 events (JobFinished). */
static const char late_sql[] =
    "WITH j AS ("
    " UPDATE jobs SET state = 'SUCCEEDED', error = NULL, exit_code = $4::int,"
    "  worker_id = $2::uuid, updated_at = now(),"
    "  started_at = coalesce(started_at, now()), finished_at = now()"
    " WHERE id = $1::uuid AND state = 'PENDING' AND worker_id IS NULL AND epoch = $3::bigint"
    "  AND NOT cancel_requested"
    "  AND EXISTS (SELECT 1 FROM workers w WHERE w.id = $2::uuid AND w.current_job_id = $1::uuid"
    "   AND w.state IN ('LOST', 'TERMINATING', 'TERMINATED'))"
    " RETURNING id"
    "), o AS (" HODEI_OUTBOX_INSERT_SQL("$5", "EXISTS (SELECT 1 FROM j)") ")"
                                                                          " SELECT count(*) FROM j";

hodei_status hodei_store_attempt_late_success(PGconn *conn, const hodei_attempt *a, bool *ended,
                                              hodei_err *err)
{
    *ended = false;
    if (a->state != HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED)
        return HODEI_OK;
    hodei_outbox_rows rows;
    hodei_outbox_rows_init(&rows, HODEI_OUTBOX_ROWS_TEXT_MAX);
    hodei_status st = hodei_event_job_finished(HODEI_OUTBOX_ADD(&rows), a->job_id, a->state,
                                               a->exit_code, a->worker_id, a->epoch, err);
    if (st == HODEI_OK) {
        char epoch[STORE_INT_TEXT_MAX], code[STORE_INT_TEXT_MAX];
        snprintf(epoch, sizeof epoch, "%" PRId64, a->epoch);
        snprintf(code, sizeof code, "%" PRId32, a->exit_code);
        const char *params[5] = {a->job_id, a->worker_id, epoch, code,
                                 hodei_outbox_rows_param(&rows)};
        PGresult *res = NULL;
        st = hodei_db_exec(conn, late_sql, 5, params, &res, err);
        if (st == HODEI_OK)
            *ended = hodei_db_get_i64(res, 0, 0) == 1;
        PQclear(res);
    }
    hodei_outbox_rows_fini(&rows);
    return st;
}
