/* The fleet's gauges and samples. Every supervisor.metrics_interval the
 * active supervisor reads the fleet (hodei_store_fleet_read: jobs by live
 * state, the queue by band and provider, workers by provider and state)
 * into its GET /metrics gauges, and writes one row of metrics_samples, the
 * history MetricsService draws its series from (kept a week). Only the
 * active one does: a standby shows zeros, so a sum over every supervisor's
 * series is the fleet's figure. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/store_fleet.h"
#include "hodei/time.h"
#include "hodei/worker_state.h"
#include "sup_int.h"

#define FLEET_SAMPLES_KEEP "7 days"
#define FLEET_PRUNE_EVERY_MS (3600LL * 1000)
#define FLEET_ANY_PROVIDER "any" /* label of jobs that name no provider */

static const char sample_sql[] =
    "INSERT INTO metrics_samples (at, jobs_pending, jobs_assigned, jobs_running,"
    " workers_ready, workers_busy, workers_live, outbox_backlog)"
    " VALUES (now(), $1, $2, $3, $4, $5, $6, $7) ON CONFLICT (at) DO NOTHING";

void sup_fleet_register(sup *s)
{
    hodei_daemon *d = s->d;
    s->fleet.jobs = hodei_daemon_gauge_vec(
        d, "hodei_jobs", "Jobs in each live state (PENDING, ASSIGNED, RUNNING).", "state");
    s->fleet.queue = hodei_daemon_gauge_vec(
        d, "hodei_queue_depth",
        "PENDING jobs by priority band (high > 0, normal = 0, low < 0) and the provider they"
        " ask for (any = none named).",
        "priority_band,provider");
    s->fleet.oldest = hodei_daemon_gauge_vec_micro(
        d, "hodei_queue_oldest_wait_seconds",
        "How long the oldest schedulable PENDING job of each band has waited.", "priority_band");
    s->fleet.workers = hodei_daemon_gauge_vec(
        d, "hodei_workers", "Workers by state and provider (TERMINATED not counted).",
        "state,provider");
    s->fleet.cpu_used = hodei_daemon_gauge_vec_micro(
        d, "hodei_workers_cpu_cores_used",
        "CPU cores the live workers of a provider use, from their last heartbeats.", "provider");
    s->fleet.cpu_capacity =
        hodei_daemon_gauge_vec_micro(d, "hodei_workers_cpu_cores_capacity",
                                     "CPU cores the live workers of a provider offer.", "provider");
    s->fleet.mem_used = hodei_daemon_gauge_vec(
        d, "hodei_workers_memory_used_bytes",
        "Memory the live workers of a provider use, from their last heartbeats.", "provider");
    s->fleet.mem_total = hodei_daemon_gauge_vec(
        d, "hodei_workers_memory_total_bytes",
        "Memory of the live workers' machines, as they report it.", "provider");
    s->fleet.backlog = hodei_daemon_gauge(d, "hodei_outbox_backlog",
                                          "Events committed and not yet published to JetStream.");
}

/* Standby (or lost the lock): the fleet is another supervisor's to show. */
void sup_fleet_clear(sup *s)
{
    if (!s->fleet.shown)
        return;
    hodei_metric_family *all[] = {s->fleet.jobs,     s->fleet.queue,    s->fleet.oldest,
                                  s->fleet.workers,  s->fleet.cpu_used, s->fleet.cpu_capacity,
                                  s->fleet.mem_used, s->fleet.mem_total};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        hodei_metric_family_zero(all[i]);
    hodei_metric_set(s->fleet.backlog, 0);
    s->fleet.shown = false;
}

static void fleet_show_queue(sup *s, const hodei_fleet *f)
{
    static const char *const bands[] = {"high", "normal", "low"};
    double oldest_ms[3] = {0, 0, 0};
    hodei_metric_family_zero(s->fleet.queue);
    for (size_t i = 0; i < f->n_queue; i++) {
        const hodei_fleet_queue *q = &f->queue[i];
        const char *provider = q->provider[0] ? q->provider : FLEET_ANY_PROVIDER;
        hodei_metric_set(hodei_metric_with(s->fleet.queue, q->band, provider), q->jobs);
        for (size_t b = 0; b < 3; b++)
            if (strcmp(q->band, bands[b]) == 0 && q->oldest_wait_ms > oldest_ms[b])
                oldest_ms[b] = q->oldest_wait_ms;
    }
    for (size_t b = 0; b < 3; b++)
        hodei_metric_set(hodei_metric_with(s->fleet.oldest, bands[b]),
                         (int64_t)(oldest_ms[b] * 1000));
}

static void fleet_show_workers(sup *s, const hodei_fleet *f)
{
    hodei_metric_family_zero(s->fleet.workers);
    for (size_t i = 0; i < f->n_providers; i++) {
        const hodei_fleet_provider *p = &f->providers[i];
        for (int st = 1; st < HODEI_FLEET_STATES; st++) {
            if (st == HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATED)
                continue;
            hodei_metric_set(hodei_metric_with(s->fleet.workers,
                                               hodei_worker_state_name((Hodei__V1__WorkerState)st),
                                               p->provider),
                             p->workers[st]);
        }
        hodei_metric_set(hodei_metric_with(s->fleet.cpu_used, p->provider),
                         (int64_t)(p->cpu_cores_used * 1e6));
        hodei_metric_set(hodei_metric_with(s->fleet.cpu_capacity, p->provider),
                         (int64_t)(p->cpu_cores_capacity * 1e6));
        hodei_metric_set(hodei_metric_with(s->fleet.mem_used, p->provider), p->memory_bytes_used);
        hodei_metric_set(hodei_metric_with(s->fleet.mem_total, p->provider), p->memory_bytes_total);
    }
}

static void fleet_show(sup *s, const hodei_fleet *f)
{
    hodei_metric_set(hodei_metric_with(s->fleet.jobs, "PENDING"), f->jobs_pending);
    hodei_metric_set(hodei_metric_with(s->fleet.jobs, "ASSIGNED"), f->jobs_assigned);
    hodei_metric_set(hodei_metric_with(s->fleet.jobs, "RUNNING"), f->jobs_running);
    hodei_metric_set(s->fleet.backlog, f->outbox_backlog);
    fleet_show_queue(s, f);
    fleet_show_workers(s, f);
    s->fleet.shown = true;
}

static hodei_status fleet_sample(sup *s, const hodei_fleet *f, hodei_err *err)
{
    int64_t ready = 0, busy = 0, live = 0;
    char v[7][SUP_INT_TEXT_MAX];
    for (size_t i = 0; i < f->n_providers; i++) {
        ready += f->providers[i].workers[HODEI__V1__WORKER_STATE__WORKER_STATE_READY];
        busy += f->providers[i].workers[HODEI__V1__WORKER_STATE__WORKER_STATE_BUSY];
        live += hodei_fleet_live(&f->providers[i]);
    }
    int64_t vals[7] = {f->jobs_pending,  f->jobs_assigned, f->jobs_running, ready, busy, live,
                       f->outbox_backlog};
    const char *params[7];
    for (int i = 0; i < 7; i++) {
        sup_i64_text(vals[i], v[i]);
        params[i] = v[i];
    }
    hodei_status st = hodei_db_exec(s->conn, sample_sql, 7, params, NULL, err);
    int64_t now = hodei_mono_ms();
    if (st == HODEI_OK && now >= s->fleet.next_prune_ms) {
        s->fleet.next_prune_ms = now + FLEET_PRUNE_EVERY_MS;
        st = hodei_db_exec(
            s->conn,
            "DELETE FROM metrics_samples WHERE at < now() - interval '" FLEET_SAMPLES_KEEP "'", 0,
            NULL, NULL, err);
    }
    return st;
}

hodei_status sup_fleet_step(sup *s, hodei_err *err)
{
    int64_t now = hodei_mono_ms();
    if (s->cfg->metrics_interval_ms == 0 || now < s->fleet.next_ms)
        return HODEI_OK;
    s->fleet.next_ms = now + s->cfg->metrics_interval_ms;
    hodei_fleet *f = malloc(sizeof *f);
    if (!f)
        return HODEI_OK; /* next time */
    hodei_status st = hodei_store_fleet_read(s->conn, f, err);
    if (st == HODEI_OK) {
        fleet_show(s, f);
        st = fleet_sample(s, f, err);
    }
    free(f);
    if (st == HODEI_OK)
        s->fleet.failing = false;
    if (st == HODEI_OK || hodei_db_status_broken(st))
        return st;
    if (!s->fleet.failing)
        HLOG_WARN("fleet metrics not read or sampled: %s (retrying every interval)", err->msg);
    s->fleet.failing = true;
    return HODEI_OK;
}
