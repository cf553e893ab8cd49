/* The job state machine: which state changes are legal, and the names of the
 * states as they are stored (jobs.state column) and shown to users.
 *
 *   PENDING  -> ASSIGNED | CANCELLED
 *   ASSIGNED -> RUNNING | PENDING (worker lost before start, re-queue)
 *               | CANCELLED | FAILED | TIMEOUT
 *   RUNNING  -> SUCCEEDED | FAILED | CANCELLED | TIMEOUT
 *               | PENDING (retry with attempts left, or worker lost)
 *   SUCCEEDED, FAILED, CANCELLED, TIMEOUT are terminal.
 *
 * A change to the same state is not a transition and is refused, as is any
 * change from or to UNSPECIFIED or an unknown value. Pure functions, no I/O. */
#ifndef HODEI_JOB_STATE_H
#define HODEI_JOB_STATE_H

#include <stdbool.h>

#include "hodei/status.h"
#include "hodei/v1/common.pb-c.h"

/* Longest state name with its "JOB_STATE_" prefix, plus the NUL. */
#define HODEI_JOB_STATE_NAME_MAX 32

bool hodei_job_transition_allowed(Hodei__V1__JobState from, Hodei__V1__JobState to);

/* HODEI_OK when allowed; otherwise HODEI_ERR_PRECONDITION with a message that
 * names both states ("job state: SUCCEEDED -> RUNNING is not allowed"). */
hodei_status hodei_job_transition_check(Hodei__V1__JobState from, Hodei__V1__JobState to,
                                        hodei_err *err);

/* "PENDING", "ASSIGNED", ... (static storage; the text of the jobs.state
 * column). "UNSPECIFIED" for 0 and for any unknown value. */
const char *hodei_job_state_name(Hodei__V1__JobState state);

/* Accepts "PENDING", "pending", "JOB_STATE_PENDING" (any letter case).
 * UNSPECIFIED and unknown names are refused (false, *out untouched). */
bool hodei_job_state_parse(const char *s, Hodei__V1__JobState *out);

/* true for SUCCEEDED, FAILED, CANCELLED, TIMEOUT. */
bool hodei_job_state_terminal(Hodei__V1__JobState state);

#endif
