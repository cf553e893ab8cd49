/* hodei-provisioner: makes workers real. It consumes ProvisionRequested and
 * WorkerDestroyRequested from HODEI_EVENTS (durable consumer shared by every
 * replica), runs the provisioning saga (token -> provider create_worker ->
 * wait for registration, compensating on failure), and reconciles what the
 * providers really run with the registry.
 *
 *   parameters ........ below
 *   start-up .......... prov_init: paths, database pool, driver registry
 *   the work .......... prov_run: saga thread (saga.c), reconcile thread
 *                       (reconcile.c), event consumer on this thread (consumer.c)
 *   shutdown .......... prov_fini: threads joined, leases handed back; the
 *                       workers themselves keep running */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hodei/bus.h"
#include "hodei/daemon.h"
#include "hodei/log.h"
#include "hodei/util.h"
#include "prov.h"

#define PROV_STATE_DIR_DEFAULT "/tmp/hodei-provisioner"
#define PROV_WORKER_NAME "hodei-worker"

static prov_config cfg;
static prov the_prov;

static const char *const prov_log_levels[] = {"debug", "info", "warn", "error", NULL};

#define P(field) .offset = offsetof(prov_config, field)
static const hodei_cfg_param prov_params[] = {
    {.name = "provisioner.worker_binary",
     .type = HODEI_CFG_STRING,
     .max = 4000,
     P(worker_binary),
     .help = "hodei-worker the process provider starts; empty = the one next to this binary"},
    {.name = "provisioner.edge_address",
     .type = HODEI_CFG_STRING,
     .default_value = "127.0.0.1:50051",
     .min = 1,
     .max = 4000,
     P(edge_address),
     .required = true,
     .help = "the job-api address workers connect to (their HODEI_SERVER); several edges:"
             " host:port,host:port"},
    {.name = "provisioner.state_dir",
     .type = HODEI_CFG_STRING,
     .max = 4000,
     P(state_dir),
     .help = "folder for workers/<id>.pid and .log; empty = $HODEI_STATE_DIR "
             "or " PROV_STATE_DIR_DEFAULT},
    {.name = "provisioner.worker_log_level",
     .type = HODEI_CFG_STRING,
     .default_value = "info",
     .max = 16,
     P(worker_log_level),
     .choices = prov_log_levels,
     .help = "log level handed to workers (HODEI_LOG_LEVEL)"},
    {.name = "provisioner.token_ttl",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "60s",
     .min = 1000,
     .max = 3600000,
     P(token_ttl_ms),
     .help = "life of a bootstrap token; a worker not registered by then is compensated"},
    {.name = "provisioner.reconcile_interval",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "10s",
     .min = 100,
     .max = 3600000,
     P(reconcile_interval_ms),
     .help = "how often providers' real workers are compared with the registry"},
    {.name = "provisioner.reconcile_lock_key",
     .type = HODEI_CFG_INT,
     .default_value = "4848484850",
     .min = INT64_MIN,
     .max = INT64_MAX,
     P(reconcile_lock_key),
     .help = "seed of the advisory lock keys: one reconciling replica per provider and scope"},
    {.name = "provisioner.saga_lease",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "10s",
     .min = 500,
     .max = 600000,
     P(saga_lease_ms),
     .help = "a saga whose owner stopped renewing for this long is taken over"},
    {.name = "provisioner.saga_poll",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "250ms",
     .min = 10,
     .max = 10000,
     P(saga_poll_ms),
     .help = "how often running sagas are advanced (e.g. waiting for registration)"},
    {.name = "provisioner.destroy_grace",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "5s",
     .min = 0,
     .max = 300000,
     P(destroy_grace_ms),
     .help = "SIGTERM (graceful stop) to SIGKILL when destroying a worker"},
    {.name = "provisioner.fetch_batch",
     .type = HODEI_CFG_INT,
     .default_value = "64",
     .min = 1,
     .max = 256,
     P(fetch_batch),
     .help = "events fetched from the consumer at once"},
};
#undef P

/* "<dir of /proc/self/exe>/hodei-worker" */
static hodei_status prov_default_worker(char *out, size_t out_len, hodei_err *err)
{
    char exe[PROV_PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return hodei_err_set(err, HODEI_ERR_IO, "provisioner.worker_binary: /proc/self/exe: %s",
                             strerror(errno));
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    int w = snprintf(out, out_len, "%s/%s", slash ? exe : ".", PROV_WORKER_NAME);
    if (w < 0 || (size_t)w >= out_len)
        return hodei_err_set(err, HODEI_ERR_INVALID, "provisioner.worker_binary: path too long");
    return HODEI_OK;
}

static hodei_status prov_paths(prov *p, hodei_err *err)
{
    const char *dir = cfg.state_dir[0] ? cfg.state_dir : getenv("HODEI_STATE_DIR");
    if (!dir || !dir[0])
        dir = PROV_STATE_DIR_DEFAULT;
    if (!hodei_strlcpy(p->state_dir, dir, sizeof p->state_dir))
        return hodei_err_set(err, HODEI_ERR_INVALID, "provisioner.state_dir: path too long");
    if (!cfg.worker_binary[0])
        return prov_default_worker(p->worker_binary, sizeof p->worker_binary, err);
    hodei_strlcpy(p->worker_binary, cfg.worker_binary, sizeof p->worker_binary);
    return HODEI_OK;
}

static hodei_status prov_init(hodei_daemon *d, hodei_err *err)
{
    prov *p = &the_prov;
    p->d = d;
    p->m.started = hodei_daemon_counter_vec(
        d, "hodei_provisioner_workers_started_total",
        "Workers a provider started (create_worker succeeded), by provider.", "provider");
    p->m.failed = hodei_daemon_counter_vec(
        d, "hodei_provisioner_sagas_failed_total",
        "Provisioning sagas that failed, by provider and reason: no_driver, token, create_failed,"
        " superseded (the worker changed state first), exited, registration_timeout, internal.",
        "provider,reason");
    p->m.succeeded =
        hodei_daemon_counter(d, "hodei_provisioner_sagas_succeeded_total",
                             "Provisioning sagas that ended with the worker registered.");
    p->m.compensated = hodei_daemon_counter(
        d, "hodei_provisioner_sagas_compensated_total",
        "Provisioning sagas that failed and were undone (token revoked, worker destroyed).");
    p->m.destroyed = hodei_daemon_counter_vec(
        d, "hodei_provisioner_workers_destroyed_total",
        "Workers destroyed on request (idle TTL, drain, lost), by provider.", "provider");
    p->cfg = &cfg;
    p->common = hodei_daemon_common(d);
    hodei_db_statement_cache(p->common->database_prepare);
    p->instance = hodei_daemon_instance(d);
    if (cfg.saga_lease_ms < 2 * cfg.saga_poll_ms)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "provisioner.saga_lease: must be at least twice provisioner.saga_poll"
                             " (%" PRId64 " ms < 2 x %" PRId64
                             " ms): leases are renewed each round",
                             cfg.saga_lease_ms, cfg.saga_poll_ms);
    hodei_status st = prov_paths(p, err);
    if (st != HODEI_OK)
        return st;
    p->saga_kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->saga_kick_fd < 0)
        return hodei_err_set(err, HODEI_ERR_IO, "eventfd: %s", strerror(errno));
    st = hodei_db_create(p->common->database_url, (int)p->common->database_pool_size,
                         p->common->database_connect_timeout_ms, &p->db, err);
    if (st != HODEI_OK)
        goto out_close_kick;
    if ((st = prov_registry_create(p, &p->reg, err)) != HODEI_OK)
        goto out_destroy_db;
    if (access(p->worker_binary, X_OK) != 0)
        HLOG_WARN("worker binary %s: %s (provisioning fails until it exists)", p->worker_binary,
                  strerror(errno));
    HLOG_INFO("provisioner ready: instance=%s state_dir=%s worker_binary=%s edge=%s"
              " token_ttl_ms=%" PRId64,
              p->instance, p->state_dir, p->worker_binary, cfg.edge_address, cfg.token_ttl_ms);
    return HODEI_OK;

out_destroy_db:
    hodei_db_destroy(p->db);
    p->db = NULL;
out_close_kick:
    close(p->saga_kick_fd);
    p->saga_kick_fd = -1;
    return st;
}

static hodei_status prov_run(hodei_daemon *d, hodei_err *err)
{
    prov *p = &the_prov;
    hodei_status st = prov_saga_start(p, err);
    if (st == HODEI_OK)
        st = prov_reconcile_start(p, err);
    if (st == HODEI_OK)
        st = prov_consume(p, err);
    return st;
}

static void prov_fini(hodei_daemon *d)
{
    prov *p = &the_prov;
    hodei_daemon_request_stop(d); /* threads also stop when run failed */
    prov_reconcile_stop(p);
    prov_saga_stop(p);
    prov_registry_destroy(p->reg);
    hodei_db_destroy(p->db);
    hodei_bus_global_shutdown();
    if (p->saga_kick_fd >= 0)
        close(p->saga_kick_fd);
}

static const hodei_service prov_service = {
    .name = "provisioner",
    .summary = "runs provisioning sagas and provider drivers; reconciles real workers",
    .params = prov_params,
    .n_params = sizeof prov_params / sizeof prov_params[0],
    .config = &cfg,
    .needs_db = true,
    .nats_probe = NULL, /* waits for NATS: sagas and reconcile go on meanwhile */
    .init = prov_init,
    .run = prov_run,
    .fini = prov_fini,
};

int main(int argc, char **argv)
{
    return hodei_daemon_main(argc, argv, &prov_service);
}
