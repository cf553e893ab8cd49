/* Unmet needs: pending jobs no ready worker could take ask for workers.
 *
 * A need is a (provider, image) pair: the job's provider, else
 * scheduler.default_image_provider for a job that names an image, else
 * scheduler.default_provider; and the job's image ("" = the provider's
 * default worker image). Inside the pass's transaction: lock the provider
 * rows (FOR UPDATE, so replicas count one after the other), then count
 * their workers in a new statement (a fresh snapshot that sees what the
 * previous holder of the lock committed), and insert CREATING workers with
 * their ProvisionRequested events while, per need,
 *   in flight (CREATING + CONNECTING of that image) < its unmet jobs, and,
 *   per provider, live workers < providers.max_workers (when > 0).
 * So at most one provision is in flight per unmet job, whatever the number
 * of replicas. A need whose provisions failed lately waits 1 s, 2 s, 4 s ...
 * (at most 30 s) after the last failure before it asks again.
 *
 * Each new worker gets the provider's worker_* capacity where it is set
 * (non-zero), else what the unmet job it is made for asks (cpu, memory,
 * gpus): a container provider then starts it with exactly those limits.
 *
 * A job no provider can ever run (unknown or disabled provider, or asking
 * more than the provider's workers offer) stays PENDING and is logged once.
 * A job asking what its provider's type cannot give at all (an image or
 * GPUs from the process provider) ends FAILED at once, saying why. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/id.h"
#include "hodei/log.h"
#include "hodei/sqlarr.h"
#include "hodei/store.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "sched_int.h"

#define MILLIS_PER_CORE 1000.0
#define PROV_ARRAYS 6 /* and the events, a parameter of their own */
#define PROV_TYPE_MAX 16
#define PROV_WHY_MAX 512
/* A need whose provisions keep failing (an engine away, a broken image)
 * is asked again only after 1 s, 2 s, 4 s ... (at most 30 s) since its
 * last failure, counting the failures of the last minute. */
#define PROV_FAIL_WINDOW "60 seconds"
#define PROV_BACKOFF_MIN_MS 1000
#define PROV_BACKOFF_MAX_MS 30000
_Static_assert(PROV_ARRAYS <= SCHED_ARRAYS, "sched.arr holds every array parameter");

static const char lock_sql[] =
    "SELECT name, enabled, max_workers, worker_cpu_millis, worker_memory_bytes,"
    "       worker_storage_bytes, worker_gpu_count, worker_architecture, type"
    "  FROM providers WHERE name = ANY($1::text[])"
    " ORDER BY name FOR UPDATE";

enum { P_NAME, P_ENABLED, P_MAX, P_CPU, P_MEM, P_STORAGE, P_GPU, P_ARCH, P_TYPE };

/* Live workers per (provider, image), then the provisions that failed
 * lately (workers TERMINATED without ever registering, migration 0023's
 * partial index): how many in the last PROV_FAIL_WINDOW and how long ago
 * the last one. */
static const char count_sql[] =
    "SELECT provider, image, count(*) FILTER (WHERE state IN ('CREATING', 'CONNECTING')),"
    "       count(*), count(*) FILTER (WHERE state = 'READY'), 0, 0"
    "  FROM workers WHERE provider = ANY($1::text[]) AND state <> 'TERMINATED'"
    " GROUP BY provider, image"
    " UNION ALL "
    "SELECT provider, image, 0, 0, 0, count(*),"
    "       (extract(epoch FROM now() - max(updated_at)) * 1000)::bigint"
    "  FROM workers WHERE provider = ANY($1::text[]) AND state = 'TERMINATED'"
    "   AND session_token_hash IS NULL AND updated_at > now() - interval '" PROV_FAIL_WINDOW "'"
    " GROUP BY provider, image";
enum { C_PROVIDER, C_IMAGE, C_IN_FLIGHT, C_LIVE, C_READY, C_FAILED, C_FAILED_AGO_MS };

/* $1 worker ids, $2 their providers, $3 their images, $4..$6 their cpu,
 * memory and gpus, $7 their ProvisionRequested events (written for the rows
 * inserted). */
static const char insert_sql[] =
    "WITH n AS ("
    "  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[],"
    "                       $6::int[])"
    "    AS t(id, provider, image, cpu_millis, memory_bytes, gpu_count)"
    "), w AS ("
    "  INSERT INTO workers (id, provider, state, cpu_millis, memory_bytes, storage_bytes,"
    "                       gpu_count, architecture, image)"
    "  SELECT n.id, n.provider, 'CREATING', n.cpu_millis, n.memory_bytes,"
    "         p.worker_storage_bytes, n.gpu_count, p.worker_architecture, n.image"
    "    FROM n JOIN providers p ON p.name = n.provider"
    "  RETURNING id"
    "), o AS (" HODEI_OUTBOX_INSERT_SQL(
        "$7", "e.aggregate_id::uuid IN (SELECT id FROM w)") ")"
                                                            "SELECT count(*) FROM w";

/* A provider row as locked, and what this pass did with it. */
typedef struct {
    const char *name;
    bool found, enabled;
    char type[PROV_TYPE_MAX];
    int64_t max_workers;      /* 0 = no limit */
    hodei_fit_resources tmpl; /* capacity of each worker it creates; 0 = per job */
    int64_t live;             /* its workers not TERMINATED, every image */
    int64_t created;          /* asked for by this pass */
} prov_row;

/* One (provider, image) need. */
typedef struct {
    prov_row *prov;
    const char *image;
    size_t unmet;      /* jobs its workers could serve */
    size_t held_ready; /* its READY workers this pass locked and left free */
    int64_t in_flight, ready_now;
    int64_t failed;        /* provisions that failed in the last PROV_FAIL_WINDOW */
    int64_t failed_ago_ms; /* since the last of them */
    size_t create;
} prov_need;

typedef struct {
    prov_row rows[SCHED_PROVIDERS_MAX];
    size_t n_rows;
    prov_need needs[SCHED_PROVIDERS_MAX];
    size_t n_needs;
    size_t fail[SCHED_BATCH_MAX]; /* indices of jobs to fail */
    size_t n_fail;
} prov_table;

static const char *prov_of(const sched *s, const match_job *j)
{
    if (j->fit.provider[0])
        return j->fit.provider;
    return j->fit.image[0] ? s->cfg->default_image_provider : s->cfg->default_provider;
}

static prov_row *row_find(prov_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_rows; i++) {
        if (strcmp(t->rows[i].name, name) == 0)
            return &t->rows[i];
    }
    return NULL;
}

static prov_need *need_find(prov_table *t, const char *provider, const char *image)
{
    for (size_t i = 0; i < t->n_needs; i++) {
        if (strcmp(t->needs[i].prov->name, provider) == 0 && strcmp(t->needs[i].image, image) == 0)
            return &t->needs[i];
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
static void prov_full_mark(sched *s, const prov_row *p, int64_t now_ms)
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

/* The need of unmet job i, made on first sight; NULL when its provider is
 * full or the tables are. */
static prov_need *need_of(sched *s, prov_table *t, size_t i, int64_t now_ms)
{
    const match_job *j = &s->jobs[i];
    const char *name = prov_of(s, j);
    prov_need *n = need_find(t, name, j->fit.image);
    if (n || prov_full(s, name, now_ms))
        return n;
    prov_row *r = row_find(t, name);
    if (t->n_needs == SCHED_PROVIDERS_MAX || (!r && t->n_rows == SCHED_PROVIDERS_MAX)) {
        HLOG_WARN("unmet jobs name more than %d providers and images; the rest wait for the"
                  " next pass",
                  SCHED_PROVIDERS_MAX);
        return NULL;
    }
    if (!r) {
        r = &t->rows[t->n_rows++];
        *r = (prov_row){.name = name};
    }
    n = &t->needs[t->n_needs++];
    *n = (prov_need){.prov = r, .image = j->fit.image};
    return n;
}

/* The needs of the unmet jobs, and the ready workers left free of each. */
static void prov_collect(sched *s, prov_table *t, size_t n_jobs, size_t n_workers)
{
    int64_t now_ms = hodei_mono_ms();
    for (size_t i = 0; i < n_jobs; i++) {
        if (s->assign[i] < 0)
            need_of(s, t, i, now_ms);
    }
    for (size_t w = 0; w < n_workers; w++) {
        prov_need *n =
            s->taken[w] ? NULL : need_find(t, s->workers[w].fit.provider, s->workers[w].fit.image);
        if (n)
            n->held_ready++;
    }
}

static hodei_status prov_query(sched *s, const prov_table *t, const char *sql, PGresult **res,
                               hodei_err *err)
{
    hodei_sqlarr_begin(&s->arr[0]);
    for (size_t i = 0; i < t->n_rows; i++)
        hodei_sqlarr_str(&s->arr[0], t->rows[i].name);
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
        prov_row *p = row_find(t, hodei_db_get_str(*res, r, P_NAME));
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
        hodei_strlcpy(p->type, hodei_db_get_str(*res, r, P_TYPE), sizeof p->type);
    }
    return HODEI_OK;
}

/* Why provider p can never run job j, whatever it is configured with; NULL
 * when it can. Only the process provider's limits are known here: others
 * find out when they try (an image that does not exist, an engine without
 * GPUs) and the provisioner fails the jobs then. */
static const char *prov_cannot(const prov_row *p, const match_job *j, char why[PROV_WHY_MAX])
{
    if (strcmp(p->type, "process") != 0)
        return NULL;
    if (j->fit.image[0])
        snprintf(why, PROV_WHY_MAX,
                 "provider %s (type process) runs jobs as host processes and cannot run"
                 " image %s; name a container provider or leave the image out",
                 p->name, j->fit.image);
    else if (j->fit.need.gpu_count > 0)
        snprintf(why, PROV_WHY_MAX,
                 "provider %s (type process) cannot give a job GPUs (%" PRId64
                 " asked); name a provider that can",
                 p->name, j->fit.need.gpu_count);
    else
        return NULL;
    return why;
}

/* Counts the jobs each need could serve; logs once each job none can, and
 * sets aside the jobs to fail. */
static void prov_count_unmet(sched *s, prov_table *t, size_t n_jobs)
{
    char why_buf[PROV_WHY_MAX];
    for (size_t i = 0; i < n_jobs; i++) {
        const match_job *j = &s->jobs[i];
        prov_need *n = s->assign[i] < 0 ? need_find(t, prov_of(s, j), j->fit.image) : NULL;
        const char *why = NULL;
        if (!n)
            continue;
        const prov_row *p = n->prov;
        if (!p->found)
            why = "does not exist";
        else if (!p->enabled)
            why = "is disabled";
        else if (prov_cannot(p, j, why_buf)) {
            HLOG_WARN("job %s: %s: failing it", j->id, why_buf);
            if (t->n_fail < SCHED_BATCH_MAX)
                t->fail[t->n_fail++] = i;
            continue;
        } else if (!hodei_fit_template(&j->fit.need, &p->tmpl))
            why = "creates workers smaller than the job asks for";
        if (!why)
            n->unmet++;
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
        const char *name = hodei_db_get_str(*res, r, C_PROVIDER);
        prov_row *p = row_find(t, name);
        prov_need *n = need_find(t, name, hodei_db_get_str(*res, r, C_IMAGE));
        if (p)
            p->live += hodei_db_get_i64(*res, r, C_LIVE);
        if (n) {
            n->in_flight += hodei_db_get_i64(*res, r, C_IN_FLIGHT);
            n->ready_now += hodei_db_get_i64(*res, r, C_READY);
            n->failed += hodei_db_get_i64(*res, r, C_FAILED);
            n->failed_ago_ms += hodei_db_get_i64(*res, r, C_FAILED_AGO_MS);
        }
    }
    for (size_t i = 0; i < t->n_rows; i++) {
        prov_row *p = &t->rows[i];
        if (p->found && p->enabled && p->max_workers > 0 && p->live >= p->max_workers)
            prov_full_mark(s, p, now_ms);
    }
    return HODEI_OK;
}

/* Still backing off after recent failed provisions. */
static bool prov_backing_off(const prov_need *n)
{
    if (n->failed <= 0)
        return false;
    int64_t wait = PROV_BACKOFF_MIN_MS;
    for (int64_t i = 1; i < n->failed && wait < PROV_BACKOFF_MAX_MS; i++)
        wait *= 2;
    return n->failed_ago_ms < (wait < PROV_BACKOFF_MAX_MS ? wait : PROV_BACKOFF_MAX_MS);
}

/* How many workers to ask for. Ready workers this pass did not hold belong
 * to another replica's pass, which may leave them free: wait for the next
 * pass rather than provision beside them. */
static size_t prov_decide(const prov_need *n, size_t budget)
{
    const prov_row *p = n->prov;
    int64_t want;
    if (!p->found || !p->enabled || n->unmet == 0 || n->ready_now > (int64_t)n->held_ready ||
        prov_backing_off(n))
        return 0;
    want = (int64_t)n->unmet - n->in_flight;
    if (p->max_workers > 0 && p->max_workers - p->live - p->created < want)
        want = p->max_workers - p->live - p->created;
    if (want > (int64_t)budget)
        want = (int64_t)budget;
    return want > 0 ? (size_t)want : 0;
}

/* The k-th unmet job (in pass order) of need n, else the last one. */
static const match_job *need_job(sched *s, const prov_need *n, size_t n_jobs, size_t k)
{
    const match_job *last = NULL;
    for (size_t i = 0; i < n_jobs; i++) {
        const match_job *j = &s->jobs[i];
        if (s->assign[i] >= 0 || strcmp(j->fit.image, n->image) != 0 ||
            strcmp(prov_of(s, j), n->prov->name) != 0)
            continue;
        last = j;
        if (k-- == 0)
            break;
    }
    return last;
}

static int64_t size_of(int64_t tmpl, int64_t need)
{
    return tmpl > 0 ? tmpl : (need > 0 ? need : 0);
}

/* One worker for need n, sized for job j (the k-th unmet one) where the
 * provider's template leaves a size to the job. */
static hodei_status prov_request_add(sched *s, const prov_need *n, const match_job *j,
                                     hodei_err *err)
{
    char worker_id[HODEI_ID_BUF];
    const hodei_fit_resources *t = &n->prov->tmpl;
    const hodei_fit_resources size = {
        .cpu_millis = size_of(t->cpu_millis, j ? j->fit.need.cpu_millis : 0),
        .memory_bytes = size_of(t->memory_bytes, j ? j->fit.need.memory_bytes : 0),
        .storage_bytes = t->storage_bytes,
        .gpu_count = size_of(t->gpu_count, j ? j->fit.need.gpu_count : 0),
        .architecture = t->architecture};
    hodei_id_new(worker_id);
    hodei_status st = hodei_event_provision_requested(HODEI_OUTBOX_ADD(&s->provision_events),
                                                      worker_id, n->prov->name, &size, err);
    if (st != HODEI_OK)
        return st;
    hodei_sqlarr_str(&s->arr[0], worker_id);
    hodei_sqlarr_str(&s->arr[1], n->prov->name);
    hodei_sqlarr_str(&s->arr[2], n->image);
    hodei_sqlarr_i64(&s->arr[3], size.cpu_millis);
    hodei_sqlarr_i64(&s->arr[4], size.memory_bytes);
    hodei_sqlarr_i64(&s->arr[5], size.gpu_count);
    return HODEI_OK;
}

static hodei_status prov_insert(sched *s, prov_table *t, size_t n_jobs, size_t *created,
                                hodei_err *err)
{
    size_t budget = (size_t)s->cfg->provision_max;
    hodei_status st = HODEI_OK;

    for (int a = 0; a < PROV_ARRAYS; a++)
        hodei_sqlarr_begin(&s->arr[a]);
    hodei_outbox_rows_reset(&s->provision_events);
    for (size_t i = 0; i < t->n_needs; i++) {
        prov_need *n = &t->needs[i];
        n->create = prov_decide(n, budget - *created);
        for (size_t k = 0; k < n->create && st == HODEI_OK; k++)
            st = prov_request_add(s, n, need_job(s, n, n_jobs, (size_t)n->in_flight + k), err);
        n->prov->created += (int64_t)n->create;
        *created += n->create;
    }
    bool ok = true;
    for (int a = 0; a < PROV_ARRAYS; a++)
        ok = hodei_sqlarr_end(&s->arr[a]) && ok;
    if (st != HODEI_OK)
        return st;
    if (!ok)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "provision requests of one pass exceed %u bytes",
                             SCHED_ARRAY_TEXT_MAX);
    if (*created == 0)
        return HODEI_OK;
    const char *params[PROV_ARRAYS + 1];
    for (int a = 0; a < PROV_ARRAYS; a++)
        params[a] = s->arr[a].data;
    params[PROV_ARRAYS] = hodei_outbox_rows_param(&s->provision_events);
    return hodei_db_exec(s->conn, insert_sql, PROV_ARRAYS + 1, params, NULL, err);
}

/* Ends the jobs set aside by prov_count_unmet, each with its own reason. */
static hodei_status prov_fail(sched *s, prov_table *t, hodei_err *err)
{
    char why[PROV_WHY_MAX];
    hodei_status st = HODEI_OK;
    for (size_t k = 0; k < t->n_fail && st == HODEI_OK; k++) {
        const match_job *j = &s->jobs[t->fail[k]];
        const prov_row *p = row_find(t, prov_of(s, j));
        if (p && prov_cannot(p, j, why))
            st = hodei_store_pending_fail(s->conn, &j->id, 1, why, NULL, err);
    }
    return st;
}

static void prov_log(const prov_table *t)
{
    for (size_t i = 0; i < t->n_needs; i++) {
        const prov_need *n = &t->needs[i];
        if (n->create > 0)
            HLOG_INFO("provision requested: provider=%s image=%s workers=%zu unmet_jobs=%zu"
                      " in_flight=%" PRId64 " live=%" PRId64 " max_workers=%" PRId64,
                      n->prov->name, n->image[0] ? n->image : "(default)", n->create, n->unmet,
                      n->in_flight, n->prov->live, n->prov->max_workers);
    }
}

hodei_status sched_provision(sched *s, size_t n_jobs, size_t n_workers, size_t *created,
                             hodei_err *err)
{
    prov_table t;
    PGresult *providers = NULL, *counts = NULL;
    hodei_status st;

    *created = 0;
    memset(&t, 0, sizeof t);
    prov_collect(s, &t, n_jobs, n_workers);
    if (t.n_needs == 0) {
        if (n_workers == 0)
            s->lookahead_off_until_ms = hodei_mono_ms() + s->cfg->pass_interval_ms;
        return HODEI_OK;
    }
    if ((st = prov_lock(s, &t, &providers, err)) != HODEI_OK)
        goto out;
    prov_count_unmet(s, &t, n_jobs);
    if ((st = prov_count_workers(s, &t, &counts, err)) != HODEI_OK)
        goto out;
    if ((st = prov_insert(s, &t, n_jobs, created, err)) == HODEI_OK)
        prov_log(&t);
    if (st == HODEI_OK)
        st = prov_fail(s, &t, err);
out:
    PQclear(providers);
    PQclear(counts);
    return st;
}
