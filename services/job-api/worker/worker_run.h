/* What the edge tells a worker from PostgreSQL, the truth: RunJob for its
 * ASSIGNED jobs (built here, with the job's secrets), CancelJob for its
 * jobs with a cancel requested, Drain when it is being retired, and the
 * check of the RUNNING jobs a Hello did not name. Also: whether an attempt
 * is this stream's (for its log batches). */
#ifndef HODEI_JOB_API_WORKER_RUN_H
#define HODEI_JOB_API_WORKER_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "hodei/db.h"
#include "worker_hub.h"

/* RunJob for the worker's ASSIGNED jobs, CancelJob for its jobs with a
 * cancel requested, Drain (once per stream) for a DRAINING, TERMINATING or
 * LOST worker, and the restarted-worker check when due. The hub's ticker
 * calls it (worker_resend_fn). */
void worker_run_resend(worker_session *s);
/* RunJob from a run row (hodei/assign.h, HODEI_RUN_COL_*: the re-send's
 * rows and the hand-off's). A job whose secrets cannot be delivered ends
 * FAILED instead. */
void worker_run_send(worker_session *s, const PGresult *res, int row);
/* worker_run_send to worker_id's stream, when this edge holds it (the
 * submit path's hand-off, edge_workers.c). */
void worker_run_send_to(worker_hub *h, const char *worker_id, const PGresult *res, int row);
/* true when (job, epoch) is this worker's current attempt (cached). */
bool worker_run_owned(worker_session *s, const char *job_id, int64_t epoch);

#endif
