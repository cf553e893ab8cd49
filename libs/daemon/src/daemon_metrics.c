/* Metrics: a fixed table of counters and gauges the service registers in
 * init(), updated with relaxed atomics, written out for GET /metrics in
 * Prometheus' text exposition format (version 0.0.4). */
#include "daemon_int.h"

#include <inttypes.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/util.h"

#ifndef HODEI_VERSION
#define HODEI_VERSION "0.0.0"
#endif

static bool metric_name_valid(const char *name)
{
    if (!name[0] || strlen(name) >= DAEMON_METRIC_NAME_MAX || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

static hodei_metric *metric_register(hodei_daemon *d, const char *name, const char *help,
                                     daemon_metric_kind kind)
{
    /* a programming error, found by the first run of the service */
    HODEI_ASSERT(metric_name_valid(name));
    pthread_mutex_lock(&d->health_mu);
    size_t n = atomic_load(&d->n_metrics);
    for (size_t i = 0; i < n; i++)
        HODEI_ASSERT(strcmp(d->metrics[i].name, name) != 0);
    HODEI_ASSERT(n < DAEMON_METRICS_MAX);
    hodei_metric *m = &d->metrics[n];
    hodei_strlcpy(m->name, name, sizeof m->name);
    hodei_strlcpy(m->help, help, sizeof m->help);
    m->kind = kind;
    atomic_store(&d->n_metrics, n + 1);
    pthread_mutex_unlock(&d->health_mu);
    return m;
}

hodei_metric *hodei_daemon_counter(hodei_daemon *d, const char *name, const char *help)
{
    return metric_register(d, name, help, DAEMON_COUNTER);
}

hodei_metric *hodei_daemon_counter_micro(hodei_daemon *d, const char *name, const char *help)
{
    return metric_register(d, name, help, DAEMON_COUNTER_MICRO);
}

hodei_metric *hodei_daemon_gauge(hodei_daemon *d, const char *name, const char *help)
{
    return metric_register(d, name, help, DAEMON_GAUGE);
}

void hodei_metric_add(hodei_metric *m, uint64_t n)
{
    atomic_fetch_add_explicit(&m->counter, n, memory_order_relaxed);
}

void hodei_metric_set(hodei_metric *m, int64_t v)
{
    atomic_store_explicit(&m->gauge, v, memory_order_relaxed);
}

/* HELP text: backslash and newline escaped, as the format asks. */
static void metrics_help(hodei_buf *b, const char *name, const char *help, const char *type)
{
    hodei_buf_printf(b, "# HELP %s ", name);
    for (const char *c = help; *c; c++) {
        if (*c == '\\')
            hodei_buf_puts(b, "\\\\");
        else if (*c == '\n')
            hodei_buf_puts(b, "\\n");
        else
            hodei_buf_putc(b, *c);
    }
    hodei_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* Dependency names are the service's own short words ([a-z_]), so they
 * need no label escaping. */
void daemon_metrics_text(hodei_daemon *d, bool ready, hodei_buf *b)
{
    metrics_help(b, "hodei_build_info", "The daemon and its version; always 1.", "gauge");
    hodei_buf_printf(b, "hodei_build_info{service=\"%s\",version=\"%s\"} 1\n", d->svc->name,
                     HODEI_VERSION);
    metrics_help(b, "hodei_start_time_seconds", "When the daemon started (Unix time).", "gauge");
    hodei_buf_printf(b, "hodei_start_time_seconds %" PRId64 "\n", d->start_time_s);
    metrics_help(b, "hodei_ready", "1 while GET /readyz answers 200.", "gauge");
    hodei_buf_printf(b, "hodei_ready %d\n", ready ? 1 : 0);
    if (d->n_deps > 0)
        metrics_help(b, "hodei_dependency_up", "1 while the dependency was last seen working.",
                     "gauge");
    for (size_t i = 0; i < d->n_deps; i++)
        hodei_buf_printf(b, "hodei_dependency_up{dependency=\"%s\"} %d\n", d->deps[i].name,
                         d->deps[i].up ? 1 : 0);
    size_t n = atomic_load(&d->n_metrics);
    for (size_t i = 0; i < n; i++) {
        const hodei_metric *m = &d->metrics[i];
        metrics_help(b, m->name, m->help, m->kind == DAEMON_GAUGE ? "gauge" : "counter");
        if (m->kind == DAEMON_GAUGE) {
            hodei_buf_printf(b, "%s %" PRId64 "\n", m->name,
                             atomic_load_explicit(&m->gauge, memory_order_relaxed));
        } else {
            uint64_t v = atomic_load_explicit(&m->counter, memory_order_relaxed);
            if (m->kind == DAEMON_COUNTER)
                hodei_buf_printf(b, "%s %" PRIu64 "\n", m->name, v);
            else
                hodei_buf_printf(b, "%s %" PRIu64 ".%06" PRIu64 "\n", m->name, v / 1000000,
                                 v % 1000000);
        }
    }
}
