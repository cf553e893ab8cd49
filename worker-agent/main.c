/* hodei-worker: the worker agent. Registers with its one-time token, holds
 * one outbound WorkerStream to the edge, heartbeats with resource usage,
 * runs one job at a time with libs/exec, and reports results until they
 * are acknowledged, reconnecting with backoff. Start-up and shutdown:
 * agent_service.c; the session and its channel: session.c; every
 * parameter: config.c. */
#include "agent.h"
#include "hodei/daemon.h"

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
