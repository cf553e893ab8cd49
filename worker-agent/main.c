/* hodei-worker: the worker agent. Registers with its one-time token, holds
 * one outbound WorkerStream to the edge, heartbeats with resource usage,
 * runs one job at a time with libs/exec, and reports results until they
 * are acknowledged, reconnecting with backoff. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

static agent the_agent;

const char *agent_server(const agent *a)
{
    return a->servers[a->server_at];
}

/* A new channel for every retry after a failure: gRPC's own reconnect
 * backoff (1 s growing to 2 min, per channel) would otherwise answer our
 * retries with the cached failure long after the edge is back. The new
 * channel replaces the old one only when it could be made. With several
 * edges, each new channel after the first goes to the next one: a worker
 * whose edge died is back on another within its reconnect backoff. */
hodei_status agent_channel_open(agent *a, hodei_err *err)
{
    const agent_config *c = a->cfg;
    if (a->ch && a->n_servers > 1) {
        a->server_at = (a->server_at + 1) % a->n_servers;
        HLOG_INFO("next edge: %s", agent_server(a));
    }
    hodei_rpc_channel_opts o = {
        .target = agent_server(a),
        .tls_ca_file = c->tls_ca[0] ? c->tls_ca : NULL,
        .tls_cert_file = c->tls_cert[0] ? c->tls_cert : NULL,
        .tls_key_file = c->tls_key[0] ? c->tls_key : NULL,
    };
    hodei_rpc_channel *ch = NULL;
    hodei_status st = hodei_rpc_channel_create(&o, &ch, err);
    if (st != HODEI_OK)
        return st;
    hodei_rpc_channel_destroy(a->ch);
    a->ch = ch;
    return HODEI_OK;
}

static void agent_identity(agent *a)
{
    if (gethostname(a->hostname, sizeof a->hostname) != 0)
        hodei_strlcpy(a->hostname, "localhost", sizeof a->hostname);
    a->hostname[sizeof a->hostname - 1] = '\0';
    if (!hodei_utf8_valid(a->hostname, strlen(a->hostname)))
        hodei_strlcpy(a->hostname, "localhost", sizeof a->hostname);
    a->rand_state = (uint64_t)hodei_mono_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15u;
}

static hodei_status agent_threads_start(agent *a, hodei_err *err)
{
    if (pthread_create(&a->sender_thread, NULL, agent_sender_main, a) != 0)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "cannot start the sender thread");
    if (pthread_create(&a->runner_thread, NULL, agent_runner_main, a) != 0) {
        pthread_mutex_lock(&a->mu);
        a->quit = true;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->sender_thread, NULL);
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "cannot start the runner thread");
    }
    a->threads_started = true;
    return HODEI_OK;
}

static void agent_fini(hodei_daemon *d);

static hodei_status agent_init(hodei_daemon *d, hodei_err *err)
{
    agent *a = &the_agent;
    a->cfg = &agent_conf;
    a->d = d;
    a->accepting = true;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    agent_usage_init(&a->usage);
    agent_reaper_init();
    hodei_rpc_global_init();
    agent_identity(a);
    hodei_status st = agent_config_apply(a, err);
    if (st == HODEI_OK)
        st = agent_channel_open(a, err);
    if (st == HODEI_OK)
        st = agent_threads_start(a, err);
    if (st != HODEI_OK)
        agent_fini(d); /* the skeleton runs fini only after a successful init */
    return st;
}

static hodei_status agent_run(hodei_daemon *d, hodei_err *err)
{
    return agent_session_run(&the_agent, err);
}

static void agent_fini(hodei_daemon *d)
{
    agent *a = &the_agent;
    if (a->threads_started) {
        pthread_mutex_lock(&a->mu);
        a->quit = true;
        if (a->job)
            hodei_exec_cancel(a->job->handle);
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->runner_thread, NULL);
        pthread_join(a->sender_thread, NULL);
    }
    agent_runner_fini(a);
    agent_queue_clear(&a->control);
    agent_queue_clear(&a->data);
    agent_queue_clear(&a->sent);
    hodei_rpc_channel_destroy(a->ch);
    hodei_rpc_global_shutdown();
    agent_usage_fini(&a->usage);
    free(a->labels_store);
    explicit_bzero(a->otp, sizeof a->otp);
    explicit_bzero(a->session_token, sizeof a->session_token);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
}

int main(int argc, char **argv)
{
    const hodei_service worker_service = {
        .name = "worker",
        .summary = "the worker agent: registers with its one-time token, runs the jobs the edge "
                   "sends and reports their output and results",
        .params = agent_params,
        .n_params = agent_params_len,
        .config = &agent_conf,
        .needs_db = false,
        .nats_probe = NULL,
        .init = agent_init,
        .run = agent_run,
        .fini = agent_fini,
    };
    return hodei_daemon_main(argc, argv, &worker_service);
}
