/* hodei-supervisor: lost workers, job timeouts, registration timeouts, idle
 * TTL and the warm pool; one active instance, standbys. */
#include "hodei/daemon.h"
#include "supervisor.h"

int main(int argc, char **argv)
{
    const hodei_service sup_service = {
        .name = "supervisor",
        .summary = "declares lost workers, enforces job and registration timeouts, drains idle "
                   "workers, keeps warm pools; one active instance, standbys",
        .params = sup_params,
        .n_params = SUP_PARAMS_LEN,
        .config = &sup_conf,
        .needs_db = true,
        .nats_probe = NULL, /* no NATS: it only writes outbox rows; the relay publishes them */
        .init = sup_init,
        .run = sup_run,
        .fini = sup_fini,
    };
    return hodei_daemon_main(argc, argv, &sup_service);
}
