/* Suite-specific SQL that more than one service runs: the outbox, and the
 * job and worker transitions several services make (the edge on a worker's
 * result, the supervisor on a lost worker or a timeout, ...).
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

#include "hodei/buf.h"
#include "hodei/id.h"
#include "hodei/status.h"
#include "hodei/v1/common.pb-c.h"
#include "hodei/v1/events.pb-c.h"

/* Retry backoff of a failed attempt n (1-based): base * 2^(n-1), capped. */
#define HODEI_RETRY_BACKOFF_BASE_MS 500
#define HODEI_RETRY_BACKOFF_MAX_MS 30000
int64_t hodei_retry_backoff_ms(int32_t attempt);

/* Fills ev's event_id (new UUIDv7), aggregate_id and occurred_at, packs it
 * and inserts the outbox row. The caller sets ev's body. */
hodei_status hodei_outbox_append(PGconn *conn, Hodei__V1__Event *ev, const char *subject,
                                 const char *aggregate_type, const char *aggregate_id,
                                 const char *event_type, hodei_err *err);

/* Fills ev's event_id (new UUIDv7, also copied to event_id, HODEI_ID_BUF bytes), aggregate_id
 * and occurred_at, and packs it into hex (init it with
 * HODEI_OUTBOX_EVENT_HEX_MAX), for statements that insert their own row. */
#define HODEI_OUTBOX_EVENT_MAX (1u << 20)
#define HODEI_OUTBOX_EVENT_HEX_MAX (2 * HODEI_OUTBOX_EVENT_MAX)
hodei_status hodei_outbox_pack(Hodei__V1__Event *ev, const char *aggregate_id, char *event_id,
                               hodei_buf *hex, hodei_err *err);

/* Several outbox rows written by one statement: add the events, then pass
 * the six array parameters (event ids, subjects, aggregate types, aggregate
 * ids, event types, payloads as hex) to an INSERT ... SELECT FROM
 * unnest($a::uuid[], $b::text[], $c::text[], $d::text[], $e::text[],
 * $f::text[]) decoding the payload with decode(p, 'hex'). */
#define HODEI_OUTBOX_ROWS_COLS 6
typedef struct {
    hodei_buf cols[HODEI_OUTBOX_ROWS_COLS];
    int n;
} hodei_outbox_rows;
void hodei_outbox_rows_init(hodei_outbox_rows *rows);
/* Fills ev's event_id, aggregate_id and occurred_at as hodei_outbox_append
 * does, packs it and adds the row. */
hodei_status hodei_outbox_rows_add(hodei_outbox_rows *rows, Hodei__V1__Event *ev,
                                   const char *subject, const char *aggregate_type,
                                   const char *aggregate_id, const char *event_type,
                                   hodei_err *err);
/* Closes the arrays; params[0..5] point into rows until rows_fini. */
void hodei_outbox_rows_params(hodei_outbox_rows *rows, const char **params);
void hodei_outbox_rows_fini(hodei_outbox_rows *rows);

/* The SET of a worker taking a job, shared by the scheduler's assignment and
 * the edge's hand-off: BUSY with it, and its least-loaded load decayed over
 * `tau` seconds (a parameter, see HODEI_SCHED_LOAD_TAU_S) plus one. */
#define HODEI_STORE_WORKER_TAKES_SQL(job, tau)                                                     \
    "state = 'BUSY', current_job_id = " job ", idle_since = NULL, updated_at = now(),"             \
    " last_assigned_at = now(), assign_load = 1 + CASE WHEN workers.last_assigned_at"              \
    " IS NULL THEN 0 ELSE workers.assign_load * exp(greatest(-50, extract(epoch FROM"              \
    " workers.last_assigned_at - now())::float8 / " tau "::float8)) END"

/* A hand-off's assignment, shared by the edge's general path and the store's
 * fast end: the picked job (PENDING at epoch `epoch`, locked by the pick)
 * goes ASSIGNED to `worker` at epoch + 1, `guard` (SQL, AND-ed) permitting.
 * As a CTE body; HODEI_STORE_HANDOFF_ROW_SQL(alias) then lists its row the
 * way the edge sends RunJob from (see next_run below). */
#define HODEI_STORE_HANDOFF_JOB_SQL(job, worker, epoch, guard)                                     \
    "UPDATE jobs SET state = 'ASSIGNED', worker_id = " worker ", epoch = epoch + 1,"               \
    "  attempt = attempt + 1, updated_at = now()"                                                  \
    " WHERE id = " job " AND state = 'PENDING' AND epoch = " epoch " AND " guard                   \
    " RETURNING id, epoch, attempt, cancel_requested, cancel_reason, spec, created_at, not_before"
#define HODEI_STORE_HANDOFF_ROW_SQL(a)                                                             \
    a ".id::text, 'ASSIGNED', " a ".epoch, " a ".attempt, " a ".cancel_requested,"                 \
      " coalesce(" a ".cancel_reason, ''), encode(" a                                              \
      ".spec, 'hex'), 'BUSY', " HODEI_STORE_JOB_DUE_AGE_SQL(a)
/* Microseconds since the job of row alias `a` became due: queued, or for a
 * retry the end of its backoff (for dispatch and queue-wait metrics). */
#define HODEI_STORE_JOB_DUE_AGE_SQL(a)                                                             \
    "(extract(epoch FROM clock_timestamp() - greatest(" a ".created_at, " a ".not_before))"        \
    " * 1000000)::bigint"

/* A job's scheduling state, as the transitions and the edge's RPCs read it. */
#define HODEI_STORE_PROVIDER_MAX 63 /* as providers.name allows */
typedef struct {
    Hodei__V1__JobState state;
    char worker_id[40]; /* "" when unassigned */
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

/* The hand-off's pick (migration 0014), the first statement of a worker's
 * result transaction: locks the ending job, then the worker (the order
 * every attempt end takes), then the best pending job the worker fits,
 * skipping any another transaction holds (see docs/architecture.md, "Who
 * writes what"). ok is false when the worker is not BUSY with ending_job:
 * the result then goes the general way. */
typedef struct {
    bool ok;
    char job_id[HODEI_ID_BUF];                   /* "" = no job waits that the worker fits */
    int64_t epoch;                               /* its epoch, as locked */
    char provider[HODEI_STORE_PROVIDER_MAX + 1]; /* the worker's */
} hodei_handoff_pick;

hodei_status hodei_store_handoff_pick(PGconn *conn, const char *worker_id, const char *ending_job,
                                      hodei_handoff_pick *out, hodei_err *err);

/* The end of one attempt. */
typedef struct {
    const char *job_id;
    const char *worker_id;     /* must be the job's worker ... */
    int64_t epoch;             /* ... at this epoch, else PRECONDITION (stale) */
    Hodei__V1__JobState state; /* SUCCEEDED, FAILED, TIMEOUT or CANCELLED */
    int32_t exit_code;
    const char *error;              /* "" = none */
    bool free_worker;               /* worker BUSY -> READY (+ WorkerReady event) */
    bool implies_started;           /* the worker's own result: an ASSIGNED job whose
                                       ack was lost counts as RUNNING */
    bool no_ready_event;            /* the caller writes WorkerReady itself, if the worker
                                       stays READY (it may hand it a job first) */
    bool *released;                 /* (may be NULL) set: the worker went READY */
    char *worker_provider;          /* (may be NULL) HODEI_STORE_PROVIDER_MAX + 1 bytes:
                                       the worker's provider, for its WorkerReady */
    const hodei_handoff_pick *pick; /* (may be NULL) taken first in this transaction:
                                   a SUCCEEDED end with free_worker then, in the same
                                   statement, gives the worker the picked job, or
                                   frees it READY with its WorkerReady */
    bool *picked;                   /* (with pick) set: the worker's next step was written
                                       that way; the caller adds nothing */
    PGresult **next_run;            /* (with pick) the handed job's row (row 0, from column
                                       HODEI_STORE_NEXT_RUN_COL), as the edge sends RunJob
                                       from: id, state, epoch, attempt, cancel_requested,
                                       cancel_reason, spec (hex), worker state; NULL when
                                       no job was handed. The caller clears it. */
} hodei_attempt_end;

#define HODEI_STORE_NEXT_RUN_COL 3

/* Locks the job. SUCCEEDED/CANCELLED end it. FAILED/TIMEOUT with attempts
 * left (attempt < max_attempts) and no cancel requested re-queue it:
 * PENDING, worker cleared, not_before = now() + backoff, JobQueued event.
 * Otherwise it ends in that state with finished_at, exit code, error and a
 * JobFinished event. *final_out (may be NULL) gets the job's new state. */
hodei_status hodei_store_attempt_end(PGconn *conn, const hodei_attempt_end *end,
                                     Hodei__V1__JobState *final_out, hodei_err *err);

/* Worker state change from any of `from` (NULL-ended names, e.g.
 * {"READY","BUSY",NULL}) to `to`, checked by the worker state machine.
 * HODEI_ERR_PRECONDITION when the worker is in none of `from`;
 * HODEI_ERR_NOT_FOUND when there is no such worker. READY sets idle_since and
 * clears current_job_id; READY also writes a WorkerReady event. */
hodei_status hodei_store_worker_transition(PGconn *conn, const char *worker_id,
                                           const char *const *from, Hodei__V1__WorkerState to,
                                           hodei_err *err);

/* A worker reported a result the job no longer needs (stale, or the attempt
 * was already ended by the supervisor): it has finished that work, so if it
 * is still BUSY with that job (or with none), it goes READY (+ WorkerReady).
 * *released (may be NULL) says whether it did. */
hodei_status hodei_store_worker_release(PGconn *conn, const char *worker_id, const char *job_id,
                                        bool *released, hodei_err *err);

/* Writes the WorkerReady event of a worker that went READY. */
hodei_status hodei_store_worker_ready_event(PGconn *conn, const char *worker_id,
                                            const char *provider, hodei_err *err);
/* Writes a WorkerDestroyRequested event for the provisioner. */
hodei_status hodei_store_worker_destroy_request(PGconn *conn, const char *worker_id,
                                                const char *provider, const char *reason,
                                                hodei_err *err);

/* Jobs that can never run (pending.c): each listed job still PENDING ends
 * FAILED with error (exit code 127, as a command that could not start) and
 * a JobFinished event; others are left alone. *failed_out (may be NULL)
 * gets how many ended. At most HODEI_STORE_FAIL_MAX ids. */
#define HODEI_STORE_FAIL_MAX 4096
hodei_status hodei_store_pending_fail(PGconn *conn, const char *const *job_ids, size_t n,
                                      const char *error, size_t *failed_out, hodei_err *err);

#endif
