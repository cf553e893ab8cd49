/* MetricsService's readings of PostgreSQL. The snapshot is the fleet now
 * (hodei_store_fleet_read, the same reading the supervisor's gauges take),
 * the jobs that ended in the last METRICS_RECENT_MS and the live workers'
 * last heartbeats. The window adds what jobs_finished (migration 0020)
 * makes cheap to find: jobs that ended in it, by state, with summaries of
 * their dispatch latency and run time; a series of jobs queued and ended
 * per bucket beside the supervisor's samples of the live counts; and each
 * provider's busy and existing worker time. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/job_state.h"
#include "hodei/pb.h"
#include "hodei/store_fleet.h"
#include "hodei/time.h"
#include "hodei/worker_state.h"
#include "metrics_int.h"

#define METRICS_INT_TEXT_MAX 24

void *metrics_alloc(metrics_arena *a, size_t size)
{
    if (a->n == METRICS_ARENA_BLOCKS_MAX)
        return NULL;
    void *p = calloc(1, size ? size : 1);
    if (p)
        a->blocks[a->n++] = p;
    return p;
}

char *metrics_strdup(metrics_arena *a, const char *s)
{
    size_t len = strlen(s);
    char *p = metrics_alloc(a, len + 1);
    if (p)
        memcpy(p, s, len);
    return p;
}

void metrics_arena_free(metrics_arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->blocks[i]);
    a->n = 0;
}

static hodei_status arena_full(hodei_err *err)
{
    return hodei_err_set(err, HODEI_ERR_NOMEM, "metrics: out of memory building the answer");
}

static Hodei__V1__Timestamp *ts_new(metrics_arena *a, int64_t us)
{
    Hodei__V1__Timestamp *t = metrics_alloc(a, sizeof *t);
    if (t) {
        hodei__v1__timestamp__init(t);
        hodei_pb_time(t, us);
    }
    return t;
}

/* ------------------------------------------------------------ the snapshot */

static Hodei__V1__ProviderUsage *provider_usage(metrics_arena *a, const hodei_fleet_provider *p)
{
    Hodei__V1__ProviderUsage *u = metrics_alloc(a, sizeof *u);
    if (!u)
        return NULL;
    hodei__v1__provider_usage__init(u);
    const int64_t *w = p->workers;
    u->provider = metrics_strdup(a, p->provider);
    u->workers_ready = w[HODEI__V1__WORKER_STATE__WORKER_STATE_READY];
    u->workers_busy = w[HODEI__V1__WORKER_STATE__WORKER_STATE_BUSY];
    u->workers_starting = w[HODEI__V1__WORKER_STATE__WORKER_STATE_CREATING] +
                          w[HODEI__V1__WORKER_STATE__WORKER_STATE_CONNECTING];
    u->workers_leaving = w[HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING] +
                         w[HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING];
    int64_t working = u->workers_ready + u->workers_busy;
    u->busy_ratio = working > 0 ? (double)u->workers_busy / (double)working : 0;
    u->cpu_cores_used = p->cpu_cores_used;
    u->cpu_cores_capacity = p->cpu_cores_capacity;
    u->memory_bytes_used = p->memory_bytes_used;
    u->memory_bytes_total = p->memory_bytes_total;
    return u->provider ? u : NULL;
}

static Hodei__V1__QueueDepth *queue_depth(metrics_arena *a, const hodei_fleet_queue *q)
{
    Hodei__V1__QueueDepth *d = metrics_alloc(a, sizeof *d);
    if (!d)
        return NULL;
    hodei__v1__queue_depth__init(d);
    d->priority_band = metrics_strdup(a, q->band);
    d->provider = metrics_strdup(a, q->provider);
    d->jobs = q->jobs;
    d->due = q->due;
    d->oldest_wait_ms = q->oldest_wait_ms;
    return d->priority_band && d->provider ? d : NULL;
}

static hodei_status snapshot_fleet(PGconn *conn, metrics_arena *a, Hodei__V1__MetricsSnapshot *out,
                                   hodei_err *err)
{
    hodei_fleet *f = metrics_alloc(a, sizeof *f);
    if (!f)
        return arena_full(err);
    hodei_status st = hodei_store_fleet_read(conn, f, err);
    if (st != HODEI_OK)
        return st;
    out->jobs_pending = f->jobs_pending;
    out->jobs_assigned = f->jobs_assigned;
    out->jobs_running = f->jobs_running;
    out->outbox_backlog = f->outbox_backlog;
    out->providers = metrics_alloc(a, (f->n_providers + 1) * sizeof *out->providers);
    out->queue = metrics_alloc(a, (f->n_queue + 1) * sizeof *out->queue);
    if (!out->providers || !out->queue)
        return arena_full(err);
    for (size_t i = 0; i < f->n_providers; i++) {
        const hodei_fleet_provider *p = &f->providers[i];
        if (!(out->providers[out->n_providers++] = provider_usage(a, p)))
            return arena_full(err);
        out->workers_ready += p->workers[HODEI__V1__WORKER_STATE__WORKER_STATE_READY];
        out->workers_busy += p->workers[HODEI__V1__WORKER_STATE__WORKER_STATE_BUSY];
        out->workers_live += hodei_fleet_live(p);
    }
    for (size_t i = 0; i < f->n_queue; i++)
        if (!(out->queue[out->n_queue++] = queue_depth(a, &f->queue[i])))
            return arena_full(err);
    return HODEI_OK;
}

static hodei_status snapshot_recent(PGconn *conn, Hodei__V1__MetricsSnapshot *out, hodei_err *err)
{
    char ms[METRICS_INT_TEXT_MAX];
    PGresult *res = NULL;
    snprintf(ms, sizeof ms, "%d", METRICS_RECENT_MS);
    const char *params[1] = {ms};
    hodei_status st = hodei_db_exec(conn,
                                    "SELECT state, count(*) FROM jobs"
                                    " WHERE finished_at >= now() - $1::bigint * interval '1 ms'"
                                    " GROUP BY state",
                                    1, params, &res, err);
    if (st != HODEI_OK)
        return st;
    out->recent_window_ms = METRICS_RECENT_MS;
    for (int r = 0; r < PQntuples(res); r++) {
        Hodei__V1__JobState s;
        int64_t n = hodei_db_get_i64(res, r, 1);
        if (!hodei_job_state_parse(hodei_db_get_str(res, r, 0), &s))
            continue;
        if (s == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED)
            out->jobs_succeeded += n;
        else if (s == HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED)
            out->jobs_cancelled += n;
        else
            out->jobs_failed += n; /* FAILED, TIMEOUT */
    }
    PQclear(res);
    return HODEI_OK;
}

/* Live workers, busiest first. */
static const char workers_sql[] =
    "SELECT id::text, provider, state, hostname, coalesce(current_job_id::text, ''),"
    " usage_cpu_cores, cpu_millis, usage_memory_bytes, usage_memory_total, usage_running_jobs,"
    " coalesce((extract(epoch FROM last_heartbeat_at) * 1000000)::bigint, 0)"
    " FROM workers WHERE state IN ('READY', 'BUSY', 'DRAINING')"
    " ORDER BY (state = 'BUSY') DESC, usage_cpu_cores DESC, id LIMIT $1::int";

static Hodei__V1__WorkerUsage *worker_usage(metrics_arena *a, const PGresult *res, int r)
{
    Hodei__V1__WorkerUsage *w = metrics_alloc(a, sizeof *w);
    Hodei__V1__WorkerState state = HODEI__V1__WORKER_STATE__WORKER_STATE_UNSPECIFIED;
    if (!w)
        return NULL;
    hodei__v1__worker_usage__init(w);
    w->worker_id = metrics_strdup(a, hodei_db_get_str(res, r, 0));
    w->provider = metrics_strdup(a, hodei_db_get_str(res, r, 1));
    hodei_worker_state_parse(hodei_db_get_str(res, r, 2), &state);
    w->state = state;
    w->hostname = metrics_strdup(a, hodei_db_get_str(res, r, 3));
    w->current_job_id = metrics_strdup(a, hodei_db_get_str(res, r, 4));
    w->cpu_cores_used = strtod(hodei_db_get_str(res, r, 5), NULL);
    w->cpu_cores_capacity = (double)hodei_db_get_i64(res, r, 6) / 1000.0;
    w->memory_bytes_used = hodei_db_get_i64(res, r, 7);
    w->memory_bytes_total = hodei_db_get_i64(res, r, 8);
    w->running_jobs = (int32_t)hodei_db_get_i64(res, r, 9);
    int64_t beat = hodei_db_get_i64(res, r, 10);
    if (beat > 0 && !(w->last_heartbeat_at = ts_new(a, beat)))
        return NULL;
    return w->worker_id && w->provider && w->hostname && w->current_job_id ? w : NULL;
}

static hodei_status snapshot_workers(PGconn *conn, metrics_arena *a, int workers_max,
                                     Hodei__V1__MetricsSnapshot *out, hodei_err *err)
{
    char limit[METRICS_INT_TEXT_MAX];
    PGresult *res = NULL;
    if (workers_max <= 0)
        return HODEI_OK;
    snprintf(limit, sizeof limit, "%d", workers_max);
    const char *params[1] = {limit};
    hodei_status st = hodei_db_exec(conn, workers_sql, 1, params, &res, err);
    if (st != HODEI_OK)
        return st;
    int n = PQntuples(res);
    out->workers = metrics_alloc(a, ((size_t)n + 1) * sizeof *out->workers);
    for (int r = 0; out->workers && r < n; r++) {
        if (!(out->workers[out->n_workers++] = worker_usage(a, res, r))) {
            out->workers = NULL;
            out->n_workers = 0;
        }
    }
    PQclear(res);
    return out->workers || n == 0 ? HODEI_OK : arena_full(err);
}

hodei_status metrics_read_snapshot(PGconn *conn, metrics_arena *a, int workers_max,
                                   Hodei__V1__MetricsSnapshot *out, hodei_err *err)
{
    if (!(out->time = ts_new(a, hodei_wall_us())))
        return arena_full(err);
    hodei_status st = snapshot_fleet(conn, a, out, err);
    if (st == HODEI_OK)
        st = snapshot_recent(conn, out, err);
    if (st == HODEI_OK)
        st = snapshot_workers(conn, a, workers_max, out, err);
    return st;
}

/* -------------------------------------------------------------- the window */

/* Ended in the window by state ('c'); then the dispatch ('d') and run
 * ('r') summaries over the window's latest $2 jobs that started: count,
 * mean, max, {p50,p90,p99}. */
static const char ended_sql[] =
    "WITH e AS ("
    " SELECT state, started_at, finished_at, greatest(created_at, not_before) AS due_at"
    "  FROM jobs WHERE finished_at >= now() - $1::bigint * interval '1 ms'"
    "), s AS ("
    " SELECT greatest(0, extract(epoch FROM started_at - due_at) * 1000)::float8 AS d,"
    "        greatest(0, extract(epoch FROM finished_at - started_at) * 1000)::float8 AS r"
    "  FROM e WHERE started_at IS NOT NULL ORDER BY finished_at DESC LIMIT $2::int"
    ")"
    " SELECT 'c', state, count(*), NULL::float8, NULL::float8, NULL::text FROM e GROUP BY state"
    " UNION ALL"
    " SELECT 'd', '', count(*), avg(d), max(d),"
    "  (percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY d))::text FROM s"
    " UNION ALL"
    " SELECT 'r', '', count(*), avg(r), max(r),"
    "  (percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY r))::text FROM s";

static Hodei__V1__LatencySummary *summary_row(metrics_arena *a, const PGresult *res, int r)
{
    Hodei__V1__LatencySummary *s = metrics_alloc(a, sizeof *s);
    if (!s)
        return NULL;
    hodei__v1__latency_summary__init(s);
    s->count = hodei_db_get_i64(res, r, 2);
    if (s->count == 0)
        return s;
    s->mean_ms = strtod(hodei_db_get_str(res, r, 3), NULL);
    s->max_ms = strtod(hodei_db_get_str(res, r, 4), NULL);
    /* "{p50,p90,p99}" */
    const char *p = hodei_db_get_str(res, r, 5);
    double *q[3] = {&s->p50_ms, &s->p90_ms, &s->p99_ms};
    for (int i = 0; i < 3 && *p; i++) {
        char *end;
        *q[i] = strtod(p + 1, &end);
        p = end;
    }
    return s;
}

static hodei_status window_ended(PGconn *conn, metrics_arena *a, int64_t window_ms,
                                 Hodei__V1__GetAggregatedMetricsResponse *out,
                                 int64_t ended[HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT + 1],
                                 hodei_err *err)
{
    char win[METRICS_INT_TEXT_MAX], max[METRICS_INT_TEXT_MAX];
    PGresult *res = NULL;
    snprintf(win, sizeof win, "%" PRId64, window_ms);
    snprintf(max, sizeof max, "%d", METRICS_MEASURED_MAX);
    const char *params[2] = {win, max};
    hodei_status st = hodei_db_exec(conn, ended_sql, 2, params, &res, err);
    if (st != HODEI_OK)
        return st;
    for (int r = 0; r < PQntuples(res); r++) {
        char kind = hodei_db_get_str(res, r, 0)[0];
        Hodei__V1__JobState s;
        if (kind == 'c' && hodei_job_state_parse(hodei_db_get_str(res, r, 1), &s) &&
            hodei_job_state_terminal(s)) {
            ended[s] += hodei_db_get_i64(res, r, 2);
            out->jobs_finished_in_window += hodei_db_get_i64(res, r, 2);
        } else if (kind == 'd') {
            out->dispatch_latency = summary_row(a, res, r);
        } else if (kind == 'r') {
            out->run_duration = summary_row(a, res, r);
        }
    }
    PQclear(res);
    out->jobs_measured_max = METRICS_MEASURED_MAX;
    return out->dispatch_latency && out->run_duration ? HODEI_OK : arena_full(err);
}

static hodei_status window_states(metrics_arena *a, Hodei__V1__GetAggregatedMetricsResponse *out,
                                  const int64_t *ended)
{
    const Hodei__V1__MetricsSnapshot *now = out->current;
    size_t n = HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT;
    out->jobs_by_state = metrics_alloc(a, n * sizeof *out->jobs_by_state);
    if (!out->jobs_by_state)
        return HODEI_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        Hodei__V1__JobState s = (Hodei__V1__JobState)(i + 1);
        Hodei__V1__JobStateCount *c = metrics_alloc(a, sizeof *c);
        if (!c)
            return HODEI_ERR_NOMEM;
        hodei__v1__job_state_count__init(c);
        c->state = s;
        c->jobs = s == HODEI__V1__JOB_STATE__JOB_STATE_PENDING    ? now->jobs_pending
                  : s == HODEI__V1__JOB_STATE__JOB_STATE_ASSIGNED ? now->jobs_assigned
                  : s == HODEI__V1__JOB_STATE__JOB_STATE_RUNNING  ? now->jobs_running
                                                                  : ended[s];
        out->jobs_by_state[out->n_jobs_by_state++] = c;
    }
    return HODEI_OK;
}

/* Per bucket ($2 ms from now - $1 ms): jobs queued ('q'), ended by state
 * ('e'), and the last supervisor sample ('s': pending, running, busy,
 * live). */
static const char series_sql[] =
    "WITH p AS (SELECT now() - $1::bigint * interval '1 ms' AS t0, $2::float8 AS step)"
    " SELECT 'q', floor(extract(epoch FROM j.created_at - p.t0) * 1000 / p.step)::bigint,"
    "  '', count(*), 0::bigint, 0::bigint, 0::bigint"
    "  FROM jobs j, p WHERE j.created_at >= p.t0 GROUP BY 2"
    " UNION ALL"
    " SELECT 'e', floor(extract(epoch FROM j.finished_at - p.t0) * 1000 / p.step)::bigint,"
    "  j.state, count(*), 0, 0, 0"
    "  FROM jobs j, p WHERE j.finished_at >= p.t0 GROUP BY 2, 3"
    " UNION ALL"
    " SELECT * FROM (SELECT DISTINCT ON (i) 's', i, '', jobs_pending, jobs_running,"
    "  workers_busy, workers_live FROM (SELECT floor(extract(epoch FROM m.at - p.t0) * 1000"
    "  / p.step)::bigint AS i, m.* FROM metrics_samples m, p WHERE m.at >= p.t0) x"
    "  ORDER BY i, at DESC) y";

static void series_row(Hodei__V1__MetricsBucket **b, size_t n, const PGresult *res, int r)
{
    char kind = hodei_db_get_str(res, r, 0)[0];
    int64_t i = hodei_db_get_i64(res, r, 1);
    if (i < 0 || (size_t)i >= n)
        return; /* the current moment, past the last bucket's start */
    Hodei__V1__MetricsBucket *k = b[i];
    int64_t v = hodei_db_get_i64(res, r, 3);
    Hodei__V1__JobState s;
    if (kind == 'q') {
        k->jobs_queued += v;
    } else if (kind == 'e' && hodei_job_state_parse(hodei_db_get_str(res, r, 2), &s)) {
        if (s == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED)
            k->jobs_succeeded += v;
        else if (s == HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED)
            k->jobs_cancelled += v;
        else
            k->jobs_failed += v;
    } else if (kind == 's') {
        k->jobs_pending = v;
        k->jobs_running = hodei_db_get_i64(res, r, 4);
        k->workers_busy = hodei_db_get_i64(res, r, 5);
        k->workers_live = hodei_db_get_i64(res, r, 6);
    }
}

static hodei_status window_series(PGconn *conn, metrics_arena *a, int64_t window_ms,
                                  int64_t bucket_ms, Hodei__V1__GetAggregatedMetricsResponse *out,
                                  hodei_err *err)
{
    char win[METRICS_INT_TEXT_MAX], step[METRICS_INT_TEXT_MAX];
    PGresult *res = NULL;
    size_t n = (size_t)((window_ms + bucket_ms - 1) / bucket_ms);
    int64_t t0_us = hodei_wall_us() - window_ms * 1000;
    out->series = metrics_alloc(a, n * sizeof *out->series);
    if (!out->series)
        return arena_full(err);
    for (size_t i = 0; i < n; i++) {
        Hodei__V1__MetricsBucket *k = metrics_alloc(a, sizeof *k);
        if (!k)
            return arena_full(err);
        hodei__v1__metrics_bucket__init(k);
        k->start = ts_new(a, t0_us + (int64_t)i * bucket_ms * 1000);
        if (!k->start)
            return arena_full(err);
        k->jobs_pending = k->jobs_running = k->workers_busy = k->workers_live = -1;
        out->series[out->n_series++] = k;
    }
    out->bucket_ms = bucket_ms;
    snprintf(win, sizeof win, "%" PRId64, window_ms);
    snprintf(step, sizeof step, "%" PRId64, bucket_ms);
    const char *params[2] = {win, step};
    hodei_status st = hodei_db_exec(conn, series_sql, 2, params, &res, err);
    if (st != HODEI_OK)
        return st;
    for (int r = 0; r < PQntuples(res); r++)
        series_row(out->series, n, res, r);
    PQclear(res);
    return HODEI_OK;
}

/* Per provider: seconds its workers spent running jobs in the window
 * ('b'), and seconds they existed in it ('w'). A worker's end is its last
 * update once TERMINATED or LOST. */
static const char providers_sql[] =
    "WITH p AS (SELECT now() - $1::bigint * interval '1 ms' AS t0)"
    " SELECT 'b', w.provider, sum(greatest(0, extract(epoch FROM"
    "  least(coalesce(j.finished_at, now()), now()) - greatest(j.started_at, p.t0))))::float8"
    "  FROM p, jobs j JOIN workers w ON w.id = j.worker_id"
    "  WHERE j.started_at IS NOT NULL AND (j.finished_at >= p.t0 OR j.state = 'RUNNING')"
    "  GROUP BY w.provider"
    " UNION ALL"
    " SELECT 'w', provider, sum(greatest(0, extract(epoch FROM"
    "  (CASE WHEN state IN ('TERMINATED', 'LOST') THEN updated_at ELSE now() END)"
    "  - greatest(created_at, p.t0))))::float8"
    "  FROM workers, p WHERE state NOT IN ('TERMINATED', 'LOST') OR updated_at > p.t0"
    "  GROUP BY provider";

static Hodei__V1__ProviderUsage *window_provider(metrics_arena *a, Hodei__V1__MetricsSnapshot *now,
                                                 const char *name)
{
    for (size_t i = 0; i < now->n_providers; i++)
        if (strcmp(now->providers[i]->provider, name) == 0)
            return now->providers[i];
    /* a provider whose workers are all TERMINATED now */
    Hodei__V1__ProviderUsage **grown =
        metrics_alloc(a, (now->n_providers + 2) * sizeof *now->providers);
    Hodei__V1__ProviderUsage *u = metrics_alloc(a, sizeof *u);
    if (!grown || !u)
        return NULL;
    hodei__v1__provider_usage__init(u);
    if (!(u->provider = metrics_strdup(a, name)))
        return NULL;
    memcpy(grown, now->providers, now->n_providers * sizeof *grown);
    grown[now->n_providers++] = u;
    now->providers = grown;
    return u;
}

static hodei_status window_providers(PGconn *conn, metrics_arena *a, int64_t window_ms,
                                     Hodei__V1__MetricsSnapshot *now, hodei_err *err)
{
    char win[METRICS_INT_TEXT_MAX];
    PGresult *res = NULL;
    snprintf(win, sizeof win, "%" PRId64, window_ms);
    const char *params[1] = {win};
    hodei_status st = hodei_db_exec(conn, providers_sql, 1, params, &res, err);
    if (st != HODEI_OK)
        return st;
    for (int r = 0; r < PQntuples(res) && st == HODEI_OK; r++) {
        Hodei__V1__ProviderUsage *u = window_provider(a, now, hodei_db_get_str(res, r, 1));
        double v = strtod(hodei_db_get_str(res, r, 2), NULL);
        if (!u)
            st = arena_full(err);
        else if (hodei_db_get_str(res, r, 0)[0] == 'b')
            u->busy_seconds = v;
        else
            u->worker_seconds = v;
    }
    PQclear(res);
    for (size_t i = 0; i < now->n_providers; i++) {
        Hodei__V1__ProviderUsage *u = now->providers[i];
        u->utilisation = u->worker_seconds > 0 ? fmin(1.0, u->busy_seconds / u->worker_seconds) : 0;
    }
    return st;
}

hodei_status metrics_read_window(PGconn *conn, metrics_arena *a, int64_t window_ms,
                                 int64_t bucket_ms, Hodei__V1__GetAggregatedMetricsResponse *out,
                                 hodei_err *err)
{
    int64_t ended[HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT + 1] = {0};
    out->window_ms = window_ms;
    hodei_status st = window_ended(conn, a, window_ms, out, ended, err);
    if (st == HODEI_OK && window_states(a, out, ended) != HODEI_OK)
        st = arena_full(err);
    if (st == HODEI_OK)
        st = window_series(conn, a, window_ms, bucket_ms, out, err);
    if (st == HODEI_OK)
        st = window_providers(conn, a, window_ms, out->current, err);
    return st;
}
