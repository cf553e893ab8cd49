/* The skeleton's NATS check, in its own library (hodei_daemon_nats) so
 * that only the daemons that use NATS link the NATS client:
 *
 *   .nats_probe = &hodei_daemon_nats_probe,
 *
 * connects once to nats.url (user and password never printed), and at exit
 * releases what nats.c keeps for the process. */
#ifndef HODEI_DAEMON_NATS_H
#define HODEI_DAEMON_NATS_H

#include "hodei/daemon.h"

extern const hodei_daemon_probe hodei_daemon_nats_probe;

#endif
