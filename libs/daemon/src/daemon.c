/* The skeleton: flags, configuration, logging, signals, start-up checks,
 * then the service's init -> run -> fini, and a clean exit. */
#include "daemon_int.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "hodei/assert.h"
#include "hodei/log.h"
#include "hodei/util.h"

#ifndef HODEI_VERSION
#define HODEI_VERSION "0.0.0"
#endif

bool hodei_daemon_stopping(const hodei_daemon *d)
{
    return atomic_load(&d->stopping);
}

void hodei_daemon_request_stop(hodei_daemon *d)
{
    if (atomic_exchange(&d->stopping, true))
        return;
    uint64_t one = 1;
    ssize_t w = write(d->stop_fd, &one, sizeof one);
    (void)w; /* the counter is never read, so it cannot overflow */
}

bool hodei_daemon_wait(hodei_daemon *d, int64_t timeout_ms)
{
    if (hodei_daemon_stopping(d))
        return true;
    struct pollfd p = {.fd = d->stop_fd, .events = POLLIN};
    int t = timeout_ms < 0 ? -1 : timeout_ms > INT_MAX ? INT_MAX : (int)timeout_ms;
    (void)poll(&p, 1, t); /* EINTR: the caller's loop waits again */
    return hodei_daemon_stopping(d);
}

bool hodei_daemon_backoff(hodei_daemon *d, int64_t *backoff_ms, int64_t min_ms, int64_t max_ms)
{
    *backoff_ms = *backoff_ms > 0 ? *backoff_ms * 2 : min_ms;
    if (*backoff_ms > max_ms)
        *backoff_ms = max_ms;
    return hodei_daemon_wait(d, *backoff_ms);
}

int hodei_daemon_stop_fd(const hodei_daemon *d)
{
    return d->stop_fd;
}

const hodei_common_config *hodei_daemon_common(const hodei_daemon *d)
{
    return &d->common;
}

const char *hodei_daemon_instance(const hodei_daemon *d)
{
    return d->instance;
}

void hodei_daemon_set_state(hodei_daemon *d, void *state)
{
    d->state = state;
}

void *hodei_daemon_state(const hodei_daemon *d)
{
    return d->state;
}

static void daemon_instance_set(hodei_daemon *d)
{
    if (d->common.instance_id && *d->common.instance_id) {
        hodei_strlcpy(d->instance, d->common.instance_id, sizeof d->instance);
        return;
    }
    char host[HOST_NAME_MAX + 1] = "localhost";
    if (gethostname(host, sizeof host) != 0)
        hodei_strlcpy(host, "localhost", sizeof host);
    host[sizeof host - 1] = '\0';
    snprintf(d->instance, sizeof d->instance, "%s-%d", host, (int)getpid());
}

static int daemon_config_load(hodei_daemon *d, const char *path)
{
    const hodei_service *svc = d->svc;
    hodei_err err;
    d->sections[0] = (hodei_cfg_section){hodei_common_params, hodei_common_params_len, &d->common};
    d->n_sections = 1;
    if (svc->params && svc->n_params > 0) {
        HODEI_ASSERT(svc->config != NULL);
        d->sections[1] = (hodei_cfg_section){svc->params, svc->n_params, svc->config};
        d->n_sections = 2;
    }
    hodei_status st = hodei_config_load(d->sections, d->n_sections, path, &err);
    if (st == HODEI_OK && svc->check_config && d->n_sections == 2)
        st = svc->check_config(&d->sections[1], &err);
    if (st != HODEI_OK) {
        fprintf(stderr, "%s: configuration error: %s\n", svc->name, err.msg);
        return DAEMON_EXIT_USAGE;
    }
    return DAEMON_EXIT_OK;
}

static int daemon_checks(hodei_daemon *d)
{
    int rc = DAEMON_EXIT_OK;
    if (d->svc->needs_db)
        rc = daemon_check_db(d);
    if (rc == DAEMON_EXIT_OK && d->svc->nats_probe && !hodei_daemon_stopping(d) &&
        !d->svc->nats_probe->check(d))
        rc = DAEMON_EXIT_FAILURE;
    return rc;
}

/* init -> run -> fini; fini runs whenever init succeeded. */
static int daemon_lifecycle(hodei_daemon *d)
{
    const hodei_service *svc = d->svc;
    hodei_err err;
    hodei_err_clear(&err);
    if (hodei_daemon_stopping(d)) {
        HLOG_INFO("stop requested during start-up; not starting");
        return DAEMON_EXIT_OK;
    }
    HLOG_INFO("starting version=%s instance=%s", HODEI_VERSION, d->instance);
    if (svc->init && svc->init(d, &err) != HODEI_OK) {
        HLOG_ERROR("start failed: %s", err.msg);
        return DAEMON_EXIT_FAILURE;
    }
    int rc = DAEMON_EXIT_OK;
    daemon_health_running(d, true);
    hodei_status st = svc->run(d, &err);
    daemon_health_running(d, false);
    if (st != HODEI_OK) {
        HLOG_ERROR("stopping after an error: %s (%s)", err.msg, hodei_status_str(st));
        rc = DAEMON_EXIT_FAILURE;
    }
    if (svc->fini)
        svc->fini(d);
    HLOG_INFO("stopped");
    return rc;
}

static int daemon_serve(hodei_daemon *d)
{
    int rc = DAEMON_EXIT_FAILURE;
    hodei_err err;
    hodei_log_init(d->svc->name, (hodei_log_level)hodei_log_level_parse(d->common.log_level));
    daemon_instance_set(d);
    d->start_time_s = (int64_t)time(NULL);
    d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->stop_fd < 0) {
        fprintf(stderr, "%s: eventfd: %s\n", d->svc->name, strerror(errno));
        return rc;
    }
    if (daemon_signals_start(d, &err) != HODEI_OK) {
        fprintf(stderr, "%s: %s\n", d->svc->name, err.msg);
        goto out_close_fd;
    }
    rc = daemon_health_start(d);
    if (rc == DAEMON_EXIT_OK)
        rc = daemon_checks(d);
    if (rc == DAEMON_EXIT_OK)
        rc = daemon_lifecycle(d);
    daemon_health_stop(d);
    if (d->svc->nats_probe && d->svc->nats_probe->release)
        d->svc->nats_probe->release();
    daemon_signals_stop(d);
out_close_fd:
    close(d->stop_fd);
    return rc;
}

int hodei_daemon_main(int argc, char **argv, const hodei_service *svc)
{
    HODEI_ASSERT(svc != NULL && svc->name != NULL && svc->run != NULL);
    /* Every daemon holds a secret (the database password, the secrets
     * master key, a worker's tokens and its jobs' secrets): no core dump,
     * no ptrace and no /proc/<pid>/{mem,environ,fd} for other processes of
     * the same user. Reset by execve, so jobs the agent starts are not
     * affected. Root still can (CAP_SYS_PTRACE). */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        HLOG_WARN("cannot make the process non-dumpable: %s", strerror(errno));
    daemon_signals_block(); /* before any thread exists, so all inherit it */
    daemon_args args;
    int rc = daemon_args_parse(argc, argv, svc, &args);
    if (rc != DAEMON_CONTINUE)
        return rc;
    hodei_daemon d = {.svc = svc, .stop_fd = -1, .health_mu = PTHREAD_MUTEX_INITIALIZER};
    rc = daemon_config_load(&d, args.config_path);
    if (rc == DAEMON_EXIT_OK)
        rc = daemon_health_check_config(&d);
    if (rc == DAEMON_EXIT_OK && args.check_only && svc->needs_db)
        rc = daemon_check_db_url(&d);
    if (rc == DAEMON_EXIT_OK && args.check_only)
        hodei_config_print(d.sections, d.n_sections, stdout);
    else if (rc == DAEMON_EXIT_OK)
        rc = daemon_serve(&d);
    daemon_metrics_free(&d);
    hodei_config_free(d.sections, d.n_sections);
    return rc;
}
