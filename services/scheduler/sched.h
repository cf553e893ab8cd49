/* The scheduler: matches pending jobs to ready workers in one PostgreSQL
 * transaction per pass, and asks for workers to be provisioned when none
 * fits. Passes are triggered by events on the shared durable JetStream
 * consumer and by a fallback timer. */
#ifndef HODEI_SCHED_H
#define HODEI_SCHED_H

#include <stdint.h>

#include "hodei/config.h"
#include "hodei/daemon.h"
#include "hodei/status.h"

typedef struct {
    char *strategy;           /* scheduler.strategy: used while none is set at run time */
    int64_t pass_interval_ms; /* scheduler.pass_interval: fallback pass */
    int64_t batch_max;        /* scheduler.batch_max: pending jobs locked per pass */
    int64_t lookahead;        /* scheduler.lookahead: jobs locked beyond the ready workers' share */
    int64_t workers_max;      /* scheduler.workers_max: ready workers locked per pass */
    int64_t events_max;       /* scheduler.events_max: events fetched per batch */
    int64_t provision_max;    /* scheduler.provision_max: workers requested per pass */
    char *default_provider;   /* scheduler.default_provider: for jobs naming none */
    char *default_image_provider; /* scheduler.default_image_provider: for jobs with an image */
    int64_t stats_interval_ms;    /* scheduler.stats_interval: counters log line */
    int64_t lock_key; /* scheduler.lock_key: advisory locks: the pass gate (key, key + 1), the
                         listener (key + 2) */
} sched_config;

/* Filled by the daemon skeleton from sched_params. */
extern sched_config sched_conf;
extern const hodei_cfg_param sched_params[];
#define SCHED_PARAMS_LEN 11

hodei_status sched_init(hodei_daemon *d, hodei_err *err);
hodei_status sched_run(hodei_daemon *d, hodei_err *err);
void sched_fini(hodei_daemon *d);

#endif
