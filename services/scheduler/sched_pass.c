/* One scheduling pass, one transaction: lock the best pending jobs and the
 * ready workers (FOR UPDATE SKIP LOCKED, so no two passes ever take the
 * same row), match them in C, write every assignment and its JobAssigned
 * event with one set-based statement, hand the unmet jobs to
 * sched_provision, commit.
 *
 * The gate: replicas that share scheduler.lock_key run one pass at a time
 * and skip a pass another replica is about to run. Two advisory locks:
 * RUN (key, transaction-level) is held by the pass running; NEXT (key + 1,
 * session-level) by the one replica waiting to run the next pass, from
 * before it waits for RUN until just before its pass reads anything. A
 * replica woken (a notification, an event, its timer) first tries NEXT:
 * held means a pass will start after this wake-up and see what woke it, so
 * it runs none; free, it takes NEXT, waits for RUN, lets NEXT go and reads
 * (one round trip). One wake-up of every replica by the same commit so
 * costs one pass, not one per replica, and none is lost: whatever committed
 * before a replica found NEXT held is seen by the pass of NEXT's holder. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assign.h"
#include "hodei/db.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/sched_strategy.h"
#include "hodei/time.h"
#include "hodei/worker_state.h"
#include "sched_int.h"

#define PASS_INT_TEXT_MAX 24

/* Pending jobs, then (only when there are any) the ready workers, locked
 * in one round trip. How many jobs: at most batch_max, and no more than
 * LOCK_JOBS_PER_WORKER per ready worker (an unlocked count) plus the
 * lookahead that shows unmet needs; locking a backlog costs every pass.
 * The strategy set at run time rides along on worker rows. The Append runs
 * its branches in order: job rows come first. */
static const char lock_sql[] =
    "WITH j AS ("
    "  SELECT id, priority, cpu_millis, memory_bytes, storage_bytes, gpu_count, architecture,"
    "         provider, constraints, epoch, created_at, not_before, image"
    "    FROM jobs"
    "   WHERE state = 'PENDING' AND (not_before IS NULL OR not_before <= now())"
    "   ORDER BY priority DESC, created_at, id"
    "   LIMIT least($1::int, (SELECT count(*) FROM workers WHERE state = 'READY') * $3::int"
    "                        + $4::int)"
    "   FOR UPDATE SKIP LOCKED"
    "), w AS ("
    "  SELECT w.id, w.provider, w.cpu_millis, w.memory_bytes, w.storage_bytes, w.gpu_count,"
    "         w.architecture, w.labels, p.cost_per_hour, w.assign_load, w.last_assigned_at,"
    "         w.idle_since, w.image"
    "    FROM workers w LEFT JOIN providers p ON p.name = w.provider"
    "   WHERE w.state = 'READY'"
    "   ORDER BY w.id"
    "   LIMIT $2::int"
    "   FOR UPDATE OF w SKIP LOCKED"
    ")"
    "SELECT 'j', id::text, provider, cpu_millis, memory_bytes, storage_bytes, gpu_count,"
    "       architecture, constraints::text, priority, epoch,"
    "       NULL::float8, NULL::float8, NULL::float8, " HODEI_STORE_JOB_DUE_AGE_SQL(
        "j") ","
             "       NULL::text, image"
             "  FROM j"
             " UNION ALL "
             "SELECT 'w', id::text, provider, cpu_millis, memory_bytes, storage_bytes, gpu_count,"
             "       architecture, labels::text, NULL, NULL, coalesce(cost_per_hour, 0), "
             "assign_load,"
             "       coalesce(extract(epoch FROM now() - last_assigned_at)::float8, -1),"
             "       coalesce((extract(epoch FROM idle_since) * 1000000)::bigint, 0),"
             "       (SELECT strategy FROM scheduler_settings), image"
             "  FROM w WHERE EXISTS (SELECT 1 FROM j)";

enum {
    L_KIND,
    L_ID,
    L_PROVIDER,
    L_CPU,
    L_MEM,
    L_STORAGE,
    L_GPU,
    L_ARCH,
    L_JSON,
    L_PRIO,
    L_EPOCH,
    L_COST,
    L_LOAD,
    L_AGE,
    L_IDLE, /* job rows: µs since the job became due */
    L_STRATEGY,
    L_IMAGE
};

#define LOCK_NPARAMS 4
#define LOCK_JOBS_PER_WORKER 4 /* jobs offered to each ready worker per pass */

static const char gate_next_sql[] = "SELECT pg_try_advisory_lock($1::bigint)";
static const char gate_run_sql[] = "SELECT pg_advisory_xact_lock($1::bigint)";
static const char gate_next_unlock_sql[] = "SELECT pg_advisory_unlock($1::bigint)";
/* The same when held (a bigint key is classid:objid, objsubid 1), without
 * the warning pg_advisory_unlock gives for a lock not held. */
static const char gate_next_release_sql[] =
    "SELECT pg_advisory_unlock($1::bigint) FROM pg_locks"
    " WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1"
    "   AND (classid::bigint << 32 | objid::bigint) = $1::bigint";

/* ------------------------------------------------------------------ gate */

/* Takes NEXT; *go = false when another replica holds it. */
static hodei_status pass_gate(sched *s, bool *go, hodei_err *err)
{
    char next[PASS_INT_TEXT_MAX];
    const char *params[1] = {next};
    PGresult *res = NULL;
    hodei_status st;

    snprintf(next, sizeof next, "%" PRId64, s->cfg->lock_key + 1);
    if ((st = hodei_db_exec(s->conn, gate_next_sql, 1, params, &res, err)) != HODEI_OK)
        return st;
    *go = PQntuples(res) == 1 && hodei_db_get_str(res, 0, 0)[0] == 't';
    PQclear(res);
    return HODEI_OK;
}

/* After a failed pass: lets NEXT go if the pipeline failed before doing so
 * (and only NEXT: the listener lock is held by the same session). */
static void pass_gate_release(sched *s)
{
    char next[PASS_INT_TEXT_MAX];
    const char *params[1] = {next};
    hodei_err e = {0};

    snprintf(next, sizeof next, "%" PRId64, s->cfg->lock_key + 1);
    if (hodei_db_exec(s->conn, gate_next_release_sql, 1, params, NULL, &e) != HODEI_OK)
        HLOG_WARN("pass gate: %s", e.msg);
}

/* ------------------------------------------------------------------ lock */

static bool pass_job_fill(sched *s, const PGresult *res, int row, match_job *j)
{
    const char *constraints = hodei_db_get_str(res, row, L_JSON);

    j->id = hodei_db_get_str(res, row, L_ID);
    j->priority = (int32_t)hodei_db_get_i64(res, row, L_PRIO);
    j->fit.need.cpu_millis = hodei_db_get_i64(res, row, L_CPU);
    j->fit.need.memory_bytes = hodei_db_get_i64(res, row, L_MEM);
    j->fit.need.storage_bytes = hodei_db_get_i64(res, row, L_STORAGE);
    j->fit.need.gpu_count = hodei_db_get_i64(res, row, L_GPU);
    j->fit.need.architecture = hodei_db_get_str(res, row, L_ARCH);
    j->fit.provider = hodei_db_get_str(res, row, L_PROVIDER);
    j->fit.image = hodei_db_get_str(res, row, L_IMAGE);
    if (hodei_fit_labels_parse(constraints, strlen(constraints), &j->fit.constraints))
        return true;
    if (sched_seen_first(s->seen, j->id))
        HLOG_WARN("job %s waits: its constraints are not a flat object of at most %d labels", j->id,
                  HODEI_FIT_LABELS_MAX);
    return false;
}

static void pass_worker_fill(sched *s, const PGresult *res, int row, match_worker *w)
{
    const char *labels = hodei_db_get_str(res, row, L_JSON);
    double age_s = strtod(hodei_db_get_str(res, row, L_AGE), NULL);
    double load = strtod(hodei_db_get_str(res, row, L_LOAD), NULL);

    w->id = hodei_db_get_str(res, row, L_ID);
    w->fit.provider = hodei_db_get_str(res, row, L_PROVIDER);
    w->fit.image = hodei_db_get_str(res, row, L_IMAGE);
    w->fit.cap.cpu_millis = hodei_db_get_i64(res, row, L_CPU);
    w->fit.cap.memory_bytes = hodei_db_get_i64(res, row, L_MEM);
    w->fit.cap.storage_bytes = hodei_db_get_i64(res, row, L_STORAGE);
    w->fit.cap.gpu_count = hodei_db_get_i64(res, row, L_GPU);
    w->fit.cap.architecture = hodei_db_get_str(res, row, L_ARCH);
    w->cost_per_hour = strtod(hodei_db_get_str(res, row, L_COST), NULL);
    w->load = age_s < 0 ? 0.0 : load * exp(-age_s / HODEI_SCHED_LOAD_TAU_S);
    w->idle_since_us = hodei_db_get_i64(res, row, L_IDLE);
    if (!hodei_fit_labels_parse(labels, strlen(labels), &w->fit.labels) &&
        sched_seen_first(s->seen, w->id))
        HLOG_WARN("worker %s: labels are not a flat object of at most %d labels; only jobs"
                  " without constraints fit it",
                  w->id, HODEI_FIT_LABELS_MAX);
}

/* The strategy set at run time, else the configured one. */
static void pass_strategy(sched *s, const PGresult *res, int row)
{
    Hodei__V1__SchedulingStrategy now = s->default_strategy;
    if (!hodei_db_is_null(res, row, L_STRATEGY))
        hodei_sched_strategy_parse(hodei_db_get_str(res, row, L_STRATEGY), &now);
    if (now != s->strategy)
        HLOG_INFO("strategy: %s", hodei_sched_strategy_name(now));
    s->strategy = now;
}

/* Locks the best pending jobs and, when there are any, the ready workers;
 * out->jobs and out->workers get how many can be matched. */
static hodei_status pass_lock(sched *s, PGresult **res, sched_pass_stats *out, hodei_err *err)
{
    char jobs_max[PASS_INT_TEXT_MAX], workers_max[PASS_INT_TEXT_MAX];
    char per_worker[PASS_INT_TEXT_MAX], lookahead[PASS_INT_TEXT_MAX];
    char run[PASS_INT_TEXT_MAX], next[PASS_INT_TEXT_MAX];
    const char *params[LOCK_NPARAMS] = {jobs_max, workers_max, per_worker, lookahead};
    const char *run_params[1] = {run}, *next_params[1] = {next};
    hodei_status st;

    snprintf(jobs_max, sizeof jobs_max, "%" PRId64, s->cfg->batch_max);
    snprintf(workers_max, sizeof workers_max, "%" PRId64, s->cfg->workers_max);
    snprintf(per_worker, sizeof per_worker, "%d", LOCK_JOBS_PER_WORKER);
    snprintf(lookahead, sizeof lookahead, "%" PRId64,
             hodei_mono_ms() < s->lookahead_off_until_ms ? 0 : s->cfg->lookahead);
    snprintf(run, sizeof run, "%" PRId64, s->cfg->lock_key);
    snprintf(next, sizeof next, "%" PRId64, s->cfg->lock_key + 1);
    const hodei_db_cmd cmds[4] = {
        {.sql = "BEGIN"},
        {.sql = gate_run_sql, .n_params = 1, .params = run_params},
        {.sql = gate_next_unlock_sql, .n_params = 1, .params = next_params},
        {.sql = lock_sql, .n_params = LOCK_NPARAMS, .params = params, .res = res},
    };
    if ((st = hodei_db_pipeline(s->conn, cmds, 4, err)) != HODEI_OK)
        return st;
    for (int r = 0; r < PQntuples(*res); r++) {
        if (hodei_db_get_str(*res, r, L_KIND)[0] == 'w') {
            if (out->workers == 0)
                pass_strategy(s, *res, r);
            pass_worker_fill(s, *res, r, &s->workers[out->workers++]);
        } else if (pass_job_fill(s, *res, r, &s->jobs[out->jobs])) {
            s->job_due_ns[out->jobs] = hodei_mono_ns() - hodei_db_get_i64(*res, r, L_IDLE) * 1000;
            s->job_epoch[out->jobs++] = hodei_db_get_i64(*res, r, L_EPOCH);
        }
    }
    return HODEI_OK;
}

/* ---------------------------------------------------------------- assign */

static size_t pass_match(sched *s, size_t n_jobs, size_t n_workers)
{
    match_problem p = {
        .strategy = s->strategy,
        .jobs = s->jobs,
        .n_jobs = n_jobs,
        .workers = s->workers,
        .n_workers = n_workers,
        .taken = s->taken,
        .assign = s->assign,
    };
    memcpy(p.rr_after, s->rr_after, sizeof p.rr_after);
    size_t assigned = match_solve(&p);
    memcpy(s->rr_after, p.rr_after, sizeof s->rr_after);
    return assigned;
}

/* Writes the assignments (libs/store's one assignment statement); with
 * commit, COMMIT rides in the same round trip. */
static hodei_status pass_assign(sched *s, size_t n_jobs, size_t assigned, bool commit,
                                hodei_err *err)
{
    const char *params[HODEI_ASSIGN_NPARAMS];
    PGresult *res = NULL;
    hodei_status st;

    if ((st = hodei_job_transition_check(HODEI__V1__JOB_STATE__JOB_STATE_PENDING,
                                         HODEI__V1__JOB_STATE__JOB_STATE_ASSIGNED, err)) !=
            HODEI_OK ||
        (st = hodei_worker_transition_check(HODEI__V1__WORKER_STATE__WORKER_STATE_READY,
                                            HODEI__V1__WORKER_STATE__WORKER_STATE_BUSY, err)) !=
            HODEI_OK)
        return st;
    hodei_assign_set_reset(&s->assign_set);
    for (size_t i = 0; i < n_jobs && st == HODEI_OK; i++) {
        if (s->assign[i] >= 0)
            st = hodei_assign_set_add(&s->assign_set, s->jobs[i].id, s->workers[s->assign[i]].id,
                                      s->job_epoch[i], err);
    }
    if (st != HODEI_OK)
        return st;
    hodei_assign_set_params(&s->assign_set, false, params);
    const hodei_db_cmd cmds[2] = {
        {.sql = hodei_assign_sql, .n_params = HODEI_ASSIGN_NPARAMS, .params = params, .res = &res},
        {.sql = "COMMIT"},
    };
    if ((st = hodei_db_pipeline(s->conn, cmds, commit ? 2 : 1, err)) != HODEI_OK)
        return st;
    int applied = PQntuples(res);
    PQclear(res);
    if (applied != (int)assigned) /* cannot happen under our locks */
        HLOG_ERROR("assignment applied %d of %zu pairs (the rest changed under a lock?)", applied,
                   assigned);
    return HODEI_OK;
}

/* ------------------------------------------------------------------ pass */

/* Round trips: the gate's try; BEGIN + the gate + lock; then the
 * assignment + COMMIT, or, when jobs are left without a worker, the
 * assignment, the provisioning statements and COMMIT. */
hodei_status sched_pass_run(sched *s, sched_pass_stats *out, hodei_err *err)
{
    PGresult *locked = NULL;
    hodei_status st;
    bool unmet, go = false;

    memset(out, 0, sizeof *out);
    if ((st = pass_gate(s, &go, err)) != HODEI_OK)
        return st;
    if (!go) {
        out->skipped = true;
        return HODEI_OK;
    }
    if ((st = pass_lock(s, &locked, out, err)) != HODEI_OK)
        goto out_rollback;
    for (size_t i = 0; i < out->jobs; i++)
        s->assign[i] = -1;
    if (out->workers > 0)
        out->assigned = pass_match(s, out->jobs, out->workers);
    unmet = out->assigned < out->jobs;
    if (out->assigned > 0)
        st = pass_assign(s, out->jobs, out->assigned, !unmet, err);
    if (st == HODEI_OK && unmet)
        st = sched_provision(s, out->jobs, out->workers, &out->provisioned, err);
    if (st == HODEI_OK && (unmet || out->assigned == 0))
        st = hodei_db_commit(s->conn, err);
    if (st == HODEI_OK) {
        int64_t now_ns = hodei_mono_ns();
        for (size_t i = 0; i < out->jobs; i++) {
            if (s->assign[i] < 0)
                continue;
            sched_feed_hint(s, s->jobs[i].id, s->workers[s->assign[i]].id, s->job_epoch[i] + 1);
            hodei_metric_observe_micro(s->m.queue_wait, (now_ns - s->job_due_ns[i]) / 1000);
        }
        goto out_clear;
    }
out_rollback:
    if (!hodei_db_status_broken(st)) {
        hodei_db_rollback(s->conn);
        pass_gate_release(s);
    }
out_clear:
    PQclear(locked);
    return st;
}
