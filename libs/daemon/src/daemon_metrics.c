/* Metrics: families of counters, gauges and histograms the service
 * registers in init(), each holding one series per set of label values,
 * written out for GET /metrics in Prometheus' text exposition format
 * (version 0.0.4).
 *
 * A series is made whole under its family's mutex, then published by a
 * release store of the family's count; lookups scan the published ones
 * without a lock, and updates are relaxed atomics. Nothing is freed before
 * the daemon exits, so a handle stays valid for the life of the process. */
#include "daemon_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/log.h"
#include "hodei/util.h"

#ifndef HODEI_VERSION
#define HODEI_VERSION "0.0.0"
#endif

#define METRICS_KEY_SEP '\x1f'
#define METRICS_KEY_MAX (DAEMON_LABELS_MAX * (DAEMON_LABEL_VALUE_MAX + 1))
#define METRICS_LABELS_TEXT_MAX                                                                    \
    (DAEMON_LABELS_MAX * (DAEMON_LABEL_NAME_MAX + 2 * DAEMON_LABEL_VALUE_MAX + 4))

static bool metric_name_valid(const char *name, size_t max)
{
    if (!name[0] || strlen(name) >= max || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

/* "a,b" into f->label_names; a programming error when malformed. */
static void family_labels_parse(hodei_metric_family *f, const char *labels)
{
    const char *p = labels;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        HODEI_ASSERT(f->n_labels < DAEMON_LABELS_MAX && len > 0 && len < DAEMON_LABEL_NAME_MAX);
        char *name = f->label_names[f->n_labels++];
        memcpy(name, p, len);
        name[len] = '\0';
        HODEI_ASSERT(metric_name_valid(name, DAEMON_LABEL_NAME_MAX) && strcmp(name, "le") != 0);
        p = comma ? comma + 1 : NULL;
    }
}

static hodei_metric_family *family_register(hodei_daemon *d, const char *name, const char *help,
                                            daemon_metric_kind kind, const char *labels,
                                            const double *bounds, size_t n_bounds)
{
    /* programming errors, found by the first run of the service */
    HODEI_ASSERT(metric_name_valid(name, DAEMON_METRIC_NAME_MAX));
    HODEI_ASSERT(n_bounds <= DAEMON_BUCKETS_MAX);
    hodei_metric_family *f = calloc(1, sizeof *f);
    HODEI_ASSERT(f != NULL);
    hodei_strlcpy(f->name, name, sizeof f->name);
    hodei_strlcpy(f->help, help, sizeof f->help);
    f->kind = kind;
    family_labels_parse(f, labels);
    for (size_t i = 0; i < n_bounds; i++) {
        HODEI_ASSERT(bounds[i] >= 0 && (i == 0 || bounds[i] > bounds[i - 1]));
        f->bounds[i] = bounds[i];
        f->bounds_micro[i] = (int64_t)llround(bounds[i] * 1e6);
    }
    f->n_bounds = n_bounds;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_lock(&d->health_mu);
    size_t n = atomic_load(&d->n_families);
    for (size_t i = 0; i < n; i++)
        HODEI_ASSERT(strcmp(d->families[i]->name, name) != 0);
    HODEI_ASSERT(n < DAEMON_FAMILIES_MAX);
    d->families[n] = f;
    atomic_store(&d->n_families, n + 1);
    pthread_mutex_unlock(&d->health_mu);
    return f;
}

/* Appends a label value escaped as the format asks (\\, \", \n). */
static size_t labels_escape(char *out, size_t at, size_t max, const char *v)
{
    for (; *v && at + 3 < max; v++) {
        if (*v == '\\' || *v == '"') {
            out[at++] = '\\';
            out[at++] = *v;
        } else if (*v == '\n') {
            out[at++] = '\\';
            out[at++] = 'n';
        } else {
            out[at++] = *v;
        }
    }
    out[at] = '\0';
    return at;
}

static hodei_metric *series_create(hodei_metric_family *f, const char *key,
                                   const char *const *values)
{
    char text[METRICS_LABELS_TEXT_MAX];
    size_t at = 0;
    text[0] = '\0';
    for (size_t i = 0; i < f->n_labels; i++) {
        char value[DAEMON_LABEL_VALUE_MAX];
        hodei_strlcpy(value, values[i] ? values[i] : "", sizeof value);
        int w = snprintf(text + at, sizeof text - at, "%s%s=\"", i ? "," : "", f->label_names[i]);
        at += (size_t)w;
        at = labels_escape(text, at, sizeof text - 2, value);
        text[at++] = '"';
        text[at] = '\0';
    }
    hodei_metric *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->family = f;
    m->key = strdup(key);
    m->labels = strdup(text);
    if (f->kind == DAEMON_HISTOGRAM)
        m->buckets = calloc(f->n_bounds + 1, sizeof *m->buckets);
    if (!m->key || !m->labels || (f->kind == DAEMON_HISTOGRAM && !m->buckets)) {
        free(m->key);
        free(m->labels);
        free((void *)m->buckets);
        free(m);
        return NULL;
    }
    return m;
}

static hodei_metric *series_find(hodei_metric_family *f, const char *key, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(f->series[i]->key, key) == 0)
            return f->series[i];
    return NULL;
}

hodei_metric *hodei_metric_withv(hodei_metric_family *f, const char *const *values, size_t n)
{
    char key[METRICS_KEY_MAX];
    size_t at = 0;
    if (!f)
        return NULL;
    HODEI_ASSERT(n == f->n_labels);
    key[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = values[i] ? strnlen(values[i], DAEMON_LABEL_VALUE_MAX - 1) : 0;
        if (i)
            key[at++] = METRICS_KEY_SEP;
        memcpy(key + at, values[i] ? values[i] : "", len);
        at += len;
        key[at] = '\0';
    }
    size_t published = atomic_load_explicit(&f->n_series, memory_order_acquire);
    hodei_metric *m = series_find(f, key, published);
    if (m)
        return m;
    pthread_mutex_lock(&f->mu);
    published = atomic_load_explicit(&f->n_series, memory_order_acquire);
    m = series_find(f, key, published);
    if (!m && published < DAEMON_SERIES_MAX && (m = series_create(f, key, values)) != NULL) {
        f->series[published] = m;
        atomic_store_explicit(&f->n_series, published + 1, memory_order_release);
    }
    pthread_mutex_unlock(&f->mu);
    if (!m && !atomic_exchange(&f->overflow_logged, true))
        HLOG_WARN("metric %s: more than %d series (or out of memory); new label values are"
                  " not counted",
                  f->name, DAEMON_SERIES_MAX);
    return m;
}

/* An unlabelled family and its one series. */
static hodei_metric *metric_single(hodei_daemon *d, const char *name, const char *help,
                                   daemon_metric_kind kind, const double *bounds, size_t n_bounds)
{
    hodei_metric_family *f = family_register(d, name, help, kind, "", bounds, n_bounds);
    hodei_metric *m = hodei_metric_withv(f, NULL, 0);
    HODEI_ASSERT(m != NULL);
    return m;
}

hodei_metric *hodei_daemon_counter(hodei_daemon *d, const char *name, const char *help)
{
    return metric_single(d, name, help, DAEMON_COUNTER, NULL, 0);
}

hodei_metric *hodei_daemon_counter_micro(hodei_daemon *d, const char *name, const char *help)
{
    return metric_single(d, name, help, DAEMON_COUNTER_MICRO, NULL, 0);
}

hodei_metric *hodei_daemon_gauge(hodei_daemon *d, const char *name, const char *help)
{
    return metric_single(d, name, help, DAEMON_GAUGE, NULL, 0);
}

hodei_metric *hodei_daemon_histogram(hodei_daemon *d, const char *name, const char *help,
                                     const double *bounds, size_t n_bounds)
{
    return metric_single(d, name, help, DAEMON_HISTOGRAM, bounds, n_bounds);
}

hodei_metric_family *hodei_daemon_counter_vec(hodei_daemon *d, const char *name, const char *help,
                                              const char *labels)
{
    return family_register(d, name, help, DAEMON_COUNTER, labels, NULL, 0);
}

hodei_metric_family *hodei_daemon_gauge_vec(hodei_daemon *d, const char *name, const char *help,
                                            const char *labels)
{
    return family_register(d, name, help, DAEMON_GAUGE, labels, NULL, 0);
}

hodei_metric_family *hodei_daemon_gauge_vec_micro(hodei_daemon *d, const char *name,
                                                  const char *help, const char *labels)
{
    return family_register(d, name, help, DAEMON_GAUGE_MICRO, labels, NULL, 0);
}

hodei_metric_family *hodei_daemon_histogram_vec(hodei_daemon *d, const char *name, const char *help,
                                                const char *labels, const double *bounds,
                                                size_t n_bounds)
{
    return family_register(d, name, help, DAEMON_HISTOGRAM, labels, bounds, n_bounds);
}

void hodei_metric_add(hodei_metric *m, uint64_t n)
{
    if (m)
        atomic_fetch_add_explicit(&m->counter, n, memory_order_relaxed);
}

void hodei_metric_set(hodei_metric *m, int64_t v)
{
    if (m)
        atomic_store_explicit(&m->gauge, v, memory_order_relaxed);
}

void hodei_metric_observe_micro(hodei_metric *m, int64_t v)
{
    if (!m || !m->buckets)
        return;
    const hodei_metric_family *f = m->family;
    if (v < 0)
        v = 0;
    size_t i = 0;
    while (i < f->n_bounds && v > f->bounds_micro[i])
        i++;
    atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_micro, (uint64_t)v, memory_order_relaxed);
}

void hodei_metric_family_zero(hodei_metric_family *f)
{
    if (!f)
        return;
    size_t n = atomic_load_explicit(&f->n_series, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&f->series[i]->gauge, 0, memory_order_relaxed);
}

void daemon_metrics_free(hodei_daemon *d)
{
    size_t n = atomic_load(&d->n_families);
    for (size_t i = 0; i < n; i++) {
        hodei_metric_family *f = d->families[i];
        size_t k = atomic_load(&f->n_series);
        for (size_t j = 0; j < k; j++) {
            free(f->series[j]->key);
            free(f->series[j]->labels);
            free((void *)f->series[j]->buckets);
            free(f->series[j]);
        }
        pthread_mutex_destroy(&f->mu);
        free(f);
        d->families[i] = NULL;
    }
    atomic_store(&d->n_families, 0);
}

/* ------------------------------------------------------------ the text */

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

static void metrics_micro(hodei_buf *b, uint64_t v)
{
    hodei_buf_printf(b, "%" PRIu64 ".%06" PRIu64, v / 1000000, v % 1000000);
}

/* name{labels} or name{labels,extra} or name{extra} or name. */
static void metrics_series_name(hodei_buf *b, const char *name, const char *suffix,
                                const char *labels, const char *extra)
{
    hodei_buf_printf(b, "%s%s", name, suffix);
    if (!labels[0] && !extra)
        return;
    hodei_buf_printf(b, "{%s%s%s}", labels, labels[0] && extra ? "," : "", extra ? extra : "");
}

static void metrics_histogram(hodei_buf *b, const hodei_metric_family *f, const hodei_metric *m)
{
    /* _count is the sum of the buckets as read, so +Inf and _count agree */
    uint64_t cumulative = 0;
    char le[48];
    for (size_t i = 0; i <= f->n_bounds; i++) {
        cumulative += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
        if (i < f->n_bounds)
            snprintf(le, sizeof le, "le=\"%.9g\"", f->bounds[i]);
        else
            snprintf(le, sizeof le, "le=\"+Inf\"");
        metrics_series_name(b, f->name, "_bucket", m->labels, le);
        hodei_buf_printf(b, " %" PRIu64 "\n", cumulative);
    }
    metrics_series_name(b, f->name, "_sum", m->labels, NULL);
    hodei_buf_putc(b, ' ');
    metrics_micro(b, atomic_load_explicit(&m->sum_micro, memory_order_relaxed));
    hodei_buf_putc(b, '\n');
    metrics_series_name(b, f->name, "_count", m->labels, NULL);
    hodei_buf_printf(b, " %" PRIu64 "\n", cumulative);
}

static void metrics_family(hodei_buf *b, const hodei_metric_family *f)
{
    static const char *const types[] = {[DAEMON_COUNTER] = "counter",
                                        [DAEMON_COUNTER_MICRO] = "counter",
                                        [DAEMON_GAUGE] = "gauge",
                                        [DAEMON_GAUGE_MICRO] = "gauge",
                                        [DAEMON_HISTOGRAM] = "histogram"};
    size_t n = atomic_load_explicit(&f->n_series, memory_order_acquire);
    if (n == 0)
        return; /* a labelled family with no series yet: nothing to say */
    metrics_help(b, f->name, f->help, types[f->kind]);
    for (size_t i = 0; i < n; i++) {
        const hodei_metric *m = f->series[i];
        if (f->kind == DAEMON_HISTOGRAM) {
            metrics_histogram(b, f, m);
            continue;
        }
        metrics_series_name(b, f->name, "", m->labels, NULL);
        if (f->kind == DAEMON_GAUGE) {
            hodei_buf_printf(b, " %" PRId64 "\n",
                             atomic_load_explicit(&m->gauge, memory_order_relaxed));
        } else if (f->kind == DAEMON_GAUGE_MICRO) {
            int64_t v = atomic_load_explicit(&m->gauge, memory_order_relaxed);
            hodei_buf_puts(b, v < 0 ? " -" : " ");
            metrics_micro(b, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
            hodei_buf_putc(b, '\n');
        } else if (f->kind == DAEMON_COUNTER) {
            hodei_buf_printf(b, " %" PRIu64 "\n",
                             atomic_load_explicit(&m->counter, memory_order_relaxed));
        } else {
            hodei_buf_putc(b, ' ');
            metrics_micro(b, atomic_load_explicit(&m->counter, memory_order_relaxed));
            hodei_buf_putc(b, '\n');
        }
    }
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
    daemon_process_metrics(b);
    size_t n = atomic_load(&d->n_families);
    for (size_t i = 0; i < n; i++)
        metrics_family(b, d->families[i]);
}
