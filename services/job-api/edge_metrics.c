/* The edge's metrics (edge_metrics.h). Label values come from closed sets:
 * registered method paths, gRPC code names and job state names. */
#include "edge_metrics.h"

#include <string.h>

#include "hodei/job_state.h"

#define RPC_METHOD_UNKNOWN "unknown"

void edge_metrics_register(edge_metrics *m, hodei_daemon *d)
{
    static const double fast[] = {HODEI_BUCKETS_FAST};
    static const double slow[] = {HODEI_BUCKETS_SLOW};
    size_t n_fast = sizeof fast / sizeof fast[0], n_slow = sizeof slow / sizeof slow[0];
    m->rpc_seconds = hodei_daemon_histogram_vec(
        d, "hodei_grpc_server_handling_seconds",
        "gRPC calls from arrival to their status, by method (service/method) and status code;"
        " streams count their whole life.",
        "method,code", fast, n_fast);
    m->finished = hodei_daemon_counter_vec(
        d, "hodei_jobs_finished_total",
        "Jobs ended by a worker's result, by final state (retries not counted).", "state");
    m->run_seconds = hodei_daemon_histogram_vec(
        d, "hodei_job_run_seconds",
        "Attempts' run time as their worker measured it, by outcome (SUCCEEDED, FAILED, TIMEOUT,"
        " CANCELLED).",
        "state", slow, n_slow);
    m->dispatch_seconds = hodei_daemon_histogram(
        d, "hodei_job_dispatch_latency_seconds",
        "From a job's queueing (a retry: the end of its backoff) to its worker's acknowledgement"
        " of RunJob, for attempts sent by this edge.",
        fast, n_fast);
    m->queue_wait_seconds = hodei_daemon_histogram(
        d, "hodei_job_queue_wait_seconds",
        "From a job's queueing (a retry: the end of its backoff) to its assignment, for jobs this"
        " edge handed to a freed worker (the scheduler reports the ones it assigns).",
        fast, n_fast);
    m->handoffs = hodei_daemon_counter(d, "hodei_edge_handoffs_total",
                                       "Results that handed their worker the next pending job.");
    m->submit_assigned = hodei_daemon_counter(
        d, "hodei_edge_submit_assigned_total",
        "Jobs given to an idle worker of this edge in their submit transaction.");
    m->hints = hodei_daemon_counter(
        d, "hodei_edge_hints_total",
        "Schedulers' post-commit hints naming a worker this edge holds and a RunJob it had not"
        " sent: each made the edge re-read that worker's commands at once, without waiting for"
        " the relay's event or worker.resend_interval.");
    m->reply_bytes = hodei_daemon_gauge(
        d, "hodei_edge_reply_bytes",
        "Bytes of replies and stream messages held for clients that have not taken them"
        " (replies.buffer_max), as of the last stream message sent.");
}

void edge_metrics_rpc_observe(void *ctx, const char *path, hodei_grpc_code code, int64_t elapsed_us)
{
    edge_metrics *m = ctx;
    const char *method = path ? path : RPC_METHOD_UNKNOWN;
    if (method[0] == '/')
        method++;
    hodei_metric_observe_micro(hodei_metric_with(m->rpc_seconds, method, hodei_grpc_code_str(code)),
                               elapsed_us);
}

static int64_t ts_us(const Hodei__V1__Timestamp *t)
{
    if (!t || (t->seconds == 0 && t->nanos == 0))
        return -1;
    return t->seconds * 1000000 + t->nanos / 1000;
}

void edge_metrics_result(edge_metrics *m, const Hodei__V1__JobResult *r, Hodei__V1__JobState final)
{
    int64_t start = ts_us(r->started_at), end = ts_us(r->finished_at);
    if (start >= 0 && end >= start)
        hodei_metric_observe_micro(
            hodei_metric_with(m->run_seconds, hodei_job_state_name(r->state)), end - start);
    if (hodei_job_state_terminal(final))
        hodei_metric_add(hodei_metric_with(m->finished, hodei_job_state_name(final)), 1);
}
