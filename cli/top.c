/* hodei top's drawing (top.h). The human view fits 100 columns:
 *
 *   hodei top  127.0.0.1:50051  2026-12-07T08:01:02Z  every 1s
 *   jobs     pending 12  assigned 1  running 4   outbox backlog 0
 *   last 10s succeeded 35  failed 1  cancelled 0   3.6 jobs/s
 *   1h       ended 1234: succeeded 1200 failed 30 timeout 2 cancelled 2
 *            dispatch p50 2.6ms p90 4.1ms p99 9.8ms   run p50 120ms p99 2.30s
 *   workers  live 8  ready 3  busy 5
 *
 *   QUEUE   PROVIDER  JOBS  DUE  OLDEST
 *   ...
 *   PROVIDER  READY BUSY STARTING LEAVING BUSY%  CPU USED/CAP  MEMORY USED/TOTAL  UTIL
 *   ...
 *   WORKER  PROVIDER  STATE  CPU  MEMORY  JOB  HEARTBEAT
 *
 * Strings from the server are sanitized (output_sanitize). */
#include "top.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "hodei/job_state.h"
#include "hodei/time.h"
#include "hodei/worker_state.h"
#include "output_int.h"

#define TOP_NAME_MAX 24 /* characters of a provider or host name shown */
#define TOP_FIELD 32

void cli_format_ms(double ms, char *out, size_t out_len)
{
    if (!(ms >= 0)) {
        snprintf(out, out_len, "-");
    } else if (ms < 1) {
        snprintf(out, out_len, "%.0fus", ms * 1000);
    } else if (ms < 1000) {
        snprintf(out, out_len, ms < 100 ? "%.1fms" : "%.0fms", ms);
    } else if (ms < 60000) {
        snprintf(out, out_len, "%.2fs", ms / 1000);
    } else if (ms < 3600000) {
        int64_t s = (int64_t)(ms / 1000);
        snprintf(out, out_len, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    } else {
        int64_t m = (int64_t)(ms / 60000);
        snprintf(out, out_len, "%" PRId64 "h%02" PRId64 "m", m / 60, m % 60);
    }
}

static int64_t top_state_count(const Hodei__V1__GetAggregatedMetricsResponse *w,
                               Hodei__V1__JobState s)
{
    for (size_t i = 0; i < w->n_jobs_by_state; i++)
        if (w->jobs_by_state[i]->state == s)
            return w->jobs_by_state[i]->jobs;
    return 0;
}

static void top_summary(FILE *out, const char *name, const Hodei__V1__LatencySummary *s)
{
    char p50[TOP_FIELD], p90[TOP_FIELD], p99[TOP_FIELD];
    if (!s || s->count == 0) {
        fprintf(out, "%s -", name);
        return;
    }
    cli_format_ms(s->p50_ms, p50, sizeof p50);
    cli_format_ms(s->p90_ms, p90, sizeof p90);
    cli_format_ms(s->p99_ms, p99, sizeof p99);
    fprintf(out, "%s p50 %s p90 %s p99 %s", name, p50, p90, p99);
}

static void top_header(FILE *out, const cli_top_view *v)
{
    char when[OUTPUT_TIME_BUF] = "-", every[TOP_FIELD], server[CLI_SERVER_MAX + 1];
    const Hodei__V1__MetricsSnapshot *s = v->snap;
    if (s)
        output_time(s->time, when, sizeof when);
    cli_format_duration(v->interval_ms, every, sizeof every);
    output_sanitize(v->server, CLI_SERVER_MAX, server, sizeof server);
    fprintf(out, "hodei top  %s  %s  every %s\n", server, when, every);
    if (v->note)
        fprintf(out, "%s\n", v->note);
    if (!s)
        return;
    fprintf(out,
            "jobs     pending %" PRId64 "  assigned %" PRId64 "  running %" PRId64
            "   outbox backlog %" PRId64 "\n",
            s->jobs_pending, s->jobs_assigned, s->jobs_running, s->outbox_backlog);
    int64_t ended = s->jobs_succeeded + s->jobs_failed + s->jobs_cancelled;
    double secs = s->recent_window_ms > 0 ? (double)s->recent_window_ms / 1000.0 : 0;
    fprintf(out,
            "last %2.0fs succeeded %" PRId64 "  failed %" PRId64 "  cancelled %" PRId64
            "   %.1f jobs/s\n",
            secs, s->jobs_succeeded, s->jobs_failed, s->jobs_cancelled,
            secs > 0 ? (double)ended / secs : 0.0);
}

static void top_window(FILE *out, const Hodei__V1__GetAggregatedMetricsResponse *w)
{
    char win[TOP_FIELD];
    if (!w)
        return;
    cli_format_duration(w->window_ms, win, sizeof win);
    fprintf(out,
            "%-8s ended %" PRId64 ": succeeded %" PRId64 " failed %" PRId64 " timeout %" PRId64
            " cancelled %" PRId64 "\n",
            win, w->jobs_finished_in_window,
            top_state_count(w, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED),
            top_state_count(w, HODEI__V1__JOB_STATE__JOB_STATE_FAILED),
            top_state_count(w, HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT),
            top_state_count(w, HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED));
    fputs("         ", out);
    top_summary(out, "dispatch", w->dispatch_latency);
    fputs("   ", out);
    top_summary(out, "run", w->run_duration);
    fputc('\n', out);
}

static void top_queue(FILE *out, const Hodei__V1__MetricsSnapshot *s)
{
    char provider[TOP_NAME_MAX * 4 + 8], band[TOP_FIELD], oldest[TOP_FIELD];
    fprintf(out, "\n%-8s %-24s %8s %8s %10s\n", "QUEUE", "PROVIDER", "JOBS", "DUE", "OLDEST");
    if (s->n_queue == 0)
        fprintf(out, "%-8s %-24s %8d %8d %10s\n", "-", "-", 0, 0, "-");
    for (size_t i = 0; i < s->n_queue; i++) {
        const Hodei__V1__QueueDepth *q = s->queue[i];
        output_sanitize(q->priority_band, 8, band, sizeof band);
        output_sanitize(q->provider[0] ? q->provider : "any", TOP_NAME_MAX, provider,
                        sizeof provider);
        cli_format_ms(q->due > 0 ? q->oldest_wait_ms : -1, oldest, sizeof oldest);
        fprintf(out, "%-8s %-24s %8" PRId64 " %8" PRId64 " %10s\n", band, provider, q->jobs, q->due,
                oldest);
    }
}

static void top_providers(FILE *out, const Hodei__V1__MetricsSnapshot *s, bool window)
{
    char name[TOP_NAME_MAX * 4 + 8], used[TOP_FIELD], total[TOP_FIELD], cpu[TOP_FIELD * 2],
        mem[TOP_FIELD * 2], util[TOP_FIELD];
    fprintf(out, "\n%-24s %5s %5s %5s %5s %5s %13s %17s %5s\n", "PROVIDER", "READY", "BUSY",
            "START", "LEAVE", "BUSY%", "CPU USED/CAP", "MEMORY USED/TOTAL", "UTIL");
    for (size_t i = 0; i < s->n_providers; i++) {
        const Hodei__V1__ProviderUsage *p = s->providers[i];
        output_sanitize(p->provider, TOP_NAME_MAX, name, sizeof name);
        snprintf(cpu, sizeof cpu, "%.2f/%.1f", p->cpu_cores_used, p->cpu_cores_capacity);
        cli_format_size(p->memory_bytes_used, used, sizeof used);
        cli_format_size(p->memory_bytes_total, total, sizeof total);
        snprintf(mem, sizeof mem, "%s/%s", used, total);
        if (window)
            snprintf(util, sizeof util, "%.0f%%", p->utilisation * 100);
        else
            snprintf(util, sizeof util, "-");
        fprintf(out,
                "%-24s %5" PRId64 " %5" PRId64 " %5" PRId64 " %5" PRId64 " %4.0f%% %13s %17s %5s\n",
                name, p->workers_ready, p->workers_busy, p->workers_starting, p->workers_leaving,
                p->busy_ratio * 100, cpu, mem, util);
    }
}

static void top_workers(FILE *out, const Hodei__V1__MetricsSnapshot *s)
{
    char id[48], provider[TOP_NAME_MAX * 4 + 8], job[48], mem[TOP_FIELD], beat[TOP_FIELD];
    int64_t now = hodei_wall_us();
    fprintf(out, "\n%-36s %-16s %-9s %5s %8s %-36s %5s\n", "WORKER", "PROVIDER", "STATE", "CPU",
            "MEMORY", "JOB", "BEAT");
    for (size_t i = 0; i < s->n_workers; i++) {
        const Hodei__V1__WorkerUsage *w = s->workers[i];
        output_sanitize(w->worker_id, 36, id, sizeof id);
        output_sanitize(w->provider, 16, provider, sizeof provider);
        output_sanitize(w->current_job_id[0] ? w->current_job_id : "-", 36, job, sizeof job);
        cli_format_size(w->memory_bytes_used, mem, sizeof mem);
        cli_format_age(output_time_us(w->last_heartbeat_at), now, beat, sizeof beat);
        fprintf(out, "%-36s %-16s %-9s %5.2f %8s %-36s %5s\n", id, provider,
                hodei_worker_state_name(w->state), w->cpu_cores_used, mem, job, beat);
    }
    if ((int64_t)s->n_workers < s->workers_live)
        fprintf(out, "(%zu of %" PRId64 " live workers shown)\n", s->n_workers, s->workers_live);
}

static int top_human(const cli_top_view *v, FILE *out)
{
    const Hodei__V1__MetricsSnapshot *s = v->snap;
    top_header(out, v);
    if (s) {
        top_window(out, v->window);
        fprintf(out, "workers  live %" PRId64 "  ready %" PRId64 "  busy %" PRId64 "\n",
                s->workers_live, s->workers_ready, s->workers_busy);
        top_queue(out, s);
        top_providers(out, v->window ? v->window->current : s, v->window != NULL);
        if (v->show_workers)
            top_workers(out, s);
    }
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* ------------------------------------------------------------ JSON */

static void top_json_summary(cli_json *j, const char *key, const Hodei__V1__LatencySummary *s)
{
    cli_json_key(j, key);
    if (!s) {
        cli_json_null(j);
        return;
    }
    cli_json_object_begin(j);
    cli_json_kv_int(j, "count", s->count);
    const char *names[] = {"mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"};
    double vals[] = {s->mean_ms, s->p50_ms, s->p90_ms, s->p99_ms, s->max_ms};
    for (size_t i = 0; i < 5; i++) {
        cli_json_key(j, names[i]);
        cli_json_double(j, vals[i]);
    }
    cli_json_object_end(j);
}

static void top_json_providers(cli_json *j, const Hodei__V1__MetricsSnapshot *s)
{
    cli_json_key(j, "providers");
    cli_json_array_begin(j);
    for (size_t i = 0; i < s->n_providers; i++) {
        const Hodei__V1__ProviderUsage *p = s->providers[i];
        cli_json_object_begin(j);
        cli_json_kv_string(j, "provider", p->provider);
        cli_json_kv_int(j, "workers_ready", p->workers_ready);
        cli_json_kv_int(j, "workers_busy", p->workers_busy);
        cli_json_kv_int(j, "workers_starting", p->workers_starting);
        cli_json_kv_int(j, "workers_leaving", p->workers_leaving);
        const char *names[] = {"busy_ratio",   "cpu_cores_used", "cpu_cores_capacity",
                               "busy_seconds", "worker_seconds", "utilisation"};
        double vals[] = {p->busy_ratio,   p->cpu_cores_used, p->cpu_cores_capacity,
                         p->busy_seconds, p->worker_seconds, p->utilisation};
        for (size_t k = 0; k < 6; k++) {
            cli_json_key(j, names[k]);
            cli_json_double(j, vals[k]);
        }
        cli_json_kv_int(j, "memory_bytes_used", p->memory_bytes_used);
        cli_json_kv_int(j, "memory_bytes_total", p->memory_bytes_total);
        cli_json_object_end(j);
    }
    cli_json_array_end(j);
}

static void top_json_queue(cli_json *j, const Hodei__V1__MetricsSnapshot *s)
{
    cli_json_key(j, "queue");
    cli_json_array_begin(j);
    for (size_t i = 0; i < s->n_queue; i++) {
        const Hodei__V1__QueueDepth *q = s->queue[i];
        cli_json_object_begin(j);
        cli_json_kv_string(j, "priority_band", q->priority_band);
        cli_json_kv_string(j, "provider", q->provider);
        cli_json_kv_int(j, "jobs", q->jobs);
        cli_json_kv_int(j, "due", q->due);
        cli_json_key(j, "oldest_wait_ms");
        cli_json_double(j, q->oldest_wait_ms);
        cli_json_object_end(j);
    }
    cli_json_array_end(j);
}

static void top_json_workers(cli_json *j, const Hodei__V1__MetricsSnapshot *s)
{
    cli_json_key(j, "workers");
    cli_json_array_begin(j);
    for (size_t i = 0; i < s->n_workers; i++) {
        const Hodei__V1__WorkerUsage *w = s->workers[i];
        cli_json_object_begin(j);
        cli_json_kv_string(j, "worker_id", w->worker_id);
        cli_json_kv_string(j, "provider", w->provider);
        cli_json_kv_string(j, "state", hodei_worker_state_name(w->state));
        cli_json_kv_string(j, "hostname", w->hostname);
        cli_json_kv_string(j, "current_job_id", w->current_job_id);
        cli_json_key(j, "cpu_cores_used");
        cli_json_double(j, w->cpu_cores_used);
        cli_json_key(j, "cpu_cores_capacity");
        cli_json_double(j, w->cpu_cores_capacity);
        cli_json_kv_int(j, "memory_bytes_used", w->memory_bytes_used);
        cli_json_kv_int(j, "memory_bytes_total", w->memory_bytes_total);
        cli_json_kv_int(j, "running_jobs", w->running_jobs);
        output_json_time(j, "last_heartbeat_at", w->last_heartbeat_at);
        cli_json_object_end(j);
    }
    cli_json_array_end(j);
}

static void top_json_snapshot(cli_json *j, const Hodei__V1__MetricsSnapshot *s)
{
    cli_json_key(j, "snapshot");
    if (!s) {
        cli_json_null(j);
        return;
    }
    cli_json_object_begin(j);
    output_json_time(j, "time", s->time);
    const char *names[] = {"jobs_pending",  "jobs_assigned",  "jobs_running",     "jobs_succeeded",
                           "jobs_failed",   "jobs_cancelled", "recent_window_ms", "workers_live",
                           "workers_ready", "workers_busy",   "outbox_backlog"};
    int64_t vals[] = {s->jobs_pending,  s->jobs_assigned,  s->jobs_running,     s->jobs_succeeded,
                      s->jobs_failed,   s->jobs_cancelled, s->recent_window_ms, s->workers_live,
                      s->workers_ready, s->workers_busy,   s->outbox_backlog};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        cli_json_kv_int(j, names[i], vals[i]);
    top_json_queue(j, s);
    top_json_providers(j, s);
    top_json_workers(j, s);
    cli_json_object_end(j);
}

static void top_json_window(cli_json *j, const Hodei__V1__GetAggregatedMetricsResponse *w)
{
    cli_json_key(j, "window");
    if (!w) {
        cli_json_null(j);
        return;
    }
    cli_json_object_begin(j);
    cli_json_kv_int(j, "window_ms", w->window_ms);
    cli_json_kv_int(j, "jobs_finished_in_window", w->jobs_finished_in_window);
    cli_json_key(j, "jobs_by_state");
    cli_json_object_begin(j);
    for (size_t i = 0; i < w->n_jobs_by_state; i++)
        cli_json_kv_int(j, hodei_job_state_name(w->jobs_by_state[i]->state),
                        w->jobs_by_state[i]->jobs);
    cli_json_object_end(j);
    top_json_summary(j, "dispatch_latency", w->dispatch_latency);
    top_json_summary(j, "run_duration", w->run_duration);
    if (w->current)
        top_json_providers(j, w->current);
    cli_json_object_end(j);
}

int cli_top_render(cli_output_format fmt, const cli_top_view *v, FILE *out)
{
    if (fmt == CLI_OUTPUT_HUMAN)
        return top_human(v, out);
    hodei_buf b;
    cli_json j;
    hodei_buf_init(&b, CLI_OUTPUT_MAX);
    cli_json_init(&j, &b);
    cli_json_object_begin(&j);
    top_json_snapshot(&j, v->snap);
    top_json_window(&j, v->window);
    cli_json_object_end(&j);
    return output_json_flush(&j, &b, out);
}
