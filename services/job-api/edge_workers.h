/* The edge's worker side and logs, as main.c sees them: the NATS
 * connection, WorkerAgentService (Register, WorkerStream, UnregisterWorker)
 * and LogStreamService (GetLogs, SubscribeLogs). */
#ifndef HODEI_JOB_API_EDGE_WORKERS_H
#define HODEI_JOB_API_EDGE_WORKERS_H

#include "client/client_submit.h"
#include "edge.h"

/* Connects NATS (as `instance`), makes sure the streams exist, and starts
 * the registry of worker streams and the log followers. Call before the
 * gRPC server starts. */
hodei_status edge_workers_start(edge *e, const char *instance, hodei_err *err);
/* Call before the gRPC server is destroyed: GetLogs' readers answer and
 * release the calls they hold (later calls are answered UNAVAILABLE). */
void edge_workers_quiesce(edge *e);
/* Call after the gRPC server is destroyed (every stream has closed). Safe
 * after a partial start. */
void edge_workers_stop(edge *e);

/* The hand-off at submit over the worker streams this edge holds
 * (client_submit.h); its context is the edge, set once by
 * edge_workers_dispatch_ctx before the writers start. */
extern const submit_dispatch edge_workers_dispatch;
void edge_workers_dispatch_ctx(edge *e);

/* Registers LogStreamService (logs_get.c, logs_follow.c). */
hodei_status logs_rpc_register(edge *e, hodei_err *err);

#endif
