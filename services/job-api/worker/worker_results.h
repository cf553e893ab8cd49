/* JobResult: a worker reports the end of an attempt. Results are recorded
 * grouped (e->results): the stream thread that brings one, unless two
 * threads write already, takes every result waiting, from all the edge's
 * workers, and records them in one transaction and one commit, each with its artifact records
 * (epoch-fenced; with worker.handoff the freed worker takes its next job in it); then each is
 * acknowledged with a JobResultAck, and a terminal state ends the job's
 * log. */
#ifndef HODEI_JOB_API_WORKER_RESULTS_H
#define HODEI_JOB_API_WORKER_RESULTS_H

#include "edge.h"
#include "worker_hub.h"

/* destroy waits for the groups being written; call it while the hub and
 * the ack writer still live. */
hodei_status worker_results_create(edge *e, worker_results **out, hodei_err *err);
void worker_results_destroy(worker_results *w); /* NULL is a no-op */

/* A validated JobResult from the session's worker, queued (r is copied)
 * and, when fewer than two threads write, written by this thread with
 * every result waiting. A stale one is acknowledged accepted=false (a repeat of a
 * recorded one: true) and frees the worker; a database failure ends the
 * stream (the worker re-sends after it reconnects). */
void worker_results_on_result(worker_session *s, const Hodei__V1__JobResult *r);

#endif
