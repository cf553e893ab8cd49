/* WorkerAgentService.WorkerStream: one bidirectional call per connected
 * worker. Each message is checked (libs/domain hodei/worker_msg.h), its
 * ids put in lower case, then handed to the file that owns it: Hello ->
 * worker_hello, Heartbeat and Keepalive -> worker_heartbeat, RunJobAck ->
 * worker_acks, LogBatch -> worker_logs, JobResult -> worker_results. */
#ifndef HODEI_JOB_API_WORKER_STREAM_H
#define HODEI_JOB_API_WORKER_STREAM_H

#include "edge.h"

/* Fills the WorkerStream method entry (BIDI) for worker_rpc.c's table. */
void worker_stream_method(edge *e, hodei_rpc_method *out);

#endif
