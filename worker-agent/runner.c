/* Jobs: RunJob admission (one job at a time, keyed on job id + epoch so a
 * repeated RunJob is acknowledged again and never started twice), the
 * runner thread that runs the job with libs/exec, CancelJob, and the table
 * of results kept until the edge acknowledges them. */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "hodei/assert.h"
#include "hodei/job_spec.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

typedef enum {
    VERDICT_ACCEPT = 0,
    VERDICT_ACK_AGAIN,
    VERDICT_IGNORE,
    VERDICT_REFUSE
} runner_verdict;

/* What the executor's callbacks need. */
typedef struct {
    agent *a;
    agent_job *job;
} runner_ctx;

/* ------------------------------------------------------------ results (mu held) */

agent_result *agent_result_find(agent *a, const char *job_id, int64_t epoch)
{
    for (size_t i = 0; i < AGENT_RESULTS_MAX; i++) {
        agent_result *r = &a->results[i];
        if (r->in_use && r->epoch == epoch && strcmp(r->job_id, job_id) == 0)
            return r;
    }
    return NULL;
}

static size_t runner_results_free(agent *a)
{
    size_t n = 0;
    for (size_t i = 0; i < AGENT_RESULTS_MAX; i++)
        n += !a->results[i].in_use;
    return n;
}

bool agent_results_pending(agent *a)
{
    return runner_results_free(a) < AGENT_RESULTS_MAX;
}

/* Records a result. after_output: it goes out after the job's queued
 * output (a mark in the data queue); else at the next chance. */
static void runner_result_add(agent *a, const char *job_id, int64_t epoch,
                              const hodei_exec_result *res, agent_records *artifacts,
                              bool after_output)
{
    agent_result *r = NULL;
    for (size_t i = 0; i < AGENT_RESULTS_MAX && !r; i++)
        if (!a->results[i].in_use)
            r = &a->results[i];
    HODEI_ASSERT(r != NULL); /* admission keeps a slot for every accepted job */
    memset(r, 0, sizeof *r);
    r->in_use = true;
    hodei_strlcpy(r->job_id, job_id, sizeof r->job_id);
    r->epoch = epoch;
    r->state = res->state;
    r->exit_code = res->exit_code;
    hodei_strlcpy(r->error, res->error, sizeof r->error);
    r->started_us = res->started_us;
    r->finished_us = res->finished_us;
    if (artifacts) { /* moved in */
        r->artifacts = *artifacts;
        artifacts->items = NULL;
        artifacts->len = 0;
    }
    agent_item *mark = after_output ? agent_item_pack(ITEM_RESULT_MARK, NULL) : NULL;
    if (mark) {
        hodei_strlcpy(mark->job_id, job_id, sizeof mark->job_id);
        mark->epoch = epoch;
        r->queued = true;
        agent_queue_push(&a->data, mark);
    } else {
        r->due = true;
    }
    pthread_cond_broadcast(&a->cv);
}

static bool runner_recent(agent *a, const char *job_id, int64_t epoch)
{
    for (size_t i = 0; i < AGENT_RECENT_MAX; i++)
        if (a->recent[i].epoch == epoch && strcmp(a->recent[i].job_id, job_id) == 0)
            return true;
    return false;
}

void agent_result_ack(agent *a, const Hodei__V1__JobResultAck *ack)
{
    if (!ack->job_id || !hodei_id_valid(ack->job_id) || ack->epoch < 1) {
        HLOG_ERROR("bad JobResultAck from the server: %s",
                   ack->epoch < 1 ? "JobResultAck.epoch: must be >= 1"
                                  : "JobResultAck.job_id: must be a UUID");
        return;
    }
    pthread_mutex_lock(&a->mu);
    agent_result *r = agent_result_find(a, ack->job_id, ack->epoch);
    if (!r) {
        HLOG_INFO("JobResultAck for no pending result job=%s epoch=%lld", ack->job_id,
                  (long long)ack->epoch);
    } else {
        if (ack->accepted)
            HLOG_INFO("result acknowledged job=%s epoch=%lld", r->job_id, (long long)r->epoch);
        else
            HLOG_WARN("result refused by the server job=%s epoch=%lld reason=\"%s\"", r->job_id,
                      (long long)r->epoch, ack->reason ? ack->reason : "");
        agent_sent_confirm(a, r->job_id, r->epoch, 0);
        agent_key *k = &a->recent[a->recent_next++ % AGENT_RECENT_MAX];
        hodei_strlcpy(k->job_id, r->job_id, sizeof k->job_id);
        k->epoch = r->epoch;
        agent_records_free(&r->artifacts);
        r->in_use = false;
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
}

void agent_result_resend_due(agent *a, int64_t now_ms)
{
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < AGENT_RESULTS_MAX; i++) {
        agent_result *r = &a->results[i];
        if (!r->in_use || r->queued || r->due || r->sends == 0 ||
            now_ms - r->last_sent_ms < a->cfg->result_resend_ms)
            continue;
        HLOG_INFO("result not acknowledged after %lld ms; sending again job=%s epoch=%lld",
                  (long long)a->cfg->result_resend_ms, r->job_id, (long long)r->epoch);
        r->due = true;
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
}

/* ------------------------------------------------------------ admission */

static hodei_status runner_ids_check(const Hodei__V1__RunJob *rj, hodei_err *err)
{
    if (!rj->job_id || !hodei_id_valid(rj->job_id))
        return hodei_err_set(err, HODEI_ERR_INVALID, "RunJob.job_id: must be a UUID");
    if (rj->epoch < 1)
        return hodei_err_set(err, HODEI_ERR_INVALID, "RunJob.epoch: must be >= 1, got %lld",
                             (long long)rj->epoch);
    return HODEI_OK;
}

/* The job itself: attempt, spec, secrets. A failure refuses the job. */
static hodei_status runner_job_make(const Hodei__V1__RunJob *rj, agent_job **out, hodei_err *err)
{
    hodei_err detail;
    if (rj->attempt < 0 || rj->attempt > AGENT_ATTEMPT_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "RunJob.attempt: must be 0..%d, got %d",
                             AGENT_ATTEMPT_MAX, (int)rj->attempt);
    if (hodei_job_spec_validate(rj->spec, &detail) != HODEI_OK)
        return hodei_err_set(err, HODEI_ERR_INVALID, "RunJob.%s", detail.msg);
    agent_job *job = calloc(1, sizeof *job);
    if (!job)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory for a job");
    hodei_status st =
        agent_secrets_parse(rj->secrets_json.data, rj->secrets_json.len, &job->secrets, err);
    if (st == HODEI_OK)
        st = agent_secrets_parse(rj->artifact_secrets_json.data, rj->artifact_secrets_json.len,
                                 &job->artifact_secrets, err);
    if (st == HODEI_OK)
        st = hodei_exec_handle_create(&job->handle, err);
    if (st != HODEI_OK) {
        agent_secrets_free(&job->secrets);
        agent_secrets_free(&job->artifact_secrets);
        free(job);
        return st;
    }
    hodei_strlcpy(job->job_id, rj->job_id, sizeof job->job_id);
    job->epoch = rj->epoch;
    job->attempt = rj->attempt;
    *out = job;
    return HODEI_OK;
}

/* Frees a RunJob, wiping its secrets first. */
static void runner_msg_free(Hodei__V1__RunJob *rj)
{
    if (!rj)
        return;
    if (rj->secrets_json.data)
        explicit_bzero(rj->secrets_json.data, rj->secrets_json.len);
    if (rj->artifact_secrets_json.data)
        explicit_bzero(rj->artifact_secrets_json.data, rj->artifact_secrets_json.len);
    protobuf_c_message_free_unpacked(&rj->base, NULL);
}

static void runner_job_free(agent_job *job)
{
    if (!job)
        return;
    agent_secrets_free(&job->secrets);
    agent_secrets_free(&job->artifact_secrets);
    hodei_exec_handle_destroy(job->handle);
    runner_msg_free(job->msg);
    free(job);
}

/* mu held. Decides what a (well-identified) RunJob gets. */
static runner_verdict runner_admit(agent *a, const Hodei__V1__RunJob *rj, agent_job **job,
                                   hodei_err *err)
{
    agent_result *r = agent_result_find(a, rj->job_id, rj->epoch);
    size_t free_slots = runner_results_free(a);
    if (a->job && a->job->epoch == rj->epoch && strcmp(a->job->job_id, rj->job_id) == 0)
        return VERDICT_ACK_AGAIN;
    if (r) {
        if (!r->queued)
            r->due = true; /* finished here: the result, not a second run */
        return VERDICT_IGNORE;
    }
    if (runner_recent(a, rj->job_id, rj->epoch))
        return VERDICT_IGNORE;
    if (free_slots <= (a->job ? 1u : 0u)) {
        hodei_err_set(err, HODEI_ERR_LIMIT, "%d results wait for acknowledgement",
                      AGENT_RESULTS_MAX);
        return VERDICT_IGNORE;
    }
    if (!a->accepting) {
        hodei_err_set(err, HODEI_ERR_PRECONDITION, "worker is draining: it takes no new jobs");
        return VERDICT_REFUSE;
    }
    if (a->job) {
        hodei_err_set(err, HODEI_ERR_PRECONDITION,
                      "worker busy: job %s (epoch %lld) is running here", a->job->job_id,
                      (long long)a->job->epoch);
        return VERDICT_REFUSE;
    }
    return runner_job_make(rj, job, err) == HODEI_OK ? VERDICT_ACCEPT : VERDICT_REFUSE;
}

static void runner_ack(agent *a, const char *job_id, int64_t epoch)
{
    Hodei__V1__RunJobAck ack = HODEI__V1__RUN_JOB_ACK__INIT;
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    ack.job_id = (char *)job_id;
    ack.epoch = epoch;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK;
    m.run_job_ack = &ack;
    agent_send_control(a, &m);
}

static void runner_refuse(agent *a, const Hodei__V1__RunJob *rj, const char *why)
{
    hodei_exec_result res = {.state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED,
                             .exit_code = HODEI_EXEC_EXIT_NONE,
                             .finished_us = hodei_wall_us()};
    hodei_strlcpy(res.error, why, sizeof res.error);
    HLOG_WARN("job refused job=%s epoch=%lld error=\"%s\"", rj->job_id, (long long)rj->epoch, why);
    runner_result_add(a, rj->job_id, rj->epoch, &res, NULL, false);
}

void agent_run_job(agent *a, Hodei__V1__RunJob *rj)
{
    hodei_err err;
    agent_job *job = NULL;
    hodei_err_clear(&err);
    if (runner_ids_check(rj, &err) != HODEI_OK) {
        HLOG_ERROR("bad RunJob from the server, ignored: %s", err.msg);
        runner_msg_free(rj);
        return;
    }
    pthread_mutex_lock(&a->mu);
    runner_verdict v = runner_admit(a, rj, &job, &err);
    if (v == VERDICT_ACCEPT) {
        HLOG_INFO("job accepted job=%s epoch=%lld attempt=%d", job->job_id, (long long)job->epoch,
                  (int)job->attempt);
        job->msg = rj;
        rj = NULL;
        a->job = job;
        runner_ack(a, job->job_id, job->epoch);
        pthread_cond_broadcast(&a->cv);
    } else if (v == VERDICT_ACK_AGAIN) {
        HLOG_INFO("RunJob repeated: acknowledged again, not started twice job=%s epoch=%lld",
                  rj->job_id, (long long)rj->epoch);
        runner_ack(a, rj->job_id, rj->epoch);
    } else if (v == VERDICT_REFUSE) {
        runner_refuse(a, rj, err.msg);
    } else {
        HLOG_INFO("RunJob for a job already finished here, not run again job=%s epoch=%lld%s%s",
                  rj->job_id, (long long)rj->epoch, err.msg[0] ? ": " : "", err.msg);
    }
    pthread_mutex_unlock(&a->mu);
    runner_msg_free(rj);
}

void agent_cancel_job(agent *a, const Hodei__V1__CancelJob *cj)
{
    if (!cj->job_id || !hodei_id_valid(cj->job_id) || cj->epoch < 1) {
        HLOG_ERROR("bad CancelJob from the server, ignored: %s",
                   cj->epoch < 1 ? "CancelJob.epoch: must be >= 1"
                                 : "CancelJob.job_id: must be a UUID");
        return;
    }
    pthread_mutex_lock(&a->mu);
    agent_job *job = a->job;
    if (job && job->epoch == cj->epoch && strcmp(job->job_id, cj->job_id) == 0) {
        HLOG_INFO("cancelling job=%s epoch=%lld reason=\"%s\"", job->job_id, (long long)job->epoch,
                  cj->reason ? cj->reason : "");
        job->cancelled = true;
        hodei_exec_cancel(job->handle);
    } else {
        HLOG_INFO("CancelJob for a job not running here job=%s epoch=%lld", cj->job_id,
                  (long long)cj->epoch);
    }
    pthread_mutex_unlock(&a->mu);
}

void agent_cancel_current(agent *a, const char *why)
{
    pthread_mutex_lock(&a->mu);
    if (a->job && !a->job->cancelled) {
        HLOG_WARN("cancelling job=%s epoch=%lld: %s", a->job->job_id, (long long)a->job->epoch,
                  why);
        a->job->cancelled = true;
        hodei_exec_cancel(a->job->handle);
    }
    pthread_mutex_unlock(&a->mu);
}

/* ------------------------------------------------------------ the runner */

static void runner_on_batch(void *user, Hodei__V1__LogLine **lines, size_t n_lines)
{
    runner_ctx *c = user;
    c->job->seq = lines[n_lines - 1]->sequence;
    agent_send_log(c->a, c->job, lines, n_lines);
}

static void runner_on_start(void *user, pid_t pid)
{
    runner_ctx *c = user;
    pthread_mutex_lock(&c->a->mu);
    c->job->pid = pid;
    pthread_mutex_unlock(&c->a->mu);
    HLOG_INFO("job running job=%s epoch=%lld pid=%d", c->job->job_id, (long long)c->job->epoch,
              (int)pid);
}

/* The attempt's time left for the job itself after staging: its timeout
 * counts from the start of staging. false when nothing is left. */
static bool runner_time_left(const agent_artifacts *art, Hodei__V1__JobSpec *spec,
                             hodei_exec_result *res)
{
    if (!art->workspace[0])
        return true;
    int64_t left = art->deadline_ms - hodei_mono_ms();
    if (left >= 1) {
        spec->timeout_ms = left;
        return true;
    }
    memset(res, 0, sizeof *res);
    res->state = HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT;
    res->exit_code = HODEI_EXEC_EXIT_NONE;
    res->finished_us = hodei_wall_us();
    hodei_strlcpy(res->error, "the job's timeout passed while its inputs were staged",
                  sizeof res->error);
    return false;
}

/* An attempt that could not start: FAILED with the reason. */
static void runner_fail(hodei_exec_result *res, const char *why)
{
    memset(res, 0, sizeof *res);
    res->state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED;
    res->exit_code = HODEI_EXEC_EXIT_NONE;
    res->finished_us = hodei_wall_us();
    hodei_strlcpy(res->error, why, sizeof res->error);
}

static void runner_exec(agent *a, agent_job *job, hodei_exec_result *res, agent_records *recs)
{
    hodei_exec_opts o;
    hodei_err err;
    agent_artifacts art;
    hodei_exec_opts_default(&o);
    o.default_timeout_ms = HODEI_JOB_DEFAULT_TIMEOUT_MS;
    o.kill_grace_ms = a->cfg->kill_grace_ms;
    o.batch_lines_max = (size_t)a->cfg->batch_lines;
    o.batch_interval_ms = a->cfg->batch_interval_ms;
    if ((size_t)a->cfg->buffer_bytes_max / 4 < o.batch_bytes_max)
        o.batch_bytes_max = (size_t)a->cfg->buffer_bytes_max / 4;
    if (a->cfg->tmp_dir && a->cfg->tmp_dir[0])
        o.tmp_dir = a->cfg->tmp_dir;
    agent_job_uid uid = {.lock_fd = -1};
    art.user = NULL;
    if (a->has_job_user) {
        if (agent_job_uid_acquire(a, &uid, &err) != HODEI_OK) {
            runner_fail(res, err.msg);
            goto out;
        }
        o.user = &uid.user;
        o.home = uid.user.home;
        art.user = &uid.user;
    }
    if (agent_artifacts_stage(a, job, &art, res) != HODEI_OK)
        goto out;
    Hodei__V1__JobSpec spec = *job->msg->spec; /* shallow: only the timeout differs */
    if (!runner_time_left(&art, &spec, res))
        goto out_collect;
    o.workspace = art.workspace[0] ? art.workspace : NULL;
    o.first_sequence = job->seq;
    o.job_cgroups = strcmp(a->cfg->job_cgroups, "off") != 0;
    runner_ctx ctx = {.a = a, .job = job};
    hodei_exec_callbacks cb = {
        .on_start = runner_on_start, .on_batch = runner_on_batch, .user = &ctx};
    int attempt = job->attempt > 0 ? job->attempt : 1;
    if (hodei_exec_run(&o, &spec, job->job_id, attempt, job->secrets.items, job->secrets.len, &cb,
                       job->handle, res, &err) != HODEI_OK)
        HLOG_ERROR("job could not run job=%s: %s", job->job_id, err.msg);
    if (art.workspace[0] && art.deadline_ms - hodei_mono_ms() < AGENT_COLLECT_MIN_MS)
        art.deadline_ms = hodei_mono_ms() + AGENT_COLLECT_MIN_MS;
out_collect:
    agent_artifacts_collect(a, job, &art, res, recs);
out:
    /* Before the result (so before any next job here) and before the uid
     * goes back: a uid released clean is not swept by its next holder. */
    agent_job_uid_release(&uid, agent_kill_leftovers(job->job_id) == 0);
    agent_secrets_free(&job->secrets);
    agent_secrets_free(&job->artifact_secrets);
}

void *agent_runner_main(void *arg)
{
    agent *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->quit && !(a->job && !a->job->started))
            pthread_cond_wait(&a->cv, &a->mu);
        agent_job *job = a->job;
        if (!job || job->started)
            break;
        job->started = true;
        pthread_mutex_unlock(&a->mu);
        hodei_exec_result res;
        agent_records recs = {0};
        runner_exec(a, job, &res, &recs);
        HLOG_INFO("job finished job=%s epoch=%lld state=%s exit_code=%d lines=%llu", job->job_id,
                  (long long)job->epoch, hodei_job_state_name(res.state), res.exit_code,
                  (unsigned long long)res.lines);
        pthread_mutex_lock(&a->mu);
        runner_result_add(a, job->job_id, job->epoch, &res, &recs, true);
        a->job = NULL;
        runner_job_free(job);
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* At exit: a job accepted but never started is dropped with the agent. */
void agent_runner_fini(agent *a)
{
    for (size_t i = 0; i < AGENT_RESULTS_MAX; i++)
        agent_records_free(&a->results[i].artifacts);
    runner_job_free(a->job);
    a->job = NULL;
}
