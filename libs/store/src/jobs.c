/* Job transitions shared by the services. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/job_state.h"
#include "hodei/names.h"
#include "hodei/sched_strategy.h"
#include "hodei/store.h"
#include "hodei/util.h"

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
    if (!hodei_job_state_parse(hodei_db_get_str(res, 0, 0), &v->state))
        v->state = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    hodei_strlcpy(v->worker_id, hodei_db_get_str(res, 0, 1), sizeof v->worker_id);
    v->epoch = hodei_db_get_i64(res, 0, 2);
    v->attempt = (int32_t)hodei_db_get_i64(res, 0, 3);
    v->max_attempts = (int32_t)hodei_db_get_i64(res, 0, 4);
    v->cancel_requested = hodei_db_get_str(res, 0, 5)[0] == 't';
    v->priority = (int32_t)hodei_db_get_i64(res, 0, 6);
    hodei_strlcpy(v->provider, hodei_db_get_str(res, 0, 7), sizeof v->provider);
    hodei_strlcpy(v->worker_provider, hodei_db_get_str(res, 0, 8), sizeof v->worker_provider);
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
        st = job_check_owner(job_id, &v, worker_id, epoch, err);
    if (st != HODEI_OK || v.state == HODEI__V1__JOB_STATE__JOB_STATE_RUNNING)
        return st;
    st = hodei_job_transition_check(v.state, HODEI__V1__JOB_STATE__JOB_STATE_RUNNING, err);
    if (st != HODEI_OK)
        return st;
    return hodei_err_set(err, HODEI_ERR_PRECONDITION, "job %s changed while starting", job_id);
}

/* One attempt end in one statement: the job ($1 id, $2 next state: PENDING
 * re-queues it after $5 ms, anything else ends it with exit code $3; $4
 * error), the worker's release ($6 free it?, $7 worker id; a worker no
 * longer BUSY keeps its state) and the events ($8..$13 as
 * hodei_outbox_rows_params: the job's event always, the worker's, second,
 * only when the worker was released). */
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
    " UPDATE workers SET state = 'READY', updated_at = now(), current_job_id = NULL,"
    "  idle_since = now() WHERE $6::bool AND id = $7::uuid AND state = 'BUSY'"
    "  RETURNING id"
    ") INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id, event_type, payload)"
    " SELECT e.id, e.subject, e.agg_type, e.agg_id, e.type, decode(e.payload, 'hex')"
    "  FROM unnest($8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])"
    "   WITH ORDINALITY AS e(id, subject, agg_type, agg_id, type, payload, n)"
    "  WHERE e.n = 1 OR EXISTS (SELECT 1 FROM w)"
    " RETURNING (SELECT count(*) FROM w)";

/* The job's event: JobQueued on a retry, JobFinished otherwise. */
static void end_job_event(const hodei_attempt_end *end, const hodei_job_view *v,
                          Hodei__V1__JobState next, Hodei__V1__Event *ev, Hodei__V1__JobQueued *q,
                          Hodei__V1__JobFinished *fin)
{
    if (next == HODEI__V1__JOB_STATE__JOB_STATE_PENDING) {
        q->job_id = (char *)end->job_id;
        q->priority = v->priority;
        q->provider = (char *)v->provider;
        ev->body_case = HODEI__V1__EVENT__BODY_JOB_QUEUED;
        ev->job_queued = q;
        return;
    }
    fin->job_id = (char *)end->job_id;
    fin->state = next;
    fin->exit_code = end->exit_code;
    fin->worker_id = (char *)end->worker_id;
    fin->epoch = end->epoch;
    ev->body_case = HODEI__V1__EVENT__BODY_JOB_FINISHED;
    ev->job_finished = fin;
}

/* Adds the WorkerReady row of a worker an attempt end freed. */
static hodei_status rows_add_worker_ready(hodei_outbox_rows *rows, const char *worker_id,
                                          const char *provider, hodei_err *err)
{
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__WorkerReady ready = HODEI__V1__WORKER_READY__INIT;
    ready.worker_id = (char *)worker_id;
    ready.provider = (char *)provider;
    ev.body_case = HODEI__V1__EVENT__BODY_WORKER_READY;
    ev.worker_ready = &ready;
    return hodei_outbox_rows_add(rows, &ev, HODEI_SUBJ_WORKER_READY, "worker", worker_id,
                                 "WorkerReady", err);
}

static hodei_status end_write(PGconn *conn, const hodei_attempt_end *end, const hodei_job_view *v,
                              Hodei__V1__JobState next, hodei_err *err)
{
    bool retry = next == HODEI__V1__JOB_STATE__JOB_STATE_PENDING;
    Hodei__V1__Event job_ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobQueued q = HODEI__V1__JOB_QUEUED__INIT;
    Hodei__V1__JobFinished fin = HODEI__V1__JOB_FINISHED__INIT;
    end_job_event(end, v, next, &job_ev, &q, &fin);

    hodei_outbox_rows rows;
    hodei_outbox_rows_init(&rows);
    hodei_status st = hodei_outbox_rows_add(
        &rows, &job_ev, retry ? HODEI_SUBJ_JOB_QUEUED : HODEI_SUBJ_JOB_FINISHED, "job", end->job_id,
        retry ? "JobQueued" : "JobFinished", err);
    if (st == HODEI_OK && !end->no_ready_event)
        st = rows_add_worker_ready(&rows, end->worker_id, v->worker_provider, err);
    if (st == HODEI_OK) {
        char code[16], backoff[24];
        snprintf(code, sizeof code, "%" PRId32, end->exit_code);
        snprintf(backoff, sizeof backoff, "%" PRId64, hodei_retry_backoff_ms(v->attempt));
        const char *params[13] = {
            end->job_id, hodei_job_state_name(next),   code,          end->error ? end->error : "",
            backoff,     end->free_worker ? "t" : "f", end->worker_id};
        hodei_outbox_rows_params(&rows, params + 7);
        PGresult *res = NULL;
        st = hodei_db_exec(conn, end_sql, 13, params, &res, err);
        if (st == HODEI_OK && end->released)
            *end->released = PQntuples(res) > 0 && hodei_db_get_i64(res, 0, 0) > 0;
        if (st == HODEI_OK && end->worker_provider)
            hodei_strlcpy(end->worker_provider, v->worker_provider, HODEI_STORE_PROVIDER_MAX + 1);
        PQclear(res);
    }
    hodei_outbox_rows_fini(&rows);
    return st;
}

/* The common end, in one statement instead of a locked read and a write:
 * SUCCEEDED, which never retries, reported by the attempt's own worker at
 * its epoch while the job is RUNNING (or ASSIGNED, when its ack is implied).
 * $1 job, $2 worker, $3 epoch, $4 exit code, $5 error, $6 ASSIGNED counts,
 * $7 free the worker, $8..$13 the event rows: JobFinished first, then the
 * worker's event (JobAssigned or WorkerReady), written only when the
 * worker's update happened. No job ended means the general path must judge
 * (stale, already ended, unknown). */
#define END_FAST_JOB                                                                               \
    "WITH j AS ("                                                                                  \
    " UPDATE jobs SET state = 'SUCCEEDED', error = nullif($5, ''), updated_at = now(),"            \
    "  exit_code = $4::int, started_at = coalesce(started_at, now()), finished_at = now()"         \
    " WHERE id = $1 AND worker_id = $2::uuid AND epoch = $3::bigint"                               \
    "  AND (state = 'RUNNING' OR ($6::bool AND state = 'ASSIGNED'))"                               \
    " RETURNING id)"
#define END_FAST_EVENTS                                                                            \
    ", o AS ("                                                                                     \
    " INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id, event_type,"            \
    "  payload)"                                                                                   \
    " SELECT e.id, e.subject, e.agg_type, e.agg_id, e.type, decode(e.payload, 'hex')"              \
    "  FROM unnest($8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[],"                 \
    "   $13::text[]) WITH ORDINALITY AS e(id, subject, agg_type, agg_id, type, payload, k)"        \
    "  WHERE EXISTS (SELECT 1 FROM j) AND (e.k = 1 OR EXISTS (SELECT 1 FROM w)))"

/* The worker goes READY. Answers (jobs ended, workers freed, provider). */
static const char end_fast_sql[] =
    END_FAST_JOB ", w AS ("
                 " UPDATE workers SET state = 'READY', updated_at = now(), current_job_id = NULL,"
                 "  idle_since = now() WHERE $7::bool AND id = $2::uuid AND state = 'BUSY'"
                 "  AND EXISTS (SELECT 1 FROM j)"
                 "  RETURNING provider)" END_FAST_EVENTS
                 " SELECT (SELECT count(*) FROM j), (SELECT count(*) FROM w),"
                 "  coalesce((SELECT provider FROM w), '')";

/* The worker takes the picked job $14 (PENDING at epoch $15, locked by the
 * pick) at epoch + 1 ($16: the load's tau). Answers (jobs ended, workers
 * that took it, provider), then from column HODEI_STORE_NEXT_RUN_COL the
 * handed job's row as hodei_attempt_end's next_run describes it. */
static const char end_fast_next_sql[] = END_FAST_JOB ", n AS (" HODEI_STORE_HANDOFF_JOB_SQL(
    "$14::uuid", "$2::uuid", "$15::bigint",
    "$7::bool AND EXISTS (SELECT 1 FROM j)") ")"
                                             ", w AS ("
                                             " UPDATE workers SET " HODEI_STORE_WORKER_TAKES_SQL(
                                                 "$14::uuid",
                                                 "$16") " WHERE id = $2::uuid AND state = 'BUSY' "
                                                        "AND EXISTS (SELECT 1 FROM n)"
                                                        " RETURNING provider)" END_FAST_EVENTS
                                                        " SELECT (SELECT count(*) FROM j), (SELECT "
                                                        "count(*) FROM w),"
                                                        "  coalesce((SELECT provider FROM w), "
                                                        "''), " HODEI_STORE_HANDOFF_ROW_SQL(
                                                            "n") " FROM (SELECT 1) AS one LEFT "
                                                                 "JOIN n ON true";

hodei_status hodei_store_handoff_pick(PGconn *conn, const char *worker_id, const char *ending_job,
                                      hodei_handoff_pick *out, hodei_err *err)
{
    const char *params[2] = {worker_id, ending_job};
    PGresult *res = NULL;
    memset(out, 0, sizeof *out);
    hodei_status st = hodei_db_exec(conn,
                                    "SELECT coalesce(job_id::text, ''), coalesce(job_epoch, 0),"
                                    " provider FROM hodei_handoff_pick($1::uuid, $2::uuid)",
                                    2, params, &res, err);
    if (st == HODEI_OK && PQntuples(res) == 1) {
        out->ok = true;
        hodei_strlcpy(out->job_id, hodei_db_get_str(res, 0, 0), sizeof out->job_id);
        out->epoch = hodei_db_get_i64(res, 0, 1);
        hodei_strlcpy(out->provider, hodei_db_get_str(res, 0, 2), sizeof out->provider);
    }
    PQclear(res);
    return st;
}

/* The rows of the worker's event after the end: JobAssigned of the picked
 * job, or WorkerReady when the pick found none; nothing without a pick. */
static hodei_status end_fast_worker_event(const hodei_attempt_end *end, hodei_outbox_rows *rows,
                                          hodei_err *err)
{
    const hodei_handoff_pick *p = end->pick;
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    if (!p)
        return HODEI_OK;
    if (p->job_id[0]) {
        Hodei__V1__JobAssigned a = HODEI__V1__JOB_ASSIGNED__INIT;
        char subject[sizeof HODEI_SUBJ_JOB_ASSIGNED_PREFIX + HODEI_ID_BUF];
        a.job_id = (char *)p->job_id;
        a.worker_id = (char *)end->worker_id;
        a.epoch = p->epoch + 1;
        ev.body_case = HODEI__V1__EVENT__BODY_JOB_ASSIGNED;
        ev.job_assigned = &a;
        snprintf(subject, sizeof subject, "%s%s", HODEI_SUBJ_JOB_ASSIGNED_PREFIX, end->worker_id);
        return hodei_outbox_rows_add(rows, &ev, subject, "job", p->job_id, "JobAssigned", err);
    }
    return rows_add_worker_ready(rows, end->worker_id, p->provider, err);
}

/* Reads the fast end's answer; *done when the attempt ended. */
static hodei_status end_fast_answer(const hodei_attempt_end *end, PGresult *res, bool *done,
                                    hodei_err *err)
{
    bool next = end->pick && end->pick->job_id[0];
    if (PQntuples(res) != 1 || hodei_db_get_i64(res, 0, 0) != 1)
        return HODEI_OK;
    *done = true;
    bool worker_moved = hodei_db_get_i64(res, 0, 1) > 0;
    if (next && !worker_moved) /* cannot be: the pick locked both rows */
        return hodei_err_set(err, HODEI_ERR_INTERNAL,
                             "hand-off of job %s to worker %s did not happen", end->pick->job_id,
                             end->worker_id);
    if (end->released)
        *end->released = worker_moved && !next;
    if (end->worker_provider)
        hodei_strlcpy(end->worker_provider, hodei_db_get_str(res, 0, 2),
                      HODEI_STORE_PROVIDER_MAX + 1);
    if (end->picked)
        *end->picked = end->pick != NULL;
    if (next && end->next_run)
        *end->next_run = res;
    return HODEI_OK;
}

static hodei_status end_fast(PGconn *conn, const hodei_attempt_end *end, bool *done, hodei_err *err)
{
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobFinished fin = HODEI__V1__JOB_FINISHED__INIT;
    fin.job_id = (char *)end->job_id;
    fin.state = HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
    fin.exit_code = end->exit_code;
    fin.worker_id = (char *)end->worker_id;
    fin.epoch = end->epoch;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_FINISHED;
    ev.job_finished = &fin;
    *done = false;
    hodei_outbox_rows rows;
    hodei_outbox_rows_init(&rows);
    hodei_status st = hodei_outbox_rows_add(&rows, &ev, HODEI_SUBJ_JOB_FINISHED, "job", end->job_id,
                                            "JobFinished", err);
    if (st == HODEI_OK)
        st = end_fast_worker_event(end, &rows, err);
    if (st == HODEI_OK) {
        bool next = end->pick && end->pick->job_id[0];
        char epoch[24], code[16], next_epoch[24], tau[32];
        snprintf(epoch, sizeof epoch, "%" PRId64, end->epoch);
        snprintf(code, sizeof code, "%" PRId32, end->exit_code);
        snprintf(next_epoch, sizeof next_epoch, "%" PRId64, next ? end->pick->epoch : 0);
        snprintf(tau, sizeof tau, "%g", HODEI_SCHED_LOAD_TAU_S);
        const char *params[16] = {end->job_id,
                                  end->worker_id,
                                  epoch,
                                  code,
                                  end->error ? end->error : "",
                                  end->implies_started ? "t" : "f",
                                  end->free_worker ? "t" : "f"};
        hodei_outbox_rows_params(&rows, params + 7);
        params[13] = next ? end->pick->job_id : NULL;
        params[14] = next_epoch;
        params[15] = tau;
        PGresult *res = NULL;
        st = next ? hodei_db_exec(conn, end_fast_next_sql, 16, params, &res, err)
                  : hodei_db_exec(conn, end_fast_sql, 13, params, &res, err);
        if (st == HODEI_OK)
            st = end_fast_answer(end, res, done, err);
        if (!(end->next_run && *end->next_run == res))
            PQclear(res);
    }
    hodei_outbox_rows_fini(&rows);
    return st;
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
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "state: an attempt ends SUCCEEDED, FAILED,"
                             " TIMEOUT or CANCELLED, not %s",
                             hodei_job_state_name(end->state));
    /* The fast path writes a WorkerReady only with a pick (which read the
     * worker's provider); otherwise only for callers that write it
     * themselves. */
    hodei_attempt_end fast = *end;
    if (fast.pick && !(fast.pick->ok && fast.free_worker))
        fast.pick = NULL;
    if (fast.state == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED &&
        (fast.pick || fast.no_ready_event || !fast.free_worker)) {
        bool done = false;
        hodei_status st = end_fast(conn, &fast, &done, err);
        if (st != HODEI_OK || done) {
            if (st == HODEI_OK && final_out)
                *final_out = HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
            return st;
        }
    }
    hodei_status st = hodei_store_job_read(conn, end->job_id, true, &v, err);
    if (st == HODEI_OK)
        st = job_check_owner(end->job_id, &v, end->worker_id, end->epoch, err);
    if (st != HODEI_OK)
        return st;
    if (end->implies_started && v.state == HODEI__V1__JOB_STATE__JOB_STATE_ASSIGNED)
        v.state = HODEI__V1__JOB_STATE__JOB_STATE_RUNNING; /* its ack was lost */
    bool retry = (end->state == HODEI__V1__JOB_STATE__JOB_STATE_FAILED ||
                  end->state == HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT) &&
                 v.attempt < v.max_attempts && !v.cancel_requested;
    Hodei__V1__JobState next = retry ? HODEI__V1__JOB_STATE__JOB_STATE_PENDING : end->state;
    if ((st = hodei_job_transition_check(v.state, next, err)) != HODEI_OK)
        return st;
    /* A worker that is draining or already gone keeps its state. */
    st = end_write(conn, end, &v, next, err);
    if (st == HODEI_OK && final_out)
        *final_out = next;
    return st;
}
