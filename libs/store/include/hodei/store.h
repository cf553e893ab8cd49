/* Suite-specific SQL that more than one service runs: the job and worker
 * transitions several services make (the edge on a worker's result, the
 * supervisor on a lost worker or a timeout, ...). Events: hodei/events.h;
 * assignments (the scheduler's pass, the edge's hand-off): hodei/assign.h.
 *
 * Every function runs inside the CALLER's transaction: the caller BEGINs,
 * calls one or more of these, and COMMITs, so a state change and its outbox
 * row commit together or not at all. Transitions are checked with
 * libs/domain's state machines; an illegal one is an error, never silent. */
#ifndef HODEI_STORE_H
#define HODEI_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "hodei/id.h"
#include "hodei/status.h"
#include "hodei/v1/common.pb-c.h"
#include "hodei/worker_state.h"

/* Retry backoff of a failed attempt n (1-based): base * 2^(n-1), capped. */
#define HODEI_RETRY_BACKOFF_BASE_MS 500
#define HODEI_RETRY_BACKOFF_MAX_MS 30000
int64_t hodei_retry_backoff_ms(int32_t attempt);

/* Microseconds since the job of row alias `a` became due: queued, or for a
 * retry the end of its backoff (for dispatch and queue-wait metrics). */
#define HODEI_STORE_JOB_DUE_AGE_SQL(a)                                                             \
    "(extract(epoch FROM clock_timestamp() - greatest(" a ".created_at, " a ".not_before))"        \
    " * 1000000)::bigint"

/* A job's scheduling state, as the transitions and the edge's RPCs read it. */
#define HODEI_STORE_PROVIDER_MAX 63 /* as providers.name allows */
typedef struct {
    Hodei__V1__JobState state;
    char worker_id[HODEI_ID_BUF]; /* "" when unassigned */
    int64_t epoch;
    int32_t attempt;
    int32_t max_attempts;
    int32_t priority;
    bool cancel_requested;
    char provider[HODEI_STORE_PROVIDER_MAX + 1];        /* the job's preference */
    char worker_provider[HODEI_STORE_PROVIDER_MAX + 1]; /* its worker's, "" if none */
} hodei_job_view;

/* Reads job_id's view; lock = true takes the row lock (FOR UPDATE) for the
 * caller's transaction. HODEI_ERR_NOT_FOUND "job <id> not found". */
hodei_status hodei_store_job_read(PGconn *conn, const char *job_id, bool lock, hodei_job_view *v,
                                  hodei_err *err);

/* Worker acknowledged RunJob: ASSIGNED -> RUNNING, started_at = now().
 * HODEI_ERR_PRECONDITION when the job is not ASSIGNED to this worker at this
 * epoch (already RUNNING at this epoch counts as OK: acks may repeat). */
hodei_status hodei_store_job_started(PGconn *conn, const char *job_id, const char *worker_id,
                                     int64_t epoch, hodei_err *err);

/* How one attempt ended. */
typedef struct {
    const char *job_id;
    const char *worker_id;     /* must be the job's worker ... */
    int64_t epoch;             /* ... at this epoch, else PRECONDITION (stale) */
    Hodei__V1__JobState state; /* SUCCEEDED, FAILED, TIMEOUT or CANCELLED */
    int32_t exit_code;
    const char *error; /* "" = none */
    /* A re-queue waits at least this long (ms; 0: the backoff alone): the
     * supervisor's supervisor.lost_retry_delay for a lost worker's job. */
    int64_t retry_wait_min_ms;
} hodei_attempt;

/* The end of an attempt, in three plain forms. Each locks the job, then its
 * worker. SUCCEEDED and CANCELLED end the job; FAILED and TIMEOUT with
 * attempts left (attempt < max_attempts) and no cancel requested re-queue
 * it: PENDING, worker cleared, not_before = now() + backoff, JobQueued.
 * Otherwise it ends in that state with finished_at, exit code, error and
 * JobFinished. *final (may be NULL) gets the job's new state.
 * HODEI_ERR_PRECONDITION when the attempt is stale or already ended. */

/* The worker is left as it is: the supervisor (a lost worker; a timed-out
 * job the worker is still killing), a worker that unregisters. */
hodei_status hodei_store_attempt_end(PGconn *conn, const hodei_attempt *a,
                                     Hodei__V1__JobState *final, hodei_err *err);

/* The worker is freed, BUSY -> READY with WorkerReady (a worker no longer
 * BUSY keeps its state): the edge ending an attempt its worker cannot run
 * (a secret missing, the worker restarted). */
hodei_status hodei_store_attempt_end_free(PGconn *conn, const hodei_attempt *a,
                                          Hodei__V1__JobState *final, hodei_err *err);

/* The worker's own result: as hodei_store_attempt_end_free, and a job still
 * ASSIGNED counts as started (its RunJobAck was lost with an edge). With
 * the hand-off, hodei_handoff_result (hodei/assign.h) instead. */
hodei_status hodei_store_attempt_result(PGconn *conn, const hodei_attempt *a,
                                        Hodei__V1__JobState *final, hodei_err *err);

/* A SUCCEEDED result that the attempt's end refused as stale because the
 * supervisor took its worker for lost and re-queued the job: when the job
 * is still PENDING at that epoch with no worker (not handed to another one
 * yet, not cancelled) and the reporting worker is the lost one that held
 * it, the job ends SUCCEEDED with this result and its JobFinished, instead
 * of running a second time. *ended says whether it did; any other result or
 * state changes nothing (late.c). */
hodei_status hodei_store_attempt_late_success(PGconn *conn, const hodei_attempt *a, bool *ended,
                                              hodei_err *err);

/* Worker state change from any state in `from` to `to`, checked by the
 * worker state machine. HODEI_ERR_PRECONDITION when the worker is in none of
 * `from`; HODEI_ERR_NOT_FOUND when there is no such worker. READY sets
 * idle_since and clears current_job_id; READY also writes WorkerReady. */
hodei_status hodei_store_worker_transition(PGconn *conn, const char *worker_id,
                                           hodei_worker_state_set from, Hodei__V1__WorkerState to,
                                           hodei_err *err);

/* A worker that must go: from any state in `from` to `to` (LOST, or
 * TERMINATING on the way out), as hodei_store_worker_transition, then a
 * WorkerDestroyRequested (the worker's provider, `reason`) for the
 * provisioner. */
hodei_status hodei_store_worker_retire(PGconn *conn, const char *worker_id,
                                       hodei_worker_state_set from, Hodei__V1__WorkerState to,
                                       const char *reason, hodei_err *err);

/* A worker reported a result the job no longer needs (stale, or the attempt
 * was already ended by the supervisor): it has finished that work, so if it
 * is still BUSY with that job (or with none), it goes READY (+ WorkerReady).
 * *released (may be NULL) says whether it did. */
hodei_status hodei_store_worker_release(PGconn *conn, const char *worker_id, const char *job_id,
                                        bool *released, hodei_err *err);

/* Jobs that can never run (pending.c): each listed job still PENDING ends
 * FAILED with error (exit code 127, as a command that could not start) and
 * a JobFinished event; others are left alone. *failed_out (may be NULL)
 * gets how many ended. At most HODEI_STORE_FAIL_MAX ids. */
#define HODEI_STORE_FAIL_MAX 4096
hodei_status hodei_store_pending_fail(PGconn *conn, const char *const *job_ids, size_t n,
                                      const char *error, size_t *failed_out, hodei_err *err);

#endif
