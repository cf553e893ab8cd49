/* hodei_store_fleet_read: the fleet now in one statement (store_fleet.h).
 * Rows are tagged by kind, like the scheduler's lock statement:
 *   c  counts: pending, assigned, running, outbox backlog
 *   q  queue:  band, provider, jobs, due, oldest wait (ms)
 *   w  workers: provider, state, count, memory used, memory total, cpu
 *               used, cpu capacity (cores)
 *   p  a registered provider (listed even with no worker) */
#include "hodei/store_fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/util.h"
#include "hodei/worker_state.h"

static const char fleet_sql[] =
    "SELECT 'c', NULL::text, NULL::text,"
    "  (SELECT count(*) FROM jobs WHERE state = 'PENDING'),"
    "  (SELECT count(*) FROM jobs WHERE state = 'ASSIGNED'),"
    "  (SELECT count(*) FROM jobs WHERE state = 'RUNNING'),"
    "  (SELECT count(*) FROM outbox WHERE published_at IS NULL),"
    "  NULL::float8, NULL::float8"
    " UNION ALL "
    "SELECT 'q', q.band, q.provider, q.jobs, q.due, 0, 0, q.oldest_ms, NULL FROM ("
    "  SELECT " HODEI_FLEET_BAND_SQL " AS band, provider, count(*) AS jobs,"
    "    count(*) FILTER (WHERE not_before IS NULL OR not_before <= now()) AS due,"
    "    coalesce(extract(epoch FROM now() - min(greatest(created_at, not_before))"
    "      FILTER (WHERE not_before IS NULL OR not_before <= now())) * 1000, 0)::float8"
    "      AS oldest_ms"
    "   FROM jobs WHERE state = 'PENDING' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT $1::int) q"
    " UNION ALL "
    "SELECT 'w', provider, state, count(*), sum(usage_memory_bytes)::bigint,"
    "  sum(usage_memory_total)::bigint, 0, sum(usage_cpu_cores)::float8,"
    "  sum(cpu_millis)::float8 / 1000"
    " FROM workers WHERE state <> 'TERMINATED' GROUP BY provider, state"
    " UNION ALL "
    "SELECT 'p', name, NULL, 0, 0, 0, 0, NULL, NULL FROM providers";

enum { F_KIND, F_S1, F_S2, F_I1, F_I2, F_I3, F_I4, F_F1, F_F2 };

static int band_rank(const char *band)
{
    return strcmp(band, "high") == 0 ? 0 : strcmp(band, "normal") == 0 ? 1 : 2;
}

static int queue_cmp(const void *a, const void *b)
{
    const hodei_fleet_queue *x = a, *y = b;
    int r = band_rank(x->band) - band_rank(y->band);
    return r ? r : strcmp(x->provider, y->provider);
}

static int provider_cmp(const void *a, const void *b)
{
    return strcmp(((const hodei_fleet_provider *)a)->provider,
                  ((const hodei_fleet_provider *)b)->provider);
}

static hodei_fleet_provider *fleet_provider(hodei_fleet *f, const char *name)
{
    for (size_t i = 0; i < f->n_providers; i++)
        if (strcmp(f->providers[i].provider, name) == 0)
            return &f->providers[i];
    if (f->n_providers == HODEI_FLEET_PROVIDERS_MAX)
        return NULL;
    hodei_fleet_provider *p = &f->providers[f->n_providers++];
    memset(p, 0, sizeof *p);
    hodei_strlcpy(p->provider, name, sizeof p->provider);
    return p;
}

static void fleet_worker_row(hodei_fleet *f, const PGresult *res, int r)
{
    Hodei__V1__WorkerState st;
    hodei_fleet_provider *p = fleet_provider(f, hodei_db_get_str(res, r, F_S1));
    if (!p || !hodei_worker_state_parse(hodei_db_get_str(res, r, F_S2), &st) ||
        (int)st >= HODEI_FLEET_STATES)
        return;
    p->workers[st] += hodei_db_get_i64(res, r, F_I1);
    if (st != HODEI__V1__WORKER_STATE__WORKER_STATE_READY &&
        st != HODEI__V1__WORKER_STATE__WORKER_STATE_BUSY &&
        st != HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING)
        return; /* a LOST worker's last heartbeat is not usage */
    p->memory_bytes_used += hodei_db_get_i64(res, r, F_I2);
    p->memory_bytes_total += hodei_db_get_i64(res, r, F_I3);
    p->cpu_cores_used += strtod(hodei_db_get_str(res, r, F_F1), NULL);
    p->cpu_cores_capacity += strtod(hodei_db_get_str(res, r, F_F2), NULL);
}

hodei_status hodei_store_fleet_read(PGconn *conn, hodei_fleet *out, hodei_err *err)
{
    char limit[16];
    PGresult *res = NULL;
    snprintf(limit, sizeof limit, "%d", HODEI_FLEET_QUEUE_MAX);
    const char *params[1] = {limit};
    memset(out, 0, sizeof *out);
    hodei_status st = hodei_db_exec(conn, fleet_sql, 1, params, &res, err);
    if (st != HODEI_OK)
        return st;
    for (int r = 0; r < PQntuples(res); r++) {
        char kind = hodei_db_get_str(res, r, F_KIND)[0];
        if (kind == 'c') {
            out->jobs_pending = hodei_db_get_i64(res, r, F_I1);
            out->jobs_assigned = hodei_db_get_i64(res, r, F_I2);
            out->jobs_running = hodei_db_get_i64(res, r, F_I3);
            out->outbox_backlog = hodei_db_get_i64(res, r, F_I4);
        } else if (kind == 'q' && out->n_queue < HODEI_FLEET_QUEUE_MAX) {
            hodei_fleet_queue *q = &out->queue[out->n_queue++];
            hodei_strlcpy(q->band, hodei_db_get_str(res, r, F_S1), sizeof q->band);
            hodei_strlcpy(q->provider, hodei_db_get_str(res, r, F_S2), sizeof q->provider);
            q->jobs = hodei_db_get_i64(res, r, F_I1);
            q->due = hodei_db_get_i64(res, r, F_I2);
            q->oldest_wait_ms = strtod(hodei_db_get_str(res, r, F_F1), NULL);
        } else if (kind == 'w') {
            fleet_worker_row(out, res, r);
        } else if (kind == 'p') {
            fleet_provider(out, hodei_db_get_str(res, r, F_S1));
        }
    }
    PQclear(res);
    qsort(out->queue, out->n_queue, sizeof out->queue[0], queue_cmp);
    qsort(out->providers, out->n_providers, sizeof out->providers[0], provider_cmp);
    return HODEI_OK;
}

int64_t hodei_fleet_live(const hodei_fleet_provider *p)
{
    return p->workers[HODEI__V1__WORKER_STATE__WORKER_STATE_READY] +
           p->workers[HODEI__V1__WORKER_STATE__WORKER_STATE_BUSY] +
           p->workers[HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING];
}
