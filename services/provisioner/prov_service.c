/* The provisioner as a daemon (prov.h):
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

#define PROV_WORKER_NAME "hodei-worker"

static prov the_prov;

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
    const char *dir = prov_conf.state_dir[0] ? prov_conf.state_dir : getenv("HODEI_STATE_DIR");
    if (!dir || !dir[0])
        dir = PROV_STATE_DIR_DEFAULT;
    if (!hodei_strlcpy(p->state_dir, dir, sizeof p->state_dir))
        return hodei_err_set(err, HODEI_ERR_INVALID, "provisioner.state_dir: path too long");
    if (!prov_conf.worker_binary[0])
        return prov_default_worker(p->worker_binary, sizeof p->worker_binary, err);
    hodei_strlcpy(p->worker_binary, prov_conf.worker_binary, sizeof p->worker_binary);
    return HODEI_OK;
}

hodei_status prov_init(hodei_daemon *d, hodei_err *err)
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
    p->cfg = &prov_conf;
    p->common = hodei_daemon_common(d);
    hodei_db_statement_cache(p->common->database_prepare);
    p->instance = hodei_daemon_instance(d);
    if (prov_conf.saga_lease_ms < 2 * prov_conf.saga_poll_ms)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "provisioner.saga_lease: must be at least twice provisioner.saga_poll"
                             " (%" PRId64 " ms < 2 x %" PRId64
                             " ms): leases are renewed each round",
                             prov_conf.saga_lease_ms, prov_conf.saga_poll_ms);
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
              p->instance, p->state_dir, p->worker_binary, prov_conf.edge_address,
              prov_conf.token_ttl_ms);
    return HODEI_OK;

out_destroy_db:
    hodei_db_destroy(p->db);
    p->db = NULL;
out_close_kick:
    close(p->saga_kick_fd);
    p->saga_kick_fd = -1;
    return st;
}

hodei_status prov_run(hodei_daemon *d, hodei_err *err)
{
    prov *p = &the_prov;
    hodei_status st = prov_saga_start(p, err);
    if (st == HODEI_OK)
        st = prov_reconcile_start(p, err);
    if (st == HODEI_OK)
        st = prov_consume(p, err);
    return st;
}

void prov_fini(hodei_daemon *d)
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
