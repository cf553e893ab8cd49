/* Heartbeat and Keepalive: what keeps a stream known to be alive. A
 * Heartbeat's usage is kept on the session; the hub's ticker writes every
 * session's beat in one UPDATE per heartbeat interval. A worker's
 * Keepalive is answered with its nonce. */
#ifndef HODEI_JOB_API_WORKER_HEARTBEAT_H
#define HODEI_JOB_API_WORKER_HEARTBEAT_H

#include "worker_hub.h"

/* A validated Heartbeat. */
void worker_heartbeat_on(worker_session *s, const Hodei__V1__Heartbeat *hb);
/* A Keepalive (NULL is ignored): answered with its nonce, unless it is the
 * echo of the edge's own, so two peers that both answer never loop. */
void worker_keepalive_on(worker_session *s, const Hodei__V1__Keepalive *k);

#endif
