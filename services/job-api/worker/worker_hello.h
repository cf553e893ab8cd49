/* Hello, the first message of a WorkerStream: the worker's certificate
 * (with auth.worker_cert_check) and session token are checked, the RUNNING
 * jobs it names become this stream's (the others are suspects, failed one
 * re-send interval later unless their result comes first), and the hub
 * takes the stream (subscriptions, an older stream of the worker ended, a
 * re-send now). */
#ifndef HODEI_JOB_API_WORKER_HELLO_H
#define HODEI_JOB_API_WORKER_HELLO_H

#include "worker_hub.h"

/* A validated Hello (ids in lower case). UNAUTHENTICATED when the token or
 * certificate does not fit, the database's error when it is away. */
hodei_status worker_hello_on(worker_session *s, const Hodei__V1__Hello *hello, hodei_err *err);

#endif
