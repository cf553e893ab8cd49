/* Every assignment of a job to a worker, written in one place: the
 * scheduler's pass (a set of pairs, one statement) and the edge's hand-off
 * (a worker's result giving the worker its next job in the same
 * transaction). Both move the job PENDING -> ASSIGNED at epoch + 1 and the
 * worker to BUSY with it, with the job's JobAssigned event, through the same
 * SQL. Which job goes to which worker is decided elsewhere: by the
 * scheduler's strategies over the fit rule (hodei/fit.h), or, for the
 * hand-off, by the pick below (the fit rule's SQL form).
 *
 * As hodei/store.h: everything runs inside the caller's transaction. */
#ifndef HODEI_ASSIGN_H
#define HODEI_ASSIGN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/buf.h"
#include "hodei/events.h"
#include "hodei/id.h"
#include "hodei/status.h"
#include "hodei/store.h"

/* The row RunJob is sent from, as hodei_assign_* and the hand-off answer it
 * (and as the edge reads a worker's assignments back to re-send them). */
enum {
    HODEI_RUN_COL_JOB_ID,
    HODEI_RUN_COL_STATE,
    HODEI_RUN_COL_EPOCH, /* the assignment's */
    HODEI_RUN_COL_ATTEMPT,
    HODEI_RUN_COL_CANCEL_REQUESTED,
    HODEI_RUN_COL_CANCEL_REASON,
    HODEI_RUN_COL_SPEC_HEX, /* "" where not wanted */
    HODEI_RUN_COL_WORKER_STATE,
    HODEI_RUN_COL_DUE_AGE_US, /* µs since the job became due (HODEI_STORE_JOB_DUE_AGE_SQL) */
    HODEI_RUN_COLS
};

/* ------------------------------------------------------- a set of pairs */

/* Pairs proposed under the caller's locks (jobs PENDING, workers READY,
 * both FOR UPDATE). Each pair is checked again when written (the job still
 * PENDING at the epoch given, the worker still READY) and applies whole or
 * not at all. text_max bounds each array parameter. */
typedef struct {
    hodei_buf jobs, workers, epochs;
    hodei_outbox_rows events;
    size_t n;
    char tau[32]; /* the load's decay, as a parameter */
} hodei_assign_set;

void hodei_assign_set_init(hodei_assign_set *set, size_t text_max);
void hodei_assign_set_reset(hodei_assign_set *set);
void hodei_assign_set_fini(hodei_assign_set *set);
/* epoch: the job's epoch now (as locked). HODEI_ERR_LIMIT when full. */
hodei_status hodei_assign_set_add(hodei_assign_set *set, const char *job_id, const char *worker_id,
                                  int64_t epoch, hodei_err *err);

/* The statement and its parameters, for callers that send it in a pipeline
 * of their own (the scheduler's pass: with its COMMIT). It answers one run
 * row per pair applied, the spec left out unless spec_wanted. params stay
 * valid until the set changes. */
#define HODEI_ASSIGN_NPARAMS 6
extern const char hodei_assign_sql[];
void hodei_assign_set_params(hodei_assign_set *set, bool spec_wanted,
                             const char *params[HODEI_ASSIGN_NPARAMS]);
/* Runs it; *rows (may be NULL) gets the run rows (the caller clears them). */
hodei_status hodei_assign_run(PGconn *conn, hodei_assign_set *set, bool spec_wanted,
                              PGresult **rows, hodei_err *err);

/* ------------------------------------------------------------ at submit */

/* A submitting edge gives jobs it has just inserted (in the submit
 * transaction, still PENDING) to idle workers whose streams it holds, so
 * an idle system does not wait for the relay and a scheduler's pass. The
 * pick answers the fitting (job, worker) pairs (HODEI_FIT_SQL), jobs in
 * the scheduler's order (priority, then the group's order), each job's
 * workers least recently assigned first; workers are taken READY and
 * locked, skipping any another transaction holds (a scheduler's pass,
 * another edge: never waiting for it). A worker that an older due PENDING
 * job of at least the same priority fits is left to the scheduler, which
 * gives it that job. hodei_submit_pairs then keeps, walking the rows, each
 * job's first worker not taken by an earlier job, into set (and the rows
 * kept into kept); the caller
 * writes the set (hodei_assign_run) before its COMMIT. A job is inserted
 * by one edge only and its worker is locked: no two writers assign it.
 * $1: the jobs (uuid[]), $2: the edge's workers (uuid[]). */
#define HODEI_SUBMIT_PICK_NPARAMS 2
/* Rows the pick answers at most (pairs beyond them are the scheduler's). */
#define HODEI_SUBMIT_PICK_ROWS_MAX_SQL "4096"
extern const char hodei_submit_pick_sql[];
hodei_status hodei_submit_pairs(const PGresult *pick, hodei_assign_set *set, int *kept,
                                size_t *n_kept, hodei_err *err);
/* kept: room for PQntuples(pick) row numbers, the rows kept (*n_kept).
 * The worker kept for job_id, or NULL. */
const char *hodei_submit_worker_of(const PGresult *pick, const int *kept, size_t n_kept,
                                   const char *job_id);

/* The same for a group of one new job, pick and assignment in one
 * statement (no round trip between them: the whole submit is one). $1 the
 * job (epoch 0, as inserted), $2 the edge's workers (uuid[]), $3 the load's
 * tau, $4 one JobAssigned per worker of $2, in its order (both from
 * hodei_submit_one_params). Answers the run row (HODEI_RUN_COL_*, the spec
 * included) with the worker's id after it (column HODEI_RUN_COLS), or no
 * row when no worker was taken. */
#define HODEI_SUBMIT_ONE_NPARAMS 4
extern const char hodei_submit_one_sql[];
hodei_status hodei_submit_one_params(const char *job_id, const char (*workers)[HODEI_ID_BUF],
                                     size_t n, hodei_outbox_rows *events, char tau[32],
                                     hodei_err *err);

/* ------------------------------------------------------------ hand-off */

/* The first statements of a worker's result transaction (one round trip):
 * lock the ending job, then the worker (the order every attempt end takes),
 * then the best pending job the worker fits by the scheduler's order
 * (priority, age) that is due, skipping any another transaction holds
 * (never waiting for it). The fit is HODEI_FIT_SQL; the walk of
 * jobs_pending in that order is pinned (bitmap scans, sorts and sequential
 * scans off for the rest of the transaction), so its cost does not depend
 * on what the last ANALYZE saw. ok is false when the worker is not BUSY
 * with ending_job: the result then goes the general way. */
typedef struct {
    bool ok;
    char job_id[HODEI_ID_BUF];                   /* "" = no job waits that the worker fits */
    int64_t epoch;                               /* its epoch, as locked */
    char provider[HODEI_STORE_PROVIDER_MAX + 1]; /* the worker's */
} hodei_handoff_pick;

hodei_status hodei_handoff_pick_next(PGconn *conn, const char *worker_id, const char *ending_job,
                                     hodei_handoff_pick *out, hodei_err *err);

/* The worker's own result (as hodei_store_attempt_result) with the
 * hand-off: the pick first, then the end of the attempt, and the freed
 * worker takes the picked job in the same transaction (no WorkerReady), or
 * goes READY with its WorkerReady when none waits. A SUCCEEDED end, the
 * common case, is the pick and one statement. */
typedef struct {
    Hodei__V1__JobState final; /* the ended job's new state */
    PGresult *run;             /* the job handed to the worker (row 0, HODEI_RUN_COL_*),
                                  or NULL; the caller clears it */
} hodei_handoff;

hodei_status hodei_handoff_result(PGconn *conn, const hodei_attempt *a, hodei_handoff *out,
                                  hodei_err *err);

/* As hodei_handoff_result, with the n_first (at most
 * HODEI_HANDOFF_FIRST_MAX) statements of first (no parameters; e.g. the
 * caller's BEGIN and SAVEPOINT) sent in the same round trip before the
 * pick, so a grouped result costs no round trip of its own for them. When
 * one of them fails, the answer is HODEI_ERR_UNAVAILABLE (the transaction
 * is not where the caller thinks: give it up). */
#define HODEI_HANDOFF_FIRST_MAX 2
hodei_status hodei_handoff_result_after(PGconn *conn, const char *const *first, size_t n_first,
                                        const hodei_attempt *a, hodei_handoff *out, hodei_err *err);

#endif
