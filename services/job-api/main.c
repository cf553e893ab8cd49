/* hodei-job-api: the gRPC edge. Clients queue, inspect, list, cancel and
 * follow jobs here; workers register and hold their streams here; every
 * write is one transaction with its outbox row. The rooms: client/,
 * worker/, logs/, metrics/, rest/ (README.md); their start and stop:
 * edge_service.c; every parameter: edge_params.c. */
#include "edge_params.h"
#include "edge_service.h"
#include "hodei/daemon_nats.h"

int main(int argc, char **argv)
{
    const hodei_service edge_service = {
        .name = "job-api",
        .summary =
            "the gRPC edge: clients queue, follow and cancel jobs; workers register and run them",
        .params = edge_params,
        .n_params = edge_params_len,
        .config = &edge_conf,
        .check_config = edge_params_check,
        .needs_db = true,
        .nats_probe = &hodei_daemon_nats_probe,
        .init = edge_init,
        .run = edge_run,
        .fini = edge_fini,
    };
    return hodei_daemon_main(argc, argv, &edge_service);
}
