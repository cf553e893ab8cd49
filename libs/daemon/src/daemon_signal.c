/* Signals: blocked in every thread, taken synchronously by one thread with
 * sigwait, so no handler ever runs inside library code. */
#include "daemon_int.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "hodei/log.h"

static void daemon_signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

void daemon_signals_block(void)
{
    sigset_t set;
    struct sigaction ign;
    daemon_signal_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
}

static void *daemon_signal_main(void *arg)
{
    hodei_daemon *d = arg;
    sigset_t set;
    daemon_signal_set(&set);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (atomic_load(&d->signal_thread_quit))
            break;
        if (sig == SIGHUP) {
            HLOG_INFO("SIGHUP ignored: the configuration is read at start; restart to change it");
            continue;
        }
        HLOG_INFO("received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        hodei_daemon_request_stop(d);
    }
    return NULL;
}

hodei_status daemon_signals_start(hodei_daemon *d, hodei_err *err)
{
    atomic_store(&d->signal_thread_quit, false);
    int rc = pthread_create(&d->signal_thread, NULL, daemon_signal_main, d);
    if (rc != 0)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "cannot start the signal thread: %s",
                             strerror(rc));
    return HODEI_OK;
}

void daemon_signals_stop(hodei_daemon *d)
{
    atomic_store(&d->signal_thread_quit, true);
    pthread_kill(d->signal_thread, SIGTERM); /* blocked there: sigwait takes it */
    pthread_join(d->signal_thread, NULL);
}
