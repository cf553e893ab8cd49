/* The outbox relay: forwards committed outbox rows to JetStream in id order,
 * one active instance at a time (PostgreSQL session advisory lock), marking
 * each row published once JetStream acknowledged it. */
#ifndef HODEI_RELAY_H
#define HODEI_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "hodei/config.h"
#include "hodei/daemon.h"
#include "hodei/status.h"

typedef struct {
    int64_t batch_max;          /* relay.batch_max: rows per round */
    int64_t poll_interval_ms;   /* relay.poll_interval: fallback poll when no NOTIFY */
    int64_t lock_key;           /* relay.lock_key: pg advisory lock shared by all relays */
    int64_t retention_ms;       /* relay.retention: keep published rows this long */
    int64_t prune_interval_ms;  /* relay.prune_interval */
    int64_t publish_timeout_ms; /* relay.publish_timeout: wait for JetStream acks */
    int64_t stats_interval_ms;  /* relay.stats_interval: counters log line */
} relay_config;

/* Filled by the daemon skeleton from relay_params. */
extern relay_config relay_conf;
extern const hodei_cfg_param relay_params[];
#define RELAY_PARAMS_LEN 7

hodei_status relay_init(hodei_daemon *d, hodei_err *err);
hodei_status relay_run(hodei_daemon *d, hodei_err *err);
void relay_fini(hodei_daemon *d);

#endif
