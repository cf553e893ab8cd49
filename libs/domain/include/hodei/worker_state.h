/* The worker state machine: which state changes are legal, and the names of
 * the states as they are stored (workers.state column) and shown to users.
 *
 *   CREATING    -> CONNECTING | TERMINATING | LOST
 *   CONNECTING  -> READY | TERMINATING | LOST
 *   READY       -> BUSY | DRAINING | LOST
 *   BUSY        -> READY | DRAINING | LOST
 *   DRAINING    -> TERMINATING | LOST
 *   TERMINATING -> TERMINATED
 *   LOST        -> TERMINATING | TERMINATED
 *   TERMINATED is final.
 *
 * A change to the same state is not a transition and is refused, as is any
 * change from or to UNSPECIFIED or an unknown value. Pure functions, no I/O. */
#ifndef HODEI_WORKER_STATE_H
#define HODEI_WORKER_STATE_H

#include <stdbool.h>

#include "hodei/status.h"
#include "hodei/v1/common.pb-c.h"

/* Longest state name with its "WORKER_STATE_" prefix, plus the NUL. */
#define HODEI_WORKER_STATE_NAME_MAX 32

bool hodei_worker_transition_allowed(Hodei__V1__WorkerState from, Hodei__V1__WorkerState to);

/* HODEI_OK when allowed; otherwise HODEI_ERR_PRECONDITION with a message that
 * names both states ("worker state: TERMINATED -> READY is not allowed"). */
hodei_status hodei_worker_transition_check(Hodei__V1__WorkerState from, Hodei__V1__WorkerState to,
                                           hodei_err *err);

/* "CREATING", "READY", ... (static storage). "UNSPECIFIED" for 0 and for any
 * unknown value. */
const char *hodei_worker_state_name(Hodei__V1__WorkerState state);

/* Accepts "READY", "ready", "WORKER_STATE_READY" (any letter case).
 * UNSPECIFIED and unknown names are refused (false, *out untouched). */
bool hodei_worker_state_parse(const char *s, Hodei__V1__WorkerState *out);

/* true only for TERMINATED. */
bool hodei_worker_state_terminal(Hodei__V1__WorkerState state);

#endif
