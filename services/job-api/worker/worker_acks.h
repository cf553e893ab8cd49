/* RunJobAck: the worker started an attempt, so the job goes RUNNING. Acks
 * are written grouped: each within worker.ack_delay, all pending ones in
 * one UPDATE by one writer thread (e->acks); with ack_delay 0 each is
 * written at once. */
#ifndef HODEI_JOB_API_WORKER_ACKS_H
#define HODEI_JOB_API_WORKER_ACKS_H

#include <stdbool.h>
#include <stdint.h>

#include "edge.h"
#include "worker_hub.h"

/* destroy writes what is pending; call it while the hub still lives. */
hodei_status worker_acks_create(edge *e, worker_acks **out, hodei_err *err);
void worker_acks_destroy(worker_acks *a); /* NULL is a no-op */

/* A validated RunJobAck from the session's worker: queued, or written at
 * once; an attempt the worker does not hold gets a CancelJob, a database
 * failure ends the stream (the worker reconnects and acks the re-sent
 * RunJob). */
void worker_acks_on_ack(worker_session *s, const Hodei__V1__RunJobAck *ack);
/* The attempt's result came: its ack, still pending, is dropped (the
 * result's transaction counts the job as started). true when one was. */
bool worker_acks_drop(worker_acks *a, const char *worker_id, const char *job_id, int64_t epoch);

#endif
