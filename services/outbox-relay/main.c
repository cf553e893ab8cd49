/* hodei-outbox-relay: PostgreSQL outbox -> JetStream HODEI_EVENTS. */
#include "hodei/daemon.h"
#include "relay.h"

int main(int argc, char **argv)
{
    const hodei_service relay_service = {
        .name = "outbox-relay",
        .summary =
            "publishes committed outbox rows to JetStream; one active instance, hot standbys",
        .params = relay_params,
        .n_params = RELAY_PARAMS_LEN,
        .config = &relay_conf,
        .needs_db = true,
        .nats_probe = NULL, /* waits for NATS: a relay that cannot publish still holds its place */
        .init = relay_init,
        .run = relay_run,
        .fini = relay_fini,
    };
    return hodei_daemon_main(argc, argv, &relay_service);
}
