/* Private parts of the supervisor, shared by supervisor.c (lifecycle),
 * leader.c (who is active), tick.c (transactions and the check table),
 * liveness.c (workers), timeouts.c (jobs) and pool.c (idle TTL, warm pool). */
#ifndef HODEI_SUP_INT_H
#define HODEI_SUP_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "hodei/buf.h"
#include "hodei/daemon.h"
#include "hodei/status.h"
#include "hodei/v1/common.pb-c.h"
#include "supervisor.h"

#define SUP_LOCK_RETRY_MS 500 /* standby: how often to try the lock */
#define SUP_BACKOFF_MIN_MS 50 /* database unreachable: retry backoff */
#define SUP_BACKOFF_MAX_MS 2000
#define SUP_LOCK_TIMEOUT_MS 2000       /* longest wait for a row another service holds */
#define SUP_STATEMENT_TIMEOUT_MS 10000 /* longest single statement */
#define SUP_BATCH_MAX 10000            /* upper bound of supervisor.batch_max */
#define SUP_NOTES_MAX (4u << 20)       /* action lines of one transaction */
#define SUP_JOBS_PER_WORKER_MAX 16     /* open jobs ended per lost worker per tick */
#define SUP_WARM_FILL_MAX 64           /* workers one provider's warm pool adds per tick */
#define SUP_INT_TEXT_MAX 24            /* an int64 as text */
#define SUP_EXIT_CODE_NONE (-1)        /* an attempt ended with no exit code (no result) */
#define SUP_CHECKS_MAX 8
#define SUP_NOTE_LINE_MAX 2048 /* one action line (a lost worker lists its jobs) */

typedef enum { SUP_ROLE_NONE = 0, SUP_ROLE_STANDBY, SUP_ROLE_ACTIVE } sup_role;

/* SQL: `since` (a heartbeat, an assignment) lies at least $1 ms before the
 * last sighting of an edge that was up all that time. Silence counts only
 * while an edge was there to hear it: an edge that died stops the count at
 * its last write, so a worker is not blamed for the edge's absence however
 * the two moments fall. With no edge row at all (edges of an older release)
 * it is true. */
#define SUP_SILENT_WHILE_EDGE_UP_SQL(since)                                                        \
    "(NOT EXISTS (SELECT 1 FROM edges) OR EXISTS (SELECT 1 FROM edges e"                           \
    " WHERE e.seen_at - greatest(" since ", e.up_since)"                                           \
    "  >= $1::bigint * interval '1 millisecond'))"

/* Whether a check that judges workers by silence may run (liveness.c). */
typedef enum { SUP_GATE_UNKNOWN = 0, SUP_GATE_OPEN, SUP_GATE_HELD } sup_gate;

typedef struct {
    hodei_daemon *d;
    const sup_config *cfg;
    const hodei_common_config *common;
    const char *instance;
    PGconn *conn; /* dedicated: holds the lock, and every check runs on it */
    sup_role role;
    int64_t backoff_ms;
    char batch_max_text[SUP_INT_TEXT_MAX];
    hodei_buf notes;       /* action lines of the open transaction, logged after commit */
    size_t notes_mark;     /* notes length when the current item began */
    int64_t notes_dropped; /* lines that did not fit into notes */
    int items_failed;      /* rows of the current check that were skipped */
    int items_passed;      /* rows that no longer needed action once locked */
    char last_err[SUP_CHECKS_MAX][HODEI_ERR_MSG_MAX]; /* per check: logged once while it lasts */
    hodei_metric *m_checks[SUP_CHECKS_MAX];           /* GET /metrics: rows each check acted on */
    hodei_metric *m_active;
    sup_gate gate_lost, gate_assign; /* those checks wait for an edge? (logged on change) */
    struct { /* fleet.c: gauges of the whole fleet, shown by the active one only */
        hodei_metric_family *jobs, *queue, *oldest, *workers;
        hodei_metric_family *cpu_used, *cpu_capacity, *mem_used, *mem_total;
        hodei_metric *backlog;
        bool shown, failing;
        int64_t next_ms, next_prune_ms;
    } fleet;
    int64_t next_edges_prune_ms;
    int64_t next_retention_ms; /* retention.c: the next run (monotonic) */
    bool retention_more;       /* a batch came back full: run again at once */
} sup;

/* ---- leader.c ---- */

/* One attempt to become the active supervisor; waits (lock retry or
 * backoff) when it could not. */
void sup_leader_acquire(sup *s);
/* The connection failed: close it; the lock (leadership) goes with it. */
void sup_leader_drop(sup *s, const char *why);
/* Clean stop: close the session, releasing the lock. */
void sup_leader_close(sup *s);
/* Sleeps the growing database backoff (or until a stop). */
void sup_leader_backoff(sup *s);

/* ---- liveness.c ---- */

/* *ok = workers could reach an edge for the whole of the last window_ms: an
 * edge seen within half of it and up for all of it (table edges, migration
 * 0017), or no edge has ever written presence (edges of an older release).
 * The check is skipped while it is not, and *gate keeps the answer, to log
 * its changes under `what` for the operator; each worker is then judged by
 * SUP_SILENT_WHILE_EDGE_UP_SQL. */
hodei_status sup_edges_available(sup *s, int64_t window_ms, const char *what, sup_gate *gate,
                                 bool *ok, hodei_err *err);

/* ---- fleet.c ---- */

/* Registers the fleet's gauges (in init). */
void sup_fleet_register(sup *s);
/* Active: reads the fleet into the gauges and writes a metrics_samples row
 * when supervisor.metrics_interval has passed. A status only when the
 * connection broke. */
hodei_status sup_fleet_step(sup *s, hodei_err *err);
/* Not active: the gauges go to 0 (once). */
void sup_fleet_clear(sup *s);

/* ---- tick.c ---- */

/* Registers the checks' counters and the active gauge (in init). */
void sup_metrics_register(sup *s);

/* Runs every check once, each in its own transaction. *more = a check
 * found a full batch (run again without waiting). Returns a status only
 * when the connection broke (leadership lost). */
hodei_status sup_tick(sup *s, bool *more, hodei_err *err);

/* Runs one(row) for every row of res (a check's selection; column 0 names
 * the row in logs), each under a savepoint: a row that fails for any reason
 * but a broken connection is undone alone, logged and skipped (retried next
 * tick); the others still commit. */
#define SUP_ROW_NAME 0 /* the column that names a check's row */
typedef hodei_status (*sup_row_fn)(sup *s, const PGresult *res, int row, hodei_err *err);
hodei_status sup_rows_each(sup *s, const char *what, const PGresult *res, sup_row_fn one,
                           hodei_err *err);
/* Selects the rows one check acts on (sql's parameters: setting, then the
 * batch size; setting NULL: the batch size alone), *n_out = their number,
 * and runs one on each as sup_rows_each does. */
hodei_status sup_select_each(sup *s, const char *what, const char *sql, const char *setting,
                             sup_row_fn one, int *n_out, hodei_err *err);
/* As sup_select_each, but each row is judged in a transaction of its own,
 * so a check never holds a row (a worker that heartbeats, a job whose
 * result comes) longer than its own judgement takes. sql (parameters as
 * sup_select_each's) lists the candidates without locking them; one_sql is
 * the same selection narrowed to one row (its id as one more parameter)
 * that locks it (FOR UPDATE ... SKIP LOCKED): the condition is checked
 * again under the lock, in the transaction that acts, so an action commits
 * only while it still holds (a worker that beat meanwhile is not LOST). A
 * row locked by someone else, or no longer matching, is passed over. The
 * check's own transaction is committed before the rows, and a new one is
 * open on return. */
hodei_status sup_judge_each(sup *s, const char *what, const char *sql, const char *one_sql,
                            const char *setting, sup_row_fn one, int *n_out, hodei_err *err);
/* Records one action line; logged after the transaction commits. */
void sup_note(sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An int64 as decimal text for a query parameter. */
void sup_i64_text(int64_t v, char out[SUP_INT_TEXT_MAX]);

/* The checks. Each runs inside the transaction sup_tick opened and sets
 * *n_out to the rows it selected (batch_max of them = more may wait). */
hodei_status sup_check_lost_workers(sup *s, int *n_out, hodei_err *err);
hodei_status sup_check_registration(sup *s, int *n_out, hodei_err *err);
hodei_status sup_check_assign_timeouts(sup *s, int *n_out, hodei_err *err);
hodei_status sup_check_job_timeouts(sup *s, int *n_out, hodei_err *err);
hodei_status sup_check_orphaned_jobs(sup *s, int *n_out, hodei_err *err);
hodei_status sup_check_idle(sup *s, int *n_out, hodei_err *err);
hodei_status sup_check_warm_pool(sup *s, int *n_out, hodei_err *err);
/* retention.c */
hodei_status sup_check_retention(sup *s, int *n_out, hodei_err *err);

/* ---- shared by the checks ---- */

/* The job (locked by the caller) ends its current attempt on worker_id at
 * epoch: FAILED with `error` (re-queued when attempts remain), or
 * CANCELLED when a cancel was requested. The worker is not freed. */
hodei_status sup_job_fail(sup *s, const char *job_id, const char *worker_id, int64_t epoch,
                          bool cancel_requested, const char *error, Hodei__V1__JobState *final_out,
                          hodei_err *err);
/* READY/BUSY/DRAINING -> LOST and a destroy request. *lost = false (and
 * HODEI_OK) when the worker was gone or in another state already. */
hodei_status sup_worker_lose(sup *s, const char *worker_id, const char *reason, bool *lost,
                             hodei_err *err);

#endif
