/* hodei-provisioner: makes workers real. It consumes ProvisionRequested and
 * WorkerDestroyRequested from HODEI_EVENTS (durable consumer shared by every
 * replica), runs the provisioning saga (token -> provider create_worker ->
 * wait for registration, compensating on failure), and reconciles what the
 * providers really run with the registry. Start-up, work and shutdown:
 * prov_service.c; every parameter: prov_params.c; README.md. */
#include "hodei/daemon.h"
#include "prov.h"

int main(int argc, char **argv)
{
    const hodei_service prov_service = {
        .name = "provisioner",
        .summary = "runs provisioning sagas and provider drivers; reconciles real workers",
        .params = prov_params,
        .n_params = prov_params_len,
        .config = &prov_conf,
        .needs_db = true,
        .nats_probe = NULL, /* waits for NATS: sagas and reconcile go on meanwhile */
        .init = prov_init,
        .run = prov_run,
        .fini = prov_fini,
    };
    return hodei_daemon_main(argc, argv, &prov_service);
}
