/* Unmet needs: pending jobs no ready worker could take ask for workers.
 *
 * Per provider (the job's, or scheduler.default_provider), inside the
 * pass's transaction: lock the provider row (FOR UPDATE, so replicas count
 * one after the other), then count its workers in a new statement (a fresh
 * snapshot that sees what the previous holder of the lock committed), and
 * insert CREATING workers with their ProvisionRequested events while
 *   in flight (CREATING + CONNECTING) < unmet jobs, and
 *   live workers < providers.max_workers (when > 0).
 * So at most one provision is in flight per unmet job, whatever the number
 * of replicas. A job no provider can ever run (unknown or disabled
 * provider, or asking more than the provider's workers offer) stays
 * PENDING and is logged once. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/sqlarr.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "sched_int.h"

#define MILLIS_PER_CORE 1000.0
#define PROV_ARRAYS 4

static const char lock_sql[] =
    "SELECT name, enabled, max_workers, worker_cpu_millis, worker_memory_bytes,"
    "       worker_storage_bytes, worker_gpu_count, worker_architecture"
    "  FROM providers WHERE name = ANY($1::text[])"
    " ORDER BY name FOR UPDATE";

enum { P_NAME, P_ENABLED, P_MAX, P_CPU, P_MEM, P_STORAGE, P_GPU, P_ARCH };

static const char count_sql[] =
    "SELECT provider, count(*) FILTER (WHERE state IN ('CREATING', 'CONNECTING')),"
    "       count(*), count(*) FILTER (WHERE state = 'READY')"
    "  FROM workers WHERE provider = ANY($1::text[]) AND state <> 'TERMINATED'"
    " GROUP BY provider";

static const char insert_sql[] =
    "WITH n AS ("
    "  SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[])"
    "    AS t(id, provider, event_id, event)"
    "), w AS ("
    "  INSERT INTO workers (id, provider, state, cpu_millis, memory_bytes, storage_bytes,"
    "                       gpu_count, architecture)"
    "  SELECT n.id, n.provider, 'CREATING', p.worker_cpu_millis, p.worker_memory_bytes,"
    "         p.worker_storage_bytes, p.worker_gpu_count, p.worker_architecture"
    "    FROM n JOIN providers p ON p.name = n.provider"
    "  RETURNING id"
    ")"
    "INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id, event_type, payload)"
    "SELECT n.event_id, '" HODEI_SUBJ_PROVISION_REQUESTED "', 'provision', n.id::text,"
    "       'ProvisionRequested', decode(n.event, 'hex') FROM n JOIN w USING (id)";

typedef struct {
    const char *name;
    size_t unmet;      /* jobs its workers could serve */
    size_t held_ready; /* its READY workers this pass locked and left free */
    bool found, enabled;
    int64_t max_workers;  /* 0 = no limit */
    match_resources tmpl; /* capacity of each worker it creates */
    int64_t in_flight, live, ready_now;
    size_t create;
} prov_need;

typedef struct {
    prov_need p[SCHED_PROVIDERS_MAX];
    size_t n;
} prov_table;

static const char *prov_of(const sched *s, const match_job *j)
{
    return j->provider[0] ? j->provider : s->cfg->default_provider;
}

static prov_need *prov_find(prov_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->p[i].name, name) == 0)
            return &t->p[i];
    }
    return NULL;
}

static bool prov_full(const sched *s, const char *name, int64_t now_ms)
{
    for (size_t i = 0; i < SCHED_FULL_MAX; i++) {
        if (s->full[i].until_ms > now_ms && strcmp(s->full[i].name, name) == 0)
            return true;
    }
    return false;
}

/* Remembers (in the slot expiring first) that p is at its max_workers. */
static void prov_full_mark(sched *s, const prov_need *p, int64_t now_ms)
{
    size_t slot = 0;
    for (size_t i = 1; i < SCHED_FULL_MAX; i++) {
        if (s->full[i].until_ms < s->full[slot].until_ms)
            slot = i;
    }
    if (!hodei_strlcpy(s->full[slot].name, p->name, sizeof s->full[slot].name))
        return;
    s->full[slot].until_ms = now_ms + s->cfg->pass_interval_ms;
}

/* The providers of the unmet jobs, and their ready workers left free. */
static void prov_collect(sched *s, prov_table *t, size_t n_jobs, size_t n_workers)
{
    int64_t now_ms = hodei_mono_ms();
    for (size_t i = 0; i < n_jobs; i++) {
        const char *name = prov_of(s, &s->jobs[i]);
        if (s->assign[i] >= 0 || prov_find(t, name) || prov_full(s, name, now_ms))
            continue;
        if (t->n == SCHED_PROVIDERS_MAX) {
            HLOG_WARN("unmet jobs name more than %d providers; the rest wait for the next pass",
                      SCHED_PROVIDERS_MAX);
            break;
        }
        t->p[t->n++] = (prov_need){.name = name};
    }
    for (size_t w = 0; w < n_workers; w++) {
        prov_need *p = s->taken[w] ? NULL : prov_find(t, s->workers[w].provider);
        if (p)
            p->held_ready++;
    }
}

static hodei_status prov_query(sched *s, const prov_table *t, const char *sql, PGresult **res,
                               hodei_err *err)
{
    hodei_sqlarr_begin(&s->arr[0]);
    for (size_t i = 0; i < t->n; i++)
        hodei_sqlarr_str(&s->arr[0], t->p[i].name);
    if (!hodei_sqlarr_end(&s->arr[0]))
        return hodei_err_set(err, HODEI_ERR_LIMIT, "provider names exceed %u bytes",
                             SCHED_ARRAY_TEXT_MAX);
    const char *params[1] = {s->arr[0].data};
    return hodei_db_exec(s->conn, sql, 1, params, res, err);
}

static hodei_status prov_lock(sched *s, prov_table *t, PGresult **res, hodei_err *err)
{
    hodei_status st = prov_query(s, t, lock_sql, res, err);
    if (st != HODEI_OK)
        return st;
    for (int r = 0; r < PQntuples(*res); r++) {
        prov_need *p = prov_find(t, hodei_db_get_str(*res, r, P_NAME));
        if (!p)
            continue;
        p->found = true;
        p->enabled = hodei_db_get_str(*res, r, P_ENABLED)[0] == 't';
        p->max_workers = hodei_db_get_i64(*res, r, P_MAX);
        p->tmpl.cpu_millis = hodei_db_get_i64(*res, r, P_CPU);
        p->tmpl.memory_bytes = hodei_db_get_i64(*res, r, P_MEM);
        p->tmpl.storage_bytes = hodei_db_get_i64(*res, r, P_STORAGE);
        p->tmpl.gpu_count = hodei_db_get_i64(*res, r, P_GPU);
        p->tmpl.architecture = hodei_db_get_str(*res, r, P_ARCH);
    }
    return HODEI_OK;
}

/* Counts the jobs each provider could serve; logs once each job none can. */
static void prov_count_unmet(sched *s, prov_table *t, size_t n_jobs)
{
    for (size_t i = 0; i < n_jobs; i++) {
        const match_job *j = &s->jobs[i];
        prov_need *p = s->assign[i] < 0 ? prov_find(t, prov_of(s, j)) : NULL;
        const char *why = NULL;
        if (!p)
            continue;
        if (!p->found)
            why = "does not exist";
        else if (!p->enabled)
            why = "is disabled";
        else if (!match_template_fits(&j->need, &p->tmpl))
            why = "creates workers smaller than the job asks for";
        if (!why)
            p->unmet++;
        else if (sched_seen_first(s->seen, j->id))
            HLOG_WARN("job %s waits: no worker fits it and provider %s %s", j->id, p->name, why);
    }
}

static hodei_status prov_count_workers(sched *s, prov_table *t, PGresult **res, hodei_err *err)
{
    int64_t now_ms = hodei_mono_ms();
    hodei_status st = prov_query(s, t, count_sql, res, err);
    if (st != HODEI_OK)
        return st;
    for (int r = 0; r < PQntuples(*res); r++) {
        prov_need *p = prov_find(t, hodei_db_get_str(*res, r, 0));
        if (!p)
            continue;
        p->in_flight = hodei_db_get_i64(*res, r, 1);
        p->live = hodei_db_get_i64(*res, r, 2);
        p->ready_now = hodei_db_get_i64(*res, r, 3);
        if (p->found && p->enabled && p->max_workers > 0 && p->live >= p->max_workers)
            prov_full_mark(s, p, now_ms);
    }
    return HODEI_OK;
}

/* How many workers to ask for. Ready workers this pass did not hold belong
 * to another replica's pass, which may leave them free: wait for the next
 * pass rather than provision beside them. */
static size_t prov_decide(const prov_need *p, size_t budget)
{
    int64_t want;
    if (!p->found || !p->enabled || p->unmet == 0 || p->ready_now > (int64_t)p->held_ready)
        return 0;
    want = (int64_t)p->unmet - p->in_flight;
    if (p->max_workers > 0 && p->max_workers - p->live < want)
        want = p->max_workers - p->live;
    if (want > (int64_t)budget)
        want = (int64_t)budget;
    return want > 0 ? (size_t)want : 0;
}

static bool prov_request_append(sched *s, const prov_need *p)
{
    char worker_id[HODEI_ID_BUF], event_id[HODEI_ID_BUF];
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__ProvisionRequested body = HODEI__V1__PROVISION_REQUESTED__INIT;
    Hodei__V1__ResourceRequirements res = HODEI__V1__RESOURCE_REQUIREMENTS__INIT;

    hodei_id_new(worker_id);
    res.cpu_cores = (double)p->tmpl.cpu_millis / MILLIS_PER_CORE;
    res.memory_bytes = p->tmpl.memory_bytes;
    res.storage_bytes = p->tmpl.storage_bytes;
    res.gpu_count = (int32_t)p->tmpl.gpu_count;
    res.architecture = (char *)p->tmpl.architecture;
    body.request_id = worker_id;
    body.worker_id = worker_id;
    body.provider = (char *)p->name;
    body.resources = &res;
    ev.body_case = HODEI__V1__EVENT__BODY_PROVISION_REQUESTED;
    ev.provision_requested = &body;
    hodei_sqlarr_str(&s->arr[0], worker_id);
    hodei_sqlarr_str(&s->arr[1], p->name);
    bool ok = sched_event_append(s, &ev, worker_id, event_id, &s->arr[3]);
    hodei_sqlarr_str(&s->arr[2], event_id);
    return ok;
}

static hodei_status prov_insert(sched *s, prov_table *t, size_t *created, hodei_err *err)
{
    size_t budget = (size_t)s->cfg->provision_max;
    bool ok = true;

    for (int a = 0; a < PROV_ARRAYS; a++)
        hodei_sqlarr_begin(&s->arr[a]);
    for (size_t i = 0; i < t->n; i++) {
        prov_need *p = &t->p[i];
        p->create = prov_decide(p, budget - *created);
        for (size_t k = 0; k < p->create && ok; k++)
            ok = prov_request_append(s, p);
        *created += p->create;
    }
    for (int a = 0; a < PROV_ARRAYS; a++)
        ok = hodei_sqlarr_end(&s->arr[a]) && ok;
    if (!ok)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "provision requests of one pass exceed %u bytes",
                             SCHED_ARRAY_TEXT_MAX);
    if (*created == 0)
        return HODEI_OK;
    const char *params[4] = {s->arr[0].data, s->arr[1].data, s->arr[2].data, s->arr[3].data};
    return hodei_db_exec(s->conn, insert_sql, 4, params, NULL, err);
}

static void prov_log(const prov_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        const prov_need *p = &t->p[i];
        if (p->create > 0)
            HLOG_INFO("provision requested: provider=%s workers=%zu unmet_jobs=%zu"
                      " in_flight=%" PRId64 " live=%" PRId64 " max_workers=%" PRId64,
                      p->name, p->create, p->unmet, p->in_flight, p->live, p->max_workers);
    }
}

hodei_status sched_provision(sched *s, size_t n_jobs, size_t n_workers, size_t *created,
                             hodei_err *err)
{
    prov_table t;
    PGresult *providers = NULL, *counts = NULL;
    hodei_status st;

    *created = 0;
    t.n = 0;
    prov_collect(s, &t, n_jobs, n_workers);
    if (t.n == 0) {
        if (n_workers == 0)
            s->lookahead_off_until_ms = hodei_mono_ms() + s->cfg->pass_interval_ms;
        return HODEI_OK;
    }
    if ((st = prov_lock(s, &t, &providers, err)) != HODEI_OK)
        goto out;
    prov_count_unmet(s, &t, n_jobs);
    if ((st = prov_count_workers(s, &t, &counts, err)) != HODEI_OK)
        goto out;
    if ((st = prov_insert(s, &t, created, err)) == HODEI_OK)
        prov_log(&t);
out:
    PQclear(providers);
    PQclear(counts);
    return st;
}
