/* The supervisor's parameters and lifecycle: init, the run loop (acquire
 * the lock, then tick every supervisor.tick_interval), fini. */
#include "supervisor.h"

#include <inttypes.h>
#include <stdlib.h>

#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "sup_int.h"

#define SUP_HOUR_MS (3600LL * 1000)
#define SUP_DAY_MS (24 * SUP_HOUR_MS)
#define SUP_RETENTION_MAX_MS (3650LL * SUP_DAY_MS) /* ten years */

sup_config sup_conf;

const hodei_cfg_param sup_params[SUP_PARAMS_LEN] = {
    {.name = "supervisor.tick_interval",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "500ms",
     .min = 10,
     .max = 60000,
     .offset = offsetof(sup_config, tick_interval_ms),
     .help = "how often the active supervisor runs its checks"},
    {.name = "supervisor.heartbeat_timeout",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "10s",
     .min = 100,
     .max = SUP_HOUR_MS,
     .offset = offsetof(sup_config, heartbeat_timeout_ms),
     .help = "a READY/BUSY/DRAINING worker with no heartbeat for this long is LOST"},
    {.name = "supervisor.timeout_grace",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "5s",
     .min = 0,
     .max = SUP_HOUR_MS,
     .offset = offsetof(sup_config, timeout_grace_ms),
     .help = "a RUNNING job ends TIMEOUT this long after its own timeout_ms passed"},
    {.name = "supervisor.assign_timeout",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "30s",
     .min = 100,
     .max = SUP_HOUR_MS,
     .offset = offsetof(sup_config, assign_timeout_ms),
     .help = "an ASSIGNED job its worker never acknowledged is re-queued after this long"},
    {.name = "supervisor.lost_retry_delay",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "5s",
     .min = 0,
     .max = SUP_HOUR_MS,
     .offset = offsetof(sup_config, lost_retry_delay_ms),
     .help = "a job re-queued because its worker was lost waits at least this long for its"
             " retry, so a worker that was only slow can still report its success"},
    {.name = "supervisor.registration_timeout",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "60s",
     .min = 100,
     .max = SUP_DAY_MS,
     .offset = offsetof(sup_config, registration_timeout_ms),
     .help = "a CREATING/CONNECTING worker older than this is destroyed (= token TTL)"},
    {.name = "supervisor.warm_pool_retry",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "30s",
     .min = 0,
     .max = SUP_HOUR_MS,
     .offset = offsetof(sup_config, warm_pool_retry_ms),
     .help = "the warm pool waits this long after a provider's worker ended unregistered"},
    {.name = "supervisor.batch_max",
     .type = HODEI_CFG_INT,
     .default_value = "100",
     .min = 1,
     .max = SUP_BATCH_MAX,
     .offset = offsetof(sup_config, batch_max),
     .help = "rows one check handles per transaction"},
    {.name = "supervisor.lock_key",
     .type = HODEI_CFG_INT,
     .default_value = "4848484851",
     .min = INT64_MIN,
     .max = INT64_MAX,
     .offset = offsetof(sup_config, lock_key),
     .help = "PostgreSQL advisory lock key; supervisors sharing it elect one active"},
    {.name = "supervisor.metrics_interval",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "5s",
     .min = 0,
     .max = SUP_HOUR_MS,
     .offset = offsetof(sup_config, metrics_interval_ms),
     .help = "how often the active supervisor reads the fleet into its gauges and writes a"
             " metrics sample (the queue's history); 0 = never"},
    {.name = "retention.jobs",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "720h",
     .min = 0,
     .max = SUP_RETENTION_MAX_MS,
     .offset = offsetof(sup_config, retention_jobs_ms),
     .help = "finished jobs (with their artifact records and log archives) older than this are"
             " deleted; 0 = kept forever"},
    {.name = "retention.workers",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "168h",
     .min = 0,
     .max = SUP_RETENTION_MAX_MS,
     .offset = offsetof(sup_config, retention_workers_ms),
     .help = "TERMINATED workers older than this are deleted; 0 = kept forever"},
    {.name = "retention.sagas",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "168h",
     .min = 0,
     .max = SUP_RETENTION_MAX_MS,
     .offset = offsetof(sup_config, retention_sagas_ms),
     .help = "finished sagas older than this are deleted; 0 = kept forever"},
    {.name = "retention.audit",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "8760h",
     .min = 0,
     .max = SUP_RETENTION_MAX_MS,
     .offset = offsetof(sup_config, retention_audit_ms),
     .help = "audit rows older than this are deleted (at least the longest other retention);"
             " 0 = kept forever"},
    {.name = "retention.interval",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "60s",
     .min = 100,
     .max = SUP_DAY_MS,
     .offset = offsetof(sup_config, retention_interval_ms),
     .help = "how often retention runs (at once again while a batch comes back full)"},
};

/* One tick, then the wait for the next one (none when a batch was full). */
static void sup_active_step(sup *s, int64_t *next_tick_ms)
{
    hodei_err e = {0};
    bool more = false;

    if (sup_tick(s, &more, &e) != HODEI_OK || sup_fleet_step(s, &e) != HODEI_OK) {
        sup_leader_drop(s, e.msg);
        sup_leader_backoff(s);
        return;
    }
    *next_tick_ms += s->cfg->tick_interval_ms;
    int64_t now = hodei_mono_ms();
    if (*next_tick_ms < now)
        *next_tick_ms = now; /* a slow tick does not cause a burst of ticks */
    if (!more)
        hodei_daemon_wait(s->d, *next_tick_ms - now);
}

hodei_status sup_run(hodei_daemon *d, hodei_err *err)
{
    sup *s = hodei_daemon_state(d);
    int64_t next_tick_ms = 0;

    while (!hodei_daemon_stopping(d)) {
        if (s->role != SUP_ROLE_ACTIVE) {
            sup_fleet_clear(s);
            sup_leader_acquire(s);
            next_tick_ms = hodei_mono_ms();
            continue;
        }
        sup_active_step(s, &next_tick_ms);
    }
    return HODEI_OK;
}

/* The audit log is kept longest: retention.audit, when not 0 (forever),
 * is at least every other retention, none of which may then be forever. */
static hodei_status sup_retention_check(const sup_config *c, hodei_err *err)
{
    const struct {
        const char *name;
        int64_t ms;
    } others[] = {{"retention.jobs", c->retention_jobs_ms},
                  {"retention.workers", c->retention_workers_ms},
                  {"retention.sagas", c->retention_sagas_ms}};
    if (c->retention_audit_ms == 0)
        return HODEI_OK;
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (others[i].ms == 0 || others[i].ms > c->retention_audit_ms)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "retention.audit: %lld ms is shorter than %s (%s); the audit log "
                                 "is kept longest",
                                 (long long)c->retention_audit_ms, others[i].name,
                                 others[i].ms == 0 ? "forever" : "longer");
    return HODEI_OK;
}

hodei_status sup_init(hodei_daemon *d, hodei_err *err)
{
    hodei_status rst = sup_retention_check(&sup_conf, err);
    if (rst != HODEI_OK)
        return rst;
    sup *s = calloc(1, sizeof *s);

    if (!s)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "supervisor: out of memory");
    s->d = d;
    s->cfg = &sup_conf;
    s->common = hodei_daemon_common(d);
    hodei_db_statement_cache(s->common->database_prepare);
    s->instance = hodei_daemon_instance(d);
    sup_i64_text(sup_conf.batch_max, s->batch_max_text);
    hodei_buf_init(&s->notes, SUP_NOTES_MAX);
    sup_metrics_register(s);
    sup_fleet_register(s);
    hodei_daemon_set_state(d, s);
    HLOG_INFO("starting: instance=%s tick_interval_ms=%" PRId64 " heartbeat_timeout_ms=%" PRId64
              " timeout_grace_ms=%" PRId64 " assign_timeout_ms=%" PRId64
              " registration_timeout_ms=%" PRId64 " warm_pool_retry_ms=%" PRId64
              " batch_max=%" PRId64 " lock_key=%" PRId64,
              s->instance, sup_conf.tick_interval_ms, sup_conf.heartbeat_timeout_ms,
              sup_conf.timeout_grace_ms, sup_conf.assign_timeout_ms,
              sup_conf.registration_timeout_ms, sup_conf.warm_pool_retry_ms, sup_conf.batch_max,
              sup_conf.lock_key);
    return HODEI_OK;
}

void sup_fini(hodei_daemon *d)
{
    sup *s = hodei_daemon_state(d);

    if (!s)
        return;
    sup_leader_close(s);
    hodei_buf_fini(&s->notes);
    free(s);
    hodei_daemon_set_state(d, NULL);
}
