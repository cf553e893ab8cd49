/* Following a job's output: SubscribeLogs until the end marker, reconnecting
 * from the last line written when the stream breaks; GetLogs for what is
 * there already. Used by `hodei logs [-f]` and `hodei run`. */
#include <inttypes.h>
#include <string.h>

#include "hodei/job_state.h"
#include "hodei/time.h"
#include "output.h"
#include "run_int.h"

/* How one stream session ended. */
typedef enum {
    FOLLOW_ENDED,  /* end marker: *final_state is set */
    FOLLOW_BROKEN, /* the stream broke or could not open: reconnect */
    FOLLOW_DRAIN,  /* the job has ended without an end marker: read the rest */
    FOLLOW_FATAL,  /* reported; rc holds the exit code */
} follow_step;

typedef struct {
    const run_ctx *c;
    const char *job_id;
    cli_log_sink *sink;
    const run_follow_hooks *hooks;
    int64_t checked_ms;    /* mono time of the last GetJobStatus */
    int64_t ended_seen_ms; /* first time the job was seen finished; 0 = not yet */
    int64_t down_since_ms; /* edge unreachable since; 0 = reachable */
    int backoff_ms;
    bool said_lost; /* "reconnecting" was printed */
    bool contact;   /* the edge answered at least once */
    int rc;
    Hodei__V1__JobState final_state;
} follow;

static void follow_tick(const follow *f)
{
    if (f->hooks && f->hooks->tick)
        f->hooks->tick(f->hooks->ctx);
}

static void follow_reachable(follow *f)
{
    f->contact = true;
    f->down_since_ms = 0;
    f->backoff_ms = RUN_FOLLOW_BACKOFF_MIN_MS;
    if (f->said_lost) {
        if (f->sink->status)
            cli_status_line_clear(f->sink->status);
        fprintf(f->c->err, "hodei: log stream back, resuming after sequence %" PRIu64 "\n",
                f->sink->last_seq);
        f->said_lost = false;
    }
}

/* Every RUN_FOLLOW_CHECK_MS: is the job over? FOLLOW_DRAIN once it has been
 * over for RUN_FOLLOW_END_GRACE_MS without an end marker. */
static follow_step follow_check_job(follow *f)
{
    int64_t now = hodei_mono_ms();
    if (f->checked_ms && now - f->checked_ms < RUN_FOLLOW_CHECK_MS)
        goto out;
    f->checked_ms = now;
    Hodei__V1__GetJobStatusResponse *resp = NULL;
    run_outcome o;
    if (!run_job_status(f->c, f->job_id, &resp, &o)) {
        if (run_transient(&o) && f->contact)
            goto out;
        f->rc = run_report(f->c, &o); /* never reached, unknown job, no access */
        return FOLLOW_FATAL;
    }
    f->contact = true;
    if (hodei_job_state_terminal(resp->job->state)) {
        f->final_state = resp->job->state;
        if (!f->ended_seen_ms)
            f->ended_seen_ms = now;
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
out:
    if (f->ended_seen_ms && now - f->ended_seen_ms >= RUN_FOLLOW_END_GRACE_MS)
        return FOLLOW_DRAIN;
    return FOLLOW_BROKEN;
}

/* The stream ended with a status: retry, or give up on what retrying
 * cannot fix (unknown job, no permission, no such service). */
static follow_step follow_closed(follow *f, const hodei_rpc_result *res)
{
    run_outcome o = {.st = HODEI_OK, .res = *res};
    if (res->code == HODEI_GRPC_OK || run_transient(&o) || res->code == HODEI_GRPC_INTERNAL ||
        res->code == HODEI_GRPC_UNKNOWN) {
        if (!f->said_lost && res->code != HODEI_GRPC_OK) {
            if (f->sink->status)
                cli_status_line_clear(f->sink->status);
            fprintf(f->c->err, "hodei: log stream lost (%s: %s); reconnecting...\n",
                    hodei_grpc_code_str(res->code), res->message);
            f->said_lost = true;
        }
        return FOLLOW_BROKEN;
    }
    f->rc = run_report(f->c, &o);
    return FOLLOW_FATAL;
}

/* One message or a quiet moment on an open stream. FOLLOW_BROKEN here means
 * "carry on" unless *closed is set. */
static follow_step follow_recv(follow *f, hodei_rpc_stream *st, bool *closed)
{
    ProtobufCMessage *msg = NULL;
    hodei_rpc_result res = {0};
    hodei_err e;
    hodei_err_clear(&e);
    hodei_status s = hodei_rpc_stream_recv(st, RUN_FOLLOW_TICK_MS, &msg, &res, &e);
    follow_tick(f);
    if (s == HODEI_ERR_TIMEOUT) {
        follow_reachable(f);
        return follow_check_job(f);
    }
    *closed = true;
    if (s != HODEI_OK)
        return FOLLOW_BROKEN; /* an answer that did not unpack: ask again */
    if (!msg)
        return follow_closed(f, &res);
    *closed = false;
    follow_reachable(f);
    bool end = cli_log_sink_chunk(f->sink, (const Hodei__V1__LogChunk *)msg, &f->final_state);
    protobuf_c_message_free_unpacked(msg, NULL);
    if (f->sink->failed) {
        f->rc = CLI_EXIT_ERROR;
        return FOLLOW_FATAL;
    }
    return end ? FOLLOW_ENDED : FOLLOW_BROKEN;
}

static follow_step follow_session(follow *f)
{
    Hodei__V1__SubscribeLogsRequest req = HODEI__V1__SUBSCRIBE_LOGS_REQUEST__INIT;
    hodei_rpc_stream *st = NULL;
    hodei_err e;
    hodei_err_clear(&e);
    req.job_id = (char *)f->job_id;
    req.from_sequence = cli_log_sink_resume(f->sink);
    req.from_epoch = f->sink->last_epoch;
    if (hodei_rpc_stream_open(f->c->ch, RUN_LOG_SERVICE "SubscribeLogs", &req.base,
                              &hodei__v1__log_chunk__descriptor, 0, &st, &e) != HODEI_OK)
        return FOLLOW_BROKEN;
    follow_step step = FOLLOW_BROKEN;
    bool closed = false;
    while (step == FOLLOW_BROKEN && !closed)
        step = follow_recv(f, st, &closed);
    hodei_rpc_stream_destroy(st);
    return step;
}

/* Waits before the next attempt, ticking; FOLLOW_FATAL when the edge has
 * been unreachable for too long. */
static follow_step follow_backoff(follow *f)
{
    int64_t now = hodei_mono_ms();
    if (!f->down_since_ms)
        f->down_since_ms = now;
    if (now - f->down_since_ms > RUN_FOLLOW_DOWN_MAX_MS) {
        fprintf(f->c->err,
                "hodei: UNAVAILABLE: no log stream from %s for %d s; the job may still be "
                "running: hodei logs -f %s\n",
                f->c->a->server, RUN_FOLLOW_DOWN_MAX_MS / 1000, f->job_id);
        f->rc = CLI_EXIT_UNAVAILABLE;
        return FOLLOW_FATAL;
    }
    for (int64_t until = now + f->backoff_ms; hodei_mono_ms() < until;) {
        hodei_sleep_ms(RUN_FOLLOW_TICK_MS / 4);
        follow_tick(f);
    }
    f->backoff_ms = f->backoff_ms * 2 > RUN_FOLLOW_BACKOFF_MAX_MS ? RUN_FOLLOW_BACKOFF_MAX_MS
                                                                  : f->backoff_ms * 2;
    return FOLLOW_BROKEN;
}

int run_follow_logs(const run_ctx *c, const char *job_id, cli_log_sink *sink,
                    const run_follow_hooks *hooks, Hodei__V1__JobState *final_state)
{
    follow f = {.c = c,
                .job_id = job_id,
                .sink = sink,
                .hooks = hooks,
                .rc = CLI_EXIT_OK,
                .backoff_ms = RUN_FOLLOW_BACKOFF_MIN_MS};
    follow_step step = follow_check_job(&f);
    if (step == FOLLOW_BROKEN)
        step = follow_session(&f);
    while (step == FOLLOW_BROKEN) {
        step = follow_check_job(&f);
        if (step == FOLLOW_BROKEN)
            step = follow_backoff(&f);
        if (step == FOLLOW_BROKEN)
            step = follow_session(&f);
    }
    if (step == FOLLOW_DRAIN) {
        bool complete = false;
        cli_log_sink_resume(sink);
        f.rc = run_read_logs(c, job_id, sink, &complete);
    }
    *final_state = f.final_state;
    return f.rc;
}

/* ------------------------------------------------------------ GetLogs */

/* One page from the sink's position; *new_lines: how many were written. */
static bool read_logs_page(const run_ctx *c, const char *job_id, cli_log_sink *sink,
                           size_t *new_lines, bool *complete, run_outcome *o)
{
    Hodei__V1__GetLogsRequest req = HODEI__V1__GET_LOGS_REQUEST__INIT;
    ProtobufCMessage *msg = NULL;
    req.job_id = (char *)job_id;
    req.from_sequence = sink->last_seq + 1;
    req.from_epoch = sink->last_epoch;
    req.max_lines = RUN_LOGS_PAGE_LINES;
    if (!run_unary(c, RUN_LOG_SERVICE "GetLogs", &req.base,
                   &hodei__v1__get_logs_response__descriptor, &msg, o))
        return false;
    const Hodei__V1__GetLogsResponse *resp = (const Hodei__V1__GetLogsResponse *)msg;
    *new_lines = cli_log_sink_lines(sink, resp->lines, resp->n_lines);
    *complete = resp->complete;
    protobuf_c_message_free_unpacked(msg, NULL);
    return true;
}

int run_read_logs(const run_ctx *c, const char *job_id, cli_log_sink *sink, bool *complete)
{
    size_t new_lines = 1;
    run_outcome o;
    /* Pages end at max_lines or at the server's size limit: read on until
     * the server says all is there (complete) or a page brings nothing new
     * (a running job, or a server that ignores from_sequence and repeats
     * lines the sink drops). */
    *complete = false;
    for (int page = 0; new_lines > 0 && !*complete && page < RUN_LOGS_PAGES_MAX; page++) {
        if (page > 0)
            cli_log_sink_resume(sink);
        if (!read_logs_page(c, job_id, sink, &new_lines, complete, &o))
            return run_report(c, &o);
        if (sink->failed)
            return CLI_EXIT_ERROR;
    }
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ hodei logs */

int run_cmd_logs(const run_ctx *c)
{
    const cli_args *a = c->a;
    cli_log_sink sink;
    cli_status_line status;
    cli_status_line_init(&status, c->err, false);
    cli_log_sink_init(&sink, c->out, c->err, a->output, &status);
    sink.raw = a->raw;
    cli_log_sink_start_at(&sink, a->logs.from_sequence);
    if (a->follow) {
        Hodei__V1__JobState final_state = 0;
        return run_follow_logs(c, a->logs.job_id, &sink, NULL, &final_state);
    }
    bool complete = false;
    int rc = run_read_logs(c, a->logs.job_id, &sink, &complete);
    if (rc == CLI_EXIT_OK && !complete && a->output == CLI_OUTPUT_HUMAN)
        fprintf(c->err, "hodei: the job has not ended; hodei logs -f %s follows it\n",
                a->logs.job_id);
    return rc;
}
