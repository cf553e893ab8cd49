/* The edge's Prometheus metrics (GET /metrics on health.listen): every
 * gRPC call's latency by method and code, and what the edge sees of each
 * job's life: queue wait of the jobs it hands off, dispatch latency (queued,
 * or due after a retry's backoff, until the worker acknowledged RunJob) and
 * run time by outcome, from the worker's own clock. */
#ifndef HODEI_JOB_API_EDGE_METRICS_H
#define HODEI_JOB_API_EDGE_METRICS_H

#include <stdint.h>

#include "hodei/daemon.h"
#include "hodei/rpc.h"
#include "hodei/v1/worker.pb-c.h"

typedef struct {
    hodei_metric_family *rpc_seconds; /* method, code */
    hodei_metric_family *finished;    /* state: jobs ended by a result, final state */
    hodei_metric_family *run_seconds; /* state: the attempt's outcome */
    hodei_metric *dispatch_seconds;
    hodei_metric *queue_wait_seconds;
    hodei_metric *handoffs;
    hodei_metric *submit_assigned;
    hodei_metric *hints;       /* schedulers' hints that made the hub re-read a worker at once */
    hodei_metric *reply_bytes; /* gauge, set by edge_limits.c's stream sends */
} edge_metrics;

/* Registers every family; in init(). */
void edge_metrics_register(edge_metrics *m, hodei_daemon *d);
/* hodei_rpc_server_opts.observe, ctx = the edge_metrics. */
void edge_metrics_rpc_observe(void *ctx, const char *path, hodei_grpc_code code,
                              int64_t elapsed_us);
/* An accepted result: its run time under the attempt's outcome, and the
 * job's end under its final state when it ended (not a retry). */
void edge_metrics_result(edge_metrics *m, const Hodei__V1__JobResult *r, Hodei__V1__JobState final);

#endif
