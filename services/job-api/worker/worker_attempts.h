/* Ending attempts in PostgreSQL for the edge's own reasons: a RunJob whose
 * secrets cannot be delivered, a job a restarted worker no longer runs
 * (worker_run.c), and UnregisterWorker (worker_register.c). Each end is
 * epoch-fenced (libs/store): a stale one is refused and changes nothing.
 * A worker's own JobResult is worker_results.c's. */
#ifndef HODEI_JOB_API_WORKER_ATTEMPTS_H
#define HODEI_JOB_API_WORKER_ATTEMPTS_H

#include <stddef.h>
#include <stdint.h>

#include "edge.h"
#include "logs/logs_pub.h"
#include "worker_hub.h"

/* An attempt the edge ended, and the state the job reached. */
typedef struct {
    worker_job_ref ref;
    Hodei__V1__JobState state;
} worker_job_end;

/* Ends one attempt FAILED with `why` and frees its worker, in its own
 * transaction; publishes the end-of-log marker when the job reached a
 * terminal state. Stale = OK. */
hodei_status worker_attempts_fail(edge *e, log_pub *pub, const char *job_id, const char *worker_id,
                                  int64_t epoch, const char *why, hodei_err *err);
/* Inside the caller's transaction: ends every ASSIGNED/RUNNING attempt of
 * the worker FAILED with `why` (re-queued when attempts remain). ends has
 * room for WORKER_SESSION_JOBS_MAX; more are ended but not reported. */
hodei_status worker_attempts_end_all(PGconn *conn, const char *worker_id, const char *why,
                                     worker_job_end *ends, size_t *n_ends, hodei_err *err);
/* End-of-log markers for the ends that reached a terminal state. */
void worker_attempts_publish_ends(log_pub *pub, const worker_job_end *ends, size_t n);

#endif
