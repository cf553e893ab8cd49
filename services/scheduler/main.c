/* hodei-scheduler: pending jobs -> ready workers; provisioning requests for
 * the rest. N replicas share one durable JetStream consumer. */
#include "hodei/daemon.h"
#include "sched.h"

int main(int argc, char **argv)
{
    const hodei_service sched_service = {
        .name = "scheduler",
        .summary = "assigns pending jobs to ready workers and asks for workers when none fits",
        .params = sched_params,
        .n_params = SCHED_PARAMS_LEN,
        .config = &sched_conf,
        .needs_db = true,
        .nats_probe = NULL, /* schedules on its fallback timer while NATS is away */
        .init = sched_init,
        .run = sched_run,
        .fini = sched_fini,
    };
    return hodei_daemon_main(argc, argv, &sched_service);
}
