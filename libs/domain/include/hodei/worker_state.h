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

/* A set of worker states, for "is it one of these": HODEI_WSET_READY |
 * HODEI_WSET_BUSY. */
typedef unsigned hodei_worker_state_set;
#define HODEI_WSET(state) (1u << (state))
#define HODEI_WSET_CREATING HODEI_WSET(HODEI__V1__WORKER_STATE__WORKER_STATE_CREATING)
#define HODEI_WSET_CONNECTING HODEI_WSET(HODEI__V1__WORKER_STATE__WORKER_STATE_CONNECTING)
#define HODEI_WSET_READY HODEI_WSET(HODEI__V1__WORKER_STATE__WORKER_STATE_READY)
#define HODEI_WSET_BUSY HODEI_WSET(HODEI__V1__WORKER_STATE__WORKER_STATE_BUSY)
#define HODEI_WSET_DRAINING HODEI_WSET(HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING)
#define HODEI_WSET_TERMINATING HODEI_WSET(HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING)
#define HODEI_WSET_TERMINATED HODEI_WSET(HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATED)
#define HODEI_WSET_LOST HODEI_WSET(HODEI__V1__WORKER_STATE__WORKER_STATE_LOST)

/* true when state (a known one) is in set. */
bool hodei_worker_state_in(Hodei__V1__WorkerState state, hodei_worker_state_set set);

/* Parses a stored name (workers.state) into one of the set's states: false
 * for a name that is unknown or not in set. */
bool hodei_worker_state_is(const char *name, hodei_worker_state_set set);

/* true only for TERMINATED. */
bool hodei_worker_state_terminal(Hodei__V1__WorkerState state);

#endif
