/* What a worker's stream turns into in PostgreSQL: re-sending its
 * assignments and cancels, RunJobAck -> RUNNING, JobResult -> the end of
 * the attempt (epoch-fenced), and attempts a restarted worker lost. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_secrets.h"
#include "hodei/assign.h"
#include "hodei/buf.h"
#include "hodei/bus.h"
#include "hodei/db.h"
#include "hodei/job_spec.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/pb.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/worker_state.h"
#include "worker_int.h"

#define JOBS_EXIT_NONE (-1)    /* exit code of an attempt that never exited */
#define JOBS_SECRETS_NONE "{}" /* a job that names no secret */
#define JOBS_LOST_WHY "worker restarted"

/* A worker's live attempts, as read here: SELECT id::text, epoch. */
enum { JOBS_LIVE_ID, JOBS_LIVE_EPOCH };

static hodei_status jobs_acquire(worker_session *s, PGconn **conn, hodei_err *err)
{
    return edge_db_acquire(worker_hub_edge(s->hub), conn, err);
}

static void jobs_release(worker_session *s, PGconn *conn, hodei_status st)
{
    edge_db_release(worker_hub_edge(s->hub), conn, st);
}

static void jobs_worker_id(worker_session *s, char out[HODEI_ID_BUF])
{
    pthread_mutex_lock(&s->mu);
    hodei_strlcpy(out, s->worker_id, HODEI_ID_BUF);
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------ re-send */

/* Secrets as JSON for names[0..n), or NULL when there are none. A secret
 * that is missing or does not decrypt (or no master key) ends the attempt
 * FAILED and returns false; a database outage returns false and the next
 * re-send tries again. The error names the secret, never a value. */
static bool resend_secrets(worker_session *s, const Hodei__V1__RunJob *run, char *const *names,
                           size_t n, char **json, size_t *len)
{
    edge *e = worker_hub_edge(s->hub);
    char worker_id[HODEI_ID_BUF];
    hodei_err err, end_err;
    *json = NULL;
    *len = 0;
    if (n == 0)
        return true;
    jobs_worker_id(s, worker_id);
    secret_use use = {
        .job_id = run->job_id, .epoch = run->epoch, .worker_id = worker_id, .refs = names, .n = n};
    hodei_status st = secret_json_load(e, &use, json, len, &err);
    if (st == HODEI_OK)
        return true;
    if (st != HODEI_ERR_NOT_FOUND && st != HODEI_ERR_PRECONDITION && st != HODEI_ERR_PERMISSION) {
        HLOG_WARN("job %s: secrets not loaded, RunJob not sent: %s", run->job_id, err.msg);
        return false;
    }
    HLOG_WARN("job %s epoch %" PRId64 ": %s; ending the attempt", run->job_id, run->epoch, err.msg);
    if (worker_jobs_fail_attempt(e, worker_hub_pub(s->hub), run->job_id, worker_id, run->epoch,
                                 err.msg, &end_err) != HODEI_OK)
        HLOG_WARN("job %s: %s", run->job_id, end_err.msg);
    return false;
}

/* The distinct secrets the job's artifacts name as credentials; they go to
 * the agent in artifact_secrets_json, never to the job's stdin. */
static size_t resend_artifact_secret_names(const Hodei__V1__JobSpec *spec, char **names)
{
    size_t n = 0;
    for (int side = 0; side < 2; side++) {
        size_t count = side ? spec->n_outputs : spec->n_inputs;
        Hodei__V1__Artifact *const *list = side ? spec->outputs : spec->inputs;
        for (size_t i = 0; i < count; i++) {
            char *c = list[i]->credentials;
            bool seen = !c || !c[0];
            for (size_t k = 0; k < n && !seen; k++)
                seen = strcmp(names[k], c) == 0;
            if (!seen)
                names[n++] = c;
        }
    }
    return n;
}

/* RunJob from a run row (hodei/assign.h, HODEI_RUN_COL_*). */
void worker_jobs_send_run(worker_session *s, const PGresult *res, int row)
{
    Hodei__V1__RunJob run = HODEI__V1__RUN_JOB__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    char *secrets = NULL, *art_secrets = NULL;
    size_t secrets_len = 0, art_secrets_len = 0;
    char *art_names[2 * HODEI_JOB_ARTIFACTS_MAX];
    run.job_id = (char *)hodei_db_get_str(res, row, HODEI_RUN_COL_JOB_ID);
    run.epoch = hodei_db_get_i64(res, row, HODEI_RUN_COL_EPOCH);
    run.attempt = (int32_t)hodei_db_get_i64(res, row, HODEI_RUN_COL_ATTEMPT);
    run.spec = (Hodei__V1__JobSpec *)hodei_pb_unpack_hex(
        &hodei__v1__job_spec__descriptor, hodei_db_get_str(res, row, HODEI_RUN_COL_SPEC_HEX));
    if (!run.spec) {
        HLOG_ERROR("job %s: stored spec does not unpack; not sent", run.job_id);
        return;
    }
    if (!resend_secrets(s, &run, run.spec->secret_refs, run.spec->n_secret_refs, &secrets,
                        &secrets_len))
        goto out_free_spec;
    if (!resend_secrets(s, &run, art_names, resend_artifact_secret_names(run.spec, art_names),
                        &art_secrets, &art_secrets_len))
        goto out_free_secrets;
    run.artifact_secrets_json.data = (uint8_t *)art_secrets;
    run.artifact_secrets_json.len = art_secrets_len;
    run.secrets_json.data = (uint8_t *)(secrets ? secrets : JOBS_SECRETS_NONE);
    run.secrets_json.len = secrets ? secrets_len : strlen(JOBS_SECRETS_NONE);
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_RUN_JOB;
    m.run_job = &run;
    int64_t due_ns = INT64_MIN;
    if (!PQgetisnull(res, row, HODEI_RUN_COL_DUE_AGE_US))
        due_ns = hodei_mono_ns() - hodei_db_get_i64(res, row, HODEI_RUN_COL_DUE_AGE_US) * 1000;
    if (worker_session_send(s, &m))
        worker_session_note_sent(s, run.job_id, run.epoch, due_ns);
    secret_json_free(art_secrets, art_secrets_len);
out_free_secrets:
    secret_json_free(secrets, secrets_len);
out_free_spec:
    hodei__v1__job_spec__free_unpacked(run.spec, NULL);
}

void worker_jobs_send_cancel(worker_session *s, const char *job_id, int64_t epoch,
                             const char *reason)
{
    Hodei__V1__CancelJob c = HODEI__V1__CANCEL_JOB__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    c.job_id = (char *)job_id;
    c.epoch = epoch;
    c.reason = (char *)reason;
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_CANCEL_JOB;
    m.cancel_job = &c;
    worker_session_send(s, &m);
}

/* A worker the supervisor is retiring (or declared lost) is told once per
 * stream to finish its job and leave. */
static void resend_drain(worker_session *s, const char *worker_state)
{
    if (!hodei_worker_state_is(worker_state,
                               HODEI_WSET_DRAINING | HODEI_WSET_TERMINATING | HODEI_WSET_LOST))
        return;
    pthread_mutex_lock(&s->mu);
    bool first = !s->drain_sent;
    s->drain_sent = true;
    pthread_mutex_unlock(&s->mu);
    if (!first)
        return;
    char reason[64];
    snprintf(reason, sizeof reason, "the worker is %s", worker_state);
    Hodei__V1__Drain d = HODEI__V1__DRAIN__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    d.reason = reason;
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_DRAIN;
    m.drain = &d;
    worker_session_send(s, &m);
}

/* RUNNING jobs a Hello did not name, one re-send interval later: unless
 * their result came meanwhile, the worker lost them. */
static void resend_check_suspects(worker_session *s, const char *worker_id)
{
    worker_job_ref sus[WORKER_SUSPECTS_MAX];
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    if (s->n_suspects > 0 && s->suspects_due_ms <= hodei_mono_ms()) {
        n = s->n_suspects;
        memcpy(sus, s->suspects, n * sizeof sus[0]);
        s->n_suspects = 0;
        s->suspects_due_ms = INT64_MAX;
    }
    pthread_mutex_unlock(&s->mu);
    edge *e = worker_hub_edge(s->hub);
    for (size_t i = 0; i < n; i++) {
        hodei_err err;
        HLOG_WARN("job %s epoch %" PRId64 ": worker %s no longer runs it; ending the attempt",
                  sus[i].job_id, sus[i].epoch, worker_id);
        if (worker_jobs_fail_attempt(e, worker_hub_pub(s->hub), sus[i].job_id, worker_id,
                                     sus[i].epoch, JOBS_LOST_WHY, &err) != HODEI_OK)
            HLOG_WARN("job %s: %s", sus[i].job_id, err.msg);
    }
}

void worker_jobs_resend(worker_session *s)
{
    char worker_id[HODEI_ID_BUF];
    jobs_worker_id(s, worker_id);
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_err err;
    hodei_status st = jobs_acquire(s, &conn, &err);
    if (st != HODEI_OK)
        goto fail;
    const char *params[2] = {worker_id, "64"};
    /* run rows (hodei/assign.h): one per live job, one with a NULL job when none */
    st = hodei_db_exec(
        conn,
        "SELECT j.id::text, j.state, j.epoch, j.attempt, j.cancel_requested,"
        " coalesce(j.cancel_reason, ''),"
        " CASE WHEN j.state = 'ASSIGNED' THEN encode(j.spec, 'hex') ELSE '' END,"
        " w.state, " HODEI_STORE_JOB_DUE_AGE_SQL(
            "j") " FROM workers w LEFT JOIN LATERAL"
                 "  (SELECT * FROM jobs WHERE worker_id = w.id"
                 "    AND state IN ('ASSIGNED', 'RUNNING') ORDER BY created_at LIMIT $2::int)"
                 "  j ON true"
                 " WHERE w.id = $1::uuid",
        2, params, &res, &err);
    jobs_release(s, conn, st);
    if (st != HODEI_OK)
        goto fail;
    if (PQntuples(res) > 0)
        resend_drain(s, hodei_db_get_str(res, 0, HODEI_RUN_COL_WORKER_STATE));
    for (int i = 0; i < PQntuples(res); i++) {
        const char *job_id = hodei_db_get_str(res, i, HODEI_RUN_COL_JOB_ID);
        Hodei__V1__JobState state;
        if (!job_id[0] ||
            !hodei_job_state_parse(hodei_db_get_str(res, i, HODEI_RUN_COL_STATE), &state))
            continue; /* the worker has no job */
        if (state == HODEI__V1__JOB_STATE__JOB_STATE_ASSIGNED)
            worker_jobs_send_run(s, res, i);
        if (hodei_db_get_str(res, i, HODEI_RUN_COL_CANCEL_REQUESTED)[0] == 't')
            worker_jobs_send_cancel(s, job_id, hodei_db_get_i64(res, i, HODEI_RUN_COL_EPOCH),
                                    hodei_db_get_str(res, i, HODEI_RUN_COL_CANCEL_REASON));
    }
    PQclear(res);
    resend_check_suspects(s, worker_id);
    return;
fail:
    HLOG_WARN("worker %s: re-send from the database failed: %s", worker_id, err.msg);
}

/* -------------------------------------------------------------------- Hello */

static bool hello_names(const Hodei__V1__Hello *hello, const char *job_id)
{
    for (size_t i = 0; i < hello->n_running_job_ids; i++) {
        if (strcasecmp(hello->running_job_ids[i], job_id) == 0)
            return true;
    }
    return false;
}

hodei_status worker_jobs_hello(worker_session *s, const Hodei__V1__Hello *hello, hodei_err *err)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_status st = jobs_acquire(s, &conn, err);
    if (st != HODEI_OK)
        return st;
    const char *params[1] = {hello->worker_id};
    st = hodei_db_exec(conn,
                       "SELECT id::text, epoch FROM jobs"
                       " WHERE worker_id = $1::uuid AND state = 'RUNNING'",
                       1, params, &res, err);
    jobs_release(s, conn, st);
    if (st != HODEI_OK)
        return st;
    edge *e = worker_hub_edge(s->hub);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *job = hodei_db_get_str(res, i, JOBS_LIVE_ID);
        int64_t epoch = hodei_db_get_i64(res, i, JOBS_LIVE_EPOCH);
        if (hello_names(hello, job)) {
            worker_session_own(s, job, epoch);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        if (s->n_suspects < WORKER_SUSPECTS_MAX) {
            worker_job_ref *r = &s->suspects[s->n_suspects++];
            hodei_strlcpy(r->job_id, job, sizeof r->job_id);
            r->epoch = epoch;
            s->suspects_due_ms = hodei_mono_ms() + e->cfg->worker_resend_ms;
        }
        pthread_mutex_unlock(&s->mu);
    }
    PQclear(res);
    return HODEI_OK;
}

/* --------------------------------------------------------------- RunJobAck */

void worker_jobs_ack(worker_session *s, const Hodei__V1__RunJobAck *ack)
{
    char worker_id[HODEI_ID_BUF];
    jobs_worker_id(s, worker_id);
    int64_t due_ns = worker_session_take_due(s, ack->job_id, ack->epoch);
    if (due_ns != INT64_MIN)
        hodei_metric_observe_micro(worker_hub_edge(s->hub)->m.dispatch_seconds,
                                   (hodei_mono_ns() - due_ns) / 1000);
    /* Grouped (worker.ack_delay): an attempt this stream was sent is its own
     * at once, so its log batches need no lookup meanwhile. */
    if (worker_hub_edge(s->hub)->cfg->worker_ack_delay_ms > 0 &&
        worker_acks_add(worker_hub_acks(s->hub), s, worker_id, ack->job_id, ack->epoch)) {
        if (worker_session_was_sent(s, ack->job_id, ack->epoch))
            worker_session_own(s, ack->job_id, ack->epoch);
        return;
    }
    PGconn *conn = NULL;
    hodei_err err;
    if (jobs_acquire(s, &conn, &err) != HODEI_OK) {
        HLOG_WARN("worker %s: ack of job %s not recorded: %s", worker_id, ack->job_id, err.msg);
        worker_session_end(s, HODEI_GRPC_UNAVAILABLE, WORKER_DB_TROUBLE);
        return;
    }
    bool recorded = worker_jobs_ack_write(conn, s, worker_id, ack->job_id, ack->epoch);
    jobs_release(s, conn, hodei_db_conn_status(conn));
    if (recorded)
        worker_session_own(s, ack->job_id, ack->epoch);
}

bool worker_jobs_ack_write(PGconn *conn, worker_session *s, const char *worker_id,
                           const char *job_id, int64_t epoch)
{
    hodei_err err;
    hodei_status st = hodei_store_job_started(conn, job_id, worker_id, epoch, &err);
    if (st == HODEI_OK)
        return true;
    if (st == HODEI_ERR_PRECONDITION || st == HODEI_ERR_NOT_FOUND || st == HODEI_ERR_INVALID) {
        HLOG_INFO("worker %s acked job %s epoch %" PRId64 " it does not hold (%s); cancelling",
                  worker_id, job_id, epoch, err.msg);
        worker_jobs_send_cancel(s, job_id, epoch, WORKER_STALE_WHY);
        return false;
    }
    HLOG_WARN("worker %s: ack of job %s not recorded: %s", worker_id, job_id, err.msg);
    worker_session_end(s, HODEI_GRPC_UNAVAILABLE, WORKER_DB_TROUBLE);
    return false;
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

void worker_jobs_result(worker_session *s, const Hodei__V1__JobResult *r)
{
    char worker_id[HODEI_ID_BUF];
    jobs_worker_id(s, worker_id);
    const hodei_attempt end = {.job_id = r->job_id,
                               .worker_id = worker_id,
                               .epoch = r->epoch,
                               .state = r->state,
                               .exit_code = r->exit_code,
                               .error = r->error ? r->error : ""};
    /* An ack still waiting to be written is implied by this result. */
    worker_acks_drop(worker_hub_acks(s->hub), worker_id, r->job_id, r->epoch);
    Hodei__V1__JobState final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    PGconn *conn = NULL;
    PGresult *next = NULL; /* the job handed to this worker, sent after the ack */
    hodei_err err;
    bool accepted = false;
    hodei_status st = jobs_acquire(s, &conn, &err);
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
        jobs_release(s, conn, hodei_db_status_broken(rel) ? rel : st);
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
        worker_stream_log_drops(s, r->job_id, r->epoch);
    if (accepted && hodei_job_state_terminal(final) &&
        log_pub_end(worker_hub_pub(s->hub), r->job_id, r->epoch, final, &err) != HODEI_OK)
        HLOG_WARN("job %s: end-of-log marker not published: %s", r->job_id, err.msg);
    if (next) {
        edge *e = worker_hub_edge(s->hub);
        hodei_metric_add(e->m.handoffs, 1);
        if (!PQgetisnull(next, 0, HODEI_RUN_COL_DUE_AGE_US))
            hodei_metric_observe_micro(e->m.queue_wait_seconds,
                                       hodei_db_get_i64(next, 0, HODEI_RUN_COL_DUE_AGE_US));
        worker_jobs_send_run(s, next, 0);
    }
    PQclear(next);
}

/* ------------------------------------------------------- ownership of logs */

bool worker_jobs_owned(worker_session *s, const char *job_id, int64_t epoch)
{
    if (worker_session_owns(s, job_id, epoch))
        return true;
    char worker_id[HODEI_ID_BUF], ep[32];
    jobs_worker_id(s, worker_id);
    snprintf(ep, sizeof ep, "%" PRId64, epoch);
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_err err;
    if (jobs_acquire(s, &conn, &err) != HODEI_OK)
        return false;
    const char *params[3] = {job_id, worker_id, ep};
    hodei_status st =
        hodei_db_exec(conn,
                      "SELECT 1 FROM jobs WHERE id = $1::uuid AND worker_id = $2::uuid"
                      " AND epoch = $3::bigint AND state IN ('ASSIGNED', 'RUNNING')",
                      3, params, &res, &err);
    jobs_release(s, conn, st);
    bool owned = st == HODEI_OK && PQntuples(res) == 1;
    PQclear(res);
    if (owned)
        worker_session_own(s, job_id, epoch);
    return owned;
}

/* --------------------------------------------------------- ending attempts */

hodei_status worker_jobs_fail_attempt(edge *e, log_pub *pub, const char *job_id,
                                      const char *worker_id, int64_t epoch, const char *why,
                                      hodei_err *err)
{
    const hodei_attempt a = {.job_id = job_id,
                             .worker_id = worker_id,
                             .epoch = epoch,
                             .state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED,
                             .exit_code = JOBS_EXIT_NONE,
                             .error = why};
    Hodei__V1__JobState final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    PGconn *conn = NULL;
    hodei_status st = edge_db_acquire(e, &conn, err);
    if (st != HODEI_OK)
        return st;
    if ((st = hodei_db_begin(conn, err)) == HODEI_OK &&
        (st = hodei_store_attempt_end_free(conn, &a, &final, err)) == HODEI_OK)
        st = hodei_db_commit(conn, err);
    else
        hodei_db_rollback(conn);
    edge_db_release(e, conn, st);
    if (st == HODEI_ERR_PRECONDITION || st == HODEI_ERR_NOT_FOUND)
        return HODEI_OK; /* moved on meanwhile (its result came, or it was re-assigned) */
    if (st == HODEI_OK && hodei_job_state_terminal(final))
        st = log_pub_end(pub, job_id, epoch, final, err);
    return st;
}

hodei_status worker_jobs_end_all(PGconn *conn, const char *worker_id, const char *why,
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
        const hodei_attempt end = {.job_id = hodei_db_get_str(res, i, JOBS_LIVE_ID),
                                   .worker_id = worker_id,
                                   .epoch = hodei_db_get_i64(res, i, JOBS_LIVE_EPOCH),
                                   .state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED,
                                   .exit_code = JOBS_EXIT_NONE,
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

void worker_jobs_publish_ends(log_pub *pub, const worker_job_end *ends, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hodei_err err;
        if (hodei_job_state_terminal(ends[i].state) &&
            log_pub_end(pub, ends[i].ref.job_id, ends[i].ref.epoch, ends[i].state, &err) !=
                HODEI_OK)
            HLOG_WARN("job %s: end-of-log marker not published: %s", ends[i].ref.job_id, err.msg);
    }
}
