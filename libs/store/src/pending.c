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
#include "hodei/job_state.h"
#include "hodei/names.h"
#include "hodei/sqlarr.h"
#include "hodei/store.h"

#define PENDING_IDS_TEXT_MAX ((size_t)HODEI_STORE_FAIL_MAX * (HODEI_ID_LEN + 4) + 8)
#define PENDING_EXIT_CODE "127"

static hodei_status pending_events(PGconn *conn, const PGresult *res, hodei_err *err)
{
    hodei_outbox_rows rows;
    hodei_status st = HODEI_OK;
    hodei_outbox_rows_init(&rows);
    for (int i = 0; i < PQntuples(res) && st == HODEI_OK; i++) {
        Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
        Hodei__V1__JobFinished fin = HODEI__V1__JOB_FINISHED__INIT;
        fin.job_id = PQgetvalue(res, i, 0);
        fin.state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED;
        fin.exit_code = 127;
        fin.epoch = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        ev.body_case = HODEI__V1__EVENT__BODY_JOB_FINISHED;
        ev.job_finished = &fin;
        st = hodei_outbox_rows_add(&rows, &ev, HODEI_SUBJ_JOB_FINISHED, "job", fin.job_id,
                                   "JobFinished", err);
    }
    if (st == HODEI_OK && PQntuples(res) > 0) {
        const char *params[HODEI_OUTBOX_ROWS_COLS];
        hodei_outbox_rows_params(&rows, params);
        st = hodei_db_exec(conn,
                           "INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id,"
                           " event_type, payload)"
                           " SELECT e.id, e.subject, e.agg_type, e.agg_id, e.type,"
                           "        decode(e.payload, 'hex')"
                           "   FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],"
                           "               $5::text[], $6::text[])"
                           "     AS e(id, subject, agg_type, agg_id, type, payload)",
                           HODEI_OUTBOX_ROWS_COLS, params, NULL, err);
    }
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
                       " exit_code = " PENDING_EXIT_CODE ", finished_at = now(), updated_at = now()"
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
