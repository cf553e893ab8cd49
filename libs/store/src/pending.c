/* Ending PENDING jobs that can never run: the scheduler when the provider a
 * job needs cannot give it what it asks (an image, GPUs), the provisioner
 * when the engine says the job's image does not exist. Each job ends FAILED
 * with the reason, exit code 127 (as a command that could not start) and a
 * JobFinished event, in the caller's transaction. A job that is no longer
 * PENDING (assigned meanwhile, cancelled) is left alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/job_state.h"
#include "hodei/sqlarr.h"
#include "hodei/store.h"

#define PENDING_IDS_TEXT_MAX ((size_t)HODEI_STORE_FAIL_MAX * (HODEI_ID_LEN + 4) + 8)
#define PENDING_EXIT_CODE 127
#define PENDING_EXIT_CODE_SQL "127"

/* The jobs ended, as the UPDATE returns them. */
enum { PEND_ID, PEND_EPOCH };

/* The JobFinished of each job ended (rows of id, epoch). */
static hodei_status pending_events(PGconn *conn, const PGresult *res, hodei_err *err)
{
    hodei_outbox_rows rows;
    hodei_status st = HODEI_OK;
    hodei_outbox_rows_init(&rows, HODEI_OUTBOX_ROWS_TEXT_MAX); /* HODEI_STORE_FAIL_MAX events fit */
    for (int i = 0; i < PQntuples(res) && st == HODEI_OK; i++)
        st = hodei_event_job_finished(HODEI_OUTBOX_ADD(&rows), hodei_db_get_str(res, i, PEND_ID),
                                      HODEI__V1__JOB_STATE__JOB_STATE_FAILED, PENDING_EXIT_CODE, "",
                                      hodei_db_get_i64(res, i, PEND_EPOCH), err);
    if (st == HODEI_OK)
        st = hodei_outbox_write(conn, &rows, err);
    hodei_outbox_rows_fini(&rows);
    return st;
}

hodei_status hodei_store_pending_fail(PGconn *conn, const char *const *job_ids, size_t n,
                                      const char *error, size_t *failed_out, hodei_err *err)
{
    hodei_buf ids;
    PGresult *res = NULL;
    hodei_status st = hodei_job_transition_check(HODEI__V1__JOB_STATE__JOB_STATE_PENDING,
                                                 HODEI__V1__JOB_STATE__JOB_STATE_FAILED, err);
    if (failed_out)
        *failed_out = 0;
    if (st != HODEI_OK || n == 0)
        return st;
    if (n > HODEI_STORE_FAIL_MAX)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "more than %d jobs to fail at once",
                             HODEI_STORE_FAIL_MAX);
    hodei_buf_init(&ids, PENDING_IDS_TEXT_MAX);
    hodei_sqlarr_begin(&ids);
    for (size_t i = 0; i < n; i++)
        hodei_sqlarr_str(&ids, job_ids[i]);
    if (!hodei_sqlarr_end(&ids)) {
        hodei_buf_fini(&ids);
        return hodei_err_set(err, HODEI_ERR_LIMIT, "job id list too long");
    }
    const char *params[2] = {ids.data, error};
    st = hodei_db_exec(conn,
                       "UPDATE jobs SET state = 'FAILED', error = $2,"
                       " exit_code = " PENDING_EXIT_CODE_SQL
                       ", finished_at = now(), updated_at = now()"
                       " WHERE id = ANY($1::uuid[]) AND state = 'PENDING'"
                       " RETURNING id::text, epoch",
                       2, params, &res, err);
    if (st == HODEI_OK)
        st = pending_events(conn, res, err);
    if (st == HODEI_OK && failed_out)
        *failed_out = (size_t)PQntuples(res);
    PQclear(res);
    hodei_buf_fini(&ids);
    return st;
}
