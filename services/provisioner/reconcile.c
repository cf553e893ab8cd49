/* Reconcile: what each provider really runs against the registry, every
 * provisioner.reconcile_interval, by one replica at a time (a PostgreSQL
 * session advisory lock, tried, never waited for).
 *
 *   a real worker whose row is missing or TERMINATED -> destroyed (orphan)
 *   a row CONNECTING/READY/BUSY/DRAINING whose real worker is gone -> LOST
 *     (the supervisor ends its job's attempt and re-queues it)
 *   a row TERMINATING whose real worker is gone -> TERMINATED
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
#define REC_STATE_MAX 16
#define REC_IDS_TEXT_MAX ((size_t)PROV_LIST_MAX * (HODEI_ID_LEN + 4) + 8)

typedef struct {
    int live, orphans, lost, terminated;
} rec_counts;

/* ---------------------------------------------------------------- orphans */

/* The listed workers whose row is live (not missing, not TERMINATED). */
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
                           "SELECT id::text FROM workers WHERE id = ANY($1::uuid[])"
                           " AND state <> 'TERMINATED'",
                           1, params, res, err);
    } else {
        hodei_err_set(err, st, "reconcile: worker id list too long");
    }
    hodei_buf_fini(&ids);
    return st;
}

static bool rec_in_result(const PGresult *res, const char *id)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(hodei_db_get_str(res, i, 0), id) == 0)
            return true;
    return false;
}

static hodei_status rec_orphans(PGconn *conn, prov_driver *drv, const prov_worker_ref *refs,
                                size_t n, rec_counts *cnt, hodei_err *err)
{
    PGresult *res = NULL;
    hodei_status st = rec_known(conn, refs, n, &res, err);
    if (st != HODEI_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        if (rec_in_result(res, refs[i].worker_id))
            continue;
        hodei_err e = {0};
        HLOG_WARN("provider %s: worker %s (ref %s) has no live registry row: destroying the"
                  " orphan",
                  drv->name, refs[i].worker_id, refs[i].ref);
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
    static const char *const live[] = {"CONNECTING", "READY", "BUSY", "DRAINING", NULL};
    bool terminating = strcmp(state, "TERMINATING") == 0;
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    st = terminating ? prov_worker_to_terminated(conn, worker_id, err)
                     : hodei_store_worker_transition(
                           conn, worker_id, live, HODEI__V1__WORKER_STATE__WORKER_STATE_LOST, err);
    if (st == HODEI_OK && (st = hodei_db_commit(conn, err)) == HODEI_OK) {
        HLOG_WARN("worker %s was %s but its provider no longer runs it: %s", worker_id, state,
                  terminating ? "TERMINATED" : "LOST");
        terminating ? cnt->terminated++ : cnt->lost++;
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

/* snapshot: rows read before listing (id, state, provider_ref). */
static hodei_status rec_lost(PGconn *conn, prov_driver *drv, const PGresult *snapshot,
                             const prov_worker_ref *refs, size_t n, rec_counts *cnt, hodei_err *err)
{
    for (int i = 0; i < PQntuples(snapshot); i++) {
        const char *id = hodei_db_get_str(snapshot, i, 0);
        const char *ref = hodei_db_get_str(snapshot, i, 2);
        prov_worker_status ws = PROV_WORKER_RUNNING;
        hodei_err e = {0};
        if (rec_listed(refs, n, id) ||
            drv->ops->get_status(drv, id, ref, &ws, NULL, &e) != HODEI_OK || ws != PROV_WORKER_GONE)
            continue;
        hodei_status st = rec_mark(conn, id, hodei_db_get_str(snapshot, i, 1), cnt, err);
        if (st != HODEI_OK)
            return st;
    }
    return HODEI_OK;
}

/* ---------------------------------------------------------------- provider */

static hodei_status rec_provider(PGconn *conn, prov_driver *drv, rec_counts *cnt, hodei_err *err)
{
    const char *params[1] = {drv->name};
    PGresult *snapshot = NULL;
    size_t n = 0;
    prov_worker_ref *refs = calloc(PROV_LIST_MAX, sizeof *refs);
    if (!refs)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "reconcile: out of memory");
    hodei_status st = hodei_db_exec(
        conn,
        "SELECT id::text, state, coalesce(provider_ref, '') FROM workers WHERE provider = $1"
        " AND state IN ('CONNECTING','READY','BUSY','DRAINING','TERMINATING')",
        1, params, &snapshot, err);
    if (st == HODEI_OK)
        st = drv->ops->list_workers(drv, refs, PROV_LIST_MAX, &n, err);
    if (st == HODEI_OK)
        st = rec_orphans(conn, drv, refs, n, cnt, err);
    if (st == HODEI_OK)
        st = rec_lost(conn, drv, snapshot, refs, n, cnt, err);
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

static hodei_status rec_one(prov *p, PGconn *conn, const char *provider, hodei_err *err)
{
    prov_driver *drv = NULL;
    rec_counts cnt = {0};
    char msg[PROV_HEALTH_MSG_MAX + PROV_ERROR_MAX];
    char hmsg[PROV_HEALTH_MSG_MAX] = "";
    bool healthy = false;
    hodei_err e = {0};
    hodei_status st = prov_registry_get(p->reg, conn, provider, &drv, &e);
    if (st == HODEI_OK) {
        healthy = drv->ops->health(drv, hmsg);
        st = rec_provider(conn, drv, &cnt, &e);
    }
    if (st == HODEI_OK)
        snprintf(msg, sizeof msg, "%s; live=%d orphans_destroyed=%d lost=%d terminated=%d", hmsg,
                 cnt.live, cnt.orphans, cnt.lost, cnt.terminated);
    else
        snprintf(msg, sizeof msg, "reconcile failed: %s", e.msg);
    if (PQstatus(conn) != CONNECTION_OK)
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "%s", e.msg);
    return rec_health_write(p, conn, provider, healthy && st == HODEI_OK, msg, &cnt, err);
}

/* ---------------------------------------------------------------- round */

static hodei_status rec_lock(prov *p, PGconn *conn, bool take, bool *got, hodei_err *err)
{
    char key[PROV_INT_TEXT_MAX];
    const char *params[1] = {key};
    PGresult *res = NULL;
    snprintf(key, sizeof key, "%" PRId64, p->cfg->reconcile_lock_key);
    hodei_status st = hodei_db_exec(conn,
                                    take ? "SELECT pg_try_advisory_lock($1::bigint)"
                                         : "SELECT pg_advisory_unlock($1::bigint)",
                                    1, params, &res, err);
    if (st == HODEI_OK && got)
        *got = strcmp(hodei_db_get_str(res, 0, 0), "t") == 0;
    PQclear(res);
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
    bool got = false;
    hodei_status st = prov_conn(p, &conn, &err);
    if (st == HODEI_OK)
        st = rec_lock(p, conn, true, &got, &err);
    if (st == HODEI_OK && got) {
        st = rec_all(p, conn, &err);
        hodei_err uerr = {0};
        hodei_status ust = rec_lock(p, conn, false, NULL, &uerr);
        if (st == HODEI_OK && ust != HODEI_OK) {
            st = HODEI_ERR_UNAVAILABLE; /* close it: the lock goes with the session */
            err = uerr;
        }
    }
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
