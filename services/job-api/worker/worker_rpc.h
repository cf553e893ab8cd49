/* The edge's worker side as the rest of the edge sees it: start and stop
 * of what holds the workers' streams (the hub, the ack writer), and
 * WorkerAgentService's method table (Register, WorkerStream,
 * UnregisterWorker). */
#ifndef HODEI_JOB_API_WORKER_RPC_H
#define HODEI_JOB_API_WORKER_RPC_H

#include "edge.h"
#include "logs/logs_pub.h"

/* Starts the hub (e->workers) and the ack writer (e->acks); pub is where
 * the worker side publishes log lines (it outlives the hub). Call before
 * the gRPC server starts. */
hodei_status worker_rpc_start(edge *e, log_pub *pub, hodei_err *err);
/* Call after the gRPC server is destroyed (every stream has closed): stops
 * the hub's ticker, writes the acks still pending, then lets the hub go.
 * Safe after a partial start. */
void worker_rpc_stop(edge *e);
/* Registers WorkerAgentService on e->server. */
hodei_status worker_rpc_register(edge *e, hodei_err *err);

#endif
