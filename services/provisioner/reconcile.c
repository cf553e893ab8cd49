/* Reconcile: what each provider really runs against the registry, every
 * provisioner.reconcile_interval. One replica at a time per provider and
 * scope (provider.h, "Scope"): a PostgreSQL session advisory lock keyed by
 * both, tried, never waited for. A driver with a global view (one Docker
 * engine, one Kubernetes API) is reconciled by one replica of all; one with
 * a host's view (the process provider) by one replica on each host, and
 * only for the workers that host made, so no provisioner takes a worker it
 * cannot see for a lost one.
 *
 *   a real worker whose row is missing or TERMINATED, or made by another
 *     scope (a duplicate) -> destroyed (orphan); one with no scope recorded
 *     (an older release made it) -> its scope is recorded
 *   a row CONNECTING/READY/BUSY/DRAINING whose real worker is gone -> LOST
 *     (the supervisor ends its job's attempt and re-queues it)
 *   a row TERMINATING or LOST whose real worker is gone -> TERMINATED
 *   a row TERMINATING or LOST whose real worker still runs 2 x
 *     provisioner.destroy_grace after the row changed (its destroy request
 *     went to a provisioner of another scope, or was lost) -> destroyed,
 *     TERMINATED (leftovers)
 *
 * Order matters, because sagas create workers meanwhile: the registry is
 * read BEFORE listing (a CONNECTING row is only committed after its worker
 * exists, so it is in the list unless it died), and the rows of the listed
 * workers are read AFTER listing (a worker's row exists, CREATING, before
 * the worker is started). Each provider's result is kept in provider_health
 * for GetProviderHealth. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/buf.h"
#include "hodei/log.h"
#include "hodei/sqlarr.h"
#include "hodei/store.h"
#include "hodei/util.h"
#include "hodei/worker_state.h"
#include "prov.h"

#define REC_PROVIDERS_MAX 256
#define REC_IDS_TEXT_MAX ((size_t)PROV_LIST_MAX * (HODEI_ID_LEN + 4) + 8)

typedef struct {
    int live, orphans, lost, terminated;
} rec_counts;

/* ---------------------------------------------------------------- orphans */

/* The rows of the listed workers: id, state, scope ("" = none). */
enum { KNOWN_ID, KNOWN_STATE, KNOWN_SCOPE };

static hodei_status rec_known(PGconn *conn, const prov_worker_ref *refs, size_t n, PGresult **res,
                              hodei_err *err)
{
    hodei_buf ids;
    hodei_buf_init(&ids, REC_IDS_TEXT_MAX);
    hodei_sqlarr_begin(&ids);
    for (size_t i = 0; i < n; i++)
        hodei_sqlarr_str(&ids, refs[i].worker_id);
    hodei_status st = HODEI_ERR_LIMIT;
    if (hodei_sqlarr_end(&ids)) {
        const char *params[1] = {ids.data};
        st = hodei_db_exec(conn,
                           "SELECT id::text, state, coalesce(provider_scope, '') FROM workers"
                           " WHERE id = ANY($1::uuid[])",
                           1, params, res, err);
    } else {
        hodei_err_set(err, st, "reconcile: worker id list too long");
    }
    hodei_buf_fini(&ids);
    return st;
}

static int rec_row_of(const PGresult *res, const char *id)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(hodei_db_get_str(res, i, KNOWN_ID), id) == 0)
            return i;
    return -1;
}

/* A worker of ours whose row records no scope (an older release made it):
 * it is this scope's from now on. */
static void rec_claim(PGconn *conn, prov_driver *drv, const char *worker_id)
{
    const char *params[2] = {worker_id, drv->scope};
    hodei_err e = {0};
    if (hodei_db_exec(conn,
                      "UPDATE workers SET provider_scope = $2 WHERE id = $1"
                      " AND provider_scope IS NULL AND state <> 'CREATING'",
                      2, params, NULL, &e) == HODEI_OK)
        HLOG_INFO("provider %s: worker %s runs here: scope %s recorded", drv->name, worker_id,
                  drv->scope);
    else
        HLOG_WARN("provider %s: recording the scope of worker %s: %s", drv->name, worker_id, e.msg);
}

/* Why a listed worker is an orphan, or NULL when it is not one. */
static const char *rec_orphan_why(prov_driver *drv, const PGresult *res, int row, bool *claim_out)
{
    *claim_out = false;
    if (row < 0)
        return "has no registry row";
    const char *state = hodei_db_get_str(res, row, KNOWN_STATE);
    const char *scope = hodei_db_get_str(res, row, KNOWN_SCOPE);
    if (hodei_worker_state_is(state, HODEI_WSET_TERMINATED))
        return "is TERMINATED in the registry";
    if (prov_scope_elsewhere(drv, scope))
        return "was made again by a provisioner of another scope";
    *claim_out = drv->scope[0] && !scope[0] && !hodei_worker_state_is(state, HODEI_WSET_CREATING);
    return NULL;
}

static hodei_status rec_orphans(PGconn *conn, prov_driver *drv, const prov_worker_ref *refs,
                                size_t n, rec_counts *cnt, hodei_err *err)
{
    PGresult *res = NULL;
    hodei_status st = rec_known(conn, refs, n, &res, err);
    if (st != HODEI_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        bool claim = false;
        const char *why = rec_orphan_why(drv, res, rec_row_of(res, refs[i].worker_id), &claim);
        if (claim)
            rec_claim(conn, drv, refs[i].worker_id);
        if (!why)
            continue;
        hodei_err e = {0};
        HLOG_WARN("provider %s: worker %s (ref %s) %s: destroying the orphan", drv->name,
                  refs[i].worker_id, refs[i].ref, why);
        if (drv->ops->destroy_worker(drv, refs[i].worker_id, refs[i].ref, &e) == HODEI_OK)
            cnt->orphans++;
        else
            HLOG_WARN("provider %s: orphan %s: %s", drv->name, refs[i].worker_id, e.msg);
    }
    PQclear(res);
    return HODEI_OK;
}

/* ---------------------------------------------------------------- lost */

static hodei_status rec_mark(PGconn *conn, const char *worker_id, const char *state,
                             rec_counts *cnt, hodei_err *err)
{
    const hodei_worker_state_set live =
        HODEI_WSET_CONNECTING | HODEI_WSET_READY | HODEI_WSET_BUSY | HODEI_WSET_DRAINING;
    bool ending = hodei_worker_state_is(state, HODEI_WSET_TERMINATING | HODEI_WSET_LOST);
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    st = ending ? prov_worker_to_terminated(conn, worker_id, err)
                : hodei_store_worker_transition(conn, worker_id, live,
                                                HODEI__V1__WORKER_STATE__WORKER_STATE_LOST, err);
    if (st == HODEI_OK && (st = hodei_db_commit(conn, err)) == HODEI_OK) {
        HLOG_WARN("worker %s was %s but its provider no longer runs it: %s", worker_id, state,
                  hodei_worker_state_name(ending ? HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATED
                                                 : HODEI__V1__WORKER_STATE__WORKER_STATE_LOST));
        ending ? cnt->terminated++ : cnt->lost++;
        return HODEI_OK;
    }
    hodei_db_rollback(conn);
    return st == HODEI_ERR_PRECONDITION || st == HODEI_ERR_NOT_FOUND ? HODEI_OK : st; /* moved on */
}

static bool rec_listed(const prov_worker_ref *refs, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(refs[i].worker_id, id) == 0)
            return true;
    return false;
}

/* Snapshot columns: the rows read before listing. */
enum { REC_ID, REC_STATE, REC_REF, REC_AGE_MS };

/* A TERMINATING or LOST worker that still runs well after its row changed:
 * its destroy request was handled where it cannot be seen (another scope)
 * or never came. */
static hodei_status rec_leftover(prov *p, PGconn *conn, prov_driver *drv, const PGresult *snap,
                                 int i, rec_counts *cnt, hodei_err *err)
{
    const char *id = hodei_db_get_str(snap, i, REC_ID);
    const char *state = hodei_db_get_str(snap, i, REC_STATE);
    if (!hodei_worker_state_is(state, HODEI_WSET_TERMINATING | HODEI_WSET_LOST) ||
        hodei_db_get_i64(snap, i, REC_AGE_MS) < 2 * p->cfg->destroy_grace_ms)
        return HODEI_OK;
    hodei_err e = {0};
    HLOG_WARN("provider %s: worker %s is %s but still runs: destroying it", drv->name, id, state);
    if (drv->ops->destroy_worker(drv, id, hodei_db_get_str(snap, i, REC_REF), &e) != HODEI_OK) {
        HLOG_WARN("provider %s: destroying worker %s: %s", drv->name, id, e.msg);
        return HODEI_OK;
    }
    return rec_mark(conn, id, state, cnt, err);
}

static hodei_status rec_lost(prov *p, PGconn *conn, prov_driver *drv, const PGresult *snap,
                             const prov_worker_ref *refs, size_t n, rec_counts *cnt, hodei_err *err)
{
    hodei_status st = HODEI_OK;
    for (int i = 0; st == HODEI_OK && i < PQntuples(snap); i++) {
        const char *id = hodei_db_get_str(snap, i, REC_ID);
        prov_worker_status ws = PROV_WORKER_RUNNING;
        hodei_err e = {0};
        if (rec_listed(refs, n, id)) {
            st = rec_leftover(p, conn, drv, snap, i, cnt, err);
            continue;
        }
        if (drv->ops->get_status(drv, id, hodei_db_get_str(snap, i, REC_REF), &ws, NULL, &e) !=
                HODEI_OK ||
            ws != PROV_WORKER_GONE)
            continue;
        st = rec_mark(conn, id, hodei_db_get_str(snap, i, REC_STATE), cnt, err);
    }
    return st;
}

/* ---------------------------------------------------------------- provider */

/* Only the rows this replica's scope may judge: every row of a driver with
 * a global view, else those its own scope made. */
static hodei_status rec_provider(prov *p, PGconn *conn, prov_driver *drv, rec_counts *cnt,
                                 hodei_err *err)
{
    const char *params[2] = {drv->name, drv->scope};
    PGresult *snapshot = NULL;
    size_t n = 0;
    prov_worker_ref *refs = calloc(PROV_LIST_MAX, sizeof *refs);
    if (!refs)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "reconcile: out of memory");
    hodei_status st =
        hodei_db_exec(conn,
                      "SELECT id::text, state, coalesce(provider_ref, ''),"
                      " (extract(epoch FROM now() - updated_at) * 1000)::bigint"
                      " FROM workers WHERE provider = $1"
                      " AND state IN ('CONNECTING','READY','BUSY','DRAINING','TERMINATING','LOST')"
                      " AND ($2 = '' OR provider_scope = $2)",
                      2, params, &snapshot, err);
    if (st == HODEI_OK)
        st = drv->ops->list_workers(drv, refs, PROV_LIST_MAX, &n, err);
    if (st == HODEI_OK)
        st = rec_orphans(conn, drv, refs, n, cnt, err);
    if (st == HODEI_OK)
        st = rec_lost(p, conn, drv, snapshot, refs, n, cnt, err);
    cnt->live = (int)n - cnt->orphans;
    PQclear(snapshot);
    free(refs);
    return st;
}

static hodei_status rec_health_write(prov *p, PGconn *conn, const char *provider, bool healthy,
                                     const char *msg, const rec_counts *cnt, hodei_err *err)
{
    char live[PROV_INT_TEXT_MAX], orphans[PROV_INT_TEXT_MAX], lost[PROV_INT_TEXT_MAX];
    snprintf(live, sizeof live, "%d", cnt->live);
    snprintf(orphans, sizeof orphans, "%d", cnt->orphans);
    snprintf(lost, sizeof lost, "%d", cnt->lost);
    const char *params[7] = {provider, healthy ? "t" : "f", msg, live, orphans, lost, p->instance};
    return hodei_db_exec(
        conn,
        "INSERT INTO provider_health (provider, healthy, message, live_workers,"
        " orphans_destroyed, lost_marked, checked_by, checked_at)"
        " VALUES ($1, $2::bool, $3, $4::int, $5::int, $6::int, $7, now())"
        " ON CONFLICT (provider) DO UPDATE SET healthy = EXCLUDED.healthy,"
        " message = EXCLUDED.message, live_workers = EXCLUDED.live_workers,"
        " orphans_destroyed = EXCLUDED.orphans_destroyed, lost_marked = EXCLUDED.lost_marked,"
        " checked_by = EXCLUDED.checked_by, checked_at = EXCLUDED.checked_at",
        7, params, NULL, err);
}

/* The provider's check and its provider_health row; the caller holds the
 * lock of (provider, scope). */
static hodei_status rec_check(prov *p, PGconn *conn, const char *provider, prov_driver *drv,
                              hodei_status drv_st, const hodei_err *drv_err, hodei_err *err)
{
    rec_counts cnt = {0};
    char msg[PROV_HEALTH_MSG_MAX + PROV_ERROR_MAX + PROV_SCOPE_MAX];
    char hmsg[PROV_HEALTH_MSG_MAX] = "";
    bool healthy = false;
    hodei_err e = *drv_err;
    hodei_status st = drv_st;
    if (st == HODEI_OK) {
        healthy = drv->ops->health(drv, hmsg);
        st = rec_provider(p, conn, drv, &cnt, &e);
    }
    if (st == HODEI_OK)
        snprintf(msg, sizeof msg, "%s%s%s%s; live=%d orphans_destroyed=%d lost=%d terminated=%d",
                 drv->scope[0] ? "scope " : "", drv->scope, drv->scope[0] ? ": " : "", hmsg,
                 cnt.live, cnt.orphans, cnt.lost, cnt.terminated);
    else
        snprintf(msg, sizeof msg, "reconcile failed: %s", e.msg);
    if (PQstatus(conn) != CONNECTION_OK)
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "%s", e.msg);
    return rec_health_write(p, conn, provider, healthy && st == HODEI_OK, msg, &cnt, err);
}

/* ---------------------------------------------------------------- round */

/* The session advisory lock of (provider, scope), keyed by a hash of both
 * seeded with provisioner.reconcile_lock_key. */
static hodei_status rec_lock(prov *p, PGconn *conn, const char *provider, const char *scope,
                             bool take, bool *got, hodei_err *err)
{
    char seed[PROV_INT_TEXT_MAX];
    const char *params[3] = {provider, scope, seed};
    PGresult *res = NULL;
    snprintf(seed, sizeof seed, "%" PRId64, p->cfg->reconcile_lock_key);
    hodei_status st = hodei_db_exec(
        conn,
        take ? "SELECT pg_try_advisory_lock(hashtextextended($1 || '/' || $2, $3::bigint))"
             : "SELECT pg_advisory_unlock(hashtextextended($1 || '/' || $2, $3::bigint))",
        3, params, &res, err);
    if (st == HODEI_OK && got)
        *got = strcmp(hodei_db_get_str(res, 0, 0), "t") == 0;
    PQclear(res);
    return st;
}

/* One provider, when no other replica of the same scope is on it. */
static hodei_status rec_one(prov *p, PGconn *conn, const char *provider, hodei_err *err)
{
    prov_driver *drv = NULL;
    hodei_err drv_err = {0};
    bool got = false;
    hodei_status drv_st = prov_registry_get(p->reg, conn, provider, &drv, &drv_err);
    const char *scope = drv_st == HODEI_OK ? drv->scope : "";
    hodei_status st = rec_lock(p, conn, provider, scope, true, &got, err);
    if (st != HODEI_OK || !got)
        return st;
    st = rec_check(p, conn, provider, drv, drv_st, &drv_err, err);
    hodei_err uerr = {0};
    if (rec_lock(p, conn, provider, scope, false, NULL, &uerr) != HODEI_OK && st == HODEI_OK) {
        *err = uerr; /* the caller closes it: the lock goes with the session */
        st = HODEI_ERR_UNAVAILABLE;
    }
    return st;
}

static hodei_status rec_all(prov *p, PGconn *conn, hodei_err *err)
{
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(
        conn, "SELECT name FROM providers ORDER BY name LIMIT " HODEI_STR(REC_PROVIDERS_MAX), 0,
        NULL, &res, err);
    for (int i = 0; st == HODEI_OK && i < PQntuples(res) && i < REC_PROVIDERS_MAX &&
                    !hodei_daemon_stopping(p->d);
         i++)
        st = rec_one(p, conn, hodei_db_get_str(res, i, 0), err);
    PQclear(res);
    return st;
}

static void rec_round(prov *p)
{
    PGconn *conn = NULL;
    hodei_err err = {0};
    hodei_status st = prov_conn(p, &conn, &err);
    if (st == HODEI_OK)
        st = rec_all(p, conn, &err);
    if (st != HODEI_OK)
        HLOG_WARN("reconcile: %s", err.msg);
    prov_release(p, conn, st == HODEI_OK ? HODEI_OK : HODEI_ERR_UNAVAILABLE);
}

static void *rec_thread_main(void *arg)
{
    prov *p = arg;
    do {
        rec_round(p);
    } while (!hodei_daemon_wait(p->d, p->cfg->reconcile_interval_ms));
    return NULL;
}

hodei_status prov_reconcile_start(prov *p, hodei_err *err)
{
    int rc = pthread_create(&p->reconcile_thread, NULL, rec_thread_main, p);
    if (rc != 0)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "reconcile thread: %s", strerror(rc));
    p->reconcile_running = true;
    return HODEI_OK;
}

void prov_reconcile_stop(prov *p)
{
    if (!p->reconcile_running)
        return;
    pthread_join(p->reconcile_thread, NULL);
    p->reconcile_running = false;
}
