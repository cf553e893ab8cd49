/* Workers that stopped answering: READY/BUSY/DRAINING with no heartbeat for
 * supervisor.heartbeat_timeout become LOST, their open attempts end
 * ("worker lost"), and the provisioner is asked to destroy them; workers
 * that never registered within supervisor.registration_timeout are
 * TERMINATING and destroy-requested.
 *
 * Lock order: a worker row (SKIP LOCKED), then its jobs with SKIP LOCKED, so
 * this check never waits for a job another service holds while holding a
 * worker (the edge and the scheduler lock a job, then its worker). A job
 * skipped that way is ended by the orphaned-jobs check on a later tick. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/store.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "sup_int.h"

#define SUP_JOBS_TEXT_MAX (SUP_JOBS_PER_WORKER_MAX * 96)

/* A worker is judged by its last heartbeat, or by when it entered its
 * current state when it never sent one, and only for the time an edge was
 * up to hear it (SUP_SILENT_WHILE_EDGE_UP_SQL). */
#define SUP_LOST_SQL_(ONE, LOCK)                                                                   \
    "SELECT id::text, provider,"                                                                   \
    " (extract(epoch FROM now() - coalesce(last_heartbeat_at, updated_at)) * 1000)::int8"          \
    " FROM workers WHERE state IN ('READY', 'BUSY', 'DRAINING')"                                   \
    " AND (last_heartbeat_at < now() - $1::bigint * interval '1 millisecond'"                      \
    "  OR (last_heartbeat_at IS NULL"                                                              \
    "   AND updated_at < now() - $1::bigint * interval '1 millisecond'))"                          \
    " AND " SUP_SILENT_WHILE_EDGE_UP_SQL(                                                          \
        "coalesce(workers.last_heartbeat_at, workers.updated_at)") ONE                             \
        " ORDER BY coalesce(last_heartbeat_at, updated_at) LIMIT $2" LOCK
#define SUP_LOST_SQL SUP_LOST_SQL_("", "")
#define SUP_LOST_ONE_SQL SUP_LOST_SQL_(" AND id = $3::uuid", " FOR UPDATE SKIP LOCKED")
enum { SUP_LOST_ID = 0, SUP_LOST_PROVIDER, SUP_LOST_AGE_MS };

#define SUP_OPEN_JOBS_SQL                                                                          \
    "SELECT id::text, epoch, cancel_requested FROM jobs"                                           \
    " WHERE worker_id = $1 AND state IN ('ASSIGNED', 'RUNNING')"                                   \
    " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
enum { SUP_OPEN_ID = 0, SUP_OPEN_EPOCH, SUP_OPEN_CANCEL };

#define SUP_UNREGISTERED_SQL_(ONE, LOCK)                                                           \
    "SELECT id::text, provider, state, (extract(epoch FROM now() - created_at) * 1000)::int8"      \
    " FROM workers WHERE state IN ('CREATING', 'CONNECTING')"                                      \
    " AND created_at < now() - $1::bigint * interval '1 millisecond'" ONE                          \
    " ORDER BY created_at LIMIT $2" LOCK
#define SUP_UNREGISTERED_SQL SUP_UNREGISTERED_SQL_("", "")
#define SUP_UNREGISTERED_ONE_SQL                                                                   \
    SUP_UNREGISTERED_SQL_(" AND id = $3::uuid", " FOR UPDATE SKIP LOCKED")
enum { SUP_UNREG_ID = 0, SUP_UNREG_PROVIDER, SUP_UNREG_STATE, SUP_UNREG_AGE_MS };

#define SUP_LIVE_STATES (HODEI_WSET_READY | HODEI_WSET_BUSY | HODEI_WSET_DRAINING)
#define SUP_UNREGISTERED_STATES (HODEI_WSET_CREATING | HODEI_WSET_CONNECTING)

hodei_status sup_worker_lose(sup *s, const char *worker_id, const char *reason, bool *lost,
                             hodei_err *err)
{
    hodei_status st =
        hodei_store_worker_retire(s->conn, worker_id, SUP_LIVE_STATES,
                                  HODEI__V1__WORKER_STATE__WORKER_STATE_LOST, reason, err);
    *lost = st == HODEI_OK;
    if (st == HODEI_ERR_PRECONDITION || st == HODEI_ERR_NOT_FOUND)
        return HODEI_OK; /* already lost, draining away or gone: nothing to add */
    return st;
}

/* Appends " job=<id> job_state=<its new state>" to text. */
static void sup_jobs_text_add(char *text, size_t cap, const char *job_id, Hodei__V1__JobState final)
{
    size_t len = strlen(text);
    if (len < cap)
        snprintf(text + len, cap - len, " job=%s job_state=%s", job_id,
                 hodei_job_state_name(final));
}

/* Ends the open attempts of a lost worker (those no one else holds now). */
static hodei_status sup_lost_jobs_end(sup *s, const char *worker_id, char *text, size_t cap,
                                      hodei_err *err)
{
    char limit[SUP_INT_TEXT_MAX];
    const char *params[] = {worker_id, limit};
    PGresult *res = NULL;

    sup_i64_text(SUP_JOBS_PER_WORKER_MAX, limit);
    hodei_status st = hodei_db_exec(s->conn, SUP_OPEN_JOBS_SQL, 2, params, &res, err);
    for (int i = 0; st == HODEI_OK && i < PQntuples(res); i++) {
        Hodei__V1__JobState final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
        const char *job_id = hodei_db_get_str(res, i, SUP_OPEN_ID);
        st = sup_job_fail(s, job_id, worker_id, hodei_db_get_i64(res, i, SUP_OPEN_EPOCH),
                          hodei_db_get_str(res, i, SUP_OPEN_CANCEL)[0] == 't', "worker lost",
                          &final, err);
        if (st == HODEI_OK)
            sup_jobs_text_add(text, cap, job_id, final);
    }
    PQclear(res);
    return st;
}

static hodei_status sup_lost_one(sup *s, const PGresult *res, int row, hodei_err *err)
{
    const char *worker_id = hodei_db_get_str(res, row, SUP_LOST_ID);
    const char *provider = hodei_db_get_str(res, row, SUP_LOST_PROVIDER);
    char jobs[SUP_JOBS_TEXT_MAX] = "";

    hodei_status st = sup_lost_jobs_end(s, worker_id, jobs, sizeof jobs, err);
    if (st == HODEI_OK)
        st = hodei_store_worker_retire(s->conn, worker_id, SUP_LIVE_STATES,
                                       HODEI__V1__WORKER_STATE__WORKER_STATE_LOST, "worker lost",
                                       err);
    if (st == HODEI_OK)
        sup_note(s,
                 "worker lost: worker=%s provider=%s heartbeat_age_ms=%" PRId64
                 "%s -> LOST, destroy requested",
                 worker_id, provider, hodei_db_get_i64(res, row, SUP_LOST_AGE_MS),
                 jobs[0] ? jobs : " job=none");
    return st;
}

#define SUP_EDGES_AVAILABLE_SQL                                                                    \
    "SELECT NOT EXISTS (SELECT 1 FROM edges) OR EXISTS (SELECT 1 FROM edges"                       \
    " WHERE seen_at >= now() - $1::bigint * interval '1 millisecond' / 2"                          \
    " AND up_since <= now() - $1::bigint * interval '1 millisecond')"
/* Rows of edges gone for this long are forgotten. */
#define SUP_EDGES_PRUNE_SQL "DELETE FROM edges WHERE seen_at < now() - interval '1 day'"
#define SUP_EDGES_PRUNE_EVERY_MS 60000

hodei_status sup_edges_available(sup *s, int64_t window_ms, const char *what, sup_gate *gate,
                                 bool *ok, hodei_err *err)
{
    char window[SUP_INT_TEXT_MAX];
    const char *params[] = {window};
    PGresult *res = NULL;
    int64_t now = hodei_mono_ms();

    if (now >= s->next_edges_prune_ms) {
        hodei_status st = hodei_db_exec(s->conn, SUP_EDGES_PRUNE_SQL, 0, NULL, NULL, err);
        if (st != HODEI_OK)
            return st;
        s->next_edges_prune_ms = now + SUP_EDGES_PRUNE_EVERY_MS;
    }
    sup_i64_text(window_ms, window);
    hodei_status st = hodei_db_exec(s->conn, SUP_EDGES_AVAILABLE_SQL, 1, params, &res, err);
    if (st == HODEI_OK)
        *ok = hodei_db_get_str(res, 0, 0)[0] == 't';
    PQclear(res);
    if (st != HODEI_OK)
        return st;
    sup_gate was = *gate;
    *gate = *ok ? SUP_GATE_OPEN : SUP_GATE_HELD;
    if (*gate == was)
        return HODEI_OK;
    if (*ok)
        HLOG_INFO("%s running: an edge has been up for %" PRId64 " ms", what, window_ms);
    else if (was == SUP_GATE_OPEN)
        HLOG_WARN("%s held: no edge has been up for the last %" PRId64
                  " ms, so a silent worker may only be cut off from the edges; waiting",
                  what, window_ms);
    else
        HLOG_INFO("%s waits until an edge has been up for %" PRId64 " ms", what, window_ms);
    return HODEI_OK;
}

hodei_status sup_check_lost_workers(sup *s, int *n_out, hodei_err *err)
{
    char setting[SUP_INT_TEXT_MAX];
    bool ok = false;

    *n_out = 0;
    hodei_status st = sup_edges_available(s, s->cfg->heartbeat_timeout_ms, "lost-worker check",
                                          &s->gate_lost, &ok, err);
    if (st != HODEI_OK || !ok)
        return st;
    sup_i64_text(s->cfg->heartbeat_timeout_ms, setting);
    return sup_judge_each(s, "lost worker", SUP_LOST_SQL, SUP_LOST_ONE_SQL, setting, sup_lost_one,
                          n_out, err);
}

static hodei_status sup_unregistered_one(sup *s, const PGresult *res, int row, hodei_err *err)
{
    const char *worker_id = hodei_db_get_str(res, row, SUP_UNREG_ID);
    const char *provider = hodei_db_get_str(res, row, SUP_UNREG_PROVIDER);

    hodei_status st = hodei_store_worker_retire(s->conn, worker_id, SUP_UNREGISTERED_STATES,
                                                HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING,
                                                "registration timeout", err);
    if (st == HODEI_OK)
        sup_note(s,
                 "registration timeout: worker=%s provider=%s state=%s age_ms=%" PRId64
                 " -> TERMINATING, destroy requested",
                 worker_id, provider, hodei_db_get_str(res, row, SUP_UNREG_STATE),
                 hodei_db_get_i64(res, row, SUP_UNREG_AGE_MS));
    return st;
}

hodei_status sup_check_registration(sup *s, int *n_out, hodei_err *err)
{
    char setting[SUP_INT_TEXT_MAX];

    sup_i64_text(s->cfg->registration_timeout_ms, setting);
    return sup_judge_each(s, "unregistered worker", SUP_UNREGISTERED_SQL, SUP_UNREGISTERED_ONE_SQL,
                          setting, sup_unregistered_one, n_out, err);
}
