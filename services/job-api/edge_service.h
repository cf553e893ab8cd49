/* The edge as a daemon (libs/daemon hodei_service): start-up (secrets
 * keyring, database pool, submitter, door check, re-sealer, NATS and the
 * worker side, metrics, the gRPC server, the REST door), the wait, and
 * the shutdown in the reverse order. */
#ifndef HODEI_JOB_API_EDGE_SERVICE_H
#define HODEI_JOB_API_EDGE_SERVICE_H

#include "hodei/daemon.h"

hodei_status edge_init(hodei_daemon *d, hodei_err *err);
hodei_status edge_run(hodei_daemon *d, hodei_err *err);
void edge_fini(hodei_daemon *d);

#endif
