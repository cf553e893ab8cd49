/* The worker agent as a daemon (agent.h): start-up (identity, settings,
 * the first channel, the sender and runner threads), the session as its
 * work (session.c), and the shutdown (threads joined, the running job
 * cancelled, tokens wiped). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

static agent the_agent;

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

hodei_status agent_init(hodei_daemon *d, hodei_err *err)
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

hodei_status agent_run(hodei_daemon *d, hodei_err *err)
{
    return agent_session_run(&the_agent, err);
}

void agent_fini(hodei_daemon *d)
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
