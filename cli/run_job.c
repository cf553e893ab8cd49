/* `hodei run`: queue a job, show what it waits for, follow its output, and
 * exit with its exit code. Ctrl-C cancels the job and follows it to its end;
 * a second Ctrl-C exits at once. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hodei/job_state.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "output.h"
#include "run_int.h"

/* GetJobStatus while the job waits: first after RUN_WAIT_POLL_FIRST_MS,
 * the wait doubling up to RUN_WAIT_POLL_MS, so a job that starts at once is
 * seen at once and a job that waits long costs two calls a second. */
#define RUN_WAIT_POLL_FIRST_MS 5
#define RUN_WAIT_POLL_MS 500
/* The queue position and the workers (two more calls) are looked up once
 * the job has waited RUN_WAIT_LOOK_FIRST_MS, then every RUN_WAIT_LOOK_MS. */
#define RUN_WAIT_LOOK_FIRST_MS 250
#define RUN_WAIT_LOOK_MS 2000
#define RUN_SLEEP_STEP_MS 50 /* a sleep notices Ctrl-C this fast */
#define RUN_CANCEL_REASON "interrupted by the user (Ctrl-C in hodei run)"

static volatile sig_atomic_t run_job_sigints;

static void run_job_on_sigint(int sig)
{
    static const char msg[] = "\nhodei: interrupted again: exiting without waiting for the job "
                              "to stop\n";
    if (run_job_sigints) {
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
            /* nothing more can be done */
        }
        _exit(CLI_EXIT_INTERRUPTED);
    }
    run_job_sigints = 1;
}

typedef struct {
    const run_ctx *c;
    char job_id[RUN_JOB_ID_MAX];
    cli_status_line status;
    cli_log_sink sink;
    bool cancel_sent;
    bool no_workers_rpc;                   /* GetAvailableWorkers refused: stop asking */
    bool no_position;                      /* ListJobs refused: stop asking */
    cli_wait_view view;                    /* what the status line shows */
    Hodei__V1__GetJobStatusResponse *last; /* the latest status; owned */
} run_job;

/* ------------------------------------------------------------ Ctrl-C */

static void run_job_cancel(run_job *j)
{
    if (!run_job_sigints || j->cancel_sent || !j->job_id[0])
        return;
    Hodei__V1__CancelJobRequest req = HODEI__V1__CANCEL_JOB_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    run_outcome o;
    req.job_id = j->job_id;
    req.reason = (char *)RUN_CANCEL_REASON;
    cli_status_line_clear(&j->status);
    if (run_unary(j->c, RUN_JOB_SERVICE "CancelJob", &req.base,
                  &hodei__v1__cancel_job_response__descriptor, &resp, &o)) {
        protobuf_c_message_free_unpacked(resp, NULL);
        fprintf(j->c->err, "hodei: cancelling job %s (Ctrl-C again to exit at once)\n", j->job_id);
    } else if (run_transient(&o)) {
        return; /* the next tick tries again */
    } else if (o.res.code != HODEI_GRPC_FAILED_PRECONDITION) {
        run_report(j->c, &o); /* FAILED_PRECONDITION: it had already ended */
    }
    j->cancel_sent = true;
    j->view.cancelling = true;
}

static void run_job_tick(void *ctx)
{
    run_job_cancel(ctx);
}

static void run_job_sleep(run_job *j, int64_t ms)
{
    for (int64_t now = hodei_mono_ms(), until = now + ms; now < until; now = hodei_mono_ms()) {
        hodei_sleep_ms(until - now < RUN_SLEEP_STEP_MS ? until - now : RUN_SLEEP_STEP_MS);
        run_job_cancel(j);
    }
}

/* ------------------------------------------------------------ queue */

/* QueueJob, or RunTemplate for `hodei templates run` (same job id field). */
static int run_job_queue(run_job *j)
{
    ProtobufCMessage *msg = NULL;
    run_outcome o;
    const cli_args *a = j->c->a;
    bool from_template = a->command == CLI_CMD_TEMPLATES;
    if (!run_unary(j->c,
                   from_template ? RUN_TEMPLATE_SERVICE "RunTemplate" : RUN_JOB_SERVICE "QueueJob",
                   from_template ? &a->template_run.base : &a->queue.base,
                   from_template ? &hodei__v1__run_template_response__descriptor
                                 : &hodei__v1__queue_job_response__descriptor,
                   &msg, &o))
        return run_report(j->c, &o);
    Hodei__V1__QueueJobResponse queued = HODEI__V1__QUEUE_JOB_RESPONSE__INIT;
    const Hodei__V1__QueueJobResponse *resp = (const Hodei__V1__QueueJobResponse *)msg;
    if (from_template) {
        queued.job_id = ((const Hodei__V1__RunTemplateResponse *)msg)->job_id;
        resp = &queued;
    }
    bool fits = hodei_strlcpy(j->job_id, resp->job_id, sizeof j->job_id) && resp->job_id[0];
    if (fits && resp->duplicate)
        fprintf(j->c->err, "hodei: duplicate of an earlier submit: following job %s\n", j->job_id);
    else if (fits && !j->c->a->quiet && j->c->a->output == CLI_OUTPUT_HUMAN)
        fprintf(j->c->err, "hodei: job %s\n", j->job_id);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (!fits) {
        fprintf(j->c->err, "hodei: INTERNAL: QueueJob answered an unusable job id\n");
        return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ waiting */

/* The job's place among the pending jobs (one ListJobs page). */
static void run_job_position(run_job *j, const Hodei__V1__Job *me)
{
    Hodei__V1__ListJobsRequest req = HODEI__V1__LIST_JOBS_REQUEST__INIT;
    Hodei__V1__JobState pending = HODEI__V1__JOB_STATE__JOB_STATE_PENDING;
    ProtobufCMessage *msg = NULL;
    run_outcome o;
    req.states = &pending;
    req.n_states = 1;
    req.page_size = CLI_LIST_LIMIT_MAX;
    if (!run_unary(j->c, RUN_JOB_SERVICE "ListJobs", &req.base,
                   &hodei__v1__list_jobs_response__descriptor, &msg, &o)) {
        j->no_position = !run_transient(&o);
        return;
    }
    const Hodei__V1__ListJobsResponse *resp = (const Hodei__V1__ListJobsResponse *)msg;
    j->view.position = cli_queue_position(me, resp->jobs, resp->n_jobs);
    j->view.position_more = resp->next_page_token && resp->next_page_token[0];
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* READY and starting workers of the job's provider (any when none). */
static void run_job_workers(run_job *j, const Hodei__V1__Job *me)
{
    Hodei__V1__GetAvailableWorkersRequest req = HODEI__V1__GET_AVAILABLE_WORKERS_REQUEST__INIT;
    ProtobufCMessage *msg = NULL;
    run_outcome o;
    req.provider = me->spec && me->spec->provider ? me->spec->provider : "";
    if (!run_unary(j->c, RUN_SCHED_SERVICE "GetAvailableWorkers", &req.base,
                   &hodei__v1__get_available_workers_response__descriptor, &msg, &o)) {
        j->no_workers_rpc = !run_transient(&o);
        return;
    }
    const Hodei__V1__GetAvailableWorkersResponse *resp =
        (const Hodei__V1__GetAvailableWorkersResponse *)msg;
    j->view.ready_workers = 0;
    j->view.starting_workers = 0;
    for (size_t i = 0; i < resp->n_workers; i++) {
        Hodei__V1__WorkerState s = resp->workers[i]->state;
        j->view.ready_workers += s == HODEI__V1__WORKER_STATE__WORKER_STATE_READY;
        j->view.starting_workers += s == HODEI__V1__WORKER_STATE__WORKER_STATE_CREATING ||
                                    s == HODEI__V1__WORKER_STATE__WORKER_STATE_CONNECTING;
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}

static void run_job_show(run_job *j, const Hodei__V1__Job *job, bool look_around)
{
    j->view.state = job->state;
    j->view.attempt = job->attempt;
    j->view.worker_id = job->worker_id;
    if (look_around && job->state == HODEI__V1__JOB_STATE__JOB_STATE_PENDING) {
        if (!j->no_position)
            run_job_position(j, job);
        if (!j->no_workers_rpc)
            run_job_workers(j, job);
    }
    if (j->c->a->quiet)
        return;
    char text[CLI_STATUS_LINE_MAX * 2];
    cli_wait_text(&j->view, text, sizeof text);
    cli_status_line_set(&j->status, text);
}

/* Replaces j->last. false with *rc set when the job cannot be looked at;
 * a transient failure keeps the old status (true) until the edge has been
 * unreachable for RUN_FOLLOW_DOWN_MAX_MS. */
static bool run_job_refresh(run_job *j, int64_t *down_since_ms, int *rc)
{
    Hodei__V1__GetJobStatusResponse *resp = NULL;
    run_outcome o;
    if (run_job_status(j->c, j->job_id, &resp, &o)) {
        if (j->last)
            protobuf_c_message_free_unpacked(&j->last->base, NULL);
        j->last = resp;
        *down_since_ms = 0;
        return true;
    }
    int64_t now = hodei_mono_ms();
    if (!*down_since_ms)
        *down_since_ms = now;
    if (run_transient(&o) && now - *down_since_ms <= RUN_FOLLOW_DOWN_MAX_MS) {
        if (!j->c->a->quiet)
            cli_status_line_set(&j->status, "edge unreachable, retrying...");
        return true;
    }
    cli_status_line_clear(&j->status);
    *rc = run_report(j->c, &o);
    fprintf(j->c->err, "hodei: job %s was queued; hodei status %s shows it\n", j->job_id,
            j->job_id);
    return false;
}

/* Until the job runs or has ended. */
static int run_job_wait(run_job *j)
{
    int64_t down_since_ms = 0, poll_ms = RUN_WAIT_POLL_FIRST_MS;
    int64_t look_at_ms = hodei_mono_ms() + RUN_WAIT_LOOK_FIRST_MS;
    int rc = CLI_EXIT_OK;
    for (;;) {
        run_job_cancel(j);
        if (!run_job_refresh(j, &down_since_ms, &rc))
            return rc;
        const Hodei__V1__Job *job = j->last ? j->last->job : NULL;
        if (job && (job->state == HODEI__V1__JOB_STATE__JOB_STATE_RUNNING ||
                    hodei_job_state_terminal(job->state)))
            return CLI_EXIT_OK;
        if (job && !down_since_ms) {
            int64_t now = hodei_mono_ms();
            bool look = now >= look_at_ms;
            if (look)
                look_at_ms = now + RUN_WAIT_LOOK_MS;
            run_job_show(j, job, look);
        }
        run_job_sleep(j, poll_ms);
        poll_ms = poll_ms * 2 > RUN_WAIT_POLL_MS ? RUN_WAIT_POLL_MS : poll_ms * 2;
    }
}

/* ------------------------------------------------------------ the end */

/* The final record; waits a little for it to show the end the log stream
 * announced. */
static int run_job_final(run_job *j)
{
    int64_t down_since_ms = 0, until = hodei_mono_ms() + RUN_FOLLOW_END_GRACE_MS;
    int64_t poll_ms = RUN_WAIT_POLL_FIRST_MS;
    int rc = CLI_EXIT_OK;
    for (;;) {
        if (!run_job_refresh(j, &down_since_ms, &rc))
            return rc;
        bool done = j->last && hodei_job_state_terminal(j->last->job->state);
        if (done || (!down_since_ms && hodei_mono_ms() >= until))
            return CLI_EXIT_OK;
        run_job_sleep(j, poll_ms);
        poll_ms = poll_ms * 2 > RUN_WAIT_POLL_MS ? RUN_WAIT_POLL_MS : poll_ms * 2;
    }
}

static int run_job_end(run_job *j)
{
    const cli_args *a = j->c->a;
    int rc = run_job_final(j);
    cli_status_line_clear(&j->status);
    if (rc != CLI_EXIT_OK)
        return rc;
    const Hodei__V1__Job *job = j->last->job;
    if (!hodei_job_state_terminal(job->state))
        fprintf(j->c->err, "hodei: job %s: its log stream ended but it is still %s\n", j->job_id,
                hodei_job_state_name(job->state));
    if (a->output == CLI_OUTPUT_JSON && cli_output_status(CLI_OUTPUT_JSON, job, j->c->out))
        return CLI_EXIT_ERROR;
    cli_run_summary(job, j->c->err);
    return cli_run_exit_code(job, run_job_sigints != 0, a->no_job_exit_code);
}

/* ------------------------------------------------------------ hodei run */

static int run_job_follow(run_job *j)
{
    const Hodei__V1__Job *job = j->last->job;
    cli_status_line_clear(&j->status);
    if (hodei_job_state_terminal(job->state) && job->attempt == 0)
        return CLI_EXIT_OK; /* it never started: there is no output */
    run_follow_hooks hooks = {run_job_tick, j};
    Hodei__V1__JobState final_state = 0;
    return run_follow_logs(j->c, j->job_id, &j->sink, &hooks, &final_state);
}

static bool run_job_tty(FILE *f)
{
    const char *term = getenv("TERM");
    return isatty(fileno(f)) && !(term && strcmp(term, "dumb") == 0);
}

int run_cmd_run(const run_ctx *c)
{
    run_job j = {.c = c, .view = {.ready_workers = -1, .starting_workers = -1}};
    struct sigaction sa = {.sa_handler = run_job_on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    cli_status_line_init(&j.status, c->err, run_job_tty(c->err));
    cli_log_sink_init(&j.sink, c->out, c->err, c->a->output, &j.status);
    j.sink.raw = c->a->raw;
    run_job_sigints = 0;
    sigaction(SIGINT, &sa, &old);
    int rc = run_job_queue(&j);
    if (rc == CLI_EXIT_OK)
        rc = run_job_wait(&j);
    if (rc == CLI_EXIT_OK)
        rc = run_job_follow(&j);
    if (rc == CLI_EXIT_OK)
        rc = run_job_end(&j);
    else
        cli_status_line_clear(&j.status);
    if (j.last)
        protobuf_c_message_free_unpacked(&j.last->base, NULL);
    sigaction(SIGINT, &old, NULL);
    return rc;
}
