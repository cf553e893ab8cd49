/* The fleet now, read in one statement: jobs in each live state, the queue
 * by priority band and preferred provider, workers by provider and state
 * with the usage their last heartbeats reported, and the outbox backlog.
 * The supervisor's gauges and the edge's MetricsService both read it, so
 * the two always agree on what a number means.
 *
 * Cost: counts over the partial indexes of live jobs, a pass over PENDING
 * rows (the queue's grouping) and over the workers that are not
 * TERMINATED; nothing proportional to finished jobs. */
#ifndef HODEI_STORE_FLEET_H
#define HODEI_STORE_FLEET_H

#include <libpq-fe.h>
#include <stdint.h>

#include "hodei/status.h"
#include "hodei/store.h"
#include "hodei/v1/common.pb-c.h"

#define HODEI_FLEET_QUEUE_MAX 128     /* (band, provider) pairs, the largest first */
#define HODEI_FLEET_PROVIDERS_MAX 128 /* registered, or with workers not TERMINATED */
#define HODEI_FLEET_BAND_MAX 8
#define HODEI_FLEET_STATES 9 /* indexed by Hodei__V1__WorkerState */

/* The queue's priority bands, as SQL over a jobs row: "high" above 0,
 * "normal" at 0 (the default), "low" below. */
#define HODEI_FLEET_BAND_SQL                                                                       \
    "CASE WHEN priority > 0 THEN 'high' WHEN priority < 0 THEN 'low' ELSE 'normal' END"

typedef struct {
    char band[HODEI_FLEET_BAND_MAX];
    char provider[HODEI_STORE_PROVIDER_MAX + 1]; /* the jobs' preference; "" = any */
    int64_t jobs;                                /* PENDING */
    int64_t due;                                 /* of them, schedulable now */
    double oldest_wait_ms;                       /* since the oldest due one became due */
} hodei_fleet_queue;

typedef struct {
    char provider[HODEI_STORE_PROVIDER_MAX + 1];
    int64_t workers[HODEI_FLEET_STATES]; /* by state; TERMINATED not counted */
    /* READY, BUSY and DRAINING workers: last heartbeats, and capacity */
    double cpu_cores_used, cpu_cores_capacity;
    int64_t memory_bytes_used, memory_bytes_total;
} hodei_fleet_provider;

typedef struct {
    int64_t jobs_pending, jobs_assigned, jobs_running;
    int64_t outbox_backlog;
    hodei_fleet_queue queue[HODEI_FLEET_QUEUE_MAX]; /* high, normal, low; then by provider */
    size_t n_queue;
    hodei_fleet_provider providers[HODEI_FLEET_PROVIDERS_MAX]; /* by name */
    size_t n_providers;
} hodei_fleet;

/* One statement, outside or inside the caller's transaction. */
hodei_status hodei_store_fleet_read(PGconn *conn, hodei_fleet *out, hodei_err *err);

/* Live workers (READY, BUSY, DRAINING) of a provider, summed over states. */
int64_t hodei_fleet_live(const hodei_fleet_provider *p);

#endif
