/* libs/store's private parts shared by its files: the SQL fragments the
 * attempt end (attempt.c) and the assignments (assign.c) build their
 * statements from, and the attempt end's one implementation behind the
 * plain calls of hodei/store.h and the hand-off of hodei/assign.h. */
#ifndef HODEI_STORE_INT_H
#define HODEI_STORE_INT_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "hodei/assign.h"
#include "hodei/events.h"
#include "hodei/store.h"

#define STORE_INT_TEXT_MAX 24 /* an int64 as text */

/* The SET of a worker freed by the end of its attempt. */
#define STORE_WORKER_FREES_SQL                                                                     \
    "state = 'READY', updated_at = now(), current_job_id = NULL, idle_since = now()"

/* The assignment of the pairs in a CTE named p (job_id uuid, worker_id
 * uuid, epoch bigint: the job's epoch now, n: the pair's place), checked by
 * whoever wrote p: each job goes ASSIGNED to its worker at epoch + 1 (aj,
 * which returns the rows RunJob is sent from), each worker BUSY with it
 * and its least-loaded load decayed over `tau` seconds (a parameter, see
 * HODEI_SCHED_LOAD_TAU_S) plus one (aw), and the n-th row of the event set
 * `rows` (JobAssigned) for pair n (ao). The one assignment write of the
 * suite: the scheduler's pass and both forms of the hand-off use it. */
#define STORE_ASSIGN_CTES_SQL(tau, rows)                                                           \
    "aj AS ("                                                                                      \
    " UPDATE jobs SET state = 'ASSIGNED', worker_id = p.worker_id, epoch = p.epoch + 1,"           \
    "  attempt = jobs.attempt + 1, updated_at = now()"                                             \
    " FROM p WHERE jobs.id = p.job_id"                                                             \
    " RETURNING jobs.id, jobs.epoch, jobs.attempt, jobs.cancel_requested, jobs.cancel_reason,"     \
    "  jobs.spec, jobs.created_at, jobs.not_before"                                                \
    "), aw AS ("                                                                                   \
    " UPDATE workers SET state = 'BUSY', current_job_id = p.job_id, idle_since = NULL,"            \
    "  updated_at = now(), last_assigned_at = now(), assign_load = 1 + CASE WHEN"                  \
    "  workers.last_assigned_at IS NULL THEN 0 ELSE workers.assign_load * exp(greatest(-50,"       \
    "  extract(epoch FROM workers.last_assigned_at - now())::float8 / " tau "::float8)) END"       \
    " FROM p WHERE workers.id = p.worker_id"                                                       \
    " RETURNING workers.id, workers.provider"                                                      \
    "), ao AS (" HODEI_OUTBOX_INSERT_SQL(rows, "e.n IN (SELECT p.n FROM p)") ")"

/* The columns of hodei/assign.h's run row (HODEI_RUN_COL_*) from aj;
 * spec_wanted: SQL true when the spec is wanted (the scheduler's pass does
 * not send RunJob). */
#define STORE_RUN_ROW_SQL(spec_wanted)                                                             \
    "aj.id::text, 'ASSIGNED', aj.epoch, aj.attempt, aj.cancel_requested,"                          \
    " coalesce(aj.cancel_reason, ''),"                                                             \
    " CASE WHEN " spec_wanted                                                                      \
    " THEN encode(aj.spec, 'hex') ELSE '' END, 'BUSY', " HODEI_STORE_JOB_DUE_AGE_SQL("aj")

/* HODEI_ERR_PRECONDITION ("stale attempt: ...") unless v is worker_id's
 * at epoch. */
hodei_status store_check_owner(const char *job_id, const hodei_job_view *v, const char *worker_id,
                               int64_t epoch, hodei_err *err);

/* How the attempt end runs, behind the plain calls. */
typedef struct {
    const hodei_attempt *a;
    bool free_worker;     /* BUSY -> READY */
    bool ready_event;     /* ... with its WorkerReady, written here */
    bool implies_started; /* an ASSIGNED job counts as RUNNING */
    /* The hand-off's pick, taken first in this transaction (ok): a
     * SUCCEEDED end then gives the worker the picked job in the same
     * statement, or frees it with its WorkerReady. */
    const hodei_handoff_pick *pick;
} store_end_how;

typedef struct {
    Hodei__V1__JobState final;
    bool released;                                      /* the worker went READY */
    bool worker_done;                                   /* the pick's step was written */
    char worker_provider[HODEI_STORE_PROVIDER_MAX + 1]; /* for its WorkerReady */
    PGresult *run; /* the handed job's run row, or NULL; the caller clears it */
} store_end_out;

hodei_status store_attempt_end(PGconn *conn, const store_end_how *how, store_end_out *out,
                               hodei_err *err);

#endif
