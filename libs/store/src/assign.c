/* Every assignment of a job to a worker (hodei/assign.h): the set-based
 * statement of the scheduler's pass, the hand-off's pick, and the hand-off
 * itself. The assignment's writes are STORE_ASSIGN_CTES_SQL (store_int.h),
 * which the fast end of an attempt (attempt.c) embeds too. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/db.h"
#include "hodei/fit.h"
#include "hodei/sched_strategy.h"
#include "hodei/sqlarr.h"
#include "hodei/util.h"
#include "store_int.h"

/* ---------------------------------------------------------- set of pairs */

/* $1 jobs, $2 workers, $3 epochs (the jobs' epochs as locked), $4 the
 * load's tau, $5 JobAssigned events (the n-th for pair n), $6 spec wanted.
 * Each pair is checked again (job PENDING at its epoch, worker READY; both
 * hold under the caller's locks) and applies whole or not at all. */
const char hodei_assign_sql[] =
    "WITH a AS ("
    " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[])"
    "  WITH ORDINALITY AS t(job_id, worker_id, epoch, n)"
    "), p AS ("
    " SELECT a.* FROM a"
    "  JOIN jobs j ON j.id = a.job_id AND j.state = 'PENDING' AND j.epoch = a.epoch"
    "  JOIN workers w ON w.id = a.worker_id AND w.state = 'READY'"
    "), " STORE_ASSIGN_CTES_SQL("$4", "$5") " SELECT " STORE_RUN_ROW_SQL("$6::bool") " FROM aj";

void hodei_assign_set_init(hodei_assign_set *set, size_t text_max)
{
    hodei_buf_init(&set->jobs, text_max);
    hodei_buf_init(&set->workers, text_max);
    hodei_buf_init(&set->epochs, text_max);
    hodei_outbox_rows_init(&set->events, text_max);
    hodei_assign_set_reset(set);
}

void hodei_assign_set_reset(hodei_assign_set *set)
{
    hodei_sqlarr_begin(&set->jobs);
    hodei_sqlarr_begin(&set->workers);
    hodei_sqlarr_begin(&set->epochs);
    hodei_outbox_rows_reset(&set->events);
    set->n = 0;
}

void hodei_assign_set_fini(hodei_assign_set *set)
{
    hodei_buf_fini(&set->jobs);
    hodei_buf_fini(&set->workers);
    hodei_buf_fini(&set->epochs);
    hodei_outbox_rows_fini(&set->events);
}

hodei_status hodei_assign_set_add(hodei_assign_set *set, const char *job_id, const char *worker_id,
                                  int64_t epoch, hodei_err *err)
{
    hodei_status st =
        hodei_event_job_assigned(HODEI_OUTBOX_ADD(&set->events), job_id, worker_id, epoch + 1, err);
    if (st != HODEI_OK)
        return st;
    hodei_sqlarr_str(&set->jobs, job_id);
    hodei_sqlarr_str(&set->workers, worker_id);
    hodei_sqlarr_i64(&set->epochs, epoch);
    set->n++;
    if (set->jobs.failed || set->workers.failed || set->epochs.failed)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "assignments of one statement exceed %zu bytes",
                             set->jobs.max);
    return HODEI_OK;
}

/* Closes the array literal for the statement; the brace is written past
 * the end, so the next add writes over it and a second close is the same. */
static const char *assign_arr_close(hodei_buf *b)
{
    hodei_sqlarr_end(b);
    b->len--;
    return b->data;
}

void hodei_assign_set_params(hodei_assign_set *set, bool spec_wanted,
                             const char *params[HODEI_ASSIGN_NPARAMS])
{
    snprintf(set->tau, sizeof set->tau, "%g", HODEI_SCHED_LOAD_TAU_S);
    params[0] = assign_arr_close(&set->jobs);
    params[1] = assign_arr_close(&set->workers);
    params[2] = assign_arr_close(&set->epochs);
    params[3] = set->tau;
    params[4] = hodei_outbox_rows_param(&set->events);
    params[5] = spec_wanted ? "t" : "f";
}

hodei_status hodei_assign_run(PGconn *conn, hodei_assign_set *set, bool spec_wanted,
                              PGresult **rows, hodei_err *err)
{
    const char *params[HODEI_ASSIGN_NPARAMS];
    hodei_assign_set_params(set, spec_wanted, params);
    return hodei_db_exec(conn, hodei_assign_sql, HODEI_ASSIGN_NPARAMS, params, rows, err);
}

/* ------------------------------------------------------------ at submit */

enum { SUBMIT_PICK_JOB, SUBMIT_PICK_EPOCH, SUBMIT_PICK_WORKER };

const char hodei_submit_pick_sql[] =
    "WITH w AS MATERIALIZED ("
    " SELECT id, provider, cpu_millis, memory_bytes, storage_bytes, gpu_count, architecture,"
    "  image, labels, last_assigned_at FROM workers"
    " WHERE id = ANY($2::uuid[]) AND state = 'READY' FOR UPDATE SKIP LOCKED"
    "), j AS MATERIALIZED ("
    " SELECT jobs.*, t.n FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)"
    "  JOIN jobs ON jobs.id = t.id AND jobs.state = 'PENDING' AND jobs.not_before IS NULL"
    ") SELECT j.id::text, j.epoch, w.id::text FROM j JOIN w ON " HODEI_FIT_SQL(
        "j", "w") " WHERE NOT EXISTS (SELECT 1 FROM jobs o WHERE o.state = 'PENDING'"
                  "  AND o.priority >= j.priority AND o.id <> ALL($1::uuid[])"
                  "  AND (o.not_before IS NULL OR o.not_before <= now()) AND " HODEI_FIT_SQL(
                      "o",
                      "w") ")"
                           " ORDER BY j.priority DESC, j.n, w.last_assigned_at NULLS FIRST, w.id"
                           " LIMIT " HODEI_SUBMIT_PICK_ROWS_MAX_SQL;

/* The older job that keeps a worker for the scheduler (see assign.h). */
#define SUBMIT_OLDER_WAITS_SQL(j, w, not_self)                                                     \
    "EXISTS (SELECT 1 FROM jobs o WHERE o.state = 'PENDING' AND o.priority >= " j ".priority"      \
    " AND " not_self                                                                               \
    " AND (o.not_before IS NULL OR o.not_before <= now()) AND " HODEI_FIT_SQL("o", w) ")"

const char hodei_submit_one_sql[] =
    "WITH c AS (SELECT * FROM unnest($2::uuid[]) WITH ORDINALITY AS c(id, n)),"
    " j AS MATERIALIZED (SELECT * FROM jobs WHERE id = $1::uuid AND state = 'PENDING'"
    "  AND epoch = 0 AND not_before IS NULL),"
    " pw AS MATERIALIZED (SELECT w.id, c.n FROM j, workers w JOIN c ON c.id = w.id"
    "  WHERE w.state = 'READY' AND " HODEI_FIT_SQL("j", "w") " AND NOT " SUBMIT_OLDER_WAITS_SQL(
        "j", "w",
        "o.id <> j.id") " ORDER BY w.last_assigned_at NULLS FIRST, w.id"
                        "  LIMIT 1 FOR UPDATE OF w SKIP LOCKED),"
                        " p AS (SELECT j.id AS job_id, pw.id AS worker_id, j.epoch, pw.n"
                        "  FROM j, pw), " STORE_ASSIGN_CTES_SQL(
                            "$3", "$4") " SELECT " STORE_RUN_ROW_SQL("true") ", p.worker_id::text "
                                                                             "FROM aj JOIN p ON "
                                                                             "p.job_id = aj.id";

hodei_status hodei_submit_one_params(const char *job_id, const char (*workers)[HODEI_ID_BUF],
                                     size_t n, hodei_outbox_rows *events, char tau[32],
                                     hodei_err *err)
{
    hodei_status st = HODEI_OK;
    snprintf(tau, 32, "%g", HODEI_SCHED_LOAD_TAU_S);
    for (size_t i = 0; i < n && st == HODEI_OK; i++)
        st = hodei_event_job_assigned(HODEI_OUTBOX_ADD(events), job_id, workers[i], 1, err);
    return st;
}

/* Whether row r's value in col is among the rows already kept. */
static bool submit_kept(const PGresult *pick, const int *kept, size_t n_kept, int r, int col)
{
    const char *value = hodei_db_get_str(pick, r, col);
    for (size_t i = 0; i < n_kept; i++)
        if (strcmp(hodei_db_get_str(pick, kept[i], col), value) == 0)
            return true;
    return false;
}

hodei_status hodei_submit_pairs(const PGresult *pick, hodei_assign_set *set, int *kept,
                                size_t *n_kept, hodei_err *err)
{
    hodei_status st = HODEI_OK;
    *n_kept = 0;
    for (int r = 0; r < PQntuples(pick) && st == HODEI_OK; r++) {
        if (submit_kept(pick, kept, *n_kept, r, SUBMIT_PICK_JOB) ||
            submit_kept(pick, kept, *n_kept, r, SUBMIT_PICK_WORKER))
            continue;
        kept[(*n_kept)++] = r;
        st = hodei_assign_set_add(set, hodei_db_get_str(pick, r, SUBMIT_PICK_JOB),
                                  hodei_db_get_str(pick, r, SUBMIT_PICK_WORKER),
                                  hodei_db_get_i64(pick, r, SUBMIT_PICK_EPOCH), err);
    }
    return st;
}

const char *hodei_submit_worker_of(const PGresult *pick, const int *kept, size_t n_kept,
                                   const char *job_id)
{
    for (size_t i = 0; i < n_kept; i++)
        if (strcmp(hodei_db_get_str(pick, kept[i], SUBMIT_PICK_JOB), job_id) == 0)
            return hodei_db_get_str(pick, kept[i], SUBMIT_PICK_WORKER);
    return NULL;
}

/* ---------------------------------------------------------------- pick */

/* The walk of jobs_pending in the scheduler's order, whatever the last
 * ANALYZE saw: planned from statistics, the pick turned into a bitmap scan
 * and a sort whenever they showed a short queue, and then cost
 * milliseconds on a long one (queue depth changes faster than statistics).
 * Local to the transaction, whose other statements find rows by key. */
static const char pick_pin_sql[] = "SELECT set_config('enable_bitmapscan', 'off', true),"
                                   " set_config('enable_sort', 'off', true),"
                                   " set_config('enable_seqscan', 'off', true)";

/* ... and back as they were, for the rest of the transaction (as the SET
 * clauses of migration 0014's function did): left off, they priced the
 * attempt end's statements above jit_above_cost, and each then spent
 * seconds compiling. SET LOCAL ... TO DEFAULT is the session's value (what
 * RESET gives: the server's, the role's or the database's setting), as
 * pg_settings' reset_val was, without building the whole pg_settings view
 * for each result (the costliest statement of a backlog drain per job). */
static const char pick_unpin_bitmapscan_sql[] = "SET LOCAL enable_bitmapscan TO DEFAULT";
static const char pick_unpin_sort_sql[] = "SET LOCAL enable_sort TO DEFAULT";
static const char pick_unpin_seqscan_sql[] = "SET LOCAL enable_seqscan TO DEFAULT";

static const char pick_lock_ending_sql[] = "SELECT 1 FROM jobs WHERE id = $1::uuid FOR UPDATE";

/* The worker, locked, then (the outer side of a lateral join runs first)
 * the best job it fits, locked unless another transaction holds it. */
static const char pick_next_sql[] =
    "WITH w AS MATERIALIZED ("
    " SELECT id, provider, cpu_millis, memory_bytes, storage_bytes, gpu_count, architecture,"
    "  image, labels FROM workers"
    " WHERE id = $1::uuid AND state = 'BUSY' AND current_job_id = $2::uuid FOR UPDATE"
    ") SELECT w.provider, coalesce(n.id::text, ''), coalesce(n.epoch, 0) FROM w"
    " LEFT JOIN LATERAL (SELECT jobs.id, jobs.epoch FROM jobs"
    "  WHERE jobs.state = 'PENDING' AND (jobs.not_before IS NULL OR jobs.not_before <= now())"
    "   AND " HODEI_FIT_SQL("jobs", "w") " ORDER BY jobs.priority DESC, jobs.created_at, jobs.id"
                                         "  LIMIT 1 FOR UPDATE OF jobs SKIP LOCKED) n ON true";

enum { PICK_PROVIDER, PICK_JOB, PICK_EPOCH };

/* The pick, after the n_first statements of first (no parameters) in the
 * same round trip. A failure of one of those answers HODEI_ERR_UNAVAILABLE:
 * the caller's transaction is then not where it thinks (e.g. no savepoint
 * was taken). */
static hodei_status pick_next_after(PGconn *conn, const char *const *first, size_t n_first,
                                    const char *worker_id, const char *ending_job,
                                    hodei_handoff_pick *out, hodei_err *err)
{
    const char *ending[1] = {ending_job};
    const char *both[2] = {worker_id, ending_job};
    PGresult *res = NULL;
    bool first_ran[HODEI_HANDOFF_FIRST_MAX] = {false};
    hodei_db_cmd cmds[HODEI_HANDOFF_FIRST_MAX + 6];
    size_t n = 0;
    HODEI_ASSERT(n_first <= HODEI_HANDOFF_FIRST_MAX);
    for (size_t i = 0; i < n_first; i++)
        cmds[n++] = (hodei_db_cmd){.sql = first[i], .ran = &first_ran[i]};
    cmds[n++] = (hodei_db_cmd){.sql = pick_pin_sql};
    cmds[n++] = (hodei_db_cmd){.sql = pick_lock_ending_sql, .n_params = 1, .params = ending};
    cmds[n++] = (hodei_db_cmd){.sql = pick_next_sql, .n_params = 2, .params = both, .res = &res};
    cmds[n++] = (hodei_db_cmd){.sql = pick_unpin_bitmapscan_sql};
    cmds[n++] = (hodei_db_cmd){.sql = pick_unpin_sort_sql};
    cmds[n++] = (hodei_db_cmd){.sql = pick_unpin_seqscan_sql};
    memset(out, 0, sizeof *out);
    hodei_status st = hodei_db_pipeline(conn, cmds, n, err);
    for (size_t i = 0; i < n_first && st != HODEI_OK && !hodei_db_status_broken(st); i++) {
        if (first_ran[i])
            continue;
        char why[sizeof err->msg];
        hodei_strlcpy(why, err->msg, sizeof why);
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "%s: %s", first[i], why);
    }
    if (st == HODEI_OK && PQntuples(res) == 1) {
        out->ok = true;
        hodei_strlcpy(out->job_id, hodei_db_get_str(res, 0, PICK_JOB), sizeof out->job_id);
        out->epoch = hodei_db_get_i64(res, 0, PICK_EPOCH);
        hodei_strlcpy(out->provider, hodei_db_get_str(res, 0, PICK_PROVIDER), sizeof out->provider);
    }
    PQclear(res);
    return st;
}

hodei_status hodei_handoff_pick_next(PGconn *conn, const char *worker_id, const char *ending_job,
                                     hodei_handoff_pick *out, hodei_err *err)
{
    return pick_next_after(conn, NULL, 0, worker_id, ending_job, out, err);
}

/* ------------------------------------------------------------ hand-off */

/* The general way ended the attempt and freed the worker: it takes the
 * picked job through the set-based statement (one pair), or, with none,
 * goes on READY with its WorkerReady. */
static hodei_status handoff_after(PGconn *conn, const hodei_attempt *a,
                                  const hodei_handoff_pick *pick, const store_end_out *end,
                                  PGresult **run, hodei_err *err)
{
    hodei_status st = HODEI_OK;
    if (pick->ok && pick->job_id[0]) {
        hodei_assign_set one;
        hodei_assign_set_init(&one, HODEI_OUTBOX_ROWS_TEXT_MAX);
        st = hodei_assign_set_add(&one, pick->job_id, a->worker_id, pick->epoch, err);
        if (st == HODEI_OK)
            st = hodei_assign_run(conn, &one, true, run, err);
        hodei_assign_set_fini(&one);
        if (st == HODEI_OK && PQntuples(*run) == 0) {
            PQclear(*run);
            *run = NULL;
        }
    }
    if (st == HODEI_OK && !*run)
        st = hodei_event_worker_ready(HODEI_OUTBOX_WRITE(conn), a->worker_id, end->worker_provider,
                                      err);
    return st;
}

hodei_status hodei_handoff_result_after(PGconn *conn, const char *const *first, size_t n_first,
                                        const hodei_attempt *a, hodei_handoff *out, hodei_err *err)
{
    hodei_handoff_pick pick;
    store_end_out end;
    out->final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    out->run = NULL;
    hodei_status st = pick_next_after(conn, first, n_first, a->worker_id, a->job_id, &pick, err);
    if (st != HODEI_OK)
        return st;
    const store_end_how how = {
        .a = a, .free_worker = true, .implies_started = true, .pick = pick.ok ? &pick : NULL};
    st = store_attempt_end(conn, &how, &end, err);
    if (st == HODEI_OK && !end.worker_done && end.released)
        st = handoff_after(conn, a, &pick, &end, &end.run, err);
    if (st != HODEI_OK) {
        PQclear(end.run);
        return st;
    }
    out->final = end.final;
    out->run = end.run;
    return HODEI_OK;
}

hodei_status hodei_handoff_result(PGconn *conn, const hodei_attempt *a, hodei_handoff *out,
                                  hodei_err *err)
{
    return hodei_handoff_result_after(conn, NULL, 0, a, out, err);
}
