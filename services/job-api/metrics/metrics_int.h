/* Private to the edge's MetricsService: the readings (metrics_read.c) and
 * the small arena their messages are built in. */
#ifndef HODEI_JOB_API_METRICS_INT_H
#define HODEI_JOB_API_METRICS_INT_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/status.h"
#include "hodei/v1/metrics.pb-c.h"

#define METRICS_WINDOW_DEFAULT_MS (3600LL * 1000)
#define METRICS_WINDOW_MIN_MS 1000LL
#define METRICS_WINDOW_MAX_MS (7LL * 24 * 3600 * 1000)
#define METRICS_BUCKETS_DEFAULT 60
#define METRICS_BUCKETS_MAX 1000
#define METRICS_INTERVAL_DEFAULT_MS 1000
#define METRICS_INTERVAL_MIN_MS 100
#define METRICS_INTERVAL_MAX_MS 60000
#define METRICS_WORKERS_DEFAULT 100
#define METRICS_WORKERS_MAX 1000
#define METRICS_RECENT_MS 10000       /* MetricsSnapshot.recent_window_ms */
#define METRICS_MEASURED_MAX 100000   /* jobs a latency summary covers at most */
#define METRICS_ARENA_BLOCKS_MAX 8192 /* allocations one reading holds */

/* Allocations of one reading, freed together. */
typedef struct {
    void *blocks[METRICS_ARENA_BLOCKS_MAX];
    size_t n;
} metrics_arena;

/* Zeroed memory, or NULL when out of memory or blocks. */
void *metrics_alloc(metrics_arena *a, size_t size);
char *metrics_strdup(metrics_arena *a, const char *s);
void metrics_arena_free(metrics_arena *a);

/* The platform now into *out (an initialised snapshot): counts, queue,
 * providers, recent ends, and at most workers_max live workers (0: none
 * listed). Messages inside are the arena's. */
hodei_status metrics_read_snapshot(PGconn *conn, metrics_arena *a, int workers_max,
                                   Hodei__V1__MetricsSnapshot *out, hodei_err *err);
/* The window's figures into *out (initialised; current filled first by
 * metrics_read_snapshot with no workers): jobs by state, latency summaries,
 * the series and the providers' window fields. */
hodei_status metrics_read_window(PGconn *conn, metrics_arena *a, int64_t window_ms,
                                 int64_t bucket_ms, Hodei__V1__GetAggregatedMetricsResponse *out,
                                 hodei_err *err);

#endif
