/* The end of an attempt (hodei/store.h's plain calls, and the hand-off's
 * end in assign.c): one implementation, store_attempt_end.
 *
 * The general way locks and reads the job, checks the owner, the epoch and
 * the transition, then writes job, worker and events in one statement. A
 * SUCCEEDED end (the common case: it never retries) that need not write a
 * WorkerReady of its own takes a faster way first: one guarded statement,
 * which with a hand-off's pick also gives the worker its next job. When that
 * statement ends nothing, the general way judges why (stale, already ended,
 * unknown). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/job_state.h"
#include "hodei/sched_strategy.h"
#include "hodei/util.h"
#include "store_int.h"

/* The general end: the job ($1 id, $2 next state: PENDING re-queues it
 * after $5 ms, anything else ends it with exit code $3; $4 error), the
 * worker's release ($6 free it?, $7 worker id; a worker no longer BUSY
 * keeps its state) and the events ($8: the job's event first, then the
 * worker's, written only when the worker was released). Answers how many
 * workers it freed. */
static const char end_sql[] =
    "WITH j AS ("
    " UPDATE jobs SET state = $2, error = nullif($4, ''), updated_at = now(),"
    "  worker_id = CASE WHEN $2 = 'PENDING' THEN NULL ELSE worker_id END,"
    "  not_before = CASE WHEN $2 = 'PENDING'"
    "   THEN now() + $5::bigint * interval '1 millisecond' ELSE not_before END,"
    "  exit_code = CASE WHEN $2 = 'PENDING' THEN exit_code ELSE $3::int END,"
    "  started_at = CASE WHEN $2 = 'PENDING' THEN started_at"
    "   ELSE coalesce(started_at, now()) END,"
    "  finished_at = CASE WHEN $2 = 'PENDING' THEN finished_at ELSE now() END"
    " WHERE id = $1"
    "), w AS ("
    " UPDATE workers SET " STORE_WORKER_FREES_SQL
    " WHERE $6::bool AND id = $7::uuid AND state = 'BUSY' RETURNING id"
    "), o AS (" HODEI_OUTBOX_INSERT_SQL(
        "$8", "e.n = 1 OR EXISTS (SELECT 1 FROM w)") ")"
                                                     " SELECT (SELECT count(*) FROM w)";

/* The fast end: $1 job, $2 worker, $3 epoch, $4 exit code, $5 error, $6
 * ASSIGNED counts as started, $7 free the worker, $8 events: JobFinished
 * first, then the worker's (WorkerReady), written only when the worker's
 * update happened. Nothing at all happens unless the job is the worker's
 * at that epoch and RUNNING (or ASSIGNED, with $6). */
#define END_FAST_JOB_SQL                                                                           \
    "WITH j AS ("                                                                                  \
    " UPDATE jobs SET state = 'SUCCEEDED', error = nullif($5, ''), updated_at = now(),"            \
    "  exit_code = $4::int, started_at = coalesce(started_at, now()), finished_at = now()"         \
    " WHERE id = $1 AND worker_id = $2::uuid AND epoch = $3::bigint"                               \
    "  AND (state = 'RUNNING' OR ($6::bool AND state = 'ASSIGNED'))"                               \
    " RETURNING id)"

/* The answers of both fast statements, after the run row (when there is
 * one): jobs ended, workers moved, the worker's provider. */
enum { FAST_ENDED, FAST_MOVED, FAST_PROVIDER, FAST_COLS };

/* The worker goes READY. */
static const char end_fast_sql[] = END_FAST_JOB_SQL
    ", w AS ("
    " UPDATE workers SET " STORE_WORKER_FREES_SQL
    " WHERE $7::bool AND id = $2::uuid AND state = 'BUSY'"
    "  AND EXISTS (SELECT 1 FROM j) RETURNING provider"
    "), o AS (" HODEI_OUTBOX_INSERT_SQL("$8",
                                        "EXISTS (SELECT 1 FROM j) AND (e.n = 1 OR EXISTS (SELECT 1 "
                                        "FROM w))") ")"
                                                    " SELECT (SELECT count(*) FROM j), (SELECT "
                                                    "count(*) FROM w),"
                                                    "  coalesce((SELECT provider FROM w), '')";

/* The worker takes the picked job $9 (PENDING at epoch $10, locked by the
 * pick) through the suite's one assignment write ($11: the load's tau, $12:
 * its JobAssigned). Answers the run row (NULL id when nothing was handed),
 * then FAST_*. */
static const char end_fast_next_sql[] = END_FAST_JOB_SQL
    ", p AS ("
    " SELECT jobs.id AS job_id, $2::uuid AS worker_id, jobs.epoch, 1 AS n"
    "  FROM jobs WHERE jobs.id = $9::uuid AND jobs.state = 'PENDING'"
    "   AND jobs.epoch = $10::bigint AND $7::bool AND EXISTS (SELECT 1 FROM j)"
    "   AND EXISTS (SELECT 1 FROM workers"
    "    WHERE workers.id = $2::uuid AND workers.state = 'BUSY')"
    "), " STORE_ASSIGN_CTES_SQL("$11", "$12") ", o AS (" HODEI_OUTBOX_INSERT_SQL(
        "$8",
        "EXISTS (SELECT 1 FROM j)") ")"
                                    " SELECT " STORE_RUN_ROW_SQL(
                                        "true") ", (SELECT count(*) FROM j),"
                                                "  (SELECT count(*) FROM aw), coalesce((SELECT "
                                                "provider FROM aw), '')"
                                                " FROM (SELECT 1) AS one LEFT JOIN aj ON true";

#define END_PARAMS 8
#define END_FAST_PARAMS 8
#define END_FAST_NEXT_PARAMS 12

/* ------------------------------------------------------------ general way */

/* The job's event: JobQueued on a retry, JobFinished otherwise. */
static hodei_status end_job_event(hodei_outbox_rows *rows, const hodei_attempt *a,
                                  const hodei_job_view *v, Hodei__V1__JobState next, hodei_err *err)
{
    if (next == HODEI__V1__JOB_STATE__JOB_STATE_PENDING)
        return hodei_event_job_queued(HODEI_OUTBOX_ADD(rows), a->job_id, v->priority, v->provider,
                                      err);
    return hodei_event_job_finished(HODEI_OUTBOX_ADD(rows), a->job_id, next, a->exit_code,
                                    a->worker_id, a->epoch, err);
}

static hodei_status end_write(PGconn *conn, const store_end_how *how, const hodei_job_view *v,
                              Hodei__V1__JobState next, store_end_out *out, hodei_err *err)
{
    const hodei_attempt *a = how->a;
    hodei_outbox_rows rows;
    hodei_outbox_rows_init(&rows, HODEI_OUTBOX_ROWS_TEXT_MAX);
    hodei_status st = end_job_event(&rows, a, v, next, err);
    if (st == HODEI_OK && how->ready_event)
        st = hodei_event_worker_ready(HODEI_OUTBOX_ADD(&rows), a->worker_id, v->worker_provider,
                                      err);
    if (st == HODEI_OK) {
        char code[STORE_INT_TEXT_MAX], backoff[STORE_INT_TEXT_MAX];
        snprintf(code, sizeof code, "%" PRId32, a->exit_code);
        int64_t wait_ms = hodei_retry_backoff_ms(v->attempt);
        if (a->retry_wait_min_ms > wait_ms)
            wait_ms = a->retry_wait_min_ms;
        snprintf(backoff, sizeof backoff, "%" PRId64, wait_ms);
        const char *params[END_PARAMS] = {
            a->job_id, hodei_job_state_name(next),   code,         a->error ? a->error : "",
            backoff,   how->free_worker ? "t" : "f", a->worker_id, hodei_outbox_rows_param(&rows)};
        PGresult *res = NULL;
        st = hodei_db_exec(conn, end_sql, END_PARAMS, params, &res, err);
        if (st == HODEI_OK) {
            out->released = hodei_db_get_i64(res, 0, 0) > 0;
            hodei_strlcpy(out->worker_provider, v->worker_provider, sizeof out->worker_provider);
        }
        PQclear(res);
    }
    hodei_outbox_rows_fini(&rows);
    return st;
}

static hodei_status end_general(PGconn *conn, const store_end_how *how, store_end_out *out,
                                hodei_err *err)
{
    const hodei_attempt *a = how->a;
    hodei_job_view v;
    hodei_status st = hodei_store_job_read(conn, a->job_id, true, &v, err);
    if (st == HODEI_OK)
        st = store_check_owner(a->job_id, &v, a->worker_id, a->epoch, err);
    if (st != HODEI_OK)
        return st;
    if (how->implies_started && v.state == HODEI__V1__JOB_STATE__JOB_STATE_ASSIGNED)
        v.state = HODEI__V1__JOB_STATE__JOB_STATE_RUNNING; /* its ack was lost */
    bool retry = (a->state == HODEI__V1__JOB_STATE__JOB_STATE_FAILED ||
                  a->state == HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT) &&
                 v.attempt < v.max_attempts && !v.cancel_requested;
    Hodei__V1__JobState next = retry ? HODEI__V1__JOB_STATE__JOB_STATE_PENDING : a->state;
    if ((st = hodei_job_transition_check(v.state, next, err)) != HODEI_OK)
        return st;
    /* A worker that is draining or already gone keeps its state. */
    st = end_write(conn, how, &v, next, out, err);
    if (st == HODEI_OK)
        out->final = next;
    return st;
}

/* --------------------------------------------------------------- fast way */

/* The events after the end: JobFinished, then with a pick and no job to
 * hand, the worker's WorkerReady. The picked job's JobAssigned goes to
 * `assigned`. */
static hodei_status end_fast_events(const store_end_how *how, hodei_outbox_rows *rows,
                                    hodei_outbox_rows *assigned, hodei_err *err)
{
    const hodei_attempt *a = how->a;
    const hodei_handoff_pick *p = how->pick;
    hodei_status st = hodei_event_job_finished(HODEI_OUTBOX_ADD(rows), a->job_id,
                                               HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED,
                                               a->exit_code, a->worker_id, a->epoch, err);
    if (st != HODEI_OK || !p)
        return st;
    if (p->job_id[0])
        return hodei_event_job_assigned(HODEI_OUTBOX_ADD(assigned), p->job_id, a->worker_id,
                                        p->epoch + 1, err);
    return hodei_event_worker_ready(HODEI_OUTBOX_ADD(rows), a->worker_id, p->provider, err);
}

/* Reads a fast statement's answer; *done when the attempt ended. */
static hodei_status end_fast_answer(const store_end_how *how, PGresult *res, int base,
                                    store_end_out *out, bool *done, hodei_err *err)
{
    bool next = how->pick && how->pick->job_id[0];
    if (PQntuples(res) != 1 || hodei_db_get_i64(res, 0, base + FAST_ENDED) != 1)
        return HODEI_OK;
    *done = true;
    out->final = HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
    bool moved = hodei_db_get_i64(res, 0, base + FAST_MOVED) > 0;
    if (next && !moved) /* cannot be: the pick locked both rows */
        return hodei_err_set(err, HODEI_ERR_INTERNAL,
                             "hand-off of job %s to worker %s did not happen", how->pick->job_id,
                             how->a->worker_id);
    out->released = moved && !next;
    out->worker_done = how->pick != NULL;
    hodei_strlcpy(out->worker_provider, hodei_db_get_str(res, 0, base + FAST_PROVIDER),
                  sizeof out->worker_provider);
    return HODEI_OK;
}

static hodei_status end_fast(PGconn *conn, const store_end_how *how, store_end_out *out, bool *done,
                             hodei_err *err)
{
    const hodei_attempt *a = how->a;
    bool next = how->pick && how->pick->job_id[0];
    hodei_outbox_rows rows, assigned;
    *done = false;
    hodei_outbox_rows_init(&rows, HODEI_OUTBOX_ROWS_TEXT_MAX);
    hodei_outbox_rows_init(&assigned, HODEI_OUTBOX_ROWS_TEXT_MAX);
    hodei_status st = end_fast_events(how, &rows, &assigned, err);
    if (st == HODEI_OK) {
        char epoch[STORE_INT_TEXT_MAX], code[STORE_INT_TEXT_MAX];
        char next_epoch[STORE_INT_TEXT_MAX], tau[STORE_INT_TEXT_MAX];
        snprintf(epoch, sizeof epoch, "%" PRId64, a->epoch);
        snprintf(code, sizeof code, "%" PRId32, a->exit_code);
        snprintf(next_epoch, sizeof next_epoch, "%" PRId64, next ? how->pick->epoch : 0);
        snprintf(tau, sizeof tau, "%g", HODEI_SCHED_LOAD_TAU_S);
        const char *params[END_FAST_NEXT_PARAMS] = {a->job_id,
                                                    a->worker_id,
                                                    epoch,
                                                    code,
                                                    a->error ? a->error : "",
                                                    how->implies_started ? "t" : "f",
                                                    how->free_worker ? "t" : "f",
                                                    hodei_outbox_rows_param(&rows),
                                                    next ? how->pick->job_id : NULL,
                                                    next_epoch,
                                                    tau,
                                                    hodei_outbox_rows_param(&assigned)};
        PGresult *res = NULL;
        st = next ? hodei_db_exec(conn, end_fast_next_sql, END_FAST_NEXT_PARAMS, params, &res, err)
                  : hodei_db_exec(conn, end_fast_sql, END_FAST_PARAMS, params, &res, err);
        if (st == HODEI_OK)
            st = end_fast_answer(how, res, next ? HODEI_RUN_COLS : 0, out, done, err);
        if (st == HODEI_OK && *done && next) {
            out->run = res; /* the handed job's row */
            res = NULL;
        }
        PQclear(res);
    }
    hodei_outbox_rows_fini(&rows);
    hodei_outbox_rows_fini(&assigned);
    return st;
}

/* -------------------------------------------------------------- the entry */

static bool end_state_valid(Hodei__V1__JobState s)
{
    return s == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED ||
           s == HODEI__V1__JOB_STATE__JOB_STATE_FAILED ||
           s == HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT ||
           s == HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED;
}

hodei_status store_attempt_end(PGconn *conn, const store_end_how *how, store_end_out *out,
                               hodei_err *err)
{
    memset(out, 0, sizeof *out);
    if (!end_state_valid(how->a->state))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "state: an attempt ends SUCCEEDED, FAILED,"
                             " TIMEOUT or CANCELLED, not %s",
                             hodei_job_state_name(how->a->state));
    /* The fast way writes a WorkerReady only with a pick (which read the
     * worker's provider); a caller that wants one written here otherwise
     * goes the general way. */
    store_end_how fast = *how;
    if (fast.pick && !(fast.pick->ok && fast.free_worker))
        fast.pick = NULL;
    if (fast.a->state == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED &&
        (fast.pick || !fast.ready_event || !fast.free_worker)) {
        bool done = false;
        hodei_status st = end_fast(conn, &fast, out, &done, err);
        if (st != HODEI_OK || done)
            return st;
    }
    return end_general(conn, how, out, err);
}

static hodei_status end_plain(PGconn *conn, const store_end_how *how, Hodei__V1__JobState *final,
                              hodei_err *err)
{
    store_end_out out;
    hodei_status st = store_attempt_end(conn, how, &out, err);
    PQclear(out.run);
    if (st == HODEI_OK && final)
        *final = out.final;
    return st;
}

hodei_status hodei_store_attempt_end(PGconn *conn, const hodei_attempt *a,
                                     Hodei__V1__JobState *final, hodei_err *err)
{
    const store_end_how how = {.a = a};
    return end_plain(conn, &how, final, err);
}

hodei_status hodei_store_attempt_end_free(PGconn *conn, const hodei_attempt *a,
                                          Hodei__V1__JobState *final, hodei_err *err)
{
    const store_end_how how = {.a = a, .free_worker = true, .ready_event = true};
    return end_plain(conn, &how, final, err);
}

hodei_status hodei_store_attempt_result(PGconn *conn, const hodei_attempt *a,
                                        Hodei__V1__JobState *final, hodei_err *err)
{
    const store_end_how how = {
        .a = a, .free_worker = true, .ready_event = true, .implies_started = true};
    return end_plain(conn, &how, final, err);
}
