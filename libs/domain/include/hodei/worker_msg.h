/* Door checks for every message a worker agent sends the edge (Register,
 * UnregisterWorker and the WorkerStream messages): each error is
 * HODEI_ERR_INVALID and starts with the field's path as the worker sent it
 * ("hello.running_job_ids[3]: ..."); tokens are never echoed. Pure: no
 * database, no session, no logging. */
#ifndef HODEI_WORKER_MSG_H
#define HODEI_WORKER_MSG_H

#include "hodei/status.h"
#include "hodei/v1/worker.pb-c.h"

#define HODEI_WORKER_RUNNING_IDS_MAX 256 /* Hello.running_job_ids entries */
#define HODEI_WORKER_TOKEN_MAX 512       /* bootstrap and session tokens, bytes */
#define HODEI_WORKER_RUNNING_JOBS_MAX 64 /* Heartbeat usage.running_jobs */

hodei_status hodei_worker_check_token(const char *field, const char *token, hodei_err *err);
hodei_status hodei_worker_check_id(const char *field, const char *id, hodei_err *err);
hodei_status hodei_worker_check_register(const Hodei__V1__RegisterRequest *r, hodei_err *err);
hodei_status hodei_worker_check_hello(const Hodei__V1__Hello *h, hodei_err *err);
hodei_status hodei_worker_check_heartbeat(const Hodei__V1__Heartbeat *h, hodei_err *err);
hodei_status hodei_worker_check_ack(const Hodei__V1__RunJobAck *a, hodei_err *err);
hodei_status hodei_worker_check_log_batch(const Hodei__V1__LogBatch *b, hodei_err *err);
hodei_status hodei_worker_check_result(const Hodei__V1__JobResult *r, hodei_err *err);

#endif
