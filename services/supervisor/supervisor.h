/* The supervisor: heartbeats and timeouts of the running system. One active
 * instance at a time (PostgreSQL session advisory lock), standbys waiting.
 * The active one runs a tick every supervisor.tick_interval; each check of
 * the tick is one short transaction on the rows it changes. */
#ifndef HODEI_SUPERVISOR_H
#define HODEI_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "hodei/config.h"
#include "hodei/daemon.h"
#include "hodei/status.h"

typedef struct {
    int64_t tick_interval_ms;        /* supervisor.tick_interval */
    int64_t heartbeat_timeout_ms;    /* supervisor.heartbeat_timeout: READY/BUSY/DRAINING -> LOST */
    int64_t timeout_grace_ms;        /* supervisor.timeout_grace: added to a job's timeout_ms */
    int64_t assign_timeout_ms;       /* supervisor.assign_timeout: ASSIGNED never acknowledged */
    int64_t lost_retry_delay_ms;     /* supervisor.lost_retry_delay: a lost worker's job waits */
    int64_t registration_timeout_ms; /* supervisor.registration_timeout: CREATING/CONNECTING */
    int64_t warm_pool_retry_ms;      /* supervisor.warm_pool_retry: after a provision failed */
    int64_t batch_max;               /* supervisor.batch_max: rows per check per tick */
    int64_t lock_key;                /* supervisor.lock_key: advisory lock of the active one */
    int64_t metrics_interval_ms;     /* supervisor.metrics_interval: fleet gauges; 0 = off */
    int64_t retention_jobs_ms;       /* retention.jobs: finished jobs (0 = forever) */
    int64_t retention_workers_ms;    /* retention.workers: TERMINATED workers */
    int64_t retention_sagas_ms;      /* retention.sagas: finished sagas */
    int64_t retention_audit_ms;      /* retention.audit: audit rows, kept longest */
    int64_t retention_interval_ms;   /* retention.interval */
} sup_config;

/* Filled by the daemon skeleton from sup_params. */
extern sup_config sup_conf;
extern const hodei_cfg_param sup_params[];
#define SUP_PARAMS_LEN 15

hodei_status sup_init(hodei_daemon *d, hodei_err *err);
hodei_status sup_run(hodei_daemon *d, hodei_err *err);
void sup_fini(hodei_daemon *d);

#endif
