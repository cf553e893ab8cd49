/* A job's artifacts on the worker (libs/artifact): a private workspace made
 * for a job that names inputs or outputs, the inputs staged into it before
 * the job starts, the outputs collected after it ends, and the workspace
 * removed. What happens is written into the job's own output as
 * LOG_STREAM_SYSTEM lines, numbered in the attempt's one sequence: staging
 * lines first, the job's lines after them (libs/exec continues the count),
 * collection lines last. The whole attempt, staging and collection
 * included, runs inside the job's timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "hodei/job_spec.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

typedef struct {
    agent *a;
    agent_job *job;
} art_hook_ctx;

void agent_system_line(agent *a, agent_job *job, const char *text)
{
    Hodei__V1__LogLine line = HODEI__V1__LOG_LINE__INIT;
    Hodei__V1__Timestamp ts = HODEI__V1__TIMESTAMP__INIT;
    Hodei__V1__LogLine *lines[1] = {&line};
    int64_t us = hodei_wall_us();
    ts.seconds = us / 1000000;
    ts.nanos = (int32_t)(us % 1000000) * 1000;
    line.sequence = ++job->seq;
    line.stream = HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM;
    line.time = &ts;
    line.data.data = (uint8_t *)text;
    line.data.len = strlen(text);
    agent_send_log(a, job, lines, 1);
}

static void art_on_note(void *user, const char *line)
{
    art_hook_ctx *c = user;
    HLOG_DEBUG("job=%s artifact: %s", c->job->job_id, line);
    agent_system_line(c->a, c->job, line);
}

static bool art_on_cancelled(void *user)
{
    art_hook_ctx *c = user;
    return hodei_exec_cancelled(c->job->handle);
}

static const char *art_on_secret(void *user, const char *name)
{
    art_hook_ctx *c = user;
    const agent_secrets *s = &c->job->artifact_secrets;
    for (size_t i = 0; i < s->len; i++)
        if (strcmp(s->items[i].name, name) == 0)
            return s->items[i].value;
    return NULL;
}

static bool art_has_any(const Hodei__V1__JobSpec *spec)
{
    return spec->n_inputs > 0 || spec->n_outputs > 0;
}

static hodei_status art_job_open(agent *a, agent_job *job, agent_artifacts *art, art_hook_ctx *ctx,
                                 hodei_artifact_job **out, hodei_err *err)
{
    hodei_artifact_hooks hooks = {
        .note = art_on_note, .cancelled = art_on_cancelled, .secret = art_on_secret, .user = ctx};
    return hodei_artifact_job_create(&a->art_conf, art->workspace, art->deadline_ms, &hooks, out,
                                     err);
}

static void art_result_fail(hodei_exec_result *res, hodei_status st, const char *msg)
{
    memset(res, 0, sizeof *res);
    res->state = st == HODEI_ERR_TIMEOUT     ? HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT
                 : st == HODEI_ERR_CANCELLED ? HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED
                                             : HODEI__V1__JOB_STATE__JOB_STATE_FAILED;
    res->exit_code = HODEI_EXEC_EXIT_NONE;
    res->finished_us = hodei_wall_us();
    hodei_strlcpy(res->error, msg, sizeof res->error);
}

hodei_status agent_artifacts_stage(agent *a, agent_job *job, agent_artifacts *art,
                                   hodei_exec_result *res)
{
    const Hodei__V1__JobSpec *spec = job->msg->spec;
    hodei_err err;
    art->workspace[0] = '\0';
    art->deadline_ms = hodei_mono_ms() + hodei_job_spec_timeout_ms(spec);
    if (!art_has_any(spec))
        return HODEI_OK;
    hodei_status st = hodei_artifact_workspace_create(a->work_root, job->job_id, job->epoch,
                                                      art->workspace, sizeof art->workspace, &err);
    if (st != HODEI_OK) {
        HLOG_ERROR("job=%s: %s", job->job_id, err.msg);
        art->workspace[0] = '\0';
        art_result_fail(res, st, err.msg);
        return st;
    }
    if (spec->n_inputs > 0) {
        art_hook_ctx ctx = {.a = a, .job = job};
        hodei_artifact_job *aj = NULL;
        st = art_job_open(a, job, art, &ctx, &aj, &err);
        if (st == HODEI_OK)
            st = hodei_artifact_stage(aj, spec->inputs, spec->n_inputs, &err);
        hodei_artifact_job_destroy(aj);
    }
    /* The job runs as worker.job_user: its workspace (and the inputs in it)
     * become that user's, or it could write nothing there. */
    if (st == HODEI_OK && art->user)
        st = hodei_artifact_workspace_hand(a->work_root, art->workspace, art->user->uid,
                                           art->user->gid, &err);
    if (st != HODEI_OK) {
        HLOG_WARN("job=%s epoch=%lld: inputs not staged: %s", job->job_id, (long long)job->epoch,
                  err.msg);
        art_result_fail(res, st, err.msg);
        hodei_artifact_workspace_remove(art->workspace);
        art->workspace[0] = '\0';
    }
    return st;
}

void agent_artifacts_collect(agent *a, agent_job *job, agent_artifacts *art,
                             const hodei_exec_result *res, agent_records *out)
{
    const Hodei__V1__JobSpec *spec = job->msg->spec;
    out->items = NULL;
    out->len = 0;
    if (!art->workspace[0])
        return;
    if (job->seq < res->lines)
        job->seq = res->lines;
    if (spec->n_outputs > 0) {
        art_hook_ctx ctx = {.a = a, .job = job};
        hodei_artifact_job *aj = NULL;
        hodei_err err;
        if (art_job_open(a, job, art, &ctx, &aj, &err) == HODEI_OK) {
            hodei_artifact_records recs;
            bool ok = res->state == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
            hodei_artifact_collect(aj, spec->outputs, spec->n_outputs, ok, job->epoch, &recs);
            out->items = recs.items;
            out->len = recs.len;
            hodei_artifact_job_destroy(aj);
        } else {
            HLOG_ERROR("job=%s: outputs not collected: %s", job->job_id, err.msg);
            agent_system_line(a, job, err.msg);
        }
    }
    hodei_artifact_workspace_remove(art->workspace);
    art->workspace[0] = '\0';
}

void agent_records_free(agent_records *r)
{
    hodei_artifact_records recs = {.items = r->items, .len = r->len};
    hodei_artifact_records_free(&recs);
    r->items = NULL;
    r->len = 0;
}
