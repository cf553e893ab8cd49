/* Appending workers' log batches to JetStream: subject hodei.logs.<job>,
 * payload a packed hodei.v1.LogBatch, Nats-Msg-Id "<job>:<epoch>:<first
 * sequence>" so a batch re-sent after a reconnect is dropped. Publishes are
 * asynchronous on one JetStream context; their order on the connection is
 * the order of the calls, so an end marker published after a job's batches
 * lands after them. */
#ifndef HODEI_JOB_API_LOG_PUB_H
#define HODEI_JOB_API_LOG_PUB_H

#include "hodei/bus.h"
#include "hodei/v1/worker.pb-c.h"

#define LOG_PUB_PENDING_MAX 4096 /* async publishes awaiting JetStream's ack */
#define LOG_PUB_STALL_MS 2000    /* a publish waits this long for room */
#define LOG_PUB_DRAIN_MS 5000    /* destroy waits this long for the acks */

typedef struct log_pub log_pub;

hodei_status log_pub_create(hodei_bus *bus, log_pub **out, hodei_err *err);
/* Waits (bounded) for outstanding acks, then frees. NULL is a no-op. */
void log_pub_destroy(log_pub *p);

/* Publishes a validated batch, split into several messages when it does not
 * fit the server's maximum payload. */
hodei_status log_pub_batch(log_pub *p, const Hodei__V1__LogBatch *b, hodei_err *err);
/* The end-of-log marker: an empty LogBatch with header Hodei-Log-End set to
 * the job's final state name ("SUCCEEDED", ...). */
hodei_status log_pub_end(log_pub *p, const char *job_id, int64_t epoch,
                         Hodei__V1__JobState final_state, hodei_err *err);

#endif
