/* What the edge tells a worker from PostgreSQL (worker_run.h): RunJob for
 * its ASSIGNED jobs with their secrets, CancelJob, Drain, and the check of
 * the RUNNING jobs a Hello did not name. */
#include "worker_run.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_secrets.h"
#include "hodei/assign.h"
#include "hodei/job_spec.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/pb.h"
#include "hodei/store.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/worker_state.h"
#include "worker_attempts.h"

#define RUN_SECRETS_NONE "{}" /* a job that names no secret */
#define RUN_LOST_WHY "worker restarted"

static hodei_status run_acquire(worker_session *s, PGconn **conn, hodei_err *err)
{
    return edge_db_acquire(worker_hub_edge(s->hub), conn, err);
}

static void run_release(worker_session *s, PGconn *conn, hodei_status st)
{
    edge_db_release(worker_hub_edge(s->hub), conn, st);
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
    worker_session_worker_id(s, worker_id);
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
    if (worker_attempts_fail(e, worker_hub_pub(s->hub), run->job_id, worker_id, run->epoch, err.msg,
                             &end_err) != HODEI_OK)
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

void worker_run_send(worker_session *s, const PGresult *res, int row)
{
    Hodei__V1__RunJob run = HODEI__V1__RUN_JOB__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    char *secrets = NULL, *art_secrets = NULL;
    size_t secrets_len = 0, art_secrets_len = 0;
    char *art_names[2 * HODEI_JOB_ARTIFACTS_MAX];
    run.job_id = (char *)hodei_db_get_str(res, row, HODEI_RUN_COL_JOB_ID);
    run.epoch = hodei_db_get_i64(res, row, HODEI_RUN_COL_EPOCH);
    int64_t due_ns = INT64_MIN;
    if (!PQgetisnull(res, row, HODEI_RUN_COL_DUE_AGE_US))
        due_ns = hodei_mono_ns() - hodei_db_get_i64(res, row, HODEI_RUN_COL_DUE_AGE_US) * 1000;
    /* Claimed (noted sent) before it goes: a hand-off (submit, result) and
     * a re-read kicked by the assignment's event or hint race for it, and
     * the writer of a hand-off is often the slower one on a busy machine;
     * whichever comes first sends it, the other one skips it (under load
     * one job in ten got two RunJobs, two acks and an extra query). The
     * ticker's re-send, a re-send interval later, still sends it again
     * (a worker may set a RunJob aside). A send that fails ends the stream,
     * and its notes with it. */
    if (!worker_session_claim_send(s, run.job_id, run.epoch, due_ns,
                                   worker_hub_edge(s->hub)->cfg->worker_resend_ms))
        return;
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
    run.secrets_json.data = (uint8_t *)(secrets ? secrets : RUN_SECRETS_NONE);
    run.secrets_json.len = secrets ? secrets_len : strlen(RUN_SECRETS_NONE);
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_RUN_JOB;
    m.run_job = &run;
    worker_session_send(s, &m);
    secret_json_free(art_secrets, art_secrets_len);
out_free_secrets:
    secret_json_free(secrets, secrets_len);
out_free_spec:
    hodei__v1__job_spec__free_unpacked(run.spec, NULL);
}

void worker_run_send_to(worker_hub *h, const char *worker_id, const PGresult *res, int row)
{
    worker_session *s = worker_hub_find(h, worker_id);
    if (!s)
        return;
    worker_run_send(s, res, row);
    worker_session_unref(s);
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
        if (worker_attempts_fail(e, worker_hub_pub(s->hub), sus[i].job_id, worker_id, sus[i].epoch,
                                 RUN_LOST_WHY, &err) != HODEI_OK)
            HLOG_WARN("job %s: %s", sus[i].job_id, err.msg);
    }
}

/* After the run row's columns: the job the worker still holds (BUSY, its
 * current_job_id) when that job's attempt at this worker is over: the
 * supervisor ended it (a timeout past its grace, say) and the worker is
 * still running it. Its state and epoch ('' and 0 when there is none). */
#define RESEND_HELD_SQL " coalesce(h.id::text, ''), coalesce(h.state, ''), coalesce(h.epoch, 0)"
#define RESEND_HELD_JOIN_SQL                                                                       \
    " LEFT JOIN jobs h ON w.state = 'BUSY' AND h.id = w.current_job_id"                            \
    "  AND NOT (h.state IN ('ASSIGNED', 'RUNNING') AND h.worker_id = w.id)"
enum { RESEND_COL_HELD_JOB = HODEI_RUN_COLS, RESEND_COL_HELD_STATE, RESEND_COL_HELD_EPOCH };

/* The worker holds an attempt the server ended: CancelJob, at every
 * re-send until its result frees the worker (the agent kills it once). The
 * epoch is the one this stream ran it at, else the job's (not re-assigned
 * yet, or ended at this worker). */
static void resend_cancel_held(worker_session *s, const PGresult *res)
{
    const char *job_id = hodei_db_get_str(res, 0, RESEND_COL_HELD_JOB);
    if (!job_id[0])
        return;
    int64_t epoch = worker_session_owned_epoch(s, job_id);
    if (epoch == 0)
        epoch = hodei_db_get_i64(res, 0, RESEND_COL_HELD_EPOCH);
    char why[96];
    snprintf(why, sizeof why, "the attempt was ended by the server: %s",
             hodei_db_get_str(res, 0, RESEND_COL_HELD_STATE));
    worker_session_send_cancel(s, job_id, epoch, why);
}

void worker_run_resend(worker_session *s)
{
    char worker_id[HODEI_ID_BUF];
    worker_session_worker_id(s, worker_id);
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_err err;
    hodei_status st = run_acquire(s, &conn, &err);
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
            "j") "," RESEND_HELD_SQL " FROM workers w LEFT JOIN LATERAL"
                 "  (SELECT * FROM jobs WHERE worker_id = w.id"
                 "    AND state IN ('ASSIGNED', 'RUNNING') ORDER BY created_at LIMIT $2::int)"
                 "  j ON true" RESEND_HELD_JOIN_SQL " WHERE w.id = $1::uuid",
        2, params, &res, &err);
    run_release(s, conn, st);
    if (st != HODEI_OK)
        goto fail;
    if (PQntuples(res) > 0) {
        resend_drain(s, hodei_db_get_str(res, 0, HODEI_RUN_COL_WORKER_STATE));
        resend_cancel_held(s, res);
    }
    for (int i = 0; i < PQntuples(res); i++) {
        const char *job_id = hodei_db_get_str(res, i, HODEI_RUN_COL_JOB_ID);
        Hodei__V1__JobState state;
        if (!job_id[0] ||
            !hodei_job_state_parse(hodei_db_get_str(res, i, HODEI_RUN_COL_STATE), &state))
            continue; /* the worker has no job */
        if (state == HODEI__V1__JOB_STATE__JOB_STATE_ASSIGNED)
            worker_run_send(s, res, i);
        if (hodei_db_get_str(res, i, HODEI_RUN_COL_CANCEL_REQUESTED)[0] == 't')
            worker_session_send_cancel(s, job_id, hodei_db_get_i64(res, i, HODEI_RUN_COL_EPOCH),
                                       hodei_db_get_str(res, i, HODEI_RUN_COL_CANCEL_REASON));
    }
    PQclear(res);
    resend_check_suspects(s, worker_id);
    return;
fail:
    HLOG_WARN("worker %s: re-send from the database failed: %s", worker_id, err.msg);
}

/* ------------------------------------------------------- ownership of logs */

bool worker_run_owned(worker_session *s, const char *job_id, int64_t epoch)
{
    if (worker_session_owns(s, job_id, epoch))
        return true;
    char worker_id[HODEI_ID_BUF], ep[32];
    worker_session_worker_id(s, worker_id);
    snprintf(ep, sizeof ep, "%" PRId64, epoch);
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_err err;
    if (run_acquire(s, &conn, &err) != HODEI_OK)
        return false;
    const char *params[3] = {job_id, worker_id, ep};
    hodei_status st =
        hodei_db_exec(conn,
                      "SELECT 1 FROM jobs WHERE id = $1::uuid AND worker_id = $2::uuid"
                      " AND epoch = $3::bigint AND state IN ('ASSIGNED', 'RUNNING')",
                      3, params, &res, &err);
    run_release(s, conn, st);
    bool owned = st == HODEI_OK && PQntuples(res) == 1;
    PQclear(res);
    if (owned)
        worker_session_own(s, job_id, epoch);
    return owned;
}
