/* What an operator sees of a running stack (tests/integration/cluster.c:
 * every daemon a real process, real workers), with known jobs:
 *
 * - MetricsService: GetAggregatedMetrics counts the jobs by state, the
 *   queue by band, summarises dispatch and run times, fills the series and
 *   the provider's utilisation; StreamMetrics streams snapshots with the
 *   live workers; bad requests name the field.
 * - hodei top --once, human and JSON, shows the same.
 * - A real Prometheus (Debian's prometheus) scrapes every daemon's
 *   /metrics; PromQL answers the queue depth, the dispatch-latency p99 (in
 *   the bucket the database's own timings put it), counts that match the
 *   jobs run, gRPC latency by method and code, process_* and build info. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cluster.h"
#include "hodei/time.h"
#include "hodei/v1/metrics.pb-c.h"

#define WAIT_MS 120000
#define SVC "/hodei.v1.MetricsService/"
#define OUT_MAX (1024 * 1024)

static const char *const fast_env[] = {
    "HODEI_SUPERVISOR_METRICS_INTERVAL=200ms",
    "HODEI_SUPERVISOR_TICK_INTERVAL=100ms",
    NULL,
};

static cluster C;

/* ------------------------------------------------------------ helpers */

/* A job at `priority` that needs a worker labelled zone=nowhere: none
 * exists and the provider is full, so it stays PENDING. */
static void queue_stuck_job(int priority, char id[37])
{
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    Hodei__V1__JobSpec__ConstraintsEntry zone = HODEI__V1__JOB_SPEC__CONSTRAINTS_ENTRY__INIT;
    Hodei__V1__JobSpec__ConstraintsEntry *constraints[] = {&zone};
    char *args[] = {"-c", "true"};
    zone.key = "zone";
    zone.value = "nowhere";
    spec.n_constraints = 1;
    spec.constraints = constraints;
    cmd.command = "sh";
    cmd.n_args = 2;
    cmd.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.priority = priority;
    req.spec = &spec;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    cr_assert_eq(edge_call(&C.edge, "QueueJob", &req.base,
                           &hodei__v1__queue_job_response__descriptor, &resp, msg, sizeof msg),
                 HODEI_GRPC_OK, "QueueJob: %s", msg);
    snprintf(id, 37, "%s", ((Hodei__V1__QueueJobResponse *)resp)->job_id);
    protobuf_c_message_free_unpacked(resp, NULL);
}

static int64_t sqlv(const char *q)
{
    return harness_sql_i64(&C.stack, q);
}

/* Runs n jobs of `script` on the warm workers and waits for them all. */
static void run_jobs(const char *script, int n, const char *want_state)
{
    char ids[64][37], state[32];
    cr_assert_leq(n, 64);
    for (int i = 0; i < n; i++)
        cluster_queue(&C, script, 1, 0, ids[i]);
    for (int i = 0; i < n; i++) {
        cr_assert(cluster_wait_job(&C, ids[i], WAIT_MS, state, sizeof state), "job %s ended",
                  ids[i]);
        cr_assert_str_eq(state, want_state, "job %s", ids[i]);
    }
}

/* Jobs no worker fits (the provider is at its max_workers): PENDING. */
static void queue_stuck(int high, int normal)
{
    char id[37];
    for (int i = 0; i < high; i++)
        queue_stuck_job(5, id);
    for (int i = 0; i < normal; i++)
        queue_stuck_job(0, id);
    cr_assert(cluster_wait_sql(&C, "SELECT count(*) FROM jobs WHERE state = 'PENDING'",
                               high + normal, WAIT_MS));
}

static Hodei__V1__GetAggregatedMetricsResponse *aggregate(int64_t window_ms, int64_t bucket_ms)
{
    Hodei__V1__GetAggregatedMetricsRequest req = HODEI__V1__GET_AGGREGATED_METRICS_REQUEST__INIT;
    req.window_ms = window_ms;
    req.bucket_ms = bucket_ms;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    cr_assert_eq(edge_call_path(&C.edge, SVC "GetAggregatedMetrics", &req.base,
                                &hodei__v1__get_aggregated_metrics_response__descriptor, &resp, msg,
                                sizeof msg),
                 HODEI_GRPC_OK, "GetAggregatedMetrics: %s", msg);
    return (Hodei__V1__GetAggregatedMetricsResponse *)resp;
}

static int64_t by_state(const Hodei__V1__GetAggregatedMetricsResponse *r, Hodei__V1__JobState s)
{
    for (size_t i = 0; i < r->n_jobs_by_state; i++)
        if (r->jobs_by_state[i]->state == s)
            return r->jobs_by_state[i]->jobs;
    return -1;
}

static int64_t queued(const Hodei__V1__MetricsSnapshot *s, const char *band)
{
    int64_t n = 0;
    for (size_t i = 0; i < s->n_queue; i++)
        if (strcmp(s->queue[i]->priority_band, band) == 0)
            n += s->queue[i]->jobs;
    return n;
}

static const Hodei__V1__ProviderUsage *provider(const Hodei__V1__MetricsSnapshot *s,
                                                const char *name)
{
    for (size_t i = 0; i < s->n_providers; i++)
        if (strcmp(s->providers[i]->provider, name) == 0)
            return s->providers[i];
    return NULL;
}

/* Runs `hodei --server <edge> <args>`; stdout in out. */
static int hodei_cli(const char *args, char *out, size_t out_len)
{
    return harness_sh(&C.stack, out, out_len, "%s/hodei --server %s %s 2>&1", C.stack.bin,
                      C.edge.target, args);
}

/* ------------------------------------------------------------ MetricsService */

TestSuite(metrics, .timeout = 900);

Test(metrics, service_and_top_tell_the_known_jobs)
{
    cluster_start(&C, fast_env);
    cluster_provider(&C, 2, 600000, 2);
    cr_assert(
        cluster_wait_sql(&C, "SELECT count(*) FROM workers WHERE state = 'READY'", 2, WAIT_MS),
        "two warm workers");
    run_jobs("sleep 0.3", 3, "SUCCEEDED");
    run_jobs("sleep 0.3; exit 3", 2, "FAILED");
    queue_stuck(2, 3);
    /* a supervisor sample with the 5 pending jobs */
    cr_assert(cluster_wait_sql(&C, "SELECT count(*) FROM metrics_samples WHERE jobs_pending = 5", 1,
                               WAIT_MS) ||
              sqlv("SELECT count(*) FROM metrics_samples WHERE jobs_pending = 5") > 0);

    Hodei__V1__GetAggregatedMetricsResponse *r = aggregate(600000, 10000);
    cr_expect_eq(r->window_ms, 600000);
    cr_expect_eq(by_state(r, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED), 3);
    cr_expect_eq(by_state(r, HODEI__V1__JOB_STATE__JOB_STATE_FAILED), 2);
    cr_expect_eq(by_state(r, HODEI__V1__JOB_STATE__JOB_STATE_PENDING), 5);
    cr_expect_eq(by_state(r, HODEI__V1__JOB_STATE__JOB_STATE_RUNNING), 0);
    cr_expect_eq(r->n_jobs_by_state, 7, "every state, in order");
    cr_expect_eq(r->jobs_finished_in_window, 5);
    cr_assert_not_null(r->current);
    cr_expect_eq(r->current->jobs_pending, 5);
    cr_expect_eq(queued(r->current, "high"), 2);
    cr_expect_eq(queued(r->current, "normal"), 3);
    cr_expect_eq(queued(r->current, "low"), 0);
    cr_assert_not_null(r->run_duration);
    cr_assert_not_null(r->dispatch_latency);
    cr_expect_eq(r->run_duration->count, 5);
    cr_expect_eq(r->dispatch_latency->count, 5);
    /* sleep 0.3 each: the run includes the process start, not much else */
    cr_expect(r->run_duration->p50_ms >= 250 && r->run_duration->p50_ms < 5000, "run p50 %.1f ms",
              r->run_duration->p50_ms);
    cr_expect(r->run_duration->max_ms >= r->run_duration->p99_ms &&
                  r->run_duration->p99_ms >= r->run_duration->p50_ms,
              "run max %.1f >= p99 %.1f >= p50 %.1f", r->run_duration->max_ms,
              r->run_duration->p99_ms, r->run_duration->p50_ms);
    cr_expect(r->dispatch_latency->p50_ms >= 0 && r->dispatch_latency->p50_ms < 10000,
              "dispatch p50 %.1f ms", r->dispatch_latency->p50_ms);
    /* the series: every job queued and ended in its bucket; samples */
    int64_t q = 0, ok = 0, bad = 0, pending_seen = -1;
    cr_expect_eq(r->bucket_ms, 10000);
    cr_expect_eq(r->n_series, 60);
    for (size_t i = 0; i < r->n_series; i++) {
        q += r->series[i]->jobs_queued;
        ok += r->series[i]->jobs_succeeded;
        bad += r->series[i]->jobs_failed;
        if (r->series[i]->jobs_pending >= 0)
            pending_seen = r->series[i]->jobs_pending;
    }
    cr_expect_eq(q, 10, "queued in the series");
    cr_expect_eq(ok, 3);
    cr_expect_eq(bad, 2);
    cr_expect_eq(pending_seen, 5, "the last sample shows the queue");
    const Hodei__V1__ProviderUsage *p = provider(r->current, "process");
    cr_assert_not_null(p, "the process provider is listed");
    cr_expect(p->busy_seconds >= 1.2 && p->busy_seconds < 60, "busy %.2f s (5 x 0.3 s)",
              p->busy_seconds);
    cr_expect(p->worker_seconds > p->busy_seconds, "worker %.2f s > busy %.2f s", p->worker_seconds,
              p->busy_seconds);
    cr_expect(p->utilisation > 0 && p->utilisation <= 1, "utilisation %.3f", p->utilisation);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* StreamMetrics: snapshots every 200 ms with the live workers */
    Hodei__V1__StreamMetricsRequest sreq = HODEI__V1__STREAM_METRICS_REQUEST__INIT;
    sreq.interval_ms = 200;
    sreq.workers_max = 10;
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_open(C.edge.ch, SVC "StreamMetrics", &sreq.base,
                                       &hodei__v1__metrics_snapshot__descriptor, 0, &st, &err),
                 HODEI_OK, "%s", err.msg);
    int64_t last_us = 0, t0 = hodei_mono_ms();
    for (int i = 0; i < 3; i++) {
        ProtobufCMessage *m = NULL;
        hodei_rpc_result res;
        cr_assert_eq(hodei_rpc_stream_recv(st, 10000, &m, &res, &err), HODEI_OK, "%s", err.msg);
        cr_assert_not_null(m, "a snapshot (stream ended: %s)", res.message);
        Hodei__V1__MetricsSnapshot *s = (Hodei__V1__MetricsSnapshot *)m;
        int64_t t_us = s->time->seconds * 1000000 + s->time->nanos / 1000;
        cr_expect_gt(t_us, last_us, "time moves on");
        last_us = t_us;
        cr_expect_eq(s->jobs_pending, 5);
        cr_expect_eq(queued(s, "high"), 2);
        cr_expect_eq(s->workers_live, 2, "the two warm workers");
        cr_expect_eq(s->n_workers, 2);
        for (size_t k = 0; k < s->n_workers; k++) {
            cr_expect_str_eq(s->workers[k]->provider, "process");
            cr_expect_not_null(s->workers[k]->last_heartbeat_at, "a heartbeat");
            cr_expect_gt(s->workers[k]->memory_bytes_total, 0, "usage from heartbeats");
        }
        protobuf_c_message_free_unpacked(m, NULL);
    }
    cr_expect_lt(hodei_mono_ms() - t0, 5000, "three snapshots 200 ms apart");
    hodei_rpc_stream_destroy(st);

    /* hodei top --once: human, then JSON */
    char *out = calloc(1, OUT_MAX);
    cr_assert_eq(hodei_cli("top --once --window 10m", out, OUT_MAX), 0, "%s", out);
    cr_expect(strstr(out, "pending 5"), "%s", out);
    cr_expect(strstr(out, "succeeded 3 failed 2"), "%s", out);
    cr_expect(strstr(out, "QUEUE") && strstr(out, "high") && strstr(out, "process"), "%s", out);
    cr_assert_eq(hodei_cli("-o json top --once", out, OUT_MAX), 0, "%s", out);
    cr_expect(strstr(out, "\"jobs_pending\":5"), "%s", out);
    cr_expect(strstr(out, "\"SUCCEEDED\":3"), "%s", out);
    cr_expect(strstr(out, "\"dispatch_latency\":{\"count\":5"), "%s", out);
    cr_expect_eq(hodei_cli("top --interval 5ms --once", out, OUT_MAX), 2, "%s", out);
    cr_expect(strstr(out, "--interval: must be a duration from 100ms to 60s"), "%s", out);
    free(out);
    cluster_stop(&C);
}

Test(metrics, bad_requests_name_the_field)
{
    cluster_start(&C, fast_env);
    char msg[512];
    ProtobufCMessage *resp = NULL;
    Hodei__V1__GetAggregatedMetricsRequest req = HODEI__V1__GET_AGGREGATED_METRICS_REQUEST__INIT;
    req.window_ms = 500;
    cr_expect_eq(edge_call_path(&C.edge, SVC "GetAggregatedMetrics", &req.base,
                                &hodei__v1__get_aggregated_metrics_response__descriptor, &resp, msg,
                                sizeof msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_expect(strstr(msg, "window_ms:"), "%s", msg);
    req.window_ms = 3600000;
    req.bucket_ms = 1000; /* 3,600 buckets */
    cr_expect_eq(edge_call_path(&C.edge, SVC "GetAggregatedMetrics", &req.base,
                                &hodei__v1__get_aggregated_metrics_response__descriptor, &resp, msg,
                                sizeof msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_expect(strstr(msg, "bucket_ms:") && strstr(msg, "3600"), "%s", msg);
    req.window_ms = 0;
    req.bucket_ms = 0;
    cr_expect_eq(edge_call_path(&C.edge, SVC "GetAggregatedMetrics", &req.base,
                                &hodei__v1__get_aggregated_metrics_response__descriptor, &resp, msg,
                                sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__GetAggregatedMetricsResponse *r = (void *)resp;
    cr_expect_eq(r->window_ms, 3600000, "0 = the last hour");
    cr_expect_eq(r->bucket_ms, 60000, "0 = window / 60");
    cr_expect_eq(r->n_series, 60);
    protobuf_c_message_free_unpacked(resp, NULL);

    const int64_t bad_intervals[] = {50, 60001, -1};
    for (size_t i = 0; i < 3; i++) {
        Hodei__V1__StreamMetricsRequest sreq = HODEI__V1__STREAM_METRICS_REQUEST__INIT;
        sreq.interval_ms = bad_intervals[i];
        hodei_rpc_stream *st = NULL;
        hodei_err err;
        hodei_rpc_result res;
        ProtobufCMessage *m = NULL;
        cr_assert_eq(hodei_rpc_stream_open(C.edge.ch, SVC "StreamMetrics", &sreq.base,
                                           &hodei__v1__metrics_snapshot__descriptor, 0, &st, &err),
                     HODEI_OK);
        cr_assert_eq(hodei_rpc_stream_recv(st, 10000, &m, &res, &err), HODEI_OK);
        cr_expect_null(m);
        cr_expect_eq(res.code, HODEI_GRPC_INVALID_ARGUMENT, "interval %lld",
                     (long long)bad_intervals[i]);
        cr_expect(strstr(res.message, "interval_ms:"), "%s", res.message);
        hodei_rpc_stream_destroy(st);
    }
    Hodei__V1__StreamMetricsRequest sreq = HODEI__V1__STREAM_METRICS_REQUEST__INIT;
    sreq.workers_max = 1001;
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    hodei_rpc_result res;
    ProtobufCMessage *m = NULL;
    cr_assert_eq(hodei_rpc_stream_open(C.edge.ch, SVC "StreamMetrics", &sreq.base,
                                       &hodei__v1__metrics_snapshot__descriptor, 0, &st, &err),
                 HODEI_OK);
    cr_assert_eq(hodei_rpc_stream_recv(st, 10000, &m, &res, &err), HODEI_OK);
    cr_expect_eq(res.code, HODEI_GRPC_INVALID_ARGUMENT);
    cr_expect(strstr(res.message, "workers_max:"), "%s", res.message);
    hodei_rpc_stream_destroy(st);
    cluster_stop(&C);
}

/* ------------------------------------------------------------ Prometheus */

typedef struct {
    harness_proc proc;
    int port;
    char dir[700];
} prom;

static void prom_start(prom *p)
{
    char conf[800];
    FILE *f;
    p->port = harness_free_port();
    snprintf(p->dir, sizeof p->dir, "%s/prometheus", C.stack.state_dir);
    snprintf(conf, sizeof conf, "%s/prometheus.yml", p->dir);
    cr_assert_eq(harness_sh(&C.stack, NULL, 0, "mkdir -p '%s/data'", p->dir), 0);
    cr_assert_not_null(f = fopen(conf, "w"));
    fprintf(f, "global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n");
    struct {
        const char *job;
        int port;
    } t[] = {{"job-api", C.edge.health_port},
             {"outbox-relay", C.health_port[CL_RELAY]},
             {"scheduler", C.health_port[CL_SCHEDULER]},
             {"provisioner", C.health_port[CL_PROVISIONER]},
             {"supervisor", C.health_port[CL_SUPERVISOR]}};
    for (size_t i = 0; i < 5; i++)
        fprintf(f, "  - job_name: %s\n    static_configs: [{targets: ['127.0.0.1:%d']}]\n",
                t[i].job, t[i].port);
    fclose(f);
    char a1[900], a2[900], a3[64];
    snprintf(a1, sizeof a1, "--config.file=%s", conf);
    snprintf(a2, sizeof a2, "--storage.tsdb.path=%s/data", p->dir);
    snprintf(a3, sizeof a3, "--web.listen-address=127.0.0.1:%d", p->port);
    const char *argv[] = {"/usr/bin/prometheus", a1, a2, a3, "--log.level=warn", NULL};
    harness_proc_start(&C.stack, &p->proc, argv, NULL);
    char body[256];
    cr_assert(harness_http_wait(p->port, "/-/ready", 200, "", 60000, body, sizeof body),
              "prometheus is ready (log %s)", p->proc.log_path);
}

/* The value of a PromQL query's single (or first) sample; NAN when empty. */
static double prom_query(const prom *p, const char *promql)
{
    char out[65536];
    harness_sh(&C.stack, out, sizeof out,
               "curl -s --max-time 5 --data-urlencode 'query=%s'"
               " http://127.0.0.1:%d/api/v1/query",
               promql, p->port);
    const char *v = strstr(out, "\"value\":[");
    if (!v)
        return NAN;
    v = strchr(v, ',');
    return v && v[1] == '"' ? strtod(v + 2, NULL) : NAN;
}

/* Polls until the query answers want (within tol); returns the last answer. */
static double prom_wait(const prom *p, const char *promql, double want, double tol)
{
    double got = NAN;
    int64_t until = hodei_mono_ms() + 30000;
    do {
        got = prom_query(p, promql);
        if (fabs(got - want) <= tol)
            return got;
        hodei_sleep_ms(250);
    } while (hodei_mono_ms() < until);
    return got;
}

static const double fast_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                     0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
#define FAST_N (sizeof fast_bounds / sizeof fast_bounds[0])

/* (lower, upper] of the bucket holding v seconds. */
static void bucket_of(double v, double *lo, double *hi)
{
    *lo = 0;
    for (size_t i = 0; i < FAST_N; i++) {
        if (v <= fast_bounds[i]) {
            *hi = fast_bounds[i];
            return;
        }
        *lo = fast_bounds[i];
    }
    *hi = INFINITY;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p99 of the jobs' dispatch latency by the database's own timings. */
static double db_dispatch_p99(int n)
{
    char out[65536], *save = NULL;
    double v[256];
    int k = 0;
    harness_sh(&C.stack, out, sizeof out,
               "psql -qtA \"$HODEI_DATABASE_URL\" -c \"SELECT extract(epoch FROM started_at -"
               " greatest(created_at, not_before)) FROM jobs WHERE state = 'SUCCEEDED'\"");
    for (char *line = strtok_r(out, "\n", &save); line && k < 256;
         line = strtok_r(NULL, "\n", &save))
        v[k++] = strtod(line, NULL);
    cr_assert_eq(k, n, "%d jobs with timings", n);
    qsort(v, (size_t)k, sizeof v[0], dbl_cmp);
    return v[(size_t)ceil(0.99 * k) - 1];
}

Test(metrics, prometheus_scrapes_every_daemon)
{
    enum { N = 20 };
    prom p;
    cluster_start(&C, fast_env);
    cluster_provider(&C, 4, 600000, 4);
    cr_assert(
        cluster_wait_sql(&C, "SELECT count(*) FROM workers WHERE state = 'READY'", 4, WAIT_MS));
    prom_start(&p);
    /* long enough that each ack is written before the result (started_at) */
    run_jobs("sleep 0.2", N, "SUCCEEDED");
    queue_stuck(2, 4);

    cr_expect_eq(prom_wait(&p, "count(up == 1)", 5, 0), 5, "every daemon scraped");
    cr_expect_eq(prom_wait(&p, "sum(hodei_queue_depth)", 6, 0), 6, "queue depth");
    cr_expect_eq(prom_wait(&p, "sum(hodei_queue_depth{priority_band=\"high\"})", 2, 0), 2);
    cr_expect_eq(prom_wait(&p, "sum(hodei_jobs{state=\"PENDING\"})", 6, 0), 6);
    cr_expect_eq(prom_wait(&p, "sum(hodei_jobs_finished_total{state=\"SUCCEEDED\"})", N, 0), N);
    cr_expect_eq(prom_wait(&p, "sum(hodei_job_dispatch_latency_seconds_count)", N, 0), N,
                 "one dispatch per job");
    cr_expect_eq(prom_wait(&p, "sum(hodei_job_queue_wait_seconds_count)", N, 0), N,
                 "one assignment per job, by a pass or a hand-off");
    cr_expect_eq(prom_wait(&p, "sum(hodei_job_run_seconds_count{state=\"SUCCEEDED\"})", N, 0), N);
    cr_expect_eq(prom_wait(&p,
                           "sum(hodei_grpc_server_handling_seconds_count{method=\"hodei.v1."
                           "JobExecutionService/QueueJob\",code=\"OK\"})",
                           N + 6, 0),
                 N + 6, "QueueJob calls by method and code");
    cr_expect_eq(prom_wait(&p, "count(process_resident_memory_bytes > 0)", 5, 0), 5);
    cr_expect_eq(prom_wait(&p, "count(process_start_time_seconds)", 5, 0), 5);
    cr_expect_eq(prom_wait(&p, "count(hodei_build_info)", 5, 0), 5);
    cr_expect_eq(prom_wait(&p, "sum(hodei_workers{state=\"READY\",provider=\"process\"})", 4, 0),
                 4);
    cr_expect_geq(prom_query(&p, "sum(hodei_outbox_relay_lag_seconds_count)"), 2 * N);
    cr_expect_geq(
        prom_query(&p, "sum(hodei_provisioner_workers_started_total{provider=\"process\"})"), 4);

    /* the dispatch-latency p99: PromQL over the edge's histogram lands in the
     * bucket the database's timings put it in (the database records a start
     * when the grouped ack is written, up to worker.ack_delay later) */
    double want = db_dispatch_p99(N);
    double lo, hi, lo2, hi2;
    bucket_of(want, &lo, &hi);
    bucket_of(want - 0.05 > 0 ? want - 0.05 : 0, &lo2, &hi2);
    double got = prom_query(
        &p, "histogram_quantile(0.99, sum by (le) (hodei_job_dispatch_latency_seconds_bucket))");
    cr_log_info("dispatch p99: PromQL %.4f s, database %.4f s", got, want);
    cr_expect(got >= lo2 && got <= hi, "PromQL p99 %.4f s in [%.4f, %.4f] (database p99 %.4f s)",
              got, lo2, hi, want);

    harness_proc_stop(&p.proc, SIGTERM, 10000);
    cluster_stop(&C);
}
