/* JobResult: a worker reports the end of an attempt. The result and its
 * artifact records are recorded in one transaction (epoch-fenced; with
 * worker.handoff the freed worker takes its next job in it), acknowledged
 * with a JobResultAck, and a terminal state ends the job's log. */
#ifndef HODEI_JOB_API_WORKER_RESULTS_H
#define HODEI_JOB_API_WORKER_RESULTS_H

#include "worker_hub.h"

/* A validated JobResult from the session's worker. A stale one is
 * acknowledged accepted=false (a repeat of a recorded one: true) and frees
 * the worker; a database failure ends the stream (the worker re-sends
 * after it reconnects). */
void worker_results_on_result(worker_session *s, const Hodei__V1__JobResult *r);

#endif
